"""nnU-Net v2 trainers whose batch is augmented by spineaug on the training device.

nnU-Net's data loader keeps its job of reading an enlarged patch (foreground-oversampled, large enough that every
rotation and zoom-out of the final patch reads real tissue), but its CPU workers no longer augment: they only load,
crop and map nnU-Net's padding label -1 to background. In ``train_step`` the batch moves to the device, spineaug
augments it (its ``Spatial`` entry cuts the final patch from the middle of the enlarged one), the deep-supervision
targets are built from the augmented label, and nnU-Net's own step (loss, backward, optimizer) follows.

Trainers (use with ``nnUNetv2_train DATASET 3d_fullres FOLD -tr NAME`` after ``spineaug nnunet-install``):

- ``nnUNetTrainerSpineAug``: preset ``xdomain`` (the paper's GPU augmentation);
- ``nnUNetTrainerSpineAugNnunet``: preset ``nnunet`` (nnU-Net's default augmentation, batched);
- ``nnUNetTrainerSpineAugPlus``: preset ``xdomain-plus``;
- ``nnUNetTrainerSpineAugConfig``: the preset name or JSON/YAML config file given in ``SPINEAUG_CONFIG``;
- each also as ``..._1epoch`` and ``..._5epochs`` for smoke runs. ``SPINEAUG_NNUNET_ITERATIONS=N`` sets the
  training iterations per epoch of any of them (validation iterations: ``max(1, N // 5)``).

Axes: a config names anatomical axes (``Flip`` of axis 0 is left-right), but nnU-Net trains on each file's voxel
axes reversed and permuted by the plans' ``transpose_forward``. The trainers read the cases' orientation from the
preprocessed properties and rewrite the config's axes into training-array axes (:mod:`.axes`), so the flip stays
left-right whatever the files' orientation and spacing; without orientation (another reader), config axes are used
as array axes, with a note in the training log. Test-time mirroring uses the array axes the rewritten ``Flip``
entries mirror (none: no mirroring). The resolved augmentation config and the axis mapping are written to
``spineaug_augmentation.json`` in the fold's output folder.

Reproducible and resumable: the augmentation's generator is seeded from ``SPINEAUG_SEED`` (else the config's
``seed``, else 0), mixed with the fold and the process rank (:func:`augmentation_seed`: under DDP every rank draws
its own parameters). Every checkpoint nnU-Net writes gets a side file per rank, ``<checkpoint>.spineaug_rank<r>.pt``
(the generator state, a tensor), and ``nnUNetv2_train ... --c`` restores it, so a resumed run continues the
augmentation stream where it stopped. nnU-Net's own data loader (which cases and patches it reads) is not resumed
by nnU-Net, so a resumed run is not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

import torch
from torch.nn import functional as F

import spineaug
from spineaug.integrations._extras import require
from spineaug.integrations.nnunet.axes import ANATOMICAL, dataset_array_axes, remap_config

require("nnunetv2", "nnunet", "spineaug.integrations.nnunet")

from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms  # noqa: E402
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform  # noqa: E402
from nnunetv2.configuration import ANISO_THRESHOLD  # noqa: E402
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402

from spineaug.transforms import RandomFlip, RandomSpatial  # noqa: E402
from spineaug.validation import check_seed  # noqa: E402

CONFIG_ENV = "SPINEAUG_CONFIG"
ITERATIONS_ENV = "SPINEAUG_NNUNET_ITERATIONS"
SEED_ENV = "SPINEAUG_SEED"
CONFIG_FILE = "spineaug_augmentation.json"

__all__ = [
    "nnUNetTrainerSpineAug",
    "nnUNetTrainerSpineAug_1epoch",
    "nnUNetTrainerSpineAug_5epochs",
    "nnUNetTrainerSpineAugConfig",
    "nnUNetTrainerSpineAugConfig_1epoch",
    "nnUNetTrainerSpineAugConfig_5epochs",
    "nnUNetTrainerSpineAugNnunet",
    "nnUNetTrainerSpineAugNnunet_1epoch",
    "nnUNetTrainerSpineAugNnunet_5epochs",
    "nnUNetTrainerSpineAugPlus",
    "nnUNetTrainerSpineAugPlus_1epoch",
    "nnUNetTrainerSpineAugPlus_5epochs",
]


def load_source(source: str) -> spineaug.Pipeline:
    """Validate a preset name or config file and return its pipeline (raises ``ConfigError``/``ValueError``)."""
    if source in spineaug.presets():
        return spineaug.Pipeline.from_preset(source)
    path = Path(source)
    if not path.is_file():
        raise ValueError(
            f"{CONFIG_ENV}={source!r} is neither a preset ({', '.join(spineaug.presets())}) nor a readable config file"
        )
    return spineaug.Pipeline.from_config(path)


def is_anisotropic(patch_size: tuple[int, int, int]) -> bool:
    """nnU-Net's test for a thin-slab patch (e.g. sagittal MRI): it then augments in-plane only ("dummy 2-D")."""
    return max(patch_size) / patch_size[0] > ANISO_THRESHOLD


