"""Label-guided appearance transforms: LabelIntensityRemap (CATALOG.md 3.5) and LabelAppearance (SynthSeg-style).

Both need the label map (``requires_label``) and change only the image. Label values are handled through a fixed
table of ``max_label + 1`` entries: values above ``max_label`` (and the ignore label) count as background. The
default ``max_label = 3`` covers spineaug's task labels (vertebra, disc, canal); raise it for finer maps (e.g. the
phantom's tissue map or per-vertebra labels). Cost grows with it: the ring statistics dilate one mask per label
(8 at a time) and the global remap evaluates one bump per label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import filters as FF
from spineaug.functional import labels as FL
from spineaug.functional import noise as FN
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.validation import NonNegativeRange, Probability, Range, UnitRange

MaxLabel = Annotated[int, Field(ge=1, le=1024)]


@dataclass(frozen=True)
class LabelIntensityRemapParams(Params):
    """Own parameters of :class:`RandomLabelIntensityRemap` (``L`` = number of label values or regions)."""

    inside: Tensor  # (B,) bool: inside-only mode
    width: Tensor  # (B, L) random part of each bump's width
    amplitude: Tensor  # (B, L) bump amplitudes


class RandomLabelIntensityRemap(IntensityTransform):
    """Remap intensities with Gaussian bumps centred on each label's mean intensity (AugLab's "redistribute seg").

    Per sample: with probability ``p_inside`` only voxels inside the labels change (each by its own label's bump);
    otherwise the bumps act as a global intensity-to-intensity curve. Both modes run the same per-label loop (the
    same operations whatever the mix of modes in the batch), so a call costs O(N * labels). Bump widths widen with
    the contrast between a label and its surrounding ring (dilation radius ``ring_radius``); amplitudes are
    ``U(amplitude)``. Samples without foreground are left unchanged.

    Args:
        p_inside: Per-sample probability of the inside-only mode.
        regions: ``"per_label"`` (one bump per label value, the intended behaviour) or ``"union"`` (all foreground
            labels as one region, AugLab-GPU parity).
        width: Range of the random part of the bump width (in min-max normalised intensity units).
        amplitude: Range of the bump amplitudes.
        ring_radius: Chebyshev radius (voxels) of the ring around each label used for its surrounding statistics.
        max_label: Largest label value considered; larger values count as background.
        ignore_label: A label value treated as background (e.g. nnU-Net's ignore label), or ``None``.
        retain_stats: Restore each sample's mean and std afterwards (AugLab default).
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "LabelIntensityRemap"
    kind = "label-lookup"
    requires_label: ClassVar[bool] = True

    def __init__(
        self,
        p_inside: Probability = 0.25,
        regions: Literal["per_label", "union"] = "per_label",
        width: NonNegativeRange = (0.0, 0.2),
        amplitude: Range = (-1.0, 1.0),
        ring_radius: Annotated[int, Field(ge=1, le=16)] = 3,
        max_label: MaxLabel = 3,
        ignore_label: int | None = None,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.p_inside, self.regions = p_inside, regions
        self.width, self.amplitude = tuple(width), tuple(amplitude)
        self.ring_radius, self.max_label, self.ignore_label = ring_radius, max_label, ignore_label

    @property
    def _num(self) -> int:
        return 2 if self.regions == "union" else self.max_label + 1

    def draw(self, batch: Batch, generator: torch.Generator) -> LabelIntensityRemapParams:
        n, num = batch.size, self._num
        inside = sample.bernoulli(generator, (n,), self.p_inside)
        width = sample.uniform(generator, (n, num), *self.width)
        return LabelIntensityRemapParams(inside, width, sample.uniform(generator, (n, num), *self.amplitude))

    def transform(self, x: Tensor, values: LabelIntensityRemapParams, label: Tensor | None) -> Tensor:
        small = torch.uint8 if self.max_label <= 255 else torch.long  # a 1-byte index is cheaper to build and compare
        lab = FL.label_index(label, self.max_label, self.ignore_label, union=self.regions == "union", dtype=small)
        return FL.remap_intensities(
            x, lab, self._num, values.width, values.amplitude, values.inside, radius=self.ring_radius
        )


@dataclass(frozen=True)
class LabelAppearanceParams(Params):
    """Own parameters of :class:`RandomLabelAppearance` (``L = max_label + 1``)."""

    mean: Tensor  # (B, L) region means
    std: Tensor  # (B, L) region standard deviations
    texture: Tensor  # (B,) weight of the original texture
    sigma: Tensor  # (B, 3) blur sigma per axis
    bias: Tensor  # (B,) bool: a bias field is applied
    bias_field: Tensor  # (B, 1, 4, 4, 4) coarse log bias field (zero without bias)
    seed: Tensor  # (B,) int64 seed of each sample's noise field


class RandomLabelAppearance(IntensityTransform):
    """Give every label region a fresh random intensity distribution (SynthSeg-style synthetic appearance).

    Per sample and label value ``l`` (background included): ``mean_l ~ U(mean)``, ``std_l ~ U(std)``; the region
    becomes ``mean_l + std_l * n`` with ``n`` standard normal noise, optionally blended with the original texture
    (weight ``w ~ U(texture)``, keeping unit variance). Then a Gaussian blur (``sigma ~ U(blur_sigma)`` per axis) and,
    with probability ``p_bias``, a smooth multiplicative bias field ``exp(f)``, ``f`` the trilinear upsampling of a
    ``4^3`` grid of ``N(0, bias_std^2)`` values. With ``retain_stats`` (default) the result gets the input's mean and
    std, so it fits z-scored pipelines. Opt-in: presets keep ``p`` small. Each sample's noise ``n`` comes from its own
    seed (:mod:`spineaug.functional.noise`), independent of the rest of the batch.

    Args:
        mean: Range of the region means (in units of the image's own range after ``retain_stats``).
        std: Range of the region standard deviations.
        texture: Range of the weight of the original texture (0 = pure noise, 1 = original texture re-scaled).
        blur_sigma: Range of the blur sigma in voxels (per axis).
        p_bias: Per-sample probability of the bias field.
        bias_std: Standard deviation of the log bias field's control values.
        max_label: Largest label value with its own appearance; larger values share the background's.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "LabelAppearance"
    kind = "label-lookup"
    effect_gates = ("p_bias",)
    requires_label: ClassVar[bool] = True

    def __init__(
        self,
        mean: Range = (0.0, 1.0),
        std: NonNegativeRange = (0.0, 0.1),
        texture: UnitRange = (0.0, 0.0),
        blur_sigma: NonNegativeRange = (0.0, 1.0),
        p_bias: Probability = 0.5,
        bias_std: Annotated[float, Field(ge=0.0, le=2.0)] = 0.3,
        max_label: MaxLabel = 3,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.mean, self.std, self.texture = tuple(mean), tuple(std), tuple(texture)
        self.blur_sigma, self.p_bias, self.bias_std = tuple(blur_sigma), p_bias, bias_std
        self.max_label = max_label

    def draw(self, batch: Batch, generator: torch.Generator) -> LabelAppearanceParams:
        n, num = batch.size, self.max_label + 1
        bias = sample.bernoulli(generator, (n,), self.p_bias)
        coarse = sample.normal(generator, (n, 1, 4, 4, 4), self.bias_std) * bias.view(n, 1, 1, 1, 1)
        return LabelAppearanceParams(
            mean=sample.uniform(generator, (n, num), *self.mean),
            std=sample.uniform(generator, (n, num), *self.std),
            texture=sample.uniform(generator, (n,), *self.texture),
            sigma=sample.uniform(generator, (n, 3), *self.blur_sigma),
            bias=bias,
            bias_field=coarse,
            seed=sample.seeds(generator, (n,)),
        )

    def transform(self, x: Tensor, values: LabelAppearanceParams, label: Tensor | None) -> Tensor:
        num = self.max_label + 1
        lab = FL.label_index(label, self.max_label)
        noise = FN.scaled_normal_field(values.seed.to(x.device, non_blocking=True), tuple(x.shape[1:]))
        y = FL.label_appearance(x, lab, num, values.mean, values.std, noise, values.texture, noise_std=math.sqrt(0.5))
        y = FF.gaussian_blur(y.float(), values.sigma)
        if bool(values.bias.any()):  # CPU parameter: no device synchronisation
            field = FL.smooth_field(values.bias_field.to(x.device, non_blocking=True), tuple(x.shape[2:]))
            y = y * torch.exp(field)
        return y.to(x.dtype)
