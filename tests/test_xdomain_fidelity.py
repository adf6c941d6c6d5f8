"""``xdomain`` equals the paper's AugLab GPU configuration: every probability, range and the order of application.

The reference is the AugLab snapshot that goes with the paper (``../shared/third_party/auglab-1ee096a.tar.gz``,
GPL-3.0). Its real ``auglab/configs/transform_params_gpu.json`` is read straight from the tarball (nothing is
extracted into the repository, nothing of AugLab is copied here); without the snapshot the module is skipped.

Where a spineaug setting has no counterpart in the JSON (an AugLab behaviour rather than a number: one remap region
for all labels, integer Scharr kernels, zero fill...) it is checked against the behaviour that CATALOG.md documents
for AugLab's code, so a change to the preset that alters what a network sees fails here.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

import spineaug

SNAPSHOT = Path(__file__).resolve().parents[1].parent / "shared/third_party/auglab-1ee096a.tar.gz"
GPU_JSON = "auglab/configs/transform_params_gpu.json"
BUILDER = "auglab/transforms/gpu/transforms.py"

pytestmark = pytest.mark.skipif(
    not SNAPSHOT.is_file(), reason=f"AugLab snapshot not found at {SNAPSHOT} (the shared third_party folder is absent)"
)

# Order of application, as AugLab applies its GPU entries. It comes from the code, not from the JSON key order:
# ``AugTransformsGPU._build_transforms`` in ``auglab/transforms/gpu/transforms.py`` appends one module per JSON block
# in this fixed order (FunctionTransform expands to five modules: log1p, sqrt, sin, exp, sigmoid) and the kornia
# container runs them in list order. Before all of them, in the data loader, nnU-Net's SpatialTransform runs with
# the JSON block ``nnUNetSpatialTransform`` (``nnUNetTrainerDAExtGPU.get_training_transforms`` in
# ``auglab/trainers/nnUNetTrainerDAExt.py``).
AUGLAB_GPU_ORDER = [
    "FlipTransform",
    "AffineTransform",
    "InverseTransform",
    "HistogramEqualizationTransform",
    "RedistributeSegTransform",
    "ScharrTransform",
    "UnsharpMaskTransform",
    "RandomConvTransform",
    "ClampTransform",
    "GaussianNoiseTransform",
    "GaussianBlurTransform",
    "BrightnessTransform",
    "GammaTransform",
    "InvGammaTransform",
    "ContrastTransform",
    "FunctionTransform",
    "SimulateLowResTransform",
    "AcqTransform",
    "CropTransform",
    "BiasFieldTransform",
    "ZscoreNormalizationTransform",
]
AUGLAB_FUNCTIONS = ["log1p", "sqrt", "sin", "exp", "sigmoid"]  # the builder's func_list, in order

# AugLab JSON block -> spineaug registry name (modules with p = 0 are left out of the preset).
SPINEAUG_NAME = {
    "nnUNetSpatialTransform": "Spatial",
    "FlipTransform": "Flip",
    "AffineTransform": "Affine",
    "InverseTransform": "Inversion",
    "HistogramEqualizationTransform": "HistogramEqualization",
    "RedistributeSegTransform": "LabelIntensityRemap",
    "ScharrTransform": "ScharrEdge",
    "UnsharpMaskTransform": "UnsharpMask",
    "RandomConvTransform": "RandomConv",
    "ClampTransform": "PercentileClamp",
    "GaussianNoiseTransform": "GaussianNoise",
    "GaussianBlurTransform": "GaussianBlur",
    "BrightnessTransform": "Brightness",
    "GammaTransform": "Gamma",
    "InvGammaTransform": "InverseGamma",
    "ContrastTransform": "Contrast",
    "FunctionTransform": "IntensityFunction",
    "SimulateLowResTransform": "LowResolution",
    "AcqTransform": "ThickSlice",
    "CropTransform": "FovCrop",
    "BiasFieldTransform": "BiasField",
    "ZscoreNormalizationTransform": "ZScore",
}

NNUNET_ROTATION_3D = (-30.0, 30.0)  # nnU-Net's rotation_for_DA for 3-D patches (configure_rotation_dummyDA_...)


def _read(member_suffix: str) -> str:
    with tarfile.open(SNAPSHOT) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(member_suffix):
                return tar.extractfile(member).read().decode()
    raise AssertionError(f"{member_suffix} not found in {SNAPSHOT}")


@pytest.fixture(scope="module")
def auglab() -> dict[str, dict[str, Any]]:
    config = json.loads(_read(GPU_JSON))
    return config.get("GPU", config)


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    """The xdomain entries with every default filled in (what the built transforms actually use)."""
    return spineaug.Pipeline.from_preset("xdomain").config()["transforms"]


def _by_name(entries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["name"] == name]


def _one(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = _by_name(entries, name)
    assert len(found) == 1, f"xdomain should hold exactly one {name} entry, found {len(found)}"
    return found[0]


def _pair(value) -> list[float]:
    return [float(v) for v in value]


def test_every_json_block_is_known(auglab):
    assert set(auglab) == set(SPINEAUG_NAME), "the snapshot's GPU JSON gained or lost a block: update xdomain"


def test_order_list_matches_the_builder_code():
    """The order above is the order in which AugLab's builder reads the JSON blocks."""
    source = _read(BUILDER)
    builder = source[source.index("def _build_transforms") :]
    read = re.findall(r"transform_params\.get\(\s*['\"](\w+)['\"]", builder)
    assert list(dict.fromkeys(read)) == AUGLAB_GPU_ORDER


