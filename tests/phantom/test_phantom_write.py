"""Writing phantom datasets (nnU-Net raw format) from Python and the CLI, and reading them back."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from spineaug import cli, phantom
from spineaug.data import NnUNetRawDataset

SMALL = dict(shape=(32, 40, 64), spacing=(4.0, 4.0, 4.0))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    roots = phantom.write_datasets(out, "ct,t2w", cases=2, seed=11, progress=False, **SMALL)
    return out, roots


def test_layout_and_dataset_json(written):
    out, roots = written
    assert list(roots) == ["ct", "t2w"]
    assert roots["ct"].name == "Dataset900_PhantomCt" and roots["t2w"].name == "Dataset901_PhantomT2w"
    for domain, root in roots.items():
        meta = json.loads((root / "dataset.json").read_text())
        assert meta["labels"] == {"background": 0, "vertebra": 1, "disc": 2, "canal": 3}
        assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
        assert meta["channel_names"] == {"0": phantom.DOMAINS[domain].channel_name}
        assert meta["spineaug"]["domain"] == domain and meta["spineaug"]["orientation"] == "RAS"
        assert sorted(p.name for p in (root / "imagesTr").iterdir()) == ["phantom_00011_0000.nii.gz", "phantom_00012_0000.nii.gz"]
        assert sorted(p.name for p in (root / "labelsTr").iterdir()) == ["phantom_00011.nii.gz", "phantom_00012.nii.gz"]
        assert len(list((root / "tissueTr").iterdir())) == 2


def test_nifti_content_matches_make_case(written):
    _, roots = written
    case = phantom.make_case(12, "t2w", **SMALL)
    img = nib.load(roots["t2w"] / "imagesTr" / "phantom_00012_0000.nii.gz")
    lab = nib.load(roots["t2w"] / "labelsTr" / "phantom_00012.nii.gz")
    assert img.get_data_dtype() == np.float32 and lab.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), case.image)
    np.testing.assert_array_equal(np.asanyarray(lab.dataobj), case.label)
    for im in (img, lab):
        np.testing.assert_allclose(im.affine, case.affine)
        np.testing.assert_allclose(im.header.get_zooms(), SMALL["spacing"])
        assert nib.aff2axcodes(im.affine) == ("R", "A", "S")
    tissue = np.asanyarray(nib.load(roots["ct"] / "tissueTr" / "phantom_00012.nii.gz").dataobj)
    np.testing.assert_array_equal(tissue, case.tissue)  # paired across domains


def test_loader_reads_written_dataset_back_identically(written):
    _, roots = written
    ds = NnUNetRawDataset(roots["ct"], normalize=False)
    assert ds.case_ids == ["phantom_00011", "phantom_00012"]
    for i, seed in enumerate((11, 12)):
        case = phantom.make_case(seed, "ct", **SMALL)
        sample = ds[i]
        assert sample.image.shape == (1, *SMALL["shape"]) and sample.image.dtype == np.float32
        np.testing.assert_array_equal(sample.image[0], case.image)
        np.testing.assert_array_equal(sample.label, case.label)
        np.testing.assert_allclose(sample.affine, case.affine)


def test_never_overwrites_without_permission(written, tmp_path):
    out, roots = written
    before = (roots["ct"] / "imagesTr" / "phantom_00011_0000.nii.gz").read_bytes()
    with pytest.raises(ValueError, match="not empty"):
        phantom.write_datasets(out, "ct", cases=1, seed=50, progress=False, **SMALL)
    assert (roots["ct"] / "imagesTr" / "phantom_00011_0000.nii.gz").read_bytes() == before
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="mine"):
        phantom.write_datasets(other, "ct", cases=1, progress=False, **SMALL)
    roots2 = phantom.write_datasets(other, "ct", cases=1, seed=3, overwrite=True, progress=False, **SMALL)
    roots2 = phantom.write_datasets(other, "ct", cases=1, seed=4, overwrite=True, progress=False, **SMALL)
    assert (other / "notes.txt").read_text() == "keep me"
    assert [p.name for p in (roots2["ct"] / "labelsTr").iterdir()] == ["phantom_00004.nii.gz"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(domains="ct,nope"), "unknown domain 'nope'"),
        (dict(domains="ct,ct"), "repeat"),
        (dict(domains=""), "at least one"),
        (dict(cases=0), "cases"),
        (dict(dataset_id=999, domains="ct,t1w"), "dataset_id"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = dict(domains="ct", cases=1, progress=False, **SMALL) | kwargs
    with pytest.raises(ValueError, match=match):
        phantom.write_datasets(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_cli_phantom(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["phantom", "--out", str(out), "--domains", "t1w", "--cases", "1", "--seed", "2",
            "--shape", "32,40,64", "--spacing", "4", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    root = out / "Dataset900_PhantomT1w"
    assert str(root) in capsys.readouterr().out
    assert (root / "labelsTr" / "phantom_00002.nii.gz").is_file()
    assert cli.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0
    assert cli.main(["phantom", "--out", str(tmp_path / "y"), "--shape", "32,40"]) == 2
    assert "shape" in capsys.readouterr().err
    assert cli.main(["phantom", "--out", str(tmp_path / "y"), "--spacing", "abc"]) == 2
    assert "spacing" in capsys.readouterr().err
