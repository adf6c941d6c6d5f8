"""Reading AugLab JSON configs (spineaug.compat)."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch

import spineaug
from spineaug.compat import auglab_to_config, from_auglab
from tests.conftest import make_batch

_REGION = {"in_seg": 0.0, "out_seg": 0.0, "mix_in_out": True}

# AugLab's default GPU config as CATALOG.md section 2 describes it (written from the description, not copied).
AUGLAB_GPU = {
    "FlipTransform": {"p": 0.5, "flip_axis": [0], "same_on_batch": False, "keepdim": True},
    "AffineTransform": {
        "p": 0.0,
        "degrees": 5,
        "translate": [0.1, 0.1, 0.1],
        "scale": [0.7, 1.4],
        "shear": [-5, 5, -5, 5, -5, 5],
        "resample": "bilinear",
    },
    "InverseTransform": {"p": 0.25, "retain_stats": True, "mix_prob": 0.0, **_REGION},
    "HistogramEqualizationTransform": {"p": 0.25, "retain_stats": True, "mix_prob": 0.6, **_REGION},
    "RedistributeSegTransform": {"p": 0.4, "in_seg": 0.25, "retain_stats": True},
    "ScharrTransform": {
        "p": 0.25,
        "kernel_type": "Scharr",
        "absolute": True,
        "retain_stats": True,
        "mix_prob": 0.5,
        **_REGION,
    },
    "UnsharpMaskTransform": {
        "p": 0.25,
        "sigma": 1.0,
        "unsharp_amount": 1.5,
        "mix_prob": 0.5,
        "retain_stats": False,
        "in_seg": 0.0,
        "out_seg": 0.0,
    },
    "RandomConvTransform": {"p": 0.2, "kernel_sizes": [3, 5, 7], "retain_stats": True, "mix_prob": 0.5, **_REGION},
    "ClampTransform": {"p": 0.0, "max_clamp_amount": 0.2, "retain_stats": True, **_REGION},
    "GaussianNoiseTransform": {"p": 0.1, "mean": 0.0, "std": 1.0, **_REGION},
    "GaussianBlurTransform": {"p": 0.2, "sigma": 1.0, "retain_stats": False, "mix_prob": 0.0, **_REGION},
    "BrightnessTransform": {"p": 0.15, "brightness_range": [0.75, 1.25], **_REGION},
    "GammaTransform": {"p": 0.3, "gamma_range": [0.7, 1.5], "retain_stats": True, **_REGION},
    "InvGammaTransform": {"p": 0.1, "gamma_range": [0.7, 1.5], "retain_stats": True, **_REGION},
    "ContrastTransform": {"p": 0.15, "contrast_range": [0.75, 1.25], "retain_stats": False, **_REGION},
    "FunctionTransform": {"p": 0.1, "retain_stats": True, "in_seg": 0.0, "out_seg": 0.0, "mix_in_out": False},
    "SimulateLowResTransform": {"p": 0.25, "scale": [0.5, 1.0], "same_on_batch": False},
    "AcqTransform": {"p": 0.2, "scale": [0.1, 1.0], "same_on_batch": False},
    "CropTransform": {"p": 0.25, "crop": [0.5, 1.0], "pos": [0.0, 1.0]},
    "BiasFieldTransform": {"p": 0.15, "coefficients": 0.2, "retain_stats": True, **_REGION},
    "ZscoreNormalizationTransform": {"p": 0.0},
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
    expected_gamma = {"name": "Gamma", "sampler": "uniform", "retain_stats": True, "gamma": [0.7, 1.5], "p": 0.3}
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
    for dropped in ("AffineTransform.p", "ClampTransform.p", "ZscoreNormalizationTransform.p"):
        assert dropped in text
    gamma = [m for m in messages if m.startswith("AugLab config: GammaTransform.")]
    assert [m.split(":")[1].strip() for m in gamma] == ["GammaTransform.mix_in_out"]  # the rest is honoured


def test_regions_and_gpu_block_and_spatial():
    source = {
        "GPU": {
            "GammaTransform": {"p": 1.0, "gamma_range": [0.5, 2.0], "in_seg": 0.5, "out_seg": 0.5, "mix_in_out": True}
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
    assert spatial["name"] == "Spatial" and spatial["p_scale"] == 0.2 and spatial["rotation_deg"] == [-30.0, 30.0]
    assert gamma["region"] == {"p_inside": 0.5, "p_outside": 0.5, "label_subset_p": 0.5}
    assert any("patch_center_dist_from_border" in m for m in messages)
    assert any(m.startswith("AugLab config: CPU") for m in messages)
    spineaug.Pipeline.from_config(config)


def test_reads_a_json_file(tmp_path):
    path = tmp_path / "auglab.json"
    path.write_text(json.dumps({"BrightnessTransform": {"p": 1.0, "brightness_range": [2.0, 2.0]}}))
    aug = from_auglab(path, seed=0)
    image, _ = make_batch(2)
    out, _ = aug(image)
    torch.testing.assert_close(out, 2 * image)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({"SharpenTransform": {"p": 0.1}}, "SharpenTransform"),
        ({"GammaTransform": {"p": 0.1, "gama_range": [0.7, 1.5]}}, "gama_range"),
        ({"GammaTransform": {"p": 1.5}}, "p"),
        ({"GammaTransform": {"p": 0.3, "gamma_range": [1.5, 0.7]}}, "gamma"),
        ({"GaussianNoiseTransform": {"p": 0.1, "std": -1.0}}, "sigma"),
        ({"ScharrTransform": {"p": 0.1, "absolute": False}}, "absolute"),
        ({"GPU": {}, "Extra": {}}, "Extra"),
        ({"GammaTransform": [0.3]}, "GammaTransform"),
    ],
)
def test_bad_keys_and_values_raise_config_errors_naming_them(source, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(spineaug.ConfigError, match=key):
            from_auglab(copy.deepcopy(source))
