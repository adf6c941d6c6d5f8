"""Label-driven domain generalisation: LabelSynthesis (SynthSeg) and ClassLocationScale (SLAug)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import spineaug
from spineaug.batch import Batch
from spineaug.functional import synthesis as FS
from spineaug.validation import ConfigError
from tests.conftest import make_batch


def _synth(**kwargs):
    return spineaug.TRANSFORMS["LabelSynthesis"](**kwargs)


def _cls(**kwargs):
    return spineaug.TRANSFORMS["ClassLocationScale"](**kwargs)


# ------------------------------------------------------------------------------------------------- properties


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 8), h=st.integers(1, 8), w=st.integers(1, 8))
def test_class_location_scale_stays_in_the_input_range(seed, d, h, w):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(3, 1, d, h, w, generator=g) * 4 + 1
    label = torch.randint(0, 4, (3, 1, d, h, w), generator=g)
    out = _cls(p_global=0.5)(Batch(image, label), generator=g)
    lo, hi = image.amin(dim=(2, 3, 4), keepdim=True), image.amax(dim=(2, 3, 4), keepdim=True)
    assert bool((out.image >= lo - 1e-4).all() and (out.image <= hi + 1e-4).all())
    assert torch.equal(out.label, label)


# ------------------------------------------------------------------------------------------------ LabelSynthesis


def test_synthesis_is_constant_per_label_and_ignores_the_image_with_one_cluster():
    image, label = make_batch(b=3, shape=(12, 13, 14), seed=4)
    other = torch.randn_like(image) * 5 + 2
    t = _synth(std=(0.0, 0.0), clusters=(1, 1), retain_stats=False)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(0))
    out = t.apply(Batch(image, label), params).image
    assert torch.equal(out, t.apply(Batch(other, label), params).image), "depends on the label map only"
    noisy = _synth(clusters=(1, 1), retain_stats=False)
    noisy_params = noisy.sample_params(Batch(image, label), torch.Generator().manual_seed(0))
    assert torch.equal(noisy.apply(Batch(image, label), noisy_params).image,
                       noisy.apply(Batch(other, label), noisy_params).image), "with noise too"
    mean = params.values.mean[..., 0]  # (B, L)
    for b in range(3):
        expected = mean[b][label[b, 0]]
        torch.testing.assert_close(out[b, 0], expected, atol=1e-5, rtol=0)


def test_synthesis_is_constant_per_sub_label_without_noise():
    image, label = make_batch(b=2, shape=(14, 15, 16), seed=5)
    t = _synth(std=(0.0, 0.0), clusters=(3, 3), retain_stats=False)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(1))
    out = t.apply(Batch(image, label), params).image
    sub = FS.intensity_clusters(image, label, 4, params.values.clusters)
    expected = params.values.mean[torch.arange(2).view(2, 1, 1, 1), label[:, 0], sub[:, 0]]
    torch.testing.assert_close(out[:, 0], expected, atol=1e-5, rtol=0)
    assert out[0].unique().numel() == 12  # 4 labels x 3 sub-labels


def test_synthesis_region_statistics_are_the_drawn_gaussians():
    label = torch.zeros(1, 1, 40, 40, 40, dtype=torch.long)
    label[..., 20:, :, :] = 1
    label[..., :20, 20:, :] = 2
    image = torch.randn(1, 1, 40, 40, 40)
    t = _synth(clusters=(1, 1), retain_stats=False)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(2))
    out = t.apply(Batch(image, label), params).image
    for lab in range(3):
        values = out[label == lab]
        mu, sd = float(params.values.mean[0, lab, 0]), float(params.values.std[0, lab, 0])
        assert abs(float(values.mean()) - mu) < 0.05 * sd + 1e-3
        assert abs(float(values.std()) - sd) < 0.05 * sd + 1e-3


def test_synthesis_defaults_are_the_papers():
    d = spineaug.TRANSFORMS["LabelSynthesis"].defaults()
    assert d["mean"] == (25.0, 225.0) and d["std"] == (5.0, 25.0) and d["p"] == 1.0 and d["retain_stats"]


def test_synthesis_draws_differ_per_sample_and_seeds_reproduce():
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=6)
    t = _synth()
    a = t(Batch(image, label), generator=torch.Generator().manual_seed(7)).image
    b = t(Batch(image, label), generator=torch.Generator().manual_seed(7)).image
    c = t(Batch(image, label), generator=torch.Generator().manual_seed(8)).image
    assert torch.equal(a, b) and not torch.allclose(a, c)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(7)).values
    assert all(not torch.equal(params.mean[0], params.mean[i]) for i in range(1, 4))
    assert params.seed.unique().numel() == 4
    torch.testing.assert_close(a.mean(dim=(2, 3, 4)), image.mean(dim=(2, 3, 4)), atol=1e-4, rtol=1e-4)  # retain_stats


def test_synthesis_needs_a_label_and_rejects_bad_cluster_ranges():
    image, _ = make_batch(b=1, shape=(6, 6, 6))
    with pytest.raises(ValueError, match="LabelSynthesis needs a label map"):
        _synth()(Batch(image, None), generator=torch.Generator())
    for bad in ([3, 1], [0, 2], [1, 17]):
        with pytest.raises(ConfigError, match="clusters"):
            spineaug.Pipeline.from_config({"transforms": [{"name": "LabelSynthesis", "clusters": bad}]})


# ------------------------------------------------------------------------------------------------ ClassLocationScale


def _unit_batch(b: int = 3, seed: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch whose samples span exactly [0, 1], so the normalised image is the image itself."""
    image, label = make_batch(b=b, shape=(14, 15, 16), seed=seed)
    lo = image.amin(dim=(2, 3, 4), keepdim=True)
    hi = image.amax(dim=(2, 3, 4), keepdim=True)
    return (image - lo) / (hi - lo), label


