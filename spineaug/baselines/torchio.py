"""TorchIO baseline: the closest TorchIO pipeline to a spineaug preset, applied per sample on the CPU.

TorchIO works on one ``Subject`` at a time (a ``ScalarImage`` and a ``LabelMap``), so :func:`build` loops over the
batch, as a TorchIO ``DataLoader`` worker would. Transforms without a TorchIO counterpart are left out and listed in
the mapping (``equivalent=None``), so the TorchIO pipeline does *less* work than the spineaug preset it stands for.
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

LIBRARY = "torchio"

MAPPING: dict[str, tuple[str | None, str]] = {
    "Spatial": ("RandomAffine (+ RandomElasticDeformation)", "rotation and scaling in one RandomAffine with "
                "p = 1-(1-p_rot)(1-p_scale); elastic, when on, is a second resampling"),
    "Affine": ("RandomAffine", "separate resampling (TorchIO does not fuse spatial transforms)"),
    "Flip": ("RandomFlip", "per-axis flip probability"),
    "GaussianNoise": ("RandomNoise", "std U(0, s)"),
    "GaussianBlur": ("RandomBlur", "std in voxels per axis"),
    "Gamma": ("RandomGamma", "log-gamma range; raw intensities (no min-max normalisation, no retain_stats)"),
    "LowResolution": ("RandomAnisotropy", "one random axis per call, not all three"),
    "ThickSlice": ("RandomAnisotropy", "downsample + upsample along one axis"),
    "BiasField": ("RandomBiasField", "order 3 polynomial, exp"),
    "ZScore": ("ZNormalization", "deterministic"),
    "LabelAppearance": ("RandomLabelsToImage", "new image from the label map"),
}
NOTE_MISSING = "no TorchIO transform; left out"


def mapping(pipeline: str) -> list[MappingRow]:
    """One row per transform of the preset: the TorchIO transform used for it, if any."""
    return mapping_rows(pipeline, MAPPING, NOTE_MISSING)


def _transform(tio: Any, entry: dict[str, Any]) -> list[Any]:
    name, p = entry["name"], float(num(entry, "p", 1.0))
    if name == "Spatial":
        out = []
        p_rot, p_scale = float(num(entry, "p_rotation", 0.0)), float(num(entry, "p_scale", 0.0))
        if p_rot or p_scale:
            deg = pair(entry.get("rotation_deg"), (-30.0, 30.0)) if p_rot else (0.0, 0.0)
            scales = tuple(num(entry, "scale", (0.7, 1.4))) if p_scale else (1.0, 1.0)
            out.append(tio.RandomAffine(scales=scales, degrees=deg, p=p * (1 - (1 - p_rot) * (1 - p_scale))))
        if float(num(entry, "p_elastic", 0.0)):
            out.append(tio.RandomElasticDeformation(p=p * float(entry["p_elastic"])))
        return out
    if name == "Affine":
        return [tio.RandomAffine(scales=tuple(num(entry, "scale", (0.7, 1.4))),
                                 degrees=pair(entry.get("degrees"), (-5.0, 5.0)), p=p)]
    if name == "Flip":
        axes = tuple(num(entry, "axes", (0,)))
        return [tio.RandomFlip(axes=axes, flip_probability=p)]
    if name == "GaussianNoise":
        return [tio.RandomNoise(std=(0.0, float(pair(entry.get("sigma"), (0.0, 0.1))[1])), p=p)]
    if name == "GaussianBlur":
        return [tio.RandomBlur(std=tuple(abs(v) for v in pair(entry.get("sigma"), (0.5, 1.0))), p=p)]
    if name == "Gamma":
        lo, hi = pair(entry.get("gamma"), (0.7, 1.5))
        return [tio.RandomGamma(log_gamma=(math.log(max(lo, 1e-3)), math.log(hi)), p=p)]
    if name in ("LowResolution", "ThickSlice"):
        return [tio.RandomAnisotropy(axes=(0, 1, 2), downsampling=(1.0, 2.0), p=p)]
    if name == "BiasField":
        return [tio.RandomBiasField(coefficients=0.2, order=3, p=p)]
    if name == "ZScore":
        return [tio.ZNormalization(p=p)]
    if name == "LabelAppearance":
        return [tio.RandomLabelsToImage(label_key="label", image_key="image", p=p)]
    return []


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The closest TorchIO pipeline, as a batched call (per-subject loop inside)."""
    rows = mapping(pipeline)
    tio = import_or_unavailable("torchio", "install torchio (pip install torchio)")
    from importlib.metadata import version

    transforms = [t for entry in preset_entries(pipeline) for t in _transform(tio, entry)]
    compose = tio.Compose(transforms)
    torch.manual_seed(seed)  # TorchIO draws from the global torch RNG

    def fn(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for b in range(image.shape[0]):
            subject = tio.Subject(image=tio.ScalarImage(tensor=image[b]), label=tio.LabelMap(tensor=label[b]))
            out = compose(subject)
            images.append(out["image"].data)
            labels.append(out["label"].data)
        return torch.stack(images), torch.stack(labels)

    return Baseline(LIBRARY, pipeline, "partial", fn, rows, ("cpu",), version("torchio"))
