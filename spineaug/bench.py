"""Speed benchmark: spineaug pipelines against the baseline libraries, per transform, and engine checks.

This is the runner behind ``spineaug bench`` and ``make benchmark``. It measures, in one process and one run:

* ``pipelines.csv``: each spineaug preset and each baseline that stands in for it, on batches of
  ``B x 1 x S^3`` float32 images with int64 label maps: seconds per batch (median and quartiles over repeated calls
  with fresh random parameters, after warm-up), samples per second and peak memory (process RSS high-water mark,
  or CUDA max allocated).
* ``transforms.csv``: every transform forced on (``p = 1``), time per batch next to the time of one elementwise
  pass over the same batch (``x * c``: read once, write once), the memory-traffic floor.
* ``engine.csv``: aten operations per call for B = 1, 2, 4 (all transforms forced on; must not grow with B) and
  host synchronisations in the apply path (``aten._local_scalar_dense``/``item``/``nonzero``/``unique`` on tensors
  derived from the data, counted by a dispatch mode; on CUDA also ``torch.cuda.set_sync_debug_mode("error")``).
* ``mapping.csv``: which spineaug transform each baseline expresses, and how.
* ``meta.json``: versions, threads, CPU, device, grid, and the notes (skipped baselines, failures).

Every file is written atomically (temporary file + rename) when the run ends, so a re-run replaces whole files and
never mixes rows of two runs; each row carries the run id.

Example:
    >>> from spineaug import bench
    >>> cfg = bench.BenchConfig(sizes=(16,), batches=(1,), repeats=2, baselines=())   # doctest: +SKIP
    >>> bench.run(cfg, "results/bench")                                               # doctest: +SKIP
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import platform
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakTensorKeyDictionary

import spineaug
from spineaug import baselines as B

PIPELINE_COLUMNS = [
    "run_id", "device", "torch_threads", "pipeline", "impl", "library_version", "fidelity", "coverage",
    "batch", "size", "voxels", "warmup", "repeats", "median_s", "q25_s", "q75_s", "iqr_s", "mean_s", "min_s", "max_s",
    "samples_per_s", "peak_mem_bytes", "mem_kind", "status", "note",
]
TRANSFORM_COLUMNS = [
    "run_id", "device", "torch_threads", "transform", "kind", "source", "batch", "size", "repeats",
    "median_s", "q25_s", "q75_s", "floor_median_s", "ratio_to_floor", "status", "note",
]
ENGINE_COLUMNS = ["run_id", "device", "torch_threads", "pipeline", "check", "batch", "size", "value", "note"]
MAPPING_COLUMNS = ["baseline", "pipeline", "spineaug", "equivalent", "note"]

FULL_SIZES = (64, 96, 128, 160)
FULL_BATCHES = (1, 2, 4)
QUICK_SIZES = (32, 64)
QUICK_BATCHES = (1, 2)

KIND: dict[str, str] = {
    "Brightness": "elementwise", "Contrast": "elementwise", "Gamma": "elementwise", "InverseGamma": "elementwise",
    "Inversion": "elementwise", "IntensityFunction": "elementwise", "GaussianNoise": "elementwise",
    "ZScore": "elementwise", "PercentileClamp": "elementwise+quantile", "HistogramEqualization": "histogram",
    "LabelIntensityRemap": "label-lookup", "LabelAppearance": "label-lookup", "FovCrop": "elementwise",
    "BiasField": "low-res field", "ScharrEdge": "stencil", "Laplacian": "stencil", "UnsharpMask": "stencil",
    "GaussianBlur": "stencil", "RandomConv": "stencil", "LowResolution": "resampling", "ThickSlice": "resampling",
    "Spatial": "resampling", "Affine": "resampling", "Flip": "index",
}
"""Cost class of each transform; the 3x-of-floor target applies to ``elementwise``."""

SYNC_OPS = {
    "_local_scalar_dense", "item", "is_nonzero", "nonzero", "nonzero_static", "_unique", "_unique2", "unique_dim",
    "unique_consecutive", "masked_select", "equal", "allclose",
}
"""aten ops that force the host to wait for the device when their input lives there."""


_MASK_INDEX_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}
"""Indexing ops that synchronise when an index is a boolean mask (the output size depends on the data)."""


def _has_bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in (indices or ()))


class BenchError(ValueError):
    """The benchmark request is invalid (unknown name, a case that cannot fit in memory...)."""


@dataclass
class BenchConfig:
    """What one benchmark run measures.

    Attributes:
        pipelines: spineaug presets to time.
        baselines: Baseline libraries (``spineaug.baselines.LIBRARIES``); missing ones are skipped with a note.
        sizes: Cube edges S of the ``B x 1 x S^3`` batches.
        batches: Batch sizes B.
        devices: ``cpu`` and/or ``cuda`` (``auto`` = cpu, plus cuda when available).
        warmup: Untimed calls before timing each case.
        repeats: Timed calls per case (fresh random parameters each).
        min_repeats: Fewest timed calls when ``max_seconds`` cuts a case short.
        max_seconds: Time budget of one case; repeats stop early (after ``min_repeats``) when it is spent.
        threads: ``torch.set_num_threads`` for the run (recorded in every row); ``None`` = the CPUs available.
        transforms: Measure the per-transform table.
        transform_size: S of the per-transform table.
        transform_batch: B of the per-transform table.
        checks: Measure op counts and host synchronisations.
        seed: Seed of the data and of every pipeline.
        memory_fraction: A case may need at most this fraction of the available memory (estimate).
    """

    pipelines: tuple[str, ...] = ("nnunet", "xdomain")
    baselines: tuple[str, ...] = B.LIBRARIES
    sizes: tuple[int, ...] = FULL_SIZES
    batches: tuple[int, ...] = FULL_BATCHES
    devices: tuple[str, ...] = ("auto",)
    warmup: int = 1
    repeats: int = 20
    min_repeats: int = 5
    max_seconds: float = 10.0
    threads: int | None = None
    transforms: bool = True
    transform_size: int = 128
    transform_batch: int = 2
    checks: bool = True
    seed: int = 0
    memory_fraction: float = 0.6

    @staticmethod
    def quick(**overrides: Any) -> BenchConfig:
        """The reduced grid for CI (a few minutes on two CPU cores)."""
        values: dict[str, Any] = dict(
            sizes=QUICK_SIZES, batches=QUICK_BATCHES, warmup=1, repeats=3, min_repeats=2, max_seconds=3.0,
            transform_size=64, transform_batch=2,
        )
        values.update(overrides)
        return BenchConfig(**values)


# ----------------------------------------------------------------------------------------------------------------
# Measuring


class SyncCounter(TorchDispatchMode):
    """Count host synchronisations on tensors derived from the data, and all aten ops, inside a ``with`` block.

    The data tensors passed to :meth:`track` are "device" tensors; every op output computed from one is too (taint
    propagation). Parameters drawn from the CPU generator never touch the data, so reading them on the host is not a
    sync. A sync is one of :data:`SYNC_OPS` applied to a tainted tensor: on a GPU each would stall the host.

    Attributes:
        syncs: Number of synchronising ops on data-derived tensors.
        sync_ops: Their names, in order.
        ops: Number of aten ops dispatched (all tensors).
    """

    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0
        self.sync_ops: list[str] = []
        self.ops = 0
        self._tainted = WeakTensorKeyDictionary()

    def track(self, *tensors: Tensor | None) -> None:
        """Mark tensors as living on the device."""
        for t in tensors:
            if isinstance(t, Tensor):
                self._tainted[t] = True

    def _is_tainted(self, value: Any) -> bool:
        if isinstance(value, Tensor):
            return value in self._tainted
        if isinstance(value, (list, tuple)):
            return any(self._is_tainted(v) for v in value)
        if isinstance(value, dict):
            return any(self._is_tainted(v) for v in value.values())
        return False

    def _mark(self, value: Any) -> None:
        if isinstance(value, Tensor):
            self._tainted[value] = True
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._mark(v)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        tainted = self._is_tainted(args) or self._is_tainted(kwargs)
        name = func.overloadpacket.__name__
        if tainted and (name in SYNC_OPS or (name in _MASK_INDEX_OPS and _has_bool_index(args))):
            self.syncs += 1
            self.sync_ops.append(name)
        out = func(*args, **kwargs)
        if tainted:
            self._mark(out)
            # In-place and out= ops taint their destination too.
            if func._schema.is_mutable:
                self._mark(args[0] if args else None)
        return out


def count_syncs(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor | None) -> tuple[int, list[str], int]:
    """Run ``fn(image, label)`` once under :class:`SyncCounter`; return ``(syncs, sync op names, aten ops)``.

    On CUDA it also runs under ``torch.cuda.set_sync_debug_mode("error")``, so a real sync raises.
    """
    counter = SyncCounter()
    with counter:
        counter.track(image, label)
        if image.is_cuda:
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                fn(image, label)
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        else:
            fn(image, label)
    return counter.syncs, counter.sync_ops, counter.ops


def _read_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def available_memory(device: torch.device) -> int | None:
    """Bytes free for one case: CUDA free memory, or MemAvailable (Linux); ``None`` when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


