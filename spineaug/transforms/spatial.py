"""Geometric transforms (Spatial, Affine, Flip) and the single resampling they share.

Each geometric transform only describes a sampling map (:class:`~spineaug.transforms.base.Warp`); ``resample``
composes the maps of all of them and reads the image once (trilinear) and the label once (nearest neighbour). When
every map is a pure crop/flip (known on the host, because parameters are CPU tensors) it reads voxels by index
instead, which is exact and cheaper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import spatial as F
from spineaug.transforms.base import RandomTransform, Warp
from spineaug.validation import Axes, NonNegativeRange, PositiveInt, PositiveRange, Probability, Range

PatchSize = tuple[PositiveInt, PositiveInt, PositiveInt]
PadMode = Literal["constant", "edge", "reflect", "min"]


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
    """

    shape: tuple[int, int, int]
    centre: Tensor
    control: Tensor | None = None
    pad_mode: str = "constant"
    pad_value: float = 0.0
    label_pad: int = 0

    @staticmethod
    def whole(batch: Batch) -> Placement:
        """Output = the whole input, no deformation, zero padding."""
        shape = batch.spatial_shape
        centre = torch.tensor([(n - 1) / 2 for n in shape], device=batch.image.device)
        return Placement(shape, centre.expand(batch.size, 3))


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
    image = F.gather_patch(batch.image, start, shape, flips)
    label = None if batch.label is None else F.gather_patch(batch.label, start, shape, flips)
    return batch.replace(image=image, label=label)


def _read_by_grid(batch: Batch, warp: Warp, placement: Placement) -> Batch:
    """Trilinear image and nearest-neighbour label on one sampling grid (rotation, scaling, shear, elastic)."""
    device = batch.image.device
    control = None
    if placement.control is not None:
        control = placement.control.to(device, torch.float32, non_blocking=True)
    grid = F.sampling_grid(
        placement.centre,
        warp.matrix.to(device, torch.float32, non_blocking=True),
        placement.shape,
        batch.spatial_shape,
        shift=warp.shift.to(device, torch.float32, non_blocking=True),
        control=control,
    )
    image = F.warp_image(batch.image, grid, pad_mode=placement.pad_mode, pad_value=placement.pad_value)
    label = None if batch.label is None else F.warp_labels(batch.label, grid, pad_value=placement.label_pad)
    return batch.replace(image=image, label=label)


def _select(batch: Batch, warp: Warp, placement: Placement, rows: Tensor) -> tuple[Batch, Warp, Placement]:
    """The samples ``rows`` (a CPU index) of a batch, its warp and its placement."""
    dev = rows.to(batch.image.device, non_blocking=True)
    label = None if batch.label is None else batch.label.index_select(0, dev)
    control = None if placement.control is None else placement.control[rows]
    return (
        batch.replace(image=batch.image.index_select(0, dev), label=label),
        Warp(warp.matrix[rows], warp.shift[rows]),
        replace(placement, centre=placement.centre.index_select(0, dev), control=control),
    )


def resample(batch: Batch, warps: list[Warp], placement: Placement | None = None) -> Batch:
    """Apply composed sampling maps to image and label with one resampling each.

    Samples whose composed map is a pure crop/flip (known on the host, because parameters are CPU tensors) are read
    by index, which is exact and cheap; only the others pay for a sampling grid and interpolation.

    Args:
        batch: Input batch.
        warps: Sampling maps (CPU tensors) in pipeline order; the first is applied to the image first.
        placement: Output shape, centre, elastic field and padding; defaults to the whole volume.

    Returns:
        The resampled batch; dtypes and device kept.
    """
    placement = placement or Placement.whole(batch)
    placement = replace(placement, centre=placement.centre.to(batch.image.device).float())
    total = Warp.identity(batch.size)
    for w in warps:
        total = total.then(w)
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
        out.index_copy_(0, rows.to(out.device, non_blocking=True), values)
    return out


