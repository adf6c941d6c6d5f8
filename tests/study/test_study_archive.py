"""A study exported on one checkout resumes on another: finished fresh cells are restored, stale ones retrained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spineaug import study as S
from spineaug.cli import main
from spineaug.study.archive import restore
from spineaug.study.grid import Cell, cell_folder
from spineaug.study.runner import cell_state

from .conftest import tiny_study


@pytest.fixture
def exported(tmp_path):
    study = S.load_study(tiny_study(tmp_path, arms=["none", "nnunet"]))
    out = tmp_path / "run"
    S.run_study(study, out, progress=False)
    dest = S.export(out, tmp_path / "export" / study.name, study)
    return study, out, dest


def test_export_keeps_each_cells_record_and_example_slices(exported):
    study, out, dest = exported
    records = json.loads((dest / "cells.json").read_text())
    assert sorted(records) == ["t2w__nnunet__s0", "t2w__none__s0"]
    assert records["t2w__none__s0"] == json.loads((cell_folder(out, Cell("t2w", "none", 0)) / "cell.json").read_text())
    with np.load(dest / "examples.npz") as z:
        keys = set(z.files)
        image_keys = sorted(k for k in keys if k.startswith("image/"))
        assert [k.split("/")[1] for k in image_keys] == ["ct", "t2w"]  # one saved case per target domain
        for k in image_keys:
            _, domain, case_id = k.split("/")
            for slug in records:
                pred = z[f"pred/{slug}/{domain}/{case_id}"]
                assert pred.shape == z[k].shape == z[f"label/{domain}/{case_id}"].shape
                assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {0, 1, 2, 3}
        # the label slice is the middle sagittal slice (axis 0) of the test case's ground truth
        from spineaug.study.data import load_split

        sample = load_split(study, "ct", "test")[0]
        assert np.array_equal(z[f"label/ct/{sample.case_id}"], sample.label[sample.label.shape[0] // 2])


def test_restore_makes_finished_cells_done_with_the_same_metrics(exported, tmp_path):
    study, out, dest = exported
    fresh = tmp_path / "fresh"
    assert sorted(restore(study, dest, fresh)) == ["t2w__nnunet__s0", "t2w__none__s0"]
    for cell in (Cell("t2w", "none", 0), Cell("t2w", "nnunet", 0)):
        assert cell_state(fresh, cell) == "done"
        a = pd.read_csv(cell_folder(out, cell) / "metrics.csv")
        b = pd.read_csv(cell_folder(fresh, cell) / "metrics.csv")
        pd.testing.assert_frame_equal(a, b)
        assert json.loads((cell_folder(fresh, cell) / "cell.json").read_text())["restored_from"] == str(dest)
    S.summarize(study, fresh)  # the restored cells summarise as the originals did (curves are the compact ones)
    a, b = pd.read_csv(out / "summary.csv"), pd.read_csv(fresh / "summary.csv")
    pd.testing.assert_series_equal(a["ood_dice"], b["ood_dice"])
    pd.testing.assert_series_equal(a["in_domain_dice"], b["in_domain_dice"])
    assert restore(study, dest, fresh) == []  # nothing twice


def test_restore_skips_cells_whose_engine_changed(exported, tmp_path, monkeypatch):
    study, _, dest = exported
    from spineaug.study import provenance

    real = provenance.engine_fingerprint
    monkeypatch.setattr(provenance, "engine_fingerprint",  # nnunet's outputs changed, none's did not
                        lambda arm: "changed" if arm == "nnunet" else real(arm))  # fmt: skip
    assert restore(study, dest, tmp_path / "fresh") == ["t2w__none__s0"]


def test_resume_from_on_the_command_line(exported, tmp_path, monkeypatch, capsys):
    study, _, dest = exported
    study_file = tmp_path / "tiny.json"
    study_file.write_text(json.dumps(study.model_dump(mode="json")))
    fresh = tmp_path / "results"
    assert main(["study", str(study_file), "--out", str(fresh), "--resume-from", str(dest.parent), "--status"]) == 0
    text = capsys.readouterr()
    assert "restored 2 finished cell(s)" in text.err and "2/2 cells done" in text.out
    again = tmp_path / "again"
    assert main(["study", str(study_file), "--out", str(fresh), "--summarize", "--export", str(again)]) == 0
    assert (again / study.name / "cells.json").is_file() and (again / study.name / "summary.csv").is_file()
    other = tmp_path / "other"  # an export folder named directly (another study's cells with the same settings)
    assert main(["study", str(study_file), "--out", str(other), "--resume-from", str(dest), "--status"]) == 0
    assert "2/2 cells done" in capsys.readouterr().out


def test_resume_from_an_export_without_records_names_the_file(tmp_path):
    study = S.load_study(tiny_study(tmp_path))
    with pytest.raises(FileNotFoundError, match="cells.json"):
        restore(study, tmp_path / "nothing", tmp_path / "out")