def test_application_order(auglab, entries):
    expected = ["Spatial"]
    for key in AUGLAB_GPU_ORDER:
        if auglab[key].get("probability", 0) == 0:
            continue  # AugLab's default for a missing probability is 0 as well
        expected += [SPINEAUG_NAME[key]] * (len(AUGLAB_FUNCTIONS) if key == "FunctionTransform" else 1)
    assert [e["name"] for e in entries] == expected
    functions = [e["functions"] for e in _by_name(entries, "IntensityFunction")]
    assert functions == [[f] for f in AUGLAB_FUNCTIONS]


def test_modules_with_zero_probability_are_left_out(auglab, entries):
    names = {e["name"] for e in entries}
    for key, block in auglab.items():
        if key != "nnUNetSpatialTransform" and block.get("probability", 0) == 0:
            assert SPINEAUG_NAME[key] not in names, key


def test_probabilities(auglab, entries):
    for key in AUGLAB_GPU_ORDER:
        p = auglab[key].get("probability", 0)
        for entry in _by_name(entries, SPINEAUG_NAME[key]):
            assert entry["p"] == pytest.approx(p), key


def test_label_regions_off_as_in_auglab(auglab, entries):
    """Every block has in_seg = out_seg = 0 (or none): AugLab applies the transform everywhere; so does xdomain."""
    for key, block in auglab.items():
        if key == "RedistributeSegTransform":
            continue  # there, in_seg is the inside-only mode (checked below), not a region option
        assert block.get("in_seg", 0) == 0 and block.get("out_seg", 0) == 0, key
    for entry in entries:
        assert entry.get("region") is None, entry["name"]


def test_spatial_is_nnunets_with_the_trainers_settings(auglab, entries):
    block, e = auglab["nnUNetSpatialTransform"], _one(entries, "Spatial")
    assert e["p"] == 1.0 and e["patch_size"] is None
    assert e["p_rotation"] == block["p_rotation"]
    assert _pair(e["rotation_deg"]) == list(NNUNET_ROTATION_3D)
    assert e["p_scale"] == block["p_scaling"]
    assert _pair(e["scale"]) == _pair(block["scaling"])
    assert e["per_axis_scale"] is (block["p_synchronize_scaling_across_axes"] != 1)
    assert e["p_elastic"] == block["p_elastic_deform"]
    assert block["random_crop"] is False and e["p_foreground"] == 0.0  # centre crop, no foreground bias
    assert (e["pad_mode"], e["pad_value"], e["label_pad"]) == ("constant", 0.0, 0)  # nnU-Net pads the image with 0


def test_flip(auglab, entries):
    e = _one(entries, "Flip")
    assert e["axes"] == auglab["FlipTransform"]["flip_axis"]


def test_inversion_and_histogram_equalization(auglab, entries):
    for key in ("InverseTransform", "HistogramEqualizationTransform"):
        block, e = auglab[key], _one(entries, SPINEAUG_NAME[key])
        assert e["retain_stats"] is block["retain_stats"], key
        assert e["mix_prob"] == block["mix_prob"], key
    hist = _one(entries, "HistogramEqualization")
    assert hist["bins"] == 256 and hist["interpolate"] is False  # AugLab: 256 bins, step lookup


def test_label_intensity_remap(auglab, entries):
    block, e = auglab["RedistributeSegTransform"], _one(entries, "LabelIntensityRemap")
    assert e["p_inside"] == block["in_seg"]
    assert e["retain_stats"] is block["retain_stats"]
    assert e["regions"] == "union"  # AugLab-GPU with nnU-Net label maps: all labels form one region
    assert _pair(e["width"]) == [0.0, 0.2] and _pair(e["amplitude"]) == [-1.0, 1.0] and e["ring_radius"] == 3
    assert e["mix_prob"] == 0.0


