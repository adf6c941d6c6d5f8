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


# ------------------------------------------------------------------------------------------------ enlarged patches


def test_enlarged_patch_size_contains_every_rotation_and_scale():
    from spineaug.data import enlarged_patch_size

    assert enlarged_patch_size((24, 32, 40)) == (24, 32, 40)
    assert enlarged_patch_size((24, 32, 40), 0, (0.5, 1.0)) == (24, 32, 40)  # zoom-in reads less
    assert enlarged_patch_size((24, 24, 24), 0, (0.7, 1.5)) == (36, 36, 36)  # 23 * 1.5 + 1 -> 36 (even margin)
    patch = np.array((24, 32, 40))
    size = np.array(enlarged_patch_size(patch, [(-30, 30), (-15, 15), (-10, 20)], (0.7, 1.4)))
    assert ((size - patch) % 2 == 0).all() and (size >= patch).all()
    half = (patch - 1) / 2
    corners = np.stack(np.meshgrid(*[[-h, h] for h in half], indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(0)
    for _ in range(300):  # random rotations and scales inside the ranges never read outside the enlarged patch
        a = np.deg2rad([rng.uniform(-30, 30), rng.uniform(-15, 15), rng.uniform(-10, 20)])
        m = torch.tensor(np.diag([rng.uniform(0.7, 1.4)] * 3))
        from spineaug.functional.spatial import rotation_matrix

        r = rotation_matrix(torch.tensor(a)[None])[0].double() @ m
        reach = np.abs(corners @ r.numpy().T).max(0)
        assert (reach <= (size - 1) / 2 + 1e-9).all()
    with pytest.raises(ValueError, match="rotation_deg"):
        enlarged_patch_size((8, 8, 8), [(10, -10)] * 3)
    with pytest.raises(ValueError, match="scale_range"):
        enlarged_patch_size((8, 8, 8), 10, (0, 1))


def test_enlarged_patch_size_covers_nnunets_initial_patch_size():
    pytest.importorskip("nnunetv2")
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    from spineaug.data import enlarged_patch_size

    rotation = tuple(np.deg2rad([-30.0, 30.0]))
    for patch in [(64, 64, 64), (48, 96, 128)]:
        theirs = get_patch_size(patch, rotation, rotation, rotation, (1.0, 1.0))
        assert (np.array(enlarged_patch_size(patch, 30, (1.0, 1.0))) >= theirs).all()


def test_enlarged_items_hold_the_plain_patch_in_their_middle():
    samples = [_sample(shape=(30, 34, 38)), _sample(shape=(26, 30, 34), case_id="b")]
    plain = PatchSampler(samples, (8, 10, 12), length=12, foreground_p=0.5, seed=3)
    big = PatchSampler(samples, (8, 10, 12), length=12, foreground_p=0.5, seed=3, rotation_deg=20, scale=(0.8, 1.2))
    assert plain.read_size == plain.patch == (8, 10, 12)
    margin = (np.array(big.read_size) - 8 - np.array([0, 2, 4])) // 2
    assert big.read_size > (8, 10, 12) and (margin > 0).all()
    inner = tuple(slice(int(m), int(m) + p) for m, p in zip(margin, (8, 10, 12)))
    for i in range(12):
        (img_p, lab_p), (img_b, lab_b) = plain[i], big[i]
        assert img_b.shape == (2, *big.read_size) and lab_b.shape == (1, *big.read_size)
        assert torch.equal(img_b[(slice(None), *inner)], img_p) and torch.equal(lab_b[(slice(None), *inner)], lab_p)


def test_foreground_voxel_stays_in_the_centre_of_the_final_patch():
    fg_box = (slice(14, 16), slice(15, 17), slice(16, 18))  # away from the borders: no clipping
    ps = PatchSampler([_sample(shape=(32, 34, 36), fg_box=fg_box)], (8, 8, 8), length=20, foreground_p=1.0,
                      rotation_deg=30, scale=(0.7, 1.4))  # fmt: skip
    centre = tuple((np.array(ps.read_size) - 8) // 2 + 4)  # the fg voxel sits at index patch // 2 of the final patch
    assert all(int(ps[i][1][(0, *centre)]) == 2 for i in range(20))


def _padded_fraction(read_rotation: float, read_scale, *, centred: bool, foreground_p: float = 0.33) -> float:
    """Mean fraction of voxels of the final patch that are padding after a rotation + zoom-out of every sample."""
    import spineaug

    shape, patch = (96, 96, 96), (24, 24, 24)
    label = np.zeros(shape, np.uint8)
    label[40:56, 40:56, 30:66] = 1
    sample = Sample("ones", np.ones((1, *shape), np.float32), label, np.eye(4))
    ps = PatchSampler([sample], patch, length=24, foreground_p=foreground_p, seed=0, rotation_deg=read_rotation,
                      scale=read_scale)  # fmt: skip
    image, lab = (torch.stack(t) for t in zip(*(ps[i] for i in range(len(ps)))))
    spatial = {"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [-30, 30], "p_scale": 1.0, "scale": [0.7, 1.4]}
    if not centred:  # Spatial crops the final patch itself (uniformly placed inside what it is given)
        spatial["patch_size"] = list(patch)
    aug = spineaug.Pipeline.from_config({"transforms": [spatial]}, seed=0)
    out, _ = aug(image, lab)
    if centred:  # rotation about the enlarged patch's centre, final patch from its middle (nnU-Net's centre crop)
        m = (np.array(out.shape[2:]) - patch) // 2
        out = out[:, :, m[0] : m[0] + 24, m[1] : m[1] + 24, m[2] : m[2] + 24]
    assert out.shape[2:] == patch
    return float((out < 0.5).float().mean())


def test_enlarged_patches_remove_the_padding_of_rotations_and_zoom_out():
    plain = _padded_fraction(0, (1.0, 1.0), centred=True)
    enlarged = _padded_fraction(30, (0.7, 1.4), centred=True)
    interior = _padded_fraction(30, (0.7, 1.4), centred=True, foreground_p=1.0)  # patches far from the borders
    uniform = _padded_fraction(30, (0.7, 1.4), centred=False)  # Spatial(patch_size) places its crop uniformly
    assert plain > 0.1  # every sample rotates by up to 30 deg per axis and zooms out by up to 1.4
    assert interior == 0.0  # the enlarged patch contains every rotation/scale of the final patch
    assert enlarged < 0.01  # what is left comes from the volume's own borders (nnU-Net pads there too)
    assert uniform < plain / 2  # an off-centre crop of the enlarged patch still reads beyond it now and then
