"""Filter transforms (GaussianBlur, UnsharpMask, ScharrEdge, Laplacian, RandomConv): references, mechanics, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import spineaug
from spineaug.batch import Batch
from spineaug.transforms import ConfigError
from tests._exercise import exercise
from tests.conftest import make_batch

NAMES = ["GaussianBlur", "UnsharpMask", "ScharrEdge", "Laplacian", "RandomConv"]


def build(name: str, **kwargs) -> spineaug.RandomTransform:
    """The transform with its exercise settings (tests/_exercise.py), blending left out so its effect is large."""
    return spineaug.TRANSFORMS[name](**{"p": 1.0, **exercise(name, mix_prob=0.0), **kwargs})


def run(t, image, label=None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = t.sample_params(Batch(image, label), g)
    return t.apply(Batch(image, label), params), params


# ------------------------------------------------------------------------------------------------- RandomConv


def test_random_conv_uses_each_samples_own_kernel():
    x, _ = make_batch(3, (9, 10, 11))
    t = build("RandomConv", retain_stats=False, kernel_sizes=[1, 3, 5])
    out, params = run(t, x, seed=3)
    weight, sizes = params.values.weight, params.values.size
    for b in range(3):
        ref = ndimage.correlate(x[b, 0].double().numpy(), weight[b].double().numpy(), mode="reflect")
        np.testing.assert_allclose(out.image[b, 0].numpy(), ref, atol=1e-4)
        k = int(sizes[b])
        lo = (weight.shape[-1] - k) // 2
        inner = weight[b, lo : lo + k, lo : lo + k, lo : lo + k]
        assert weight[b].abs().sum() == pytest.approx(inner.abs().sum().item())


def test_random_conv_kernel_sizes_vary_and_weights_scale_with_size():
    t = build("RandomConv", kernel_sizes=[3, 7])
    params = t.sample_params(Batch(torch.zeros(256, 1, 2, 2, 2)), torch.Generator().manual_seed(0))
    sizes, weight = params.values.size, params.values.weight
    assert set(sizes.tolist()) == {3, 7}
    for k in (3, 7):
        w = weight[sizes == k]
        lo = (7 - k) // 2
        support = w[:, lo : lo + k, lo : lo + k, lo : lo + k]
        assert support.std().item() == pytest.approx(1 / k, rel=0.1)


def test_dc_preserving_random_conv_keeps_constant_images():
    x = torch.full((2, 1, 8, 8, 8), 3.5)
    t = build("RandomConv", preserve_dc=True, retain_stats=False)
    out, params = run(t, x)
    torch.testing.assert_close(params.values.weight.sum(dim=(1, 2, 3)), torch.ones(2))
    torch.testing.assert_close(out.image, x)


# --------------------------------------------------------------------------------------------------- mechanics


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_is_identity_and_label_untouched(name):
    x, lbl = make_batch(2)
    out, _ = run(build(name, p=0.0), x, lbl)
    assert out.image is x
    out, _ = run(build(name), x, lbl)
    assert out.label is lbl
    assert not torch.equal(out.image, x)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism_and_no_input_mutation(name):
    x, lbl = make_batch(2)
    before = x.clone()
    a, _ = run(build(name, mix_prob=0.5), x, lbl, seed=7)
    b, _ = run(build(name, mix_prob=0.5), x, lbl, seed=7)
    torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)
    torch.testing.assert_close(x, before, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["GaussianBlur", "UnsharpMask", "RandomConv"])
def test_per_sample_independence(name):
    x, _ = make_batch(1)
    x = x.expand(4, -1, -1, -1, -1).contiguous()
    out, _ = run(build(name, retain_stats=False), x, seed=1)
    assert not torch.allclose(out.image[0], out.image[1])


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_per_sample(name):
    x, _ = make_batch(3)
    t = build(name, mix_prob=0.5, retain_stats=True)
    out, params = run(t, x, seed=2)
    for b in range(3):
        single = t.apply(Batch(x[b : b + 1]), params.select(torch.tensor([b])))
        torch.testing.assert_close(single.image[0], out.image[b], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["constant", "huge", "negative"])
def test_finite_on_adversarial_inputs(name, kind):
    if kind == "constant":
        x = torch.full((2, 1, 6, 7, 8), -4.0)
    elif kind == "huge":
        x, _ = make_batch(2, (6, 7, 8))
        x = x * 1e30
    else:
        x, _ = make_batch(2, (6, 7, 8))
        x = x - 1e4
    out, _ = run(build(name, retain_stats=True), x)
    assert torch.isfinite(out.image).all()
    if kind == "constant":
        torch.testing.assert_close(out.image, x)


def test_unsharp_honours_retain_stats():
    x, _ = make_batch(2)
    out, _ = run(build("UnsharpMask", retain_stats=True), x)
    torch.testing.assert_close(out.image.mean(dim=(2, 3, 4)), x.mean(dim=(2, 3, 4)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        out.image.std(dim=(2, 3, 4), correction=0), x.std(dim=(2, 3, 4), correction=0), atol=1e-4, rtol=1e-4
    )


def test_pipeline_config_roundtrip():
    cfg = {"transforms": [{"name": n, "p": 0.5} for n in NAMES]}
    aug = spineaug.Pipeline.from_config(cfg, seed=0)
    again = spineaug.Pipeline.from_config(aug.config())
    x, lbl = make_batch(2)
    a = aug(x, lbl, generator=torch.Generator().manual_seed(5))
    b = again(x, lbl, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------- validation


# Values each family refuses for its own reasons; probabilities outside [0, 1], inverted ranges and unknown keys are
# the batteries over every transform in tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("GaussianBlur", {"sigma": [-1.0, 1.0]}, "sigma"),
        ("GaussianBlur", {"truncate": 0.0}, "truncate"),
        ("UnsharpMask", {"sigma": [-0.5, 0.5]}, "sigma"),
        ("ScharrEdge", {"magnitude": "l3"}, "magnitude"),
        ("RandomConv", {"kernel_sizes": [3, 4]}, "kernel_sizes"),
        ("RandomConv", {"kernel_sizes": [-3]}, "kernel_sizes"),
        ("RandomConv", {"kernel_sizes": []}, "kernel_sizes"),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_config_names_the_key(name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        spineaug.TRANSFORMS[name](**kwargs)


# ------------------------------------------------------------------------------------------------ ScharrEdge(normalize)


def test_scharr_unnormalized_matches_integer_kernels():
    """``normalize=False``: the edge map of AugLab's integer kernels (derivative (1, 0, -1), smoothing (3, 10, 3))."""
    x, _ = make_batch(2)
    t = build("ScharrEdge", normalize=False, retain_stats=False, mix_prob=0.0)
    out, _ = run(t, x)
    s, d = np.array([3.0, 10.0, 3.0]), np.array([1.0, 0.0, -1.0])
    kernels = [np.einsum("i,j,k->ijk", d, s, s), np.einsum("i,j,k->ijk", s, d, s), np.einsum("i,j,k->ijk", s, s, d)]
    for b in range(2):
        xb = x[b, 0].double().numpy()
        ref = sum(np.abs(ndimage.correlate(xb, k, mode="reflect")) for k in kernels)
        np.testing.assert_allclose(out.image[b, 0].numpy(), ref, rtol=1e-5, atol=1e-3)


def test_scharr_normalize_only_matters_when_mixing():
    x, _ = make_batch(4)
    plain = [run(build("ScharrEdge", normalize=n), x, seed=2)[0].image for n in (True, False)]
    torch.testing.assert_close(plain[0], plain[1], rtol=1e-4, atol=1e-4)  # retain_stats, no mixing: same output
    mixed = [run(build("ScharrEdge", normalize=n, mix_prob=1.0), x, seed=2)[0].image for n in (True, False)]
    edges = run(build("ScharrEdge"), x, seed=2)[0].image

    def corr(a, b):
        a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))

    # Integer gain: the blend is dominated by the edge map; normalised: by the original image.
    assert (corr(mixed[1], edges) > corr(mixed[0], edges)).all()
    assert corr(mixed[1], edges).mean() > 0.9
    assert corr(mixed[0], x).mean() > corr(mixed[1], x).mean()


def test_scharr_normalize_is_validated_and_round_trips():
    with pytest.raises(ConfigError, match="normalize"):
        spineaug.TRANSFORMS["ScharrEdge"](normalize="sometimes")
    t = spineaug.TRANSFORMS["ScharrEdge"](normalize=False)
    assert t.config()["normalize"] is False
    assert spineaug.build_transform(t.config()).normalize is False
