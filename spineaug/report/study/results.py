"""One study's compact results (``spineaug study --export``), read with whatever files are there.

Every file is optional: an older export has no ``stats.csv``/``domains.csv``/``grid.csv``/``monitor.csv``, a study
in progress has no metrics yet. The page says what is missing instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spineaug import _schema

CLASSES = ("vertebra", "disc", "canal")
MEAN = "mean"
"""``stats.csv``: the ``seed`` of the row over seeds and the ``class`` of the row over all classes."""
ALL = "all"


def label(arm: str) -> str:
    """An arm's short name: a path to an arm file (``studies/arms/mix.yaml``) shows as its stem."""
    return Path(arm).stem if arm.endswith((".yaml", ".yml", ".json")) else arm


@dataclass
class StudyResults:
    """The frames of one study folder; ``None`` for an absent file."""

    name: str
    folder: Path
    study: dict = field(default_factory=dict)
    metrics: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    monitor: pd.DataFrame | None = None
    stats: pd.DataFrame | None = None
    comparisons: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None
    grid: pd.DataFrame | None = None
    domains: pd.DataFrame | None = None

    @property
    def has_results(self) -> bool:
        return self.metrics is not None and not self.metrics.empty

    @property
    def reference(self) -> str:
        return str(self.study.get("reference_arm", "nnunet"))

    @property
    def sources(self) -> list[str]:
        listed = list(self.study.get("sources") or [])
        seen = sorted(self.metrics["source"].unique()) if self.has_results else []
        return [s for s in listed if s in seen] + [s for s in seen if s not in listed]

    @property
    def arms(self) -> list[str]:
        seen = list(dict.fromkeys(self.metrics["arm"])) if self.has_results else []
        return [a for a in self.study.get("arms", []) if a in seen] + [a for a in seen if a not in self.study.get("arms", [])]

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.metrics["seed"].unique()) if self.has_results else []

    @property
    def families(self) -> dict[str, str]:
        if self.domains is None:
            return {}
        return dict(zip(self.domains["domain"], self.domains["family"]))

    @property
    def commits(self) -> list[str]:
        if self.cells is None or "commit" not in self.cells:
            return []
        fresh = self.cells[self.cells["provenance"] == "fresh"] if "provenance" in self.cells else self.cells
        return sorted({str(c)[:10] + ("+dirty" if str(c).endswith("+dirty") else "") for c in fresh["commit"].dropna()})

    def n_cases(self) -> tuple[int, int]:
        """(test cases per cell, distinct anatomies) of the metrics."""
        if not self.has_results:
            return 0, 0
        cases = self.metrics[["domain", "case"]].drop_duplicates()
        anat = cases["case"].astype(str).str.rsplit("_", n=1).str[-1].nunique()
        return len(cases), anat

    def stat(self, source: str, arm: str, measure: str, target: str, cls: str = MEAN) -> tuple[float, float, float,
                                                                                              list[tuple[str, float]]]:  # fmt: skip
        """(mean, ci_low, ci_high, [(seed, value), ...]) of one ``stats.csv`` statistic (NaNs when absent)."""
        nan = float("nan")
        if self.stats is None:
            return nan, nan, nan, []
        s = self.stats
        sel = s[(s["source"] == source) & (s["arm"] == arm) & (s["measure"] == measure) & (s["target"] == target)
                & (s["class"] == cls)]  # fmt: skip
        head = sel[sel["seed"] == MEAN]
        if head.empty:
            return nan, nan, nan, []
        r = head.iloc[0]
        seeds = [(str(x.seed), float(x.value)) for x in sel[sel["seed"] != MEAN].itertuples()]
        return float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), seeds

    def difference(self, source: str, arm: str, versus: str, target: str) -> tuple[float, float, float]:
        """(mean, ci_low, ci_high) of ``arm`` minus ``versus`` in Dice points from ``comparisons.csv`` (stored once
        per pair, either way round); NaNs when the pair is not there."""
        nan = float("nan")
        c = self.comparisons
        if c is None:
            return nan, nan, nan
        head = c[(c["source"] == source) & (c["target"] == target) & (c["seed"] == MEAN)]
        own = head[(head["arm"] == arm) & (head["versus"] == versus)]
        if not own.empty:
            r = own.iloc[0]
            return float(r["value"]), float(r["ci_low"]), float(r["ci_high"])
        flipped = head[(head["arm"] == versus) & (head["versus"] == arm)]
        if not flipped.empty:
            r = flipped.iloc[0]
            return -float(r["value"]), -float(r["ci_high"]), -float(r["ci_low"])
        return nan, nan, nan

    def blocks(self) -> list[tuple[str, str]]:
        """(source or ``all``, arm) of every ``stats.csv`` block, sources first, in the study's arm order."""
        if self.stats is None:
            return []
        have = set(zip(self.stats["source"], self.stats["arm"]))
        return [(s, a) for s in [*self.sources, ALL] for a in self.arms if (s, a) in have]

    def groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Blocks to show side by side, never mixing pooled and single-source rows: the pooled arms, then each
        source where an arm ran that is not pooled (every arm on that source, so it has its comparisons)."""
        blocks = self.blocks()
        pooled = [(s, a) for s, a in blocks if s == ALL]
        if not pooled:
            return [(f"trained on {src}", [(s, a) for s, a in blocks if s == src]) for src in self.sources
                    if any(s == src for s, _ in blocks)]  # fmt: skip
        names = {a for _, a in pooled}
        out = [("pooled over sources (arms that ran on every source)", pooled)]
        for src in self.sources:
            if any(s == src and a not in names for s, a in blocks):
                out.append((f"trained on {src} (with the arms that ran on some sources only)",
                            [(s, a) for s, a in blocks if s == src]))  # fmt: skip
        return out

    def case_dice(self) -> pd.DataFrame:
        """Mean foreground Dice per cell x domain x case (the mean over the three classes)."""
        keys = ["source", "arm", "seed", "domain", "case"]
        return self.metrics.groupby(keys, as_index=False, sort=False)["dice"].mean()

    def cell_means(self) -> pd.DataFrame:
        """Mean Dice per source x arm x target domain: the mean over seeds of each seed's mean over cases."""
        per_seed = self.case_dice().groupby(["source", "arm", "seed", "domain"], as_index=False)["dice"].mean()
        return per_seed.groupby(["source", "arm", "domain"], as_index=False)["dice"].mean()

    def targets(self) -> list[str]:
        listed = list((self.study.get("data") or {}).get("domains") or [])
        if self.domains is not None:
            listed = listed or list(self.domains["domain"])
        seen = list(dict.fromkeys(self.metrics["domain"])) if self.has_results else []
        return [d for d in listed if d in seen] + [d for d in seen if d not in listed]

    def unusable_cells(self) -> pd.DataFrame:
        """Cells of the grid not in these results: stale (or without provenance) and not yet finished."""
        if self.grid is not None:
            return self.grid[self.grid["status"] != "fresh"].reset_index(drop=True)
        if self.cells is not None and "provenance" in self.cells:
            bad = self.cells[self.cells["provenance"] != "fresh"]
            return bad.rename(columns={"provenance": "status"})[list(_schema.STUDY_GRID_COLUMNS)]
        return pd.DataFrame(columns=list(_schema.STUDY_GRID_COLUMNS))


