"""Study report: ``reports/study.md`` and its figures from the compact results of ``spineaug study --export``.

Reads ``<data>/<study>/{summary.csv,metrics.csv,curves.csv,study.json}`` (the files committed under
``reports/data/study/``) and writes ``study.md`` (one section per study: the headline table beside the paper's
figures, a source x target Dice heatmap per arm, the in-domain validation learning curves).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from spineaug import _io

PAPER = {"ood_gain_pct": 155.0, "in_domain_change_pct": -0.008, "speedup_pct": 10.0}
"""The reference paper's headline: out-of-domain Dice gain, in-domain change, training speed-up (GPU aug)."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v, digits: int = 3, suffix: str = "") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}{suffix}"


def _heatmaps(metrics, study: dict, out: Path) -> Path:
    plt = _pyplot()
    import numpy as np

    case = metrics.groupby(["source", "arm", "domain", "case"], as_index=False)["dice"].mean()
    cell = case.groupby(["source", "arm", "domain"])["dice"].mean()
    arms = list(dict.fromkeys(study["arms"]))
    sources = list(study["sources"])
    targets = list(dict.fromkeys(case["domain"]))
    ncols = min(3, len(arms))
    nrows = -(-len(arms) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 + 0.6 * len(targets) * ncols, nrows * (0.5 * len(sources) + 2.4)),
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, arm in zip(axes.flat, arms):
        ax.set_axis_on()
        grid = np.full((len(sources), len(targets)), np.nan)
        for i, s in enumerate(sources):
            for j, t in enumerate(targets):
                grid[i, j] = cell.get((s, arm, t), np.nan)
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        for i in range(len(sources)):
            for j in range(len(targets)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] < 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(len(targets)), targets, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(sources)), sources, fontsize=8)
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel("test domain", fontsize=8)
    for row in axes:
        row[0].set_ylabel("trained on", fontsize=8)
    fig.suptitle(f"study {study['name']}: mean Dice (vertebra, disc, canal) per source x test domain", fontsize=10)
    fig.tight_layout()
    path = out / f"study_{study['name']}_heatmap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curves(curves, study: dict, out: Path) -> Path:
    plt = _pyplot()
    sources = list(study["sources"])
    fig, axes = plt.subplots(1, len(sources), figsize=(4.2 * len(sources), 3.4), squeeze=False, sharey=True)
    val = curves.dropna(subset=["val_dice"])
    for ax, src in zip(axes[0], sources):
        for arm in dict.fromkeys(study["arms"]):
            sel = val[(val["source"] == src) & (val["arm"] == arm)]
            if sel.empty:
                continue
            mean = sel.groupby("iteration")["val_dice"].mean()
            ax.plot(mean.index, mean.values, marker="o", ms=3, label=arm)
        ax.set_title(f"trained on {src}: validation Dice ({src})", fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean foreground Dice")
    axes[0][0].set_ylim(0, 1)
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = out / f"study_{study['name']}_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _section(folder: Path, out: Path) -> list[str]:
    import pandas as pd

    study = json.loads((folder / "study.json").read_text())
    summary = pd.read_csv(folder / "summary.csv")
    metrics = pd.read_csv(folder / "metrics.csv")
    curves = pd.read_csv(folder / "curves.csv")
    ref = study.get("reference_arm", "nnunet")
    lines = [f"## Study `{study['name']}`", "", str(study.get("description", "")).strip(), "",
             f"Command: `spineaug study studies/{study['name']}.yaml --export reports/data/study`; "
             f"{len(study['seeds'])} seed(s) {study['seeds']}, {study['training']['iterations']} iterations, "
             f"patch {study['training']['patch_size']}, model {study['model']['name']} {study['model']['filters']}.",
             "", "| trained on | arm | in-domain Dice | out-of-domain Dice [95 % CI] | OOD gain vs "
             f"`{ref}` | in-domain change vs `{ref}` | s / iteration (augment) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary.itertuples():
        lines.append(
            f"| {r.source} | {r.arm} | {_fmt(r.in_domain_dice)} | {_fmt(r.ood_dice)} [{_fmt(r.ood_ci_low)}, "
            f"{_fmt(r.ood_ci_high)}] | {_fmt(r.ood_gain_pct, 1, ' %')} | {_fmt(r.in_domain_change_pct, 2, ' %')} | "
            f"{_fmt(r.s_per_iteration)} ({_fmt(r.augment_s_per_iteration)}) |"
        )
    lines += ["", f"Paper (AugLab vs nnU-Net's default augmentation, real CT/MRI, GPU): "
              f"+{PAPER['ood_gain_pct']:.0f} % out-of-domain Dice, {PAPER['in_domain_change_pct']} % in domain, "
              f"~{PAPER['speedup_pct']:.0f} % faster training with GPU augmentation. Out-of-domain Dice is the mean "
              "over every test case of every domain other than the source; the interval is a 95 % percentile "
              "bootstrap over test anatomies (the phantom shows the same anatomies in every domain; the target "
              "domains are fixed, not resampled). Gains compare with the reference arm on the same sources. "
              "Seconds per iteration (data wait + augmentation + network) are measured on the machine that ran "
              "the study, with two cells sharing its cores and other work running at times: they are not a "
              "controlled speed comparison between arms.", ""]  # fmt: skip
    heat = _heatmaps(metrics, study, out)
    curve = _curves(curves, study, out)
    lines += [f"![Dice heatmaps]({heat.name})", "", f"![learning curves]({curve.name})", ""]
    return lines


def write(data: str | Path = "reports/data/study", out: str | Path = "reports") -> Path:
    """Write ``<out>/study.md`` (+ PNGs) from every study folder under ``data``; returns the markdown path."""
    data, out = Path(data), Path(out)
    folders = sorted(p.parent for p in data.glob("*/summary.csv"))
    if not folders:
        raise FileNotFoundError(f"no study results under {data} (run `spineaug study ... --export {data}`)")
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Cross-domain study", "", "Generated by `spineaug report` from the compact study results in "
             f"`{data}`; every arm and seed that was run is listed.", ""]  # fmt: skip
    for folder in folders:
        lines += _section(folder, out)
    return _io.atomic_write_text(out / "study.md", "\n".join(lines))
