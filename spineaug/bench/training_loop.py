"""One timed setting of the training-throughput benchmark: one arm with one number of loader workers.

:func:`time_setting` trains ``warmup + iterations`` steps of the fixed setup of :mod:`spineaug.bench.training` and
returns the timing columns of the setting's row.

Each iteration is split into *data* (the loop blocked on the loader, host clock), *augment* (the in-loop pipeline;
for bgv2 with 0 workers, the augmentation inside the loader, which is subtracted from data) and *network*
(forward, loss, backward, optimiser step). The loss is read back every iteration, as nnU-Net's trainer does. On
CUDA, augment and network are timed with CUDA events and ``torch.cuda.synchronize`` runs only at the clock (start
and end of the timed iterations); ``iteration_s`` is always wall-clock time over the timed iterations divided by
their number, so with overlap the three parts need not add up to it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from spineaug.bench.training import TrainingConfig, build_network


class _TimedFn:
    """Wraps a per-sample augmentation and adds up its seconds (readable in the main process with 0 workers)."""

    def __init__(self, fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        t0 = time.perf_counter()
        out = self.fn(image, label)
        self.seconds += time.perf_counter() - t0
        return out


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
    from spineaug.harness.augment import WorkerAugmented, seed_worker

    sampler = PatchSampler(samples, config.patch_size, length=total, seed=config.seed,
                           rotation_deg=arm.rotation_deg, scale=arm.scale)
    dataset = sampler if wrap is None else WorkerAugmented(sampler, wrap)
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=workers,
                                       worker_init_fn=seed_worker, pin_memory=device.type == "cuda")


def time_setting(config: TrainingConfig, samples: list[Any], arm_name: str, workers: int,
                 device: torch.device) -> dict[str, Any]:
    """Train ``warmup + iterations`` steps of one arm with ``workers`` loader workers; the timing columns."""
    from monai.losses import DiceCELoss

    from spineaug.harness.augment import build_augmentation

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
