"""The target parts of ``reports/benchmark.md``: matched work with 1 and 2 threads (means with 95 %
bootstrap intervals), the overhead per preset, memory, the op-count check, the training-throughput table (when
``training.csv`` is present) and a verdict per target, missed targets listed with where the time goes.

Reads only the data frames of the result files (``spineaug._schema`` names their columns); nothing is measured here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spineaug import _schema
from spineaug.report import training as training_report

SPEED_TARGETS = {("nnunet", "batchgenerators"): 6.0, ("xdomain", "auglab"): 5.0, ("xdomain", "monai"): 1.0,
                 ("xdomain", "torchio"): 1.0, ("xdomain", "kornia"): 1.0}
"""(preset, baseline) -> required speed-up on matched work (mean, headline case, the most threads)."""
OVERHEAD_TARGET = 0.05
"""The overhead target: measured mean minus the sum of expected entry costs, at most this fraction of the mean."""


def within_overhead(frac: float) -> bool:
    """Whether an overhead fraction meets :data:`OVERHEAD_TARGET` (inclusive, and a gap that is exactly the target
    in decimal is not missed by its binary rounding)."""
    return frac <= OVERHEAD_TARGET + 1e-12
THREAD_NOTES = {
    "batchgenerators": "per-sample loop, single-threaded per sample (nnU-Net parallelises over worker processes)",
    "torchio": "per-sample loop, single-threaded per sample (TorchIO parallelises over DataLoader workers)",
    "auglab": "its own process, with the row's torch thread count",
}
"""What the thread count means for each baseline (shown in the matched-work table)."""
TRAINING_HOOK = (
    "`spineaug bench --training` (a fixed small MONAI network on phantom patches: seconds per training iteration "
    "split into data wait, augmentation and network, for batchgeneratorsv2 in DataLoader workers, spineaug "
    "`nnunet` and `xdomain` in the loop, and no augmentation) writes `training.csv` into this results folder; "
    "the report renders it here when present."
)


def fmt_s(x: float) -> str:
    """Seconds as ``45 us``, ``12.3 ms`` or ``1.23 s``; ``-`` for NaN."""
    if x != x:
        return "-"
    if abs(x) < 1e-3:
        return f"{x * 1e6:.0f} us"
    return f"{x:.2f} s" if abs(x) >= 1 else f"{x * 1e3:.1f} ms"


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def mean_ci(r: Any) -> str:
    """``mean [low, high]`` of a pipelines/transforms row."""
    return f"{fmt_s(float(r.mean_s))} [{fmt_s(float(r.mean_ci_low_s))}, {fmt_s(float(r.mean_ci_high_s))}]"


def _row(df, **where: Any):
    sub = df
    for column, value in where.items():
        sub = sub[sub[column] == value]
    return None if sub.empty else sub.iloc[0]


def matched_tables(ok, device: str, b: int, s: int) -> list[str]:
    """Per preset: each baseline against spineaug's whole preset and its matched work, at every thread count."""
    dev = ok[(ok.device == device) & (ok.batch == b) & (ok["size"] == s)]
    lines: list[str] = []
    for pipeline in dict.fromkeys(dev.pipeline):
        sub = dev[dev.pipeline == pipeline]
        rows = []
        for threads in sorted(set(sub.torch_threads)):
            t = sub[sub.torch_threads == threads]
            whole = _row(t, impl="spineaug", work=_schema.WORK_PRESET)
            if whole is None:
                continue
            rows.append([f"spineaug `{pipeline}` (whole preset)", "reference", whole.coverage, threads,
                         mean_ci(whole), "1", "-", "-", f"{fmt_s(float(whole.median_s))}", int(whole.repeats), ""])
            for base in t[t.impl != "spineaug"].itertuples():
                matched = _row(t, impl="spineaug", work=f"{_schema.WORK_MATCHED}{base.impl}")
                exact = base.fidelity == "exact"
                if exact:
                    matched = whole
                ratio_whole = float(base.mean_s) / float(whole.mean_s)
                ratio_matched = float(base.mean_s) / float(matched.mean_s) if matched is not None else float("nan")
                rows.append([base.impl, base.fidelity, base.coverage, threads, mean_ci(base), f"{ratio_whole:.2f}x",
                             "(same)" if exact else (mean_ci(matched) if matched is not None else "-"),
                             f"**{ratio_matched:.2f}x**" if ratio_matched == ratio_matched else "-",
                             fmt_s(float(base.median_s)), int(base.repeats), THREAD_NOTES.get(base.impl, "")])
        if rows:
            lines += [f"### `{pipeline}`", "", md_table(
                ["implementation", "fidelity", "coverage", "threads", "mean [95% CI]", "vs whole preset",
                 "spineaug matched work, mean [95% CI]", "vs matched work", "median", "n", "threads note"], rows), ""]
    return lines


