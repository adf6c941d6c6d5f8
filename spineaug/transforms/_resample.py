"""The resampling engine shared by every geometric transform: sampling maps, placements and the one resampling.

Each geometric transform only describes a :class:`Sampling` (a :class:`Warp`, and for the one entry that decides the
output patch a :class:`Placement`); :func:`resample` composes the warps of all of them and reads the image once
(trilinear) and the label once. When a sample's map is a pure crop/flip (known on the host, because parameters are
CPU tensors) it reads that sample's voxels by index instead, which is exact and cheaper.

Labels are never interpolated as floats: the nearest-neighbour read computes each output voxel's nearest source index
and gathers the label there, so every value of every integer dtype comes out exactly (a float32 round trip would
change values from 2**24 on). ``label_interpolation="onehot"`` (nnU-Net's choice) interpolates each label's indicator
linearly and keeps the label with the largest weight; it, too, only ever writes input values or the padding label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from spineaug.batch import Batch, put_rows, take_rows
from spineaug.functional import spatial as FS


@dataclass(frozen=True)
class Warp:
    """A per-sample sampling map ``r -> matrix @ r + shift`` in voxels, relative to the patch/volume centres.

    A sampling map sends an output point to the input point it reads, so moving the image by ``a`` and then by ``b``
    reads through ``a(b(r))``: :meth:`followed_by` and :meth:`compose` take the maps in the order they move the image.

    Attributes:
        matrix: (B, 3, 3), acting on (d, h, w) offsets from the output centre.
        shift: (B, 3) input voxels.
    """

    matrix: Tensor
    shift: Tensor

    def followed_by(self, later: Warp) -> Warp:
        """The map of moving the image by ``self`` first and by ``later`` next (reads ``self(later(r))``)."""
        return Warp(self.matrix @ later.matrix, (self.matrix @ later.shift[..., None])[..., 0] + self.shift)

    @staticmethod
    def compose(warps: Sequence[Warp], batch_size: int) -> Warp:
        """The map of moving the image by ``warps[0]``, then ``warps[1]``, and so on (identity when empty)."""
        total = Warp.identity(batch_size)
        for w in warps:
            total = total.followed_by(w)
        return total

    @staticmethod
    def identity(batch_size: int) -> Warp:
        """The identity map for ``batch_size`` samples."""
        return Warp(torch.eye(3).expand(batch_size, 3, 3).clone(), torch.zeros(batch_size, 3))


@dataclass(frozen=True)
class Placement:
    """Where the output lies in the input, how it deforms and what it reads outside the input.

    Attributes:
        shape: Output (D, H, W).
        centre: Input voxel coordinate of the output centre, (B, 3), on the data's device.
        control: Elastic control-point displacements in voxels, (B, 3, gd, gh, gw), or ``None``.
        pad_mode: Image padding, see :func:`spineaug.functional.spatial.warp_image`.
        pad_value: Image value for ``pad_mode="constant"``.
        label_pad: Label value read outside the input.
        label_mode: Label interpolation, ``"nearest"`` or ``"onehot"`` (see :func:`read_labels`).
    """

    shape: tuple[int, int, int]
    centre: Tensor
    control: Tensor | None = None
    pad_mode: str = "constant"
    pad_value: float = 0.0
    label_pad: int = 0
    label_mode: str = "nearest"

    @staticmethod
    def whole(batch: Batch) -> Placement:
        """Output = the whole input, no deformation, zero padding."""
        shape = batch.spatial_shape
        centre = torch.tensor([(n - 1) / 2 for n in shape], device=batch.image.device)
        return Placement(shape, centre.expand(batch.size, 3))


@dataclass(frozen=True)
class Sampling:
    """What one geometric transform contributes to the shared resampling.

    Attributes:
        warp: Its sampling map (CPU tensors).
        placement: The output patch, elastic field and padding, from the one entry that decides them; ``None`` for
            the others.
    """

    warp: Warp
    placement: Placement | None = None


def resample_all(batch: Batch, samplings: Sequence[Sampling]) -> Batch:
    """Resample once for several geometric transforms, given in the order they move the image.

    At most one of them may set a :class:`Placement`; without one the output is the whole input.
    """
    placements = [s.placement for s in samplings if s.placement is not None]
    if len(placements) > 1:
        raise ValueError("at most one geometric transform may set the output placement (one 'Spatial' entry)")
    return resample(batch, [s.warp for s in samplings], placements[0] if placements else None)


def _index_only(warp: Warp, control: Tensor | None) -> Tensor:
    """Per sample (B,) bool: the map is a flip about the centre, so voxels can be read by index, exactly.

    Host work on the CPU parameters: no device synchronisation.
    """
    m = warp.matrix
    diagonal = torch.diag_embed(torch.diagonal(m, dim1=-2, dim2=-1))
    flips = (m == diagonal).flatten(1).all(1) & (m.abs().sum(-1) == 1).all(1) & (warp.shift == 0).all(1)
    if control is not None:
        flips &= (control == 0).flatten(1).all(1)
    return flips


def _read_by_index(batch: Batch, matrix: Tensor, centre: Tensor, shape: tuple[int, int, int]) -> Batch:
    """Exact crop/flip around ``centre``: the flips are the signs on the diagonal of ``matrix`` (CPU)."""
    flips = torch.diagonal(matrix, dim1=-2, dim2=-1) < 0
    half = torch.tensor([(n - 1) / 2 for n in shape], device=centre.device)
    start = torch.round(centre - half).long()
    image = FS.gather_patch(batch.image, start, shape, flips)
    label = None if batch.label is None else FS.gather_patch(batch.label, start, shape, flips)
    return batch.replace(image=image, label=label)


def _read_by_grid(batch: Batch, warp: Warp, placement: Placement) -> Batch:
    """Trilinear image and nearest-neighbour label on one sampling grid (rotation, scaling, shear, elastic)."""
    device = batch.image.device
    control = None
    if placement.control is not None:
        control = placement.control.to(device, torch.float32, non_blocking=True)
    grid = FS.sampling_grid(
        placement.centre,
        warp.matrix.to(device, torch.float32, non_blocking=True),
        placement.shape,
        batch.spatial_shape,
        shift=warp.shift.to(device, torch.float32, non_blocking=True),
        control=control,
    )
    image = FS.warp_image(batch.image, grid, pad_mode=placement.pad_mode, pad_value=placement.pad_value)
    label = None
    if batch.label is not None:
        label = read_labels(batch.label, grid, pad_value=placement.label_pad, mode=placement.label_mode)
    return batch.replace(image=image, label=label)


LABEL_MODES = ("nearest", "onehot")
"""Label interpolations of :func:`read_labels`."""


_FLOAT32_EXACT = 2**24
"""float32 holds every integer up to here exactly: the largest volume whose voxel numbers it can carry."""


def _source_index(grid: Tensor, in_shape: tuple[int, int, int]) -> Tensor:
    """Nearest input voxel of every grid point, exactly as grid_sample's ``mode="nearest"`` picks it.

    ``grid_sample`` itself reads a volume holding each voxel's number + 1 (zero padding marks points outside), so the
    rounding and the bounds test are grid_sample's own, on every device, in one pass over the output. Volumes whose
    voxel numbers float32 cannot hold exactly reproduce its arithmetic per axis instead.

    Returns:
        (B, d*h*w) int64: 1 + the flat input index of each point, 0 where it lies outside.
    """
    b = grid.shape[0]
    count = in_shape[0] * in_shape[1] * in_shape[2]
    if count <= _FLOAT32_EXACT:
        numbers = torch.arange(1, count + 1, dtype=torch.float32, device=grid.device).view(1, 1, *in_shape)
        picked = FS.grid_sample(numbers.expand(b, -1, -1, -1, -1), grid.float(), mode="nearest", padding_mode="zeros")
        return picked.view(b, -1).long()
    flat = torch.zeros(b, grid[..., 0].numel() // b, dtype=torch.long, device=grid.device)
    inside = torch.ones_like(flat, dtype=torch.bool)
    stride = 1
    # grid lists (x, y, z) = (w, h, d); unnormalise as grid_sample does (align_corners=False) and round half to even.
    for axis, n in zip((0, 1, 2), (in_shape[2], in_shape[1], in_shape[0])):
        coord = grid[..., axis].reshape(b, -1).float()
        index = torch.round(((coord + 1) * n - 1) / 2)
        inside &= (index >= 0) & (index <= n - 1)
        flat += index.clamp(0, n - 1).long() * stride
        stride *= n
    return torch.where(inside, flat + 1, 0)


def _nearest_labels(y: Tensor, grid: Tensor, pad_value: int) -> Tensor:
    """Exact nearest-neighbour read: gather the label at each point's nearest source voxel (any integer dtype).

    The labels are read from a copy with ``pad_value`` in front, so index 0 (outside) gathers the padding.
    """
    b, c = y.shape[:2]
    number = _source_index(grid, tuple(y.shape[2:]))
    pad = torch.full((b, c, 1), pad_value, dtype=y.dtype, device=y.device)
    padded = torch.cat([pad, y.reshape(b, c, -1)], dim=2)
    return padded.gather(2, number[:, None, :].expand(b, c, -1)).view(b, c, *grid.shape[1:4])


def _onehot_labels(y: Tensor, grid: Tensor, pad_value: int) -> Tensor:
    """One-hot linear read: each label's indicator is interpolated trilinearly, the largest weight wins.

    Points outside the input count as ``pad_value``; ties go to the smaller label value (``argmax`` order). The label
    values are found with ``torch.unique``, one host synchronisation per call (the price of this option).
    """
    pad = torch.full((1,), pad_value, dtype=y.dtype, device=y.device)
    classes = torch.unique(torch.cat([y.flatten(), pad])).tolist()  # sorted
    best = out = None
    for value in classes:
        indicator = (y == value).float()
        constant = torch.full((), value, dtype=y.dtype, device=y.device)
        if value == pad_value:  # reads 1 outside the input: interpolate (indicator - 1) with zero padding, add 1
            weight = FS.grid_sample(indicator - 1, grid, mode="bilinear", padding_mode="zeros") + 1
        else:
            weight = FS.grid_sample(indicator, grid, mode="bilinear", padding_mode="zeros")
        if best is None:
            best, out = weight, constant.expand(weight.shape).clone()
        else:
            wins = weight > best
            best = torch.where(wins, weight, best)
            out = torch.where(wins, constant, out)
    return out


def read_labels(y: Tensor, grid: Tensor, *, pad_value: int = 0, mode: str = "nearest") -> Tensor:
    """Resample label maps on a sampling grid without any float round trip of the values.

    Args:
        y: Label maps, (B, C, D, H, W), any integer dtype.
        grid: (B, d, h, w, 3) from :func:`spineaug.functional.spatial.sampling_grid`.
        pad_value: Label read outside the input; must fit ``y.dtype``.
        mode: ``"nearest"`` (default: the nearest voxel's value, exactly as ``grid_sample(mode="nearest")`` picks
            it) or ``"onehot"`` (nnU-Net's: linear interpolation of each label's indicator, then argmax).

    Returns:
        Label maps, (B, C, d, h, w), same dtype and device as ``y``; every value is an input value or ``pad_value``.
    """
    if mode == "nearest":
        return _nearest_labels(y, grid, pad_value)
    if mode == "onehot":
        return _onehot_labels(y, grid, pad_value)
    raise ValueError(f"label interpolation must be one of {LABEL_MODES}, got {mode!r}")


def _select(batch: Batch, warp: Warp, placement: Placement, rows: Tensor) -> tuple[Batch, Warp, Placement]:
    """The samples ``rows`` (a CPU index) of a batch, its warp and its placement."""
    label = None if batch.label is None else take_rows(batch.label, rows)
    control = None if placement.control is None else placement.control[rows]
    return (
        batch.replace(image=take_rows(batch.image, rows), label=label),
        Warp(warp.matrix[rows], warp.shift[rows]),
        replace(placement, centre=take_rows(placement.centre, rows), control=control),
    )


def resample(batch: Batch, warps: Sequence[Warp], placement: Placement | None = None) -> Batch:
    """Apply composed sampling maps to image and label with one resampling each.

    Samples whose composed map is a pure crop/flip (known on the host, because parameters are CPU tensors) are read
    by index, which is exact and cheap; only the others pay for a sampling grid and interpolation.

    Args:
        batch: Input batch.
        warps: Sampling maps (CPU tensors) in the order they move the image (see :meth:`Warp.compose`).
        placement: Output shape, centre, elastic field and padding; defaults to the whole volume.

    Returns:
        The resampled batch; dtypes and device kept.
    """
    placement = placement or Placement.whole(batch)
    placement = replace(placement, centre=placement.centre.to(batch.image.device).float())
    total = Warp.compose(warps, batch.size)
    by_index = _index_only(total, placement.control)
    if bool(by_index.all()):
        return _read_by_index(batch, total.matrix, placement.centre, placement.shape)
    if not bool(by_index.any()):
        return _read_by_grid(batch, total, placement)
    # Mixed batch: each subset takes its own path; the results go back in batch order.
    rows_i, rows_g = by_index.nonzero().flatten(), (~by_index).nonzero().flatten()
    sub_batch, sub_warp, sub_place = _select(batch, total, placement, rows_i)
    indexed = _read_by_index(sub_batch, sub_warp.matrix, sub_place.centre, placement.shape)
    gridded = _read_by_grid(*_select(batch, total, placement, rows_g))
    image = _interleave(batch.size, [(rows_i, indexed.image), (rows_g, gridded.image)])
    label = None
    if batch.label is not None:
        label = _interleave(batch.size, [(rows_i, indexed.label), (rows_g, gridded.label)])
    return batch.replace(image=image, label=label)


def _interleave(size: int, parts: list[tuple[Tensor, Tensor]]) -> Tensor:
    """A batch of ``size`` rows from ``(row indices on the CPU, rows)`` parts that together cover every row once."""
    first = parts[0][1]
    out = first.new_empty((size, *first.shape[1:]))
    for rows, values in parts:
        put_rows(out, rows, values)
    return out
