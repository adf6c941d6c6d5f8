"""MONAI SpineAugd behaviour: fresh draws per call, set_random_state replays, collated path = per-sample path."""

from __future__ import annotations

import pytest
import torch

import spineaug

pytest.importorskip("monai")

from monai.data import MetaTensor, list_data_collate  # noqa: E402
from monai.utils import TraceKeys  # noqa: E402

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
    """No transform: every key must come back exactly as given, whatever its channels, dtype or the batch
    axis (three keys of mixed dtypes: the common dtype is promoted pairwise)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 4, 4, 4, generator=g), torch.rand(1, 4, 4, 4, generator=g)
    c = (1 + 1e-12 * torch.arange(64, dtype=torch.float64)).reshape(1, 4, 4, 4)  # needs float64 to survive
    aug = SpineAugd(keys=["a", "b", "c", "lab"], label_key="lab", config=IDENTITY)
    out = aug({"a": a, "b": b, "c": c, "lab": torch.zeros(1, 4, 4, 4)})
    for k, x in (("a", a), ("b", b), ("c", c)):
        assert out[k].dtype == x.dtype and torch.equal(out[k], x), k
    # a collated batch: the keys are stacked along the channels, not the batch
    two = {k: x[None].repeat(2, 1, 1, 1, 1) for k, x in (("a", a), ("b", b), ("c", c))}
    out = aug({**two, "lab": torch.zeros(2, 1, 4, 4, 4)})
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
    with pytest.raises(ValueError, match=r"^SpineAugd: 'lab' holds non-integer values; a label map must be "
                                         r"integer$"):
        aug({"t1": t1, "t2": t1, "lab": lab + 0.5})


def test_metatensor_records_per_sample_and_per_collated_sample():
    aug = SpineAugd(keys=["image", "label"], label_key="label", config=IDENTITY)
    eye = torch.eye(4, dtype=torch.float64).tolist()
    want = {TraceKeys.CLASS_NAME: "SpineAugd", TraceKeys.ID: id(aug), TraceKeys.ORIG_SIZE: (4, 5, 6),
            TraceKeys.DO_TRANSFORM: True, TraceKeys.TRACING: True, TraceKeys.LAZY: False,
            TraceKeys.EXTRA_INFO: {"augmentation": "config dict", "voxel_map": eye, "affine_exact": True,
                                   "invertible": False}}  # fmt: skip
    sample = {"image": MetaTensor(torch.rand(1, 4, 5, 6)), "label": MetaTensor(torch.zeros(1, 4, 5, 6))}
    first = aug(sample)
    for k in ("image", "label"):
        assert first[k].applied_operations == [want], k
    again = aug(first)  # a sample (one channel) with one record: its records are a flat list, not per sample
    assert again["image"].applied_operations == [want, want]
    batch = aug(list_data_collate([first, first]))  # each sample keeps its own list, one record longer
    for k in ("image", "label"):
        assert batch[k].applied_operations == [[want, want], [want, want]], k
    fresh = aug(list_data_collate([sample, sample]))  # collated without any record yet: MONAI writes "none"
    assert fresh["image"].applied_operations == [[want], [want]]


def test_constructor_source_keys_and_misuse(tmp_path):
    path = tmp_path / "identity.json"
    path.write_text('{"transforms": []}')
    assert SpineAugd(keys=["image"], config=path).source == f"config {path}"
    assert SpineAugd(keys=["image"]).source == "preset xdomain"
    assert SpineAugd(keys=["image"], preset="nnunet").source == "preset nnunet"
    assert SpineAugd(keys=["image"], config=IDENTITY).source == "config dict"
    aug = SpineAugd(keys=["image", "label"], config=IDENTITY)
    assert tuple(aug.keys) == ("image", "label")
    with pytest.raises(ValueError, match=r"^keys \('lab',\) name no image to augment$"):
        SpineAugd(keys=["lab"], label_key="lab")
    with pytest.warns(Warning, match="allow_missing_keys has no effect"):
        SpineAugd(keys=["image"], label_key=None, allow_missing_keys=True, config=IDENTITY)


def test_patch_size_reaches_a_config_and_non_finite_inputs_pass_through():
    config = spineaug.Pipeline.from_preset("nnunet").config()
    out = SpineAugd(keys=["image"], config=config, patch_size=(2, 3, 4))({"image": torch.rand(1, 6, 6, 6)})
    assert out["image"].shape == (1, 2, 3, 4)
    nan = torch.full((1, 4, 4, 4), float("nan"))
    for aug in (SpineAugd(keys=["image"], config=IDENTITY), SpineAugd(keys=["image"], preset="nnunet"),
                SpineAugd(keys=["image"], preset="xdomain", prob=0.0)):  # fmt: skip
        assert aug({"image": nan})["image"].isnan().all()  # MONAI pipelines may carry NaN: no finite check


def test_a_call_that_does_not_fire_only_crops():
    image = torch.rand(1, 6, 6, 6, generator=torch.Generator().manual_seed(1))
    elastic = {"transforms": [{"name": "Spatial", "p_rotation": 1.0, "p_scale": 1.0, "p_elastic": 1.0,
                               "elastic_magnitude": [2.0, 4.0], "elastic_spacing": 2}]}  # fmt: skip
    for preset in ("xdomain", "nnunet", elastic):
        source = {"config": preset} if isinstance(preset, dict) else {"preset": preset}
        aug = SpineAugd(keys=["image"], prob=0.0, **source)
        for seed in range(4):
            assert torch.equal(aug.set_random_state(seed)({"image": image})["image"], image), (preset, seed)
