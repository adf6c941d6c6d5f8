"""Random transforms: each draws per-sample parameters, then calls a pure function of ``spineaug.functional``.

``TRANSFORMS`` maps config names (CATALOG.md) to transform classes.
"""

from spineaug.transforms.base import ConfigError, RandomTransform, Warp
from spineaug.transforms.intensity import RandomGamma, RandomInverseGamma
from spineaug.transforms.spatial import GeometricTransform, RandomAffine, RandomFlip, RandomSpatial

_CLASSES: list[type[RandomTransform]] = [
    RandomSpatial,
    RandomAffine,
    RandomFlip,
    RandomGamma,
    RandomInverseGamma,
]

TRANSFORMS: dict[str, type[RandomTransform]] = {cls.name: cls for cls in _CLASSES}

__all__ = [
    "TRANSFORMS",
    "ConfigError",
    "GeometricTransform",
    "RandomAffine",
    "RandomFlip",
    "RandomGamma",
    "RandomInverseGamma",
    "RandomSpatial",
    "RandomTransform",
    "Warp",
]
