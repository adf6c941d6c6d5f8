"""Train one study cell (source domain x arm x seed) with the shared harness (:mod:`spineaug.harness.train`: the
network, DiceCE, Adam with a polynomial schedule, the step and where the arm augments).

Resumable: a checkpoint (model, optimiser, scheduler, augmentation generator, logs so far, training seconds) is
written atomically every ``checkpoint_every`` iterations; a restarted cell continues from it and draws exactly
the patches and augmentation parameters it would have drawn without the interruption.

Besides training, a cell records (none of it draws from an RNG the training uses or changes the thread count,
so a cell trains bit-identically with or without it): its provenance in ``cell.json`` at start
(:mod:`spineaug.study.provenance`), the out-of-domain monitoring curve in ``monitor_log.csv`` and the training
wall-clock seconds in ``cell.json`` -> ``cost``.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from spineaug import _schema
from spineaug._io import atomic_write, atomic_write_csv, atomic_write_text
from spineaug.data import Sample
from spineaug.harness.augment import build_augmentation, dump_config
from spineaug.harness.train import (
    CLASS_NAMES,
    N_CLASSES,
    Trainer,
    build_network,
    training_arm,
    training_loader,
    training_steps,
)
from spineaug.study.config import StudyConfig
from spineaug.study.grid import Cell
from spineaug.study.provenance import current_provenance

LOG_COLUMNS = _schema.STUDY_LOG_COLUMNS
MONITOR_COLUMNS = _schema.STUDY_MONITOR_COLUMNS


def build_model(study_or_model: Any, in_channels: int = 1) -> nn.Module:
    """The study's network (``study.model``, :func:`spineaug.harness.train.build_network`), the same in every cell."""
    model = study_or_model.model if isinstance(study_or_model, StudyConfig) else study_or_model
    return build_network(model, in_channels)


def model_spec(study: StudyConfig, in_channels: int = 1) -> dict[str, Any]:
    """What ``predict`` needs to rebuild the network and preprocess an input like the training data."""
    return {
        "model": study.model.model_dump(), "in_channels": in_channels, "n_classes": N_CLASSES,
        "class_names": list(CLASS_NAMES), "spacing": study.preprocessing.spacing,
        "zscore_percentiles": list(study.preprocessing.zscore_percentiles),
        "patch_size": list(study.training.patch_size), "overlap": study.evaluation.overlap,
        "sw_batch_size": study.evaluation.sw_batch_size,
    }  # fmt: skip


def device_for(study: StudyConfig) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


CHECKPOINT_STATE_KEYS = ("model", "optimizer", "scheduler", "scaler")
CHECKPOINT_META_KEYS = ("iteration", "log", "monitor", "wall_s")


def _checkpoint_state(state: dict[str, Any]) -> dict[str, Any]:
    """The resume checkpoint as tensors and plain data only, so it loads with ``torch.load(weights_only=True)``:
    the state dicts, the augmentation generator's state as a CPU uint8 tensor, the rest JSON-safe."""
    generator = state["generator"]
    if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
        raise TypeError(f"checkpoint: the generator state must be a uint8 tensor, got {type(generator).__name__}")
    meta = json.loads(json.dumps({k: state[k] for k in CHECKPOINT_META_KEYS}))
    return {**{k: state[k] for k in CHECKPOINT_STATE_KEYS}, "generator": generator.cpu(), **meta}


def _read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """Load a resume checkpoint with ``weights_only=True`` (nothing is unpickled); the generator state on the CPU."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: holds Python objects besides tensors and plain data (written by an older "
                         f"spineaug?), so it is not loaded ({str(exc).splitlines()[0]}); delete it to train the cell "
                         "from the start") from None  # fmt: skip
    return {**ckpt, "generator": ckpt["generator"].cpu()}


def update_cell_json(folder: Path, cell: Cell, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into ``folder/cell.json`` (source, arm, seed, provenance, sessions, cost); returns it."""
    path = folder / "cell.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.update(cell.__dict__)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    atomic_write_text(path, json.dumps(record, indent=1))
    return record


