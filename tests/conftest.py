"""Shared fixtures: devices, generators and small synthetic batches."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# The one registry of per-transform exercise settings (tests/_exercise.py), imported here so that it is part of the
# shared test setup; tests import it from tests._exercise.
from tests._exercise import BARE, EXERCISE, exercise, forced_entry  # noqa: F401

settings.register_profile("default", deadline=None, max_examples=25)
settings.register_profile("ci", deadline=None, max_examples=15)
settings.load_profile("ci" if os.environ.get("CI") else "default")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def make_batch(
    b: int = 2, shape: tuple[int, int, int] = (12, 14, 16), *, seed: int = 0, device: str = "cpu", classes: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random image and a blocky label map with ``classes`` values (0 = background)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(b, 1, *shape, generator=g)
    image = torch.nn.functional.avg_pool3d(image, 3, stride=1, padding=1) * 3 + 1
    coarse = torch.randint(0, classes, (b, 1, *(max(1, s // 4) for s in shape)), generator=g)
    label = torch.nn.functional.interpolate(coarse.float(), size=shape, mode="nearest").long()
    return image.to(device), label.to(device)
