"""spineaug.functional.labels: per-label statistics, label indexing, the remap and appearance kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from spineaug.functional import labels as FL
from tests.conftest import make_batch


def test_label_moments_match_direct_sums():
    x, lbl = make_batch(2, classes=4)
    x = torch.cat([x, x * 2 - 1], dim=1)  # two channels
    count, total, total_sq = FL.label_moments(x, lbl, 5)
    for b in range(2):
        for c in range(2):
            for v in range(5):
                sel = x[b, c][lbl[b, 0] == v]
                assert count[b, c, v] == sel.numel()
                torch.testing.assert_close(total[b, c, v], sel.sum(), atol=1e-3, rtol=1e-5)
                torch.testing.assert_close(total_sq[b, c, v], sel.square().sum(), atol=1e-3, rtol=1e-5)


def test_ring_moments_match_scipy_dilation():
    x, lbl = make_batch(2, (10, 12, 14), classes=4)
    count, total, _ = FL.ring_moments(x, lbl, 4, radius=2, chunk=2)
    assert (count[..., 0] == 0).all()
    for b in range(2):
        for v in range(1, 4):
            m = (lbl[b, 0] == v).numpy()
            ring = ndimage.binary_dilation(m, np.ones((3, 3, 3)), iterations=2) & ~m
            assert count[b, 0, v] == ring.sum()
            torch.testing.assert_close(
                total[b, 0, v].double(), x[b, 0].double()[torch.from_numpy(ring)].sum(), atol=1e-3, rtol=1e-4
            )


def test_label_index_maps_out_of_range_and_ignore_to_background():
    lab = torch.tensor([-1, 0, 1, 2, 3, 4, 255]).view(1, 1, 1, 1, 7)
    out = FL.label_index(lab, 3, ignore_label=2)
    assert out.flatten().tolist() == [0, 0, 1, 0, 3, 0, 0]


@pytest.mark.parametrize("inside", [False, True])
def test_remap_matches_the_per_voxel_formula(inside):
    """The batched remap equals evaluating every Gaussian bump at every voxel, per sample, in float64."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 1, 10, 11, 12, generator=g) * 50 - 10
    _, lbl = make_batch(2, (10, 11, 12), classes=4)
    lab = FL.label_index(lbl, 3)
    width, amplitude = 0.2 * torch.rand(2, 4, generator=g), 2 * torch.rand(2, 4, generator=g) - 1
    flags = torch.full((2,), inside)
    out = FL.remap_intensities(x, lab, 4, width, amplitude, flags)
    # Reference: the same statistics, every bump evaluated per voxel in float64.
    lo, hi = x.amin(dim=(2, 3, 4), keepdim=True), x.amax(dim=(2, 3, 4), keepdim=True)
    u = ((x - lo) / (hi - lo)).double()
    mu, sigma = FL.moments_to_mean_std(*FL.label_moments(u.float(), lab, 4))
    mu_r, sigma_r = FL.moments_to_mean_std(*FL.ring_moments(u.float(), lab, 4, 3))
    tau = (width[:, None] + 0.4 * (mu - mu_r).abs() * sigma / (sigma_r + 1e-6)).clamp_min(0.01).double()
    a = amplitude[:, None].double().clone()
    a[..., 0] = 0
    mu = mu.double()
    w = tau + 1e-6
    if inside:
        pick = lambda t: torch.gather(t, 2, lab.flatten(2)).view_as(u)  # noqa: E731
        bump = pick(a) * torch.exp(-0.5 * ((u - pick(mu)) / pick(w)) ** 2) / (pick(w) * math.sqrt(2 * math.pi))
        shift = 0.0
    else:
        bump = sum(
            a[..., v, None, None, None]
            * torch.exp(-0.5 * ((u - mu[..., v, None, None, None]) / w[..., v, None, None, None]) ** 2)
            / (w[..., v, None, None, None] * math.sqrt(2 * math.pi))
            for v in range(1, 4)
        )
        shift = bump.amin(dim=(2, 3, 4), keepdim=True)
    rng = bump.amax(dim=(2, 3, 4), keepdim=True) - bump.amin(dim=(2, 3, 4), keepdim=True)
    expected = (u + 2 * (bump - shift) / (rng + 1e-6)) * (hi - lo).double() + lo.double()
    torch.testing.assert_close(out.double(), expected, atol=1e-4 * float((hi - lo).max()), rtol=0)


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (1e-6, 0.0), (1.0, 1e5), (30.0, 1e5), (1e7, 0.0)])
def test_label_appearance_texture_is_standardised_at_any_scale(scale, offset):
    from spineaug.functional import labels as FL

    image, label = make_batch(b=1)
    x = image * scale + offset
    y = FL.label_appearance(x, label, 4, torch.zeros(1, 4), torch.ones(1, 4), torch.zeros_like(x), torch.ones(1))
    for value in range(4):
        assert y[label == value].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
