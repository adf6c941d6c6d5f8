"""Provenance, monitoring and cost records of study cells; training stays bit-identical with them."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import spineaug
from spineaug._io import git_state
from spineaug import study as S
from spineaug.study import provenance as P
from spineaug.study.data import _phantom_seeds, load_monitor, load_split
from spineaug.study.grid import Cell, cell_folder
from spineaug.study.runner import prepare

from .conftest import tiny_study


def _log(folder: Path, name: str = "train_log.csv") -> list[dict]:
    with (folder / name).open() as f:
        return list(csv.DictReader(f))


def test_fingerprint_touches_no_rng_and_no_thread_setting():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(5)
        np.random.seed(5)
        random.seed(5)
        states = torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
        fps = [P.engine_fingerprint(a) for a in ("none", "nnunet", "xdomain-plus")]
        assert torch.equal(states[0], torch.random.get_rng_state())
        assert np.array_equal(states[1], np.random.get_state()[1]) and states[2] == random.getstate()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert len(set(fps)) == 3 and fps == [P.engine_fingerprint(a) for a in ("none", "nnunet", "xdomain-plus")]


def test_training_is_bit_identical_with_and_without_recording(tmp_path, monkeypatch):
    """The same tiny cell trained with provenance + monitoring and with neither: same log, same weights.

    (Provenance is recorded before the cell seeds torch; that the fingerprint leaves every RNG and the thread
    count as it found them is checked on its own above.)
    """
    spec = tiny_study(tmp_path)
    spec["data"]["domains"] = ["t2w", "ct", "t1w"]
    study = S.load_study(spec)
    prepare(study, tmp_path / "out", progress=False)
    train, val = load_split(study, "t2w", "train"), load_split(study, "t2w", "val")
    monitor = load_monitor(study, "t2w")
    assert set(monitor) == {"ct", "t1w"}
    cell = Cell("t2w", "xdomain", 0)
    from spineaug.study import train as T

    with_rec, without = tmp_path / "with", tmp_path / "without"
    T.train_cell(study, cell, with_rec, train, val, progress=False, monitor=monitor)
    monkeypatch.setattr(T, "_record_start", lambda *a, **k: None)
    T.train_cell(study, cell, without, train, val, progress=False)
    a, b = _log(with_rec), _log(without)
    for column in ("iteration", "loss", "val_dice"):
        assert [r[column] for r in a] == [r[column] for r in b]
    wa = torch.load(with_rec / "model.pt", weights_only=False)["model"]
    wb = torch.load(without / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = _log(with_rec, "monitor_log.csv")
    assert [(r["iteration"], r["domain"]) for r in rows] == [(i, d) for i in ("6", "12") for d in ("ct", "t1w")]
    assert not (without / "monitor_log.csv").exists()
    record = json.loads((with_rec / "cell.json").read_text())
    assert record["provenance"]["engine_fingerprint"] == P.engine_fingerprint("xdomain")
    assert record["cost"]["train_s"] > 0 and record["cost"]["threads"] == 1


def test_resumed_monitoring_keeps_rows_up_to_the_checkpoint(tmp_path):
    spec = tiny_study(tmp_path)
    study = S.load_study(spec)
    prepare(study, tmp_path / "out", progress=False)
    train, val = load_split(study, "t2w", "train"), load_split(study, "t2w", "val")
    monitor = load_monitor(study, "t2w")
    from spineaug.study.train import train_cell

    cell = Cell("t2w", "nnunet", 0)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_cell(study, cell, whole, train, val, progress=False, monitor=monitor)
    # killed after 10 iterations: the checkpoint at 8 holds the monitoring rows of iteration 6, not 10's work
    train_cell(study, cell, split, train, val, progress=False, monitor=monitor, stop_after=10)
    train_cell(study, cell, split, train, val, progress=False, monitor=monitor)
    assert _log(split, "monitor_log.csv") == _log(whole, "monitor_log.csv")
    assert [r["iteration"] for r in _log(split, "monitor_log.csv")] == ["6", "12"]
    record = json.loads((split / "cell.json").read_text())
    assert record["provenance"] is not None and len(record["sessions"]) == 1


def test_monitoring_anatomies_are_validation_anatomies_of_other_domains(tmp_path):
    spec = tiny_study(tmp_path)
    spec["data"].update(domains=["t2w", "ct", "t1w"], n_train=2, n_val=2, n_test=2)
    spec["training"]["monitor_cases"] = 2
    study = S.load_study(spec)
    prepare(study, tmp_path / "out", progress=False)
    monitor = load_monitor(study, "ct")
    assert set(monitor) == {"t2w", "t1w"}  # every other domain, never the source's
    test_ids = {s.case_id for d in study.target_domains() for s in load_split(study, d, "test")}
    val_seeds = set(_phantom_seeds(study.data, "val"))
    forbidden = set(_phantom_seeds(study.data, "test")) | set(_phantom_seeds(study.data, "train"))
    for domain, cases in monitor.items():
        assert len(cases) == 2
        for s in cases:
            seed = int(s.case_id.rsplit("_", 1)[1])
            assert s.case_id.startswith(domain + "_") and seed in val_seeds and seed not in forbidden
            assert s.case_id not in test_ids
    spec["training"]["monitor_cases"] = 0
    assert load_monitor(S.load_study(spec), "ct") == {}


def _engine_changed(monkeypatch):
    forward = spineaug.Pipeline.forward

    def changed(self, *args, **kwargs):
        image, label = forward(self, *args, **kwargs)
        return image + 1e-3, label

    monkeypatch.setattr(spineaug.Pipeline, "forward", changed)


def test_changed_engine_or_phantom_marks_a_cell_stale(tmp_path, monkeypatch):
    study = S.load_study(tiny_study(tmp_path))
    out = tmp_path / "out"
    S.run_study(study, out, progress=False)
    cell = Cell("t2w", "none", 0)
    assert [r["provenance"] for r in P.cell_provenance(study, out)] == ["fresh"]
    assert "fresh" in S.status(study, out)
    assert pd.read_csv(out / "summary.csv")["stale_cells"].tolist() == [0]  # one source: no pooled row

    with monkeypatch.context() as m:
        _engine_changed(m)
        assert P.cell_provenance(study, out)[0]["provenance"] == P.STALE_ENGINE
        assert "stale: engine changed" in S.status(study, out) and "(1 stale)" in S.status(study, out)
        S.summarize(study, out)  # stale cells are not pooled: no summary rows, the cell listed in cells.csv
        assert not (out / "summary.csv").exists() and not (out / "metrics.csv").exists()
        assert pd.read_csv(out / "cells.csv")["provenance"].tolist() == [P.STALE_ENGINE]
        assert "left out" in (out / "summary.md").read_text()
        S.summarize(study, out, include_stale=True)
        assert pd.read_csv(out / "summary.csv")["stale_cells"].tolist() == [1]
    with monkeypatch.context() as m:
        m.setattr("spineaug.phantom.VERSION", "changed")
        assert P.cell_provenance(study, out)[0]["provenance"] == P.STALE_PHANTOM
    record = json.loads((cell_folder(out, cell) / "cell.json").read_text())
    assert record["cost"]["eval_s"] > 0 and record["provenance"]["commit"] == git_state()
    record["provenance"] = None  # a cell trained before provenance was recorded
    (cell_folder(out, cell) / "cell.json").write_text(json.dumps(record))
    assert P.cell_provenance(study, out)[0]["provenance"] == P.NO_PROVENANCE
    S.summarize(study, out)
    assert not (out / "summary.csv").exists()


def test_summary_counts_cpu_hours_and_exports_monitoring(tmp_path):
    study = S.load_study(tiny_study(tmp_path))
    out = tmp_path / "out"
    S.run_study(study, out, progress=False)
    cells = pd.read_csv(out / "cells.csv")
    assert cells["train_s"].iloc[0] > 0 and cells["threads"].iloc[0] == 1
    assert "CPU-hours" in (out / "summary.md").read_text()
    monitor = pd.read_csv(out / "monitor.csv")
    assert set(monitor["domain"]) == {"ct"} and set(monitor["source"]) == {"t2w"}
    dest = S.export(out, tmp_path / "export")
    assert (dest / "monitor.csv").is_file() and (dest / "cells.csv").is_file()
    assert pd.read_csv(dest / "domains.csv").set_index("domain")["family"].to_dict() == {"t2w": "mr", "ct": "ct"}
    assert pd.read_csv(dest / "grid.csv")["status"].tolist() == ["fresh"]
    stats = pd.read_csv(dest / "stats.csv", dtype={"seed": str})
    assert {"dice", "hd95", "ood_gain_pct"} <= set(stats["measure"]) and {"ood_ct", "ood_mr"} & set(stats["target"])


def test_mixing_arm_splits_the_batch_by_position(tmp_path):
    from spineaug.harness.augment import build_augmentation

    arm = tmp_path / "mix.yaml"
    arm.write_text("mix: {strong: xdomain-plus, weak: nnunet, fraction: 0.5}\n")
    mixed = build_augmentation(str(arm), (16, 16, 16))
    strong, weak = build_augmentation("xdomain-plus", (16, 16, 16)), build_augmentation("nnunet", (16, 16, 16))
    assert mixed.read_size == strong.read_size
    image = torch.randn(2, 1, *mixed.read_size, generator=torch.Generator().manual_seed(1))
    label = (image > 0.5).long()
    out, lab = mixed.batch(image, label, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    s_out, s_lab = strong.batch(image[:1], label[:1], generator=g)
    w_out, w_lab = weak.batch(image[1:], label[1:], generator=g)
    assert torch.equal(out, torch.cat([s_out, w_out])) and torch.equal(lab, torch.cat([s_lab, w_lab]))
    assert mixed.batch.mix.n_strong(2) == 1 and mixed.batch.mix.n_strong(3) == 2
    assert P.engine_fingerprint(str(arm)) not in {P.engine_fingerprint("nnunet"), P.engine_fingerprint("xdomain-plus")}


@pytest.mark.parametrize(
    ("mix", "needle"),
    [
        ("mix: {strong: xdomain-plus, weak: nope}", "mix.weak"),
        ("mix: {strong: xdomain-plus, weak: nnunet, fraction: 1.5}", "mix.fraction"),
        ("mix: {strong: xdomain-plus, weak: nnunet}\ntransforms: []", "holds only"),
        ("mix: {strong: xdomain-plus, weak: nnunet, p: 1}", "mix.p"),
    ],
)
def test_mixing_arm_errors_name_the_key(tmp_path, mix, needle):
    from spineaug.validation import ConfigError

    arm = tmp_path / "bad.yaml"
    arm.write_text(mix + "\n")
    with pytest.raises(ConfigError, match=needle):
        S.load_study({"name": "t", "sources": ["t2w"], "arms": ["nnunet", str(arm)]})


def test_arm_seeds_choose_an_arms_cells_and_grow_the_grid(tmp_path):
    from spineaug.validation import ConfigError

    spec = tiny_study(tmp_path, arms=["none", "nnunet"], seeds=[0, 1], arm_seeds={"none": [0]})
    assert [c.slug for c in S.cells(S.load_study(spec))] == ["t2w__none__s0", "t2w__nnunet__s0", "t2w__nnunet__s1"]
    spec2 = tiny_study(tmp_path, arms=["none"], seeds=[0], arm_seeds={"none": [2]})
    assert [c.slug for c in S.cells(S.load_study(spec2))] == ["t2w__none__s2"]
    with pytest.raises(ConfigError, match="arm_seeds: 'xdomain' is not one of the arms"):
        S.load_study(tiny_study(tmp_path, arm_seeds={"xdomain": [0]}))
    with pytest.raises(ConfigError, match="arm_seeds.none"):
        S.load_study(tiny_study(tmp_path, arm_seeds={"none": []}))
    # a study.json written before arm_seeds / monitor_cases existed: the same study, finished cells kept
    out = tmp_path / "out"
    old = S.load_study(tiny_study(tmp_path)).model_dump(mode="json")
    del old["arm_seeds"], old["training"]["monitor_cases"]
    out.mkdir()
    (out / "study.json").write_text(json.dumps(old))
    prepare(S.load_study(tiny_study(tmp_path, seeds=[0, 1], arm_seeds={"none": [0]})), out, progress=False)
    with pytest.raises(ValueError, match=r"other \['training'\]"):
        prepare(S.load_study(tiny_study(tmp_path, training={**tiny_study(tmp_path)["training"],
                                                            "monitor_cases": 0})), out, progress=False)  # fmt: skip


def test_export_records_cpu_hours_of_the_finished_cells(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"name": "x"}))
    # (3000 + 600) s x 2 threads + (1500 + 300) s x 1 thread = 9000 s = 2.5 CPU-hours
    pd.DataFrame({"source": ["ct", "ct"], "arm": ["a", "b"], "seed": [0, 0], "train_s": [3000.0, 1500.0],
                  "eval_s": [600.0, 300.0], "threads": [2, 1]}).to_csv(out / "cells.csv", index=False)  # fmt: skip
    dest = S.export(out, tmp_path / "export")
    compute = json.loads((dest / "study.json").read_text())["compute"]
    assert compute["cpu_hours"] == 2.5 and compute["cells"] == 2
