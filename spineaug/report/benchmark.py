"""Benchmark report: ``reports/benchmark.md`` and its figures from the CSV files of ``spineaug bench``.

Reads ``<results>/bench/{pipelines,transforms,engine,mapping}.csv`` and ``meta.json`` and writes, under ``<out>``:
``benchmark.md``, ``benchmark_speedups.png`` (the headline: matched-work speed-up per baseline with intervals),
``benchmark_bars.png`` (whole presets, seconds per batch at the headline case), ``benchmark_scaling.png`` (time
versus volume size and batch size), ``benchmark_transforms.png`` (each transform forced on, milliseconds and passes),
``benchmark_training.png`` (training-iteration split, when ``training.csv`` exists),
``benchmark_time_split.png`` (where each preset's call goes, when the steps were clocked; :mod:`.bench_figures` draws
them) and a copy of the CSVs in ``<out>/bench/`` (small, meant to be committed next to the report).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from spineaug import _io, _schema
from spineaug.report import bench_figures, bench_targets
from spineaug.report import training as training_report
from spineaug.report.bench_targets import fmt_s, md_table, reference_target

HEADLINE = (2, 128)
"""(batch, size) of the headline comparison; the nearest measured case is used when it is absent."""
MAPPING_LABELS = {"batchgenerators": "batchgeneratorsv2 (nnU-Net default)", "auglab": "AugLab GPU pipeline"}


def _beside(t) -> str:
    """The sentence on the floors timed beside each transform (runs that timed the floor once have none)."""
    floors = t.loc[t.kind != _schema.FLOOR_KIND, "floor_median_s"].dropna().astype(float)
    if floors.empty or floors.nunique() == 1:
        return ""
    return (f", with the floor timed again right after each transform and the row's ratio using that one (medians "
            f"{fmt_s(floors.min())} to {fmt_s(floors.max())}: a drift in the machine's speed during the run cancels)")


def _load(results: Path):
    import pandas as pd  # optional: pandas (report extra)

    bench = results / "bench" if (results / "bench" / "pipelines.csv").exists() else results
    if not (bench / "pipelines.csv").exists():
        raise FileNotFoundError(f"no benchmark results in {results} (expected bench/pipelines.csv): run `spineaug bench`")
    frames = {}
    for name in _schema.BENCH_TABLES:
        path = bench / f"{name}.csv"
        frame = pd.read_csv(path) if path.exists() and path.stat().st_size > 0 else pd.DataFrame()
        if not frame.empty:  # result files of older runs lack the newer columns
            for column in _schema.BENCH_TABLES[name]:
                if column not in frame:
                    frame[column] = _schema.WORK_PRESET if column == "work" else float("nan")
        frames[name] = frame
    meta_path = bench / _schema.BENCH_META
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return bench, frames, meta


def _headline_case(df) -> tuple[int, int]:
    cases = sorted({(int(b), int(s)) for b, s in zip(df["batch"], df["size"])})
    if HEADLINE in cases:
        return HEADLINE
    return min(cases, key=lambda c: (abs(c[1] - HEADLINE[1]), abs(c[0] - HEADLINE[0])))


def _headline(meta: dict[str, Any], ok) -> tuple[int, int]:
    """The run's headline ``(B, S)`` (``meta.json``), else the measured case nearest to :data:`HEADLINE`."""
    value = meta.get("config", {}).get("headline")
    return (int(value[0]), int(value[1])) if value else _headline_case(ok)


def provenance(meta: dict[str, Any]) -> str:
    """Command, run, commit and machine of a benchmark run (for captions)."""
    return (f"`{meta.get('command', 'spineaug bench')}`, run `{meta.get('run_id', '?')}`, commit "
            f"`{str(meta.get('git') or 'unknown')[:12]}`, {meta.get('cpu_model', '?')} "
            f"({meta.get('cpus_available', '?')} CPUs), GPU {meta.get('cuda') or 'none'}")


def _figure(path: Path | None, alt: str, caption: str) -> list[str]:
    return [] if path is None else [f"![{alt}]({path.name})", "", f"*Figure: {caption}*", ""]


