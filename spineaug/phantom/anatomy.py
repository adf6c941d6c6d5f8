"""Procedural lumbar / lower-thoracic spine anatomy: one random, plausible spine per seed, as a tissue map.

Convention: arrays are (X, Y, Z) in RAS order: axis 0 runs left -> right, axis 1 posterior -> anterior,
axis 2 inferior -> superior. Coordinates are millimetres with the origin at the centre of the volume.

Everything is vectorised numpy: full-volume structures (body outline, muscles, vessels, spinal canal) are
evaluated with broadcasting, and the many small bony primitives (vertebral bodies, pedicles, laminae,
processes, discs) each only inside their own bounding box. Bone is assembled as one signed-distance field
(a union of primitives), so the cortical shell is simply ``-t < sdf < 0`` and cancellous bone ``sdf <= -t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Tissue classes of the phantom's tissue map (uint8 values)."""

    AIR = 0
    SKIN = 1
    FAT = 2  # subcutaneous fat
    MUSCLE = 3
    VISCERA = 4  # abdominal organs / bowel, lumped
    BLOOD = 5  # aorta, iliac arteries, inferior vena cava
    RETRO_FAT = 6  # retroperitoneal fat around the spine and vessels
    EPIDURAL_FAT = 7
    CSF = 8
    CORD = 9
    CORTICAL = 10  # cortical bone incl. bony endplates
    CANCELLOUS = 11
    ANNULUS = 12
    NUCLEUS = 13
    NUCLEUS_DEGENERATED = 14
    SCLEROTIC = 15  # sclerotic (osteoblastic) lesion in a vertebral body
    LYTIC = 16  # lytic lesion in a vertebral body


N_TISSUES = len(Tissue)

LABELS = {"background": 0, "vertebra": 1, "disc": 2, "canal": 3}
"""Task labels (nnU-Net ``labels`` field): the spinal canal label is the dural sac (CSF + cord)."""

TISSUE_TO_LABEL = np.zeros(256, dtype=np.uint8)
TISSUE_TO_LABEL[[Tissue.CORTICAL, Tissue.CANCELLOUS, Tissue.SCLEROTIC, Tissue.LYTIC]] = 1
TISSUE_TO_LABEL[[Tissue.ANNULUS, Tissue.NUCLEUS, Tissue.NUCLEUS_DEGENERATED]] = 2
TISSUE_TO_LABEL[[Tissue.CSF, Tissue.CORD]] = 3
"""Lookup table tissue value -> task label (``TISSUE_TO_LABEL[tissue]``)."""

LEVELS = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


def tissue_to_label(tissue: np.ndarray) -> np.ndarray:
    """Derive the task label map (0 background, 1 vertebra, 2 disc, 3 canal) from a tissue map."""
    tissue = np.asarray(tissue)
    if tissue.dtype.kind not in "ui":
        raise ValueError(f"tissue must be an integer array, got dtype {tissue.dtype}")
    if tissue.size and (tissue.min() < 0 or tissue.max() >= N_TISSUES):
        raise ValueError(f"tissue values must lie in [0, {N_TISSUES - 1}], got [{tissue.min()}, {tissue.max()}]")
    return TISSUE_TO_LABEL[tissue.astype(np.intp, copy=False)]


@dataclass
class Anatomy:
    """A generated anatomy: the tissue map plus a description of what was drawn."""

    tissue: np.ndarray  # (X, Y, Z) uint8
    spacing: tuple[float, float, float]
    levels: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# geometry helpers


