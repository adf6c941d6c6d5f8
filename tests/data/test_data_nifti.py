"""NIfTI IO: round trip, reorientation to RAS, resampling, robust z-score, bad files."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from spineaug.data import Volume, load_nifti, resample, robust_zscore, save_nifti


def _affine(spacing=(1.5, 2.0, 3.0), origin=(-10.0, 5.0, 2.0)):
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def test_round_trip_keeps_data_affine_spacing_dtype(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(6, 7, 8)).astype(np.float32)
    label = rng.integers(0, 4, (6, 7, 8)).astype(np.uint8)
    save_nifti(tmp_path / "i.nii.gz", image, _affine())
    save_nifti(tmp_path / "l.nii.gz", label, _affine())
    img, lab = load_nifti(tmp_path / "i.nii.gz"), load_nifti(tmp_path / "l.nii.gz")
    np.testing.assert_array_equal(img.data, image)
    np.testing.assert_array_equal(lab.data, label)
    assert img.data.dtype == np.float32 and lab.data.dtype == np.uint8
    np.testing.assert_allclose(img.affine, _affine())
    assert img.spacing == pytest.approx((1.5, 2.0, 3.0))
    hdr = nib.load(tmp_path / "i.nii.gz").header
    assert int(hdr["sform_code"]) == 1 and int(hdr["qform_code"]) == 1


def test_reorients_lps_to_ras(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lps = np.diag([-2.0, -2.0, 2.0, 1.0])
    save_nifti(tmp_path / "lps.nii.gz", data, lps)
    vol = load_nifti(tmp_path / "lps.nii.gz")
    np.testing.assert_array_equal(vol.data, data[::-1, ::-1, :])
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    # the same voxel keeps its world position
    world = lps @ np.array([0, 0, 0, 1.0])
    np.testing.assert_allclose(vol.affine @ np.array([3, 4, 0, 1.0]), world)
    raw = load_nifti(tmp_path / "lps.nii.gz", reorient=False)
    np.testing.assert_array_equal(raw.data, data)


def test_resample_keeps_field_of_view_and_label_values():
    rng = np.random.default_rng(1)
    label = np.kron(rng.integers(0, 4, (4, 5, 3)), np.ones((4, 4, 4))).astype(np.uint8)  # (16, 20, 12)
    vol = Volume(label, _affine((1.0, 1.0, 2.0)))
    out = resample(vol, 2.0, order=0)
    assert out.shape == (8, 10, 12) and out.data.dtype == np.uint8
    assert set(np.unique(out.data)) <= set(np.unique(label))
    assert out.spacing == pytest.approx((2.0, 2.0, 2.0))
    # field-of-view edges coincide: first voxel edge in world coordinates
    edge_in = vol.affine @ np.array([-0.5, -0.5, -0.5, 1])
    edge_out = out.affine @ np.array([-0.5, -0.5, -0.5, 1])
    np.testing.assert_allclose(edge_in, edge_out)
    # blocks of 4 voxels -> blocks of 2 voxels, values kept
    np.testing.assert_array_equal(out.data, label[::2, ::2, :])
    assert resample(vol, (1.0, 1.0, 2.0), order=0) is vol
    image = resample(Volume(label.astype(np.float32), vol.affine), (0.5, 0.5, 1.0), order=1)
    assert image.shape == (32, 40, 24) and image.data.dtype == np.float32
    with pytest.raises(ValueError, match="spacing"):
        resample(vol, -1.0, order=0)


def test_robust_zscore():
    rng = np.random.default_rng(2)
    x = rng.normal(100, 15, (20, 20, 20)).astype(np.float32)
    x[0, 0, 0] = 1e6  # an outlier is clipped away
    z = robust_zscore(x)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.02 and z.max() < 4
    assert x[0, 0, 0] == 1e6  # input untouched
    mask = np.zeros(x.shape, bool)
    mask[5:15] = True
    zm = robust_zscore(x, mask)
    assert abs(float(zm[mask].mean())) < 0.05
    assert not np.any(robust_zscore(np.full((4, 4, 4), 3.0)))
    with pytest.raises(ValueError, match="percentiles"):
        robust_zscore(x, percentiles=(50, 10))
    with pytest.raises(ValueError, match="mask"):
        robust_zscore(x, np.zeros(x.shape, bool))


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        load_nifti(tmp_path / "missing.nii.gz")
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    with pytest.raises(ValueError, match="broken.nii.gz"):
        load_nifti(bad)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), tmp_path / "4d.nii.gz")
    with pytest.raises(ValueError, match="4d.nii.gz"):
        load_nifti(tmp_path / "4d.nii.gz")
    with pytest.raises(ValueError, match="3-D"):
        save_nifti(tmp_path / "x.nii.gz", np.zeros((3, 3)), np.eye(4))