def caption_tables(lines: list[str], source: str, sources: dict[str, str] | None = None) -> list[str]:
    """Put a caption under every markdown table that has none: the heading it sits under (what was measured) and
    the run (``source``; ``sources`` maps a heading word, e.g. ``"Training"``, to another run's provenance)."""
    text = "\n".join(lines).split("\n")
    out: list[str] = []
    heading = ""
    for i, line in enumerate(text):
        out.append(line)
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        ends_table = line.startswith("|") and (i + 1 == len(text) or not text[i + 1].startswith("|"))
        if not ends_table:
            continue
        following = next((x for x in text[i + 1:] if x.strip()), "")
        if following.startswith(("*Table", "*Figure")):
            continue
        run = next((v for k, v in (sources or {}).items() if k in heading), source)
        out += ["", f"*Table: {heading}. {run}.*"]
    return out


ASV_COMPARE = "asv-compare.md"
"""asv's comparison of two recorded commits (``benchmarks/asv-compare.sh``), linked when it sits beside the report."""


def write(results: str | Path = "results", out: str | Path = "reports") -> Path:
    """Write ``benchmark.md`` and its figures; return the markdown path."""
    results, out = Path(results), Path(out)
    bench, frames, meta = _load(results)
    out.mkdir(parents=True, exist_ok=True)
    pl, tr, en, mp = frames["pipelines"], frames["transforms"], frames["engine"], frames["mapping"]
    ov, mem = frames["overhead"], frames["memory"]
    training = bench_targets.load_training(bench)
    ok = pl[pl.status == "ok"].copy() if not pl.empty else pl
    hb, hs = _headline(meta, ok) if not ok.empty else HEADLINE
    # the figures, the grid and the slopes show the whole presets at the most threads
    whole = ok[(ok.work == _schema.WORK_PRESET) & (ok.torch_threads == ok.torch_threads.max())] if not ok.empty else ok
    lines: list[str] = ["# spineaug speed benchmark", ""]
    cfg = meta.get("config", {})
    lines += [
        f"Run `{meta.get('run_id', '?')}`: `{meta.get('command', 'spineaug bench')}` at spineaug commit "
        f"`{meta.get('git') or 'unknown'}`  ",
        f"CPU: {meta.get('cpu_model', '?')} ({meta.get('cpus_available', '?')} CPUs available), "
        f"torch {meta.get('versions', {}).get('torch', '?')}, threads {cfg.get('threads')}, "
        f"GPU: {meta.get('cuda') or 'none'}.  ",
        "Workload: batches of B x 1 x S^3 phantom patches (CT and T2w renderings of one synthetic spine, sampled "
        "as in training, z-scored per sample) with their int64 label maps (0 background, 1 vertebra, 2 disc, 3 "
        f"canal). Headline case B={hb}, S={hs}: {cfg.get('repeats')} timed calls per case after "
        f"{cfg.get('warmup')} warm-up, at each thread count; the **mean** (expected cost per training iteration) is "
        "the headline with a 95 % percentile-bootstrap interval, the median a secondary column (the cost per call "
        "is bimodal: a call that fires a resampling costs many times one that does not). Scaling grid: S in "
        f"{cfg.get('sizes')}, B in {cfg.get('batches')}, at the most threads, up to {cfg.get('grid_repeats')} calls "
        f"(at least {cfg.get('min_repeats')}, stopping after {cfg.get('max_seconds')} s). Every call draws fresh "
        "parameters; inputs are cloned and outputs released outside the clock; all libraries keep the input size. "
        "spineaug runs with `check_finite=False` (the training-loop setting).  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
        "",
        "Timings come from one run on a shared machine: compare ratios within the run, not absolute numbers "
        "across machines.",
        "",
    ]
    changed = _io.changed_since(str(meta["git"])) if meta.get("git") else None
    if changed:
        lines += [f"**Stale for the engine's speed:** {len(changed)} engine file(s) changed since this run's commit "
                  f"({', '.join(f'`{c}`' for c in changed)}); re-run `make benchmark` for the current engine's "
                  "timings.", ""]  # fmt: skip
    compare = out / ASV_COMPARE
    if compare.is_file():
        title = compare.read_text().splitlines()[0].lstrip("# ").strip() if compare.stat().st_size else ""
        lines += [f"Change between commits, from asv's own statistics: [{ASV_COMPARE}]({ASV_COMPARE}) ({title}; "
                  "`make asv`, then `make asv-compare`).", ""]
    if meta.get("notes"):
        lines += ["## Notes from the run", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    lines += bench_targets.verdicts(ok, tr, ov, en, mem, training, hb, hs)
    for device in (list(dict.fromkeys(ok.device)) if not ok.empty else []):
        lines += [f"## Matched work on {device}: B={hb}, 1x{hs}^3", "",
                  "*fidelity*: exact = the same pipeline; partial = only the transforms the library has (it does "
                  "less work); substitute = the library's own standard pipeline that users run instead. *coverage*: "
                  "entries of the preset the baseline expresses. *vs whole preset* = baseline mean / spineaug's whole "
                  "preset mean (today's ratio); **vs matched work** = baseline mean / the mean of spineaug restricted "
                  "to exactly the entries the baseline expresses (same probabilities and ranges, built from the "
                  "preset and the baseline's mapping): the headline. Higher = spineaug faster.", ""]
        src = provenance(meta)
        lines += _figure(bench_figures.speedups(ok, out, device, hb, hs), "matched-work speed-ups",
                         f"spineaug's speed-up over each baseline on matched work (baseline mean / mean of spineaug "
                         f"restricted to the entries the baseline expresses; an exact baseline runs the whole preset), "
                         f"B={hb}, 1x{hs}^3, the most threads, {cfg.get('repeats')} timed calls per case; bars: "
                         f"conservative interval from both means' 95 % bootstrap intervals. {src}.")
        lines += bench_targets.matched_tables(ok, device, hb, hs)
        dev = whole[whole.device == device]
        lines += _figure(bench_figures.whole_presets(ok, out, device, hb, hs), "whole presets",
                         f"whole pipelines, **not matched work**: each library's own stand-in for the preset (a "
                         f"partial baseline does less work than spineaug), mean seconds per batch with 95 % "
                         f"intervals, B={hb}, 1x{hs}^3, {cfg.get('repeats')} calls. {src}.")
        lines += _figure(bench_figures.scaling(ok, out, device, hb, hs), "time vs size",
                         f"whole presets, median seconds per batch versus the cube edge S at B={hb} (left) and "
                         f"versus the batch size B at S={hs} (right), S in {cfg.get('sizes')}, B in "
                         f"{cfg.get('batches')}, up to {cfg.get('grid_repeats')} calls per case. {src}.")
        lines += [f"### All cases on {device}, whole presets (median seconds per batch, "
                  f"{int(dev.torch_threads.max()) if not dev.empty else '?'} threads)", ""]
        pivot_rows = []
        for (pipeline, impl), grp in dev.groupby(["pipeline", "impl"], sort=False):
            cells = {(int(r.batch), int(r["size"])): fmt_s(float(r.median_s)) for _, r in grp.iterrows()}
            cases = sorted(cells, key=lambda c: (c[1], c[0]))
            pivot_rows.append((pipeline, impl, cells, cases))
        all_cases = sorted({c for *_, cells, cs in pivot_rows for c in cs}, key=lambda c: (c[1], c[0]))
        lines += [md_table(["pipeline", "impl"] + [f"B{b_} S{s_}" for b_, s_ in all_cases],
                           [[p, i] + [cells.get(c, "-") for c in all_cases] for p, i, cells, _ in pivot_rows]), ""]
        # growth exponent: slope of log(time) vs log(voxels) at the headline batch
        slope_rows = []
        for (pipeline, impl), grp in dev[dev.batch == hb].groupby(["pipeline", "impl"], sort=False):
            g = grp.sort_values("voxels")
            if len(g) >= 2:
                x0, x1 = math.log(float(g.voxels.iloc[0])), math.log(float(g.voxels.iloc[-1]))
                y0, y1 = math.log(float(g.median_s.iloc[0])), math.log(float(g.median_s.iloc[-1]))
                slope_rows.append([pipeline, impl, f"{(y1 - y0) / (x1 - x0):.2f}"])
        if slope_rows:
            lines += [f"Log-log slope of time versus voxels at B={hb}, smallest to largest S (1 = linear in volume; "
                      "below 1 = fixed overheads dominate the small sizes):", "",
                      md_table(["pipeline", "impl", "slope"], slope_rows), ""]
        failed = pl[(pl.status != "ok") & (pl.device == device)]
        if not failed.empty:
            lines += ["Cases that did not complete:", ""] + [
                f"- {r.pipeline} / {r.impl} ({r.work}) B={r.batch} S={r['size']}, {r.torch_threads} threads: "
                f"{r.status} ({r.note})" for _, r in failed.iterrows()] + [""]
    for device in (list(dict.fromkeys(ov.device)) if not ov.empty else []):
        lines += bench_targets.overhead_section(ov, ok, en, device)
        lines += _figure(bench_figures.time_split(bench_targets.time_split(ov, en, device), out, device),
                         "where a preset's call goes",
                         f"where each preset's call goes on {device}: the mean time of each step inside the preset "
                         f"(the {bench_targets.SPLIT_TOP} largest, the others summed) and the pipeline's own overhead "
                         f"(the call minus its clocked steps: parameter draws, input checks, glue), over the clocked "
                         f"calls of the headline case. {provenance(meta)}.")
    if not tr.empty:
        for device in dict.fromkeys(tr.device):
            t = tr[tr.device == device]
            floor = t[t.kind == _schema.FLOOR_KIND]
            b, s = int(t.batch.iloc[0]), int(t["size"].iloc[0])
            lines += [f"## Per transform on {device}: each forced on (p = 1), B={b}, 1x{s}^3", ""]
            if not floor.empty:
                lines += [f"Floor: one elementwise pass `x * c` over the batch = {fmt_s(float(floor.median_s.iloc[0]))} "
                          "(reads and writes every voxel once: the memory-traffic limit of any transform that must "
                          f"produce a new image). Ratio = transform time / floor{_beside(t)}. The 3x target applies to the "
                          "*elementwise* class. *x reference*: mean time / mean time of the cheapest plain-torch expression "
                "of the same kind of work (spineaug/bench/references.py), and its target: 5x for the stencil and "
                "label-lookup classes, 3x for histogram equalisation, the bias field and the axis-operator "
                "degradations, 1.5x (one grid_sample-class pass per tensor) for grid resampling; an elementwise "
                "transform with a transcendental map also gets one pass of its function as a reference (3x), "
                "shown after the floor verdict. "
                "*passes*: the call's passes over the batch, counted op by op (every op that touches a tensor at "
                "least one sample large counts its largest tensor / the batch; `spineaug.bench.probes.count_passes`): "
                "the load-independent side of the ratio to the floor, which is 1 pass.", ""]
            rows = []
            for _, r in t[t.kind != _schema.FLOOR_KIND].iterrows():
                med = float(r.median_s) if r.status == "ok" else float("nan")
                ratio = float(r.ratio_to_floor) if r.status == "ok" else float("nan")
                verdict = ""
                ref = float(r.get("ratio_to_reference", float("nan")))
                if r.kind == "elementwise" and ratio == ratio:
                    verdict = "yes" if ratio <= 3 else "no"
                    if ref == ref:  # a transcendental map: the floor verdict, and the one against its function
                        verdict += f" / {'yes' if ref <= reference_target(r.kind, r.get('reference_target')) else 'no'}"
                elif ref == ref:
                    verdict = "yes" if ref <= reference_target(r.kind, r.get("reference_target")) else "no"
                rows.append([r["transform"], r.kind, r.source, bench_targets.mean_ci(r) if med == med else r.status,
                             fmt_s(med) if med == med else "",
                             f"[{fmt_s(float(r.q25_s))}, {fmt_s(float(r.q75_s))}]" if med == med else "",
                             f"{ratio:.1f}" if ratio == ratio else "-", bench_targets.passes_text(r),
                             f"{ref:.1f}" if ref == ref else "-", verdict])
            lines += [md_table(["transform", "kind", "params from", "mean [95% CI]", "median", "IQR",
                                "x floor (median)", "passes", "x reference (mean)", "within target"], rows), ""]
            lines += _figure(bench_figures.transforms(t, out, device), "per-transform cost",
                             f"each transform forced on (p = 1) alone, mean milliseconds per batch with 95 % "
                             f"intervals and its passes over the batch, B={b}, 1x{s}^3, {cfg.get('repeats')} calls; "
                             f"dashed: one elementwise pass. {provenance(meta)}.")
    if not en.empty:
        lines += ["## Engine checks", "",
                  "aten operations dispatched per call (every transform forced on, so the same work runs for any "
                  "B) and host synchronisations (`_local_scalar_dense`/`item`/`nonzero`/`unique`... on tensors "
                  "derived from the data, counted by a `TorchDispatchMode`; parameters drawn on the host from the "
                  "CPU generator are not syncs). On CUDA the same calls also run under "
                  "`torch.cuda.set_sync_debug_mode(\"error\")`.", ""]
        rows = []
        for (device, pipeline, check), grp in en.groupby(["device", "pipeline", "check"], sort=False):
            vals = ", ".join(f"B={int(r.batch)}: {int(r.value)}" for _, r in grp.iterrows())
            notes = "; ".join(sorted({str(n) for n in grp.note if isinstance(n, str) and n}))
            verdict = ",".join(sorted({str(v) for v in grp.verdict if isinstance(v, str) and v}))
            rows.append([device, pipeline, check, vals, verdict, notes])
        lines += ["The growth check counts each B over several calls after a warm-up call and compares the most ops "
                  "seen per B (some counts depend on the drawn parameters: a branch runs when any sample takes it). "
                  "*flat*: the same at every B (the target); *grows*: still rising between the two largest B (work "
                  "per sample on the host); *saturates*: rising at small B, then level (branches per distinct "
                  "parameter value or taken when any sample needs them: bounded, still more ops with more samples). "
                  "The value is the most ops at the largest B minus the most at B = 1.", "",
                  md_table(["device", "pipeline", "check", "values", "verdict", "notes / sync ops seen"], rows), ""]
    lines += bench_targets.memory_section(mem)
    lines += bench_targets.training_section(bench)
    split_rows = training_report.read_rows(bench)
    if split_rows:
        tmeta_path = bench / _schema.TRAINING_META
        tmeta = json.loads(tmeta_path.read_text()) if tmeta_path.is_file() else {}
        lines += _figure(bench_figures.training_split(split_rows, out, training_report.ARM_LABELS), "training iteration split",
                         f"seconds per training iteration split into data wait, augmentation in the loop and network "
                         f"step, per CPU budget, arm and loader workers ({split_rows[0]['iterations']} timed "
                         f"iterations, fastest of {split_rows[0]['rounds']} rounds). `spineaug bench --training`, run "
                         f"`{tmeta.get('run_id', split_rows[0]['run_id'])}`, commit "
                         f"`{str(tmeta.get('git') or 'unknown')[:12]}`, {tmeta.get('cpu_model', meta.get('cpu_model', '?'))}.")
    if not mp.empty:
        lines += ["## Baseline mappings", "",
                  "Which spineaug transform each baseline expresses (blank: the library has no counterpart and the "
                  "baseline leaves it out, so it does less work than spineaug).", ""]
        for (library, pipeline), grp in mp.groupby(["baseline", "pipeline"], sort=False):
            lines += [f"### {MAPPING_LABELS.get(library, library)} for `{pipeline}`", "", md_table(
                ["spineaug", "equivalent", "note"],
                [[r.spineaug, r.equivalent if isinstance(r.equivalent, str) else "**none**",
                  r.note if isinstance(r.note, str) else ""] for _, r in grp.iterrows()]), ""]
    tmeta_path = bench / _schema.TRAINING_META
    tmeta = json.loads(tmeta_path.read_text()) if tmeta_path.is_file() else {}
    training_src = (f"`spineaug bench --training`, run `{tmeta.get('run_id', '?')}`, commit "
                    f"`{str(tmeta.get('git') or 'unknown')[:12]}`, {tmeta.get('cpu_model', meta.get('cpu_model', '?'))}")
    lines = caption_tables(lines, f"{provenance(meta)}; {cfg.get('repeats')} timed calls per headline case",
                           {"Training": training_src})
    md = _io.atomic_write_text(out / "benchmark.md", "\n".join(lines) + "\n")
    copy_dir = out / "bench"
    if copy_dir.resolve() != bench.resolve():
        copy_dir.mkdir(parents=True, exist_ok=True)
        for name in _schema.BENCH_FILES:
            if (bench / name).exists():
                shutil.copyfile(bench / name, copy_dir / name)
    return md
