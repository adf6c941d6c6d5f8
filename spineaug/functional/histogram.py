"""Batched histogram operations: equalisation and quantiles, per sample and channel, without host synchronisation.

Images are ``(B, C, D, H, W)``; every sample and channel gets its own histogram or sort, computed for the whole batch
in one pass (no loop over the batch). Results are float32, float64 for float64 images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spineaug.functional.intensity import min_max, work


def equalize_histogram(x: Tensor, bins: int = 256, *, interpolate: bool = False, eps: float = 1e-8) -> Tensor:
    """Histogram-equalise each sample and channel on ``bins`` equal bins between its minimum and maximum.

    The counts of all rows come from one ``scatter_add`` along the bin dimension (a ``bincount`` whose output size
    is known, so it needs no device synchronisation); then a cumulative sum and a gather.

    The step lookup (``interpolate=False``, AugLab's) maps bin ``k`` to
    ``lo + span * (c_k - c_0) / (N - c_0)`` with ``c`` the cumulative counts, so the lowest bin collapses to ``lo``.
    The piecewise-linear lookup (``interpolate=True``) maps a value at position ``t`` in bin ``k`` to
    ``lo + span * (c_{k-1} + t * h_k) / N``: continuous, strictly follows the empirical CDF, and reaches
    exactly ``lo`` and ``hi``.

    Cost bound: one ``aminmax`` reduction (``amin`` and ``amax`` on the CPU), the bin index (one float and two int64 passes), one ``scatter_add`` and
    one ``gather``. Reference for the benchmark (``spineaug.bench.references``): ``aminmax``, bin index,
    ``scatter_add_`` histogram, ``cumsum``, ``gather``.

    Args:
        x: Images, (B, C, D, H, W).
        bins: Number of histogram bins.
        interpolate: Use the piecewise-linear lookup.
        eps: Guard for constant channels (which come back unchanged).

    Returns:
        Tensor like ``x`` (float32; float64 for float64 ``x``), monotone in ``x`` per channel and within the
        original ``[min, max]``.
    """
    b, c = x.shape[:2]
    rows = work(x).flatten(2).reshape(b * c, -1)
    n = rows.shape[1]
    lo, hi = (t.view(-1, 1) for t in min_max(rows.view(b * c, 1, n, 1, 1)))  # one aminmax off the CPU
    span = hi - lo
    scaled = (rows - lo).mul_(bins / span.clamp_min(eps))  # position in bins, [0, bins]
    k = scaled.long().clamp_(0, bins - 1)  # non-negative, so truncation is floor
    # Per-row histograms of known size (no synchronisation), scattered and read along the bin dimension, so no
    # flat index volume is built.
    counts = torch.zeros(b * c, bins, dtype=torch.int64, device=x.device)
    counts.scatter_add_(1, k, torch.ones((), dtype=torch.int64, device=x.device).expand_as(k))
    cum = counts.cumsum(dim=1).to(rows.dtype)
    if interpolate:
        t = scaled.sub_(k).clamp_(0.0, 1.0)  # position inside the bin
        below = torch.gather(cum - counts.to(rows.dtype), 1, k)
        height = torch.gather(counts.to(rows.dtype), 1, k)
        frac = below.addcmul_(t, height).div_(n).clamp_(0.0, 1.0)
    else:
        first = cum[:, :1]
        lut = ((cum - first) / (n - first + 1e-10)).clamp_(0.0, 1.0)
        frac = torch.gather(lut, 1, k)
    return torch.addcmul(lo, frac, span).view(x.shape)


def quantiles(x: Tensor, q: Tensor) -> Tensor:
    """Per-sample, per-channel quantiles with linear interpolation (``torch.quantile``'s default), batched.

    Exact order statistics, without a full sort when the levels sit near the ends: each level reads the two order
    statistics around its position, either among the ``k`` smallest values of each row (``topk``, sorted) or among
    the largest, ``k`` covering every level on that side over the whole batch (known on the host when ``q`` is a CPU
    tensor, as drawn parameters are: no device synchronisation). When the two sides together would cover half of the
    row or more (or ``q`` lives on the device), one sort of every row instead. Either way the values are the same
    order statistics as a sort's, and no loop over the batch.

    Args:
        x: Images, (B, C, D, H, W).
        q: Quantile levels in [0, 1], (B, K) (one set per sample, shared by its channels).

    Returns:
        (B, C, K) in :func:`~spineaug.functional.intensity.work_dtype` (float64 for float64 images).
    """
    b, c = x.shape[:2]
    rows = work(x).flatten(2)  # (B, C, N)
    n = rows.shape[2]
    pos = q.to(torch.float64).clamp(0.0, 1.0) * (n - 1)  # (B, K); exact positions
    below = pos.floor().long().clamp(0, n - 1)
    above = (below + 1).clamp_max(n - 1)
    frac = (pos - below.double()).to(x.device, rows.dtype, non_blocking=True)[:, None, :]
    index = torch.cat([below, above], dim=1)  # (B, 2K): both neighbours of every level
    k = index.shape[1]
    k_low = k_high = n
    if q.device.type == "cpu":  # the levels are known on the host
        low_side = index < n - 1 - index  # nearer the smallest values
        k_low = int(index[low_side].max()) + 1 if bool(low_side.any()) else 0
        k_high = n - int(index[~low_side].min()) if bool((~low_side).any()) else 0
    if 2 * (k_low + k_high) >= n:
        srt = rows.sort(dim=2).values
        both = srt.gather(2, index.to(x.device, non_blocking=True)[:, None, :].expand(b, c, k))
    else:
        both = torch.zeros(b, c, k, dtype=rows.dtype, device=rows.device)
        side = low_side.to(x.device, non_blocking=True)[:, None, :].expand(b, c, k)
        if k_low:
            smallest = rows.topk(k_low, dim=2, largest=False).values  # ascending: position t is order t
            i = index.clamp_max(k_low - 1).to(x.device, non_blocking=True)[:, None, :].expand(b, c, k)
            both = torch.where(side, smallest.gather(2, i), both)
        if k_high:
            largest = rows.topk(k_high, dim=2, largest=True).values  # descending: position t is order n - 1 - t
            i = (n - 1 - index).clamp(0, k_high - 1).to(x.device, non_blocking=True)[:, None, :].expand(b, c, k)
            both = torch.where(side, both, largest.gather(2, i))
    half = k // 2
    v0, v1 = both[..., :half], both[..., half:]
    return v0 + frac * (v1 - v0)


def percentile_clamp(x: Tensor, q_low: Tensor, q_high: Tensor) -> Tensor:
    """Clamp each sample and channel between its own ``q_low`` and ``q_high`` quantiles.

    Args:
        x: Images, (B, C, D, H, W).
        q_low: Lower quantile level per sample, (B,).
        q_high: Upper quantile level per sample, (B,); ``q_low = 0, q_high = 1`` is the identity.

    Returns:
        Float32 tensor like ``x``.
    """
    v = quantiles(x, torch.stack([q_low, q_high], dim=1))
    lo, hi = v[..., 0, None, None, None], v[..., 1, None, None, None]
    return torch.clamp(work(x), lo, hi)  # lo <= hi: maximum(minimum(x, hi), lo) in one pass
