"""One timed setting of the training-throughput benchmark: one arm with one number of loader workers.

:func:`time_setting` trains ``warmup + iterations`` steps of the fixed setup of :mod:`spineaug.bench.training` with
the shared harness (:func:`spineaug.harness.train.training_steps`) and returns the timing columns of the setting's
row.

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
from typing import Any

import torch
from torch import Tensor

from spineaug.bench.training import TrainingConfig, network
from spineaug.harness.augment import build_augmentation
from spineaug.harness.train import Trainer, build_network, training_arm, training_loader, training_steps


class _TimedFn:
    """Wraps a per-sample augmentation and adds up its seconds (readable in the main process with 0 workers)."""

    def __init__(self, fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        t0 = time.perf_counter()
        out = self.fn(image, label)
        self.seconds += time.perf_counter() - t0
        return out


def time_setting(config: TrainingConfig, samples: list[Any], arm_name: str, workers: int,
                 device: torch.device) -> dict[str, Any]:
    """Train ``warmup + iterations`` steps of one arm with ``workers`` loader workers; the timing columns."""
    aug = build_augmentation(arm_name, config.patch_size)
    arm = training_arm(aug)
    timed_fn: _TimedFn | None = None
    if not arm.in_loop:
        arm = arm.wrapped(_TimedFn)  # type: ignore[union-attr]
        timed_fn = arm.fn  # type: ignore[union-attr,assignment]
    n = config.warmup + config.iterations
    patches = arm.patches(samples, config.patch_size, length=n * config.batch_size, seed=config.seed)
    loader = training_loader(arm.dataset(patches), batch_size=config.batch_size, workers=workers, device=device)
    arm = arm.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # the same initial weights for every arm
    trainer = Trainer(build_network(network(config)).to(device), device=device, lr=1e-3)
    cuda = device.type == "cuda"
    batches = iter(loader)
    steps = training_steps(batches, arm, trainer, generator=generator, device=device, cuda_events=cuda)
    timed = []
    t_start = aug_before = 0.0
    for i in range(n):
        if i == config.warmup:
            if cuda:
                torch.cuda.synchronize(device)
            t_start = time.perf_counter()
            aug_before = timed_fn.seconds if timed_fn is not None else 0.0
        step = next(steps)
        if i >= config.warmup:
            timed.append(step)
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t_start
    steps.close()
    del steps, batches  # stops the workers
    data = [s.moved - s.waited for s in timed]
    if cuda:  # read after the final synchronisation
        augment = [a.elapsed_time(b) / 1e3 for a, b, _ in (s.events for s in timed)]  # type: ignore[misc]
        network_s = [b.elapsed_time(c) / 1e3 for _, b, c in (s.events for s in timed)]  # type: ignore[misc]
    else:
        augment = [s.augmented - s.moved for s in timed]
        network_s = [s.done - s.augmented for s in timed]
    augment_cell: str | float = statistics.fmean(augment)
    note = ""
    if not arm.in_loop:
        if workers == 0:
            in_loader = (timed_fn.seconds - aug_before) / config.iterations  # type: ignore[union-attr]
            data = [d - in_loader for d in data]
            augment_cell = in_loader
            note = "augmentation inside the loader in the main process (its time is taken out of data)"
        else:
            augment_cell = ""
            note = f"augmentation in {workers} loader worker process(es): the loop sees only the data wait"
    per_it = wall / config.iterations
    median = statistics.median(s.done - s.waited for s in timed)
    return dict(
        iteration_s=f"{per_it:.6g}", iteration_median_s=f"{median:.6g}",
        data_s=f"{statistics.fmean(data):.6g}",
        augment_s=augment_cell if augment_cell == "" else f"{augment_cell:.6g}",
        network_s=f"{statistics.fmean(network_s):.6g}", samples_per_s=f"{config.batch_size / per_it:.6g}",
        read_patch="x".join(map(str, aug.read_size)), note=note,
    )
