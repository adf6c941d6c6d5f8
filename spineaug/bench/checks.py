"""Engine checks (``engine.csv``) and memory (``memory.csv``): op counts against B, host syncs, peak and drift.

The op count runs every transform forced on, so the same work runs at any B. Two counts: with fresh draws, over
:data:`OP_CALLS` calls per B (some structure follows the draw, e.g. a blur's largest kernel radius, so the count
varies and larger structures get likelier with more samples: bounded by the config; :func:`op_growth`), and with one
sample's draw repeated B times (:func:`same_draw_ops`): the structure is then the same at every B, so a count that
grows with B means a Python loop over samples (or per-sample work on the host) somewhere. The second is the check.
Each pipeline is warmed up once before counting (first calls may build caches).
"""

from __future__ import annotations

from typing import Any

import torch

import spineaug
from spineaug.bench.cases import forced_pipeline, spineaug_fn
from spineaug.bench.memory import memory_drift, peak_extra_bytes
from spineaug.bench.probes import count_syncs
from spineaug.bench.session import Run

OP_BATCHES = (1, 2, 4, 8)
"""Batch sizes of the op-count check."""
OP_CALLS = 5
"""Calls counted per batch size (fresh parameters each)."""
PEAK_CALLS = 5
"""Preset calls whose largest peak is reported (fresh parameters each; what fires changes the peak)."""
PEAK_TARGET = 4.0
"""Target: peak extra memory of a call at most this many times the batch's bytes."""
DRIFT_TARGET = 0.02
"""Target: memory after the late call within this fraction of its value after the early one."""


def op_growth(counts: dict[int, list[int]]) -> tuple[int, str]:
    """``(margin, verdict)`` from op counts per B (several calls each), judged on the most ops seen per B (the count
    with the branches taken; fewer are parameter luck, not batch size).

    margin = most ops at the largest B minus most ops at the smallest. Verdict: ``flat`` when the most ops seen is
    the same at every B (the target); ``grows`` when it still rises between the two largest B (work per sample on
    the host, e.g. a loop over samples); ``saturates`` when it rises at small B and levels off (branches that run
    once per distinct parameter value or when any sample takes them: bounded, but still more ops with more samples).
    """
    sizes = sorted(counts)
    top = {b: max(counts[b]) for b in sizes}
    margin = top[sizes[-1]] - top[sizes[0]]
    if all(top[b] == top[sizes[0]] for b in sizes):
        return margin, "flat"
    return margin, "grows" if len(sizes) > 2 and top[sizes[-1]] > top[sizes[-2]] else "saturates"


def same_draw_ops(pipeline: spineaug.Pipeline, batch, seed: int) -> dict[int, int]:
    """aten ops per call at each B of :data:`OP_BATCHES` with one sample's parameters repeated B times.

    With fresh draws the structure of some entries follows the draw (a blur's kernel radius is the largest any
    sample drew, ThickSlice visits the axes some sample chose, RandomConv pads to the largest kernel drawn), so
    the op count varies with the parameters, and more samples make the larger structures likelier. Replaying the
    same draw for every sample removes that: the structure is then identical at every B, and any op-count growth
    is work per sample (a loop over the batch). ``batch(b)`` returns an ``(image, label)`` pair of ``b`` samples.
    """
    image, label = batch(1)
    _, _, drawn = pipeline(image, label, generator=torch.Generator().manual_seed(seed), return_params=True)
    counts = {}
    for b in OP_BATCHES:
        params = {k: v.select(torch.zeros(b, dtype=torch.long)) for k, v in drawn.items()}
        image, label = batch(b)

        def fn(x: torch.Tensor, y: torch.Tensor, params=params) -> Any:
            return pipeline(x, y, params=params)

        fn(image, label)  # warm-up
        counts[b] = count_syncs(fn, image, label)[2]
    return counts


