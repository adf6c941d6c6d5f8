"""Per-sample random fields from per-sample seeds, generated on the data's device in one batched pass.

A dense noise field is never stored in the parameters: each sample's parameters hold an integer seed and the field is
computed from it where the data lives. To keep every sample's field a function of its own seed alone (not of the
other samples in the batch, nor of which of them fire) without a Python loop over the batch, the generator is
counter-based: value ``j`` of sample ``b`` is a hash of ``(seed_b, j)``. The hash is SplitMix64 (Steele, Lea and Flood,
2014), written with int64 tensor operations (they wrap around), and Box-Muller turns each 64-bit output into two
standard normal values (its 32-bit halves give the angle and the radius). The same seed therefore gives the same
field on every device, up to float rounding in
``log``/``sin``/``cos``.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor

_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)  # SplitMix64's increment (the golden ratio), as a signed int64
_LOW, _HIGH = (0, 1) if sys.byteorder == "little" else (1, 0)  # int32 halves of an int64, in memory order
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

    Cost bound: one SplitMix64 output per pair of values (eight int64 passes over half the field), one conversion of
    its two 32-bit halves to float, and Box-Muller (log, sqrt, sin, cos); the transcendental functions are also what
    ``torch.randn`` (the benchmark's reference) spends its time on.

    Args:
        seeds: (B,) int64 seeds, on the device the field should live on.
        shape: Shape of each sample's field, e.g. ``(C, D, H, W)``.

    Returns:
        (B, *shape) float32 on ``seeds``' device. Values are truncated at about 6.7 standard deviations (the radius
        comes from a 31-bit uniform), beyond ``torch.randn``'s ~5.9.
    """
    b, n = seeds.shape[0], math.prod(shape)
    m = (n + 1) // 2
    z, spare = _splitmix64(seeds, m)
    # Both 32-bit halves of every output, converted in one pass: the low half (signed, 32 random bits) gives the
    # angle, the high half (>= 0, 31 random bits) the radius. Each pair of output values is one Box-Muller pair.
    # The float32 pairs take the bytes of the generator's scratch buffer, and sin(angle) those of its output once
    # converted: no fresh full-size allocation (on the CPU one costs about as much as a pass).
    pairs = spare.view(torch.float32).view(b, m, 2)
    pairs.copy_(z.view(torch.int32).view(b, m, 2))
    angle, radius = pairs[..., _LOW], pairs[..., _HIGH]
    # radius sqrt(-2 log u1), u1 = (h + 1/2) / 2^31 in (0, 1]; angle pi * l / 2^31 in [-pi, pi).
    radius.add_(0.5).mul_(2.0**-31).log_().mul_(-2.0).sqrt_()
    angle.mul_(math.pi / 2**31)
    sine = torch.sin(angle, out=z.view(torch.float32).view(-1)[: b * m].view(b, m))
    angle.cos_().mul_(radius)
    radius.mul_(sine)
    return pairs.view(b, 2 * m)[:, :n].reshape(b, *shape)
