"""Pipeline API: presets, configs, validation errors and the input contract."""

from __future__ import annotations

import json

import pytest
import torch

import spineaug
from spineaug import ConfigError
from spineaug.pipeline import Pipeline, timing_steps
from tests.conftest import make_batch


def test_public_api():
    assert "none" in spineaug.presets()
    assert {"Spatial", "Affine", "Flip", "Gamma"} <= set(spineaug.TRANSFORMS)
    aug = spineaug.Pipeline.from_preset("none")
    assert isinstance(aug, torch.nn.Module)
    image, label = make_batch()
    out, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, image) and torch.equal(lab, label)


def test_config_from_json_and_yaml_files(tmp_path):
    config = {"seed": 3, "transforms": [{"name": "Flip", "p": 0.5, "axes": [0]}, {"name": "Gamma", "p": 0.3}]}
    (tmp_path / "a.json").write_text(json.dumps(config))
    (tmp_path / "a.yaml").write_text("seed: 3\ntransforms:\n  - {name: Flip, p: 0.5, axes: [0]}\n  - {name: Gamma, p: 0.3}\n")
    a = spineaug.Pipeline.from_config(tmp_path / "a.json")
    b = spineaug.Pipeline.from_config(str(tmp_path / "a.yaml"))
    assert a.config() == b.config()
    image, label = make_batch()
    assert torch.equal(a(image, label)[0], b(image, label)[0])  # same seed, same draws


def test_config_round_trips():
    aug = spineaug.Pipeline.from_config(
        {"transforms": [{"name": "Spatial", "patch_size": [8, 8, 8], "p_rotation": 0.2}, {"name": "Flip"}]}
    )
    again = spineaug.Pipeline.from_config(json.loads(json.dumps(aug.config())))
    assert again.config() == aug.config()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"transforms": [{"name": "Spatal"}]}, "unknown transform name 'Spatal'"),
        ({"transforms": [{"p": 0.5}]}, "missing 'name'"),
        ({"transforms": [{"name": "Flip", "prob": 0.5}]}, "unknown key(s) ['prob']"),
        ({"transforms": [{"name": "Flip", "p": 1.5}]}, "p: Input should be less than or equal to 1"),
        ({"transforms": [{"name": "Gamma", "p": -0.1}]}, "p: Input should be greater than or equal to 0"),
        ({"transforms": [{"name": "Spatial", "scale": [1.4, 0.7]}]}, "scale: Value error, range low 1.4 is above high 0.7"),
        ({"transforms": [{"name": "Spatial", "scale": [-1, 2]}]}, "scale.0"),
        ({"transforms": [{"name": "Spatial", "patch_size": [8, 0, 8]}]}, "patch_size.1"),
        ({"transforms": [{"name": "Flip", "axes": [3]}]}, "axes.0"),
        ({"transforms": [{"name": "Flip", "axes": [0, 0]}]}, "axes must not repeat"),
        ({"transforms": [{"name": "Spatial", "pad_mode": "wrap"}]}, "pad_mode"),
        ({"transforms": [{"name": "Gamma", "gamma": "big"}]}, "gamma"),
        ({"transforms": [{"name": "Spatial"}, {"name": "Spatial"}]}, "at most one 'Spatial'"),
        ({"transform": []}, "unknown top-level config key(s) ['transform']"),
        ({"transforms": {"name": "Flip"}}, "'transforms' must be a list"),
        ({"seed": "x", "transforms": []}, "'seed' must be an integer"),
    ],
)
def test_bad_configs_name_the_problem(config, message):
    with pytest.raises(ConfigError) as info:
        spineaug.Pipeline.from_config(config)
    assert message in str(info.value)


