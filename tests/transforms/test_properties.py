"""Property tests over the whole registry (hypothesis): any transform, dtype, channel count, shape, magnitude, offset
and label dtype. For finite input: finite output, label values exact (only input values or the transform's padding
/fill label), the caller's tensors untouched, and the same seed gives the same output."""

from __future__ import annotations

import hypothesis.strategies as st
import torch
from hypothesis import HealthCheck, event, given, settings

import spineaug
from tests._exercise import forced_entry

NAMES = sorted(spineaug.TRANSFORMS)
IMAGE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
LABEL_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


def entry(name: str) -> dict:
    """The entry forced on: a geometric transform with its exercise settings (every mechanism of the resampling), an
    appearance transform at its defaults (the exercise ranges, a brightness factor of 3 for one, would take a float16
    image near its largest value out of range), blending left at its default."""
    if spineaug.TRANSFORMS[name].geometric:
        return forced_entry(name)
    forced = spineaug.TRANSFORMS[name].forced({"name": name})
    forced.pop("mix_prob", None)
    return forced


@st.composite
def cases(draw):
    name = draw(st.sampled_from(NAMES))
    dtype = draw(st.sampled_from(IMAGE_DTYPES))
    label_dtype = draw(st.sampled_from(LABEL_DTYPES))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             *(draw(st.integers(2, 9)) for _ in range(3)))  # B, C, D, H, W
    magnitude = 10.0 ** draw(st.floats(-6, 7 if dtype == torch.float64 else 4))  # float16 tops out at 65504
    offset = draw(st.sampled_from([0.0, 1.0, -3.0] + ([1e5] if dtype in (torch.float32, torch.float64) else [])))
    base = draw(st.sampled_from([0, 1, 100] if label_dtype == torch.uint8 else [0, 1000, 2**15 - 20]
                                if label_dtype == torch.int16 else [0, 2**24 + 1, 2**31 - 20]))
    seed = draw(st.integers(0, 2**31 - 1))
    return name, dtype, label_dtype, shape, magnitude, offset, base, seed


def _inputs(dtype, label_dtype, shape, magnitude, offset, base, seed):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.randn(shape[0], shape[1], 2, 2, 2, generator=g, dtype=torch.float64),
                                             size=shape[2:], mode="trilinear", align_corners=True)
    image = (smooth * magnitude + offset).to(dtype)
    values = torch.randint(0, 4, (shape[0], 1, *shape[2:]), generator=g)
    label = torch.where(values > 0, values + base, 0).to(label_dtype)
    return image, label


@given(case=cases())
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_input_keeps_the_contract(case):
    name, dtype, label_dtype, shape, magnitude, offset, base, seed = case
    image, label = _inputs(dtype, label_dtype, shape, magnitude, offset, base, seed)
    if not torch.isfinite(image).all():  # beyond the dtype's range: not a finite input
        event("input not finite in its dtype")
        return
    config = {"transforms": [entry(name)]}
    try:
        aug = spineaug.Pipeline.from_config(config)
    except ValueError as exc:  # a forced configuration impossible for this shape is refused with a message
        assert name in str(exc) or "patch" in str(exc)
        event("configuration refused")
        return
    before_image, before_label = image.clone(), label.clone()
    try:
        out, lab = aug(image, label, generator=torch.Generator().manual_seed(seed))
    except ValueError as exc:  # e.g. a patch larger than the volume: refused with a message that names it
        assert str(exc), name
        event("input refused")
        return
    # the caller's tensors untouched
    assert torch.equal(image, before_image) and torch.equal(label, before_label)
    # finite in, finite out; dtype and shape kept
    assert out.dtype == dtype and lab.dtype == label_dtype and out.shape == image.shape and lab.shape == label.shape
    assert torch.isfinite(out).all(), (name, dtype, magnitude, offset)
    # labels exact: only input values, or the padding/fill label of the entry
    cfg = aug.config()["transforms"][0]
    allowed = set(torch.unique(label).tolist()) | {int(cfg.get(k, 0)) for k in ("label_pad", "label_fill")}
    assert set(torch.unique(lab).tolist()) <= allowed, (name, label_dtype, base)
    # determinism: the same seed gives the same output, bit for bit
    again, lab_again = aug(image, label, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(again, out) and torch.equal(lab_again, lab), name
    event("checked")

