"""nnU-Net v2 raw dataset layout, read and written in one place.

Layout of one dataset folder ``DatasetNNN_Name``: ``imagesTr/CASE_XXXX<ending>`` (one file per channel ``XXXX``),
``labelsTr/CASE<ending>``, ``dataset.json`` (``channel_names``, ``labels``, ``numTraining``, ``file_ending``);
optionally test cases in ``imagesTs/`` (same naming) with their labels in ``labelsTs/``, and a
``splits_final.json`` (nnU-Net writes it to ``nnUNet_preprocessed/DatasetNNN_Name/``: a list of folds, each
``{"train": [case ids], "val": [case ids]}``). Extra per-case folders (e.g. the phantom's ``tissueTr/``) are
allowed and ignored by nnU-Net. Only NIfTI endings (``.nii.gz``, ``.nii``) are supported.

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
SUBSETS = ("Tr", "Ts")
"""``Tr``: ``imagesTr``/``labelsTr`` (training cases); ``Ts``: ``imagesTs``/``labelsTs`` (test cases)."""
SPLITS_FILE = "splits_final.json"

__all__ = [
    "FILE_ENDINGS",
    "REQUIRED_FIELDS",
    "SPLITS_FILE",
    "SUBSETS",
    "NnUNetRawDataset",
    "dataset_folder_name",
    "has_test_labels",
    "label_values",
    "read_dataset_json",
    "read_splits",
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


def label_values(meta: Mapping, where: str | Path = "dataset.json") -> dict[str, int]:
    """The ``labels`` of a ``dataset.json`` as name -> integer value.

    Raises:
        ValueError: Region-based labels (a list of values per name, nnU-Net's ``regions_class_order``), nnU-Net's
            ``ignore`` label (partial annotation) or a value that is not a non-negative integer; ``where`` names
            the dataset in the message.
    """
    labels = meta["labels"]
    if "regions_class_order" in meta or any(isinstance(v, (list, tuple)) for v in labels.values()):
        raise ValueError(f"{where}: region-based labels (lists of values per label) are not supported; "
                         "give each label one integer value")  # fmt: skip
    if "ignore" in labels:
        raise ValueError(f"{where}: nnU-Net's 'ignore' label (partially annotated cases) is not supported")
    out = {}
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: label {name!r} must have a non-negative integer value, got {value!r}")
        out[str(name)] = value
    return out


def read_splits(path: str | Path, fold: int = 0) -> tuple[list[str], list[str]]:
    """One fold of an nnU-Net ``splits_final.json``: ``(train case ids, validation case ids)`` in file order.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a list of ``{"train": [...], "val": [...]}`` objects with case-id strings, or ``fold`` is
            not one of its folds; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"splits file not found: {path}")
    try:
        folds = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(folds, list) or not folds:
        raise ValueError(f"{path}: expected a non-empty list of folds, each {{\"train\": [...], \"val\": [...]}}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < len(folds):
        raise ValueError(f"{path}: fold {fold!r} does not exist; the file has folds 0..{len(folds) - 1}")
    entry = folds[fold]
    lists = []
    for key in ("train", "val"):
        ids = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(ids, list) or not all(isinstance(c, str) and c for c in ids):
            raise ValueError(f"{path}: fold {fold} needs a {key!r} list of case ids")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{path}: fold {fold}: {key!r} names a case twice")
        lists.append(list(ids))
    both = sorted(set(lists[0]) & set(lists[1]))
    if both:
        raise ValueError(f"{path}: fold {fold}: cases {both[:5]} are in both 'train' and 'val'")
    return lists[0], lists[1]


def has_test_labels(root: str | Path, file_ending: str | None = None) -> bool:
    """Whether the dataset holds labelled test cases (a ``labelsTs`` folder with at least one label file)."""
    root = Path(root)
    ending = file_ending or read_dataset_json(root)["file_ending"]
    folder = root / "labelsTs"
    return folder.is_dir() and any(p.name.endswith(ending) for p in folder.iterdir())


class NnUNetRawDataset(SegmentationDataset):
    """An nnU-Net v2 raw dataset: ``imagesTr/CASE_XXXX<ending>`` per channel, ``labelsTr/CASE<ending>``.

    Args:
        root: The ``DatasetNNN_Name`` folder.
        subset: ``"Tr"`` (training cases, ``numTraining`` of them) or ``"Ts"`` (the labelled test cases of
            ``imagesTs``/``labelsTs``; every image there needs its label and vice versa).
        case_ids: Only these cases, in this order (e.g. one fold of ``splits_final.json``); None: all, sorted.
        spacing, normalize, label_map: See :class:`SegmentationDataset`.
    """

    def __init__(self, root: str | Path, *, subset: str = "Tr", case_ids: Sequence[str] | None = None,
                 spacing=None, normalize: bool = True, label_map=None):  # fmt: skip
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {root}")
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        self.root = root
        self.meta = read_dataset_json(root)
        if "dataset" in self.meta:
            raise ValueError(f"{root / 'dataset.json'}: lists its files under 'dataset' (nnU-Net's custom layout); "
                             f"only the standard images{subset}/labels{subset} layout is read")  # fmt: skip
        ending = self.meta["file_ending"]
        channels = sorted(int(k) for k in self.meta["channel_names"])
        labels_dir = root / f"labels{subset}"
        if not labels_dir.is_dir():
            raise FileNotFoundError(f"labels{subset} folder not found: {labels_dir}")
        label_files = sorted(p for p in labels_dir.iterdir() if p.name.endswith(ending))
        cases = []
        for lab in label_files:
            case_id = lab.name[: -len(ending)]
            images = [root / f"images{subset}" / f"{case_id}_{c:04d}{ending}" for c in channels]
            for img in images:
                if not img.is_file():
                    raise FileNotFoundError(f"image file missing for label {lab}: {img}")
            cases.append((case_id, images, lab))
        if subset == "Tr" and len(cases) != self.meta["numTraining"]:
            raise ValueError(
                f"{root / 'dataset.json'}: numTraining is {self.meta['numTraining']} but labelsTr holds {len(cases)} cases"
            )
        if subset == "Ts":
            labelled = {c[0] for c in cases}
            first = f"_{channels[0]:04d}{ending}"
            images_dir = root / "imagesTs"
            unlabelled = sorted(p.name for p in (images_dir.iterdir() if images_dir.is_dir() else ())
                                if p.name.endswith(first) and p.name[: -len(first)] not in labelled)  # fmt: skip
            if unlabelled:
                raise ValueError(f"{images_dir}: {len(unlabelled)} image(s) without a label in {labels_dir}: "
                                 f"{unlabelled[:5]}; every test case needs its label")  # fmt: skip
        if case_ids is not None:
            by_id = {c[0]: c for c in cases}
            missing = [c for c in case_ids if c not in by_id]
            if missing:
                raise ValueError(f"{root}: case(s) {missing[:5]} not found in labels{subset} ({len(missing)} missing)")
            cases = [by_id[c] for c in case_ids]
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
    subset: str = "Tr",
) -> list[Path]:
    """Write one case: ``imagesTr/<case_id>_XXXX``, ``labelsTr/<case_id>`` and optional extra folders.

    Args:
        root: The ``DatasetNNN_Name`` folder (sub-folders are created).
        case_id: Case identifier (no ``_XXXX`` channel suffix, no ending).
        images: One (X, Y, Z) array, or one per channel (written with its own dtype, e.g. float32).
        label: (X, Y, Z) integer label map (e.g. uint8), or None for an unlabelled case.
        affine: (4, 4) voxel -> world matrix shared by every file.
        file_ending: ``".nii.gz"`` or ``".nii"``.
        extra: Folder name -> (X, Y, Z) array written as ``<folder>/<case_id><ending>`` (e.g. ``{"tissueTr": t}``).
        subset: ``"Tr"`` (a training case) or ``"Ts"`` (a test case: ``imagesTs/``, ``labelsTs/``; it does not count
            in ``numTraining``).

    Returns:
        The written paths.
    """
    if file_ending not in FILE_ENDINGS:
        raise ValueError(f"file_ending must be one of {FILE_ENDINGS}, got {file_ending!r}")
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
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
        save_nifti(root / f"images{subset}" / f"{case_id}_{c:04d}{file_ending}", image, affine)
        for c, image in enumerate(channels)
    ]
    if label is not None:
        paths.append(save_nifti(root / f"labels{subset}" / f"{case_id}{file_ending}", label, affine))
    for folder, array in (extra or {}).items():
        paths.append(save_nifti(root / folder / f"{case_id}{file_ending}", array, affine))
    return paths
