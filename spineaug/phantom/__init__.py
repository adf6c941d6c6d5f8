"""Synthetic multi-domain 3-D spine phantom: the same random anatomy rendered as CT or any of several MR sequences.

Arrays are numpy, (X, Y, Z) in RAS orientation: axis 0 left -> right, axis 1 posterior -> anterior,
axis 2 inferior -> superior (so MR "sagittal thick slices" are thick along axis 0). Add batch and channel
axes at the edge (``torch.from_numpy(case.image)[None, None]``) to feed the augmentation engine.

Example:
    >>> from spineaug import phantom
    >>> case = phantom.make_case(0, "t2w", shape=(32, 40, 64), spacing=4.0)
    >>> case.image.shape, case.label.dtype
    ((32, 40, 64), dtype('uint8'))
    >>> ct = phantom.make_case(0, "ct", shape=(32, 40, 64), spacing=4.0)
    >>> bool((ct.label == case.label).all())
    True
"""

from __future__ import annotations

import math
import numbers
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spineaug.phantom.anatomy import LABELS, N_TISSUES, TISSUE_TO_LABEL, Tissue, generate, tissue_to_label
from spineaug.phantom.domains import DOMAINS, SOURCE_DOMAINS, Domain, get_domain, render_tissue

DEFAULT_SPACING = (2.0, 2.0, 2.0)
"""Default working voxel size in mm (X, Y, Z)."""
DEFAULT_SHAPE = (64, 80, 128)
"""Default working grid (X, Y, Z): 128 x 160 x 256 mm at the default spacing."""
SUPERSAMPLE = 2
"""make_case builds the anatomy this many times finer per axis and averages blocks (partial volume)."""
VERSION = "1"
"""Version of the phantom's output: a cache of rendered cases may key on ``(VERSION, seed, domain, shape, spacing)``.

Bumped whenever ``make_case`` gives different arrays for some seed and domain (anatomy, appearance tables,
renderer); ``tests/phantom/test_phantom_api.py`` pins a checksum of a small case to this value."""

__all__ = [
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING",
    "DOMAINS",
    "LABELS",
    "N_TISSUES",
    "SOURCE_DOMAINS",
    "TISSUE_TO_LABEL",
    "VERSION",
    "Case",
    "Domain",
    "Tissue",
    "affine_for",
    "make_case",
    "make_cases",
    "render",
    "tissue_to_label",
    "write_datasets",
]


@dataclass(frozen=True, eq=False)
class Case:
    """One phantom case.

    Attributes:
        image: (X, Y, Z) float32: HU for CT domains, arbitrary positive units for MR.
        label: (X, Y, Z) uint8 task labels: 0 background, 1 vertebra, 2 disc, 3 spinal canal (dural sac).
        tissue: (X, Y, Z) uint8 :class:`Tissue` map; ``label == tissue_to_label(tissue)``.
        spacing: Voxel size in mm, (X, Y, Z).
        affine: (4, 4) voxel -> RAS world (mm) matrix; the volume centre is at the origin.
        domain: Domain name the image was rendered in.
        seed: The anatomy (and appearance) seed.
        info: What was drawn: levels, pathology, pose.
    """

    image: np.ndarray
    label: np.ndarray
    tissue: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    domain: str
    seed: int
    info: dict = field(default_factory=dict)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_spacing(spacing, name: str = "spacing") -> tuple[float, float, float]:
    values = [spacing] * 3 if isinstance(spacing, numbers.Real) else list(np.ravel(np.asarray(spacing, dtype=object)))
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or three positive numbers in mm, got {spacing!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) and 0.1 <= v <= 20 for v in values):
        raise ValueError(f"{name} must be one or three finite numbers in [0.1, 20] mm, got {spacing!r}")
    return values[0], values[1], values[2]


def _check_shape(shape, name: str = "shape") -> tuple[int, int, int]:
    try:
        values = list(shape)
    except TypeError:
        raise ValueError(f"{name} must be three integers (X, Y, Z), got {shape!r}") from None
    if len(values) != 3 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and 8 <= v <= 1024 for v in values
    ):
        raise ValueError(f"{name} must be three integers in [8, 1024] (X, Y, Z), got {shape!r}")
    return int(values[0]), int(values[1]), int(values[2])


def affine_for(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """RAS affine of a phantom grid: ``spacing`` on the diagonal, the volume centre at world (0, 0, 0)."""
    shape, spacing = _check_shape(shape), _check_spacing(spacing)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(shape, spacing)]
    return affine


