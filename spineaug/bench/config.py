"""What one benchmark run measures (:class:`BenchConfig`) and the checks that run before anything is timed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

import spineaug
from spineaug import _io
from spineaug.baselines import LIBRARIES

FULL_SIZES = (64, 96, 128, 160)
FULL_BATCHES = (1, 2, 4)
QUICK_SIZES = (32, 64)
QUICK_BATCHES = (1, 2)

WORKING_COPIES = 16
"""Estimated peak memory of one case, in multiples of the batch's image + label bytes (inputs, their clones,
grids, intermediates of the heaviest baseline); used to refuse cases that cannot fit before anything runs."""


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
    baselines: tuple[str, ...] = LIBRARIES
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


def available_memory(device: torch.device) -> int | None:
    """Bytes free for one case: CUDA free memory, or MemAvailable (Linux); ``None`` when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return _io.mem_available_bytes()


def case_bytes(batch: int, size: int) -> int:
    """Estimated peak bytes of one ``batch x 1 x size^3`` case (float32 image + int64 label)."""
    return batch * size**3 * (4 + 8) * WORKING_COPIES


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
        if b not in LIBRARIES:
            raise BenchError(f"unknown baseline {b!r}; known baselines: {list(LIBRARIES)}")
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
