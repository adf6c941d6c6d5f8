"""spineaug.functional.spatial: rotation matrices, the sampling grid, patch gathering and the slab-split grid_sample."""

from __future__ import annotations

import pytest
import torch

from spineaug.functional import spatial as FS


def test_rotation_matrix_is_orthonormal_and_composes_axes():
    angles = torch.tensor([[0.3, -0.7, 1.1], [0.0, 0.0, 0.0]])
    r = FS.rotation_matrix(angles)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(2))
    torch.testing.assert_close(r[1], torch.eye(3))
    # about D only: turns H towards W
    about_d = FS.rotation_matrix(torch.tensor([[torch.pi / 2, 0.0, 0.0]]))[0]
    torch.testing.assert_close(about_d @ torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def _reference_points(centre, matrix, out_shape, shift, control):
    """Input voxel coordinates of every output voxel, computed the slow, obvious way (per-voxel matrix product)."""
    axes = [torch.arange(n, dtype=torch.float64) - (n - 1) / 2 for n in out_shape]
    r = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).expand(matrix.shape[0], *out_shape, 3)
    if control is not None:
        field = torch.nn.functional.interpolate(control.double(), size=out_shape, mode="trilinear", align_corners=True)
        r = r + field.permute(0, 2, 3, 4, 1)
    p = torch.einsum("bij,bdhwj->bdhwi", matrix.double(), r)
    return p + (centre + shift).double()[:, None, None, None, :]


@pytest.mark.parametrize("elastic", [False, True])
def test_sampling_grid_matches_per_voxel_formula(elastic):
    g = torch.Generator().manual_seed(3)
    out_shape, in_shape = (6, 5, 7), (9, 11, 8)
    matrix = FS.affine_matrix(torch.rand(2, 3, generator=g), 0.8 + 0.4 * torch.rand(2, 3, generator=g),
                             0.2 * torch.rand(2, 6, generator=g))
    centre, shift = 4 * torch.rand(2, 3, generator=g), torch.randn(2, 3, generator=g)
    control = torch.randn(2, 3, 3, 2, 4, generator=g) if elastic else None
    grid = FS.sampling_grid(centre, matrix, out_shape, in_shape, shift=shift, control=control)
    points = _reference_points(centre, matrix, out_shape, shift, control)
    size = torch.tensor(in_shape, dtype=torch.float64)
    expected = ((2 * points + 1) / size - 1).flip(-1)
    assert grid.shape == (2, *out_shape, 3) and grid.dtype == torch.float32
    torch.testing.assert_close(grid.double(), expected, atol=1e-5, rtol=0)


def _sliced_and_flipped(x: torch.Tensor, start: torch.Tensor, shape: tuple, flips: torch.Tensor):
    """The reference for gather_patch: slice each sample's box, then flip it, one sample at a time."""
    out = []
    for b in range(x.shape[0]):
        d, h, w = start[b].tolist()
        box = x[b, :, d : d + shape[0], h : h + shape[1], w : w + shape[2]]
        out.append(box.flip([1 + axis for axis in range(3) if flips[b, axis]]))
    return torch.stack(out)


def _random_starts(b: int, in_shape: tuple, shape: tuple, g: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randint(0, n - m + 1, (b,), generator=g) for n, m in zip(in_shape, shape)], 1)


GATHER_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                 torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


@pytest.mark.parametrize("dtype", GATHER_DTYPES)
def test_gather_patch_matches_slicing_and_flipping_each_sample(dtype):
    # Whole volumes, W-spanning crops and crops along every axis; random per-sample starts and flips, plus the
    # patterns with their own code path (no sample flips W, every sample flips W, all samples flip alike).
    g = torch.Generator().manual_seed(0)
    in_shape = (9, 8, 7)
    boxes = [in_shape, (5, 4, 7), (9, 3, 7), (5, 4, 6), (9, 8, 2), (1, 1, 1)]
    for b in (1, 2, 3, 5):
        patterns = [torch.rand(b, 3, generator=g) < 0.5 for _ in range(3)]
        patterns += [torch.zeros(b, 3, dtype=torch.bool), torch.ones(b, 3, dtype=torch.bool),
                     torch.tensor([[True, False, True]] * b), torch.tensor([[False, True, False]] * b),
                     torch.stack([torch.rand(b, generator=g) < 0.5] * 3, dim=1),
                     torch.tensor([[False, True, i % 2 == 0] for i in range(b)])]  # W flips not in one run
        for c in (1, 2):
            x = torch.randn(b, c, *in_shape, generator=g).mul(100).to(dtype)
            for shape in boxes:
                start = _random_starts(b, in_shape, shape, g)
                for flips in patterns:
                    out = FS.gather_patch(x, start, shape, flips)
                    assert out.dtype == dtype and out.is_contiguous()
                    assert torch.equal(out, _sliced_and_flipped(x, start, shape, flips)), (b, c, shape, flips)


def test_gather_patch_reads_every_flip_combination_from_views():
    # Eight samples with the eight flip patterns, read from a slice that starts inside its storage, a
    # transposed view and a channel slice, in crops and whole; the input is left unchanged.
    g = torch.Generator().manual_seed(1)
    base = torch.randint(0, 200, (9, 2, 9, 8, 7), generator=g)
    before = base.clone()
    flips = torch.tensor([[i & 1, i & 2, i & 4] for i in range(8)], dtype=torch.bool)
    for x in (base[1:], base[1:].transpose(3, 4), base[1:, :1]):
        whole = tuple(x.shape[2:])
        for shape, alike in (((5, 4, 6), flips), (whole, flips), (whole, flips[5].expand(8, 3))):
            start = _random_starts(8, whole, shape, g)
            out = FS.gather_patch(x, start, shape, alike)
            assert torch.equal(out, _sliced_and_flipped(x, start, shape, alike)) and out.is_contiguous()
    assert torch.equal(base, before)
    empty = FS.gather_patch(base[:0], torch.zeros(0, 3, dtype=torch.long), (5, 4, 6), flips[:0])
    assert empty.shape == (0, 2, 5, 4, 6)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_of_one_sample_in_slabs_equals_one_call(mode):
    """The CPU slab split (one sample on several threads) samples every point exactly as one grid_sample call."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 9, 10, 11, generator=g)
    grid = torch.rand(1, 8, 7, 6, 3, generator=g) * 2.4 - 1.2
    ref = torch.nn.functional.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        out = FS.grid_sample(x, grid, mode=mode, padding_mode="zeros")
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
