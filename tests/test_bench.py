"""The speed benchmark's infrastructure: runner, CSV files, engine checks, bad input, report and the asv suite.

Tiny sizes only: this checks that the machinery works, not how fast anything is.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import spineaug
from spineaug import baselines, bench
from spineaug.baselines import auglab as auglab_baseline

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(sizes=(16, 24), batches=(1, 2), warmup=1, repeats=2, min_repeats=1, max_seconds=5.0,
            transform_size=16, transform_batch=2, threads=1)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run through the API: nnunet + xdomain, spineaug + two in-process baselines."""
    out = tmp_path_factory.mktemp("bench")
    logs: list[str] = []
    cfg = bench.BenchConfig(baselines=("batchgenerators", "torchio"), **TINY)
    files = bench.run(cfg, out, log=logs.append)
    return out, files, logs


def test_run_writes_csvs_with_expected_columns(tiny_run):
    out, files, _ = tiny_run
    assert set(files) == {"pipelines", "transforms", "engine", "mapping", "meta"}
    rows = _rows(out / "pipelines.csv")
    assert list(rows[0]) == bench.PIPELINE_COLUMNS
    impls = {(r["pipeline"], r["impl"]) for r in rows}
    for p in ("nnunet", "xdomain"):
        for impl in ("spineaug", "batchgenerators", "torchio"):
            assert (p, impl) in impls
    assert len(rows) == 2 * 3 * 2 * 2  # pipelines x impls x sizes x batches
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(rows), [r["note"] for r in rows if r["status"] != "ok"]
    for r in ok:
        assert float(r["q25_s"]) <= float(r["median_s"]) <= float(r["q75_s"])
        assert int(r["torch_threads"]) == 1
        assert float(r["samples_per_s"]) == pytest.approx(int(r["batch"]) / float(r["median_s"]), rel=1e-3)
        assert int(r["peak_mem_bytes"]) > 0
    assert len({r["run_id"] for r in rows}) == 1
    meta = json.loads((out / "meta.json").read_text())
    assert meta["torch_threads"] == 1 and meta["run_id"] == rows[0]["run_id"]


def test_transform_table_has_floor_and_every_transform(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out / "transforms.csv")
    assert list(rows[0]) == bench.TRANSFORM_COLUMNS
    assert rows[0]["kind"] == "floor"
    names = {r["transform"] for r in rows[1:]}
    assert names == set(spineaug.TRANSFORMS)
    for r in rows[1:]:
        assert r["status"] == "ok", r
        assert float(r["ratio_to_floor"]) > 0


def test_engine_checks_zero_syncs_and_flat_op_count(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out / "engine.csv")
    syncs = [int(r["value"]) for r in rows if r["check"].startswith("host_syncs")]
    assert syncs and all(s == 0 for s in syncs), rows
    for pipeline in ("nnunet", "xdomain"):
        ops = {int(r["batch"]): int(r["value"]) for r in rows
               if r["pipeline"] == pipeline and r["check"].startswith("aten_ops")}
        assert set(ops) == {1, 2, 4}
        assert ops[4] <= 1.5 * ops[1], ops  # a per-sample Python loop would give ~4x


def test_rerun_replaces_files_never_mixes_runs(tiny_run, tmp_path):
    out = tmp_path / "bench"
    cfg = bench.BenchConfig(pipelines=("nnunet",), baselines=(), transforms=False, checks=False,
                            **{**TINY, "sizes": (16,), "batches": (1,)})
    bench.run(cfg, out, log=lambda s: None)
    first = _rows(out / "pipelines.csv")
    bench.run(cfg, out, log=lambda s: None)
    second = _rows(out / "pipelines.csv")
    assert len(first) == len(second) == 1
    assert first[0]["run_id"] != second[0]["run_id"]
    assert not list(out.glob(".*.tmp"))


def test_report_writes_markdown_and_figures(tiny_run, tmp_path):
    from spineaug.report import benchmark

    out, _, _ = tiny_run
    md = benchmark.write(out, tmp_path / "reports")
    text = md.read_text()
    assert "## Pipelines on cpu" in text and "## Per transform on cpu" in text and "## Engine checks" in text
    for name in ("benchmark_bars.png", "benchmark_scaling.png", "benchmark_transforms.png"):
        assert (tmp_path / "reports" / name).stat().st_size > 1000
    assert (tmp_path / "reports" / "bench" / "pipelines.csv").exists()


# ---------------------------------------------------------------- sync and op counters


def test_sync_counter_detects_injected_item():
    x = torch.rand(2, 1, 8, 8, 8)

    def bad(image, label):
        scale = image.mean().item()  # host sync on device data
        return image * scale, label

    def good(image, label):
        host_param = torch.rand(2).max().item()  # parameters on the host are not syncs
        return image * host_param, label

    n, names, _ = bench.count_syncs(bad, x, None)
    assert n == 1 and names == ["_local_scalar_dense"]
    assert bench.count_syncs(good, x, None)[0] == 0
    assert bench.count_syncs(lambda i, l: (i[i > 0.5], l), x, None)[0] >= 1  # boolean-mask indexing
    assert bench.count_syncs(lambda i, l: (bool(i.sum() > 0), l), x, None)[0] == 1


