"""Evaluate one trained cell on the test cases of every target domain: Dice and HD95 per class and case.

Resumable per case: each finished (domain, case) appends its rows to ``metrics.partial.csv``; a restart skips
those cases. The final ``metrics.csv`` is written atomically once every case is done.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from spineaug import _schema
from spineaug._io import atomic_write_csv, atomic_write_text
from spineaug.data import Sample
from spineaug.data.nifti import save_nifti
from spineaug.harness.train import CLASS_NAMES, N_CLASSES
from spineaug.study.config import StudyConfig
from spineaug.study.grid import Cell
from spineaug.study.predict import read_model_file
from spineaug.study.train import build_model, device_for, predict_volume, update_cell_json

METRIC_COLUMNS = _schema.STUDY_METRIC_COLUMNS


def case_metrics(pred: torch.Tensor, label: np.ndarray, spacing, hd95: bool) -> list[tuple[str, float, float]]:
    """Dice and HD95 (mm) per foreground class; a class absent from both gives Dice 1, absent from one NaN HD95."""
    from monai.metrics import compute_dice, compute_hausdorff_distance  # optional: monai (study extra)

    p = nn.functional.one_hot(pred.long(), N_CLASSES).permute(3, 0, 1, 2)[None]
    y = nn.functional.one_hot(torch.from_numpy(label.astype(np.int64)), N_CLASSES).permute(3, 0, 1, 2)[None]
    dice = compute_dice(p, y, include_background=False, ignore_empty=False)[0]
    if hd95:
        hd = compute_hausdorff_distance(p, y, include_background=False, percentile=95, spacing=list(spacing))[0]
    else:
        hd = torch.full((N_CLASSES - 1,), float("nan"))
    out = []
    for c, name in enumerate(CLASS_NAMES):
        in_p, in_y = bool(p[0, c + 1].any()), bool(y[0, c + 1].any())
        d = 1.0 if not in_p and not in_y else float(dice[c])
        h = float(hd[c]) if in_p and in_y else float("nan")
        out.append((name, d, h))
    return out


def evaluate_cell(
    study: StudyConfig, cell: Cell, folder: Path, tests: dict[str, Callable[[], list[Sample]]], *,
    progress: bool = True,
) -> Path:  # fmt: skip
    """Evaluate ``folder/model.pt`` on ``tests`` (domain -> loader of its test cases); returns ``metrics.csv``."""
    final = folder / "metrics.csv"
    if final.is_file():
        return final
    started = time.perf_counter()
    device = device_for(study)
    torch.set_num_threads(study.training.threads)
    state = read_model_file(folder / "model.pt", device, trusted=True)  # the study's own file
    model = build_model(study, state["spec"]["in_channels"]).to(device)
    model.load_state_dict(state["model"])
    partial = folder / "metrics.partial.csv"
    done: set[tuple[str, str]] = set()
    if partial.is_file():  # a case counts as done when all its class rows are there (a kill may cut a write)
        with partial.open() as f:
            rows = [r for r in csv.DictReader(f) if r.get("hd95") is not None]
        counts: dict[tuple[str, str], int] = {}
        for r in rows:
            counts[r["domain"], r["case"]] = counts.get((r["domain"], r["case"]), 0) + 1
        done = {k for k, n in counts.items() if n == len(CLASS_NAMES)}
        kept = [[r[c] for c in METRIC_COLUMNS] for r in rows if (r["domain"], r["case"]) in done]
        atomic_write_csv(partial, [dict(zip(METRIC_COLUMNS, r)) for r in kept], METRIC_COLUMNS)
    else:
        atomic_write_csv(partial, [], METRIC_COLUMNS)
    bar = None
    if progress:
        bar = tqdm(total=len(tests), desc=f"eval {cell.slug}", unit="domain", leave=False, dynamic_ncols=True)
    for domain, load in tests.items():
        cases = load()
        for i, s in enumerate(cases):
            if (domain, s.case_id) in done:
                continue
            pred = predict_volume(model, torch.from_numpy(s.image), study, device)
            spacing = np.sqrt((s.affine[:3, :3] ** 2).sum(axis=0))
            rows = [(cell.source, cell.arm, cell.seed, domain, s.case_id, name, round(d, 6),
                     "" if np.isnan(h) else round(h, 4))
                    for name, d, h in case_metrics(pred, s.label, spacing, study.evaluation.hd95)]  # fmt: skip
            if i < study.evaluation.save_predictions:
                out = folder / "predictions" / domain
                save_nifti(out / f"{s.case_id}.nii.gz", pred.numpy().astype(np.uint8), s.affine)
            with partial.open("a", newline="") as f:  # one append per case: a kill loses at most this case
                csv.writer(f).writerows(rows)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    update_cell_json(folder, cell, cost={"eval_s": round(time.perf_counter() - started, 3)})  # the last session's
    atomic_write_text(final, partial.read_text())
    partial.unlink()
    return final
