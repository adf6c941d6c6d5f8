"""The study page (``spineaug.report.study``) built from small hand-made compact results.

The fixture is written the way ``spineaug study --export`` writes it (the study layer's own statistics), then the
page is checked against numbers computed here directly from the fixture's metrics rows: the page must render the
study layer's seed-aware statistics faithfully, reference every figure it draws and never fail on missing inputs.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spineaug.report import study as report
from spineaug.study import statistics
from spineaug.study.summary import summary_table

DOMAINS = ("ct", "ct-lowdose", "t1w", "t2w")
CLASSES = ("vertebra", "disc", "canal")
FIGURES = ("heatmap", "ood_spread", "families", "classes", "curves", "tradeoff", "examples")
LEVEL = {"ref": 0.2, "aug": 0.5, "cpu": 0.3}


def _cells(name: str) -> list[tuple[str, str, int]]:
    if name == "default":  # two sources; "cpu" on ct only with one seed (as bgv2-nnunet in the default study)
        return [(s, a, e) for s in ("ct", "t2w") for a in ("ref", "aug") for e in (0, 1)] + [("ct", "cpu", 0)]
    return [("ct", a, e) for a in ("ref", "aug") for e in (0, 1)]


def _metrics(name: str) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for source, arm, seed in _cells(name):
        for domain in DOMAINS:
            for k in range(3):
                for cls in CLASSES:
                    d = 0.9 if domain == source else LEVEL[arm] + 0.1 * seed + 0.05 * k
                    rows.append((source, arm, seed, domain, f"{domain}_{10000 + k}", cls,
                                 round(float(np.clip(d + rng.normal(0, 0.02), 0, 1)), 6), 2.0 + k))  # fmt: skip
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])


def _export(root: Path, name: str, *, with_stats: bool = True) -> Path:
    """A compact study folder as ``spineaug study --export`` writes it."""
    dest = root / name
    dest.mkdir(parents=True)
    m = _metrics(name)
    grid = m[["source", "arm", "seed"]].drop_duplicates()
    curves = pd.DataFrame([(s, a, e, it, 1.0 / it, 0.01, 0.05, 0.3, 0.5 + it / 1000 if it % 10 == 0 else np.nan, it)
                           for s, a, e in grid.itertuples(index=False) for it in range(5, 41, 5)],
                          columns=["source", "arm", "seed", "iteration", "loss", "data_s", "augment_s", "network_s",
                                   "val_dice", "elapsed_s"])  # fmt: skip
    monitor = pd.DataFrame([(s, a, e, it, d, 0.2 + it / 100) for s, a, e in grid.itertuples(index=False)
                            for it in (10, 20, 30, 40) for d in DOMAINS if d != s],
                           columns=["source", "arm", "seed", "iteration", "domain", "dice"])  # fmt: skip
    families = statistics.domain_families(DOMAINS)
    stats = statistics.seed_statistics(m, "ref", families, 500)
    m.to_csv(dest / "metrics.csv", index=False)
    curves.to_csv(dest / "curves.csv", index=False)
    monitor.to_csv(dest / "monitor.csv", index=False)
    summary_table(m, curves, "ref", 500, stats=stats).to_csv(dest / "summary.csv", index=False)
    if with_stats:
        stats.to_csv(dest / "stats.csv", index=False, float_format="%.6g")
        pairs = statistics.comparisons(m, 500, arms=["ref", "aug", "cpu"])
        pairs.to_csv(dest / "comparisons.csv", index=False, float_format="%.6g")
        statistics.domain_table(DOMAINS).to_csv(dest / "domains.csv", index=False)
    cells = grid.assign(commit="0123456789abcdef", provenance="fresh", train_s=60.0, eval_s=10.0, threads=1)
    cells.to_csv(dest / "cells.csv", index=False)
    status = pd.concat([grid.assign(status="fresh"),
                        pd.DataFrame([("t2w", "cpu", 1, "missing"), ("t2w", "aug", 2, "stale: engine changed")],
                                     columns=["source", "arm", "seed", "status"])])  # fmt: skip
    status.to_csv(dest / "grid.csv", index=False)
    spec = {"name": name, "description": f"fixture {name}", "sources": sorted(grid["source"].unique()),
            "arms": ["ref", "aug", "cpu"], "reference_arm": "ref", "seeds": [0, 1],
            "training": {"iterations": 40, "patch_size": [16, 16, 16]}, "model": {"name": "UNet", "filters": [4, 8]},
            "data": {"domains": list(DOMAINS)},
            "compute": {"cells": len(grid), "cpu_hours": 1.25, "definition": "wall seconds x threads"}}  # fmt: skip
    (dest / "study.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(3)  # examples.npz: one saved test case per domain, each cell's prediction of it
    arrays = {}
    for d in DOMAINS:
        arrays[f"image/{d}/{d}_10000"] = rng.normal(size=(20, 24)).astype(np.float16)
        arrays[f"label/{d}/{d}_10000"] = rng.integers(0, 4, (20, 24)).astype(np.uint8)
        for s, a, e in grid.itertuples(index=False):
            arrays[f"pred/{s}__{a}__s{e}/{d}/{d}_10000"] = rng.integers(0, 4, (20, 24)).astype(np.uint8)
    np.savez_compressed(dest / "examples.npz", **arrays)
    return dest


def _direct(m: pd.DataFrame, source: str, arm: str) -> tuple[list[float], list[float]]:
    """Per-seed out-of-domain and in-domain Dice computed from the rows by hand: class mean per case, case mean."""
    sel = m[(m["source"] == source) & (m["arm"] == arm)]
    case = sel.groupby(["seed", "domain", "case"], as_index=False)["dice"].mean()
    ood = case[case["domain"] != source].groupby("seed")["dice"].mean()
    ind = case[case["domain"] == source].groupby("seed")["dice"].mean()
    return ood.tolist(), ind.tolist()


def _row(page: str, source: str, arm: str) -> str:
    rows = [line for line in page.splitlines() if line.startswith(f"| {source} | {arm} | ")]
    assert rows, (source, arm)
    return rows[0]  # the headline table comes first


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _export(root, "default")
    _export(root, "ablation-schedule")
    out = tmp_path_factory.mktemp("reports")
    return report.write(root, out).read_text(), out


def test_every_figure_is_written_and_referenced(page):
    text, out = page
    for what in FIGURES:
        path = out / f"study_default_{what}.png"
        assert path.is_file() and path.stat().st_size > 5000, what
        assert f"]({path.name})" in text, what
    assert text.count("seeds [0, 1]; command `spineaug study studies/default.yaml") >= len(FIGURES)  # captions
    assert "`0123456789`" in text  # the cells' commit


def test_header_says_what_the_study_cost(page):
    text, _ = page
    n = len(_metrics("default")[["source", "arm", "seed"]].drop_duplicates())
    assert f"Compute: 1.2 CPU-hours for {n} finished cells (wall seconds x threads)." in text


def test_example_predictions_show_the_source_and_one_domain_of_each_family():
    from spineaug.report.study import figures, results

    res = results.StudyResults(name="x", folder=Path("."), study={"data": {"domains": list(DOMAINS)}})
    res.domains, res.metrics = statistics.domain_table(DOMAINS), _metrics("default")
    assert figures.example_targets(res, "ct") == ["ct", "t1w", "ct-lowdose"]
    assert figures.example_targets(res, "t2w") == ["t2w", "ct", "t1w"]


def test_example_predictions_are_left_out_without_examples_npz(tmp_path):
    data = tmp_path / "data"
    (_export(data, "default") / "examples.npz").unlink()
    text = report.write(data, tmp_path / "out").read_text()
    assert "study_default_examples.png" not in text and not (tmp_path / "out" / "study_default_examples.png").exists()


def test_headline_numbers_equal_the_metrics(page):
    text, _ = page
    m = _metrics("default")
    for source in ("ct", "t2w"):
        ood_aug, ind_aug = _direct(m, source, "aug")
        ood_ref, _ = _direct(m, source, "ref")
        row = _row(text, source, "aug")
        assert f"| {np.mean(ind_aug):.3f} [" in row
        assert f"| {np.mean(ood_aug):.3f} [" in row and f"s0 {ood_aug[0]:.3f}, s1 {ood_aug[1]:.3f}" in row
        gains = [100 * (a / r - 1) for a, r in zip(ood_aug, ood_ref)]
        assert f"| {np.mean(gains):+.1f} % [" in row and f"s0 {gains[0]:+.1f}, s1 {gains[1]:+.1f}" in row
    # pooled rows: the mean over seeds of each seed's mean over both sources' rows, and the paper's gain
    pooled = [np.mean([_direct(m, s, "aug")[0][e] for s in ("ct", "t2w")]) for e in (0, 1)]
    assert f"| {np.mean(pooled):.3f} [" in _row(text, "all", "aug")
    per_source = np.mean([np.mean([100 * (a / r - 1) for a, r in zip(_direct(m, s, "aug")[0], _direct(m, s, "ref")[0])])
                          for s in ("ct", "t2w")])  # fmt: skip
    assert f"| {per_source:+.1f} % [" in _row(text, "all", "aug")
    # an arm run on one source only: shown there, against the reference's same seed, never pooled
    ood_cpu, _ = _direct(m, "ct", "cpu")
    assert f"| {100 * (ood_cpu[0] / _direct(m, 'ct', 'ref')[0][0] - 1):+.1f} % [" in _row(text, "ct", "cpu")
    assert "| all | cpu |" not in text


def test_family_and_class_tables(page):
    text, _ = page
    m = _metrics("default")
    sel = m[(m["source"] == "ct") & (m["arm"] == "aug") & (m["domain"] == "ct-lowdose")]
    ct_family = sel.groupby("seed")["dice"].mean().mean()
    assert f"| ct | aug | {ct_family:.3f} [" in text
    canal = m[(m["arm"] == "aug") & (m["class"] == "canal") & (m["domain"] != m["source"])]
    per_seed = canal.groupby("seed")["dice"].mean()  # both sources, equal rows per source
    assert f"{per_seed.mean():.3f} [" in [line for line in text.splitlines() if line.startswith("| all | aug |")][-2]


def test_pooled_rows_never_share_a_table_with_single_source_rows(page):
    text, _ = page
    section = text.split("### Per class")[1].split("### Cells")[0]
    tables = [t for t in section.split("\n\n") if t.startswith("| trained on |")]
    assert len(tables) == 4  # Dice and HD95, each: pooled arms, then ct (where "cpu" ran alone) with every arm
    for table in tables:
        rows = table.splitlines()[2:]
        assert len({r.split(" | ")[0] for r in rows}) == 1, table
    assert "| ct | cpu |" in tables[1] and "| ct | ref |" in tables[1]


def test_stale_and_missing_cells_are_listed(page):
    text, _ = page
    assert "- missing: t2w/cpu/s1" in text and "- stale: engine changed: t2w/aug/s2" in text


def test_ablations_render_when_present_and_are_pending_otherwise(page):
    text, out = page
    assert "### ablation-schedule" in text and "Question. Schedule:" in text
    schedule = text.split("### ablation-schedule")[1].split("### ablation-capacity")[0]
    assert "| ct | aug |" in schedule and (out / "study_ablation-schedule_curves.png").is_file()
    assert "Pending: no results yet for `ablation-capacity`: run `spineaug study studies/ablation-capacity.yaml" in text
    # beside the main study, per source only (the two studies' pooled rows pool different sources)
    beside = schedule.split("#### Beside `default`")[1].split("####")[0]
    main, ablation = _direct(_metrics("default"), "ct", "aug"), _direct(_metrics("ablation-schedule"), "ct", "aug")
    row = next(line for line in beside.splitlines() if line.startswith("| ct | aug |"))
    assert f"| {np.mean(main[1]):.3f} [" in row and f"] / {np.mean(ablation[1]):.3f} [" in row
    assert "| all |" not in beside


def test_missing_inputs_never_crash(tmp_path):
    legacy = _export(tmp_path / "data", "fx", with_stats=False)  # not the default study: default is pending
    (legacy / "monitor.csv").unlink()
    (legacy / "grid.csv").unlink()
    text = report.write(tmp_path / "data", tmp_path / "out").read_text()
    assert "Seed statistics (`stats.csv`) are not in these results" in text
    assert "No results yet for `default`: run `spineaug study studies/default.yaml" in text
    assert "](study_fx_heatmap.png)" in text and "](study_fx_tradeoff.png)" not in text
    empty = report.write(tmp_path / "nothing", tmp_path / "out2").read_text()
    assert "No results yet for `default`" in empty and "Pending: no results yet for `ablation-mixing`" in empty


def test_deterministic(tmp_path):
    _export(tmp_path / "data", "fx")
    a = report.write(tmp_path / "data", tmp_path / "a").read_text()
    b = report.write(tmp_path / "data", tmp_path / "b").read_text()
    assert a == b
    assert (tmp_path / "a" / "study_fx_classes.png").read_bytes() == (tmp_path / "b" / "study_fx_classes.png").read_bytes()


def test_the_report_imports_no_study_or_engine_code():
    folder = Path(report.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])  # fmt: skip
            for name in names:
                if name.startswith("spineaug"):
                    assert name in ("spineaug", "spineaug._io", "spineaug._schema") or name.startswith(
                        "spineaug.report"), f"{path.name} imports {name}"  # fmt: skip


def test_the_study_page_shows_the_phantom_when_it_is_drawn(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    _export(data, "default")
    assert "phantom.png" not in report.write(data, out).read_text()
    (out / "phantom.png").write_bytes(b"\x89PNG stand-in")
    text = report.write(data, out).read_text()
    assert "![the phantom in every domain](phantom.png)" in text and "*Figure: the same phantom anatomy" in text


def test_head_to_head_renders_the_paired_differences_of_comparisons_csv(page):
    text, _ = page
    m = _metrics("default")
    pairs = statistics.comparisons(m, 500, arms=["ref", "aug", "cpu"])
    section = text.split("### Head to head", 1)[1].split("###", 1)[0]
    # no xdomain / xdomain-plus in the fixture: every arm is held against the reference arm `ref`
    assert "Each arm against `ref`" in section
    for src, arm in (("ct", "aug"), ("t2w", "aug"), ("all", "aug"), ("ct", "cpu")):
        row = [line for line in section.splitlines() if line.startswith(f"| {src} | {arm} | ")]
        assert len(row) == 1, (src, arm)
        for target in ("in_domain", "ood"):
            mean, lo, hi = statistics.difference(pairs, src, arm, "ref", target)
            assert f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" in row[0], (src, arm, target)
    # the fixture's aug sits 0.3 above ref out of domain on every seed: better, by the paired interval
    ood = statistics.difference(pairs, "all", "aug", "ref", "ood")
    assert ood[0] == pytest.approx(0.3 + 0.0, abs=0.02) and ood[1] > 0
    assert "- `aug`, pooled over sources: in domain " in section
    assert "; out of domain better than `ref` (+0.3" in section
    # cpu ran on ct with seed 0 only: compared with ref's seed 0 on ct, never pooled
    assert not [line for line in section.splitlines() if line.startswith("| all | cpu | ")]
    assert "- `cpu`, trained on ct: in domain " in section


def test_ablation_states_the_in_domain_cost_in_both_studies(page):
    text, _ = page
    section = text.split("### ablation-schedule", 1)[1]
    assert "The in-domain cost of each arm" in section
    line = [s for s in section.splitlines() if s.startswith("- `aug` trained on ct: in-domain change vs `ref`")]
    assert len(line) == 1
    # the fixture's ablation rows are the default's ct rows, so both studies give the same cost: no clear change
    assert line[0].endswith("(the intervals overlap: no clear change).")


def test_an_ablation_arm_is_set_beside_its_declared_counterpart(tmp_path):
    from spineaug.report.study import results, tables

    main, other = (results.load(_export(tmp_path, n)) for n in ("default", "ablation-mixing"))
    m_main, m_other = _metrics("default"), _metrics("ablation-mixing")
    # The ablation's `aug` is set beside the main study's `cpu` (ct, seed 0 only): its numbers, not `aug`'s.
    lines = tables.ood_in_both(main, other, {"aug": "cpu"})
    line = next(s for s in lines if s.startswith("- `aug` trained on ct: out-of-domain Dice "))
    expected_main = np.mean(_direct(m_main, "ct", "cpu")[0])
    expected_other = np.mean(_direct(m_other, "ct", "aug")[0])
    assert f"Dice {expected_main:.3f} [" in line and "in `default` (its arm: `cpu`), " in line
    assert f", {expected_other:.3f} [" in line and line.endswith(")."), line
    table = tables.against(main, other, {"aug": "cpu"})
    row = next(s for s in table if s.startswith("| ct | aug (default: `cpu`) | "))
    ood_cell = row.split(" | ")[3]  # trained on | arm | in-domain Dice | out-of-domain Dice: main / ablation
    assert ood_cell.startswith(f"{expected_main:.3f} [") and f" / {expected_other:.3f} [" in ood_cell
    # Without the declaration, `aug` is set beside its namesake.
    plain = next(s for s in tables.ood_in_both(main, other) if s.startswith("- `aug` trained on ct: "))
    assert f"Dice {np.mean(_direct(m_main, 'ct', 'aug')[0]):.3f} [" in plain and "its arm" not in plain
