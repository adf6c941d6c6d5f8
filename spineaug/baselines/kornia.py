"""kornia.augmentation baseline: kornia's batched 3-D augmentations, on the CPU or on CUDA.

kornia is batch-first with per-sample parameters, like spineaug, but its 3-D module set is small: affine,
rotation, flips, crop, perspective, equalisation and motion blur. Everything else in a preset is left out and
listed in the mapping. Labels follow the image by replaying each geometric module's parameters on a twin module
with nearest-neighbour resampling; each geometric module resamples separately (kornia does not fuse them).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import torch
from torch import Tensor

from spineaug.baselines._common import (
    Baseline,
    MappingRow,
    Translator,
    affine_probability,
    import_or_unavailable,
    largest_angle,
    mapping_rows,
    translate,
)
from spineaug.transforms import (
    RandomAffine,
    RandomFlip,
    RandomHistogramEqualization,
    RandomSpatial,
)

LIBRARY = "kornia"

MAPPING: dict[str, tuple[str | None, str]] = {
    "Spatial": ("RandomAffine3D", "rotation + isotropic scaling in one module, p = 1-(1-p_rot)(1-p_scale); "
                "no elastic, no crop"),
    "Affine": ("RandomAffine3D", "rotation, translation, scaling, shear"),
    "Flip": ("RandomDepthicalFlip3D / RandomVerticalFlip3D / RandomHorizontalFlip3D", "one module per axis"),
    "HistogramEqualization": ("RandomEqualize3D", "plain equalisation of per-sample min-max-scaled intensities, scaled "
                              "back; no mixing or retain_stats"),
}
NOTE_MISSING = "no kornia 3-D augmentation; left out"


def mapping(pipeline: str) -> list[MappingRow]:
    """One row per transform of the preset: the kornia 3-D module used for it, if any."""
    return mapping_rows(pipeline, MAPPING, NOTE_MISSING)


class _UnitRange(torch.nn.Module):
    """Run a kornia module that accepts only [0, 1] intensities (``RandomEqualize3D``) on any image: per-sample
    min-max to [0, 1] and back, as spineaug's histogram equalisation works on min-max-normalised intensities."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        lo = x.amin(dim=(1, 2, 3, 4), keepdim=True)
        span = (x.amax(dim=(1, 2, 3, 4), keepdim=True) - lo).clamp_min(1e-8)
        return self.module((x - lo) / span) * span + lo


def _affine_pair(K: Any, degrees: float, scale: tuple[float, float], p: float) -> list[tuple[Any, Any | None]]:
    kw = dict(degrees=degrees, scale=tuple(scale), p=p, align_corners=False)
    return [(K.RandomAffine3D(**kw, resample="bilinear"), K.RandomAffine3D(**kw, resample="nearest"))]


def _spatial(K: Any, t: RandomSpatial) -> list[tuple[Any, Any | None]]:
    prob = affine_probability(t)
    return _affine_pair(K, largest_angle(t), t.scale, prob) if prob else []


def _flip(K: Any, t: RandomFlip) -> list[tuple[Any, Any | None]]:
    cls = {0: K.RandomDepthicalFlip3D, 1: K.RandomVerticalFlip3D, 2: K.RandomHorizontalFlip3D}
    return [(cls[a](p=t.p), cls[a](p=t.p)) for a in t.axes]


TRANSLATORS: dict[type, Translator] = {
    RandomSpatial: _spatial,
    RandomAffine: lambda K, t: _affine_pair(K, largest_angle(t), t.scale, t.p),
    RandomFlip: _flip,
    RandomHistogramEqualization: lambda K, t: [(_UnitRange(K.RandomEqualize3D(p=t.p)), None)],
}
"""``(image module, label twin or None)`` pairs for each spineaug transform class (others are left out)."""


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The closest kornia.augmentation pipeline, as a batched call on the input's device."""
    rows = mapping(pipeline)
    K = import_or_unavailable("kornia.augmentation", "install kornia (pip install kornia)")

    pairs = translate(pipeline, K, TRANSLATORS)
    for img_mod, lbl_mod in pairs:
        img_mod.to(device)
        if lbl_mod is not None:
            lbl_mod.to(device)
    torch.manual_seed(seed)  # kornia draws from the global torch RNG

    def fn(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        x, y = image, label.to(image.dtype)
        for img_mod, lbl_mod in pairs:
            x = img_mod(x)
            if lbl_mod is not None:
                y = lbl_mod(y, params=img_mod._params)
        return x, y.round().to(label.dtype)

    return Baseline(LIBRARY, pipeline, "partial", fn, rows, ("cpu", "cuda"), version("kornia"))
