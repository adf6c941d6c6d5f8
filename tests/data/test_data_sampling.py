"""Patch sampler: shapes, determinism, foreground oversampling, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spineaug.data import PatchSampler, Sample


def _sample(shape=(20, 24, 28), fg_box=(slice(2, 4), slice(3, 5), slice(4, 6)), case_id="a"):
    rng = np.random.default_rng(0)
    label = np.zeros(shape, np.uint8)
    label[fg_box] = 2
    return Sample(case_id, rng.normal(size=(2, *shape)).astype(np.float32), label, np.eye(4))


def test_patches_shape_dtype_and_determinism():
    ps = PatchSampler([_sample(), _sample(case_id="b")], (8, 8, 8), length=6, seed=1)
    img, lab = ps[3]
    assert img.shape == (2, 8, 8, 8) and img.dtype == torch.float32
    assert lab.shape == (1, 8, 8, 8) and lab.dtype == torch.int64
    again = PatchSampler([_sample(), _sample(case_id="b")], (8, 8, 8), length=6, seed=1)[3]
    assert torch.equal(img, again[0]) and torch.equal(lab, again[1])
    batch = next(iter(torch.utils.data.DataLoader(ps, batch_size=3)))
    assert batch[0].shape == (3, 2, 8, 8, 8) and batch[1].shape == (3, 1, 8, 8, 8)
    ps.set_epoch(1)
    assert any(not torch.equal(ps[i][0], PatchSampler([_sample(), _sample()], (8, 8, 8), length=6, seed=1)[i][0]) for i in range(6))


def test_foreground_oversampling():
    ps_fg = PatchSampler([_sample()], (8, 8, 8), length=40, foreground_p=1.0)
    assert all((ps_fg[i][1] == 2).any() for i in range(40))
    ps_rand = PatchSampler([_sample()], (8, 8, 8), length=40, foreground_p=0.0)
    assert sum(bool((ps_rand[i][1] == 2).any()) for i in range(40)) < 30


def test_small_volumes_are_padded_and_bad_input():
    ps = PatchSampler([_sample(shape=(6, 24, 28), fg_box=(slice(0, 2),) * 3)], (8, 8, 8), length=2)
    img, lab = ps[0]
    assert img.shape == (2, 8, 8, 8)
    with pytest.raises(ValueError, match="patch_size"):
        PatchSampler([_sample()], (8, 8))
    with pytest.raises(ValueError, match="foreground_p"):
        PatchSampler([_sample()], (8, 8, 8), foreground_p=2)
    with pytest.raises(ValueError, match="no label"):
        PatchSampler([Sample("x", np.zeros((1, 4, 4, 4), np.float32), None, np.eye(4))], (2, 2, 2))
    with pytest.raises(IndexError):
        ps[2]
