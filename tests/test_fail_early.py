"""What can be checked before work starts is checked before it starts (no minutes of work, then an error)."""

from __future__ import annotations

import pytest

from spineaug import _io, cli
from spineaug.study import load_study
from spineaug.validation import ConfigError


def _started(*args, **kwargs):
    raise AssertionError("the work started before the bad request was refused")


def test_phantom_study_with_two_spacings_is_refused_at_load():
    """The phantom is rendered at data.spacing; a different preprocessing.spacing failed in every cell after rendering."""
    study = {"name": "t", "sources": ["t2w"], "arms": ["none", "nnunet"]}
    with pytest.raises(ConfigError, match=r"data.spacing \(1.5\) must equal preprocessing.spacing \(2.0\)"):
        load_study(dict(study, data={"kind": "phantom", "spacing": 1.5}, preprocessing={"spacing": 2.0}))
    assert load_study(dict(study, data={"kind": "phantom", "spacing": 1.5}, preprocessing={"spacing": 1.5}))


def test_writable_folder_check(tmp_path):
    assert _io.check_writable_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        _io.check_writable_folder(tmp_path / "file" / "bench")


@pytest.mark.parametrize("extra", [[], ["--training"]])
def test_bench_out_that_cannot_be_written_fails_before_timing(tmp_path, monkeypatch, capsys, extra):
    from spineaug.bench import runner, training_run

    monkeypatch.setattr(runner, "_run", _started)
    monkeypatch.setattr(training_run, "phantom_samples", _started)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "bench"
    assert cli.main(["bench", "--quick", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and str(out) in err


def test_study_export_that_cannot_be_written_fails_before_the_study(tmp_path, monkeypatch, capsys):
    from spineaug import study

    monkeypatch.setattr(study, "run_study", _started)
    (tmp_path / "file").write_text("x")
    code = cli.main(["study", "--quick", "--out", str(tmp_path / "res"), "--export", str(tmp_path / "file" / "x")])
    assert code == 2 and "--export" in capsys.readouterr().err


def test_predict_output_that_cannot_be_written_fails_before_loading_the_model(tmp_path, monkeypatch):
    from spineaug.study import predict

    monkeypatch.setattr(predict, "load_model", _started)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="--out"):
        predict.predict(tmp_path / "model.pt", tmp_path, tmp_path / "file" / "labels", progress=False)


def test_preview_out_that_cannot_be_written_fails_before_rendering(tmp_path, monkeypatch, capsys):
    from spineaug.preview import gallery, phantom

    for name in ("phantom_volume", "nifti_volume", "render_gallery", "render_draws"):
        monkeypatch.setattr(gallery, name, _started)
    monkeypatch.setattr(phantom, "render", _started)
    (tmp_path / "file").write_text("x")
    for extra in ([], ["--phantom"], ["--draws", "2"]):
        assert cli.main(["preview", "--out", str(tmp_path / "file" / "g.png"), *extra]) == 2
        assert "is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["preview", "--out", str(tmp_path)]) == 2
    assert "is a folder; name the PNG file" in capsys.readouterr().err


def test_fidelity_out_that_cannot_be_written_fails_before_measuring(tmp_path, monkeypatch, capsys):
    from spineaug.fidelity import runner

    monkeypatch.setattr(runner, "nnunet_rows", _started)
    (tmp_path / "file").write_text("x")
    assert cli.main(["fidelity", "--out", str(tmp_path / "file" / "f"), "--no-auglab"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["fidelity", "--out", str(tmp_path / "f"), "--draws", "0"]) == 2
    assert "draws must be a positive integer, got 0" in capsys.readouterr().err


def test_report_out_that_cannot_be_written_fails_before_rendering(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from spineaug.report import fidelity

    monkeypatch.setattr(fidelity, "write", _started)
    (tmp_path / "fid").mkdir()
    (tmp_path / "fid" / "matched.csv").write_text("")
    (tmp_path / "file").write_text("x")
    code = cli.main(["report", "--fidelity", "--fidelity-data", str(tmp_path / "fid"), "--out",
                     str(tmp_path / "file" / "reports")])  # fmt: skip
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err


def test_predict_reads_its_inputs_before_loading_the_model(tmp_path, monkeypatch):
    from spineaug.study import predict

    monkeypatch.setattr(predict, "load_model", _started)
    with pytest.raises(FileNotFoundError, match="input not found"):
        predict.predict(tmp_path / "model.pt", tmp_path / "missing.nii.gz", tmp_path / "labels", progress=False)


def test_predict_checks_every_case_before_segmenting_the_first(tmp_path, monkeypatch):
    """A case with the wrong channels or grid failed after every case before it was segmented."""
    nib = pytest.importorskip("nibabel")
    import numpy as np

    from spineaug.study import predict

    monkeypatch.setattr(predict, "load_model", lambda *a, **k: (None, {"in_channels": 1}))
    monkeypatch.setattr(predict, "segment_case", _started)
    (tmp_path / "in").mkdir()
    for name in ("a.nii.gz", "b_0000.nii.gz", "b_0001.nii.gz"):
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(tmp_path / "in" / name))
    with pytest.raises(ValueError, match=r"b.nii.gz: 2 channel file\(s\)"):
        predict.predict(tmp_path / "model.pt", tmp_path / "in", tmp_path / "labels", progress=False)


def test_summarize_without_a_finished_cell_is_an_error(tmp_path, monkeypatch, capsys):
    """It printed the path of a summary.md that it had not written."""
    from spineaug import study

    monkeypatch.setattr(study, "summarize", _started)
    assert cli.main(["study", "--quick", "--out", str(tmp_path), "--summarize"]) == 2
    assert "--summarize: no finished cell of study 'quick'" in capsys.readouterr().err
    assert not (tmp_path / "quick" / "summary.md").exists()


def test_a_dataset_whose_label_grid_differs_fails_when_it_is_built(tmp_path, monkeypatch):
    """The mismatch showed only when its case was read (mid-run); the headers tell it at once."""
    import numpy as np

    from spineaug.data import PairedNiftiDataset, datasets, save_nifti

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for case in ("a", "b"):
        save_nifti(tmp_path / "img" / f"{case}.nii.gz", np.ones((4, 4, 4), np.float32), affine)
    save_nifti(tmp_path / "lab" / "a.nii.gz", np.zeros((4, 4, 4), np.uint8), affine)
    # b's label: the same grid stored L-R reversed is fine (read in RAS); another shape is not
    save_nifti(tmp_path / "lab" / "b.nii.gz", np.zeros((4, 4, 4), np.uint8), affine @ np.array(
        [[-1, 0, 0, 3], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))  # fmt: skip
    monkeypatch.setattr(datasets, "load_nifti", _started)
    assert len(PairedNiftiDataset(tmp_path, "img/{id}.nii.gz", "lab/{id}.nii.gz")) == 2
    save_nifti(tmp_path / "lab" / "b.nii.gz", np.zeros((4, 4, 5), np.uint8), affine)
    with pytest.raises(ValueError, match=r"shape mismatch: .*img/b.nii.gz has \(4, 4, 4\), .*lab/b.nii.gz has \(4, 4, 5\)"):
        PairedNiftiDataset(tmp_path, "img/{id}.nii.gz", "lab/{id}.nii.gz")


def test_predict_refuses_a_cuda_device_the_machine_does_not_have(monkeypatch):
    import torch

    from spineaug.study import predict

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert predict.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"device 'cuda:3' requested but this machine has 1 CUDA device"):
        predict.resolve_device("cuda:3")


def test_preview_refuses_a_bad_config_or_patch_before_reading_the_case(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from spineaug.preview import gallery

    for name in ("phantom_volume", "nifti_volume", "render_gallery", "render_draws"):
        monkeypatch.setattr(gallery, name, _started)
    (tmp_path / "bad.json").write_text('{"transforms": [{"name": "Gamma", "p": 2}]}')
    assert cli.main(["preview", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "g.png")]) == 2
    assert "Gamma" in capsys.readouterr().err
    assert cli.main(["preview", "--draws", "2", "--patch", "16,16", "--out", str(tmp_path / "g.png")]) == 2
    assert "--patch must be three positive integers" in capsys.readouterr().err
    assert cli.main(["preview", "--draws", "2", "--presets", "nope", "--out", str(tmp_path / "g.png")]) == 2
    assert "unknown preset(s) ['nope']" in capsys.readouterr().err


def test_every_resume_from_export_is_checked_before_the_first_is_restored(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    from spineaug.study import archive

    monkeypatch.setattr(archive, "restore", _started)
    (tmp_path / "good" / "quick").mkdir(parents=True)
    (tmp_path / "good" / "quick" / archive.RECORDS).write_text("{}")
    code = cli.main(["study", "--quick", "--out", str(tmp_path / "res"), "--status", "--resume-from",
                     str(tmp_path / "good"), "--resume-from", str(tmp_path / "missing")])  # fmt: skip
    assert code == 2 and f"--resume-from {tmp_path / 'missing'}: no {archive.RECORDS}" in capsys.readouterr().err
