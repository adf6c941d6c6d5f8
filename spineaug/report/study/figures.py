"""The study page's figures (matplotlib, Agg): each function draws one PNG from a :class:`StudyResults`.

Every function returns the written path, or ``None`` when its inputs are not in the results (the page then says
so). Colours follow the study's arm order, the same in every figure; legends sit outside the axes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spineaug.report.study.results import ALL, CLASSES, StudyResults, label

DPI = 110


def _pyplot():
    import matplotlib  # optional: matplotlib (report extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colours(arms: list[str]) -> dict[str, tuple]:
    """Arm -> colour (tab10, then tab20), in the given order."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if len(arms) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(arms)}


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return path


def _block_label(source: str, arm: str) -> str:
    return label(arm) if source == ALL else f"{label(arm)} ({source})"


def heatmap(res: StudyResults, out: Path) -> Path | None:
    """Source x target domain mean Dice per arm (mean over seeds of each seed's case mean)."""
    if not res.has_results:
        return None
    plt = _pyplot()
    cell = res.cell_means().set_index(["source", "arm", "domain"])["dice"]
    arms, sources, targets = res.arms, res.sources, res.targets()
    ncols = min(3, len(arms))
    nrows = math.ceil(len(arms) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 + 0.6 * len(targets) * ncols, nrows * (0.5 * len(sources) + 2.4)),
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, arm in zip(axes.flat, arms):
        ax.set_axis_on()
        grid = np.array([[cell.get((s, arm, t), np.nan) for t in targets] for s in sources], dtype=float)
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        for i in range(len(sources)):
            for j in range(len(targets)):
                if not np.isnan(grid[i, j]):
                    weight = "bold" if sources[i] == targets[j] else "normal"
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, fontweight=weight,
                            color="white" if grid[i, j] < 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(len(targets)), targets, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(sources)), sources, fontsize=8)
        ax.set_title(label(arm), fontsize=10)
        ax.set_xlabel("test domain", fontsize=8)
    for row in axes:
        row[0].set_ylabel("trained on", fontsize=8)
    fig.suptitle(f"study {res.name}: mean Dice (vertebra, disc, canal), mean over seeds; in-domain in bold; "
                 "blank: not run", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.015, pad=0.02, label="Dice")
    return _save(fig, res_path(out, res, "heatmap"))


def res_path(out: Path, res: StudyResults, what: str) -> Path:
    return out / f"study_{res.name}_{what}.png"


def _ordered_targets(res: StudyResults, source: str) -> list[str]:
    fam = res.families
    targets = [t for t in res.targets() if t != source]
    return sorted(targets, key=lambda t: (fam.get(t, "other") != fam.get(source, "other"), res.targets().index(t)))


