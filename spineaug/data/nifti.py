"""NIfTI reading and writing, reorientation to RAS, resampling to a target spacing, robust z-score normalisation.

Orientation convention: every volume spineaug reads is reoriented to the closest canonical RAS orientation
(nibabel ``as_closest_canonical``): array axis 0 runs left -> right, axis 1 posterior -> anterior,
axis 2 inferior -> superior. Oblique acquisitions keep their (small) residual rotation in the affine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener
from scipy import ndimage


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D array with its voxel -> world (RAS mm) affine.

    Attributes:
        data: (X, Y, Z) array.
        affine: (4, 4) float64.
        path: Source file, when read from disk.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(s[0]), float(s[1]), float(s[2])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape


NONFINITE_POLICIES = ("raise", "zero", "keep")
"""What :func:`load_nifti` does with NaN/±Inf voxels: raise (default), replace them by 0, or keep them."""


def _stored_header(img):
    """The header as stored in the file: ``nib.load`` fixes some fields (a zero pixdim becomes 1) before we see them."""
    try:
        holder = img.file_map.get("header", img.file_map["image"])
        with ImageOpener(holder.filename) as f:
            return type(img.header).from_fileobj(f, check=False)
    except Exception:  # not a file-backed header: what nibabel gives is all there is
        return img.header


def _check_geometry(img, path: Path) -> None:
    """Raise when the header's voxel sizes are zero/negative/non-finite or the affine is singular or non-finite.

    nibabel substitutes a 1 mm voxel for a zero spacing without a word, so such a volume would be resampled wrongly.
    """
    zooms = np.asarray(_stored_header(img).get_zooms()[:3], dtype=np.float64)
    if zooms.size < 3 or not np.all(np.isfinite(zooms)) or np.any(zooms <= 0):
        raise ValueError(f"{path}: the header's voxel spacing (pixdim) must be positive and finite, got {zooms.tolist()}")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise ValueError(f"{path}: the affine has non-finite entries: {affine.tolist()}")
    linear = affine[:3, :3]
    scale = float(np.prod(np.linalg.norm(linear, axis=0)))
    if scale == 0 or abs(float(np.linalg.det(linear))) <= 1e-6 * scale:
        raise ValueError(f"{path}: the affine is singular (voxel axes do not span 3-D space): {affine.tolist()}")


def _check_finite_voxels(data: np.ndarray, path: Path, nonfinite: str) -> np.ndarray:
    """Apply the non-finite voxel policy of :func:`load_nifti` (only floating data can hold NaN/Inf)."""
    if nonfinite == "keep" or data.dtype.kind not in "fc":
        return data
    finite = np.isfinite(data)
    if finite.all():
        return data
    if nonfinite == "raise":
        bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(
            f"{path}: {bad} of {finite.size} voxels are NaN or infinite; fix the file, or read it with "
            f"load_nifti(..., nonfinite='zero') to replace them by 0 (or 'keep' to keep them)"
        )
    return np.where(finite, data, np.zeros((), dtype=data.dtype))


def _open(path: Path):
    """The nibabel image of ``path`` (its header; voxels stay on disk), its geometry checked; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises a zoo of exception types for corrupt files
        raise ValueError(f"cannot read NIfTI file {path}: {exc}") from exc
    _check_geometry(img, path)
    return img


def nifti_grid(path: str | Path, *, reorient: bool = True) -> tuple[tuple[int, ...], np.ndarray]:
    """The shape and affine :func:`load_nifti` returns for ``path``, from the header alone (no voxel is read).

    For checks before the work: a dataset compares its files' grids when it is built, not case by case as it is
    read.
    """
    path = Path(path)
    img = _open(path)
    shape = tuple(int(n) for n in img.shape)
    affine = np.asarray(img.affine, dtype=np.float64)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {shape}")
    if reorient:  # as nib.as_closest_canonical: axis i goes to ornt[i, 0], flipped where ornt[i, 1] is -1
        ornt = nib.orientations.io_orientation(affine)
        affine = affine @ nib.orientations.inv_ornt_aff(ornt, shape)
        out = [0, 0, 0]
        for i, (axis, _) in enumerate(ornt):
            out[int(axis)] = shape[i]
        shape = tuple(out)
    return shape, affine


