"""What one benchmark run measures (:class:`BenchConfig`) and the checks that run before anything is timed."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any, ClassVar, Iterable

import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

import spineaug
from spineaug import _io
from spineaug.baselines import LIBRARIES
from spineaug.validation import PositiveInt, RequiredSeed, ValidatedModel

FULL_SIZES = (64, 96, 128)
FULL_BATCHES = (1, 2, 4)
QUICK_SIZES = (32,)
QUICK_BATCHES = (1, 2)
HEADLINE = (2, 128)
"""(B, S) of the headline comparison (B=2, 128^3): matched work, >= 30 calls, every thread count."""

WORKING_COPIES = 16
"""Estimated peak memory of one case, in multiples of the batch's image + label bytes (inputs, their clones,
grids, intermediates of the heaviest baseline); used to refuse cases that cannot fit before anything runs."""


class BenchError(ValueError):
    """The benchmark request is invalid (unknown name, a case that cannot fit in memory...)."""


def _preset(name: str) -> str:
    known = spineaug.presets()
    if name not in known:
        raise ValueError(f"unknown pipeline {name!r}; available presets: {known}")
    return name


def _library(name: str) -> str:
    if name not in LIBRARIES:
        raise ValueError(f"unknown baseline {name!r}; known baselines: {list(LIBRARIES)}")
    return name


def _device(name: str) -> str:
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or auto")
    return name


def _at_least_one(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values:
        raise ValueError("name at least one value")
    return values


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"values must not repeat, got {list(values)}")
    return values


def _early_before_late(calls: tuple[int, int]) -> tuple[int, int]:
    if calls[0] >= calls[1]:
        raise ValueError(f"must be (early, late) with early < late, got {calls!r}")
    return calls


Count = Annotated[PositiveInt, Strict()]
"""A positive integer, given as an int (not a bool, a float or a string)."""
Counts = Annotated[tuple[Count, ...], AfterValidator(_at_least_one), AfterValidator(_distinct)]
"""At least one positive integer, none repeated (sizes, batch sizes, thread counts)."""
Case = tuple[Count, Count]
"""``(B, S)``: a batch of B cubes of edge S."""
Calls = Annotated[tuple[Count, Count], AfterValidator(_early_before_late)]
"""``(early, late)`` call counts with ``early < late``."""


class BenchConfig(ValidatedModel):
    """What one benchmark run measures.

    The headline case (``headline``) is timed at every thread count in ``threads`` with ``repeats`` calls (all of
    them, no time budget), for each preset, each baseline and spineaug's matched work per baseline. The scaling grid
    (``sizes`` x ``batches``) is timed at the largest thread count with up to ``grid_repeats`` calls (a secondary
    table: medians and the growth with volume). The per-transform table, the overhead per preset, the checks and
    the memory measurements run at the largest thread count on the headline case (the drift on ``drift_case``).

    Attributes:
        pipelines: spineaug presets to time.
        baselines: Baseline libraries (``spineaug.baselines.LIBRARIES``); missing ones are skipped with a note.
        sizes: Cube edges S of the ``B x 1 x S^3`` scaling grid.
        batches: Batch sizes B of the scaling grid.
        headline: ``(B, S)`` of the headline case.
        threads: ``torch.set_num_threads`` values of the headline case (each row records its own).
        devices: ``cpu`` and/or ``cuda`` (``auto`` = cpu, plus cuda when available).
        warmup: Untimed calls before timing each case.
        repeats: Timed calls per headline case and per transform forced on, fresh random parameters each.
        grid_repeats: Most timed calls per scaling-grid case.
        min_repeats: Fewest timed calls when ``max_seconds`` cuts a grid case short.
        max_seconds: Time budget of one grid case; calls stop early (after ``min_repeats``) when it is spent.
        transforms: Measure the per-transform table and the overhead per preset.
        checks: Measure op counts (and their growth with B) and host synchronisations.
        memory: Measure the peak extra memory of a call and the drift over a long run.
        drift_calls: ``(early, late)``: memory is compared after ``early`` and after ``late`` pipeline calls.
        drift_case: ``(B, S)`` of the drift run (small, so ``late`` calls take a minute or two).
        seed: Seed of the data and of every pipeline.
        memory_fraction: A case may need at most this fraction of the available memory (estimate).

    The values are checked when the config is built (a bad one raises :class:`BenchError` naming the key);
    :func:`validate` then checks the config against this machine (devices, memory).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    error_type: ClassVar[type[ValueError]] = BenchError

    pipelines: Annotated[tuple[Annotated[str, AfterValidator(_preset)], ...], AfterValidator(_at_least_one),
                         AfterValidator(_distinct)] = ("nnunet", "xdomain")
    baselines: Annotated[tuple[Annotated[str, AfterValidator(_library)], ...],
                         AfterValidator(_distinct)] = LIBRARIES
    sizes: Counts = FULL_SIZES
    batches: Counts = FULL_BATCHES
    headline: Case = HEADLINE
    threads: Counts = (1, 2)
    devices: Annotated[tuple[Annotated[str, AfterValidator(_device)], ...], AfterValidator(_at_least_one),
                       AfterValidator(_distinct)] = ("auto",)
    warmup: Annotated[int, Strict(), Field(ge=0)] = 1
    repeats: Count = 30
    grid_repeats: Count = 10
    min_repeats: Count = 5
    max_seconds: Annotated[float, Field(gt=0)] = 5.0
    transforms: bool = True
    checks: bool = True
    memory: bool = True
    drift_calls: Calls = (100, 2000)
    drift_case: Case = (2, 64)
    seed: RequiredSeed = 0
    memory_fraction: Annotated[float, Field(gt=0, le=1)] = 0.6

    @model_validator(mode="after")
    def _floor_below_cap(self) -> BenchConfig:
        if self.min_repeats > self.grid_repeats:
            raise ValueError(f"min_repeats ({self.min_repeats}) > grid_repeats ({self.grid_repeats}): a grid case "
                             "stops at grid_repeats calls, so the floor would have no effect")  # fmt: skip
        return self

    @staticmethod
    def quick(**overrides: Any) -> BenchConfig:
        """The reduced run for CI and tests (a minute or two on two CPU cores): tiny cases, few calls."""
        values: dict[str, Any] = dict(
            sizes=QUICK_SIZES, batches=QUICK_BATCHES, headline=(2, 32), warmup=1, repeats=3, grid_repeats=3,
            min_repeats=2, max_seconds=3.0, drift_calls=(10, 50), drift_case=(1, 16),
        )
        values.update(overrides)
        return BenchConfig(**values)

    @property
    def max_threads(self) -> int:
        """The thread count of everything but the headline sweep."""
        return max(self.threads)


