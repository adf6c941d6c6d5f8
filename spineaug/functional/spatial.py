"""Batched geometry: rotation/scale/shear matrices, sampling grids and one-pass warps of images and label maps.

Conventions (used everywhere in spineaug):

* Volumes are ``(B, C, D, H, W)``; points are voxel coordinates in array-axis order ``(d, h, w)``, voxel centres at
  integers.
* A *sampling map* sends a point ``r`` of the output patch, measured from the patch centre, to the input point
  ``centre + matrix @ (r + field(r)) + shift``. Composing transforms composes sampling maps, so any number of spatial
  transforms costs one resampling.
* ``grid_sample`` wants normalised ``(x, y, z) = (w, h, d)`` coordinates with ``align_corners=False``; the one place
  that converts is :func:`sampling_grid`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGE_PAD_MODES = ("constant", "edge", "reflect", "min")
RotationOrder = Literal["w_first", "d_first"]


def rotation_matrix(angles: Tensor, *, order: RotationOrder = "w_first") -> Tensor:
    """Build rotation matrices from angles about the D, H and W axes.

    ``order="w_first"`` gives ``R_d @ R_h @ R_w`` (the column vector is turned about W first, then H, then D);
    ``order="d_first"`` gives ``R_w @ R_h @ R_d``, nnU-Net's ``Rz @ Ry @ Rx`` (batchgeneratorsv2's
    ``create_affine_matrix_3d``: its angles are in array-axis order too, x = D). A rotation about axis ``a`` turns
    the plane of the two other axes; positive angles turn the first of them towards the second (about D: from H
    towards W), as in nnU-Net.

    Args:
        angles: Radians, (B, 3), in (d, h, w) order.
        order: Which axis' rotation acts on the vector first.

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
    if order == "d_first":
        return r_w @ r_h @ r_d
    if order != "w_first":
        raise ValueError(f"order must be 'w_first' or 'd_first', got {order!r}")
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


def affine_matrix(
    angles: Tensor, scale: Tensor, shear: Tensor | None = None, *, order: RotationOrder = "w_first"
) -> Tensor:
    """Compose rotation, (optional) shear and per-axis scaling of the sampling coordinates.

    Args:
        angles: Radians, (B, 3), (d, h, w) order.
        order: Rotation order, see :func:`rotation_matrix` (``"d_first"`` is nnU-Net's).
        scale: Sampling-grid scale per axis, (B, 3); values above 1 sample a larger region, so anatomy looks
            smaller (nnU-Net's convention).
        shear: Radians, (B, 6) or ``None``.

    Returns:
        (B, 3, 3) matrix ``R @ Sh @ diag(scale)``.
    """
    m = rotation_matrix(angles, order=order)
    if shear is not None:
        m = m @ shear_matrix(shear)
    return m * scale[:, None, :]


def sampling_grid(
    centre: Tensor,
    matrix: Tensor,
    out_shape: tuple[int, int, int],
    in_shape: tuple[int, int, int],
    *,
    shift: Tensor | None = None,
    control: Tensor | None = None,
) -> Tensor:
    """The ``grid_sample`` grid of a sampling map, built in one pass over the output.

    Output voxel ``r`` (measured from the output centre) reads the input point
    ``centre + matrix @ (r + field(r)) + shift``, where ``field`` interpolates the elastic ``control`` displacements
    (trilinear, control points on the output corners). The map is affine in ``r`` and the field is linear in
    ``control``, so the conversion to normalised coordinates is folded into the 3x3 matrices and into the coarse
    control grid: the dense grid is a sum of three per-axis terms (plus the upsampled field), not a matrix product
    per voxel.

    Args:
        centre: Input voxel coordinate of the output centre, (B, 3), (d, h, w).
        matrix: Sampling matrices, (B, 3, 3), acting on (d, h, w) column vectors.
        out_shape: Output (D, H, W).
        in_shape: Input (D, H, W).
        shift: Extra translation in input voxels, (B, 3), or ``None``.
        control: Elastic control-point displacements in output voxels, (B, 3, gd, gh, gw), (d, h, w)
            components, or ``None``.

    Returns:
        (B, D, H, W, 3) float32 grid of normalised ``(x, y, z) = (w, h, d)`` coordinates for
        ``grid_sample(..., align_corners=False)``: a view of component-major storage, not contiguous.
    """
    device = matrix.device
    size = torch.tensor(in_shape, device=device, dtype=torch.float32)
    # Voxel coordinate p on an input axis of n voxels -> (2p + 1) / n - 1; rows reversed to grid_sample's (x, y, z).
    a = (matrix.float() * (2 / size)[None, :, None]).flip(1)
    offset = centre.float() if shift is None else centre.float() + shift.float()
    offset = (offset * (2 / size) + 1 / size - 1).flip(1)
    axes = [torch.arange(n, device=device, dtype=torch.float32) - (n - 1) / 2 for n in out_shape]
    along = [a[:, :, j, None] * axes[j] for j in range(3)]  # (B, 3, n_j) each
    # Built component-major, (B, 3, D, H, W), so the one full-size sum runs along contiguous W rows (a coordinate-
    # last sum would broadcast in runs of 3); grid_sample reads the permuted view through its strides.
    plane = (along[0] + offset[:, :, None])[..., None] + along[1][:, :, None, :]  # (B, 3, D, H)
    grid = plane[..., None] + along[2][:, :, None, None, :]
    if control is not None:
        coarse = torch.einsum("bij,bj...->bi...", a, control.float())
        grid += F.interpolate(coarse, size=out_shape, mode="trilinear", align_corners=True)
    return grid.permute(0, 2, 3, 4, 1)


