"""nnU-Net v2 raw dataset layout, read and written in one place.

Layout of one dataset folder ``DatasetNNN_Name``: ``imagesTr/CASE_XXXX<ending>`` (one file per channel ``XXXX``),
``labelsTr/CASE<ending>``, ``dataset.json`` (``channel_names``, ``labels``, ``numTraining``, ``file_ending``);
extra per-case folders (e.g. the phantom's ``tissueTr/``) are allowed and ignored by nnU-Net. Only NIfTI endings
(``.nii.gz``, ``.nii``) are supported.

Example:
    >>> root = write_dataset_json("raw/Dataset900_X", {"0": "CT"}, {"background": 0, "vertebra": 1}, 1)  # doctest: +SKIP
    >>> write_case("raw/Dataset900_X", "case_000", image, label, affine)                                # doctest: +SKIP
    >>> ds = NnUNetRawDataset("raw/Dataset900_X", spacing=2.0)                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spineaug.data.datasets import SegmentationDataset
from spineaug.data.nifti import save_nifti

REQUIRED_FIELDS = ("channel_names", "labels", "numTraining", "file_ending")
FILE_ENDINGS = (".nii.gz", ".nii")

__all__ = [
    "FILE_ENDINGS",
    "REQUIRED_FIELDS",
    "NnUNetRawDataset",
    "dataset_folder_name",
    "read_dataset_json",
    "write_case",
    "write_dataset_json",
]


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net dataset folder name, e.g. ``dataset_folder_name(900, "PhantomCt") == "Dataset900_PhantomCt"``."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, numbers.Integral) or not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset_id must be an integer in [1, 999], got {dataset_id!r}")
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"dataset name must be non-empty letters, digits, '-' or '_', got {name!r}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def read_dataset_json(root: str | Path) -> dict:
    """Read and check ``dataset.json`` of an nnU-Net raw dataset (fields: channel_names, labels, numTraining,
    file_ending)."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"dataset.json not found: {path}")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_FIELDS if k not in meta]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    if not isinstance(meta["channel_names"], dict) or not meta["channel_names"]:
        raise ValueError(f"{path}: channel_names must be a non-empty object like {{\"0\": \"CT\"}}")
    if not isinstance(meta["labels"], dict) or "background" not in meta["labels"]:
        raise ValueError(f"{path}: labels must be an object with a 'background' entry")
    if isinstance(meta["numTraining"], bool) or not isinstance(meta["numTraining"], int) or meta["numTraining"] < 0:
        raise ValueError(f"{path}: numTraining must be a non-negative integer, got {meta['numTraining']!r}")
    if not isinstance(meta["file_ending"], str) or not meta["file_ending"].startswith("."):
        raise ValueError(f"{path}: file_ending must be like '.nii.gz', got {meta['file_ending']!r}")
    if meta["file_ending"] not in FILE_ENDINGS:
        raise ValueError(f"{path}: only NIfTI datasets are supported, file_ending is {meta['file_ending']!r}")
    return meta


class NnUNetRawDataset(SegmentationDataset):
    """An nnU-Net v2 raw dataset: ``imagesTr/CASE_XXXX<ending>`` per channel, ``labelsTr/CASE<ending>``.

    Args:
        root: The ``DatasetNNN_Name`` folder.
        spacing, normalize, label_map: See :class:`SegmentationDataset`.
    """

    def __init__(self, root: str | Path, *, spacing=None, normalize: bool = True, label_map=None):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {root}")
        self.root = root
        self.meta = read_dataset_json(root)
        ending = self.meta["file_ending"]
        channels = sorted(int(k) for k in self.meta["channel_names"])
        labels_dir = root / "labelsTr"
        if not labels_dir.is_dir():
            raise FileNotFoundError(f"labelsTr folder not found: {labels_dir}")
        label_files = sorted(p for p in labels_dir.iterdir() if p.name.endswith(ending))
        cases = []
        for lab in label_files:
            case_id = lab.name[: -len(ending)]
            images = [root / "imagesTr" / f"{case_id}_{c:04d}{ending}" for c in channels]
            for img in images:
                if not img.is_file():
                    raise FileNotFoundError(f"image file missing for label {lab}: {img}")
            cases.append((case_id, images, lab))
        if len(cases) != self.meta["numTraining"]:
            raise ValueError(
                f"{root / 'dataset.json'}: numTraining is {self.meta['numTraining']} but labelsTr holds {len(cases)} cases"
            )
        super().__init__(cases, spacing=spacing, normalize=normalize, label_map=label_map)


