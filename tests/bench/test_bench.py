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

ROOT = Path(__file__).resolve().parents[2]

TINY = dict(sizes=(16, 24), batches=(1, 2), headline=(2, 16), warmup=1, repeats=2, grid_repeats=2, min_repeats=1,
            max_seconds=5.0, threads=(1,), drift_calls=(2, 6), drift_case=(1, 8))
ONE_CASE = dict(sizes=(16,), batches=(1,), headline=(1, 16))


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
    assert set(files) == {"pipelines", "transforms", "engine", "mapping", "overhead", "memory", "meta"}
    rows = _rows(out / "pipelines.csv")
    assert list(rows[0]) == bench.PIPELINE_COLUMNS
    impls = {(r["pipeline"], r["impl"], r["work"]) for r in rows}
    for p in ("nnunet", "xdomain"):
        for impl in ("spineaug", "batchgenerators", "torchio"):
            assert (p, impl, "preset") in impls
    # matched work: torchio is partial for both presets, batchgenerators a substitute for xdomain only (exact for nnunet)
    assert {(p, w) for p, i, w in impls if w.startswith("matched:")} == {
        ("nnunet", "matched:torchio"), ("xdomain", "matched:torchio"), ("xdomain", "matched:batchgenerators")}
    headline = [r for r in rows if (int(r["batch"]), int(r["size"])) == (2, 16)]
    assert len(headline) == 3 + 1 + 3 + 2  # nnunet: 3 whole + 1 matched; xdomain: 3 whole + 2 matched
    assert len(rows) - len(headline) == 2 * 3 * 3  # grid: pipelines x whole impls x the 3 other cases
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(rows), [r["note"] for r in rows if r["status"] != "ok"]
    for r in ok:
        assert int(r["torch_threads"]) == 1
        assert TINY["min_repeats"] <= int(r["repeats"]) <= TINY["repeats"] and int(r["warmup"]) == TINY["warmup"]
        times = [float(r[k]) for k in ("min_s", "q25_s", "median_s", "q75_s", "max_s")]
        # the CSV holds 6 significant digits per value
        assert times[0] > 0 and float(r["iqr_s"]) == pytest.approx(times[3] - times[1], abs=1e-5 * times[3])
        assert times[0] <= float(r["mean_s"]) <= times[-1]
        assert float(r["mean_ci_low_s"]) <= float(r["mean_s"]) <= float(r["mean_ci_high_s"])
        assert float(r["samples_per_s"]) == pytest.approx(int(r["batch"]) / float(r["mean_s"]), rel=1e-3)
        # on the CPU, the process's RSS high-water mark: at least the interpreter with torch imported (> 100 MiB)
        assert r["mem_kind"] == "rss_peak" and int(r["peak_mem_bytes"]) > 100 * 2**20
    same = {r["work"]: r["mean_s"] for r in headline if r["pipeline"] in ("nnunet", "xdomain") and r["impl"] == "spineaug"
            and (r["pipeline"], r["work"]) in (("nnunet", "preset"), ("xdomain", "matched:batchgenerators"))}
    assert len(set(same.values())) == 1  # bgv2's matched work is the nnunet preset: timed once, reused
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
        assert float(r["mean_s"]) > 0
        assert float(r["passes"]) >= 1  # the transform's own pass at least
    assert rows[0]["passes"] == "1"  # the floor
    from spineaug.bench.references import REFERENCES

    with_reference = {r["transform"]: r for r in rows[1:] if r["reference"]}
    assert set(with_reference) == set(REFERENCES)
    for name, r in with_reference.items():
        assert r["reference"] == REFERENCES[name].description
        assert float(r["ratio_to_reference"]) == pytest.approx(float(r["mean_s"]) / float(r["reference_mean_s"]),
                                                               rel=1e-3)


