"""Appearance of the phantom domains: qualitative MR/CT physics, noise and acquisition geometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spineaug import phantom
from spineaug.phantom import Tissue as T

REQUIRED = {"ct", "t1w", "t2w", "ct-lowdose", "t2w-fatsat", "pd", "dixon-water", "dixon-fat", "t1w-contrast", "mr-lowfield"}
CUBE = 6


@pytest.fixture(scope="module")
def cubes() -> np.ndarray:
    """A tissue map of 6-voxel cubes, each of a random tissue, so every tissue is measured pure and all over the FOV."""
    rng = np.random.default_rng(0)
    n = 8
    ids = rng.permutation(np.resize(np.arange(phantom.N_TISSUES), n**3)).reshape(n, n, n).astype(np.uint8)
    return np.kron(ids, np.ones((CUBE,) * 3, np.uint8))


def pure_means(image: np.ndarray, tissue: np.ndarray) -> dict[T, float]:
    """Mean per tissue over cube interiors (2 voxels from every cube face)."""
    core = np.zeros(tissue.shape, bool)
    inner = np.zeros(CUBE, bool)
    inner[2:-2] = True
    core[np.ix_(*[np.tile(inner, tissue.shape[i] // CUBE) for i in range(3)])] = True
    return {t: float(image[core & (tissue == t)].mean()) for t in T}


@pytest.fixture(scope="module")
def rendered(cubes) -> dict[str, dict[T, float]]:
    return {d: pure_means(phantom.render(cubes, d, 3, spacing=2.0), cubes) for d in phantom.DOMAINS}


def test_all_required_domains_with_full_tables():
    assert REQUIRED <= set(phantom.DOMAINS)
    assert set(phantom.SOURCE_DOMAINS) == {"ct", "t1w", "t2w"}
    for spec in phantom.DOMAINS.values():
        assert len(spec.means) == phantom.N_TISSUES and spec.modality in ("ct", "mr")


def test_ct_contrasts(rendered):
    for d in ("ct", "ct-lowdose"):
        m = rendered[d]
        assert m[T.AIR] < -900 and -150 < m[T.FAT] < -50
        assert m[T.CORTICAL] > m[T.CANCELLOUS] > m[T.MUSCLE] > m[T.CSF]  # bone bright, CSF dark on soft window
        assert m[T.CORTICAL] > 700 and m[T.SCLEROTIC] > m[T.CANCELLOUS] > m[T.LYTIC]


def test_mr_contrasts(rendered):
    t1, t2, stir = rendered["t1w"], rendered["t2w"], rendered["t2w-fatsat"]
    assert t1[T.CSF] < t1[T.CORD] and t1[T.CSF] < t1[T.MUSCLE] < t1[T.FAT]  # CSF dark, fat bright on T1w
    assert t2[T.CSF] > t2[T.CORD] and t2[T.CSF] > t2[T.MUSCLE] and t2[T.FAT] > 2 * t2[T.MUSCLE]
    assert t2[T.NUCLEUS] > 2 * t2[T.NUCLEUS_DEGENERATED]  # degenerated discs dark on T2w
    assert stir[T.FAT] < stir[T.MUSCLE] and stir[T.CSF] > 4 * stir[T.FAT] and stir[T.LYTIC] > stir[T.CANCELLOUS]
    assert rendered["dixon-water"][T.FAT] < rendered["dixon-water"][T.MUSCLE]
    assert rendered["dixon-fat"][T.FAT] > 5 * rendered["dixon-fat"][T.MUSCLE]
    assert rendered["pd"][T.CSF] > rendered["pd"][T.MUSCLE]
    t1c = rendered["t1w-contrast"]
    assert t1c[T.BLOOD] > 1.5 * t1c[T.MUSCLE] and t1[T.BLOOD] < t1[T.MUSCLE]  # enhancing vessels vs flow void
    for d, spec in phantom.DOMAINS.items():
        if spec.modality == "mr":
            m = rendered[d]
            assert m[T.CORTICAL] < m[T.MUSCLE], d  # cortical bone dark on every MR sequence
            assert m[T.AIR] < 0.5 * max(m[T.MUSCLE], m[T.FAT]) and m[T.AIR] < m[T.MUSCLE], d


def test_mr_images_positive_ct_in_hu(cubes):
    for d, spec in phantom.DOMAINS.items():
        img = phantom.render(cubes, d, 1, spacing=2.0)
        assert img.dtype == np.float32 and np.isfinite(img).all()
        if spec.modality == "mr":
            assert img.min() >= 0
        else:
            assert img.min() >= -1024 and img.max() <= 3071


def test_noise_levels(cubes):
    def core_sd(img, tissue):  # mean sd inside the cores of the cubes of one tissue (bias/heterogeneity removed)
        blocks = img.reshape(8, CUBE, 8, CUBE, 8, CUBE)[:, 2:-2, :, 2:-2, :, 2:-2]
        ids = cubes[::CUBE, ::CUBE, ::CUBE]
        return float(np.mean([blocks[i, :, j, :, k, :].std() for i, j, k in np.argwhere(ids == tissue)]))

    def ct_noise(d):
        return core_sd(phantom.render(cubes, d, 2, spacing=2.0), T.MUSCLE)

    def mr_snr(d):  # brightest tissue (CSF) over the noise floor in air
        img = phantom.render(cubes, d, 2, spacing=2.0)
        return pure_means(img, cubes)[T.CSF] / core_sd(img, T.AIR)

    assert ct_noise("ct-lowdose") > 2 * ct_noise("ct")
    assert mr_snr("mr-lowfield") < mr_snr("t2w") / 1.4


def test_mr_thick_sagittal_slices_blur_axis0_only(cubes):
    def anisotropy(d):  # edge energy along axis 0 relative to axis 2 on a symmetric cube phantom
        img = phantom.render(cubes, d, 4, spacing=1.0)
        return (np.diff(img, axis=0) ** 2).mean() / (np.diff(img, axis=2) ** 2).mean()

    # CT: near-isotropic (axial slices at most slightly thicker: a bit less energy along z)
    assert 0.7 < anisotropy("ct") < 2.0
    # MR: 3-6 mm sagittal slices resampled to a 1 mm grid remove most edge energy along axis 0
    for d in ("t1w", "t2w", "mr-lowfield"):
        assert anisotropy(d) < 0.55 * anisotropy("ct"), d


def test_contrasts_hold_on_a_real_case():
    seed = 3  # has both healthy and degenerated discs
    tissue = phantom.make_case(seed, "ct").tissue
    assert (tissue == T.NUCLEUS).any() and (tissue == T.NUCLEUS_DEGENERATED).any()
    core = {t: ndimage.binary_erosion(tissue == t) for t in (T.CSF, T.MUSCLE, T.FAT)}
    for d in ("ct", "t1w", "t2w"):
        img = phantom.make_case(seed, d).image
        m = {t: img[mask].mean() for t, mask in core.items()}
        if d == "t2w":
            assert m[T.CSF] > m[T.FAT] > m[T.MUSCLE]
            assert img[tissue == T.NUCLEUS].mean() > 2 * img[tissue == T.NUCLEUS_DEGENERATED].mean()
        else:
            assert m[T.CSF] < m[T.MUSCLE]
            assert (m[T.FAT] > m[T.MUSCLE]) == (d == "t1w")
