"""Label-guided intensity operations: per-label statistics, ring statistics, intensity remapping, synthetic appearance.

Labels are maps ``(B, 1, D, H, W)`` of integers, 0 = background. The functions here work on a fixed number of label
values ``num = max_label + 1``: values outside ``[0, max_label]`` (and an optional ignore label) count as background,
so every table has a static shape and nothing synchronises with the host (no ``unique``, no ``bincount``).
Per-label sums are ``scatter_add``-ed into flat bins ``(b * C + c) * num + l``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SPATIAL = (2, 3, 4)


def label_index(label: Tensor, max_label: int, ignore_label: int | None = None) -> Tensor:
    """Label values as long indices in ``[0, max_label]``; out-of-range and ignored values become background (0)."""
    lab = label.long()
    bad = (lab < 0) | (lab > max_label)
    if ignore_label is not None:
        bad = bad | (lab == ignore_label)
    return torch.where(bad, torch.zeros((), dtype=lab.dtype, device=lab.device), lab)


def label_moments(x: Tensor, lab: Tensor, num: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample, per-channel, per-label voxel count, sum and sum of squares.

    Args:
        x: Values, (B, C, D, H, W), float32.
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W) long.
        num: Number of label values.

    Returns:
        ``(count, total, total_sq)``, each (B, C, num) float32.
    """
    b, c = x.shape[:2]
    base = (torch.arange(b * c, device=x.device) * num).view(b, c, 1)
    idx = (base + lab.flatten(2)).flatten()  # (B * C * N,)
    xf = x.float().flatten()
    size = b * c * num
    count = torch.zeros(size, device=x.device).index_add_(0, idx, torch.ones((), device=x.device).expand_as(xf))
    total = torch.zeros(size, device=x.device).index_add_(0, idx, xf)
    total_sq = torch.zeros(size, device=x.device).index_add_(0, idx, xf * xf)
    return count.view(b, c, num), total.view(b, c, num), total_sq.view(b, c, num)