class GeometricTransform(RandomTransform):
    """A transform that moves voxels; image and label are resampled together, once, with the pipeline's other moves.

    Subclasses implement ``warp(params, batch)``; the pipeline composes the warps of all geometric entries (and at
    most one :class:`~spineaug.transforms.spatial.RandomSpatial`, which adds crop and elastic deformation) and
    resamples once.
    """

    geometric: ClassVar[bool] = True

    def warp(self, params: object, batch: Batch) -> Warp:
        """Return the sampling map these parameters describe (CPU tensors)."""
        raise NotImplementedError

    def apply(self, batch: Batch, params: object) -> Batch:
        return resample(batch, [self.warp(params, batch)])



def _angle_ranges(degrees: tuple) -> list[tuple[float, float]]:
    """Normalise one range or three per-axis ranges (degrees) to three ranges."""
    return [tuple(degrees)] * 3 if isinstance(degrees[0], (int, float)) else [tuple(r) for r in degrees]


def _draw_angles(generator: torch.Generator, n: int, ranges: list[tuple[float, float]], fire: Tensor) -> Tensor:
    angles = torch.stack([sample.uniform(generator, (n,), lo, hi) for lo, hi in ranges], dim=1)
    return F.degrees_to_radians(torch.where(fire[:, None], angles, torch.zeros(())))


@dataclass(frozen=True)
class SpatialParams:
    """Parameters of :class:`RandomSpatial`; skipped samples hold angle 0, scale 1, zero displacement."""

    angles: Tensor  # (B, 3) radians
    scale: Tensor  # (B, 3)
    control: Tensor | None  # (B, 3, gd, gh, gw) voxels; None when elastic deformation is off
    crop_u: Tensor  # (B, 3) in [0, 1): random crop position
    foreground_u: Tensor  # (B,) in [0, 1): which foreground voxel to centre on
    use_foreground: Tensor  # (B,) bool