def test_bad_config_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        spineaug.Pipeline.from_config(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json, line 1, column 2: not valid JSON"):
        spineaug.Pipeline.from_config(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        spineaug.Pipeline.from_preset("nope")


def test_direct_construction_is_validated_too():
    from spineaug.transforms import RandomFlip, RandomSpatial

    with pytest.raises(ConfigError, match="p: Input should be less than or equal to 1"):
        RandomFlip(p=2)
    with pytest.raises(ConfigError, match="rotation_deg"):
        RandomSpatial(rotation_deg=(30, -30))
    with pytest.raises(TypeError, match="transforms\\[0\\] must be a spineaug transform"):
        spineaug.Pipeline(torch.nn.Identity())


GOOD_IMAGE, GOOD_LABEL = make_batch()


@pytest.mark.parametrize(
    ("image", "label", "error", "message"),
    [
        (GOOD_IMAGE[0, 0], None, ValueError, "image must be 5-D"),
        (GOOD_IMAGE[0], GOOD_LABEL, ValueError, "needs an unbatched label (1, D, H, W)"),
        (GOOD_IMAGE.numpy(), None, TypeError, "image must be a torch.Tensor"),
        (GOOD_IMAGE.long(), None, TypeError, "image must be floating point"),
        (GOOD_IMAGE[:0], None, ValueError, "empty batch"),
        (GOOD_IMAGE, GOOD_LABEL.float(), TypeError, "label must be an integer label map"),
        (GOOD_IMAGE, GOOD_LABEL > 0, TypeError, "label must be an integer label map"),
        (GOOD_IMAGE, GOOD_LABEL[:1], ValueError, "does not match image shape"),
        (GOOD_IMAGE, GOOD_LABEL[..., :-1], ValueError, "does not match image shape"),
        (GOOD_IMAGE, GOOD_LABEL[:, 0], ValueError, "label must be (B, 1, D, H, W)"),
        (GOOD_IMAGE, torch.cat([GOOD_LABEL, GOOD_LABEL], 1), ValueError, "label must be (B, 1, D, H, W)"),
        (GOOD_IMAGE.index_fill(2, torch.tensor([3]), float("nan")), None, ValueError, "NaN or Inf"),
        (GOOD_IMAGE.index_fill(2, torch.tensor([3]), float("inf")), None, ValueError, "NaN or Inf"),
    ],
)
def test_bad_inputs_raise_clear_errors(image, label, error, message):
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Flip"}]})
    with pytest.raises(error, match=message.replace("(", "\\(").replace(")", "\\)")):
        aug(image, label, generator=torch.Generator())


def test_patch_larger_than_input_is_an_error():
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Spatial", "patch_size": [8, 8, 64]}]})
    with pytest.raises(ValueError, match="patch_size \\[8, 8, 64\\] is larger than the input"):
        aug(GOOD_IMAGE, GOOD_LABEL, generator=torch.Generator())


def test_generator_must_be_a_cpu_generator():
    aug = spineaug.Pipeline.from_preset("none")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        aug(GOOD_IMAGE, generator=0)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="CPU torch.Generator"):
            aug(GOOD_IMAGE, generator=torch.Generator("cuda"))


def test_replayed_params_must_match_the_pipeline():
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Flip"}]})
    with pytest.raises(ValueError, match="params has 0 entries but the pipeline has 1"):
        aug(GOOD_IMAGE, params=[])


def test_cli_lists_presets_and_validates_configs(tmp_path, capsys):
    from spineaug.cli import main

    assert main(["presets"]) == 0
    assert "none" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"transforms": [{"name": "Flip", "p": 3}]}))
    assert main(["config", str(bad)]) == 2
    assert "p: Input should be less than or equal to 1" in capsys.readouterr().err


class _Volumes(torch.utils.data.Dataset):
    def __init__(self, aug):
        self.aug = aug
        self.image = torch.arange(4 * 4 * 4, dtype=torch.float32).view(1, 1, 4, 4, 4)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.aug(self.image)[0][0]


def test_dataloader_workers_do_not_repeat_draws():
    aug = spineaug.Pipeline.from_config({"seed": 0, "transforms": [{"name": "Flip", "axes": [0, 1, 2]}]})
    loader = torch.utils.data.DataLoader(_Volumes(aug), batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(0))
    outs = [x for x in loader]
    # worker 0 and worker 1 each produce their first item from a fresh, distinct stream
    pairs = [(outs[0], outs[1]), (outs[2], outs[3])]
    assert any(not torch.equal(a, b) for a, b in pairs)


def test_writing_into_own_intermediates_changes_nothing_and_spares_the_input(monkeypatch):
    """Subsets of a batch are written back into the pipeline's own intermediates, never into the caller's image."""
    import spineaug.pipeline as P

    g = torch.Generator().manual_seed(0)
    image = torch.rand(4, 1, 10, 9, 8, generator=g)
    label = torch.randint(0, 4, (4, 1, 10, 9, 8), generator=g)
    before = image.clone()
    entries = [{"name": n, "p": 0.5} for n in ("Brightness", "Gamma", "Inversion", "GaussianNoise", "Contrast")]
    aug = spineaug.Pipeline.from_config({"transforms": entries})
    fast = aug(image, label, generator=torch.Generator().manual_seed(3))
    assert torch.equal(image, before)
    monkeypatch.setattr(P, "_storage", lambda t: 0)  # nothing counts as owned: every write-back copies
    slow = aug(image, label, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast[0], slow[0]) and torch.equal(image, before)


