"""Per-sample random draws from an explicit CPU ``torch.Generator``.

Every draw in spineaug goes through these helpers, so parameters are small ``(B, ...)`` CPU tensors: the same seed
gives the same parameters whatever device the data lives on, and deciding which samples fire needs no device sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spineaug.functional.noise import splitmix64


def uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    """Draw ``U(low, high)`` values of the given shape (float32, CPU)."""
    return torch.rand(shape, generator=generator) * (high - low) + low


def normal(generator: torch.Generator, shape: tuple[int, ...], std: float | Tensor = 1.0) -> Tensor:
    """Draw ``N(0, std^2)`` values of the given shape (float32, CPU)."""
    return torch.randn(shape, generator=generator) * std


def bernoulli(generator: torch.Generator, shape: tuple[int, ...], p: float) -> Tensor:
    """Draw boolean coin flips that are ``True`` with probability ``p``."""
    return torch.rand(shape, generator=generator) < p


def bg_contrast(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    """Draw nnU-Net's "BGContrast" factors: half the time ``U(low, 1)``, otherwise ``U(1, high)``.

    Ranges that do not straddle 1 fall back to ``U(low, high)``, as in batchgeneratorsv2.
    """
    if not low < 1.0 < high:
        return uniform(generator, shape, low, high)
    below = bernoulli(generator, shape, 0.5)
    u = torch.rand(shape, generator=generator)
    return torch.where(below, low + u * (1.0 - low), 1.0 + u * (high - 1.0))


def randint(generator: torch.Generator, shape: tuple[int, ...], high: Tensor | int) -> Tensor:
    """Draw integers uniformly from ``[0, high)``; ``high`` may be a tensor broadcastable to ``shape``."""
    high = torch.as_tensor(high)
    return torch.floor(torch.rand(shape, generator=generator) * high).long().clamp_max(high - 1)


def choice(generator: torch.Generator, shape: tuple[int, ...], n: int) -> Tensor:
    """Draw indices uniformly from ``range(n)``."""
    return randint(generator, shape, n)


def seeds(generator: torch.Generator, shape: tuple[int, ...]) -> Tensor:
    """Draw 62-bit integer seeds for dense fields that are generated later, on the data's device."""
    return torch.randint(0, 2**62, shape, generator=generator, dtype=torch.int64)


def sample_seeds(generator: torch.Generator, n: int) -> Tensor:
    """One seed per sample, (n,), from a single draw: the first ``n`` outputs of a SplitMix64 stream it starts.

    The generator advances as for one seed whatever ``n`` is, so the draws of the entries that follow do not depend on
    the batch size; each sample still gets a seed of its own.
    """
    return splitmix64(seeds(generator, (1,)), n)[0]
