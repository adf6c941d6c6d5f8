"""MONAI SpineAugd behaviour: fresh draws per call, set_random_state replays, collated path = per-sample path."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("monai")

from spineaug.integrations.monai import SpineAugd  # noqa: E402

# Brightness multiplies each firing sample by U(1, 2); p = 0.5. On an all-ones image the output's mean *is* the
# multiplier, so its law is known: 1 with probability 0.5, else U(1, 2) -> mean 1.25, fired fraction 0.5.
CONFIG = {"transforms": [{"name": "Brightness", "p": 0.5, "multiplier": [1.0, 2.0]}]}
SHAPE = (1, 4, 4, 4)


def _aug() -> SpineAugd:
    return SpineAugd(keys=("image",), config=CONFIG)


def _factors(out: torch.Tensor) -> torch.Tensor:
    """The per-sample multiplier of an augmented all-ones image ((C, D, H, W) or (B, C, D, H, W))."""
    return out.reshape(-1, out[0].numel() if out.ndim == 5 else out.numel()).mean(dim=1)


def test_repeated_calls_of_one_instance_draw_fresh_parameters():
    aug = _aug().set_random_state(3)
    data = {"image": torch.ones(SHAPE)}
    factors = [float(_factors(aug(data)["image"])[0]) for _ in range(12)]
    fired = [f for f in factors if f != 1.0]
    assert len(fired) >= 2 and len(set(fired)) == len(fired), factors


def test_set_random_state_replays_the_sequence_and_another_state_does_not():
    data = {"image": torch.ones(SHAPE)}

    def run(state: int) -> list[float]:
        aug = _aug().set_random_state(state)
        return [float(_factors(aug(data)["image"])[0]) for _ in range(8)]

    aug = _aug().set_random_state(11)
    first = [float(_factors(aug(data)["image"])[0]) for _ in range(8)]
    aug.set_random_state(11)  # the same instance, reseeded, replays its own sequence
    assert [float(_factors(aug(data)["image"])[0]) for _ in range(8)] == first
    assert run(11) == first
    assert run(12) != first


def test_collated_batch_and_per_sample_calls_agree_in_distribution():
    n = 400
    per_sample = _aug().set_random_state(0)
    single = torch.stack([_factors(per_sample({"image": torch.ones(SHAPE)})["image"])[0] for _ in range(n)])
    batched_aug = _aug().set_random_state(1)
    batched = torch.cat([_factors(batched_aug({"image": torch.ones(40, *SHAPE)})["image"]) for _ in range(n // 40)])
    for draws in (single, batched):
        assert draws.shape == (n,)
        assert ((draws >= 1.0) & (draws <= 2.0)).all()
        fired = draws != 1.0
        assert abs(fired.float().mean().item() - 0.5) < 0.1  # 4 standard errors
        assert abs(draws.mean().item() - 1.25) < 0.065
        assert abs(draws[fired].mean().item() - 1.5) < 0.07  # U(1, 2) among the samples that fired
    assert abs(single.mean().item() - batched.mean().item()) < 0.09
    # Within one collated batch the samples draw their own multipliers (not one per batch).
    one_batch = _factors(_aug().set_random_state(2)({"image": torch.ones(40, *SHAPE)})["image"])
    assert len(set(one_batch[one_batch != 1.0].tolist())) > 10


def test_a_single_key_string_and_numpy_inputs():
    import numpy as np

    out = SpineAugd(keys="image", config=CONFIG).set_random_state(0)(
        {"image": torch.ones(SHAPE)})  # fmt: skip
    assert out["image"].shape == SHAPE
    aug = SpineAugd(keys=("image", "label"), config=CONFIG).set_random_state(0)
    out = aug({"image": np.ones(SHAPE, dtype=np.float32), "label": np.zeros(SHAPE, dtype=np.int16)})
    assert out["image"].shape == SHAPE and out["label"].dtype == torch.int16


IDENTITY = {"transforms": []}


def test_three_image_keys_come_back_with_their_own_channels_and_dtypes():
    """No transform: every key must come back exactly as given, whatever its channels, dtype or the batch axis (three
    keys of mixed dtypes: the common dtype is promoted pairwise)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 4, 4, 4, generator=g), torch.rand(1, 4, 4, 4, generator=g)
    c = (1 + 1e-12 * torch.arange(64, dtype=torch.float64)).reshape(1, 4, 4, 4)  # needs float64 to survive
    aug = SpineAugd(keys=["a", "b", "c", "lab"], label_key="lab", config=IDENTITY)
    out = aug({"a": a, "b": b, "c": c, "lab": torch.zeros(1, 4, 4, 4)})
    for k, x in (("a", a), ("b", b), ("c", c)):
        assert out[k].dtype == x.dtype and torch.equal(out[k], x), k
    # a collated batch: the keys are stacked along the channels, not the batch
    out = aug({"a": a[None].repeat(2, 1, 1, 1, 1), "b": b[None].repeat(2, 1, 1, 1, 1), "c": c[None].repeat(2, 1, 1, 1, 1),
               "lab": torch.zeros(2, 1, 4, 4, 4)})  # fmt: skip
    assert out["a"].shape == (2, 2, 4, 4, 4) and torch.equal(out["b"][1], b) and torch.equal(out["c"][0], c)


def test_a_non_float_image_is_augmented_as_float32_and_a_float64_one_stays_float64():
    aug = SpineAugd(keys=["image"], config=IDENTITY)
    ints = torch.arange(64, dtype=torch.int16).reshape(1, 4, 4, 4)
    out = aug({"image": ints})["image"]
    assert out.dtype == torch.float32 and torch.equal(out, ints.float())
    doubles = torch.rand(1, 4, 4, 4, dtype=torch.float64)
    assert aug({"image": doubles})["image"].dtype == torch.float64


def test_shape_errors_name_the_keys_and_shapes():
    aug = SpineAugd(keys=["t1", "t2", "lab"], label_key="lab", config=IDENTITY)
    t1, lab = torch.rand(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    with pytest.raises(ValueError, match=r"^SpineAugd: image 't2' has shape \(1, 4, 4, 3\) but 't1' has "
                                         r"\(1, 4, 4, 4\); images augmented together need the same grid$"):
        aug({"t1": t1, "t2": torch.rand(1, 4, 4, 3), "lab": lab})
    with pytest.raises(ValueError, match=r"^SpineAugd: image 't2' has shape \(4, 4, 4\) but 't1'"):
        aug({"t1": t1, "t2": torch.rand(4, 4, 4), "lab": lab})  # same grid, no channel axis
    with pytest.raises(ValueError, match=r"^SpineAugd: 'lab' has shape \(4, 4, 4\) but 't1' has \(1, 4, 4, 4\)$"):
        aug({"t1": t1, "t2": t1, "lab": torch.zeros(4, 4, 4)})
    with pytest.raises(ValueError, match=r"^SpineAugd: 'lab' holds non-integer values; a label map must be integer$"):
        aug({"t1": t1, "t2": t1, "lab": lab + 0.5})
