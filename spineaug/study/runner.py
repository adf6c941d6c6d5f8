"""Run a study grid: prepare the data once, then train + evaluate every cell, inline or through submitit.

``results/study/<name>/`` holds ``study.json`` (the resolved study), ``cells/<source>__<arm>__s<seed>/`` per cell
(``cell.json`` with provenance and cost, ``augmentation.json``, ``checkpoint.pt`` while training, ``model.pt``,
``train_log.csv``, ``monitor_log.csv``, ``metrics.csv``, ``predictions/``) and the study-level ``metrics.csv``,
``curves.csv``, ``monitor.csv``, ``cells.csv``, ``summary.csv`` and ``summary.md``.
Finished cells are never redone; a cell in training resumes from its checkpoint; evaluation resumes per case.
The three executors (``inline``, ``local``, ``slurm``) run the same function per cell, :func:`run_cell`. The study is
validated once, when it is loaded; every cell receives that validated :class:`StudyConfig` (pickled to a submitit
worker as it is), never a dict to validate again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from spineaug._io import atomic_write_text
from spineaug.integrations import require
from spineaug.study.config import PhantomData, StudyConfig, load_study
from spineaug.study.data import load_monitor, load_split, prepare_phantom, splits_needed
from spineaug.study.evaluate import evaluate_cell
from spineaug.study.grid import Cell, cell_folder, cells
from spineaug.study.provenance import cell_provenance
from spineaug.study.train import train_cell
from spineaug.validation import PositiveInt, ValidatedModel

EXECUTORS = ("inline", "local", "slurm", "debug")


GRID_KEYS = ("sources", "arms", "arm_sources", "seeds", "arm_seeds", "reference_arm", "description")
"""Study keys that only choose which cells exist or how they are summarised: changing them keeps finished cells."""


def cell_state(out: Path, cell: Cell) -> str:
    """``done``, ``evaluating``, ``training (k/N)`` or ``missing``."""
    folder = cell_folder(out, cell)
    if (folder / "metrics.csv").is_file():
        return "done"
    if (folder / "model.pt").is_file():
        return "evaluating"
    log = folder / "train_log.csv"
    if log.is_file():
        k = max(len(log.read_text().splitlines()) - 1, 0)
        return f"training ({k} it checkpointed)"
    if (folder / "cell.json").is_file():
        return "training (no checkpoint yet)"
    return "missing"


def prepare(study: StudyConfig, out: Path, *, progress: bool = True) -> None:
    """Write ``study.json`` and render the phantom cache (once, before any cell starts)."""
    out.mkdir(parents=True, exist_ok=True)
    resolved = study.model_dump(mode="json")
    previous = out / "study.json"
    if previous.is_file():
        old = _with_defaults(json.loads(previous.read_text()), resolved)
        changed = sorted(k for k in set(old) | set(resolved) if k not in GRID_KEYS and old.get(k) != resolved.get(k))
        if changed:
            raise ValueError(
                f"{previous} holds a study with other {changed} under the same name; results would mix. "
                "Use another --out or name, or delete the folder to start over."
            )
    atomic_write_text(previous, json.dumps(resolved, indent=1))
    if isinstance(study.data, PhantomData):
        prepare_phantom(study.data, splits_needed(study), progress=tqdm if progress else None)
    else:  # read every case once now: a shape/affine mismatch or a bad label fails before any training starts
        for split, names in splits_needed(study).items():
            for name in names:
                if split == "test" or study.data.domains[name].n_train > 0:
                    load_split(study, name, split)


def _with_defaults(old: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
    """``old`` (a study.json written by an earlier version) with the keys added since then at their defaults, so
    a new optional setting (e.g. ``training.monitor_cases``) does not count as a change of the study."""
    def default(model_cls, key):
        info = model_cls.model_fields[key]
        value = info.get_default(call_default_factory=True)
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    out = dict(old)
    for key, value in resolved.items():
        if key not in StudyConfig.model_fields:
            continue
        if key not in out:
            out[key] = default(StudyConfig, key)
        sub = StudyConfig.model_fields[key].annotation
        if isinstance(value, dict) and isinstance(out[key], dict) and isinstance(sub, type) \
                and issubclass(sub, BaseModel):  # fmt: skip
            out[key] = {**{k: default(sub, k) for k in value if k not in out[key] and k in sub.model_fields},
                        **out[key]}  # fmt: skip
    return out


def run_cell(study: StudyConfig, out: str, cell: Cell, progress: bool = True) -> str:
    """Train and evaluate one cell (resuming whatever is there); the unit of work of every executor.

    Args:
        study: The validated study (:func:`~spineaug.study.config.load_study`), as the runner holds it: a worker
            process receives it pickled (its ``base_dir`` included), so no cell validates the study again.
        out: The study's result folder.
        cell: The cell to run.
        progress: Show progress bars.
    """
    if not isinstance(study, StudyConfig):
        raise TypeError(f"run_cell takes a validated StudyConfig (load_study), got {type(study).__name__}")
    folder = cell_folder(Path(out), cell)
    if not (folder / "model.pt").is_file():
        train = load_split(study, cell.source, "train")
        val = load_split(study, cell.source, "val")
        monitor = load_monitor(study, cell.source)
        train_cell(study, cell, folder, train, val, progress=progress, monitor=monitor)
    tests = {d: (lambda d=d: load_split(study, d, "test")) for d in study.target_domains()}
    evaluate_cell(study, cell, folder, tests, progress=progress)
    return str(folder)


class SlurmOptions(ValidatedModel):
    """Resources of one SLURM job (one cell): partition, GPUs, CPUs, memory in GB and time limit in minutes."""

    partition: str | None = None
    gpus: Annotated[int, Field(ge=0)] = 1
    cpus: PositiveInt = 8
    mem_gb: PositiveInt = 32
    time_min: PositiveInt = 240


def run_study(
    study: StudyConfig | str | Path, out: str | Path, *, executor: str = "inline", workers: int = 1,
    slurm: SlurmOptions | None = None, progress: bool = True, include_stale: bool = False,
) -> Path:  # fmt: skip
    """Run (or resume) every missing cell of the study and write the study-level results; returns ``out``.

    Finished cells are kept whatever their provenance; the summary pools fresh ones only unless ``include_stale``
    (:func:`spineaug.study.summary.summarize`). Delete a stale cell's folder to train it again.
    """
    from spineaug.study.summary import summarize  # optional: pandas (study extra); loading a study needs none

    require("monai", "study", "the cross-domain study (network, loss, metrics)")
    if executor != "inline":
        require("submitit", "study", f"the {executor!r} executor")
    if not isinstance(study, StudyConfig):
        study = load_study(study)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    out = Path(out)
    prepare(study, out, progress=progress)
    todo = [c for c in cells(study) if cell_state(out, c) != "done"]
    if executor == "inline":
        grid = None
        if progress:
            grid = tqdm(total=len(cells(study)), initial=len(cells(study)) - len(todo), desc="study grid", unit="cell")
        failures = []
        for cell in todo:
            try:
                run_cell(study, str(out), cell, progress)
            except Exception as exc:  # noqa: BLE001 - one failed cell must not stop the others
                failures.append((cell, exc))
            if grid is not None:
                grid.update(1)
        if grid is not None:
            grid.close()
    else:
        failures = _submit(study, out, todo, executor, workers, slurm or SlurmOptions(), progress) if todo else []
    summarize(study, out, include_stale=include_stale)
    if failures:
        listing = "; ".join(f"{c.slug}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            for c, e in failures)  # fmt: skip
        raise RuntimeError(f"{len(failures)} cell(s) failed (the others are done and summarised): {listing}")
    return out


def _submit(study: StudyConfig, out: Path, todo: list[Cell], executor: str, workers: int, slurm: SlurmOptions,
            progress: bool):
    """Run ``todo`` through submitit: a SLURM job array, or at most ``workers`` local processes at a time.

    Each job receives the validated ``study`` pickled (with its ``base_dir``: a worker finds the study's relative
    arm files).

    Returns the failed cells with their exceptions (a failed cell does not stop the others).
    """
    import submitit  # optional: submitit (study extra), only for the local/slurm executors

    ex = submitit.AutoExecutor(folder=out / "submitit" / "%j", cluster=executor)
    n_gpus = torch.cuda.device_count() if executor == "local" else 0
    if executor == "slurm":
        ex.update_parameters(
            timeout_min=slurm.time_min, gpus_per_node=slurm.gpus, cpus_per_task=slurm.cpus, mem_gb=slurm.mem_gb,
            slurm_partition=slurm.partition, slurm_array_parallelism=workers if workers > 1 else len(todo),
            name="spineaug-study",
        )  # fmt: skip
    elif executor == "local":
        ex.update_parameters(timeout_min=7 * 24 * 60)
    failures = []
    grid = None
    if progress:
        grid = tqdm(total=len(todo), desc="study grid", unit="cell")
    args = (study, str(out))
    if executor == "slurm":  # the whole array at once; SLURM enforces the parallelism
        running = list(zip(todo, ex.map_array(run_cell, *zip(*[(*args, c, False) for c in todo]))))
        pending: list[Cell] = []
    else:  # local processes: keep `workers` busy, start the next cell when one finishes
        pending, running = list(todo), []
    started = 0
    while pending or running:
        while pending and len(running) < max(workers, 1):
            cell = pending.pop(0)
            if n_gpus:  # local jobs take the GPUs in turn (submitit would hide them all otherwise)
                ex.update_parameters(gpus_per_node=1, local_visible_gpus=[started % n_gpus])
            started += 1
            running.append((cell, ex.submit(run_cell, *args, cell, False)))
        finished = [(c, j) for c, j in running if j.done()]
        for cell, job in finished:
            running.remove((cell, job))
            try:
                job.result()  # raises with the job's traceback if the cell failed
            except Exception as exc:  # noqa: BLE001 - collected, reported after the others finish
                failures.append((cell, exc))
            if grid is not None:
                grid.update(1)
        if grid is not None:
            grid.set_postfix_str(", ".join(f"{c.slug}: {cell_state(out, c)}" for c, _ in running)[:120])
        if not finished:
            time.sleep(2.0)
    if grid is not None:
        grid.close()
    return failures


def status(study: StudyConfig | str | Path, out: str | Path) -> str:
    """A table of every cell: state (done, evaluating, training, missing), recorded commit and provenance status
    against the current code (fresh, stale: engine/phantom/settings changed, no provenance)."""
    if not isinstance(study, StudyConfig):
        study = load_study(study)
    out = Path(out)
    grid = cells(study)
    states = [cell_state(out, c) for c in grid]
    prov = cell_provenance(study, out, grid)
    lines = [f"study {study.name!r} in {out}", f"{'cell':<40} {'state':<28} {'commit':<13} provenance"]
    for cell, state, p in zip(grid, states, prov):
        commit = (p["commit"] or "-")[:12] + ("+" if (p["commit"] or "").endswith("+dirty") else "")
        lines.append(f"{cell.slug:<40} {state:<28} {commit:<13} {p['provenance'] if state != 'missing' else '-'}")
    n_done = sum(s == "done" for s in states)
    n_stale = sum(s == "done" and p["provenance"].startswith("stale") for s, p in zip(states, prov))
    lines.append(f"{n_done}/{len(states)} cells done" + (f" ({n_stale} stale)" if n_stale else ""))
    return "\n".join(lines)