def moments_to_mean_std(count: Tensor, total: Tensor, total_sq: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and population std from moments; empty bins (count 0) give mean 0, std 0."""
    n = count.clamp_min(1)
    mean = total / n
    var = (total_sq / n - mean.square()).clamp_min(0)
    return mean, var.sqrt()


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Dilate boolean masks by a cube of Chebyshev radius ``radius``.

    Separable: along each axis a sliding-window OR of width ``2 radius + 1``, computed by doubling (about
    ``log2(2 radius + 1)`` shifted ORs per axis) on 1-byte masks; much faster than ``max_pool3d`` on the CPU and just
    as cheap on a GPU.

    Args:
        mask: (B, K, D, H, W) bool.
        radius: Cube half-size in voxels (>= 0).

    Returns:
        Dilated masks, bool, like ``mask``.
    """
    if radius <= 0:
        return mask
    width = 2 * radius + 1
    for dim in (2, 3, 4):
        n = mask.shape[dim]
        pad_shape = list(mask.shape)
        pad_shape[dim] = radius
        pad = torch.zeros(pad_shape, dtype=torch.bool, device=mask.device)
        cur = torch.cat([pad, mask, pad], dim)
        cover = 1
        while cover < width:
            step = min(cover, width - cover)
            length = cur.shape[dim] - step
            cur = cur.narrow(dim, 0, length) | cur.narrow(dim, step, length)
            cover += step
        mask = cur.narrow(dim, 0, n)
    return mask


def ring_moments(
    x: Tensor, lab: Tensor, num: int, radius: int = 3, chunk: int = 8
) -> tuple[Tensor, Tensor, Tensor]:
    """Moments of ``x`` on the ring around each label: ``dilate(M_l) minus M_l`` (labels 1..num-1; 0 is unused).

    Labels are processed ``chunk`` at a time so memory stays ``O(chunk * N)``.

    Returns:
        ``(count, total, total_sq)``, each (B, C, num) float32; entry 0 (background) is zero.
    """
    b, c = x.shape[:2]
    xf = x.float().flatten(2)  # (B, C, N)
    outs = [torch.zeros(b, c, 1, device=x.device) for _ in range(3)]
    parts: list[list[Tensor]] = [[o] for o in outs]
    for first in range(1, num, chunk):
        values = torch.arange(first, min(first + chunk, num), device=x.device).view(1, -1, 1, 1, 1)
        inside = lab == values  # (B, k, D, H, W) bool
        ring = (dilate(inside, radius) & ~inside).flatten(2).float()  # (B, k, N), 0/1
        parts[0].append(ring.sum(dim=2)[:, None, :].expand(b, c, -1))
        parts[1].append(torch.einsum("bkn,bcn->bck", ring, xf))
        parts[2].append(torch.einsum("bkn,bcn->bck", ring, xf * xf))
    return tuple(torch.cat(p, dim=2) for p in parts)  # type: ignore[return-value]


def _bump(v: Tensor, mean: Tensor, width: Tensor) -> Tensor:
    w = width + 1e-6
    return torch.exp(-0.5 * ((v - mean) / w).square()) / (w * math.sqrt(2 * math.pi))


def remap_intensities(
    x: Tensor,
    lab: Tensor,
    num: int,
    width_u: Tensor,
    amplitude: Tensor,
    inside: Tensor,
    *,
    radius: int = 3,
) -> Tensor:
    """Label-guided intensity remap (CATALOG.md 3.5): add Gaussian bumps in intensity space at each label's mean.

    Per sample and channel, with ``u`` the min-max normalised image: each present label ``l`` has mean ``mu_l`` and
    std ``sigma_l`` of ``u`` inside it and ``mu'_l``, ``sigma'_l`` on its ring (dilation by ``radius`` minus the
    label); bump width ``tau_l = max(width_u_l + 0.4 |mu_l - mu'_l| sigma_l / (sigma'_l + 1e-6), 0.01)``, amplitude
    ``a_l``, ``phi_l(v) = N(v; mu_l, tau_l)``. Global mode: ``A = sum_l a_l phi_l(u)`` on every voxel; inside mode:
    ``A = a_{l(v)} phi_{l(v)}(u)`` (O(N), a gather). Then ``y = u + 2 (A - min A) / (max A - min A + 1e-6)`` (when
    the range exceeds 1e-8; in inside mode without the ``- min A``, which only shifted the untouched outside by a
    constant), mapped back to the input's units (``y * span + min``; AugLab returns ``y`` in [0, 3] units, which only
    matters without ``retain_stats``). Samples without foreground return ``x`` unchanged.

    Args:
        x: Images, (B, C, D, H, W).
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W) long (see :func:`label_index`).
        num: Number of label values (``max_label + 1``).
        width_u: Random part of the bump widths, (B, num).
        amplitude: Bump amplitudes, (B, num); entry 0 (background) is ignored.
        inside: (B,) bool CPU tensor: inside mode for this sample.
        radius: Ring dilation radius in voxels.

    Returns:
        Remapped images, like ``x``.
    """
    xf = x.float()
    lo = xf.amin(dim=SPATIAL, keepdim=True)
    span = (xf.amax(dim=SPATIAL, keepdim=True) - lo).clamp_min(1e-6)
    u = (xf - lo) / span
    count, total, total_sq = label_moments(u, lab, num)
    mu, sigma = moments_to_mean_std(count, total, total_sq)
    r_count, r_total, r_total_sq = ring_moments(u, lab, num, radius)
    mu_r, sigma_r = moments_to_mean_std(r_count, r_total, r_total_sq)
    device = x.device
    width_u = width_u.to(device, torch.float32, non_blocking=True)[:, None, :]
    amplitude = amplitude.to(device, torch.float32, non_blocking=True)[:, None, :]
    tau = (width_u + 0.4 * (mu - mu_r).abs() * sigma / (sigma_r + 1e-6)).clamp_min(0.01)
    present = count > 0
    present[..., 0] = False
    a = torch.where(present, amplitude, torch.zeros(()))  # (B, C, num)

    inside = inside.to("cpu")
    use_inside = bool(inside.any())
    use_global = not bool(inside.all())
    b, c = x.shape[:2]
    bump = None
    if use_inside:
        flat = lab.flatten(2).expand(b, c, -1)

        def pick(t: Tensor) -> Tensor:
            return torch.gather(t, 2, flat).view_as(u)

        bump = pick(a) * _bump(u, pick(mu), pick(tau))
    if use_global:
        a_global = torch.zeros_like(u)
        for v in range(1, num):
            at = (..., v, None, None, None)  # (B, C) table column -> (B, C, 1, 1, 1)
            a_global += a[at] * _bump(u, mu[at], tau[at])
        if bump is None:
            bump = a_global
        else:
            bump = torch.where(inside.to(device, non_blocking=True).view(-1, 1, 1, 1, 1), bump, a_global)
    a_lo = bump.amin(dim=SPATIAL, keepdim=True)
    a_range = bump.amax(dim=SPATIAL, keepdim=True) - a_lo
    # AugLab adds 2 (A - min A) / range everywhere. In inside mode (A = 0 outside the labels) that shifts the outside
    # by a constant; dropping that constant (retain_stats removes it anyway) leaves the outside exactly unchanged.
    shift = a_lo
    if use_inside:
        shift = torch.where(inside.to(device, non_blocking=True).view(-1, 1, 1, 1, 1), 0.0, a_lo)
    y = torch.where(a_range > 1e-8, u + 2.0 * (bump - shift) / (a_range + 1e-6), u)
    y = y * span + lo
    has_fg = present.any(dim=2).view(b, c, 1, 1, 1)
    return torch.where(has_fg, y, xf).to(x.dtype)


def label_appearance(
    x: Tensor, lab: Tensor, num: int, mean: Tensor, std: Tensor, noise: Tensor, texture: Tensor
) -> Tensor:
    """Paint each label region with fresh statistics: ``mean_l + std_l * n`` (SynthSeg-style).

    ``n = sqrt(1 - w^2) * noise + w * z``, where ``z`` is the original image standardised within each label region
    (its texture) and ``w`` the per-sample texture weight: ``n`` keeps unit variance for independent noise, so the
    region statistics are ``mean_l`` and ``std_l`` whatever ``w``.

    Args:
        x: Images, (B, C, D, H, W).
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W) long.
        num: Number of label values.
        mean: Region means, (B, num).
        std: Region standard deviations, (B, num), >= 0.
        noise: Standard normal noise like ``x``.
        texture: Texture weights in [0, 1], (B,).

    Returns:
        Synthetic images, like ``x`` (float32 values cast back to ``x.dtype``).
    """
    b, c = x.shape[:2]
    device = x.device
    xf = x.float()
    flat = lab.flatten(2).expand(b, c, -1)

    def pick(t: Tensor) -> Tensor:
        return torch.gather(t, 2, flat).view(xf.shape)

    w = texture.to(device, torch.float32, non_blocking=True).view(-1, 1, 1, 1, 1)
    # z is shift-invariant: centre each channel first, so the sum-of-squares moments do not cancel at large offsets
    # (raw CT at +1e5), and standardise by any positive std, however small (a region with std 0 has z = 0).
    xf = xf - xf.mean(dim=SPATIAL, keepdim=True)
    count, total, total_sq = label_moments(xf, lab, num)
    mu_x, sd_x = moments_to_mean_std(count, total, total_sq)
    z = (xf - pick(mu_x)) / pick(sd_x).clamp_min(torch.finfo(torch.float32).tiny)
    n = torch.sqrt((1 - w.square()).clamp_min(0)) * noise.float() + w * z
    m = mean.to(device, torch.float32, non_blocking=True)[:, None, :].expand(b, c, num)
    s = std.to(device, torch.float32, non_blocking=True)[:, None, :].expand(b, c, num)
    return (pick(m.contiguous()) + pick(s.contiguous()) * n).to(x.dtype)


def smooth_field(coarse: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Upsample coarse control values (B, 1, g, g, g) to a smooth (B, 1, D, H, W) field (trilinear, corners aligned)."""
    return F.interpolate(coarse.float(), size=shape, mode="trilinear", align_corners=True)


__all__ = [
    "dilate",
    "label_appearance",
    "label_index",
    "label_moments",
    "moments_to_mean_std",
    "remap_intensities",
    "ring_moments",
    "smooth_field",
]
