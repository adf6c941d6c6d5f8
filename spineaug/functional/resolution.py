"""Batched resolution degradation (low resolution, thick slices) and field-of-view masks.

Resolution: one separable linear operator per sample.
--------------------------------------------------------
Degrading axis ``a`` of length ``n`` of sample ``b`` by a scale ``s_b`` (0 < s <= 1) means: resample to
``m_b = clamp(round(s_b * n), 1, n)`` samples and back. Both steps are linear maps along that axis, so the round trip
is one ``(n x n)`` matrix ``R_b = Up_b @ Down_b``. The intermediate size ``m_b`` differs per sample, but it is never
materialised: ``Down_b`` is stored as an ``(n x n)`` matrix whose rows ``j >= m_b`` are zero, and ``Up_b`` as an
``(n x n)`` matrix whose columns ``j >= m_b`` are zero. Both are built from continuous coordinates on the device
(``align_corners=False`` convention, voxel centres at integers, ``r = n / m`` input voxels per low-resolution sample):

* low-resolution sample ``j`` is centred at input coordinate ``c_j = (j + 0.5) r - 0.5`` and covers the input
  interval ``[j r, (j + 1) r)`` (voxel ``i`` covers ``[i, i + 1)``);
* ``Down`` rows, by ``down`` mode:

  - ``"nearest"``: input voxel ``floor((j + 0.5) r)`` (PyTorch's ``nearest-exact``; nnU-Net parity);
  - ``"linear"``: linear interpolation at ``c_j`` (point sampling, aliasing; what ``F.interpolate(mode="trilinear")``
    does, AugLab parity);
  - ``"box"``: average over the interval, each voxel weighted by its overlap ``/ r`` (slab/area average, a
    thick-slice profile of width ``1/s`` voxels);
  - ``"gaussian"``: Gaussian point-spread function, then linear sampling at ``c_j``. The Gaussian's FWHM is
    ``sqrt(r^2 - 1)`` voxels, so that combined with the native voxel profile (FWHM ~ 1) the simulated acquisition has
    FWHM ``r = 1/s``; at ``s = 1`` it is the identity. Rows are renormalised at the borders.

* ``Up`` rows (output voxel ``i`` reads low-resolution coordinate ``u_i = (i + 0.5) / r - 0.5``, clamped to
  ``[0, m - 1]``): ``"linear"`` (trilinear overall) or ``"nearest"`` (``nearest-exact``).

At ``s = 1`` every mode gives ``R = I``. The operator is applied with three batched matrix products (along D, H and
W); for ``n <= 256`` the matrices are tiny and nothing depends on data values, so there is no host synchronisation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spineaug.functional.intensity import work

DOWN_MODES = ("nearest", "linear", "box", "gaussian")
UP_MODES = ("linear", "nearest")
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def target_size(scale: Tensor, n: int) -> Tensor:
    """Low-resolution sizes ``clamp(round(scale * n), 1, n)`` (float tensor, integer values)."""
    return torch.round(scale.float() * n).clamp(1, n)


def down_matrix(m: Tensor, n: int, mode: str = "linear") -> Tensor:
    """Matrices that resample an axis of length ``n`` to ``m_b`` samples (rows ``j >= m_b`` are zero).

    Args:
        m: Low-resolution sizes, (B,), float with integer values in ``[1, n]``; its device is used.
        n: Axis length.
        mode: ``"nearest"``, ``"linear"``, ``"box"`` or ``"gaussian"`` (see the module docstring).

    Returns:
        (B, n, n) float32: row ``j`` holds the weights of low-resolution sample ``j`` over the input voxels.
    """
    if mode not in DOWN_MODES:
        raise ValueError(f"down mode must be one of {DOWN_MODES}, got {mode!r}")
    m = m.float()
    device = m.device
    r = (n / m).view(-1, 1, 1)  # input voxels per low-resolution sample
    j = torch.arange(n, device=device, dtype=torch.float32).view(1, -1, 1)
    i = torch.arange(n, device=device, dtype=torch.float32).view(1, 1, -1)
    valid = j < m.view(-1, 1, 1)
    if mode == "nearest":
        src = torch.floor((j + 0.5) * r).clamp_max(n - 1)
        w = (i == src).float()
    elif mode == "box":
        w = (torch.minimum(i + 1, (j + 1) * r) - torch.maximum(i, j * r)).clamp_min(0) / r
    else:
        c = ((j + 0.5) * r - 0.5).clamp(0, n - 1)
        w = (1 - (i - c).abs()).clamp_min(0)
        if mode == "gaussian":
            w = w @ gaussian_matrix(torch.sqrt((r.view(-1) ** 2 - 1).clamp_min(0)) / _FWHM_PER_SIGMA, n)
    return w * valid


def up_matrix(m: Tensor, n: int, mode: str = "linear") -> Tensor:
    """Matrices that resample ``m_b`` low-resolution samples back to ``n`` (columns ``j >= m_b`` are zero).

    Args:
        m: Low-resolution sizes, (B,), float with integer values in ``[1, n]``.
        n: Output axis length.
        mode: ``"linear"`` or ``"nearest"``.

    Returns:
        (B, n, n) float32: row ``i`` holds output voxel ``i``'s weights over the low-resolution samples.
    """
    if mode not in UP_MODES:
        raise ValueError(f"up mode must be one of {UP_MODES}, got {mode!r}")
    m = m.float().view(-1, 1, 1)
    device = m.device
    i = torch.arange(n, device=device, dtype=torch.float32).view(1, -1, 1)
    j = torch.arange(n, device=device, dtype=torch.float32).view(1, 1, -1)
    if mode == "nearest":
        src = torch.minimum(torch.floor((i + 0.5) * m / n), m - 1)
        return (j == src).float()
    u = torch.minimum(((i + 0.5) * m / n - 0.5).clamp_min(0), m - 1)
    return (1 - (j - u).abs()).clamp_min(0)


def gaussian_matrix(sigma: Tensor, n: int) -> Tensor:
    """Row-normalised Gaussian smoothing matrices ``G[i', i] ~ exp(-(i - i')^2 / (2 sigma^2))``; sigma < 1e-3 -> I.

    Args:
        sigma: (B,) standard deviations in voxels (any device).
        n: Axis length.

    Returns:
        (B, n, n) float32.
    """
    device = sigma.device
    t = torch.arange(n, device=device, dtype=torch.float32)
    diff = t.view(1, -1, 1) - t.view(1, 1, -1)
    s = sigma.float().view(-1, 1, 1)
    g = torch.exp(-0.5 * (diff / s.clamp_min(1e-3)) ** 2)
    g = g / g.sum(dim=2, keepdim=True)
    eye = torch.eye(n, device=device).expand_as(g)
    return torch.where(s < 1e-3, eye, g)


def resolution_matrix(scale: Tensor, n: int, down: str = "linear", up: str = "linear") -> Tensor:
    """Per-sample round-trip operators ``Up @ Down`` that lower the resolution of an axis by ``scale``.

    Args:
        scale: (B,) resolution factors in ``(0, 1]``; 1 gives the identity. Any device (the result lives there).
        n: Axis length.
        down: Down-sampling mode, see :func:`down_matrix`.
        up: Up-sampling mode, see :func:`up_matrix`.

    Returns:
        (B, n, n) float32 operators acting on column vectors along the axis.
    """
    m = target_size(scale, n)
    return up_matrix(m, n, up) @ down_matrix(m, n, down)


def apply_axis_operators(x: Tensor, operators: tuple[Tensor | None, Tensor | None, Tensor | None]) -> Tensor:
    """Apply one (n x n) matrix per sample along each spatial axis (``None`` skips the axis).

    Args:
        x: Images, (B, C, D, H, W).
        operators: ``(R_D, R_H, R_W)``, each (B, n_a, n_a) or ``None``.

    Returns:
        ``y[b] = R_D[b] x_b`` along D, then H, then W; like ``x`` (float32 compute, float64 for float64 images).
    """
    b, c, d, h, w = x.shape
    y = work(x)
    r_d, r_h, r_w = (
        None if r is None else r.to(x.device, y.dtype, non_blocking=True) for r in operators
    )
    if r_w is not None:
        y = y.matmul(r_w.transpose(1, 2).view(b, 1, 1, w, w))
    if r_h is not None:
        y = r_h.view(b, 1, 1, h, h).matmul(y)
    if r_d is not None:
        y = r_d.view(b, 1, d, d).matmul(y.reshape(b, c, d, h * w)).view(b, c, d, h, w)
    return y.to(x.dtype)


def box_mask(start: Tensor, stop: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Per-sample axis-aligned boxes as a boolean mask, from per-axis 1-D masks combined by outer product.

    Args:
        start: (B, 3) first voxel inside the box per axis (any device).
        stop: (B, 3) one past the last voxel inside.
        shape: (D, H, W).

    Returns:
        (B, 1, D, H, W) bool, True inside the box.
    """
    masks = []
    for axis, n in enumerate(shape):
        i = torch.arange(n, device=start.device)
        masks.append((i >= start[:, axis, None]) & (i < stop[:, axis, None]))
    m_d, m_h, m_w = masks
    return (m_d[:, :, None, None] & m_h[:, None, :, None] & m_w[:, None, None, :]).unsqueeze(1)


__all__ = [
    "DOWN_MODES",
    "UP_MODES",
    "apply_axis_operators",
    "box_mask",
    "down_matrix",
    "gaussian_matrix",
    "resolution_matrix",
    "target_size",
    "up_matrix",
]
