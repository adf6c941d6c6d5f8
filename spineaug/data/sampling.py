"""Patch sampling for training: random patches with nnU-Net-style foreground oversampling, as a torch Dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spineaug.data.datasets import Sample


class PatchSampler(Dataset):
    """Random fixed-size patches from a list of loaded cases.

    Item ``i`` of epoch ``e`` is a deterministic function of ``(seed, e, i)``, so DataLoader workers need no
    shared RNG. Each item picks a case uniformly; with probability ``foreground_p`` the patch is centred on a
    random voxel of a random foreground class present in that case (so rare classes get seen), otherwise it is
    placed uniformly. Volumes smaller than the patch are padded with 0 (image and label).

    Args:
        samples: Loaded cases (e.g. ``[dataset[i] for i in range(len(dataset))]``), all with labels.
        patch_size: (X, Y, Z) voxels.
        length: Items per epoch.
        foreground_p: Probability of a foreground-centred patch (nnU-Net uses 0.33).
        seed: Base seed.

    Yields:
        ``(image, label)``: (C, X, Y, Z) float32 tensor and (1, X, Y, Z) int64 tensor.
    """

    def __init__(
        self, samples: Sequence[Sample], patch_size: Sequence[int], *, length: int = 250, foreground_p: float = 0.33,
        seed: int = 0,
    ):  # fmt: skip
        if len(samples) == 0:
            raise ValueError("samples must not be empty")
        patch = tuple(int(p) for p in patch_size)
        if len(patch) != 3 or any(p < 1 for p in patch):
            raise ValueError(f"patch_size must be three positive integers, got {patch_size!r}")
        if not 0.0 <= foreground_p <= 1.0:
            raise ValueError(f"foreground_p must lie in [0, 1], got {foreground_p!r}")
        if length < 1:
            raise ValueError(f"length must be positive, got {length!r}")
        self.patch = patch
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
        sl = tuple(slice(int(s), int(s) + p) for s, p in zip(start, patch))
        img = torch.from_numpy(np.ascontiguousarray(image[(slice(None), *sl)], dtype=np.float32))
        lab = torch.from_numpy(label[sl].astype(np.int64))[None]
        return img, lab


def _pad(image: np.ndarray, label: np.ndarray, patch: tuple[int, int, int]):
    pad = [max(p - n, 0) for n, p in zip(label.shape, patch)]
    if not any(pad):
        return image, label
    widths = [(w // 2, w - w // 2) for w in pad]
    return np.pad(image, [(0, 0), *widths]), np.pad(label, widths)
