"""Patch sampling for training: random patches with nnU-Net-style foreground oversampling, as a torch Dataset.

Rotations and zoom-outs read beyond a patch's borders. Like nnU-Net's data loader, :class:`PatchSampler` can read an
*enlarged* patch around the final patch (the read size of :meth:`spineaug.Pipeline.for_patch`, which owns the
recipe), so that the augmentation's spatial transform rotates/scales about the enlarged patch's centre and crops the
final patch from it without padding.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spineaug.data.datasets import Sample
from spineaug.transforms import RandomSpatial
from spineaug.validation import ConfigError

__all__ = ["PatchSampler", "enlarged_patch_size"]


def enlarged_patch_size(
    patch_size: Sequence[int], rotation_deg=0.0, scale_range: Sequence[float] = (1.0, 1.0)
) -> tuple[int, int, int]:
    """The patch to read so that every rotation/scaling of the final patch about its centre stays inside it.

    The read size of a ``Spatial`` entry that rotates within ``rotation_deg`` and scales up to ``scale_range``'s
    high end (:meth:`spineaug.Pipeline.for_patch` owns the recipe; this is a shortcut for a bare range). Elastic
    deformation is not included (``Pipeline.for_patch`` adds it for a pipeline that deforms).

    Args:
        patch_size: Final patch (D, H, W) (or (X, Y, Z): the array axes).
        rotation_deg: Rotation range in degrees: a number ``t`` for ``[-t, t]``, or ``Spatial``'s ``rotation_deg``
            (one ``(low, high)`` pair for every axis, or three pairs, one per array axis).
        scale_range: ``(low, high)`` sampling-grid scale, as ``Spatial``'s ``scale``; only the high end matters.

    Returns:
        The enlarged patch size (never smaller than ``patch_size``).

    Example:
        >>> enlarged_patch_size((64, 64, 64))
        (64, 64, 64)
        >>> enlarged_patch_size((64, 64, 64), 30, (0.7, 1.4))
        (150, 154, 150)
    """
    patch = _check_patch(patch_size, "patch_size")
    if isinstance(rotation_deg, numbers.Real) and not isinstance(rotation_deg, bool):
        rotation_deg = (-abs(float(rotation_deg)), abs(float(rotation_deg)))
    try:
        spatial = RandomSpatial(p_rotation=1.0, rotation_deg=rotation_deg, p_scale=1.0, scale=scale_range)
    except ConfigError as exc:
        raise ValueError(f"rotation_deg {rotation_deg!r} / scale_range {scale_range!r}: {exc}") from None
    return spatial.read_size(patch)


def _check_patch(patch_size, name: str) -> tuple[int, int, int]:
    try:
        patch = tuple(int(p) for p in patch_size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three positive integers, got {patch_size!r}") from None
    if len(patch) != 3 or any(p < 1 for p in patch):
        raise ValueError(f"{name} must be three positive integers, got {patch_size!r}")
    return patch


class PatchSampler(Dataset):
    """Random fixed-size patches from a list of loaded cases.

    Item ``i`` of epoch ``e`` is a deterministic function of ``(seed, e, i)``, so DataLoader workers need no
    shared RNG. Each item picks a case uniformly; with probability ``foreground_p`` the patch is centred on a
    random voxel of a random foreground class present in that case (so rare classes get seen), otherwise it is
    placed uniformly. Volumes smaller than the patch are padded with 0 (image and label).

    Enlarged patches (nnU-Net's loading): with ``read_size`` given (:meth:`spineaug.Pipeline.for_patch`'s
    :attr:`~spineaug.TrainingPatch.read_size`, or :func:`enlarged_patch_size` of ``rotation_deg``/``scale``), the
    final ``patch_size`` patch is placed exactly as above, and the item is the read around it (same centre; the
    part beyond the volume is padded with 0). A spatial transform that rotates/scales about the item's centre and
    crops ``patch_size`` from its middle then needs no padding, and a foreground-centred final patch keeps its
    foreground voxel in its centre region. Without rotation and scaling the middle of an item equals the
    non-enlarged item with the same ``(seed, epoch, index)``.

    Args:
        samples: Loaded cases (e.g. ``[dataset[i] for i in range(len(dataset))]``), all with labels.
        patch_size: Final patch (X, Y, Z) voxels.
        length: Items per epoch.
        foreground_p: Probability of a foreground-centred patch (nnU-Net uses 0.33).
        seed: Base seed.
        read_size: The enlarged patch to read around the final one, (D, H, W): larger than ``patch_size`` by an even
            number per axis (``TrainingPatch.read_size``). ``None``: from ``rotation_deg`` and ``scale``.
        rotation_deg: Rotation range the augmentation may apply (see :func:`enlarged_patch_size`); 0 = none.
        scale: Sampling-scale range the augmentation may apply; (1, 1) = none.

    Attributes:
        patch: The final patch size.
        read_size: The size of the items (the enlarged patch; equals ``patch`` without rotation and scaling).

    Yields:
        ``(image, label)``: (C, *read_size) float32 tensor and (1, *read_size) int64 tensor.
    """

    def __init__(
        self, samples: Sequence[Sample], patch_size: Sequence[int], *, length: int = 250, foreground_p: float = 0.33,
        seed: int = 0, read_size: Sequence[int] | None = None, rotation_deg=0.0, scale: Sequence[float] = (1.0, 1.0),
    ):  # fmt: skip
        if len(samples) == 0:
            raise ValueError("samples must not be empty")
        patch = _check_patch(patch_size, "patch_size")
        if not 0.0 <= foreground_p <= 1.0:
            raise ValueError(f"foreground_p must lie in [0, 1], got {foreground_p!r}")
        if length < 1:
            raise ValueError(f"length must be positive, got {length!r}")
        self.patch = patch
        if read_size is None:
            self.read_size = enlarged_patch_size(patch, rotation_deg, scale)
        else:
            if rotation_deg != 0.0 or tuple(scale) != (1.0, 1.0):
                raise ValueError("pass read_size or rotation_deg/scale, not both (read_size already holds them)")
            self.read_size = _check_patch(read_size, "read_size")
            if any(r < p or (r - p) % 2 for r, p in zip(self.read_size, patch)):
                raise ValueError(f"read_size {self.read_size} must not be smaller than patch_size {patch} and must "
                                 "differ from it by an even number per axis (the patch sits in its middle)")
        self.length = int(length)
        self.foreground_p = float(foreground_p)
        self.seed = int(seed)
        self.epoch = 0
        self.images, self.labels, self.fg = [], [], []
        rng = np.random.default_rng(self.seed)
        for s in samples:
            if s.label is None:
                raise ValueError(f"case {s.case_id!r} has no label")
            if s.image.ndim != 4 or s.image.shape[1:] != s.label.shape:
                raise ValueError(f"case {s.case_id!r}: image {s.image.shape} does not match label {s.label.shape}")
            image, label = _pad(s.image, s.label, patch)
            self.images.append(image)
            self.labels.append(label)
            fg = {}
            for cls in np.unique(label):
                if cls == 0:
                    continue
                where = np.argwhere(label == cls)
                if len(where) > 10000:  # a subsample is plenty and keeps memory low
                    where = where[rng.choice(len(where), 10000, replace=False)]
                fg[int(cls)] = where.astype(np.int32)
            self.fg.append(fg)

    def set_epoch(self, epoch: int) -> None:
        """Draw different patches in the next pass (items depend on ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        k = int(rng.integers(len(self.images)))
        image, label, fg = self.images[k], self.labels[k], self.fg[k]
        shape = np.array(label.shape)
        patch = np.array(self.patch)
        if fg and rng.random() < self.foreground_p:
            cls = list(fg)[int(rng.integers(len(fg)))]
            centre = fg[cls][int(rng.integers(len(fg[cls])))]
            start = np.clip(centre - patch // 2, 0, shape - patch)
        else:
            start = np.array([int(rng.integers(0, n - p + 1)) for n, p in zip(shape, patch)])
        start = start - (np.array(self.read_size) - patch) // 2  # the enlarged patch around the final one
        img = _read(image, start, self.read_size, leading=1)
        lab = _read(label, start, self.read_size, leading=0)
        return torch.from_numpy(img.astype(np.float32, copy=False)), torch.from_numpy(lab.astype(np.int64))[None]


def _read(array: np.ndarray, start: np.ndarray, size: tuple[int, int, int], *, leading: int) -> np.ndarray:
    """``array[..., start:start + size]`` over the last three axes, zero where the window leaves the array."""
    shape = np.array(array.shape[leading:])
    lo, hi = np.maximum(start, 0), np.minimum(start + np.array(size), shape)
    src = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    if np.array_equal(lo, start) and np.array_equal(hi - lo, size):  # inside: a plain (copied) slice
        return np.ascontiguousarray(array[(slice(None),) * leading + src])
    out = np.zeros(array.shape[:leading] + tuple(size), dtype=array.dtype)
    dst = tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(lo, hi, start))
    out[(slice(None),) * leading + dst] = array[(slice(None),) * leading + src]
    return out


def _pad(image: np.ndarray, label: np.ndarray, patch: tuple[int, int, int]):
    pad = [max(p - n, 0) for n, p in zip(label.shape, patch)]
    if not any(pad):
        return image, label
    widths = [(w // 2, w - w // 2) for w in pad]
    return np.pad(image, [(0, 0), *widths]), np.pad(label, widths)
