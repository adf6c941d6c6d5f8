"""Label-driven image synthesis and class-wise intensity maps (domain-generalisation augmentations).

Two operations on a label map ``(B, 1, D, H, W)`` of indices in ``[0, num)`` (see
:func:`spineaug.functional.labels.label_index`):

- :func:`synthesise_from_labels`: SynthSeg's generative model (Billot et al., Medical Image Analysis 2023): every
  (sub-)label region gets a Gaussian intensity distribution of its own.
- :func:`class_location_scale`: SLAug's class-level location-scale augmentation (Su et al., AAAI 2023): every label
  region gets an affine intensity map of its own.

Both need per-label intensity quantiles of the real image (sub-label clusters, the SLAug location clamp). They come
from one per-label histogram (:func:`label_histogram`): a ``scatter_add_`` into a table of ``num * bins`` entries per
sample and channel, so nothing sorts the volume, nothing loops over the batch and nothing synchronises with the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spineaug.functional.intensity import normalise01, tracked, work

SPATIAL = (2, 3, 4)
BINS = 256
"""Histogram bins over each sample's (and channel's) intensity range: quantiles are exact to 1/256 of the range."""


def label_histogram(u: Tensor, lab: Tensor, num: int, bins: int = BINS) -> tuple[Tensor, Tensor]:
    """Per-label histograms of min-max normalised intensities.

    Args:
        u: Intensities in [0, 1], (B, C, D, H, W), float32.
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W), integer.
        num: Number of label values.
        bins: Number of equal-width bins over [0, 1].

    Returns:
        ``(hist, code)``: the counts, (B, C, num, bins) float32, and each voxel's flat bin ``label * bins + bin``,
        (B, C, N) long, for gathering per-voxel values from tables shaped like the histogram.
    """
    b, c = u.shape[:2]
    q = (u.flatten(2) * bins).long().clamp_(0, bins - 1)
    code = lab.flatten(2).long().expand(b, c, -1) * bins + q
    ones = torch.ones((), device=u.device).expand(code.shape)
    hist = torch.zeros(b, c, num * bins, device=u.device).scatter_add_(2, code, ones)
    return hist.view(b, c, num, bins), code


def label_cdf(hist: Tensor) -> Tensor:
    """Mid-bin empirical CDF of each label's histogram, (B, C, num, bins): the fraction of the label's voxels below a
    bin plus half of those in it, in (0, 1) for occupied bins (voxels of one bin share one value)."""
    cum = hist.cumsum(-1)
    total = cum[..., -1:].clamp_min(1.0)
    return (cum - 0.5 * hist) / total


def label_quantile(hist: Tensor, q: float) -> Tensor:
    """The ``q`` quantile of each label's histogram in normalised units (bin centre), (B, C, num); empty labels give 0.5."""
    bins = hist.shape[-1]
    cum = hist.cumsum(-1)
    total = cum[..., -1:]
    below = (cum < q * total).sum(-1).clamp_max(bins - 1)  # index of the first bin reaching the quantile
    value = (below.float() + 0.5) / bins
    return torch.where(total[..., 0] > 0, value, 0.5)


def intensity_clusters(x: Tensor, lab: Tensor, num: int, clusters: Tensor, bins: int = BINS) -> Tensor:
    """Split every label region into ``k`` sub-labels by intensity quantile bins of the real image.

    Voxel ``v`` of label ``l`` gets sub-label ``floor(F_l(x_v) * k_l)`` (clamped to ``k_l - 1``), ``F_l`` the mid-bin
    empirical CDF of the label's intensities (:func:`label_cdf`): ``k_l`` groups of about equal size, from dark to
    bright. Computed per sample and channel from one histogram, no sort.

    Args:
        x: Images, (B, C, D, H, W).
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W).
        num: Number of label values.
        clusters: Cluster counts ``k >= 1``, (B, num) integer (on any device).
        bins: Histogram resolution.

    Returns:
        Sub-label indices in ``[0, k_l)``, (B, C, D, H, W) long.
    """
    b, c = x.shape[:2]
    u, _, _ = normalise01(x.detach())
    hist, code = label_histogram(u.float(), lab, num, bins)
    cdf = label_cdf(hist).view(b, c, num * bins)
    f = torch.gather(cdf, 2, code)  # (B, C, N)
    k = clusters.to(x.device, torch.float32, non_blocking=True)[:, None, :].expand(b, c, num)
    kv = torch.gather(k, 2, lab.flatten(2).long().expand(b, c, -1))
    sub = torch.minimum(torch.floor(f * kv), kv - 1).long()
    return sub.view(x.shape)