def _find_crop(image: torch.Tensor, patch: torch.Tensor) -> tuple[int, int, int] | None:
    """The start of the window of ``image`` (C, D, H, W) that equals ``patch``, or ``None``."""
    d, h, w = patch.shape[1:]
    for i in range(image.shape[1] - d + 1):
        for j in range(image.shape[2] - h + 1):
            for k in range(image.shape[3] - w + 1):
                if torch.equal(image[:, i : i + d, j : j + h, k : k + w], patch):
                    return i, j, k
    return None


def test_patch_size_on_a_preset_without_spatial_only_crops():
    image, label = make_batch(b=4, shape=(12, 14, 16))
    aug = spineaug.Pipeline.from_preset("none", patch_size=(6, 7, 8))
    entry = aug.config()["transforms"][0]
    assert entry["name"] == "Spatial" and entry["patch_size"] == [6, 7, 8]
    assert all(entry[k] == 0 for k in ("p", "p_rotation", "p_scale", "p_elastic", "p_foreground"))
    starts = set()
    for seed in range(3):
        out, lab = aug(image, label, generator=torch.Generator().manual_seed(seed))
        assert out.shape == (4, 1, 6, 7, 8) and lab.shape == (4, 1, 6, 7, 8)
        for b in range(4):
            start = _find_crop(image[b], out[b])
            assert start is not None, "the output is a crop of the input, values unchanged"
            i, j, k = start
            assert torch.equal(lab[b], label[b, :, i : i + 6, j : j + 7, k : k + 8])
            starts.add(start)
    assert len(starts) > 1, "the crop position is random"


def test_patch_size_with_foreground_centres_the_crop_on_the_label():
    image = torch.rand(3, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    label = torch.zeros(3, 1, 16, 16, 16, dtype=torch.long)
    label[:, :, 13, 2, 9] = 1  # one foreground voxel
    aug = spineaug.Pipeline.from_preset("none", patch_size=(5, 5, 5), p_foreground=1.0)
    out, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert (lab.flatten(1).sum(1) == 1).all()
    assert _find_crop(image[0], out[0]) is not None


def test_patch_size_and_p_foreground_override_the_spatial_entry():
    default = spineaug.Pipeline.from_preset("nnunet").config()["transforms"]
    aug = spineaug.Pipeline.from_preset("nnunet", patch_size=[8, 8, 8], p_foreground=0.25)
    entries = aug.config()["transforms"]
    assert [e["name"] for e in entries] == [e["name"] for e in default]  # nothing inserted
    spatial = next(e for e in entries if e["name"] == "Spatial")
    assert spatial["patch_size"] == [8, 8, 8] and spatial["p_foreground"] == 0.25
    others = {k: v for k, v in spatial.items() if k not in ("patch_size", "p_foreground")}
    assert others == {k: v for k, v in next(e for e in default if e["name"] == "Spatial").items() if k in others}
    image, label = make_batch(b=2, shape=(12, 12, 12))
    out, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 8, 8, 8) and lab.shape == (2, 1, 8, 8, 8)
    # from_config takes the same overrides
    again = spineaug.Pipeline.from_config({"transforms": [{"name": "Spatial"}]}, patch_size=(4, 5, 6))
    assert again.config()["transforms"][0]["patch_size"] == [4, 5, 6]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": (8, 0, 8)}, "patch_size.1"),
        ({"patch_size": (8, 8)}, "patch_size"),
        ({"patch_size": (8, 8, 8), "p_foreground": 1.5}, "p_foreground: Input should be less than or equal to 1"),
        ({"p_foreground": 0.5}, "p_foreground needs a patch"),
    ],
)
def test_patch_overrides_are_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
        spineaug.Pipeline.from_preset("none", **kwargs)
    if "patch_size" in kwargs:  # a preset with a Spatial entry validates the same way
        with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
            spineaug.Pipeline.from_preset("nnunet", **kwargs)


def test_return_params_are_typed_in_config_order_and_replay():
    from spineaug.transforms.intensity import GammaParams, GaussianNoiseParams
    from spineaug.transforms.spatial import FlipParams, SpatialParams

    entries = [{"name": "Gamma", "p": 0.5}, {"name": "Flip"}, {"name": "GaussianNoise"}, {"name": "Spatial"}]
    aug = spineaug.Pipeline.from_config({"transforms": entries})
    image, label = make_batch(b=3)
    out, lab, params = aug(image, label, generator=torch.Generator().manual_seed(0), return_params=True)
    assert list(params) == aug.entry_keys() == ["0:Gamma", "1:Flip", "2:GaussianNoise", "3:Spatial"]
    assert isinstance(params["0:Gamma"], spineaug.transforms.IntensityParams)
    assert isinstance(params["0:Gamma"].values, GammaParams) and params["0:Gamma"].values.gamma.shape == (3,)
    assert isinstance(params["1:Flip"], FlipParams) and isinstance(params["3:Spatial"], SpatialParams)
    assert isinstance(params["2:GaussianNoise"].values, GaussianNoiseParams)
    assert "gamma=tensor(" in repr(params["0:Gamma"])  # self-describing
    # replay: the dict in any key order, or a list in config order
    for replay in (params, dict(reversed(list(params.items()))), list(params.values())):
        again = aug(image, label, params=replay)
        assert torch.equal(again[0], out) and torch.equal(again[1], lab)
    with pytest.raises(ValueError, match="do not match the pipeline's entries"):
        aug(image, label, params={"0:Flip": 1, "1:Gamma": 2, "2:GaussianNoise": 3, "3:Spatial": 4})


