"""Real data in the study, kept as nnU-Net keeps it: the bundled example study on phantom-written nnU-Net raw
datasets (splits_final.json, imagesTs/labelsTs, label sets mapped with ``classes``, per-axis spacing), and the
errors that stop a bad dataset before any training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spineaug import study as S
from spineaug.config import load_config
from spineaug.data import read_dataset_json, save_nifti, write_case, write_dataset_json
from spineaug.study.config import BUNDLED_STUDIES
from spineaug.study.data import load_split, nnunet_case_ids
from spineaug.validation import ConfigError

from .conftest import tiny_study

SHAPE, SPACING, N_CASES = (24, 28, 48), 4.0, 5
FOLDERS = {"ct": "Dataset101_CT", "t1w": "Dataset102_T1w", "t2w": "Dataset103_T2w"}
SPLITS = [{"train": ["phantom_00004", "phantom_00003", "phantom_00002"], "val": ["phantom_00001", "phantom_00000"]},
          {"train": ["phantom_00000", "phantom_00001", "phantom_00002"], "val": ["phantom_00003", "phantom_00004"]}]


def _labels(root: Path) -> list[Path]:
    return sorted((root / "labelsTr").glob("*.nii.gz"))


def _relabel(path: Path, fn) -> None:
    img = nib.load(str(path))
    save_nifti(path, fn(np.asarray(img.dataobj)).astype(np.uint8), img.affine)


def _spider_like(lab: np.ndarray) -> np.ndarray:
    """One value per vertebra level (1-25) and disc level (201-225) by height, 100 for the canal."""
    level = (np.arange(lab.shape[2]) * 25 // lab.shape[2])[None, None, :] + np.zeros_like(lab, dtype=np.int64)
    return np.select([lab == 1, lab == 2, lab == 3], [1 + level, 201 + level, 100], 0)


def write_example_data(raw: Path) -> dict[str, Path]:
    """The example study's three datasets under ``raw`` (from the phantom), plus ``*_orig`` copies of the T1w and
    T2w datasets that keep the study's own label values (the known answer for the label mapping)."""
    from spineaug import phantom

    written = phantom.write_datasets(raw / "phantom", list(FOLDERS), cases=N_CASES, seed=0, spacing=SPACING,
                                     shape=SHAPE, progress=False)  # fmt: skip
    roots = {}
    for domain, folder in FOLDERS.items():
        roots[domain] = raw / folder
        shutil.copytree(written[domain], roots[domain])
        if domain != "ct":
            roots[f"{domain}_orig"] = raw / f"{folder}Orig"
            shutil.copytree(written[domain], roots[f"{domain}_orig"])
    shutil.rmtree(raw / "phantom")
    # ct: labels as the study's; fold 0 of splits_final.json chooses the cases (in its own order)
    (roots["ct"] / "splits_final.json").write_text(json.dumps(SPLITS))
    # t1w: SPIDER-like label values
    for path in _labels(roots["t1w"]):
        _relabel(path, _spider_like)
    meta = read_dataset_json(roots["t1w"])
    labels = {"background": 0, **{f"V{i}": i for i in range(1, 26)}, "canal": 100,
              **{f"D{i}": 200 + i for i in range(1, 26)}}  # fmt: skip
    write_dataset_json(roots["t1w"], meta["channel_names"], labels, N_CASES, name=FOLDERS["t1w"])
    # t2w: permuted values under other names; the last two cases are test cases (imagesTs/labelsTs)
    for path in _labels(roots["t2w"]):
        _relabel(path, lambda lab: np.select([lab == 1, lab == 2, lab == 3], [2, 3, 1], 0))
    for case in ("phantom_00003", "phantom_00004"):
        for kind, name in (("images", f"{case}_0000.nii.gz"), ("labels", f"{case}.nii.gz")):
            (roots["t2w"] / f"{kind}Ts").mkdir(exist_ok=True)
            shutil.move(roots["t2w"] / f"{kind}Tr" / name, roots["t2w"] / f"{kind}Ts" / name)
    meta = read_dataset_json(roots["t2w"])
    labels = {"background": 0, "spinal_canal": 1, "vertebrae": 2, "discs": 3}
    write_dataset_json(roots["t2w"], meta["channel_names"], labels, N_CASES - 2, name=FOLDERS["t2w"])
    return roots


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("nnUNet_raw")
    write_example_data(raw)
    return raw


