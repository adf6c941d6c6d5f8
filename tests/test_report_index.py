"""The report index (``reports/README.md``) and the benchmark figures, built from small fixture result files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from spineaug import _io, _schema  # noqa: E402
from spineaug.report import benchmark, index  # noqa: E402

SUMMARY = [  # source, arm, in-domain Dice, ood Dice, ood gain %, in-domain change %
    ("ct", "nnunet", 0.90, 0.20, 0.0, 0.0),
    ("ct", "xdomain", 0.88, 0.50, 150.0, -2.2),
    ("t2w", "nnunet", 0.85, 0.40, 0.0, 0.0),
    ("t2w", "xdomain", 0.86, 0.52, 30.0, 1.2),
    ("all", "nnunet", 0.875, 0.30, 0.0, 0.0),
    ("all", "xdomain", 0.87, 0.51, 70.0, -0.6),
]
TRAINING = [  # cores, arm, workers, iteration s
    (2, "bgv2-nnunet", 0, 0.50), (2, "bgv2-nnunet", 1, 0.40), (2, "nnunet", 0, 0.36), (2, "xdomain", 0, 0.45),
    (1, "bgv2-nnunet", 0, 0.80), (1, "nnunet", 0, 0.70),
]


def _study(folder: Path) -> None:
    rows = [dict(source=s, arm=a, seeds=1, in_domain_dice=i, ood_dice=o, ood_gain_pct=g, in_domain_change_pct=c)
            for s, a, i, o, g, c in SUMMARY]
    _io.atomic_write_csv(folder / "summary.csv", rows)
    metrics = [dict(source=s, arm=a, seed=0, domain=d, case=f"c{k}", **{"class": "vertebra"}, dice=0.5, hd95="")
               for s in ("ct", "t2w") for a in ("nnunet", "xdomain") for d in ("ct", "t2w", "pd") for k in range(2)]
    _io.atomic_write_csv(folder / "metrics.csv", metrics, _schema.STUDY_METRIC_COLUMNS)
    (folder / "study.json").write_text(json.dumps({
        "name": "default", "sources": ["ct", "t2w"], "arms": ["nnunet", "xdomain"], "reference_arm": "nnunet",
        "seeds": [0], "model": {"name": "UNet", "filters": [8, 16]}, "data": {"n_train": 4, "n_test": 2},
        "training": str({"patch_size": [32, 32, 32], "batch_size": 2, "iterations": 100}),
    }))


def _bench(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    base = dict.fromkeys(_schema.BENCH_PIPELINE_COLUMNS, "")
    base.update(run_id="r1", device="cpu", status="ok", repeats=5, warmup=1)
    rows = []
    for threads in (1, 2):
        for b in (1, 2):
            for s in (32, 64):
                t = 0.01 * b * (s / 32) ** 3 / threads
                for impl, work, fidelity, factor in (("spineaug", "preset", "reference", 1.0),
                                                     ("batchgenerators", "preset", "exact", 4.0),
                                                     ("torchio", "preset", "partial", 3.0),
                                                     ("spineaug", "matched:torchio", "reference", 0.5)):
                    m = t * factor
                    rows.append({**base, "torch_threads": threads, "pipeline": "nnunet", "impl": impl, "work": work,
                                 "fidelity": fidelity, "coverage": "9/9" if impl != "torchio" else "6/9", "batch": b,
                                 "size": s, "voxels": b * s**3, "median_s": m, "q25_s": m * 0.9, "q75_s": m * 1.1,
                                 "mean_s": m, "mean_ci_low_s": m * 0.9, "mean_ci_high_s": m * 1.1})
    _io.atomic_write_csv(folder / "pipelines.csv", rows, _schema.BENCH_PIPELINE_COLUMNS)
    tr = dict.fromkeys(_schema.BENCH_TRANSFORM_COLUMNS, "")
    tr.update(run_id="r1", device="cpu", torch_threads=2, batch=2, size=64, repeats=5, status="ok")
    trows = [{**tr, "transform": _schema.FLOOR_TRANSFORM, "kind": _schema.FLOOR_KIND, "median_s": 0.001,
              "mean_s": 0.001, "mean_ci_low_s": 0.0009, "mean_ci_high_s": 0.0011, "ratio_to_floor": 1, "passes": 1}]
    for name, kind, mean, passes in (("Gamma", "elementwise", 0.004, 3), ("Spatial", "resampling", 0.03, 12.5)):
        trows.append({**tr, "transform": name, "kind": kind, "source": "nnunet", "median_s": mean, "mean_s": mean,
                      "q25_s": mean, "q75_s": mean, "mean_ci_low_s": mean * 0.9, "mean_ci_high_s": mean * 1.1,
                      "floor_median_s": 0.001, "ratio_to_floor": mean / 0.001, "passes": passes})
    _io.atomic_write_csv(folder / "transforms.csv", trows, _schema.BENCH_TRANSFORM_COLUMNS)
    ov = dict.fromkeys(_schema.BENCH_OVERHEAD_COLUMNS, "")
    ov.update(run_id="r1", device="cpu", torch_threads=2, pipeline="nnunet", batch=2, size=64, status="ok")
    _io.atomic_write_csv(folder / "overhead.csv", [
        {**ov, "position": 0, "transform": "Spatial", "firing_p": 0.36, "forced_mean_s": 0.03, "expected_s": 0.0108,
         "in_pipeline_s": 0.012, "note": "one resampling: #0 Spatial, #1 Flip"},
        {**ov, "position": 1, "transform": "Flip", "firing_p": 0.875, "forced_mean_s": 0.002, "expected_s": 0.00175,
         "note": "one resampling: #0 Spatial, #1 Flip"},
        {**ov, "position": 2, "transform": "Gamma", "firing_p": 0.3, "forced_mean_s": 0.004, "expected_s": 0.0012,
         "in_pipeline_s": 0.0015}], _schema.BENCH_OVERHEAD_COLUMNS)
    en = dict.fromkeys(_schema.BENCH_ENGINE_COLUMNS, "")
    en.update(run_id="r1", device="cpu", torch_threads=2, pipeline="nnunet", batch=2, size=64)
    _io.atomic_write_csv(folder / "engine.csv", [{**en, "check": "call_mean", "value": 0.0145},
                                                 {**en, "check": "own_overhead", "value": 0.001}],
                         _schema.BENCH_ENGINE_COLUMNS)
    (folder / _schema.BENCH_META).write_text(json.dumps({
        "run_id": "r1", "git": "abc123def456", "cpu_model": "Test CPU", "cpus_available": 2, "command": "spineaug bench",
        "config": {"headline": [2, 64], "repeats": 5, "sizes": [32, 64], "batches": [1, 2], "grid_repeats": 5}}))
    t = dict.fromkeys(_schema.TRAINING_COLUMNS, "")
    t.update(run_id="t1", device="cpu", batch=2, patch="32x32x32", warmup=1, iterations=3, rounds=2, status="ok",
             data_s=0.05, augment_s=0.05, network_s=0.2, samples_per_s=4.0)
    _io.atomic_write_csv(folder / _schema.TRAINING_CSV, [
        {**t, "cpu_budget": c, "arm": a, "workers": w, "iteration_s": s} for c, a, w, s in TRAINING],
        _schema.TRAINING_COLUMNS)  # fmt: skip
    (folder / _schema.TRAINING_META).write_text(json.dumps({"run_id": "t1", "git": "abc123", "cpu_model": "Test CPU"}))


def _fidelity(folder: Path) -> None:
    from spineaug.fidelity import runner

    m = dict.fromkeys(_schema.FIDELITY_MATCH_COLUMNS, "")
    matched = [{**m, "preset": "nnunet", "entry": "Gamma", "difference": "2e-05", "tolerance": "0.0001",
                "intentional": "exact", "verdict": "ok", "metric": "max |diff| / std"},
               {**m, "preset": "nnunet", "entry": "GaussianBlur", "difference": "0.02", "tolerance": "0.03",
                "intentional": "yes: kernel", "verdict": "ok"},
               {**m, "preset": "xdomain", "entry": "FlipTransform", "difference": "0", "tolerance": "0",
                "intentional": "exact", "verdict": "ok"}]
    r = dict.fromkeys(_schema.FIDELITY_RATE_COLUMNS, "")
    rates = [{**r, "preset": "nnunet", "entry": "Gamma", "reference_rate": 0.3, "ours_rate": 0.31, "expected": 0.3,
              "draws": 400, "z": "0.31", "verdict": "ok"},
             {**r, "preset": "xdomain", "entry": "Flip", "reference_rate": 0.5, "ours_rate": 0.45, "expected": 0.5,
              "draws": 400, "z": "-1.42", "verdict": "ok"},
             {**r, "preset": "xdomain", "entry": "RandomConv", "reference_rate": 0.25, "ours_rate": 0.1,
              "expected": 0.25, "draws": 400, "z": "-5.50", "verdict": "outside"}]
    runner.write_rows(folder, matched, rates, [])
    (folder / _schema.FIDELITY_META).write_text(json.dumps({
        "command": "spineaug fidelity --out reports/fidelity", "git": "fff000", "date": "2026-01-01 00:00 UTC",
        "machine": "Test CPU", "draws": 400, "seed": 0, "rate_sigmas": 4.0, "auglab": {"measured": True}}))


FIGURES = ("phantom.png", "gallery-draws.png", "study_default_heatmap.png", "study_default_tradeoff.png",
           "study_default_examples.png", "benchmark_speedups.png", "benchmark_transforms.png",
           "benchmark_time_split.png", "benchmark_training.png")
"""The figures the index shows (each with its caption)."""


@pytest.fixture()
def reports(tmp_path) -> Path:
    out = tmp_path / "reports"
    _study(out / "data" / "study" / "default")
    _bench(out / "bench")
    _fidelity(out / "fidelity")
    (out / _schema.PHANTOM_DOMAINS).write_text(json.dumps({
        "command": "spineaug preview --phantom --out reports/phantom.png", "git": "ddd111", "date": "2026-01-01",
        "machine": "Test CPU", "seed": 0, "shape": [8, 8, 8], "spacing": [2, 2, 2], "phantom_version": "1",
        "domains": [{"name": "ct", "modality": "ct", "description": "CT, standard dose", "source": True},
                    {"name": "mr-lowfield", "modality": "mr", "description": "MR at low field", "source": False}]}))
    for name in FIGURES:
        (out / name).write_bytes(b"\x89PNG stand-in")
    return out


def test_headline_numbers_equal_those_computed_from_the_files(reports):
    values = index.headline(index.Inputs(reports, reports / "data" / "study", reports / "bench",
                                         reports / "fidelity", reports / _schema.PHANTOM_DOMAINS))
    summary = pd.read_csv(reports / "data" / "study" / "default" / "summary.csv")
    per_source = summary[(summary.source != "all") & (summary.arm == "xdomain")]
    assert values["ood_gain_pct"].value == pytest.approx(per_source.ood_gain_pct.mean())  # the paper's definition
    assert values["in_domain_change_pct"].value == pytest.approx(per_source.in_domain_change_pct.mean())
    assert values["ood_gain_pooled_pct"].value == pytest.approx(70.0)
    most = max(c for c, *_ in TRAINING)
    bgv2 = min(s for c, a, _, s in TRAINING if c == most and a == "bgv2-nnunet")
    ours = next(s for c, a, _, s in TRAINING if c == most and a == "nnunet")
    assert values["training_ratio"].value == pytest.approx(ours / bgv2)

    text = index.write(reports).read_text()
    assert f"| +155 % | {values['ood_gain_pct'].value:+.1f} % |" in text
    assert f"| -0.008 % | {values['in_domain_change_pct'].value:+.2f} % |" in text
    assert f"{(1 - ours / bgv2) * 100:.0f} % faster (x{ours / bgv2:.2f})" in text
    for setting in ("**Data**", "**Hardware**", "**Model size**", "**Iterations**", "**Seeds**"):
        assert setting in text
    assert "iterations 100" not in text and "ours: 100 iterations per model" in text  # read from study.json


def test_every_figure_and_table_is_referenced_with_a_caption(reports):
    text = index.write(reports).read_text()
    for name in FIGURES:
        assert f"]({name})" in text
    for link in ("(study.md)", "(benchmark.md)", "(fidelity.md)", "(study.md#ablations)"):
        assert link in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    for image in images:  # every figure is followed by its caption
        after = text.split(f"]({image})", 1)[1].lstrip("\n")
        assert after.startswith("*Figure:"), image
    tables = [block for block in text.split("\n\n") if block.startswith("|")]
    assert len(tables) == 3  # headline, fidelity digest, phantom domains; each with its caption
    for block in tables:
        after = text.split(block, 1)[1].lstrip("\n")
        assert after.startswith("*Table:"), block.splitlines()[0]
    # the fidelity digest reads the fixture: 2/2 matched and 1/1 rates for nnunet, 1 of 2 rates outside for xdomain
    assert "| `nnunet` vs nnU-Net v2 (batchgeneratorsv2) | 2 / 2 | 2e-05 | 1 / 1 | 0.31 |" in text
    assert "| 1 / 1 | 0 | 1 / 2 | 5.50 |" in text
    assert "None: every input above was found." in text


def test_missing_inputs_are_listed_not_fatal(tmp_path):
    text = index.write(tmp_path / "empty").read_text()
    missing = text.split("## Missing inputs", 1)[1]
    for path, command in (("data/study/default/summary.csv", "make study"), ("bench/meta.json", "make benchmark"),
                          ("fidelity/matched.csv", "make fidelity"), ("phantom.json", "make phantom-figure"),
                          ("gallery-draws.png", "make preview")):  # fmt: skip
        assert f"`{path}`: `{command}`" in missing
    assert "| out-of-domain Dice, strong vs default augmentation | +155 % | - |" in text


def test_index_is_deterministic(reports):
    first = index.write(reports).read_bytes()
    assert index.write(reports).read_bytes() == first


def test_benchmark_page_draws_every_figure_with_a_caption(reports, tmp_path):
    out = tmp_path / "page"
    text = benchmark.write(reports / "bench", out).read_text()
    for name in ("benchmark_speedups.png", "benchmark_bars.png", "benchmark_scaling.png", "benchmark_transforms.png",
                 "benchmark_time_split.png", "benchmark_training.png"):
        assert (out / name).stat().st_size > 1000, name
        after = text.split(f"]({name})", 1)[1].lstrip("\n")
        assert after.startswith("*Figure:") and "commit" in after.split("\n")[0], name
    assert "**not matched work**" in text
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    benchmark.write(reports / "bench", out)
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first  # figures are deterministic too


def test_matched_speedups_read_the_matched_rows(reports):
    from spineaug.report import bench_figures

    pl = pd.read_csv(reports / "bench" / "pipelines.csv")
    rows = {r["baseline"]: r for r in bench_figures.speedup_rows(pl, "cpu", 2, 64)}
    assert rows["batchgenerators"]["speedup"] == pytest.approx(4.0)  # exact: against the whole preset
    assert rows["torchio"]["speedup"] == pytest.approx(6.0)  # partial: against spineaug's matched work (3 / 0.5)
    assert rows["torchio"]["low"] == pytest.approx(3 * 0.9 / (0.5 * 1.1))
    assert rows["torchio"]["threads"] == 2


def test_seed_statistics_win_over_the_summary_when_exported(reports):
    rows = []
    for measure, target, mean, low, high in (("ood_gain_per_source_pct", "ood", 123.4, 100.0, 140.0),
                                             ("in_domain_change_pct", "in_domain", -1.25, -2.0, -0.5),
                                             ("ood_gain_pct", "ood", 80.0, 70.0, 90.0)):  # fmt: skip
        base = dict(source="all", arm="xdomain", measure=measure, target=target, seeds=2, anatomies=2,
                    **{"class": "mean"})
        rows += [{**base, "seed": "mean", "value": mean, "ci_low": low, "ci_high": high},
                 {**base, "seed": "0", "value": mean - 1, "ci_low": "", "ci_high": ""},
                 {**base, "seed": "1", "value": mean + 1, "ci_low": "", "ci_high": ""}]
    _io.atomic_write_csv(reports / "data" / "study" / "default" / "stats.csv", rows, _schema.STUDY_STATS_COLUMNS)
    text = index.write(reports).read_text()
    assert "| +155 % | +123.4 % [+100.0, +140.0] | stats.csv" in text
    assert "| -0.008 % | -1.25 % [-2.0, -0.5] | stats.csv" in text
    assert "pooled over sources the gain is +80.0 %" in text


def test_a_partial_study_says_so_in_the_headline_caption(reports):
    study = reports / "data" / "study" / "default"
    grid = pd.DataFrame([("ct", "nnunet", 0, "fresh"), ("ct", "xdomain", 0, "fresh"), ("t1w", "xdomain", 0, "missing")],
                        columns=["source", "arm", "seed", "status"])  # fmt: skip
    grid.to_csv(study / "grid.csv", index=False)
    text = index.write(reports, study_data=reports / "data" / "study", fidelity=reports / "fidelity").read_text()
    assert "**partial: 2 of 3 cells of the study are finished**" in text
    grid.assign(status="fresh").to_csv(study / "grid.csv", index=False)
    text = index.write(reports, study_data=reports / "data" / "study", fidelity=reports / "fidelity").read_text()
    assert "partial:" not in text


def test_the_benchmark_figures_draw_every_registered_baseline_in_the_registry_order():
    from spineaug import _schema
    from spineaug.baselines import LIBRARIES
    from spineaug.report import bench_figures

    assert LIBRARIES == _schema.BASELINE_LIBRARIES
    assert bench_figures.ORDER == ["spineaug", *_schema.BASELINE_LIBRARIES]
    assert set(bench_figures.ORDER) <= set(bench_figures.COLORS)  # a library without a colour would be grey