def _csv(path: Path, **kwargs) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return None


def load(folder: str | Path) -> StudyResults:
    """Read one study folder (``reports/data/study/<name>``); absent files stay ``None``."""
    folder = Path(folder)
    study = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
    res = StudyResults(name=str(study.get("name", folder.name)), folder=folder, study=study)
    res.metrics = _csv(folder / "metrics.csv")
    res.curves = _csv(folder / "curves.csv")
    res.monitor = _csv(folder / "monitor.csv")
    res.stats = _csv(folder / "stats.csv", dtype={"seed": str, "class": str})
    res.comparisons = _csv(folder / "comparisons.csv", dtype={"seed": str})
    res.summary = _csv(folder / "summary.csv")
    res.cells = _csv(folder / "cells.csv")
    res.grid = _csv(folder / "grid.csv")
    res.domains = _csv(folder / "domains.csv")
    if res.monitor is not None and res.monitor.empty:
        res.monitor = None
    if res.stats is not None:
        res.stats["value"] = res.stats["value"].astype(float)
    for frame in (res.metrics, res.curves, res.monitor):
        if frame is not None and "hd95" in frame:
            frame["hd95"] = pd.to_numeric(frame["hd95"], errors="coerce").astype(float)
    if res.metrics is not None and res.metrics.empty:
        res.metrics = None
    return res
