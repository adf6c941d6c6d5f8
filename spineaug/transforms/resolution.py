"""Resolution transforms: simulated low resolution and thick slices (CATALOG.md 3.17, 3.18). Image only.

Both are intensity transforms in the engine's sense: they change the image and never the label (AugLab degrades the
label too; that quirk lives only in ``baselines/``). Each sample's degradation is one separable linear operator,
three small per-sample matrices applied with batched matrix products (see :mod:`spineaug.functional.resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import resolution as FR
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.validation import FractionRange, NonEmptyAxes, Probability

DownMode = Literal["nearest", "linear", "box", "gaussian"]
UpMode = Literal["linear", "nearest"]


def degrade(x: Tensor, scale: Tensor, down: str, up: str) -> Tensor:
    """Apply per-sample, per-axis resolution factors ``scale`` (B, 3) (CPU tensor; 1 = keep the axis)."""
    operators = []
    for axis, n in enumerate(x.shape[2:]):
        s = scale[:, axis]
        if bool((s >= 1.0).all()):  # host check on CPU parameters
            operators.append(None)
        else:
            operators.append(FR.resolution_matrix(s.to(x.device, non_blocking=True), n, down, up))
    return FR.apply_axis_operators(x, tuple(operators))


@dataclass(frozen=True)
class ResolutionParams(Params):
    """Own parameters of :class:`RandomLowResolution` and :class:`RandomThickSlice`."""

    scale: Tensor  # (B, 3) resolution factor per axis (1 = axis kept)


class RandomLowResolution(IntensityTransform):
    """Simulate a lower acquisition resolution: resample down by a random factor and back up. Image only.

    Args:
        scale: Range of the resolution factor ``s`` (the axis is resampled to ``round(s * n)`` voxels).
        per_axis: Draw a factor per axis (AugLab); otherwise one factor for all ``axes`` (nnU-Net).
        axes: Axes to degrade.
        down: Down-sampling: ``"gaussian"`` (Gaussian point-spread function of total FWHM ``1/s``, anti-aliased),
            ``"box"`` (area average), ``"linear"`` (point sampling, AugLab) or ``"nearest"`` (nnU-Net's
            ``nearest-exact``; with ``up="linear"``, ``per_axis=False`` this is nnU-Net's SimulateLowResolution).
        up: Up-sampling back to the original grid: ``"linear"`` or ``"nearest"``.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "LowResolution"
    kind = "resampling"

    def __init__(
        self,
        scale: FractionRange = (0.5, 1.0),
        per_axis: bool = False,
        axes: NonEmptyAxes = (0, 1, 2),
        down: DownMode = "gaussian",
        up: UpMode = "linear",
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.scale, self.per_axis, self.axes = tuple(scale), per_axis, tuple(axes)
        self.down, self.up = down, up

    def draw(self, batch: Batch, generator: torch.Generator) -> ResolutionParams:
        n = batch.size
        s = sample.uniform(generator, (n, 3 if self.per_axis else 1), *self.scale).expand(n, 3)
        allowed = torch.tensor([a in self.axes for a in range(3)])
        return ResolutionParams(scale=torch.where(allowed, s, torch.ones(())))

    def transform(self, x: Tensor, values: ResolutionParams, label: Tensor | None) -> Tensor:
        return degrade(x, values.scale, self.down, self.up)

    def finite_output(self) -> bool:
        return True  # non-negative weights that sum to 1: within each channel's [min, max]


@dataclass(frozen=True)
class ThickSliceParams(ResolutionParams):
    """Own parameters of :class:`RandomThickSlice`: the resolution factors and the degraded axis."""

    axis: Tensor  # (B,) long: the through-plane axis


class RandomThickSlice(IntensityTransform):
    """Simulate thick slices: average slabs of width ``1/s`` along one random axis per sample, then upsample.

    Unlike AugLab (one axis fixed for the whole run, point sampling), each sample draws its own axis from ``axes``
    and the slice profile integrates over the slab. Image only.

    Args:
        scale: Range of the through-plane resolution factor ``s`` (slab width ``1/s`` voxels).
        axes: Candidate axes; each sample picks one uniformly (e.g. ``[0]`` for a known through-plane axis).
        profile: Slice profile: ``"box"`` (slab average), ``"gaussian"`` (Gaussian of FWHM ``1/s``) or ``"linear"``
            (linear point sampling of ``round(s * n)`` slices, no slab integration: AugLab's behaviour).
        up: Up-sampling back to the original grid: ``"linear"`` or ``"nearest"``.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "ThickSlice"
    kind = "resampling"

    def __init__(
        self,
        scale: FractionRange = (0.1, 1.0),
        axes: NonEmptyAxes = (0, 1, 2),
        profile: Literal["box", "gaussian", "linear"] = "box",
        up: UpMode = "linear",
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.scale, self.axes, self.profile, self.up = tuple(scale), tuple(axes), profile, up

    def draw(self, batch: Batch, generator: torch.Generator) -> ThickSliceParams:
        n = batch.size
        axis = torch.tensor(self.axes)[sample.choice(generator, (n,), len(self.axes))]
        s = sample.uniform(generator, (n, 1), *self.scale)
        return ThickSliceParams(scale=torch.where(torch.arange(3) == axis[:, None], s, torch.ones(())), axis=axis)

    def transform(self, x: Tensor, values: ThickSliceParams, label: Tensor | None) -> Tensor:
        return degrade(x, values.scale, self.profile, self.up)

    def finite_output(self) -> bool:
        return True  # non-negative weights that sum to 1: within each channel's [min, max]
