"""Augmentation arms of a study: a spineaug preset/config on the batch, or nnU-Net's own pipeline in workers.

Every arm crops the same final patch. The sampler reads a larger patch (the size that contains every rotation
and zoom-out of the final patch, as nnU-Net's loader does) and the arm's spatial step produces the final patch
from its centre, so rotations read real tissue instead of padding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import Tensor

import spineaug
from spineaug.baselines.batchgenerators import nnunet_transforms
from spineaug.config import load_config
from spineaug.integrations import require
from spineaug.transforms import RandomSpatial
from spineaug.validation import ConfigError

BASELINE_ARMS = {
    "bgv2-nnunet": "nnU-Net v2's default training augmentation (batchgeneratorsv2, as nnUNetTrainer builds it), "
    "applied per sample on the CPU in DataLoader workers, as nnU-Net runs it",
}
"""Arms that are not spineaug pipelines: reference points for Dice and training speed."""


@dataclass
class Augmentation:
    """What one arm does in training.

    Attributes:
        arm: The arm's name as the study file gives it.
        batch: Applied to the whole batch on the training device inside the step (a spineaug pipeline, or a
            :class:`MixedPipeline` of two), or None.
        worker: Applied to one ``(image, label)`` sample in the data-loader workers (CPU baselines), or None.
        rotation_deg, scale: The arm's rotation and scale ranges (0 and (1, 1) where they never fire), for
            readers of the ranges; ``read_size`` already holds them.
        read_size: Patch size the sampler reads (enlarged for rotation/zoom-out, ``TrainingPatch.read_size``); the
            arm outputs the final patch.
        config: The resolved configuration, written into the cell folder.
    """

    arm: str
    batch: spineaug.Pipeline | MixedPipeline | None
    worker: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None
    rotation_deg: Any
    scale: tuple[float, float]
    read_size: tuple[int, int, int]
    config: dict[str, Any]


def arm_slug(arm: str) -> str:
    """Folder-safe name of an arm (a config path becomes its file stem)."""
    return Path(arm).stem if arm.endswith((".json", ".yaml", ".yml")) else arm


def arm_file(arm: str, base_dir: str | Path | None = None) -> Path:
    """Where an arm's config file lies: relative to ``base_dir`` (the study file's folder), else to the folder above
    it (a study in ``studies/`` may write ``studies/arms/x.yaml``, the path from the repository root), else as
    written (absolute, or relative to the working directory)."""
    path = Path(arm)
    if base_dir is not None and not path.is_absolute():
        for candidate in (Path(base_dir) / path, Path(base_dir).parent / path):
            if candidate.is_file():
                return candidate
    return path


def build_augmentation(
    arm: str, patch_size: tuple[int, int, int], *, base_dir: str | Path | None = None
) -> Augmentation:
    """The arm's augmentation for a final ``patch_size`` (every arm crops to it, ``none`` included).

    ``base_dir``: the study file's folder, where a relative arm file is looked up first (:func:`arm_file`).
    """
    patch = tuple(int(p) for p in patch_size)
    if arm == "bgv2-nnunet":
        return _bgv2(patch)
    if arm.endswith((".json", ".yaml", ".yml")):
        path = arm_file(arm, base_dir)
        raw = load_config(path)
        if "mix" in raw:
            return _mixed(arm, MixArm.parse(raw, arm), patch)
        pipe = spineaug.Pipeline.from_config(path)  # validated as written, so errors name the file's own entries
    else:
        pipe = spineaug.Pipeline.from_preset(arm)
    # The sampler already placed the (enlarged) patch, foreground-oversampled: crop its centre, as nnU-Net does.
    training = pipe.for_patch(patch)
    rotation, scale = _ranges(training)
    return Augmentation(arm, training.pipeline, None, rotation, scale, training.read_size, training.pipeline.config())


def _ranges(training: spineaug.TrainingPatch) -> tuple[Any, tuple[float, float]]:
    """The rotation and scale ranges of a training pipeline's ``Spatial`` entry (0 / (1, 1) where they never fire)."""
    spatial = training.pipeline.find(RandomSpatial)[0]
    on = spatial.p > 0
    rotation = spatial.config()["rotation_deg"] if on and spatial.p_rotation > 0 else 0.0
    scale = tuple(spatial.scale) if on and spatial.p_scale > 0 else (1.0, 1.0)
    return rotation, scale  # type: ignore[return-value]


