"""Reading AugLab JSON configs (spineaug.integrations.auglab)."""

from __future__ import annotations

import copy
import json
import tarfile
import warnings
from pathlib import Path

import pytest
import torch

import spineaug
from spineaug.config import build_transform, preset_config
from spineaug.integrations.auglab import (
    AugLabWarning,
    NoEffectWarning,
    NotTranslatedWarning,
    auglab_to_config,
    from_auglab,
)
from tests.conftest import make_batch

_REGION = {"in_seg": 0.0, "out_seg": 0.0, "mix_in_out": True}

# AugLab's default GPU config as CATALOG.md section 2 describes it (written from the description, not copied); the
# real files of the snapshot are tested in test_auglab_snapshot_configs below.
AUGLAB_GPU = {
    "FlipTransform": {"probability": 0.5, "flip_axis": [0], "same_on_batch": False, "keepdim": True},
    "AffineTransform": {
        "probability": 0.0,
        "degrees": 5,
        "translate": [0.1, 0.1, 0.1],
        "scale": [0.7, 1.4],
        "shear": [-5, 5, -5, 5, -5, 5],
        "resample": "bilinear",
    },
    "InverseTransform": {"probability": 0.25, "retain_stats": True, "mix_prob": 0.0, **_REGION},
    "HistogramEqualizationTransform": {"probability": 0.25, "retain_stats": True, "mix_prob": 0.6, **_REGION},
    "RedistributeSegTransform": {"probability": 0.4, "in_seg": 0.25, "retain_stats": True},
    "ScharrTransform": {
        "probability": 0.25,
        "kernel_type": "Scharr",
        "absolute": True,
        "retain_stats": True,
        "mix_prob": 0.5,
        **_REGION,
    },
    "UnsharpMaskTransform": {
        "probability": 0.25,
        "sigma": 1.0,
        "unsharp_amount": 1.5,
        "mix_prob": 0.5,
        "retain_stats": False,
        "in_seg": 0.0,
        "out_seg": 0.0,
    },
    "RandomConvTransform": {
        "probability": 0.2,
        "kernel_sizes": [3, 5, 7],
        "retain_stats": True,
        "mix_prob": 0.5,
        **_REGION,
    },
    "ClampTransform": {"probability": 0.0, "max_clamp_amount": 0.2, "retain_stats": True, **_REGION},
    "GaussianNoiseTransform": {"probability": 0.1, "mean": 0.0, "std": 1.0, **_REGION},
    "GaussianBlurTransform": {
        "probability": 0.2,
        "sigma": 1.0,
        "retain_stats": False,
        "mix_prob": 0.0,
        **_REGION,
    },
    "BrightnessTransform": {"probability": 0.15, "brightness_range": [0.75, 1.25], **_REGION},
    "GammaTransform": {"probability": 0.3, "gamma_range": [0.7, 1.5], "retain_stats": True, **_REGION},
    "InvGammaTransform": {"probability": 0.1, "gamma_range": [0.7, 1.5], "retain_stats": True, **_REGION},
    "ContrastTransform": {
        "probability": 0.15,
        "contrast_range": [0.75, 1.25],
        "retain_stats": False,
        **_REGION,
    },
    "FunctionTransform": {
        "probability": 0.1,
        "retain_stats": True,
        "in_seg": 0.0,
        "out_seg": 0.0,
        "mix_in_out": False,
    },
    "SimulateLowResTransform": {"probability": 0.25, "scale": [0.5, 1.0], "same_on_batch": False},
    "AcqTransform": {"probability": 0.2, "scale": [0.1, 1.0], "same_on_batch": False},
    "CropTransform": {"probability": 0.25, "crop": [0.5, 1.0], "pos": [0.0, 1.0]},
    "BiasFieldTransform": {"probability": 0.15, "coefficients": 0.2, "retain_stats": True, **_REGION},
    "ZscoreNormalizationTransform": {"probability": 0.0},
}


def translate(source):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = auglab_to_config(source)
    return config, [str(w.message) for w in caught]


