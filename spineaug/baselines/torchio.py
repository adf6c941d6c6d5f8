"""TorchIO baseline: the closest TorchIO pipeline to a spineaug preset, applied per sample on the CPU.

TorchIO works on one ``Subject`` at a time (a ``ScalarImage`` and a ``LabelMap``), so :func:`build` loops over the
batch, as a TorchIO ``DataLoader`` worker would. Transforms without a TorchIO counterpart are left out and listed in
the mapping (``equivalent=None``), so the TorchIO pipeline does *less* work than the spineaug preset it stands for.
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
    mapping_rows,
    pair,
    translate,
)
from spineaug.transforms import (
    RandomAffine,
    RandomBiasField,
    RandomFlip,
    RandomGamma,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomLabelAppearance,
    RandomLowResolution,
    RandomSpatial,
    RandomThickSlice,
    RandomZScore,
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


def _spatial(tio: Any, t: RandomSpatial) -> list[Any]:
    out = []
    if t.p_rotation or t.p_scale:
        degrees = pair(t.config()["rotation_deg"]) if t.p_rotation else (0.0, 0.0)
        scales = tuple(t.scale) if t.p_scale else (1.0, 1.0)
        out.append(tio.RandomAffine(scales=scales, degrees=degrees, p=affine_probability(t)))
    if t.p_elastic:
        out.append(tio.RandomElasticDeformation(p=elastic_probability(t)))
    return out


def _affine(tio: Any, t: RandomAffine) -> list[Any]:
    return [tio.RandomAffine(scales=tuple(t.scale), degrees=pair(t.config()["degrees"]), p=t.p)]


def _noise(tio: Any, t: RandomGaussianNoise) -> list[Any]:
    return [tio.RandomNoise(std=(0.0, float(pair(t.config()["sigma"])[1])), p=t.p)]


def _blur(tio: Any, t: RandomGaussianBlur) -> list[Any]:
    return [tio.RandomBlur(std=tuple(abs(v) for v in pair(t.config()["sigma"])), p=t.p)]


def _gamma(tio: Any, t: RandomGamma) -> list[Any]:
    lo, hi = pair(t.config()["gamma"])
    return [tio.RandomGamma(log_gamma=(math.log(max(lo, 1e-3)), math.log(hi)), p=t.p)]


def _anisotropy(tio: Any, t: Any) -> list[Any]:
    return [tio.RandomAnisotropy(axes=(0, 1, 2), downsampling=(1.0, 2.0), p=t.p)]


TRANSLATORS: dict[type, Translator] = {
    RandomSpatial: _spatial,
    RandomAffine: _affine,
    RandomFlip: lambda tio, t: [tio.RandomFlip(axes=tuple(t.axes), flip_probability=t.p)],
    RandomGaussianNoise: _noise,
    RandomGaussianBlur: _blur,
    RandomGamma: _gamma,
    RandomLowResolution: _anisotropy,
    RandomThickSlice: _anisotropy,
    RandomBiasField: lambda tio, t: [tio.RandomBiasField(coefficients=0.2, order=3, p=t.p)],
    RandomZScore: lambda tio, t: [tio.ZNormalization(p=t.p)],
    RandomLabelAppearance: lambda tio, t: [tio.RandomLabelsToImage(label_key="label", image_key="image", p=t.p)],
}
"""The TorchIO transforms for each spineaug transform class (classes without one are left out, see ``MAPPING``)."""


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The closest TorchIO pipeline, as a batched call (per-subject loop inside)."""
    rows = mapping(pipeline)
    tio = import_or_unavailable("torchio", "install torchio (pip install torchio)")

    compose = tio.Compose(translate(pipeline, tio, TRANSLATORS))
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
