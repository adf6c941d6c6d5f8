"""Fidelity of the ``xdomain`` preset to the paper's toolbox (AugLab at commit 1ee096a), measured, not asserted.

The same two kinds of evidence as :mod:`spineaug.fidelity.nnunet` (which compares ``nnunet`` with nnU-Net), on the
same seeded synthetic volume, with AugLab run in its own environment (:func:`spineaug.baselines.auglab.probe`):

* **Firing rates**: AugLab's GPU container, built from the snapshot's real ``transform_params_gpu.json``, is called
  ``draws`` times on a batch of one, and each module's own coin flip is counted. ``xdomain``'s matching entry runs
  alone on ``draws`` samples; a sample fired when its output differs from its input. The rates are compared with a
  two-proportion z-score. nnU-Net's spatial transform (the config's ``nnUNetSpatialTransform`` block, run in the data
  loader, outside AugLab's container) is not part of this comparison; ``tests/test_xdomain_fidelity.py`` pins it.
* **Matched parameters**: one AugLab module with ``probability`` 1 and a degenerate range (so it is deterministic)
  and the spineaug entries that :func:`spineaug.integrations.auglab.auglab_to_config` makes of the same config, on
  the same input; the largest difference of the outputs relative to the std of AugLab's output (over the whole
  volume, its interior or its border voxels).

Modules whose draws cannot be fixed from a config (noise fields, random kernels, label remapping curves, bias field,
the axis choice of thick slices and FOV crops) are compared by firing rate only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

import spineaug
from spineaug.baselines.auglab import MAPPING, probe
from spineaug.config import preset_config
from spineaug.fidelity.nnunet import RATE_SHAPE, Rate, changed, run_entry, volume
from spineaug.integrations.auglab import auglab_to_config

BORDER = 1
"""Voxels from a face that count as "border" (Scharr's kernel reaches one voxel)."""

DRAWS = 400
"""Calls per library for the firing rates (as for the nnU-Net comparison; at least 300)."""


@dataclass(frozen=True)
class Comparison:
    """One matched-parameter comparison: an AugLab module config and what is accepted."""

    key: str  # the AugLab module (its config key), with a suffix when one module is compared twice
    config: dict[str, Any]  # AugLab single-module config
    tolerance: float  # largest accepted max |diff| / std of AugLab's output
    intentional: str  # "exact" or why the difference is accepted
    region: str = "all"  # "all", "interior" (>= BORDER voxels from every face) or "border" (the rest)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("BrightnessTransform", {"brightness_range": [1.2, 1.2], "probability": 1.0}, 1e-5, "exact"),
    Comparison("ContrastTransform", {"contrast_range": [1.2, 1.2], "probability": 1.0}, 1e-4, "exact"),
    Comparison("GammaTransform", {"gamma_range": [1.3, 1.3], "retain_stats": True, "probability": 1.0}, 1e-4,
               "exact"),
    Comparison("InvGammaTransform", {"gamma_range": [1.3, 1.3], "retain_stats": True, "probability": 1.0}, 1e-4,
               "exact"),
    Comparison("InverseTransform", {"retain_stats": True, "probability": 1.0}, 1e-4, "exact"),
    Comparison("HistogramEqualizationTransform", {"retain_stats": True, "mix_prob": 0.0, "probability": 1.0}, 1e-3,
               "exact"),
    Comparison("ScharrTransform", {"kernel_type": "Scharr", "absolute": True, "retain_stats": False,
                                   "mix_prob": 0.0, "probability": 1.0}, 1e-5, "exact (unnormalised kernels)",
               "interior"),
    Comparison("ScharrTransform@border", {"kernel_type": "Scharr", "absolute": True, "retain_stats": False,
                                          "mix_prob": 0.0, "probability": 1.0}, 2.0,
               "yes: half-sample reflect padding (AugLab: torch 'reflect'); border voxels only", "border"),
    Comparison("FunctionTransform", {"retain_stats": True, "probability": 1.0}, 1e-3, "exact (all five functions)"),
    Comparison("SimulateLowResTransform", {"scale": [0.5, 0.5], "probability": 1.0}, 1e-3, "exact"),
    Comparison("FlipTransform", {"flip_axis": [0], "probability": 1.0}, 0.0, "exact"),
)
"""Every matched comparison, with its tolerance."""


