"""Training throughput (``spineaug bench --training``): seconds per training iteration, split by where time goes.

The paper's claim is that augmenting on the GPU inside the training step made training ~10 % faster than nnU-Net's
CPU augmentation in data-loader workers. This measures it on one small, fixed training setup: a MONAI ``UNet``
(small channels) with MONAI's ``DiceCELoss`` and Adam, on z-scored phantom patches, for these arms:

* ``bgv2-nnunet``: batchgeneratorsv2's nnU-Net pipeline (``nnUNetTrainer.get_training_transforms``) applied per
  sample in ``DataLoader`` worker processes, as nnU-Net runs it, with 0, 1 and (cores - 1) workers;
* ``nnunet`` / ``xdomain``: the spineaug preset on the whole batch inside the loop, on the training device;
* ``none``: no augmentation (the final patch is read directly).

Every arm trains on the same final patch. As in nnU-Net, the rotating/scaling arms read an *enlarged* patch
(:class:`spineaug.data.PatchSampler`, the read size of :meth:`spineaug.Pipeline.for_patch`) and their spatial step
crops the final patch from it (``Spatial(patch_size=...)``, centre crop; bgv2's ``SpatialTransform``). The benchmark
and the study train with one harness (:mod:`spineaug.harness.augment` builds the arms; :mod:`spineaug.harness.train`
the network, loss, optimiser, step and the arm's placement), so they train alike.

CPU budget: every arm runs once per budget of ``c`` cores. The process is pinned to ``c`` of its CPUs with
``os.sched_setaffinity`` (DataLoader workers are forked afterwards and inherit the mask) and torch uses ``c``
threads in the main process (PyTorch sets one thread in each worker); where affinity cannot be set only the thread
count is limited, and the rows say so (:func:`spineaug.bench.training_run.cpu_budget`). This is the shared-server case: several trainings share a machine and the
loader workers get fewer cores than they need.

Modules: this one holds the request and what is trained (:class:`TrainingConfig` and its checks, the CPU
budgets and worker counts, the phantom cases, the network size); :mod:`spineaug.bench.training_loop` times one setting
(one arm with one number of loader workers); :mod:`spineaug.bench.training_run` runs every setting under every
CPU budget and writes the result files.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import torch
from pydantic import AfterValidator, ConfigDict, Field, Strict, model_validator

from spineaug import _io, phantom
from spineaug.bench.config import BenchError, Count, Counts, _at_least_one, differences, resolve_devices
from spineaug.harness.train import Network
from spineaug.harness.train import phantom_samples as render_phantom
from spineaug.validation import RequiredSeed, ValidatedModel

ARMS = ("bgv2-nnunet", "nnunet", "xdomain", "none")
"""(a) nnU-Net's CPU pipeline in workers, (b) and (c) spineaug presets in the loop, (d) no augmentation."""


def _arms(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        raise ValueError(f"name at least one arm; known arms: {list(ARMS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"arms must not repeat, got {list(names)}")
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown training arm(s) {unknown}; known arms: {list(ARMS)}")
    return names


def _domain(name: str) -> str:
    if name not in phantom.DOMAINS:
        raise ValueError(f"unknown phantom domain {name!r}; known: {sorted(phantom.DOMAINS)}")
    return name


def _device(name: str) -> str:
    if name not in ("cpu", "cuda", "auto"):
        raise ValueError(f"must be cpu, cuda or auto for the training benchmark, got {name!r}")
    return name


Shape = tuple[Count, Count, Count]
"""Three positive integers (a patch or a grid)."""


class TrainingConfig(ValidatedModel):
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

    The values are checked when the config is built (a bad one raises :class:`BenchError` naming the key);
    :func:`validate_training` then checks the config against this machine (CPU budgets, device).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    error_type: ClassVar[type[ValueError]] = BenchError

    patch_size: Shape = (48, 48, 48)
    batch_size: Count = 2
    iterations: Count = 10
    warmup: Annotated[int, Strict(), Field(ge=0)] = 3
    rounds: Count = 2
    cpu_budgets: Counts | None = None
    arms: Annotated[tuple[str, ...], AfterValidator(_arms)] = ARMS
    channels: Annotated[tuple[Count, ...], AfterValidator(_at_least_one)] = (8, 16, 32)  # levels may repeat
    cases: Count = 2
    phantom_shape: Shape = (64, 80, 128)
    spacing: Annotated[float, Field(gt=0)] = 2.0
    domain: Annotated[str, AfterValidator(_domain)] = "t2w"
    device: Annotated[str, AfterValidator(_device)] = "auto"
    seed: RequiredSeed = 0

    @model_validator(mode="after")
    def _patch_fits_the_network(self) -> TrainingConfig:
        factor = 2 ** (len(self.channels) - 1)
        if any(p % factor for p in self.patch_size):
            raise ValueError(f"every patch edge must be divisible by {factor} (the UNet's {len(self.channels)} "
                             f"levels), got patch_size {tuple(self.patch_size)}")
        return self

    @staticmethod
    def quick(**overrides: Any) -> TrainingConfig:
        """A few seconds per arm: tiny patches, one budget, two timed iterations (for tests and CI)."""
        values: dict[str, Any] = dict(
            patch_size=(16, 16, 16), batch_size=1, iterations=2, warmup=1, rounds=1, cpu_budgets=(_io.available_cpus(),),
            channels=(4, 8), cases=1, phantom_shape=(32, 40, 64), spacing=4.0,
        )
        values.update(overrides)
        return TrainingConfig(**values)


def reduced_training_settings(recorded: dict[str, Any]) -> list[str]:
    """How a recorded training run (``training_meta.json``'s ``config``) is smaller than the default one."""
    keys = ("patch_size", "batch_size", "iterations", "warmup", "rounds", "arms", "channels", "cases", "phantom_shape")
    return differences(recorded, TrainingConfig(), keys)


def default_budgets(cpus: int | None = None) -> tuple[int, ...]:
    """All available cores, a quarter of them and one (distinct values, largest first)."""
    n = _io.available_cpus() if cpus is None else cpus
    return tuple(sorted({n, max(1, n // 4), 1}, reverse=True))


def worker_counts(budget: int) -> tuple[int, ...]:
    """Loader workers of the bgv2 arm under ``budget`` cores: 0, 1 and ``budget - 1`` (distinct, ascending)."""
    return tuple(sorted({0, 1, max(budget - 1, 0)}))


def validate_training(config: TrainingConfig) -> torch.device:
    """Check a (validated) config against this machine before anything runs: every CPU budget is available and the
    device exists; return the training device. Raises :class:`BenchError`."""
    cpus = _io.available_cpus()
    for budget in config.cpu_budgets or ():
        if budget > cpus:
            raise BenchError(f"cpu_budgets: CPU budget {budget!r} must lie in 1..{cpus} (the CPUs this process may "
                             "use)")
    devices = resolve_devices([config.device])
    return devices[-1]  # auto: cuda when available, else cpu


def phantom_samples(config: TrainingConfig) -> list[Any]:
    """The training cases: phantom spines in ``config.domain``, z-scored as the study's (the harness's path)."""
    seeds = range(config.seed, config.seed + config.cases)
    return render_phantom(config.domain, seeds, shape=config.phantom_shape, spacing=config.spacing)


def network(config: TrainingConfig) -> Network:
    """The fixed network: MONAI ``UNet`` (one residual unit per level, instance norm) with ``config.channels``."""
    return Network(filters=tuple(int(c) for c in config.channels), name="UNet", norm="instance")
