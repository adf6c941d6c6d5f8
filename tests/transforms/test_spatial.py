"""The geometric engine: Spatial, Affine, Flip and their single fused resampling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import spineaug
from spineaug.functional import spatial as FS
from spineaug.transforms import _resample as R
from spineaug.transforms import spatial as S
from tests.conftest import make_batch


def pipeline(*entries: dict, **kwargs) -> spineaug.Pipeline:
    return spineaug.Pipeline.from_config({"transforms": list(entries)}, **kwargs)


ROTATE_SCALE_ELASTIC = {
    "name": "Spatial",
    "p_rotation": 1.0,
    "rotation_deg": [-40, 40],
    "p_scale": 1.0,
    "scale": [0.8, 1.25],
    "p_elastic": 1.0,
    "elastic_magnitude": [1.0, 3.0],
    "elastic_spacing": 6,
}


def test_identity_when_all_probabilities_are_zero(generator):
    image, label = make_batch()
    aug = pipeline(
        {"name": "Spatial", "p_rotation": 0, "p_scale": 0, "p_elastic": 0},
        {"name": "Affine", "p": 0},
        {"name": "Flip", "axes": [0, 1, 2], "p": 0},
    )
    out, lab = aug(image, label, generator=generator)
    assert torch.equal(out, image)
    assert torch.equal(lab, label)


def test_identical_samples_come_out_different(generator):
    image, label = make_batch(b=1)
    image, label = image.expand(4, -1, -1, -1, -1), label.expand(4, -1, -1, -1, -1)
    out, lab = pipeline(ROTATE_SCALE_ELASTIC)(image, label, generator=generator)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j])
            assert not torch.equal(lab[i], lab[j])


def test_image_and_label_stay_aligned(generator):
    # An image that *is* its label map: after any warp, the trilinear image must still agree with the
    # nearest-neighbour label almost everywhere (they differ only on a thin band along boundaries).
    coarse = torch.randint(0, 4, (3, 1, 3, 3, 3), generator=torch.Generator().manual_seed(0))
    label = torch.nn.functional.interpolate(coarse.float(), size=(24, 24, 24)).long()  # 8-voxel blocks
    image = label.float()
    config = dict(ROTATE_SCALE_ELASTIC, patch_size=[16, 20, 18])
    out, lab = pipeline(config, {"name": "Flip", "axes": [0, 1, 2]}, {"name": "Affine"})(
        image, label, generator=generator
    )
    agree = ((out - lab.float()).abs() < 0.5).float().mean()
    assert agree > 0.9
    # and a misaligned pair would not agree this well
    assert ((out - lab.float().roll(3, dims=2)).abs() < 0.5).float().mean() < agree - 0.05


@given(seed=st.integers(0, 2**31 - 1), classes=st.integers(1, 6), pad=st.integers(0, 9))
def test_label_values_are_never_invented(seed, classes, pad):
    image, label = make_batch(b=2, shape=(10, 12, 9), seed=seed, classes=classes)
    label = label * 7  # sparse values: interpolation between labels would invent new ones
    aug = pipeline(dict(ROTATE_SCALE_ELASTIC, label_pad=pad), {"name": "Affine", "scale": [0.6, 1.6]})
    _, out = aug(image, label, generator=torch.Generator().manual_seed(seed))
    allowed = set(label.unique().tolist()) | {pad}
    assert set(out.unique().tolist()) <= allowed


def test_seeded_determinism():
    image, label = make_batch()
    aug = pipeline(ROTATE_SCALE_ELASTIC, {"name": "Flip"})
    a = aug(image, label, generator=torch.Generator().manual_seed(7))
    b = aug(image, label, generator=torch.Generator().manual_seed(7))
    c = aug(image, label, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    seeded = [pipeline(ROTATE_SCALE_ELASTIC, seed=3)(image, label)[0] for _ in range(2)]
    assert torch.equal(*seeded)


def test_params_replay_the_same_output(generator):
    image, label = make_batch()
    aug = pipeline(ROTATE_SCALE_ELASTIC, {"name": "Flip"}, {"name": "Gamma", "p": 0.5})
    out, lab, params = aug(image, label, generator=generator, return_params=True)
    again, lab2 = aug(image, label, params=params)
    assert torch.equal(out, again) and torch.equal(lab, lab2)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_flip_matches_torch_flip(axis, generator):
    image, label = make_batch()
    out, lab = pipeline({"name": "Flip", "axes": [axis], "p": 1.0})(image, label, generator=generator)
    assert torch.equal(out, image.flip(2 + axis))
    assert torch.equal(lab, label.flip(2 + axis))


def test_flip_is_per_sample():
    image, label = make_batch(b=16)
    out, _, params = pipeline({"name": "Flip", "axes": [1], "p": 0.5})(
        image, label, generator=torch.Generator().manual_seed(0), return_params=True
    )
    flipped = params["0:Flip"].flip[:, 1]
    assert 0 < int(flipped.sum()) < 16
    for b in range(16):
        expected = image[b].flip(2) if flipped[b] else image[b]
        assert torch.equal(out[b], expected)


def test_rotation_by_90_degrees_matches_rot90(generator):
    image, label = make_batch(b=2, shape=(9, 11, 11))
    spatial = {"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [[90, 90], [0, 0], [0, 0]]}
    out, lab = pipeline(spatial)(image, label, generator=generator)
    # the sampling map sends output (h, w) to input (-w, h) about the centre: torch.rot90 with k=-1
    torch.testing.assert_close(out, torch.rot90(image, k=-1, dims=(3, 4)), atol=1e-4, rtol=0)
    assert torch.equal(lab, torch.rot90(label, k=-1, dims=(3, 4)))


def test_scale_above_one_zooms_out(generator):
    # a centred bright cube looks smaller after sampling a larger region
    image = torch.zeros(1, 1, 21, 21, 21)
    image[..., 6:15, 6:15, 6:15] = 1.0
    out, _ = pipeline({"name": "Spatial", "p_scale": 1.0, "scale": [1.5, 1.5]})(image, generator=generator)
    assert out.sum() < image.sum() * 0.5
    out, _ = pipeline({"name": "Spatial", "p_scale": 1.0, "scale": [0.7, 0.7]})(image, generator=generator)
    assert out.sum() > image.sum() * 2


def test_crop_without_rotation_is_an_exact_sub_block():
    image, label = make_batch(b=4, shape=(20, 22, 24))
    aug = pipeline({"name": "Spatial", "patch_size": [8, 9, 10]})
    out, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 8, 9, 10) and lab.shape == (4, 1, 8, 9, 10)
    for b in range(4):
        windows = image[b, 0].unfold(0, 8, 1).unfold(1, 9, 1).unfold(2, 10, 1)
        hits = (windows == out[b, 0]).flatten(3).all(-1).nonzero()
        assert len(hits) == 1
        d, h, w = hits[0].tolist()
        assert torch.equal(lab[b, 0], label[b, 0, d : d + 8, h : h + 9, w : w + 10])


def test_index_path_equals_interpolation_path(monkeypatch):
    image, label = make_batch(b=3, shape=(16, 15, 14))
    aug = pipeline({"name": "Spatial", "patch_size": [9, 8, 7]}, {"name": "Flip", "axes": [0, 1, 2]})
    fast = aug(image, label, generator=torch.Generator().manual_seed(5))
    monkeypatch.setattr(R, "_index_only", _never_by_index)
    slow = aug(image, label, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=0)
    assert torch.equal(fast[1], slow[1])


def _never_by_index(warp, control):
    return torch.zeros(warp.matrix.shape[0], dtype=torch.bool)


def test_mixed_batch_reads_each_sample_like_the_all_grid_path(monkeypatch):
    """Samples that only crop/flip go by index, the others by grid; the merge keeps batch order and values."""
    image, label = make_batch(b=5, shape=(14, 13, 12))
    angles = torch.tensor([[0.0, 0, 0], [0.3, -0.2, 0.1], [0, 0, 0], [0, 0.4, 0], [0, 0, 0]])
    scale = torch.tensor([[1.0] * 3, [1.1] * 3, [1.0] * 3, [0.9] * 3, [1.0] * 3])
    flip = torch.diag_embed(torch.tensor([[1.0, 1, 1], [1, 1, 1], [-1, 1, 1], [1, -1, -1], [1, 1, -1]]))
    warps = [R.Warp(FS.affine_matrix(angles, scale), torch.zeros(5, 3)), R.Warp(flip, torch.zeros(5, 3))]
    # Crop centres as Spatial makes them (start + (n - 1) / 2), so the index path reads whole voxels.
    centre = torch.tensor([[6.5, 6.0, 5.5], [7.5, 6.0, 5.5], [5.5, 5.0, 4.5], [4.5, 7.0, 6.5], [3.5, 3.0, 2.5]])
    control = torch.zeros(5, 3, 2, 2, 2)
    control[3] = 0.7  # sample 3 also deforms; every other sample has a zero field
    placement = R.Placement((8, 7, 6), centre, control, pad_mode="edge", label_pad=2)
    batch = spineaug.batch.Batch(image, label)
    mixed = R.resample(batch, warps, placement)
    monkeypatch.setattr(R, "_index_only", _never_by_index)
    reference = R.resample(batch, warps, placement)
    torch.testing.assert_close(mixed.image, reference.image, atol=1e-5, rtol=0)
    assert torch.equal(mixed.label, reference.label)
    assert mixed.image.dtype == image.dtype and mixed.label.dtype == label.dtype


def test_foreground_crop_contains_foreground():
    image = torch.randn(6, 1, 40, 40, 40)
    label = torch.zeros(6, 1, 40, 40, 40, dtype=torch.uint8)
    label[:, :, 30:33, 2:5, 34:37] = 2  # small blob near a corner
    label[5] = 0  # no foreground: falls back to a random crop
    aug = pipeline({"name": "Spatial", "patch_size": [12, 12, 12], "p_foreground": 1.0})
    _, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert (lab[:5] == 2).flatten(1).any(1).all()
    assert lab.dtype == torch.uint8


def test_uniform_crop_rarely_hits_a_small_blob():
    image = torch.randn(16, 1, 40, 40, 40)
    label = torch.zeros(16, 1, 40, 40, 40, dtype=torch.long)
    label[:, :, 30:33, 2:5, 34:37] = 1
    _, lab = pipeline({"name": "Spatial", "patch_size": [12, 12, 12]})(
        image, label, generator=torch.Generator().manual_seed(0)
    )
    assert (lab == 1).flatten(1).any(1).float().mean() < 0.5


@pytest.mark.parametrize(
    ("pad_mode", "expected"),
    [("constant", 5.0), ("min", -3.0), ("edge", 2.0), ("reflect", 2.0)],
)
def test_padding_modes(pad_mode, expected, generator):
    image = torch.full((1, 1, 8, 8, 8), 2.0)
    image[..., 4, 4, 4] = -3.0  # the minimum sits inside, away from the corners
    aug = pipeline({"name": "Spatial", "p_scale": 1.0, "scale": [3.0, 3.0], "pad_mode": pad_mode, "pad_value": 5.0})
    out, _ = aug(image, generator=generator)
    assert out[0, 0, 0, 0, 0] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int16, torch.int64])
def test_dtype_device_and_shape_are_kept(dtype, label_dtype, device, generator):
    image, label = make_batch(device=device)
    image, label = image.to(dtype), label.to(label_dtype)
    out, lab = pipeline(dict(ROTATE_SCALE_ELASTIC, patch_size=[8, 8, 8]), {"name": "Flip"})(
        image, label, generator=generator
    )
    assert out.dtype == dtype and lab.dtype == label_dtype
    assert out.device == image.device and lab.device == label.device
    assert out.shape == (2, 1, 8, 8, 8) and lab.shape == (2, 1, 8, 8, 8)


def test_multichannel_images_share_the_warp(generator):
    image, label = make_batch(b=2)
    two = torch.cat([image, image * 2], dim=1)
    out, _ = pipeline(ROTATE_SCALE_ELASTIC)(two, label, generator=generator)
    torch.testing.assert_close(out[:, 1], out[:, 0] * 2, atol=1e-5, rtol=1e-5)


def test_inputs_are_not_modified(generator):
    image, label = make_batch()
    before = (image.clone(), label.clone(), image._version, label._version)
    pipeline(ROTATE_SCALE_ELASTIC, {"name": "Flip"}, {"name": "Gamma"})(image, label, generator=generator)
    assert torch.equal(image, before[0]) and torch.equal(label, before[1])
    assert (image._version, label._version) == before[2:]


def test_works_without_a_label(generator):
    image, _ = make_batch()
    out, lab = pipeline(ROTATE_SCALE_ELASTIC, {"name": "Flip"})(image, generator=generator)
    assert lab is None and out.shape == image.shape


def test_no_host_reads_of_data_in_the_apply_path():
    # Data on the "meta" device has no values: any .item(), bool(tensor) or data-dependent branch on it raises.
    aug = pipeline(
        dict(ROTATE_SCALE_ELASTIC, patch_size=[8, 8, 8], p_foreground=0.5),
        {"name": "Affine"},
        {"name": "Flip", "axes": [0, 1, 2]},
        check_finite=False,
    )
    image = torch.empty(3, 1, 12, 12, 12, device="meta")
    label = torch.empty(3, 1, 12, 12, 12, dtype=torch.long, device="meta")
    for seed in range(4):
        out, lab = aug(image, label, generator=torch.Generator().manual_seed(seed))
        assert out.shape == (3, 1, 8, 8, 8) and lab.shape == (3, 1, 8, 8, 8)


def _affine_params(b, shift=(0.0, 0.0, 0.0), shear=(0.0,) * 6, angles=(0.0, 0.0, 0.0), scale=1.0):
    return S.AffineParams(
        angles=torch.tensor([angles] * b),
        scale=torch.full((b, 3), scale),
        shear=torch.tensor([shear] * b),
        shift=torch.tensor([shift] * b),
    )


def test_translation_by_whole_voxels_shifts_exactly():
    image, label = make_batch(b=2)
    t = S.RandomAffine()
    out = t(spineaug.Batch(image, label), params=_affine_params(2, shift=(2.0, 0.0, -3.0)))
    # output voxel i reads input voxel i + shift
    torch.testing.assert_close(out.image[:, :, :-2, :, 3:], image[:, :, 2:, :, :-3], atol=1e-5, rtol=0)
    assert torch.equal(out.label[:, :, :-2, :, 3:], label[:, :, 2:, :, :-3])
    assert (out.label[:, :, -2:] == 0).all()  # read from outside: background


def test_shear_moves_points_by_tan_times_offset():
    # shear "h along d" by 45 degrees: output (d, h, w) reads input (d, h + d, w) around the centre
    image = torch.zeros(1, 1, 9, 9, 9)
    image[0, 0, 6, 4, 4] = 1.0  # d offset +2 from the centre
    t = S.RandomAffine()
    out = t(spineaug.Batch(image), params=_affine_params(1, shear=(0.0, 0.0, torch.pi / 4, 0.0, 0.0, 0.0)))
    assert out.image[0, 0, 6, 2, 4] == pytest.approx(1.0, abs=1e-5)
    assert out.image.sum() == pytest.approx(1.0, abs=1e-5)


def test_composed_warps_resample_once_and_match_sequential_maps():
    # Two 45-degree rotations fused give the same result as one 90-degree rotation (one interpolation),
    # whereas applying them one after another would blur twice.
    image, label = make_batch(b=1, shape=(9, 11, 11))
    quarter = (torch.pi / 4, 0.0, 0.0)
    first, second = S.RandomAffine(), S.RandomAffine()
    batch = spineaug.Batch(image, label)
    warps = [t.sampling(_affine_params(1, angles=quarter), batch).warp for t in (first, second)]
    fused = R.resample(batch, warps)
    torch.testing.assert_close(fused.image, torch.rot90(image, k=-1, dims=(3, 4)), atol=1e-4, rtol=0)
    assert torch.equal(fused.label, torch.rot90(label, k=-1, dims=(3, 4)))


def test_warps_compose_in_the_order_they_move_the_image():
    # a whole-voxel shift and a flip do not commute: composing [shift, flip] must equal shifting, then flipping
    image, label = make_batch(b=2, shape=(9, 8, 7))
    batch = spineaug.Batch(image, label)
    shift = R.Warp(torch.eye(3).expand(2, 3, 3), torch.tensor([[2.0, 0.0, -1.0]] * 2))
    flip = R.Warp(torch.diag_embed(torch.tensor([[-1.0, 1.0, -1.0]] * 2)), torch.zeros(2, 3))
    stepwise = R.resample(R.resample(batch, [shift]), [flip])
    fused = R.resample(batch, [shift, flip])
    assert torch.equal(fused.label, stepwise.label)
    torch.testing.assert_close(fused.image, stepwise.image, atol=1e-5, rtol=0)
    swapped = R.resample(batch, [flip, shift])
    assert not torch.equal(swapped.label, stepwise.label)
    composed = R.Warp.compose([shift, flip], 2)
    assert torch.equal(composed.matrix, shift.followed_by(flip).matrix)
    assert torch.equal(composed.shift, shift.followed_by(flip).shift)


