"""The training patch has one owner: ``Pipeline.for_patch`` (patch -> enlarged read -> pipeline cutting the centre).

Read sizes are checked against answers computed by hand and against the values the earlier, separate computations
(the data module's NumPy search, the study arms, the nnU-Net trainers) gave, so moving the recipe changed nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import spineaug
from spineaug.functional.spatial import rotation_matrix
from spineaug.transforms import RandomFlip, RandomSpatial
from spineaug.transforms.spatial import enclosing_read, rotation_grid


def _spatial(rotation_deg, scale=(1.0, 1.0), **kwargs) -> spineaug.Pipeline:
    return spineaug.Pipeline(RandomSpatial(p_rotation=1.0, rotation_deg=rotation_deg, p_scale=1.0, scale=scale, **kwargs))


# ------------------------------------------------------------------------------------------------ known answers


def test_a_quarter_turn_range_about_one_axis_reads_the_in_plane_diagonal():
    """Turning (24, 32, 40) about D by anything in [0, 90] deg: the H/W extent peaks at the in-plane half-diagonal.

    Half sizes (voxel centres): h = 15.5, w = 19.5; the largest reach along H or W over all angles is
    sqrt(15.5^2 + 19.5^2) = 24.91, so a read of ceil(2 * 24.91 + 1) = 51, raised to 52 for an even margin on both
    sides (52 - 32 = 20, 52 - 40 = 12). D is untouched.
    """
    assert math.ceil(2 * math.hypot(15.5, 19.5) + 1) == 51
    training = _spatial([[0.0, 90.0], [0.0, 0.0], [0.0, 0.0]]).for_patch((24, 32, 40))
    assert training.read_size == (24, 52, 52)
    assert training.margin == (0, 10, 6)
    # zoomed out by up to 1.4: D 1.4 * 11.5 = 16.1 -> 34; H/W 1.4 * 24.91 = 34.87 -> 71 -> 72 (even margins)
    assert _spatial([[0.0, 90.0], [0.0, 0.0], [0.0, 0.0]], (0.7, 1.4)).for_patch((24, 32, 40)).read_size == (34, 72, 72)


def test_an_exact_quarter_turn_swaps_the_two_in_plane_extents():
    """A fixed 90 deg turn about W maps D onto H: (16, 32, 48) needs 32 along D, and never less than the patch."""
    assert _spatial([[0.0, 0.0], [0.0, 0.0], [90.0, 90.0]]).for_patch((16, 32, 48)).read_size == (32, 32, 48)


def test_a_square_in_plane_patch_peaks_at_45_degrees():
    """(33, 33, 9) turned about W by [-90, 90]: reach 16 * sqrt(2) = 22.63 -> 47 (margin 7); W stays 9."""
    assert _spatial([[0.0, 0.0], [0.0, 0.0], [-90.0, 90.0]]).for_patch((33, 33, 9)).read_size == (47, 47, 9)
    # x 1.4: 31.68 -> ceil(64.36) = 65 in plane; W: 1.4 * 4 = 5.6 -> 13
    assert _spatial([[0.0, 0.0], [0.0, 0.0], [-90.0, 90.0]], (0.7, 1.4)).for_patch((33, 33, 9)).read_size == (65, 65, 13)


def test_zoom_out_alone_scales_the_half_patch():
    assert _spatial([0.0, 0.0], (0.7, 1.5)).for_patch((24, 24, 24)).read_size == (36, 36, 36)  # 23 * 1.5 + 1
    assert _spatial([0.0, 0.0], (0.5, 1.0)).for_patch((24, 32, 40)).read_size == (24, 32, 40)  # zoom-in reads less


def test_elastic_displacement_widens_the_read_by_its_largest_magnitude():
    pipe = spineaug.Pipeline(RandomSpatial(p_rotation=0.0, p_scale=0.0, p_elastic=0.5, elastic_magnitude=(0.0, 3.0)))
    assert pipe.for_patch((16, 20, 24)).read_size == (22, 26, 30)  # 3 voxels each side


# ------------------------------------------------------------------------------------- same values as before

# Read sizes that the data module's own NumPy search (and the study arms built on it) gave before the move.
EARLIER_PRESETS = {
    ("xdomain", (24, 32, 40)): (72, 78, 78),
    ("nnunet", (64, 128, 96)): (214, 240, 234),
    ("nnunet", (128, 128, 128)): (302, 308, 302),
    ("nnunet", (64, 64, 64)): (150, 154, 150),
    ("xdomain-plus", (8, 32, 32)): (50, 64, 64),
    ("none", (16, 16, 16)): (16, 16, 16),
}
EARLIER_SPECS = [  # (rotation_deg, scale, patch) -> read
    (15, (1.0, 1.0), (24, 32, 40), (42, 48, 52)),
    (15, (0.7, 1.4), (3, 5, 7), (9, 11, 13)),
    (45, (1.0, 1.0), (24, 32, 40), (56, 56, 56)),
    (180, (0.7, 1.4), (24, 32, 40), (78, 78, 78)),
    ((-10, 20), (0.7, 1.4), (24, 32, 40), (64, 70, 76)),
    (((-30, 30), (-15, 15), (-10, 20)), (1.0, 1.0), (24, 32, 40), (44, 54, 56)),
    (((-30, 30), (-15, 15), (-10, 20)), (0.7, 1.4), (24, 32, 40), (60, 76, 78)),
    (((-180, 180), (0, 0), (0, 0)), (0.7, 1.4), (24, 32, 40), (34, 72, 72)),
    (((0, 0), (0, 90), (0, 0)), (0.7, 1.4), (24, 32, 40), (66, 46, 66)),
    (((0, 0), (0, 0), (0, 90)), (1.0, 1.0), (3, 5, 7), (7, 7, 7)),
]


@pytest.mark.parametrize(("preset", "patch"), sorted(EARLIER_PRESETS))
def test_presets_read_what_they_read_before(preset, patch):
    from spineaug.harness.augment import build_augmentation

    expected = EARLIER_PRESETS[preset, patch]
    assert spineaug.Pipeline.from_preset(preset).for_patch(patch).read_size == expected
    assert build_augmentation(preset, patch).read_size == expected


@pytest.mark.parametrize(("rotation", "scale", "patch", "expected"), EARLIER_SPECS)
def test_rotation_specs_read_what_they_read_before(rotation, scale, patch, expected):
    from spineaug.data import enlarged_patch_size

    assert enlarged_patch_size(patch, rotation, scale) == expected
    spec = (-rotation, rotation) if isinstance(rotation, int) else rotation
    assert _spatial(spec, scale).for_patch(patch).read_size == expected


def test_the_training_pipeline_is_the_preset_cutting_its_centre():
    """The same config as the earlier recipe: the preset with the patch, ``crop="center"`` and no foreground pick."""
    patch = (24, 32, 40)
    expected = spineaug.Pipeline.from_preset("xdomain", patch_size=patch).config()
    spatial = next(e for e in expected["transforms"] if e["name"] == RandomSpatial.name)
    spatial.update(crop="center", p_foreground=0.0)
    training = spineaug.Pipeline.from_preset("xdomain").for_patch(patch)
    assert training.pipeline.config() == expected and training.patch == patch
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 1, *training.read_size, generator=g)
    label = torch.randint(0, 4, (2, 1, *training.read_size), generator=g)
    out, lab = training.pipeline(image, label, generator=torch.Generator().manual_seed(1))
    again, again_lab = spineaug.Pipeline.from_config(expected)(image, label, generator=torch.Generator().manual_seed(1))
    assert out.shape[2:] == patch and torch.equal(out, again) and torch.equal(lab, again_lab)


def test_a_pipeline_without_spatial_gets_a_pure_centre_crop():
    training = spineaug.Pipeline.from_config({"transforms": [{"name": "Gamma", "p": 1.0}]}).for_patch((8, 10, 12))
    assert training.read_size == training.patch == (8, 10, 12)
    crop = training.pipeline.find(RandomSpatial)
    assert len(crop) == 1 and crop[0].crop == "center" and crop[0].p == 0.0
    image = torch.rand(1, 1, 12, 14, 16)
    out, _ = training.pipeline.replace(RandomSpatial, p=0.0)(image)  # gamma aside, the middle of the read
    assert out.shape[2:] == (8, 10, 12)


def test_for_patch_keeps_seed_and_finite_check_and_rejects_bad_patches():
    pipe = spineaug.Pipeline.from_preset("nnunet", seed=7, check_finite=False)
    training = pipe.for_patch((16, 16, 16))
    assert training.pipeline.seed == 7 and training.pipeline.check_finite is False
    for bad in [(16, 16), (16, 0, 16), (16.5, 16, 16), "abc"]:
        with pytest.raises(ValueError, match="patch_size"):
            pipe.for_patch(bad)


def test_every_draw_reads_inside_the_read():
    """End to end with the transform's own sampling: a read of ones, zero padding, every sample rotated, scaled
    (zoom-out) and deformed: no output voxel touches the padding."""
    spatial = RandomSpatial(p_rotation=1.0, rotation_deg=((-40, 40), (-20, 25), (-180, 180)), p_scale=1.0,
                            scale=(1.2, 1.3), per_axis_scale=True, p_elastic=1.0, elastic_magnitude=(2.0, 3.0),
                            elastic_spacing=4)  # fmt: skip
    training = spineaug.Pipeline(spatial).for_patch((8, 12, 10))
    ones = torch.ones(16, 1, *training.read_size)
    out, _ = training.pipeline(ones, generator=torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 8, 12, 10)
    assert torch.allclose(out, torch.ones_like(out), atol=1e-5)


# -------------------------------------------------------------------------------------------- one convention


def _numpy_rotations(axis_angles: list[np.ndarray]) -> np.ndarray:
    """The data module's former NumPy construction: plane rotations about D, H, W, composed in both orders."""
    a, b, c = (x.ravel() for x in np.meshgrid(*axis_angles, indexing="ij"))

    def plane(t: np.ndarray, i: int, j: int) -> np.ndarray:
        m = np.zeros((t.size, 3, 3))
        m[:, range(3), range(3)] = 1.0
        m[:, i, i] = m[:, j, j] = np.cos(t)
        m[:, i, j], m[:, j, i] = -np.sin(t), np.sin(t)
        return m

    r_d, r_h, r_w = plane(a, 1, 2), plane(b, 2, 0), plane(c, 0, 1)
    return np.concatenate([r_d @ r_h @ r_w, r_w @ r_h @ r_d])


