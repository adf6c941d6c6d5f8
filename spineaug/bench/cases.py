"""What is timed: reproducible phantom batches, spineaug calls, and transforms forced on (``RandomTransform.forced``)."""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

import spineaug
from spineaug import phantom
from spineaug.data.datasets import Sample
from spineaug.data.sampling import PatchSampler

PHANTOM_DOMAINS = ("ct", "t2w")
"""Domains the benchmark's phantom volumes are rendered in (one anatomy, paired); patches come from both."""


@functools.lru_cache(maxsize=2)
def phantom_samples(seed: int, shape: tuple[int, int, int]) -> tuple[Sample, ...]:
    """The phantom volumes of one run, rendered once per process and reused by every case (about 5 s at the
    default grid, 15 s at 160^3: regenerating them per case would cost more than timing it)."""
    cases = phantom.make_cases(seed, PHANTOM_DOMAINS, shape=shape)
    return tuple(Sample(f"{domain}_{seed}", c.image[None], c.label, c.affine) for domain, c in cases.items())


def phantom_shape(size: int) -> tuple[int, int, int]:
    """The phantom grid for patches of edge ``size``: the default grid, grown per axis to hold one patch."""
    return tuple(max(n, size) for n in phantom.DEFAULT_SHAPE)  # type: ignore[return-value]


@functools.lru_cache(maxsize=8)
def _sampler(seed: int, shape: tuple[int, int, int], size: int) -> PatchSampler:
    """One patch sampler per patch size (its foreground index is built once)."""
    return PatchSampler(phantom_samples(seed, shape), (size, size, size), length=1024, seed=seed * 1000 + size)


def make_batch(batch: int, size: int, device: torch.device, seed: int, *,
               volume_size: int | None = None) -> tuple[Tensor, Tensor]:
    """A reproducible ``B x 1 x S^3`` batch of phantom patches: float32 images z-scored per sample, int64 labels
    (0 background, 1 vertebra, 2 disc, 3 canal), sampled as in training (a third centred on foreground).

    Args:
        batch: B.
        size: S.
        device: Where the tensors go.
        seed: Seed of the anatomy and of the patch positions.
        volume_size: Grow the phantom grid to hold patches of this edge (default ``size``); passing the run's
            largest ``S`` makes every case share one set of cached volumes.
    """
    sampler = _sampler(seed, phantom_shape(max(size, volume_size or size)), size)
    images, labels = zip(*(sampler[i] for i in range(batch)))
    image, label = torch.stack(images), torch.stack(labels)
    mean = image.mean(dim=(1, 2, 3, 4), keepdim=True)
    std = image.std(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
    return ((image - mean) / std).to(device), label.to(device)


def spineaug_fn(pipeline: spineaug.Pipeline, seed: int) -> Callable[[Tensor, Tensor], Any]:
    """A batched call of a spineaug pipeline drawing from one seeded CPU generator (fresh parameters each call)."""
    g = torch.Generator().manual_seed(seed)

    def fn(image: Tensor, label: Tensor):
        return pipeline(image, label, generator=g)

    return fn


def kind(name: str) -> str:
    """The cost class of a registry name (``RandomTransform.kind``), ``other`` when unknown."""
    cls = spineaug.TRANSFORMS.get(name)
    return (cls.kind if cls is not None else "") or "other"


def forced_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` forced on by its transform class (``RandomTransform.forced``); an unknown name is left as is."""
    cls = spineaug.TRANSFORMS.get(entry.get("name"))
    return dict(entry) if cls is None else cls.forced(entry)


def transform_entries(pipelines: Iterable[str]) -> list[tuple[dict[str, Any], str]]:
    """One config entry per transform name: from the first preset that uses it, else the registry defaults."""
    seen: dict[str, tuple[dict[str, Any], str]] = {}
    for name in pipelines:
        for entry in spineaug.Pipeline.from_preset(name).config()["transforms"]:
            seen.setdefault(entry["name"], (entry, name))
    for name in sorted(spineaug.TRANSFORMS):
        seen.setdefault(name, ({"name": name}, "defaults"))
    return list(seen.values())


def forced_pipeline(entries: list[dict[str, Any]], seed: int, device: torch.device) -> spineaug.Pipeline:
    """A pipeline of ``entries`` with every transform forced on, no input NaN check."""
    config = {"seed": seed, "transforms": [forced_entry(e) for e in entries]}
    return spineaug.Pipeline.from_config(config, check_finite=False).to(device)
