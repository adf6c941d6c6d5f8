"""A tiny study cell's outputs, pinned: refactoring the layers above the engine must keep them bit-identical.

The pinned values (``pinned/tiny_cell.json``) are, for one strong spineaug arm and one mixing arm, the sha256 of the
trained weights (any change in a bit of what the network saw shows there), the ``train_log.csv`` losses and
validation Dice, the monitoring Dice and the ``metrics.csv`` Dice and HD95, exactly as written. They were produced with the torch version recorded in the file; another torch build may round
differently, so under another version the test skips and says so. Regenerate them only for an intended change of
the engine or the training loop: ``python tests/study/test_study_pinned.py --write``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

PIN = Path(__file__).parent / "pinned" / "tiny_cell.json"
ARMS = ["xdomain-plus", "studies/arms/mix-xdomain-plus-nnunet.yaml"]
ROOT = Path(__file__).resolve().parents[2]


def _study(tmp: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_study  # the same tiny study as the other study tests

    return tiny_study(tmp, arms=ARMS, reference_arm=ARMS[0], training={
        "patch_size": [16, 16, 16], "batch_size": 2, "iterations": 8, "val_every": 4, "checkpoint_every": 4,
        "threads": 1, "monitor_cases": 1})  # fmt: skip


def _read(path: Path, columns: list[str]) -> list[list[str]]:
    with path.open() as f:
        return [[row[c] for c in columns] for row in csv.DictReader(f)]


def _weights_sha256(model_file: Path) -> str:
    import hashlib

    state = torch.load(model_file, map_location="cpu", weights_only=False)["model"]
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def produce(tmp: Path) -> dict:
    from spineaug import study as S
    from spineaug.study.grid import cells, cell_folder

    study = S.load_study(_study(tmp))
    out = tmp / "out"
    S.run_study(study, out, progress=False)
    pinned = {}
    for cell in cells(study):
        folder = cell_folder(out, cell)
        pinned[cell.slug] = {
            "weights_sha256": _weights_sha256(folder / "model.pt"),
            "train_log": _read(folder / "train_log.csv", ["iteration", "loss", "val_dice"]),
            "monitor_log": _read(folder / "monitor_log.csv", ["iteration", "domain", "dice"]),
            "metrics": _read(folder / "metrics.csv", ["domain", "case", "class", "dice", "hd95"]),
        }
    return pinned


def test_a_tiny_cell_trains_and_scores_exactly_as_pinned(tmp_path, monkeypatch):
    recorded = json.loads(PIN.read_text())
    if recorded["torch"] != torch.__version__:
        pytest.skip(f"pinned with torch {recorded['torch']}, running {torch.__version__}: other rounding")
    monkeypatch.chdir(ROOT)  # the mixing arm file is named relative to the repository root
    got = produce(tmp_path)
    assert sorted(got) == sorted(recorded["cells"])
    for slug, want in recorded["cells"].items():
        for name in ("weights_sha256", "train_log", "monitor_log", "metrics"):
            assert got[slug][name] == want[name], f"{slug} {name} differs from the pinned run"


if __name__ == "__main__" and "--write" in sys.argv:
    import os
    import tempfile

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        PIN.write_text(json.dumps({"torch": torch.__version__, "cells": produce(Path(tmp))}, indent=1) + "\n")
    print(f"wrote {PIN}")