def test_overhead_table_has_every_preset_entry(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out / "overhead.csv")
    assert list(rows[0]) == bench.OVERHEAD_COLUMNS
    for pipeline in ("nnunet", "xdomain"):
        entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]
        mine = [r for r in rows if r["pipeline"] == pipeline]
        assert [r["transform"] for r in mine] == [e["name"] for e in entries]
        for r in mine:
            assert float(r["expected_s"]) == pytest.approx(float(r["firing_p"]) * float(r["forced_mean_s"]), rel=1e-3)


def test_memory_table_has_peak_and_drift_per_preset(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out / "memory.csv")
    assert list(rows[0]) == bench.MEMORY_COLUMNS
    for pipeline in ("nnunet", "xdomain"):
        checks = {r["check"]: r for r in rows if r["pipeline"] == pipeline}
        assert {"peak_extra(preset)", "peak_extra(all forced on)", "rss_drift"} <= set(checks)
        peak = checks["peak_extra(preset)"]
        assert int(peak["reference_bytes"]) == 2 * 16**3 * (4 + 8)  # the headline batch: float32 image + int64 label
        assert int(peak["value_bytes"]) > 0 and peak["verdict"] in ("met", "missed")
        assert int(checks["rss_drift"]["calls"]) == 6


def test_engine_checks_zero_syncs_and_flat_op_count(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out / "engine.csv")
    syncs = [int(r["value"]) for r in rows if r["check"].startswith("host_syncs")]
    assert syncs and all(s == 0 for s in syncs), rows
    for pipeline in ("nnunet", "xdomain"):
        ops = {int(r["batch"]): int(r["value"]) for r in rows
               if r["pipeline"] == pipeline and r["check"].startswith("aten_ops_per_call")}
        assert set(ops) == {1, 2, 4, 8}
        assert ops[8] <= 1.5 * ops[1], ops  # a per-sample Python loop would give ~8x
        fresh = [r for r in rows if r["pipeline"] == pipeline and r["check"].startswith("aten_ops_range")]
        assert len(fresh) == 1 and fresh[0]["verdict"] in ("flat", "saturates", "grows")
        growth = [r for r in rows if r["pipeline"] == pipeline and r["check"].startswith("aten_ops_growth")]
        assert len(growth) == 1 and growth[0]["verdict"] == "flat", growth  # no per-sample work in the engine


def test_same_draw_op_count_catches_a_loop_over_samples():
    """The check itself: a transform that loops over the batch in Python gives more ops with more samples."""
    from spineaug.bench.checks import same_draw_ops
    from spineaug.bench.cases import make_batch

    def batch(b):
        return make_batch(b, 8, torch.device("cpu"), seed=0)

    pipe = spineaug.Pipeline.from_config({"transforms": [{"name": "Gamma", "p": 1.0}]})
    counts = same_draw_ops(pipe, batch, 0)
    assert set(counts) == {1, 2, 4, 8} and len(set(counts.values())) == 1, counts
    gamma = pipe.transforms[0]
    apply = type(gamma).apply

    def looped(self, batch_, params, **kwargs):  # the mutant: work repeated once per sample
        for _ in range(batch_.image.shape[0]):
            out = apply(self, batch_, params, **kwargs)
        return out

    import unittest.mock

    with unittest.mock.patch.object(type(gamma), "apply", looped):
        grown = same_draw_ops(pipe, batch, 0)
    assert grown[8] > grown[1], grown


@pytest.mark.parametrize("counts, verdict", [
    ({1: [10, 10], 2: [10, 9], 4: [10, 10]}, "flat"),
    ({1: [10, 8], 2: [12, 12], 4: [12, 11], 8: [12, 12]}, "saturates"),
    ({1: [10, 10], 2: [11, 11], 4: [13, 13], 8: [17, 16]}, "grows"),
])
def test_op_growth_verdict(counts, verdict):
    margin, got = bench.op_growth(counts)
    assert got == verdict
    assert margin == max(counts[max(counts)]) - max(counts[min(counts)])


