"""MONAI baseline: MONAI's dictionary random transforms (``Rand*d``), per sample, on the CPU or on CUDA.

MONAI's array transforms take one channel-first sample, so :func:`build` loops over the batch as a MONAI
``DataLoader`` would. Tensors stay on the input's device: on CUDA, MONAI's torch backends run there (a few
transforms still draw on the host with NumPy, which is MONAI's design). Transforms without a MONAI counterpart are
left out and listed in the mapping.
"""

from __future__ import annotations

import math
from importlib.metadata import version
from typing import Any

import torch
from torch import Tensor

from spineaug.baselines._common import (
    Baseline,
    MappingRow,
    Translator,
    affine_probability,
    elastic_probability,
    import_or_unavailable,
    largest_angle,
    mapping_rows,
    pair,
    translate,
)
from spineaug.transforms import (
    RandomAffine,
    RandomBiasField,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomGamma,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomHistogramEqualization,
    RandomInverseGamma,
    RandomLowResolution,
    RandomSpatial,
    RandomUnsharpMask,
    RandomZScore,
)

LIBRARY = "monai"

MAPPING: dict[str, tuple[str | None, str]] = {
    "Spatial": ("RandAffined (+ Rand3DElasticd)", "one RandAffined for rotation and scaling; elastic, when on, is a "
                "second resampling (no crop: patch = input size)"),
    "Affine": ("RandAffined", "separate resampling"),
    "Flip": ("RandFlipd", "one RandFlipd per axis"),
    "GaussianNoise": ("RandGaussianNoised", "std U(0, s)"),
    "GaussianBlur": ("RandGaussianSmoothd", "sigma per axis"),
    "Brightness": ("RandScaleIntensityd", "x * (1 + U(-f, f))"),
    "Contrast": ("RandScaleIntensityFixedMeand", "about the mean, preserve_range"),
    "Gamma": ("RandAdjustContrastd", "retain_stats"),
    "InverseGamma": ("RandAdjustContrastd(invert_image=True)", "retain_stats"),
    "LowResolution": ("RandSimulateLowResolutiond", "zoom_range"),
    "BiasField": ("RandBiasFieldd", "degree 3"),
    "UnsharpMask": ("RandGaussianSharpend", "MONAI's sharpening (two blurs), close to unsharp masking"),
    "HistogramEqualization": ("RandHistogramShiftd", "random histogram shift, not equalisation (approximate)"),
    "ZScore": ("NormalizeIntensityd", "deterministic"),
}
NOTE_MISSING = "no MONAI transform; left out"


def mapping(pipeline: str) -> list[MappingRow]:
    """One row per transform of the preset: the MONAI transform used for it, if any."""
    return mapping_rows(pipeline, MAPPING, NOTE_MISSING)


KEYS, IMAGE = ("image", "label"), "image"


def _spatial(mt: Any, t: RandomSpatial) -> list[Any]:
    out = []
    if t.p_rotation or t.p_scale:
        lo, hi = t.scale
        out.append(mt.RandAffined(KEYS, prob=affine_probability(t),
                                  rotate_range=(math.radians(largest_angle(t)),) * 3 if t.p_rotation else None,
                                  scale_range=((lo - 1, hi - 1),) * 3 if t.p_scale else None,
                                  mode=("bilinear", "nearest"), padding_mode="zeros"))  # fmt: skip
    if t.p_elastic:
        out.append(mt.Rand3DElasticd(KEYS, sigma_range=(5, 8), magnitude_range=(0, 4), prob=elastic_probability(t),
                                     mode=("bilinear", "nearest")))  # fmt: skip
    return out


def _affine(mt: Any, t: RandomAffine) -> list[Any]:
    lo, hi = t.scale
    return [mt.RandAffined(KEYS, prob=t.p, rotate_range=(math.radians(largest_angle(t)),) * 3,
                           scale_range=((lo - 1, hi - 1),) * 3, mode=("bilinear", "nearest"), padding_mode="zeros")]


def _flip(mt: Any, t: RandomFlip) -> list[Any]:
    return [mt.RandFlipd(KEYS, prob=t.p, spatial_axis=a) for a in t.axes]


def _noise(mt: Any, t: RandomGaussianNoise) -> list[Any]:
    return [mt.RandGaussianNoised(IMAGE, prob=t.p, std=float(pair(t.config()["sigma"])[1]), sample_std=True)]


def _blur(mt: Any, t: RandomGaussianBlur) -> list[Any]:
    lo, hi = pair(t.config()["sigma"])
    s = (max(lo, 0.1), max(hi, 0.1))  # MONAI needs sigma > 0
    return [mt.RandGaussianSmoothd(IMAGE, sigma_x=s, sigma_y=s, sigma_z=s, prob=t.p)]


def _brightness(mt: Any, t: RandomBrightness) -> list[Any]:
    lo, hi = pair(t.config()["multiplier"])
    return [mt.RandScaleIntensityd(IMAGE, factors=(lo - 1, hi - 1), prob=t.p)]


def _contrast(mt: Any, t: RandomContrast) -> list[Any]:
    lo, hi = pair(t.config()["contrast"])
    return [mt.RandScaleIntensityFixedMeand(IMAGE, factors=(lo - 1, hi - 1), preserve_range=True, prob=t.p)]


def _gamma(mt: Any, t: RandomGamma) -> list[Any]:
    lo, hi = pair(t.config()["gamma"])
    return [mt.RandAdjustContrastd(IMAGE, gamma=(lo, hi), prob=t.p, invert_image=isinstance(t, RandomInverseGamma),
                                   retain_stats=True)]  # fmt: skip


TRANSLATORS: dict[type, Translator] = {
    RandomSpatial: _spatial,
    RandomAffine: _affine,
    RandomFlip: _flip,
    RandomGaussianNoise: _noise,
    RandomGaussianBlur: _blur,
    RandomBrightness: _brightness,
    RandomContrast: _contrast,
    RandomGamma: _gamma,
    RandomInverseGamma: _gamma,
    RandomLowResolution: lambda mt, t: [mt.RandSimulateLowResolutiond(IMAGE, prob=t.p, zoom_range=(0.5, 1.0))],
    RandomBiasField: lambda mt, t: [mt.RandBiasFieldd(IMAGE, degree=3, coeff_range=(0.0, 0.2), prob=t.p)],
    RandomUnsharpMask: lambda mt, t: [mt.RandGaussianSharpend(IMAGE, prob=t.p)],
    RandomHistogramEqualization: lambda mt, t: [mt.RandHistogramShiftd(IMAGE, prob=t.p)],
    RandomZScore: lambda mt, t: [mt.NormalizeIntensityd(IMAGE)],
}
"""The MONAI transforms for each spineaug transform class (classes without one are left out, see ``MAPPING``)."""


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The closest MONAI pipeline, as a batched call (per-sample loop inside); runs on the input's device."""
    rows = mapping(pipeline)
    mt = import_or_unavailable("monai.transforms", "install monai (pip install monai)")

    compose = mt.Compose(translate(pipeline, mt, TRANSLATORS))
    compose.set_random_state(seed=seed)

    def fn(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for b in range(image.shape[0]):
            out = compose({"image": image[b], "label": label[b]})
            images.append(torch.as_tensor(out["image"]))
            labels.append(torch.as_tensor(out["label"]))
        return torch.stack(images), torch.stack(labels)

    return Baseline(LIBRARY, pipeline, "partial", fn, rows, ("cpu", "cuda"), version("monai"))