def overhead(ov, ok, device: str, pipeline: str, threads: int | None = None, en=None) -> dict[str, Any] | None:
    """Measured mean, sum of expected entry costs and their gap for one preset at ``threads`` (default: the thread
    count of its first overhead row), or ``None``.

    The mean is that of the clocked calls of the same phase of the run (``engine.csv`` check ``call_mean``, timed
    just before the entries forced on) when ``en`` has it, else the preset's row in ``pipelines.csv`` (timed earlier
    in the run: on a shared machine the same calls can run tens of percent faster or slower by then). ``source``
    says which.
    """
    if ov.empty or ok.empty:
        return None
    rows = ov[(ov.device == device) & (ov.pipeline == pipeline) & (ov.status == _schema.STATUS_OK)]
    if threads is not None:
        rows = rows[rows.torch_threads.astype(int) == threads]
    if rows.empty:
        return None
    threads, b, s = int(rows.torch_threads.iloc[0]), int(rows.batch.iloc[0]), int(rows["size"].iloc[0])
    ref = _row(ok, device=device, pipeline=pipeline, impl="spineaug", work=_schema.WORK_PRESET, batch=b, size=s,
               torch_threads=threads)
    if ref is None:
        return None
    mean, source = float(ref.mean_s), "preset timing"
    clocked = _clocked_mean(en, device, pipeline, threads, b, s)
    if clocked == clocked:
        mean, source = clocked, "clocked calls"
    expected = float(rows.expected_s.astype(float).sum())
    top = rows.assign(e=rows.expected_s.astype(float)).sort_values("e", ascending=False)
    return dict(mean=mean, expected=expected, gap=mean - expected, frac=(mean - expected) / mean, rows=top,
                threads=threads, b=b, s=s, source=source)


def _clocked_mean(en, device: str, pipeline: str, threads: int, b: int, s: int) -> float:
    """The ``call_mean`` of ``engine.csv`` for one preset and case, NaN when absent or not measured."""
    if en is None or en.empty or "check" not in en:
        return float("nan")
    case = (en.torch_threads.astype(float) == threads) & (en.batch.astype(float) == b) & (en["size"].astype(float) == s)
    rows = en[case]
    r = _row(rows, device=device, pipeline=pipeline, check="call_mean")
    if r is None:
        return float("nan")
    try:
        return float(r.value)
    except (TypeError, ValueError):
        return float("nan")