REDUCING_KEYS = (
    "pipelines", "baselines", "sizes", "batches", "headline", "threads", "repeats", "grid_repeats", "min_repeats",
    "max_seconds", "transforms", "checks", "memory", "drift_calls", "drift_case",
)  # fmt: skip
"""Settings that make a run measure less than the full default run when they differ from it (not the device,
seed or memory guard)."""


def differences(recorded: dict[str, Any], full: Any, keys: Iterable[str]) -> list[str]:
    """``"key value (full run: value)"`` for every ``key`` whose recorded value differs from ``full``'s (a pydantic
    model or a dataclass)."""
    values = full.model_dump() if isinstance(full, BaseModel) else asdict(full)
    reference = json.loads(json.dumps(values, default=str))
    plain = json.loads(json.dumps(recorded, default=str))
    return [f"{k} {plain[k]} (full run: {reference[k]})" for k in keys if k in plain and plain[k] != reference[k]]


def reduced_settings(recorded: dict[str, Any]) -> list[str]:
    """How a recorded run (``meta.json``'s ``config``) is smaller than the default full run; ``[]`` for a full run.

    ``spineaug report`` uses it so that ``spineaug bench --quick`` (or a run restricted by ``--sizes``,
    ``--baselines``...) never replaces the page built from a full run.
    """
    return differences(recorded, BenchConfig(), REDUCING_KEYS)


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
    """Check a (validated) config against this machine before anything runs: the devices exist and every case fits
    in their memory; return the devices. Raises :class:`BenchError` with a clear message."""
    devices = resolve_devices(config.devices)
    cases = [(b, s) for b in config.batches for s in config.sizes] + [tuple(config.headline)]
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
