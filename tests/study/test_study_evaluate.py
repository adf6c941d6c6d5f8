"""Per-class Dice and HD95 of one test case (:func:`spineaug.study.evaluate.case_metrics`) and the rows a cell's
evaluation writes (:func:`spineaug.study.evaluate.evaluate_cell`), on hand-built volumes whose answers are known by
construction: overlaps counted by hand, surface distances in voxels times the spacing."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import nibabel as nib
import numpy as np
import pytest
import torch

import spineaug.study.evaluate as E
from spineaug.data.datasets import Sample
from spineaug.study import load_study
from spineaug.study.evaluate import case_metrics
from spineaug.study.grid import Cell
from spineaug.study.train import build_model

from .conftest import tiny_study

pytest.importorskip("monai.metrics")  # the study extra; imported here, not inside the first test's time
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")  # monai: empty classes


def _label() -> np.ndarray:
    """Three 4 x 4 x 4-ish blocks, one per class (1 vertebra, 2 disc, 3 canal), well apart."""
    lab = np.zeros((12, 12, 12), np.uint8)
    lab[2:6, 2:6, 2:6] = 1
    lab[7:10, 2:6, 2:6] = 2
    lab[2:6, 8:10, 8:10] = 3
    return lab


def _metrics(pred: np.ndarray, label: np.ndarray, spacing=(1.0, 2.0, 3.0), hd95: bool = True) -> dict:
    out = case_metrics(torch.from_numpy(pred.astype(np.int64)), label, spacing, hd95)
    assert [name for name, _, _ in out] == ["vertebra", "disc", "canal"]  # the label values 1, 2, 3 in order
    return {name: (d, h) for name, d, h in out}


def _shifted_vertebra(lab: np.ndarray) -> np.ndarray:
    pred = lab.copy()
    pred[pred == 1] = 0
    pred[2:6, 3:7, 2:6] = 1  # moved one voxel along the second axis: 48 of 64 voxels shared, Dice 0.75
    return pred


def test_a_perfect_prediction_has_dice_1_and_hd95_0_for_every_class():
    lab = _label()
    assert _metrics(lab, lab) == {c: (1.0, 0.0) for c in ("vertebra", "disc", "canal")}


def test_a_prediction_missing_one_class_has_dice_0_and_no_hd95_for_that_class_only():
    lab = _label()
    pred = lab.copy()
    pred[pred == 3] = 0
    m = _metrics(pred, lab)
    assert m["vertebra"] == (1.0, 0.0) and m["disc"] == (1.0, 0.0)
    assert m["canal"][0] == 0.0 and math.isnan(m["canal"][1])


def test_a_class_predicted_where_the_label_has_none_has_dice_0_and_no_hd95():
    lab = _label()
    lab[lab == 2] = 0
    pred = _label()
    m = _metrics(pred, lab)
    assert m["disc"][0] == 0.0 and math.isnan(m["disc"][1])
    assert m["vertebra"] == (1.0, 0.0) and m["canal"] == (1.0, 0.0)


def test_a_class_absent_from_both_has_dice_1_and_no_hd95():
    lab = _label()
    lab[lab == 1] = 0
    m = _metrics(lab, lab)
    assert m["vertebra"][0] == 1.0 and math.isnan(m["vertebra"][1])
    assert m["disc"] == (1.0, 0.0) and m["canal"] == (1.0, 0.0)


@pytest.mark.parametrize("axis, mm", [(0, 1.0), (1, 2.0), (2, 3.0)])
def test_a_one_voxel_shift_gives_the_overlap_dice_and_the_spacing_of_its_axis_as_hd95(axis, mm):
    """The vertebra block (4^3 = 64 voxels) moved one voxel: 48 shared, Dice 2 * 48 / 128 = 0.75; every moved
    surface voxel lies one voxel (the spacing of that axis, in mm) from the label's surface."""
    lab = _label()
    pred = lab.copy()
    pred[pred == 1] = 0
    block = [slice(2, 6)] * 3
    block[axis] = slice(3, 7)
    pred[tuple(block)] = 1
    m = _metrics(pred, lab, spacing=(1.0, 2.0, 3.0))
    assert m["vertebra"][0] == pytest.approx(0.75, abs=1e-6)
    assert m["vertebra"][1] == pytest.approx(mm, abs=1e-4)
    assert m["disc"] == (1.0, 0.0) and m["canal"] == (1.0, 0.0)


