"""The training-throughput run: every setting under every CPU budget, the fastest round of each, the result files.

The benchmark itself (arms, network, CPU budgets) is described in :mod:`spineaug.bench.training`.

Under each budget the process is pinned (:func:`cpu_budget`) and every setting (arm x loader workers) is timed
once per round by :func:`spineaug.bench.training_loop.time_setting`; rounds are interleaved and each setting keeps
its fastest round. A setting that fails gives a row with ``status = error`` and the run goes on.

Results: ``training.csv`` (columns :data:`spineaug._schema.TRAINING_COLUMNS`) and ``training_meta.json`` in the
benchmark folder, written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from spineaug import _io, _schema
from spineaug.bench.training import (
    TrainingConfig,
    default_budgets,
    phantom_samples,
    validate_training,
    worker_counts,
)
from spineaug.bench.training_loop import time_setting
from spineaug.harness.train import arm_placement

IN_LOOP_WORKERS = 0
"""Loader workers of the in-loop arms: they only read (enlarged) patches from memory, which the loop does itself."""
LIBRARY = {"bgv2-nnunet": "batchgeneratorsv2"}
"""The library behind each loader-worker arm (the ``impl`` column)."""


@contextlib.contextmanager
def cpu_budget(cores: int) -> Iterator[str]:
    """Limit this process (and the loader workers it forks) to ``cores`` CPUs; yields what was done.

    Pins to the first ``cores`` CPUs of the current affinity mask with ``os.sched_setaffinity`` where the OS has
    it, and sets ``torch.set_num_threads(cores)``; both are restored on exit.
    """
    threads = torch.get_num_threads()
    previous = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    torch.set_num_threads(cores)
    try:
        if previous is None:
            yield f"threads={cores} (no sched_setaffinity on this OS: cores not pinned)"
        else:
            chosen = sorted(previous)[:cores]
            os.sched_setaffinity(0, chosen)
            yield f"sched_setaffinity({','.join(map(str, chosen))}), threads={cores}"
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
        torch.set_num_threads(threads)


def _settings(config: TrainingConfig, budget: int) -> list[tuple[str, int]]:
    """(arm, loader workers) pairs: a loader-worker arm under every count of :func:`worker_counts`, an in-loop arm
    with :data:`IN_LOOP_WORKERS`."""
    out = []
    for arm in config.arms:
        for workers in (IN_LOOP_WORKERS,) if arm_placement(arm).in_loop else worker_counts(budget):
            out.append((arm, workers))
    return out


def _impl(arm: str) -> tuple[str, str]:
    """The row's ``impl`` (library that augments) and ``placement``."""
    placement = arm_placement(arm)
    if not placement.in_loop:
        return LIBRARY.get(arm, arm), placement.placement
    return ("none", "-") if arm == "none" else ("spineaug", placement.placement)


def _measure(config: TrainingConfig, samples: list[Any], arm: str, workers: int, device: torch.device,
             budget: int, log: Callable[[str], None]) -> dict[str, Any]:
    """One row: ``time_setting`` under the current budget, or a row with the error (the run goes on)."""
    impl, placement = _impl(arm)
    row = dict(device=device.type, arm=arm, impl=impl, placement=placement, workers=workers, cpu_budget=budget,
               torch_threads=torch.get_num_threads(), batch=config.batch_size,
               patch="x".join(map(str, config.patch_size)), warmup=config.warmup, iterations=config.iterations,
               status=_schema.STATUS_OK)
    where = f"  {budget} core(s) {arm:12s} workers={workers}:"
    try:
        row.update(time_setting(config, samples, arm, workers, device))
    except Exception as exc:  # one failing arm (a missing library, out of memory) must not stop the run
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        row.update(status="error", note=f"{type(exc).__name__}: {first}")
        log(f"{where} error: {row['note']}")
    else:
        augment = f"{float(row['augment_s']):.3f}" if row["augment_s"] else "in workers"
        log(f"{where} {float(row['iteration_s']):.3f} s/it (data {float(row['data_s']):.3f}, augment {augment}, "
            f"network {float(row['network_s']):.3f})")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _seconds(row: dict[str, Any]) -> float:
    """A row's seconds per iteration; an error row counts as infinitely slow (any measured round replaces it)."""
    return float(row["iteration_s"]) if row["status"] == _schema.STATUS_OK else float("inf")


def run_training(config: TrainingConfig, out: str | Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run every arm under every CPU budget and write ``training.csv`` + ``training_meta.json`` under ``out``.

    Under each budget all settings run once per round (rounds interleaved); each setting's row is its fastest
    round, so a burst of load from other processes on a shared machine spoils one round, not the result.

    Returns:
        The files written: ``training`` and ``meta``.

    Raises:
        BenchError: An invalid request (raised before anything runs).
    """
    device = validate_training(config)
    _io.check_writable_folder(out)  # before the minutes of training, not after
    budgets = tuple(int(b) for b in (config.cpu_budgets or default_budgets()))
    run_id = _io.new_run_id()
    log(f"spineaug bench --training {run_id}: device {device.type}, patch {tuple(config.patch_size)}, "
        f"B={config.batch_size}, {config.iterations} timed iterations (+{config.warmup}), CPU budgets {list(budgets)}")
    samples = phantom_samples(config)
    rows: list[dict[str, Any]] = []
    pinning: dict[int, str] = {}
    for budget in budgets:
        with cpu_budget(budget) as how:
            pinning[budget] = how
            best: dict[tuple[str, int], dict[str, Any]] = {}
            for round_ in range(1, config.rounds + 1):
                log(f"[{budget} core(s), {how}] round {round_}/{config.rounds}")
                for arm, workers in _settings(config, budget):
                    row = _measure(config, samples, arm, workers, device, budget, log)
                    row.update(run_id=run_id, cpu_pinning=how, rounds=config.rounds)
                    kept = best.get((arm, workers))
                    if kept is None or _seconds(row) < _seconds(kept):
                        best[(arm, workers)] = row
            rows.extend(best.values())
    folder = Path(out)
    files = {"training": _io.atomic_write_csv(folder / _schema.TRAINING_CSV, rows, _schema.TRAINING_COLUMNS)}
    meta = {"run_id": run_id, "config": config.model_dump(),
            "cpu_budgets": list(budgets), "cpu_pinning": pinning, "in_loop_loader_workers": IN_LOOP_WORKERS,
            **_io.system_info(), "command": " ".join(sys.argv)}
    files["meta"] = _io.atomic_write_text(folder / _schema.TRAINING_META, json.dumps(meta, indent=1, default=str) + "\n")
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    return files