def fixed_cost_rows(en, ok, s: int) -> list[list[str]]:
    """Verdict rows of the measured fixed cost per call (``engine.csv`` check ``fixed_cost``: the preset on a tiny
    batch) against the preset's mean at the headline size ``s``, same batch and thread count, on the CPU."""
    if en.empty or "check" not in en or ok.empty:
        return []
    rows = []
    for r in en[(en.check == "fixed_cost") & (en.device == "cpu")].itertuples():
        ref = _row(ok, device="cpu", pipeline=r.pipeline, impl="spineaug", work=_schema.WORK_PRESET,
                   batch=int(r.batch), size=s, torch_threads=int(r.torch_threads))
        try:
            fixed = float(r.value)
        except (TypeError, ValueError):
            fixed = float("nan")
        target = (f"`{r.pipeline}` fixed cost per call (the preset at B={r.batch}, {r.size}^3) <= "
                  f"{OVERHEAD_TARGET:.0%} of the mean, {r.torch_threads} thread(s)")
        if ref is None or fixed != fixed:
            rows.append([target, "-", "not measured", str(r.note) if fixed != fixed else ""])
            continue
        frac = fixed / float(ref.mean_s)
        rows.append([target, f"{frac:.1%} ({fmt_s(fixed)} of {fmt_s(float(ref.mean_s))} at S={s})",
                     "met" if within_overhead(frac) else "missed", ""])
    return rows


def own_overhead(en, device: str = "cpu") -> list[dict[str, Any]]:
    """Per preset and thread count, the pipeline's own overhead measured inside its calls (``engine.csv`` checks
    ``call_mean`` and ``own_overhead``, seconds): ``dict(pipeline, threads, own, call, frac)``; ``own`` and ``frac``
    are NaN where it was not measured. Empty for files written before these checks."""
    if en.empty or "check" not in en:
        return []
    rows = en[en.device == device]
    out = []
    for r in rows[rows.check == "own_overhead"].itertuples():
        mean = _clocked_mean(en, device, r.pipeline, int(r.torch_threads), int(r.batch), int(r.size))
        try:
            own = float(r.value)
        except (TypeError, ValueError):
            own = float("nan")
        out.append(dict(pipeline=r.pipeline, threads=int(r.torch_threads), own=own, call=mean,
                        frac=own / mean if mean else float("nan"), note=str(r.note)))
    return out


def own_overhead_rows(en) -> list[list[str]]:
    """Verdict rows of the pipeline's own overhead (call time minus its clocked steps) against the same calls' mean."""
    rows = []
    for o in own_overhead(en):
        target = (f"`{o['pipeline']}` own overhead (each call minus its clocked steps: parameter draws, checks, "
                  f"glue) <= {OVERHEAD_TARGET:.0%} of the call, {o['threads']} thread(s)")
        if o["frac"] != o["frac"]:
            rows.append([target, "-", "not measured", o["note"]])
            continue
        rows.append([target, f"{o['frac']:.1%} ({fmt_s(o['own'])} of {fmt_s(o['call'])})",
                     "met" if within_overhead(o["frac"]) else "missed", ""])
    return rows


def _overhead_cases(ov) -> list[tuple[str, int]]:
    """(preset, thread count) of the overhead rows, presets in their order, fewest threads first."""
    if ov.empty:
        return []
    threads = sorted({int(t) for t in ov.torch_threads})
    return [(p, t) for p in dict.fromkeys(ov.pipeline) for t in threads
            if ((ov.pipeline == p) & (ov.torch_threads.astype(int) == t)).any()]


def inside(r: Any) -> float:
    """An ``overhead.csv`` row's mean seconds inside the preset (NaN when not measured, or in older files)."""
    try:
        return float(getattr(r, "in_pipeline_s", float("nan")))
    except (TypeError, ValueError):
        return float("nan")


def where_time_goes(info: dict[str, Any] | None, n: int = 3) -> str:
    """The largest expected entry costs (with their measured time inside the preset, when known) and the gap."""
    if info is None:
        return "-"
    parts = []
    for r in info["rows"].head(n).itertuples():
        measured = inside(r)
        parts.append(f"{r.transform} {fmt_s(float(r.expected_s))}"
                     + (f" (inside the preset {fmt_s(measured)})" if measured == measured else ""))
    return ", ".join(parts) + f"; gap {fmt_s(info['gap'])} of {fmt_s(info['mean'])}"


