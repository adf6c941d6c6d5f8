"""Readers for segmentation datasets on disk: folders of image/label NIfTI pairs (nnU-Net raw datasets: nnunet_raw.py).

Every sample is reoriented to RAS (see :mod:`spineaug.data.nifti`), optionally resampled to a target spacing
(images linear, labels nearest) and robust-z-score normalised per image and channel.

Example:
    >>> ds = PairedNiftiDataset("verse", "rawdata/*/sub-{id}_ct.nii.gz",    # doctest: +SKIP
    ...                         "derivatives/*/sub-{id}_seg-vert_msk.nii.gz", label_map=VERSE_LABELS)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spineaug.data.nifti import Volume, load_nifti, nifti_grid, resample, robust_zscore

VERSE_LABELS = {**{v: 1 for v in range(1, 29)}}
"""VerSe vertebra labels (1-7 C, 8-19 T, 20-25 L, 26 sacrum, 27 coccyx, 28 T13) -> 1 (vertebra)."""
SPIDER_LABELS = {**{v: 1 for v in range(1, 26)}, 100: 3, **{v: 2 for v in range(201, 226)}}
"""SPIDER labels (1-25 vertebrae, 100 spinal canal, 201-225 discs) -> task labels (convert .mha to NIfTI first)."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One loaded case.

    Attributes:
        case_id: Case identifier.
        image: (C, X, Y, Z) float32, RAS.
        label: (X, Y, Z) uint8 task labels (or None for unlabelled cases).
        affine: (4, 4) voxel -> world matrix of the (resampled) grid.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        return Volume(self.image[0], self.affine).spacing


class SegmentationDataset:
    """A list of (case id, channel image files, label file) with uniform loading; subclasses find the files.

    Args:
        cases: ``(case_id, [image paths per channel], label path or None)`` triples.
        spacing: Target spacing in mm (one number or three); None keeps each case's own spacing.
        normalize: Apply :func:`~spineaug.data.nifti.robust_zscore` per image channel.
        label_map: Map of stored label value -> task label; values not in it are an error naming the file.
            None keeps labels as stored (they must then fit uint8).
    """

    def __init__(
        self,
        cases: Sequence[tuple[str, Sequence[Path], Path | None]],
        *,
        spacing=None,
        normalize: bool = True,
        label_map: Mapping[int, int] | None = None,
    ):
        if spacing is not None:
            target = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
            if not np.all(np.isfinite(target)) or np.any(target <= 0):
                raise ValueError(f"spacing must be positive and finite (mm), got {spacing!r}")
            spacing = tuple(float(s) for s in target)
        self.cases = [(cid, [Path(p) for p in imgs], None if lab is None else Path(lab)) for cid, imgs, lab in cases]
        self.spacing = spacing
        self.normalize = normalize
        self.label_map = None if label_map is None else {int(k): int(v) for k, v in label_map.items()}
        self._check_grids()

    def _check_grids(self) -> None:
        """From the headers: every case's channels and label share one grid, so a mismatch shows when the dataset
        is built, not when its case is reached mid-run."""
        for _, image_paths, label_path in self.cases:
            files = [*image_paths, *([] if label_path is None else [label_path])]
            first = (files[0], *nifti_grid(files[0]))
            for other in files[1:]:
                _check_grid(first, (other, *nifti_grid(other)))

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def case_ids(self) -> list[str]:
        return [c[0] for c in self.cases]

    def __getitem__(self, index: int) -> Sample:
        case_id, image_paths, label_path = self.cases[index]
        channels = [load_nifti(p) for p in image_paths]
        first = channels[0]
        for other in channels[1:]:
            _check_same_grid(first, other)
        label = None
        if label_path is not None:
            label = load_nifti(label_path)
            _check_same_grid(first, label)
            label = Volume(self._map_labels(label.data, label_path), label.affine, label.path)
        if self.spacing is not None:
            channels = [resample(ch, self.spacing, order=1) for ch in channels]
            label = None if label is None else resample(label, self.spacing, order=0)
        arrays = []
        for ch in channels:
            data = ch.data.astype(np.float32, copy=False)
            arrays.append(robust_zscore(data) if self.normalize else data)
        return Sample(case_id, np.stack(arrays), None if label is None else label.data, channels[0].affine)

    def _map_labels(self, data: np.ndarray, path: Path) -> np.ndarray:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
                raise ValueError(f"{path}: label map has non-integer values")
        values = np.unique(data).astype(np.int64)
        if self.label_map is None:
            if values.min(initial=0) < 0 or values.max(initial=0) > 255:
                raise ValueError(f"{path}: label values {values.min()}..{values.max()} do not fit uint8; give label_map")
            return data.astype(np.uint8)
        unknown = [int(v) for v in values if v != 0 and v not in self.label_map]
        if unknown:
            raise ValueError(f"{path}: label values {unknown[:10]} are not in label_map (in a study file: classes)")
        lut_keys = np.array([0, *self.label_map.keys()], dtype=np.int64)
        lut_vals = np.array([0, *self.label_map.values()], dtype=np.uint8)
        order = np.argsort(lut_keys, kind="stable")
        pos = np.searchsorted(lut_keys[order], data.astype(np.int64))
        return lut_vals[order][pos].astype(np.uint8)


