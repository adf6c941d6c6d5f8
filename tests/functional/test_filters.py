"""spineaug.functional.filters: separable Gaussian blur, unsharp mask, Scharr and Laplacian stencils, random
convolution, against scipy and dense references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from spineaug.functional import filters as FF
from tests.conftest import make_batch


def _scipy_blur(x: np.ndarray, sigma, truncate: float = 3.0) -> np.ndarray:
    radius = [int(np.ceil(truncate * s - 1e-6)) if s >= 1e-3 else 0 for s in sigma]
    out = x.astype(np.float64)
    for axis, (s, r) in enumerate(zip(sigma, radius)):
        if r > 0:
            out = ndimage.gaussian_filter1d(out, s, axis=axis, mode="reflect", radius=r)
    return out


def test_gaussian_blur_matches_scipy_per_sample_and_axis():
    x, _ = make_batch(3, (10, 13, 16))
    sigma = torch.tensor([[0.6, 1.3, 2.2], [0.0, 0.9, 0.5], [1.7, 0.0005, 1.0]])
    y = FF.gaussian_blur(x, sigma)
    for b in range(3):
        ref = _scipy_blur(x[b, 0].numpy(), sigma[b].tolist())
        np.testing.assert_allclose(y[b, 0].numpy(), ref, atol=2e-5)


def test_gaussian_blur_is_centred():
    x = torch.zeros(2, 1, 21, 21, 21)
    x[:, :, 10, 10, 10] = 1.0
    x[1, :, 8, 11, 12] = 2.0
    y = FF.gaussian_blur(x, torch.tensor([[1.0, 2.0, 0.7], [0.3, 1.5, 2.5]]))
    grid = torch.stack(torch.meshgrid(*[torch.arange(21.0)] * 3, indexing="ij"))
    for b in range(2):
        com_in = (grid * x[b, 0]).flatten(1).sum(1) / x[b, 0].sum()
        com_out = (grid * y[b, 0]).flatten(1).sum(1) / y[b, 0].sum()
        torch.testing.assert_close(com_out, com_in, atol=1e-4, rtol=0)
    torch.testing.assert_close(y.sum(dim=(2, 3, 4)), x.sum(dim=(2, 3, 4)))


def test_tiny_sigma_is_identity_and_kernels_are_normalised():
    x, _ = make_batch(2)
    torch.testing.assert_close(FF.gaussian_blur(x, torch.tensor([5e-4, 0.0])), x)
    k = FF.gaussian_kernels(torch.tensor([0.0, 0.4, 1.0, 2.5]))
    torch.testing.assert_close(k.sum(1), torch.ones(4))
    torch.testing.assert_close(k, k.flip(1))
    assert k[0, k.shape[1] // 2] == 1.0
    assert k.shape[1] == 2 * 8 + 1  # ceil(3 * 2.5) = 8


def test_conv_and_shift_paths_agree():
    x, _ = make_batch(2, (9, 10, 11))
    kernel = torch.randn(2, 5)
    for axis in range(3):
        a = FF.conv1d_axis(x, kernel, axis, method="conv")
        b = FF.conv1d_axis(x, kernel, axis, method="shift")
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_reflect_padding_handles_axes_shorter_than_the_kernel():
    x = torch.randn(1, 1, 1, 2, 5)
    y = FF.gaussian_blur(x, torch.tensor([[3.0, 3.0, 1.0]]))
    ref = _scipy_blur(x[0, 0].numpy(), [3.0, 3.0, 1.0])
    np.testing.assert_allclose(y[0, 0].numpy(), ref, atol=1e-5)


def test_unsharp_mask_matches_reference():
    x, _ = make_batch(2)
    sigma = torch.tensor([[1.0, 0.5, 1.5], [0.7, 0.7, 0.7]])
    amount = torch.tensor([1.2, 0.4])
    y = FF.unsharp_mask(x, sigma, amount)
    for b in range(2):
        xb = x[b, 0].double().numpy()
        ref = xb + amount[b].item() * (xb - _scipy_blur(xb, sigma[b].tolist()))
        np.testing.assert_allclose(y[b, 0].numpy(), ref, atol=1e-4)


def _scharr_kernels():
    s = np.array([3, 10, 3]) / 16
    d = np.array([-0.5, 0.0, 0.5])
    return [
        np.einsum("i,j,k->ijk", d, s, s),
        np.einsum("i,j,k->ijk", s, d, s),
        np.einsum("i,j,k->ijk", s, s, d),
    ]


@pytest.mark.parametrize("magnitude", ["l1", "l2"])
def test_scharr_matches_dense_correlation(magnitude):
    x, _ = make_batch(2)
    y = FF.scharr_edges(x, magnitude)
    for b in range(2):
        xb = x[b, 0].double().numpy()
        g = [ndimage.correlate(xb, k, mode="reflect") for k in _scharr_kernels()]
        ref = sum(np.abs(a) for a in g) if magnitude == "l1" else np.sqrt(sum(a * a for a in g))
        np.testing.assert_allclose(y[b, 0].numpy(), ref, atol=1e-5)


def test_laplacian_matches_dense_26_neighbour_kernel():
    x, _ = make_batch(2)
    kernel = -np.ones((3, 3, 3))
    kernel[1, 1, 1] = 26
    kernel /= 26
    y = FF.laplacian(x)
    for b in range(2):
        ref = ndimage.correlate(x[b, 0].double().numpy(), kernel, mode="reflect")
        np.testing.assert_allclose(y[b, 0].numpy(), ref, atol=1e-5)


def test_gaussian_blur_rejects_negative_sigma():
    with pytest.raises(ValueError, match="sigma"):
        FF.gaussian_blur(torch.zeros(1, 1, 4, 4, 4), torch.tensor([-1.0]))


@pytest.mark.parametrize("k", [3, 5])
def test_random_conv_of_a_single_sample_equals_its_row_in_a_batch(k):
    g = torch.Generator().manual_seed(k)
    x = torch.rand(2, 1, 9, 8, 7, generator=g)
    w = torch.randn(2, k, k, k, generator=g)
    both = FF.random_conv(x, w)
    torch.testing.assert_close(FF.random_conv(x[:1], w[:1]), both[:1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(FF.random_conv(x[1:], w[1:]), both[1:], atol=1e-5, rtol=1e-5)


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 8), h=st.integers(1, 8), w=st.integers(1, 8))
def test_blur_batched_equals_per_sample_and_preserves_mean_of_constants(seed, d, h, w):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 1, d, h, w, generator=g)
    sigma = torch.rand(3, 3, generator=g) * 2
    y = FF.gaussian_blur(x, sigma)
    for b in range(3):
        torch.testing.assert_close(
            FF.gaussian_blur(x[b : b + 1], sigma[b : b + 1])[0], y[b], atol=1e-5, rtol=1e-5
        )
    c = torch.full((3, 1, d, h, w), 2.5)
    torch.testing.assert_close(FF.gaussian_blur(c, sigma), c)
