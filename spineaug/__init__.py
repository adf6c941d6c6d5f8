"""spineaug: batched, device-agnostic 3-D augmentation for cross-domain (CT <-> MRI) spine segmentation.

Example:
    >>> import torch, spineaug
    >>> aug = spineaug.Pipeline.from_preset("none")
    >>> image, label = aug(torch.zeros(1, 1, 8, 8, 8), generator=torch.Generator().manual_seed(0))
"""

from spineaug.batch import Batch
from spineaug.config import build_transform, load_config, presets
from spineaug.pipeline import Pipeline, TrainingPatch
from spineaug.transforms import TRANSFORMS, RandomTransform
from spineaug.validation import ConfigError

__version__ = "0.1.0"

__all__ = [
    "TRANSFORMS",
    "Batch",
    "ConfigError",
    "Pipeline",
    "RandomTransform",
    "TrainingPatch",
    "build_transform",
    "load_config",
    "presets",
]
