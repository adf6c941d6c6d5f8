"""Study-level results from the cell folders: ``metrics.csv``, ``curves.csv``, ``monitor.csv``, ``cells.csv``,
``summary.csv``, ``summary.md``.

Per source x arm and, for the arms that ran on every source, overall (``source = all``): in-domain Dice, mean
out-of-domain Dice with a 95 % interval, the relative gain over the reference arm out of domain (the paper: +155 %),
the in-domain change (the paper: -0.008 %), and training seconds per iteration (the paper: GPU augmentation ~10 %
faster than CPU workers). Dice of a case is the mean over the three foreground classes. Every number is a mean over
training seeds of the per-seed value, and gains compare each seed with the reference arm's same seed; the interval
is a two-level bootstrap (seeds, then test anatomies within each drawn seed): see
:mod:`spineaug.study.statistics`, which also writes the per-seed values, per-class Dice and HD95 and the modality
family means to ``stats.csv``, and every pair of arms head to head (paired Dice differences) to
``comparisons.csv``.

Provenance: ``cells.csv`` lists every finished cell with its commit, provenance status
(:func:`spineaug.study.provenance.cell_provenance`) and cost. Only *fresh* cells (recorded fingerprint, phantom
version and settings match the current code) are pooled into ``summary.csv``, ``metrics.csv``, ``curves.csv`` and
``monitor.csv``; stale cells and cells without provenance are left out and counted in the ``stale_cells`` column
and in ``summary.md``. ``summarize(..., include_stale=True)`` pools them too (``stale_cells`` then counts the
pooled ones, and ``summary.md`` says so): a deliberate choice, never a silent one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from spineaug import _schema
from spineaug._io import atomic_write_text, git_state
from spineaug.study import statistics
from spineaug.study.archive import write_examples, write_records
from spineaug.study.config import StudyConfig
from spineaug.study.grid import cell_folder, cells
from spineaug.study.provenance import cell_provenance
from spineaug.study.statistics import anatomy  # noqa: F401 - re-exported: the anatomy of a case id

SUMMARY_COLUMNS = _schema.STUDY_SUMMARY_COLUMNS
WARMUP_ITERATIONS = 20
"""Iterations left out of the seconds-per-iteration mean (allocator and thread-pool warm-up)."""


def bootstrap_ci(values: np.ndarray, clusters: np.ndarray | None = None, n: int = 2000, seed: int = 0):
    """95 % percentile bootstrap interval of the mean, resampling whole clusters (e.g. anatomies) when given."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if clusters is None:
        means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    else:
        keys, inverse = np.unique(np.asarray(clusters), return_inverse=True)
        sums = np.bincount(inverse, weights=values, minlength=len(keys))
        counts = np.bincount(inverse, minlength=len(keys)).astype(float)
        pick = rng.integers(0, len(keys), (n, len(keys)))
        means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def collect(out: Path, study: StudyConfig | None = None, *, monitor: bool = False):
    """Finished cells' metrics rows and training logs (with source/arm/seed columns); only the study's grid.

    With ``monitor=True`` also their out-of-domain monitoring rows (``monitor_log.csv``) as a third frame.
    """
    metrics, curves, monitors = [], [], []
    folders = sorted((out / "cells").glob("*"))
    if study is not None:
        folders = [cell_folder(out, c) for c in cells(study)]
    for folder in folders:
        if (folder / "metrics.csv").is_file():
            metrics.append(pd.read_csv(folder / "metrics.csv"))
            state = json.loads((folder / "cell.json").read_text()) if (folder / "cell.json").is_file() else None
            for name, into in (("train_log.csv", curves), ("monitor_log.csv", monitors)):
                if (folder / name).is_file() and state is not None:
                    c = pd.read_csv(folder / name)
                    c.insert(0, "seed", state["seed"])
                    c.insert(0, "arm", state["arm"])
                    c.insert(0, "source", state["source"])
                    into.append(c)
    m = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame()
    c = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if not monitor:
        return m, c
    columns = ["source", "arm", "seed", *_schema.STUDY_MONITOR_COLUMNS]
    return m, c, (pd.concat(monitors, ignore_index=True) if monitors else pd.DataFrame(columns=columns))


def _timing(curves: pd.DataFrame) -> dict:
    steady = curves[curves["iteration"] > WARMUP_ITERATIONS]
    per_it = (steady["data_s"] + steady["augment_s"] + steady["network_s"]).mean() if len(steady) else np.nan
    last = curves.dropna(subset=["val_dice"]).sort_values("iteration").groupby(["source", "seed"]).tail(1)
    return {
        "s_per_iteration": per_it, "augment_s_per_iteration": steady["augment_s"].mean() if len(steady) else np.nan,
        "iterations": int(curves["iteration"].max()) if len(curves) else 0,
        "final_val_dice": last["val_dice"].mean() if len(last) else np.nan,
    }  # fmt: skip