def overhead_section(ov, ok, en, device: str) -> list[str]:
    if ov.empty:
        return []
    summary, details = [], []
    for pipeline, threads in _overhead_cases(ov[ov.device == device]):
        info = overhead(ov, ok, device, pipeline, threads, en)
        if info is None:
            continue
        verdict = "met" if within_overhead(info["frac"]) else "missed"
        mean = fmt_s(info["mean"]) + (" (clocked calls)" if info["source"] == "clocked calls" else "")
        summary.append([pipeline, f"B={info['b']} S={info['s']}, {info['threads']} threads", mean,
                        fmt_s(info["expected"]), fmt_s(info["gap"]), f"{info['frac']:.0%}", verdict])
        entries = [[r.position, r.transform, r.firing_p, fmt_s(float(r.forced_mean_s)), fmt_s(float(r.expected_s)),
                    fmt_s(inside(r)) if inside(r) == inside(r) else (r.note if "resampling" in str(r.note) else "-")]
                   for r in info["rows"].itertuples()]
        details += [f"<details><summary>{pipeline}, {threads} thread(s): expected cost per entry</summary>", "",
                    md_table(["#", "entry", "fires per sample", "forced on (mean)", "expected per call",
                              "inside the preset (mean per call)"], entries), "",
                    "</details>", ""]
    return [f"## Pipeline overhead on {device}", "",
            "Expected cost of an entry = its per-sample firing probability x its mean time forced on (its own "
            "parameters, whole batch). Overhead here = the preset's measured mean minus the sum of expected costs "
            f"(target: <= {OVERHEAD_TARGET:.0%} of the mean): the firing model's residual. The mean is that of the "
            "clocked calls below where they were measured, timed in the same phase of the run as the entries "
            "(the same calls timed earlier in the run, for the speed-ups, can differ by tens of percent on a shared "
            "machine), else the preset's timing. A negative overhead means the sum over-counts (e.g. "
            "geometric entries forced on alone each pay a resampling that the pipeline fuses into one). Measured at "
            "each thread count: forced on, an entry works on every sample of the batch, while in the preset often "
            "one sample fires, so a gap that grows with the thread count is work that does not spread over the "
            "threads (parallel efficiency), not extra work. The fixed cost per call (the preset on a tiny batch, "
            "where the tensor work is negligible: dispatch, parameter draws, host work) is measured directly and "
            "judged in the verdicts beside this gap.", "",
            md_table(["preset", "case", "measured mean", "sum of expected", "overhead", "of the mean", "verdict"],
                     summary), ""] + own_section(en, device) + details


SPLIT_TOP = 6
"""How many steps :func:`time_split` names per preset; the others are summed into one segment."""


def time_split(ov, en, device: str) -> list[dict[str, Any]]:
    """Where each preset's call goes, per thread count, from the clocked calls: its largest steps (mean seconds per
    call inside the preset, ``overhead.csv`` ``in_pipeline_s``), the rest of its steps summed, and its own overhead
    (``engine.csv``). One dict per (preset, threads) with both measured: ``pipeline``, ``threads``, ``call`` (the
    clocked mean call) and ``segments``, ``[(label, seconds), ...]`` largest step first, own overhead last."""
    if ov.empty or "in_pipeline_s" not in ov:
        return []
    own = {(o["pipeline"], o["threads"]): o for o in own_overhead(en, device) if o["frac"] == o["frac"]}
    out = []
    for pipeline, threads in _overhead_cases(ov[ov.device == device]):
        o = own.get((pipeline, threads))
        rows = ov[(ov.device == device) & (ov.pipeline == pipeline) & (ov.torch_threads.astype(int) == threads)]
        steps = [(_step_label(r), inside(r)) for r in rows.itertuples() if inside(r) == inside(r)]
        if o is None or not steps:
            continue
        steps.sort(key=lambda kv: -kv[1])
        segments = steps[:SPLIT_TOP]
        rest = steps[SPLIT_TOP:]
        if rest:
            segments.append((f"{len(rest)} other entries", sum(v for _, v in rest)))
        segments.append(("own overhead", o["own"]))
        out.append(dict(pipeline=pipeline, threads=threads, call=o["call"], segments=segments))
    return out


