"""Shared setup of the asv suites: devices, data and the warning filter."""

from __future__ import annotations

import warnings

import torch

warnings.filterwarnings("ignore")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
import os

SIZES = [int(v) for v in os.environ.get("SPINEAUG_ASV_SIZES", "64,128").split(",") if v.strip()]
"""Cube edges S; ``SPINEAUG_ASV_SIZES=16`` makes a quick smoke run (the test suite does this)."""
BATCH = 2


def batch(size: int, device: str, batch_size: int = BATCH):
    """A reproducible ``B x 1 x S^3`` image + label pair on ``device`` (same data as ``spineaug bench``)."""
    from spineaug.bench import make_batch

    return make_batch(batch_size, size, torch.device(device), seed=0)


def sync(device: str) -> None:
    """Wait for queued CUDA work so the timed function covers it."""
    if device == "cuda":
        torch.cuda.synchronize()