def _example(raw: Path, tmp: Path, **over) -> dict:
    """The bundled example study file with tiny settings (the model, schedule and patch of the other study tests)
    and smaller splits; its data section (paths, labels, sources) as shipped."""
    spec = load_config(BUNDLED_STUDIES / "example-nifti.yaml")
    tiny = tiny_study(tmp)
    for domain in ("ct", "t1w"):
        spec["data"]["domains"][domain].update(n_train=2, n_val=1)
    spec.update(model=tiny["model"], training=tiny["training"], evaluation=tiny["evaluation"], arms=["none"],
                reference_arm="none", preprocessing={"spacing": [4.0, 4.0, 6.0]})  # fmt: skip
    spec.update(over)
    return spec


def test_example_study_needs_its_data_root(monkeypatch):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    with pytest.raises(ConfigError, match="environment variable nnUNet_raw is not set"):
        S.load_study(BUNDLED_STUDIES / "example-nifti.yaml")


def test_splits_and_test_cases_follow_nnunet(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(raw))
    study = S.load_study(_example(raw, tmp_path))
    ct, t1w, t2w = (study.data.domains[d] for d in ("ct", "t1w", "t2w"))
    assert nnunet_case_ids(ct, "train") == ("Tr", ["phantom_00004", "phantom_00003"])  # fold 0, in its order
    assert nnunet_case_ids(ct, "val") == ("Tr", ["phantom_00001"])
    assert nnunet_case_ids(ct, "test") == ("Tr", ["phantom_00000", "phantom_00002"])  # neither trained nor validated
    assert nnunet_case_ids(t1w, "train") == ("Tr", ["phantom_00000", "phantom_00001"])  # no splits: sorted ids
    assert nnunet_case_ids(t2w, "test") == ("Ts", None)  # labelled imagesTs
    assert [s.case_id for s in load_split(study, "t2w", "test")] == ["phantom_00003", "phantom_00004"]
    spec = _example(raw, tmp_path)
    spec["data"]["domains"]["ct"]["fold"] = 1
    fold1 = S.load_study(spec).data.domains["ct"]
    assert nnunet_case_ids(fold1, "train") == ("Tr", ["phantom_00000", "phantom_00001"])
    assert nnunet_case_ids(fold1, "val") == ("Tr", ["phantom_00003"])
    # per-axis spacing: every case on the study's [x, y, z] grid
    sample = load_split(study, "t1w", "train")[0]
    assert sample.spacing == pytest.approx((4.0, 4.0, 6.0), rel=1e-3)
    assert sample.image.shape[1:] == (24, 28, 32) and sample.label.shape == sample.image.shape[1:]


def test_classes_map_other_label_sets(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(raw))
    spec = _example(raw, tmp_path)
    for domain in ("t1w", "t2w"):
        spec["data"]["domains"][f"{domain}_orig"] = {"path": f"${{nnUNet_raw}}/{FOLDERS[domain]}Orig"}
    study = S.load_study(spec)
    for domain in ("t1w", "t2w"):
        mapped = {s.case_id: s.label for s in load_split(study, domain, "test")}
        original = {s.case_id: s.label for s in load_split(study, f"{domain}_orig", "test")}
        assert mapped and set(mapped) <= set(original)
        for case, label in mapped.items():
            assert set(np.unique(label)) == {0, 1, 2, 3}
            np.testing.assert_array_equal(label, original[case])


