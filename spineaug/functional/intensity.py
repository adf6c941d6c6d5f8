"""Batched intensity helpers shared by the intensity transforms (and the transforms' pure cores).

All functions take images ``(B, C, D, H, W)``, compute in float32 and return the input dtype; per-sample parameters
have a leading batch dimension. Nothing here synchronises with the host or modifies its inputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spineaug.functional import noise as FN

SPATIAL = (2, 3, 4)

REGION_ALL, REGION_INSIDE, REGION_OUTSIDE = 0, 1, 2


def per_sample(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a (B,) or (B, C) parameter to broadcast against ``x`` (B, C, D, H, W), on ``x``'s device, float32."""
    v = v.to(x.device, torch.float32, non_blocking=True)
    return v.reshape(v.shape[0], -1, 1, 1, 1) if v.ndim > 1 else v.view(-1, 1, 1, 1, 1)


def mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial mean and population std, float32, shaped (B, C, 1, 1, 1).

    Two-pass (mean, then the norm of ``x - mean``): exact enough for CT offsets, and on the CPU about ten times
    faster than ``torch.var_mean``'s Welford reduction (measured, 2 x 128^3).
    """
    x = x.float()
    n = math.prod(x.shape[2:])
    mean = x.mean(dim=SPATIAL, keepdim=True)
    std = torch.linalg.vector_norm(x - mean, dim=SPATIAL, keepdim=True) / math.sqrt(max(n, 1))
    return mean, std


def min_max(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial minimum and maximum, float32, shaped (B, C, 1, 1, 1).

    Two reductions: ``amin`` and ``amax`` are each about ten times faster than one ``aminmax`` on the CPU.
    """
    flat = x.float().flatten(2)
    return flat.amin(dim=2)[..., None, None, None], flat.amax(dim=2)[..., None, None, None]


