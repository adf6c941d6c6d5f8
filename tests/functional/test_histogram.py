"""spineaug.functional.histogram: quantiles (exact order statistics) and histogram equalisation."""

from __future__ import annotations

import pytest
import torch

from spineaug.functional import histogram as FH


def test_quantiles_match_torch_quantile_for_several_levels():
    x = torch.randn(3, 2, 5, 6, 7, generator=torch.Generator().manual_seed(3))
    q = torch.rand(3, 4, generator=torch.Generator().manual_seed(4))
    got = FH.quantiles(x, q)
    for b in range(3):
        for c in range(2):
            torch.testing.assert_close(got[b, c], torch.quantile(x[b, c].flatten(), q[b]))


@pytest.mark.parametrize(
    "levels",
    [[[0.0, 0.1], [0.05, 0.2]], [[0.9, 1.0], [0.97, 0.85]], [[0.03, 0.96], [0.2, 0.81]], [[0.5, 0.01], [0.3, 0.7]]],
    ids=["low-ends", "high-ends", "both-ends", "middle-sorts"],
)
def test_quantiles_from_partial_selection_are_exact(levels):
    """The topk paths (levels near the ends) give the same order statistics as torch.quantile, ties included."""
    x = torch.randn(2, 2, 8, 9, 10, generator=torch.Generator().manual_seed(5)).round(decimals=1)  # many ties
    q = torch.tensor(levels, dtype=torch.float32)
    got = FH.quantiles(x, q)
    for b in range(2):
        for c in range(2):
            assert torch.equal(got[b, c], torch.quantile(x[b, c].flatten(), q[b]))


@pytest.mark.parametrize("interpolate", [False, True])
def test_histogram_equalisation_is_monotone_and_range_preserving(interpolate):
    x = torch.randn(2, 2, 6, 7, 8, generator=torch.Generator().manual_seed(2)).exp()  # skewed
    y = FH.equalize_histogram(x, 64, interpolate=interpolate)
    for b in range(2):
        for c in range(2):
            order = x[b, c].flatten().argsort()
            ys = y[b, c].flatten()[order]
            assert (ys[1:] >= ys[:-1] - 1e-6).all()
            lo, hi = x[b, c].min(), x[b, c].max()
            assert ys.min() >= lo - 1e-5 and ys.max() <= hi + 1e-5
            if interpolate:
                torch.testing.assert_close(ys[[0, -1]], torch.stack([lo, hi]))


def test_histogram_equalisation_flattens_the_histogram():
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0)).exp()
    y = FH.equalize_histogram(x, 256, interpolate=True)
    u = (y - y.min()) / (y.max() - y.min())
    counts = torch.histc(u, bins=8, min=0, max=1)
    assert counts.max() / counts.min() < 1.2  # roughly uniform; the raw image is heavily skewed
    assert torch.histc((x - x.min()) / (x.max() - x.min()), bins=8, min=0, max=1)[0] > 4 * counts[0]
