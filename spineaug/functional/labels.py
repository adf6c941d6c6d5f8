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

from spineaug.functional.intensity import min_max, tracked, work

SPATIAL = (2, 3, 4)


def label_index(
    label: Tensor,
    max_label: int,
    ignore_label: int | None = None,
    *,
    union: bool = False,
    dtype: torch.dtype = torch.long,
) -> Tensor:
    """Label values as indices in ``[0, max_label]``; out-of-range and ignored values become background (0).

    One boolean mask of the kept values (two comparisons, a third for the ignore label) and one masked copy, instead
    of an int64 clamp and a table lookup (each a fresh 8-byte volume). With ``union`` every foreground value maps to
    1 (one region for all labels). ``dtype`` is the index dtype: ``torch.long`` for ``gather``/``scatter`` indices,
    ``torch.uint8`` (``max_label <= 255``) for a 1-byte map that is cheaper to build and to compare.
    """
    if dtype != torch.long and max_label > torch.iinfo(dtype).max:
        raise ValueError(f"label_index: max_label {max_label} does not fit dtype {dtype}")
    keep = (label >= (1 if union else 0)).logical_and_(label <= max_label)
    if ignore_label is not None and 0 <= ignore_label <= max_label:
        keep.logical_and_(label != ignore_label)
    if union:
        return keep.view(dtype) if dtype == torch.uint8 else keep.to(dtype)  # bool is one byte: a free view
    if dtype == torch.long:
        return torch.where(keep, label, 0).long()
    return label.to(dtype, copy=True).mul_(keep)  # wrapped values (> 255, < 0) are masked to 0


