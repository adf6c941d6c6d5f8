"""NIfTI reading and writing, reorientation to RAS, resampling to a target spacing, robust z-score normalisation.

Orientation convention: every volume spineaug reads is reoriented to the closest canonical RAS orientation
(nibabel ``as_closest_canonical``): array axis 0 runs left -> right, axis 1 posterior -> anterior,
axis 2 inferior -> superior. Oblique acquisitions keep their (small) residual rotation in the affine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
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


def load_nifti(path: str | Path, *, reorient: bool = True, dtype=None) -> Volume:
    """Read a 3-D NIfTI file (a trailing singleton 4th axis is dropped).

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        reorient: Reorient to closest canonical RAS (see module docstring).
        dtype: Cast the data to this dtype (default: the stored dtype after scaling, as nibabel returns it).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read as NIfTI or is not 3-D; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    try:
        img = nib.load(str(path))
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
    """
    image = np.asarray(image, dtype=np.float32)
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