@pytest.mark.parametrize("rotation", [((-30, 30),) * 3, ((-180, 180), (0, 0), (0, 0)), ((0, 90), (-15, 15), (-10, 20))])
def test_rotation_grid_is_the_transforms_rotation_matrix_and_the_former_numpy_one(rotation):
    grid = rotation_grid(rotation)
    per_axis = []
    for lo, hi in rotation:
        lo = max(lo, hi - 360)
        n = 1 if lo == hi else min(37, max(2, math.ceil((hi - lo) / 2.5) + 1))
        per_axis.append(np.linspace(lo, hi, n))
    angles = torch.tensor(np.stack([x.ravel() for x in np.meshgrid(*per_axis, indexing="ij")], 1))
    radians = angles * (math.pi / 180)
    full = torch.cat([rotation_matrix(radians, order="w_first"), rotation_matrix(radians, order="d_first")])
    assert grid.shape == full.shape and torch.allclose(grid, full, atol=1e-12)
    former = _numpy_rotations([np.deg2rad(x) for x in per_axis])
    assert np.allclose(grid.numpy(), former, atol=1e-12)


def test_spatial_samples_with_the_d_first_order_that_the_grid_covers():
    """The matrices RandomSpatial applies lie in the grid's family: its d_first product of the same angles."""
    spatial = RandomSpatial(patch_size=(4, 4, 4), p_rotation=1.0, rotation_deg=(90.0, 90.0), p_scale=0.0)
    image = torch.zeros(1, 1, 4, 4, 4)
    params = spatial.sample_params(spineaug.Batch(image), torch.Generator().manual_seed(0))
    warp = spatial.sampling(params, spineaug.Batch(image)).warp
    assert torch.allclose(warp.matrix.double(), rotation_grid(((90, 90),) * 3)[1:], atol=1e-6)


