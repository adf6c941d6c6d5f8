"""The resume checkpoint holds tensors and plain data only: it loads with torch.load(weights_only=True), and a
resumed cell still trains bit-identically to an uninterrupted one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from spineaug import study as S
from spineaug.study.data import load_split
from spineaug.study.runner import prepare
from spineaug.study.train import Cell, train_cell

from .conftest import tiny_study

PLAIN = (type(None), bool, int, float, str)


def _plain(value) -> bool:
    """Tensors, JSON-like scalars and containers of them."""
    if isinstance(value, (torch.Tensor, *PLAIN)):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def _losses(folder: Path) -> list[str]:
    with (folder / "train_log.csv").open() as f:
        return [row["loss"] for row in csv.DictReader(f)]


def test_checkpoint_is_plain_and_resumes_bit_identically(tmp_path):
    spec = tiny_study(tmp_path)
    spec["training"].update(monitor_cases=1)
    study = S.load_study(spec)
    prepare(study, tmp_path / "out", progress=False)
    train, val = load_split(study, "t2w", "train"), load_split(study, "t2w", "val")
    monitor = {"ct": load_split(study, "ct", "val")}
    cell = Cell("t2w", "xdomain-plus", 0)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_cell(study, cell, whole, train, val, progress=False, monitor=monitor)
    train_cell(study, cell, split, train, val, progress=False, monitor=monitor, stop_after=9)  # checkpoint at 8

    ckpt = torch.load(split / "checkpoint.pt", weights_only=True)
    assert ckpt["iteration"] == 8 and _plain(ckpt)
    assert ckpt["generator"].dtype == torch.uint8 and ckpt["generator"].device.type == "cpu"
    assert json.loads(json.dumps(ckpt["log"])) == ckpt["log"] and len(ckpt["log"]) == 8
    assert [r["iteration"] for r in ckpt["monitor"]] == [6]

    train_cell(study, cell, split, train, val, progress=False, monitor=monitor)
    assert _losses(split) == _losses(whole)
    assert (split / "monitor_log.csv").read_text() == (whole / "monitor_log.csv").read_text()
    wa = torch.load(whole / "model.pt", weights_only=True)["model"]
    wb = torch.load(split / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (split / "checkpoint.pt").exists()


def test_a_checkpoint_with_python_objects_is_refused(tmp_path):
    study = S.load_study(tiny_study(tmp_path))
    prepare(study, tmp_path / "out", progress=False)
    train, val = load_split(study, "t2w", "train"), load_split(study, "t2w", "val")
    cell, folder = Cell("t2w", "none", 0), tmp_path / "cell"
    train_cell(study, cell, folder, train, val, progress=False, stop_after=4)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    torch.save({**state, "log": [{"where": Path("/x")}]}, folder / "checkpoint.pt")  # as an older version might
    with pytest.raises(ValueError, match="checkpoint.pt: holds Python objects .*delete it"):
        train_cell(study, cell, folder, train, val, progress=False)
