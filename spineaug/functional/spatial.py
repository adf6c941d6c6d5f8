"""Batched geometry: rotation/scale/shear matrices, sampling grids and one-pass warps of images and label maps.

Conventions (used everywhere in spineaug):

* Volumes are ``(B, C, D, H, W)``; points are voxel coordinates in array-axis order ``(d, h, w)``, voxel centres at
  integers.
* A *sampling map* sends a point ``r`` of the output patch, measured from the patch centre, to the input point
  ``centre + matrix @ (r + field(r)) + shift``. Composing transforms composes sampling maps, so any number of spatial
  transforms costs one resampling.
* ``grid_sample`` wants normalised ``(x, y, z) = (w, h, d)`` coordinates with ``align_corners=False``; the one place
  that converts is :func:`to_grid_sample_coords`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGE_PAD_MODES = ("constant", "edge", "reflect", "min")


def rotation_matrix(angles: Tensor) -> Tensor:
    """Build rotation matrices from angles about the D, H and W axes.

    The result is ``R_d @ R_h @ R_w``: a rotation about the W axis first, then H, then D. A rotation about axis
    ``a`` turns the plane of the two other axes; positive angles turn the first of them towards the second
    (about D: from H towards W).

    Args:
        angles: Radians, (B, 3), in (d, h, w) order.

    Returns:
        (B, 3, 3) rotation matrices acting on (d, h, w) column vectors.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(angles[:, 0]), torch.zeros_like(angles[:, 0])

    def plane(c: Tensor, s: Tensor, i: int, j: int) -> Tensor:
        rows = [[one, zero, zero], [zero, one, zero], [zero, zero, one]]
        rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    r_d = plane(cos[:, 0], sin[:, 0], 1, 2)  # about D: turns H towards W
    r_h = plane(cos[:, 1], sin[:, 1], 2, 0)  # about H: turns W towards D
    r_w = plane(cos[:, 2], sin[:, 2], 0, 1)  # about W: turns D towards H
    return r_d @ r_h @ r_w


def shear_matrix(shear: Tensor) -> Tensor:
    """Build shear matrices from six shear angles.

    Args:
        shear: Radians, (B, 6): the shear of d along h, d along w, h along d, h along w, w along d, w along h.

    Returns:
        (B, 3, 3) matrices with ones on the diagonal and ``tan(angle)`` off it.
    """
    t = torch.tan(shear)
    one = torch.ones_like(t[:, 0])
    rows = [[one, t[:, 0], t[:, 1]], [t[:, 2], one, t[:, 3]], [t[:, 4], t[:, 5], one]]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def affine_matrix(angles: Tensor, scale: Tensor, shear: Tensor | None = None) -> Tensor:
    """Compose rotation, (optional) shear and per-axis scaling of the sampling coordinates.

    Args:
        angles: Radians, (B, 3), (d, h, w) order.
        scale: Sampling-grid scale per axis, (B, 3); values above 1 sample a larger region, so anatomy looks
            smaller (nnU-Net's convention).
        shear: Radians, (B, 6) or ``None``.

    Returns:
        (B, 3, 3) matrix ``R @ Sh @ diag(scale)``.
    """
    m = rotation_matrix(angles)
    if shear is not None:
        m = m @ shear_matrix(shear)
    return m * scale[:, None, :]


