"""Batched intensity helpers shared by the intensity transforms (and the transforms' pure cores).

All functions take images ``(B, C, D, H, W)``, compute in float32 and return the input dtype; per-sample parameters
have a leading batch dimension. Nothing here synchronises with the host or modifies its inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

SPATIAL = (2, 3, 4)

REGION_ALL, REGION_INSIDE, REGION_OUTSIDE = 0, 1, 2


def per_sample(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a (B,) or (B, C) parameter to broadcast against ``x`` (B, C, D, H, W), on ``x``'s device, float32."""
    v = v.to(x.device, torch.float32, non_blocking=True)
    return v.reshape(v.shape[0], -1, 1, 1, 1) if v.ndim > 1 else v.view(-1, 1, 1, 1, 1)


def mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial mean and population std, float32, shaped (B, C, 1, 1, 1)."""
    x = x.float()
    mean = x.mean(dim=SPATIAL, keepdim=True)
    std = (x - mean).square().mean(dim=SPATIAL, keepdim=True).sqrt()
    return mean, std


def min_max(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial minimum and maximum, float32, shaped (B, C, 1, 1, 1)."""
    flat = x.float().flatten(2)
    lo, hi = flat.aminmax(dim=2)
    return lo[..., None, None, None], hi[..., None, None, None]


def normalise01(x: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """Min-max normalise each sample and channel to [0, 1].

    Returns:
        ``(u, lo, span)`` with ``x = u * span + lo``; constant channels give ``u = 0``.
    """
    lo, hi = min_max(x)
    span = (hi - lo).clamp_min(eps)
    return ((x.float() - lo) / span).clamp(0.0, 1.0), lo, span


def restore_stats(y: Tensor, x: Tensor) -> Tensor:
    """Give ``y`` the per-sample, per-channel mean and std of ``x`` ("retain_stats").

    A channel of ``y`` that is (numerically) constant cannot be rescaled without blowing rounding noise up to full
    scale; such channels return ``x`` unchanged.
    """
    m0, s0 = mean_std(x)
    m1, s1 = mean_std(y)
    degenerate = s1 < 1e-6 * (s0 + m0.abs()) + 1e-12
    out = (y.float() - m1) / s1.clamp_min(1e-12) * s0 + m0
    return torch.where(degenerate, x.float(), out).to(x.dtype)


def blend(x: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    """Mix with the original: ``alpha * x + (1 - alpha) * y``; ``alpha`` (B,) weights the ORIGINAL."""
    a = per_sample(alpha, x)
    return (a * x.float() + (1 - a) * y.float()).to(x.dtype)


def region_mask(label: Tensor, keep: Tensor) -> Tensor:
    """Voxels whose label is in each sample's kept set.

    Args:
        label: Label maps, (B, 1, D, H, W), integer.
        keep: (B, K) bool lookup table: label value ``l`` is in the region of sample ``b`` iff ``keep[b, l]``;
            values outside ``[0, K)`` are never in the region.

    Returns:
        (B, 1, D, H, W) bool.
    """
    keep = keep.to(label.device, non_blocking=True)
    n = keep.shape[1]
    lab = label.long()
    valid = (lab >= 0) & (lab < n)
    flat = lab.clamp(0, n - 1).flatten(1)
    inside = torch.gather(keep, 1, flat).view_as(lab)
    return inside & valid


def restrict_to_region(x: Tensor, y: Tensor, mask: Tensor, mode: Tensor) -> Tensor:
    """Keep ``y`` only inside (mode 1) or outside (mode 2) the region ``mask``; mode 0 keeps it everywhere.

    Args:
        x: Original images, (B, C, D, H, W).
        y: Transformed images, like ``x``.
        mask: Region, (B, 1, D, H, W) bool.
        mode: (B,) int: 0 all, 1 inside, 2 outside.
    """
    mode = mode.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1)
    use = (mode == REGION_ALL) | ((mode == REGION_INSIDE) & mask) | ((mode == REGION_OUTSIDE) & ~mask)
    return torch.where(use, y, x)


def keep_finite(y: Tensor, x: Tensor) -> Tensor:
    """Return ``y`` per sample, or ``x`` for samples where ``y`` has any NaN/Inf (no host synchronisation)."""
    ok = torch.isfinite(y).flatten(1).all(dim=1).view(-1, 1, 1, 1, 1)
    return torch.where(ok, y, x)
