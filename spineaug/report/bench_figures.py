"""Figures of the benchmark report, drawn from the data frames of ``spineaug bench`` (renders only).

* :func:`speedups`: matched-work speed-up of spineaug over each baseline (the headline), with intervals.
* :func:`whole_presets`: seconds per batch of each library's whole pipeline (not matched work), labelled as such.
* :func:`scaling`: time versus volume size (at the headline batch) and versus batch size (at the headline size).
* :func:`transforms`: each transform forced on, mean milliseconds per batch, with its passes over the batch.
* :func:`training_split`: seconds per training iteration split into data wait, augmentation and network.
* :func:`time_split`: where each preset's call goes: its largest steps inside the preset and its own overhead.

Each returns the PNG path, or ``None`` when its inputs are absent. Legends sit outside the data.
"""

from __future__ import annotations

from pathlib import Path

from spineaug import _schema

ORDER = ["spineaug", *_schema.BASELINE_LIBRARIES]
COLORS = {"spineaug": "#1b9e77", "batchgenerators": "#d95f02", "torchio": "#7570b3", "monai": "#e7298a",
          "kornia": "#66a61e", "auglab": "#e6ab02"}
LABELS = {"batchgenerators": "batchgeneratorsv2", "auglab": "AugLab"}
SPLIT_COLORS = {"data": "#bdbdbd", "augment": "#e6550d", "network": "#3182bd"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported lazily: only the report needs it)."""
    import matplotlib  # optional: matplotlib (report extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return path


def _suffix(device: str) -> str:
    return "" if device == "cpu" else "_" + device


def impls(df) -> list[str]:
    present = list(dict.fromkeys(df["impl"]))
    return [i for i in ORDER if i in present] + [i for i in present if i not in ORDER]


def speedup_rows(ok, device: str, b: int, s: int) -> list[dict]:
    """Per (pipeline, baseline) at the headline case and the most threads: the matched-work speed-up (baseline mean
    / spineaug restricted to what the baseline expresses) and a conservative interval from the two 95 % intervals
    (baseline low / matched high, baseline high / matched low)."""
    dev = ok[(ok.device == device) & (ok.batch == b) & (ok["size"] == s)]
    if dev.empty:
        return []
    dev = dev[dev.torch_threads == dev.torch_threads.max()]
    out = []
    for pipeline in dict.fromkeys(dev.pipeline):
        sub = dev[dev.pipeline == pipeline]
        whole = sub[(sub.impl == "spineaug") & (sub.work == _schema.WORK_PRESET)]
        for impl in impls(sub):
            if impl == "spineaug":
                continue
            base = sub[sub.impl == impl].iloc[0]
            matched = sub[(sub.impl == "spineaug") & (sub.work == f"{_schema.WORK_MATCHED}{impl}")]
            ref = whole if base.fidelity == "exact" or matched.empty else matched
            if ref.empty:
                continue
            ref = ref.iloc[0]
            out.append(dict(
                pipeline=pipeline, baseline=impl, fidelity=str(base.fidelity), coverage=str(base.coverage),
                threads=int(base.torch_threads), speedup=float(base.mean_s) / float(ref.mean_s),
                low=float(base.mean_ci_low_s) / float(ref.mean_ci_high_s),
                high=float(base.mean_ci_high_s) / float(ref.mean_ci_low_s),
                matched="whole preset" if ref is not None and ref.work == _schema.WORK_PRESET else "matched work",
            ))  # fmt: skip
    return out


def speedups(ok, out: Path, device: str, b: int, s: int) -> Path | None:
    rows = speedup_rows(ok, device, b, s)
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.6))
    labels = [f"{r['pipeline']} vs {LABELS.get(r['baseline'], r['baseline'])} ({r['fidelity']}, {r['coverage']})"
              for r in rows]
    y = list(range(len(rows)))[::-1]
    x = [r["speedup"] for r in rows]
    err = [[r["speedup"] - r["low"] for r in rows], [r["high"] - r["speedup"] for r in rows]]
    ax.barh(y, x, xerr=err, capsize=3, color=[COLORS.get(r["baseline"], "grey") for r in rows])
    for yi, r in zip(y, rows):
        ax.text(r["high"] * 1.05, yi, f"{r['speedup']:.1f}x", va="center", fontsize=8)
    ax.axvline(1, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("speed-up on matched work (baseline mean / spineaug mean; log; > 1: spineaug faster)")
    ax.set_title(f"Matched work, B={b}, 1x{s}^3, {rows[0]['threads']} threads, {device}\n"
                 "bars: conservative 95 % interval from the two means' bootstrap intervals", fontsize=9)
    ax.set_xlim(min(0.8, min(r["low"] for r in rows) * 0.8), max(r["high"] for r in rows) * 1.6)
    return _save(fig, out / f"benchmark_speedups{_suffix(device)}.png")


def whole_presets(ok, out: Path, device: str, b: int, s: int) -> Path | None:
    dev = ok[(ok.device == device) & (ok.batch == b) & (ok["size"] == s) & (ok.work == _schema.WORK_PRESET)]
    pipelines = list(dict.fromkeys(dev.pipeline))
    if not pipelines:
        return None
    dev = dev[dev.torch_threads == dev.torch_threads.max()]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(pipelines), figsize=(5.0 * len(pipelines), 4.0), squeeze=False)
    for ax, pipeline in zip(axes[0], pipelines):
        sub = dev[dev.pipeline == pipeline]
        names = impls(sub)
        rows = [sub[sub.impl == i].iloc[0] for i in names]
        mean = [float(r.mean_s) for r in rows]
        err = [[m - float(r.mean_ci_low_s) for m, r in zip(mean, rows)],
               [float(r.mean_ci_high_s) - m for m, r in zip(mean, rows)]]
        ax.bar(range(len(names)), mean, yerr=err, capsize=3, color=[COLORS.get(i, "grey") for i in names])
        ax.set_xticks(range(len(names)), [f"{LABELS.get(i, i)}\n({r.fidelity})" for i, r in zip(names, rows)],
                      rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("seconds per batch (mean, 95 % CI)")
        ax.set_title(f"{pipeline}: whole pipelines (not matched work)", fontsize=9)
        for xi, m in enumerate(mean):
            ax.text(xi, m, f"{m * 1e3:.0f} ms" if m < 1 else f"{m:.2f} s", ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"Whole presets, B={b}, 1x{s}^3, {int(dev.torch_threads.max())} threads, {device}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / f"benchmark_bars{_suffix(device)}.png")


def scaling(ok, out: Path, device: str, b: int, s: int) -> Path | None:
    dev = ok[(ok.device == device) & (ok.work == _schema.WORK_PRESET)]
    if dev.empty:
        return None
    dev = dev[dev.torch_threads == dev.torch_threads.max()]
    pipelines = list(dict.fromkeys(dev.pipeline))
    plt = pyplot()
    fig, axes = plt.subplots(len(pipelines), 2, figsize=(10.5, 3.6 * len(pipelines)), squeeze=False)
    for row, pipeline in zip(axes, pipelines):
        sub = dev[dev.pipeline == pipeline]
        for ax, (fixed, value, free, xlabel) in zip(row, (
            ("batch", b, "size", f"cube edge S (voxels; batch B={b})"),
            ("size", s, "batch", f"batch size B (cube edge S={s})"),
        )):  # fmt: skip
            part = sub[sub[fixed] == value]
            for impl in impls(part):
                r = part[part.impl == impl].sort_values(free)
                ax.plot(r[free].astype(int), r.median_s.astype(float), marker="o", markersize=3,
                        color=COLORS.get(impl, "grey"), label=LABELS.get(impl, impl))
            ax.set_yscale("log")
            ax.set_xscale("log", base=2)
            ticks = sorted({int(v) for v in part[free]})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel(xlabel)
            ax.set_ylabel("seconds per batch (median)")
            ax.set_title(f"{pipeline}: time vs {'volume size' if free == 'size' else 'batch size'}", fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
        row[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.suptitle(f"Whole presets on {device}, {int(dev.torch_threads.max())} threads", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / f"benchmark_scaling{_suffix(device)}.png")


def transforms(tr, out: Path, device: str) -> Path | None:
    rows = tr[(tr.device == device) & (tr.status == _schema.STATUS_OK) & (tr.kind != _schema.FLOOR_KIND)].copy()
    if rows.empty:
        return None
    rows["mean_ms"] = rows.mean_s.astype(float) * 1e3
    rows = rows.sort_values("mean_ms")
    floor = tr[(tr.device == device) & (tr.kind == _schema.FLOOR_KIND)]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(rows) + 1.8))
    kinds = list(dict.fromkeys(rows.kind))
    palette = ["#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4",
               "#b2df8a"]
    colour = {k: palette[i % len(palette)] for i, k in enumerate(kinds)}
    lo = rows.mean_ms - rows.mean_ci_low_s.astype(float) * 1e3
    hi = rows.mean_ci_high_s.astype(float) * 1e3 - rows.mean_ms
    ax.barh(rows["transform"], rows.mean_ms, xerr=[lo.clip(lower=0), hi.clip(lower=0)], capsize=2,
            color=[colour[k] for k in rows.kind])
    for y, (r, h) in enumerate(zip(rows.itertuples(), hi)):
        passes = r.passes if isinstance(r.passes, str) else (f"{float(r.passes):g}" if r.passes == r.passes else "?")
        ax.text((r.mean_ms + max(float(h), 0.0)) * 1.08, y, f"{r.mean_ms:.1f} ms, {passes} passes", va="center",
                fontsize=7)
    smallest = float(rows.mean_ms.min())
    if not floor.empty:
        f = float(floor.mean_s.iloc[0]) * 1e3
        smallest = min(smallest, f)
        ax.axvline(f, color="black", lw=0.8, ls="--")
        ax.text(f, -0.9, f" 1 elementwise pass ({f:.1f} ms)", fontsize=7, va="center")
    ax.set_xscale("log")
    ax.set_ylim(-1.4, len(rows) - 0.5)
    ax.set_xlim(smallest * 0.6, float((rows.mean_ms + hi).max()) * 6)
    ax.set_xlabel("milliseconds per batch (mean, 95 % CI; log)")
    b, s = int(rows.batch.iloc[0]), int(rows["size"].iloc[0])
    ax.set_title(f"Each transform forced on (p = 1), B={b}, 1x{s}^3, {device}\n"
                 "label: mean and passes over the batch (the floor, x * c, is 1 pass)", fontsize=9)
    from matplotlib.patches import Patch  # optional: matplotlib (report extra)

    ax.legend(handles=[Patch(color=colour[k], label=k) for k in kinds], loc="upper left", bbox_to_anchor=(1.02, 1),
              fontsize=8, frameon=False, title="kind")
    return _save(fig, out / f"benchmark_transforms{_suffix(device)}.png")


def training_split(rows: list[dict[str, str]], out: Path, labels: dict[str, str]) -> Path | None:
    """Stacked bars per (cores, arm, workers) of ``training.csv`` rows: data wait, augmentation, network."""
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.6))
    names = [f"{r['cpu_budget']} core(s): {labels.get(r['arm'], r['arm']).replace('`', '')}, {r['workers']} worker(s)"
             for r in rows]
    y = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for part in ("data", "augment", "network"):
        vals = [float(r[f"{part}_s"]) if r.get(f"{part}_s") not in ("", None) else 0.0 for r in rows]
        ax.barh(y, vals, left=left, color=SPLIT_COLORS[part], label={"data": "data wait", "augment": "augmentation in "
                "the loop", "network": "network step"}[part])
        left = [a + v for a, v in zip(left, vals)]
    for yi, r in zip(y, rows):
        ax.plot([float(r["iteration_s"])], [yi], marker="|", color="black", markersize=12)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("seconds per training iteration (mean parts; black tick: wall-clock iteration time)")
    ax.set_title(f"Training iteration split, {rows[0]['device']}, patch {rows[0]['patch']}, B={rows[0]['batch']}",
                 fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    return _save(fig, out / "benchmark_training.png")


def time_split(rows: list[dict], out: Path, device: str) -> Path | None:
    """Stacked bars per (preset, threads) of :func:`spineaug.report.bench_targets.time_split`: the largest steps
    inside the preset (one colour per entry across the bars), the other steps (grey), the pipeline's own overhead
    (black)."""
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.62 * len(rows) + 1.6))
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a",
               "#fb9a99", "#cab2d6", "#ffff99"]
    named: dict[str, str] = {}  # entry -> its colour, the same in every bar
    fixed = {"the other entries": "#bdbdbd", "own overhead": "black"}
    used: set[str] = set()
    y = list(range(len(rows)))[::-1]
    for yi, r in zip(y, rows):
        left = 0.0
        for label, seconds in r["segments"]:
            key = "the other entries" if label.endswith(" other entries") else label
            used.add(key)
            if key not in fixed and key not in named:
                named[key] = palette[len(named) % len(palette)]
            ms = seconds * 1e3
            ax.barh(yi, ms, left=left, color=fixed.get(key) or named[key], edgecolor="white", linewidth=0.5)
            left += ms
        own_ms = r["segments"][-1][1] * 1e3
        ax.text(left + 2, yi, f"own overhead {own_ms:.1f} ms of {r['call'] * 1e3:.0f} ms "
                f"({own_ms / (r['call'] * 1e3):.1%})", va="center", fontsize=7)
    ax.set_yticks(y, [f"{r['pipeline']}, {r['threads']} thread(s)" for r in rows], fontsize=8)
    ax.set_xlim(0, max(sum(v for _, v in r["segments"]) for r in rows) * 1e3 * 1.45)
    ax.set_xlabel("milliseconds per call (mean over the clocked calls)")
    ax.set_title(f"Where a preset's call goes, {device}: its steps inside the preset, largest first (the one "
                 "resampling\nholds every geometric entry), the other steps summed, then the pipeline's own overhead",
                 fontsize=8.5)
    from matplotlib.patches import Patch  # optional: matplotlib (report extra)

    ax.legend(handles=[Patch(color=c, label=k) for k, c in [*named.items(), *fixed.items()] if k in used], loc="upper left",
              bbox_to_anchor=(1.02, 1), fontsize=7, frameon=False)
    return _save(fig, out / f"benchmark_time_split{_suffix(device)}.png")