class _Grid:
    """World voxel centres of a volume and the patient pose (rotation about z, then translation)."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float], angle: float, shift):
        self.shape = shape
        self.spacing = spacing
        self.axes = [((np.arange(n, dtype=np.float32) - (n - 1) / 2) * s) for n, s in zip(shape, spacing)]
        self.cos, self.sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        self.shift = np.asarray(shift, dtype=np.float32)

    def patient(self, sl: tuple[slice, slice, slice] | None = None):
        """Patient coordinates (broadcastable arrays px (X,Y,1), py (X,Y,1), pz (1,1,Z)) of a box of voxels."""
        sl = sl or (slice(None),) * 3
        x = self.axes[0][sl[0]][:, None, None] - self.shift[0]
        y = self.axes[1][sl[1]][None, :, None] - self.shift[1]
        z = self.axes[2][sl[2]][None, None, :] - self.shift[2]
        # world = R(angle) @ patient  =>  patient = R^T @ world
        return self.cos * x + self.sin * y, -self.sin * x + self.cos * y, z

    def box(self, centre: np.ndarray, half: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Voxel slices covering a patient-space axis-aligned box (None when it misses the volume)."""
        corners = np.array(np.meshgrid(*[[-1, 1]] * 3, indexing="ij")).reshape(3, -1).T * half + centre
        wx = self.cos * corners[:, 0] - self.sin * corners[:, 1] + self.shift[0]
        wy = self.sin * corners[:, 0] + self.cos * corners[:, 1] + self.shift[1]
        wz = corners[:, 2] + self.shift[2]
        out = []
        for w, n, s in zip((wx, wy, wz), self.shape, self.spacing):
            lo = int(np.floor(w.min() / s + (n - 1) / 2)) - 1
            hi = int(np.ceil(w.max() / s + (n - 1) / 2)) + 2
            lo, hi = max(lo, 0), min(hi, n)
            if lo >= hi:
                return None
            out.append(slice(lo, hi))
        return tuple(out)


def _frame(tangent: np.ndarray) -> np.ndarray:
    """Orthonormal local frame (rows ex, ey, ez) whose ez follows ``tangent`` and ex stays close to +x."""
    ez = tangent / np.linalg.norm(tangent)
    ex = np.array([1.0, 0.0, 0.0]) - ez[0] * ez
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    return np.stack([ex, ey, ez]).astype(np.float32)


def _local(p, centre, frame):
    """Local coordinates (lx, ly, lz) of broadcast patient coordinates in a frame centred at ``centre``."""
    dx, dy, dz = p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]
    return tuple(frame[i, 0] * dx + frame[i, 1] * dy + frame[i, 2] * dz for i in range(3))


def _capsule(l, p0, p1, radius: float, zscale: float = 1.0):
    """Approximate signed distance (mm) to a capsule from p0 to p1, stretched by ``zscale`` along local z."""
    lx, ly, lz = l[0], l[1], l[2] / zscale
    a = np.array([p0[0], p0[1], p0[2] / zscale], dtype=np.float32)
    d = np.array([p1[0], p1[1], p1[2] / zscale], dtype=np.float32) - a
    t = ((lx - a[0]) * d[0] + (ly - a[1]) * d[1] + (lz - a[2]) * d[2]) / np.float32(d @ d + 1e-6)
    t = np.clip(t, 0, 1)
    dist = np.sqrt((lx - a[0] - t * d[0]) ** 2 + (ly - a[1] - t * d[1]) ** 2 + (lz - a[2] - t * d[2]) ** 2)
    return dist - np.float32(radius)


def _superellipse(u, v, a, b, p: float):
    return (np.abs(u / a) ** p + np.abs(v / b) ** p) ** (1.0 / p)


# --------------------------------------------------------------------------------------------------------------
# the generator


@dataclass
class _Vertebra:
    name: str
    centre: np.ndarray  # patient mm
    frame: np.ndarray  # rows ex, ey, ez
    a: float  # half width (x)
    b: float  # half depth (y)
    c: float  # half height (z)
    compression: float = 0.0  # 0 = intact; anterior height loss fraction of a fractured body


