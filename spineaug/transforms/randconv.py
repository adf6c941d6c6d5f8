"""Random-convolution domain-generalisation transforms: GIN, IPA (Ouyang et al., TMI 2023) and progressive random
convolution (Choi et al., CVPR 2023).

Each is an :class:`~spineaug.transforms.base.IntensityTransform` (gate ``p`` -> transform -> optional blend
``mix_prob`` -> optional ``retain_stats`` -> label region -> NaN/Inf fallback). Every sample draws its own random
network from the explicit generator; the networks are small CPU tensors stored in the parameters, so a call can be
replayed with ``params=``. The networks run as grouped ``conv3d`` (batch folded into the channels), with no loop over
the batch and no host synchronisation; labels are never touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import AfterValidator, Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import randconv as FR
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.transforms.filters import KernelSizes
from spineaug.validation import PositiveRange, Probability, UnitRange

Layers = Annotated[int, Field(ge=2, le=16)]
"""Convolution layers of a GIN network (first and last included)."""
Channels = Annotated[int, Field(ge=1, le=16)]
"""Channels between GIN layers."""
Slope = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""Leaky ReLU slope for negative inputs."""
Std = Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)]
"""A standard deviation of a random parameter."""


def _odd(k: int) -> int:
    if k % 2 != 1:
        raise ValueError(f"kernel_size must be odd (a centred kernel), got {k}")
    return k


OddSize = Annotated[int, Field(ge=1, le=7), AfterValidator(_odd)]
"""An odd kernel size from 1 to 7."""
ControlIntervals = Annotated[int, Field(ge=1, le=32)]
"""Control-point intervals across each axis of IPA's blending map."""