def batch_pipeline(pipeline: spineaug.Pipeline, patch_size: tuple[int, int, int]) -> tuple[spineaug.Pipeline, tuple]:
    """The pipeline that turns an enlarged patch into the final ``patch_size``, and the enlarged size to read.

    ``Pipeline.for_patch`` decides both. For a thin-slab patch (:func:`is_anisotropic`) rotations are in-plane only
    (about axis 0, +-180 deg, as nnU-Net's dummy-2-D augmentation), so the read is not enlarged through the slab by
    rotations. The isotropic scale still applies to all three axes (nnU-Net scales in-plane only). nnU-Net's data
    is trusted (preprocessed): the pipeline skips the per-call NaN check, which syncs with the device.
    """
    # with a Spatial entry for the patch (a pure crop when the config has none), as for_patch would add it
    pipe = spineaug.Pipeline.from_config(pipeline.config(), patch_size=patch_size, check_finite=False)
    if is_anisotropic(tuple(patch_size)):
        pipe = pipe.replace(RandomSpatial, rotation_deg=[[-180.0, 180.0], [0.0, 0.0], [0.0, 0.0]])
    training = pipe.for_patch(patch_size)
    return training.pipeline, training.read_size


def flip_axes(pipeline: spineaug.Pipeline) -> tuple[int, ...] | None:
    """Spatial axes mirrored by the pipeline's ``Flip`` entries (``None`` when nothing is mirrored)."""
    axes = sorted({int(a) for t in pipeline.find(RandomFlip) if t.p > 0 for a in t.axes})
    return tuple(axes) or None


def augmentation_seed(base: int | None, fold: int | str, rank: int) -> int:
    """The augmentation generator's seed for one training process: ``base`` (``None``: 0) mixed with the fold and
    the process rank (``numpy.random.SeedSequence``), so folds and DDP ranks draw different, reproducible streams."""
    entropy = [(0 if base is None else int(base)) % 2**64, zlib.crc32(str(fold).encode()), int(rank)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] % 2**63)


def generator_state_file(checkpoint: str | os.PathLike, rank: int) -> Path:
    """Where the augmentation generator's state of ``rank`` is kept beside an nnU-Net checkpoint file."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.spineaug_rank{int(rank)}.pt")


def _seed_from_env() -> int | None:
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be an integer, got {text!r}") from None
    return check_seed(value, SEED_ENV)


def deep_supervision_targets(target: torch.Tensor, scales: list | None) -> torch.Tensor | list[torch.Tensor]:
    """Downsampled copies of ``target`` (B, 1, D, H, W), one per scale, as nnU-Net's DownsampleSegForDSTransform."""
    if scales is None:
        return target
    out, as_float = [], None
    for scale in scales:
        if all(s == 1 for s in scale):
            out.append(target)
            continue
        shape = [round(n * s) for n, s in zip(target.shape[2:], scale)]
        as_float = target.float() if as_float is None else as_float
        out.append(F.interpolate(as_float, shape, mode="nearest-exact").to(target.dtype))
    return out