def upsample_field(control: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Interpolate coarse control-point displacements to a dense field.

    Args:
        control: Displacements in voxels, (B, 3, gd, gh, gw), (d, h, w) components.
        shape: Output (D, H, W).

    Returns:
        Dense displacements, (B, D, H, W, 3), (d, h, w) components; control points sit on the patch corners.
    """
    dense = F.interpolate(control, size=shape, mode="trilinear", align_corners=True)
    return dense.permute(0, 2, 3, 4, 1)


def sample_points(
    centre: Tensor,
    matrix: Tensor,
    shape: tuple[int, int, int],
    *,
    shift: Tensor | None = None,
    field: Tensor | None = None,
) -> Tensor:
    """Input voxel coordinates sampled by every output voxel.

    Args:
        centre: Input coordinate of the output patch centre, (B, 3).
        matrix: Sampling matrices, (B, 3, 3).
        shape: Output (D, H, W).
        shift: Extra translation in input voxels, (B, 3), or ``None``.
        field: Dense displacement in output voxels, (B, D, H, W, 3), or ``None``.

    Returns:
        Points, (B, D, H, W, 3), (d, h, w) voxel coordinates in the input.
    """
    axes = [torch.arange(n, device=matrix.device, dtype=matrix.dtype) - (n - 1) / 2 for n in shape]
    r = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (D, H, W, 3)
    r = r.expand(matrix.shape[0], *shape, 3)
    if field is not None:
        r = r + field
    offset = centre if shift is None else centre + shift
    return torch.einsum("bij,bdhwj->bdhwi", matrix, r) + offset[:, None, None, None, :]


def to_grid_sample_coords(points: Tensor, in_shape: tuple[int, int, int]) -> Tensor:
    """Convert (d, h, w) voxel coordinates to ``grid_sample``'s normalised (x, y, z) with ``align_corners=False``."""
    size = torch.tensor(in_shape, device=points.device, dtype=points.dtype)
    normalised = (2 * points + 1) / size - 1
    return normalised.flip(-1)


def warp_image(x: Tensor, points: Tensor, *, pad_mode: str = "constant", pad_value: float = 0.0) -> Tensor:
    """Resample images trilinearly at the given input points.

    Args:
        x: Images, (B, C, D, H, W), floating point.
        points: Input voxel coordinates, (B, d, h, w, 3), from :func:`sample_points`.
        pad_mode: What points outside the input read: ``"constant"`` (``pad_value``), ``"edge"`` (nearest border
            voxel), ``"reflect"`` (mirrored at the border) or ``"min"`` (each sample's and channel's minimum).
        pad_value: The value for ``pad_mode="constant"``.

    Returns:
        Images, (B, C, d, h, w), same dtype and device as ``x``.
    """
    if pad_mode not in IMAGE_PAD_MODES:
        raise ValueError(f"pad_mode must be one of {IMAGE_PAD_MODES}, got {pad_mode!r}")
    grid = to_grid_sample_coords(points.to(torch.float32), tuple(x.shape[2:]))
    src = x.to(torch.float32)
    offset: Tensor | float = 0.0
    if pad_mode == "min":
        offset = src.amin(dim=(2, 3, 4), keepdim=True)
    elif pad_mode == "constant":
        offset = pad_value
    padding = {"edge": "border", "reflect": "reflection"}.get(pad_mode, "zeros")
    out = F.grid_sample(src - offset, grid, mode="bilinear", padding_mode=padding, align_corners=False) + offset
    return out.to(x.dtype)


def warp_labels(y: Tensor, points: Tensor, *, pad_value: int = 0) -> Tensor:
    """Resample label maps with nearest neighbour at the given input points.

    Every output value is an input value or ``pad_value`` (for points outside the input).

    Args:
        y: Label maps, (B, 1, D, H, W), integer.
        points: Input voxel coordinates, (B, d, h, w, 3).
        pad_value: Label read outside the input.

    Returns:
        Label maps, (B, 1, d, h, w), same dtype as ``y``.
    """
    grid = to_grid_sample_coords(points.to(torch.float32), tuple(y.shape[2:]))
    # float32 holds every integer below 2**24 exactly, far above any label count.
    src = y.to(torch.float32) - pad_value
    out = F.grid_sample(src, grid, mode="nearest", padding_mode="zeros", align_corners=False) + pad_value
    return out.round().to(y.dtype)


def gather_patch(x: Tensor, index: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Read a per-sample box of voxels by integer index: an exact crop/flip, no interpolation.

    Args:
        x: Volumes, (B, C, D, H, W), any dtype.
        index: Per-axis input indices ``(B, d)``, ``(B, h)``, ``(B, w)``, all in range.

    Returns:
        (B, C, d, h, w) with ``out[b, c, i, j, k] = x[b, c, index[0][b, i], index[1][b, j], index[2][b, k]]``.
    """
    i_d, i_h, i_w = index
    b, c = x.shape[:2]
    _, h, w = x.shape[2:]
    flat = (i_d[:, :, None, None] * h + i_h[:, None, :, None]) * w + i_w[:, None, None, :]  # (B, d, h, w)
    out = x.reshape(b, c, -1).gather(2, flat.reshape(b, 1, -1).expand(b, c, -1))
    return out.view(b, c, *flat.shape[1:])


def flip(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Flip the samples selected by ``mask`` along one spatial axis.

    Args:
        x: Volumes, (B, C, D, H, W).
        mask: Which samples to flip, (B,), bool.
        dim: Spatial axis, 0 (D), 1 (H) or 2 (W).

    Returns:
        Tensor like ``x``.
    """
    m = mask.to(x.device).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(m, x.flip(2 + dim), x)


def degrees_to_radians(x: Tensor) -> Tensor:
    """Convert degrees to radians."""
    return x * (math.pi / 180.0)