def ood_spread(res: StudyResults, out: Path) -> Path | None:
    """Out-of-domain Dice per target domain: one box per arm over every test anatomy of every seed; a panel per
    source."""
    if not res.has_results:
        return None
    plt = _pyplot()
    case = res.case_dice()
    arms, col = res.arms, colours(res.arms)
    sources = res.sources
    n_targets = max(len(_ordered_targets(res, s)) for s in sources)
    fig, axes = plt.subplots(len(sources), 1, figsize=(max(8.0, 0.22 * len(arms) * n_targets + 2), 3.0 * len(sources)),
                             squeeze=False)  # fmt: skip
    width = 0.8 / max(1, len(arms))
    for ax, src in zip(axes[:, 0], sources):
        targets = _ordered_targets(res, src)
        mine = case[case["source"] == src]
        for k, arm in enumerate(arms):
            data = [mine[(mine["arm"] == arm) & (mine["domain"] == t)]["dice"].to_numpy() for t in targets]
            if not any(len(d) for d in data):
                continue
            pos = np.arange(len(targets)) - 0.4 + width * (k + 0.5)
            keep = [i for i, d in enumerate(data) if len(d)]
            bp = ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=width * 0.85, patch_artist=True,
                            showfliers=False, medianprops={"color": "black", "lw": 0.8},
                            whiskerprops={"lw": 0.6}, capprops={"lw": 0.6})  # fmt: skip
            for patch in bp["boxes"]:
                patch.set(facecolor=col[arm], alpha=0.75, lw=0.5)
            for i in keep:
                jitter = np.linspace(-0.3, 0.3, len(data[i])) * width
                ax.plot(pos[i] + jitter, data[i], ".", ms=2, color="black", alpha=0.5)
            ax.plot([], [], "s", color=col[arm], label=label(arm))
        ax.set_xticks(range(len(targets)), targets, fontsize=8)
        ax.set_xlim(-0.5, len(targets) - 0.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Dice (case)", fontsize=8)
        ax.set_title(f"trained on {src}: out-of-domain Dice per test domain (same family first)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="arm", title_fontsize=8)
    fig.tight_layout()
    return _save(fig, res_path(out, res, "ood_spread"))


def _interval_bars(ax, groups: list[str], series: dict[str, list[tuple[float, float, float]]], col: dict) -> None:
    n = max(1, len(series))
    width = 0.8 / n
    for k, (name, values) in enumerate(series.items()):
        mean = np.array([v[0] for v in values], dtype=float)
        lo = np.array([v[1] for v in values], dtype=float)
        hi = np.array([v[2] for v in values], dtype=float)
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        x = np.arange(len(groups)) - 0.4 + width * (k + 0.5)
        ax.bar(x, mean, width * 0.9, color=col[name], label=name, yerr=err, capsize=2, error_kw={"lw": 0.7})
    ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def classes(res: StudyResults, out: Path) -> Path | None:
    """Per-class Dice and HD95, in domain and out of domain, per arm: a row of panels per group of
    :meth:`StudyResults.groups` (pooled arms apart from single-source rows)."""
    groups = res.groups()
    if not groups:
        return None
    plt = _pyplot()
    cmap = plt.get_cmap("Set2")
    col = {c: cmap(i) for i, c in enumerate(CLASSES)}
    width = max(len(b) for _, b in groups)
    fig, axes = plt.subplots(len(groups), 4, figsize=(max(14.0, 2.0 * width + 4), 3.4 * len(groups)), squeeze=False)
    panels = [(m, u, t, w) for m, u in (("dice", "Dice"), ("hd95", "HD95 (mm)"))
              for t, w in (("in_domain", "in domain"), ("ood", "out of domain"))]  # fmt: skip
    for g, (title, blocks) in enumerate(groups):
        names = [label(a) for _, a in blocks]
        for j, (measure, unit, target, where) in enumerate(panels):
            ax = axes[g, j]
            _interval_bars(ax, names, {c: [res.stat(s, a, measure, target, c)[:3] for s, a in blocks]
                                       for c in CLASSES}, col)  # fmt: skip
            ax.set_title(f"{unit}, {where}", fontsize=9)
            if measure == "dice":
                ax.set_ylim(0, 1)
        axes[g, 0].set_ylabel(title.replace(" (", "\n("), fontsize=8)
    axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="class", title_fontsize=8)
    fig.suptitle(f"study {res.name}: per-class Dice and HD95, mean over seeds, 95 % two-level bootstrap interval",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return _save(fig, res_path(out, res, "classes"))


def families(res: StudyResults, out: Path) -> Path | None:
    """Out-of-domain Dice on the CT-family vs the MR-family targets, per source and arm."""
    fams = list(dict.fromkeys(res.families.values()))
    if res.stats is None or not fams or not res.has_results:
        return None
    plt = _pyplot()
    cmap = plt.get_cmap("Dark2")
    col = {f"{f.upper()} family": cmap(i) for i, f in enumerate(fams)}
    sources = res.sources
    fig, axes = plt.subplots(1, len(sources), figsize=(max(4.0, 0.55 * len(res.arms) + 1.5) * len(sources), 3.6),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, src in zip(axes[0], sources):
        arms = [a for s, a in res.blocks() if s == src]
        series = {f"{f.upper()} family": [res.stat(src, a, "dice", f"ood_{f}")[:3] for a in arms] for f in fams}
        _interval_bars(ax, [label(a) for a in arms], series, col)
        ax.set_title(f"trained on {src}", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("out-of-domain Dice", fontsize=8)
    axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="target domains",
                       title_fontsize=8)  # fmt: skip
    fig.tight_layout()
    return _save(fig, res_path(out, res, "families"))


def curves(res: StudyResults, out: Path) -> Path | None:
    """Learning curves, mean over seeds per arm: in-domain validation Dice (top), out-of-domain monitoring Dice
    (bottom, the mean over the monitored domains)."""
    if res.curves is None or "val_dice" not in res.curves:
        return None
    plt = _pyplot()
    sources, col = res.sources or sorted(res.curves["source"].unique()), colours(res.arms or list(res.curves["arm"].unique()))
    fig, axes = plt.subplots(2, len(sources), figsize=(4.2 * len(sources) + 1.5, 6.4), squeeze=False, sharey=True)
    val = res.curves.dropna(subset=["val_dice"])
    mon = res.monitor
    for j, src in enumerate(sources):
        for arm in col:
            sel = val[(val["source"] == src) & (val["arm"] == arm)]
            if not sel.empty:
                per_seed = sel.groupby(["seed", "iteration"])["val_dice"].mean()
                mean = per_seed.groupby(level="iteration").mean()
                axes[0, j].plot(mean.index, mean.values, marker="o", ms=3, color=col[arm], label=label(arm))
            if mon is not None:
                sel = mon[(mon["source"] == src) & (mon["arm"] == arm)]
                if not sel.empty:
                    per_seed = sel.groupby(["seed", "iteration"])["dice"].mean()
                    mean = per_seed.groupby(level="iteration").mean()
                    axes[1, j].plot(mean.index, mean.values, marker="o", ms=3, color=col[arm], label=label(arm))
        axes[0, j].set_title(f"trained on {src}: validation Dice ({src})", fontsize=9)
        axes[1, j].set_title(f"trained on {src}: monitoring Dice, other domains", fontsize=9)
        if mon is None:
            axes[1, j].text(0.5, 0.5, "no out-of-domain monitoring\nin these results", ha="center", va="center",
                            transform=axes[1, j].transAxes, fontsize=9, color="gray")  # fmt: skip
        for i in range(2):
            axes[i, j].set_xlabel("iteration", fontsize=8)
            axes[i, j].grid(alpha=0.3)
    for i in range(2):
        axes[i, 0].set_ylabel("mean foreground Dice", fontsize=8)
    axes[0, 0].set_ylim(0, 1)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95), title="arm (mean over seeds)",
               title_fontsize=8)  # fmt: skip
    fig.tight_layout()
    return _save(fig, res_path(out, res, "curves"))


def _point(res: StudyResults, source: str, arm: str):
    ind, _, _, ind_seeds = res.stat(source, arm, "dice", "in_domain")
    ood, _, _, ood_seeds = res.stat(source, arm, "dice", "ood")
    if math.isnan(ind) or math.isnan(ood):
        return None
    xs = [v for _, v in ind_seeds] or [ind]
    ys = [v for _, v in ood_seeds] or [ood]
    return ind, ood, (ind - min(xs), max(xs) - ind), (ood - min(ys), max(ys) - ood)


def tradeoff(res: StudyResults, extra: list[StudyResults], out: Path) -> Path | None:
    """In-domain vs out-of-domain Dice, one point per arm (mean over seeds; bars: the seeds' range), a panel per
    source; ``extra`` studies' arms (the ablations) are added as hollow markers (one shape per study) on their
    sources."""
    if res.stats is None:
        return None
    plt = _pyplot()
    sources = res.sources
    names = list(dict.fromkeys([*res.arms, *(a for e in extra for a in e.arms)]))
    col = colours(names)
    fig, axes = plt.subplots(1, len(sources), figsize=(4.2 * len(sources) + 2.0, 4.0), squeeze=False)
    for ax, src in zip(axes[0], sources):
        for arm in res.arms:
            p = _point(res, src, arm)
            if p is None:
                continue
            ax.errorbar(p[0], p[1], xerr=np.reshape(p[2], (2, 1)), yerr=np.reshape(p[3], (2, 1)), fmt="o", color=col[arm], ms=6, capsize=2,
                        label=label(arm))  # fmt: skip
        for e, marker in zip(extra, "Ds^vP*"):
            for arm in e.arms:
                p = _point(e, src, arm)
                if p is None:
                    continue
                ax.errorbar(p[0], p[1], xerr=np.reshape(p[2], (2, 1)), yerr=np.reshape(p[3], (2, 1)), fmt=marker, mfc="none", color=col[arm], ms=7,
                            capsize=2, label=f"{label(arm)} [{e.name}]")  # fmt: skip
        ax.set_title(f"trained on {src}", fontsize=9)
        ax.set_xlabel("in-domain Dice", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("out-of-domain Dice", fontsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95),
               title="arm [ablation study]", title_fontsize=8)  # fmt: skip
    fig.suptitle(f"study {res.name}: in-domain vs out-of-domain Dice (mean over seeds; bars: range over seeds)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return _save(fig, res_path(out, res, "tradeoff"))


__all__ = ["classes", "colours", "curves", "families", "heatmap", "ood_spread", "res_path", "tradeoff"]


LABEL_COLOURS = {1: ("vertebra", "#e6550d"), 2: ("disc", "#31a354"), 3: ("canal", "#3182bd")}
"""Foreground label -> (name, colour) of the example-prediction overlays."""


def example_targets(res: StudyResults, source: str) -> list[str]:
    """The source itself, then two other domains: the first of the other modality family and the first other of
    its own family (else the next of the other family), in the study's domain order."""
    others = _ordered_targets(res, source)  # other family first
    fam = res.families
    other = [t for t in others if fam.get(t, "other") != fam.get(source, "other")]
    same = [t for t in others if fam.get(t, "other") == fam.get(source, "other")]
    picks = (other[:1] + same[:1]) if same else other[:2]
    if len(picks) < 2:
        picks = others[:2]
    return [source, *picks]


def examples(res: StudyResults, out: Path) -> Path | None:
    """Example predictions from ``examples.npz``: per source (a column block) one in-domain and two out-of-domain
    test cases, per arm (a row) the first seed's prediction (filled) over the ground truth (contours), on the
    mid-sagittal slice of the z-scored image."""
    path = res.folder / "examples.npz"
    if not path.is_file() or not res.has_results:
        return None
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    cases = {k.split("/")[1]: k.split("/")[2] for k in sorted(arrays) if k.startswith("image/")}  # domain -> case
    seed = min(res.seeds) if res.seeds else 0
    blocks = [(s, t) for s in res.sources for t in example_targets(res, s) if t in cases]
    arms = res.arms
    if not blocks or not arms:
        return None
    plt = _pyplot()
    from matplotlib.colors import ListedColormap  # optional: matplotlib (report extra)
    from matplotlib.patches import Patch

    fill = ListedColormap([(0, 0, 0, 0)] + [LABEL_COLOURS[k][1] for k in (1, 2, 3)])
    fig, axes = plt.subplots(len(arms), len(blocks), figsize=(1.25 * len(blocks) + 1.2, 1.9 * len(arms) + 0.8),
                             squeeze=False)  # fmt: skip
    for j, (source, target) in enumerate(blocks):
        case = cases[target]
        image, truth = arrays[f"image/{target}/{case}"].astype(np.float32), arrays[f"label/{target}/{case}"]
        for i, arm in enumerate(arms):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            slug = f"{source}__{label(arm)}__s{seed}"
            pred = arrays.get(f"pred/{slug}/{target}/{case}")
            ax.imshow(image.T, origin="lower", cmap="gray", vmin=-2.5, vmax=2.5, interpolation="nearest")
            if pred is None:
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", fontsize=7, color="w")
            else:
                ax.imshow(pred.T, origin="lower", cmap=fill, vmin=-0.5, vmax=3.5, alpha=0.45, interpolation="nearest")
            for k, (_, colour) in LABEL_COLOURS.items():
                if (truth == k).any():
                    ax.contour((truth == k).T.astype(float), levels=[0.5], colors=[colour], linewidths=0.6,
                               origin="lower")  # fmt: skip
            if i == 0:
                kind = "in domain" if target == source else "out of domain"
                ax.set_title(f"{source} -> {target}\n({kind})", fontsize=7)
            if j == 0:
                ax.set_ylabel(label(arm), fontsize=7)
    handles = [Patch(facecolor=c, alpha=0.45, label=f"{n}: prediction (filled)") for n, c in LABEL_COLOURS.values()]
    handles += [Patch(facecolor="none", edgecolor=c, label=f"{n}: ground truth (contour)") for n, c in
                LABEL_COLOURS.values()]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.subplots_adjust(bottom=0.8 / (1.9 * len(arms) + 0.8), hspace=0.25, wspace=0.05)
    return _save(fig, res_path(out, res, "examples"))
