"""spineaug.functional.resolution: the per-axis down/up operators behind LowResolution and ThickSlice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from spineaug.functional import resolution as FR


@pytest.mark.parametrize("n", [1, 7, 16, 33])
@pytest.mark.parametrize("down", FR.DOWN_MODES)
@pytest.mark.parametrize("up", FR.UP_MODES)
def test_scale_one_is_identity(n, down, up):
    r = FR.resolution_matrix(torch.ones(2), n, down, up)
    torch.testing.assert_close(r, torch.eye(n).expand(2, n, n), atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [7, 16, 33])
@pytest.mark.parametrize("scale", [0.21, 0.5, 0.77])
@pytest.mark.parametrize(
    ("down", "up", "t_down", "t_up"),
    [
        ("nearest", "linear", "nearest-exact", "linear"),
        ("linear", "linear", "linear", "linear"),
        ("linear", "nearest", "linear", "nearest-exact"),
    ],
)
def test_matrices_match_interpolate_with_per_sample_sizes(n, scale, down, up, t_down, t_up):
    scales = torch.tensor([scale, 1.0, scale / 2 + 0.3])
    r = FR.resolution_matrix(scales, n, down, up)
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(n))
    for b in range(3):
        m = int(FR.target_size(scales[b : b + 1], n))
        ref = F.interpolate(F.interpolate(x[b].view(1, 1, n), size=m, mode=t_down), size=n, mode=t_up)
        torch.testing.assert_close(r[b] @ x[b], ref.view(n), atol=1e-4, rtol=1e-4)


def test_box_averages_slabs_of_width_one_over_s():
    n = 12
    x = torch.randn(n)
    d = FR.down_matrix(torch.tensor([3.0]), n, "box")[0]
    torch.testing.assert_close(d[:3] @ x, x.view(3, 4).mean(1))
    assert (d[3:] == 0).all()
    torch.testing.assert_close(d.sum(1)[:3], torch.ones(3))


def test_gaussian_psf_rows_are_normalised_and_smooth():
    d = FR.down_matrix(torch.tensor([5.0]), 20, "gaussian")[0]
    torch.testing.assert_close(d[:5].sum(1), torch.ones(5))
    assert (d[:5] > 1e-3).sum(1).min() > 2  # each sample integrates several input voxels (anti-aliasing)


def test_apply_axis_operators_matches_einsum():
    x = torch.randn(2, 3, 5, 6, 7)
    ops = [torch.randn(2, n, n) for n in (5, 6, 7)]
    y = FR.apply_axis_operators(x, tuple(ops))
    ref = torch.einsum("bid,bjh,bkw,bcdhw->bcijk", *ops, x)
    torch.testing.assert_close(y, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(FR.apply_axis_operators(x, (None, None, None)), x)


@given(n=st.integers(1, 40), scale=st.floats(0.01, 1.0), down=st.sampled_from(FR.DOWN_MODES),
       up=st.sampled_from(FR.UP_MODES))  # fmt: skip
def test_resolution_operators_preserve_constants(n, scale, down, up):
    r = FR.resolution_matrix(torch.tensor([scale]), n, down, up)[0]
    torch.testing.assert_close(r.sum(1), torch.ones(n), atol=1e-5, rtol=0)
    assert (r >= -1e-7).all()
