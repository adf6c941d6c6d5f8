"""The benchmark run: pipelines against baselines, each transform forced on, engine checks; rows and files."""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

import spineaug
from spineaug import _io, _schema, baselines
from spineaug.bench.cases import forced_pipeline, kind, make_batch, spineaug_fn, transform_entries
from spineaug.bench.config import BenchConfig, validate
from spineaug.bench.probes import count_syncs
from spineaug.bench.timing import Timing, time_calls

PIPELINE_COLUMNS = _schema.BENCH_PIPELINE_COLUMNS
TRANSFORM_COLUMNS = _schema.BENCH_TRANSFORM_COLUMNS
ENGINE_COLUMNS = _schema.BENCH_ENGINE_COLUMNS
MAPPING_COLUMNS = _schema.BENCH_MAPPING_COLUMNS


class Run:
    """Collects rows and notes of one benchmark run and writes them atomically."""

    def __init__(self, config: BenchConfig, out: Path, log: Callable[[str], None]) -> None:
        self.config, self.out, self.log = config, out, log
        self.run_id = _io.new_run_id()
        self.pipelines: list[dict[str, Any]] = []
        self.transforms: list[dict[str, Any]] = []
        self.engine: list[dict[str, Any]] = []
        self.mapping: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(f"NOTE: {text}")

    def base(self, device: torch.device, **fields: Any) -> dict[str, Any]:
        """The leading columns every timing and check row shares, plus ``fields``."""
        return dict(run_id=self.run_id, device=device.type, torch_threads=torch.get_num_threads(), **fields)

    def measure(self, fn: Callable[[Tensor, Tensor], Any], data: Callable[[], tuple[Tensor, Tensor]],
                device: torch.device, *, repeats: int | None = None) -> tuple[Timing | None, str, str]:
        """Time ``fn`` on ``data()`` with this run's settings; return ``(timing or None, status, note)``.

        A failing case (a baseline that errors, out of memory) becomes a row with its status; the run goes on.
        """
        cfg = self.config
        try:
            image, label = data()
            timing = time_calls(fn, image, label, warmup=cfg.warmup, repeats=repeats or cfg.repeats,
                                min_repeats=cfg.min_repeats, max_seconds=cfg.max_seconds)
            return timing, _schema.STATUS_OK, ""
        except torch.OutOfMemoryError as exc:
            return None, "oom", f"out of memory: {str(exc).splitlines()[0][:200]}"
        except MemoryError:
            return None, "oom", "out of host memory"
        except Exception as exc:  # a baseline failing on one case must not stop the run
            return None, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    def write(self) -> dict[str, Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        files = {name: _io.atomic_write_csv(self.out / f"{name}.csv", getattr(self, name), columns)
                 for name, columns in _schema.BENCH_TABLES.items()}
        meta = {
            "run_id": self.run_id,
            "started": self.run_id[:15],
            "config": asdict(self.config),
            **_io.system_info(),
            "notes": self.notes,
            "command": " ".join(sys.argv),
        }
        text = json.dumps(meta, indent=1, default=str) + "\n"
        files["meta"] = _io.atomic_write_text(self.out / _schema.BENCH_META, text)
        return files


# ---------------------------------------------------------------------------------------------- pipelines.csv


def _pipeline_row(run: Run, device: torch.device, pipeline: str, impl: str, version: str, fidelity: str,
                  coverage: str, b: int, s: int, timing: Timing | None, status: str,
                  note: str = "") -> dict[str, Any]:
    row = run.base(device, pipeline=pipeline, impl=impl, library_version=version, fidelity=fidelity,
                   coverage=coverage, batch=b, size=s, voxels=b * s**3, warmup=run.config.warmup, repeats=0,
                   status=status, note=note)
    if timing is not None and timing.times:
        row.update(timing.summary(), samples_per_s=f"{b / timing.median:.6g}")
    return row


def _log_row(run: Run, row: dict[str, Any]) -> None:
    where = f"  {row['pipeline']:8s} {row['impl']:16s} B={row['batch']} S={row['size']:<4d}"
    if row["status"] != _schema.STATUS_OK:
        run.log(f"{where} {row['status']}: {row['note']}")
        return
    run.log(f"{where} {float(row['median_s']) * 1e3:9.2f} ms  [IQR {float(row['iqr_s']) * 1e3:.2f}]  "
            f"n={row['repeats']}")


def _add_pipeline_row(run: Run, row: dict[str, Any]) -> None:
    run.pipelines.append(row)
    _log_row(run, row)


def run_pipelines(run: Run, device: torch.device) -> None:
    """Fill ``pipelines.csv`` rows for one device."""
    cfg = run.config
    cases = [(b, s) for s in cfg.sizes for b in cfg.batches]
    for pipeline in cfg.pipelines:
        aug = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)
        n = len(aug.transforms)
        impls: list[tuple[str, Any, str, str, str]] = [
            ("spineaug", spineaug_fn(aug, cfg.seed), spineaug.__version__, "reference", f"{n}/{n}")
        ]
        for library in cfg.baselines:
            if library == "auglab":
                continue  # timed in its own interpreter below
            try:
                base = baselines.build(library, pipeline, device=device.type, seed=cfg.seed)
            except baselines.BaselineUnavailable as exc:
                run.note(f"{library} skipped for {pipeline} on {device.type}: {exc}")
                continue
            if device.type not in base.devices:
                run.note(f"{library} skipped on {device.type}: CPU-only library (its CPU rows are the comparison)")
                continue
            impls.append((library, base.fn, base.version, base.fidelity, base.coverage))
        for impl, fn, version, fidelity, coverage in impls:
            for b, s in cases:
                data = functools.partial(make_batch, b, s, device, cfg.seed)  # made inside measure's try
                timing, status, note = run.measure(fn, data, device)
                _add_pipeline_row(run, _pipeline_row(run, device, pipeline, impl, version, fidelity, coverage,
                                                     b, s, timing, status, note))
        if "auglab" in cfg.baselines:
            _run_auglab(run, device, pipeline, cases)