def _step_label(r: Any) -> str:
    """An entry's name, or ``resampling (A, B)`` for the one resampling that holds several geometric entries."""
    note = str(r.note) if isinstance(r.note, str) else ""
    marker = "one resampling: "
    if marker in note:  # after a forced timing's own note, if any ("...; one resampling: #0 Spatial, #8 Flip")
        held = note.split(marker, 1)[1].split(";")[0]
        return "resampling (" + ", ".join(part.split(" ", 1)[1] for part in held.split(", ")) + ")"
    return str(r.transform)


def own_section(en, device: str) -> list[str]:
    """The pipeline's own overhead measured inside its calls, as a table (nothing for files without it)."""
    rows = [[o["pipeline"], o["threads"], fmt_s(o["call"]), fmt_s(o["call"] - o["own"]), fmt_s(o["own"]),
             f"{o['frac']:.1%}" if o["frac"] == o["frac"] else "-",
             "met" if within_overhead(o["frac"]) else ("missed" if o["frac"] == o["frac"] else "not measured")]
            for o in own_overhead(en, device)]
    if not rows:
        return []
    return ["Measured inside the calls instead of modelled: the preset timed again at the headline case with each "
            "step clocked (the one resampling, each other entry's `apply`; `spineaug.pipeline.timing_steps`). Each "
            "call's time minus its steps is the pipeline's own work: parameter draws, input checks and the glue "
            "between steps. Each entry's mean time inside the preset is in the per-entry tables below: where it "
            "exceeds the expected cost, the firing model under-counts that entry (the gap above), not the pipeline.",
            "", md_table(["preset", "threads", "mean call", "in the steps", "own overhead", "of the call", "verdict"],
                         rows), ""]


def memory_section(mem) -> list[str]:
    if mem.empty:
        return []
    rows = [[r.device, r.pipeline, r.check, f"B={r.batch} S={r['size']}", r.calls,
             f"{float(r.value_bytes) / 2**20:.2f} MiB", f"{float(r.reference_bytes) / 2**20:.2f} MiB",
             f"{float(r.ratio):.2f}x" if "peak" in r.check else f"{float(r.ratio):+.2%}", r.target, r.verdict,
             r.method] for _, r in mem.iterrows()]
    return ["## Memory", "",
            "Peak extra memory: bytes a call allocates at its peak beyond what existed before it (outputs "
            "included), against the batch's bytes (image + label). On the CPU it counts torch's CPU allocator through "
            "`torch.profiler` memory events: `tracemalloc` sees only Python's allocator (tensor memory is invisible "
            "to it) and process RSS includes the interpreter, libraries and freed-but-kept pages. Drift: process RSS "
            "(and on CUDA `torch.cuda.memory_allocated`) after the late call against after the early call of one "
            "long run of the preset.", "",
            md_table(["device", "preset", "check", "case", "calls", "value", "reference", "ratio / change", "target",
                      "verdict", "method"], rows), ""]


def training_section(bench: Path) -> list[str]:
    """The training-throughput section (:func:`spineaug.report.training.markdown`), or the place it goes."""
    text = training_report.markdown(bench)
    if text:
        return [text]
    return ["## Training throughput", "", TRAINING_HOOK, "", "*Not run for this report.*", ""]


