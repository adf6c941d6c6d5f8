"""Dataset IO: NIfTI read/write (reoriented to RAS), nnU-Net raw and glob-paired readers, normalisation, patches.

Arrays are numpy (X, Y, Z) in RAS orientation (axis 0 left -> right, 1 posterior -> anterior,
2 inferior -> superior); images of a :class:`Sample` are (C, X, Y, Z) float32, labels (X, Y, Z) uint8. The
:class:`PatchSampler` yields torch tensors, (C, X, Y, Z) float32 and (1, X, Y, Z) int64.
"""

from spineaug.data.datasets import (
    SPIDER_LABELS,
    VERSE_LABELS,
    NnUNetRawDataset,
    PairedNiftiDataset,
    Sample,
    SegmentationDataset,
    read_dataset_json,
)
from spineaug.data.nifti import Volume, load_nifti, resample, robust_zscore, save_nifti
from spineaug.data.sampling import PatchSampler, enlarged_patch_size

__all__ = [
    "SPIDER_LABELS",
    "VERSE_LABELS",
    "NnUNetRawDataset",
    "PairedNiftiDataset",
    "PatchSampler",
    "Sample",
    "SegmentationDataset",
    "Volume",
    "load_nifti",
    "read_dataset_json",
    "resample",
    "robust_zscore",
    "save_nifti",
    "enlarged_patch_size",
]