def _record_start(study: StudyConfig, cell: Cell, folder: Path, resuming: bool) -> None:
    """Write the provenance of this training session into ``cell.json``: a new cell's as ``provenance``, a resumed
    session's appended to ``sessions``; a cell begun before provenance was recorded keeps ``provenance: null``."""
    now = current_provenance(study, cell.arm)
    path = folder / "cell.json"
    if not resuming:
        atomic_write_text(path, json.dumps({**cell.__dict__, "provenance": now, "sessions": []}, indent=1))
        return
    record = json.loads(path.read_text()) if path.is_file() else {}
    update_cell_json(folder, cell, provenance=record.get("provenance"), sessions=[*record.get("sessions", []), now])


def train_cell(
    study: StudyConfig, cell: Cell, folder: Path, train: list[Sample], val: list[Sample], *, progress: bool = True,
    stop_after: int | None = None, monitor: dict[str, list[Sample]] | None = None,
) -> Path:  # fmt: skip
    """Train (or resume) one cell; returns the final model file ``folder / "model.pt"``.

    Args:
        monitor: The out-of-domain monitoring set (domain -> cases, :func:`spineaug.study.data.load_monitor`):
            its Dice per domain is logged to ``monitor_log.csv`` at every validation, for learning curves only.
            It never feeds back into training, checkpoint choice or any setting.
        stop_after: Stop (as if killed) after this many iterations of this call; for tests of resumption.
    """
    tr = study.training
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / "model.pt"
    if final.is_file():
        return final
    session_start = time.perf_counter()
    ckpt_path = folder / "checkpoint.pt"
    _record_start(study, cell, folder, resuming=ckpt_path.is_file())
    torch.set_num_threads(tr.threads)
    device = device_for(study)
    seed = cell.seed
    torch.manual_seed(seed)  # weight initialisation only; every later draw has its own generator
    aug = build_augmentation(cell.arm, tr.patch_size, base_dir=study.base_dir)
    atomic_write_text(folder / "augmentation.json", dump_config(aug))
    trainer = Trainer(build_model(study, train[0].image.shape[0]).to(device), device=device, lr=tr.lr,
                      weight_decay=tr.weight_decay, iterations=tr.iterations, amp=tr.amp)  # fmt: skip
    model, opt, sched, scaler = trainer.model, trainer.optimizer, trainer.scheduler, trainer.scaler
    gen = torch.Generator().manual_seed(10_000 + seed)
    start, rows, monitor_rows, wall_before = 0, [], [], 0.0
    if ckpt_path.is_file():
        ckpt = _read_checkpoint(ckpt_path, device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        gen.set_state(ckpt["generator"])
        start, rows = int(ckpt["iteration"]), list(ckpt["log"])
        monitor_rows = [r for r in ckpt.get("monitor", []) if r["iteration"] <= start]
        wall_before = float(ckpt.get("wall_s", 0.0))

    arm = training_arm(aug)
    sampler = arm.patches(train, tr.patch_size, length=tr.iterations * tr.batch_size, foreground_p=tr.p_foreground,
                          seed=seed)  # fmt: skip
    loader = training_loader(arm.dataset(sampler), batch_size=tr.batch_size, workers=tr.loader_workers,
                             device=device, first=start * tr.batch_size)  # fmt: skip
    bar = None
    if progress:
        bar = tqdm(total=tr.iterations, initial=start, desc=cell.slug, unit="it", dynamic_ncols=True, leave=False)
    elapsed = rows[-1]["elapsed_s"] if rows else 0.0
    it = start
    model.train()
    steps = training_steps(loader, arm.to(device), trainer, generator=gen, device=device)
    for step in steps:
        it += 1
        elapsed += step.done - step.waited
        row = {"iteration": it, "loss": round(step.loss, 5), "data_s": round(step.fetched - step.waited, 5),
               "augment_s": round(step.augmented - step.fetched, 5),
               "network_s": round(step.done - step.augmented, 5), "val_dice": "",
               "elapsed_s": round(elapsed, 3)}  # fmt: skip
        if it % tr.val_every == 0 or it == tr.iterations:
            row["val_dice"] = round(validation_dice(study, model, val, device), 5)
            for domain, cases in (monitor or {}).items():  # learning curves only: never read back
                monitor_rows.append({"iteration": it, "domain": domain,
                                     "dice": round(validation_dice(study, model, cases, device), 5)})  # fmt: skip
            model.train()
        rows.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{step.loss:.3f}", val=row["val_dice"] or "-")
        if it % tr.checkpoint_every == 0 or it == tr.iterations:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "scaler": scaler.state_dict(), "generator": gen.get_state(), "iteration": it, "log": rows,
                     "monitor": monitor_rows, "wall_s": wall_before + time.perf_counter() - session_start}  # fmt: skip
            _atomic_torch_save(_checkpoint_state(state), ckpt_path)
            atomic_write_csv(folder / "train_log.csv", rows, LOG_COLUMNS)
            if monitor:
                atomic_write_csv(folder / "monitor_log.csv", monitor_rows, MONITOR_COLUMNS)
        if stop_after is not None and it - start >= stop_after:
            steps.close()
            if bar is not None:
                bar.close()
            return ckpt_path
    if bar is not None:
        bar.close()
    atomic_write_csv(folder / "train_log.csv", rows, LOG_COLUMNS)
    if monitor:
        atomic_write_csv(folder / "monitor_log.csv", monitor_rows, MONITOR_COLUMNS)
    cost = {"train_s": round(wall_before + time.perf_counter() - session_start, 3), "threads": tr.threads,
            "loader_workers": tr.loader_workers, "device": str(device)}  # fmt: skip
    record = update_cell_json(folder, cell, cost=cost)
    # Tensors and plain data only (JSON-safe metadata), so predict loads it with torch.load(weights_only=True).
    meta = json.loads(json.dumps({"spec": model_spec(study, train[0].image.shape[0]), "cell": cell.__dict__,
                                  "provenance": record.get("provenance"), "sessions": record.get("sessions", [])},
                                 default=str))  # fmt: skip
    _atomic_torch_save({**meta, "model": model.state_dict()}, final)
    ckpt_path.unlink(missing_ok=True)
    return final


