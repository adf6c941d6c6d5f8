"""The study grid: one cell per source x arm x seed, and where each cell keeps its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spineaug.harness.augment import arm_slug
from spineaug.study.config import StudyConfig


@dataclass(frozen=True)
class Cell:
    """One model of the grid."""

    source: str
    arm: str
    seed: int

    @property
    def slug(self) -> str:
        return f"{self.source}__{arm_slug(self.arm)}__s{self.seed}"


def cells(study: StudyConfig) -> list[Cell]:
    """Every (source, arm, seed) of the grid, in a stable order (seed-major so early results cover all arms).

    An arm runs with its ``arm_seeds`` if given, else with ``seeds``; seeds are visited in the order they first
    appear (``seeds``, then any only ``arm_seeds`` name).
    """
    all_seeds = list(dict.fromkeys([*study.seeds, *(s for v in study.arm_seeds.values() for s in v)]))
    return [
        Cell(src, arm, seed) for seed in all_seeds for src in study.sources for arm in study.arms
        if src in study.arm_sources.get(arm, study.sources) and seed in study.seeds_of(arm)
    ]  # fmt: skip


def cell_folder(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.slug
