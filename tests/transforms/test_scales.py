"""Every appearance transform acts at every intensity scale and offset.

Images at scales 1e-6 ... 1e7 and offsets 0 and 1e5 (raw CT with an offset): a non-constant image must come out
changed, finite and non-constant; a constant image must come out finite. float32 images whose spread is below the
float32 resolution at their offset are constant (1e-6 spread at +1e5), so that combination runs in float64 only.
"""

from __future__ import annotations

import pytest
import torch

import spineaug
from tests.conftest import make_batch

NAMES = sorted(n for n, cls in spineaug.TRANSFORMS.items() if not cls.geometric)
SCALES = (1e-6, 1.0, 1e3, 1e7)
OFFSETS = (0.0, 1e5)


def _forced(name: str) -> spineaug.Pipeline:
    return spineaug.Pipeline.from_config({"transforms": [spineaug.TRANSFORMS[name].forced({"name": name})]})


def _standard_batch() -> tuple[torch.Tensor, torch.Tensor]:
    image, label = make_batch(b=2, shape=(8, 10, 12))
    image = image.double()
    return (image - image.mean()) / image.std(), label


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("scale", SCALES)
def test_changes_a_non_constant_image_at_any_scale_and_offset(name, dtype, offset, scale):
    standard, label = _standard_batch()
    x = (standard * scale + offset).to(dtype)
    if dtype == torch.float32 and scale / max(offset, 1.0) < 1e-6:
        pytest.skip("constant in float32: covered by the constant-image test")
    out, lab = _forced(name)(x, label, generator=torch.Generator().manual_seed(0))
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x), f"{name} left a non-constant image unchanged (scale {scale}, offset {offset})"
    spread = out.double().flatten(1).std(dim=1)
    assert (spread > 0).all(), f"{name} flattened the image (scale {scale}, offset {offset})"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [0.0, 1e-6, 1e5, 1e7, -3e4])
def test_a_constant_image_stays_sane(name, value):
    _, label = _standard_batch()
    x = torch.full(label.shape, value, dtype=torch.float32)
    out, _ = _forced(name)(x, label, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()
    assert out.double().abs().max() <= 10 * (abs(value) + 1.0)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [-30, 30], "p_scale": 1.0, "scale": [0.8, 1.2]},
        {"name": "Affine", "p": 1.0},
    ],
    ids=["Spatial", "Affine"],
)
@pytest.mark.parametrize("scale", [1e39, 1e300])
def test_float64_beyond_the_float32_range_resamples_finitely(entry, scale):
    image, label = make_batch(b=2)
    x = image.double() * scale
    aug = spineaug.Pipeline.from_config({"transforms": [entry]})
    out, _ = aug(x, label, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    assert out.abs().max() <= x.abs().max() * (1 + 1e-12) and out.abs().max() > x.abs().max() * 0.5
    # resampled in float64: the result is the float32-range result scaled (interpolation is linear in the values)
    small, _ = spineaug.Pipeline.from_config({"transforms": [entry]})(
        image.double(), label, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(out / scale, small, rtol=1e-9, atol=1e-9)


def test_fov_crop_mean_fill_is_finite_near_the_float32_maximum():
    image, label = make_batch(b=2)
    x = (image - image.amin()) / (image.amax() - image.amin()) * 3e38 + 3e37  # all near the float32 maximum
    entry = {"name": "FovCrop", "p": 1.0, "fill": "mean"}
    aug = spineaug.Pipeline.from_config({"transforms": [entry]})
    out, _ = aug(x, label, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()
    filled = out != x
    assert filled.any()
    mean = x.double().mean(dim=(1, 2, 3, 4), keepdim=True).expand_as(x)
    torch.testing.assert_close(out[filled].double(), mean[filled], rtol=1e-5, atol=0)
