"""Bad NIfTI files: non-finite voxels, zero/NaN spacing, singular affines — each an error naming the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from spineaug.data import load_nifti, robust_zscore, save_nifti


def _image(nan=0, inf=0, dtype=np.float32):
    data = np.arange(4 * 5 * 6, dtype=dtype).reshape(4, 5, 6)
    data.flat[:nan] = np.nan
    data.flat[nan : nan + inf] = np.inf
    return data


@pytest.mark.parametrize("nan, inf, count", [(1, 0, 1), (3, 0, 3), (0, 2, 2), (2, 2, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_voxels_raise_naming_the_file_and_count(tmp_path, nan, inf, count, dtype):
    path = save_nifti(tmp_path / "bad_voxels.nii.gz", _image(nan, inf, dtype), np.eye(4))
    with pytest.raises(ValueError, match=rf"bad_voxels\.nii\.gz: {count} of 120 voxels are NaN or infinite"):
        load_nifti(path)


def test_nonfinite_policy_zero_replaces_and_keep_keeps(tmp_path):
    path = save_nifti(tmp_path / "bad.nii.gz", _image(2, 1), np.eye(4))
    clean = _image()
    clean.flat[:3] = 0
    np.testing.assert_array_equal(load_nifti(path, nonfinite="zero").data, clean)
    kept = load_nifti(path, nonfinite="keep").data
    assert np.isnan(kept.flat[0]) and np.isinf(kept.flat[2])


def test_unknown_nonfinite_policy_is_named(tmp_path):
    path = save_nifti(tmp_path / "ok.nii.gz", _image(), np.eye(4))
    with pytest.raises(ValueError, match=r"nonfinite must be one of \('raise', 'zero', 'keep'\), got 'drop'"):
        load_nifti(path, nonfinite="drop")


def test_integer_files_need_no_finite_check(tmp_path):
    path = save_nifti(tmp_path / "lab.nii.gz", np.ones((3, 3, 3), np.uint8), np.eye(4))
    assert load_nifti(path).data.dtype == np.uint8


def _write_raw(path, pixdim):
    img = nib.Nifti1Image(np.ones((3, 4, 5), np.float32), None)
    img.header["pixdim"][1:4] = pixdim
    img.header["qform_code"] = 0
    img.header["sform_code"] = 0
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("pixdim", [(0.0, 1.0, 1.0), (1.0, 0.0, 2.0), (np.nan, 1.0, 1.0), (1.0, 1.0, np.inf)])
def test_zero_or_nonfinite_spacing_raises_naming_the_file(tmp_path, pixdim):
    path = _write_raw(tmp_path / "bad_spacing.nii", pixdim)
    with pytest.raises(ValueError, match=r"bad_spacing\.nii: the header's voxel spacing \(pixdim\) must be positive"):
        load_nifti(path)


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([1.0, 1.0, 0.0, 1.0]),  # one axis collapsed
        np.array([[1.0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]),  # two axes parallel
    ],
)
def test_singular_affine_raises_naming_the_file(tmp_path, affine):
    path = tmp_path / "singular.nii"
    img = nib.Nifti1Image(np.ones((3, 4, 5), np.float32), np.eye(4))
    img.set_sform(affine, code=1)
    img.set_qform(np.eye(4), code=0)
    img.header["pixdim"][1:4] = (1.0, 1.0, 1.0)
    nib.save(img, str(path))
    with pytest.raises(ValueError, match=r"singular\.nii: the affine is singular"):
        load_nifti(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_robust_zscore_rejects_nonfinite_voxels(value):
    image = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    image[0, 0, 0] = value
    with pytest.raises(ValueError, match=r"robust_zscore: 1 of 27 voxels are NaN or infinite"):
        robust_zscore(image)
