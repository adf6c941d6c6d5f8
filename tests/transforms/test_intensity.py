"""Intensity transforms: exact results on small tensors, shared mechanics, validation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import spineaug
from spineaug.batch import Batch
from spineaug.functional import intensity as FI
from spineaug.transforms import ConfigError
from spineaug.transforms import intensity as TI
from tests._exercise import BARE, exercise
from tests.conftest import make_batch

# Every intensity transform of this module; each is built with its exercise settings (tests/_exercise.py) and the bare
# effect (no retain_stats, no blending, no range clamping), so that its effect is large and its draws wide.
NAMES = ("Inversion", "HistogramEqualization", "PercentileClamp", "GaussianNoise", "Brightness", "Contrast",
         "IntensityFunction", "BiasField", "ZScore", "Gamma", "InverseGamma")  # fmt: skip
# Transforms whose effect does not depend on a drawn value (so per-sample independence is moot).
PARAMETER_FREE = {"Inversion", "HistogramEqualization", "ZScore"}


def build(name: str, **kwargs) -> spineaug.RandomTransform:
    return spineaug.TRANSFORMS[name](**{"p": 1.0, **exercise(name, **BARE), **kwargs})


def run(t, image, label=None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = t.sample_params(Batch(image, label), g)
    return t.apply(Batch(image, label), params), params


def test_registry_contains_the_catalog_intensity_entries():
    for name in NAMES:
        assert name in spineaug.TRANSFORMS
        assert spineaug.TRANSFORMS[name].name == name


# --------------------------------------------------------------------------------------------------- exact results


def test_inversion_reflects_about_the_mean_with_retain_stats():
    x, _ = make_batch(3)
    out, _ = run(TI.RandomInversion(p=1.0), x)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    torch.testing.assert_close(out.image, 2 * mean - x, atol=1e-5, rtol=1e-5)


def test_inversion_subtracts_from_the_maximum_without_retain_stats():
    x, _ = make_batch(3)
    out, _ = run(TI.RandomInversion(p=1.0, retain_stats=False), x)
    top = x.flatten(1).amax(dim=1).view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(out.image, top - x)


def test_gamma_matches_the_hand_computed_power():
    x, _ = make_batch(3)
    t = TI.RandomGamma(gamma=(0.5, 2.0), retain_stats=False, p=1.0)
    out, params = run(t, x)
    gamma = params.values.gamma
    for b in range(3):
        lo, hi = x[b].min(), x[b].max()
        expected = ((x[b] - lo) / (hi - lo)) ** gamma[b] * (hi - lo) + lo
        torch.testing.assert_close(out.image[b], expected, atol=1e-5, rtol=1e-5)


def test_inverse_gamma_is_gamma_of_the_negated_image():
    x, _ = make_batch(2)
    t = TI.RandomInverseGamma(gamma=(0.5, 2.0), retain_stats=False, p=1.0)
    out, params = run(t, x)
    ref = TI.RandomGamma(gamma=(0.5, 2.0), retain_stats=False, p=1.0).apply(Batch(-x), params)
    torch.testing.assert_close(out.image, -ref.image)


def test_brightness_multiplies_each_sample_by_its_factor():
    x, _ = make_batch(4)
    out, params = run(TI.RandomBrightness(multiplier=(0.5, 2.0), p=1.0), x)
    torch.testing.assert_close(out.image, x * params.values.multiplier.view(-1, 1, 1, 1, 1))


def test_brightness_per_channel_draws_one_factor_per_channel():
    x = torch.rand(2, 3, 4, 4, 4) + 1
    out, params = run(TI.RandomBrightness(per_channel=True, p=1.0), x)
    m = params.values.multiplier
    assert m.shape == (2, 3)
    torch.testing.assert_close(out.image, x * m[..., None, None, None])


def test_brightness_keeps_exactly_the_samples_whose_product_would_overflow():
    """At the float32 edge, a sample is kept unchanged exactly when some voxel's product would be infinite (per
    sample, whatever channel overflows); the others are multiplied, bit for bit; a NaN sample stays as it was."""
    from spineaug.functional import intensity as FI

    top = torch.finfo(torch.float32).max
    f = torch.tensor([1.25, 1.25, 1.25, 0.5, 1.25])
    edge = torch.tensor(top, dtype=torch.float32) / f[0]  # the largest magnitude near which x * 1.25 overflows
    below, above = torch.nextafter(edge, torch.tensor(0.0)), torch.nextafter(edge, torch.tensor(float("inf")))
    x = torch.rand(5, 2, 3, 4, 5) * 100
    x[0, 1, 0, 0, 0] = -above  # a negative voxel past the edge, in the second channel
    x[1, 0, 2, 3, 4] = above
    x[2, 0, 1, 1, 1] = float("nan")
    x[3, 0, 0, 0, 0] = top  # halved: finite
    x[4, 1, 0, 1, 0] = -edge  # exactly the largest finite product
    x[4, 0, 0, 0, 1] = below
    direct = x * f.view(-1, 1, 1, 1, 1)
    overflows = [bool((~torch.isfinite(direct[i])).any()) for i in range(5)]
    y = FI.multiply(x, f)
    for i in range(5):
        want = x[i] if overflows[i] else direct[i]
        assert torch.equal(y[i].view(torch.int32), want.view(torch.int32)), i
    assert overflows == [True, True, True, False, False]  # the fixture reaches both sides of the edge
    out, _ = run(TI.RandomBrightness(multiplier=(1.25, 1.25), p=1.0), x[[0, 1, 4]])
    assert torch.isfinite(out.image).all()  # the transform path: no overflow reaches the output


@pytest.mark.parametrize("preserve_range", [False, True])
def test_contrast_stretches_about_the_mean(preserve_range):
    x, _ = make_batch(3)
    out, params = run(TI.RandomContrast(contrast=(0.3, 3.0), preserve_range=preserve_range, p=1.0), x)
    f = params.values.factor.view(-1, 1, 1, 1, 1)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    expected = (x - mean) * f + mean
    if preserve_range:
        lo = x.flatten(1).amin(1).view(-1, 1, 1, 1, 1)
        hi = x.flatten(1).amax(1).view(-1, 1, 1, 1, 1)
        expected = torch.maximum(torch.minimum(expected, hi), lo)
        assert (out.image >= lo - 1e-6).all() and (out.image <= hi + 1e-6).all()
    torch.testing.assert_close(out.image, expected, atol=1e-5, rtol=1e-5)


def test_zscore_gives_zero_mean_unit_std():
    x, _ = make_batch(3)
    out, _ = run(TI.RandomZScore(p=1.0), x * 7 - 3)
    mean, std = FI.mean_std(out.image)
    torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones_like(std), atol=1e-5, rtol=0)


def test_percentile_clamp_matches_torch_quantile():
    x, _ = make_batch(4)
    out, params = run(TI.RandomPercentileClamp(max_amount=0.3, retain_stats=False, p=1.0), x)
    for b in range(4):
        q = torch.stack([params.values.q_low[b], params.values.q_high[b]])
        lo, hi = torch.quantile(x[b].flatten(), q)
        torch.testing.assert_close(out.image[b], x[b].clamp(lo, hi))


def test_bias_field_transform_applies_exp_of_the_polynomial_above_the_minimum():
    x, _ = make_batch(2, (5, 6, 7))
    for signed in (False, True):
        t = TI.RandomBiasField(coefficients=0.5, retain_stats=False, signed=signed, p=1.0)
        out, params = run(t, x)
        gain = torch.exp(FI.polynomial_field(params.values.coefficients, (5, 6, 7), 3))[:, None]
        lo = x.flatten(1).amin(1).view(-1, 1, 1, 1, 1)
        expected = x * gain if signed else (x - lo) * gain + lo
        torch.testing.assert_close(out.image, expected, atol=1e-5, rtol=1e-5)


def test_intensity_function_applies_the_chosen_function_on_normalised_values():
    x, _ = make_batch(6)
    fns = {"log1p": torch.log1p, "sqrt": torch.sqrt, "sin": torch.sin, "exp": torch.exp, "sigmoid": torch.sigmoid}
    t = TI.RandomIntensityFunction(retain_stats=False, p=1.0)
    out, params = run(t, x, seed=5)
    which = params.values.function
    assert len(set(which.tolist())) > 1
    for b in range(6):
        f = fns[t.functions[which[b]]]
        lo, hi = x[b].min(), x[b].max()
        u = (x[b] - lo) / (hi - lo)
        v = (f(u) - f(torch.tensor(0.0))) / (f(torch.tensor(1.0)) - f(torch.tensor(0.0)))
        torch.testing.assert_close(out.image[b], v * (hi - lo) + lo, atol=1e-5, rtol=1e-5)


def test_gaussian_noise_adds_noise_of_the_drawn_std_and_replays():
    x = torch.zeros(3, 1, 16, 16, 16)
    t = TI.RandomGaussianNoise(sigma=(0.5, 2.0), p=1.0)
    out, params = run(t, x)
    std = out.image.flatten(1).std(dim=1)
    torch.testing.assert_close(std, params.values.sigma, rtol=0.08, atol=0)
    again = t.apply(Batch(x), params)
    torch.testing.assert_close(again.image, out.image, rtol=0, atol=0)


def test_rician_noise_stays_above_the_minimum():
    x, _ = make_batch(2)
    out, _ = run(TI.RandomGaussianNoise(sigma=(0.5, 1.0), rician=True, p=1.0), x)
    lo = x.flatten(1).amin(1).view(-1, 1, 1, 1, 1)
    assert (out.image >= lo - 1e-6).all()
    assert not torch.equal(out.image, x)


def test_zero_sigma_noise_is_the_identity():
    x, _ = make_batch(2)
    out, _ = run(TI.RandomGaussianNoise(sigma=(0.0, 0.0), p=1.0), x)
    torch.testing.assert_close(out.image, x)


# ------------------------------------------------------------------------------------------ histogram equalisation


def _reference_equalisation(v: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-sample loop reference of the step lookup (CATALOG.md 3.4)."""
    lo, hi = v.min(), v.max()
    k = torch.floor((v - lo) / ((hi - lo) / bins + 1e-10)).clamp(0, bins - 1).long()
    counts = torch.bincount(k.flatten(), minlength=bins).float()
    cum = counts.cumsum(0)
    lut = lo + (hi - lo) * (cum - cum[0]) / (v.numel() - cum[0] + 1e-10)
    return lut[k]


