"""TorchIO SpineAug behaviour: fresh draws per call, torch.manual_seed replays, the configured law is kept."""

from __future__ import annotations

import pytest
import torch

tio = pytest.importorskip("torchio")

from spineaug.integrations.torchio import SpineAug  # noqa: E402

# Brightness multiplies a firing subject by U(1, 2); p = 0.5. On an all-ones image the output mean is the multiplier.
CONFIG = {"transforms": [{"name": "Brightness", "p": 0.5, "multiplier": [1.0, 2.0]}]}


def _subject() -> tio.Subject:
    return tio.Subject(image=tio.ScalarImage(tensor=torch.ones(1, 4, 4, 4)))


def _draws(aug: SpineAug, n: int) -> list[float]:
    return [float(aug(_subject())["image"].data.mean()) for _ in range(n)]


def test_repeated_calls_of_one_instance_draw_fresh_parameters():
    torch.manual_seed(3)
    factors = _draws(SpineAug(config=CONFIG), 12)
    fired = [f for f in factors if f != 1.0]
    assert len(fired) >= 2 and len(set(fired)) == len(fired), factors


def test_torch_manual_seed_replays_the_sequence_and_another_seed_does_not():
    aug = SpineAug(config=CONFIG)
    torch.manual_seed(11)
    first = _draws(aug, 8)
    torch.manual_seed(11)
    assert _draws(aug, 8) == first
    torch.manual_seed(11)
    assert _draws(SpineAug(config=CONFIG), 8) == first  # a new instance follows the global seed too
    torch.manual_seed(12)
    assert _draws(aug, 8) != first


def test_draws_follow_the_configured_law():
    torch.manual_seed(0)
    draws = torch.tensor(_draws(SpineAug(config=CONFIG), 400))
    assert ((draws >= 1.0) & (draws <= 2.0)).all()
    fired = draws != 1.0
    assert abs(fired.float().mean().item() - 0.5) < 0.1
    assert abs(draws.mean().item() - 1.25) < 0.065
    assert abs(draws[fired].mean().item() - 1.5) < 0.07
