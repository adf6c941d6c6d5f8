"""Training, resumption, evaluation and prediction of study cells on a tiny phantom study."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from spineaug import study as S
from spineaug.study.data import load_split
from spineaug.study.runner import cell_folder, prepare
from spineaug.study.train import Cell, train_cell

from .conftest import tiny_study


def _log(folder: Path) -> list[dict]:
    with (folder / "train_log.csv").open() as f:
        return list(csv.DictReader(f))


def test_resumed_training_equals_uninterrupted(tmp_path, tiny):
    study = S.load_study(tiny)
    prepare(study, tmp_path / "out", progress=False)
    train, val = load_split(study, "t2w", "train"), load_split(study, "t2w", "val")
    cell = Cell("t2w", "xdomain", 0)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_cell(study, cell, whole, train, val, progress=False)
    # "killed" after 6 iterations: the checkpoint holds iteration 4, iterations 5-6 are lost and redone
    train_cell(study, cell, split, train, val, progress=False, stop_after=6)
    assert torch.load(split / "checkpoint.pt", weights_only=False)["iteration"] == 4
    train_cell(study, cell, split, train, val, progress=False)
    a, b = _log(whole), _log(split)
    assert [r["iteration"] for r in b] == [str(i) for i in range(1, 13)]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # same patches, same augmentation, same updates
    wa = torch.load(whole / "model.pt", weights_only=False)["model"]
    wb = torch.load(split / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (split / "checkpoint.pt").exists()


def test_every_arm_crops_the_patch(tiny):
    from spineaug.harness.augment import build_augmentation

    for arm in ("none", "nnunet", "xdomain", "xdomain-plus"):
        aug = build_augmentation(arm, (16, 16, 16))
        image = torch.randn(2, 1, *aug.read_size)
        label = torch.zeros(2, 1, *aug.read_size, dtype=torch.long)
        out, lab = aug.batch(image, label, generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 1, 16, 16, 16) and lab.shape == out.shape
    none = build_augmentation("none", (16, 16, 16))
    assert none.read_size == (16, 16, 16)
    image = torch.randn(2, 1, 16, 16, 16)
    out, _ = none.batch(image, torch.zeros(2, 1, 16, 16, 16, dtype=torch.long))
    assert torch.equal(out, image)  # the none arm only crops (here: the whole patch)
    assert all(r > 16 for r in build_augmentation("nnunet", (16, 16, 16)).read_size)  # enlarged for rotations


@pytest.mark.slow
def test_study_kill_and_resume(tmp_path):
    """Kill a real `spineaug study` process mid-training, rerun it: it resumes and completes the grid."""
    import yaml

    spec = tiny_study(tmp_path, arms=["none", "nnunet"])
    spec["training"].update(iterations=40, checkpoint_every=5, val_every=20)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "spineaug.cli", "study", str(path), "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "tiny" / "cells" / "t2w__none__s0" / "checkpoint.pt"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    assert ckpt.exists(), "no checkpoint within 600 s"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = S.status(S.load_study(path), out / "tiny")
    assert "training (" in state and "0/2 cells done" in state
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    log = _log(out / "tiny" / "cells" / "t2w__none__s0")
    assert [int(r["iteration"]) for r in log] == list(range(1, 41))
    assert "2/2 cells done" in S.status(S.load_study(path), out / "tiny")
    for name in ("metrics.csv", "summary.csv", "summary.md", "curves.csv"):
        assert (out / "tiny" / name).is_file()


def test_evaluation_resumes_per_case(tmp_path):
    spec = tiny_study(tmp_path)
    spec["data"]["n_test"] = 2
    study = S.load_study(spec)
    out = tmp_path / "out"
    S.run_study(study, out, progress=False)
    folder = cell_folder(out, Cell("t2w", "none", 0))
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 3  # header + domains x cases x classes
    # drop the last case's rows as if killed during evaluation; only that case is recomputed
    (folder / "metrics.partial.csv").write_text("\n".join(rows[:-3]) + "\n")
    (folder / "metrics.csv").unlink()
    from spineaug.study.evaluate import evaluate_cell

    calls = []
    import spineaug.study.evaluate as E

    original = E.predict_volume
    E.predict_volume = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        evaluate_cell(study, Cell("t2w", "none", 0), folder, {d: (lambda d=d: load_split(study, d, "test"))
                                                                for d in study.target_domains()}, progress=False)
    finally:
        E.predict_volume = original
    assert len(calls) == 1
    assert (folder / "metrics.csv").read_text().splitlines() == rows


def _model(tmp_path):
    study = S.load_study(tiny_study(tmp_path))
    S.run_study(study, tmp_path / "out", progress=False)
    return cell_folder(tmp_path / "out", Cell("t2w", "none", 0)) / "model.pt"


def test_predict_writes_on_the_input_grid(tmp_path):
    from spineaug import phantom
    from spineaug.study.predict import predict

    model = _model(tmp_path)
    case = phantom.make_case(20_000, "t2w", shape=(24, 28, 48), spacing=4.0)
    ras = nib.Nifti1Image(case.image, case.affine)
    # the same volume stored L->R reversed and P->A reversed (LPS)
    lps_affine = case.affine @ np.array([[-1, 0, 0, 23], [0, -1, 0, 27], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    lps = nib.Nifti1Image(case.image[::-1, ::-1, :].copy(), lps_affine)
    (tmp_path / "in").mkdir()
    nib.save(ras, str(tmp_path / "in" / "ras.nii.gz"))
    nib.save(lps, str(tmp_path / "in" / "lps.nii.gz"))
    outs = predict(model, tmp_path / "in", tmp_path / "pred", progress=False)
    assert [p.name for p in outs] == ["lps.nii.gz", "ras.nii.gz"]
    a, b = nib.load(str(outs[1])), nib.load(str(outs[0]))
    assert a.shape == case.image.shape and np.allclose(a.affine, case.affine)
    assert np.allclose(b.affine, lps_affine)
    pa, pb = np.asarray(a.dataobj), np.asarray(b.dataobj)
    assert set(np.unique(pa)) <= {0, 1, 2, 3}
    assert np.array_equal(pa, pb[::-1, ::-1, :])  # same anatomy, same labels, whatever the storage order


def test_predict_bad_inputs(tmp_path):
    from spineaug.study.predict import predict

    junk = tmp_path / "junk.pt"
    torch.save({"weights": 1}, junk)
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(tmp_path / "in" / "x.nii.gz"))
    with pytest.raises(ValueError, match="not a spineaug study model"):
        predict(junk, tmp_path / "in", tmp_path / "o", progress=False)
    model = _model(tmp_path)
    state = torch.load(model, weights_only=False)
    state["spec"]["model"]["filters"] = [8, 16]
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(ValueError, match="do not match the architecture"):
        predict(other, tmp_path / "in", tmp_path / "o", progress=False)
    state["spec"]["n_classes"] = 7
    torch.save(state, other)
    with pytest.raises(ValueError, match="7 classes"):
        predict(other, tmp_path / "in", tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="no .nii"):
        predict(model, tmp_path / "out", tmp_path / "o", progress=False)


def test_debug_executor_runs_the_cluster_path(tmp_path, tiny):
    """submitit's debug executor runs the same submission code as SLURM, in this process."""
    study = S.load_study(tiny)
    S.run_study(study, tmp_path / "out", executor="debug", progress=False)
    assert "1/1 cells done" in S.status(study, tmp_path / "out")
    assert (tmp_path / "out" / "summary.csv").is_file()