def test_enclosing_read_is_cached_and_symmetric():
    assert enclosing_read((24, 32, 40), [(-30, 30)] * 3, 1.4) == (72, 78, 78)
    assert enclosing_read([24, 32, 40], ((-30.0, 30.0),) * 3, 1.4) == (72, 78, 78)


# ------------------------------------------------------------------------------------- find / replace / sampler


def test_find_and_replace_work_on_transform_classes():
    pipe = spineaug.Pipeline.from_preset("nnunet")
    (flip,) = pipe.find(RandomFlip)
    assert flip.axes == (0, 1, 2)
    changed = pipe.replace(RandomFlip, axes=(0,))
    assert changed.find(RandomFlip)[0].axes == (0,) and pipe.find(RandomFlip)[0].axes == (0, 1, 2)
    assert changed.find(RandomSpatial)[0].config() == pipe.find(RandomSpatial)[0].config()
    assert changed.find(RandomSpatial)[0] is not pipe.find(RandomSpatial)[0]  # a copy, not shared
    with pytest.raises(spineaug.ConfigError, match="axes"):
        pipe.replace(RandomFlip, axes=(3,))
    with pytest.raises(ValueError, match="no RandomSpatial entry"):
        spineaug.Pipeline.from_preset("none").replace(RandomSpatial, p=0.5)


def test_sampler_reads_the_owners_read_size():
    from spineaug.data import PatchSampler, Sample

    rng = np.random.default_rng(0)
    label = np.zeros((30, 34, 38), dtype=np.int64)
    label[10:20, 10:20, 10:20] = 1
    sample = Sample("a", rng.normal(size=(1, 30, 34, 38)).astype(np.float32), label, np.eye(4))
    training = spineaug.Pipeline.from_preset("nnunet").for_patch((8, 10, 12))
    by_size = PatchSampler([sample], (8, 10, 12), length=4, read_size=training.read_size)
    by_range = PatchSampler([sample], (8, 10, 12), length=4, rotation_deg=(-30.0, 30.0), scale=(0.7, 1.4))
    assert by_size.read_size == by_range.read_size == training.read_size
    assert all(torch.equal(by_size[i][0], by_range[i][0]) for i in range(4))
    with pytest.raises(ValueError, match="even number"):
        PatchSampler([sample], (8, 10, 12), read_size=(9, 10, 12))
    with pytest.raises(ValueError, match="not both"):
        PatchSampler([sample], (8, 10, 12), read_size=training.read_size, rotation_deg=30)