class RandomSpatial(GeometricTransform):
    """nnU-Net-style rotation, scaling, elastic deformation and crop to a patch, all in one resampling.

    Args:
        patch_size: Output (D, H, W); ``None`` keeps the input shape. Must not exceed the input.
        p_rotation: Per-sample probability of rotating; when it fires, every axis draws an angle.
        rotation_deg: One ``(low, high)`` range for all axes or three per-axis ranges, in degrees.
        p_scale: Per-sample probability of scaling.
        scale: Range of the sampling-grid scale; above 1 zooms out (anatomy looks smaller), as in nnU-Net.
        per_axis_scale: Draw a scale per axis instead of one isotropic factor.
        p_elastic: Per-sample probability of an elastic deformation.
        elastic_magnitude: Range of the largest control-point displacement, in voxels.
        elastic_spacing: Control-point spacing in voxels (larger = smoother field).
        p_foreground: Per-sample probability of centring the crop on a random foreground voxel of the label
            (otherwise the crop is uniform over valid positions).
        pad_mode: Image read outside the input: ``constant`` (``pad_value``), ``edge``, ``reflect`` or ``min``
            (each sample's minimum).
        pad_value: Image padding value for ``pad_mode="constant"``.
        label_pad: Label read outside the input (background by default).
        p: Per-sample probability that rotation, scaling and deformation are considered at all; the crop always
            happens.
    """

    name = "Spatial"

    def __init__(
        self,
        patch_size: PatchSize | None = None,
        p_rotation: Probability = 0.2,
        rotation_deg: Range | tuple[Range, Range, Range] = (-30.0, 30.0),
        p_scale: Probability = 0.2,
        scale: PositiveRange = (0.7, 1.4),
        per_axis_scale: bool = False,
        p_elastic: Probability = 0.0,
        elastic_magnitude: NonNegativeRange = (0.0, 4.0),
        elastic_spacing: PositiveInt = 16,
        p_foreground: Probability = 0.0,
        pad_mode: PadMode = "constant",
        pad_value: float = 0.0,
        label_pad: int = 0,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.patch_size = None if patch_size is None else tuple(patch_size)
        self.p_rotation, self.rotation = p_rotation, _angle_ranges(rotation_deg)
        self.p_scale, self.scale, self.per_axis_scale = p_scale, tuple(scale), per_axis_scale
        self.p_elastic, self.elastic_magnitude, self.elastic_spacing = p_elastic, elastic_magnitude, elastic_spacing
        self.p_foreground = p_foreground
        self.pad_mode, self.pad_value, self.label_pad = pad_mode, pad_value, label_pad

    def output_shape(self, batch: Batch) -> tuple[int, int, int]:
        """The patch shape for this batch; raises when ``patch_size`` exceeds the input."""
        if self.patch_size is None:
            return batch.spatial_shape
        if any(p > s for p, s in zip(self.patch_size, batch.spatial_shape)):
            raise ValueError(
                f"Spatial: patch_size {list(self.patch_size)} is larger than the input's spatial shape "
                f"{list(batch.spatial_shape)}"
            )
        return self.patch_size

    def sample_params(self, batch: Batch, generator: torch.Generator) -> SpatialParams:
        n = batch.size
        shape = self.output_shape(batch)
        on = sample.bernoulli(generator, (n,), self.p)
        rotate = on & sample.bernoulli(generator, (n,), self.p_rotation)
        angles = _draw_angles(generator, n, self.rotation, rotate)
        do_scale = on & sample.bernoulli(generator, (n,), self.p_scale)
        k = 3 if self.per_axis_scale else 1
        scale = sample.uniform(generator, (n, k), *self.scale).expand(n, 3)
        scale = torch.where(do_scale[:, None], scale, torch.ones(()))
        control = None
        if self.p_elastic > 0:
            deform = on & sample.bernoulli(generator, (n,), self.p_elastic)
            grid = [max(2, math.ceil((s - 1) / self.elastic_spacing) + 1) for s in shape]
            magnitude = sample.uniform(generator, (n,), *self.elastic_magnitude) * deform
            control = sample.uniform(generator, (n, 3, *grid), -1.0, 1.0) * magnitude.view(n, 1, 1, 1, 1)
            if not bool(deform.any()):  # CPU tensor: no sample deforms, keep the exact index path possible
                control = None
        return SpatialParams(
            angles=angles,
            scale=scale,
            control=control,
            crop_u=torch.rand((n, 3), generator=generator),
            foreground_u=torch.rand((n,), generator=generator),
            use_foreground=sample.bernoulli(generator, (n,), self.p_foreground),
        )

    def warp(self, params: SpatialParams, batch: Batch) -> Warp:
        return Warp(F.affine_matrix(params.angles, params.scale), torch.zeros(params.angles.shape[0], 3))

    def placement(self, params: SpatialParams, batch: Batch) -> Placement:
        """Crop position (random or on a foreground voxel), elastic field and padding for these parameters."""
        device = batch.image.device
        in_shape = torch.tensor(batch.spatial_shape, device=device)
        shape = self.output_shape(batch)
        out_shape = torch.tensor(shape, device=device)
        room = in_shape - out_shape  # largest valid start per axis
        crop_u = params.crop_u.to(device, non_blocking=True)
        start = torch.minimum(torch.floor(crop_u * (room + 1)).long(), room)
        if batch.label is not None and self.p_foreground > 0:
            fg_start, has_fg = _foreground_start(
                batch.label, params.foreground_u.to(device, non_blocking=True), out_shape, room
            )
            use = params.use_foreground.to(device, non_blocking=True) & has_fg
            start = torch.where(use[:, None], fg_start, start)
        centre = start.float() + (out_shape.float() - 1) / 2
        return Placement(
            shape=shape,
            centre=centre,
            control=params.control,
            pad_mode=self.pad_mode,
            pad_value=self.pad_value,
            label_pad=self.label_pad,
        )

    def apply(self, batch: Batch, params: SpatialParams) -> Batch:
        return resample(batch, [self.warp(params, batch)], self.placement(params, batch))


def _foreground_start(label: Tensor, u: Tensor, out_shape: Tensor, room: Tensor) -> tuple[Tensor, Tensor]:
    """Crop starts that centre each sample's patch on a random foreground voxel, without leaving the device.

    Returns:
        Starts, (B, 3) long, and whether the sample has any foreground, (B,) bool.
    """
    fg = (label[:, 0] > 0).flatten(1)
    counts = fg.cumsum(1)  # (B, N): number of foreground voxels up to each position
    total = counts[:, -1]
    k = torch.minimum(torch.floor(u * total).long(), (total - 1).clamp_min(0)) + 1
    flat = torch.searchsorted(counts, k[:, None]).squeeze(1).clamp_max(fg.shape[1] - 1)
    _, h, w = label.shape[2:]
    voxel = torch.stack([flat // (h * w), (flat // w) % h, flat % w], dim=1)
    start = torch.minimum((voxel - out_shape // 2).clamp_min(0), room)
    return start, total > 0


@dataclass(frozen=True)
class AffineParams:
    """Parameters of :class:`RandomAffine`; skipped samples hold the identity."""

    angles: Tensor  # (B, 3) radians
    scale: Tensor  # (B, 3)
    shear: Tensor  # (B, 6) radians
    shift: Tensor  # (B, 3) input voxels


class RandomAffine(GeometricTransform):
    """Random rotation, isotropic scaling, shear and translation about the volume centre.

    Args:
        degrees: Rotation range in degrees, one for all axes or three per-axis ranges.
        translate: Largest shift per axis as a fraction of that axis' size (drawn from ``U(-t, t)``).
        scale: Sampling-grid scale range (one factor for all axes; above 1 zooms out).
        shear_deg: Shear angle range in degrees, for each of the six shear terms.
        p: Per-sample probability.
    """

    name = "Affine"

    def __init__(
        self,
        degrees: Range | tuple[Range, Range, Range] = (-5.0, 5.0),
        translate: tuple[
            Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]
        ] = (0.1, 0.1, 0.1),
        scale: PositiveRange = (0.7, 1.4),
        shear_deg: Range = (-5.0, 5.0),
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.rotation = _angle_ranges(degrees)
        self.translate, self.scale, self.shear = tuple(translate), tuple(scale), tuple(shear_deg)

    def sample_params(self, batch: Batch, generator: torch.Generator) -> AffineParams:
        n = batch.size
        on = sample.bernoulli(generator, (n,), self.p)
        angles = _draw_angles(generator, n, self.rotation, on)
        scale = torch.where(on[:, None], sample.uniform(generator, (n, 1), *self.scale), torch.ones(())).expand(n, 3)
        shear = F.degrees_to_radians(sample.uniform(generator, (n, 6), *self.shear)) * on[:, None]
        limit = torch.tensor(self.translate) * torch.tensor(batch.spatial_shape, dtype=torch.float32)
        shift = sample.uniform(generator, (n, 3), -1.0, 1.0) * limit * on[:, None]
        return AffineParams(angles=angles, scale=scale, shear=shear, shift=shift)

    def warp(self, params: AffineParams, batch: Batch) -> Warp:
        return Warp(F.affine_matrix(params.angles, params.scale, params.shear), params.shift)


@dataclass(frozen=True)
class FlipParams:
    """Parameters of :class:`RandomFlip`."""

    flip: Tensor  # (B, 3) bool, (d, h, w)


class RandomFlip(GeometricTransform):
    """Mirror each listed axis independently per sample.

    The default flips axis 0 only, which is left-right in spineaug's canonical (RAS) orientation: mirroring the
    superior-inferior axis would reverse the order of the vertebrae, so list it only when you mean it.

    Args:
        axes: Axes that may flip: 0 (D), 1 (H), 2 (W).
        p: Per-sample, per-axis probability of flipping.
    """

    name = "Flip"

    def __init__(self, axes: Axes = (0,), p: Probability = 0.5) -> None:
        super().__init__(p=p)
        self.axes = tuple(axes)

    def sample_params(self, batch: Batch, generator: torch.Generator) -> FlipParams:
        draws = sample.bernoulli(generator, (batch.size, 3), self.p)
        allowed = torch.tensor([a in self.axes for a in range(3)])
        return FlipParams(flip=draws & allowed)

    def warp(self, params: FlipParams, batch: Batch) -> Warp:
        signs = torch.where(params.flip, -1.0, 1.0)
        return Warp(torch.diag_embed(signs), torch.zeros(params.flip.shape[0], 3))