@torch.no_grad()
def predict_volume(model: nn.Module, image: torch.Tensor, study_or_spec: Any, device: torch.device) -> torch.Tensor:
    """Sliding-window class map of one (C, X, Y, Z) image: (X, Y, Z) int64 on the CPU."""
    from monai.inferers import sliding_window_inference  # optional: monai (study extra)

    if isinstance(study_or_spec, StudyConfig):
        roi, overlap, sw = study_or_spec.training.patch_size, study_or_spec.evaluation.overlap, \
            study_or_spec.evaluation.sw_batch_size  # fmt: skip
    else:
        spec = study_or_spec
        roi, overlap, sw = tuple(spec["patch_size"]), spec.get("overlap", 0.25), spec.get("sw_batch_size", 2)
    model.eval()
    x = image[None].to(device)
    with torch.autocast(device.type, enabled=device.type == "cuda"):
        logits = sliding_window_inference(x, roi, sw, model, overlap=overlap, mode="gaussian", padding_mode="constant")
    return logits.argmax(1)[0].cpu()


def validation_dice(study: StudyConfig, model: nn.Module, val: list[Sample], device: torch.device) -> float:
    """Mean foreground Dice over the validation cases (classes averaged per case, then cases)."""
    from monai.metrics import compute_dice  # optional: monai (study extra)

    scores = []
    for s in val:
        pred = predict_volume(model, torch.from_numpy(s.image), study, device)
        p = nn.functional.one_hot(pred, N_CLASSES).permute(3, 0, 1, 2)[None]
        y = nn.functional.one_hot(torch.from_numpy(s.label.astype(np.int64)), N_CLASSES).permute(3, 0, 1, 2)[None]
        d = compute_dice(p, y, include_background=False, ignore_empty=True)
        scores.append(float(torch.nanmean(d)))
    return float(np.mean(scores))