def normalise01(x: Tensor, eps: float = 1e-8, *, flip: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Min-max normalise each sample and channel to [0, 1].

    Args:
        x: Images, (B, C, D, H, W).
        eps: Smallest span; constant channels give ``u = 0``.
        flip: Normalise the negated image instead (``u = (max - x) / span``), without materialising ``-x``.

    Returns:
        ``(u, offset, scale)`` with ``x = u * scale + offset``: ``(lo, span)``, or ``(hi, -span)`` with ``flip``.
        ``u`` is a fresh float32 tensor the caller may modify in place.
    """
    lo, hi = min_max(x)
    span = (hi - lo).clamp_min(eps)
    if flip:
        offset, scale = hi, -span
    else:
        offset, scale = lo, span
    # (x - offset) / scale, not x / scale - offset / scale: the minimum must map to exactly 0 (sqrt, log near 0).
    u = (x.float() - offset).mul_(1 / scale)
    return u.clamp_(0.0, 1.0), offset, scale


def restore_stats(y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Give ``y`` the per-sample, per-channel mean and std of ``x`` ("retain_stats"): ``y * a + b``, one pass.

    A channel of ``y`` that is (numerically) constant cannot be rescaled without blowing rounding noise up to full
    scale; such channels are flagged so the caller keeps ``x`` there (:func:`fall_back`).

    Returns:
        ``(out, degenerate)``: float32 ``out`` like ``y`` and a (B, C, 1, 1, 1) bool flag per channel.
    """
    m0, s0 = mean_std(x)
    m1, s1 = mean_std(y)
    degenerate = s1 < 1e-6 * (s0 + m0.abs()) + 1e-12
    a = s0 / s1.clamp_min(1e-12)
    return torch.addcmul(m0 - m1 * a, y.float(), a), degenerate


def blend(x: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    """Mix with the original: ``alpha * x + (1 - alpha) * y``; ``alpha`` (B,) weights the ORIGINAL. One pass."""
    return torch.lerp(y.float(), x.float(), per_sample(alpha, x)).to(x.dtype)


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


def non_finite(y: Tensor) -> Tensor:
    """Per sample, (B, 1, 1, 1, 1) bool: ``y`` holds a NaN or an Inf somewhere (one reduction pass, no sync).

    ``amin``/``amax`` propagate NaN and keep infinities, so two tiny ``isfinite`` calls replace a full-size one.
    """
    flat = y.flatten(1)
    return ~(torch.isfinite(flat.amin(dim=1)) & torch.isfinite(flat.amax(dim=1))).view(-1, 1, 1, 1, 1)


def fall_back(y: Tensor, x: Tensor, use_x: Tensor) -> Tensor:
    """``x`` where ``use_x`` (broadcast per sample or channel) is set, ``y`` elsewhere; dtype of ``x``."""
    return torch.where(use_x, x, y.to(x.dtype))


def invert(x: Tensor, *, about_mean: bool) -> Tensor:
    """Invert intensities per sample and channel.

    Args:
        x: Images, (B, C, D, H, W).
        about_mean: Reflect about the mean (``2 * mean - x``, keeps mean and std) instead of subtracting from the
            maximum (``max - x``).

    Returns:
        Float32 tensor like ``x``.
    """
    xf = x.float()
    if about_mean:
        return 2.0 * xf.mean(dim=SPATIAL, keepdim=True) - xf
    return xf.flatten(2).amax(dim=2)[..., None, None, None] - xf


def multiply(x: Tensor, factor: Tensor) -> Tensor:
    """Scale intensities by a per-sample (B,) or per-channel (B, C) factor."""
    return x.float() * per_sample(factor, x)


def adjust_contrast(x: Tensor, factor: Tensor, *, preserve_range: bool) -> Tensor:
    """Stretch intensities about each sample's mean: ``(x - mean) * factor + mean``.

    Args:
        x: Images, (B, C, D, H, W).
        factor: (B,) or (B, C); 1 leaves a sample unchanged.
        preserve_range: Clamp each channel to its original minimum and maximum (nnU-Net).

    Returns:
        Float32 tensor like ``x``.
    """
    xf = x.float()
    mean = xf.mean(dim=SPATIAL, keepdim=True)
    y = (xf - mean) * per_sample(factor, x) + mean
    if preserve_range:
        lo, hi = min_max(xf)
        y = torch.maximum(torch.minimum(y, hi), lo)
    return y


def zscore(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Normalise each sample and channel to zero mean and unit (population) std; constant channels become 0."""
    mean, std = mean_std(x)
    return (x.float() - mean) / std.clamp_min(eps)


def add_gaussian_noise(x: Tensor, sigma: Tensor, seeds: Tensor, *, mean: float = 0.0, rician: bool = False) -> Tensor:
    """Add voxelwise Gaussian (or Rician) noise with a per-sample standard deviation.

    Each sample's noise field is generated on ``x``'s device from its own seed (:func:`~spineaug.functional.noise.
    normal_field`), so it is never stored, depends on nothing but that seed, and the global RNG is untouched.

    Args:
        x: Images, (B, C, D, H, W).
        sigma: Noise standard deviation, (B,) or (B, C); 0 adds nothing.
        seeds: One seed per sample, (B,) int64 (CPU or on ``x``'s device).
        mean: Constant added with the noise (``x + mean + sigma * eps``); Gaussian only.
        rician: Rician noise instead: the magnitude ``|x - min + sigma * (eps1 + i * eps2)| + min`` of a complex
            signal, computed above each sample's minimum so it is defined for signed (z-scored) data.

    Returns:
        Float32 tensor like ``x``.
    """
    s = per_sample(sigma, x)
    xf = x.float()
    seeds = seeds.to(x.device, non_blocking=True)
    if not rician:
        return xf + mean + s * FN.normal_field(seeds, tuple(x.shape[1:]))
    eps = FN.normal_field(seeds, (2, *x.shape[1:]))
    lo, _ = min_max(xf)
    real = xf - lo + s * eps[:, 0]
    return torch.sqrt(real.square() + (s * eps[:, 1]).square()) + lo


INTENSITY_FUNCTIONS = ("log1p", "sqrt", "sin", "exp", "sigmoid")
"""Names accepted by :func:`apply_intensity_function`, in index order."""


_FUNCTIONS = {
    "log1p": (torch.log1p, math.log1p),
    "sqrt": (torch.sqrt, math.sqrt),
    "sin": (torch.sin, math.sin),
    "exp": (torch.exp, math.exp),
    "sigmoid": (torch.sigmoid, lambda v: 1.0 / (1.0 + math.exp(-v))),
}


def apply_intensity_function(x: Tensor, which: Tensor, names: tuple[str, ...], present: tuple[int, ...]) -> Tensor:
    """Remap min-max normalised intensities through one of several increasing functions, chosen per sample.

    Each sample and channel is normalised to ``u`` in [0, 1] (so log/sqrt never see negatives and exp stays
    bounded), mapped through ``f``, and stretched back to its original range:
    ``lo + span * (f(u) - f(0)) / (f(1) - f(0))``.

    Args:
        x: Images, (B, C, D, H, W).
        which: (B,) long: index into ``names`` of each sample's function.
        names: Function names, each one of :data:`INTENSITY_FUNCTIONS`.
        present: The indices that occur in ``which`` (known on the host); only those functions are evaluated.

    Returns:
        Float32 tensor like ``x``; each channel keeps its minimum and maximum.
    """
    u, lo, span = normalise01(x)
    which = which.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1)
    y = u
    for n, i in enumerate(present):
        if names[i] not in _FUNCTIONS:
            raise ValueError(f"unknown intensity function {names[i]!r}; known: {list(INTENSITY_FUNCTIONS)}")
        f, f_scalar = _FUNCTIONS[names[i]]
        f0, f1 = f_scalar(0.0), f_scalar(1.0)
        # f(u) in place when no other function needs u; the affine map back to the input range is one addcmul.
        fu = getattr(u, f"{f.__name__}_")() if n == len(present) - 1 else f(u)
        k = span / (f1 - f0)
        fu = torch.addcmul(lo - f0 * k, fu, k)
        y = fu if len(present) == 1 else torch.where(which == i, fu, y)
    if not present:
        y = y * span + lo
    return y


def monomial_exponents(order: int) -> list[tuple[int, int, int]]:
    """All exponent triples ``(k, j, i)`` (powers of the D, H, W coordinates) with ``i + j + k <= order``."""
    return [(k, j, i) for k in range(order + 1) for j in range(order + 1 - k) for i in range(order + 1 - k - j)]


def polynomial_field(
    coefficients: Tensor, shape: tuple[int, int, int], order: int, device: torch.device | str | None = None
) -> Tensor:
    """Evaluate per-sample 3-D polynomials on a ``linspace(-1, 1)`` grid along each axis.

    ``P_b(z, y, x) = sum c[b, t] * z^k * y^j * x^i`` over the monomials of :func:`monomial_exponents`, computed with
    one ``einsum`` over 1-D Vandermonde vectors (no full volume per monomial).

    Args:
        coefficients: (B, T) with ``T = len(monomial_exponents(order))``; typically CPU parameters.
        shape: (D, H, W).
        order: Polynomial order.
        device: Where to evaluate the field; defaults to the coefficients' device. The small coefficient tensor is
            arranged where it lives and copied once (no host synchronisation).

    Returns:
        (B, D, H, W) float32.
    """
    device = coefficients.device if device is None else torch.device(device)
    exps = monomial_exponents(order)
    if coefficients.shape[-1] != len(exps):
        raise ValueError(f"order {order} needs {len(exps)} coefficients, got {coefficients.shape[-1]}")
    dense = torch.zeros(coefficients.shape[0], order + 1, order + 1, order + 1, device=coefficients.device)
    k, j, i = (torch.tensor(e, device=coefficients.device) for e in zip(*exps))
    dense[:, k, j, i] = coefficients.float()
    dense = dense.to(device, non_blocking=True)
    powers = torch.arange(order + 1, device=device, dtype=torch.float32)
    vz, vy, vx = (torch.linspace(-1.0, 1.0, n, device=device)[:, None].pow(powers) for n in shape)
    return torch.einsum("bkji,dk,hj,wi->bdhw", dense, vz, vy, vx)


def apply_bias_field(x: Tensor, log_field: Tensor, *, signed: bool = False, max_log: float = 30.0) -> Tensor:
    """Multiply by a smooth gain field ``exp(log_field)``.

    Args:
        x: Images, (B, C, D, H, W).
        log_field: Log-gain, (B, D, H, W) (shared by the channels of a sample); clamped to ``[-max_log, max_log]``.
        signed: Multiply the raw (possibly negative) intensities, as AugLab does. By default the gain acts on
            ``x - min`` and the minimum is added back, so dark voxels never get darker where the gain is above 1.
        max_log: Bound on the log-gain, so ``exp`` cannot overflow.

    Returns:
        Float32 tensor like ``x``.
    """
    gain = torch.exp(log_field.float().clamp(-max_log, max_log))[:, None]
    xf = x.float()
    if signed:
        return xf * gain
    lo, _ = min_max(xf)
    return (xf - lo) * gain + lo
