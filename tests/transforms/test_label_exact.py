"""Labels of any integer value come out of every geometric resampling exactly, and label padding fits the dtype."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spineaug
from spineaug.functional import spatial as FS
from spineaug.transforms import _resample as R
from spineaug.validation import ConfigError
from tests.conftest import make_batch

ROTATE = {"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [-40, 40], "p_scale": 0.0, "p_elastic": 0.0}
SCALE = {"name": "Spatial", "p_rotation": 0.0, "p_scale": 1.0, "scale": [0.7, 1.4], "p_elastic": 0.0}
DEFORM = {"name": "Spatial", "p_rotation": 0.0, "p_scale": 0.0, "p_elastic": 1.0,
          "elastic_magnitude": [1.0, 3.0], "elastic_spacing": 5}  # fmt: skip
AFFINE = {"name": "Affine", "degrees": [-30, 30], "shear_deg": [-20, 20], "p": 1.0}
ALL = {**ROTATE, "p_scale": 1.0, "scale": [0.7, 1.4], "p_elastic": 1.0, "elastic_magnitude": [1.0, 3.0],
       "elastic_spacing": 5, "patch_size": [10, 12, 12]}  # fmt: skip
MOVES = {"rotated": [ROTATE], "scaled": [SCALE], "deformed": [DEFORM], "affine": [AFFINE], "all": [ALL, AFFINE]}

# Values a float32 round trip changes (2**24 + 1 -> 2**24; int32 max -> int32 min), per integer dtype.
HUGE = {
    torch.int32: [2**24 + 1, 2**24 + 3, 2**31 - 2, 2**31 - 1],
    torch.int64: [2**24 + 1, 2**31 - 1, 2**53 + 1, 2**63 - 1],
    torch.int16: [-(2**15), 2**15 - 1, 12345],
    torch.int8: [-128, 127, -7],
    torch.uint8: [1, 200, 255],
}


def _relabel(label: torch.Tensor, values: list[int], dtype: torch.dtype) -> torch.Tensor:
    """Label ``k`` of a small label map becomes ``values[k - 1]`` (0 stays 0)."""
    lut = torch.tensor([0, *values], dtype=dtype)
    return lut[label.clamp_max(len(values))]


@pytest.mark.parametrize("move", sorted(MOVES))
@pytest.mark.parametrize("dtype", sorted(HUGE, key=str))
def test_huge_label_values_resample_exactly(move, dtype):
    """Same draw on a small label map and on its relabelled copy: the outputs relabel exactly to each other."""
    image, small = make_batch(3, (12, 14, 14), classes=5)
    values = HUGE[dtype]
    big = _relabel(small, values, dtype)
    aug = spineaug.Pipeline.from_config({"transforms": MOVES[move]})
    _, ref, params = aug(image, small, generator=torch.Generator().manual_seed(1), return_params=True)
    _, out = aug(image, big, params=params)
    assert out.dtype == dtype
    assert not torch.equal(ref, small[..., : ref.shape[2], : ref.shape[3], : ref.shape[4]])  # it really moved
    torch.testing.assert_close(out, _relabel(ref, values, dtype), rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["nearest", "onehot"])
def test_int32_max_and_2_pow_24_plus_1_survive_rotation(mode):
    image, small = make_batch(2, (10, 12, 12), classes=3)
    big = _relabel(small, [2**24 + 1, 2**31 - 1], torch.int32)
    aug = spineaug.Pipeline.from_config({"transforms": [dict(ROTATE, label_interpolation=mode)]})
    _, out = aug(image, big, generator=torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0, 2**24 + 1, 2**31 - 1}


def test_nearest_read_matches_grid_sample_nearest_on_small_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 6, (2, 1, 9, 10, 11), generator=g)
    grid = torch.rand(2, 7, 8, 9, 3, generator=g) * 2.6 - 1.3  # partly outside the input
    for pad in (0, 3, 9):
        torch.testing.assert_close(R.read_labels(y, grid, pad_value=pad), FS.warp_labels(y, grid, pad_value=pad))


@given(seed=st.integers(0, 2**31), pad=st.integers(-(2**31), 2**31 - 1), offset=st.integers(-(2**31), 2**31 - 8))
@settings(max_examples=25, deadline=None)
def test_nearest_read_copies_values_or_pad(seed, pad, offset):
    g = torch.Generator().manual_seed(seed)
    y = (torch.randint(0, 7, (2, 1, 5, 6, 7), generator=g) + offset).int()
    grid = torch.rand(2, 4, 5, 6, 3, generator=g) * 2.4 - 1.2
    out = R.read_labels(y, grid, pad_value=pad)
    small = R.read_labels((y.long() - offset), grid, pad_value=pad - offset)
    assert out.dtype == torch.int32
    torch.testing.assert_close(out.long(), small + offset, rtol=0, atol=0)


def _onehot_reference(y: torch.Tensor, grid: torch.Tensor, pad: int) -> torch.Tensor:
    """All indicators at once, padding counted as its own label, argmax (ties to the smaller value)."""
    classes = torch.unique(torch.cat([y.flatten(), torch.tensor([pad])]))
    hot = torch.cat([(y == c).float() for c in classes], dim=1)
    w = torch.nn.functional.grid_sample(hot, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    w[:, classes.tolist().index(pad)] += 1 - w.sum(1)
    return classes[w.argmax(1, keepdim=True)]


@pytest.mark.parametrize("pad", [0, 2, 7])
def test_onehot_read_is_linear_onehot_argmax(pad):
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (2, 1, 8, 9, 10), generator=g)
    grid = torch.rand(2, 6, 7, 8, 3, generator=g) * 2.4 - 1.2
    torch.testing.assert_close(R.read_labels(y, grid, pad_value=pad, mode="onehot"), _onehot_reference(y, grid, pad))


def test_onehot_smooths_boundaries_differently_from_nearest():
    image, label = make_batch(2, (12, 14, 14), classes=4)
    outs = []
    for mode in ("nearest", "onehot"):
        aug = spineaug.Pipeline.from_config({"transforms": [dict(ALL, label_interpolation=mode)]})
        outs.append(aug(image, label, generator=torch.Generator().manual_seed(5))[1])
    assert outs[0].dtype == outs[1].dtype == label.dtype
    assert set(outs[1].unique().tolist()) <= set(label.unique().tolist())
    assert 0 < (outs[0] != outs[1]).float().mean() < 0.3


def test_unknown_label_interpolation_is_named():
    with pytest.raises(ConfigError, match=r"label_interpolation: Input should be 'nearest' or 'onehot'"):
        spineaug.Pipeline.from_config({"transforms": [{"name": "Spatial", "label_interpolation": "linear"}]})


@pytest.mark.parametrize(
    "entry, key",
    [
        ({"name": "Spatial", "label_pad": 300}, "label_pad"),
        ({"name": "Spatial", "label_pad": -1}, "label_pad"),
        ({"name": "FovCrop", "label_fill": 300}, "label_fill"),
        ({"name": "FovCrop", "label_fill": 256}, "label_fill"),
    ],
)
def test_label_value_outside_uint8_fails_on_first_call(entry, key):
    image, label = make_batch()
    aug = spineaug.Pipeline.from_config({"transforms": [dict(entry, p=0.0)]})  # even when nothing fires
    value = entry[key]
    with pytest.raises(ConfigError, match=rf"{key}={value} does not fit the label dtype torch.uint8 \(range \[0, 255\]\)"):
        aug(image, label.to(torch.uint8), generator=torch.Generator().manual_seed(0))
    aug(image, label.to(torch.int16), generator=torch.Generator().manual_seed(0))  # a wider dtype is fine


@pytest.mark.parametrize("dtype, value", [(torch.int8, 128), (torch.int8, -129), (torch.int16, 2**15), (torch.int32, 2**31)])
def test_label_pad_outside_signed_dtypes_is_named(dtype, value):
    image, label = make_batch()
    t = spineaug.TRANSFORMS["Spatial"](label_pad=value)
    info = torch.iinfo(dtype)
    with pytest.raises(ConfigError, match=rf"Spatial: label_pad={value} .* \(range \[{info.min}, {info.max}\]\)"):
        t(spineaug.Batch(image, label.to(dtype)), generator=torch.Generator().manual_seed(0))


def test_label_pad_in_range_is_written_exactly():
    image, label = make_batch()
    aug = spineaug.Pipeline.from_config({"transforms": [dict(SCALE, scale=[1.4, 1.4], label_pad=255)]})
    _, out = aug(image, label.to(torch.uint8), generator=torch.Generator().manual_seed(0))
    assert (out == 255).any() and set(out.unique().tolist()) <= set(label.unique().tolist()) | {255}


def test_nearest_read_of_volumes_beyond_float32_numbers_matches(monkeypatch):
    """Volumes too large to number in float32 take the per-axis path, which picks the same voxels."""
    g = torch.Generator().manual_seed(4)
    y = torch.randint(0, 6, (2, 2, 9, 10, 11), generator=g)
    grid = torch.rand(2, 7, 8, 9, 3, generator=g) * 2.6 - 1.3
    fast = R.read_labels(y, grid, pad_value=5)
    monkeypatch.setattr(R, "_FLOAT32_EXACT", 0)
    torch.testing.assert_close(R.read_labels(y, grid, pad_value=5), fast, rtol=0, atol=0)
