"""Dataset IO: NIfTI read/write (reoriented to RAS), nnU-Net raw layout (read and write), glob-paired reader,
normalisation, patches.

Arrays are numpy (X, Y, Z) in RAS orientation (axis 0 left -> right, 1 posterior -> anterior,
2 inferior -> superior); images of a :class:`Sample` are (C, X, Y, Z) float32, labels (X, Y, Z) uint8. The
:class:`PatchSampler` yields torch tensors, (C, X, Y, Z) float32 and (1, X, Y, Z) int64.
"""

from spineaug.data.datasets import SPIDER_LABELS, VERSE_LABELS, PairedNiftiDataset, Sample, SegmentationDataset
from spineaug.data.nifti import Volume, load_nifti, resample, robust_zscore, save_nifti
from spineaug.data.nnunet_raw import (
    NnUNetRawDataset,
    dataset_folder_name,
    has_test_labels,
    label_values,
    read_dataset_json,
    read_splits,
    write_case,
    write_dataset_json,
)
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
    "dataset_folder_name",
    "has_test_labels",
    "label_values",
    "load_nifti",
    "read_dataset_json",
    "read_splits",
    "resample",
    "robust_zscore",
    "save_nifti",
    "write_case",
    "write_dataset_json",
    "enlarged_patch_size",
]