def verdicts(ok, tr, ov, en, mem, training, b: int, s: int) -> list[str]:
    """One row per target (CPU rows, the headline case, the most threads)."""
    cpu = ok[(ok.device == "cpu") & (ok.batch == b) & (ok["size"] == s)]
    threads = int(cpu.torch_threads.max()) if not cpu.empty else 0
    cpu = cpu[cpu.torch_threads == threads]
    rows = []
    for (pipeline, base), need in SPEED_TARGETS.items():
        r = _row(cpu, pipeline=pipeline, impl=base)
        ref = _row(cpu, pipeline=pipeline, impl="spineaug",
                   work=_schema.WORK_PRESET if r is not None and r.fidelity == "exact" else f"{_schema.WORK_MATCHED}{base}")
        target = f"`{pipeline}` >= {need:g}x faster than {base} on matched work"
        if r is None or ref is None:
            rows.append([target, "-", "not measured", ""])
            continue
        ratio = float(r.mean_s) / float(ref.mean_s)
        low = float(r.mean_ci_low_s) / float(ref.mean_ci_high_s)
        met = ratio >= need
        measured = f"{ratio:.2f}x" + (f" (conservative {low:.2f}x)" if low == low else "")
        rows.append([target, measured, "met" if met else "missed",
                     "" if met else where_time_goes(overhead(ov, ok, "cpu", pipeline, threads, en))])
    if not tr.empty:
        el = tr[(tr.kind == "elementwise") & (tr.status == _schema.STATUS_OK) & (tr.device == "cpu")]
        if not el.empty:
            ratios = el.ratio_to_floor.astype(float)
            worst = el.assign(r=ratios).sort_values("r", ascending=False).head(3)
            met = bool((ratios <= 3).all())
            rows.append(["every elementwise transform within 3x of the floor pass",
                         f"{int((ratios <= 3).sum())} of {len(el)} (up to {ratios.max():.1f}x)",
                         "met" if met else "missed",
                         "" if met else ", ".join(f"{w.transform} {float(w.r):.1f}x ({passes_text(w)} passes"
                                                  f"{_function_floor(w)})" for w in worst.itertuples())])
    has_ref = "ratio_to_reference" in tr.columns if not tr.empty else False
    refd = tr[(tr.status == _schema.STATUS_OK) & (tr.device == "cpu") & tr.ratio_to_reference.notna()] if has_ref \
        else None
    if refd is not None:
        limits = [reference_target(r.kind, r.get("reference_target")) for _, r in refd.iterrows()]
        refd = refd.assign(limit=limits, group=[_reference_group(k, v) for k, v in zip(refd.kind, limits)])
    for group, target in REFERENCE_GROUPS.items():
        rows.append(_reference_row(target, None if refd is None else refd[refd.group == group]))
    for pipeline, threads in _overhead_cases(ov[ov.device == "cpu"] if not ov.empty else ov):
        info = overhead(ov, ok, "cpu", pipeline, threads, en)
        if info is not None:
            met = within_overhead(info["frac"])
            rows.append([f"`{pipeline}` mean minus the firing model's expected entry costs <= {OVERHEAD_TARGET:.0%} "
                         f"of the mean, {threads} thread(s)",
                         f"{info['frac']:.0%}", "met" if met else "missed", "" if met else where_time_goes(info)])
    rows += own_overhead_rows(en)
    rows += fixed_cost_rows(en, ok, s)
    for r in (mem.itertuples() if not mem.empty else []):
        if r.check in ("peak_extra(preset)", "rss_drift", "cuda_allocated_drift"):
            value = f"{float(r.ratio):.2f}x" if "peak" in r.check else f"{float(r.ratio):+.2%}"
            rows.append([f"`{r.pipeline}` {r.check} ({r.device}) {r.target}", value, r.verdict, ""])
    growth = en[en.check.astype(str).str.startswith("aten_ops_growth")] if not en.empty and "verdict" in en else en
    for r in (growth.itertuples() if not growth.empty else []):
        met = r.verdict == "flat"
        rows.append([f"`{r.pipeline}` aten ops per call do not grow with B ({r.device})",
                     f"{r.verdict}, {int(r.value):+d} ops", "met" if met else "missed", str(r.note)])
    target = "training iteration: (b) spineaug nnunet / (a) bgv2 in loader workers, paper ~0.9 (GPU)"
    if not training:
        rows.append([target, "-", "not run", "`spineaug bench --training`"])
    for device, cores, workers, ratio in training:
        rows.append([f"{target}, {device}, {cores} core(s)", f"{ratio:.2f}", "met" if ratio <= 0.9 else "missed",
                     "" if ratio <= 0.9 else f"bgv2 with {workers} worker(s); see the training table"])
    return [f"## Verdicts (targets; CPU, B={b}, 1x{s}^3, {threads} threads)", "",
            "Speed-ups are ratios of means (baseline / spineaug on the baseline's matched work); *conservative* "
            "divides the low end of the baseline's interval by the high end of spineaug's.", "",
            md_table(["target", "measured", "verdict", "where the time goes (missed)"], rows), ""]