def test_each_class_gets_exactly_its_affine_map():
    image, label = _unit_batch()
    t = _cls(background_threshold=-1.0)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(3))
    out = t.apply(Batch(image, label), params).image
    v = params.values
    u = image.double()
    hist, _ = FS.label_histogram(image, label, 4)
    q_lo, q_hi = FS.label_quantile(hist, 0.2)[:, 0], FS.label_quantile(hist, 0.8)[:, 0]
    for b in range(3):
        for lab in range(4):
            inside = label[b, 0] == lab
            a = float(v.scale[b, lab])
            loc = min(max(float(v.location[b, lab]), -float(q_lo[b, lab])), 1.0 - float(q_hi[b, lab]))
            expected = (a * u[b, 0][inside] + loc).clamp(0, 1)
            torch.testing.assert_close(out[b, 0][inside].double(), expected, atol=1e-5, rtol=0)
    assert bool(((v.scale >= 0.9) & (v.scale <= 1.1)).all())


def test_class_location_scale_maps_back_to_the_input_range_and_keeps_dark_voxels():
    image, label = make_batch(b=2, shape=(12, 13, 14), seed=10)
    image = image * 7 - 3
    t = _cls()
    out = t(Batch(image, label), generator=torch.Generator().manual_seed(4)).image
    lo, hi = image.amin(dim=(2, 3, 4), keepdim=True), image.amax(dim=(2, 3, 4), keepdim=True)
    assert bool((out >= lo - 1e-4).all() and (out <= hi + 1e-4).all())
    dark = (image - lo) / (hi - lo) <= 0.01
    assert bool(dark.any())
    torch.testing.assert_close(out[dark], image[dark], atol=1e-5, rtol=0)


def test_global_variant_shares_one_map_across_classes():
    image, label = _unit_batch(b=2, seed=11)
    t = _cls(p_global=1.0, location_std=0.0)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(5))
    assert bool(params.values.global_.all())
    assert bool((params.values.scale == params.values.scale[:, :1]).all())
    out = t.apply(Batch(image, label), params).image
    for b in range(2):
        a = float(params.values.scale[b, 0])
        torch.testing.assert_close(out[b], (a * image[b]).clamp(0, 1), atol=1e-5, rtol=0)


def test_class_location_scale_draws_differ_per_sample_and_seeds_reproduce():
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=12)
    t = _cls()
    a = t(Batch(image, label), generator=torch.Generator().manual_seed(7)).image
    b = t(Batch(image, label), generator=torch.Generator().manual_seed(7)).image
    c = t(Batch(image, label), generator=torch.Generator().manual_seed(8)).image
    assert torch.equal(a, b) and not torch.allclose(a, c)
    v = t.sample_params(Batch(image, label), torch.Generator().manual_seed(7)).values
    assert v.location.unique().numel() == v.location.numel()


def test_class_location_scale_defaults_are_slaugs():
    d = spineaug.TRANSFORMS["ClassLocationScale"].defaults()
    assert (d["scale_std"], d["scale"], d["location_std"]) == (0.1, (0.9, 1.1), 0.5)
    assert (d["clamp_quantile"], d["background_threshold"], d["p"]) == (0.2, 0.01, 1.0)


def test_class_location_scale_gradient_is_the_class_scale():
    image, label = _unit_batch(b=1, seed=13)
    t = _cls(background_threshold=-1.0)
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(6))
    params = dataclasses.replace(params, values=dataclasses.replace(params.values, location=torch.zeros(1, 4)))
    leaf = image.clone().requires_grad_(True)
    out = t.apply(Batch(leaf, label), params).image
    out.sum().backward()
    inside = (out > 0) & (out < 1) & (image > 0) & (image < 1)  # unclipped and not the min/max voxels
    expected = params.values.scale[0][label[0, 0]].expand_as(image[0])
    torch.testing.assert_close(leaf.grad[inside], expected.unsqueeze(0)[inside], atol=1e-4, rtol=1e-4)
