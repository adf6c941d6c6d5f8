"""Elementwise and per-sample-statistics intensity transforms (CATALOG.md sections 3.3-3.21)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import intensity as FI
from spineaug.transforms.base import IntensityTransform, PositiveRange, Probability, RegionOptions

Sampler = Literal["uniform", "bgcontrast"]


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

    def draw(self, batch: Batch, generator: torch.Generator) -> dict[str, Tensor]:
        draw = sample.bg_contrast if self.sampler == "bgcontrast" else sample.uniform
        return {"gamma": draw(generator, (batch.size,), *self.gamma)}

    def transform(self, x: Tensor, values: dict[str, Tensor], label: Tensor | None) -> Tensor:
        src = -x if self.invert else x
        u, lo, span = FI.normalise01(src)
        y = u.pow(FI.per_sample(values["gamma"], x)) * span + lo
        return -y if self.invert else y


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