WORKING_COPIES = 16
"""Estimated peak memory of one case, in multiples of the batch's image + label bytes (inputs, their clones,
grids, intermediates of the heaviest baseline); used to refuse cases that cannot fit before anything runs."""


def case_bytes(batch: int, size: int) -> int:
    """Estimated peak bytes of one ``batch x 1 x size^3`` case (float32 image + int64 label)."""
    return batch * size**3 * (4 + 8) * WORKING_COPIES


@dataclass
class Timing:
    """Seconds per call of one case."""

    times: list[float]
    peak_mem: int | None
    mem_kind: str

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def quantile(self, q: float) -> float:
        xs = sorted(self.times)
        if len(xs) == 1:
            return xs[0]
        pos = q * (len(xs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_calls(
    fn: Callable[[Tensor, Tensor], Any],
    image: Tensor,
    label: Tensor,
    *,
    warmup: int,
    repeats: int,
    min_repeats: int = 1,
    max_seconds: float = math.inf,
) -> Timing:
    """Time ``fn`` on fresh clones of ``image``/``label`` (cloned outside the clock: some libraries work in place).

    Each call draws fresh random parameters (the pipelines' generators advance). On CUDA the device is synchronised
    before starting and before stopping the clock, so the time covers the queued kernels.
    """
    cuda = image.is_cuda
    for _ in range(warmup):
        fn(image.clone(), label.clone())
    if cuda:
        torch.cuda.synchronize(image.device)
        torch.cuda.reset_peak_memory_stats(image.device)
    else:
        _reset_peak_rss()
    times: list[float] = []
    started = time.perf_counter()
    for i in range(repeats):
        x, y = image.clone(), label.clone()
        if cuda:
            torch.cuda.synchronize(image.device)
        t0 = time.perf_counter()
        fn(x, y)
        if cuda:
            torch.cuda.synchronize(image.device)
        times.append(time.perf_counter() - t0)
        del x, y
        if i + 1 >= min_repeats and time.perf_counter() - started > max_seconds:
            break
    if cuda:
        return Timing(times, int(torch.cuda.max_memory_allocated(image.device)), "cuda_max_allocated")
    return Timing(times, _read_status("VmHWM"), "rss_peak")


def make_batch(batch: int, size: int, device: torch.device, seed: int) -> tuple[Tensor, Tensor]:
    """A reproducible ``B x 1 x S^3`` float32 image in [0, 1) and an int64 label map with values 0..3."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + batch * 1000 + size)
    image = torch.rand((batch, 1, size, size, size), generator=g)
    label = torch.randint(0, 4, (batch, 1, size, size, size), generator=g)
    return image.to(device), label.to(device)


def spineaug_fn(pipeline: spineaug.Pipeline, seed: int) -> Callable[[Tensor, Tensor], Any]:
    """A batched call of a spineaug pipeline drawing from one seeded CPU generator (fresh parameters each call)."""
    g = torch.Generator().manual_seed(seed)

    def fn(image: Tensor, label: Tensor):
        return pipeline(image, label, generator=g)

    return fn


def forced_on(entry: dict[str, Any]) -> dict[str, Any]:
    """A config entry that always fires: ``p`` and every non-zero ``p_*`` set to 1 (Spatial: rotation and scaling)."""
    out = copy.deepcopy(entry)
    out["p"] = 1.0
    for key, value in entry.items():
        if key.startswith("p_") and isinstance(value, (int, float)) and value > 0:
            out[key] = 1.0
    if entry["name"] == "Spatial" and not any(out.get(k) for k in ("p_rotation", "p_scale", "p_elastic")):
        out["p_rotation"] = out["p_scale"] = 1.0
    return out


def transform_entries(pipelines: Iterable[str]) -> list[tuple[dict[str, Any], str]]:
    """One config entry per transform name: from the first preset that uses it, else the registry defaults."""
    seen: dict[str, tuple[dict[str, Any], str]] = {}
    for name in pipelines:
        for entry in spineaug.Pipeline.from_preset(name).config()["transforms"]:
            seen.setdefault(entry["name"], (entry, name))
    for name in sorted(spineaug.TRANSFORMS):
        seen.setdefault(name, ({"name": name}, "defaults"))
    return list(seen.values())


def forced_pipeline(entries: list[dict[str, Any]], seed: int, device: torch.device) -> spineaug.Pipeline:
    """A pipeline of ``entries`` with every transform forced on, no input NaN check."""
    config = {"seed": seed, "transforms": [forced_on(e) for e in entries]}
    return spineaug.Pipeline.from_config(config, check_finite=False).to(device)


# ----------------------------------------------------------------------------------------------------------------
# Running


def resolve_devices(devices: Iterable[str]) -> list[torch.device]:
    """``auto`` -> cpu (+ cuda when available); ``cuda`` without a GPU is an error."""
    out: list[torch.device] = []
    for d in devices:
        if d == "auto":
            out.append(torch.device("cpu"))
            if torch.cuda.is_available():
                out.append(torch.device("cuda"))
        elif d in ("cpu", "cuda"):
            if d == "cuda" and not torch.cuda.is_available():
                raise BenchError("device 'cuda' requested but torch.cuda.is_available() is False")
            out.append(torch.device(d))
        else:
            raise BenchError(f"unknown device {d!r}; use cpu, cuda or auto")
    return list(dict.fromkeys(out))


def validate(config: BenchConfig) -> list[torch.device]:
    """Check names, sizes and memory before anything runs; raise :class:`BenchError` with a clear message."""
    known = spineaug.presets()
    for p in config.pipelines:
        if p not in known:
            raise BenchError(f"unknown pipeline {p!r}; available presets: {known}")
    for b in config.baselines:
        if b not in B.LIBRARIES:
            raise BenchError(f"unknown baseline {b!r}; known baselines: {list(B.LIBRARIES)}")
    for name, values in (("size", config.sizes), ("batch", config.batches)):
        if not values:
            raise BenchError(f"no {name} given")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BenchError(f"{name} must be a positive integer, got {v!r}")
    if config.repeats < 1 or config.warmup < 0 or config.min_repeats < 1:
        raise BenchError("repeats and min_repeats must be >= 1 and warmup >= 0")
    devices = resolve_devices(config.devices)
    cases = [(b, s) for b in config.batches for s in config.sizes]
    if config.transforms:
        cases.append((config.transform_batch, config.transform_size))
    for device in devices:
        free = available_memory(device)
        if free is None:
            continue
        too_big = [(b, s) for b, s in cases if case_bytes(b, s) > config.memory_fraction * free]
        if too_big:
            listed = ", ".join(f"B={b} S={s} (~{case_bytes(b, s) / 2**30:.1f} GiB)" for b, s in too_big)
            raise BenchError(
                f"case(s) cannot fit in {device.type} memory: {listed}; available ~{free / 2**30:.1f} GiB "
                f"(limit {config.memory_fraction:.0%}). Use smaller --sizes/--batches."
            )
    return devices


def _fmt_bytes(n: int | None) -> str:
    return "" if n is None else str(int(n))


class Run:
    """Collects rows and notes of one benchmark run and writes them atomically."""

    def __init__(self, config: BenchConfig, out: Path, log: Callable[[str], None]) -> None:
        self.config, self.out, self.log = config, out, log
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.pipelines: list[dict[str, Any]] = []
        self.transforms: list[dict[str, Any]] = []
        self.engine: list[dict[str, Any]] = []
        self.mapping: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(f"NOTE: {text}")

    def write(self) -> dict[str, Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        files = {
            "pipelines": _write_csv(self.out / "pipelines.csv", PIPELINE_COLUMNS, self.pipelines),
            "transforms": _write_csv(self.out / "transforms.csv", TRANSFORM_COLUMNS, self.transforms),
            "engine": _write_csv(self.out / "engine.csv", ENGINE_COLUMNS, self.engine),
            "mapping": _write_csv(self.out / "mapping.csv", MAPPING_COLUMNS, self.mapping),
        }
        meta = {
            "run_id": self.run_id,
            "started": self.run_id[:15],
            "config": asdict(self.config),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_model": _cpu_model(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "versions": _versions(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "notes": self.notes,
            "command": " ".join(sys.argv),
        }
        files["meta"] = _write_text(self.out / "meta.json", json.dumps(meta, indent=1, default=str) + "\n")
        return files


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return _write_text(path, buf.getvalue())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("spineaug", "torch", "numpy", "batchgeneratorsv2", "nnunetv2", "torchio", "monai", "kornia", "asv"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _timing_row(run: Run, device: torch.device, pipeline: str, impl: str, version: str, fidelity: str,
                coverage: str, b: int, s: int, timing: Timing | None, status: str, note: str = "") -> dict[str, Any]:
    row: dict[str, Any] = dict(
        run_id=run.run_id, device=device.type, torch_threads=torch.get_num_threads(), pipeline=pipeline, impl=impl,
        library_version=version, fidelity=fidelity, coverage=coverage, batch=b, size=s, voxels=b * s**3,
        warmup=run.config.warmup, repeats=0, status=status, note=note,
    )
    if timing is not None and timing.times:
        med = timing.median
        q25, q75 = timing.quantile(0.25), timing.quantile(0.75)
        row.update(repeats=len(timing.times), median_s=f"{med:.6g}", q25_s=f"{q25:.6g}", q75_s=f"{q75:.6g}",
                   iqr_s=f"{q75 - q25:.6g}", mean_s=f"{statistics.fmean(timing.times):.6g}", min_s=f"{min(timing.times):.6g}", max_s=f"{max(timing.times):.6g}",
                   samples_per_s=f"{b / med:.6g}", peak_mem_bytes=_fmt_bytes(timing.peak_mem),
                   mem_kind=timing.mem_kind)
    return row


def _run_case(run: Run, fn, device: torch.device, b: int, s: int) -> tuple[Timing | None, str, str]:
    cfg = run.config
    try:
        image, label = make_batch(b, s, device, cfg.seed)
        timing = time_calls(fn, image, label, warmup=cfg.warmup, repeats=cfg.repeats, min_repeats=cfg.min_repeats,
                            max_seconds=cfg.max_seconds)
        return timing, "ok", ""
    except torch.OutOfMemoryError as exc:
        return None, "oom", f"out of memory: {str(exc).splitlines()[0][:200]}"
    except MemoryError:
        return None, "oom", "out of host memory"
    except Exception as exc:  # a baseline failing on one case must not stop the run
        return None, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


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
                base = B.build(library, pipeline, device=device.type, seed=cfg.seed)
            except B.BaselineUnavailable as exc:
                run.note(f"{library} skipped for {pipeline} on {device.type}: {exc}")
                continue
            if device.type not in base.devices:
                run.note(f"{library} skipped on {device.type}: CPU-only library (its CPU rows are the comparison)")
                continue
            impls.append((library, base.fn, base.version, base.fidelity, base.coverage))
        for impl, fn, version, fidelity, coverage in impls:
            for b, s in cases:
                timing, status, note = _run_case(run, fn, device, b, s)
                run.pipelines.append(_timing_row(run, device, pipeline, impl, version, fidelity, coverage, b, s,
                                                 timing, status, note))
                _log_row(run, run.pipelines[-1])
        if "auglab" in cfg.baselines:
            _run_auglab(run, device, pipeline, cases)


def _run_auglab(run: Run, device: torch.device, pipeline: str, cases: list[tuple[int, int]]) -> None:
    from spineaug.baselines import auglab

    cfg = run.config
    try:
        base = B.build("auglab", pipeline, device=device.type, seed=cfg.seed)
    except B.BaselineUnavailable as exc:
        if pipeline == "xdomain":
            run.note(f"AugLab skipped: run `make auglab-env` ({exc})" if not auglab.available() else
                     f"AugLab skipped for {pipeline}: {exc}")
        return
    try:
        reply = auglab.run(cases, device=device.type, threads=torch.get_num_threads(), seed=cfg.seed,
                           warmup=cfg.warmup, repeats=cfg.repeats, max_seconds=cfg.max_seconds)
    except (B.BaselineUnavailable, OSError, ValueError) as exc:
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
        status = "ok" if case.get("error") is None and timing else "error"
        note = f"{reply.get('n_modules', '?')} modules, separate process (.venv-auglab)"
        if case.get("error"):
            note = case["error"][:200]
        run.pipelines.append(_timing_row(run, device, pipeline, "auglab", version, base.fidelity, base.coverage,
                                         b, s, timing, status, note))
        _log_row(run, run.pipelines[-1])


def _log_row(run: Run, row: dict[str, Any]) -> None:
    if row["status"] != "ok":
        run.log(f"  {row['pipeline']:8s} {row['impl']:16s} B={row['batch']} S={row['size']:<4d} {row['status']}: "
                f"{row['note']}")
        return
    run.log(f"  {row['pipeline']:8s} {row['impl']:16s} B={row['batch']} S={row['size']:<4d} "
            f"{float(row['median_s']) * 1e3:9.2f} ms  [IQR {float(row['iqr_s']) * 1e3:.2f}]  n={row['repeats']}")


def run_transforms(run: Run, device: torch.device) -> None:
    """Fill ``transforms.csv``: each transform forced on, versus one elementwise pass over the same batch."""
    cfg = run.config
    b, s = cfg.transform_batch, cfg.transform_size
    image, label = make_batch(b, s, device, cfg.seed)
    factor = torch.tensor(1.0001, device=device)
    floor = time_calls(lambda x, y: torch.mul(x, factor), image, label, warmup=cfg.warmup,
                       repeats=max(cfg.repeats, 5), min_repeats=cfg.min_repeats, max_seconds=cfg.max_seconds)
    floor_med = floor.median
    base = dict(run_id=run.run_id, device=device.type, torch_threads=torch.get_num_threads(), batch=b, size=s)
    run.transforms.append(dict(base, transform="(elementwise pass x*c)", kind="floor", source="-",
                               repeats=len(floor.times), median_s=f"{floor_med:.6g}",
                               q25_s=f"{floor.quantile(0.25):.6g}", q75_s=f"{floor.quantile(0.75):.6g}",
                               floor_median_s=f"{floor_med:.6g}", ratio_to_floor="1", status="ok", note=""))
    for entry, source in transform_entries(p for p in ("xdomain", "nnunet") if p in spineaug.presets()):
        name = entry["name"]
        try:
            aug = forced_pipeline([entry], cfg.seed, device)
        except (ValueError, TypeError) as exc:
            run.transforms.append(dict(base, transform=name, kind=KIND.get(name, "other"), source=source,
                                       status="error", note=str(exc)[:200]))
            continue
        timing, status, note = _run_case_with(run, spineaug_fn(aug, cfg.seed), image, label)
        row = dict(base, transform=name, kind=KIND.get(name, "other"), source=source, status=status, note=note,
                   floor_median_s=f"{floor_med:.6g}")
        if timing is not None:
            row.update(repeats=len(timing.times), median_s=f"{timing.median:.6g}",
                       q25_s=f"{timing.quantile(0.25):.6g}", q75_s=f"{timing.quantile(0.75):.6g}",
                       ratio_to_floor=f"{timing.median / floor_med:.4g}")
        run.transforms.append(row)
        if timing is not None:
            run.log(f"  transform {name:22s} {timing.median * 1e3:9.2f} ms  = {timing.median / floor_med:6.1f} x floor")
        else:
            run.log(f"  transform {name:22s} {status}: {note}")


def _run_case_with(run: Run, fn, image: Tensor, label: Tensor) -> tuple[Timing | None, str, str]:
    cfg = run.config
    try:
        return time_calls(fn, image, label, warmup=cfg.warmup, repeats=cfg.repeats, min_repeats=cfg.min_repeats,
                          max_seconds=cfg.max_seconds), "ok", ""
    except Exception as exc:
        return None, "error", f"{type(exc).__name__}: {str(exc)[:200]}"


def run_checks(run: Run, device: torch.device) -> None:
    """Fill ``engine.csv``: aten ops per call versus B (all transforms forced on) and host syncs per call."""
    cfg = run.config
    s = min(cfg.sizes + (32,))
    for pipeline in cfg.pipelines:
        entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]
        base = dict(run_id=run.run_id, device=device.type, torch_threads=torch.get_num_threads(), pipeline=pipeline,
                    size=s)
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
        ops = [int(r["value"]) for r in run.engine
               if r["pipeline"] == pipeline and r["check"].startswith("aten_ops") and r["device"] == device.type]
        syncs = [int(r["value"]) for r in run.engine
                 if r["pipeline"] == pipeline and r["check"].startswith("host_syncs") and r["device"] == device.type]
        run.log(f"  checks {pipeline:8s} aten ops per call B=1,2,4: {ops}; host syncs: {syncs}")


def run(config: BenchConfig, out: str | Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run the benchmark and write its CSV files under ``out``.

    Returns:
        The files written: ``pipelines``, ``transforms``, ``engine``, ``mapping``, ``meta``.

    Raises:
        BenchError: Unknown names or a case that cannot fit in memory (raised before anything runs).
    """
    devices = validate(config)
    threads = config.threads
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        return _run(config, devices, Path(out), log)
    finally:
        torch.set_num_threads(previous_threads)


def _run(config: BenchConfig, devices: list[torch.device], out: Path, log: Callable[[str], None]) -> dict[str, Path]:
    run_ = Run(config, out, log)
    log(f"spineaug bench {run_.run_id}: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"devices {[d.type for d in devices]}, sizes {list(config.sizes)}, batches {list(config.batches)}")
    for library in config.baselines:
        for pipeline in config.pipelines:
            try:
                rows = B.mapping(library, pipeline)
            except Exception as exc:
                run_.note(f"mapping of {library} for {pipeline} unavailable: {exc}")
                continue
            if library == "auglab" and pipeline != "xdomain":
                continue
            for r in rows:
                run_.mapping.append(dict(baseline=library, pipeline=pipeline, spineaug=r.spineaug,
                                         equivalent=r.equivalent or "", note=r.note))
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
