"""Batched intensity helpers shared by the intensity transforms (and the transforms' pure cores).

All functions take images ``(B, C, D, H, W)`` and compute in :func:`work_dtype` (float64 for float64 images, float32
otherwise, so a float64 image with a large offset and a tiny spread keeps its spread); per-sample parameters have a
leading batch dimension. Nothing here synchronises with the host or modifies its inputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spineaug.functional import noise as FN

SPATIAL = (2, 3, 4)

REGION_ALL, REGION_INSIDE, REGION_OUTSIDE = 0, 1, 2


def work_dtype(x: Tensor) -> torch.dtype:
    """The precision the intensity helpers compute ``x`` in: float64 for float64 images, float32 for the others."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def work(x: Tensor) -> Tensor:
    """``x`` in :func:`work_dtype` (no copy when it already is)."""
    return x.to(work_dtype(x))


def tracked(*tensors: Tensor) -> bool:
    """Whether autograd records operations on ``tensors``: then nothing is written in place or through ``out=``
    (``out=`` is not differentiable, and an in-place write can clobber a tensor saved for the backward pass)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def per_sample(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a (B,) or (B, C) parameter to broadcast against ``x`` (B, C, D, H, W), on ``x``'s device, in
    :func:`work_dtype`."""
    v = v.to(x.device, work_dtype(x), non_blocking=True)
    return v.reshape(v.shape[0], -1, 1, 1, 1) if v.ndim > 1 else v.view(-1, 1, 1, 1, 1)


FUSED_REDUCTIONS: bool | None = None
"""Which reductions :func:`mean_std` and :func:`min_max` use: ``None`` (default) by device, one-pass ``var_mean`` and
``aminmax`` off the CPU (memory-bound: one read each), two plain reductions each on the CPU, where those two kernels
are about ten times slower than the plain ones (2 x 128^3, one thread: ``var_mean`` ~24 ms vs ~2 ms for mean, deviation
and norm; ``aminmax`` ~10 ms vs ~1 ms for ``amin`` + ``amax``). ``True``/``False`` force one form everywhere: for
counting the GPU path's passes on the CPU (``tools/pass_diff.py``) and for tests of both forms."""


def fused_reductions(x: Tensor) -> bool:
    """Whether statistics of ``x`` use the one-pass reductions (see :data:`FUSED_REDUCTIONS`)."""
    return x.device.type != "cpu" if FUSED_REDUCTIONS is None else FUSED_REDUCTIONS


