"""Training throughput (``spineaug bench --training``): seconds per training iteration, split by where time goes.

The paper's claim is that augmenting on the GPU inside the training step made training ~10 % faster than nnU-Net's
CPU augmentation in data-loader workers. This measures it on one small, fixed training setup: a MONAI ``UNet``
(small channels) with MONAI's ``DiceCELoss`` and Adam, on z-scored phantom patches, for these arms:

* ``bgv2-nnunet``: batchgeneratorsv2's nnU-Net pipeline (``nnUNetTrainer.get_training_transforms``) applied per
  sample in ``DataLoader`` worker processes, as nnU-Net runs it, with 0, 1 and (cores - 1) workers;
* ``nnunet`` / ``xdomain``: the spineaug preset on the whole batch inside the loop, on the training device;
* ``none``: no augmentation (the final patch is read directly).

Every arm trains on the same final patch. As in nnU-Net, the rotating/scaling arms read an *enlarged* patch
(:class:`spineaug.data.PatchSampler`, :func:`~spineaug.data.enlarged_patch_size`) and their spatial step crops the
final patch from it (``Spatial(patch_size=...)``, centre crop; bgv2's ``SpatialTransform``); the study's arms
(:func:`spineaug.study.augment.build_augmentation`) are reused so the benchmark and the study train alike.

Each iteration is split into *data* (the loop blocked on the loader, host clock), *augment* (the in-loop pipeline;
for bgv2 with 0 workers, the augmentation inside the loader, which is subtracted from data) and *network*
(forward, loss, backward, optimiser step). The loss is read back every iteration, as nnU-Net's trainer does. On
CUDA, augment and network are timed with CUDA events and ``torch.cuda.synchronize`` runs only at the clock (start
and end of the timed iterations); ``iteration_s`` is always wall-clock time over the timed iterations divided by
their number, so with overlap the three parts need not add up to it.

CPU budget: every arm runs once per budget of ``c`` cores. The process is pinned to ``c`` of its CPUs with
``os.sched_setaffinity`` (DataLoader workers are forked afterwards and inherit the mask) and torch uses ``c``
threads in the main process (PyTorch sets one thread in each worker); where affinity cannot be set only the thread
count is limited, and the rows say so. This is the shared-server case: several trainings share a machine and the
loader workers get fewer cores than they need.

Results: ``training.csv`` (columns :data:`spineaug._schema.TRAINING_COLUMNS`) and ``training_meta.json`` in the
benchmark folder, written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spineaug import _io, _schema
from spineaug.bench.config import BenchError, resolve_devices

ARMS = ("bgv2-nnunet", "nnunet", "xdomain", "none")
"""(a) nnU-Net's CPU pipeline in workers, (b) and (c) spineaug presets in the loop, (d) no augmentation."""

IN_LOOP_WORKERS = 0
"""Loader workers of the in-loop arms: they only read (enlarged) patches from memory, which the loop does itself."""


@dataclass(frozen=True)
class TrainingConfig:
    """One training-throughput run.

    Attributes:
        patch_size: Final patch (D, H, W); each edge divisible by ``2 ** (len(channels) - 1)``.
        batch_size: Patches per iteration.
        iterations: Timed iterations per arm and setting.
        warmup: Untimed iterations first (workers start, caches fill).
        rounds: Runs of every setting (interleaved); the fastest is kept (``iteration_s``).
        cpu_budgets: Cores per setting (see the module docstring); ``None`` = :func:`default_budgets`.
        arms: Arms to run (:data:`ARMS`).
        channels: UNet channels per level (strides 2).
        cases: Phantom cases to sample patches from.
        phantom_shape: Phantom grid (X, Y, Z).
        spacing: Phantom voxel size in mm.
        domain: Phantom domain of the training images.
        device: ``cpu``, ``cuda`` or ``auto`` (cuda when available, else cpu).
        seed: Seed of the data, the network's initial weights and the augmentation.
    """

    patch_size: tuple[int, int, int] = (48, 48, 48)
    batch_size: int = 2
    iterations: int = 10
    warmup: int = 3
    rounds: int = 2
    cpu_budgets: tuple[int, ...] | None = None
    arms: tuple[str, ...] = ARMS
    channels: tuple[int, ...] = (8, 16, 32)
    cases: int = 2
    phantom_shape: tuple[int, int, int] = (64, 80, 128)
    spacing: float = 2.0
    domain: str = "t2w"
    device: str = "auto"
    seed: int = 0

    @staticmethod
    def quick(**overrides: Any) -> TrainingConfig:
        """A few seconds per arm: tiny patches, one budget, two timed iterations (for tests and CI)."""
        values: dict[str, Any] = dict(
            patch_size=(16, 16, 16), batch_size=1, iterations=2, warmup=1, rounds=1, cpu_budgets=(_io.available_cpus(),),
            channels=(4, 8), cases=1, phantom_shape=(32, 40, 64), spacing=4.0,
        )
        values.update(overrides)
        return TrainingConfig(**values)