def test_default_gpu_config_maps_to_the_catalog_entries_in_auglab_order():
    config, _ = translate(AUGLAB_GPU)
    names = [e["name"] for e in config["transforms"]]
    assert names == [
        "Flip",
        "Inversion",
        "HistogramEqualization",
        "LabelIntensityRemap",
        "ScharrEdge",
        "UnsharpMask",
        "RandomConv",
        "GaussianNoise",
        "GaussianBlur",
        "Brightness",
        "Gamma",
        "InverseGamma",
        "Contrast",
        *["IntensityFunction"] * 5,
        "LowResolution",
        "ThickSlice",
        "FovCrop",
        "BiasField",
    ]
    by_name = {e["name"]: e for e in config["transforms"]}
    assert by_name["GaussianNoise"]["sigma"] == [0.0, 1.0] and by_name["GaussianNoise"]["p"] == 0.1
    expected_gamma = {
        "name": "Gamma",
        "sampler": "uniform",
        "retain_stats": True,
        "gamma": [0.7, 1.5],
        "p": 0.3,
    }
    assert by_name["Gamma"] == expected_gamma
    assert by_name["Contrast"]["preserve_range"] is False
    assert by_name["UnsharpMask"]["amount"] == [0.0, 1.5]
    assert by_name["HistogramEqualization"]["mix_prob"] == 0.6
    assert "region" not in by_name["Inversion"]
    fns = [e["functions"] for e in config["transforms"] if e["name"] == "IntensityFunction"]
    assert fns == [["log1p"], ["sqrt"], ["sin"], ["exp"], ["sigmoid"]]


def test_default_gpu_config_builds_and_runs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aug = from_auglab(AUGLAB_GPU, seed=0)
    image, label = make_batch(2)
    out, lab = aug(image, label)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert lab.dtype == label.dtype


def test_dead_keys_warn():
    _, messages = translate(AUGLAB_GPU)
    text = "\n".join(messages)
    assert "FlipTransform.same_on_batch" in text
    assert "SimulateLowResTransform.same_on_batch" in text
    assert "InverseTransform.mix_in_out" in text  # in_seg = out_seg = 0
    assert "FunctionTransform.mix_in_out" not in text  # false: nothing to warn about
    assert "UnsharpMaskTransform.retain_stats" in text  # never forwarded by AugLab's builder
    assert "GaussianBlurTransform.mix_prob" in text
    for dropped in (
        "AffineTransform.probability",
        "ClampTransform.probability",
        "ZscoreNormalizationTransform.probability",
    ):
        assert dropped in text
    gamma = [m for m in messages if m.startswith("AugLab config: GammaTransform.")]
    assert [m.split(":")[1].strip() for m in gamma] == ["GammaTransform.mix_in_out"]  # the rest is honoured


def test_regions_and_gpu_block_and_spatial():
    source = {
        "GPU": {
            "GammaTransform": {
                "probability": 1.0,
                "gamma_range": [0.5, 2.0],
                "in_seg": 0.5,
                "out_seg": 0.5,
                "mix_in_out": True,
            }
        },
        "nnUNetSpatialTransform": {
            "random_crop": False,
            "p_rotation": 0.2,
            "p_scaling": 0.2,
            "scaling": [0.7, 1.4],
            "p_elastic_deform": 0,
            "mode_seg": "nearest",
            "patch_center_dist_from_border": 80,
        },
        "CPU": {"anything": 1},
    }
    config, messages = translate(source)
    spatial, gamma = config["transforms"]
    assert (
        spatial["name"] == "Spatial"
        and spatial["p_scale"] == 0.2
        and spatial["rotation_deg"] == [-30.0, 30.0]
    )
    assert gamma["region"] == {"p_inside": 0.5, "p_outside": 0.5, "label_subset_p": 0.5}
    assert any("patch_center_dist_from_border" in m for m in messages)
    assert any(m.startswith("AugLab config: CPU") for m in messages)
    spineaug.Pipeline.from_config(config)