def test_params_select_takes_samples():
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Spatial"}, {"name": "Gamma"}]})
    image, label = make_batch(b=4)
    _, _, params = aug(image, label, generator=torch.Generator().manual_seed(0), return_params=True)
    picked = {k: p.select(torch.tensor([2, 0])) for k, p in params.items()}
    assert torch.equal(picked["1:Gamma"].values.gamma, params["1:Gamma"].values.gamma[[2, 0]])
    assert torch.equal(picked["0:Spatial"].crop_u, params["0:Spatial"].crop_u[[2, 0]])
    out, lab = aug(image[[2, 0]], label[[2, 0]], params=picked)
    full = aug(image, label, params=params)
    torch.testing.assert_close(out, full[0][[2, 0]], atol=1e-5, rtol=1e-5)


def test_meta_tensors_with_the_finite_check_get_a_clear_message():
    aug = spineaug.Pipeline.from_preset("nnunet")
    image = torch.empty(2, 1, 8, 8, 8, device="meta")
    with pytest.raises(ValueError, match="meta tensor.*check_finite=False"):
        aug(image, None)


@pytest.mark.parametrize("preset", ["nnunet", "xdomain"])
def test_unbatched_volume_is_a_batch_of_one_returned_unbatched(preset):
    """(C, D, H, W) in, (C, D, H, W) out, like torchvision v2; the values are those of the same batch of one."""
    image, label = make_batch()
    aug = spineaug.Pipeline.from_preset(preset, patch_size=(8, 8, 8))
    one, one_label, params = aug(image[0], label[0], generator=torch.Generator().manual_seed(3), return_params=True)
    batched, batched_label = aug(image[:1], label[:1], generator=torch.Generator().manual_seed(3))
    assert one.shape == (image.shape[1], 8, 8, 8) and one_label.shape == (1, 8, 8, 8)
    assert one.dtype == image.dtype and one_label.dtype == label.dtype
    assert torch.equal(one, batched[0]) and torch.equal(one_label, batched_label[0])
    replay, replay_label = aug(image[0], label[0], params=params)  # replay with the B = 1 parameters
    assert torch.equal(replay, one) and torch.equal(replay_label, one_label)
    if preset == "nnunet":  # label-free presets take an image alone
        alone, none = aug(image[0], generator=torch.Generator().manual_seed(3))
        assert none is None and alone.shape == one.shape


def test_eval_mode_does_not_switch_augmentation_off():
    image, label = make_batch()
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Flip", "p": 1.0, "axes": [0]}]}).eval()
    out, _ = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, image.flip(2))


def test_timing_steps_clocks_each_step_of_each_call_and_changes_no_output():
    aug = Pipeline.from_preset("nnunet", seed=3)
    image = torch.rand(2, 1, 12, 12, 12, generator=torch.Generator().manual_seed(0))
    label = (image > 0.5).long()
    plain = aug(image, label, generator=torch.Generator().manual_seed(1))
    with timing_steps() as clock:
        clocked = aug(image, label, generator=torch.Generator().manual_seed(1))
        aug(image[0], label[0], generator=torch.Generator().manual_seed(2))  # unbatched: one call, recorded once
    aug(image, label, generator=torch.Generator().manual_seed(1))  # outside the block: not recorded
    assert torch.equal(plain[0], clocked[0]) and torch.equal(plain[1], clocked[1])
    assert len(clock.calls) == 2 and clock.device == torch.device("cpu")
    # nnunet: Spatial (#0) and Flip (#8) resampled once, then each other entry in order.
    for steps in clock.calls:
        assert [positions for positions, _ in steps] == [(0, 8), (1,), (2,), (3,), (4,), (5,), (6,), (7,)]
        assert all(seconds >= 0 for _, seconds in steps)
    none = Pipeline.from_config({"transforms": [{"name": "Gamma", "p": 1.0}]}, seed=0)
    with timing_steps("cpu") as clock:
        none(image, label)
    assert [p for p, _ in clock.calls[0]] == [(0,)]  # no geometric entry: no resampling step
