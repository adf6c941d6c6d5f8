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
