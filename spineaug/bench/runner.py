"""The benchmark run: headline and scaling rows of pipelines against baselines (and spineaug's matched work), then
the per-transform, overhead, check and memory tables (:mod:`~spineaug.bench.costs`, :mod:`~spineaug.bench.checks`)."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

import spineaug
from spineaug import _io, _schema, baselines
from spineaug.baselines import auglab
from spineaug.bench.cases import spineaug_fn
from spineaug.bench.checks import run_checks, run_memory
from spineaug.bench.config import BenchConfig, validate
from spineaug.bench.costs import run_overhead, run_transforms
from spineaug.bench.matched import matched_config, matched_preset, needs_matched
from spineaug.bench.session import Outcome, Run
from spineaug.bench.timing import Timing

PIPELINE_COLUMNS = _schema.BENCH_PIPELINE_COLUMNS
TRANSFORM_COLUMNS = _schema.BENCH_TRANSFORM_COLUMNS
ENGINE_COLUMNS = _schema.BENCH_ENGINE_COLUMNS
MAPPING_COLUMNS = _schema.BENCH_MAPPING_COLUMNS
OVERHEAD_COLUMNS = _schema.BENCH_OVERHEAD_COLUMNS
MEMORY_COLUMNS = _schema.BENCH_MEMORY_COLUMNS

# ---------------------------------------------------------------------------------------------- pipelines.csv


@dataclass
class Impl:
    """One implementation timed for a preset: spineaug (whole preset or matched work) or a baseline."""

    impl: str
    work: str
    fn: Callable[[Tensor, Tensor], Any] | None
    version: str
    fidelity: str
    coverage: str
    key: str = ""
    note: str = ""


def _pipeline_row(run: Run, device: torch.device, pipeline: str, impl: Impl, b: int, s: int,
                  outcome: Outcome) -> dict[str, Any]:
    timing, status, note = outcome
    row = run.base(device, pipeline=pipeline, impl=impl.impl, work=impl.work, library_version=impl.version,
                   fidelity=impl.fidelity, coverage=impl.coverage, batch=b, size=s, voxels=b * s**3,
                   warmup=run.config.warmup, repeats=0, status=status, note=note or impl.note)
    if timing is not None and timing.times:
        row.update(timing.summary(), samples_per_s=f"{b / timing.mean:.6g}")
    return row


def _add_pipeline_row(run: Run, row: dict[str, Any]) -> None:
    run.pipelines.append(row)
    where = (f"  {row['pipeline']:8s} {row['impl']:16s} {row['work']:24s} B={row['batch']} S={row['size']:<4d} "
             f"t={row['torch_threads']}")
    if row["status"] != _schema.STATUS_OK:
        run.log(f"{where} {row['status']}: {row['note']}")
        return
    run.log(f"{where} mean {float(row['mean_s']) * 1e3:9.2f} ms [{float(row['mean_ci_low_s']) * 1e3:.2f}, "
            f"{float(row['mean_ci_high_s']) * 1e3:.2f}]  median {float(row['median_s']) * 1e3:.2f}  n={row['repeats']}")


def _spineaug_impl(run: Run, device: torch.device, entries: list[dict[str, Any]], work: str, fidelity: str,
                   coverage: str, note: str = "") -> Impl:
    config = {"seed": run.config.seed, "transforms": entries}
    aug = spineaug.Pipeline.from_config(config, check_finite=False).to(device)
    return Impl("spineaug", work, spineaug_fn(aug, run.config.seed), spineaug.__version__, fidelity, coverage,
                json.dumps(entries, sort_keys=True), note)


def _impls(run: Run, device: torch.device, pipeline: str) -> tuple[list[Impl], list[Impl], baselines.Baseline | None]:
    """``(whole-work rows, matched spineaug rows, AugLab)`` of one preset on one device."""
    cfg = run.config
    entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]
    n = len(entries)
    whole = [_spineaug_impl(run, device, entries, _schema.WORK_PRESET, "reference", f"{n}/{n}")]
    found: list[baselines.Baseline] = []
    auglab_base = None
    for library in cfg.baselines:
        try:
            base = baselines.build(library, pipeline, device=device.type, seed=cfg.seed)
        except baselines.BaselineUnavailable as exc:
            if library != "auglab":
                run.note(f"{library} skipped for {pipeline} on {device.type}: {exc}")
            elif pipeline == "xdomain":
                run.note(f"AugLab skipped: run `make auglab-env` ({exc})" if not auglab.available() else
                         f"AugLab skipped for {pipeline}: {exc}")
            continue
        if device.type not in base.devices:
            run.note(f"{library} skipped on {device.type}: CPU-only library (its CPU rows are the comparison)")
            continue
        found.append(base)
        if library == "auglab":
            auglab_base = base  # timed in its own interpreter
        else:
            whole.append(Impl(library, _schema.WORK_PRESET, base.fn, base.version, base.fidelity, base.coverage))
    matched = []
    for base in found:
        if not needs_matched(base.fidelity):
            continue
        work = f"{_schema.WORK_MATCHED}{base.library}"
        subset = matched_config(pipeline, base.library)
        source = matched_preset(pipeline, base.library)
        if not subset:
            run.note(f"no matched work for {base.library} on {pipeline}: it expresses none of the preset's entries")
            continue
        note = (f"= the {source} preset ({base.library} runs it whatever the preset)" if source != pipeline else
                "entries: " + ",".join(e["name"] for e in subset))
        matched.append(_spineaug_impl(run, device, subset, work, "matched", f"{len(subset)}/{n}", note))
    return whole, matched, auglab_base


def run_pipelines(run: Run, device: torch.device) -> None:
    """Fill ``pipelines.csv`` for one device: the headline case at every thread count (whole work and matched
    work), then the scaling grid at the largest thread count (whole work only)."""
    cfg = run.config
    hb, hs = cfg.headline
    grid = [(b, s) for s in cfg.sizes for b in cfg.batches if (b, s) != (hb, hs)]
    built = {pipeline: _impls(run, device, pipeline) for pipeline in cfg.pipelines}
    for threads in cfg.threads:
        torch.set_num_threads(threads)
        run.log(f"[{device.type}] headline B={hb} S={hs}, {threads} thread(s)")
        for pipeline, (whole, matched, auglab_base) in built.items():
            for impl in whole + matched:
                _time_case(run, device, pipeline, impl, hb, hs, repeats=cfg.repeats)
            if auglab_base is not None:
                _run_auglab(run, device, pipeline, auglab_base, [(hb, hs)], repeats=cfg.repeats,
                            max_seconds=math.inf)
    torch.set_num_threads(cfg.max_threads)
    if not grid:
        return
    run.log(f"[{device.type}] scaling grid, {cfg.max_threads} thread(s)")
    for pipeline, (whole, _, auglab_base) in built.items():
        for impl in whole:
            for b, s in grid:
                _time_case(run, device, pipeline, impl, b, s, repeats=cfg.grid_repeats, min_repeats=cfg.min_repeats,
                           max_seconds=cfg.max_seconds)
        if auglab_base is not None:
            _run_auglab(run, device, pipeline, auglab_base, grid, repeats=cfg.grid_repeats,
                        max_seconds=cfg.max_seconds)


def _time_case(run: Run, device: torch.device, pipeline: str, impl: Impl, b: int, s: int, **timing: Any) -> None:
    data = functools.partial(run.batch, b, s, device)  # made inside measure's try
    key = (device.type, torch.get_num_threads(), impl.key, b, s) if impl.key else None
    outcome = run.measure(impl.fn, data, device, key=key, **timing)
    _add_pipeline_row(run, _pipeline_row(run, device, pipeline, impl, b, s, outcome))


def _run_auglab(run: Run, device: torch.device, pipeline: str, base: baselines.Baseline,
                cases: list[tuple[int, int]], *, repeats: int, max_seconds: float) -> None:
    cfg = run.config
    try:
        data = {f"{b}x{s}": run.batch(b, s, torch.device("cpu")) for b, s in cases}
        reply = auglab.run(cases, device=device.type, threads=torch.get_num_threads(), seed=cfg.seed,
                           warmup=cfg.warmup, repeats=repeats, max_seconds=min(max_seconds, 1e9), data=data)
    except (baselines.BaselineUnavailable, OSError, ValueError) as exc:
        run.note(f"AugLab skipped: {exc}")
        return
    except Exception as exc:  # subprocess timeout and the like
        run.note(f"AugLab skipped: {type(exc).__name__}: {exc}")
        return
    version = f"{reply.get('auglab', '')} (kornia {reply.get('kornia', '?')})"
    impl = Impl("auglab", _schema.WORK_PRESET, None, version, base.fidelity, base.coverage,
                note=f"{reply.get('n_modules', '?')} modules, separate process (.venv-auglab), "
                     f"{reply.get('threads', '?')} thread(s)")
    for case in reply["cases"]:
        timing = None
        if case.get("times"):
            peak = case.get("cuda_max_allocated_bytes") if device.type == "cuda" else case.get("peak_rss_bytes")
            timing = Timing(case["times"], peak, "cuda_max_allocated" if device.type == "cuda" else "rss_peak")
        status = _schema.STATUS_OK if case.get("error") is None and timing else "error"
        outcome = (timing, status, (case.get("error") or "")[:200])
        _add_pipeline_row(run, _pipeline_row(run, device, pipeline, impl, case["batch"], case["size"], outcome))


# ---------------------------------------------------------------------------------------------- the run


def _mapping_rows(run: Run) -> None:
    for library in run.config.baselines:
        for pipeline in run.config.pipelines:
            try:
                rows = baselines.mapping(library, pipeline)
            except Exception as exc:
                run.note(f"mapping of {library} for {pipeline} unavailable: {exc}")
                continue
            if library == "auglab" and pipeline != "xdomain":
                continue
            for r in rows:
                run.mapping.append(dict(baseline=library, pipeline=pipeline, spineaug=r.spineaug,
                                        equivalent=r.equivalent or "", note=r.note))


def run(config: BenchConfig, out: str | Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run the benchmark and write its CSV files under ``out``.

    Returns:
        The files written: ``pipelines``, ``transforms``, ``engine``, ``mapping``, ``overhead``, ``memory``,
        ``meta``.

    Raises:
        BenchError: Unknown names or a case that cannot fit in memory (raised before anything runs).
    """
    devices = validate(config)
    _io.check_writable_folder(out)  # before the minutes of timing, not after
    previous_threads = torch.get_num_threads()
    try:
        return _run(config, devices, Path(out), log)
    finally:
        torch.set_num_threads(previous_threads)