class MixArm(BaseModel):
    """A mixing arm: ``strong`` on the first ``round(fraction * B)`` samples of each batch, ``weak`` on the rest.

    Written as an arm file (``studies/arms/<name>.yaml``) holding ``{mix: {strong: <preset>, weak: <preset>,
    fraction: <0..1>}}``. The split is by position in the batch: deterministic, no extra draw, no host sync (the
    batch size is known on the host); with batch 2 and fraction 0.5 one sample of each. Patches are sampled
    independently, so position carries no meaning. Both pipelines draw from the step's generator, strong first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strong: str
    weak: str
    fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5

    @field_validator("strong", "weak")
    @classmethod
    def _preset(cls, v: str) -> str:
        if v not in spineaug.presets():
            raise ValueError(f"must be a spineaug preset ({spineaug.presets()}), got {v!r}")
        return v

    @model_validator(mode="after")
    def _two_presets(self) -> MixArm:
        if self.strong == self.weak:
            raise ValueError(f"strong and weak are both {self.strong!r}: the mix changes nothing; use the preset "
                             "itself as the arm")  # fmt: skip
        return self

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> MixArm:
        extra = sorted(set(raw) - {"mix", "description"})
        if extra or not isinstance(raw["mix"], dict):
            raise ConfigError(f"{where}: a mixing arm holds only 'mix: {{strong, weak, fraction}}' (and "
                              f"'description'), got {sorted(raw)}")  # fmt: skip
        try:
            return cls.model_validate(raw["mix"])
        except ValidationError as exc:
            problems = "; ".join(f"mix.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{where}: {problems}") from None

    def n_strong(self, batch_size: int) -> int:
        """Samples of a batch of ``batch_size`` that get the strong pipeline (round half up)."""
        return min(batch_size, int(math.floor(self.fraction * batch_size + 0.5)))


class MixedPipeline(torch.nn.Module):
    """Apply ``strong`` to the first ``mix.n_strong(B)`` samples and ``weak`` to the rest (see :class:`MixArm`)."""

    def __init__(self, mix: MixArm, strong: spineaug.Pipeline, weak: spineaug.Pipeline):
        super().__init__()
        self.mix, self.strong, self.weak = mix, strong, weak

    def forward(self, image: Tensor, label: Tensor | None = None, *, generator: torch.Generator | None = None):
        k = self.mix.n_strong(image.shape[0])
        parts = []
        for pipe, sl in ((self.strong, slice(0, k)), (self.weak, slice(k, image.shape[0]))):
            if sl.stop > sl.start:
                parts.append(pipe(image[sl], None if label is None else label[sl], generator=generator))
        out = torch.cat([p[0] for p in parts])
        return out, (None if label is None else torch.cat([p[1] for p in parts]))


def _mixed(arm: str, mix: MixArm, patch: tuple[int, int, int]) -> Augmentation:
    strong, weak = build_augmentation(mix.strong, patch), build_augmentation(mix.weak, patch)
    # The sampler reads one size for the whole batch: the larger of the two (each pipeline crops the centre).
    big = strong if all(a >= b for a, b in zip(strong.read_size, weak.read_size)) else weak
    if not all(a >= b for a, b in zip(big.read_size, (weak if big is strong else strong).read_size)):
        raise ValueError(f"arm {arm!r}: neither pipeline's read size contains the other's "
                         f"({strong.read_size} vs {weak.read_size})")  # fmt: skip
    config = {"arm": arm, "mix": mix.model_dump(), "strong": strong.config, "weak": weak.config}
    pipe = MixedPipeline(mix, strong.batch, weak.batch)  # type: ignore[arg-type]
    return Augmentation(arm, pipe, None, big.rotation_deg, big.scale, big.read_size, config)  # type: ignore[arg-type]


def _bgv2(patch: tuple[int, int, int]) -> Augmentation:
    for module in ("batchgeneratorsv2", "nnunetv2"):  # not in the `study` extra: the arm is optional
        require(module, "nnunet", "the study arm 'bgv2-nnunet' (nnU-Net's own augmentation)")
    transforms = nnunet_transforms(patch)
    # nnU-Net v2's 3-D defaults (its SpatialTransform's ranges) are the nnunet preset's: read what it reads.
    training = spineaug.Pipeline.from_preset("nnunet").for_patch(patch)
    rotation, scale = _ranges(training)

    def worker(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        out = transforms(image=image, segmentation=label)
        return out["image"], out["segmentation"]

    config = {"arm": "bgv2-nnunet", "description": BASELINE_ARMS["bgv2-nnunet"], "patch_size": list(patch),
              "transforms": repr(transforms)}  # fmt: skip
    return Augmentation("bgv2-nnunet", None, worker, rotation, scale, training.read_size, config)


class WorkerAugmented(torch.utils.data.Dataset):
    """Wraps a patch dataset so each item is augmented in the worker process (nnU-Net's CPU pattern).

    batchgeneratorsv2 draws from the global NumPy/torch RNGs; each worker is seeded by PyTorch's DataLoader
    (``torch.initial_seed``), and NumPy is seeded from it in :func:`seed_worker`.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]):
        self.dataset, self.fn = dataset, fn

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, label = self.dataset[index]
        image, label = self.fn(image, label)
        return image.float(), label.long()


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy from the worker's torch seed (for batchgeneratorsv2)."""
    np.random.seed(torch.initial_seed() % 2**32)


def dump_config(aug: Augmentation) -> str:
    return json.dumps(aug.config, indent=1, default=str)
