"""spineaug.functional.histogram: quantiles (exact order statistics) and histogram equalisation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spineaug.functional import histogram as FH
from spineaug.functional.intensity import work


def reference_quantiles(x, q):
    """The sort-based implementation the radix select replaced (one sort of every row, as its wide-level path):
    every value of ``FH.quantiles`` must be bit-identical to it."""
    b, c = x.shape[:2]
    rows = work(x).flatten(2)
    n = rows.shape[2]
    pos = q.to(torch.float64).clamp(0.0, 1.0) * (n - 1)
    below = pos.floor().long().clamp(0, n - 1)
    above = (below + 1).clamp_max(n - 1)
    frac = (pos - below.double()).to(x.device, rows.dtype)[:, None, :]
    index = torch.cat([below, above], dim=1)
    both = rows.sort(dim=2).values.gather(2, index[:, None, :].expand(b, c, index.shape[1]))
    v0, v1 = both[..., : index.shape[1] // 2], both[..., index.shape[1] // 2 :]
    return v0 + frac * (v1 - v0)


def radix(x, q):
    """``FH.quantiles`` with the radix select on every row, however short (small rows are sorted by default)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FH, "_SORT_BELOW", 0.0)
        return FH.quantiles(x, q)


def bits(t):
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def assert_identical(got, x, q, *, against_torch=True):
    """Bit-identical to the sort-based reference, and torch.quantile's values per sample and channel (up to the
    rounding of its own interpolation formula)."""
    expected = reference_quantiles(x, q)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(bits(got), bits(expected)), (got - expected).abs().max()
    if against_torch:
        for b in range(x.shape[0]):
            for c in range(x.shape[1]):
                expected = torch.quantile(work(x[b, c]).flatten(), q[b].to(got.dtype))
                torch.testing.assert_close(got[b, c], expected, rtol=2e-5, atol=1e-5)


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


def _case(name):
    g = torch.Generator().manual_seed(11)
    q = torch.tensor([[0.0, 0.02, 0.5, 0.97, 1.0], [1.0, 0.13, 0.5, 0.5, 0.0]], dtype=torch.float64)
    if name == "random":
        x = torch.randn(2, 3, 7, 8, 9, generator=g) * 5
    elif name == "zeros-90":  # a constant background: most ranks share one value and one histogram bin
        x = torch.randn(2, 1, 10, 11, 12, generator=g).exp()
        x[torch.rand(x.shape, generator=g) < 0.9] = 0.0
    elif name == "negative":
        x = -torch.rand(2, 2, 6, 7, 8, generator=g) * 1e3 - 1.0
    elif name == "signed-zeros":  # -0.0 and +0.0 mixed with a few values either side
        x = torch.where(torch.rand(2, 2, 8, 8, 8, generator=g) < 0.5, -0.0, 0.0)
        x[:, :, 0, 0, :3] = torch.tensor([-1.5, 2.0, -3e-39])  # a denormal too
    elif name == "ct-float64":  # a large offset and a tiny spread: only float64's low bits tell the values apart
        x = 1e5 + torch.randn(2, 2, 9, 8, 7, generator=g, dtype=torch.float64) * 1e-9
        x[0, 0, 0] = 1e5  # duplicates
    elif name == "single-voxel":
        x = torch.randn(2, 3, 1, 1, 1, generator=g)
    elif name == "ties-across-bins":  # a wide range: neighbouring ranks sit in different top-digit bins
        x = torch.randn(2, 2, 3, 4, 5, generator=g).mul(8).exp().round(decimals=0)
        x = x * torch.randn(x.shape, generator=g).sign()
    elif name == "integers":  # an int16 image (computed in float32), heavy ties
        x = torch.randint(-1024, 3000, (2, 1, 9, 9, 9), generator=g, dtype=torch.int16)
    else:
        raise ValueError(name)
    return x, q


CASES = ["random", "zeros-90", "negative", "signed-zeros", "ct-float64", "single-voxel", "ties-across-bins", "integers"]


