"""Augmentation arms of a study: a spineaug preset/config on the batch, or nnU-Net's own pipeline in workers.

Every arm crops the same final patch. The sampler reads a larger patch (the size that contains every rotation
and zoom-out of the final patch, as nnU-Net's loader does) and the arm's spatial step produces the final patch
from its centre, so rotations read real tissue instead of padding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import spineaug
from spineaug.data import enlarged_patch_size

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
        batch: Applied to the whole batch on the training device inside the step (spineaug), or None.
        worker: Applied to one ``(image, label)`` sample in the data-loader workers (CPU baselines), or None.
        rotation_deg, scale: The arm's rotation and scale ranges: the sampler reads the enlarged patch for them.
        read_size: Patch size the sampler reads (enlarged for rotation/zoom-out); the arm outputs the final patch.
        config: The resolved configuration, written into the cell folder.
    """

    arm: str
    batch: spineaug.Pipeline | None
    worker: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None
    rotation_deg: Any
    scale: tuple[float, float]
    read_size: tuple[int, int, int]
    config: dict[str, Any]


def arm_slug(arm: str) -> str:
    """Folder-safe name of an arm (a config path becomes its file stem)."""
    return Path(arm).stem if arm.endswith((".json", ".yaml", ".yml")) else arm


def build_augmentation(arm: str, patch_size: tuple[int, int, int]) -> Augmentation:
    """The arm's augmentation for a final ``patch_size`` (every arm crops to it, ``none`` included)."""
    patch = tuple(int(p) for p in patch_size)
    if arm == "bgv2-nnunet":
        return _bgv2(patch)
    if arm.endswith((".json", ".yaml", ".yml")):
        spineaug.Pipeline.from_config(arm)  # validated as written first, so errors name the file's own entry indices
        config = spineaug.Pipeline.from_config(arm, patch_size=patch).config()
    else:
        config = spineaug.Pipeline.from_preset(arm, patch_size=patch).config()
    # The sampler already placed the (enlarged) patch, foreground-oversampled: crop its centre, as nnU-Net does.
    spatial = next(e for e in config["transforms"] if e["name"] == "Spatial")
    spatial.update(crop="center", p_foreground=0.0)
    pipe = spineaug.Pipeline.from_config(config)
    if spatial.get("p_elastic", 0) > 0:
        raise ValueError(f"arm {arm!r}: elastic deformation is not supported by the study's enlarged-patch reading yet")
    rotation = spatial["rotation_deg"] if spatial.get("p_rotation", 0) > 0 else 0.0
    scale = tuple(spatial["scale"]) if spatial.get("p_scale", 0) > 0 else (1.0, 1.0)
    return Augmentation(arm, pipe, None, rotation, scale, enlarged_patch_size(patch, rotation, scale), pipe.config())


def _bgv2(patch: tuple[int, int, int]) -> Augmentation:
    from spineaug.baselines.batchgenerators import nnunet_transforms

    transforms = nnunet_transforms(patch)
    rotation, scale = (-30.0, 30.0), (0.7, 1.4)  # nnU-Net v2's 3-D defaults (its SpatialTransform's ranges)

    def worker(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        out = transforms(image=image, segmentation=label)
        return out["image"], out["segmentation"]

    config = {"arm": "bgv2-nnunet", "description": BASELINE_ARMS["bgv2-nnunet"], "patch_size": list(patch),
              "transforms": repr(transforms)}  # fmt: skip
    read = enlarged_patch_size(patch, rotation, scale)
    return Augmentation("bgv2-nnunet", None, worker, rotation, scale, read, config)


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
    import numpy as np

    np.random.seed(torch.initial_seed() % 2**32)


def dump_config(aug: Augmentation) -> str:
    return json.dumps(aug.config, indent=1, default=str)
