"""Label-driven domain-generalisation transforms: LabelSynthesis (SynthSeg) and ClassLocationScale (SLAug).

Both need the label map (``requires_label``) and change only the image. Like the other label-guided transforms
(:mod:`spineaug.transforms.labels`) they work on a fixed table of ``max_label + 1`` label values: larger values count
as background, so every table has a static shape and nothing synchronises with the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
from pydantic import AfterValidator, Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import labels as FL
from spineaug.functional import noise as FN
from spineaug.functional import synthesis as FS
from spineaug.transforms.base import IntensityTransform, Params, RegionOptions
from spineaug.validation import NonNegativeRange, PositiveRange, Probability, Range, ordered

MaxLabel = Annotated[int, Field(ge=1, le=255)]
_Clusters = Annotated[int, Field(ge=1, le=16)]
ClusterRange = Annotated[tuple[_Clusters, _Clusters], AfterValidator(ordered)]


@dataclass(frozen=True)
class LabelSynthesisParams(Params):
    """Own parameters of :class:`RandomLabelSynthesis` (``L = max_label + 1``, ``K`` = largest cluster count)."""

    clusters: Tensor  # (B, L) long: number of intensity sub-labels of each label
    mean: Tensor  # (B, L, K) mean of each sub-label
    std: Tensor  # (B, L, K) standard deviation of each sub-label
    seed: Tensor  # (B,) int64 seed of each sample's noise field


class RandomLabelSynthesis(IntensityTransform):
    """Replace the image by a fresh one sampled from the label map: SynthSeg's Gaussian mixture per (sub-)label.

    Billot et al., "SynthSeg: Segmentation of brain MRI scans of any contrast and resolution without retraining",
    Medical Image Analysis 86 (2023) 102789, Sec. 3.2 ("initial HR synthetic image"): per sample and label ``k`` a
    mean ``mu_k ~ U(a_mu, b_mu)`` and a std ``sigma_k ~ U(a_sigma, b_sigma)``, then every voxel ``G_v ~
    N(mu_{S_v}, sigma_{S_v}^2)``. The defaults are the authors' public code's (``training.py``: ``mu ~ U(25, 225)``,
    ``sigma ~ U(5, 25)``), the ranges we could verify at the source; ``p = 1`` as in the paper.

    Sub-labels: SynthSeg synthesises from label maps finer than the task's (its brain labels plus clusters of the
    extra-cerebral tissue). Where only coarse labels exist (spine: vertebra, disc, canal, and a background that holds
    fat, muscle and air), each label region is split into ``k`` intensity clusters of the real image: ``k`` quantile
    bins of the region's intensities, ``k ~ U{clusters}`` per sample and label (background included), computed from
    one per-label histogram (:func:`spineaug.functional.synthesis.intensity_clusters`), no sort. Every sub-label then
    gets its own mean and std. With ``clusters = (1, 1)`` the output depends on the label map (and the noise) only.

    Units: the means and stds are drawn in the paper's units (0-255 scale); with ``retain_stats`` (default) the
    synthetic image is then mapped affinely to the input's mean and std, so it fits z-scored pipelines and the
    contrasts relative to the spread stay the paper's. The gradient with respect to the input image is zero (the
    output does not depend on its values, only on their cluster ranks).

    The paper's corruption chain (bias field, intensity normalisation and gamma, resolution: blur and down-sampling,
    final normalisation) is not part of this transform: the ``synthseg`` preset composes it from the engine's
    BiasField, Gamma, ThickSlice and ZScore entries (each with its own tests, benchmark row and gallery row).

    Args:
        mean: Range of the (sub-)label means (paper units).
        std: Range of the (sub-)label standard deviations (paper units).
        clusters: Range (inclusive) of the number of intensity sub-labels per label.
        max_label: Largest label value with its own appearance; larger values share the background's.
        retain_stats: Map the result to each sample's mean and std.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability (SynthSeg always synthesises: 1).
    """

    name = "LabelSynthesis"
    kind = "label-lookup"
    requires_label: ClassVar[bool] = True

    def __init__(
        self,
        mean: Range = (25.0, 225.0),
        std: NonNegativeRange = (5.0, 25.0),
        clusters: ClusterRange = (1, 3),
        max_label: MaxLabel = 3,
        retain_stats: bool = True,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.mean, self.std, self.clusters = tuple(mean), tuple(std), tuple(clusters)
        self.max_label = max_label

    def draw(self, batch: Batch, generator: torch.Generator) -> LabelSynthesisParams:
        n, num = batch.size, self.max_label + 1
        lo, hi = self.clusters
        k = self.clusters[1]
        return LabelSynthesisParams(
            clusters=sample.randint(generator, (n, num), hi - lo + 1) + lo,
            mean=sample.uniform(generator, (n, num, k), *self.mean),
            std=sample.uniform(generator, (n, num, k), *self.std),
            seed=sample.seeds(generator, (n,)),
        )

    def transform(self, x: Tensor, values: LabelSynthesisParams, label: Tensor | None) -> Tensor:
        num = self.max_label + 1
        lab = FL.label_index(label, self.max_label)
        if self.clusters[1] == 1:  # static: no histogram needed
            sub = torch.zeros(x.shape, dtype=torch.long, device=x.device)
        else:
            sub = FS.intensity_clusters(x, lab, num, values.clusters)
        noise = FN.normal_field(values.seed.to(x.device, non_blocking=True), tuple(x.shape[1:]))
        return FS.synthesise_from_labels(lab, sub, values.mean, values.std, noise, dtype=x.dtype)


@dataclass(frozen=True)
class ClassLocationScaleParams(Params):
    """Own parameters of :class:`RandomClassLocationScale` (``L = max_label + 1``)."""

    scale: Tensor  # (B, L) scale a_l of each label region
    location: Tensor  # (B, L) location b_l of each label region (normalised units, before the clamp)
    global_: Tensor  # (B,) bool: one location-scale for the whole image (SLAug's global variant)


class RandomClassLocationScale(IntensityTransform):
    """Give every label region its own random affine intensity map (SLAug's class-level location-scale).

    Su et al., "Rethinking data augmentation for single-source domain generalization in medical image segmentation",
    AAAI 2023, method section, location-scale augmentation ``LS(x) = a x + b`` applied per class ``c`` (class-level, CLA) or
    to the whole image (global, GLA). Defaults from the paper's code (``LocationScaleAugmentation``): on the image
    min-max normalised to [0, 1] (their ``vrange``), ``a_c = clip(N(1, 0.1^2), 0.9, 1.1)``, ``b_c ~ N(0, 0.5^2)``
    clamped so that the region's 20th and 80th percentiles stay in [0, 1] (their ``slide_limit`` 20), output clipped
    to [0, 1], voxels at or below 0.01 kept (their ``background_threshold``; class-level only), then mapped back to
    the input's range. Background (label 0) is a class of its own. With probability ``p_global`` a sample gets the
    global variant instead: one ``a, b`` for the whole image, clamped with the whole image's percentiles.

    Left out: the random monotone Bezier curve SLAug applies before each location-scale (a non-linear remap; the
    engine's IntensityFunction/LabelIntensityRemap cover that family), and the saliency-guided channel fusion of the
    GLA and CLA images, which needs the model's gradients: that would be a training-loop hook, not a transform.

    Args:
        scale_std: Standard deviation of the scale around 1.
        scale: Clip range of the scale.
        location_std: Standard deviation of the location (normalised units).
        clamp_quantile: Quantile ``q`` of the location clamp (``[q, 1 - q]`` percentiles stay in range).
        background_threshold: Normalised intensity at or below which class-level voxels keep their value (negative:
            none).
        p_global: Per-sample probability of the global variant.
        max_label: Largest label value that is a class of its own; larger values share the background's.
        retain_stats: Restore each sample's mean and std afterwards.
        mix_prob: Probability of blending with the original.
        region: Restrict to (or exclude) labelled regions.
        p: Per-sample probability.
    """

    name = "ClassLocationScale"
    kind = "label-lookup"
    requires_label: ClassVar[bool] = True

    def __init__(
        self,
        scale_std: Annotated[float, Field(ge=0.0, le=10.0)] = 0.1,
        scale: PositiveRange = (0.9, 1.1),
        location_std: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5,
        clamp_quantile: Annotated[float, Field(ge=0.0, le=0.5)] = 0.2,
        background_threshold: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.01,
        p_global: Probability = 0.0,
        max_label: MaxLabel = 3,
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p, retain_stats=retain_stats, mix_prob=mix_prob, region=region)
        self.scale_std, self.scale, self.location_std = scale_std, tuple(scale), location_std
        self.clamp_quantile, self.background_threshold = clamp_quantile, background_threshold
        self.p_global, self.max_label = p_global, max_label

    def draw(self, batch: Batch, generator: torch.Generator) -> ClassLocationScaleParams:
        n, num = batch.size, self.max_label + 1
        a = (1.0 + sample.normal(generator, (n, num), self.scale_std)).clamp(*self.scale)
        b = sample.normal(generator, (n, num), self.location_std)
        glob = sample.bernoulli(generator, (n,), self.p_global)
        # the global variant: every class takes the background's draw
        a = torch.where(glob[:, None], a[:, :1], a)
        b = torch.where(glob[:, None], b[:, :1], b)
        return ClassLocationScaleParams(scale=a, location=b, global_=glob)

    def transform(self, x: Tensor, values: ClassLocationScaleParams, label: Tensor | None) -> Tensor:
        num = self.max_label + 1
        lab = FL.label_index(label, self.max_label)
        glob = values.global_
        if bool(glob.any()):  # CPU parameter: no device synchronisation
            # the global variant is one class (its percentiles are the whole image's), without the threshold
            lab = torch.where(glob.to(x.device, non_blocking=True).view(-1, 1, 1, 1, 1), 0, lab)
        threshold = torch.where(glob, -1.0, self.background_threshold)
        return FS.class_location_scale(
            x, lab, num, values.scale, values.location, clamp_quantile=self.clamp_quantile,
            background_threshold=threshold,
        )
