"""nnU-Net raw layout: the writer and the reader in spineaug.data.nnunet_raw agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spineaug.data import NnUNetRawDataset, dataset_folder_name, read_dataset_json, write_case, write_dataset_json

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