def load_nifti(
    path: str | Path, *, reorient: bool = True, dtype=None, nonfinite: Literal["raise", "zero", "keep"] = "raise"
) -> Volume:
    """Read a 3-D NIfTI file (a trailing singleton 4th axis is dropped).

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        reorient: Reorient to closest canonical RAS (see module docstring).
        dtype: Cast the data to this dtype (default: the stored dtype after scaling, as nibabel returns it).
        nonfinite: NaN/±Inf voxels: ``"raise"`` (default: a ``ValueError`` naming the file and the count),
            ``"zero"`` (replace them by 0) or ``"keep"`` (return them as stored; the caller deals with them).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read as NIfTI, is not 3-D, has a zero/negative/non-finite voxel spacing, a
            singular or non-finite affine, or (by default) non-finite voxels; the message names the file.
    """
    path = Path(path)
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    img = _open(path)
    try:
        if reorient:
            img = nib.as_closest_canonical(img)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises a zoo of exception types for corrupt files
        raise ValueError(f"cannot read NIfTI file {path}: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    data = _check_finite_voxels(data, path, nonfinite)  # after the cast: a narrower dtype may overflow to Inf
    return Volume(np.ascontiguousarray(data), np.asarray(img.affine, dtype=np.float64), path)


def save_nifti(path: str | Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write a 3-D array as NIfTI (``.nii.gz`` compresses); the dtype is kept (float32 images, uint8 labels).

    The qform and sform are both set to ``affine`` (code 1, scanner), and the zooms follow from it.
    """
    path = Path(path)
    data = np.asarray(data)
    affine = np.asarray(affine, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{path}: data must be 3-D, got shape {data.shape}")
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError(f"{path}: affine must be a finite 4x4 matrix, got {affine!r}")
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_data_dtype(data.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def resample(volume: Volume, spacing, *, order: int) -> Volume:
    """Resample to a target voxel size, keeping the field of view (voxel edges) and the orientation.

    Args:
        volume: Input volume.
        spacing: Target voxel size in mm, one number or three.
        order: Spline order: 0 (nearest, for labels) or 1 / 3 (images).

    Returns:
        The resampled volume with its updated affine (same dtype as the input).
    """
    target = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
    if not np.all(np.isfinite(target)) or np.any(target <= 0):
        raise ValueError(f"spacing must be positive and finite, got {spacing!r}")
    current = np.asarray(volume.spacing)
    if np.allclose(current, target, rtol=1e-4, atol=1e-6):
        return volume
    zoom = current / target  # output voxels per input voxel
    shape = np.maximum(np.round(np.asarray(volume.shape) * zoom).astype(int), 1)
    step = np.asarray(volume.shape) / shape  # input voxels per output voxel, exact FOV preservation
    offset = (step - 1) / 2  # output voxel centre j maps to input coordinate j * step + offset
    data = volume.data
    integer = data.dtype.kind in "uib"
    out = ndimage.affine_transform(
        data.astype(np.float32, copy=False) if not integer or order > 0 else data,
        step, offset=offset, output_shape=tuple(shape), order=order, mode="nearest", prefilter=order > 1,
    )  # fmt: skip
    if integer:
        out = np.rint(out).astype(data.dtype) if order > 0 else out.astype(data.dtype, copy=False)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.affine[:3, :3] @ offset + volume.affine[:3, 3]
    affine[:3, :3] = volume.affine[:3, :3] * step[None, :]
    return Volume(out, affine, volume.path)


def robust_zscore(image: np.ndarray, mask: np.ndarray | None = None, *, percentiles=(0.5, 99.5)) -> np.ndarray:
    """Per-image robust z-score: clip to percentiles, then subtract the mean and divide by the sd.

    Statistics are taken over ``mask`` (e.g. the body) when given, else over the whole image; clipping makes
    them robust to outliers (metal, air, bright vessels). Returns a new float32 array; a constant image maps to 0.

    Raises:
        ValueError: The image has NaN/Inf voxels (they would turn the whole output into NaN).
    """
    image = np.asarray(image, dtype=np.float32)
    if not np.all(np.isfinite(image)):
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise ValueError(f"robust_zscore: {bad} of {image.size} voxels are NaN or infinite")
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    values = image if mask is None else image[np.asarray(mask, dtype=bool)]
    if values.size == 0:
        raise ValueError("robust_zscore: the mask selects no voxel")
    lo, hi = np.percentile(values, [lo_p, hi_p])
    clipped = np.clip(values, lo, hi)
    mean, sd = float(clipped.mean()), float(clipped.std())
    return ((np.clip(image, lo, hi) - mean) / max(sd, 1e-8)).astype(np.float32)