@pytest.mark.parametrize("pipeline", ["nnunet", "xdomain"])
def test_spineaug_presets_have_no_host_syncs(pipeline):
    aug = spineaug.Pipeline.from_preset(pipeline, check_finite=False)
    forced = bench.forced_pipeline(aug.config()["transforms"], 0, torch.device("cpu"))
    image, label = bench.make_batch(2, 16, torch.device("cpu"), 0)
    for fn in (bench.spineaug_fn(aug, 0), bench.spineaug_fn(forced, 0)):
        syncs, names, ops = bench.count_syncs(fn, image, label)
        assert syncs == 0, names
        assert ops > 0


def test_input_validation_sync_is_counted_when_check_finite_is_on():
    aug = spineaug.Pipeline.from_preset("none", check_finite=True)
    image, label = bench.make_batch(1, 8, torch.device("cpu"), 0)
    assert bench.count_syncs(bench.spineaug_fn(aug, 0), image, label)[0] == 1


def test_op_count_does_not_grow_with_batch():
    entries = spineaug.Pipeline.from_preset("nnunet").config()["transforms"]
    ops = []
    for b in (1, 4, 8):
        image, label = bench.make_batch(b, 12, torch.device("cpu"), 0)
        aug = bench.forced_pipeline(entries, 0, torch.device("cpu"))
        ops.append(bench.count_syncs(bench.spineaug_fn(aug, 0), image, label)[2])
    assert max(ops) <= 1.1 * min(ops), ops


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(pipelines=("nope",)), "unknown pipeline 'nope'"),
        (dict(baselines=("nope",)), "unknown baseline 'nope'"),
        (dict(sizes=(0,)), "size must be a positive integer"),
        (dict(batches=()), "no batch given"),
        (dict(sizes=(4096,)), "cannot fit in cpu memory"),
        (dict(devices=("tpu",)), "unknown device"),
    ],
)
def test_bad_requests_fail_before_anything_is_written(tmp_path, override, message):
    cfg = bench.BenchConfig(**{**TINY, **override})
    with pytest.raises(bench.BenchError, match=message):
        bench.run(cfg, tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_unknown_names_in_baselines_api():
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.build("nope", "nnunet")
    with pytest.raises(ValueError, match="unknown pipeline"):
        baselines.build("torchio", "nope")


def test_cli_reports_bad_names_cleanly(tmp_path, capsys):
    from spineaug.cli import main

    assert main(["bench", "--pipelines", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown pipeline 'nope'" in capsys.readouterr().err


def test_missing_library_is_skipped_with_a_note(tmp_path, monkeypatch):
    import spineaug.baselines.torchio as tio_baseline

    def missing(*args, **kwargs):
        raise baselines.BaselineUnavailable("torchio is not importable (test); install torchio")

    monkeypatch.setattr(tio_baseline, "build", missing)
    monkeypatch.setenv("SPINEAUG_AUGLAB_PYTHON", str(tmp_path / "no-such-env" / "python"))
    logs: list[str] = []
    cfg = bench.BenchConfig(pipelines=("xdomain",), baselines=("torchio", "auglab"), transforms=False,
                            checks=False, **{**TINY, "sizes": (16,), "batches": (1,)})
    bench.run(cfg, tmp_path / "out", log=logs.append)
    notes = json.loads((tmp_path / "out" / "meta.json").read_text())["notes"]
    assert any("torchio skipped" in n for n in notes)
    assert any("AugLab skipped: run `make auglab-env`" in n for n in notes)
    assert any("NOTE: AugLab skipped" in line for line in logs)
    rows = _rows(tmp_path / "out" / "pipelines.csv")
    assert {r["impl"] for r in rows} == {"spineaug"}


def test_every_baseline_has_a_mapping_for_each_preset():
    for library in baselines.LIBRARIES:
        for pipeline in ("nnunet", "xdomain"):
            rows = baselines.mapping(library, pipeline)
            names = [e["name"] for e in spineaug.Pipeline.from_preset(pipeline).config()["transforms"]]
            assert [r.spineaug for r in rows] == names
    exact = baselines.mapping("batchgenerators", "nnunet")
    assert all(r.equivalent for r in exact)


@pytest.mark.parametrize("library", ["batchgenerators", "torchio", "monai", "kornia"])
def test_in_process_baselines_run_on_a_batch(library):
    base = baselines.build(library, "xdomain")
    image, label = bench.make_batch(2, 16, torch.device("cpu"), 0)
    out_image, out_label = base.fn(image.clone(), label.clone())
    assert tuple(out_image.shape) == (2, 1, 16, 16, 16)
    assert tuple(out_label.shape) == (2, 1, 16, 16, 16)


@pytest.mark.skipif(not auglab_baseline.available(), reason="AugLab environment not built (make auglab-env)")
def test_auglab_worker_round_trip():
    from spineaug.baselines import auglab

    reply = auglab.run([(1, 16)], repeats=1, warmup=0, threads=1)
    assert reply["kornia"].startswith("0.8")
    assert reply["cases"][0]["error"] is None and len(reply["cases"][0]["times"]) == 1


# ---------------------------------------------------------------- asv suite


def test_asv_check_discovers_the_suite():
    result = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout + result.stderr


def test_firing_probability_of_preset_entries():
    from spineaug.report.benchmark import firing_probability

    assert firing_probability({"name": "Spatial", "p_rotation": 0.2, "p_scale": 0.2}) == pytest.approx(0.36)
    assert firing_probability({"name": "Spatial", "p": 0.5, "p_rotation": 1.0}) == pytest.approx(0.5)
    assert firing_probability({"name": "Flip", "p": 0.5, "axes": [0, 1]}) == pytest.approx(0.75)
    assert firing_probability({"name": "Gamma", "p": 0.3}) == pytest.approx(0.3)
