"""Batched linear filters: per-sample separable Gaussians, unsharp masking, Scharr edges, Laplacian, random kernels.

All filters take images ``(B, C, D, H, W)``, compute in float32 (in float64 for float64 images) and return the input
dtype. Borders are padded by
half-sample symmetric reflection (``d c b a | a b c d | d c b a``, scipy.ndimage's ``"reflect"`` mode), which is
defined for any axis length, even 1. nnU-Net's blur (batchgeneratorsv2 ``blur_dimension``) pads with torch's
``"reflect"`` instead, the whole-sample reflection that does not repeat the edge (``c b | a b c d | c b``, scipy's
``"mirror"``), and sizes its kernel ``round-to-odd(6 sigma + 0.5)``; the results differ only within a kernel radius
of the border (and by the kernels' small tails inside): ``reports/fidelity.md`` gives the measured differences.

Separable kernels run as one 1-D pass per axis (3 taps per voxel per axis instead of a dense 3-D kernel). A per-sample
1-D kernel is applied as a grouped ``conv3d`` (one group per sample and channel); on the CPU, where PyTorch's
depthwise 3-D convolution is slow, the same sum is computed as ``K`` shifted multiply-adds. Both give the same result.

Per-sample parameters that decide kernel *sizes* (Gaussian sigmas) must be CPU tensors: the size is then known on the
host and nothing here synchronises with the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spineaug.functional.intensity import tracked, work

SIGMA_FLOOR = 1e-3
"""Gaussian sigmas below this (in voxels) mean "no blur along that axis"."""

SCHARR_SMOOTH = (3 / 16, 10 / 16, 3 / 16)
"""Normalised Scharr smoothing taps (sum 1)."""
SCHARR_DERIVATIVE = (-0.5, 0.0, 0.5)
"""Normalised central difference (cross-correlation taps): ``(x[i+1] - x[i-1]) / 2``."""


def reflect_index(n: int, pad: int, device: torch.device | str = "cpu") -> Tensor:
    """Indices that pad an axis of length ``n`` by ``pad`` on both sides with half-sample symmetric reflection.

    Args:
        n: Axis length (>= 1).
        pad: Number of samples added on each side (>= 0); may exceed ``n``.
        device: Device of the returned index.

    Returns:
        (n + 2 * pad,) long tensor of indices into ``[0, n)``.
    """
    idx = torch.arange(-pad, n + pad, device=device)
    r = torch.remainder(idx, 2 * n)
    return torch.where(r >= n, 2 * n - 1 - r, r)


def pad_axis(x: Tensor, dim: int, pad: int) -> Tensor:
    """Pad dimension ``dim`` of ``x`` by ``pad`` on both sides with half-sample symmetric reflection."""
    if pad == 0:
        return x
    n = x.shape[dim]
    if pad <= n:  # concatenating mirrored edges is much cheaper than a gather along the axis
        return torch.cat([x.narrow(dim, 0, pad).flip(dim), x, x.narrow(dim, n - pad, pad).flip(dim)], dim)
    return x.index_select(dim, reflect_index(n, pad, x.device))


def conv1d_axis(x: Tensor, kernel: Tensor, axis: int, method: str = "auto") -> Tensor:
    """Cross-correlate each sample with its own centred 1-D kernel along one spatial axis (reflect padding).

    Args:
        x: Images, (B, C, D, H, W), float32.
        kernel: Taps, (K,) shared by all samples or (B, K) one kernel per sample; ``K`` odd, centre at ``K // 2``.
        axis: Spatial axis: 0 (D), 1 (H) or 2 (W).
        method: ``"conv"`` (grouped ``conv3d``), ``"shift"`` (``K`` shifted multiply-adds) or ``"auto"`` (shift on
            the CPU, conv elsewhere).

    Returns:
        Filtered images, like ``x``.
    """
    b, c = x.shape[:2]
    k = kernel.shape[-1]
    if k % 2 != 1:
        raise ValueError(f"kernel length must be odd, got {k}")
    kernel = kernel.to(x.device, x.dtype, non_blocking=True)
    if kernel.ndim == 1:
        kernel = kernel.expand(b, k)
    dim = 2 + axis
    xp = pad_axis(x, dim, k // 2)
    n = x.shape[dim]
    if method not in ("auto", "conv", "shift"):
        raise ValueError(f"method must be 'auto', 'conv' or 'shift', got {method!r}")
    if method == "shift" or (method == "auto" and x.device.type == "cpu"):
        # Shifted multiply-adds: faster than depthwise conv3d on the CPU, identical sums.
        w = kernel.reshape(b, 1, 1, 1, 1, k)
        y = torch.mul(xp.narrow(dim, 0, n), w[..., 0])
        for t in range(1, k):
            y.addcmul_(xp.narrow(dim, t, n), w[..., t])
        return y
    size = [1, 1, 1]
    size[axis] = k
    weight = kernel.repeat_interleave(c, dim=0).reshape(b * c, 1, *size)
    out = F.conv3d(xp.reshape(1, b * c, *xp.shape[2:]), weight, groups=b * c)
    return out.reshape(b, c, *out.shape[2:])


def gaussian_radius(sigma: Tensor, truncate: float = 3.0) -> Tensor:
    """Per-value kernel radius ``ceil(truncate * sigma)`` (0 for sigmas below :data:`SIGMA_FLOOR`); long tensor."""
    r = torch.ceil(truncate * sigma - 1e-6).clamp_min(0).long()
    return torch.where(sigma < SIGMA_FLOOR, torch.zeros_like(r), r)


def gaussian_kernels(sigma: Tensor, truncate: float = 3.0) -> Tensor:
    """Centred, normalised 1-D Gaussian taps for a batch of sigmas, zero-padded to the largest radius.

    Each kernel keeps its own support ``|t| <= ceil(truncate * sigma)``, so a sample's result does not depend on
    its batch partners; sigmas below :data:`SIGMA_FLOOR` give the identity (a single 1 at the centre).

    Args:
        sigma: Standard deviations in voxels, (N,) CPU tensor, >= 0.
        truncate: Kernel radius in units of sigma.

    Returns:
        (N, 2 R + 1) float32 taps, ``R`` the largest radius; each row sums to 1 and is symmetric.
    """
    sigma = sigma.float().cpu()
    radius = gaussian_radius(sigma, truncate)
    r_max = int(radius.max()) if radius.numel() else 0
    t = torch.arange(-r_max, r_max + 1, dtype=torch.float32)
    s = sigma.clamp_min(SIGMA_FLOOR)[:, None]
    taps = torch.exp(-0.5 * (t / s) ** 2) * (t.abs() <= radius[:, None])
    return taps / taps.sum(dim=1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: Tensor, truncate: float = 3.0) -> Tensor:
    """Blur each sample with its own centred, separable Gaussian (reflect padding).

    Args:
        x: Images, (B, C, D, H, W).
        sigma: Standard deviations in voxels, (B,) isotropic or (B, 3) per axis (D, H, W); a CPU tensor (its values
            set the kernel sizes). Sigmas below :data:`SIGMA_FLOOR` leave that axis unchanged.
        truncate: Kernel radius ``ceil(truncate * sigma)``.

    Returns:
        Blurred images, like ``x``.
    """
    sigma = _per_axis(sigma, x.shape[0])
    y = work(x)
    for axis in range(3):
        s = sigma[:, axis]
        if not bool((s >= SIGMA_FLOOR).any()):  # host check on a CPU tensor
            continue
        y = conv1d_axis(y, gaussian_kernels(s, truncate), axis)
    return y.to(x.dtype)


def unsharp_mask(x: Tensor, sigma: Tensor, amount: Tensor, truncate: float = 3.0) -> Tensor:
    """Sharpen: ``x + amount * (x - G_sigma * x)`` with a centred Gaussian ``G_sigma`` per sample.

    Args:
        x: Images, (B, C, D, H, W).
        sigma: Blur sigmas in voxels, (B,) or (B, 3), CPU tensor.
        amount: Sharpening strength, (B,); 0 is the identity.
        truncate: Gaussian radius in sigmas.

    Returns:
        Sharpened images, like ``x``.
    """
    xf = work(x)
    blurred = gaussian_blur(xf, sigma, truncate)
    k = amount.to(x.device, xf.dtype, non_blocking=True).view(-1, 1, 1, 1, 1)
    return (xf + k * (xf - blurred)).to(x.dtype)


def _three_tap(x: Tensor, dim: int, op) -> Tensor:
    """Apply ``op(prev, centre, next, out=...)`` along ``dim`` with half-sample reflection at the borders (``out=None``
    while autograd records: a padded copy and a fresh result).

    The interior and the two border slices are written straight into one output, so no padded copy of the volume is
    made (the reflected neighbour of the first voxel is the voxel itself, likewise for the last).
    """
    n = x.shape[dim]
    if tracked(x):  # out= is not differentiable: one padded copy, one fresh result
        xp = pad_axis(x, dim, 1)
        return op(xp.narrow(dim, 0, n), xp.narrow(dim, 1, n), xp.narrow(dim, 2, n), out=None)
    if n < 3:  # tiny axis: padding costs nothing here
        xp = pad_axis(x, dim, 1)
        out = torch.empty_like(x)
        op(xp.narrow(dim, 0, n), xp.narrow(dim, 1, n), xp.narrow(dim, 2, n), out=out)
        return out
    out = torch.empty_like(x)
    op(x.narrow(dim, 0, n - 2), x.narrow(dim, 1, n - 2), x.narrow(dim, 2, n - 2), out=out.narrow(dim, 1, n - 2))
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    op(first, first, x.narrow(dim, 1, 1), out=out.narrow(dim, 0, 1))
    op(x.narrow(dim, n - 2, 1), last, last, out=out.narrow(dim, n - 1, 1))
    return out


def _scharr_smooth(prev: Tensor, centre: Tensor, nxt: Tensor, *, out: Tensor | None) -> Tensor:
    """``prev + next + (10 / 3) centre``: the Scharr smoothing times 16 / 3 (the scale is applied once, at the end)."""
    return torch.add(prev, nxt, out=out).add_(centre, alpha=SCHARR_SMOOTH[1] / SCHARR_SMOOTH[0])


def _difference(prev: Tensor, centre: Tensor, nxt: Tensor, *, out: Tensor | None) -> Tensor:
    """``next - prev``: the normalised central difference times 2."""
    return torch.sub(nxt, prev, out=out)


def _box3(prev: Tensor, centre: Tensor, nxt: Tensor, *, out: Tensor | None) -> Tensor:
    """``prev + centre + next``: the 3-tap box sum."""
    return torch.add(prev, nxt, out=out).add_(centre)


_SCHARR_SCALE = SCHARR_SMOOTH[0] ** 2 * SCHARR_DERIVATIVE[2]
"""Undoes the unnormalised taps of :func:`_scharr_smooth` (twice) and :func:`_difference` (once)."""


def scharr_edges(x: Tensor, magnitude: str = "l1", *, gain: float = 1.0) -> Tensor:
    """Edge magnitude from the three normalised 3-D Scharr derivatives.

    The derivative along axis ``a`` is ``d (x) s (x) s`` (central difference ``d`` along ``a``, smoothing
    ``s = (3, 10, 3) / 16`` along the two others), computed separably with the smoothing passes shared: eight
    3-tap passes of two (smoothing) or one (difference) elementwise operations, no padded copies, the kernels'
    normalisation and ``gain`` folded into one final scaling. Cost bound: about 30 elementwise passes; reference
    for the benchmark: ``conv3d`` of the image with the three dense 3x3x3 Scharr kernels.

    Args:
        x: Images, (B, C, D, H, W).
        magnitude: ``"l1"`` (sum of absolute derivatives, AugLab) or ``"l2"`` (gradient norm, rotation-friendlier).
        gain: Factor applied to the magnitude (e.g. for AugLab's integer kernels).

    Returns:
        Non-negative edge maps, like ``x``.
    """
    if magnitude not in ("l1", "l2"):
        raise ValueError(f"magnitude must be 'l1' or 'l2', got {magnitude!r}")
    xf = work(x)
    s_w = _three_tap(xf, 4, _scharr_smooth)
    g_d = _three_tap(_three_tap(s_w, 3, _scharr_smooth), 2, _difference)
    g_h = _three_tap(_three_tap(s_w, 3, _difference), 2, _scharr_smooth)
    del s_w
    g_w = _three_tap(_three_tap(_three_tap(xf, 4, _difference), 3, _scharr_smooth), 2, _scharr_smooth)
    if magnitude == "l1":
        out = g_d.abs_().add_(g_h.abs_()).add_(g_w.abs_())
    else:
        out = g_d.square_().add_(g_h.square_()).add_(g_w.square_()).sqrt_()
    return out.mul_(_SCHARR_SCALE * gain).to(x.dtype)


def laplacian(x: Tensor) -> Tensor:
    """26-neighbour Laplacian high-pass, normalised: ``(26 x - sum of the 26 neighbours) / 26``.

    Computed separably: the 3x3x3 box sum is three 3-tap passes (no padded copies), so the result is
    ``(27 x - box_sum(x)) / 26``. Reference for the benchmark (``spineaug.bench.references``): ``conv3d`` with the
    dense 26-neighbour 3x3x3 kernel.

    Args:
        x: Images, (B, C, D, H, W).

    Returns:
        High-passed images, like ``x`` (zero on constant regions).
    """
    xf = work(x)
    box = _three_tap(_three_tap(_three_tap(xf, 4, _box3), 3, _box3), 2, _box3)
    return box.mul_(-1.0 / 26.0).add_(xf, alpha=27.0 / 26.0).to(x.dtype)


def random_conv(x: Tensor, weight: Tensor) -> Tensor:
    """Cross-correlate each sample with its own dense 3-D kernel in one grouped convolution (reflect padding).

    Args:
        x: Images, (B, C, D, H, W).
        weight: Kernels, (B, K, K, K) with ``K`` odd (centre at ``K // 2``); every channel of sample ``b`` uses
            ``weight[b]``. Smaller kernels are zero-padded, centred, to ``K``.

    Returns:
        Filtered images, like ``x``.

    Cost bound: the convolution itself (``K^3`` multiply-adds per voxel) plus three padding copies. Reference for the
    benchmark (``spineaug.bench.references``): one zero-padded grouped ``F.conv3d`` with a ``K^3`` kernel per sample,
    K = 3, 5, 7 in turn.
    """
    b, c = x.shape[:2]
    k = weight.shape[-1]
    if weight.ndim != 4 or weight.shape[0] != b or weight.shape[1:] != (k, k, k) or k % 2 != 1:
        raise ValueError(f"weight must be (B, K, K, K) with odd K and B = {b}, got {tuple(weight.shape)}")
    xf = work(x)
    for dim in (2, 3, 4):
        xf = pad_axis(xf, dim, k // 2)
    w = weight.to(x.device, xf.dtype, non_blocking=True).repeat_interleave(c, dim=0).unsqueeze(1)
    xf = xf.reshape(1, b * c, *xf.shape[2:])
    if b * c == 1 and x.device.type == "cpu":
        # A single-channel conv3d takes a slow CPU path; as two identical groups it takes the depthwise one and is
        # faster despite the doubled work (1 x 1 x 128^3, 2 threads: K=3 110 -> 38 ms, K=7 181 -> 122 ms).
        out = F.conv3d(xf.expand(1, 2, *xf.shape[2:]), w.expand(2, 1, k, k, k), groups=2)[:, :1]
    else:
        out = F.conv3d(xf, w, groups=b * c)
    return out.reshape(b, c, *out.shape[2:]).to(x.dtype)


def _per_axis(sigma: Tensor, b: int) -> Tensor:
    sigma = sigma.detach().float().cpu()
    if sigma.ndim == 1:
        sigma = sigma[:, None].expand(b, 3)
    if sigma.shape != (b, 3):
        raise ValueError(f"sigma must be (B,) or (B, 3) with B = {b}, got {tuple(sigma.shape)}")
    if bool((sigma < 0).any()) or not bool(torch.isfinite(sigma).all()):
        raise ValueError("sigma must be finite and non-negative")
    return sigma


__all__ = [
    "SIGMA_FLOOR",
    "conv1d_axis",
    "gaussian_blur",
    "gaussian_kernels",
    "gaussian_radius",
    "laplacian",
    "pad_axis",
    "random_conv",
    "reflect_index",
    "scharr_edges",
    "unsharp_mask",
]
