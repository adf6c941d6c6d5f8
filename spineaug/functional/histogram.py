"""Batched histogram operations: equalisation and quantiles, per sample and channel, without host synchronisation.

Images are ``(B, C, D, H, W)``; every sample and channel gets its own histogram or sort, computed for the whole batch
in one pass (no loop over the batch). Results are float32, float64 for float64 images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spineaug.functional.intensity import min_max, tracked, work


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


_DIGIT = 16
"""Bits the radix select resolves per round: 2 rounds for float32 keys, 4 for float64."""
_BINS = 1 << _DIGIT
_SORT_BELOW = 0.25
"""Rows with fewer values than this fraction of their radix-select counts (``(2K + 1) * 65536``) take
:func:`_select_short` (``topk`` or a sort) instead: faster there (measured crossover near 2 x 40^3 for K = 2, one
thread), and the counts would outweigh the image."""


def _keys(rows: Tensor) -> Tensor:
    """Signed integer keys (int32 for float32, int64 for float64) that order like the floats, every NaN last.

    The bit pattern, with the non-sign bits of negative floats flipped (``-0.0`` sorts just below ``+0.0``), then
    shifted down by the mantissa mask with wrap-around, which moves the NaNs with the sign bit set (x86's default
    NaN) from below ``-inf`` to above the positive NaNs: ``-inf`` becomes the smallest key. A bijection of the bit
    patterns, so a key maps back to the exact value (:func:`_values`). Four integer passes.
    """
    width = rows.element_size() * 8
    bits = rows.view(torch.int32 if width == 32 else torch.int64)
    key = bits >> (width - 1)  # 0 or -1
    key &= (1 << (width - 1)) - 1
    key ^= bits
    key -= (1 << (23 if width == 32 else 52)) - 1
    return key


def _values(key: Tensor, dtype: torch.dtype) -> Tensor:
    """Inverse of :func:`_keys` on int64 ``key`` values in the key's signed range."""
    width = 32 if dtype == torch.float32 else 64
    key = key + ((1 << (23 if width == 32 else 52)) - 1)
    if width == 32:  # wrap to int32 in int64 arithmetic
        key = ((key + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        key = key.to(torch.int32)
    return (key ^ ((key >> (width - 1)) & ((1 << (width - 1)) - 1))).view(dtype)


def _find_bin(counts: Tensor, start: Tensor, rank: Tensor) -> tuple[Tensor, Tensor]:
    """For each rank, the bin of its 65536-bin histogram (``counts[row, start:start + 65536]``) that holds the
    element of rank ``rank`` (0-based, counted in that histogram), and the count in the bins before it.

    Two levels of 256 so that only one reduction reads every count: 256 block sums per histogram, the block on
    their cumulative sum, then the bin among that block's 256 counts (``searchsorted``: first cumulative count above
    the rank).
    """
    r_count = counts.shape[0]
    side = 1 << (_DIGIT // 2)
    span = torch.arange(side, device=counts.device)
    blocks = counts.reshape(r_count, -1, side).sum(2, dtype=counts.dtype)  # (R, bins / 256): no int64 copy
    block_counts = blocks.gather(1, (start[..., None] // side + span).flatten(1)).view(*rank.shape, side)
    block_cum = block_counts.cumsum(2, dtype=torch.int64)
    block = torch.searchsorted(block_cum, rank[..., None].contiguous(), right=True)
    below = (block_cum.gather(2, block) - block_counts.gather(2, block)).squeeze(2)
    bin_counts = counts.gather(1, (start[..., None] + block * side + span).flatten(1)).view(*rank.shape, side)
    bin_cum = bin_counts.cumsum(2, dtype=torch.int64)
    inner = torch.searchsorted(bin_cum, (rank - below)[..., None], right=True)
    below = below + (bin_cum.gather(2, inner) - bin_counts.gather(2, inner)).squeeze(2)
    return (block * side + inner).squeeze(2), below


def _order_statistics(rows: Tensor, ranks: Tensor) -> Tensor:
    """Exact order statistics ``ranks`` (0-based, (R, J) int64) of every row of ``rows`` ((R, N) float32 or
    float64) by a most-significant-digit radix select on :func:`_keys`, 16 bits per round, without host
    synchronisation or a loop over the rows.

    Round 0 histograms the top 16 key bits of every row (one ``index_add_`` into R x 65536 counts) and finds each
    rank's bin on the cumulative counts (``searchsorted``). Each rank then owns a slot of 65536 bins in the next
    round's histogram (ranks whose bins agree share the lowest slot among them); a lookup table indexed by an
    element's current bin gives its slot, or a dump slot when no rank lives in its bin, so the next round is one
    table lookup (``index_select``), one add of the next 16 bits and one ``index_add_`` whatever the number of ranks.
    Counts are integers, so every round is exact, duplicates included; the key of rank ``t`` is read digit by digit.
    """
    r_count, n = rows.shape
    j_count = ranks.shape[1]
    dev = rows.device
    key = _keys(rows.contiguous())
    width = key.element_size() * 8
    rounds = width // _DIGIT
    region = (j_count + 1) * _BINS  # per row, in every round after the first: one slot per rank and the dump
    itype = key.dtype if r_count * region < 2**31 else torch.int64  # flat histogram index
    ctype = torch.int32 if n < 2**31 else torch.int64
    ones = torch.ones((), dtype=ctype, device=dev).expand(r_count * n)
    row = torch.arange(r_count, device=dev)[:, None]
    idx = (key >> (width - _DIGIT)).to(itype)
    idx += (row * _BINS + _BINS // 2).to(itype)  # top digit, signed -> [0, 65536), plus the row's histogram
    counts = torch.zeros(r_count * _BINS, dtype=ctype, device=dev).index_add_(0, idx.view(-1), ones)
    rank = ranks
    start = torch.zeros_like(rank)  # where each rank's histogram starts in its row's histogram of this round
    digits = []
    for r in range(rounds):
        hist = counts.view(r_count, -1)[:, : _BINS if r == 0 else j_count * _BINS]  # the dump slot holds no rank
        digit, below = _find_bin(hist, start, rank)
        digits.append(digit)
        if r == rounds - 1:
            break
        rank = rank - below  # rank inside that bin
        pos = start + digit
        # Next round: a table from this round's bins to the start of the lowest slot among the ranks in that bin
        # (the dump for bins without one), plus the next digit.
        shift = width - _DIGIT * (r + 2)
        dump = row * region + j_count * _BINS
        slots = (row * region + torch.arange(j_count, device=dev) * _BINS).expand(r_count, j_count)
        if r == 0:
            # Every element's bin is its whole top digit d, so ``(key >> shift) - (d - 32768) * 65536`` is the next
            # digit: the table holds the start minus that, and one add (wrapping in int32) gives the index.
            top = (torch.arange(_BINS, device=dev) - _BINS // 2) * _BINS
            table = dump - top  # (R, 65536)
            table.scatter_reduce_(1, pos, slots - top[pos], "amin")
            start = table.gather(1, pos) + top[pos] - row * region
            if itype == torch.int32:  # two's complement wrap, explicitly, before the narrowing cast
                table = ((table + 2**31) & 0xFFFFFFFF) - 2**31
            idx = table.to(itype).view(-1).index_select(0, idx.view(-1)).view(r_count, n)
            idx += key >> shift if shift else key  # the keys are needed again only for float64
        else:
            table = dump.expand(r_count, region).contiguous()
            table.scatter_reduce_(1, pos, slots, "amin")
            start = table.gather(1, pos) - row * region
            base = table.to(itype).view(-1).index_select(0, idx.view(-1)).view(r_count, n)
            # The next digit; the last one overwrites the keys, no longer needed.
            idx = ((key >> shift) & (_BINS - 1) if shift else key.bitwise_and_(_BINS - 1)).to(itype)
            idx += base
        counts = torch.zeros(r_count * region, dtype=ctype, device=dev).index_add_(0, idx.view(-1), ones)
    top = digits[0] - _BINS // 2
    for d in digits[1:]:
        top = top * _BINS + d
    return _values(top, rows.dtype)


def _select_short(rows: Tensor, index: Tensor) -> Tensor:
    """Order statistics ``index`` ((B, J), 0-based) of short rows ((B, C, N)): each among the ``k`` smallest values
    of each row (``topk``, sorted) or among the largest, ``k`` covering every rank on that side over the whole batch
    (known on the host when ``index`` is a CPU tensor, as drawn parameters are: no device synchronisation); when the
    two sides together would cover half of the row or more (or ``index`` lives on the device), one sort of every row.
    """
    b, c, n = rows.shape
    k = index.shape[1]
    k_low = k_high = n
    if index.device.type == "cpu":  # the levels are known on the host
        low_side = index < n - 1 - index  # nearer the smallest values
        k_low = int(index[low_side].max()) + 1 if bool(low_side.any()) else 0
        k_high = n - int(index[~low_side].min()) if bool((~low_side).any()) else 0
    if 2 * (k_low + k_high) >= n:
        srt = rows.sort(dim=2).values
        return srt.gather(2, index.to(rows.device, non_blocking=True)[:, None, :].expand(b, c, k))
    both = torch.zeros(b, c, k, dtype=rows.dtype, device=rows.device)
    side = low_side.to(rows.device, non_blocking=True)[:, None, :].expand(b, c, k)
    if k_low:
        smallest = rows.topk(k_low, dim=2, largest=False).values  # ascending: position t is order t
        i = index.clamp_max(k_low - 1).to(rows.device, non_blocking=True)[:, None, :].expand(b, c, k)
        both = torch.where(side, smallest.gather(2, i), both)
    if k_high:
        largest = rows.topk(k_high, dim=2, largest=True).values  # descending: position t is order n - 1 - t
        i = (n - 1 - index).clamp(0, k_high - 1).to(rows.device, non_blocking=True)[:, None, :].expand(b, c, k)
        both = torch.where(side, both, largest.gather(2, i))
    return both


def quantiles(x: Tensor, q: Tensor) -> Tensor:
    """Per-sample, per-channel quantiles with linear interpolation (``torch.quantile``'s default), batched.

    Exact order statistics by a radix select (:func:`_order_statistics`) instead of a sort: floats map to integer
    keys that order like them (NaN last, as ``torch.sort``), and the two order statistics around each level's
    position (``floor`` and ``floor + 1``) are read 16 key bits per round from per-row histograms of integer counts,
    so they are the very values a sort puts there (up to the sign of a zero, which ``v0 + frac * (v1 - v0)`` never
    shows, and which NaN payload among several), and the result is bit-identical to a sort's. The positions are
    ``torch.quantile``'s (its ``lerp`` can round the interpolation differently in the last bit). No loop over the
    batch, no host synchronisation (``q`` may live on the device).

    Cost bound, whatever the number of levels K: float32 10 passes over the batch (4 integer passes for the keys,
    2 for the top digit and its row offset, one ``index_add_`` histogram, one table lookup that with one add gives
    the second round's index, one more ``index_add_``), where a sort or ``topk`` of 20 % of each row took 60 to 150
    times one elementwise pass; plus per-row work on ``B * C * (2K + 1) * 65536`` integer counts (a zero fill, one
    reduction, gathers of 256-count blocks), about 2.5 passes more at 2 x 64^3. float64 keys take 4 rounds (about
    twice the passes). Rows shorter than a quarter of their counts (``N < (2K + 1) * 16384``, ``_SORT_BELOW``:
    2 x 40^3 and smaller for K = 2) take :func:`_select_short` (``topk`` near the ends, or a sort), faster there,
    with the same values. A recorded forward
    (autograd) adds one comparison per order statistic to pick a voxel holding each value, so the gradient reaches
    it as through a sort.

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
    index = torch.cat([below, above], dim=1)  # (B, 2K): both neighbours, on q's device
    k = index.shape[1]
    if n < _SORT_BELOW * (k + 1) * _BINS:
        both = _select_short(rows, index)
    else:
        ranks = index.to(x.device, non_blocking=True)[:, None, :].expand(b, c, k).reshape(b * c, k).contiguous()
        both = _order_statistics(rows.detach().reshape(b * c, n), ranks).view(b, c, k)
        if tracked(rows):  # the same values, read from a voxel holding each, so that autograd sees their source
            match = rows[:, :, None, :] == both[..., None]  # (B, C, 2K, N)
            held = rows.gather(2, match.int().argmax(dim=3))
            both = torch.where(match.any(dim=3), held, both)  # NaN matches nothing
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
