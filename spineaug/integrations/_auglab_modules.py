"""The table of AugLab's GPU modules: each module's config key and the function that translates its block.

The order is ``AugTransformsGPU._build_transforms``'s order of application (AugLab commit 1ee096a), which is the
order of the translated entries, whatever the order of the JSON. The translators live by family in
:mod:`~spineaug.integrations._auglab_spatial`, :mod:`~spineaug.integrations._auglab_intensity` and
:mod:`~spineaug.integrations._auglab_filters`; :mod:`spineaug.integrations.auglab` applies them.
"""

from __future__ import annotations

from collections.abc import Callable

from spineaug.integrations._auglab_block import Block, Entry
from spineaug.integrations._auglab_filters import blur_block, rand_conv_block, scharr_block, unsharp_block
from spineaug.integrations._auglab_intensity import (
    acquisition,
    bias_field,
    brightness,
    clamp,
    contrast,
    crop,
    functions,
    gamma_family,
    histogram,
    inversion,
    low_res,
    noise,
    redistribute,
    zscore,
)
from spineaug.integrations._auglab_spatial import affine, flip

# AugTransformsGPU._build_transforms, in its order of application.
GPU_TRANSLATORS: dict[str, Callable[[Block], list[Entry]]] = {
    "FlipTransform": flip,
    "AffineTransform": affine,
    "InverseTransform": inversion,
    "HistogramEqualizationTransform": histogram,
    "RedistributeSegTransform": redistribute,
    "ScharrTransform": scharr_block,
    "UnsharpMaskTransform": unsharp_block,
    "RandomConvTransform": rand_conv_block,
    "ClampTransform": clamp,
    "GaussianNoiseTransform": noise,
    "GaussianBlurTransform": blur_block,
    "BrightnessTransform": brightness,
    "GammaTransform": gamma_family("Gamma"),
    "InvGammaTransform": gamma_family("InverseGamma"),
    "ContrastTransform": contrast,
    "FunctionTransform": functions,
    "SimulateLowResTransform": low_res,
    "AcqTransform": acquisition,
    "CropTransform": crop,
    "BiasFieldTransform": bias_field,
    "ZscoreNormalizationTransform": zscore,
}