def test_scharr_edge(auglab, entries):
    block, e = auglab["ScharrTransform"], _one(entries, "ScharrEdge")
    assert block["kernel_type"] == "Scharr"
    assert e["magnitude"] == ("l1" if block["absolute"] else None)
    assert e["retain_stats"] is block["retain_stats"] and e["mix_prob"] == block["mix_prob"]
    assert e["normalize"] is False  # AugLab's integer kernels: the mixed result is almost a pure edge map


def test_unsharp_mask_and_blur(auglab, entries):
    block, e = auglab["UnsharpMaskTransform"], _one(entries, "UnsharpMask")
    assert _pair(e["sigma"]) == [0.0, block["sigma"]] and e["per_axis"] is True
    assert _pair(e["amount"]) == [0.0, block["unsharp_amount"]]
    assert e["mix_prob"] == block["mix_prob"]
    assert e["retain_stats"] is False  # the builder does not forward retain_stats (and the JSON says false)
    block, e = auglab["GaussianBlurTransform"], _one(entries, "GaussianBlur")
    assert _pair(e["sigma"]) == [0.0, block["sigma"]] and e["per_axis"] is True
    assert e["mix_prob"] == 0.0 and e["retain_stats"] is False  # not forwarded by the builder either


def test_random_conv(auglab, entries):
    block, e = auglab["RandomConvTransform"], _one(entries, "RandomConv")
    assert e["kernel_sizes"] == block["kernel_sizes"]
    assert e["retain_stats"] is block["retain_stats"] and e["mix_prob"] == block["mix_prob"]
    assert e["preserve_dc"] is False


def test_noise_brightness_contrast(auglab, entries):
    block, e = auglab["GaussianNoiseTransform"], _one(entries, "GaussianNoise")
    assert _pair(e["sigma"]) == [0.0, block["std"]] and e["mean"] == block["mean"] and e["rician"] is False
    block, e = auglab["BrightnessTransform"], _one(entries, "Brightness")
    assert _pair(e["multiplier"]) == _pair(block["brightness_range"]) and e["sampler"] == "uniform"
    block, e = auglab["ContrastTransform"], _one(entries, "Contrast")
    assert _pair(e["contrast"]) == _pair(block["contrast_range"]) and e["sampler"] == "uniform"
    assert e["preserve_range"] is False and block["retain_stats"] is False  # AugLab does not clip


def test_gammas(auglab, entries):
    for key in ("GammaTransform", "InvGammaTransform"):
        block, e = auglab[key], _one(entries, SPINEAUG_NAME[key])
        assert _pair(e["gamma"]) == _pair(block["gamma_range"]), key
        assert e["retain_stats"] is block["retain_stats"] and e["sampler"] == "uniform", key


def test_intensity_functions(auglab, entries):
    block = auglab["FunctionTransform"]
    for e in _by_name(entries, "IntensityFunction"):
        assert e["retain_stats"] is block["retain_stats"]


def test_low_resolution_and_thick_slice(auglab, entries):
    block, e = auglab["SimulateLowResTransform"], _one(entries, "LowResolution")
    assert _pair(e["scale"]) == _pair(block["scale"])
    assert e["per_axis"] is True and list(e["axes"]) == [0, 1, 2]  # one factor per axis
    assert (e["down"], e["up"]) == ("linear", "linear")  # trilinear down and up, no anti-aliasing
    block, e = auglab["AcqTransform"], _one(entries, "ThickSlice")
    assert _pair(e["scale"]) == _pair(block["scale"]) and list(e["axes"]) == [0, 1, 2]
    assert (e["profile"], e["up"]) == ("linear", "linear")  # trilinear point sampling, no slab average


def test_fov_crop(auglab, entries):
    block, e = auglab["CropTransform"], _one(entries, "FovCrop")
    assert _pair(e["crop"]) == _pair(block["crop"]) and _pair(e["pos"]) == _pair(block["pos"])
    assert list(e["axes"]) == [0, 1, 2]
    assert (e["fill"], e["fill_value"], e["label_fill"]) == ("value", 0.0, 0)  # AugLab writes zeros


def test_bias_field(auglab, entries):
    block, e = auglab["BiasFieldTransform"], _one(entries, "BiasField")
    assert e["coefficients"] == block["coefficients"] and e["retain_stats"] is block["retain_stats"]
    assert e["order"] == 3 and e["invert"] is False  # AugLab's defaults (not set by the builder)
    assert e["signed"] is True  # AugLab multiplies the (signed, z-scored) intensities
