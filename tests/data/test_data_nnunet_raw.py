"""nnU-Net raw layout: the writer and the reader in spineaug.data.nnunet_raw agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spineaug.data import (
    NnUNetRawDataset,
    dataset_folder_name,
    has_test_labels,
    label_values,
    read_dataset_json,
    read_splits,
    write_case,
    write_dataset_json,
)

AFF = np.diag([2.0, 2.0, 3.0, 1.0])


def test_written_dataset_reads_back(tmp_path):
    root = tmp_path / dataset_folder_name(7, "Two")
    assert root.name == "Dataset007_Two"
    rng = np.random.default_rng(0)
    cases = {}
    for i in range(2):
        images = [rng.normal(size=(5, 6, 7)).astype(np.float32) for _ in range(2)]
        label = rng.integers(0, 3, (5, 6, 7)).astype(np.uint8)
        paths = write_case(root, f"c{i}", images, label, AFF, extra={"tissueTr": label * 2})
        assert [p.relative_to(root).as_posix() for p in paths] == [
            f"imagesTr/c{i}_0000.nii.gz", f"imagesTr/c{i}_0001.nii.gz", f"labelsTr/c{i}.nii.gz", f"tissueTr/c{i}.nii.gz",
        ]  # fmt: skip
        cases[f"c{i}"] = (images, label)
    write_dataset_json(root, {"0": "T1", "1": "T2"}, {"background": 0, "a": 1, "b": 2}, 2, name=root.name, extra={"x": 1})
    meta = read_dataset_json(root)
    assert list(meta)[:5] == ["name", "channel_names", "labels", "numTraining", "file_ending"]
    assert meta["extra"] == {"x": 1} and json.loads((root / "dataset.json").read_text()) == meta
    ds = NnUNetRawDataset(root, normalize=False)
    assert ds.case_ids == ["c0", "c1"]
    for k, sample in enumerate(ds):
        images, label = cases[sample.case_id]
        np.testing.assert_array_equal(sample.image, np.stack(images))
        np.testing.assert_array_equal(sample.label, label)
        np.testing.assert_allclose(sample.affine, AFF)
        if k == 1:
            break


def test_writer_rejects_bad_input(tmp_path):
    image = np.zeros((4, 4, 4), np.float32)
    with pytest.raises(ValueError, match="shape"):
        write_case(tmp_path, "c", image, np.zeros((4, 4, 5), np.uint8), AFF)
    with pytest.raises(ValueError, match="integer"):
        write_case(tmp_path, "c", image, image, AFF)
    with pytest.raises(ValueError, match="file_ending"):
        write_case(tmp_path, "c", image, None, AFF, file_ending=".mha")
    with pytest.raises(ValueError, match="background"):
        write_dataset_json(tmp_path, {"0": "CT"}, {"vertebra": 1}, 1)
    assert not (tmp_path / "dataset.json").exists()
    with pytest.raises(ValueError, match="dataset_id"):
        dataset_folder_name(1000, "X")


def _dataset(root, n_train=3, n_test=2):
    rng = np.random.default_rng(0)
    for i in range(n_train + n_test):
        subset = "Tr" if i < n_train else "Ts"
        write_case(root, f"c{i}", rng.normal(size=(4, 4, 4)).astype(np.float32),
                   np.full((4, 4, 4), i, np.uint8), AFF, subset=subset)  # fmt: skip
    write_dataset_json(root, {"0": "CT"}, {"background": 0, "a": 1}, n_train)
    return root


def test_test_cases_and_case_selection(tmp_path):
    root = _dataset(tmp_path / "Dataset008_Ts")
    assert (root / "imagesTs" / "c3_0000.nii.gz").is_file() and (root / "labelsTs" / "c4.nii.gz").is_file()
    assert has_test_labels(root) and not has_test_labels(_dataset(tmp_path / "Dataset009_NoTs", n_test=0))
    assert NnUNetRawDataset(root).case_ids == ["c0", "c1", "c2"]  # numTraining counts labelsTr only
    test = NnUNetRawDataset(root, subset="Ts", normalize=False)
    assert test.case_ids == ["c3", "c4"] and int(test[1].label.max()) == 4
    assert NnUNetRawDataset(root, case_ids=["c2", "c0"]).case_ids == ["c2", "c0"]
    with pytest.raises(ValueError, match=r"case\(s\) \['c7'\] not found in labelsTr"):
        NnUNetRawDataset(root, case_ids=["c0", "c7"])
    with pytest.raises(ValueError, match="subset"):
        NnUNetRawDataset(root, subset="Val")
    (root / "labelsTs" / "c4.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"1 image\(s\) without a label .*c4_0000.nii.gz"):
        NnUNetRawDataset(root, subset="Ts")


def test_splits_file(tmp_path):
    path = tmp_path / "splits_final.json"
    path.write_text(json.dumps([{"train": ["b", "a"], "val": ["c"]}, {"train": ["c"], "val": ["a", "b"]}]))
    assert read_splits(path) == (["b", "a"], ["c"])
    assert read_splits(path, 1) == (["c"], ["a", "b"])
    with pytest.raises(ValueError, match=r"fold 2 does not exist; the file has folds 0..1"):
        read_splits(path, 2)
    path.write_text(json.dumps([{"train": ["a"], "val": ["a"]}]))
    with pytest.raises(ValueError, match=r"cases \['a'\] are in both"):
        read_splits(path)
    path.write_text(json.dumps({"train": []}))
    with pytest.raises(ValueError, match="list of folds"):
        read_splits(path)
    with pytest.raises(FileNotFoundError, match="splits file not found"):
        read_splits(tmp_path / "none.json")


def test_label_values_refuse_regions_and_ignore():
    assert label_values({"labels": {"background": 0, "a": 1}}) == {"background": 0, "a": 1}
    with pytest.raises(ValueError, match="region-based"):
        label_values({"labels": {"background": 0, "whole": [1, 2]}})
    with pytest.raises(ValueError, match="'ignore' label"):
        label_values({"labels": {"background": 0, "a": 1, "ignore": 2}})
    with pytest.raises(ValueError, match="non-negative integer"):
        label_values({"labels": {"background": 0, "a": "1"}}, "X/dataset.json")
