"""AugLab baseline: which AugLab the environment holds (snapshot or wheel) and which config it times."""

from __future__ import annotations

import pytest

from spineaug.baselines import auglab


def _fake_env(tmp_path, monkeypatch, record: str | None):
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    if record is not None:
        (tmp_path / "env" / auglab.SOURCE_FILE).write_text(record + "\n")
    monkeypatch.setenv("SPINEAUG_AUGLAB_PYTHON", str(python))


def test_installed_source_reads_the_record(tmp_path, monkeypatch):
    _fake_env(tmp_path, monkeypatch, "snapshot 1ee096a")
    assert auglab.installed_source() == auglab.SNAPSHOT_SOURCE == "snapshot 1ee096a"
    rows = {r.spineaug: r.equivalent for r in auglab.mapping("xdomain")}
    assert rows["FovCrop"] == "RandomCropTransformGPU"


def test_env_without_record_holds_the_wheel(tmp_path, monkeypatch):
    _fake_env(tmp_path, monkeypatch, None)
    assert auglab.installed_source() == auglab.WHEEL_SOURCE == "wheel 20260109"
    rows = {r.spineaug: r.equivalent for r in auglab.mapping("xdomain")}
    assert rows["FovCrop"] is None


def test_no_env_no_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEAUG_AUGLAB_PYTHON", str(tmp_path / "missing" / "python"))
    assert auglab.installed_source() is None


def test_config_falls_back_to_the_restatement_without_snapshot(tmp_path, monkeypatch):
    monkeypatch.setattr(auglab, "snapshot_path", lambda: tmp_path / "absent.tar.gz")
    config, origin = auglab.gpu_config()
    assert origin == "restatement" and config == auglab.DEFAULT_GPU_CONFIG


@pytest.mark.skipif(not auglab.snapshot_path().is_file(), reason="AugLab snapshot (../shared/third_party) absent")
def test_config_is_the_snapshots_real_json():
    config, origin = auglab.gpu_config()
    assert origin == "snapshot 1ee096a"
    assert config["CropTransform"]["probability"] == 0.25  # the FOV crop the wheel lacks
    assert "nnUNetSpatialTransform" in config
    # The restatement agrees with the real file on every probability it states.
    for key, block in auglab.DEFAULT_GPU_CONFIG.items():
        assert block["probability"] == config[key]["probability"], key


@pytest.mark.skipif(not auglab.available(), reason="AugLab environment not built (make auglab-env)")
def test_run_reports_the_installed_source():
    reply = auglab.run([(1, 16)], repeats=1, warmup=0, threads=1)
    assert reply["source"] == auglab.installed_source()
    assert reply["source"] in reply["auglab"]
    if reply["source"] == auglab.SNAPSHOT_SOURCE and reply["config"] == auglab.SNAPSHOT_SOURCE:
        assert reply["n_modules"] == 25  # with the FOV crop
    assert reply["cases"][0]["error"] is None