def _mode_downsample(tissue: np.ndarray, f: int) -> np.ndarray:
    """Most frequent value in each f x f x f block (ties: the first in block order)."""
    x, y, z = (n // f for n in tissue.shape)
    blocks = tissue.reshape(x, f, y, f, z, f).transpose(0, 2, 4, 1, 3, 5).reshape(-1, f**3)
    counts = (blocks[:, :, None] == blocks[:, None, :]).sum(axis=2, dtype=np.uint8)
    pick = counts.argmax(axis=1)
    return blocks[np.arange(blocks.shape[0]), pick].reshape(x, y, z)


def _anatomy(seed: int, shape, spacing):
    fine = generate(seed, tuple(n * SUPERSAMPLE for n in shape), tuple(s / SUPERSAMPLE for s in spacing))
    return fine, _mode_downsample(fine.tissue, SUPERSAMPLE)


def make_case(
    seed: int, domain: str = "ct", *, spacing=DEFAULT_SPACING, shape: Sequence[int] = DEFAULT_SHAPE
) -> Case:
    """Generate one phantom case: a random spine (from ``seed``) rendered in ``domain``.

    The anatomy is built at twice the resolution and rendered there, then blocks are averaged, so the image
    has partial-volume effects while ``tissue``/``label`` are the blockwise majority.
    Same seed and domain give an identical case; the same seed in another domain gives identical
    ``tissue`` and ``label`` (paired data).

    Args:
        seed: Non-negative integer.
        domain: One of :data:`DOMAINS` (e.g. ``"ct"``, ``"t1w"``, ``"t2w"``).
        spacing: Voxel size in mm: one number (isotropic) or (X, Y, Z).
        shape: Grid (X, Y, Z); small grids may crop away structures.

    Returns:
        The :class:`Case`.
    """
    seed, spec = _check_seed(seed), get_domain(domain)
    spacing, shape = _check_spacing(spacing), _check_shape(shape)
    fine, tissue = _anatomy(seed, shape, spacing)
    return _case(seed, spec, fine, tissue, spacing, shape)


def make_cases(
    seed: int,
    domains: str | Iterable[str] | None = None,
    *,
    spacing=DEFAULT_SPACING,
    shape: Sequence[int] = DEFAULT_SHAPE,
) -> dict[str, Case]:
    """Render one anatomy (``seed``) in several domains (paired data), building the anatomy only once.

    Each returned case equals ``make_case(seed, domain, spacing=spacing, shape=shape)``: ``label``, ``tissue``,
    ``spacing`` and ``affine`` are identical in every domain (each case holds its own copies), only ``image``
    differs.

    Args:
        seed: Non-negative integer (the anatomy; appearance is drawn from ``(seed, domain)``).
        domains: Domain names, a list or a comma-separated string, without repeats; None means every domain
            in :data:`DOMAINS` (in its order).
        spacing: Voxel size in mm: one number (isotropic) or (X, Y, Z).
        shape: Grid (X, Y, Z).

    Returns:
        Domain name -> :class:`Case`, in the order given.

    Example:
        >>> cases = make_cases(3, ["ct", "t2w"], shape=(32, 40, 64), spacing=4.0)
        >>> list(cases), bool((cases["ct"].label == cases["t2w"].label).all())
        (['ct', 't2w'], True)
    """
    seed = _check_seed(seed)
    names = list(DOMAINS) if domains is None else _parse_domains(domains)
    spacing, shape = _check_spacing(spacing), _check_shape(shape)
    fine, tissue = _anatomy(seed, shape, spacing)
    return {name: _case(seed, get_domain(name), fine, tissue.copy(), spacing, shape) for name in names}


def _case(seed, spec: Domain, fine, tissue, spacing, shape) -> Case:
    image = render_tissue(fine.tissue, spec, seed, spacing=fine.spacing, factor=SUPERSAMPLE)
    return Case(
        image=image, label=TISSUE_TO_LABEL[tissue], tissue=tissue, spacing=spacing,
        affine=affine_for(shape, spacing), domain=spec.name, seed=seed, info=dict(fine.info),
    )  # fmt: skip


def render(tissue: np.ndarray, domain: str, seed: int, *, spacing=DEFAULT_SPACING) -> np.ndarray:
    """Render an existing tissue map (e.g. ``case.tissue``, or one read from ``tissueTr/``) in a domain.

    The appearance (tissue values, texture, noise, bias, slice geometry) is drawn from ``(seed, domain)``,
    exactly as ``make_case`` draws it; rendering happens at the tissue map's own resolution, so partial volume
    comes only from the acquisition blur and slice profile.

    Args:
        tissue: (X, Y, Z) integer :class:`Tissue` map in RAS orientation.
        domain: One of :data:`DOMAINS`.
        seed: Non-negative integer.
        spacing: Voxel size of ``tissue`` in mm.

    Returns:
        (X, Y, Z) float32 image.
    """
    seed, spec, spacing = _check_seed(seed), get_domain(domain), _check_spacing(spacing)
    tissue = np.asarray(tissue)
    if tissue.ndim != 3:
        raise ValueError(f"tissue must be a 3-D (X, Y, Z) array, got shape {tissue.shape}")
    tissue_to_label(tissue)  # validates dtype and value range
    return render_tissue(tissue.astype(np.uint8, copy=False), spec, seed, spacing=spacing, factor=1)


def _parse_domains(domains: str | Iterable[str]) -> list[str]:
    names = [d.strip() for d in domains.split(",")] if isinstance(domains, str) else [str(d) for d in domains]
    names = [d for d in names if d]
    if not names:
        raise ValueError("domains must name at least one domain")
    if len(set(names)) != len(names):
        raise ValueError(f"domains must not repeat, got {names}")
    for name in names:
        get_domain(name)
    return names


def dataset_name(domain: str, dataset_id: int) -> str:
    """nnU-Net dataset folder name of one domain, e.g. ``Dataset901_PhantomT2wFatsat``."""
    from spineaug.data.nnunet_raw import dataset_folder_name

    pretty = "".join(part.capitalize() for part in domain.replace("_", "-").split("-"))
    return dataset_folder_name(dataset_id, f"Phantom{pretty}")


def write_datasets(
    out: str | Path,
    domains: str | Iterable[str] = SOURCE_DOMAINS,
    cases: int = 8,
    seed: int = 0,
    *,
    spacing=DEFAULT_SPACING,
    shape: Sequence[int] = DEFAULT_SHAPE,
    dataset_id: int = 900,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Write one nnU-Net raw-format dataset per domain, with paired anatomy across domains.

    Layout per domain: ``DatasetNNN_Phantom<Domain>/{imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz,
    tissueTr/CASE.nii.gz, dataset.json}``; case ``i`` uses anatomy seed ``seed + i`` and is called
    ``phantom_<seed+i>`` (5 digits) in every domain. Domains get ids ``dataset_id, dataset_id + 1, ...``.

    Args:
        out: Output folder. If it exists and is not empty, ``overwrite`` must be set; then only the dataset
            folders written here are replaced, nothing else in ``out`` is touched.
        domains: Domain names (a list or a comma-separated string).
        cases: Number of cases per domain (>= 1).
        seed: First anatomy seed.
        spacing: Voxel size in mm.
        shape: Working grid (X, Y, Z).
        dataset_id: nnU-Net id of the first dataset (1..999 - number of domains).
        overwrite: Allow writing into a non-empty ``out``.
        progress: Show a tqdm progress bar.

    Returns:
        Domain name -> dataset folder.
    """
    from tqdm import tqdm

    from spineaug.data.nnunet_raw import write_case, write_dataset_json

    names = _parse_domains(domains)
    seed, spacing, shape = _check_seed(seed), _check_spacing(spacing), _check_shape(shape)
    if isinstance(cases, bool) or not isinstance(cases, numbers.Integral) or cases < 1:
        raise ValueError(f"cases must be a positive integer, got {cases!r}")
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, numbers.Integral) or not (
        1 <= dataset_id and dataset_id + len(names) - 1 <= 999
    ):
        raise ValueError(f"dataset_id must be an integer with dataset_id + #domains - 1 <= 999, got {dataset_id!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"out folder {str(out)!r} is not empty; pass overwrite=True (--overwrite) to replace datasets")

    roots = {name: out / dataset_name(name, dataset_id + i) for i, name in enumerate(names)}
    for root in roots.values():
        if root.exists():
            shutil.rmtree(root)

    bar = tqdm(total=cases * len(names), desc="phantom", unit="image", disable=not progress)
    infos = {}
    for i in range(cases):
        case_seed = seed + i
        case_id = f"phantom_{case_seed:05d}"
        for name, case in make_cases(case_seed, names, spacing=spacing, shape=shape).items():
            infos[case_id] = case.info
            write_case(roots[name], case_id, case.image, case.label, case.affine, extra={"tissueTr": case.tissue})
            bar.update(1)
    bar.close()

    for name, root in roots.items():
        spec = get_domain(name)
        write_dataset_json(
            root,
            {"0": spec.channel_name},
            dict(LABELS),
            cases,
            name=root.name,
            description=f"spineaug phantom, {spec.description}",
            spineaug={
                "domain": name,
                "modality": spec.modality,
                "seed": seed,
                "spacing": list(spacing),
                "shape": list(shape),
                "orientation": "RAS",
                "tissue_folder": "tissueTr",
                "tissues": {t.name.lower(): int(t) for t in Tissue},
                "cases": infos,
            },
        )
    return roots
