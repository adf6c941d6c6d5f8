"""Label-guided transforms: LabelIntensityRemap and LabelAppearance (their kernels: tests/functional/test_labels.py)."""

from __future__ import annotations

import pytest
import torch

import spineaug
from spineaug.batch import Batch
from spineaug.transforms import ConfigError
from tests.conftest import make_batch


def run(t, image, label=None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = t.sample_params(Batch(image, label), g)
    return t.apply(Batch(image, label), params), params


def blocks(b: int = 2, n: int = 16) -> torch.Tensor:
    """Label map of four octant-ish blocks with values 0..3 (large regions)."""
    lab = torch.zeros(b, 1, n, n, n, dtype=torch.long)
    h = n // 2
    lab[:, :, :h, :h] = 1
    lab[:, :, h:, :h] = 2
    lab[:, :, :h, h:] = 3
    return lab


# ------------------------------------------------------------------------------------------------ LabelIntensityRemap


def remap(**kwargs):
    return spineaug.TRANSFORMS["LabelIntensityRemap"](**{"p": 1.0, **kwargs})


def test_inside_mode_changes_only_labelled_voxels_and_never_the_label():
    x, lbl = make_batch(3, (12, 12, 12), classes=4)
    out, params = run(remap(p_inside=1.0, retain_stats=False, amplitude=(0.5, 1.0)), x, lbl)
    assert params.values.inside.all()
    assert out.label is lbl
    bg = lbl == 0
    torch.testing.assert_close(out.image[bg], x[bg], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.image[~bg], x[~bg])


def test_global_mode_is_an_intensity_curve():
    # Global mode maps equal intensities to equal outputs, whatever their label.
    g = torch.Generator().manual_seed(0)
    levels = torch.linspace(-1, 2, 6)
    x = levels[torch.randint(0, 6, (2, 1, 12, 12, 12), generator=g)]
    _, lbl = make_batch(2, (12, 12, 12), classes=4)
    out, _ = run(remap(p_inside=0.0, retain_stats=False), x, lbl, seed=3)
    assert not torch.allclose(out.image, x)
    for b in range(2):
        for v in levels:
            vals = out.image[b][x[b] == v]
            torch.testing.assert_close(vals, vals[:1].expand_as(vals), atol=1e-5, rtol=1e-5)


def test_sample_without_foreground_is_unchanged():
    x, lbl = make_batch(2, classes=4)
    lbl = lbl.clone()
    lbl[1] = 0
    lbl[0, 0, :4] = 7  # above max_label: counts as background
    out, _ = run(remap(retain_stats=True), x, lbl)
    torch.testing.assert_close(out.image[1], x[1], atol=1e-5, rtol=1e-5)  # retain_stats rounding only
    assert not torch.allclose(out.image[0], x[0])


def test_per_label_and_union_regions_differ_and_union_ignores_label_identity():
    x, lbl = make_batch(2, classes=4)
    per_label, _ = run(remap(p_inside=1.0, retain_stats=False), x, lbl, seed=1)
    union, _ = run(remap(p_inside=1.0, retain_stats=False, regions="union"), x, lbl, seed=1)
    union_bin, _ = run(
        remap(p_inside=1.0, retain_stats=False, regions="union"), x, (lbl > 0).long() * 3, seed=1
    )
    assert not torch.allclose(per_label.image, union.image)
    torch.testing.assert_close(union.image, union_bin.image)


def test_remap_retains_stats_and_stays_finite():
    x, lbl = make_batch(2, classes=4)
    out, _ = run(remap(), x, lbl)
    torch.testing.assert_close(out.image.mean(dim=(2, 3, 4)), x.mean(dim=(2, 3, 4)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        out.image.std(dim=(2, 3, 4), correction=0), x.std(dim=(2, 3, 4), correction=0), atol=1e-4, rtol=1e-4
    )


# ------------------------------------------------------------------------------------------------ LabelAppearance


def appearance(**kwargs):
    base = {"p": 1.0, "blur_sigma": (0.0, 0.0), "p_bias": 0.0, "retain_stats": False}
    return spineaug.TRANSFORMS["LabelAppearance"](**{**base, **kwargs})


def test_label_appearance_gives_each_region_the_drawn_statistics():
    lbl = blocks(3, 16)
    x, _ = make_batch(3, (16, 16, 16))
    out, params = run(appearance(mean=(-5.0, 5.0), std=(0.5, 2.0)), x, lbl, seed=4)
    mean, std = params.values.mean, params.values.std
    assert out.label is lbl
    for b in range(3):
        for v in range(4):
            region = out.image[b, 0][lbl[b, 0] == v]
            n = region.numel()
            assert abs(region.mean().item() - mean[b, v].item()) < 5 * std[b, v].item() / n**0.5
            assert region.std().item() == pytest.approx(std[b, v].item(), rel=0.1)
    assert not torch.allclose(mean[0], mean[1])  # per-sample draws


def test_label_appearance_full_texture_restandardises_the_original():
    lbl = blocks(2, 12)
    x, _ = make_batch(2, (12, 12, 12))
    out, params = run(appearance(texture=(1.0, 1.0)), x, lbl)
    for b in range(2):
        for v in range(4):
            m = lbl[b, 0] == v
            z = (x[b, 0][m] - x[b, 0][m].mean()) / x[b, 0][m].std(correction=0)
            ref = params.values.mean[b, v] + params.values.std[b, v] * z
            torch.testing.assert_close(out.image[b, 0][m], ref, atol=1e-4, rtol=1e-4)


def test_label_appearance_blur_and_bias_run_and_retain_stats():
    lbl = blocks(2, 12)
    x, _ = make_batch(2, (12, 12, 12))
    t = spineaug.TRANSFORMS["LabelAppearance"](p=1.0, p_bias=1.0, blur_sigma=(0.5, 1.5))
    out, _ = run(t, x, lbl)
    assert not torch.allclose(out.image, x, atol=1e-2)
    torch.testing.assert_close(out.image.mean(dim=(2, 3, 4)), x.mean(dim=(2, 3, 4)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.image.std(dim=(2, 3, 4)), x.std(dim=(2, 3, 4)), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ shared mechanics


@pytest.mark.parametrize("name", ["LabelIntensityRemap", "LabelAppearance"])
def test_p_zero_identity_determinism_and_no_mutation(name):
    x, lbl = make_batch(2, classes=4)
    before = x.clone()
    out, _ = run(spineaug.TRANSFORMS[name](p=0.0), x, lbl)
    assert torch.equal(out.image, x)
    a, _ = run(spineaug.TRANSFORMS[name](), x, lbl, seed=5)
    b, _ = run(spineaug.TRANSFORMS[name](), x, lbl, seed=5)
    assert torch.equal(a.image, b.image)
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", ["LabelIntensityRemap", "LabelAppearance"])
@pytest.mark.parametrize("kind", ["constant", "huge", "negative"])
def test_finite_on_adversarial_inputs(name, kind):
    x, lbl = make_batch(2, (6, 7, 8), classes=4)
    x = {"constant": torch.full_like(x, 2.0), "huge": x * 1e30, "negative": x - 1e4}[kind]
    out, _ = run(spineaug.TRANSFORMS[name](p=1.0), x, lbl)
    assert torch.isfinite(out.image).all()


@pytest.mark.parametrize("name", ["LabelIntensityRemap", "LabelAppearance"])
def test_missing_label_raises(name):
    x, _ = make_batch(2)
    t = spineaug.TRANSFORMS[name]()
    with pytest.raises(ValueError, match=name):
        t(Batch(x), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=name):
        spineaug.Pipeline(t, seed=0)(x)


# Values each family refuses for its own reasons; probabilities outside [0, 1], inverted ranges and unknown keys are
# the batteries over every transform in tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("LabelIntensityRemap", {"width": [-0.1, 0.2]}, "width"),
        ("LabelIntensityRemap", {"max_label": 0}, "max_label"),
        ("LabelIntensityRemap", {"regions": "all"}, "regions"),
        ("LabelAppearance", {"std": [-1.0, 1.0]}, "std"),
        ("LabelAppearance", {"texture": [0.0, 1.5]}, "texture"),
        ("LabelAppearance", {"blur_sigma": [-1.0, 0.0]}, "blur_sigma"),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_config_names_the_key(name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        spineaug.TRANSFORMS[name](**kwargs)


def test_pipeline_with_label_guided_entries():
    x, lbl = make_batch(2, classes=4)
    cfg = {"transforms": [{"name": "LabelIntensityRemap", "p": 1.0}, {"name": "LabelAppearance", "p": 0.5}]}
    img, out_lbl = spineaug.Pipeline.from_config(cfg, seed=0)(x, lbl)
    assert torch.equal(out_lbl, lbl) and torch.isfinite(img).all()