def run_checks(run: Run, device: torch.device) -> None:
    """Fill ``engine.csv``: aten ops per call versus B (all forced on), their growth verdict, host syncs per call."""
    cfg = run.config
    s = min(cfg.sizes + (32,))
    for pipeline in cfg.pipelines:
        entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]
        base = run.base(device, pipeline=pipeline, size=s)
        forced = forced_pipeline(entries, cfg.seed, device)
        preset = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)
        counts: dict[int, list[int]] = {}
        for b in OP_BATCHES:
            image, label = run.batch(b, s, device)
            fn = spineaug_fn(forced, cfg.seed)
            fn(image, label)  # warm-up: caches built on a first call are not per-call work
            calls = [count_syncs(fn, image, label) for _ in range(OP_CALLS)]
            counts[b] = [ops for _, _, ops in calls]
            run.engine.append(dict(base, check="aten_ops_per_call(all forced on)", batch=b, value=max(counts[b]),
                                   note=f"{OP_CALLS} calls: " + "/".join(map(str, counts[b]))))
            names = sorted({n for _, ns, _ in calls for n in ns})
            run.engine.append(dict(base, check="host_syncs_per_call(all forced on)", batch=b, value=max(c[0] for c in calls),
                                   verdict="ok" if all(c[0] == 0 for c in calls) else "syncs", note=",".join(names)))
            total, seen = 0, set()
            preset_fn = spineaug_fn(preset, cfg.seed)
            for _ in range(5):
                n_sync, n_names, _ = count_syncs(preset_fn, image.clone(), label.clone())
                total += n_sync
                seen.update(n_names)
            run.engine.append(dict(base, check="host_syncs_in_5_calls(preset)", batch=b, value=total,
                                   verdict="ok" if total == 0 else "syncs", note=",".join(sorted(seen))))
        growth, verdict = op_growth(counts)
        run.engine.append(dict(base, check=f"aten_ops_range(fresh draws, B={min(counts)}..{max(counts)})",
                               batch=max(counts), value=growth, verdict=verdict,
                               note="; ".join(f"B={b}: {min(c)}-{max(c)}" for b, c in counts.items())))
        same = same_draw_ops(forced, lambda b: run.batch(b, s, device), cfg.seed)
        judged = {b: n for b, n in same.items() if b >= 2}  # B=1: torch's own shortcuts, see same_draw_ops' docstring
        margin = max(judged.values()) - min(judged.values())
        run.engine.append(dict(base, check=f"aten_ops_growth(same draws, B={min(judged)}..{max(judged)})",
                               batch=max(judged), value=margin, verdict="flat" if margin == 0 else "grows",
                               note="; ".join(f"B={b}: {n}" for b, n in same.items())))
        run.log(f"  checks {pipeline:8s} aten ops per call B={','.join(map(str, counts))}: fresh draws "
                f"{[max(c) for c in counts.values()]} ({verdict}); one sample's draw repeated B times "
                f"{list(same.values())} ({'flat' if margin == 0 else 'grows'})")


def _memory_row(run: Run, device: torch.device, pipeline: str, check: str, b: int, s: int, calls: int, value: int,
                reference: int, ratio: float, target: str, ok: bool, method: str, note: str = "") -> dict[str, Any]:
    return run.base(device, pipeline=pipeline, check=check, batch=b, size=s, calls=calls, value_bytes=value,
                    reference_bytes=reference, ratio=f"{ratio:.4g}", target=target, verdict="met" if ok else "missed",
                    method=method, note=note)


def run_memory(run: Run, device: torch.device) -> None:
    """Fill ``memory.csv``: per preset, the peak extra memory of a call (largest of :data:`PEAK_CALLS` preset calls,
    and all transforms forced on) against the batch's bytes, then memory after the early and the late call."""
    cfg = run.config
    b, s = cfg.headline
    image, label = run.batch(b, s, device)
    batch_bytes = image.nbytes + label.nbytes
    for pipeline in cfg.pipelines:
        preset = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)
        fn = spineaug_fn(preset, cfg.seed)
        fn(image, label)  # warm-up
        peaks = [peak_extra_bytes(fn, image, label) for _ in range(PEAK_CALLS)]
        peak, method = max(p for p, _ in peaks), peaks[0][1]
        run.memory.append(_memory_row(run, device, pipeline, "peak_extra(preset)", b, s, PEAK_CALLS, peak, batch_bytes,
                                      peak / batch_bytes, f"<= {PEAK_TARGET:g}x batch", peak <= PEAK_TARGET * batch_bytes,
                                      method, "largest of the calls; outputs included"))
        entries = preset.config()["transforms"]
        forced_fn = spineaug_fn(forced_pipeline(entries, cfg.seed, device), cfg.seed)
        forced_peak, _ = peak_extra_bytes(forced_fn, image, label)
        run.memory.append(_memory_row(run, device, pipeline, "peak_extra(all forced on)", b, s, 1, forced_peak,
                                      batch_bytes, forced_peak / batch_bytes, f"<= {PEAK_TARGET:g}x batch",
                                      forced_peak <= PEAK_TARGET * batch_bytes, method, "worst case: every entry fires"))
        run.log(f"  memory {pipeline:8s} peak extra {peak / 2**20:.1f} MiB = {peak / batch_bytes:.2f}x batch "
                f"(all forced on {forced_peak / batch_bytes:.2f}x)")
        db, ds = cfg.drift_case
        dimage, dlabel = run.batch(db, ds, device)
        early, late = cfg.drift_calls
        drift = memory_drift(spineaug_fn(preset, cfg.seed), dimage, dlabel, early, late)
        pairs = [("rss_drift", drift.rss_early, drift.rss_late, "VmRSS")]
        if drift.cuda_early is not None:
            pairs.append(("cuda_allocated_drift", drift.cuda_early, drift.cuda_late, "torch.cuda.memory_allocated"))
        for check, first, last, how in pairs:
            if first is None or last is None:
                run.note(f"{check} not measurable here ({how} unavailable)")
                continue
            change = (last - first) / first if first else 0.0
            run.memory.append(_memory_row(run, device, pipeline, check, db, ds, late, last, first, change,
                                          f"<= {DRIFT_TARGET:.0%} growth", change <= DRIFT_TARGET, how,
                                          f"after {early} calls: {first} B; after {late}: {last} B; "
                                          f"{drift.seconds:.0f} s"))
            run.log(f"  memory {pipeline:8s} {check}: {change:+.2%} from call {early} to {late} ({drift.seconds:.0f} s)")
