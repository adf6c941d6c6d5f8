"""Dataset readers: nnU-Net raw folders and glob-paired NIfTI files, with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spineaug.data import SPIDER_LABELS, VERSE_LABELS, NnUNetRawDataset, PairedNiftiDataset, save_nifti

AFF = np.diag([2.0, 2.0, 2.0, 1.0])


def _raw(root, n=2, **meta_over):
    rng = np.random.default_rng(0)
    for i in range(n):
        save_nifti(root / "imagesTr" / f"c{i}_0000.nii.gz", rng.normal(size=(6, 6, 6)).astype(np.float32), AFF)
        save_nifti(root / "labelsTr" / f"c{i}.nii.gz", rng.integers(0, 4, (6, 6, 6)).astype(np.uint8), AFF)
    meta = {"channel_names": {"0": "T2w"}, "labels": {"background": 0, "vertebra": 1, "disc": 2, "canal": 3},
            "numTraining": n, "file_ending": ".nii.gz"} | meta_over  # fmt: skip
    (root / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))
    return root


def test_nnunet_raw_reads_normalised_and_resampled(tmp_path):
    ds = NnUNetRawDataset(_raw(tmp_path))
    assert len(ds) == 2 and ds.case_ids == ["c0", "c1"]
    s = ds[1]
    assert s.image.shape == (1, 6, 6, 6) and s.label.dtype == np.uint8
    assert abs(float(s.image.mean())) < 1e-4 and abs(float(s.image.std()) - 1) < 1e-3
    ds4 = NnUNetRawDataset(tmp_path, spacing=4.0)
    assert ds4[0].image.shape == (1, 3, 3, 3) and ds4[0].label.shape == (3, 3, 3)
    assert ds4[0].spacing == pytest.approx((4.0, 4.0, 4.0))


@pytest.mark.parametrize("field", ["channel_names", "labels", "numTraining", "file_ending"])
def test_missing_dataset_json_field_is_named(tmp_path, field):
    _raw(tmp_path, **{field: None})
    with pytest.raises(ValueError, match=rf"dataset.json: missing field\(s\) \['{field}'\]"):
        NnUNetRawDataset(tmp_path)


def test_nnunet_raw_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        NnUNetRawDataset(tmp_path)
    _raw(tmp_path, numTraining=3)
    with pytest.raises(ValueError, match="numTraining is 3"):
        NnUNetRawDataset(tmp_path)
    _raw(tmp_path)
    (tmp_path / "imagesTr" / "c1_0000.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="c1_0000.nii.gz"):
        NnUNetRawDataset(tmp_path)


def test_mismatched_pairs_name_both_files(tmp_path):
    _raw(tmp_path)
    save_nifti(tmp_path / "labelsTr" / "c0.nii.gz", np.zeros((6, 6, 5), np.uint8), AFF)
    with pytest.raises(ValueError, match=r"shape mismatch: .*c0_0000.nii.gz .*c0.nii.gz"):
        NnUNetRawDataset(tmp_path)[0]
    shifted = AFF.copy()
    shifted[0, 3] = 5.0
    save_nifti(tmp_path / "labelsTr" / "c0.nii.gz", np.zeros((6, 6, 6), np.uint8), shifted)
    with pytest.raises(ValueError, match=r"affine mismatch between .*c0_0000.nii.gz and .*c0.nii.gz"):
        NnUNetRawDataset(tmp_path)[0]


def test_verse_style_pairs_with_label_map(tmp_path):
    lab = np.zeros((6, 6, 6), np.int16)
    lab[1:3] = 20  # L1
    lab[3:5] = 21  # L2
    for sub in ("verse004", "verse010"):
        save_nifti(tmp_path / "rawdata" / f"sub-{sub}" / f"sub-{sub}_ct.nii.gz", np.ones((6, 6, 6), np.float32), AFF)
        save_nifti(tmp_path / "derivatives" / f"sub-{sub}" / f"sub-{sub}_seg-vert_msk.nii.gz", lab, AFF)
    ds = PairedNiftiDataset(tmp_path, "rawdata/*/sub-{id}_ct.nii.gz", "derivatives/*/sub-{id}_seg-vert_msk.nii.gz",
                            label_map=VERSE_LABELS, normalize=False)  # fmt: skip
    assert ds.case_ids == ["verse004", "verse010"]
    s = ds[0]
    assert set(np.unique(s.label)) == {0, 1} and s.label.dtype == np.uint8
    np.testing.assert_array_equal(s.image[0], 1.0)
    with pytest.raises(ValueError, match="label values \\[20, 21\\] are not in label_map"):
        PairedNiftiDataset(tmp_path, "rawdata/*/sub-{id}_ct.nii.gz", "derivatives/*/sub-{id}_seg-vert_msk.nii.gz",
                           label_map={1: 1})[0]  # fmt: skip


def test_spider_and_bids_style(tmp_path):
    lab = np.zeros((6, 6, 6), np.int16)
    lab[0] = 3
    lab[1] = 100
    lab[2] = 203
    save_nifti(tmp_path / "images" / "7_t2.nii.gz", np.ones((6, 6, 6), np.float32), AFF)
    save_nifti(tmp_path / "masks" / "7_t2.nii.gz", lab, AFF)
    s = PairedNiftiDataset(tmp_path, "images/{id}_t2.nii.gz", "masks/{id}_t2.nii.gz", label_map=SPIDER_LABELS)[0]
    assert s.label[0, 0, 0] == 1 and s.label[1, 0, 0] == 3 and s.label[2, 0, 0] == 2 and s.label[3, 0, 0] == 0
    save_nifti(tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T2w.nii.gz", np.ones((6, 6, 6), np.float32), AFF)
    save_nifti(tmp_path / "bids" / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_T2w_dseg.nii.gz",
               np.zeros((6, 6, 6), np.uint8), AFF)  # fmt: skip
    ds = PairedNiftiDataset(tmp_path / "bids", "sub-{id}/anat/*_T2w.nii.gz", "derivatives/labels/sub-{id}/anat/*_dseg.nii.gz")
    assert ds.case_ids == ["01"]


def test_paired_errors(tmp_path):
    save_nifti(tmp_path / "img" / "a.nii.gz", np.ones((4, 4, 4), np.float32), AFF)
    save_nifti(tmp_path / "img" / "b.nii.gz", np.ones((4, 4, 4), np.float32), AFF)
    save_nifti(tmp_path / "lab" / "a.nii.gz", np.zeros((4, 4, 4), np.uint8), AFF)
    with pytest.raises(ValueError, match=r"unpaired .*b.nii.gz"):
        PairedNiftiDataset(tmp_path, "img/{id}.nii.gz", "lab/{id}.nii.gz")
    with pytest.raises(ValueError, match="exactly once"):
        PairedNiftiDataset(tmp_path, "img/*.nii.gz", "lab/{id}.nii.gz")
    with pytest.raises(FileNotFoundError, match="no image matches"):
        PairedNiftiDataset(tmp_path, "nothing/{id}.nii.gz", "lab/{id}.nii.gz")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PairedNiftiDataset(tmp_path / "nowhere", "img/{id}.nii.gz", "lab/{id}.nii.gz")
    (tmp_path / "lab" / "b.nii.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"lab/b.nii.gz"):  # its header is read when the dataset is built
        PairedNiftiDataset(tmp_path, "img/{id}.nii.gz", "lab/{id}.nii.gz")
