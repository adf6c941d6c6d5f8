"""A tiny study (4 mm phantom, 16^3 patches, two-level UNet) that trains in seconds."""

from __future__ import annotations

import pytest


def tiny_study(tmp_path, **over) -> dict:
    study = {
        "name": "tiny",
        "data": {"kind": "phantom", "domains": ["t2w", "ct"], "shape": [24, 28, 48], "spacing": 4.0,
                 "n_train": 2, "n_val": 1, "n_test": 1, "cache": str(tmp_path / "cache")},
        "preprocessing": {"spacing": 4.0},
        "sources": ["t2w"],
        "arms": ["none"],
        "reference_arm": "none",
        "model": {"name": "UNet", "filters": [4, 8]},
        "training": {"patch_size": [16, 16, 16], "batch_size": 2, "iterations": 12, "val_every": 6,
                     "checkpoint_every": 4, "threads": 1},
        "evaluation": {"bootstrap": 50, "save_predictions": 1},
    }  # fmt: skip
    study.update(over)
    return study


@pytest.fixture
def tiny(tmp_path):
    return tiny_study(tmp_path)