@dataclass(frozen=True)
class AugLabMatch:
    """The measured difference of one comparison."""

    comparison: Comparison
    entries: str  # the spineaug entries the importer made
    difference: float  # max |diff| / std of the input; NaN when AugLab failed
    error: str  # AugLab's error, if its module failed

    @property
    def ok(self) -> bool:
        return not self.error and self.difference <= self.comparison.tolerance


def _entry_names(entries: list[dict[str, Any]]) -> str:
    return ", ".join(e["name"] + (f"({','.join(e['functions'])})" if "functions" in e else "") for e in entries)


def _translate(config: dict[str, Any]) -> list[dict[str, Any]]:
    """spineaug's entries for an AugLab config (the importer; its warnings are about keys AugLab ignores)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [e for e in auglab_to_config(config)["transforms"] if e["name"] != "Spatial"]


def _run_entries(entries: list[dict[str, Any]], image: torch.Tensor, label: torch.Tensor, seed: int = 0):
    aug = spineaug.Pipeline.from_config({"seed": seed, "transforms": entries})
    return aug(image, label)


def measure(draws: int = DRAWS, seed: int = 0) -> tuple[list[Rate], list[AugLabMatch], dict[str, Any]]:
    """Run AugLab once (its environment) and spineaug here; returns firing rates, matched outputs and the reply's
    versions. Raises :class:`~spineaug.baselines.BaselineUnavailable` without the AugLab environment."""
    image, label = volume(RATE_SHAPE, seed + 1)
    reply = probe(image[None].numpy(), label[None].numpy(), draws=draws, seed=seed,
                  matched={c.key: {c.key.split("@")[0]: c.config} for c in COMPARISONS})
    # AugLab's modules with p > 0 in container order <-> xdomain's entries after nnU-Net's spatial transform.
    entries = [e for e in preset_config("xdomain")["transforms"] if e["name"] != "Spatial"]
    used = [(m, n) for m, n in zip(reply["modules"], reply["fired"]) if n > 0 or m not in _NEVER_FIRING]
    if len(used) != len(entries):
        raise RuntimeError(f"AugLab's container has {len(used)} firing modules, xdomain {len(entries)} entries: "
                           f"{[m for m, _ in used]} vs {[e['name'] for e in entries]}")
    rates = []
    for i, ((module, fired), entry) in enumerate(zip(used, entries)):
        expected_module = MAPPING[entry["name"]][0].split("[")[0].split("(")[0].split(" ")[0]
        if module != expected_module:
            raise RuntimeError(f"entry {i} ({entry['name']}) lines up with AugLab's {module}, expected "
                               f"{expected_module}")
        out_img, out_lbl = run_entry(entry, image.expand(draws, *image.shape), label.expand(draws, *label.shape),
                                 seed + i)
        ours = (changed(out_img, image[None]) | changed(out_lbl, label[None])).float().mean()
        cls = spineaug.TRANSFORMS[entry["name"]]
        rates.append(Rate(entry["name"] + (f"({entry['functions'][0]})" if "functions" in entry else ""),
                          fired / draws, float(ours), draws, cls.firing_probability(entry)))
    matches = []
    for c in COMPARISONS:
        mine = _translate({c.key.split("@")[0]: c.config})
        theirs = reply["matched"][c.key]
        if isinstance(theirs, str):
            matches.append(AugLabMatch(c, _entry_names(mine), float("nan"), theirs))
            continue
        ours_img, _ = _run_entries(mine, image[None], label[None], seed)
        ref = torch.from_numpy(theirs).float()
        d = (ref - ours_img.float()).abs()[0, 0]
        inner = torch.zeros_like(d, dtype=torch.bool)
        inner[BORDER:-BORDER, BORDER:-BORDER, BORDER:-BORDER] = True
        d = {"all": d, "interior": d[inner], "border": d[~inner]}[c.region]
        diff = float(d.max() / ref.std())
        matches.append(AugLabMatch(c, _entry_names(mine), diff, ""))
    return rates, matches, reply


_NEVER_FIRING = frozenset({"RandomAffine3DCustom", "RandomClampGPU", "ZscoreNormalizationGPU"})
"""AugLab modules at probability 0 in the paper's config (left out by the importer, so absent from ``xdomain``)."""


__all__ = ["COMPARISONS", "DRAWS", "AugLabMatch", "Comparison", "measure"]
