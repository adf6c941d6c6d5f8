"""Per-sample random fields from per-sample seeds, generated on the data's device in one batched pass.

A dense noise field is never stored in the parameters: each sample's parameters hold an integer seed and the field is
computed from it where the data lives. To keep every sample's field a function of its own seed alone (not of the
other samples in the batch, nor of which of them fire) without a Python loop over the batch, the generator is
counter-based: value ``j`` of sample ``b`` is a hash of ``(seed_b, j)``. The hash is SplitMix64 (Steele, Lea and Flood,
2014), written with int64 tensor operations (they wrap around), and each 64-bit output becomes two
standard normal values (22 bits of each 32-bit half give a uniform value in (-1, 1), ``erfinv`` maps it). The same
seed therefore gives the same field on every device, up to float rounding in ``erfinv``.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor

_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)  # SplitMix64's increment (the golden ratio), as a signed int64
_LOW, _HIGH = (0, 1) if sys.byteorder == "little" else (1, 0)  # int32 halves of an int64, in memory order
_MANTISSAS = 0x007FFFFF007FFFFF  # the low 23 bits of each 32-bit half of an int64
_TWOS = 0x4000000140000001  # in each half: the float32 2.0, and the lowest mantissa bit set
_MIX = ((30, 0xBF58476D1CE4E5B9 - (1 << 64)), (27, 0x94D049BB133111EB - (1 << 64)), (31, None))


def splitmix64(seeds: Tensor, count: int) -> Tensor:
    """The first ``count`` outputs of a SplitMix64 stream per seed.

    Args:
        seeds: (B,) int64 seeds, on the device the outputs should live on.
        count: Outputs per seed.

    Returns:
        (B, count) int64. The xor-shifts are arithmetic (int64 has no logical shift), so each output is non-negative
        and carries 63 random bits.
    """
    return _splitmix64(seeds, count)[0]


def _splitmix64(seeds: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """:func:`splitmix64`, and its scratch buffer (like the output, free for the caller to reuse)."""
    z = torch.add(seeds.long()[:, None], torch.arange(1, count + 1, device=seeds.device, dtype=torch.int64), alpha=_GAMMA)
    scratch = torch.empty_like(z)
    for shift, multiplier in _MIX:
        z.bitwise_xor_(torch.bitwise_right_shift(z, shift, out=scratch))
        if multiplier is not None:
            z.mul_(multiplier)
    return z, scratch


def normal_field(seeds: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Standard normal values for each sample, a function of that sample's seed only.

    :func:`scaled_normal_field` times ``sqrt(2)`` (one more pass; callers that scale the field anyway use that).

    Args:
        seeds: (B,) int64 seeds, on the device the field should live on.
        shape: Shape of each sample's field, e.g. ``(C, D, H, W)``.

    Returns:
        (B, *shape) float32 on ``seeds``' device. Values are truncated at about 5.1 standard deviations (the
        uniform has 22 bits), where ``torch.randn`` reaches about 5.9.
    """
    return scaled_normal_field(seeds, shape).mul_(math.sqrt(2.0))


def scaled_normal_field(seeds: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Normal values with standard deviation ``1 / sqrt(2)`` for each sample, a function of that sample's seed only.

    Each SplitMix64 output gives two values: 22 bits of each of its 32-bit halves become the mantissa of a float32
    in (2, 4), whose lowest bit is set (two integer passes over half the field, through a float32 view of the same
    bytes, no conversion), so subtracting 3 (exact) gives ``v = (2k + 1) / 2^22 - 1`` in (-1, 1), symmetric about
    0, and ``erfinv``
    (in place) maps that to a normal value of variance 1/2. Cost: the hash (eight int64 passes over half the
    field), two more over half of it, and two float passes, in one full-size buffer.

    Args:
        seeds: (B,) int64 seeds, on the device the field should live on.
        shape: Shape of each sample's field, e.g. ``(C, D, H, W)``.

    Returns:
        (B, *shape) float32 on ``seeds``' device.
    """
    b, n = seeds.shape[0], math.prod(shape)
    m = (n + 1) // 2
    z, _ = _splitmix64(seeds, m)
    z.bitwise_and_(_MANTISSAS).bitwise_or_(_TWOS)
    v = z.view(torch.float32).view(b, 2 * m)  # both halves, each in [2, 4)
    v.sub_(3.0)  # exact (Sterbenz): (2k + 1) * 2^-22 - 1, never -1 or 1
    return v.erfinv_()[:, :n].reshape(b, *shape)