def write_dataset_json(
    root: str | Path,
    channel_names: Mapping[str | int, str],
    labels: Mapping[str, int],
    num_training: int,
    *,
    file_ending: str = ".nii.gz",
    **extra,
) -> Path:
    """Write ``dataset.json`` of an nnU-Net raw dataset (creating ``root``); it reads back with :func:`read_dataset_json`.

    Args:
        root: The ``DatasetNNN_Name`` folder.
        channel_names: Channel index -> name, e.g. ``{"0": "CT"}`` (``"CT"`` selects nnU-Net's CT normalisation).
        labels: Label name -> value, with ``"background": 0``.
        num_training: Number of training cases.
        file_ending: ``".nii.gz"`` or ``".nii"``.
        **extra: More top-level fields (e.g. ``name``, ``description``, tool-specific metadata); JSON-serialisable.

    Returns:
        The written ``dataset.json`` path.
    """
    if file_ending not in FILE_ENDINGS:
        raise ValueError(f"file_ending must be one of {FILE_ENDINGS}, got {file_ending!r}")
    clash = sorted(set(extra) & {*REQUIRED_FIELDS})
    if clash:
        raise ValueError(f"extra fields {clash} are set by their own arguments")
    meta = {
        **{k: extra[k] for k in ("name", "description") if k in extra},
        "channel_names": {str(k): str(v) for k, v in channel_names.items()},
        "labels": {str(k): int(v) for k, v in labels.items()},
        "numTraining": num_training,
        "file_ending": file_ending,
        **{k: v for k, v in extra.items() if k not in ("name", "description")},
    }
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dataset.json"
    path.write_text(json.dumps(meta, indent=2))
    try:
        read_dataset_json(root)
    except ValueError:
        path.unlink()
        raise
    return path


def write_case(
    root: str | Path,
    case_id: str,
    images: np.ndarray | Sequence[np.ndarray],
    label: np.ndarray | None,
    affine: np.ndarray,
    *,
    file_ending: str = ".nii.gz",
    extra: Mapping[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write one training case: ``imagesTr/<case_id>_XXXX``, ``labelsTr/<case_id>`` and optional extra folders.

    Args:
        root: The ``DatasetNNN_Name`` folder (sub-folders are created).
        case_id: Case identifier (no ``_XXXX`` channel suffix, no ending).
        images: One (X, Y, Z) array, or one per channel (written with its own dtype, e.g. float32).
        label: (X, Y, Z) integer label map (e.g. uint8), or None for an unlabelled case.
        affine: (4, 4) voxel -> world matrix shared by every file.
        file_ending: ``".nii.gz"`` or ``".nii"``.
        extra: Folder name -> (X, Y, Z) array written as ``<folder>/<case_id><ending>`` (e.g. ``{"tissueTr": t}``).

    Returns:
        The written paths.
    """
    if file_ending not in FILE_ENDINGS:
        raise ValueError(f"file_ending must be one of {FILE_ENDINGS}, got {file_ending!r}")
    if not case_id or "/" in case_id or case_id.endswith(FILE_ENDINGS):
        raise ValueError(f"case_id must be a plain name without folder or ending, got {case_id!r}")
    root = Path(root)
    channels = [images] if isinstance(images, np.ndarray) else list(images)
    if not channels:
        raise ValueError("images must hold at least one channel")
    arrays = [*channels, *([] if label is None else [label]), *(extra or {}).values()]
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"case {case_id!r}: image, label and extra arrays differ in shape: {sorted(shapes)}")
    if label is not None and np.asarray(label).dtype.kind not in "uib":
        raise ValueError(f"case {case_id!r}: label must be an integer array, got dtype {np.asarray(label).dtype}")
    paths = [
        save_nifti(root / "imagesTr" / f"{case_id}_{c:04d}{file_ending}", image, affine)
        for c, image in enumerate(channels)
    ]
    if label is not None:
        paths.append(save_nifti(root / "labelsTr" / f"{case_id}{file_ending}", label, affine))
    for folder, array in (extra or {}).items():
        paths.append(save_nifti(root / folder / f"{case_id}{file_ending}", array, affine))
    return paths