def _check_same_grid(a: Volume, b: Volume) -> None:
    _check_grid((a.path, a.shape, a.affine), (b.path, b.shape, b.affine))


def _check_grid(a: tuple[Path, tuple[int, ...], np.ndarray], b: tuple[Path, tuple[int, ...], np.ndarray]) -> None:
    """Two files' ``(path, shape, affine)`` must describe one voxel grid."""
    (path_a, shape_a, affine_a), (path_b, shape_b, affine_b) = a, b
    if tuple(shape_a) != tuple(shape_b):
        raise ValueError(f"shape mismatch: {path_a} has {tuple(shape_a)}, {path_b} has {tuple(shape_b)}")
    if not np.allclose(affine_a, affine_b, atol=1e-3, rtol=1e-4):
        raise ValueError(f"affine mismatch between {path_a} and {path_b}:\n{affine_a}\nvs\n{affine_b}")


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("{id}", i):
            out += r"(?P<id>[^/]+?)"
            i += 4
        elif pattern.startswith("**/", i):
            out += r"(?:.*/)?"
            i += 3
        elif pattern[i] == "*":
            out += r"[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += r"[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _find(root: Path, pattern: str, what: str) -> dict[str, Path]:
    if pattern.count("{id}") != 1:
        raise ValueError(f"{what} pattern must contain '{{id}}' exactly once, got {pattern!r}")
    regex = _pattern_regex(pattern)
    found: dict[str, Path] = {}
    for path in sorted(root.glob(pattern.replace("{id}", "*"))):
        match = regex.match(path.relative_to(root).as_posix())
        if match:
            cid = match.group("id")
            if cid in found:
                raise ValueError(f"{what} pattern {pattern!r} matches two files for case {cid!r}: {found[cid]}, {path}")
            found[cid] = path
    return found


class PairedNiftiDataset(SegmentationDataset):
    """Image/label NIfTI pairs found by glob patterns with an ``{id}`` placeholder (``*``, ``?``, ``**/`` allowed).

    Examples of patterns (relative to ``root``):

    - VerSe: ``"rawdata/*/sub-{id}_ct.nii.gz"`` and ``"derivatives/*/sub-{id}_seg-vert_msk.nii.gz"``
      with ``label_map=VERSE_LABELS``.
    - SPIDER (converted to NIfTI): ``"images/{id}_t2.nii.gz"`` and ``"masks/{id}_t2.nii.gz"``, ``SPIDER_LABELS``.
    - BIDS: ``"sub-{id}/anat/sub-*_T2w.nii.gz"`` and ``"derivatives/labels/sub-{id}/anat/*_dseg.nii.gz"``.

    Args:
        root: Folder the patterns are relative to.
        image_pattern: Pattern of the image files (single channel).
        label_pattern: Pattern of the label files; every image needs one (and vice versa), else ``ValueError``.
        spacing, normalize, label_map: See :class:`SegmentationDataset`.
    """

    def __init__(
        self, root: str | Path, image_pattern: str, label_pattern: str, *, spacing=None, normalize=True, label_map=None
    ):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {root}")
        images = _find(root, image_pattern, "image")
        labels = _find(root, label_pattern, "label")
        if not images:
            raise FileNotFoundError(f"no image matches {image_pattern!r} under {root}")
        unpaired = sorted(set(images) ^ set(labels))
        if unpaired:
            lonely = [str(images.get(c) or labels.get(c)) for c in unpaired[:5]]
            raise ValueError(f"unpaired files under {root} (no partner for case ids {unpaired[:5]}): {lonely}")
        cases = [(cid, [images[cid]], labels[cid]) for cid in sorted(images)]
        super().__init__(cases, spacing=spacing, normalize=normalize, label_map=label_map)
