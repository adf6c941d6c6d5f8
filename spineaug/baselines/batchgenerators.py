"""batchgeneratorsv2 baseline: the exact transform pipeline ``nnUNetTrainer.get_training_transforms`` builds.

nnU-Net's data-loader workers apply it to one sample at a time on the CPU; :func:`build` does the same (a Python
loop over the batch) so the timing is what nnU-Net pays per batch in its workers. Settings are nnU-Net v2's 3-D
full-resolution defaults: rotation U(-30 deg, 30 deg) per axis, mirror axes (0, 1, 2), no dummy-2D, no mask for
normalisation, not cascaded, foreground labels 1..3, no regions, no ignore label. Two deliberate choices, both
documented in the report: the input patch has the output size (nnU-Net loads a larger patch so rotations do not
pad; that only changes how many voxels are read), and deep-supervision label downsampling is off (it builds the
loss targets, it is not augmentation, and spineaug leaves it to the trainer too).

For ``xdomain`` this is a *substitute*: nnU-Net's default pipeline is what users run instead, not a re-expression.
"""

from __future__ import annotations

import math
from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spineaug.baselines._common import Baseline, MappingRow, import_or_unavailable, mapping_rows

LIBRARY = "batchgenerators"

MAPPING: dict[str, tuple[str | None, str]] = {
    "Spatial": ("SpatialTransform", "rotation p 0.2, scaling p 0.2, no elastic; label as one-hot, linear + argmax"),
    "Flip": ("MirrorTransform", "axes (0, 1, 2), each p 0.5"),
    "GaussianNoise": ("GaussianNoiseTransform", "sigma U(0, 0.1), p 0.1"),
    "GaussianBlur": ("GaussianBlurTransform", "sigma U(0.5, 1) per axis, p 0.2 (0.5 per channel)"),
    "Brightness": ("MultiplicativeBrightnessTransform", "U(0.75, 1.25), p 0.15"),
    "Contrast": ("ContrastTransform", "BGContrast(0.75, 1.25), clipped to the input range, p 0.15"),
    "LowResolution": ("SimulateLowResolutionTransform", "scale U(0.5, 1), p 0.25 (0.5 per channel)"),
    "Gamma": ("GammaTransform", "BGContrast(0.7, 1.5), retain stats, p 0.3"),
    "InverseGamma": ("GammaTransform(invert_image=True)", "BGContrast(0.7, 1.5), retain stats, p 0.1"),
}
NOTE_MISSING = "not in nnU-Net's default pipeline"


def mapping(pipeline: str) -> list[MappingRow]:
    """One row per transform of the preset: the nnU-Net default step that matches it, if any."""
    return mapping_rows(pipeline, MAPPING, NOTE_MISSING)


def nnunet_transforms(patch_size: tuple[int, int, int]) -> Any:
    """``nnUNetTrainer.get_training_transforms`` with nnU-Net v2's 3-D defaults (see the module docstring)."""
    import_or_unavailable("batchgeneratorsv2", "install batchgeneratorsv2 (pip install batchgeneratorsv2)")
    trainer = import_or_unavailable(
        "nnunetv2.training.nnUNetTrainer.nnUNetTrainer", "install nnunetv2 (pip install nnunetv2)"
    )
    rotation = (-30.0 / 360 * 2.0 * math.pi, 30.0 / 360 * 2.0 * math.pi)
    return trainer.nnUNetTrainer.get_training_transforms(
        patch_size=tuple(patch_size),
        rotation_for_DA=rotation,
        deep_supervision_scales=None,
        mirror_axes=(0, 1, 2),
        do_dummy_2d_data_aug=False,
        use_mask_for_norm=[False],
        is_cascaded=False,
        foreground_labels=[1, 2, 3],
        regions=None,
        ignore_label=None,
    )


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """The nnU-Net default pipeline as a batched call (per-sample loop inside, as nnU-Net's workers)."""
    rows = mapping(pipeline)
    import_or_unavailable("batchgeneratorsv2", "install batchgeneratorsv2 (pip install batchgeneratorsv2)")

    np.random.seed(seed)  # bgv2 draws from the global NumPy and torch RNGs; seed both once
    torch.manual_seed(seed)
    cache: dict[tuple[int, ...], Any] = {}

    def fn(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        shape = tuple(image.shape[2:])
        if shape not in cache:
            cache[shape] = nnunet_transforms(shape)
        transforms = cache[shape]
        images, labels = [], []
        for b in range(image.shape[0]):
            out = transforms(image=image[b], segmentation=label[b])
            images.append(out["image"])
            labels.append(out["segmentation"])
        return torch.stack(images), torch.stack(labels)

    return Baseline(
        library=LIBRARY,
        pipeline=pipeline,
        fidelity="exact" if pipeline == "nnunet" else "substitute",
        fn=fn,
        mapping=rows,
        devices=("cpu",),
        version=version("batchgeneratorsv2"),
    )