def _moments(x: Tensor, idx: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Count, sum and sum of squares of ``x`` (B, C, N) per bin of ``idx`` (B, 1, N) long, each (B, C, bins).

    ``scatter_add_`` along the last dimension into a table of known size: no host synchronisation, no flat index
    volume to build (the label map itself is the index), and on the CPU several times faster than ``index_add_``.
    Three real scatters: packing the sum and the sum of squares as one complex value costs a full-size complex
    volume (two more passes) and saves no time in the scatter; each bin's sums are accumulated in the same order,
    so the results are the same bits.
    """
    b, c, n = x.shape
    idx = idx.expand(b, c, n)
    ones = torch.ones((), device=x.device).expand(b, c, n)
    count = torch.zeros(b, c, bins, device=x.device).scatter_add_(2, idx, ones)
    total = torch.zeros(b, c, bins, device=x.device).scatter_add_(2, idx, x)
    total_sq = torch.zeros(b, c, bins, device=x.device).scatter_add_(2, idx, x * x)
    return count, total, total_sq


def label_moments(x: Tensor, lab: Tensor, num: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample, per-channel, per-label voxel count, sum and sum of squares.

    Args:
        x: Values, (B, C, D, H, W), float32.
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W), integer (long avoids a conversion).
        num: Number of label values.

    Returns:
        ``(count, total, total_sq)``, each (B, C, num) float32.
    """
    return _moments(x.float().flatten(2), lab.flatten(2).long(), num)


def moments_to_mean_std(count: Tensor, total: Tensor, total_sq: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and population std from moments; empty bins (count 0) give mean 0, std 0."""
    n = count.clamp_min(1)
    mean = total / n
    var = (total_sq / n - mean.square()).clamp_min(0)
    return mean, var.sqrt()


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Dilate boolean masks by a cube of Chebyshev radius ``radius``.

    Separable: one zero padding of all three axes, then along each axis a sliding-window OR of width
    ``2 radius + 1``, computed by doubling (about ``log2(2 radius + 1)`` shifted ORs per axis) on 1-byte masks;
    much faster than ``max_pool3d`` on the CPU (over a hundred times at 128^3) and just as cheap on a GPU. Padding
    once costs one copy instead of a concatenation per axis.

    Args:
        mask: (B, K, D, H, W) bool, or an integer bit field (each bit one mask: all are dilated at once).
        radius: Cube half-size in voxels (>= 0).

    Returns:
        Dilated masks, like ``mask``.
    """
    if radius <= 0:
        return mask
    width = 2 * radius + 1
    cur = F.pad(mask, (radius,) * 6)
    for dim in (2, 3, 4):
        cover = 1
        while cover < width:
            step = min(cover, width - cover)
            length = cur.shape[dim] - step
            cur = cur.narrow(dim, 0, length) | cur.narrow(dim, step, length)
            cover += step
    return cur


def _chunk_bits(lab: Tensor, num: int, first: int, k: int) -> Tensor:
    """A uint8 map of ``lab`` (values in ``[0, num)``) with bit ``j`` set inside label ``first + j`` (``j < k``).

    For a uint8 ``lab`` holding only the chunk's labels and background (``first = 1``, ``num = k + 1 <= 8``) that is
    ``(1 << lab) >> 1`` on bytes, or ``lab`` itself for a single label; otherwise a table lookup.
    """
    if lab.dtype == torch.uint8 and first == 1 and k == num - 1 and k <= 7:
        if k == 1:
            return lab
        one = torch.ones((), dtype=torch.uint8, device=lab.device)
        return torch.bitwise_left_shift(one, lab).bitwise_right_shift_(1)
    table = torch.zeros(num, dtype=torch.uint8, device=lab.device)
    table[first : first + k] = 1 << torch.arange(k, device=lab.device, dtype=torch.uint8)
    return torch.take(table, lab.long())


def label_ring_moments(
    x: Tensor, lab: Tensor, num: int, radius: int = 3, chunk: int = 8
) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    """Moments of ``x`` per label (:func:`label_moments`) and on each label's ring (:func:`ring_moments`) together.

    Labels are taken ``chunk`` (<= 8) at a time as the bits of one uint8 map, so one dilation serves the whole chunk;
    each voxel's bin is ``(label, ring bits)`` and three ``scatter_add`` passes give every moment of the chunk (the
    ring moments of label ``l`` sum the bins whose bit ``l`` is set). For up to 9 label values that is one dilation
    and three scatters in all, instead of a mask, a dilation and two reductions per label. With a uint8 ``lab``
    (:func:`label_index` with ``dtype=torch.uint8``) the bit map and the bin code are built on bytes; the bin code
    becomes the one int64 volume (``scatter_add_``'s index).

    Returns:
        ``((count, total, total_sq), (ring_count, ring_total, ring_total_sq))``, each (B, C, num) float32; ring
        entry 0 (background) is zero.
    """
    if not 1 <= chunk <= 8:
        raise ValueError(f"chunk must be in [1, 8] (labels per uint8 bit field), got {chunk}")
    b, c = x.shape[:2]
    device = x.device
    xf = x.float().flatten(2)  # (B, C, N)
    label_parts: tuple[Tensor, ...] = ()
    ring_parts: list[list[Tensor]] = [[torch.zeros(b, c, 1, device=device)] for _ in range(3)]
    for first in range(1, max(num, 2), chunk):
        k = max(min(chunk, num - first), 0)
        bits = _chunk_bits(lab, num, first, k)  # (B, 1, D, H, W): bit j set inside label first + j
        grown = dilate(bits, radius)
        # Bin (label, ring bits) = (lab << k) + ring, with ring = grown ^ bits = grown - bits (a label's own bit is
        # always in its dilation). On bytes when it fits: (lab << k) - bits (just lab for a single label) plus the
        # dilation, written straight into the int64 index.
        if lab.dtype == torch.uint8 and num << k <= 256:
            base = lab if bits is lab else torch.bitwise_left_shift(lab, k).sub_(bits)
            code = torch.add(base, grown, out=torch.empty(lab.shape, dtype=torch.long, device=device))
        else:
            code = torch.bitwise_left_shift(lab.long(), k).add_(grown.bitwise_xor_(bits))
        moments = [m.view(b, c, num, 1 << k) for m in _moments(xf, code.flatten(2), num << k)]
        if not label_parts:
            label_parts = tuple(m.sum(dim=3) for m in moments)
        codes = torch.arange(1 << k, device=device)[:, None]
        member = ((codes >> torch.arange(k, device=device)) & 1).float()  # (2^k, k): code has bit j
        for part, m in zip(ring_parts, moments):
            part.append(m.sum(dim=2) @ member)
    rings = tuple(torch.cat(p, dim=2)[..., :num] for p in ring_parts)
    return label_parts, rings  # type: ignore[return-value]


def ring_moments(
    x: Tensor, lab: Tensor, num: int, radius: int = 3, chunk: int = 8
) -> tuple[Tensor, Tensor, Tensor]:
    """Moments of ``x`` on the ring around each label: ``dilate(M_l) minus M_l`` (labels 1..num-1; 0 is unused).

    Labels are processed ``chunk`` (<= 8) at a time as bits of one uint8 map (see :func:`label_ring_moments`).

    Returns:
        ``(count, total, total_sq)``, each (B, C, num) float32; entry 0 (background) is zero.
    """
    return label_ring_moments(x, lab, num, radius, chunk)[1]


def _bump(v: Tensor, mean: Tensor, width: Tensor) -> Tensor:
    w = width + 1e-6
    return torch.exp(-0.5 * ((v - mean) / w).square()) / (w * math.sqrt(2 * math.pi))


def _gaussian_(t: Tensor) -> Tensor:
    """``exp(-t^2)`` in place: one ``addcmul`` writes ``0 - t * t`` (exactly ``-(t^2)``), then ``exp_``."""
    if tracked(t):  # out= is not differentiable
        return t.square_().neg_().exp_()
    return torch.addcmul(t.new_zeros(()), t, t, value=-1.0, out=t).exp_()


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
    ``A = a_{l(v)} phi_{l(v)}(u)`` (each bump restricted to its own label). Then
    ``y = u + 2 (A - min A) / (max A - min A + 1e-6)`` (when the range exceeds 1e-8; in inside mode without the
    ``- min A``, which only shifted the untouched outside by a constant), mapped back to the input's units
    (``y * span + min``; AugLab returns ``y`` in [0, 3] units, which only matters without ``retain_stats``).
    Samples without foreground return ``x`` unchanged.

    Args:
        x: Images, (B, C, D, H, W).
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W), uint8 (cheapest, up to 256 values) or long (see
            :func:`label_index`).
        num: Number of label values (``max_label + 1``).
        width_u: Random part of the bump widths, (B, num).
        amplitude: Bump amplitudes, (B, num); entry 0 (background) is ignored.
        inside: (B,) bool tensor: inside mode for this sample.
        radius: Ring dilation radius in voxels.

    Returns:
        Remapped images, like ``x``.

    Cost bound: the label and ring statistics are three ``scatter_add`` passes, one uint8 dilation and one int64 bin
    code (up to 9 label values); each bump is ~5 in-place passes over the image (+3 byte/mask passes when a sample
    is in inside mode); the rest is ~5 passes (range, ``u``, the bump's range, the way back onto ``x``). Reference for the
    benchmark (``spineaug.bench.references``): per-label ``scatter_add_`` sums and a two-gather affine ``x * a[label] +
    b[label]``.
    """
    xf = work(x)  # the range and the way back in float64 for float64 images (tiny spreads at large offsets)
    lo, hi = min_max(xf)  # one aminmax off the CPU
    span = hi - lo
    span = torch.where(span > 0, span, torch.ones((), dtype=span.dtype, device=span.device))
    u = (xf - lo).div_(span).float()  # in [0, 1]: float32 is enough for the curves
    (count, total, total_sq), ring = label_ring_moments(u, lab, num, radius)
    mu, sigma = moments_to_mean_std(count, total, total_sq)
    mu_r, sigma_r = moments_to_mean_std(*ring)
    device = x.device
    width_u = width_u.to(device, torch.float32, non_blocking=True)[:, None, :]
    amplitude = amplitude.to(device, torch.float32, non_blocking=True)[:, None, :]
    tau = (width_u + 0.4 * (mu - mu_r).abs() * sigma / (sigma_r + 1e-6)).clamp_min(0.01)
    present = count > 0
    present[..., 0] = False
    a = torch.where(present, amplitude, torch.zeros(()))  # (B, C, num)
    # phi_l(v) = peak_l * exp(-(k_l v - k_l mu_l)^2) with peak_l = phi_l(mu_l) and k_l = peak_l sqrt(pi)
    # (= 1 / (w_l sqrt 2)): the per-label constants come from the small tables, so each voxel costs a few
    # in-place passes per bump instead of a fresh tensor per operation.
    peak = _bump(mu, mu, tau)
    k = peak * math.sqrt(math.pi)
    coef, offset = a * peak, -mu * k  # (B, C, num)

    # Both modes in one loop, so the same operations run whatever the mix of modes in the batch: bump ``v`` acts on
    # every voxel of a global-mode sample and only on label ``v``'s voxels of an inside-mode sample. A batch known
    # (CPU parameters) to hold no inside-mode sample skips the label masks: each bump's weight is its table entry.
    masked = inside.device.type != "cpu" or bool(inside.any())
    inside = inside.to(device, non_blocking=True).view(-1, 1, 1, 1, 1)
    everywhere = ~inside
    bump = None
    for v in range(1, num):
        at = (..., v, None, None, None)  # (B, C) table column -> (B, C, 1, 1, 1)
        term = _gaussian_(torch.addcmul(offset[at], u, k[at]))
        weight = torch.where(everywhere | (lab == v), coef[at], 0.0) if masked else coef[at]
        if tracked(term):  # exp_ saved its output for the backward pass: no writes into it
            bump = term * weight if bump is None else bump + term * weight
        else:
            bump = term.mul_(weight) if bump is None else bump.addcmul_(term, weight)
    if bump is None:  # no foreground label value
        bump = torch.zeros_like(u)
    a_lo, a_hi = min_max(bump)
    a_range = a_hi - a_lo
    # AugLab adds 2 (A - min A) / range everywhere. In inside mode (A = 0 outside the labels) that shifts the outside
    # by a constant; dropping that constant (retain_stats removes it anyway) leaves the outside exactly unchanged.
    shift = torch.where(inside, 0.0, a_lo)
    # A flat A (range <= 1e-8) leaves u: dividing the finite 2 (A - shift) by an infinite range adds exactly 0, so
    # the per-sample choice costs no full-size where. In place on the bump (this function's own volume).
    scale = torch.where(a_range > 1e-8, a_range + 1e-6, math.inf)
    # Back in the input's units: (u + 2 (A - shift) / scale) * span + lo = x + A * g - shift * g with
    # g = 2 span / scale, one addcmul on x itself (not on u * span + lo, which is x only up to rounding). A sample
    # without a foreground value has A = 0 and an infinite scale (g = 0): it comes back exactly as x, no where.
    g = (2.0 * span / scale).to(xf.dtype)
    base = xf - shift.to(xf.dtype) * g  # shift * g is 0 where the sample is in inside mode (shift 0) or flat
    a = bump if bump.dtype == xf.dtype else bump.to(xf.dtype)
    if tracked(base, a):  # out= is not differentiable
        return torch.addcmul(base, a, g).to(x.dtype)
    return torch.addcmul(base, a, g, out=base).to(x.dtype)


def label_appearance(
    x: Tensor,
    lab: Tensor,
    num: int,
    mean: Tensor,
    std: Tensor,
    noise: Tensor,
    texture: Tensor,
    *,
    noise_std: float = 1.0,
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
        noise: Normal noise like ``x``, with mean 0 and standard deviation ``noise_std``.
        texture: Texture weights in [0, 1], (B,).
        noise_std: The standard deviation of ``noise`` (e.g. ``1 / sqrt(2)`` for
            :func:`~spineaug.functional.noise.scaled_normal_field`), folded into the per-label tables.

    Returns:
        Synthetic images, like ``x`` (float32 values cast back to ``x.dtype``).

    Cost: the centring (mean, subtraction), the region moments (three ``scatter_add`` and a square), then
    ``y = Q[l] + P[l] * x + R[l] * noise`` with per-label tables (``P = s w / sd``, ``Q = m - P mu``,
    ``R = s sqrt(1 - w^2) / noise_std``): three gathers and two ``addcmul``, no per-voxel z.
    """
    b, c = x.shape[:2]
    device = x.device
    xf = work(x)
    flat = lab.flatten(2).expand(b, c, -1)

    def pick(t: Tensor) -> Tensor:
        return torch.gather(t, 2, flat).view(xf.shape)

    w = texture.to(device, torch.float32, non_blocking=True).view(-1, 1, 1, 1, 1)
    # z is shift-invariant: centre each channel first, so the sum-of-squares moments do not cancel at large offsets
    # (raw CT at +1e5), and standardise by any positive std, however small (a region with std 0 has z = 0).
    # Centred in the work dtype (a float64 image keeps a tiny spread at a large offset), then float32 is enough.
    xf = (xf - xf.mean(dim=SPATIAL, keepdim=True)).float()
    count, total, total_sq = label_moments(xf, lab, num)
    mu_x, sd_x = moments_to_mean_std(count, total, total_sq)  # (B, C, num)
    m = mean.to(device, torch.float32, non_blocking=True)[:, None, :]
    s = std.to(device, torch.float32, non_blocking=True)[:, None, :]
    w = w.view(-1, 1, 1)
    inv = torch.where(sd_x > 0, 1.0 / sd_x.clamp_min(torch.finfo(torch.float32).tiny), 0.0)  # std 0: z = 0
    p_tab = (s * w * inv).expand(b, c, num).contiguous()
    q_tab = (m - p_tab * mu_x).expand(b, c, num).contiguous()
    r_tab = (s * torch.sqrt((1 - w.square()).clamp_min(0)) / noise_std).expand(b, c, num).contiguous()
    y = torch.addcmul(pick(q_tab), pick(p_tab), xf)
    y = y.addcmul_(pick(r_tab), noise.float()) if not tracked(y) else torch.addcmul(y, pick(r_tab), noise.float())
    return y.to(x.dtype)


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