def summary_table(
    metrics: pd.DataFrame, curves: pd.DataFrame, reference: str, n_boot: int, stale: pd.DataFrame | None = None,
    stats: pd.DataFrame | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The headline table (see the module docstring): one row per ``stats.csv`` block (source or ``all`` x arm).

    Args:
        stale: The finished cells that are not fresh (columns source, arm, seed), counted per row in
            ``stale_cells``; whether their rows are in ``metrics`` is the caller's choice (:func:`summarize`).
        stats: :func:`spineaug.study.statistics.seed_statistics` of ``metrics`` (computed when not given).
    """
    if stats is None:
        stats = statistics.seed_statistics(metrics, reference, {}, n_boot)
    head = stats[stats["seed"].astype(str) == statistics.MEAN].set_index(["source", "arm", "measure", "target", "class"])
    rows = []
    for src, arm in dict.fromkeys(zip(stats["source"], stats["arm"])):
        def get(measure, target, column="value", src=src, arm=arm):
            key = (src, arm, measure, target, statistics.MEAN)
            return float(head.loc[key, column]) if key in head.index else np.nan

        seeds = sorted(stats[(stats["source"] == src) & (stats["arm"] == arm)]["seed"].astype(str).unique())
        seeds = [int(s) for s in seeds if s != statistics.MEAN]
        sources = sorted(metrics["source"].unique()) if src == statistics.ALL else [src]
        mine = curves[(curves["arm"] == arm) & curves["source"].isin(sources) & curves["seed"].isin(seeds)]
        row = {"source": src, "arm": arm, "seeds": len(seeds), "in_domain_dice": get("dice", "in_domain"),
               "ood_dice": get("dice", "ood"), "ood_ci_low": get("dice", "ood", "ci_low"),
               "ood_ci_high": get("dice", "ood", "ci_high"), "ood_gain_pct": get("ood_gain_pct", "ood"),
               "in_domain_change_pct": get("in_domain_change_pct", "in_domain"), **_timing(mine),
               "stale_cells": _count_stale(stale, src, arm),
               "ood_gain_per_source_pct": get("ood_gain_per_source_pct" if src == statistics.ALL else "ood_gain_pct",
                                              "ood")}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _count_stale(stale: pd.DataFrame | None, source: str, arm: str) -> int:
    if stale is None or stale.empty:
        return 0
    mine = stale[stale["arm"] == arm]
    return int(len(mine) if source == "all" else (mine["source"] == source).sum())


CPU_HOURS = "training + evaluation wall seconds x threads, summed over the finished cells"


def cpu_hours(cell_table: pd.DataFrame) -> float:
    """Sum over cells of (training + evaluation wall seconds) x threads, in hours (cells without a record: 0)."""
    if cell_table.empty:
        return 0.0
    wall = cell_table["train_s"].fillna(0).astype(float) + cell_table["eval_s"].fillna(0).astype(float)
    return float((wall * cell_table["threads"].fillna(1).astype(float)).sum() / 3600.0)


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def per_seed(stats: pd.DataFrame | None, source: str, arm: str, measure: str, target: str, digits: int = 3) -> str:
    """``"s0 0.712, s1 0.734"``: each seed's value of one ``stats.csv`` statistic ("" when unknown)."""
    if stats is None or stats.empty:
        return ""
    sel = stats[(stats["source"] == source) & (stats["arm"] == arm) & (stats["measure"] == measure)
                & (stats["target"] == target) & (stats["class"] == statistics.MEAN)
                & (stats["seed"].astype(str) != statistics.MEAN)]  # fmt: skip
    return ", ".join(f"s{r.seed} {_fmt(float(r.value), digits)}" for r in sel.itertuples())


INTERVAL_NOTE = (
    "Values are means over training seeds of each seed's value (per-seed values in parentheses, s<seed>). The "
    "interval is a 95 % two-level percentile bootstrap: seeds drawn with replacement, then test anatomies drawn "
    "with replacement within each drawn seed (an anatomy's rows in every target domain move together; target "
    "domains are fixed). With two seeds the seed level is coarse (it can only draw both, or one seed twice); with "
    "one seed it is the anatomy-only bootstrap. Gains compare each seed with the reference arm's same seed, then "
    "average over seeds (n/a when the reference lacks a seed or source). `all` rows pool the sources and list only "
    "arms that ran on every source; there the pooled gain is the ratio of pooled means and the paper's definition "
    "is the mean over sources of each source's gain."
)


def summary_markdown(
    study: StudyConfig, table: pd.DataFrame, cell_table: pd.DataFrame | None = None, include_stale: bool = False,
    stats: pd.DataFrame | None = None,
) -> str:  # fmt: skip
    head = ["source", "arm", "seeds", "in-domain Dice", "out-of-domain Dice [95 % CI] (per seed)",
            f"OOD gain vs {study.reference_arm} (pooled)", "OOD gain, mean of per-source gains", "in-domain change",
            "s / iteration", "stale cells"]  # fmt: skip
    lines = [f"# Study `{study.name}`", "", study.description.strip(), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for r in table.itertuples():
        seeds = per_seed(stats, r.source, r.arm, "dice", "ood")
        gains = per_seed(stats, r.source, r.arm, "ood_gain_pct", "ood", 1)
        lines.append(
            f"| {r.source} | {r.arm} | {r.seeds} | {_fmt(r.in_domain_dice)} | {_fmt(r.ood_dice)} "
            f"[{_fmt(r.ood_ci_low)}, {_fmt(r.ood_ci_high)}]{f' ({seeds})' if seeds else ''} | "
            f"{_fmt(r.ood_gain_pct, 1)} %{f' ({gains})' if gains else ''} | {_fmt(r.ood_gain_per_source_pct, 1)} % | "
            f"{_fmt(r.in_domain_change_pct, 2)} % | {_fmt(r.s_per_iteration, 3)} | {r.stale_cells} |"
        )
    lines += ["", INTERVAL_NOTE]
    if cell_table is not None and not cell_table.empty:
        n_stale = int((cell_table["provenance"] != "fresh").sum())
        how = "pooled with the fresh ones (include_stale)" if include_stale else "left out of every row above"
        lines += ["", f"Provenance: {len(cell_table) - n_stale} fresh cell(s); {n_stale} stale or without provenance, "
                  f"{how} (see cells.csv). Compute: {cpu_hours(cell_table):.2f} CPU-hours ({CPU_HOURS}; "
                  f"{len(cell_table)} cells)."]  # fmt: skip
    lines += ["", "Paper (AugLab vs nnU-Net default augmentation): +155 % out-of-domain Dice, -0.008 % in domain, "
              "~10 % faster training with GPU augmentation.", ""]  # fmt: skip
    return "\n".join(lines)


def grid_table(study: StudyConfig, cell_table: pd.DataFrame) -> pd.DataFrame:
    """``grid.csv``: every cell of the grid with its status (the provenance of a finished cell, else ``missing``)."""
    done = {(r.source, r.arm, int(r.seed)): r.provenance for r in cell_table.itertuples()}
    rows = [(c.source, c.arm, c.seed, done.get((c.source, c.arm, c.seed), "missing")) for c in cells(study)]
    return pd.DataFrame(rows, columns=list(_schema.STUDY_GRID_COLUMNS))


def cell_table(study: StudyConfig, out: Path) -> pd.DataFrame:
    """``cells.csv``: every finished cell with its commit, provenance status and cost."""
    done = [c for c in cells(study) if (cell_folder(out, c) / "metrics.csv").is_file()]
    rows = cell_provenance(study, out, done)
    return pd.DataFrame(rows, columns=["slug", *_schema.STUDY_CELL_COLUMNS])[list(_schema.STUDY_CELL_COLUMNS)]


def summarize(study: StudyConfig, out: Path, *, include_stale: bool = False) -> Path:
    """Write the study-level files from whatever cells are finished; returns ``out``.

    Args:
        include_stale: Pool stale cells and cells without provenance with the fresh ones (default: leave them
            out; either way ``cells.csv``, the ``stale_cells`` column and ``summary.md`` say how many there are).
    """
    metrics, curves, monitor = collect(out, study, monitor=True)
    if metrics.empty:
        return out
    table_cells = cell_table(study, out)
    atomic_write_text(out / "cells.csv", table_cells.to_csv(index=False))
    atomic_write_text(out / "grid.csv", grid_table(study, table_cells).to_csv(index=False))
    families = statistics.domain_families(study.target_domains())
    atomic_write_text(out / "domains.csv", statistics.domain_table(list(families)).to_csv(index=False))
    stale = table_cells[table_cells["provenance"] != "fresh"][["source", "arm", "seed"]]
    if not include_stale:
        drop = set(stale.itertuples(index=False, name=None))

        def fresh(frame: pd.DataFrame) -> pd.DataFrame:
            if frame.empty:
                return frame
            keep = [k not in drop for k in zip(frame["source"], frame["arm"], frame["seed"])]
            return frame[keep].reset_index(drop=True)

        metrics, curves, monitor = fresh(metrics), fresh(curves), fresh(monitor)
    atomic_write_text(out / "monitor.csv", monitor.to_csv(index=False))
    if metrics.empty:  # nothing fresh: no pooled files (an older run's would be mistaken for current)
        for name in ("metrics.csv", "curves.csv", "summary.csv", "stats.csv", "comparisons.csv"):
            (out / name).unlink(missing_ok=True)
        atomic_write_text(out / "summary.md", summary_markdown(study, pd.DataFrame(columns=list(SUMMARY_COLUMNS)),
                                                                table_cells, include_stale))  # fmt: skip
        return out
    atomic_write_text(out / "metrics.csv", metrics.to_csv(index=False))
    atomic_write_text(out / "curves.csv", curves.to_csv(index=False))
    stats = statistics.seed_statistics(metrics, study.reference_arm, families, study.evaluation.bootstrap,
                                       arms=study.arms, sources=study.sources)  # fmt: skip
    atomic_write_text(out / "stats.csv", stats.to_csv(index=False, float_format="%.6g"))
    pairs = statistics.comparisons(metrics, study.evaluation.bootstrap, arms=study.arms, sources=study.sources)
    atomic_write_text(out / "comparisons.csv", pairs.to_csv(index=False, float_format="%.6g"))
    table = summary_table(metrics, curves, study.reference_arm, study.evaluation.bootstrap, stale, stats)
    atomic_write_text(out / "summary.csv", table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "summary.md", summary_markdown(study, table, table_cells, include_stale, stats))
    return out


def compact_curves(curves: pd.DataFrame, every: int = 25) -> pd.DataFrame:
    """Per cell, one row per ``every`` iterations (means of loss and timings over the window, ``val_dice`` empty)
    plus every validation row as it was logged: small enough to commit, enough to draw the learning curves."""
    keys = ["source", "arm", "seed"]
    c = curves.sort_values([*keys, "iteration"]).copy()
    c["window"] = (c["iteration"] - 1) // every
    agg = c.groupby([*keys, "window"], as_index=False).agg(
        iteration=("iteration", "max"), loss=("loss", "mean"), data_s=("data_s", "mean"),
        augment_s=("augment_s", "mean"), network_s=("network_s", "mean"), elapsed_s=("elapsed_s", "max"),
    )  # fmt: skip
    agg["val_dice"] = np.nan
    val = c.dropna(subset=["val_dice"])[agg.columns.drop("window").tolist()]
    out = pd.concat([agg.drop(columns="window"), val], ignore_index=True)
    return out.sort_values([*keys, "iteration"], kind="stable")[list(curves.columns)]


def export(out: Path, dest: Path, study: StudyConfig | None = None) -> Path:
    """Copy the compact results (no checkpoints, no volumes) to ``dest`` (e.g. ``reports/data/study/<name>``).

    With ``study``, also each finished cell's record and example slices (:mod:`spineaug.study.archive`), what
    ``spineaug study --resume-from`` needs to go on from this export on a fresh checkout.
    """
    commit = git_state()  # before this export changes any tracked file
    dest.mkdir(parents=True, exist_ok=True)
    if study is not None:
        write_records(study, out, dest)
        write_examples(study, out, dest)
    for name in (n for n in _schema.STUDY_FILES if n not in ("curves.csv", "study.json")):
        if (out / name).is_file():
            atomic_write_text(dest / name, (out / name).read_text())
    if (out / "study.json").is_file():  # the export records the code that wrote it (each cell's own is in cells.json)
        spec = {**json.loads((out / "study.json").read_text()), "exported_by_commit": commit}
        if (out / "cells.csv").is_file():  # what the finished cells cost, for the report's header
            table = pd.read_csv(out / "cells.csv")
            spec["compute"] = {"cells": len(table), "cpu_hours": round(cpu_hours(table), 2), "definition": CPU_HOURS}
        atomic_write_text(dest / "study.json", json.dumps(spec, indent=1))
    if (out / "curves.csv").is_file():
        curves = compact_curves(pd.read_csv(out / "curves.csv"))
        atomic_write_text(dest / "curves.csv", curves.to_csv(index=False, float_format="%.5g"))
    return dest