def test_hd95_is_the_95th_percentile_of_the_surface_distances_not_their_maximum():
    """A 4^3 block (56 surface voxels) plus 3 stray voxels 9 voxels (9 * 2 mm) beyond it along the last axis.

    The prediction's 59 surface distances, sorted: 56 zeros, then three of 18 mm; the 95th percentile (linear
    interpolation at rank 0.95 * 58 = 55.1) is 0.1 * 18 mm = 1.8 mm, far from the 18 mm Hausdorff distance.
    Dice = 2 * 64 / (67 + 64).
    """
    lab = np.zeros((8, 8, 20), np.uint8)
    lab[2:6, 2:6, 2:6] = 1
    pred = lab.copy()
    pred[2, 2, 14] = pred[4, 2, 14] = pred[5, 5, 14] = 1
    m = _metrics(pred, lab, spacing=(1.0, 1.0, 2.0))
    assert m["vertebra"][0] == pytest.approx(128 / 131, abs=1e-6)
    assert m["vertebra"][1] == pytest.approx(18 * (0.95 * 58 - 55), abs=1e-4)


def test_without_hd95_every_distance_is_nan_and_dice_is_unchanged():
    lab = _label()
    pred = lab.copy()
    pred[pred == 3] = 0
    m = _metrics(pred, lab, hd95=False)
    assert [m[c][0] for c in ("vertebra", "disc", "canal")] == [1.0, 1.0, 0.0]
    assert all(math.isnan(m[c][1]) for c in ("vertebra", "disc", "canal"))
    m = _metrics(_shifted_vertebra(lab), lab, hd95=False)  # every class in both
    assert [m[c][0] for c in ("vertebra", "disc", "canal")] == [0.75, 1.0, 1.0]
    assert all(math.isnan(m[c][1]) for c in ("vertebra", "disc", "canal"))


def test_each_class_is_scored_against_its_own_label_value():
    """Vertebra perfect, disc half predicted (24 of its 48 voxels: Dice 2 * 24 / 72), canal missing."""
    lab = _label()
    pred = lab.copy()
    pred[pred == 3] = 0
    pred[7:10, 2:4, 2:6] = 0
    m = _metrics(pred, lab)
    assert [round(m[c][0], 6) for c in ("vertebra", "disc", "canal")] == [1.0, round(48 / 72, 6), 0.0]


class _Clock:
    """``time`` for :mod:`spineaug.study.evaluate`: its two ``perf_counter`` reads are 10 and 10.1234567 s."""

    def __init__(self):
        self.reads = iter([10.0, 10.1234567])

    def perf_counter(self):
        return next(self.reads)


def test_evaluate_cell_writes_one_rounded_row_per_case_and_class(tmp_path, monkeypatch):
    """``evaluate_cell`` with a stand-in network whose prediction is known (it is carried in the image's second
    channel): one ``metrics.csv`` row per domain x case x class, Dice to 6 digits, HD95 in mm (the spacing of each
    voxel axis: the norms of the affine's columns) to 4 digits and empty when undefined; the first case of each
    domain saved; an older model file holding other Python objects still loads (the study's own file)."""
    study = load_study(tiny_study(tmp_path, evaluation={"bootstrap": 50, "save_predictions": 1}))
    folder = tmp_path / "cell"
    folder.mkdir()
    torch.save({"model": build_model(study, 2).state_dict(), "spec": {"in_channels": 2}, "note": Fraction(1, 3)},
               folder / "model.pt")  # fmt: skip
    seen = []

    def predict(model, image, study_, device):
        seen.append((next(model.parameters()).shape[1], study_ is study, device.type))
        return image[1].long()

    monkeypatch.setattr(E, "predict_volume", predict)
    monkeypatch.setattr(E, "time", _Clock())
    affine = np.eye(4)
    affine[:3, :3] = [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]  # columns 1, 2, 3 mm; rows 2, 1, 3
    lab = _label()
    stray = np.zeros((8, 8, 20), np.uint8)
    stray[2:6, 2:6, 2:6] = 1
    stray_pred = stray.copy()
    stray_pred[2, 2, 14] = stray_pred[4, 2, 14] = stray_pred[5, 5, 14] = 1

    def sample(case, label, pred):
        return Sample(case, np.stack([np.zeros_like(label), pred]).astype(np.float32), label, affine)

    missing = lab.copy()
    missing[missing == 3] = 0
    tests = {"t2w": lambda: [sample("t2w_1", lab, _shifted_vertebra(lab)), sample("t2w_2", lab, missing)],
             "ct": lambda: [sample("ct_1", stray, stray_pred)]}  # fmt: skip
    out = E.evaluate_cell(study, Cell("t2w", "none", 3), folder, tests, progress=False)
    assert out == folder / "metrics.csv" and not (folder / "metrics.partial.csv").exists()
    assert seen == [(2, True, "cpu")] * 3
    assert out.read_text().splitlines() == [
        "source,arm,seed,domain,case,class,dice,hd95",
        "t2w,none,3,t2w,t2w_1,vertebra,0.75,2.0", "t2w,none,3,t2w,t2w_1,disc,1.0,0.0",
        "t2w,none,3,t2w,t2w_1,canal,1.0,0.0",
        "t2w,none,3,t2w,t2w_2,vertebra,1.0,0.0", "t2w,none,3,t2w,t2w_2,disc,1.0,0.0",
        "t2w,none,3,t2w,t2w_2,canal,0.0,",
        f"t2w,none,3,ct,ct_1,vertebra,{round(128 / 131, 6)},{round(3 * 9 * (0.95 * 58 - 55), 4)}",
        "t2w,none,3,ct,ct_1,disc,1.0,", "t2w,none,3,ct,ct_1,canal,1.0,",
    ]  # HD95 of ct_1: 0.1 of the stray voxels' 9 voxels x 3 mm (see the percentile test above)
    saved = sorted(p.relative_to(folder).as_posix() for p in (folder / "predictions").rglob("*.nii.gz"))
    assert saved == ["predictions/ct/ct_1.nii.gz", "predictions/t2w/t2w_1.nii.gz"]
    nii = nib.load(folder / "predictions" / "ct" / "ct_1.nii.gz")
    assert nii.get_data_dtype() == np.uint8 and np.array_equal(np.asarray(nii.dataobj), stray_pred)
    record = json.loads((folder / "cell.json").read_text())
    assert (record["source"], record["arm"], record["seed"]) == ("t2w", "none", 3)
    assert record["cost"] == {"eval_s": 0.123}  # 10.1234567 - 10 s, to the millisecond
    seen.clear()
    assert E.evaluate_cell(study, Cell("t2w", "none", 3), folder, tests, progress=False) == out and seen == []


