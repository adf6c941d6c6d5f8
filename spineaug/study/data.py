"""Study data: cases per domain and split, preprocessed the same way for every domain.

Phantom cases are rendered once into a cache keyed by phantom version, grid, domain and seed, and reused by
every run. Test anatomies are the same in every domain (paired), so a Dice difference between two domains comes
from appearance alone. Real data is read with :mod:`spineaug.data` (reoriented to RAS, resampled to the common
spacing) and split as :class:`~spineaug.study.config.NiftiDomain` describes (sorted case ids, or nnU-Net's
``splits_final.json`` and ``imagesTs``/``labelsTs``). Every image is robust-z-scored per case with the study's
percentiles, as the training harness prepares every training sample (:func:`spineaug.harness.train.phantom_sample`,
:func:`~spineaug.harness.train.zscored`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spineaug import phantom
from spineaug._io import atomic_write
from spineaug.data import NnUNetRawDataset, PairedNiftiDataset, Sample, SegmentationDataset
from spineaug.data.nnunet_raw import has_test_labels, label_values, read_dataset_json, read_splits
from spineaug.harness.train import phantom_sample, zscored
from spineaug.study.config import NiftiData, NiftiDomain, PhantomData, StudyConfig

SPLITS = ("train", "val", "test")


def _phantom_seeds(cfg: PhantomData, split: str) -> list[int]:
    if split == "train":
        return list(range(cfg.n_train))
    if split == "val":
        return list(range(cfg.n_train, cfg.n_train + cfg.n_val))
    return list(range(cfg.test_seed_start, cfg.test_seed_start + cfg.n_test))


def _cache_dir(cfg: PhantomData) -> Path:
    grid = "x".join(str(n) for n in cfg.shape) + f"_{cfg.spacing:g}mm"
    return Path(cfg.cache) / f"v{phantom.VERSION}" / grid


def _cache_file(cfg: PhantomData, domain: str, seed: int) -> Path:
    return _cache_dir(cfg) / domain / f"{seed:05d}.npz"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
            np.savez(f, **arrays)

    atomic_write(path, write)


def prepare_phantom(cfg: PhantomData, splits: dict[str, Sequence[str]], progress=None) -> int:
    """Render every (domain, seed) the study needs that is not cached yet; returns how many were rendered.

    ``splits`` maps a split name to the domains that need it. One anatomy is built per seed and rendered in all
    the domains that need that seed.
    """
    needed: dict[int, list[str]] = {}
    for split, names in splits.items():
        for seed in _phantom_seeds(cfg, split):
            for name in names:
                if not _cache_file(cfg, name, seed).is_file():
                    needed.setdefault(seed, []).append(name)
    rendered = 0
    items = sorted(needed.items())
    bar = progress(items, desc="phantom cache", unit="anatomy") if progress and items else items
    for seed, names in bar:
        cases = phantom.make_cases(seed, names, shape=cfg.shape, spacing=cfg.spacing)
        for name, case in cases.items():
            _save_npz(_cache_file(cfg, name, seed), image=case.image, label=case.label, affine=case.affine)
            rendered += 1
    return rendered


def load_split(study: StudyConfig, domain: str, split: str) -> list[Sample]:
    """Preprocessed cases of one domain and split: (1, X, Y, Z) float32 z-scored image, (X, Y, Z) uint8 label."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    pct = study.preprocessing.zscore_percentiles
    if isinstance(study.data, PhantomData):
        cfg = study.data  # its spacing equals preprocessing.spacing (StudyConfig checks it)
        out = []
        for seed in _phantom_seeds(cfg, split):
            path = _cache_file(cfg, domain, seed)
            if not path.is_file():
                raise FileNotFoundError(f"phantom cache missing {path}: run the study (it renders the cache first)")
            with np.load(path) as z:
                sample = phantom_sample(f"{domain}_{seed:05d}", z["image"], z["label"], z["affine"], percentiles=pct)
            out.append(sample)
        return out
    return _nifti_split(study.data, domain, split, study.preprocessing.spacing, pct)


