"""spineaug: batched, device-agnostic 3-D augmentation for cross-domain (CT <-> MRI) spine segmentation.

Example:
    >>> import torch, spineaug
    >>> aug = spineaug.Pipeline.from_preset("none")
    >>> image, label = aug(torch.zeros(1, 1, 8, 8, 8), generator=torch.Generator().manual_seed(0))
"""

from spineaug.batch import Batch
from spineaug.pipeline import Pipeline, build_transform, load_config, presets
from spineaug.transforms import TRANSFORMS, ConfigError, RandomTransform

__version__ = "0.1.0"

__all__ = [
    "TRANSFORMS",
    "Batch",
    "ConfigError",
    "Pipeline",
    "RandomTransform",
    "build_transform",
    "load_config",
    "presets",
]
