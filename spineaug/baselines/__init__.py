"""Other libraries' augmentation pipelines, used only to compare speed with spineaug (never by the engine).

Each module builds, for a spineaug preset name, the closest pipeline its library can express, and documents a
mapping table (which of our transforms the library has, which it lacks). Libraries are imported lazily; a missing
one raises :class:`BaselineUnavailable`, which the benchmark turns into a visible "skipped" note.

Example:
    >>> from spineaug import baselines
    >>> b = baselines.build("torchio", "nnunet")          # doctest: +SKIP
    >>> image, label = b.fn(image, label)                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from spineaug._schema import BASELINE_LIBRARIES
from spineaug.baselines._common import PIPELINES, Baseline, BaselineUnavailable, MappingRow, preset_entries

LIBRARIES = BASELINE_LIBRARIES
"""Baseline names accepted by :func:`build` and ``spineaug bench --baselines`` (the registry of
:data:`spineaug._schema.BASELINE_LIBRARIES`)."""


def _module(library: str):
    if library not in LIBRARIES:
        raise ValueError(f"unknown baseline {library!r}; known baselines: {list(LIBRARIES)}")
    return importlib.import_module(f"spineaug.baselines.{library}")


def build(library: str, pipeline: str, *, device: str = "cpu", seed: int = 0) -> Baseline:
    """Build ``library``'s stand-in for the spineaug preset ``pipeline``.

    Raises:
        ValueError: Unknown library or pipeline name.
        BaselineUnavailable: The library (or AugLab's environment) is missing, or it cannot run this pipeline.
    """
    return _module(library).build(pipeline, device=device, seed=seed)


def mapping(library: str, pipeline: str) -> list[MappingRow]:
    """The documented mapping of ``pipeline``'s transforms onto ``library`` (works without the library)."""
    return _module(library).mapping(pipeline)


__all__ = ["LIBRARIES", "PIPELINES", "Baseline", "BaselineUnavailable", "MappingRow", "build", "mapping", "preset_entries"]
