"""Anatomy of the phantom: labels, tissue consistency, pairing, determinism, plausibility, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spineaug import phantom
from spineaug.phantom import Tissue, anatomy

SMALL = dict(shape=(40, 48, 80), spacing=(3.2, 3.2, 3.2))  # same field of view as the default grid


@pytest.fixture(scope="module")
def default_cases() -> list[phantom.Case]:
    return [phantom.make_case(seed, "ct") for seed in (0, 1, 2)]


def test_default_grid_and_affine(default_cases):
    case = default_cases[0]
    assert case.image.shape == case.label.shape == case.tissue.shape == phantom.DEFAULT_SHAPE
    assert case.image.dtype == np.float32 and case.label.dtype == np.uint8 and case.tissue.dtype == np.uint8
    assert case.spacing == phantom.DEFAULT_SPACING
    np.testing.assert_allclose(np.diag(case.affine)[:3], phantom.DEFAULT_SPACING)
    centre = case.affine @ np.array([*(np.array(case.image.shape) - 1) / 2, 1.0])
    np.testing.assert_allclose(centre[:3], 0, atol=1e-9)


def test_every_label_class_and_many_tissues_present(default_cases):
    for case in default_cases:
        assert set(np.unique(case.label)) == {0, 1, 2, 3}, case.info
        assert len(np.unique(case.tissue)) >= 12


def test_label_is_derived_from_tissue(default_cases):
    for case in default_cases:
        np.testing.assert_array_equal(case.label, phantom.tissue_to_label(case.tissue))
    t = np.arange(phantom.N_TISSUES, dtype=np.uint8)
    lab = phantom.tissue_to_label(t)
    assert lab[Tissue.CORTICAL] == lab[Tissue.CANCELLOUS] == lab[Tissue.LYTIC] == lab[Tissue.SCLEROTIC] == 1
    assert lab[Tissue.ANNULUS] == lab[Tissue.NUCLEUS] == lab[Tissue.NUCLEUS_DEGENERATED] == 2
    assert lab[Tissue.CSF] == lab[Tissue.CORD] == 3
    assert lab[Tissue.EPIDURAL_FAT] == lab[Tissue.MUSCLE] == lab[Tissue.AIR] == 0


def test_spine_is_anatomically_arranged(default_cases):
    for case in default_cases:
        lab = case.label
        # separate discs stacked along z between bodies
        discs, n = ndimage.label(lab == 2)
        sizes = ndimage.sum_labels(np.ones_like(lab), discs, range(1, n + 1))
        assert 4 <= int((sizes > 20).sum()) <= 8, case.info
        disc_z = sorted(ndimage.center_of_mass(lab == 2, discs, [i + 1 for i in np.flatnonzero(sizes > 20)]), key=lambda c: c[2])
        gaps = np.diff([c[2] for c in disc_z])
        assert np.all(gaps > 8) and np.all(gaps < 25)  # one vertebra (16-50 mm) between consecutive discs
        # the canal is a continuous tube behind the discs, along nearly the whole height
        canal_z = (lab == 3).any(axis=(0, 1))
        assert canal_z.mean() > 0.9
        assert ndimage.label(lab == 3)[1] == 1
        yy = np.arange(lab.shape[1])[None, :, None]
        assert (yy * (lab == 3)).sum() / (lab == 3).sum() < (yy * (lab == 2)).sum() / (lab == 2).sum() - 5
        # bodies: vertebra voxels in front of the canal exist at every disc gap
        # cord ends above the bottom of the sac (conus medullaris), CSF continues below
        t = case.tissue
        cord_z = np.flatnonzero((t == Tissue.CORD).any(axis=(0, 1)))
        csf_z = np.flatnonzero((t == Tissue.CSF).any(axis=(0, 1)))
        assert cord_z.size and cord_z.min() > csf_z.min() + 10
        # air behind the back, body tissue in front
        assert (t[:, 0, :] == Tissue.AIR).mean() > 0.5
        assert (t[:, -1, :] != Tissue.AIR).all()


def test_cases_are_deterministic_and_seeds_differ():
    a = phantom.make_case(7, "t1w", **SMALL)
    b = phantom.make_case(7, "t1w", **SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.tissue, b.tissue)
    c = phantom.make_case(8, "t1w", **SMALL)
    assert (c.tissue != a.tissue).mean() > 0.05


def test_domains_are_paired_on_the_same_anatomy():
    cases = [phantom.make_case(4, d, **SMALL) for d in phantom.DOMAINS]
    for other in cases[1:]:
        np.testing.assert_array_equal(other.tissue, cases[0].tissue)
        np.testing.assert_array_equal(other.label, cases[0].label)
        np.testing.assert_array_equal(other.affine, cases[0].affine)
        assert not np.allclose(other.image, cases[0].image)


def test_render_reproduces_domain_appearance_from_tissue():
    case = phantom.make_case(5, "t2w", **SMALL)
    again = phantom.render(case.tissue, "t2w", 5, spacing=SMALL["spacing"])
    assert again.shape == case.tissue.shape and again.dtype == np.float32 and np.isfinite(again).all()
    np.testing.assert_array_equal(again, phantom.render(case.tissue, "t2w", 5, spacing=SMALL["spacing"]))
    # same appearance draw (scale, contrasts): only partial volume and noise differ
    assert np.corrcoef(again.ravel(), case.image.ravel())[0, 1] > 0.85


def test_pathology_and_variation_occur():
    seen = {"fracture": 0, "lesion": 0, "degenerated": 0}
    levels = set()
    for seed in range(24):
        anat = anatomy.generate(seed, (32, 40, 64), (4.0, 4.0, 4.0))
        levels.add(len(anat.levels))
        seen["fracture"] += "fracture" in anat.info
        seen["degenerated"] += bool(anat.info["degenerated_discs"])
        if "lesion" in anat.info:
            seen["lesion"] += 1
            kind = Tissue[anat.info["lesion"]["kind"].upper()]
            assert (anat.tissue == kind).any()
    assert levels == {7, 8, 9}
    assert all(v >= 2 for v in seen.values()), seen


@pytest.mark.parametrize("spacing", [0, -2.0, float("nan"), (2.0, 2.0), "a", (2.0, 2.0, 50.0)])
def test_invalid_spacing_is_named(spacing):
    with pytest.raises(ValueError, match="spacing"):
        phantom.make_case(0, "ct", spacing=spacing, shape=(16, 16, 16))


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 4), (16.0, 16, 16), 16, (16, 16, 16, 16)])
def test_invalid_shape_is_named(shape):
    with pytest.raises(ValueError, match="shape"):
        phantom.make_case(0, "ct", shape=shape)


def test_bad_domain_seed_and_tissue():
    with pytest.raises(ValueError, match="unknown domain 'mri'"):
        phantom.make_case(0, "mri", **SMALL)
    with pytest.raises(ValueError, match="seed"):
        phantom.make_case(-1, "ct", **SMALL)
    with pytest.raises(ValueError, match="tissue"):
        phantom.render(np.zeros((8, 8, 8), np.float32), "ct", 0)
    with pytest.raises(ValueError, match="tissue"):
        phantom.render(np.full((8, 8, 8), 200, np.uint8), "ct", 0)
    with pytest.raises(ValueError, match="3-D"):
        phantom.render(np.zeros((8, 8), np.uint8), "ct", 0)