def passes_text(r: Any) -> str:
    """A ``transforms.csv`` row's passes over the batch, ``-`` when not counted (results from before the column)."""
    try:
        value = float(getattr(r, "passes", None))
    except (TypeError, ValueError):
        return "-"
    return f"{value:.3g}" if value == value else "-"


def reference_target(kind: str, recorded: Any = None) -> float:
    """The multiple of its reference expression a transform must stay within: the ``reference_target`` its row
    recorded, else (a file written before rows recorded it) the target of its ``kind``."""
    try:
        value = float(recorded)
    except (TypeError, ValueError):
        value = float("nan")
    if value == value:
        return value
    return _schema.RESAMPLING_TARGET if kind == "resampling" else _schema.REFERENCE_TARGET


REFERENCE_GROUPS = {
    "stencil": f"stencil and label-lookup transforms within {_schema.REFERENCE_TARGET:g}x of the cheapest torch "
               "expression",
    "same-work": f"histogram, bias-field and axis-operator transforms within {_schema.SAME_WORK_TARGET:g}x of their "
                 "reference expression",
    "function": f"transcendental elementwise transforms within {_schema.SAME_WORK_TARGET:g}x of one pass of their "
                "function",
    "grid": f"grid resampling transforms within {_schema.RESAMPLING_TARGET:g}x of torch's affine_grid + one "
            "grid_sample per tensor",
}
"""Verdict rows of the reference targets, by group (:func:`_reference_group`)."""


def _reference_group(kind: str, limit: float) -> str:
    """Which verdict row of :data:`REFERENCE_GROUPS` a transform with a reference belongs to."""
    if limit == _schema.RESAMPLING_TARGET:
        return "grid"
    if limit == _schema.SAME_WORK_TARGET:
        return "function" if kind == "elementwise" else "same-work"
    return "stencil"


def _function_floor(row: Any) -> str:
    """``; its reference alone N x`` for a row with a reference expression (the reference's time over the floor's:
    ``ratio_to_floor / ratio_to_reference``), else empty."""
    try:
        alone = float(row.ratio_to_floor) / float(row.ratio_to_reference)
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        return ""
    return f"; its reference alone {alone:.1f}x" if alone == alone else ""


def _reference_row(target: str, refd: Any) -> list[str]:
    """The verdict row of the transforms in ``refd`` (``transforms.csv`` rows with a reference timing; ``None`` or
    empty: not measured)."""
    if refd is None or refd.empty:
        return [target, "-", "not measured", "no reference timings in transforms.csv"]
    ratios = refd.ratio_to_reference.astype(float)
    limit = float(refd.limit.iloc[0]) if "limit" in refd else reference_target(str(refd.kind.iloc[0]))
    worst = refd.assign(r=ratios).sort_values("r", ascending=False)
    met = bool((ratios <= limit).all())
    return [target, f"{int((ratios <= limit).sum())} of {len(refd)} (up to {ratios.max():.1f}x)",
            "met" if met else "missed",
            "" if met else ", ".join(f"{w.transform} {float(w.r):.1f}x" for w in worst.itertuples() if float(w.r) > limit)]


def load_training(bench: Path) -> list[tuple[str, int, int, float]]:
    """``(device, cores, bgv2 workers, ratio (b)/(a))`` from the results folder's ``training.csv`` (empty without)."""
    return training_report.ratio_rows(training_report.read_rows(bench))