def test_real_nifti_data_path(tmp_path):
    """The same harness on nnU-Net raw datasets (here written from the phantom) instead of the phantom cache."""
    from spineaug import phantom

    roots = phantom.write_datasets(tmp_path / "raw", ["t2w", "ct"], cases=4, seed=0, spacing=4.0,
                                   shape=(24, 28, 48), progress=False)  # fmt: skip
    data = {"kind": "nifti", "domains": {
        "t2w": {"format": "nnunet_raw", "path": str(roots["t2w"]), "n_train": 2, "n_val": 1},
        "ct": {"format": "nnunet_raw", "path": str(roots["ct"])},
    }}  # fmt: skip
    spec = tiny_study(tmp_path, data=data)
    study = S.load_study(spec)
    S.run_study(study, tmp_path / "out", progress=False)
    import pandas as pd

    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert set(metrics["domain"]) == {"t2w", "ct"}
    assert len(metrics[metrics["domain"] == "t2w"]) == 1 * 3  # one test case left after 2 train + 1 val
    assert len(metrics[metrics["domain"] == "ct"]) == 4 * 3  # a target-only domain tests on every case


def test_nifti_data_errors_before_training(tmp_path):
    from spineaug.validation import ConfigError

    with pytest.raises(ConfigError, match="data folder not found"):
        S.load_study(tiny_study(tmp_path, data={"kind": "nifti", "domains": {
            "t2w": {"path": str(tmp_path / "nope"), "n_train": 1, "n_val": 1}}}))  # fmt: skip
    from spineaug import phantom

    roots = phantom.write_datasets(tmp_path / "raw", ["t2w"], cases=3, seed=0, spacing=4.0, shape=(24, 28, 48),
                                   progress=False)  # fmt: skip
    label = next((roots["t2w"] / "labelsTr").glob("*.nii.gz"))
    img = nib.load(str(label))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-1], img.affine), str(label))  # one slice short
    with pytest.raises(ConfigError, match="shape mismatch"):  # from the headers, when the study is loaded
        S.load_study(tiny_study(tmp_path, data={"kind": "nifti", "domains": {
            "t2w": {"path": str(roots["t2w"]), "n_train": 1, "n_val": 1}}}))  # fmt: skip