def mean_std(x: Tensor, *, scratch: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial mean and population std in :func:`work_dtype`, shaped (B, C, 1, 1, 1).

    Off the CPU one pass (``torch.var_mean``, Welford's update: a constant channel gives exactly its value and a std
    of exactly 0); on the CPU two-pass (mean, then the norm of ``x - mean``), which is faster there. Either way the
    spread is measured about the mean, so it stays exact under large offsets (CT with +1e5). A NaN or an Inf in a
    channel makes its std non-finite (and its mean, unless the mean overflows to a matching infinity), which callers
    use as their NaN/Inf check.

    Args:
        x: Images, (B, C, D, H, W).
        scratch: For the CPU's two-pass form: a tensor like ``x`` in :func:`work_dtype` that receives ``x - mean``
            (overwritten), so a caller taking several statistics allocates that full-size intermediate once (a fresh
            allocation costs about a pass on the CPU); by default a fresh one.
    """
    xf = work(x)
    if fused_reductions(xf):
        var, mean = torch.var_mean(xf, dim=SPATIAL, keepdim=True, correction=0)
        return mean, var.sqrt()
    mean = xf.mean(dim=SPATIAL, keepdim=True)
    n = math.prod(xf.shape[2:])
    deviation = xf - mean if scratch is None else torch.sub(xf, mean, out=scratch)
    std = torch.linalg.vector_norm(deviation, dim=SPATIAL, keepdim=True) / math.sqrt(max(n, 1))
    return mean, std


def stats_scratch(x: Tensor) -> Tensor | None:
    """A reusable ``scratch`` for :func:`mean_std` on ``x``: a buffer on the CPU (two-pass form), else ``None``."""
    if fused_reductions(x) or tracked(x):
        return None
    return torch.empty(x.shape, dtype=work_dtype(x), device=x.device)


def safe_mean(x: Tensor) -> Tensor:
    """Per-sample, per-channel spatial mean in :func:`work_dtype`, (B, C, 1, 1, 1), that cannot overflow.

    A plain float32 sum overflows for values near the float32 maximum (3.4e38). The values are divided by a power of
    two near each channel's largest magnitude (exact), averaged, and multiplied back; the mean lies within the
    channel's range, so it is finite whenever the input is.
    """
    xf = work(x)
    lo, hi = min_max(xf)
    big = torch.maximum(lo.abs(), hi.abs()).clamp_min(torch.finfo(xf.dtype).tiny)
    scale = torch.exp2(torch.ceil(torch.log2(big)) - 1)  # |x| / scale <= 2; 2**127 at most for float32
    return (xf / scale).mean(dim=SPATIAL, keepdim=True) * scale


def min_max(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel spatial minimum and maximum in :func:`work_dtype`, shaped (B, C, 1, 1, 1).

    Off the CPU one pass (``aminmax``); on the CPU ``amin`` and ``amax``, each about ten times faster there than one
    ``aminmax`` (see :data:`FUSED_REDUCTIONS`).
    """
    flat = work(x).flatten(2)
    if fused_reductions(flat):
        lo, hi = torch.aminmax(flat, dim=2)
    else:
        lo, hi = flat.amin(dim=2), flat.amax(dim=2)
    return lo[..., None, None, None], hi[..., None, None, None]


def normalise01(x: Tensor, *, flip: bool = False, clamp: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Min-max normalise each sample and channel to [0, 1].

    Any positive span counts, however small next to the offset (a float64 CT channel at +1e5 with a spread of 1e-6
    is not constant); only a span of exactly 0 is "constant" and gives ``u = 0``.

    Args:
        x: Images, (B, C, D, H, W).
        flip: Normalise the negated image instead (``u = (max - x) / span``), without materialising ``-x``.
        clamp: Clamp ``u`` to [0, 1] (one more pass). ``u >= 0`` holds without it; the maximum may map an ulp above
            1 (the product with ``1 / span`` rounds).

    Returns:
        ``(u, offset, scale)`` with ``x = u * scale + offset``: ``(lo, span)``, or ``(hi, -span)`` with ``flip``.
        ``u`` is a fresh tensor in :func:`work_dtype` that the caller may modify in place.
    """
    lo, hi = min_max(x)
    span = (hi - lo).clamp_min(torch.finfo(lo.dtype).tiny)  # 1 / span stays finite; constant channels give u = 0
    if flip:
        offset, scale = hi, -span
    else:
        offset, scale = lo, span
    # (x - offset) / scale, not x / scale - offset / scale: the minimum must map to exactly 0 (sqrt, log near 0).
    u = (work(x) - offset).mul_(1 / scale)
    return (u.clamp_(0.0, 1.0) if clamp else u), offset, scale


def restore_stats(
    y: Tensor, x: Tensor, *, x_stats: tuple[Tensor, Tensor] | None = None, inplace: bool = False
) -> tuple[Tensor, Tensor]:
    """Give ``y`` the per-sample, per-channel mean and std of ``x`` ("retain_stats"): ``y * a + b``, one pass.

    ``(y - mean_y) * std_x / std_y + mean_x``.

    A channel of ``y`` whose spread collapsed cannot be rescaled without blowing rounding noise up to full scale;
    such channels are flagged so the caller keeps ``x`` there (:func:`fall_back`). Collapsed means: exactly 0, or
    both below ``1e-6`` of the spread of ``x`` and within rounding error (64 ulps) of ``y``'s own values. Both
    thresholds are on spreads, never on ``|mean|`` alone, so they hold at any scale (1e-6 ... 1e7) and under any
    offset. The same statistics replace a separate NaN/Inf check: a NaN or Inf in ``y`` makes its mean or std
    non-finite, and the result ``|y * a + b| <= |mean_x| + sqrt(n) std_x`` cannot overflow when that bound is finite;
    channels that fail either are flagged too. The statistics are :func:`mean_std` (one ``var_mean`` pass off the CPU),
    compared and divided in float64; the rescale is one fused ``addcmul``.

    Args:
        y: The transformed images, like ``x``.
        x: The original images.
        x_stats: ``mean_std(x)`` when the caller already has it.
        inplace: Write the result into ``y`` (a fresh intermediate of the caller's, in :func:`work_dtype` of ``x``).

    Returns:
        ``(out, use_x)``: ``out`` like ``y`` in :func:`work_dtype` of ``x``, and a (B, C, 1, 1, 1) bool flag per
        channel: keep ``x`` there (collapsed, NaN/Inf, or out of range). Flagged channels of ``out`` hold garbage.
    """
    dtype = work_dtype(x)
    yw = work(y)
    scratch = stats_scratch(x)
    m0, s0 = (t.double() for t in (mean_std(x, scratch=scratch) if x_stats is None else x_stats))
    m1, s1 = (t.double() for t in mean_std(yw, scratch=scratch if yw.dtype == dtype else None))
    rounding = 64 * torch.finfo(yw.dtype).eps * (m1.abs() + s1)
    degenerate = ((s1 <= 1e-6 * s0) & (s1 <= rounding)) | (s1 == 0)
    bound = m0.abs() + s0 * math.sqrt(max(math.prod(x.shape[2:]), 1))
    ok = torch.isfinite(m1) & torch.isfinite(s1) & (bound <= torch.finfo(dtype).max / 2)
    use_x = degenerate | ~ok
    a = torch.where(use_x, 0.0, s0 / torch.where(use_x, 1.0, s1))
    b = torch.where(use_x, 0.0, m0 - m1 * a)
    a, b = a.to(dtype), b.to(dtype)
    if inplace and yw.dtype == dtype and not tracked(yw):
        return torch.addcmul(b, yw, a, out=yw), use_x
    return torch.addcmul(b, yw.to(dtype), a), use_x


def restore_unit_stats(
    f: Tensor, u_stats: tuple[Tensor, Tensor], offset: Tensor, scale: Tensor, *, scratch: Tensor | None = None
) -> Tensor:
    """``retain_stats`` in closed form for a map of min-max normalised intensities, with no fallback pass.

    ``u = (x - offset) / scale`` (:func:`normalise01`, so ``x``'s mean and std are ``offset + scale * mean_u`` and
    ``|scale| * std_u``, from the statistics of ``u``, which cannot overflow), ``f`` a map of ``u`` that is finite
    on [0, 1] and whose result ``offset + scale * f`` the transform would return. The result gets the mean and
    std of ``x``: ``(f - mean_f) * scale * std_u / std_f + mean_x``, one ``addcmul`` in place into ``f`` (fresh
    under autograd). Where ``f``'s spread collapsed (a constant channel: ``u = 0``) the result is the mean of ``x``,
    which is ``offset``, the channel's value, exactly; a channel whose range overflows the dtype comes back as
    ``offset`` (constant and finite).

    Args:
        f: The mapped intensities, (B, C, D, H, W) in :func:`work_dtype`.
        u_stats: ``mean_std(u)``.
        offset: (B, C, 1, 1, 1) from :func:`normalise01`.
        scale: (B, C, 1, 1, 1) from :func:`normalise01` (negative with ``flip``).
        scratch: Passed to :func:`mean_std` (:func:`stats_scratch`).
    """
    m_u, s_u = (t.double() for t in u_stats)
    m_f, s_f = (t.double() for t in mean_std(f, scratch=scratch))
    off, sc = offset.double(), scale.double()
    rounding = 64 * torch.finfo(f.dtype).eps * (m_f.abs() + s_f)
    s_x = sc.abs() * s_u
    degenerate = ((s_f <= 1e-6 * s_x) & (s_f <= rounding)) | (s_f == 0)
    ok = torch.isfinite(sc) & torch.isfinite(m_f) & torch.isfinite(s_f) & torch.isfinite(m_u) & torch.isfinite(s_u)
    use_mean = degenerate | ~ok
    a = torch.where(use_mean, 0.0, sc * s_u / torch.where(use_mean, 1.0, s_f))
    b = torch.where(ok, off + sc * m_u - m_f * a, off)
    a, b = a.to(f.dtype), b.to(f.dtype)
    return torch.addcmul(b, f, a) if tracked(f) else torch.addcmul(b, f, a, out=f)


def blend(x: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    """Mix with the original: ``alpha * x + (1 - alpha) * y``; ``alpha`` (B,) weights the ORIGINAL. One pass."""
    return torch.lerp(work(y).to(work_dtype(x)), work(x), per_sample(alpha, x)).to(x.dtype)


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


def restrict_to_region(x: Tensor, y: Tensor, mask: Tensor, mode: Tensor, *, inplace: bool = False) -> Tensor:
    """Keep ``y`` only inside (mode 1) or outside (mode 2) the region ``mask``; mode 0 keeps it everywhere.

    Args:
        x: Original images, (B, C, D, H, W).
        y: Transformed images, like ``x``.
        mask: Region, (B, 1, D, H, W) bool.
        mode: (B,) int: 0 all, 1 inside, 2 outside.
        inplace: Write the result into ``y`` (a fresh intermediate of the caller's that holds the promoted dtype of
            ``x`` and ``y``) instead of a new tensor.
    """
    mode = mode.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1)
    use = (mode == REGION_ALL) | ((mode == REGION_INSIDE) & mask) | ((mode == REGION_OUTSIDE) & ~mask)
    return torch.where(use, y, x, out=y) if inplace else torch.where(use, y, x)


def non_finite(y: Tensor) -> Tensor:
    """Per sample, (B, 1, 1, 1, 1) bool: ``y`` holds a NaN or an Inf somewhere (one reduction pass, no sync).

    A sum is NaN or infinite when a term is; it can also overflow on finite values near the dtype's maximum, which
    then count as non-finite too (the caller keeps the input there: still finite). 16-bit images are summed in
    float32 (a float16 sum of a few thousand voxels of 100 would overflow).
    """
    acc = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
    return ~torch.isfinite(y.flatten(1).sum(dim=1, dtype=acc)).view(-1, 1, 1, 1, 1)


def fall_back(y: Tensor, x: Tensor, use_x: Tensor, *, inplace: bool = False) -> Tensor:
    """``x`` where ``use_x`` (broadcast per sample or channel) is set, ``y`` elsewhere; dtype of ``x``.

    With ``inplace``, ``y`` (a fresh intermediate of the caller's, in ``x``'s dtype and shape) receives the result,
    which saves allocating a full-size output.
    """
    if inplace:
        return torch.where(use_x, x, y, out=y)
    return torch.where(use_x, x, y.to(x.dtype))


def invert(x: Tensor, *, about_mean: bool) -> Tensor:
    """Invert intensities per sample and channel.

    Args:
        x: Images, (B, C, D, H, W).
        about_mean: Reflect about the mean (``2 * mean - x``, keeps mean and std) instead of subtracting from the
            maximum (``max - x``).

    Returns:
        Tensor like ``x`` in :func:`work_dtype`.
    """
    xf = work(x)
    if about_mean:
        return 2.0 * xf.mean(dim=SPATIAL, keepdim=True) - xf
    return xf.flatten(2).amax(dim=2)[..., None, None, None] - xf


def multiply(x: Tensor, factor: Tensor) -> Tensor:
    """Scale intensities by a per-sample (B,) or per-channel (B, C) positive factor; a sample that would hold a
    NaN or an Inf afterwards is returned unchanged (factor 1), so the result is finite for a finite ``x``.

    The product of the channel's largest magnitude decides it, exactly: rounding is monotone, so no voxel's product
    exceeds that one's, and a NaN or Inf in ``x`` makes it non-finite too. The fallback thus costs the two read-only
    reductions of :func:`min_max` and is folded into the one multiply pass (``x * 1`` is ``x``, bit for bit),
    instead of a check of the result and a ``where`` pass.

    Returns:
        Tensor like ``x`` in :func:`work_dtype`.
    """
    xf = work(x)
    f = per_sample(factor, x)
    lo, hi = min_max(xf)
    overflows = ~torch.isfinite(torch.maximum(lo.abs(), hi.abs()) * f)  # (B, C, 1, 1, 1)
    keep = overflows.flatten(1).any(dim=1).view(-1, 1, 1, 1, 1)  # per sample, as the pipeline's fallback
    return xf * torch.where(keep, torch.ones((), dtype=f.dtype, device=f.device), f)


def adjust_contrast(x: Tensor, factor: Tensor, *, preserve_range: bool) -> Tensor:
    """Stretch intensities about each sample's mean: ``(x - mean) * factor + mean``.

    With ``preserve_range`` (nnU-Net's mode) three passes after the mean, nnU-Net's float operations (a fused
    ``lerp`` or ``addcmul`` rounds differently), then the clamp; without it one pass, ``lerp(mean, x, factor)``,
    which forms ``x - mean`` before scaling it (exact under large offsets; within an ulp of the three-pass form).

    Args:
        x: Images, (B, C, D, H, W).
        factor: (B,) or (B, C); 1 leaves a sample unchanged.
        preserve_range: Clamp each channel to its original minimum and maximum (nnU-Net).

    Returns:
        Tensor like ``x`` in :func:`work_dtype`.
    """
    xf = work(x)
    mean = xf.mean(dim=SPATIAL, keepdim=True)
    if not preserve_range:
        return torch.lerp(mean, xf, per_sample(factor, x))
    y = torch.sub(xf, mean).mul_(per_sample(factor, x)).add_(mean)  # one allocation, the rounding of the plain form
    if preserve_range:
        lo, hi = min_max(xf)
        y = y.clamp(lo, hi) if tracked(y) else y.clamp_(lo, hi)  # lo <= hi: maximum(minimum(y, hi), lo), one pass
    return y


def zscore(x: Tensor) -> Tensor:
    """Normalise each sample and channel to zero mean and unit (population) std; constant channels become 0.

    Any spread counts, however small (a channel at 1e-9 scale, or 0.1 around 1e5, is standardised too). A constant
    channel gives 0: its one-pass std (:func:`mean_std`) is exactly 0; with the CPU's two-pass std, which can be
    rounding error of the mean, the channel's minimum and maximum are compared too. On the CPU the statistics'
    deviation ``x - mean`` is the result's start (one pass, the scale in place, after mean, deviation, norm, minimum
    and maximum); off it, or under autograd, two passes after the statistics (``x - mean``, then the scale). The
    result is finite for finite ``x`` (``|z| <= sqrt(n)``; a channel whose variance overflows the dtype gets scale 0).

    Returns:
        Tensor like ``x`` in :func:`work_dtype`.
    """
    scratch = stats_scratch(x)  # CPU: receives x - mean, which is also the result before scaling
    mean, std = mean_std(x, scratch=scratch)
    constant = std == 0
    if not fused_reductions(x):
        lo, hi = min_max(x)
        constant |= hi == lo
    scale = torch.where(constant, 0.0, 1.0 / std.clamp_min(torch.finfo(std.dtype).tiny))
    deviation = work(x) - mean if scratch is None else scratch
    return deviation * scale if tracked(deviation) else deviation.mul_(scale)


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
        Tensor like ``x`` in :func:`work_dtype` (the float32 noise field is added in float64 to float64 images).
    """
    s = per_sample(sigma, x)
    xf = work(x)
    seeds = seeds.to(x.device, non_blocking=True)
    if not rician:
        field = FN.scaled_normal_field(seeds, tuple(x.shape[1:]))  # std 1 / sqrt(2): sigma * sqrt(2) scales it
        s = s * math.sqrt(2.0)
        # x + sigma * eps in one pass, into the fresh field when it has the working dtype; (x + mean) + noise
        # when mean is not 0.
        base = xf + mean if mean else xf
        if field.dtype == xf.dtype and not tracked(xf, s):
            return torch.addcmul(base, field, s, out=field)
        return torch.addcmul(base, field, s)
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


def apply_intensity_function(
    x: Tensor, which: Tensor, names: tuple[str, ...], present: tuple[int, ...], *, retain_stats: bool = False
) -> Tensor:
    """Remap min-max normalised intensities through one of several increasing functions, chosen per sample.

    Each sample and channel is normalised to ``u`` in [0, 1] (so log/sqrt never see negatives and exp stays
    bounded), mapped through ``f``, and stretched back to its original range:
    ``lo + span * (f(u) - f(0)) / (f(1) - f(0))``.

    Args:
        x: Images, (B, C, D, H, W).
        which: (B,) long: index into ``names`` of each sample's function.
        names: Function names, each one of :data:`INTENSITY_FUNCTIONS`.
        present: The indices that occur in ``which`` (known on the host); only those functions are evaluated.
        retain_stats: Return the result with each channel's mean and std instead of its range
            (:func:`restore_unit_stats`): ``u`` is not clamped and ``f(u)`` not stretched back.

    Returns:
        Tensor like ``x`` in :func:`work_dtype`; each channel keeps its minimum and maximum (with ``retain_stats``:
        its mean and std).
    """
    unscaled = retain_stats
    u, lo, span = normalise01(x, clamp=not unscaled)
    scratch = stats_scratch(u) if retain_stats else None
    u_stats = mean_std(u, scratch=scratch) if retain_stats else None
    which = which.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1)
    y = u
    for n, i in enumerate(present):
        if names[i] not in _FUNCTIONS:
            raise ValueError(f"unknown intensity function {names[i]!r}; known: {list(INTENSITY_FUNCTIONS)}")
        f, f_scalar = _FUNCTIONS[names[i]]
        f0, f1 = f_scalar(0.0), f_scalar(1.0)
        # f(u) in place when no other function needs u; the affine map back to the input range is one addcmul.
        fu = getattr(u, f"{f.__name__}_")() if n == len(present) - 1 and not tracked(u) else f(u)
        if not unscaled:
            k = span / (f1 - f0)
            fu = torch.addcmul(lo - f0 * k, fu, k) if tracked(fu) else torch.addcmul(lo - f0 * k, fu, k, out=fu)
        y = fu if len(present) == 1 else torch.where(which == i, fu, y)
    if retain_stats:
        return restore_unit_stats(y if present else u.clone(), u_stats, lo, span, scratch=scratch)
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


def apply_bias_field(
    x: Tensor, log_field: Tensor, *, signed: bool = False, max_log: float = 30.0, bounded: bool = False,
    fresh: bool = False,
) -> Tensor:
    """Multiply by a smooth gain field ``exp(log_field)``.

    Args:
        x: Images, (B, C, D, H, W).
        log_field: Log-gain, (B, D, H, W) (shared by the channels of a sample); clamped to ``[-max_log, max_log]``.
        signed: Multiply the raw (possibly negative) intensities, as AugLab does. By default the gain acts on
            ``x - min`` and the minimum is added back, so dark voxels never get darker where the gain is above 1.
        max_log: Bound on the log-gain, so ``exp`` cannot overflow.
        bounded: The caller knows ``|log_field| <= max_log`` already (e.g. from the polynomial's coefficients):
            no clamp pass.
        fresh: ``log_field`` is a float32 intermediate of the caller's that may be overwritten: the gain is
            computed in place in it (no full-size allocation).

    Returns:
        Tensor like ``x`` in :func:`work_dtype`.
    """
    log_field = log_field.float()
    if not bounded:
        log_field = log_field.clamp(-max_log, max_log)  # a fresh tensor
    own = (fresh or not bounded) and not tracked(log_field)
    gain = (log_field.exp_() if own else torch.exp(log_field))[:, None]  # in place: no full-size allocation
    xf = work(x)
    if signed:
        return xf * gain.to(xf.dtype)
    lo, _ = min_max(xf)
    y = xf - lo
    if tracked(y, gain):
        return y * gain.to(xf.dtype) + lo
    return y.mul_(gain.to(xf.dtype)).add_(lo)  # the rounding of the plain form, in the one fresh tensor
