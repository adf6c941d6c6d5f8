"""spineaug.functional.intensity: bias-field polynomials, contrast, z-score and the retain_stats restore."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spineaug.functional import histogram as FH
from spineaug.functional import intensity as FI


def test_bias_field_matches_a_direct_sum_of_monomials():
    order, shape = 3, (5, 6, 7)
    coefficients = torch.randn(2, len(FI.monomial_exponents(order)), generator=torch.Generator().manual_seed(1))
    z, y, x = torch.meshgrid(*(torch.linspace(-1, 1, n) for n in shape), indexing="ij")
    for b in range(2):
        direct = sum(
            c * z**k * y**j * x**i for c, (k, j, i) in zip(coefficients[b], FI.monomial_exponents(order))
        )
        torch.testing.assert_close(FI.polynomial_field(coefficients, shape, order)[b], direct, atol=1e-5, rtol=1e-5)
    assert len(FI.monomial_exponents(3)) == 20


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bounded", [False, True])
def test_bias_field_overwrites_the_log_field_only_when_told_it_is_fresh(signed, bounded):
    """The gain is computed in place only in a field the caller hands over (``fresh``); the result is the same bits."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1, 4, 5, 6, generator=g) * 50 + 20
    field = torch.randn(2, 4, 5, 6, generator=g) * 0.3
    kept = field.clone()
    out = FI.apply_bias_field(x, field, signed=signed, bounded=bounded)
    assert torch.equal(field, kept)
    handed = field.clone()
    assert torch.equal(FI.apply_bias_field(x, handed, signed=signed, bounded=bounded, fresh=True), out)
    assert torch.equal(x, torch.randn(2, 1, 4, 5, 6, generator=torch.Generator().manual_seed(4)) * 50 + 20)


@given(seed=st.integers(0, 2**31 - 1), b=st.integers(1, 4), n=st.integers(1, 6))
def test_batched_equals_per_sample_for_deterministic_cores(seed, b, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 1, n, n + 1, 2, generator=g) * 3
    q = torch.rand(b, 2, generator=g).sort(dim=1).values
    f = torch.rand(b, generator=g) + 0.5
    for i in range(b):
        one = slice(i, i + 1)
        torch.testing.assert_close(FH.equalize_histogram(x)[one], FH.equalize_histogram(x[one]))
        torch.testing.assert_close(
            FH.percentile_clamp(x, q[:, 0], q[:, 1])[one], FH.percentile_clamp(x[one], q[one, 0], q[one, 1])
        )
        torch.testing.assert_close(
            FI.adjust_contrast(x, f, preserve_range=True)[one], FI.adjust_contrast(x[one], f[one], preserve_range=True)
        )


@pytest.mark.parametrize("dtype, spread", [(torch.float32, 0.1), (torch.float64, 1e-6)])
def test_restore_stats_flags_only_a_collapsed_spread(dtype, spread):
    # std / |mean| = 1e-6 (float32: about 13 ulps of spread) and 1e-11 (float64)
    x = (torch.randn(1, 2, 4, 5, 6, dtype=torch.float64) * spread + 1e5).to(dtype)
    y_ok = x.double() * 2 - 3e5  # another offset and scale, a real spread
    _, flag = FI.restore_stats(y_ok.to(dtype), x)
    assert not flag.any()
    _, flag = FI.restore_stats(torch.full_like(x, 1e5), x)  # constant output: degenerate
    assert flag.all()
    synthetic = torch.rand_like(x)  # an output in other units than a 1e7-scale input
    _, flag = FI.restore_stats(synthetic, x * 1e10)
    assert not flag.any()


@pytest.mark.parametrize("value", [0.1, 1e-6, 3.0, -7.25, 1e5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zscore_of_a_constant_channel_is_exactly_zero(value, dtype):
    """A constant channel's computed std is rounding error of its mean; dividing by it would give +-1 everywhere."""
    from spineaug.functional.intensity import zscore

    x = torch.full((2, 1, 8, 10, 12), value, dtype=dtype)
    assert torch.equal(zscore(x), torch.zeros_like(x, dtype=zscore(x).dtype))
    y = x.clone()
    y[1] += torch.randn(1, 8, 10, 12, dtype=dtype) * (0.1 if value != 1e5 or dtype == torch.float64 else 1.0)
    z = zscore(y)
    assert torch.equal(z[0], torch.zeros_like(z[0])) and z[1].std(unbiased=False).item() == pytest.approx(1.0, 1e-3)