def test_rerun_replaces_files_never_mixes_runs(tiny_run, tmp_path):
    out = tmp_path / "bench"
    cfg = bench.BenchConfig(pipelines=("nnunet",), baselines=(), transforms=False, checks=False, memory=False,
                            **{**TINY, **ONE_CASE})
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
    for section in ("## Verdicts", "## Matched work on cpu", "## Pipeline overhead on cpu", "## Per transform on cpu",
                    "## Engine checks", "## Memory", "## Training throughput"):
        assert section in text, section
    assert "vs matched work" in text and "single-threaded per sample" in text and "*Not run for this report.*" in text
    for name in ("benchmark_bars.png", "benchmark_scaling.png", "benchmark_transforms.png"):
        assert (tmp_path / "reports" / name).stat().st_size > 1000
    assert (tmp_path / "reports" / "bench" / "pipelines.csv").exists()


def test_report_renders_training_csv_when_present(tiny_run, tmp_path):
    import shutil

    from spineaug.report import benchmark

    out, _, _ = tiny_run
    results = tmp_path / "bench"
    shutil.copytree(out, results)
    from spineaug import _io, _schema

    base = dict.fromkeys(_schema.TRAINING_COLUMNS, "")
    base.update(device="cpu", cpu_budget=2, batch=2, patch="48x48x48", warmup=1, iterations=3, status="ok",
                data_s=0.1, augment_s=0.0, network_s=0.3, samples_per_s=4.0)
    rows = [{**base, "arm": "bgv2-nnunet", "workers": 1, "iteration_s": 0.5},
            {**base, "arm": "nnunet", "workers": 0, "iteration_s": 0.4}]
    _io.atomic_write_csv(results / _schema.TRAINING_CSV, rows, _schema.TRAINING_COLUMNS)
    text = benchmark.write(results, tmp_path / "reports").read_text()
    training = text.split("## Training throughput")[1]
    assert "| 2 | (b) spineaug `nnunet`, in loop | 0 | 400 ms |" in training
    assert "Ratio (b)/(a) on cpu, 2 core(s), bgv2 with 1 worker(s): **0.80**" in training
    assert "| training iteration: (b) spineaug nnunet / (a) bgv2 in loader workers, paper ~0.9 (GPU), cpu, 2 core(s) " \
           "| 0.80 | met |" in text
    assert (tmp_path / "reports" / "bench" / "training.csv").exists()


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
        (dict(sizes=(0,)), r"sizes\.0: Input should be greater than or equal to 1 \(got 0\)"),
        (dict(sizes=(True,)), r"sizes\.0: Input should be a valid integer \(got True\)"),
        (dict(batches=()), "batches: name at least one value"),
        (dict(sizes=(4096,)), "cannot fit in cpu memory"),
        (dict(devices=("tpu",)), "unknown device"),
        (dict(threads=()), "threads: name at least one value"),
        (dict(headline=(2, 0)), r"headline\.1: Input should be greater than or equal to 1"),
        (dict(drift_calls=(10, 5)), "early < late"),
        (dict(seed=1.5), "'seed' must be an integer, got 1.5"),
        (dict(repeat=3), "repeat: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_fail_before_anything_is_written(tmp_path, override, message):
    """A bad value fails when the config is built, naming the key; a case too big for this machine when it runs."""
    with pytest.raises(bench.BenchError, match=message):
        bench.run(bench.BenchConfig(**{**TINY, **override}), tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_bench_config_is_a_frozen_validated_model():
    import pickle

    cfg = bench.BenchConfig.quick(sizes=[16, 24])
    assert cfg.sizes == (16, 24) and cfg.max_threads == 2  # lists become tuples: the config is hashable
    assert pickle.loads(pickle.dumps(cfg)) == cfg and hash(cfg) == hash(bench.BenchConfig.quick(sizes=(16, 24)))
    with pytest.raises(ValueError, match="frozen"):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(bench.BenchError, match="unknown pipeline 'nope'"):
        bench.BenchConfig.quick(pipelines=("nope",))


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
                            checks=False, memory=False, **{**TINY, **ONE_CASE})
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
    from spineaug.bench.costs import firing_probability

    assert firing_probability({"name": "Spatial", "p_rotation": 0.2, "p_scale": 0.2}) == pytest.approx(0.36)
    assert firing_probability({"name": "Spatial", "p": 0.5, "p_rotation": 1.0}) == pytest.approx(0.5)
    assert firing_probability({"name": "Flip", "p": 0.5, "axes": [0, 1]}) == pytest.approx(0.75)
    assert firing_probability({"name": "Gamma", "p": 0.3}) == pytest.approx(0.3)


# ---------------------------------------------------------------- matched work, inputs, statistics, memory


def test_matched_config_keeps_the_expressed_entries_with_their_parameters():
    preset = spineaug.Pipeline.from_preset("xdomain").config()["transforms"]
    for library in ("torchio", "monai", "kornia", "auglab"):
        have = [r.equivalent is not None for r in baselines.mapping(library, "xdomain")]
        assert bench.matched_config("xdomain", library) == [e for e, h in zip(preset, have) if h]
    assert "Spatial" not in [e["name"] for e in bench.matched_config("xdomain", "auglab")]
    # batchgeneratorsv2 runs nnU-Net's pipeline whatever the preset: its matched work is the nnunet preset
    nnunet = spineaug.Pipeline.from_preset("nnunet").config()["transforms"]
    assert bench.matched_config("xdomain", "batchgenerators") == nnunet == bench.matched_config("nnunet", "batchgenerators")
    spineaug.Pipeline.from_config({"transforms": bench.matched_config("xdomain", "monai")})  # a valid config
    with pytest.raises(ValueError, match="unknown baseline"):
        bench.matched_config("xdomain", "nope")


def test_make_batch_is_zscored_phantom_patches():
    image, label = bench.make_batch(2, 16, torch.device("cpu"), 0)
    assert image.shape == label.shape == (2, 1, 16, 16, 16)
    assert image.dtype == torch.float32 and label.dtype == torch.int64
    assert torch.allclose(image.mean(dim=(1, 2, 3, 4)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(image.std(dim=(1, 2, 3, 4)), torch.ones(2), atol=1e-3)
    assert set(label.unique().tolist()) <= {0, 1, 2, 3} and label.max() > 0
    again = bench.make_batch(2, 16, torch.device("cpu"), 0)
    assert torch.equal(image, again[0]) and torch.equal(label, again[1])


def test_mean_interval_is_a_seeded_bootstrap_around_the_mean():
    timing = bench.Timing([0.01] * 20 + [0.1] * 10, None, "")
    low, high = timing.mean_interval()
    assert low < timing.mean < high and (low, high) == timing.mean_interval()
    assert bench.Timing([0.5], None, "").mean_interval() == (0.5, 0.5)


def test_peak_extra_bytes_counts_torch_allocations():
    image, label = torch.zeros(2, 1, 16, 16, 16), torch.zeros(2, 1, 16, 16, 16, dtype=torch.int64)

    def fn(x, y):
        big = torch.ones(1 << 20)  # 4 MiB, freed before returning
        del big
        return x * 2, y

    peak, method = bench.peak_extra_bytes(fn, image, label)
    assert "profiler" in method
    assert 4 << 20 <= peak < (4 << 20) + (1 << 20)


def test_memory_drift_reads_rss_after_early_and_late_calls():
    image, label = bench.make_batch(1, 8, torch.device("cpu"), 0)
    drift = bench.memory_drift(lambda x, y: x + 1, image, label, 2, 5)
    assert (drift.early, drift.late) == (2, 5) and drift.rss_early and drift.rss_late


def test_quick_config_is_valid_and_small():
    cfg = bench.BenchConfig.quick()
    bench.validate(cfg)
    assert cfg.repeats <= 5 and max(cfg.sizes) <= 32 and cfg.drift_calls[1] <= 100
    assert bench.BenchConfig().repeats >= 30


@pytest.mark.parametrize("name", sorted(__import__("spineaug.bench.references", fromlist=["REFERENCES"]).REFERENCES))
def test_reference_expressions_do_their_kind_of_work(name):
    """Each reference is a real computation on the batch (not a no-op): an image-shaped result that depends on it."""
    from spineaug.bench import make_batch
    from spineaug.bench.references import REFERENCES

    assert name in spineaug.TRANSFORMS and spineaug.TRANSFORMS[name].kind in (
        "stencil", "histogram", "label-lookup", "resampling", "low-res field", "elementwise")
    image, label = make_batch(2, 16, torch.device("cpu"), seed=0)
    out = REFERENCES[name].build(image, label)(image, label)
    assert out.shape[0] == 2 and out.shape[-3:] == image.shape[-3:] and torch.isfinite(out).all()
    fresh = REFERENCES[name].build(image, label)  # the same first kernel for RandomConv (it cycles per call)
    assert not torch.equal(fresh(image.roll(1, -1), label), out)


def test_reference_verdicts_apply_each_kinds_target():
    """Stencil/histogram/label-lookup rows are judged at 5x their reference, resampling rows at 1.5x, separately."""
    import pandas as pd

    from spineaug.report.bench_targets import _reference_row, reference_target

    assert reference_target("stencil") == 5.0 and reference_target("resampling") == 1.5
    tr = pd.DataFrame({"transform": ["ScharrEdge", "Spatial", "Affine"], "kind": ["stencil", "resampling", "resampling"],
                       "ratio_to_reference": ["4.0", "1.4", "2.0"]})
    stencil = _reference_row("stencils", tr[tr.kind != "resampling"])
    assert stencil[1:3] == ["1 of 1 (up to 4.0x)", "met"]
    resampling = _reference_row("resampling", tr[tr.kind == "resampling"])
    assert resampling[1:] == ["1 of 2 (up to 2.0x)", "missed", "Affine 2.0x"]
    assert _reference_row("none", tr.iloc[0:0])[2] == "not measured"


def test_each_reference_carries_its_kinds_target():
    """5x for stencils and label lookups, 3x for the near-same-work references, 1.5x for grid resampling."""
    from spineaug.bench.references import REFERENCES

    targets = {name: ref.target for name, ref in REFERENCES.items()}
    assert {n for n, t in targets.items() if t == 1.5} == {"Spatial", "Affine"}
    assert {n for n, t in targets.items() if t == 3.0} == {
        "HistogramEqualization", "BiasField", "LowResolution", "ThickSlice", "Gamma", "InverseGamma",
        "IntensityFunction", "GaussianNoise"}
    assert targets["ScharrEdge"] == targets["LabelAppearance"] == 5.0


def test_reference_verdicts_group_rows_by_their_recorded_target():
    """Each row is judged at the target it recorded (else its kind's), in the verdict row of its group; a
    transcendental elementwise transform is judged against its function and named with that function's own cost."""
    import pandas as pd

    from spineaug import _schema
    from spineaug.report import bench_targets

    tr = pd.DataFrame({
        "run_id": "r", "device": "cpu", "status": "ok", "torch_threads": "1",
        "transform": ["ScharrEdge", "HistogramEqualization", "LowResolution", "Gamma", "Spatial", "Brightness"],
        "kind": ["stencil", "histogram", "resampling", "elementwise", "resampling", "elementwise"],
        "ratio_to_reference": ["4.0", "3.5", "1.2", "2.0", "1.4", None],
        "reference_target": ["5", "3", "3", "3", "1.5", None],
        "ratio_to_floor": ["30", "20", "10", "16", "100", "2.0"], "passes": ["3", "9", "4", "6", "12", "1"],
    })
    empty, ok = pd.DataFrame(), pd.DataFrame(columns=_schema.BENCH_PIPELINE_COLUMNS)
    rows = bench_targets.verdicts(ok, tr, empty, empty, empty, [], 2, 128)
    table = "\n".join(rows)
    assert "| every elementwise transform within 3x of the floor pass | 1 of 2 (up to 16.0x) | missed | " \
           "Gamma 16.0x (6 passes; its reference alone 8.0x), Brightness 2.0x (1 passes) |" in table
    assert f"| {bench_targets.REFERENCE_GROUPS['stencil']} | 1 of 1 (up to 4.0x) | met |" in table
    assert f"| {bench_targets.REFERENCE_GROUPS['same-work']} | 1 of 2 (up to 3.5x) | missed | " \
           "HistogramEqualization 3.5x |" in table
    assert f"| {bench_targets.REFERENCE_GROUPS['function']} | 1 of 1 (up to 2.0x) | met |" in table
    assert f"| {bench_targets.REFERENCE_GROUPS['grid']} | 1 of 1 (up to 1.4x) | met |" in table
    # a file without the column: the kind's target (the resampling row at 1.5x, the others at 5x)
    old = tr.drop(columns="reference_target")
    table = "\n".join(bench_targets.verdicts(ok, old, empty, empty, empty, [], 2, 128))
    assert f"| {bench_targets.REFERENCE_GROUPS['stencil']} | 3 of 3 (up to 4.0x) | met |" in table
    assert f"| {bench_targets.REFERENCE_GROUPS['grid']} | 2 of 2 (up to 1.4x) | met |" in table


def test_pass_counter_counts_passes_over_the_batch():
    """One elementwise op over the batch is one pass; over one of two samples half; views and allocations none."""
    from spineaug.bench.probes import count_passes

    x, y = torch.randn(2, 1, 8, 8, 8), torch.zeros(2, 1, 8, 8, 8, dtype=torch.long)
    assert count_passes(lambda a, b: a * 2, x, y) == 1
    assert count_passes(lambda a, b: a[:1] * 2, x, y) == 0.5
    assert count_passes(lambda a, b: (a.view(2, -1).flip(1), torch.empty_like(a)), x, y) == 1
    assert count_passes(lambda a, b: a.sum() + a.amax(dim=(2, 3, 4)).sum(), x, y) == 2  # small ops do not count
    assert count_passes(lambda a, b: torch.cat([a, a]), x, y) == 2


def test_passes_text_reads_rows_with_and_without_the_column():
    import pandas as pd

    from spineaug.report.bench_targets import passes_text

    assert passes_text(pd.Series({"passes": "17"})) == "17"
    assert passes_text(pd.Series({"other": 1})) == "-"
    assert passes_text(next(pd.DataFrame({"passes": ["2.5"]}).itertuples())) == "2.5"
    assert passes_text(next(pd.DataFrame({"passes": [float("nan")]}).itertuples())) == "-"


def test_verdicts_without_transform_results_say_not_measured():
    """A results folder without transforms.csv (or an empty one) renders every reference row as not measured."""
    import pandas as pd

    from spineaug import _schema
    from spineaug.report import bench_targets

    ok = pd.DataFrame(columns=_schema.BENCH_PIPELINE_COLUMNS)
    text = "\n".join(bench_targets.verdicts(ok, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), [],
                                            2, 128))
    assert text.count("no reference timings in transforms.csv") == len(bench_targets.REFERENCE_GROUPS) == 4


def test_time_calls_clones_the_inputs_before_the_clock_and_releases_the_result_after_it(monkeypatch):
    from spineaug.bench import timing

    events: list[str] = []

    class Result:
        def __del__(self):
            events.append("released")

    ticks = iter(range(1000))

    def clock():
        events.append("clock")
        return float(next(ticks))

    image, label = torch.rand(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2, dtype=torch.long)
    seen = []

    def fn(x, y):
        seen.append((x is image, torch.equal(x, image)))
        events.append("call")
        return Result()

    monkeypatch.setattr(timing.time, "perf_counter", clock)
    out = timing.time_calls(fn, image, label, warmup=1, repeats=2)
    assert seen == [(False, True)] * 3  # fresh clones with the input's values, warm-up included
    calls = [k for k, e in enumerate(events) if e == "call"][1:]  # the timed calls, after the warm-up
    # each timed call: the clock starts, the call runs, the clock stops, then its result is released
    assert [events[k - 1:k + 3] for k in calls] == [["clock", "call", "clock", "released"]] * 2
    assert len(out.times) == 2 and out.times == [1.0, 1.0]  # one tick between start and stop
