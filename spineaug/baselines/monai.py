"""MONAI baseline: MONAI's dictionary random transforms (``Rand*d``), per sample, on the CPU or on CUDA.

MONAI's array transforms take one channel-first sample, so :func:`build` loops over the batch as a MONAI
``DataLoader`` would. Tensors stay on the input's device: on CUDA, MONAI's torch backends run there (a few
transforms still draw on the host with NumPy, which is MONAI's design). Transforms without a MONAI counterpart are
left out and listed in the mapping.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from spineaug.baselines._common import (
    Baseline,
    MappingRow,
    import_or_unavailable,
    mapping_rows,
    num,
    pair,
    preset_entries,
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


def _transform(mt: Any, entry: dict[str, Any]) -> list[Any]:
    name, p = entry["name"], float(num(entry, "p", 1.0))
    keys, img = ("image", "label"), "image"
    if name == "Spatial":
        out = []
        p_rot, p_scale = float(num(entry, "p_rotation", 0.0)), float(num(entry, "p_scale", 0.0))
        if p_rot or p_scale:
            deg = max(abs(v) for v in pair(entry.get("rotation_deg"), (-30.0, 30.0)))
            lo, hi = num(entry, "scale", (0.7, 1.4))
            out.append(mt.RandAffined(keys, prob=p * (1 - (1 - p_rot) * (1 - p_scale)),
                                      rotate_range=(math.radians(deg),) * 3 if p_rot else None,
                                      scale_range=((lo - 1, hi - 1),) * 3 if p_scale else None,
                                      mode=("bilinear", "nearest"), padding_mode="zeros"))
        if float(num(entry, "p_elastic", 0.0)):
            out.append(mt.Rand3DElasticd(keys, sigma_range=(5, 8), magnitude_range=(0, 4),
                                         prob=p * float(entry["p_elastic"]), mode=("bilinear", "nearest")))
        return out
    if name == "Affine":
        deg = max(abs(v) for v in pair(entry.get("degrees"), (-5.0, 5.0)))
        lo, hi = num(entry, "scale", (0.7, 1.4))
        return [mt.RandAffined(keys, prob=p, rotate_range=(math.radians(deg),) * 3, scale_range=((lo - 1, hi - 1),) * 3,
                               mode=("bilinear", "nearest"), padding_mode="zeros")]
    if name == "Flip":
        return [mt.RandFlipd(keys, prob=p, spatial_axis=a) for a in num(entry, "axes", (0,))]
    if name == "GaussianNoise":
        return [mt.RandGaussianNoised(img, prob=p, std=float(pair(entry.get("sigma"), (0.0, 0.1))[1]), sample_std=True)]
    if name == "GaussianBlur":
        lo, hi = pair(entry.get("sigma"), (0.5, 1.0))
        s = (max(lo, 0.1), max(hi, 0.1))  # MONAI needs sigma > 0
        return [mt.RandGaussianSmoothd(img, sigma_x=s, sigma_y=s, sigma_z=s, prob=p)]
    if name == "Brightness":
        lo, hi = pair(entry.get("multiplier"), (0.75, 1.25))
        return [mt.RandScaleIntensityd(img, factors=(lo - 1, hi - 1), prob=p)]
    if name == "Contrast":
        lo, hi = pair(entry.get("contrast"), (0.75, 1.25))
        return [mt.RandScaleIntensityFixedMeand(img, factors=(lo - 1, hi - 1), preserve_range=True, prob=p)]
    if name in ("Gamma", "InverseGamma"):
        lo, hi = pair(entry.get("gamma"), (0.7, 1.5))
        return [mt.RandAdjustContrastd(img, gamma=(lo, hi), prob=p, invert_image=name == "InverseGamma",
                                       retain_stats=True)]
    if name == "LowResolution":
        return [mt.RandSimulateLowResolutiond(img, prob=p, zoom_range=(0.5, 1.0))]
    if name == "BiasField":
        return [mt.RandBiasFieldd(img, degree=3, coeff_range=(0.0, 0.2), prob=p)]
    if name == "UnsharpMask":
        return [mt.RandGaussianSharpend(img, prob=p)]
    if name == "HistogramEqualization":
        return [mt.RandHistogramShiftd(img, prob=p)]
    if name == "ZScore":
        return [mt.NormalizeIntensityd(img)]
    return []


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The closest MONAI pipeline, as a batched call (per-sample loop inside); runs on the input's device."""
    rows = mapping(pipeline)
    mt = import_or_unavailable("monai.transforms", "install monai (pip install monai)")
    from importlib.metadata import version

    compose = mt.Compose([t for entry in preset_entries(pipeline) for t in _transform(mt, entry)])
    compose.set_random_state(seed=seed)

    def fn(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for b in range(image.shape[0]):
            out = compose({"image": image[b], "label": label[b]})
            images.append(torch.as_tensor(out["image"]))
            labels.append(torch.as_tensor(out["label"]))
        return torch.stack(images), torch.stack(labels)

    return Baseline(LIBRARY, pipeline, "partial", fn, rows, ("cpu", "cuda"), version("monai"))
