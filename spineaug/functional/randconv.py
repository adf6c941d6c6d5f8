"""Random-convolution networks for domain generalisation: GIN, IPA's blending map, progressive random convolution.

All functions take images ``(B, C, D, H, W)`` and per-sample network weights, compute in float32 (float64 for
float64 images) and return the input dtype. Every sample runs through its own random network in one grouped
``conv3d`` per layer: the batch is folded into the channels and ``groups = B``, so there is no loop over the batch.
Borders are padded by half-sample symmetric reflection (:func:`spineaug.functional.filters.pad_axis`), as the other
filters of the engine; the published implementations pad with zeros (see the transforms for why we differ).

Kernel *sizes* are host integers (the transforms read them from CPU parameters); values never leave the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spineaug.functional.filters import pad_axis, random_conv

FLAT_MAP = 1e-5
"""A blending field whose range is below this fraction of its maximum counts as constant (the map is then zero)."""
STANDARDIZE_EPS = 1e-5
"""Added to the variance when standardising a random-convolution output (instance-norm style)."""


def _work(x: Tensor) -> Tensor:
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def grouped_conv(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Convolve each sample with its own dense multi-channel kernel, in one grouped ``conv3d`` (reflect padding).

    Args:
        x: Images, (B, C_in, D, H, W), float32 or float64.
        weight: Kernels, (B, C_out, C_in, K, K, K), ``K`` odd (cross-correlation, centre at ``K // 2``).
        bias: Per-sample output shifts, (B, C_out), or ``None``.

    Returns:
        (B, C_out, D, H, W) in ``x``'s dtype.
    """
    b, cin = x.shape[:2]
    k = weight.shape[-1]
    if weight.ndim != 6 or weight.shape[0] != b or weight.shape[2] != cin or k % 2 != 1:
        raise ValueError(
            f"weight must be (B, C_out, {cin}, K, K, K) with odd K and B = {b}, got {tuple(weight.shape)}"
        )
    cout = weight.shape[1]
    if b == 0:
        return x.new_zeros((0, cout, *x.shape[2:]))
    w = weight.to(x.device, x.dtype, non_blocking=True).reshape(b * cout, cin, k, k, k)
    size = x.shape[2:]
    for dim in (2, 3, 4):
        x = pad_axis(x, dim, k // 2)
    out = F.conv3d(x.reshape(1, b * cin, *x.shape[2:]), w, groups=b).reshape(b, cout, *size)
    if bias is not None:
        out = out + bias.to(x.device, x.dtype, non_blocking=True).view(b, cout, 1, 1, 1)
    return out


def _crop_kernel(weight: Tensor, k: int) -> Tensor:
    """Centre-crop (..., K, K, K) kernels to ``k``."""
    lo = (weight.shape[-1] - k) // 2
    return weight[..., lo : lo + k, lo : lo + k, lo : lo + k]


def gin_network(
    x: Tensor, weight: Tensor, bias: Tensor, sizes: Tensor, hidden_channels: int, negative_slope: float
) -> Tensor:
    """Run each sample through its own shallow random convolution network (GIN's ``g_theta``).

    Layer ``l`` maps ``C -> hidden`` (first), ``hidden -> hidden`` (middle) or ``hidden -> C`` (last); every layer but
    the last is followed by a leaky ReLU.

    Args:
        x: Images, (B, C, D, H, W).
        weight: Kernels, (B, L, M, M, K, K, K) with ``M = max(C, hidden_channels)``: layer ``l`` uses the block
            ``[:, l, :C_out, :C_in]``; kernels smaller than ``K`` are zero-padded, centred.
        bias: Per-sample, per-layer output shifts, (B, L, M).
        sizes: Kernel sizes, (B, L) long CPU tensor: layer ``l`` is cropped to the largest size among the samples.
        hidden_channels: Channels between layers.
        negative_slope: Leaky ReLU slope.

    Returns:
        The network outputs, (B, C, D, H, W), in the working precision (float32 or float64).
    """
    c = x.shape[1]
    n_layers = weight.shape[1]
    y = _work(x)
    for layer in range(n_layers):
        cin = c if layer == 0 else hidden_channels
        cout = c if layer == n_layers - 1 else hidden_channels
        k = int(sizes[:, layer].max()) if sizes.numel() else 1  # CPU tensor: a host integer, no device sync
        w = _crop_kernel(weight[:, layer, :cout, :cin], k)
        y = grouped_conv(y, w.contiguous(), bias[:, layer, :cout])
        if layer < n_layers - 1:
            y = F.leaky_relu(y, negative_slope)
    return y


def frobenius_rescale(y: Tensor, x: Tensor) -> Tensor:
    """Scale each sample of ``y`` to the Frobenius norm (over channels and voxels) of the same sample of ``x``.

    A sample whose ``y`` is all zeros stays zero.
    """
    dims = tuple(range(1, x.ndim))
    nx = torch.linalg.vector_norm(_work(x), dim=dims, keepdim=True)
    ny = torch.linalg.vector_norm(y, dim=dims, keepdim=True)
    return y * (nx / ny.clamp_min(torch.finfo(y.dtype).tiny))


def gin(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    sizes: Tensor,
    alpha: Tensor,
    hidden_channels: int,
    negative_slope: float,
) -> Tensor:
    """Global intensity non-linear augmentation: random network, blend with the input, restore the input's norm.

    ``out = ||x||_F * m / ||m||_F`` with ``m = alpha * g(x) + (1 - alpha) * x`` (Ouyang et al., TMI 2023, the GIN
    equation of the section "Global intensity non-linear augmentation").

    Args:
        x: Images, (B, C, D, H, W).
        weight, bias, sizes, hidden_channels, negative_slope: The network, see :func:`gin_network`.
        alpha: Weight of the network output, (B,); 0 returns ``x`` (up to rounding in the norm ratio).

    Returns:
        Tensor like ``x``.
    """
    xf = _work(x)
    y = gin_network(xf, weight, bias, sizes, hidden_channels, negative_slope)
    a = alpha.to(x.device, xf.dtype, non_blocking=True).view(-1, 1, 1, 1, 1)
    return frobenius_rescale(torch.lerp(xf, y, a), xf).to(x.dtype)


def quadratic_bspline_basis(n_points: int, size: int, device: torch.device | str = "cpu") -> Tensor:
    """Weights of ``n_points`` quadratic B-spline control points at the ``size`` voxel centres of one axis.

    The control points are evenly spaced, ``size / (n_points - 2)`` voxels apart, with one beyond each border: the
    voxels span the part of the grid where the weights sum to 1 (a constant grid gives a constant field).

    Returns:
        (size, n_points) float32; each row sums to 1, with at most three non-zero weights.
    """
    u = 0.5 + (n_points - 2) * (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    t = (u[:, None] - torch.arange(n_points, device=device, dtype=torch.float32)).abs()
    return torch.where(t < 0.5, 0.75 - t**2, torch.where(t < 1.5, 0.5 * (1.5 - t) ** 2, torch.zeros_like(t)))


def blend_map(control: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """IPA's spatial blending map: log-domain control points, quadratic B-spline, exponentiated, min-max to [0, 1].

    Args:
        control: Control-point values (log domain), (B, n_d, n_h, n_w), each ``n >= 3``: ``n - 2`` control intervals
            across the volume plus one point beyond each border (:func:`quadratic_bspline_basis`).
        shape: Output spatial shape (D, H, W).

    Returns:
        (B, 1, D, H, W) float32 maps, each spanning [0, 1] (a constant field, :data:`FLAT_MAP`, gives all zeros).
        The field is continuously differentiable (quadratic B-spline, the authors' interpolation order 2); it is
        evaluated separably, one small matrix product per axis.
    """
    c = control.float()
    bd, bh, bw = (quadratic_bspline_basis(n, s, c.device) for n, s in zip(c.shape[1:], shape))
    field = torch.einsum("bijk,wk->bijw", c, bw)
    field = torch.einsum("bijw,hj->bihw", field, bh)
    field = torch.einsum("bihw,di->bdhw", field, bd)[:, None].exp()
    lo = field.amin(dim=(2, 3, 4), keepdim=True)
    hi = field.amax(dim=(2, 3, 4), keepdim=True)
    span = hi - lo
    flat = span <= FLAT_MAP * hi  # rounding noise only: min-max would blow it up to 0/1 speckle
    return torch.where(flat, torch.zeros((), device=field.device), (field - lo) / torch.where(flat, hi, span))


def ipa(x: Tensor, view_a: Tensor, view_b: Tensor, control: Tensor, blend: Tensor | None = None) -> Tensor:
    """Interventional pseudo-correlation augmentation: blend two GIN views through a smooth random map.

    ``out = M * view_a + (1 - M) * view_b`` with ``M = blend_map(control)`` (Ouyang et al., TMI 2023, the
    IPA blending equation of the section "Interventional pseudo-correlation augmentation").

    Args:
        x: The images the views were computed from, (B, C, D, H, W) (sets the output dtype and device).
        view_a, view_b: Two GIN outputs of ``x``, like ``x``.
        control: Control points of the map, see :func:`blend_map`.
        blend: (B,) bool, or ``None`` (all True): samples with False get ``view_a`` alone (``M = 1``).

    Returns:
        Tensor like ``x``.
    """
    m = blend_map(control.to(x.device, non_blocking=True), tuple(x.shape[2:])).to(_work(x).dtype)
    if blend is not None:
        m = torch.where(blend.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1), m, torch.ones((), dtype=m.dtype,
                                                                                                 device=m.device))
    return torch.lerp(_work(view_b), _work(view_a), m).to(x.dtype)


def standardize(y: Tensor, eps: float = STANDARDIZE_EPS) -> Tensor:
    """Zero mean and unit variance per sample and channel (over the voxels)."""
    var, mean = torch.var_mean(y, dim=(2, 3, 4), keepdim=True, correction=0)
    return (y - mean) * torch.rsqrt(var + eps)


def progressive_conv(
    x: Tensor, weight: Tensor, repeats: Tensor, gamma: Tensor, beta: Tensor, steps: int
) -> Tensor:
    """Apply one random convolution block repeatedly: ``x <- tanh(gamma * standardize(w * x) + beta)``, ``L`` times.

    Choi et al., CVPR 2023, Fig. 3, eq. 3-4 and Algorithm 1: the same block (same kernel, same affine) stacked ``L``
    times.
    All samples run ``steps`` iterations; sample ``b`` keeps its result after ``repeats[b]`` of them (a
    ``torch.where`` on the device, no host sync).

    Args:
        x: Images, (B, C, D, H, W).
        weight: One kernel per sample, (B, K, K, K), applied to every channel (reflect padding).
        repeats: Number of applications per sample, (B,) long, ``1 <= repeats <= steps``.
        gamma, beta: Random affine after the standardisation, (B, C).
        steps: Iterations to run: at least the largest ``repeats`` (a host integer).

    Returns:
        Tensor like ``x``, values in (-1, 1).
    """
    xf = _work(x)
    b, c = x.shape[:2]
    g = gamma.to(x.device, xf.dtype, non_blocking=True).view(b, c, 1, 1, 1)
    s = beta.to(x.device, xf.dtype, non_blocking=True).view(b, c, 1, 1, 1)
    reps = repeats.to(x.device, non_blocking=True).view(b, 1, 1, 1, 1)
    w = weight.to(x.device, xf.dtype, non_blocking=True)  # one copy to the device, not one per step
    y = xf
    for step in range(steps):
        z = torch.tanh(torch.addcmul(s, g, standardize(random_conv(y, w))))
        y = torch.where(reps > step, z, y)
    return y.to(x.dtype)


__all__ = [
    "FLAT_MAP",
    "STANDARDIZE_EPS",
    "blend_map",
    "frobenius_rescale",
    "gin",
    "gin_network",
    "grouped_conv",
    "ipa",
    "progressive_conv",
    "quadratic_bspline_basis",
    "standardize",
]