class nnUNetTrainerSpineAug(nnUNetTrainer):
    """nnU-Net's trainer with spineaug's preset ``xdomain`` applied to the batch on the training device."""

    spineaug_source: str | None = "xdomain"
    """Preset name; ``None`` reads ``SPINEAUG_CONFIG`` (a preset name or a config file)."""
    spineaug_epochs: int | None = None
    """Epochs of the short variants (``None``: nnU-Net's default)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):  # fmt: skip
        # Everything that can be wrong with the augmentation is checked before nnU-Net creates any folder.
        source, ignored = self.spineaug_source, None
        if source is None:
            source = os.environ.get(CONFIG_ENV, "").strip()
            if not source:
                raise ValueError(f"{type(self).__name__} reads its augmentation from {CONFIG_ENV} (a preset name or "
                                 "a JSON/YAML config file), which is not set")  # fmt: skip
        elif os.environ.get(CONFIG_ENV):
            ignored = os.environ[CONFIG_ENV]
        pipeline = load_source(source)
        iterations = _iterations_from_env()
        env_seed = _seed_from_env()
        patch = plans.get("configurations", {}).get(configuration, {}).get("patch_size")
        if patch is not None and len(patch) != 3:
            raise ValueError(f"spineaug augments 3-D patches; configuration {configuration!r} has patch {patch}")
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.label_manager.has_regions or self.is_cascaded:
            raise ValueError("spineaug trainers support plain label maps only (no region-based or cascaded training)")
        self.spineaug_name, self.spineaug_source_pipeline = source, pipeline
        self.spineaug: spineaug.Pipeline | None = None  # built for the patch size in get_dataloaders
        self.spineaug_read_size: tuple[int, int, int] | None = None
        self.spineaug_axes: tuple[int, int, int] | None = None  # training-array axis of each anatomical axis
        self.spineaug_seed = augmentation_seed(env_seed if env_seed is not None else pipeline.seed, fold,
                                               self.local_rank)  # fmt: skip
        self.spineaug_resume_state: torch.Tensor | None = None  # from load_checkpoint, applied once built
        if self.spineaug_epochs is not None:
            self.num_epochs = self.spineaug_epochs
        if iterations is not None:
            self.num_iterations_per_epoch = iterations
            self.num_val_iterations_per_epoch = max(1, iterations // 5)
        if ignored is not None:
            self.print_to_log_file(f"{CONFIG_ENV}={ignored!r} is ignored by {type(self).__name__} (preset {source!r}); "
                                   "use nnUNetTrainerSpineAugConfig to train with it")  # fmt: skip

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        patch = tuple(int(p) for p in self.configuration_manager.patch_size)
        axes, note = dataset_array_axes(self.preprocessed_dataset_folder, self.plans_manager.transpose_forward)
        self.spineaug_axes = axes
        self.print_to_log_file(f"spineaug: {note}")
        pipe = self.spineaug_source_pipeline
        if axes is not None:
            pipe = spineaug.Pipeline.from_config(remap_config(pipe.config(), axes))
        pipe, read = batch_pipeline(pipe, patch)
        self.spineaug, self.spineaug_read_size = pipe.to(self.device), read
        if self.spineaug_resume_state is not None:
            pipe.generator.set_state(self.spineaug_resume_state)
            self.print_to_log_file("spineaug: augmentation stream resumed from the checkpoint's generator state")
        else:
            pipe.generator.manual_seed(self.spineaug_seed)
        mirror_axes = flip_axes(pipe)
        self.inference_allowed_mirroring_axes = mirror_axes
        if any(self.configuration_manager.use_mask_for_norm):
            self.print_to_log_file("note: use_mask_for_norm is set; spineaug does not re-mask the image after "
                                   "augmentation as nnU-Net's MaskImageTransform does")  # fmt: skip
        self.print_to_log_file(f"spineaug {self.spineaug_name!r}: read {list(read)}, final patch {list(patch)}, "
                               f"test-time mirroring axes {mirror_axes}")  # fmt: skip
        # rotation_for_DA and dummy 2-D are only used by nnU-Net's own transforms, which these trainers replace.
        return None, False, read, mirror_axes

    @staticmethod
    def get_training_transforms(patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,
                                do_dummy_2d_data_aug, use_mask_for_norm=None, is_cascaded=False,
                                foreground_labels=None, regions=None, ignore_label=None):  # fmt: skip
        """Workers only load and crop: map nnU-Net's padding label -1 to background; spineaug runs in train_step."""
        return ComposeTransforms([RemoveLabelTransform(-1, 0)])

    def train_step(self, batch: dict) -> dict:
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"].to(self.device, non_blocking=True)
        with torch.no_grad():
            data, target = self.spineaug(data, target)
        targets = deep_supervision_targets(target, self._get_deep_supervision_scales())
        return super().train_step({**batch, "data": data, "target": targets})

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint (rank 0), and beside it every rank's augmentation generator state."""
        super().save_checkpoint(filename)
        if self.spineaug is not None and not self.disable_checkpointing:
            state = {"generator": self.spineaug.generator.get_state(), "seed": self.spineaug_seed}
            torch.save(state, generator_state_file(filename, self.local_rank))

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        """nnU-Net's checkpoint, and this rank's augmentation generator state when the checkpoint has one beside it
        (a checkpoint passed as a dict, or one written without it: the stream starts from the seed, as logged)."""
        super().load_checkpoint(filename_or_checkpoint)
        side = generator_state_file(filename_or_checkpoint, self.local_rank) \
            if isinstance(filename_or_checkpoint, (str, os.PathLike)) else None
        if side is None or not side.is_file():
            self.print_to_log_file("spineaug: no augmentation generator state beside the checkpoint; the "
                                   "augmentation stream starts from its seed")  # fmt: skip
            return
        state = torch.load(side, map_location="cpu", weights_only=True)["generator"]
        self.spineaug_resume_state = state
        if self.spineaug is not None:  # already built: continue its stream now
            self.spineaug.generator.set_state(state)

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            record = {
                "trainer": type(self).__name__,
                "source": self.spineaug_name,
                "final_patch_size": [int(p) for p in self.configuration_manager.patch_size],
                "read_patch_size": list(self.spineaug_read_size),
                "inference_mirroring_axes": self.inference_allowed_mirroring_axes,
                "array_axes": None if self.spineaug_axes is None else dict(zip(ANATOMICAL, self.spineaug_axes)),
                "seed": self.spineaug_seed,
                "config": self.spineaug.config(),
            }
            Path(self.output_folder, CONFIG_FILE).write_text(json.dumps(record, indent=1) + "\n")