@pytest.mark.parametrize("executor", ["inline", "debug"])
def test_every_cell_receives_the_validated_study(tmp_path, tiny, monkeypatch, executor):
    """The study is validated once, when loaded: the runner hands each cell that object (no cell re-validates)."""
    from spineaug.study import config as C
    from spineaug.study import runner

    study = S.load_study({**tiny, "arms": ["none", "nnunet"], "seeds": [0, 1]})
    received = []

    def refuse(*args, **kwargs):
        raise RuntimeError("the study was validated again")

    def fake_cell(study_arg, out, cell, progress=True):
        received.append((study_arg, cell))
        return out

    monkeypatch.setattr(C, "_check_arm", refuse)
    monkeypatch.setattr(runner, "run_cell", fake_cell)
    monkeypatch.setattr(runner, "prepare", lambda *a, **k: None)
    monkeypatch.setattr("spineaug.study.summary.summarize", lambda *a, **k: None)
    S.run_study(study, tmp_path / "out", executor=executor, progress=False)
    assert [c for _, c in received] == S.cells(study) and len(received) == 4
    assert all(s is study for s, _ in received) if executor == "inline" else all(s == study for s, _ in received)
    with pytest.raises(TypeError, match="validated StudyConfig"):
        S.run_cell(study.model_dump(), str(tmp_path / "out"), S.cells(study)[0])


def test_grid_can_grow_but_settings_cannot_change(tmp_path, tiny):
    """Adding an arm keeps finished cells; changing a shared setting under the same name is refused."""
    out = tmp_path / "out"
    S.run_study(S.load_study(tiny), out, progress=False)
    first = (cell_folder(out, Cell("t2w", "none", 0)) / "metrics.csv").stat().st_mtime_ns
    S.run_study(S.load_study({**tiny, "arms": ["none", "nnunet"]}), out, progress=False)
    assert (cell_folder(out, Cell("t2w", "none", 0)) / "metrics.csv").stat().st_mtime_ns == first
    assert "2/2 cells done" in S.status(S.load_study({**tiny, "arms": ["none", "nnunet"]}), out)
    changed = {**tiny, "training": {**tiny["training"], "iterations": 13}}
    with pytest.raises(ValueError, match=r"other \['training'\]"):
        S.run_study(S.load_study(changed), out, progress=False)


def test_predict_follows_nnunet_naming_and_options(tmp_path, capsys):
    """CASE_0000.nii.gz in, CASE.nii.gz out; -i/-o/--device/--tta as on nnUNetv2_predict's command line."""
    from spineaug import phantom
    from spineaug.cli import main
    from spineaug.study.predict import group_cases, predict

    model = _model(tmp_path)
    case = phantom.make_case(20_000, "t2w", shape=(24, 28, 48), spacing=4.0)
    (tmp_path / "in").mkdir()
    for name in ("spine_001_0000.nii.gz", "other.nii.gz"):
        nib.save(nib.Nifti1Image(case.image, case.affine), str(tmp_path / "in" / name))
    outs = predict(model, tmp_path / "in", tmp_path / "pred", progress=False, device="cpu")
    assert sorted(p.name for p in outs) == ["other.nii.gz", "spine_001.nii.gz"]
    plain = np.asarray(nib.load(str(tmp_path / "pred" / "spine_001.nii.gz")).dataobj)
    argv = ["predict", "-m", str(model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "tta"), "-device", "cpu",
            "--tta", "--mirror-axes", "0,2", "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "tta" / "other.nii.gz"),
                                               str(tmp_path / "tta" / "spine_001.nii.gz")]
    mirrored = np.asarray(nib.load(str(tmp_path / "tta" / "spine_001.nii.gz")).dataobj)
    assert mirrored.shape == plain.shape and set(np.unique(mirrored)) <= {0, 1, 2, 3}
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "alias"), "--quiet"]) == 0  # the older --output spelling still works
    assert (tmp_path / "alias" / "other.nii.gz").is_file()
    # channels grouped by case, in order; gaps and clashes are refused
    names = [Path(n) for n in ("b_0001.nii.gz", "a_0000.nii.gz", "b_0000.nii.gz", "c.nii")]
    assert {k: [p.name for p in v] for k, v in group_cases(names).items()} == {
        "b.nii.gz": ["b_0000.nii.gz", "b_0001.nii.gz"], "a.nii.gz": ["a_0000.nii.gz"], "c.nii": ["c.nii"]}
    with pytest.raises(ValueError, match="without gaps"):
        group_cases([Path("a_0000.nii.gz"), Path("a_0002.nii.gz")])
    with pytest.raises(ValueError, match="same label map"):
        group_cases([Path("a_0000.nii.gz"), Path("a.nii.gz")])
    nib.save(nib.Nifti1Image(case.image, case.affine), str(tmp_path / "in" / "spine_001_0001.nii.gz"))
    with pytest.raises(ValueError, match="2 channel file"):  # the model takes one channel
        predict(model, tmp_path / "in", tmp_path / "two", progress=False)


def test_model_files_load_safely(tmp_path):
    from spineaug.study.predict import load_model

    model = _model(tmp_path)
    load_model(model)  # what a study writes is tensors and plain data: weights_only=True reads it
    state = torch.load(model, weights_only=True)
    state["provenance"] = {"where": Path("/somewhere")}  # an older file: a Python object inside
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(ValueError, match="--trust-model"):
        load_model(old)
    assert load_model(old, trusted=True)[1]["in_channels"] == 1
