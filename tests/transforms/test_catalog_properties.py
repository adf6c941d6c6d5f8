"""Properties shared by the filter, resolution, FOV and label-guided transforms: hypothesis checks and, when a GPU is
present, CPU/CUDA parity and zero host synchronisation in the apply path."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import spineaug
from spineaug.batch import Batch
from tests.conftest import make_batch

KEYS = [
    "GaussianBlur", "UnsharpMask", "ScharrEdge", "Laplacian", "RandomConv",
    "LowResolution", "ThickSlice", "FovCrop", "LabelIntensityRemap", "LabelAppearance",
    "LabelSynthesis", "ClassLocationScale",
    "GIN", "IPA", "ProgressiveRandConv",
]  # fmt: skip


@given(seed=st.integers(0, 2**31 - 1))
def test_fov_crop_label_values_only_shrink_plus_fill(seed):
    x, lbl = make_batch(2, (6, 7, 8), seed=seed % 1000)
    t = spineaug.TRANSFORMS["FovCrop"](label_fill=5)
    out = t(Batch(x, lbl), generator=torch.Generator().manual_seed(seed))
    assert set(out.label.unique().tolist()) <= set(lbl.unique().tolist()) | {5}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", KEYS)
def test_cuda_matches_cpu_without_host_sync(name):
    x, lbl = make_batch(3, (16, 18, 20), classes=4)
    t = spineaug.TRANSFORMS[name](p=1.0)
    params = t.sample_params(Batch(x, lbl), torch.Generator().manual_seed(0))
    cpu = t.apply(Batch(x, lbl), params)
    xc, lc = x.cuda(), lbl.cuda()
    t.apply(Batch(xc, lc), params)  # warm-up (lazy CUDA initialisation may synchronise)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        gpu = t.apply(Batch(xc, lc), params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # noise fields are counter-based (spineaug.functional.noise): the same seeds give the same noise on every device
    torch.testing.assert_close(gpu.image.cpu(), cpu.image, atol=1e-3, rtol=1e-3)
    assert torch.equal(gpu.label.cpu(), cpu.label)