def _run_auglab(run: Run, device: torch.device, pipeline: str, cases: list[tuple[int, int]]) -> None:
    from spineaug.baselines import auglab

    cfg = run.config
    try:
        base = baselines.build("auglab", pipeline, device=device.type, seed=cfg.seed)
    except baselines.BaselineUnavailable as exc:
        if pipeline == "xdomain":
            run.note(f"AugLab skipped: run `make auglab-env` ({exc})" if not auglab.available() else
                     f"AugLab skipped for {pipeline}: {exc}")
        return
    try:
        reply = auglab.run(cases, device=device.type, threads=torch.get_num_threads(), seed=cfg.seed,
                           warmup=cfg.warmup, repeats=cfg.repeats, max_seconds=cfg.max_seconds)
    except (baselines.BaselineUnavailable, OSError, ValueError) as exc:
        run.note(f"AugLab skipped: {exc}")
        return
    except Exception as exc:  # subprocess timeout and the like
        run.note(f"AugLab skipped: {type(exc).__name__}: {exc}")
        return
    version = f"{reply.get('auglab', '')} (kornia {reply.get('kornia', '?')})"
    for case in reply["cases"]:
        b, s = case["batch"], case["size"]
        timing = None
        if case.get("times"):
            peak = case.get("cuda_max_allocated_bytes") if device.type == "cuda" else case.get("peak_rss_bytes")
            timing = Timing(case["times"], peak, "cuda_max_allocated" if device.type == "cuda" else "rss_peak")
        status = _schema.STATUS_OK if case.get("error") is None and timing else "error"
        note = f"{reply.get('n_modules', '?')} modules, separate process (.venv-auglab)"
        if case.get("error"):
            note = case["error"][:200]
        _add_pipeline_row(run, _pipeline_row(run, device, pipeline, "auglab", version, base.fidelity,
                                             base.coverage, b, s, timing, status, note))


# ---------------------------------------------------------------------------------------------- transforms.csv


