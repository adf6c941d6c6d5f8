"""What every baseline shares: the error for a missing library, the mapping row, and the built baseline."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor

import spineaug

PIPELINES = ("nnunet", "xdomain")
"""spineaug presets the benchmark compares against baselines."""


class BaselineUnavailable(RuntimeError):
    """A baseline cannot run here: its library (or its separate environment) is missing, or it cannot express a
    pipeline. The message says what to install or why; the benchmark skips the baseline with a visible note."""


@dataclass(frozen=True)
class MappingRow:
    """How one spineaug transform is expressed in a baseline library.

    Attributes:
        spineaug: spineaug config name (``Spatial``, ``Gamma``...).
        equivalent: The library's transform used for it, or ``None`` when the library has none.
        note: What differs (parameters, per-batch vs per-sample draws, extra resampling...).
    """

    spineaug: str
    equivalent: str | None
    note: str = ""


@dataclass
class Baseline:
    """A comparison pipeline: ``fn(image, label) -> (image, label)`` on batched torch tensors.

    Attributes:
        library: Library name (``batchgenerators``, ``torchio``, ``monai``, ``kornia``, ``auglab``).
        pipeline: The spineaug preset it stands in for.
        fidelity: ``exact`` (same pipeline), ``partial`` (the transforms the library has, others left out) or
            ``substitute`` (the library's own standard pipeline, which users would run instead).
        fn: The batched call. Per-sample libraries loop over the batch inside it, as their data loaders do.
        mapping: One row per spineaug transform of the preset.
        devices: Device types it runs on.
        version: The library version.
    """

    library: str
    pipeline: str
    fidelity: str
    fn: Callable[[Tensor, Tensor], tuple[Any, Any]] | None
    mapping: list[MappingRow] = field(default_factory=list)
    devices: tuple[str, ...] = ("cpu",)
    version: str = ""

    @property
    def coverage(self) -> str:
        """``"k/n"`` transforms of the preset that the baseline expresses."""
        have = sum(r.equivalent is not None for r in self.mapping)
        return f"{have}/{len(self.mapping)}"


def preset_pipeline(pipeline: str) -> spineaug.Pipeline:
    """The spineaug preset ``pipeline``, built (so every entry is validated and holds all its values)."""
    if pipeline not in spineaug.presets():
        raise ValueError(f"unknown pipeline {pipeline!r}; available presets: {spineaug.presets()}")
    return spineaug.Pipeline.from_preset(pipeline)


def preset_entries(pipeline: str) -> list[dict[str, Any]]:
    """The transform entries of a spineaug preset (validated by building the pipeline)."""
    return preset_pipeline(pipeline).config()["transforms"]


def mapping_rows(
    pipeline: str, table: dict[str, tuple[str | None, str]], missing: str
) -> list[MappingRow]:
    """One :class:`MappingRow` per transform of the preset, from a library's ``name -> (equivalent, note)`` table;
    transforms absent from the table get ``(None, missing)``."""
    rows = []
    for t in preset_pipeline(pipeline).transforms:
        equivalent, note = table.get(t.name, (None, missing))
        rows.append(MappingRow(t.name, equivalent, note))
    return rows


Translator = Callable[[Any, Any], list[Any]]
"""``(library module, spineaug transform) -> [library objects]``: how one transform class is expressed."""


def translate(pipeline: str, library: Any, translators: Mapping[type, Translator]) -> list[Any]:
    """A library's objects for every transform of the preset, in order: each transform goes through the translator
    of its class (none: left out, as the mapping says)."""
    return [obj for t in preset_pipeline(pipeline).transforms for obj in translators.get(type(t), _none)(library, t)]


def _none(library: Any, transform: Any) -> list[Any]:
    return []


def pair(value: Any) -> tuple[float, float]:
    """A ``(low, high)`` pair from a config value (a pair, or a per-axis list of pairs: their overall range)."""
    if isinstance(value[0], (list, tuple)):
        return (min(v[0] for v in value), max(v[1] for v in value))
    return (float(value[0]), float(value[1]))


def largest_angle(transform: Any) -> float:
    """The largest absolute rotation angle, in degrees, of a transform's three per-axis ranges (``.rotation``)."""
    return max(abs(v) for lo, hi in transform.rotation for v in (lo, hi))


def affine_probability(spatial: Any) -> float:
    """How often a ``Spatial`` entry rotates or scales: its :meth:`firing_probability` with deformation off (the
    baselines deform in a separate step)."""
    return spatial.firing_probability({**spatial.config(), "p_elastic": 0.0})


def elastic_probability(spatial: Any) -> float:
    """How often a ``Spatial`` entry deforms: its :meth:`firing_probability` with rotation and scaling off."""
    return spatial.firing_probability({**spatial.config(), "p_rotation": 0.0, "p_scale": 0.0})


def import_or_unavailable(module: str, install_hint: str):
    """Import ``module`` or raise :class:`BaselineUnavailable` naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BaselineUnavailable(f"{module} is not importable ({exc}); {install_hint}") from None