@pytest.mark.parametrize("select", ["radix", "short"])
@pytest.mark.parametrize("name", CASES)
def test_quantiles_are_bit_identical_to_a_sort(name, select):
    """Exact order statistics and the same interpolation: every bit as a sort's, ends (q = 0, 1) included, several
    levels per sample, different levels per sample, levels sharing a value; by the radix select and by the topk or
    sort of short rows."""
    x, q = _case(name)
    fn = radix if select == "radix" else FH.quantiles
    assert_identical(fn(x, q), x, q)
    assert_identical(fn(x, q.float()), x, q.float())


@pytest.mark.parametrize("name", CASES)
def test_a_sample_does_not_see_the_others(name):
    x, q = _case(name)
    got = radix(x, q)
    y = x.clone()
    y[1] = y[1] * 3 + 7  # another sample changes
    changed = radix(y, q)
    assert torch.equal(bits(changed[0]), bits(got[0]))
    assert torch.equal(bits(radix(x[:1], q[:1])[0]), bits(got[0]))
    assert torch.equal(bits(radix(x[1:], q[1:])[0]), bits(got[1]))


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**31 - 1),
    b=st.integers(1, 3),
    c=st.integers(1, 2),
    n=st.integers(1, 40),
    k=st.integers(1, 4),
    double=st.booleans(),
)
def test_quantiles_match_a_sort_on_values_with_many_ties(seed, b, c, n, k, double):
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-40, -1e30, 3e38, 1e5, 1e5 + 1e-3])
    dtype = torch.float64 if double else torch.float32
    x = pool.to(dtype)[torch.randint(0, len(pool), (b, c, n, 1, 1), generator=g)]
    x = x + torch.randn(x.shape, generator=g, dtype=dtype) * (torch.rand(x.shape, generator=g) < 0.3)
    q = torch.rand(b, k, generator=g, dtype=torch.float64)
    q[torch.rand(b, k, generator=g) < 0.2] = 0.0
    q[torch.rand(b, k, generator=g) < 0.2] = 1.0
    assert_identical(radix(x, q), x, q, against_torch=False)


def test_nan_and_infinities_order_as_in_a_sort():
    """NaN (either sign bit) after +inf, -inf first, as torch.sort orders them."""
    x = torch.randn(2, 1, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0, :3] = torch.tensor([float("nan"), -float("nan"), float("inf")])
    x[1, 0, 0, 0, :2] = torch.tensor([-float("inf"), -float("nan")])
    assert torch.tensor(-float("nan")).view(torch.int32) < 0  # the sign bit set
    q = torch.tensor([[0.0, 0.5, 0.98, 0.99, 1.0]] * 2)
    torch.testing.assert_close(radix(x, q), reference_quantiles(x, q), rtol=0, atol=0, equal_nan=True)


def test_quantile_keys_order_like_the_floats_and_map_back():
    v = torch.tensor([-float("inf"), -3e38, -1.0, -1e-40, -0.0, 0.0, 1e-45, 1.0, 3e38, float("inf")])
    for dtype in (torch.float32, torch.float64):
        key = FH._keys(v.to(dtype)[None])[0]
        assert (key[1:] > key[:-1]).all()
        assert torch.equal(bits(FH._values(key.long(), dtype)), bits(v.to(dtype)))


def test_gradient_reaches_the_voxels_holding_the_quantiles():
    x = torch.randn(2, 2, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    q = torch.tensor([[0.1, 0.5, 0.9], [0.0, 0.33, 1.0]])
    grads = []
    for fn in (radix, reference_quantiles):
        leaf = x.clone().requires_grad_(True)
        v = fn(leaf, q)
        (v * torch.arange(v.numel()).view_as(v)).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


def test_long_rows_take_the_radix_select_and_short_rows_topk(monkeypatch):
    calls = []
    select = FH._order_statistics
    monkeypatch.setattr(FH, "_order_statistics", lambda rows, ranks: calls.append(rows.shape) or select(rows, ranks))
    q = torch.tensor([[0.0, 0.25], [0.5, 1.0]])
    for side, radix_expected in ((44, True), (24, False)):  # 85184 and 13824 values: 81920 is the bound for K = 2
        calls.clear()
        x = torch.randn(2, 1, side, side, side, generator=torch.Generator().manual_seed(side)).round(decimals=2)
        assert_identical(FH.quantiles(x, q), x, q, against_torch=False)
        assert bool(calls) == radix_expected


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