def test_histogram_equalisation_matches_a_per_sample_reference():
    x, _ = make_batch(3)
    out, _ = run(TI.RandomHistogramEqualization(bins=32, mix_prob=0.0, retain_stats=False, p=1.0), x)
    for b in range(3):
        torch.testing.assert_close(out.image[b], _reference_equalisation(x[b], 32), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ shared mechanics


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Gamma", {"retain_stats": True}),
        ("InverseGamma", {"retain_stats": True}),
        ("HistogramEqualization", {"retain_stats": True, "mix_prob": 1.0}),
        ("IntensityFunction", {"retain_stats": True}),
        ("BiasField", {"retain_stats": True}),
        ("PercentileClamp", {"retain_stats": True}),
        ("Inversion", {"retain_stats": True}),
    ],
)
def test_retain_stats_restores_mean_and_std(name, kwargs):
    x, _ = make_batch(4)
    out, _ = run(build(name, **kwargs), x)
    m0, s0 = FI.mean_std(x)
    m1, s1 = FI.mean_std(out.image)
    torch.testing.assert_close(m1, m0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s1, s0, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(out.image, x, atol=1e-3)


ADVERSARIAL = {
    "constant": torch.full((2, 1, 6, 6, 6), 3.0),
    "zero": torch.zeros(2, 1, 6, 6, 6),
    "huge": torch.randn(2, 1, 6, 6, 6, generator=torch.Generator().manual_seed(0)) * 1e18,
    "negative": -torch.rand(2, 1, 6, 6, 6, generator=torch.Generator().manual_seed(1)) * 1e6 - 1e6,
    "one voxel": torch.tensor([1.0, -2.0]).view(2, 1, 1, 1, 1),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.parametrize("retain_stats", [False, True])
def test_outputs_are_finite_on_adversarial_inputs(name, case, retain_stats):
    x = ADVERSARIAL[case]
    has_retain_stats = "retain_stats" in spineaug.TRANSFORMS[name].defaults()
    kwargs = {"retain_stats": True} if retain_stats and has_retain_stats else {}
    out, _ = run(build(name, **kwargs), x)
    assert torch.isfinite(out.image).all()
    assert out.image.dtype == x.dtype and out.image.shape == x.shape


@pytest.mark.parametrize("name", sorted(NAMES))
def test_labels_and_inputs_are_untouched(name):
    x, label = make_batch(3)
    x_copy, label_copy, version = x.clone(), label.clone(), x._version
    out, _ = run(build(name), x, label)
    assert out.label is label
    torch.testing.assert_close(label, label_copy, rtol=0, atol=0)
    torch.testing.assert_close(x, x_copy, rtol=0, atol=0)
    assert x._version == version


@pytest.mark.parametrize("name", sorted(set(NAMES) - PARAMETER_FREE))
def test_samples_draw_independent_parameters(name):
    x = make_batch(1)[0].expand(6, -1, -1, -1, -1).contiguous()
    out, _ = run(build(name), x)
    per_sample = out.image.flatten(1)
    assert not all(torch.allclose(per_sample[0], per_sample[i]) for i in range(1, 6))


@pytest.mark.parametrize("name", sorted(NAMES))
def test_same_seed_same_output_and_p0_is_identity(name):
    x, label = make_batch(3)
    a, _ = run(build(name), x, label, seed=7)
    b, _ = run(build(name), x, label, seed=7)
    torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)
    none, _ = run(build(name, p=0.0), x, label)
    torch.testing.assert_close(none.image, x, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_gate_fires_per_sample(name):
    x = make_batch(1)[0].expand(64, -1, -1, -1, -1).contiguous()
    out, params = run(build(name, p=0.5), x, seed=3)
    changed = ~torch.isclose(out.image, x).flatten(1).all(dim=1)
    assert torch.equal(changed, params.gate)
    assert 10 < int(params.gate.sum()) < 54


def test_region_restricts_the_effect_to_labelled_voxels():
    x, label = make_batch(2)
    t = TI.RandomBrightness(multiplier=(2.0, 2.0), region={"p_inside": 1.0}, p=1.0)
    out, _ = run(t, x, label)
    inside = label > 0
    torch.testing.assert_close(out.image[inside], 2 * x[inside])
    torch.testing.assert_close(out.image[~inside], x[~inside])


def test_transforms_run_inside_a_pipeline_with_replay():
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": n, "p": 0.7, **exercise(n, **BARE)} for n in NAMES]}, seed=3)
    x, label = make_batch(4)
    y, lab, params = aug(x, label, return_params=True)
    y2, _ = aug(x, label, params=params)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)
    assert torch.equal(lab, label)
    assert torch.isfinite(y).all()


# ------------------------------------------------------------------------------------------------------ validation


# Values each family refuses for its own reasons; probabilities outside [0, 1], inverted ranges and unknown keys are
# the batteries over every transform in tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("GaussianNoise", {"sigma": [-0.1, 0.1]}, "sigma"),
        ("Contrast", {"contrast": [0.0, 1.0]}, "contrast"),
        ("Contrast", {"sampler": "normal"}, "sampler"),
        ("HistogramEqualization", {"bins": 1}, "bins"),
        ("PercentileClamp", {"max_amount": 0.6}, "max_amount"),
        ("IntensityFunction", {"functions": ["tan"]}, "functions"),
        ("IntensityFunction", {"functions": []}, "functions"),
        ("IntensityFunction", {"functions": ["exp", "exp"]}, "functions"),
        ("BiasField", {"coefficients": -1.0}, "coefficients"),
        ("BiasField", {"order": 9}, "order"),
        ("ZScore", {"retain_stats": True}, "retain_stats"),
        ("Brightness", {"brightness_range": [0.7, 1.3]}, "brightness_range"),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_config_raises_config_error_naming_the_key(name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        spineaug.TRANSFORMS[name](**kwargs)
    with pytest.raises(ConfigError, match=key):
        spineaug.Pipeline.from_config({"transforms": [{"name": name, **kwargs}]})


def test_config_round_trip():
    for name in NAMES:
        t = build(name)
        again = spineaug.build_transform(t.config())
        assert again.config() == t.config()


def test_bgcontrast_sampler_splits_below_and_above_one():
    t = TI.RandomContrast(contrast=(0.5, 3.0), sampler="bgcontrast", p=1.0)
    x = torch.zeros(4000, 1, 1, 1, 1)
    f = t.sample_params(Batch(x), torch.Generator().manual_seed(0)).values.factor
    assert abs(float((f < 1).float().mean()) - 0.5) < 0.03
    assert f.min() >= 0.5 and f.max() <= 3.0
    assert math.isclose(float(f[f < 1].mean()), 0.75, abs_tol=0.02)


@given(
    seed=st.integers(0, 2**31 - 1),
    log_scale=st.floats(-6, 7),
    offset=st.sampled_from([0.0, 1e5, -1e5, 3e3]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    channels=st.integers(1, 3),
)
def test_retain_stats_keeps_mean_and_std_at_any_scale_and_offset(seed, log_scale, offset, dtype, channels):
    scale = 10.0**log_scale
    if dtype == torch.float32 and scale < 1e-5 * max(abs(offset), 1.0):
        scale = 1e-5 * max(abs(offset), 1.0)  # below float32 resolution at this offset the image is constant
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(2, channels, 5, 6, 7, generator=g, dtype=torch.float64) * scale + offset).to(dtype)
    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Gamma", "gamma": [0.5, 2.0], "retain_stats": True}]})
    out, _ = aug(x, generator=torch.Generator().manual_seed(seed))
    assert not torch.equal(out, x), "retain_stats fell back to the input: the spread was judged degenerate"
    m0, s0 = FI.mean_std(x.double())
    m1, s1 = FI.mean_std(out.double())
    # float32 outputs are rounded at their own magnitude (|offset| + spread), float64 ones far below the spread
    tol = (torch.finfo(dtype).eps * 64) * (m0.abs() + s0) + 1e-9 * s0
    assert ((m1 - m0).abs() <= tol).all() and ((s1 - s0).abs() <= tol + 1e-3 * s0).all()


@pytest.mark.parametrize("name", ["Gamma", "Brightness", "GaussianNoise"])
def test_float16_images_are_not_sent_back_by_an_overflowing_check(name):
    """The NaN/Inf check sums a float16 result in float32: a float16 sum of values ~100 would overflow and
    send every sample back unchanged."""
    x, _ = make_batch(2)
    half = (x * 100).half()
    out, _ = run(spineaug.build_transform({"name": name, "p": 1.0}), half)
    assert out.image.dtype == torch.float16 and torch.isfinite(out.image).all()
    assert not torch.equal(out.image, half)
