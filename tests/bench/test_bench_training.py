"""``spineaug bench --training``: the training-throughput benchmark's machinery at tiny sizes (not its numbers)."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from spineaug import _schema, bench, cli
from spineaug.bench import training, training_run
from spineaug.report import training as training_report

TINY = dict(iterations=1, warmup=1, cpu_budgets=(1,), device="cpu")


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory):
    out = tmp_path_factory.mktemp("training")
    logs: list[str] = []
    files = bench.run_training(bench.TrainingConfig.quick(**TINY), out, log=logs.append)
    return out, files, logs


def test_training_run_writes_one_row_per_arm_and_worker_count(tiny_training):
    out, files, logs = tiny_training
    assert set(files) == {"training", "meta"}
    with open(out / _schema.TRAINING_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == _schema.TRAINING_COLUMNS
    assert [(r["arm"], r["workers"]) for r in rows] == [
        ("bgv2-nnunet", "0"), ("bgv2-nnunet", "1"), ("nnunet", "0"), ("xdomain", "0"), ("none", "0")]
    assert all(r["status"] == "ok" for r in rows), [r["note"] for r in rows]
    for r in rows:
        assert float(r["iteration_s"]) > 0 and float(r["network_s"]) > 0 and r["cpu_budget"] == "1"
    by_arm = {(r["arm"], r["workers"]): r for r in rows}
    assert by_arm[("bgv2-nnunet", "1")]["augment_s"] == ""  # hidden in the worker process
    assert float(by_arm[("nnunet", "0")]["augment_s"]) > 0
    assert by_arm[("nnunet", "0")]["read_patch"] != "16x16x16"  # the enlarged patch
    assert by_arm[("none", "0")]["read_patch"] == "16x16x16"
    if hasattr(os, "sched_setaffinity"):
        assert "sched_setaffinity" in rows[0]["cpu_pinning"]
    meta = json.loads((out / _schema.TRAINING_META).read_text())
    assert meta["cpu_budgets"] == [1] and meta["config"]["iterations"] == 1 and rows[0]["rounds"] == "1"


def test_training_markdown_has_the_table_and_the_paper_ratio(tiny_training, tmp_path):
    out, _, _ = tiny_training
    text = training_report.markdown(out)
    assert "| cores | arm |" in text and "Ratio (b)/(a) on cpu, 1 core(s)" in text and "~0.9" in text
    assert training_report.markdown(tmp_path) == ""


def test_cpu_budget_restores_affinity_and_threads():
    threads = torch.get_num_threads()
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with training_run.cpu_budget(1) as how:
        assert torch.get_num_threads() == 1 and "threads=1" in how
        if before is not None:
            assert len(os.sched_getaffinity(0)) == 1
    assert torch.get_num_threads() == threads
    if before is not None:
        assert os.sched_getaffinity(0) == before


def test_budgets_and_worker_counts():
    assert training.default_budgets(2) == (2, 1)
    assert training.default_budgets(16) == (16, 4, 1)
    assert training.worker_counts(1) == (0, 1)
    assert training.worker_counts(16) == (0, 1, 15)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(patch_size=(17, 16, 16)), "divisible by 2"),
    (dict(patch_size=(16, 0, 16)), r"patch_size\.1: Input should be greater than or equal to 1 \(got 0\)"),
    (dict(arms=("bgv2",)), "arms: unknown training arm"),
    (dict(arms=()), "arms: name at least one arm"),
    (dict(cpu_budgets=(10_000,)), "cpu_budgets: CPU budget 10000 must lie in 1"),
    (dict(cpu_budgets=()), "cpu_budgets: name at least one value"),
    (dict(iterations=0), r"iterations: Input should be greater than or equal to 1 \(got 0\)"),
    (dict(warmup=-1), r"warmup: Input should be greater than or equal to 0 \(got -1\)"),
    (dict(batch_size=True), r"batch_size: Input should be a valid integer \(got True\)"),
    (dict(device="tpu"), "device: must be cpu, cuda or auto"),
    (dict(domain="xray"), "domain: unknown phantom domain 'xray'"),
    (dict(seed=1.5), "seed: 'seed' must be an integer, got 1.5"),
    (dict(iteration=3), "iteration: Extra inputs are not permitted"),
])
def test_bad_training_requests_are_refused_before_running(overrides, message):
    """A bad value fails when the config is built, naming the key; a budget this machine lacks when it is checked."""
    with pytest.raises(bench.BenchError, match=message):
        training.validate_training(bench.TrainingConfig.quick(**overrides))


def test_training_config_is_a_frozen_validated_model():
    import pickle

    cfg = bench.TrainingConfig.quick(patch_size=[16, 16, 16], cpu_budgets=[1])
    assert cfg.patch_size == (16, 16, 16) and cfg.cpu_budgets == (1,)  # lists become tuples: the config is hashable
    assert pickle.loads(pickle.dumps(cfg)) == cfg and hash(cfg) == hash(bench.TrainingConfig.quick(cpu_budgets=(1,)))
    with pytest.raises(ValueError, match="frozen"):
        cfg.seed = 1  # type: ignore[misc]


def test_recorded_training_config_keeps_its_form():
    """``training_meta.json`` records the config as the dataclass it replaced did: same keys, order and values."""
    recorded = json.loads(json.dumps(bench.TrainingConfig().model_dump()))
    assert recorded == {
        "patch_size": [48, 48, 48], "batch_size": 2, "iterations": 10, "warmup": 3, "rounds": 2, "cpu_budgets": None,
        "arms": ["bgv2-nnunet", "nnunet", "xdomain", "none"], "channels": [8, 16, 32], "cases": 2,
        "phantom_shape": [64, 80, 128], "spacing": 2.0, "domain": "t2w", "device": "auto", "seed": 0,
    }
    assert list(recorded) == list(bench.TrainingConfig.model_fields)


def test_cli_training_takes_one_patch_size(capsys, tmp_path):
    assert cli.main(["bench", "--training", "--quick", "--sizes", "16,32", "--out", str(tmp_path)]) == 2
    assert "--sizes takes one value with --training" in capsys.readouterr().err


def test_each_setting_keeps_its_fastest_round(tmp_path, monkeypatch):
    """Rounds are interleaved and the fastest is kept: a burst of load spoils a round, not the row."""
    calls = iter([3.0, 1.0, 2.0, 5.0])  # (none, nnunet) in round 1, then in round 2

    def fake(config, samples, arm, workers, device):
        return dict(iteration_s=f"{next(calls)}", data_s="0", augment_s="0", network_s="0")

    monkeypatch.setattr(training_run, "phantom_samples", lambda config: [])
    monkeypatch.setattr(training_run, "time_setting", fake)
    config = bench.TrainingConfig.quick(arms=("none", "nnunet"), rounds=2, cpu_budgets=(1,), device="cpu")
    bench.run_training(config, tmp_path, log=lambda _: None)
    with open(tmp_path / _schema.TRAINING_CSV, newline="") as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    assert (rows["none"]["iteration_s"], rows["nnunet"]["iteration_s"], rows["none"]["rounds"]) == ("2.0", "1.0", "2")