def _run(config: BenchConfig, devices: list[torch.device], out: Path,
         log: Callable[[str], None]) -> dict[str, Path]:
    run_ = Run(config, out, log)
    log(f"spineaug bench {run_.run_id}: torch {torch.__version__}, threads {list(config.threads)}, "
        f"devices {[d.type for d in devices]}, headline B={config.headline[0]} S={config.headline[1]}, "
        f"grid sizes {list(config.sizes)} x batches {list(config.batches)}")
    _mapping_rows(run_)
    for device in devices:
        log(f"[{device.type}] pipelines")
        run_pipelines(run_, device)
        torch.set_num_threads(config.max_threads)
        if config.transforms:
            b, s = config.headline
            log(f"[{device.type}] per-transform table and overhead per preset at B={b} S={s}")
            run_transforms(run_, device)
            for threads in config.threads:  # the gap between thread counts is parallel efficiency, not extra work
                torch.set_num_threads(threads)
                run_overhead(run_, device)
            torch.set_num_threads(config.max_threads)
        if config.checks:
            log(f"[{device.type}] engine checks")
            run_checks(run_, device)
        if config.memory:
            log(f"[{device.type}] memory: peak per call, drift over {config.drift_calls[1]} calls")
            run_memory(run_, device)
    files = run_.write()
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    return files