def default_budgets(cpus: int | None = None) -> tuple[int, ...]:
    """All available cores, a quarter of them and one (distinct values, largest first)."""
    n = _io.available_cpus() if cpus is None else cpus
    return tuple(sorted({n, max(1, n // 4), 1}, reverse=True))


def worker_counts(budget: int) -> tuple[int, ...]:
    """Loader workers of the bgv2 arm under ``budget`` cores: 0, 1 and ``budget - 1`` (distinct, ascending)."""
    return tuple(sorted({0, 1, max(budget - 1, 0)}))


def validate_training(config: TrainingConfig) -> torch.device:
    """Check the request before anything runs; return the training device. Raises :class:`BenchError`."""
    unknown = [a for a in config.arms if a not in ARMS]
    if unknown or not config.arms:
        raise BenchError(f"unknown training arm(s) {unknown}; known arms: {list(ARMS)}")
    if len(config.patch_size) != 3 or any(int(p) < 1 for p in config.patch_size):
        raise BenchError(f"patch_size must be three positive integers, got {config.patch_size!r}")
    factor = 2 ** (len(config.channels) - 1)
    if any(int(p) % factor for p in config.patch_size):
        raise BenchError(f"every patch edge must be divisible by {factor} (the UNet's {len(config.channels)} "
                         f"levels), got patch_size {tuple(config.patch_size)}")
    for name in ("batch_size", "iterations", "cases", "rounds"):
        if int(getattr(config, name)) < 1:
            raise BenchError(f"{name} must be >= 1, got {getattr(config, name)!r}")
    if config.warmup < 0:
        raise BenchError(f"warmup must be >= 0, got {config.warmup!r}")
    cpus = _io.available_cpus()
    for budget in config.cpu_budgets or ():
        if not 1 <= int(budget) <= cpus:
            raise BenchError(f"CPU budget {budget!r} must lie in 1..{cpus} (the CPUs this process may use)")
    if config.device not in ("cpu", "cuda", "auto"):
        raise BenchError(f"device must be cpu, cuda or auto for the training benchmark, got {config.device!r}")
    devices = resolve_devices([config.device])
    return devices[-1]  # auto: cuda when available, else cpu


# ---------------------------------------------------------------------------------------------- setup


def phantom_samples(config: TrainingConfig) -> list[Any]:
    """The training cases: phantom spines in ``config.domain``, robust-z-scored like the study's data."""
    from spineaug import phantom
    from spineaug.data import Sample
    from spineaug.data.nifti import robust_zscore

    samples = []
    for seed in range(config.seed, config.seed + config.cases):
        case = phantom.make_case(seed, config.domain, shape=config.phantom_shape, spacing=config.spacing)
        image = robust_zscore(case.image)[None]
        samples.append(Sample(f"phantom_{seed:03d}", image, case.label.astype("uint8"), case.affine))
    return samples


def build_network(config: TrainingConfig) -> nn.Module:
    """The fixed network: MONAI ``UNet`` (one residual unit per level, instance norm), 1 input, 4 classes."""
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in config.channels)
    return UNet(spatial_dims=3, in_channels=1, out_channels=4, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1, norm="instance")


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


class _TimedFn:
    """Wraps a per-sample augmentation and adds up its seconds (readable in the main process with 0 workers)."""

    def __init__(self, fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        t0 = time.perf_counter()
        out = self.fn(image, label)
        self.seconds += time.perf_counter() - t0
        return out


# ---------------------------------------------------------------------------------------------- one setting


@dataclass
class _Clock:
    """Per-iteration parts: host seconds, or CUDA events (augment start, network start, network end) read after the
    final synchronisation."""

    cuda: bool
    data: list[float] = field(default_factory=list)
    iteration: list[float] = field(default_factory=list)
    events: list[tuple[Any, Any, Any]] = field(default_factory=list)
    host: list[tuple[float, float]] = field(default_factory=list)

    def marks(self) -> tuple[Any, Any, Any] | None:
        if not self.cuda:
            return None
        marks = tuple(torch.cuda.Event(enable_timing=True) for _ in range(3))
        self.events.append(marks)  # type: ignore[arg-type]
        return marks  # type: ignore[return-value]

    def parts(self) -> tuple[list[float], list[float]]:
        """Augment and network seconds per iteration (call after the final synchronisation)."""
        if self.cuda:
            return ([a.elapsed_time(b) / 1e3 for a, b, _ in self.events],
                    [b.elapsed_time(c) / 1e3 for _, b, c in self.events])
        return [a for a, _ in self.host], [n for _, n in self.host]


def _loader(config: TrainingConfig, samples: list[Any], arm: Any, workers: int, device: torch.device,
            total: int, wrap: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None) -> torch.utils.data.DataLoader:
    from spineaug.data import PatchSampler
    from spineaug.study.augment import WorkerAugmented, seed_worker

    sampler = PatchSampler(samples, config.patch_size, length=total, seed=config.seed,
                           rotation_deg=arm.rotation_deg, scale=arm.scale)
    dataset = sampler if wrap is None else WorkerAugmented(sampler, wrap)
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=workers,
                                       worker_init_fn=seed_worker, pin_memory=device.type == "cuda")


def time_setting(config: TrainingConfig, samples: list[Any], arm_name: str, workers: int,
                 device: torch.device) -> dict[str, Any]:
    """Train ``warmup + iterations`` steps of one arm with ``workers`` loader workers; the timing columns."""
    from monai.losses import DiceCELoss

    from spineaug.study.augment import build_augmentation

    arm = build_augmentation(arm_name, config.patch_size)
    timed_fn = _TimedFn(arm.worker) if arm.worker is not None else None
    n = config.warmup + config.iterations
    loader = _loader(config, samples, arm, workers, device, n * config.batch_size, timed_fn)
    pipe = arm.batch.to(device) if arm.batch is not None else None
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # the same initial weights for every arm
    model = build_network(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    clock = _Clock(cuda=device.type == "cuda")
    batches = iter(loader)
    t_start = aug_before = 0.0
    for i in range(n):
        if i == config.warmup:
            if clock.cuda:
                torch.cuda.synchronize(device)
            t_start = time.perf_counter()
            aug_before = timed_fn.seconds if timed_fn is not None else 0.0
        t_wait = time.perf_counter()
        image, label = next(batches)
        image, label = image.to(device, non_blocking=True), label.to(device, non_blocking=True)
        t_data = time.perf_counter()
        marks = clock.marks()
        if marks is not None:
            marks[0].record()
        if pipe is not None:
            image, label = pipe(image, label, generator=generator)
        t_aug = time.perf_counter()
        if marks is not None:
            marks[1].record()
        loss = loss_fn(model(image), label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if marks is not None:
            marks[2].record()
        float(loss.detach())  # the trainer reads its loss every step (nnU-Net does): one host sync
        t_end = time.perf_counter()
        if i >= config.warmup:
            clock.data.append(t_data - t_wait)
            clock.host.append((t_aug - t_data, t_end - t_aug))
            clock.iteration.append(t_end - t_wait)
        elif marks is not None:
            clock.events.pop()
    if clock.cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t_start
    del batches  # stops the workers
    augment, network = clock.parts()
    data = clock.data
    augment_cell: str | float = statistics.fmean(augment)
    note = ""
    if arm.worker is not None:
        if workers == 0:
            in_loader = (timed_fn.seconds - aug_before) / config.iterations  # type: ignore[union-attr]
            data = [d - in_loader for d in data]
            augment_cell = in_loader
            note = "augmentation inside the loader in the main process (its time is taken out of data)"
        else:
            augment_cell = ""
            note = f"augmentation in {workers} loader worker process(es): the loop sees only the data wait"
    per_it = wall / config.iterations
    return dict(
        iteration_s=f"{per_it:.6g}", iteration_median_s=f"{statistics.median(clock.iteration):.6g}",
        data_s=f"{statistics.fmean(data):.6g}",
        augment_s=augment_cell if augment_cell == "" else f"{augment_cell:.6g}",
        network_s=f"{statistics.fmean(network):.6g}", samples_per_s=f"{config.batch_size / per_it:.6g}",
        read_patch="x".join(map(str, arm.read_size)), note=note,
    )


# ---------------------------------------------------------------------------------------------- the run


def _settings(config: TrainingConfig, budget: int) -> list[tuple[str, int]]:
    out = []
    for arm in config.arms:
        for workers in (worker_counts(budget) if arm == "bgv2-nnunet" else (IN_LOOP_WORKERS,)):
            out.append((arm, workers))
    return out


def _impl(arm: str) -> tuple[str, str]:
    if arm == "bgv2-nnunet":
        return "batchgeneratorsv2", "loader workers"
    return ("none", "-") if arm == "none" else ("spineaug", "in loop")


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
    meta = {"run_id": run_id, "config": asdict(config),
            "cpu_budgets": list(budgets), "cpu_pinning": pinning, "in_loop_loader_workers": IN_LOOP_WORKERS,
            **_io.system_info(), "command": " ".join(sys.argv)}
    files["meta"] = _io.atomic_write_text(folder / _schema.TRAINING_META, json.dumps(meta, indent=1, default=str) + "\n")
    log(f"wrote {', '.join(str(p) for p in files.values())}")
    return files
