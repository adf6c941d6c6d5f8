"""Per-class Dice and HD95 of one test case (:func:`spineaug.study.evaluate.case_metrics`), on hand-built volumes
whose answers are known by construction: overlaps counted by hand, surface distances in voxels times the spacing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spineaug.study.evaluate import case_metrics

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


def test_each_class_is_scored_against_its_own_label_value():
    """Vertebra perfect, disc half predicted (24 of its 48 voxels: Dice 2 * 24 / 72), canal missing."""
    lab = _label()
    pred = lab.copy()
    pred[pred == 3] = 0
    pred[7:10, 2:4, 2:6] = 0
    m = _metrics(pred, lab)
    assert [round(m[c][0], 6) for c in ("vertebra", "disc", "canal")] == [1.0, round(48 / 72, 6), 0.0]
