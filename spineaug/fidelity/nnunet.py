"""Fidelity of the ``nnunet`` preset to nnU-Net v2's own augmentation (batchgeneratorsv2), measured, not asserted.

Two kinds of evidence, both computed on a small seeded synthetic volume (smooth random intensities, four labels):

* **Matched parameters**: one nnU-Net transform with a fixed parameter value (a constant where nnU-Net takes a
  range, a callable where it draws per axis) and the spineaug entry with the same value (a ``[v, v]`` range,
  ``p = 1``) on the same input; the difference of the outputs.
* **Firing rates**: each transform of the pipeline that ``nnUNetTrainer.get_training_transforms`` builds
  (:func:`spineaug.baselines.batchgenerators.nnunet_transforms`), applied alone ``draws`` times, against the
  matching entry of the ``nnunet`` preset on ``draws`` samples; a sample "fired" when its output differs from its
  input. The rates are compared with a two-proportion z-score.

:mod:`spineaug.fidelity.runner` writes these measurements to result files (``spineaug fidelity``), which
:mod:`spineaug.report.fidelity` renders; ``tests/test_fidelity.py`` checks the same numbers against
:data:`TOLERANCES`. Needs ``batchgeneratorsv2`` and ``nnunetv2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

import spineaug
from spineaug import _schema
from spineaug.baselines.batchgenerators import nnunet_transforms
from spineaug.config import preset_config
from spineaug.functional import spatial as FS

MATCH_SHAPE = (32, 32, 32)
RATE_SHAPE = (24, 24, 24)
SPATIAL_ANGLES_DEG = (20.0, -15.0, 25.0)
SPATIAL_SCALE = 1.2
BORDER = 4
"""Voxels from the border that count as "border" for the blur (nnU-Net's widest kernel reaches 3)."""

TOLERANCES: dict[str, float] = {
    "Gamma": 1e-4,
    "InverseGamma": 1e-4,
    "Brightness": 1e-5,
    "Contrast": 1e-5,
    "GaussianNoise": 0.03,  # relative error of the residual std (sampling error of 32^3 draws is ~0.4 %)
    "GaussianBlur": 0.03,  # interior; kernel support ceil(3 sigma) vs nnU-Net's round-to-odd(6 sigma + 0.5)
    "GaussianBlur@border": 0.15,  # border voxels; half-sample vs whole-sample reflection
    "LowResolution": 1e-4,
    "Spatial": 1e-3,  # image; same matrix, same grid, both trilinear with zero padding
    "Spatial@label": 0.05,  # fraction of voxels whose label differs: nearest (ours) vs one-hot linear + argmax
    "Spatial@label-onehot": 0.005,  # the same with Spatial(label_interpolation="onehot")
    "Flip": 0.0,
}
"""Largest accepted difference per comparison; image differences are relative to the input's std."""

RATE_SIGMAS = _schema.FIDELITY_RATE_SIGMAS
"""Firing rates agree when the two-proportion z-score is below this."""


@dataclass(frozen=True)
class Match:
    """One matched-parameter comparison."""

    entry: str  # key of TOLERANCES
    parameter: str
    reference: str  # what nnU-Net does
    ours: str  # what spineaug does
    difference: float
    metric: str
    intentional: str  # "exact", or why the difference is accepted

    @property
    def tolerance(self) -> float:
        return TOLERANCES[self.entry]


@dataclass(frozen=True)
class Rate:
    """Firing rate of one entry in both libraries."""

    entry: str
    reference: float
    ours: float
    draws: int
    expected: float  # the preset's own firing probability

    @property
    def z(self) -> float:
        p = (self.reference + self.ours) / 2
        se = math.sqrt(max(p * (1 - p), 1e-12) * 2 / self.draws)
        return (self.ours - self.reference) / se


def volume(shape: tuple[int, int, int] = MATCH_SHAPE, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A smooth random image (C=1, z-scored, float32) and a 4-label map (C=1, int64), without a batch axis."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 1, *[max(2, s // 6) for s in shape], generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear", align_corners=False)[0]
    image = smooth + 0.1 * torch.randn(1, *shape, generator=g)
    image = (image - image.mean()) / image.std()
    label = torch.bucketize(smooth, torch.tensor([-0.5, 0.2, 0.8]))
    return image.float(), label.long()


def run_entry(entry: dict[str, Any], image: Tensor, label: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """One config entry as a seeded one-entry pipeline on ``(image, label)``."""
    aug = spineaug.Pipeline.from_config({"seed": seed, "transforms": [entry]})
    return aug(image, label)


def _rel(a: Tensor, b: Tensor, ref: Tensor, region: Tensor | None = None) -> float:
    d = (a.float() - b.float()).abs()
    if region is not None:
        d = d[..., region]
    return float(d.max() / ref.float().std())


def rotation_order_difference_deg(angles_deg: tuple[float, float, float] = SPATIAL_ANGLES_DEG) -> float:
    """Angle (degrees) of the rotation between spineaug's old order (``R_d R_h R_w``) and nnU-Net's."""
    a = FS.degrees_to_radians(torch.tensor([angles_deg], dtype=torch.float64))
    r = FS.rotation_matrix(a, order="w_first")[0].T @ FS.rotation_matrix(a, order="d_first")[0]
    return math.degrees(math.acos(max(-1.0, min(1.0, (float(torch.trace(r)) - 1) / 2))))


def matched(seed: int = 0) -> list[Match]:
    """Every matched-parameter comparison (see the module docstring)."""
    # optional: batchgeneratorsv2 (nnunet extra)
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

    image, label = volume(MATCH_SHAPE, seed)
    img_b, lbl_b = image[None], label[None]
    out: list[Match] = []

    def ref(t: Any, **params: Any) -> dict[str, Tensor]:
        data = {"image": image.clone(), "segmentation": label.clone()}
        torch.manual_seed(seed)
        return t.apply(data, **params) if params else t(**data)

    for g in (0.7, 1.5):
        for inv, name in ((0, "Gamma"), (1, "InverseGamma")):
            r = ref(GammaTransform(gamma=g, p_invert_image=inv, synchronize_channels=False, p_per_channel=1,
                                   p_retain_stats=1))["image"]
            o, _ = run_entry({"name": name, "p": 1.0, "gamma": [g, g], "retain_stats": True}, img_b, lbl_b)
            out.append(Match(name, f"gamma {g}", "GammaTransform, retain stats" + (", inverted" if inv else ""),
                             "same formula, batched", _rel(o[0], r, image), "max |diff| / std", "exact"))
    for m in (0.75, 1.25):
        r = ref(MultiplicativeBrightnessTransform(multiplier_range=m, synchronize_channels=False))["image"]
        o, _ = run_entry({"name": "Brightness", "p": 1.0, "multiplier": [m, m]}, img_b, lbl_b)
        out.append(Match("Brightness", f"x {m}", "multiply", "multiply", _rel(o[0], r, image), "max |diff| / std",
                         "exact"))
    for c in (0.75, 1.25):
        r = ref(ContrastTransform(contrast_range=c, preserve_range=True, synchronize_channels=False))["image"]
        o, _ = run_entry({"name": "Contrast", "p": 1.0, "contrast": [c, c], "preserve_range": True}, img_b, lbl_b)
        out.append(Match("Contrast", f"factor {c}", "about the mean, clipped to input range", "same",
                         _rel(o[0], r, image), "max |diff| / std", "exact"))
    sigma = 0.05
    r = ref(GaussianNoiseTransform(noise_variance=sigma, p_per_channel=1, synchronize_channels=True))["image"]
    o, _ = run_entry({"name": "GaussianNoise", "p": 1.0, "sigma": [sigma, sigma]}, img_b, lbl_b)
    std_r, std_o = float((r - image).std()), float((o[0] - image).std())
    out.append(Match("GaussianNoise", f"sigma {sigma}", f"N(0, sigma^2), residual std {std_r:.4f}",
                     f"residual std {std_o:.4f}", abs(std_o - std_r) / sigma, "|std diff| / sigma",
                     "different random fields (same distribution)"))
    inner = torch.zeros(MATCH_SHAPE, dtype=torch.bool)
    inner[BORDER:-BORDER, BORDER:-BORDER, BORDER:-BORDER] = True
    worst_in = worst_border = 0.0
    for s in (0.5, 0.75, 1.0):
        r = ref(GaussianBlurTransform(blur_sigma=s, synchronize_channels=False, synchronize_axes=False,
                                      p_per_channel=1))["image"]
        o, _ = run_entry({"name": "GaussianBlur", "p": 1.0, "sigma": [s, s], "per_axis": True}, img_b, lbl_b)
        worst_in = max(worst_in, _rel(o[0], r, image, inner))
        worst_border = max(worst_border, _rel(o[0], r, image, ~inner))
    kernel = "kernel radius ceil(3 sigma)"
    out.append(Match("GaussianBlur", "sigma 0.5, 0.75, 1", "radius (odd(6 sigma + 0.5) - 1) / 2", kernel, worst_in,
                     f"max |diff| / std, >= {BORDER} voxels from the border",
                     "yes: kernel support differs by <= 1 tap (tails ~1 % of the peak)"))
    out.append(Match("GaussianBlur@border", "sigma 0.5, 0.75, 1", "torch 'reflect' pad (c b | a b c, edge once)",
                     "half-sample reflect (b a | a b c, edge twice)", worst_border,
                     f"max |diff| / std, < {BORDER} voxels from the border",
                     "yes: defined for any axis length; border voxels only"))
    for s in (0.5, 0.75):
        r = ref(SimulateLowResolutionTransform(scale=s, synchronize_channels=False, synchronize_axes=True,
                                               ignore_axes=None, p_per_channel=1))["image"]
        o, _ = run_entry({"name": "LowResolution", "p": 1.0, "scale": [s, s], "per_axis": False, "down": "nearest",
                      "up": "linear"}, img_b, lbl_b)
        out.append(Match("LowResolution", f"scale {s}", "nearest-exact down, trilinear up", "same",
                         _rel(o[0], r, image), "max |diff| / std", "exact"))
    angles = [math.radians(a) for a in SPATIAL_ANGLES_DEG]
    spatial = SpatialTransform(MATCH_SHAPE, 0, random_crop=False, p_rotation=1,
                               rotation=lambda image, dim: angles[dim], p_scaling=1, scaling=SPATIAL_SCALE,
                               p_synchronize_scaling_across_axes=1, border_mode_seg="constant", padding_value_seg=-1)
    res = ref(spatial)
    r_img, r_lbl = res["image"], res["segmentation"].clamp_min(0)  # nnU-Net's RemoveLabelTansform(-1, 0)
    o, o_lbl = run_entry({"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [[a, a] for a in SPATIAL_ANGLES_DEG],
                      "p_scale": 1.0, "scale": [SPATIAL_SCALE, SPATIAL_SCALE], "pad_mode": "constant",
                      "pad_value": 0.0, "label_pad": 0}, img_b, lbl_b)
    what = f"angles {SPATIAL_ANGLES_DEG} deg, scale {SPATIAL_SCALE}"
    out.append(Match("Spatial", what, "Rz Ry Rx S, trilinear, zero pad", "same matrix (rotation about D first)",
                     _rel(o[0], r_img, image), "max |diff| / std",
                     f"exact (the old order R_d R_h R_w differed by {rotation_order_difference_deg():.1f} deg)"))
    out.append(Match("Spatial@label", what, "one-hot linear + argmax", "nearest neighbour",
                     float((o_lbl[0] != r_lbl).float().mean()), "fraction of voxels with another label",
                     "yes: default stays nearest (labels never invented)"))
    _, o_hot = run_entry({"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [[a, a] for a in SPATIAL_ANGLES_DEG],
                      "p_scale": 1.0, "scale": [SPATIAL_SCALE, SPATIAL_SCALE], "pad_mode": "constant",
                      "pad_value": 0.0, "label_pad": 0, "label_interpolation": "onehot"}, img_b, lbl_b)
    out.append(Match("Spatial@label-onehot", what, "one-hot linear + argmax", "label_interpolation onehot",
                     float((o_hot[0] != r_lbl).float().mean()), "fraction of voxels with another label",
                     "option for parity: ties may break differently"))
    r = ref(MirrorTransform((0, 1, 2)), axes=[0, 1, 2])
    o, o_lbl = run_entry({"name": "Flip", "p": 1.0, "axes": [0, 1, 2]}, img_b, lbl_b)
    flip_diff = max(_rel(o[0], r["image"], image), float((o_lbl[0] != r["segmentation"]).float().mean()))
    out.append(Match("Flip", "axes 0, 1, 2", "torch.flip", "exact index path", flip_diff,
                     "max |diff| (image and label)", "exact"))
    return out


# nnU-Net pipeline position (get_training_transforms, 3-D, no cascade) -> nnunet preset entry name.
_REFERENCE_ORDER = ["Spatial", "GaussianNoise", "GaussianBlur", "Brightness", "Contrast", "LowResolution",
                    "InverseGamma", "Gamma", "Flip"]


def changed(a: Tensor, b: Tensor) -> Tensor:
    """Per sample: whether ``a`` differs anywhere from ``b`` (broadcast over the batch)."""
    return (a != b).flatten(1).any(1)


def rates(draws: int = 400, seed: int = 0) -> list[Rate]:
    """Per-entry firing rates of nnU-Net's pipeline and of the ``nnunet`` preset over ``draws`` samples each."""
    image, label = volume(RATE_SHAPE, seed + 1)
    reference = nnunet_transforms(RATE_SHAPE).transforms[: len(_REFERENCE_ORDER)]
    entries = {e["name"]: e for e in preset_config("nnunet")["transforms"]}
    np.random.seed(seed)
    torch.manual_seed(seed)
    out = []
    for i, (name, t) in enumerate(zip(_REFERENCE_ORDER, reference)):
        fired = 0
        for _ in range(draws):
            res = t(image=image.clone(), segmentation=label.clone())
            fired += bool(changed(res["image"][None], image[None])[0] or not torch.equal(res["segmentation"], label))
        cls = spineaug.TRANSFORMS[name]
        o_img, o_lbl = run_entry(entries[name], image.expand(draws, *image.shape), label.expand(draws, *label.shape),
                             seed + i)  # one stream per entry, as in a pipeline
        ours = (changed(o_img, image[None]) | changed(o_lbl, label[None])).float().mean()
        out.append(Rate(name, fired / draws, float(ours), draws, cls.firing_probability(entries[name])))
    return out


@dataclass(frozen=True)
class SigmaStats:
    """Realised noise std over many firings of nnU-Net's and spineaug's Gaussian noise (range ``U(0, 0.1)``)."""

    reference_mean: float
    ours_mean: float
    reference_sd: float
    ours_sd: float
    draws: int

    @property
    def z(self) -> float:
        se = math.sqrt((self.reference_sd**2 + self.ours_sd**2) / self.draws)
        return (self.ours_mean - self.reference_mean) / max(se, 1e-12)


def noise_sigma(draws: int = 400, seed: int = 0) -> SigmaStats:
    """The std of ``output - input`` for ``draws`` firings of each library's noise, with nnU-Net's sigma range."""
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform  # optional: nnunet extra

    image, label = volume(RATE_SHAPE, seed + 2)
    entry = next(e for e in preset_config("nnunet")["transforms"] if e["name"] == "GaussianNoise")
    t = GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True)  # nnU-Net's
    torch.manual_seed(seed)
    ref = torch.stack([float((t(image=image.clone())["image"] - image).std()) * torch.ones(()) for _ in range(draws)])
    o, _ = run_entry({**entry, "p": 1.0}, image.expand(draws, *image.shape), label.expand(draws, *label.shape), seed)
    ours = (o - image[None]).flatten(1).std(1)
    return SigmaStats(float(ref.mean()), float(ours.mean()), float(ref.std()), float(ours.std()), draws)