def generate(
    seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> Anatomy:
    """Generate one random spine anatomy as a tissue map.

    Args:
        seed: Any non-negative integer; the same seed, shape and spacing give the same anatomy.
        shape: Volume shape (X, Y, Z) in RAS order.
        spacing: Voxel size in mm, (X, Y, Z).

    Returns:
        The :class:`Anatomy`, with ``tissue`` (X, Y, Z) uint8 of :class:`Tissue` values.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5B1E]))
    u = rng.uniform
    info: dict = {}

    # --- patient pose and size -------------------------------------------------------------------------------
    angle = np.deg2rad(u(-6, 6))
    shift = (u(-6, 6), u(-6, 6), u(-12, 12))
    grid = _Grid(shape, spacing, angle, shift)
    size = u(0.88, 1.05)  # skeletal size factor

    # --- vertebral levels, sizes, discs ------------------------------------------------------------------------
    n = int(rng.integers(7, 10))
    names = list(LEVELS[-n:])
    # half sizes grow caudally (index 0 = T10 ... 8 = S1)
    idx = np.array([LEVELS.index(nm) for nm in names], dtype=float)
    grow = idx / (len(LEVELS) - 1)
    a = size * (19.0 + 7.0 * grow) * u(0.95, 1.05, n)
    b = size * (14.0 + 4.0 * grow) * u(0.95, 1.05, n)
    c = size * (10.5 + 3.0 * np.minimum(grow * 1.4, 1.0)) * u(0.95, 1.05, n)
    a[-1] *= 1.12  # S1 is wider
    disc_h = size * (5.0 + 5.0 * grow[:-1]) * u(0.85, 1.15, n - 1)  # disc between level i and i+1
    degenerated = rng.random(n - 1) < 0.25 + 0.25 * grow[:-1]
    disc_h[degenerated] *= u(0.45, 0.75, int(degenerated.sum()))
    compression = np.zeros(n)
    if rng.random() < 0.25:  # one compressed (fractured) body, never S1
        k = int(rng.integers(0, n - 1))
        compression[k] = u(0.25, 0.5)
        info["fracture"] = names[k]
    info["degenerated_discs"] = [f"{names[i]}-{names[i + 1]}" for i in np.flatnonzero(degenerated)]

    # --- centreline: lordosis peaking near L3, kyphosis above, mild scoliosis ------------------------------
    zz = np.arange(-260.0, 260.0, 0.5)
    lord = u(8, 20)
    period = u(330, 450)
    scol, scol_period, scol_phase = u(0, 8), u(250, 500), u(0, 2 * np.pi)
    y0 = u(22, 34)  # vertebral body centre, anterior of the volume centre
    # arc-length parametrisation: stack the column from cranial to caudal, then centre it
    heights = np.empty(2 * n - 1)
    heights[0::2] = 2 * c * (1 - 0.5 * compression)
    heights[1::2] = disc_h
    total = heights.sum()
    z_top = total / 2 + u(-15, 15)
    z_l3 = z_top - (heights[: 2 * names.index("L3")].sum() + heights[2 * names.index("L3")] / 2)

    def centre_x(z):
        return scol * np.sin(2 * np.pi * (z - z_l3) / scol_period + scol_phase)

    def centre_y(z):
        return y0 + lord * (np.cos(2 * np.pi * (z - z_l3) / period) - 1)

    xs, ys = centre_x(zz), centre_y(zz)
    arc = np.concatenate([[0.0], np.cumsum(np.sqrt(np.diff(xs) ** 2 + np.diff(ys) ** 2 + np.diff(zz) ** 2))])
    arc_top = np.interp(z_top, zz, arc)
    mids = arc_top - (np.cumsum(heights) - heights / 2)  # arc position of each body / disc centre
    zc = np.interp(mids, arc, zz)
    dx = np.gradient(xs, zz)
    dy = np.gradient(ys, zz)

    vertebrae: list[_Vertebra] = []
    for i in range(n):
        z = zc[2 * i]
        tangent = np.array([np.interp(z, zz, dx), np.interp(z, zz, dy), 1.0])
        extra_tilt = np.deg2rad(u(-3, 3) + (u(8, 16) if names[i] == "S1" else 0.0))
        rot = np.array([[1, 0, 0], [0, np.cos(extra_tilt), np.sin(extra_tilt)], [0, -np.sin(extra_tilt), np.cos(extra_tilt)]])
        frame = _frame(rot @ tangent)
        centre = np.array([centre_x(z), centre_y(z), z], dtype=np.float32)
        vertebrae.append(_Vertebra(names[i], centre, frame, a[i], b[i], c[i] * (1 - 0.5 * compression[i]), compression[i]))

    # --- soft tissue: full-volume structures -------------------------------------------------------------------
    px, py, pz = grid.patient()
    zc_axis = pz[0, 0]
    # per-z interpolated spine geometry (1, 1, Z)
    body_z = zc[0::2]
    order = np.argsort(body_z)

    def along(values):
        return np.interp(zc_axis, body_z[order], np.asarray(values, dtype=float)[order]).astype(np.float32)[None, None, :]

    cx = centre_x(zc_axis).astype(np.float32)[None, None, :]
    cy = centre_y(zc_axis).astype(np.float32)[None, None, :]
    bz, az = along(b), along(a)
    su, sv = px - cx, py - cy  # straightened coordinates around the spinal column

    tissue = np.zeros(shape, dtype=np.uint8)
    # body outline (superellipse), skin, subcutaneous fat, viscera
    skin_t, fat_t = u(1.5, 3.0), u(6, 32)
    back = u(60, 80) + fat_t * 0.6  # distance from the body centre line to the skin of the back
    rx, ry = u(150, 190), u(105, 135)
    outline_y = py - 0.6 * cy  # the back follows the lordosis partially
    rho = _superellipse(px - u(-10, 10), outline_y - (-back + ry + 0.4 * y0), rx, ry, 2.6)
    dist_skin = (rho - 1) * ry  # ~mm, negative inside the body
    tissue[dist_skin < 0] = Tissue.SKIN
    tissue[dist_skin < -skin_t] = Tissue.FAT
    inner = dist_skin < -(skin_t + fat_t)
    tissue[inner] = Tissue.VISCERA

    # retroperitoneal fat around the column, then muscles
    retro = _superellipse(su, sv - 5, az + u(22, 32), bz + u(16, 24), 2.2) < 1
    tissue[retro & inner] = Tissue.RETRO_FAT
    mw = u(55, 72)
    erector = _superellipse(su, sv - (-bz - 48), mw, u(48, 58), 3.0) < 1
    tissue[erector & inner] = Tissue.MUSCLE
    # psoas: starts at T12, grows caudally, anterolateral to the bodies
    z_t12 = zc[2 * names.index("T12")] if "T12" in names else z_top + 10
    ps_r = np.clip((z_t12 - zc_axis) / 120.0, 0, 1).astype(np.float32)[None, None, :] * u(17, 24)
    for side in (-1, 1):
        psoas = ((su - side * (az + 0.7 * ps_r)) / (ps_r + 1e-3)) ** 2 + ((sv - 0.15 * bz) / (1.15 * ps_r + 1e-3)) ** 2 < 1
        tissue[psoas & inner & (ps_r > 2)] = Tissue.MUSCLE
    # aorta (left-anterior) bifurcating near L4 into iliac arteries, inferior vena cava (right-anterior)
    r_ao = u(8.5, 12.5)
    z_bif = zc[2 * names.index("L4")] + u(-5, 12)
    below = np.clip((z_bif - zc_axis) / 60.0, 0, None).astype(np.float32)[None, None, :]
    above = (zc_axis >= z_bif)[None, None, :]
    ao_u, ao_v = -(6 + r_ao * 0.6), bz + r_ao + u(2, 6)
    vessel = above & ((su - ao_u) ** 2 + (sv - ao_v) ** 2 < r_ao**2)
    r_il = 0.65 * r_ao
    for side in (-1, 1):
        vessel |= ~above & ((su - ao_u - side * (8 + 40 * below)) ** 2 + (sv - ao_v + 3 * below) ** 2 < r_il**2)
    r_ivc = u(9, 12)
    vessel |= ((su - (12 + r_ivc)) / r_ivc) ** 2 + ((sv - (bz + 0.8 * r_ivc + 3)) / (0.75 * r_ivc)) ** 2 < 1
    tissue[vessel & inner] = Tissue.BLOOD
    del rho, dist_skin, retro, erector, vessel

    # --- spinal canal: epidural fat, dural sac (CSF), cord ending at L1-L2 --------------------------------------
    tilt = np.sqrt(1 + np.interp(zc_axis, zz, dy) ** 2).astype(np.float32)[None, None, :]
    sac_rx, sac_ry = u(8.5, 11.5) * size, u(6.0, 7.5) * size
    sac_v = -(bz + 2.0 + sac_ry) * tilt
    sac = (su / sac_rx) ** 2 + ((sv - sac_v) / sac_ry) ** 2
    epi = (su / (sac_rx + 4.5)) ** 2 + ((sv - sac_v + 2.5) / (sac_ry + 4.5)) ** 2 < 1
    tissue[epi & inner] = Tissue.EPIDURAL_FAT
    in_sac = (sac < 1) & inner
    tissue[in_sac] = Tissue.CSF
    l1 = names.index("L1") if "L1" in names else 0
    z_conus = zc[2 * l1 + 1] + u(-12, 12)  # around the L1-L2 disc
    taper = np.clip((zc_axis - z_conus) / 18.0, 0, 1).astype(np.float32)[None, None, :]
    cord_r = u(4.0, 5.0) * np.sqrt(taper)
    cord = (su / (cord_r * 1.25 + 1e-3)) ** 2 + ((sv - sac_v - 0.8) / (cord_r + 1e-3)) ** 2 < 1
    tissue[cord & in_sac & (taper > 0.05)] = Tissue.CORD
    info["conus_z_mm"] = float(z_conus)
    del sac, epi, in_sac, cord, su, sv

    # --- discs: annulus with nucleus, written before the bone so the bodies cut them -------------------------
    for i in range(n - 1):
        up, lo = vertebrae[i], vertebrae[i + 1]
        centre = (up.centre + lo.centre) / 2
        frame = _frame(up.centre - lo.centre)
        half = float(np.linalg.norm(up.centre - lo.centre)) / 2
        da, db = (up.a + lo.a) / 2 * 1.04, (up.b + lo.b) / 2 * 1.04
        sl = grid.box(centre, np.array([da + 4, db + 8, half + 6]))
        if sl is None:
            continue
        l = _local(grid.patient(sl), centre, frame)
        # between the endplates only (plus a wedge where the two bodies are tilted against each other)
        wedge = np.float32(np.tan(np.arccos(np.clip(up.frame[2] @ lo.frame[2], -1, 1))) + 0.05)
        slack = 1.5 + np.abs(l[1]) * wedge
        between = (l[2] < half - up.c + slack) & (l[2] > lo.c - half - slack)
        disc = (_superellipse(l[0], l[1] + 0.06 * db * (l[0] / da) ** 2, da, db, 2.3) < 1) & between
        h = disc_h[i] / 2
        nuc_scale = 0.6 if degenerated[i] else 1.0
        nucleus = (l[0] / (0.55 * da * nuc_scale)) ** 2 + ((l[1] + 0.12 * db) / (0.5 * db * nuc_scale)) ** 2 + (
            l[2] / max(0.55 * h * nuc_scale, 0.6)
        ) ** 2 < 1
        view = tissue[sl]
        view[disc] = Tissue.ANNULUS
        view[disc & nucleus] = Tissue.NUCLEUS_DEGENERATED if degenerated[i] else Tissue.NUCLEUS

    # --- bone: union of signed distances of all primitives ----------------------------------------------------
    sdf = np.full(shape, np.inf, dtype=np.float32)
    shell = u(1.3, 2.0)
    for v in vertebrae:
        _vertebra_sdf(grid, sdf, v, rng)
    bone = sdf < 0
    tissue[bone] = Tissue.CORTICAL
    tissue[sdf < -shell] = Tissue.CANCELLOUS
    del sdf, bone

    # --- lesions inside a vertebral body ------------------------------------------------------------------------
    if rng.random() < 0.3:
        k = int(rng.integers(0, n))
        v = vertebrae[k]
        kind = Tissue.SCLEROTIC if rng.random() < 0.5 else Tissue.LYTIC
        radius = u(4.5, 8.0) * size
        offset = v.frame.T @ np.array([u(-0.4, 0.4) * v.a, u(-0.3, 0.3) * v.b, u(-0.3, 0.3) * v.c])
        centre = v.centre + offset.astype(np.float32)
        sl = grid.box(centre, np.full(3, radius + 1))
        if sl is not None:
            l = _local(grid.patient(sl), centre, v.frame)
            lesion = (l[0] ** 2 + l[1] ** 2 + (l[2] * 1.2) ** 2 < radius**2) & (tissue[sl] == Tissue.CANCELLOUS)
            tissue[sl][lesion] = kind
            info["lesion"] = {"level": v.name, "kind": kind.name.lower(), "radius_mm": float(radius)}

    info.update(levels=names, pose={"axial_rotation_deg": float(np.rad2deg(angle)), "shift_mm": [float(s) for s in shift]})
    return Anatomy(tissue=tissue, spacing=tuple(float(s) for s in spacing), levels=names, info=info)


def _vertebra_sdf(grid: _Grid, sdf: np.ndarray, v: _Vertebra, rng: np.random.Generator) -> None:
    """Union the signed distance of one vertebra (body + posterior elements) into ``sdf`` in place."""
    u = rng.uniform
    a, b, c = v.a, v.b, v.c
    sacral = v.name == "S1"

    def add(centre_local, half, fn):
        centre = v.centre + v.frame.T @ np.asarray(centre_local, dtype=np.float32)
        half = np.asarray(half, dtype=np.float32)
        sl = grid.box(centre.astype(np.float32), np.full(3, float(np.linalg.norm(half))))
        if sl is None:
            return
        l = _local(grid.patient(sl), v.centre, v.frame)
        np.minimum(sdf[sl], fn(l), out=sdf[sl])

    # vertebral body: rounded cylinder (superellipsoid), concave waist, kidney-shaped cross-section
    def body(l):
        lx, ly, lz = l
        zn = lz / c
        if v.compression:  # wedge: the anterior part loses more height
            zn = zn / (1 - v.compression * np.clip(ly / b, 0, 1) + 0.5 * v.compression)
        waist = 1 - 0.06 * np.clip(1 - zn**2, 0, 1)
        yy = ly - 0.12 * b * np.clip(1 - (lx / a) ** 2, 0, 1) * (ly < 0)  # posterior concavity
        r = _superellipse(lx, yy, a * waist, b * waist, 2.3)
        q = 7.0
        f = (r**q + np.abs(zn) ** q) ** (1 / q)
        w = np.abs(zn) ** q / (r**q + np.abs(zn) ** q + 1e-6)
        return (f - 1) * (w * c + (1 - w) * min(a, b))

    add((0, 0, 0), (a + 2, b + 2, c + 2), body)

    # posterior elements in the body's frame; y negative = posterior
    ped_x = 0.62 * a
    ped_len = u(11, 15) * (0.9 + 0.1 * a / 22)
    zc = 0.25 * c
    y_ped0, y_ped1 = -0.75 * b, -b - ped_len
    lam_y = y_ped1 - u(5, 8)
    sp_len = u(24, 32) * (0.6 if sacral else 1.0)
    sp_drop = u(4, 10)
    tp_len = u(16, 24) * (0.5 if v.name in ("T10", "T11") else 1.0)
    for side in (-1, 1):
        p0, p1 = (side * ped_x, y_ped0, zc), (side * ped_x, y_ped1, zc)
        add(np.mean([p0, p1], 0), (6, ped_len / 2 + 6, 10), lambda l, p0=p0, p1=p1: _capsule(l, p0, p1, 4.2, 1.6))
        q0, q1 = (side * ped_x, y_ped1, zc), (0.0, lam_y, zc - 2)
        add(np.mean([q0, q1], 0), (ped_x / 2 + 5, 9, 14), lambda l, q0=q0, q1=q1: _capsule(l, q0, q1, 3.2, 2.8))
        t0, t1 = (side * ped_x, y_ped1 + 3, zc + 1), (side * (ped_x + tp_len), y_ped1 - 2, zc + 3)
        add(np.mean([t0, t1], 0), (tp_len / 2 + 5, 6, 7), lambda l, t0=t0, t1=t1: _capsule(l, t0, t1, 3.0, 1.4))
        # articular processes: superior rises above, inferior hangs below the lamina
        f0, f1 = (side * (ped_x + 1), y_ped1 - 2, zc + 0.9 * c + 4), (side * (ped_x - 2), y_ped1 - 4, zc - 0.9 * c - 3)
        add(np.mean([f0, f1], 0), (6, 7, c + 8), lambda l, f0=f0, f1=f1: _capsule(l, f0, f1, 3.6, 1.0))
    s0, s1 = (0.0, lam_y, zc - 2), (0.0, lam_y - sp_len, zc - 2 - sp_drop)
    add(np.mean([s0, s1], 0), (6, sp_len / 2 + 5, 16), lambda l: _capsule(l, s0, s1, 3.2, 3.2))
