"""Where a study cell came from, and whether the current code would still produce it.

Every cell records, when it starts (``cell.json`` -> ``provenance``, also copied into ``model.pt``):

- ``commit``: the git commit of the checkout (``<sha>+dirty`` with uncommitted changes; ``None`` outside git);
- ``engine_fingerprint``: sha256 of the arm's augmentation outputs (image and label bytes) on a fixed seeded
  synthetic batch at a fixed patch size, on the CPU, with one thread (see :func:`engine_fingerprint`);
- ``phantom_version``: :data:`spineaug.phantom.VERSION` for phantom studies (``None`` for real data);
- ``settings_hash``: sha256 of the study's model, training, preprocessing and evaluation settings (the keys that
  only add monitoring rows, :data:`MONITOR_KEYS`, are left out: they do not change the model).

:func:`cell_provenance` compares those with the current code and gives each cell one status: ``fresh``,
``stale: engine changed``, ``stale: phantom changed``, ``stale: settings changed`` or ``no provenance`` (a cell
trained before provenance was recorded, or not started). The status table (``spineaug study --status``) and the
summary use it; the summary pools fresh cells only unless told otherwise.

Recording never touches an RNG the training uses (torch's global CPU generator, NumPy's and Python's global
state are saved and restored around the fingerprint) and restores torch's thread count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineaug import phantom
from spineaug._io import git_state
from spineaug.harness.augment import build_augmentation
from spineaug.study.config import PhantomData
from spineaug.study.grid import cell_folder, cells

FINGERPRINT_PATCH = (20, 20, 20)
"""Final patch of the fingerprint batch (small: the fingerprint of a strong arm takes well under a second)."""
FINGERPRINT_SEED = 1234
FINGERPRINT_BATCH = 2
MONITOR_KEYS = ("monitor_cases",)
"""``training`` keys that only decide what is logged besides training (not part of :func:`settings_hash`)."""
FRESH = "fresh"
NO_PROVENANCE = "no provenance"
STALE_ENGINE = "stale: engine changed"
STALE_PHANTOM = "stale: phantom changed"
STALE_SETTINGS = "stale: settings changed"


@contextlib.contextmanager
def isolated_rng(threads: int = 1) -> Iterator[None]:
    """Run the body with ``threads`` torch threads and restore the thread count and every global RNG afterwards."""
    previous = torch.get_num_threads()
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.set_num_threads(threads)
            yield
    finally:
        torch.set_num_threads(previous)
        np.random.set_state(np_state)
        random.setstate(py_state)


def _fingerprint_batch(read_size: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded smooth image with four label regions (so spatial and label-driven transforms both show)."""
    g = torch.Generator().manual_seed(FINGERPRINT_SEED)
    noise = torch.rand((FINGERPRINT_BATCH, 1, *(max(s // 4, 2) for s in read_size)), generator=g)
    image = torch.nn.functional.interpolate(noise, size=read_size, mode="trilinear", align_corners=False)
    label = torch.bucketize(image, torch.tensor([0.35, 0.5, 0.65])).long()
    return (image * 200.0 - 50.0).float().contiguous(), label


def engine_fingerprint(arm: str, base_dir: str | None = None) -> str:
    """sha256 of the arm's output on the fixed fingerprint batch (CPU, float32, one thread, fixed seeds).

    Global RNG state and the thread count are restored afterwards, so calling this inside a training process
    changes nothing the training draws.
    """
    with isolated_rng(1):
        aug = build_augmentation(arm, FINGERPRINT_PATCH, base_dir=base_dir)
        image, label = _fingerprint_batch(aug.read_size)
        if aug.batch is not None:
            out, lab = aug.batch(image, label, generator=torch.Generator().manual_seed(FINGERPRINT_SEED))
        else:  # a worker arm (bgv2) draws from the global RNGs: seed them (restored on exit)
            torch.manual_seed(FINGERPRINT_SEED)
            np.random.seed(FINGERPRINT_SEED)
            random.seed(FINGERPRINT_SEED)
            pairs = [aug.worker(image[i], label[i]) for i in range(FINGERPRINT_BATCH)]
            out, lab = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        h = hashlib.sha256()
        h.update(out.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
        h.update(lab.detach().to(torch.int64).cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def settings_hash(study: Any) -> str:
    """sha256 of the settings every cell of the study shares: model, training, preprocessing, evaluation."""
    d = study.model_dump(mode="json")
    training = {k: v for k, v in d["training"].items() if k not in MONITOR_KEYS}
    shared = {"model": d["model"], "training": training, "preprocessing": d["preprocessing"],
              "evaluation": d["evaluation"]}  # fmt: skip
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()


def phantom_version(study: Any) -> str | None:
    if not isinstance(study.data, PhantomData):
        return None
    return str(phantom.VERSION)


def current_provenance(study: Any, arm: str, *, fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
    """What a cell of ``arm`` started now records (``fingerprints`` caches one fingerprint per arm)."""
    if fingerprints is not None and arm in fingerprints:
        fp = fingerprints[arm]
    else:
        base = getattr(study, "base_dir", None)  # where the study's relative arm files are
        fp = engine_fingerprint(arm, base) if arm.endswith((".json", ".yaml", ".yml")) else engine_fingerprint(arm)
        if fingerprints is not None:
            fingerprints[arm] = fp
    return {
        "commit": git_state(), "engine_fingerprint": fp, "phantom_version": phantom_version(study),
        "settings_hash": settings_hash(study), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


def read_cell_json(folder: Path) -> dict[str, Any] | None:
    path = folder / "cell.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def staleness(recorded: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """The status of a recorded provenance against the current one (see the module docstring)."""
    if not recorded or not recorded.get("engine_fingerprint"):
        return NO_PROVENANCE
    if recorded["engine_fingerprint"] != current["engine_fingerprint"]:
        return STALE_ENGINE
    if recorded.get("phantom_version") != current["phantom_version"]:
        return STALE_PHANTOM
    if recorded.get("settings_hash") != current["settings_hash"]:
        return STALE_SETTINGS
    return FRESH


def cell_provenance(study: Any, out: str | Path, cell_list: list | None = None) -> list[dict[str, Any]]:
    """Per cell of the study (or ``cell_list``): source, arm, seed, slug, commit, status and the recorded cost.

    A resumed cell is judged by every session it trained in: if any session's fingerprint differs from the current
    one, the cell is stale. Fingerprints are computed once per arm per call, only for arms with recorded cells.
    """
    out = Path(out)
    fingerprints: dict[str, str] = {}
    currents: dict[str, dict[str, Any]] = {}
    rows = []
    for cell in cell_list if cell_list is not None else cells(study):
        record = read_cell_json(cell_folder(out, cell)) or {}
        sessions = [record["provenance"], *record.get("sessions", [])] if record.get("provenance") else []
        status = NO_PROVENANCE
        if sessions:
            if cell.arm not in currents:
                currents[cell.arm] = current_provenance(study, cell.arm, fingerprints=fingerprints)
            current = currents[cell.arm]
            found = [staleness(s, current) for s in sessions]
            status = next((s for s in found if s != FRESH), FRESH)
        cost = record.get("cost", {})
        rows.append({
            "source": cell.source, "arm": cell.arm, "seed": cell.seed, "slug": cell.slug,
            "commit": (record.get("provenance") or {}).get("commit"), "provenance": status,
            "train_s": cost.get("train_s"), "eval_s": cost.get("eval_s"), "threads": cost.get("threads"),
        })  # fmt: skip
    return rows


__all__ = [
    "FRESH",
    "NO_PROVENANCE",
    "STALE_ENGINE",
    "STALE_PHANTOM",
    "STALE_SETTINGS",
    "cell_provenance",
    "current_provenance",
    "engine_fingerprint",
    "isolated_rng",
    "settings_hash",
    "staleness",
]