def run_transforms(run: Run, device: torch.device) -> None:
    """Fill ``transforms.csv``: each transform forced on, versus one elementwise pass over the same batch."""
    cfg = run.config
    b, s = cfg.transform_batch, cfg.transform_size
    image, label = make_batch(b, s, device, cfg.seed)
    factor = torch.tensor(1.0001, device=device)
    floor = time_calls(lambda x, y: torch.mul(x, factor), image, label, warmup=cfg.warmup,
                       repeats=max(cfg.repeats, 5), min_repeats=cfg.min_repeats, max_seconds=cfg.max_seconds)
    floor_med = floor.median
    row = run.base(device, batch=b, size=s)
    run.transforms.append(dict(row, transform=_schema.FLOOR_TRANSFORM, kind=_schema.FLOOR_KIND, source="-",
                               **floor.summary(), floor_median_s=f"{floor_med:.6g}", ratio_to_floor="1",
                               status=_schema.STATUS_OK, note=""))
    for entry, source in transform_entries(p for p in ("xdomain", "nnunet") if p in spineaug.presets()):
        name = entry["name"]
        base = dict(row, transform=name, kind=kind(name), source=source)
        try:
            aug = forced_pipeline([entry], cfg.seed, device)
        except (ValueError, TypeError) as exc:
            run.transforms.append(dict(base, status="error", note=str(exc)[:200]))
            continue
        timing, status, note = run.measure(spineaug_fn(aug, cfg.seed), lambda: (image, label), device)
        base.update(status=status, note=note, floor_median_s=f"{floor_med:.6g}")
        if timing is None:
            run.transforms.append(base)
            run.log(f"  transform {name:22s} {status}: {note}")
            continue
        run.transforms.append(dict(base, **timing.summary(), ratio_to_floor=f"{timing.median / floor_med:.4g}"))
        run.log(f"  transform {name:22s} {timing.median * 1e3:9.2f} ms  = {timing.median / floor_med:6.1f} x floor")


# ---------------------------------------------------------------------------------------------- engine.csv


def run_checks(run: Run, device: torch.device) -> None:
    """Fill ``engine.csv``: aten ops per call versus B (all transforms forced on) and host syncs per call."""
    cfg = run.config
    s = min(cfg.sizes + (32,))
    for pipeline in cfg.pipelines:
        entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]
        base = run.base(device, pipeline=pipeline, size=s)
        for b in (1, 2, 4):
            image, label = make_batch(b, s, device, cfg.seed)
            forced = forced_pipeline(entries, cfg.seed, device)
            syncs, names, ops = count_syncs(spineaug_fn(forced, cfg.seed), image, label)
            run.engine.append(dict(base, check="aten_ops_per_call(all forced on)", batch=b, value=ops))
            run.engine.append(dict(base, check="host_syncs_per_call(all forced on)", batch=b, value=syncs,
                                   note=",".join(sorted(set(names)))))
            preset = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)
            fn = spineaug_fn(preset, cfg.seed)
            total = 0
            all_names: set[str] = set()
            for _ in range(5):
                n_sync, n_names, _ = count_syncs(fn, image.clone(), label.clone())
                total += n_sync
                all_names.update(n_names)
            run.engine.append(dict(base, check="host_syncs_in_5_calls(preset)", batch=b, value=total,
                                   note=",".join(sorted(all_names))))
        rows = [r for r in run.engine if r["pipeline"] == pipeline and r["device"] == device.type]
        ops = [int(r["value"]) for r in rows if r["check"].startswith("aten_ops")]
        syncs = [int(r["value"]) for r in rows if r["check"].startswith("host_syncs")]
        run.log(f"  checks {pipeline:8s} aten ops per call B=1,2,4: {ops}; host syncs: {syncs}")


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
        The files written: ``pipelines``, ``transforms``, ``engine``, ``mapping``, ``meta``.

    Raises:
        BenchError: Unknown names or a case that cannot fit in memory (raised before anything runs).
    """
    devices = validate(config)
    threads = config.threads if config.threads is not None else _io.available_cpus()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        return _run(config, devices, Path(out), log)
    finally:
        torch.set_num_threads(previous_threads)


def _run(config: BenchConfig, devices: list[torch.device], out: Path,
         log: Callable[[str], None]) -> dict[str, Path]:
    run_ = Run(config, out, log)
    log(f"spineaug bench {run_.run_id}: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"devices {[d.type for d in devices]}, sizes {list(config.sizes)}, batches {list(config.batches)}")
    _mapping_rows(run_)
    for device in devices:
        log(f"[{device.type}] pipelines")
        run_pipelines(run_, device)
        if config.transforms:
            log(f"[{device.type}] per-transform table at B={config.transform_batch} S={config.transform_size}")
            run_transforms(run_, device)
        if config.checks:
            log(f"[{device.type}] engine checks")
            run_checks(run_, device)
    files = run_.write()
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    return files