def grid_sample(x: Tensor, grid: Tensor, *, mode: str, padding_mode: str) -> Tensor:
    """``F.grid_sample(..., align_corners=False)`` of a 3-D batch, using every CPU thread for a single sample too.

    PyTorch's CPU kernel for volumes parallelises over the batch only, so one sample runs on one thread. For a single
    sample on the CPU the output depth is cut into as many equal slabs as there are threads (views of the grid; the
    input is shared by a stride-0 batch), which samples every point exactly as one call would.
    """
    d = grid.shape[1]
    slabs = 1
    if x.device.type == "cpu" and x.shape[0] == 1:
        slabs = max(k for k in range(1, min(torch.get_num_threads(), d) + 1) if d % k == 0)
    if slabs == 1:
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    parts = grid.reshape(slabs, d // slabs, *grid.shape[2:])
    shared = x.expand(slabs, -1, -1, -1, -1)
    out = F.grid_sample(shared, parts, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.transpose(0, 1).reshape(1, x.shape[1], d, *grid.shape[2:4])


def warp_image(x: Tensor, grid: Tensor, *, pad_mode: str = "constant", pad_value: float = 0.0) -> Tensor:
    """Resample images trilinearly on a sampling grid.

    Args:
        x: Images, (B, C, D, H, W), floating point.
        grid: (B, d, h, w, 3) from :func:`sampling_grid`.
        pad_mode: What points outside the input read: ``"constant"`` (``pad_value``), ``"edge"`` (nearest border
            voxel), ``"reflect"`` (mirrored at the border) or ``"min"`` (each sample's and channel's minimum).
        pad_value: The value for ``pad_mode="constant"``.

    Returns:
        Images, (B, C, d, h, w), same dtype and device as ``x``.
    """
    if pad_mode not in IMAGE_PAD_MODES:
        raise ValueError(f"pad_mode must be one of {IMAGE_PAD_MODES}, got {pad_mode!r}")
    # float64 images are resampled in float64 (values beyond the float32 range stay finite); the others in float32.
    src = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    grid = grid.to(src.dtype)
    offset: Tensor | float = 0.0
    if pad_mode == "min":
        offset = src.amin(dim=(2, 3, 4), keepdim=True)
    elif pad_mode == "constant":
        offset = pad_value
    padding = {"edge": "border", "reflect": "reflection"}.get(pad_mode, "zeros")
    shifted = isinstance(offset, Tensor) or offset != 0
    if shifted:
        src = src - offset
    out = grid_sample(src, grid, mode="bilinear", padding_mode=padding)
    if shifted:
        out += offset
    return out.to(x.dtype)


def warp_labels(y: Tensor, grid: Tensor, *, pad_value: int = 0) -> Tensor:
    """Resample label maps with nearest neighbour on a sampling grid.

    Every output value is an input value or ``pad_value`` (for points outside the input).

    Args:
        y: Label maps, (B, 1, D, H, W), integer.
        grid: (B, d, h, w, 3) from :func:`sampling_grid`.
        pad_value: Label read outside the input.

    Returns:
        Label maps, (B, 1, d, h, w), same dtype as ``y``.
    """
    # float32 holds every integer below 2**24 exactly, far above any label count, and nearest-neighbour sampling
    # only copies values (or writes the zero padding), so the round trip is exact.
    src = y.to(torch.float32)
    if pad_value:
        src = src - pad_value
    out = F.grid_sample(src, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if pad_value:
        out += pad_value
    return out.to(y.dtype)


def gather_patch(x: Tensor, start: Tensor, shape: tuple[int, int, int], flips: Tensor) -> Tensor:
    """Read a per-sample box of voxels, optionally mirrored per axis: an exact crop/flip, no interpolation.

    The box is copied as whole rows along W by one ``index_select`` on a view of ``x`` that has a row
    starting at every voxel, so the cost is about one copy of the output; mirroring along D or H only
    reorders the rows. A sample that mirrors W gets its rows in reverse order, so that reversing its whole
    block of the output end to end reverses every row and puts the rows back in place: a reversed copy of
    the samples that flip W, written back (through a view when they are one run of the batch, otherwise by
    index: one more copy each way). A whole-volume box that all samples mirror alike is one ``flip`` of ``x``.

    Args:
        x: Volumes, (B, C, D, H, W), any dtype.
        start: First input voxel of each sample's box, (B, 3) integer, (d, h, w); the box must lie in the input.
        shape: Box size (d, h, w).
        flips: Which samples mirror which axis, (B, 3) bool, on the CPU (host-known, so no synchronisation).

    Returns:
        (B, C, d, h, w), contiguous: ``out[b, :, i, j, k] = x[b, :, s_d + i', s_h + j', s_w + k']`` with
        ``i' = i`` or ``d - 1 - i`` when sample ``b`` flips D (likewise for H and W).
    """
    x = x.contiguous()
    b, c = x.shape[:2]
    if tuple(shape) == tuple(x.shape[2:]) and bool((flips == flips[:1]).all()):
        # The box is the whole volume, so every start is 0, and all samples mirror the same axes.
        dims = [2 + axis for axis in range(3) if bool(flips[:1, axis].any())]
        return x.flip(dims) if dims else x.clone()
    first = _row_starts(x, start, shape, flips)  # (B, C*d*h): flat index of each output row's first voxel
    turn = flips[:, 2].nonzero().flatten()  # the samples that flip W, on the CPU like flips
    if len(turn):
        first = torch.where(flips[:, 2, None].to(x.device, non_blocking=True), first.flip(1), first)
    out = _rows(x.flatten(), shape[2]).index_select(0, first.flatten()).view(b, c * math.prod(shape))
    if len(turn) == b:
        out = out.flip(1)
    elif len(turn) and int(turn[-1] - turn[0]) + 1 == len(turn):
        run = slice(int(turn[0]), int(turn[-1]) + 1)
        out[run] = out[run].flip(1)
    elif len(turn):
        turn = turn.to(x.device, non_blocking=True)
        out.index_copy_(0, turn, out.index_select(0, turn).flip(1))
    return out.view(b, c, *shape)


def _row_starts(x: Tensor, start: Tensor, shape: tuple[int, int, int], flips: Tensor) -> Tensor:
    """Flat index in contiguous ``x`` of the first voxel of each row of a gather_patch box: (B, C*d*h).

    The rows are listed in output order (channel, then d, then h); D and H flips only reverse their order.
    """
    b, c, depth, height, width = x.shape
    device = x.device
    start = start.to(device).long()
    flips_dev = flips.to(device, non_blocking=True)
    along = []
    for axis in (0, 1):
        n = shape[axis]
        r = torch.arange(n, device=device)
        along.append(start[:, axis, None] + torch.where(flips_dev[:, axis, None], n - 1 - r, r))  # (B, n)
    planes = torch.arange(b * c, device=device).view(b, c, 1) * depth + along[0][:, None, :]  # (B, C, d)
    rows = planes[..., None] * height + along[1][:, None, None, :]  # (B, C, d, h)
    return (rows * width + start[:, 2].view(b, 1, 1, 1)).view(b, c * shape[0] * shape[1])


def _rows(flat: Tensor, width: int) -> Tensor:
    """A view of contiguous 1-D ``flat`` as (numel - width + 1, width): row ``k`` is ``flat[k:k + width]``."""
    return flat.as_strided((max(flat.numel() - width + 1, 0), width), (1, 1))


def degrees_to_radians(x: Tensor) -> Tensor:
    """Convert degrees to radians."""
    return x * (math.pi / 180.0)
