"""Per-sample random fields from per-sample seeds, generated on the data's device in one batched pass.

A dense noise field is never stored in the parameters: each sample's parameters hold an integer seed and the field is
computed from it where the data lives. To keep every sample's field a function of its own seed alone (not of the
other samples in the batch, nor of which of them fire) without a Python loop over the batch, the generator is
counter-based: value ``j`` of sample ``b`` is a hash of ``(seed_b, j)``. The hash is SplitMix64 (Steele, Lea and Flood,
2014), written with int64 tensor operations (they wrap around), and Box-Muller turns each 64-bit output into two
standard normal values. The same seed therefore gives the same field on every device, up to float rounding in
``log``/``sin``/``cos``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)  # SplitMix64's increment (the golden ratio), as a signed int64
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
    z = torch.add(seeds.long()[:, None], torch.arange(1, count + 1, device=seeds.device, dtype=torch.int64), alpha=_GAMMA)
    scratch = torch.empty_like(z)
    for shift, multiplier in _MIX:
        z.bitwise_xor_(torch.bitwise_right_shift(z, shift, out=scratch))
        if multiplier is not None:
            z.mul_(multiplier)
    return z


def normal_field(seeds: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Standard normal values for each sample, a function of that sample's seed only.

    Args:
        seeds: (B,) int64 seeds, on the device the field should live on.
        shape: Shape of each sample's field, e.g. ``(C, D, H, W)``.

    Returns:
        (B, *shape) float32 on ``seeds``' device. Values are truncated at about 5.9 standard deviations (24-bit
        uniforms), like ``torch.randn``'s.
    """
    b, n = seeds.shape[0], math.prod(shape)
    m = (n + 1) // 2
    z = splitmix64(seeds, m)
    out = torch.empty((b, 2 * m), device=seeds.device, dtype=torch.float32)
    radius, angle = out[:, :m], out[:, m:]
    bits = torch.empty_like(z)
    # Box-Muller: radius sqrt(-2 log u1) with u1 = (bits 39..62 + 1/2) / 2^24 in (0, 1), angle 2 pi u2 (bits 0..23).
    radius.copy_(torch.bitwise_right_shift(z, 39, out=bits)).add_(0.5).log_().mul_(-2.0)
    radius.add_(48 * math.log(2)).sqrt_()
    angle.copy_(torch.bitwise_and(z, 0xFFFFFF, out=bits)).mul_(2 * math.pi / 2**24)
    sine = torch.sin(angle)
    angle.cos_().mul_(radius)
    radius.mul_(sine)
    return out[:, :n].reshape(b, *shape)
