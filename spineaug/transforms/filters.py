"""Filter transforms: Gaussian blur, unsharp mask, Scharr edges, Laplacian, random convolution (CATALOG.md 3.6-3.8,
3.11, 3.22).

Every class is an :class:`~spineaug.transforms.base.IntensityTransform`: gate ``p`` -> filter -> blend with the
original (``mix_prob``) -> ``retain_stats`` -> label region -> per-sample NaN/Inf fallback. Kernels are centred
(CATALOG.md 7.5: AugLab's blur kernel is off-centre and shifts the image against the label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import filters as FF
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.validation import NonNegativeRange, Probability

Truncate = Annotated[float, Field(gt=0.0, le=8.0)]
"""Gaussian kernel radius in units of sigma."""


def _odd_sizes(sizes: tuple[int, ...]) -> tuple[int, ...]:
    if not sizes:
        raise ValueError("kernel_sizes must list at least one size")
    even = [k for k in sizes if k % 2 == 0]
    if even:
        raise ValueError(f"kernel sizes must be odd (centred kernels), got {list(sizes)}")
    return sizes


SCHARR_INTEGER_GAIN = 512.0
"""Ratio of integer Scharr kernels (derivative ``(1, 0, -1)``, smoothing ``(3, 10, 3)``, as AugLab) to the normalised
ones of :func:`spineaug.functional.filters.scharr_edges`: ``2 * 16 * 16``."""

KernelSizes = Annotated[tuple[Annotated[int, Field(ge=1, le=15)], ...], AfterValidator(_odd_sizes)]
"""Odd kernel sizes from 1 to 15."""


def _draw_sigma(generator: torch.Generator, n: int, sigma: tuple[float, float], per_axis: bool) -> Tensor:
    k = 3 if per_axis else 1
    return sample.uniform(generator, (n, k), *sigma).expand(n, 3).contiguous()


@dataclass(frozen=True)
class GaussianBlurParams(Params):
    """Own parameters of :class:`RandomGaussianBlur`."""

    sigma: Tensor  # (B, 3) voxels, per axis


class RandomGaussianBlur(IntensityTransform):
    """Blur with a centred separable Gaussian whose sigma is drawn per sample (and per axis).

    Args:
        sigma: Range of the standard deviation in voxels; sigmas below 1e-3 leave the axis unchanged.
        per_axis: Draw one sigma per axis (nnU-Net, AugLab) instead of one isotropic sigma.
        truncate: Kernel radius ``ceil(truncate * sigma)`` voxels.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original (weight ``U(0, 1)`` on the original).
        region: Restrict to (or exclude) labelled regions, see :class:`RegionOptions`.
        p: Per-sample probability.
    """

    name = "GaussianBlur"
    kind = "stencil"

    def __init__(
        self,
        sigma: NonNegativeRange = (0.5, 1.0),
        per_axis: bool = True,
        truncate: Truncate = 3.0,
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.sigma, self.per_axis, self.truncate = tuple(sigma), per_axis, truncate

    def draw(self, batch: Batch, generator: torch.Generator) -> GaussianBlurParams:
        return GaussianBlurParams(sigma=_draw_sigma(generator, batch.size, self.sigma, self.per_axis))

    def transform(self, x: Tensor, values: GaussianBlurParams, label: Tensor | None) -> Tensor:
        return FF.gaussian_blur(x, values.sigma, self.truncate)


@dataclass(frozen=True)
class UnsharpMaskParams(Params):
    """Own parameters of :class:`RandomUnsharpMask`."""

    sigma: Tensor  # (B, 3) voxels, per axis
    amount: Tensor  # (B,) sharpening strength


class RandomUnsharpMask(IntensityTransform):
    """Sharpen with ``x + amount * (x - G * x)``, a centred Gaussian ``G``; sigma and amount drawn per sample.

    Args:
        sigma: Range of the Gaussian's standard deviation in voxels.
        amount: Range of the sharpening strength (0 = identity).
        per_axis: Draw one sigma per axis instead of one isotropic sigma.
        truncate: Kernel radius ``ceil(truncate * sigma)`` voxels.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "UnsharpMask"
    kind = "stencil"

    def __init__(
        self,
        sigma: NonNegativeRange = (0.0, 1.0),
        amount: NonNegativeRange = (0.0, 1.5),
        per_axis: bool = True,
        truncate: Truncate = 3.0,
        retain_stats: bool = False,
        mix_prob: Probability = 0.5,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.sigma, self.amount, self.per_axis, self.truncate = (
            tuple(sigma),
            tuple(amount),
            per_axis,
            truncate,
        )

    def draw(self, batch: Batch, generator: torch.Generator) -> UnsharpMaskParams:
        sigma = _draw_sigma(generator, batch.size, self.sigma, self.per_axis)
        return UnsharpMaskParams(sigma=sigma, amount=sample.uniform(generator, (batch.size,), *self.amount))

    def transform(self, x: Tensor, values: UnsharpMaskParams, label: Tensor | None) -> Tensor:
        return FF.unsharp_mask(x, values.sigma, values.amount, self.truncate)


class RandomScharrEdge(IntensityTransform):
    """Replace the image by its edge magnitude (normalised separable 3-D Scharr derivatives).

    A modality-agnostic appearance: with ``retain_stats`` the edge map gets the image's mean and std; blending
    (``mix_prob``) keeps part of the original.

    Args:
        magnitude: ``"l1"`` sums the absolute derivatives (AugLab); ``"l2"`` takes the gradient norm.
        normalize: Use the normalised kernels (derivative ``(-1, 0, 1) / 2``, smoothing ``(3, 10, 3) / 16``). With
            ``False`` the edge map is 512 times larger, as AugLab's integer kernels (``(1, 0, -1)``, ``(3, 10, 3)``)
            make it: blending with the original (``mix_prob``) then barely shows the original and, with
            ``retain_stats``, the result is close to a pure edge map (the ``xdomain`` preset reproduces this).
            Without mixing and with ``retain_stats`` the two settings give the same output.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "ScharrEdge"
    kind = "stencil"

    def __init__(
        self,
        magnitude: Literal["l1", "l2"] = "l1",
        normalize: bool = True,
        retain_stats: bool = True,
        mix_prob: Probability = 0.5,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.magnitude = magnitude
        self.normalize = normalize

    def transform(self, x: Tensor, values: None, label: Tensor | None) -> Tensor:
        return FF.scharr_edges(x, self.magnitude, gain=1.0 if self.normalize else SCHARR_INTEGER_GAIN)


class RandomLaplacian(IntensityTransform):
    """Replace the image by its 26-neighbour Laplacian (normalised by 1/26): a high-pass appearance.

    Args:
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability (AugLab ships it unconfigured; presets leave it at 0).
    """

    name = "Laplacian"
    kind = "stencil"

    def __init__(
        self,
        retain_stats: bool = True,
        mix_prob: Probability = 0.5,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)

    def transform(self, x: Tensor, values: None, label: Tensor | None) -> Tensor:
        return FF.laplacian(x)


def random_kernels(
    generator: torch.Generator, sizes: Tensor, k_max: int, preserve_dc: bool = False
) -> Tensor:
    """Draw RandConv kernels: i.i.d. ``N(0, 1/k^2)`` weights on a centred ``k^3`` cube, zero elsewhere.

    Args:
        generator: CPU generator.
        sizes: Kernel size per sample, (B,) long, odd, ``<= k_max``.
        k_max: Size of the returned cubes (odd).
        preserve_dc: Shift each kernel's weights (on its own support) so they sum to 1: flat regions keep their
            value and only texture and edges change.

    Returns:
        (B, k_max, k_max, k_max) float32 CPU kernels.
    """
    b = sizes.shape[0]
    t = torch.arange(k_max) - k_max // 2
    inside = t.abs().view(1, -1) <= (sizes // 2).view(b, 1)  # (B, k_max)
    support = inside[:, :, None, None] & inside[:, None, :, None] & inside[:, None, None, :]
    std = (1.0 / sizes.float()).view(b, 1, 1, 1)
    w = sample.normal(generator, (b, k_max, k_max, k_max), std) * support
    if preserve_dc:
        count = sizes.float().pow(3).view(b, 1, 1, 1)
        w = (w - w.sum(dim=(1, 2, 3), keepdim=True) / count + 1.0 / count) * support
    return w


@dataclass(frozen=True)
class RandomConvParams(Params):
    """Own parameters of :class:`RandomConv`."""

    size: Tensor  # (B,) long: kernel size
    weight: Tensor  # (B, k_max, k_max, k_max): the kernel, zero-padded and centred


class RandomConv(IntensityTransform):
    """Filter each sample with its own random dense kernel (RandConv): random texture and contrast.

    Per sample, a kernel size ``k`` is drawn from ``kernel_sizes`` and ``k^3`` weights from ``N(0, 1/k^2)``; all
    kernels are zero-padded, centred, to the largest size and applied in one grouped convolution.

    Args:
        kernel_sizes: Odd kernel sizes to choose from, uniformly.
        preserve_dc: Make each kernel sum to 1 (flat regions keep their value).
        retain_stats: Restore each sample's mean and std afterwards (recommended: a random kernel has a random
            gain).
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "RandomConv"
    kind = "stencil"

    def __init__(
        self,
        kernel_sizes: KernelSizes = (3, 5, 7),
        preserve_dc: bool = False,
        retain_stats: bool = True,
        mix_prob: Probability = 0.5,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.kernel_sizes, self.preserve_dc = tuple(kernel_sizes), preserve_dc

    def draw(self, batch: Batch, generator: torch.Generator) -> RandomConvParams:
        sizes = torch.tensor(self.kernel_sizes)[sample.choice(generator, (batch.size,), len(self.kernel_sizes))]
        weight = random_kernels(generator, sizes, max(self.kernel_sizes), self.preserve_dc)
        return RandomConvParams(size=sizes, weight=weight)

    def transform(self, x: Tensor, values: RandomConvParams, label: Tensor | None) -> Tensor:
        weight = values.weight
        k = int(values.size.max())  # CPU tensor: the largest kernel among the firing samples
        if k < weight.shape[-1]:
            lo = (weight.shape[-1] - k) // 2
            weight = weight[:, lo : lo + k, lo : lo + k, lo : lo + k]
        return FF.random_conv(x, weight.contiguous())