def _iterations_from_env() -> int | None:
    text = os.environ.get(ITERATIONS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ITERATIONS_ENV} must be a positive integer, got {text!r}")
    return value


class nnUNetTrainerSpineAugNnunet(nnUNetTrainerSpineAug):
    """Preset ``nnunet``: nnU-Net's default augmentation, batched on the device."""

    spineaug_source = "nnunet"


class nnUNetTrainerSpineAugPlus(nnUNetTrainerSpineAug):
    """Preset ``xdomain-plus``: the paper's augmentation with spineaug's improvements."""

    spineaug_source = "xdomain-plus"


class nnUNetTrainerSpineAugConfig(nnUNetTrainerSpineAug):
    """The preset or JSON/YAML config named by the environment variable ``SPINEAUG_CONFIG``."""

    spineaug_source = None


class nnUNetTrainerSpineAug_1epoch(nnUNetTrainerSpineAug):
    spineaug_epochs = 1


class nnUNetTrainerSpineAug_5epochs(nnUNetTrainerSpineAug):
    spineaug_epochs = 5


class nnUNetTrainerSpineAugNnunet_1epoch(nnUNetTrainerSpineAugNnunet):
    spineaug_epochs = 1


class nnUNetTrainerSpineAugNnunet_5epochs(nnUNetTrainerSpineAugNnunet):
    spineaug_epochs = 5


class nnUNetTrainerSpineAugPlus_1epoch(nnUNetTrainerSpineAugPlus):
    spineaug_epochs = 1


class nnUNetTrainerSpineAugPlus_5epochs(nnUNetTrainerSpineAugPlus):
    spineaug_epochs = 5


class nnUNetTrainerSpineAugConfig_1epoch(nnUNetTrainerSpineAugConfig):
    spineaug_epochs = 1


class nnUNetTrainerSpineAugConfig_5epochs(nnUNetTrainerSpineAugConfig):
    spineaug_epochs = 5