def test_example_study_runs_end_to_end(raw, tmp_path, monkeypatch):
    """Both sources train, every cell is scored on every domain, and the renumbered datasets score exactly like
    copies that store the study's own label values (same images, same model)."""
    import pandas as pd

    monkeypatch.setenv("nnUNet_raw", str(raw))
    spec = _example(raw, tmp_path)
    for domain in ("t1w", "t2w"):
        spec["data"]["domains"][f"{domain}_orig"] = {"path": f"${{nnUNet_raw}}/{FOLDERS[domain]}Orig"}
    study = S.load_study(spec)
    assert study.sources == ["ct", "t1w"]
    out = S.run_study(study, tmp_path / "out", progress=False)
    metrics = pd.read_csv(out / "metrics.csv")
    n_test = {"ct": 2, "t1w": 2, "t2w": 2, "t1w_orig": N_CASES, "t2w_orig": N_CASES}
    for source in study.sources:
        cell = metrics[metrics["source"] == source]
        assert {d: len(cell[cell["domain"] == d]) for d in n_test} == {d: 3 * n for d, n in n_test.items()}
        assert cell["dice"].between(0, 1).all()
        for domain in ("t1w", "t2w"):
            mapped = cell[cell["domain"] == domain].set_index(["case", "class"])["dice"]
            original = cell[cell["domain"] == f"{domain}_orig"].set_index(["case", "class"])["dice"]
            pd.testing.assert_series_equal(mapped, original.loc[mapped.index])
    assert "2/2 cells done" in S.status(study, out)
    spec = json.loads((out / "study.json").read_text())
    assert spec["data"]["domains"]["t1w"]["classes"] == {"1-25": "vertebra", "100": "canal", "201-225": "disc"}
    assert spec["preprocessing"]["spacing"] == [4.0, 4.0, 6.0]
    # its models segment the test images of a dataset (imagesTs) back on their own grid
    from spineaug.study.grid import Cell, cell_folder
    from spineaug.study.predict import load_model, predict

    model = cell_folder(out, Cell("t1w", "none", 0)) / "model.pt"
    assert load_model(model)[1]["spacing"] == [4.0, 4.0, 6.0]
    written = predict(model, raw / FOLDERS["t2w"] / "imagesTs", tmp_path / "pred", progress=False)
    assert [p.name for p in written] == ["phantom_00003.nii.gz", "phantom_00004.nii.gz"]
    pred = nib.load(str(written[0]))
    assert pred.shape == SHAPE and set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2, 3}


def _domain(root, **over) -> dict:
    return tiny_study(Path("/unused"), data={"kind": "nifti", "domains": {
        "mr": {"path": str(root), "n_train": 1, "n_val": 1, **over}}}, sources=["mr"])  # fmt: skip


def _one_case_dataset(root: Path, channels: int = 1, labels=None, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    for i in range(n):
        images = [rng.normal(size=(8, 8, 8)).astype(np.float32) for _ in range(channels)]
        write_case(root, f"c{i}", images, rng.integers(0, 4, (8, 8, 8)).astype(np.uint8), aff)
    names = {str(c): f"MR{c}" for c in range(channels)}
    write_dataset_json(root, names, labels or {"background": 0, "vertebra": 1, "disc": 2, "canal": 3}, n)
    return root


def test_multichannel_dataset_is_refused_up_front(tmp_path):
    root = _one_case_dataset(tmp_path / "Dataset110_T1T2", channels=2)
    with pytest.raises(ConfigError, match=r"Dataset110_T1T2: 2 input channels .*single-channel"):
        S.load_study(_domain(root))


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"classes": {1: "vertebra", 2: "disc"}}, r"Dataset111_X: label\(s\) 'canal' \(value 3\) of dataset.json are "
                                                  "not in classes"),
        ({"classes": {"L1": "vertebra"}}, r"Dataset111_X: classes: 'L1' is not a label value, a range"),
        ({"classes": {"3-1": "vertebra"}}, "runs backwards"),
        ({"classes": {"1-3": "vertebra", 2: "disc"}}, "label value 2 is mapped to both 'vertebra' and 'disc'"),
        ({"classes": {1: "bone"}}, "classes"),
        ({"classes": {1: "vertebra", 2: "disc", 3: "canal"}, "label_map": {1: 1}}, "not both"),
        ({"fold": 0}, "Dataset111_X: fold 0 is set but there is no splits_final.json"),
        ({"splits": "/nope/splits_final.json"}, "Dataset111_X: splits file not found"),
        ({"path": "${SPINEAUG_UNSET_ROOT}/Dataset111_X"}, "environment variable SPINEAUG_UNSET_ROOT is not set"),
        ({"n_train": 3, "n_val": 1}, r"Dataset111_X: n_train \+ n_val = 4 but numTraining is 3"),
    ],
)
def test_bad_dataset_settings_name_the_dataset(tmp_path, monkeypatch, over, needle):
    monkeypatch.delenv("SPINEAUG_UNSET_ROOT", raising=False)
    root = _one_case_dataset(tmp_path / "Dataset111_X")
    with pytest.raises(ConfigError, match=needle):
        S.load_study(_domain(root, **over))