def _cube_support(sizes: Tensor, k_max: int) -> Tensor:
    """(..., k_max, k_max, k_max) bool: the centred ``size^3`` cube of each entry of ``sizes``."""
    t = torch.arange(k_max) - k_max // 2
    inside = t.abs() <= (sizes // 2)[..., None]  # (..., k_max)
    return inside[..., :, None, None] & inside[..., None, :, None] & inside[..., None, None, :]


@dataclass(frozen=True)
class GINParams(Params):
    """One random GIN network and blending weight per sample."""

    size: Tensor  # (B, L) long: kernel size of each layer
    weight: Tensor  # (B, L, M, M, K, K, K): layer kernels (M = max(channels, hidden), zero-padded), N(0, 1)
    bias: Tensor  # (B, L, M): layer shifts, N(0, 1)
    alpha: Tensor  # (B,): weight of the network output when blending with the input, U(alpha)


def draw_gin(
    generator: torch.Generator,
    n: int,
    channels: int,
    layers: int,
    hidden_channels: int,
    kernel_sizes: tuple[int, ...],
    alpha: tuple[float, float],
) -> GINParams:
    """Draw ``n`` GIN networks for ``channels``-channel images (weights and shifts i.i.d. ``N(0, 1)``)."""
    k_max, m = max(kernel_sizes), max(channels, hidden_channels)
    size = torch.tensor(kernel_sizes)[sample.choice(generator, (n, layers), len(kernel_sizes))]
    weight = sample.normal(generator, (n, layers, m, m, k_max, k_max, k_max))
    weight = weight * _cube_support(size, k_max)[:, :, None, None]
    bias = sample.normal(generator, (n, layers, m))
    return GINParams(size=size, weight=weight, bias=bias, alpha=sample.uniform(generator, (n,), *alpha))


class _GINOptions(IntensityTransform):
    """What GIN and IPA share: drawing and running one GIN network per sample."""

    def _network(self, x: Tensor, v: GINParams) -> Tensor:
        return FR.gin(x, v.weight, v.bias, v.size, v.alpha, self.hidden_channels, self.negative_slope)

    def _draw(self, batch: Batch, generator: torch.Generator) -> GINParams:
        return draw_gin(generator, batch.size, batch.image.shape[1], self.layers, self.hidden_channels,
                        self.kernel_sizes, self.alpha)


class RandomGIN(_GINOptions):
    """Global intensity non-linear augmentation (GIN): a fresh shallow random conv network per sample.

    Ouyang, Chen, Li, Li, Qin, Bai, Rueckert, "Causality-inspired single-source domain generalization for medical
    image segmentation", IEEE TMI 42(4), 2023 (arXiv:2111.12525), section "Global intensity non-linear
    augmentation": ``g_theta`` is a stack of ``layers`` random convolutions (``C -> hidden -> ... -> hidden -> C``)
    with leaky ReLUs between them, weights and shifts i.i.d. ``N(0, 1)`` redrawn at every call; the output is
    ``||x||_F * m / ||m||_F`` with ``m = alpha * g_theta(x) + (1 - alpha) * x``, ``alpha ~ U(0, 1)``. The defaults
    are the authors' (paper and released code ``models/imagefilter3d.py``): 4 layers, 2 intermediate channels, each
    layer's kernel 1 or 3 voxels, Frobenius renormalisation; the leaky ReLU slope is the released code's
    (``F.leaky_relu`` default, 0.01).

    What we changed for 3-D and for the engine, and why:

    * The kernel size is drawn per sample and per layer (the code draws it per layer, shared by the whole batch):
      the engine never shares a draw across the batch. Kernels are ``k^3`` cubes (the code's 3-D variant).
    * Borders are reflect-padded (the code pads with zeros): four stacked zero-padded layers darken or brighten a
      rim of the volume that has no anatomical meaning, and the patch border would then be a cue the network can
      learn; reflection keeps every filter in the engine consistent.
    * The Frobenius norm is taken per sample over all channels and voxels, as in the code.
    * Blending with the original (``mix_prob``) is off: ``alpha`` is the method's own blend.

    Args:
        layers: Convolution layers (the last has no activation).
        hidden_channels: Channels between layers.
        kernel_sizes: Odd kernel sizes each layer chooses from, uniformly.
        negative_slope: Leaky ReLU slope.
        alpha: Range of the network output's blending weight (0 returns the input).
        retain_stats: Also restore each channel's mean and std afterwards (off: the Frobenius norm is the method's
            renormalisation).
        mix_prob: Probability of an extra blend with the original (the engine's mechanism; off by default).
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "GIN"
    kind = "stencil"

    def __init__(
        self,
        layers: Layers = 4,
        hidden_channels: Channels = 2,
        kernel_sizes: KernelSizes = (1, 3),
        negative_slope: Slope = 0.01,
        alpha: UnitRange = (0.0, 1.0),
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.layers, self.hidden_channels, self.negative_slope = layers, hidden_channels, negative_slope
        self.kernel_sizes, self.alpha = tuple(kernel_sizes), tuple(alpha)

    def draw(self, batch: Batch, generator: torch.Generator) -> GINParams:
        return self._draw(batch, generator)

    def transform(self, x: Tensor, values: GINParams, label: Tensor | None) -> Tensor:
        return self._network(x, values)


@dataclass(frozen=True)
class IPAParams(Params):
    """Two GIN networks and one blending map per sample."""

    view_a: GINParams  # the view weighted by the map
    view_b: GINParams  # the view weighted by one minus the map
    control: Tensor  # (B, n + 2, n + 2, n + 2): log-domain control points (n intervals), N(0, epsilon^2)
    blend: Tensor  # (B,) bool: the two views are blended; False gives view a alone (a plain GIN sample)


class RandomIPA(_GINOptions):
    """Interventional pseudo-correlation augmentation (IPA): two GIN views blended through a smooth random map.

    Ouyang et al., IEEE TMI 2023 (see :class:`RandomGIN`), section "Interventional pseudo-correlation augmentation":
    ``out = M * GIN_a(x) + (1 - M) * GIN_b(x)``, where ``GIN_a``, ``GIN_b`` are two independently drawn GIN networks
    (each with its own ``alpha`` and Frobenius renormalisation) and ``M`` a smooth random map in [0, 1], so
    appearance changes differently in different parts of the volume. The authors build ``M`` from random control
    points (their ``AdvBias`` with ``init_mode gaussian``, ``space log``, ``epsilon 0.3``, control-point spacing 24 x downscale 2 = 48 px on
    192 px images, i.e. a quarter of the field of view, interpolation order 2), interpolate, exponentiate and
    min-max rescale it to [0, 1] per sample. Defaults follow that: control points ``N(0, 0.3^2)`` in the log domain,
    a quadratic B-spline, 4 control intervals per axis (spacing a quarter of the volume), GIN defaults as
    :class:`RandomGIN`.

    What we changed, and why:

    * The control spacing is a fraction of each axis of the volume (the code: a fixed 48 px on 192 px images), so
      the map has the same structure on any patch size and anisotropic patches.
    * The map is drawn per sample (the code draws one per batch) and shared by the channels (as in the code).
    * The authors train on three copies of each batch (one plain GIN view and the two complementary IPA views
      ``M a + (1 - M) b`` and ``(1 - M) a + M b``) with a consistency loss between them; a single-stream augmentation
      returns one image per sample. ``p_blend`` is the share of samples that get an IPA view (the others get the
      plain GIN view ``a``): 2/3 reproduces the mixture of the authors' batches, 1 (the default) is pure IPA. The
      consistency loss is a training objective, not an augmentation, and is not part of the engine.

    Args:
        layers, hidden_channels, kernel_sizes, negative_slope, alpha: Each GIN network, see :class:`RandomGIN`.
        control_intervals: Control-point intervals across each axis of the volume (the grid holds two more points,
            one beyond each border).
        epsilon: Standard deviation of the log-domain control points.
        p_blend: Per-sample probability of the two-view blend (else the plain GIN view ``a``).
        retain_stats: Restore each channel's mean and std afterwards.
        mix_prob: Probability of an extra blend with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "IPA"
    kind = "stencil"
    effect_gates = ("p_blend",)

    def __init__(
        self,
        layers: Layers = 4,
        hidden_channels: Channels = 2,
        kernel_sizes: KernelSizes = (1, 3),
        negative_slope: Slope = 0.01,
        alpha: UnitRange = (0.0, 1.0),
        control_intervals: ControlIntervals = 4,
        epsilon: Std = 0.3,
        p_blend: Probability = 1.0,
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.layers, self.hidden_channels, self.negative_slope = layers, hidden_channels, negative_slope
        self.kernel_sizes, self.alpha = tuple(kernel_sizes), tuple(alpha)
        self.control_intervals, self.epsilon, self.p_blend = control_intervals, epsilon, p_blend

    def draw(self, batch: Batch, generator: torch.Generator) -> IPAParams:
        a, b = self._draw(batch, generator), self._draw(batch, generator)
        n = self.control_intervals + 2
        control = sample.normal(generator, (batch.size, n, n, n), self.epsilon)
        return IPAParams(view_a=a, view_b=b, control=control, blend=sample.bernoulli(generator, (batch.size,),
                                                                                       self.p_blend))

    def transform(self, x: Tensor, values: IPAParams, label: Tensor | None) -> Tensor:
        view_a = self._network(x, values.view_a)
        return FR.ipa(x, view_a, self._network(x, values.view_b), values.control, values.blend)


@dataclass(frozen=True)
class ProgressiveRandConvParams(Params):
    """One random convolution block per sample and how often it is applied."""

    repeats: Tensor  # (B,) long: applications of the block, 1..max_repeats
    weight: Tensor  # (B, K, K, K): Gaussian-smoothed random kernel
    gamma: Tensor  # (B, C): random affine scale after the standardisation, N(0, gamma_std^2)
    beta: Tensor  # (B, C): random affine shift, N(0, beta_std^2)


class RandomProgressiveRandConv(IntensityTransform):
    """Progressive random convolution: ONE small random block applied a random number of times per sample.

    Choi, Das, Choi, Yang, Park, Yun, "Progressive Random Convolutions for Single Domain Generalization", CVPR 2023
    (arXiv:2304.00424), Section 3, Fig. 3 (the block), eq. 2 (deformable offsets), eq. 3-4 (standardisation
    and affine), Algorithm 1 (training): a random convolution block (random kernel -> standardisation -> random
    affine ``gamma * z + beta`` -> ``tanh``) is stacked ``L ~ U{1, ..., L_max}`` times with the SAME weights, so the
    effective receptive field grows with ``L`` while each step stays a small kernel (larger RandConv kernels
    destroy the semantics). Kernel weights ``N(0, sigma_w^2)``, ``sigma_w = 1 / sqrt(k^d C_in)`` (He
    initialisation), multiplied by a Gaussian ``exp(-|t|^2 / (2 sigma_g^2))`` with ``sigma_g ~ U(eps, 1)``; affine
    ``gamma ~ N(0, 0.5^2)``, ``beta ~ N(0, 0.5^2)`` per channel. Defaults: the paper's ``k = 3`` and ``L_max = 10``.

    What we changed for 3-D and for the engine, and why:

    * No deformable offsets (the paper's ``Delta p ~ N(0, sigma_Delta^2)``): PyTorch has no 3-D deformable
      convolution, and emulating one costs one ``grid_sample`` per kernel tap (27 for ``3^3``) per repetition, i.e.
      up to 270 resamplings of the volume per sample: far beyond the budget of an on-the-fly augmentation. The
      offsets add sub-voxel texture jitter; the contrast and texture diversity come from the kernel, the affine and
      the repetitions, which are kept.
    * The kernel is ``k^3`` and shared by the channels (a depthwise convolution; spine CT/MRI has one channel, where
      this equals the paper's dense ``C_in -> C_out`` layer).
    * Borders are reflect-padded (the paper zero-pads): repeated zero-padded convolutions grow a border artefact
      ``L`` voxels deep.
    * ``retain_stats`` is on by default: ``tanh`` maps into (-1, 1), while the engine's images are in their own
      intensity units (e.g. z-scores); restoring each channel's mean and std keeps the scale the later transforms
      and the network expect. The paper's RGB images in [0, 1] need no such step.

    Args:
        kernel_size: Size of the random kernel (odd).
        max_repeats: Largest number of applications ``L_max``; each sample draws ``L`` uniformly from 1 to it.
        smoothing_sigma: Range of the Gaussian smoothing of the kernel weights, in voxels.
        gamma_std: Standard deviation of the random affine scale.
        beta_std: Standard deviation of the random affine shift.
        retain_stats: Restore each channel's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "ProgressiveRandConv"
    kind = "stencil"

    def __init__(
        self,
        kernel_size: OddSize = 3,
        max_repeats: Annotated[int, Field(ge=1, le=32)] = 10,
        smoothing_sigma: PositiveRange = (1e-4, 1.0),
        gamma_std: Std = 0.5,
        beta_std: Std = 0.5,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.kernel_size, self.max_repeats, self.smoothing_sigma = kernel_size, max_repeats, tuple(smoothing_sigma)
        self.gamma_std, self.beta_std = gamma_std, beta_std

    def draw(self, batch: Batch, generator: torch.Generator) -> ProgressiveRandConvParams:
        n, c, k = batch.size, batch.image.shape[1], self.kernel_size
        repeats = sample.randint(generator, (n,), self.max_repeats) + 1
        sigma_g = sample.uniform(generator, (n,), *self.smoothing_sigma).view(n, 1, 1, 1)
        t = (torch.arange(k) - k // 2).float()
        r2 = t.view(k, 1, 1) ** 2 + t.view(1, k, 1) ** 2 + t.view(1, 1, k) ** 2
        weight = sample.normal(generator, (n, k, k, k), 1.0 / math.sqrt(k**3)) * torch.exp(-r2 / (2 * sigma_g**2))
        gamma = sample.normal(generator, (n, c), self.gamma_std)
        beta = sample.normal(generator, (n, c), self.beta_std)
        return ProgressiveRandConvParams(repeats=repeats, weight=weight, gamma=gamma, beta=beta)

    def transform(self, x: Tensor, values: ProgressiveRandConvParams, label: Tensor | None) -> Tensor:
        steps = int(values.repeats.max())  # CPU tensor: a host integer, no device sync
        return FR.progressive_conv(x, values.weight, values.repeats, values.gamma, values.beta, steps)


__all__ = [
    "GINParams",
    "IPAParams",
    "ProgressiveRandConvParams",
    "RandomGIN",
    "RandomIPA",
    "RandomProgressiveRandConv",
    "draw_gin",
]