def test_reads_a_json_file(tmp_path):
    path = tmp_path / "auglab.json"
    path.write_text(json.dumps({"BrightnessTransform": {"probability": 1.0, "brightness_range": [2.0, 2.0]}}))
    aug = from_auglab(path, seed=0)
    image, _ = make_batch(2)
    out, _ = aug(image)
    torch.testing.assert_close(out, 2 * image)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({"SharpenTransform": {"probability": 0.1}}, "SharpenTransform"),
        ({"GammaTransform": {"probability": 0.1, "gama_range": [0.7, 1.5]}}, "gama_range"),
        ({"GammaTransform": {"probability": 1.5}}, "GammaTransform.probability"),
        ({"GammaTransform": {"probability": 0.3, "retain_stats": "false"}}, "retain_stats"),
        ({"ScharrTransform": {"probability": 0.1, "kernel_type": "Sobel"}}, "kernel_type"),
        ({"GammaTransform": {"probability": 0.3, "gamma_range": [1.5, 0.7]}}, "gamma"),
        ({"GaussianNoiseTransform": {"probability": 0.1, "std": -1.0}}, "sigma"),
        ({"ScharrTransform": {"probability": 0.1, "absolute": False}}, "absolute"),
        ({"GPU": {}, "Extra": {}}, "Extra"),
        ({"GammaTransform": [0.3]}, "GammaTransform"),
    ],
)
def test_bad_keys_and_values_raise_config_errors_naming_them(source, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(spineaug.ConfigError, match=key):
            from_auglab(copy.deepcopy(source))


def test_probability_defaults_to_zero_and_p_is_not_read():
    """AugLab's builder reads ``probability`` with default 0: a module without it (or with only ``p``) never fires."""
    config, messages = translate(
        {"GammaTransform": {"gamma_range": [0.7, 1.5]}, "BrightnessTransform": {"p": 1.0}}
    )
    assert config["transforms"] == []
    text = "\n".join(messages)
    assert "GammaTransform.probability: is absent" in text
    assert "BrightnessTransform.p: AugLab's builder reads 'probability'" in text


@pytest.mark.parametrize("value", ["false", "true", "False", ""])
def test_string_booleans_are_errors_not_true(value):
    for key, name in (
        ("GammaTransform", "retain_stats"),
        ("InverseTransform", "mix_in_out"),
        ("ScharrTransform", "absolute"),
    ):
        with pytest.raises(
            spineaug.ConfigError, match=f"{key}.{name}: expected true or false, got the string"
        ):
            auglab_to_config({key: {"probability": 0.5, name: value}})


def test_builder_defaults_for_absent_keys():
    """Absent keys take AugLab's builder defaults (not spineaug's): e.g. retain_stats false, mix_prob 0."""
    config, _ = translate(
        {
            "InverseTransform": {"probability": 1.0},
            "ScharrTransform": {"probability": 1.0},
            "UnsharpMaskTransform": {"probability": 1.0},
            "BiasFieldTransform": {"probability": 1.0},
        }
    )
    inv, scharr, unsharp, bias = config["transforms"]
    assert (inv["retain_stats"], inv["mix_prob"]) == (False, 0.0)
    assert (scharr["retain_stats"], scharr["mix_prob"]) == (True, 0.0)  # the Scharr block's default is true
    assert (unsharp["retain_stats"], unsharp["mix_prob"], unsharp["amount"]) == (False, 0.0, [0.0, 1.5])
    assert (bias["coefficients"], bias["retain_stats"]) == (0.5, False)


def test_contrast_with_retain_stats_is_a_no_op_in_auglab():
    config, messages = translate({"ContrastTransform": {"probability": 0.5, "retain_stats": True}})
    assert config["transforms"] == []
    assert any("ContrastTransform.retain_stats: true restores" in m for m in messages)


def test_kernel_type_picks_the_kernel():
    config, _ = translate(
        {"ScharrTransform": {"probability": 0.5, "kernel_type": "Laplace", "retain_stats": True}}
    )
    assert [e["name"] for e in config["transforms"]] == ["Laplacian"]


# ------------------------------------------------------------------------------ the snapshot's real config files

SNAPSHOT = Path(__file__).resolve().parents[2].parent / "shared/third_party/auglab-1ee096a.tar.gz"
needs_snapshot = pytest.mark.skipif(
    not SNAPSHOT.is_file(),
    reason=f"AugLab snapshot not found at {SNAPSHOT} (the shared third_party folder is absent)",
)

# Per file: the keys whose NoEffectWarning is expected, each checked against AugLab's code (commit 1ee096a):
# auglab/transforms/gpu/transforms.py (AugTransformsGPU._build_transforms), auglab/transforms/gpu/base.py (the
# container passes same_on_batch=True to kornia, which sets it on every module) and
# auglab/trainers/nnUNetTrainerDAExt.py (nnUNetTrainerDAExtGPU.get_training_transforms).
_MIX_IN_OUT_DEAD = [  # mix_in_out true with in_seg = out_seg = 0: the region mode is always "all"
    "InverseTransform", "HistogramEqualizationTransform", "ScharrTransform", "UnsharpMaskTransform",
    "RandomConvTransform", "GaussianNoiseTransform", "GaussianBlurTransform", "BrightnessTransform",
    "GammaTransform", "InvGammaTransform", "ContrastTransform", "BiasFieldTransform",
]  # fmt: skip
_HYBRID_DEAD = {
    "FlipTransform.probability",  # probability 0
    "AffineTransform.probability",  # probability 0
    "UnsharpMaskTransform.retain_stats",  # the builder does not pass it
    "GaussianBlurTransform.retain_stats",  # the builder does not pass it
    "SimulateLowResTransform.same_on_batch",  # overridden by the container
    "SimulateLowResTransform.crop",  # the builder does not pass it
    "AcqTransform.same_on_batch",  # overridden by the container
    "AcqTransform.crop",  # the builder does not pass it
}
EXPECTED_NO_EFFECT = {
    "transform_params_gpu.json": {
        "nnUNetSpatialTransform.patch_center_dist_from_border",  # used only with random_crop = true
        "nnUNetSpatialTransform.bg_style_seg_sampling",  # the trainer hard-codes False (and mode_seg 'nearest')
        "FlipTransform.same_on_batch",  # overridden by the container
        "FlipTransform.keepdim",  # no effect on 5-D input
        "AffineTransform.probability",  # probability 0
        "UnsharpMaskTransform.retain_stats",  # the builder does not pass it
        "ClampTransform.probability",  # probability 0
        "GaussianBlurTransform.retain_stats",  # the builder does not pass it
        "GaussianBlurTransform.mix_prob",  # the builder does not pass it
        "SimulateLowResTransform.same_on_batch",  # overridden by the container
        "AcqTransform.same_on_batch",  # overridden by the container
        "CropTransform.same_on_batch",  # not read (the builder reads AcqTransform's), and overridden anyway
        "ZscoreNormalizationTransform.probability",  # probability 0
        *(f"{key}.mix_in_out" for key in _MIX_IN_OUT_DEAD),
    },
    "transform_params_hybrid.json": _HYBRID_DEAD,
    "transform_params_hybrid_TAGE.json": _HYBRID_DEAD | {"ZscoreNormalizationTransform.probability"},
    "transform_params.json": set(),
}
# The CPU (data-loader) pipeline is not translated, and says so.
EXPECTED_NOT_TRANSLATED = {
    "transform_params_gpu.json": set(),
    "transform_params_hybrid.json": {"CPU"},
    "transform_params_hybrid_TAGE.json": {"CPU"},
    "transform_params.json": {"(top level)"},
}


def _snapshot_configs() -> dict[str, dict]:
    with tarfile.open(SNAPSHOT) as tar:
        return {
            Path(m.name).name: json.load(tar.extractfile(m))
            for m in tar.getmembers()
            if m.isfile() and "/auglab/configs/" in m.name and m.name.endswith(".json")
        }


def _where(message: str) -> str:
    return message.split(":")[1].strip()  # "AugLab config: <where>: <why>"


@needs_snapshot
def test_snapshot_holds_the_expected_config_files():
    assert set(_snapshot_configs()) == set(EXPECTED_NO_EFFECT) | {"data.json"}


@needs_snapshot
@pytest.mark.parametrize("name", sorted(EXPECTED_NO_EFFECT))
def test_auglab_snapshot_configs(name):
    """Each config file loads, builds, and warns exactly about the keys that have no effect in AugLab."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = auglab_to_config(_snapshot_configs()[name])
    no_effect = {_where(str(w.message)) for w in caught if issubclass(w.category, NoEffectWarning)}
    not_translated = {_where(str(w.message)) for w in caught if issubclass(w.category, NotTranslatedWarning)}
    assert all(issubclass(w.category, AugLabWarning) for w in caught)
    assert no_effect == EXPECTED_NO_EFFECT[name]
    assert not_translated == EXPECTED_NOT_TRANSLATED[name]
    spineaug.Pipeline.from_config(config)


@needs_snapshot
def test_dataset_list_is_not_an_augmentation_config():
    with pytest.raises(spineaug.ConfigError, match="unknown module key"):
        auglab_to_config(_snapshot_configs()["data.json"])


@needs_snapshot
def test_paper_gpu_config_equals_the_xdomain_preset_entry_by_entry():
    """from_auglab(transform_params_gpu.json) is the xdomain preset: same entries, order, and every value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugLabWarning)
        ours = auglab_to_config(_snapshot_configs()["transform_params_gpu.json"])["transforms"]
    preset = preset_config("xdomain")["transforms"]
    assert [e["name"] for e in ours] == [e["name"] for e in preset]
    for i, (mine, theirs) in enumerate(zip(ours, preset)):
        assert build_transform(mine).config() == build_transform(theirs).config(), (
            f"entry {i} ({mine['name']})"
        )
