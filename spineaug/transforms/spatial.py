"""Geometric transforms (Spatial, Affine, Flip): each describes a sampling map, and all of them share one resampling.

A geometric transform's only job is :meth:`GeometricTransform.sampling`: the sampling map (and, for ``Spatial``, the
output placement) its parameters describe. :meth:`GeometricTransform.apply_together` hands those to the resampling
engine (:mod:`spineaug.transforms._resample`), which composes them and reads the image and the label once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import spatial as FS
from spineaug.transforms._resample import Placement, Sampling, Warp, resample_all
from spineaug.transforms.base import Params, RandomTransform
from spineaug.validation import (
    NonEmptyAxes,
    NonNegativeRange,
    PositiveInt,
    PositiveRange,
    Probability,
    Range,
    ShearRange,
    check_label_value,
)

PatchSize = tuple[PositiveInt, PositiveInt, PositiveInt]
PadMode = Literal["constant", "edge", "reflect", "min"]


class GeometricTransform(RandomTransform):
    """A transform that moves voxels; image and label are resampled together, once, with the pipeline's other moves.

    Subclasses implement :meth:`sampling`. The pipeline applies all its geometric entries with one call of
    :meth:`apply_together`, which composes their sampling maps (and the placement of at most one
    :class:`RandomSpatial`, which adds crop and elastic deformation) and resamples once.
    """

    geometric: ClassVar[bool] = True
    kind: ClassVar[str] = "resampling"

    def sampling(self, params: Params, batch: Batch) -> Sampling:
        """The sampling map (CPU tensors) and, for the entry that decides the output patch, the placement."""
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params, *, inplace: bool = False) -> Batch:
        return self.apply_together(batch, [(self, params)])

    def for_patch(self, patch_size: tuple[int, int, int]) -> tuple[GeometricTransform, tuple[int, int, int]]:
        """This entry in a training pipeline whose input is read around a final ``patch_size`` patch.

        Used by :meth:`spineaug.Pipeline.for_patch`. The default keeps the entry as it is and asks for no larger
        read; :class:`RandomSpatial`, which decides the output patch, cuts ``patch_size`` from the middle of its
        input and asks for the read that keeps every rotation and scaling it draws inside.

        Returns:
            The entry to use, and the (D, H, W) read it needs around the final patch.
        """
        return self, tuple(int(p) for p in patch_size)  # type: ignore[return-value]

    @staticmethod
    def apply_together(batch: Batch, steps: Sequence[tuple[GeometricTransform, Params]]) -> Batch:
        """Apply several geometric transforms with one resampling of image and label.

        Args:
            batch: Input batch.
            steps: ``(transform, params)`` pairs in the order they move the image.
        """
        return resample_all(batch, [t.sampling(p, batch) for t, p in steps])


def _angle_ranges(degrees: tuple) -> list[tuple[float, float]]:
    """Normalise one range or three per-axis ranges (degrees) to three ranges."""
    return [tuple(degrees)] * 3 if isinstance(degrees[0], (int, float)) else [tuple(r) for r in degrees]


_MAX_GRID = 37
"""Angles per axis in the search over a rotation range (:func:`enclosing_read`)."""


def rotation_grid(rotation: Sequence[tuple[float, float]]) -> Tensor:
    """Rotation matrices over a grid of a rotation range, in both composition orders of
    :func:`~spineaug.functional.spatial.rotation_matrix`, float64.

    Each axis' range is sampled at ``n = 1`` (a single angle), else ``min(37, max(2, ceil(width / 2.5) + 1))``
    evenly spaced angles (a range wider than a full turn counts as one turn); every combination is composed as
    ``rotation_matrix`` composes it with ``order="w_first"`` and ``order="d_first"`` (one rotation matrix per axis,
    multiplied by broadcasting: the same values as ``rotation_matrix`` of every combination of angles, faster).

    Args:
        rotation: Three ``(low, high)`` angle ranges in degrees, about the D, H and W axes.

    Returns:
        (2 * n_d * n_h * n_w, 3, 3) rotation matrices: all ``w_first`` products, then all ``d_first`` ones.
    """
    per_axis = []
    for axis, (lo, hi) in enumerate(rotation):
        lo, hi = max(float(lo), float(hi) - 360.0), float(hi)  # a full turn covers every angle
        n = 1 if lo == hi else min(_MAX_GRID, max(2, math.ceil((hi - lo) / 2.5) + 1))
        angles = torch.zeros(n, 3, dtype=torch.float64)
        angles[:, axis] = FS.degrees_to_radians(torch.linspace(lo, hi, n, dtype=torch.float64))
        per_axis.append(FS.rotation_matrix(angles))  # a rotation about this axis only
    r_d, r_h, r_w = per_axis[0][:, None, None], per_axis[1][None, :, None], per_axis[2][None, None, :]
    return torch.cat([(r_d @ r_h @ r_w).reshape(-1, 3, 3), (r_w @ r_h @ r_d).reshape(-1, 3, 3)])


@functools.lru_cache(maxsize=16)
def _abs_rotations(rotation: tuple[tuple[float, float], ...]) -> Tensor:
    """``|R|`` of every matrix of :func:`rotation_grid` as a (N, 3, 3) tensor, kept for the next patch size."""
    return rotation_grid(rotation).abs()


@functools.lru_cache(maxsize=256)
def _enclosing_read(
    patch: tuple[int, int, int], rotation: tuple[tuple[float, float], ...], scale: float, margin: float
) -> tuple[int, int, int]:
    size_in = torch.tensor(patch, dtype=torch.int64)
    half = (size_in.double() - 1) / 2 + margin  # sampled points lie within +-half of the centre, before the rotation
    extent = (_abs_rotations(rotation) @ half).amax(dim=0)  # largest |offset| per input axis
    extent = torch.minimum(extent, torch.linalg.vector_norm(half))  # no rotation reaches beyond the half-diagonal
    reach = max(scale, 1.0) * extent
    size = torch.maximum(torch.ceil(2 * reach + 1 - 1e-6).long(), size_in)  # voxel centres within [0, size - 1]
    size = size + (size - size_in) % 2  # centred exactly: equal margins on both sides
    return int(size[0]), int(size[1]), int(size[2])


def enclosing_read(
    patch_size: Sequence[int], rotation: Sequence[tuple[float, float]], scale: float = 1.0, margin: float = 0.0
) -> tuple[int, int, int]:
    """The input to read around a centred output patch so that every rotation and scaling of it stays inside.

    The bound is the bounding box of the sampled points of the output voxel centres (each moved by up to
    ``margin`` voxels per axis first, for an elastic field), maximised over the rotations of :func:`rotation_grid`
    and capped by the half-diagonal, then scaled by ``max(scale, 1)``. It differs from the patch by an even number
    per axis, so the patch sits exactly in the middle, and it is never smaller than the patch. The same idea as
    nnU-Net's initial patch size (``get_patch_size``), for :class:`RandomSpatial`'s sampling map.

    Args:
        patch_size: Output patch, (D, H, W).
        rotation: Three ``(low, high)`` angle ranges in degrees, about the D, H and W axes.
        scale: Largest sampling-grid scale (above 1 reads a larger region).
        margin: Largest displacement of an output point before rotation, in output voxels.

    Returns:
        The (D, H, W) read size.
    """
    patch = tuple(int(p) for p in patch_size)
    ranges = tuple((float(lo), float(hi)) for lo, hi in rotation)
    return _enclosing_read(patch, ranges, float(scale), float(margin))  # type: ignore[arg-type]


def _draw_angles(generator: torch.Generator, n: int, ranges: list[tuple[float, float]], fire: Tensor) -> Tensor:
    angles = torch.stack([sample.uniform(generator, (n,), lo, hi) for lo, hi in ranges], dim=1)
    return FS.degrees_to_radians(torch.where(fire[:, None], angles, torch.zeros(())))


@dataclass(frozen=True)
class SpatialParams(Params):
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
        crop: ``random`` (default: the position is drawn as above) or ``center``: the patch is cut from the middle
            of the input, as nnU-Net does after its loader read an enlarged patch around the chosen position
            (:meth:`spineaug.Pipeline.for_patch`); needs ``p_foreground = 0``.
        pad_mode: Image read outside the input: ``constant`` (``pad_value``), ``edge``, ``reflect`` or ``min``
            (each sample's minimum).
        pad_value: Image padding value for ``pad_mode="constant"``.
        label_pad: Label read outside the input (background by default); must fit the label's dtype (checked on
            every call with a label).
        label_interpolation: ``nearest`` (default: each voxel takes its nearest source voxel's label, exactly, for
            any integer dtype) or ``onehot`` (nnU-Net's: each label's indicator interpolated linearly, the largest
            weight wins, ties to the smaller label; one host synchronisation per call to list the labels).
        p: Per-sample probability that rotation, scaling and deformation are considered at all; the crop always
            happens.
    """

    name = "Spatial"
    effect_gates = ("p_rotation", "p_scale", "p_elastic")

    @classmethod
    def forced(cls, entry: dict[str, object]) -> dict[str, object]:
        """As :meth:`RandomTransform.forced`; with every move gate at 0, rotation and scaling turn on."""
        out = super().forced(entry)
        if not any(float(cls._entry_value(out, k)) > 0 for k in cls.effect_gates):
            out["p_rotation"] = out["p_scale"] = 1.0
        return out

    @classmethod
    def firing_probability(cls, entry: dict[str, object]) -> float:
        """``p`` times the probability that at least one of rotation, scaling and deformation fires."""
        stay = 1.0
        for key in cls.effect_gates:
            stay *= 1.0 - float(cls._entry_value(entry, key))
        return float(cls._entry_value(entry, "p")) * (1.0 - stay)
    one_per_pipeline = "it sets the output patch and the padding"

    def read_size(self, patch_size: PatchSize) -> tuple[int, int, int]:
        """The input to read around a centred ``patch_size`` output so that every move this entry draws stays inside.

        Counts the rotation range when rotations can fire (``p`` and ``p_rotation`` above 0), the largest scale
        when scaling can fire, and the largest elastic displacement when deformation can fire; see
        :func:`enclosing_read`.
        """
        on = self.p > 0
        rotation = self.rotation if on and self.p_rotation > 0 else [(0.0, 0.0)] * 3
        scale = self.scale[1] if on and self.p_scale > 0 else 1.0
        margin = float(self.elastic_magnitude[1]) if on and self.p_elastic > 0 else 0.0
        return enclosing_read(patch_size, rotation, scale, margin)

    def for_patch(self, patch_size: PatchSize) -> tuple[RandomSpatial, tuple[int, int, int]]:
        """This entry cutting ``patch_size`` from the middle of its input (``crop="center"``, no foreground
        centring: the loader placed the read), and the read it needs (:meth:`read_size`)."""
        patch = tuple(int(p) for p in patch_size)
        centred = type(self)(**{**self._init_args, "patch_size": patch, "crop": "center", "p_foreground": 0.0})
        return centred, centred.read_size(patch)

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
        crop: Literal["random", "center"] = "random",
        pad_mode: PadMode = "constant",
        pad_value: float = 0.0,
        label_pad: int = 0,
        label_interpolation: Literal["nearest", "onehot"] = "nearest",
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.patch_size = None if patch_size is None else tuple(patch_size)
        self.p_rotation, self.rotation = p_rotation, _angle_ranges(rotation_deg)
        self.p_scale, self.scale, self.per_axis_scale = p_scale, tuple(scale), per_axis_scale
        self.p_elastic, self.elastic_magnitude, self.elastic_spacing = p_elastic, elastic_magnitude, elastic_spacing
        if crop == "center" and p_foreground > 0:
            raise ValueError(
                f"Spatial: crop='center' cuts the middle of the input, so p_foreground must be 0, got {p_foreground}"
            )
        self.p_foreground, self.crop = p_foreground, crop
        self.pad_mode, self.pad_value, self.label_pad = pad_mode, pad_value, label_pad
        self.label_interpolation = label_interpolation

    def check_label(self, label: Tensor | None) -> None:
        """As :meth:`RandomTransform.check_label`; also ``label_pad`` must fit the label's dtype."""
        super().check_label(label)
        if label is not None:
            check_label_value(self.label_pad, label.dtype, "label_pad", self.name)

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
            crop_u=sample.uniform(generator, (n, 3), 0.0, 1.0),
            foreground_u=sample.uniform(generator, (n,), 0.0, 1.0),
            use_foreground=sample.bernoulli(generator, (n,), self.p_foreground),
        )

    def sampling(self, params: SpatialParams, batch: Batch) -> Sampling:
        # nnU-Net's order (Rz @ Ry @ Rx @ S in batchgeneratorsv2): the rotation about D acts first.
        matrix = FS.affine_matrix(params.angles, params.scale, order="d_first")
        warp = Warp(matrix, torch.zeros(params.angles.shape[0], 3))
        return Sampling(warp, self._placement(params, batch))

    def _placement(self, params: SpatialParams, batch: Batch) -> Placement:
        """Crop position (random or on a foreground voxel), elastic field and padding for these parameters."""
        device = batch.image.device
        in_shape = torch.tensor(batch.spatial_shape, device=device)
        shape = self.output_shape(batch)
        out_shape = torch.tensor(shape, device=device)
        room = in_shape - out_shape  # largest valid start per axis
        crop_u = params.crop_u.to(device, non_blocking=True)
        start = torch.minimum(torch.floor(crop_u * (room + 1)).long(), room)
        if self.crop == "center":
            start = (room // 2).expand_as(start)
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
            label_mode=self.label_interpolation,
        )


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
class AffineParams(Params):
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
        shear_deg: Shear angle range in degrees, for each of the six shear terms; strictly inside (-90, 90).
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
        shear_deg: ShearRange = (-5.0, 5.0),
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
        shear = FS.degrees_to_radians(sample.uniform(generator, (n, 6), *self.shear)) * on[:, None]
        limit = torch.tensor(self.translate) * torch.tensor(batch.spatial_shape, dtype=torch.float32)
        shift = sample.uniform(generator, (n, 3), -1.0, 1.0) * limit * on[:, None]
        return AffineParams(angles=angles, scale=scale, shear=shear, shift=shift)

    def sampling(self, params: AffineParams, batch: Batch) -> Sampling:
        return Sampling(Warp(FS.affine_matrix(params.angles, params.scale, params.shear), params.shift))


@dataclass(frozen=True)
class FlipParams(Params):
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
    kind = "index"

    @classmethod
    def firing_probability(cls, entry: dict[str, object]) -> float:
        """Probability that at least one listed axis flips (``p`` is per axis)."""
        return 1.0 - (1.0 - float(cls._entry_value(entry, "p"))) ** len(cls._entry_value(entry, "axes"))

    def __init__(self, axes: NonEmptyAxes = (0,), p: Probability = 0.5) -> None:
        super().__init__(p=p)
        self.axes = tuple(axes)

    def sample_params(self, batch: Batch, generator: torch.Generator) -> FlipParams:
        draws = sample.bernoulli(generator, (batch.size, 3), self.p)
        allowed = torch.tensor([a in self.axes for a in range(3)])
        return FlipParams(flip=draws & allowed)

    def sampling(self, params: FlipParams, batch: Batch) -> Sampling:
        signs = torch.where(params.flip, -1.0, 1.0)
        return Sampling(Warp(torch.diag_embed(signs), torch.zeros(params.flip.shape[0], 3)))
