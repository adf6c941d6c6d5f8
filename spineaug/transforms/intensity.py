"""Elementwise and per-sample-statistics intensity transforms (CATALOG.md sections 3.3-3.21)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import histogram as FH
from spineaug.functional import intensity as FI
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.validation import NonNegativeRange, PositiveRange, Probability

Sampler = Literal["uniform", "bgcontrast"]
FunctionName = Literal["log1p", "sqrt", "sin", "exp", "sigmoid"]


def _distinct_functions(names: tuple[str, ...]) -> tuple[str, ...]:
    if len(names) == 0:
        raise ValueError("list at least one function")
    if len(set(names)) != len(names):
        raise ValueError(f"functions must not repeat, got {list(names)}")
    return names


FunctionNames = Annotated[tuple[FunctionName, ...], AfterValidator(_distinct_functions)]
"""A non-empty list of distinct intensity-function names."""


def _draw_factor(generator: torch.Generator, shape: tuple[int, ...], sampler: str, low: float, high: float) -> Tensor:
    draw = sample.bg_contrast if sampler == "bgcontrast" else sample.uniform
    return draw(generator, shape, low, high)


@dataclass(frozen=True)
class GammaParams(Params):
    """Own parameters of :class:`RandomGamma` and :class:`RandomInverseGamma`."""

    gamma: Tensor  # (B,) exponent


class RandomGamma(IntensityTransform):
    """Raise min-max normalised intensities to a random power, per sample (nnU-Net/AugLab gamma).

    Args:
        gamma: Range of the exponent.
        sampler: ``uniform`` draws ``U(low, high)``; ``bgcontrast`` draws below and above 1 with equal
            probability, as nnU-Net does.
        invert: Apply the gamma to the negated image (anchors the curve at the bright end: "inverse gamma").
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending the result with the original (weight ``U(0, 1)`` on the original).
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "Gamma"
    kind = "elementwise"

    def __init__(
        self,
        gamma: PositiveRange = (0.7, 1.5),
        sampler: Sampler = "uniform",
        invert: bool = False,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.gamma, self.sampler, self.invert = tuple(gamma), sampler, invert

    def draw(self, batch: Batch, generator: torch.Generator) -> GammaParams:
        return GammaParams(gamma=_draw_factor(generator, (batch.size,), self.sampler, *self.gamma))

    def keeps_stats(self) -> bool:
        return self.retain_stats  # in closed form, from the statistics of u (FI.restore_unit_stats)

    def transform(self, x: Tensor, values: GammaParams, label: Tensor | None) -> Tensor:
        gamma = FI.per_sample(values.gamma, x)
        if self.retain_stats:  # u unclamped: it is >= 0, an ulp above 1 at most, and the rescale is affine anyway
            u, offset, scale = FI.normalise01(x, flip=self.invert, clamp=False)
            scratch = FI.stats_scratch(u)  # one deviation buffer for both statistics on the CPU
            u_stats = FI.mean_std(u, scratch=scratch)
            v = u.pow(gamma) if FI.tracked(u) else u.pow_(gamma)
            return FI.restore_unit_stats(v, u_stats, offset, scale, scratch=scratch)
        u, offset, scale = FI.normalise01(x, flip=self.invert)
        v = u.pow_(gamma)
        return torch.addcmul(offset, v, scale) if FI.tracked(v) else torch.addcmul(offset, v, scale, out=v)

    def finite_output(self) -> bool:
        return True  # within each channel's [min, max]


class RandomInverseGamma(RandomGamma):
    """:class:`RandomGamma` on the negated image (CATALOG.md 3.14); same arguments, ``invert`` fixed to true."""

    name = "InverseGamma"

    def __init__(
        self,
        gamma: PositiveRange = (0.7, 1.5),
        sampler: Sampler = "uniform",
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(gamma, sampler, True, retain_stats, mix_prob, region, p)


class RandomInversion(IntensityTransform):
    """Invert intensities per sample (CATALOG.md 3.3): dark becomes bright.

    With ``retain_stats`` the result is the reflection about the mean, ``2 * mean - x`` (the closed form of AugLab's
    ``max - x`` followed by restoring mean and std); without it, ``max - x``.

    Args:
        retain_stats: Keep each sample's mean and std (reflect about the mean).
        mix_prob: Probability of blending the result with the original (weight ``U(0, 1)`` on the original).
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "Inversion"
    kind = "elementwise"

    def __init__(
        self,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)

    def keeps_stats(self) -> bool:
        # 2 * mean - x has the mean and the std of x (up to rounding): nothing left to restore.
        return self.retain_stats

    def transform(self, x: Tensor, values: None, label: Tensor | None) -> Tensor:
        return FI.invert(x, about_mean=self.retain_stats)


class RandomHistogramEqualization(IntensityTransform):
    """Equalise each sample's intensity histogram (CATALOG.md 3.4), batched.

    Args:
        bins: Number of equal-width bins between each sample's minimum and maximum.
        interpolate: Piecewise-linear lookup inside each bin instead of AugLab's step lookup (which quantises the
            output to ``bins`` levels).
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending the result with the original (weight ``U(0, 1)`` on the original).
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "HistogramEqualization"
    kind = "histogram"

    def __init__(
        self,
        bins: Annotated[int, Field(ge=2, le=65536)] = 256,
        interpolate: bool = False,
        retain_stats: bool = True,
        mix_prob: Probability = 0.6,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.bins, self.interpolate = bins, interpolate

    def transform(self, x: Tensor, values: None, label: Tensor | None) -> Tensor:
        return FH.equalize_histogram(x, self.bins, interpolate=self.interpolate)

    def finite_output(self) -> bool:
        return True  # within each channel's [min, max]


@dataclass(frozen=True)
class PercentileClampParams(Params):
    """Own parameters of :class:`RandomPercentileClamp`."""

    q_low: Tensor  # (B,) lower quantile
    q_high: Tensor  # (B,) upper quantile


class RandomPercentileClamp(IntensityTransform):
    """Clamp each sample between random low and high percentiles of its own intensities (CATALOG.md 3.9).

    Per sample ``q_low ~ U(0, max_amount)`` and ``q_high = 1 - U(0, max_amount)``; the quantiles are exact order
    statistics from one batched radix select (:func:`spineaug.functional.histogram.quantiles`), no sort.

    Args:
        max_amount: Largest fraction of the intensity distribution clamped at each end.
        retain_stats: Restore each sample's mean and std afterwards.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "PercentileClamp"
    kind = "elementwise+quantile"

    def __init__(
        self,
        max_amount: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.2,
        retain_stats: bool = True,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, region=region)
        self.max_amount = max_amount

    def draw(self, batch: Batch, generator: torch.Generator) -> PercentileClampParams:
        n = batch.size
        q_low = sample.uniform(generator, (n,), 0.0, self.max_amount)
        return PercentileClampParams(q_low=q_low, q_high=1.0 - sample.uniform(generator, (n,), 0.0, self.max_amount))

    def transform(self, x: Tensor, values: PercentileClampParams, label: Tensor | None) -> Tensor:
        return FH.percentile_clamp(x, values.q_low, values.q_high)

    def finite_output(self) -> bool:
        return True  # values of the input


@dataclass(frozen=True)
class GaussianNoiseParams(Params):
    """Own parameters of :class:`RandomGaussianNoise`."""

    sigma: Tensor  # (B,) noise standard deviation
    seed: Tensor  # (B,) int64 seed of each sample's noise field


class RandomGaussianNoise(IntensityTransform):
    """Add voxelwise Gaussian noise with a per-sample standard deviation (CATALOG.md 3.10).

    The noise field is not stored: the parameters hold one integer seed per sample, and each sample's field is
    generated on the data's device from its own seed (:mod:`spineaug.functional.noise`), so it does not depend on
    the other samples of the batch, and a replay with the same parameters adds the same noise on any device.

    Args:
        sigma: Range of the per-sample noise standard deviation (nnU-Net: ``(0, 0.1)``; AugLab: ``(0, 1)``).
        mean: Constant added together with the noise (Gaussian noise only).
        rician: Rician (magnitude) noise, as in MR magnitude images, instead of additive Gaussian noise.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "GaussianNoise"
    kind = "elementwise"

    def __init__(
        self,
        sigma: NonNegativeRange = (0.0, 0.1),
        mean: Annotated[float, Field(allow_inf_nan=False)] = 0.0,
        rician: bool = False,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, region=region)
        self.sigma, self.mean, self.rician = tuple(sigma), mean, rician

    def draw(self, batch: Batch, generator: torch.Generator) -> GaussianNoiseParams:
        sigma = sample.uniform(generator, (batch.size,), *self.sigma)
        return GaussianNoiseParams(sigma=sigma, seed=sample.sample_seeds(generator, batch.size))

    def transform(self, x: Tensor, values: GaussianNoiseParams, label: Tensor | None) -> Tensor:
        return FI.add_gaussian_noise(x, values.sigma, values.seed, mean=self.mean, rician=self.rician)

    def finite_output(self) -> bool:
        # x + mean + sigma * eps with |eps| < 5.3: finite unless the image is within that of the dtype's maximum
        return not self.rician and 6 * self.sigma[1] + abs(self.mean) < 1e30


@dataclass(frozen=True)
class BrightnessParams(Params):
    """Own parameters of :class:`RandomBrightness`."""

    multiplier: Tensor  # (B,) or (B, C) with per_channel


class RandomBrightness(IntensityTransform):
    """Multiply intensities by a random per-sample factor (CATALOG.md 3.12).

    Args:
        multiplier: Range of the factor.
        sampler: ``uniform`` draws ``U(low, high)``; ``bgcontrast`` draws below and above 1 with equal
            probability, as nnU-Net does.
        per_channel: Draw one factor per channel instead of one per sample.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "Brightness"
    kind = "elementwise"

    def __init__(
        self,
        multiplier: PositiveRange = (0.75, 1.25),
        sampler: Sampler = "uniform",
        per_channel: bool = False,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, region=region)
        self.multiplier, self.sampler, self.per_channel = tuple(multiplier), sampler, per_channel

    def draw(self, batch: Batch, generator: torch.Generator) -> BrightnessParams:
        shape = (batch.size, batch.image.shape[1]) if self.per_channel else (batch.size,)
        return BrightnessParams(multiplier=_draw_factor(generator, shape, self.sampler, *self.multiplier))

    def transform(self, x: Tensor, values: BrightnessParams, label: Tensor | None) -> Tensor:
        return FI.multiply(x, values.multiplier)

    def finite_output(self) -> bool:
        return True  # a sample whose product would overflow keeps factor 1 (FI.multiply)


@dataclass(frozen=True)
class ContrastParams(Params):
    """Own parameters of :class:`RandomContrast`."""

    factor: Tensor  # (B,) or (B, C) with per_channel


class RandomContrast(IntensityTransform):
    """Stretch intensities about each sample's mean by a random factor (CATALOG.md 3.15).

    Args:
        contrast: Range of the factor.
        sampler: ``uniform`` or nnU-Net's ``bgcontrast`` (below and above 1 with equal probability).
        preserve_range: Clamp to each sample's original minimum and maximum (nnU-Net; AugLab does not).
        per_channel: Draw one factor per channel instead of one per sample.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "Contrast"
    kind = "elementwise"

    def __init__(
        self,
        contrast: PositiveRange = (0.75, 1.25),
        sampler: Sampler = "uniform",
        preserve_range: bool = True,
        per_channel: bool = False,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, region=region)
        self.contrast, self.sampler = tuple(contrast), sampler
        self.preserve_range, self.per_channel = preserve_range, per_channel

    def draw(self, batch: Batch, generator: torch.Generator) -> ContrastParams:
        shape = (batch.size, batch.image.shape[1]) if self.per_channel else (batch.size,)
        return ContrastParams(factor=_draw_factor(generator, shape, self.sampler, *self.contrast))

    def transform(self, x: Tensor, values: ContrastParams, label: Tensor | None) -> Tensor:
        return FI.adjust_contrast(x, values.factor, preserve_range=self.preserve_range)

    def finite_output(self) -> bool:
        return self.preserve_range  # clamped to each channel's [min, max]


@dataclass(frozen=True)
class IntensityFunctionParams(Params):
    """Own parameters of :class:`RandomIntensityFunction`."""

    function: Tensor  # (B,) long: index into the transform's ``functions``


class RandomIntensityFunction(IntensityTransform):
    """Remap intensities through a monotone function chosen per sample (CATALOG.md 3.16).

    Each sample is min-max normalised on its own (never with its batch partners, unlike AugLab) to ``u`` in
    [0, 1], mapped through ``f(u)`` and stretched back to its original range; with ``retain_stats`` (the
    default) only the shape of ``f`` matters, exactly as in AugLab. AugLab's five separate modules correspond to five
    entries with one function each.

    Args:
        functions: Candidate functions, drawn uniformly per sample: ``log1p``, ``sqrt``, ``sin``, ``exp``,
            ``sigmoid``.
        retain_stats: Restore each sample's mean and std afterwards.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "IntensityFunction"
    kind = "elementwise"

    def __init__(
        self,
        functions: FunctionNames = FI.INTENSITY_FUNCTIONS,
        retain_stats: bool = True,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, region=region)
        self.functions = tuple(functions)

    def draw(self, batch: Batch, generator: torch.Generator) -> IntensityFunctionParams:
        return IntensityFunctionParams(function=sample.choice(generator, (batch.size,), len(self.functions)))

    def transform(self, x: Tensor, values: IntensityFunctionParams, label: Tensor | None) -> Tensor:
        which = values.function
        present = tuple(sorted(set(which.tolist())))  # a CPU parameter: no device synchronisation
        return FI.apply_intensity_function(x, which, self.functions, present, retain_stats=self.retain_stats)

    def keeps_stats(self) -> bool:
        return self.retain_stats  # in closed form, from the statistics of u (FI.restore_unit_stats)

    def finite_output(self) -> bool:
        return True  # within each channel's [min, max]


@dataclass(frozen=True)
class BiasFieldParams(Params):
    """Own parameters of :class:`RandomBiasField`."""

    coefficients: Tensor  # (B, terms) polynomial coefficients of the log gain


class RandomBiasField(IntensityTransform):
    """Multiply by a smooth random gain field ``exp(P)``, ``P`` a per-sample 3-D polynomial (CATALOG.md 3.20).

    Coordinates run over ``[-1, 1]`` along each axis of the patch; every monomial ``z^k y^j x^i`` with
    ``i + j + k <= order`` gets a coefficient ``U(-coefficients, coefficients)``.

    Args:
        coefficients: Largest absolute value of a polynomial coefficient.
        order: Polynomial order (3 gives 20 terms).
        invert: Divide by the field instead of multiplying.
        signed: Multiply the raw intensities (AugLab). By default the gain acts on ``x - min`` and the minimum
            is added back, like a receive-coil gain on a non-negative signal.
        retain_stats: Restore each sample's mean and std afterwards.
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "BiasField"
    kind = "low-res field"

    def __init__(
        self,
        coefficients: Annotated[float, Field(ge=0.0, le=10.0)] = 0.2,
        order: Annotated[int, Field(ge=0, le=6)] = 3,
        invert: bool = False,
        signed: bool = False,
        retain_stats: bool = True,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, region=region)
        self.coefficients, self.order, self.invert, self.signed = coefficients, order, invert, signed

    def draw(self, batch: Batch, generator: torch.Generator) -> BiasFieldParams:
        terms = len(FI.monomial_exponents(self.order))
        c = self.coefficients
        return BiasFieldParams(coefficients=sample.uniform(generator, (batch.size, terms), -c, c))

    def transform(self, x: Tensor, values: BiasFieldParams, label: Tensor | None) -> Tensor:
        coefficients = -values.coefficients if self.invert else values.coefficients  # small: no pass over the field
        log_field = FI.polynomial_field(coefficients, tuple(x.shape[2:]), self.order, device=x.device)
        # |P| <= sum |c| on [-1, 1]^3: with CPU parameters the bound is known on the host, and the clamp is not needed
        largest = coefficients.abs().sum(dim=1)
        bounded = coefficients.device.type == "cpu" and (largest.numel() == 0 or float(largest.max()) <= 30.0)
        return FI.apply_bias_field(x, log_field, signed=self.signed, bounded=bounded, fresh=True)


class RandomZScore(IntensityTransform):
    """Normalise each sample to zero mean and unit standard deviation (CATALOG.md 3.21).

    Args:
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "ZScore"
    kind = "elementwise"

    def __init__(self, region: RegionOptions | None = None, p: Probability = 1.0) -> None:
        super().__init__(p=p, region=region)

    def transform(self, x: Tensor, values: None, label: Tensor | None) -> Tensor:
        return FI.zscore(x)

    def finite_output(self) -> bool:
        return True  # |z| <= sqrt(voxels)