def test_bad_splits_and_labels_name_the_dataset(tmp_path):
    root = _one_case_dataset(tmp_path / "Dataset112_Y")
    (root / "splits_final.json").write_text(json.dumps([{"train": ["c0", "c9"], "val": ["c1"]}]))
    with pytest.raises(ConfigError, match=r"Dataset112_Y: .*splits_final.json names case\(s\) \['c9'\]"):
        S.load_study(_domain(root))
    (root / "splits_final.json").write_text(json.dumps([{"train": ["c0"], "val": ["c1"]}]))
    with pytest.raises(ConfigError, match=r"fold 2 does not exist; the file has folds 0..0"):
        S.load_study(_domain(root, fold=2))
    (root / "splits_final.json").unlink()
    other = _one_case_dataset(tmp_path / "Dataset113_Z", labels={"background": 0, "canal": 1, "vertebra": 2,
                                                                 "disc": 3})  # fmt: skip
    with pytest.raises(ConfigError, match=r"Dataset113_Z: dataset.json has label 'canal' = 1; .*classes"):
        S.load_study(_domain(other))
    # a stored value that dataset.json does not declare: found when the data is read, before any training
    _relabel(root / "labelsTr" / "c2.nii.gz", lambda lab: np.where(lab == 3, 7, lab))
    study = S.load_study(_domain(root, classes={1: "vertebra", 2: "disc", 3: "canal"}))
    with pytest.raises(ValueError, match=r"data.domains.mr \(Dataset112_Y\): .*c2.nii.gz: label values \[7\] are "
                                         "not in label_map"):  # fmt: skip
        S.run_study(study, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "cells").exists()
    # test images without their labels: found when the study file is read
    (root / "labelsTr" / "c2.nii.gz").unlink()
    write_dataset_json(root, {"0": "MR0"}, {"background": 0, "vertebra": 1, "disc": 2, "canal": 3}, 2)
    rng = np.random.default_rng(1)
    for i in range(2):
        write_case(root, f"t{i}", rng.normal(size=(8, 8, 8)).astype(np.float32),
                   rng.integers(0, 4, (8, 8, 8)).astype(np.uint8) if i == 0 else None, np.eye(4), subset="Ts")
    with pytest.raises(ConfigError, match=r"Dataset112_Y: .*imagesTs: 1 image\(s\) without a label .*'t1_0000.nii.gz'"):
        S.load_study(_domain(root))
    write_case(root, "t1", np.zeros((8, 8, 8), np.float32), np.zeros((8, 8, 8), np.uint8), np.eye(4), subset="Ts")
    assert [s.case_id for s in load_split(S.load_study(_domain(root)), "mr", "test")] == ["t0", "t1"]


def test_phantom_spacing_may_be_given_per_axis(tmp_path):
    assert S.load_study(tiny_study(tmp_path, preprocessing={"spacing": [4.0, 4.0, 4.0]})).preprocessing.spacing == (
        4.0, 4.0, 4.0)
    with pytest.raises(ConfigError, match="must equal preprocessing.spacing"):
        S.load_study(tiny_study(tmp_path, preprocessing={"spacing": [4.0, 4.0, 2.0]}))


def test_bundled_studies_keep_their_settings_hash():
    """New optional study fields leave the settings hash of every study that does not use them unchanged: the
    default study's hash is the one its committed cells recorded."""
    from spineaug.study.provenance import settings_hash

    cells = json.loads((Path(__file__).resolve().parents[2] / "reports/data/study/default/cells.json").read_text())
    recorded = {c["provenance"]["settings_hash"] for c in cells.values() if c.get("provenance")}
    assert len(recorded) == 1
    assert settings_hash(S.load_study("default")) == recorded.pop()


def test_missing_files_are_found_when_the_study_is_read(tmp_path):
    root = _one_case_dataset(tmp_path / "Dataset114_W")
    (root / "imagesTr" / "c1_0000.nii.gz").unlink()
    with pytest.raises(ConfigError, match=r"Dataset114_W: image file missing for label .*c1_0000.nii.gz"):
        S.load_study(_domain(root))
    (root / "dataset.json").unlink()
    with pytest.raises(ConfigError, match=r"Dataset114_W: dataset.json not found"):
        S.load_study(_domain(root))
