"""spineaug.functional.randconv: the GIN network, IPA's blend map and its B-spline basis, grouped convolution.

GIN weights come from the transform's own draw (``sample_params``), so the kernel is checked on the weights it is
really given.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spineaug
from spineaug.batch import Batch
from spineaug.functional import filters as FF
from spineaug.functional import randconv as FR


def build(name: str, **kwargs) -> spineaug.transforms.RandomTransform:
    return spineaug.build_transform({"name": name, "p": 1.0, **kwargs})


def _draw(t, image, label=None, seed=0):
    return t.sample_params(Batch(image, label), torch.Generator().manual_seed(seed))


def test_gin_network_equals_a_layer_by_layer_reference():
    """Each sample's network is conv (reflect pad) + shift + leaky ReLU per layer, the last without activation."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 1, 7, 8, 9, generator=g)
    t = build("GIN", kernel_sizes=[1, 3], negative_slope=0.2)
    v = _draw(t, x, seed=5).values
    out = FR.gin_network(x, v.weight, v.bias, v.size, 2, 0.2)
    for b in range(3):
        y = x[b : b + 1]
        for layer in range(4):
            cin, cout = (1, 2) if layer == 0 else (2, 1) if layer == 3 else (2, 2)
            w = v.weight[b, layer, :cout, :cin]  # (cout, cin, 3, 3, 3), zero outside the drawn size
            y = F.conv3d(_reflect(y, 1), w) + v.bias[b, layer, :cout].view(1, -1, 1, 1, 1)
            if layer < 3:
                y = F.leaky_relu(y, 0.2)
        torch.testing.assert_close(out[b : b + 1], y, rtol=1e-4, atol=1e-4)


def _reflect(y: torch.Tensor, pad: int) -> torch.Tensor:
    for dim in (2, 3, 4):
        y = FF.pad_axis(y, dim, pad)
    return y


def test_gin_size_one_layers_are_pointwise():
    x = torch.randn(2, 1, 6, 7, 8, generator=torch.Generator().manual_seed(0))
    v = _draw(build("GIN", kernel_sizes=[1]), x).values
    assert v.size.eq(1).all()
    out = FR.gin_network(x, v.weight, v.bias, v.size, 2, 0.01)
    # a pointwise network maps equal intensities to equal outputs, wherever they are
    flat = torch.full((2, 1, 6, 7, 8), 0.7)
    const = FR.gin_network(flat, v.weight, v.bias, v.size, 2, 0.01)
    assert torch.allclose(const, const.flatten(2)[..., :1, None, None].expand_as(const))
    assert out.shape == x.shape


def test_ipa_map_is_in_the_unit_interval_spans_it_and_is_smooth():
    control = torch.randn(3, 6, 6, 6, generator=torch.Generator().manual_seed(0)) * 0.3
    m = FR.blend_map(control, (32, 33, 34))
    assert m.shape == (3, 1, 32, 33, 34)
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    torch.testing.assert_close(m.flatten(1).amin(1), torch.zeros(3))
    torch.testing.assert_close(m.flatten(1).amax(1), torch.ones(3))
    # smooth: a neighbouring voxel differs by at most what one control interval (8 voxels here) allows: the whole
    # [0, 1] over an interval, twice as steep at its end through the exponential; on average far less
    for dim in (2, 3, 4):
        step = m.diff(dim=dim).abs()
        assert float(step.amax()) < 2 / 8, f"axis {dim}: jump {float(step.amax()):.3f}"
        assert float(step.mean()) < 0.05, f"axis {dim}: mean step {float(step.mean()):.3f}"
        # continuously differentiable: the slope changes little from voxel to voxel (no trilinear creases)
        curvature = m.diff(n=2, dim=dim).abs()
        assert float(curvature.amax()) < 0.5 * float(step.amax()), f"axis {dim}: kink"  # trilinear: > 1
    # and a random map is not a trivial ramp: it has interior extrema along some axis
    assert float(m.diff(dim=4).sign().diff(dim=4).abs().sum()) > 0


def test_bspline_basis_is_a_partition_of_unity_and_a_constant_grid_gives_a_constant_field():
    for n, size in ((3, 1), (6, 32), (6, 7), (10, 100)):
        basis = FR.quadratic_bspline_basis(n, size)
        assert basis.shape == (size, n) and (basis >= 0).all() and ((basis > 0).sum(1) <= 3).all()
        torch.testing.assert_close(basis.sum(1), torch.ones(size))
    m = FR.blend_map(torch.full((2, 6, 6, 6), 0.4), (9, 10, 11))
    assert torch.equal(m, torch.zeros_like(m))  # min-max of a constant: all zeros, finite


def test_grouped_conv_rejects_mismatched_weights():
    x = torch.randn(2, 1, 4, 4, 4)
    with pytest.raises(ValueError, match="weight must be"):
        FR.grouped_conv(x, torch.randn(3, 2, 1, 3, 3, 3))
    with pytest.raises(ValueError, match="weight must be"):
        FR.grouped_conv(x, torch.randn(2, 2, 1, 2, 2, 2))
