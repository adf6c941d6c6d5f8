"""Random transforms: each draws per-sample parameters, then calls a pure function of ``spineaug.functional``.

``TRANSFORMS`` maps config names (CATALOG.md) to transform classes.
"""

from spineaug.transforms._resample import Warp
from spineaug.transforms.base import IntensityParams, IntensityTransform, Params, RandomTransform
from spineaug.transforms.intensity import (
    RandomBiasField,
    RandomBrightness,
    RandomContrast,
    RandomGamma,
    RandomGaussianNoise,
    RandomHistogramEqualization,
    RandomIntensityFunction,
    RandomInverseGamma,
    RandomInversion,
    RandomPercentileClamp,
    RandomZScore,
)
from spineaug.transforms.filters import (
    RandomConv,
    RandomGaussianBlur,
    RandomLaplacian,
    RandomScharrEdge,
    RandomUnsharpMask,
)
from spineaug.transforms.fov import RandomFovCrop
from spineaug.transforms.labels import RandomLabelAppearance, RandomLabelIntensityRemap
from spineaug.transforms.randconv import RandomGIN, RandomIPA, RandomProgressiveRandConv
from spineaug.transforms.resolution import RandomLowResolution, RandomThickSlice
from spineaug.transforms.synthesis import RandomClassLocationScale, RandomLabelSynthesis
from spineaug.transforms.spatial import GeometricTransform, RandomAffine, RandomFlip, RandomSpatial
from spineaug.validation import ConfigError

_CLASSES: list[type[RandomTransform]] = [
    RandomSpatial,
    RandomAffine,
    RandomFlip,
    RandomInversion,
    RandomHistogramEqualization,
    RandomPercentileClamp,
    RandomGaussianNoise,
    RandomBrightness,
    RandomGamma,
    RandomInverseGamma,
    RandomContrast,
    RandomIntensityFunction,
    RandomBiasField,
    RandomZScore,
    RandomLabelIntensityRemap,
    RandomScharrEdge,
    RandomUnsharpMask,
    RandomConv,
    RandomGaussianBlur,
    RandomLowResolution,
    RandomThickSlice,
    RandomFovCrop,
    RandomLaplacian,
    RandomLabelAppearance,
    RandomLabelSynthesis,
    RandomClassLocationScale,
    RandomGIN,
    RandomIPA,
    RandomProgressiveRandConv,
]

TRANSFORMS: dict[str, type[RandomTransform]] = {cls.name: cls for cls in _CLASSES}

__all__ = [
    "TRANSFORMS",
    "ConfigError",
    "GeometricTransform",
    "IntensityParams",
    "IntensityTransform",
    "Params",
    "RandomAffine",
    "RandomFlip",
    "RandomBiasField",
    "RandomBrightness",
    "RandomClassLocationScale",
    "RandomContrast",
    "RandomGamma",
    "RandomGaussianNoise",
    "RandomHistogramEqualization",
    "RandomIntensityFunction",
    "RandomInverseGamma",
    "RandomInversion",
    "RandomPercentileClamp",
    "RandomZScore",
    "RandomSpatial",
    "RandomTransform",
    "RandomConv",
    "RandomFovCrop",
    "RandomGaussianBlur",
    "RandomGIN",
    "RandomIPA",
    "RandomLabelAppearance",
    "RandomLabelIntensityRemap",
    "RandomLabelSynthesis",
    "RandomLaplacian",
    "RandomLowResolution",
    "RandomProgressiveRandConv",
    "RandomScharrEdge",
    "RandomThickSlice",
    "RandomUnsharpMask",
    "Warp",
]
