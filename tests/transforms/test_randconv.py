"""Random-convolution domain-generalisation transforms (GIN, IPA, ProgressiveRandConv): what each method must do."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import spineaug
from spineaug.batch import Batch
from spineaug.functional import filters as FF
from spineaug.functional import randconv as FR
from spineaug.validation import ConfigError
from tests.conftest import make_batch

NAMES = ["GIN", "IPA", "ProgressiveRandConv"]


def build(name: str, **kwargs) -> spineaug.transforms.RandomTransform:
    return spineaug.build_transform({"name": name, "p": 1.0, **kwargs})


def _draw(t, image, label=None, seed=0):
    return t.sample_params(Batch(image, label), torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------- GIN


def test_gin_keeps_each_samples_frobenius_norm():
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=2)
    image = torch.cat([image, 2 * image + 1], dim=1)  # two channels: the norm is over channels and voxels
    out = build("GIN")(Batch(image, label), generator=torch.Generator().manual_seed(0)).image
    norms = torch.linalg.vector_norm(out.flatten(1), dim=1)
    torch.testing.assert_close(norms, torch.linalg.vector_norm(image.flatten(1), dim=1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, image, atol=1e-2)


def test_gin_alpha_zero_returns_the_input():
    image, label = make_batch(b=3, shape=(9, 10, 11), seed=1)
    out = build("GIN", alpha=[0.0, 0.0])(Batch(image, label), generator=torch.Generator().manual_seed(0)).image
    torch.testing.assert_close(out, image, rtol=1e-5, atol=1e-6)


def test_gin_alpha_one_is_the_renormalised_network_output():
    image, label = make_batch(b=2, shape=(8, 9, 10), seed=4)
    t = build("GIN", alpha=[1.0, 1.0])
    params = _draw(t, image, label)
    v = params.values
    raw = FR.gin_network(image, v.weight, v.bias, v.size, 2, 0.01)
    ratio = torch.linalg.vector_norm(image.flatten(1), dim=1) / torch.linalg.vector_norm(raw.flatten(1), dim=1)
    expected = raw * ratio.view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(t.apply(Batch(image, label), params).image, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------- IPA


def test_ipa_blends_two_gin_views_through_the_map():
    image, label = make_batch(b=3, shape=(10, 11, 12), seed=6)
    t = build("IPA")
    params = _draw(t, image, label)
    v = params.values
    a = FR.gin(image, v.view_a.weight, v.view_a.bias, v.view_a.size, v.view_a.alpha, 2, 0.01)
    b = FR.gin(image, v.view_b.weight, v.view_b.bias, v.view_b.size, v.view_b.alpha, 2, 0.01)
    m = FR.blend_map(v.control, (10, 11, 12))
    out = t.apply(Batch(image, label), params).image
    torch.testing.assert_close(out, m * a + (1 - m) * b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, a, atol=1e-3) and not torch.allclose(out, b, atol=1e-3)


def test_ipa_without_blend_gives_the_plain_gin_view():
    image, label = make_batch(b=4, shape=(8, 9, 10), seed=7)
    t = build("IPA", p_blend=0.0)
    params = _draw(t, image, label)
    assert not params.values.blend.any()
    a = params.values.view_a
    expected = FR.gin(image, a.weight, a.bias, a.size, a.alpha, 2, 0.01)
    torch.testing.assert_close(t.apply(Batch(image, label), params).image, expected, rtol=1e-5, atol=1e-6)


def test_ipa_forced_blends_every_sample():
    forced = spineaug.TRANSFORMS["IPA"].forced({"name": "IPA", "p": 0.3, "p_blend": 0.6667})
    assert forced["p"] == 1.0 and forced["p_blend"] == 1.0


# ------------------------------------------------------------------------------------------ ProgressiveRandConv


def test_one_repetition_is_one_conv_with_that_kernel_then_standardise_affine_tanh():
    image, label = make_batch(b=3, shape=(9, 10, 11), seed=8)
    t = build("ProgressiveRandConv", max_repeats=1, retain_stats=False)
    params = _draw(t, image, label)
    v = params.values
    assert v.repeats.eq(1).all()
    z = FF.random_conv(image, v.weight)
    mean, std = z.mean(dim=(2, 3, 4), keepdim=True), z.std(dim=(2, 3, 4), keepdim=True, correction=0)
    expected = torch.tanh(v.gamma.view(3, 1, 1, 1, 1) * (z - mean) / torch.sqrt(std**2 + FR.STANDARDIZE_EPS)
                          + v.beta.view(3, 1, 1, 1, 1))
    torch.testing.assert_close(t.apply(Batch(image, label), params).image, expected, rtol=1e-5, atol=1e-5)


def test_the_same_block_is_applied_repeats_times():
    image, label = make_batch(b=4, shape=(8, 9, 10), seed=9)
    t = build("ProgressiveRandConv", retain_stats=False)
    params = _draw(t, image, label, seed=3)
    v = params.values
    out = t.apply(Batch(image, label), params).image
    for b in range(4):
        y = image[b : b + 1]
        for _ in range(int(v.repeats[b])):
            y = FR.progressive_conv(y, v.weight[b : b + 1], torch.ones(1, dtype=torch.long), v.gamma[b : b + 1],
                                    v.beta[b : b + 1], 1)
        torch.testing.assert_close(out[b : b + 1], y, rtol=1e-4, atol=1e-5)


def test_repeats_span_one_to_max_and_kernels_are_smoothed_gaussians():
    image = torch.zeros(400, 1, 2, 2, 2)
    v = _draw(build("ProgressiveRandConv"), image).values
    assert int(v.repeats.min()) == 1 and int(v.repeats.max()) == 10
    assert v.weight.shape == (400, 3, 3, 3)
    # the Gaussian envelope: on average the centre tap outweighs a corner tap
    assert float(v.weight[:, 1, 1, 1].abs().mean()) > float(v.weight[:, 0, 0, 0].abs().mean())
    assert abs(float(v.gamma.std()) - 0.5) < 0.08 and abs(float(v.beta.std()) - 0.5) < 0.08


def test_progressive_randconv_keeps_stats_by_default():
    image, label = make_batch(b=3, shape=(10, 11, 12), seed=10)
    out = build("ProgressiveRandConv")(Batch(image, label), generator=torch.Generator().manual_seed(0)).image
    torch.testing.assert_close(out.mean(dim=(2, 3, 4)), image.mean(dim=(2, 3, 4)), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.std(dim=(2, 3, 4)), image.std(dim=(2, 3, 4)), rtol=1e-4, atol=1e-4)


# -------------------------------------------------------------------------------------------------- all three


@pytest.mark.parametrize("name", NAMES)
def test_per_sample_draws_differ_and_seeds_reproduce(name):
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=11)
    image = image[:1].expand(4, -1, -1, -1, -1)  # identical samples: only the draws can make them differ
    t = build(name)
    out = t(Batch(image, label), generator=torch.Generator().manual_seed(1)).image
    assert all(not torch.allclose(out[0], out[i], atol=1e-3) for i in range(1, 4))
    again = t(Batch(image, label), generator=torch.Generator().manual_seed(1)).image
    assert torch.equal(out, again)
    other = t(Batch(image, label), generator=torch.Generator().manual_seed(2)).image
    assert not torch.allclose(out, other, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_params_replay_and_labels_are_untouched(name):
    image, label = make_batch(b=3, shape=(9, 10, 11), seed=12)
    t = build(name)
    params = _draw(t, image, label, seed=4)
    first = t(Batch(image, label), params=params)
    second = t(Batch(image, label), params=params)
    assert torch.equal(first.image, second.image) and torch.equal(first.label, label)
    for f in dataclasses.fields(params.values):
        value = getattr(params.values, f.name)
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cpu" and value.shape[0] == 3, f.name


@pytest.mark.parametrize("name", NAMES)
def test_float64_and_float16_inputs_keep_their_dtype(name):
    image, label = make_batch(b=2, shape=(8, 9, 10), seed=13)
    for dtype in (torch.float64, torch.float16):
        out = build(name)(Batch(image.to(dtype), label), generator=torch.Generator().manual_seed(0)).image
        assert out.dtype == dtype and torch.isfinite(out).all()


# Values each family refuses for its own reasons; probabilities outside [0, 1], inverted ranges and unknown keys are
# the batteries over every transform in tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    "name, kwargs, key",
    [
        ("GIN", {"layers": 1}, "layers"),
        ("GIN", {"kernel_sizes": [2]}, "kernel_sizes"),
        ("GIN", {"hidden_channels": 0}, "hidden_channels"),
        ("GIN", {"negative_slope": -0.1}, "negative_slope"),
        ("GIN", {"alpha": [0.0, 1.5]}, "alpha"),
        ("IPA", {"control_intervals": 0}, "control_intervals"),
        ("IPA", {"epsilon": -0.3}, "epsilon"),
        ("ProgressiveRandConv", {"kernel_size": 4}, "kernel_size"),
        ("ProgressiveRandConv", {"max_repeats": 0}, "max_repeats"),
        ("ProgressiveRandConv", {"smoothing_sigma": [0.0, 1.0]}, "smoothing_sigma"),
        ("ProgressiveRandConv", {"gamma_std": -1.0}, "gamma_std"),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_values_are_rejected_naming_the_key(name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        spineaug.Pipeline.from_config({"transforms": [{"name": name, **kwargs}]})


def test_presets_use_the_xdomain_geometry_and_the_published_defaults():
    front = spineaug.Pipeline.from_preset("xdomain").config()["transforms"][:2]
    for preset, name, p in (("gin-ipa", "IPA", 1.0), ("progressive-randconv", "ProgressiveRandConv", 0.5)):
        entries = spineaug.Pipeline.from_preset(preset).config()["transforms"]
        assert entries[:2] == front, preset
        assert [e["name"] for e in entries[2:]] == [name]
        defaults = spineaug.TRANSFORMS[name].defaults()
        own = {k: v for k, v in entries[2].items() if k not in ("name", "p", "p_blend")}
        assert own == {k: spineaug.TRANSFORMS[name]().config()[k] for k in own}, preset
        assert entries[2]["p"] == p and set(own) <= set(defaults)
