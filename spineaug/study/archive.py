"""What of a study is committed, and how a fresh checkout resumes from it.

``spineaug study --export DIR`` writes the compact results (:func:`spineaug.study.summary.export`). Besides the
pooled tables, two files keep what the pooled tables lose:

- ``cells.json``: each finished cell's ``cell.json`` (source, arm, seed, the provenance of every training session,
  cost), keyed by the cell's slug;
- ``examples.npz``: mid-sagittal slices (axis 0 of the RAS arrays) of the test cases whose predictions the cells
  saved (``evaluation.save_predictions``): the z-scored image and the ground truth once per case (keys
  ``image/<domain>/<case>``, ``label/<domain>/<case>``) and each cell's prediction (``pred/<slug>/<domain>/<case>``).
  The report draws example predictions from it; full volumes are never committed.

:func:`restore` rebuilds finished cells in a results folder from such an export (``metrics.csv``, the compact
``train_log.csv``, ``monitor_log.csv`` and ``cell.json``; no model), so ``spineaug study --resume-from DIR`` goes
on where an exported run stopped, on another machine or checkout. Only cells whose recorded provenance matches the
current code are restored: a stale cell is trained again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from spineaug import _schema
from spineaug._io import atomic_write, atomic_write_csv, atomic_write_text
from spineaug.study.config import StudyConfig
from spineaug.study.data import load_split
from spineaug.study.grid import Cell, cell_folder, cells
from spineaug.study.provenance import FRESH, current_provenance, staleness

RECORDS = "cells.json"
EXAMPLES = "examples.npz"
KEYS = ["source", "arm", "seed"]


def _finished(out: Path, study: StudyConfig) -> list[Cell]:
    return [c for c in cells(study) if (cell_folder(out, c) / "metrics.csv").is_file()]


def write_records(study: StudyConfig, out: Path, dest: Path) -> Path:
    """``dest/cells.json``: the ``cell.json`` of every finished cell in ``out``, merged over an existing file (the
    cells of ``out`` replace theirs, the others are kept)."""
    path = dest / RECORDS
    records: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for cell in _finished(out, study):
        own = cell_folder(out, cell) / "cell.json"
        if own.is_file():
            records[cell.slug] = json.loads(own.read_text())
    atomic_write_text(path, json.dumps(dict(sorted(records.items())), indent=1))
    return path


def write_examples(study: StudyConfig, out: Path, dest: Path) -> Path | None:
    """``dest/examples.npz`` (see the module docstring), merged over an existing file; ``None`` if no cell saved
    predictions."""
    path = dest / EXAMPLES
    arrays: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    tests: dict[str, dict[str, Any]] = {}
    found = False
    for cell in _finished(out, study):
        for pred_file in sorted((cell_folder(out, cell) / "predictions").glob("*/*.nii.gz")):
            domain, case = pred_file.parent.name, pred_file.name[: -len(".nii.gz")]
            if domain not in tests:
                tests[domain] = {s.case_id: s for s in load_split(study, domain, "test")}
            sample = tests[domain].get(case)
            if sample is None:
                continue
            found = True
            mid = sample.label.shape[0] // 2
            arrays[f"image/{domain}/{case}"] = sample.image[0, mid].astype(np.float16)
            arrays[f"label/{domain}/{case}"] = sample.label[mid].astype(np.uint8)
            arrays[f"pred/{cell.slug}/{domain}/{case}"] = np.asarray(nib.load(pred_file).dataobj)[mid].astype(np.uint8)
    if not found and not arrays:
        return None
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
            np.savez_compressed(f, **dict(sorted(arrays.items())))

    atomic_write(path, write)
    return path


def _rows(frame: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["source"] == cell.source) & (frame["arm"] == cell.arm) & (frame["seed"] == cell.seed)]


def restore(study: StudyConfig, export_dir: Path, out: Path) -> list[str]:
    """Rebuild the finished, still-fresh cells of ``export_dir`` (an export of this study) in ``out``.

    A cell is restored when ``out`` has not finished it, the export holds its record and its metrics, and every
    training session it recorded matches the current engine, phantom and settings
    (:func:`spineaug.study.provenance.staleness`). Returns the restored cells' slugs.
    """
    export_dir = Path(export_dir)
    if not (export_dir / RECORDS).is_file():
        raise FileNotFoundError(
            f"{export_dir / RECORDS} not found: --resume-from needs an export written by `spineaug study --export` "
            "(its cells.json holds each cell's provenance)"
        )
    records = json.loads((export_dir / RECORDS).read_text())

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(export_dir / name) if (export_dir / name).is_file() else pd.DataFrame(columns=KEYS)

    metrics, curves, monitor = read("metrics.csv"), read("curves.csv"), read("monitor.csv")
    restored, currents = [], {}
    for cell in cells(study):
        folder = cell_folder(out, cell)
        record = records.get(cell.slug)
        rows = _rows(metrics, cell)
        if (folder / "metrics.csv").is_file() or record is None or rows.empty:
            continue
        sessions = [record["provenance"], *record.get("sessions", [])] if record.get("provenance") else []
        if cell.arm not in currents:
            currents[cell.arm] = current_provenance(study, cell.arm)
        if not sessions or any(staleness(s, currents[cell.arm]) != FRESH for s in sessions):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "cell.json", json.dumps({**record, "restored_from": str(export_dir)}, indent=1))
        atomic_write_csv(folder / "train_log.csv", _rows(curves, cell), _schema.STUDY_LOG_COLUMNS)
        mon = _rows(monitor, cell)
        if not mon.empty:
            atomic_write_csv(folder / "monitor_log.csv", mon, _schema.STUDY_MONITOR_COLUMNS)
        atomic_write_csv(folder / "metrics.csv", rows, _schema.STUDY_METRIC_COLUMNS)
        restored.append(cell.slug)
    return restored