def test_evaluate_cell_resumes_from_a_partial_file_without_a_complete_case(tmp_path, monkeypatch):
    """A kill during the first case's rows leaves a header and a cut row: the case is computed again and
    ``metrics.csv`` is the same as an uninterrupted evaluation's, header included."""
    study = load_study(tiny_study(tmp_path))
    monkeypatch.setattr(E, "predict_volume", lambda model, image, study_, device: image[0].long())
    lab = _label()
    tests = {"t2w": lambda: [Sample("t2w_1", _shifted_vertebra(lab)[None].astype(np.float32), lab, np.eye(4))]}
    runs = {}
    for name, partial in (("fresh", None), ("cut", "source,arm,seed,domain,case,class,dice,hd95\n"
                                                   "t2w,none,0,t2w,t2w_1,vertebra,0.75\n")):  # fmt: skip
        folder = tmp_path / name
        folder.mkdir()
        torch.save({"model": build_model(study, 1).state_dict(), "spec": {"in_channels": 1}}, folder / "model.pt")
        if partial is not None:
            (folder / "metrics.partial.csv").write_text(partial)
        runs[name] = E.evaluate_cell(study, Cell("t2w", "none", 0), folder, tests, progress=False).read_text()
    assert runs["cut"] == runs["fresh"]
    assert runs["fresh"].splitlines() == ["source,arm,seed,domain,case,class,dice,hd95",
                                          "t2w,none,0,t2w,t2w_1,vertebra,0.75,1.0",
                                          "t2w,none,0,t2w,t2w_1,disc,1.0,0.0", "t2w,none,0,t2w,t2w_1,canal,1.0,0.0"]


def test_evaluate_cell_runs_the_model_on_the_evaluation_device(tmp_path, monkeypatch):
    """The network predicts on the device the study evaluates on (here ``meta``, a stand-in for a GPU)."""
    study = load_study(tiny_study(tmp_path))
    folder = tmp_path / "cell"
    folder.mkdir()
    torch.save({"model": build_model(study, 1).state_dict(), "spec": {"in_channels": 1}}, folder / "model.pt")
    seen = []

    def predict(model, image, study_, device):
        seen.append((next(model.parameters()).device.type, device.type))
        return image[0].long()

    monkeypatch.setattr(E, "device_for", lambda study_: torch.device("meta"))
    monkeypatch.setattr(E, "predict_volume", predict)
    lab = _label()
    tests = {"t2w": lambda: [Sample("t2w_1", lab[None].astype(np.float32), lab, np.eye(4))]}
    E.evaluate_cell(study, Cell("t2w", "none", 0), folder, tests, progress=False)
    assert seen == [("meta", "meta")]
