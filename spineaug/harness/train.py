"""Training as the study and the training-throughput benchmark both do it: one network, loss, step and loop.

One owner each for: the network (:func:`build_network`), the loss (:func:`build_loss`), the optimiser, schedule
and mixed precision (:class:`Trainer`), the loop body (:func:`training_steps`: batch to device, in-loop
augmentation, one optimiser step, one loss read-back), the loader (:func:`training_loader`) and the way a
phantom case becomes a training sample (:func:`phantom_sample`, :func:`zscored`).

Where an arm augments is a small protocol, :class:`TrainingArm`, with two implementations: :class:`InLoopArm`
(a spineaug pipeline on the whole batch on the training device, inside the step) and :class:`WorkerArm` (a
per-sample CPU pipeline in the data-loader workers, as nnU-Net runs batchgeneratorsv2). :func:`training_arm`
picks one for a built :class:`~spineaug.harness.augment.Augmentation`; :func:`arm_placement` names the class
of an arm without building it. Callers ask the arm (``arm.in_loop``, ``arm.dataset(...)``), never the arm's name.

Example:
    >>> arm = training_arm(build_augmentation("nnunet", (32, 32, 32)))          # doctest: +SKIP
    >>> patches = arm.patches(samples, (32, 32, 32), length=20, seed=0)          # doctest: +SKIP
    >>> loader = training_loader(arm.dataset(patches), batch_size=2, workers=0, device=device)  # doctest: +SKIP
    >>> trainer = Trainer(build_network(Network(filters=(8, 16))).to(device), device=device)  # doctest: +SKIP
    >>> for step in training_steps(loader, arm.to(device), trainer, generator=g, device=device):  # doctest: +SKIP
    ...     print(step.loss)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from spineaug import phantom
from spineaug.data import PatchSampler, Sample, robust_zscore
from spineaug.harness.augment import BASELINE_ARMS, Augmentation, WorkerAugmented, seed_worker

N_CLASSES = 4
"""Background, vertebra, disc, canal."""
CLASS_NAMES = ("vertebra", "disc", "canal")
ZSCORE_PERCENTILES = (0.5, 99.5)
"""Default clipping percentiles of the per-image robust z-score."""

SampleFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

# ------------------------------------------------------------------------------------------------------- data


def zscored(image: np.ndarray, percentiles: Sequence[float] = ZSCORE_PERCENTILES) -> np.ndarray:
    """Robust-z-score each channel of a (C, X, Y, Z) image on its own (:func:`spineaug.data.robust_zscore`)."""
    return np.stack([robust_zscore(channel, percentiles=tuple(percentiles)) for channel in image])


def phantom_sample(case_id: str, image: np.ndarray, label: np.ndarray, affine: np.ndarray, *,
                   percentiles: Sequence[float] = ZSCORE_PERCENTILES) -> Sample:  # fmt: skip
    """A training sample from a rendered phantom case (or its cached arrays).

    Args:
        image: (X, Y, Z) raw phantom intensities; the sample gets them z-scored as one channel.
        label: (X, Y, Z) task labels (0..3).
    """
    return Sample(case_id, zscored(image[None], percentiles), label.astype(np.uint8), affine)


def phantom_samples(domain: str, seeds: Iterable[int], *, shape: tuple[int, int, int], spacing: float,
                    percentiles: Sequence[float] = ZSCORE_PERCENTILES) -> list[Sample]:  # fmt: skip
    """Render phantom spines (one per seed) in ``domain`` as training samples, ``phantom_<seed>`` each."""
    out = []
    for seed in seeds:
        case = phantom.make_case(seed, domain, shape=shape, spacing=spacing)
        sample = phantom_sample(f"phantom_{seed:03d}", case.image, case.label, case.affine, percentiles=percentiles)
        out.append(sample)
    return out


# ---------------------------------------------------------------------------------------------------- network


class NetworkSpec(Protocol):
    """What :func:`build_network` reads (the study's ``Model`` config has these fields too)."""

    name: str
    filters: Sequence[int]
    norm: str


@dataclass(frozen=True)
class Network:
    """A network description: MONAI ``UNet`` (one residual unit per level) or ``DynUNet``, channels per level."""

    filters: tuple[int, ...] = (8, 16, 32, 64)
    name: str = "UNet"
    norm: str = "instance"


def build_network(spec: NetworkSpec, in_channels: int = 1) -> nn.Module:
    """The segmentation network: ``in_channels`` in, :data:`N_CLASSES` logits out, stride 2 between levels."""
    from monai.networks.nets import DynUNet, UNet  # optional: monai (study extra)

    filters = [int(f) for f in spec.filters]
    levels = len(filters)
    if spec.name == "UNet":
        return UNet(spatial_dims=3, in_channels=in_channels, out_channels=N_CLASSES, channels=filters,
                    strides=[2] * (levels - 1), num_res_units=1, norm=spec.norm)  # fmt: skip
    if spec.name != "DynUNet":
        raise ValueError(f"network name must be UNet or DynUNet, got {spec.name!r}")
    return DynUNet(
        spatial_dims=3, in_channels=in_channels, out_channels=N_CLASSES,
        kernel_size=[3] * levels, strides=[1] + [2] * (levels - 1), upsample_kernel_size=[2] * (levels - 1),
        filters=filters, norm_name=spec.norm, deep_supervision=False, res_block=True,
    )  # fmt: skip


def build_loss() -> nn.Module:
    """The training loss: MONAI ``DiceCELoss`` on softmax logits against integer labels (one-hot inside)."""
    from monai.losses import DiceCELoss  # optional: monai (study extra)

    return DiceCELoss(to_onehot_y=True, softmax=True)


class Trainer:
    """One network's optimisation: Adam, an optional polynomial schedule, optional mixed precision, the loss.

    Args:
        model: The network, already on ``device``.
        device: The training device.
        lr, weight_decay: Adam's.
        iterations: Length of the polynomial learning-rate decay (power 0.9); None: a constant rate.
        amp: Mixed precision (autocast + gradient scaling); only honoured on CUDA.

    Attributes:
        model, optimizer, scheduler, scaler, loss_fn: What :meth:`step` uses; checkpoints save their states.
    """

    def __init__(self, model: nn.Module, *, device: torch.device, lr: float = 1e-3, weight_decay: float = 0.0,
                 iterations: int | None = None, amp: bool = False) -> None:  # fmt: skip
        self.model, self.device = model, torch.device(device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.scheduler = None
        if iterations is not None:
            self.scheduler = torch.optim.lr_scheduler.PolynomialLR(self.optimizer, total_iters=iterations, power=0.9)
        self.loss_fn = build_loss()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def step(self, image: Tensor, label: Tensor) -> Tensor:
        """Forward, loss, backward and one optimiser (and schedule) step; the loss, not read back to the host."""
        with torch.autocast(self.device.type, enabled=self.amp):
            loss = self.loss_fn(self.model(image), label)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()


# ------------------------------------------------------------------------------------------------------- arms


class TrainingArm(Protocol):
    """Where an arm's augmentation runs in training.

    Attributes:
        augmentation: The built arm (:func:`spineaug.harness.augment.build_augmentation`).
        in_loop: True when :meth:`augment` does the work inside the step; False when :meth:`dataset` does it in
            the loader (then :meth:`augment` returns the batch unchanged).
        placement: ``"in loop"`` or ``"loader workers"`` (for result rows).
    """

    augmentation: Augmentation
    in_loop: ClassVar[bool]
    placement: ClassVar[str]

    def patches(self, samples: Sequence[Sample], patch_size: Sequence[int], *, length: int, seed: int,
                foreground_p: float = 0.33) -> PatchSampler: ...  # fmt: skip

    def dataset(self, patches: torch.utils.data.Dataset) -> torch.utils.data.Dataset: ...

    def to(self, device: torch.device) -> TrainingArm: ...

    def augment(self, image: Tensor, label: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


@dataclass(frozen=True)
class _Arm:
    augmentation: Augmentation

    def patches(self, samples: Sequence[Sample], patch_size: Sequence[int], *, length: int, seed: int,
                foreground_p: float = 0.33) -> PatchSampler:  # fmt: skip
        """The arm's training patches: the enlarged read its pipeline needs (``Pipeline.for_patch``), around each
        final patch."""
        return PatchSampler(samples, patch_size, length=length, foreground_p=foreground_p, seed=seed,
                            read_size=self.augmentation.read_size)  # fmt: skip


@dataclass(frozen=True)
class InLoopArm(_Arm):
    """A spineaug pipeline (or a mix of two) on the whole batch, on the training device, inside the step."""

    in_loop: ClassVar[bool] = True
    placement: ClassVar[str] = "in loop"

    def dataset(self, patches: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        return patches

    def to(self, device: torch.device) -> InLoopArm:
        self.augmentation.batch.to(device)  # type: ignore[union-attr]
        return self

    def augment(self, image: Tensor, label: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.augmentation.batch(image, label, generator=generator)  # type: ignore[misc]


@dataclass(frozen=True)
class WorkerArm(_Arm):
    """A per-sample CPU pipeline applied in the data-loader workers (nnU-Net's pattern); the step sees its output.

    Attributes:
        fn: The per-sample call (default: the arm's own); :meth:`wrapped` replaces it, e.g. to time it.
    """

    fn: SampleFn | None = None
    in_loop: ClassVar[bool] = False
    placement: ClassVar[str] = "loader workers"

    def dataset(self, patches: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        return WorkerAugmented(patches, self.fn or self.augmentation.worker)  # type: ignore[arg-type]

    def to(self, device: torch.device) -> WorkerArm:
        return self

    def augment(self, image: Tensor, label: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return image, label

    def wrapped(self, wrap: Callable[[SampleFn], SampleFn]) -> WorkerArm:
        """This arm with its per-sample call wrapped (``wrap(fn)`` runs in the loader)."""
        return dataclasses.replace(self, fn=wrap(self.fn or self.augmentation.worker))  # type: ignore[arg-type]


def training_arm(augmentation: Augmentation) -> InLoopArm | WorkerArm:
    """The placement of a built arm: in the loop when it has a batch pipeline, else in the loader workers."""
    if augmentation.batch is not None:
        return InLoopArm(augmentation)
    if augmentation.worker is None:
        raise ValueError(f"arm {augmentation.arm!r} has neither a batch pipeline nor a per-sample call")
    return WorkerArm(augmentation)


def arm_placement(arm: str) -> type[InLoopArm] | type[WorkerArm]:
    """The class :func:`training_arm` gives ``arm``, without building it (no baseline library is imported)."""
    return WorkerArm if arm in BASELINE_ARMS else InLoopArm


# ------------------------------------------------------------------------------------------------------- loop


def training_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, workers: int, device: torch.device,
                    first: int = 0, stop: int | None = None) -> torch.utils.data.DataLoader:  # fmt: skip
    """Batches of items ``first .. stop - 1`` of ``dataset`` in order (``stop``: its length), read by ``workers``
    loader processes (each seeds NumPy from its torch seed, :func:`~spineaug.harness.augment.seed_worker`)."""
    stop = len(dataset) if stop is None else stop  # type: ignore[arg-type]
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=range(first, stop), num_workers=workers,
        worker_init_fn=seed_worker, persistent_workers=False, pin_memory=torch.device(device).type == "cuda",
    )  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One training iteration: its loss and when each part ended (``time.perf_counter`` seconds).

    Attributes:
        loss: The loss, read back to the host (the one host sync per step, after the optimiser step).
        waited: Clock when the loop asked the loader for the batch.
        fetched: The batch is in hand (host memory).
        moved: The batch was handed to the device (asynchronous copy).
        augmented: The in-loop augmentation returned (synchronised, unless CUDA events time the step).
        done: The loss is on the host.
        events: With ``cuda_events``: CUDA events recorded before the augmentation, before the network and after
            the optimiser step; read their ``elapsed_time`` after a final synchronisation.
    """

    loss: float
    waited: float
    fetched: float
    moved: float
    augmented: float
    done: float
    events: tuple[Any, Any, Any] | None = None


def training_steps(
    batches: Iterable[tuple[Tensor, Tensor]], arm: TrainingArm, trainer: Trainer, *, generator: torch.Generator,
    device: torch.device, cuda_events: bool = False,
) -> Iterator[Step]:  # fmt: skip
    """Train on every batch of ``batches``, yielding a :class:`Step` after each.

    The caller's work between two steps (validation, checkpoints, clocks) is not part of the next step's times.

    Args:
        arm: The arm, moved to ``device`` (:meth:`TrainingArm.to`).
        generator: Draws of the in-loop augmentation.
        cuda_events: Time augmentation and network with CUDA events instead of synchronising after the
            augmentation (no synchronisation inside the step at all, except the loss read-back).
    """
    device = torch.device(device)
    waited = time.perf_counter()
    batch_iter = iter(batches)
    while True:
        try:
            image, label = next(batch_iter)
        except StopIteration:
            return
        fetched = time.perf_counter()
        image, label = image.to(device, non_blocking=True), label.to(device, non_blocking=True)
        moved = time.perf_counter()
        events = tuple(torch.cuda.Event(enable_timing=True) for _ in range(3)) if cuda_events else None
        if events is not None:
            events[0].record()
        if arm.in_loop:
            image, label = arm.augment(image, label, generator)
            if events is None and device.type == "cuda":
                torch.cuda.synchronize(device)
        augmented = time.perf_counter()
        if events is not None:
            events[1].record()
        loss = trainer.step(image, label)
        if events is not None:
            events[2].record()
        loss_value = float(loss)  # the one host sync per step, after the backward pass
        done = time.perf_counter()
        yield Step(loss_value, waited, fetched, moved, augmented, done, events)  # type: ignore[arg-type]
        waited = time.perf_counter()


__all__ = [
    "CLASS_NAMES", "N_CLASSES", "ZSCORE_PERCENTILES", "InLoopArm", "Network", "NetworkSpec", "Step", "Trainer",
    "TrainingArm", "WorkerArm", "arm_placement", "build_loss", "build_network", "phantom_sample",
    "phantom_samples", "training_arm", "training_loader", "training_steps", "zscored",
]  # fmt: skip