def synthesise_from_labels(
    lab: Tensor, sub: Tensor, mean: Tensor, std: Tensor, noise: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Sample SynthSeg's Gaussian mixture: voxel ``v`` of (sub-)label ``j`` gets ``mean_j + std_j * n_v``.

    Billot et al. 2023, Sec. 3.2 (the "initial HR synthetic image"): ``G_v ~ N(mu_{S_v}, sigma_{S_v}^2)`` with one
    mean and std per label of the (deformed) label map ``S``.

    Args:
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W).
        sub: Sub-label indices in ``[0, kmax)``, (B, C, D, H, W) long (all zero without clusters).
        mean: Means, (B, num, kmax): entry ``[b, l, s]`` for sub-label ``s`` of label ``l``.
        std: Standard deviations, (B, num, kmax), >= 0.
        noise: Standard normal noise, (B, C, D, H, W).
        dtype: Output dtype.

    Returns:
        Synthetic images, (B, C, D, H, W) float of ``dtype``. They depend on the label map, the sub-labels and the
        noise only: no gradient flows back to the image the sub-labels came from.
    """
    b, c = sub.shape[:2]
    num, kmax = mean.shape[1:]
    device = sub.device
    idx = (lab.flatten(2).long() * kmax).expand(b, c, -1) + sub.flatten(2)
    m = mean.to(device, torch.float32, non_blocking=True).reshape(b, 1, num * kmax).expand(b, c, -1)
    s = std.to(device, torch.float32, non_blocking=True).reshape(b, 1, num * kmax).expand(b, c, -1)
    y = torch.gather(m, 2, idx).addcmul_(torch.gather(s, 2, idx), noise.float().flatten(2))
    return y.view(sub.shape).to(dtype)


def class_location_scale(
    x: Tensor,
    lab: Tensor,
    num: int,
    scale: Tensor,
    location: Tensor,
    *,
    clamp_quantile: float = 0.2,
    background_threshold: Tensor | float | None = 0.01,
    bins: int = BINS,
) -> Tensor:
    """Map each label region's intensities affinely: ``u' = clip(a_l u + b_l, 0, 1)`` (SLAug's location-scale).

    Su et al., AAAI 2023, class-level location-scale augmentation (``LS(x) = a x + b`` per class; the code's
    ``location_scale_transformation``): ``u`` is the image min-max normalised to [0, 1] per sample and channel (their
    ``vrange``), the location is clamped per region to ``[-Q_l(q), 1 - Q_l(1 - q)]`` with ``Q_l`` the region's
    quantiles (``q = 0.2``, their ``slide_limit`` of 20 %), the result is clipped to [0, 1]; voxels whose ``u`` is at
    most ``background_threshold`` keep their value (their ``background_threshold``). The result is mapped back to the
    input's range, ``y = lo + span * u'``.

    Args:
        x: Images, (B, C, D, H, W).
        lab: Label indices in ``[0, num)``, (B, 1, D, H, W).
        num: Number of label values.
        scale: Scales ``a_l``, (B, num).
        location: Locations ``b_l`` (before the clamp), (B, num), in normalised units.
        clamp_quantile: ``q`` of the location clamp (0 <= q <= 0.5).
        background_threshold: Normalised intensity at or below which voxels are kept: a number, a (B,) tensor (a
            negative entry keeps none of that sample's voxels), or ``None``.
        bins: Histogram resolution of the quantiles.

    Returns:
        Images like ``x``.
    """
    b, c = x.shape[:2]
    device = x.device
    u, lo, span = normalise01(x)  # span 0 (constant channel) maps back to lo: the channel is unchanged
    uf = u.float()
    hist, _ = label_histogram(uf.detach(), lab, num, bins)
    q_lo = label_quantile(hist, clamp_quantile)
    q_hi = label_quantile(hist, 1.0 - clamp_quantile)
    a = scale.to(device, torch.float32, non_blocking=True)[:, None, :].expand(b, c, num)
    loc = location.to(device, torch.float32, non_blocking=True)[:, None, :].expand(b, c, num)
    loc = torch.minimum(torch.maximum(loc, -q_lo), 1.0 - q_hi)
    flat = lab.flatten(2).long().expand(b, c, -1)
    av = torch.gather(a.contiguous(), 2, flat).view(uf.shape)
    bv = torch.gather(loc.contiguous(), 2, flat).view(uf.shape)
    v = torch.addcmul(bv, uf, av).clamp(0.0, 1.0)
    if background_threshold is not None:
        thr = torch.as_tensor(background_threshold, dtype=torch.float32)
        thr = thr.to(device, non_blocking=True).view(-1, 1, 1, 1, 1) if thr.ndim else thr.to(device)
        v = torch.where(uf <= thr, uf, v)
    v = v.to(u.dtype)
    y = torch.addcmul(lo, v, span) if tracked(v, lo, span) else torch.addcmul(lo, v, span, out=v)
    return y.to(x.dtype)


__all__ = [
    "BINS",
    "class_location_scale",
    "intensity_clusters",
    "label_cdf",
    "label_histogram",
    "label_quantile",
    "synthesise_from_labels",
]
