"""Appearance of the phantom: per-domain tissue intensity tables and the renderer (tissue map -> image).

A domain is a CT protocol or an MR sequence. Rendering a tissue map draws, from a generator seeded by
``(seed, domain)``: per-case tissue values around the domain's table, a smooth heterogeneity field (organs,
muscle), a trabecular texture in cancellous bone, and the acquisition: partial volume (the tissue map may be
finer than the output; blocks are averaged), the point-spread / slice profile (CT: near-isotropic blur; MR:
sagittal thick slices along axis 0, resampled back to the working grid), an MR bias field, and noise
(Gaussian for CT, Rician for MR). CT is in Hounsfield units; MR in arbitrary positive units with a random
global scale.

The tables follow the physics qualitatively: CSF is dark on T1w and CT, bright on T2w, STIR and PD;
fat is bright on T1w/T2w and dark with fat saturation and on Dixon water; cortical bone is bright on CT and
dark on every MR sequence; degenerated (dehydrated) nuclei are dark on T2w.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
from scipy import ndimage

from spineaug.phantom.anatomy import N_TISSUES, Tissue

T = Tissue


@dataclass(frozen=True)
class Domain:
    """Appearance model of one CT protocol or MR sequence.

    Attributes:
        name: Domain key, e.g. ``"t2w"``.
        modality: ``"ct"`` (Hounsfield units, Gaussian noise) or ``"mr"`` (arbitrary units, Rician noise).
        description: One line for ``dataset.json`` and reports.
        channel_name: nnU-Net channel name (``"CT"`` selects nnU-Net's CT normalisation).
        means: Mean value per tissue, indexed by :class:`Tissue` (HU for CT; relative, max ~1, for MR).
        variation: Per-case spread of tissue values: CT ``(sd_hu, sd_relative)``; MR ``(cv, unused)``.
        texture: Trabecular texture amplitude in cancellous bone (HU for CT, relative for MR).
        noise: Range of the noise level: CT sd in HU; MR sd relative to a unit signal.
        noise_blur: Spatial correlation of the noise (voxels, Gaussian sigma); 0 = white.
        psf: Range of the Gaussian point-spread sigma in output voxels (in-plane for MR).
        slice_thickness_mm: MR sagittal slice thickness range (slices thick along axis 0); None for CT.
        bias: Range of the MR bias field strength (sd of the log field); 0 for CT.
        scale: Range of the MR global intensity scale (log-uniform); (1, 1) for CT.
    """

    name: str
    modality: Literal["ct", "mr"]
    description: str
    channel_name: str
    means: tuple[float, ...]
    variation: tuple[float, float]
    texture: float
    noise: tuple[float, float]
    noise_blur: float = 0.0
    psf: tuple[float, float] = (0.3, 0.5)
    slice_thickness_mm: tuple[float, float] | None = None
    bias: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)

    def mean(self, tissue: Tissue) -> float:
        """The table mean of one tissue."""
        return self.means[int(tissue)]


def _table(**values: float) -> tuple[float, ...]:
    """Per-tissue table from keyword names (lower-case :class:`Tissue` names); every tissue must be given."""
    missing = {t.name.lower() for t in T} - values.keys()
    if missing:
        raise ValueError(f"tissue table misses {sorted(missing)}")
    return tuple(float(values[t.name.lower()]) for t in T)


_CT = _table(
    air=-1000, skin=30, fat=-100, muscle=50, viscera=40, blood=42, retro_fat=-95, epidural_fat=-90, csf=8, cord=32,
    cortical=1350, cancellous=230, annulus=85, nucleus=70, nucleus_degenerated=55, sclerotic=850, lytic=35,
)  # fmt: skip
_MR_TABLES = {
    "t1w": _table(
        air=0, skin=0.45, fat=1.0, muscle=0.32, viscera=0.42, blood=0.12, retro_fat=0.95, epidural_fat=0.92,
        csf=0.10, cord=0.42, cortical=0.03, cancellous=0.72, annulus=0.30, nucleus=0.38, nucleus_degenerated=0.26,
        sclerotic=0.08, lytic=0.22,
    ),
    "t2w": _table(
        air=0, skin=0.35, fat=0.82, muscle=0.18, viscera=0.45, blood=0.08, retro_fat=0.80, epidural_fat=0.78,
        csf=1.0, cord=0.38, cortical=0.03, cancellous=0.50, annulus=0.18, nucleus=0.85, nucleus_degenerated=0.22,
        sclerotic=0.07, lytic=0.88,
    ),
    "t2w-fatsat": _table(
        air=0, skin=0.30, fat=0.05, muscle=0.16, viscera=0.42, blood=0.08, retro_fat=0.05, epidural_fat=0.06,
        csf=1.0, cord=0.40, cortical=0.02, cancellous=0.12, annulus=0.15, nucleus=0.80, nucleus_degenerated=0.22,
        sclerotic=0.05, lytic=0.95,
    ),
    "pd": _table(
        air=0, skin=0.50, fat=0.88, muscle=0.40, viscera=0.55, blood=0.10, retro_fat=0.85, epidural_fat=0.84,
        csf=0.72, cord=0.58, cortical=0.04, cancellous=0.70, annulus=0.32, nucleus=0.68, nucleus_degenerated=0.40,
        sclerotic=0.10, lytic=0.70,
    ),
    "dixon-water": _table(
        air=0, skin=0.40, fat=0.06, muscle=0.45, viscera=0.52, blood=0.20, retro_fat=0.07, epidural_fat=0.07,
        csf=0.22, cord=0.42, cortical=0.02, cancellous=0.20, annulus=0.30, nucleus=0.42, nucleus_degenerated=0.28,
        sclerotic=0.08, lytic=0.50,
    ),
    "dixon-fat": _table(
        air=0, skin=0.08, fat=1.0, muscle=0.07, viscera=0.08, blood=0.02, retro_fat=0.95, epidural_fat=0.92,
        csf=0.02, cord=0.03, cortical=0.015, cancellous=0.62, annulus=0.03, nucleus=0.02, nucleus_degenerated=0.03,
        sclerotic=0.05, lytic=0.08,
    ),
    "t1w-contrast": _table(
        air=0, skin=0.50, fat=1.0, muscle=0.36, viscera=0.62, blood=0.85, retro_fat=0.95, epidural_fat=0.92,
        csf=0.10, cord=0.44, cortical=0.03, cancellous=0.75, annulus=0.34, nucleus=0.40, nucleus_degenerated=0.28,
        sclerotic=0.10, lytic=0.70,
    ),
    "mr-lowfield": _table(
        air=0, skin=0.38, fat=0.88, muscle=0.24, viscera=0.45, blood=0.10, retro_fat=0.85, epidural_fat=0.82,
        csf=0.95, cord=0.40, cortical=0.04, cancellous=0.58, annulus=0.24, nucleus=0.75, nucleus_degenerated=0.28,
        sclerotic=0.08, lytic=0.80,
    ),
}

_HETEROGENEITY_CT = np.zeros(N_TISSUES, np.float32)  # HU amplitude of the smooth field
_HETEROGENEITY_CT[[T.VISCERA, T.MUSCLE, T.FAT, T.RETRO_FAT]] = (18, 6, 8, 8)
_HETEROGENEITY_MR = np.zeros(N_TISSUES, np.float32)  # relative amplitude
_HETEROGENEITY_MR[[T.VISCERA, T.MUSCLE, T.FAT, T.RETRO_FAT, T.CANCELLOUS]] = (0.25, 0.06, 0.05, 0.05, 0.06)

_MR_COMMON = dict(
    modality="mr", variation=(0.08, 0.0), texture=0.12, noise=(0.012, 0.035), psf=(0.3, 0.5),
    slice_thickness_mm=(3.0, 4.0), bias=(0.12, 0.3), scale=(100.0, 3000.0),
)  # fmt: skip


def _mr(name: str, description: str, channel: str, **over) -> Domain:
    return Domain(name=name, description=description, channel_name=channel, means=_MR_TABLES[name],
                  **{**_MR_COMMON, **over})  # fmt: skip


_ALL = (
    Domain("ct", "ct", "CT, standard dose, soft-tissue/bone kernel, near-isotropic", "CT", _CT,
           variation=(6.0, 0.12), texture=70.0, noise=(8.0, 20.0), psf=(0.35, 0.6)),
    _mr("t1w", "MR T1-weighted turbo spin echo, sagittal thick slices", "T1w"),
    _mr("t2w", "MR T2-weighted turbo spin echo, sagittal thick slices", "T2w"),
    Domain("ct-lowdose", "ct", "CT, low dose: strong correlated noise", "CT", _CT,
           variation=(6.0, 0.12), texture=70.0, noise=(45.0, 90.0), noise_blur=0.8, psf=(0.5, 0.8)),
    _mr("t2w-fatsat", "MR STIR / fat-saturated T2w: fat dark, fluid and oedema bright", "STIR"),
    _mr("pd", "MR proton-density weighted", "PD"),
    _mr("dixon-water", "MR Dixon water image (T1w Dixon): fat suppressed", "DixonWater", bias=(0.08, 0.2)),
    _mr("dixon-fat", "MR Dixon fat image: only fat and fatty marrow bright", "DixonFat", bias=(0.08, 0.2)),
    _mr("t1w-contrast", "MR T1w after gadolinium: vessels, viscera and lytic lesions enhance", "T1wGd"),
    _mr("mr-lowfield", "MR T2w at low field (~0.3 T): low SNR, thick slices, blurrier", "T2wLowField",
        noise=(0.05, 0.09), slice_thickness_mm=(4.5, 6.0), psf=(0.6, 0.9), bias=(0.2, 0.4), variation=(0.1, 0.0)),
)  # fmt: skip

DOMAINS = MappingProxyType({d.name: d for d in _ALL})
"""All domains by name (read-only mapping name -> :class:`Domain`); the sources are ``SOURCE_DOMAINS``."""
SOURCE_DOMAINS = ("ct", "t1w", "t2w")
"""The domains the study trains on; the others are for out-of-domain evaluation."""


def get_domain(domain: str | Domain) -> Domain:
    """Look a domain up by name (a :class:`Domain` passes through); unknown names raise ``ValueError``."""
    if isinstance(domain, Domain):
        return domain
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; known domains: {', '.join(DOMAINS)}")
    return DOMAINS[domain]


def domain_rng(seed: int, domain: str) -> np.random.Generator:
    """The appearance generator of one (seed, domain) pair; independent of the anatomy's generator."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(domain.encode()), 0xD0]))


# --------------------------------------------------------------------------------------------------------------
# rendering


def render_tissue(
    tissue: np.ndarray, domain: str | Domain, seed: int, *, spacing: tuple[float, float, float], factor: int = 1
) -> np.ndarray:
    """Render a tissue map in one domain (validated arguments; see :func:`spineaug.phantom.render`).

    Args:
        tissue: (X, Y, Z) integer tissue map (RAS), each side divisible by ``factor``.
        domain: Domain name or :class:`Domain`.
        seed: Appearance seed.
        spacing: Voxel size of ``tissue`` in mm.
        factor: Integer supersampling factor: the output has shape ``tissue.shape // factor``.

    Returns:
        float32 image of shape ``tissue.shape // factor``.
    """
    spec = get_domain(domain)
    # every scalar of the appearance is drawn first, from its own stream, so a case and a re-rendering of its
    # tissue map at another resolution share them; dense fields (texture, noise) come from a second stream
    rng, dense = domain_rng(seed, spec.name).spawn(2)
    spacing = np.asarray(spacing, dtype=float)
    out_spacing = spacing * factor
    ct = spec.modality == "ct"
    means = np.asarray(spec.means, dtype=np.float64)
    if ct:
        sd = spec.variation[0] + spec.variation[1] * np.maximum(means, 0)
        values = means + rng.normal(0, 1, N_TISSUES) * sd
        values[T.AIR] = -1000.0
    else:
        values = means * np.clip(1 + rng.normal(0, spec.variation[0], N_TISSUES), 0.5, 1.5)
    psf = rng.uniform(*spec.psf)
    psf_z = psf * rng.uniform(1.0, 1.6)
    noise_sd = np.float32(rng.uniform(*spec.noise))
    field_seed = int(rng.integers(2**31))
    if not ct:
        thickness = rng.uniform(*spec.slice_thickness_mm)
        slice_offset = rng.uniform(-0.25, 0.25) * thickness
        bias_coef = rng.normal(size=_N_BIAS)
        bias_strength = rng.uniform(*spec.bias)
        scale = np.float32(np.exp(rng.uniform(*np.log(spec.scale))))

    image = values.astype(np.float32)[tissue]

    # smooth heterogeneity (organs, muscle, fat) on the whole volume; same knots for any resolution of one FOV
    field = _smooth_field(np.random.default_rng(field_seed), tissue.shape, spacing, scale_mm=35.0)
    het = (_HETEROGENEITY_CT if ct else _HETEROGENEITY_MR)[tissue]
    image += het * field if ct else image * het * field

    # trabecular texture in cancellous bone, only inside the bone's bounding box
    bone = tissue == T.CANCELLOUS
    box = _bbox(bone)
    if box is not None:
        sigma = 0.7 / spacing
        noise = ndimage.gaussian_filter(dense.standard_normal(bone[box].shape, dtype=np.float32), sigma, truncate=2.5)
        pattern = np.tanh(2.0 * noise / (noise.std() + 1e-6))
        amp = spec.texture * (1.0 if ct else float(values[T.CANCELLOUS]))
        image[box] += np.where(bone[box], amp * pattern, 0).astype(np.float32)

    if ct:
        image = _block_mean(image, (factor, factor, factor))
        image = ndimage.gaussian_filter(image, (psf, psf, psf_z), truncate=3.0)
        noise = dense.standard_normal(image.shape, dtype=np.float32)
        if spec.noise_blur:
            noise = ndimage.gaussian_filter(noise, (spec.noise_blur, spec.noise_blur, spec.noise_blur * 0.5))
            noise /= noise.std() + 1e-6
        image += noise_sd * noise
        return np.clip(image, -1024, 3071).astype(np.float32, copy=False)

    # MR: in-plane partial volume + PSF, sagittal thick slices along axis 0, bias, Rician noise, resample
    image = _block_mean(image, (1, factor, factor))
    image = ndimage.gaussian_filter(image, (0, psf, psf), truncate=3.0)
    n_fine = image.shape[0]
    extent = n_fine * spacing[0]
    n_slices = max(int(np.ceil(extent / thickness)), 1)
    centres = (np.arange(n_slices) - (n_slices - 1) / 2) * thickness + slice_offset
    stack = _slab_average(image, spacing[0], centres, thickness)
    stack *= _bias_field(bias_coef, centres / (extent / 2), stack.shape[1:], bias_strength)
    real = stack + noise_sd * dense.standard_normal(stack.shape, dtype=np.float32)
    imag = noise_sd * dense.standard_normal(stack.shape, dtype=np.float32)
    stack = np.sqrt(real * real + imag * imag) * scale
    n_out = n_fine // factor
    out_x = (np.arange(n_out) - (n_out - 1) / 2) * out_spacing[0]
    return _interp_axis0(stack, centres, out_x).astype(np.float32, copy=False)


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    out = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def _block_mean(x: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    if f == (1, 1, 1):
        return x
    s = x.shape
    return x.reshape(s[0] // f[0], f[0], s[1] // f[1], f[1], s[2] // f[2], f[2]).mean(axis=(1, 3, 5), dtype=np.float32)


def _gauss_matrix(n_out: int, n_in: int, spacing: float, knot: float) -> np.ndarray:
    """(n_out, n_in) Gaussian interpolation weights from knots every ``knot`` mm to voxel centres."""
    x = (np.arange(n_out) - (n_out - 1) / 2) * spacing
    k = (np.arange(n_in) - (n_in - 1) / 2) * knot
    w = np.exp(-0.5 * ((x[:, None] - k[None, :]) / (0.6 * knot)) ** 2)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _smooth_field(rng: np.random.Generator, shape, spacing, scale_mm: float) -> np.ndarray:
    """A smooth zero-mean, unit-sd random field: random knots every ``scale_mm``, separable Gaussian interpolation."""
    knots = [int(np.ceil(n * s / scale_mm)) + 2 for n, s in zip(shape, spacing)]
    c = rng.standard_normal(knots).astype(np.float32)
    m = [_gauss_matrix(n, k, s, scale_mm) for n, k, s in zip(shape, knots, spacing)]
    f = np.tensordot(m[0], c, axes=(1, 0))  # (X, ky, kz)
    f = np.einsum("yj,xjk->xyk", m[1], f)  # (X, Y, kz)
    f = np.tensordot(f, m[2], axes=(2, 1))  # (X, Y, Z)
    return (f / (f.std() + 1e-6)).astype(np.float32)


def _slab_average(image: np.ndarray, dx: float, centres: np.ndarray, thickness: float) -> np.ndarray:
    """Average ``image`` (piecewise constant along axis 0, voxels of size ``dx``) over slabs; exact integrals."""
    n = image.shape[0]
    cum = np.concatenate([np.zeros((1, *image.shape[1:]), np.float32), np.cumsum(image, axis=0, dtype=np.float32)])
    edge0 = -n * dx / 2

    def integral(pos):  # integral from the first edge to pos, in voxel units
        t = np.clip((pos - edge0) / dx, 0, n)
        i = np.minimum(np.floor(t).astype(int), n - 1)
        w = (t - i).astype(np.float32)[:, None, None]
        return cum[i] * (1 - w) + cum[i + 1] * w, t

    hi, t_hi = integral(centres + thickness / 2)
    lo, t_lo = integral(centres - thickness / 2)
    width = np.maximum(t_hi - t_lo, 1e-3).astype(np.float32)[:, None, None]
    return (hi - lo) / width


def _interp_axis0(stack: np.ndarray, centres: np.ndarray, out_x: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from slice centres to output positions (clamped at the ends)."""
    if len(centres) == 1:
        return np.repeat(stack, len(out_x), axis=0)
    t = np.clip((out_x - centres[0]) / (centres[1] - centres[0]), 0, len(centres) - 1)
    i = np.minimum(np.floor(t).astype(int), len(centres) - 2)
    w = (t - i).astype(np.float32)[:, None, None]
    return stack[i] * (1 - w) + stack[i + 1] * w


_BIAS_TERMS = [(i, j, k) for i in range(4) for j in range(4 - i) for k in range(4 - i - j) if i + j + k > 0]
_N_BIAS = len(_BIAS_TERMS)


def _bias_field(coef: np.ndarray, x: np.ndarray, shape_yz, strength: float) -> np.ndarray:
    """Multiplicative MR bias field: exp of a Legendre polynomial (total degree 1..3) scaled to sd ``strength``."""
    y = np.linspace(-1, 1, shape_yz[0])
    z = np.linspace(-1, 1, shape_yz[1])
    basis = [np.polynomial.legendre.Legendre.basis(d) for d in range(4)]
    px, py, pz = ([b(t) for b in basis] for t in (x, y, z))
    log = np.zeros((len(x), *shape_yz), np.float32)
    for c, (i, j, k) in zip(coef, _BIAS_TERMS):
        term = px[i][:, None, None] * py[j][None, :, None] * pz[k][None, None, :]
        log += np.float32(c / (1 + i + j + k)) * term.astype(np.float32)
    log *= np.float32(strength / (log.std() + 1e-6))
    return np.exp(log)
