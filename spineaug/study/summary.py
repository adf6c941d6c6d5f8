"""Study-level results from the cell folders: ``metrics.csv``, ``curves.csv``, ``summary.csv``, ``summary.md``.

Per source x arm (seeds pooled) and overall (``source = all``): in-domain Dice, mean out-of-domain Dice with a 95 %
bootstrap interval, the relative gain over the reference arm out of domain (the paper: +155 %), the in-domain
change (the paper: -0.008 %), and training seconds per iteration (the paper: GPU augmentation ~10 % faster than
CPU workers). Dice of a case is the mean over the three foreground classes. The interval resamples test
*anatomies* (a cluster bootstrap): the phantom renders the same anatomies in every domain, so the rows of one
anatomy are not independent. Gains compare an arm with the reference arm on the same sources and seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from spineaug import _schema
from spineaug._io import atomic_write_text
from spineaug.study.config import StudyConfig
from spineaug.study.grid import cell_folder, cells

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


def anatomy(case: pd.Series, domain: pd.Series) -> pd.Series:
    """The anatomy a test case shows: ``<domain>_<seed>`` (phantom, paired across domains) -> the seed; real
    data (other case ids) -> domain and case, each its own anatomy."""
    case, domain = case.astype(str), domain.astype(str)
    prefix = domain + "_"
    paired = pd.Series([c.startswith(p) for c, p in zip(case, prefix)], index=case.index)
    return case.where(~paired, case.str.rsplit("_", n=1).str[-1]).where(paired, domain + "/" + case)


def collect(out: Path, study: StudyConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished cells' metrics rows and training logs (with source/arm/seed columns); only the study's grid."""
    metrics, curves = [], []
    folders = sorted((out / "cells").glob("*"))
    if study is not None:
        folders = [cell_folder(out, c) for c in cells(study)]
    for folder in folders:
        if (folder / "metrics.csv").is_file():
            metrics.append(pd.read_csv(folder / "metrics.csv"))
            state = json.loads((folder / "cell.json").read_text()) if (folder / "cell.json").is_file() else None
            log = folder / "train_log.csv"
            if log.is_file() and state is not None:
                c = pd.read_csv(log)
                c.insert(0, "seed", state["seed"])
                c.insert(0, "arm", state["arm"])
                c.insert(0, "source", state["source"])
                curves.append(c)
    m = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame()
    c = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return m, c


def _row(case: pd.DataFrame, curves: pd.DataFrame, n_boot: int) -> dict:
    ind, ood = case[case["in_domain"]], case[~case["in_domain"]]
    lo, hi = bootstrap_ci(ood["dice"].to_numpy(), ood["anatomy"].to_numpy(), n_boot)
    steady = curves[curves["iteration"] > WARMUP_ITERATIONS]
    per_it = (steady["data_s"] + steady["augment_s"] + steady["network_s"]).mean() if len(steady) else np.nan
    last = curves.dropna(subset=["val_dice"]).sort_values("iteration").groupby(["source", "seed"]).tail(1)
    return {
        "seeds": int(case["seed"].nunique()), "in_domain_dice": ind["dice"].mean(), "ood_dice": ood["dice"].mean(),
        "ood_ci_low": lo, "ood_ci_high": hi, "s_per_iteration": per_it,
        "augment_s_per_iteration": steady["augment_s"].mean() if len(steady) else np.nan,
        "iterations": int(curves["iteration"].max()) if len(curves) else 0,
        "final_val_dice": last["val_dice"].mean() if len(last) else np.nan,
    }  # fmt: skip


def summary_table(metrics: pd.DataFrame, curves: pd.DataFrame, reference: str, n_boot: int) -> pd.DataFrame:
    """The headline table (see the module docstring); ``source == "all"`` rows pool the sources an arm ran on."""
    case = metrics.groupby(["source", "arm", "seed", "domain", "case"], as_index=False)["dice"].mean()
    case["in_domain"] = case["source"] == case["domain"]
    case["anatomy"] = anatomy(case["case"], case["domain"])
    arms = list(dict.fromkeys(case["arm"]))
    rows = []
    for src in [*sorted(case["source"].unique()), "all"]:
        for arm in arms:
            mine = case[case["arm"] == arm]
            cells = mine[["source", "seed"]].drop_duplicates()
            if src != "all":
                cells = cells[cells["source"] == src]
            if cells.empty:
                continue
            keys = list(cells.itertuples(index=False, name=None))

            def select(frame, keys=keys):
                return frame[[k in keys for k in zip(frame["source"], frame["seed"])]]

            row = {"source": src, "arm": arm, **_row(select(mine), select(curves[curves["arm"] == arm]), n_boot)}
            ref = select(case[case["arm"] == reference])  # the reference on the same sources and seeds
            same = len(ref[["source", "seed"]].drop_duplicates()) == len(keys)
            ref_ood = ref[~ref["in_domain"]]["dice"].mean() if same else np.nan
            ref_ind = ref[ref["in_domain"]]["dice"].mean() if same else np.nan
            row["ood_gain_pct"] = 100.0 * (row["ood_dice"] / ref_ood - 1.0)
            row["in_domain_change_pct"] = 100.0 * (row["in_domain_dice"] / ref_ind - 1.0)
            rows.append(row)
    return pd.DataFrame(rows)[list(SUMMARY_COLUMNS)]


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def summary_markdown(study: StudyConfig, table: pd.DataFrame) -> str:
    head = ["source", "arm", "seeds", "in-domain Dice", "out-of-domain Dice [95 % CI]",
            f"OOD gain vs {study.reference_arm}", "in-domain change", "s / iteration"]  # fmt: skip
    lines = [f"# Study `{study.name}`", "", study.description.strip(), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for r in table.itertuples():
        lines.append(
            f"| {r.source} | {r.arm} | {r.seeds} | {_fmt(r.in_domain_dice)} | {_fmt(r.ood_dice)} "
            f"[{_fmt(r.ood_ci_low)}, {_fmt(r.ood_ci_high)}] | {_fmt(r.ood_gain_pct, 1)} % | "
            f"{_fmt(r.in_domain_change_pct, 2)} % | {_fmt(r.s_per_iteration, 3)} |"
        )
    lines += ["", "Paper (AugLab vs nnU-Net default augmentation): +155 % out-of-domain Dice, -0.008 % in domain, "
              "~10 % faster training with GPU augmentation.", ""]  # fmt: skip
    return "\n".join(lines)


def summarize(study: StudyConfig, out: Path) -> Path:
    """Write the study-level files from whatever cells are finished; returns ``out``."""
    metrics, curves = collect(out, study)
    if metrics.empty:
        return out
    atomic_write_text(out / "metrics.csv", metrics.to_csv(index=False))
    atomic_write_text(out / "curves.csv", curves.to_csv(index=False))
    table = summary_table(metrics, curves, study.reference_arm, study.evaluation.bootstrap)
    atomic_write_text(out / "summary.csv", table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "summary.md", summary_markdown(study, table))
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


def export(out: Path, dest: Path) -> Path:
    """Copy the compact results (no checkpoints, no volumes) to ``dest`` (e.g. ``reports/data/study/<name>``)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (n for n in _schema.STUDY_FILES if n != "curves.csv"):
        if (out / name).is_file():
            atomic_write_text(dest / name, (out / name).read_text())
    if (out / "curves.csv").is_file():
        curves = compact_curves(pd.read_csv(out / "curves.csv"))
        atomic_write_text(dest / "curves.csv", curves.to_csv(index=False, float_format="%.5g"))
    return dest
