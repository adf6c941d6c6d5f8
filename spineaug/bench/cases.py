"""What is timed: reproducible batches, spineaug calls, and transforms forced on (``RandomTransform.forced``)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor

import spineaug


def make_batch(batch: int, size: int, device: torch.device, seed: int) -> tuple[Tensor, Tensor]:
    """A reproducible ``B x 1 x S^3`` float32 image in [0, 1) and an int64 label map with values 0..3."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + batch * 1000 + size)
    image = torch.rand((batch, 1, size, size, size), generator=g)
    label = torch.randint(0, 4, (batch, 1, size, size, size), generator=g)
    return image.to(device), label.to(device)


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