def nnunet_case_ids(d: NiftiDomain, split: str) -> tuple[str, list[str] | None]:
    """Which cases of an nnU-Net raw dataset form ``split``: ``(subset, case ids)``; ids None: all of the subset.

    Training and validation cases come from ``labelsTr``: the first ``n_train`` / ``n_val`` of the fold's lists in
    ``splits_final.json`` when there is one, else of the sorted case ids. Test cases are the labelled
    ``imagesTs``/``labelsTs`` cases when there are any, else the ``labelsTr`` cases neither trained nor validated on.
    """
    everything = NnUNetRawDataset(d.path).case_ids  # lists the files (checks numTraining and the images)
    splits = d.splits_file()
    if splits is not None:
        pool_train, pool_val = read_splits(splits, d.fold or 0)
        known = set(everything)
        missing = [c for c in [*pool_train, *pool_val] if c not in known]
        if missing:
            raise ValueError(f"{splits} names case(s) {missing[:5]} that are not in labelsTr")
    else:
        if d.n_train + d.n_val > len(everything):
            raise ValueError(f"n_train + n_val = {d.n_train + d.n_val} but labelsTr holds {len(everything)} cases")
        pool_train, pool_val = everything[: d.n_train], everything[d.n_train : d.n_train + d.n_val]
    train, val = pool_train[: d.n_train], pool_val[: d.n_val]
    if split == "train":
        return "Tr", train
    if split == "val":
        return "Tr", val
    if has_test_labels(d.path):
        return "Ts", None
    used = {*train, *val}
    rest = [c for c in everything if c not in used]
    if not rest:
        raise ValueError(f"no test cases: no labelled imagesTs/labelsTs, and all {len(everything)} labelsTr cases "
                         "are trained or validated on")  # fmt: skip
    return "Tr", rest


def _nifti_dataset(d: NiftiDomain, split: str, spacing):
    if not Path(d.path).is_dir():
        raise FileNotFoundError(f"folder not found: {d.path}")
    if d.format == "nnunet_raw":
        label_map = d.label_mapping(label_values(read_dataset_json(d.path), Path(d.path) / "dataset.json"))
        subset, ids = nnunet_case_ids(d, split)
        return NnUNetRawDataset(d.path, subset=subset, case_ids=ids, spacing=spacing, normalize=False,
                                label_map=label_map)  # fmt: skip
    label_map = d.label_mapping()
    ds = PairedNiftiDataset(d.path, d.image, d.label, spacing=spacing, normalize=False, label_map=label_map)
    n = len(ds)
    if d.n_train + d.n_val > n:
        raise ValueError(f"n_train + n_val = {d.n_train + d.n_val} but {d.path} holds {n} cases")
    bounds = {"train": (0, d.n_train), "val": (d.n_train, d.n_train + d.n_val), "test": (d.n_train + d.n_val, n)}
    lo, hi = bounds[split]
    if split == "test" and lo >= n:
        raise ValueError(f"no test cases left after n_train + n_val = {lo} of {n} cases")
    return SegmentationDataset(ds.cases[lo:hi], spacing=spacing, normalize=False, label_map=label_map)


def _nifti_split(data: NiftiData, domain: str, split: str, spacing, pct) -> list[Sample]:
    d = data.domains[domain]
    where = f"data.domains.{domain} ({d.dataset_name()})"
    try:
        ds = _nifti_dataset(d, split, spacing)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    out = []
    for i in range(len(ds)):
        try:
            s = ds[i]
        except (FileNotFoundError, ValueError) as exc:  # a missing file, a bad label value: name the dataset
            raise type(exc)(f"{where}: {exc}") from None
        if s.label is not None and s.label.max(initial=0) > 3:
            raise ValueError(
                f"{where}: case {s.case_id} has label {int(s.label.max())}; the study segments "
                "0 background, 1 vertebra, 2 disc, 3 canal: map other values with classes"
            )
        out.append(Sample(s.case_id, zscored(s.image, pct), s.label, s.affine))
    return out


def splits_needed(study: StudyConfig) -> dict[str, list[str]]:
    """Which domains each split is needed for: train/val for sources, test for every target, and val for the
    domains of the out-of-domain monitoring sets."""
    val = list(dict.fromkeys([*study.sources, *(d for s in study.sources for d in study.monitor_domains(s))]))
    return {"train": list(study.sources), "val": val, "test": study.target_domains()}


def load_monitor(study: StudyConfig, source: str) -> dict[str, list[Sample]]:
    """The out-of-domain monitoring set of ``source``: per other domain, its first ``training.monitor_cases``
    validation cases (phantom: the source's own validation anatomies rendered in that domain; never a test case).

    For learning curves only (``monitor_log.csv``): never used to pick a checkpoint or a setting.
    """
    k = study.training.monitor_cases
    return {d: load_split(study, d, "val")[:k] for d in study.monitor_domains(source)}


__all__ = ["SPLITS", "load_monitor", "load_split", "nnunet_case_ids", "prepare_phantom", "splits_needed"]
