"""LowResolution, ThickSlice (image-only separable operators) and FovCrop (box mask on image and label)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spineaug
from spineaug.batch import Batch
from spineaug.functional import resolution as FR
from spineaug.transforms import ConfigError
from tests.conftest import make_batch


def run(t, image, label=None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = t.sample_params(Batch(image, label), g)
    return t.apply(Batch(image, label), params), params


def _torch_roundtrip(x: torch.Tensor, sizes, down: str, up: str) -> torch.Tensor:
    """Reference: F.interpolate down to ``sizes`` and back, on one sample (1, C, D, H, W)."""
    small = F.interpolate(x, size=sizes, mode=down)
    return F.interpolate(small, size=x.shape[2:], mode=up)


# ------------------------------------------------------------------------------------------------ LowResolution


def test_lowres_scale_one_is_identity():
    x, lbl = make_batch(2)
    for down in FR.DOWN_MODES:
        out, _ = run(spineaug.TRANSFORMS["LowResolution"](scale=(1.0, 1.0), down=down), x, lbl)
        torch.testing.assert_close(out.image, x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("down", FR.DOWN_MODES)
def test_lowres_reduces_high_frequency_energy_and_keeps_label(down):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 16, 16, 16, generator=g)
    _, lbl = make_batch(2, (16, 16, 16))
    out, _ = run(spineaug.TRANSFORMS["LowResolution"](scale=(0.4, 0.6), down=down), x, lbl)
    spec_in = torch.fft.fftn(x, dim=(2, 3, 4)).abs().square()
    spec_out = torch.fft.fftn(out.image, dim=(2, 3, 4)).abs().square()
    f = torch.fft.fftfreq(16).abs()
    high = (f[:, None, None] > 0.3) | (f[None, :, None] > 0.3) | (f[None, None, :] > 0.3)
    assert spec_out[..., high].sum() < 0.5 * spec_in[..., high].sum()
    assert out.label is lbl


def test_lowres_nnunet_parity_per_sample():
    x, _ = make_batch(3, (10, 12, 14))
    t = spineaug.TRANSFORMS["LowResolution"](scale=(0.5, 1.0), per_axis=False, down="nearest", up="linear")
    out, params = run(t, x, seed=4)
    scale = params.values.scale
    assert len(set(scale[:, 0].tolist())) == 3  # per-sample factors
    assert torch.equal(scale[:, 0], scale[:, 1]) and torch.equal(scale[:, 0], scale[:, 2])
    for b in range(3):
        sizes = [int(FR.target_size(scale[b, a : a + 1], n)) for a, n in enumerate(x.shape[2:])]
        ref = _torch_roundtrip(x[b : b + 1], sizes, "nearest-exact", "trilinear")
        torch.testing.assert_close(out.image[b : b + 1], ref, atol=1e-5, rtol=1e-5)


def test_lowres_axes_option_leaves_other_axes_alone():
    x, _ = make_batch(2, (8, 9, 10))
    t = spineaug.TRANSFORMS["LowResolution"](scale=(0.3, 0.5), axes=[2], per_axis=True, down="linear")
    out, params = run(t, x)
    assert (params.values.scale[:, :2] == 1).all()
    for b in range(2):
        m = int(FR.target_size(params.values.scale[b, 2:], 10))
        ref = _torch_roundtrip(x[b : b + 1], [8, 9, m], "trilinear", "trilinear")
        torch.testing.assert_close(out.image[b : b + 1], ref, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ ThickSlice


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thick_slice_averages_slabs_along_the_chosen_axis_only(axis):
    x, lbl = make_batch(2, (16, 16, 16))
    t = spineaug.TRANSFORMS["ThickSlice"](scale=(0.25, 0.25), axes=[axis], up="nearest")
    out, params = run(t, x, lbl)
    assert (params.values.axis == axis).all()
    dim = 2 + axis
    slabs = x.unflatten(dim, (4, 4)).mean(dim=dim + 1, keepdim=True)
    ref = slabs.expand_as(x.unflatten(dim, (4, 4))).flatten(dim, dim + 1)
    torch.testing.assert_close(out.image, ref, atol=1e-5, rtol=1e-5)
    assert out.label is lbl


def test_thick_slice_draws_one_axis_per_sample():
    x, _ = make_batch(12, (8, 8, 8))
    t = spineaug.TRANSFORMS["ThickSlice"](scale=(0.2, 0.5))
    out, params = run(t, x, seed=3)
    axis, scale = params.values.axis, params.values.scale
    assert set(axis.tolist()) == {0, 1, 2}
    assert ((scale < 1).sum(1) == 1).all()
    for b in range(12):
        a = int(axis[b])
        sizes = [8, 8, 8]
        sizes[a] = int(FR.target_size(scale[b, a : a + 1], 8))
        down = FR.down_matrix(torch.tensor([float(sizes[a])]), 8, "box")[0]
        up = FR.up_matrix(torch.tensor([float(sizes[a])]), 8, "linear")[0]
        ref = torch.movedim(torch.movedim(x[b, 0], a, -1) @ (up @ down).T, -1, a)
        torch.testing.assert_close(out.image[b, 0], ref, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ shared mechanics


@pytest.mark.parametrize("name", ["LowResolution", "ThickSlice", "FovCrop"])
def test_p_zero_identity_and_determinism(name):
    x, lbl = make_batch(2)
    out, _ = run(spineaug.TRANSFORMS[name](p=0.0), x, lbl)
    assert torch.equal(out.image, x) and torch.equal(out.label, lbl)
    a, _ = run(spineaug.TRANSFORMS[name](), x, lbl, seed=9)
    b, _ = run(spineaug.TRANSFORMS[name](), x, lbl, seed=9)
    assert torch.equal(a.image, b.image) and torch.equal(a.label, b.label)
    assert not torch.equal(a.image, x)


@pytest.mark.parametrize("name", ["LowResolution", "ThickSlice", "FovCrop"])
@pytest.mark.parametrize("scale", [0.0, 1e30, -1e4])
def test_finite_on_adversarial_inputs(name, scale):
    x, lbl = make_batch(2, (6, 7, 8))
    x = torch.full_like(x, 3.0) if scale == 0 else x * scale if scale > 1 else x + scale
    out, _ = run(spineaug.TRANSFORMS[name](), x, lbl)
    assert torch.isfinite(out.image).all()


# Values each family refuses for its own reasons; probabilities outside [0, 1], inverted ranges and unknown keys are
# the batteries over every transform in tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("LowResolution", {"scale": [0.0, 0.5]}, "scale"),
        ("LowResolution", {"scale": [0.5, 1.5]}, "scale"),
        ("LowResolution", {"axes": [3]}, "axes"),
        ("LowResolution", {"down": "cubic"}, "down"),
        ("ThickSlice", {"axes": []}, "axes"),
        ("ThickSlice", {"axes": [0, 0]}, "axes"),
        ("ThickSlice", {"profile": "nearest"}, "profile"),
        ("FovCrop", {"crop": [0.0, 0.5]}, "crop"),
        ("FovCrop", {"fill": "max"}, "fill"),
        ("FovCrop", {"label_fill": -1}, "label_fill"),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_config_names_the_key(name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        spineaug.TRANSFORMS[name](**kwargs)


# ------------------------------------------------------------------------------------------------ FovCrop


def _box(params, b: int, shape) -> torch.Tensor:
    m = torch.zeros(shape, dtype=torch.bool)
    (d0, h0, w0), (d1, h1, w1) = params.start[b].tolist(), params.stop[b].tolist()
    m[d0:d1, h0:h1, w0:w1] = True
    return m


def test_fov_crop_masks_outside_the_box_in_image_and_label_only():
    x, lbl = make_batch(4, (12, 14, 16))
    lbl = lbl + 1  # no background inside, so the label fill is visible
    t = spineaug.TRANSFORMS["FovCrop"](crop=(0.3, 0.7))
    out, params = run(t, x, lbl, seed=2)
    assert len({tuple(s) for s in params.start.tolist()}) > 1  # per-sample boxes
    for b in range(4):
        box = _box(params, b, (12, 14, 16))
        assert 0 < box.sum() < box.numel()
        assert torch.equal(out.image[b, 0][box], x[b, 0][box])
        assert torch.equal(out.label[b, 0][box], lbl[b, 0][box])
        assert (out.image[b, 0][~box] == x[b, 0].min()).all()
        assert (out.label[b, 0][~box] == 0).all()
    assert out.image.shape == x.shape and out.label.dtype == lbl.dtype


def test_fov_crop_fill_modes_and_label_fill():
    x, lbl = make_batch(2, (10, 10, 10))
    for fill, expected in (("mean", x.mean(dim=(2, 3, 4))), ("value", torch.full((2, 1), -7.0))):
        t = spineaug.TRANSFORMS["FovCrop"](crop=(0.5, 0.5), fill=fill, fill_value=-7.0, label_fill=9)
        out, params = run(t, x, lbl)
        for b in range(2):
            outside = ~_box(params, b, (10, 10, 10))
            torch.testing.assert_close(out.image[b, 0][outside], expected[b, 0].expand(int(outside.sum())))
            assert (out.label[b, 0][outside] == 9).all()


def test_fov_crop_axes_option_and_box_sizes():
    x, lbl = make_batch(64, (10, 20, 30))
    t = spineaug.TRANSFORMS["FovCrop"](crop=(0.5, 0.8), axes=[1])
    _, params = run(t, x, lbl)
    size = params.stop - params.start
    assert (params.start[:, [0, 2]] == 0).all() and (params.stop[:, [0, 2]] == torch.tensor([10, 30])).all()
    assert (size[:, 1] >= 10).all() and (size[:, 1] <= 16).all()
    assert (params.start[:, 1] >= 0).all() and (params.stop[:, 1] <= 20).all()


def test_fov_crop_works_without_label():
    x, _ = make_batch(2)
    out, _ = run(spineaug.TRANSFORMS["FovCrop"](crop=(0.5, 0.6)), x)
    assert out.label is None and not torch.equal(out.image, x)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thick_slice_linear_profile_point_samples_like_trilinear_interpolation(axis):
    """``profile="linear"`` (AugLab): linear down-sampling of one axis without slab integration, then linear up."""
    x, lbl = make_batch(3, (12, 13, 14))
    t = spineaug.TRANSFORMS["ThickSlice"](scale=(0.1, 0.9), axes=[axis], profile="linear", up="linear")
    out, params = run(t, x, lbl, seed=5)
    for b in range(3):
        sizes = list(x.shape[2:])
        sizes[axis] = int(FR.target_size(params.values.scale[b, axis : axis + 1], sizes[axis]))
        ref = _torch_roundtrip(x[b : b + 1], sizes, "trilinear", "trilinear")
        torch.testing.assert_close(out.image[b : b + 1], ref, atol=1e-5, rtol=1e-5)
    assert out.label is lbl
    box = spineaug.TRANSFORMS["ThickSlice"](scale=(0.1, 0.9), axes=[axis], profile="box", up="linear")
    assert not torch.allclose(run(box, x, lbl, seed=5)[0].image, out.image)
