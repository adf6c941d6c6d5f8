"""The study page's tables (``spineaug.report.study.tables``) and the results they read
(``spineaug.report.study.results``), on small hand-built frames whose every printed number is known.

Each ``stats.csv`` row is written here by hand (value, interval, per-seed values), so each table cell has one right
text: the right statistic (source, arm, measure, target, class) in the right column, with its digits and sign.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from spineaug.report.study import tables
from spineaug.report.study.results import StudyResults, label, load

NAN = float("nan")
MIX = "studies/arms/mix.yaml"


def _stats(*blocks) -> pd.DataFrame:
    """``stats.csv`` rows: (source, arm, measure, target, mean, lo, hi, [(seed, value), ...][, class])."""
    rows = []
    for src, arm, measure, target, mean, lo, hi, seeds, *cls in blocks:
        key = dict(source=src, arm=arm, measure=measure, target=target, **{"class": cls[0] if cls else "mean"})
        rows.append({**key, "seed": "mean", "value": mean, "ci_low": lo, "ci_high": hi})
        rows += [{**key, "seed": str(s), "value": v, "ci_low": NAN, "ci_high": NAN} for s, v in seeds]
    return pd.DataFrame(rows)


def _metrics(cells) -> pd.DataFrame:
    """One metrics row per (source, arm, seed): enough for the results' sources, arms and seeds."""
    return pd.DataFrame([(s, a, e, "ct", "ct_1", "vertebra", 0.5, 1.0) for s, a, e in cells],
                        columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])  # fmt: skip


def _results(name="main", stats=None, cells=(), **kw) -> StudyResults:
    study = {"name": name, "sources": ["t2w", "ct"], "arms": ["ref", MIX], "reference_arm": "ref"}
    kw.setdefault("metrics", _metrics(cells) if cells else None)
    return StudyResults(name=name, folder=None, study=study, stats=stats, **kw)


def _header(lines: list[str]) -> list[str]:
    return [c.strip() for c in lines[0].strip("|").split("|")]


# ---- fmt, cell, verdict -------------------------------------------------------------------------------------------


def test_fmt_rounds_signs_and_says_na():
    assert tables.fmt(0.12345) == "0.123"
    assert tables.fmt(0.12345, 1, " %") == "0.1 %"
    assert tables.fmt(2.0, 2, sign=True) == "+2.00"
    assert tables.fmt(-2.0, 2, sign=True) == "-2.00"
    assert tables.fmt(None) == "n/a" and tables.fmt(NAN, 1, " %", sign=True) == "n/a"
    assert tables.fmt(3) == "3.000"  # an int is not NaN-checked and still formats


def test_cell_shows_the_interval_only_when_known_and_the_seeds_only_when_two_or_more():
    seeds = [("0", 0.25), ("1", 0.5)]
    assert tables.cell((0.375, 0.2, 0.55, seeds)) == "0.375 [0.200, 0.550] (s0 0.250, s1 0.500)"
    assert tables.cell((0.375, 0.2, 0.55, seeds), seeds=False) == "0.375 [0.200, 0.550]"
    assert tables.cell((0.375, 0.2, 0.55, seeds[:1])) == "0.375 [0.200, 0.550]"
    assert tables.cell((0.375, NAN, 0.55, seeds)) == "0.375 (s0 0.250, s1 0.500)"
    assert tables.cell((0.375, 0.2, NAN, seeds)) == "0.375 (s0 0.250, s1 0.500)"
    assert tables.cell((NAN, 0.2, 0.55, seeds)) == "n/a"
    assert tables.cell((12.5, -1.0, 30.0, [("0", 5.0), ("2", 20.0)]), 1, " %", sign=True) == \
        "+12.5 % [-1.0, +30.0] (s0 +5.0, s2 +20.0)"  # the suffix once, after the mean
    assert tables.cell((-0.5, -1.0, 0.25, []), 2, " %", sign=True) == "-0.50 % [-1.00, +0.25]"


@pytest.mark.parametrize("low, high, word", [(0.01, 0.2, "better"), (0.0, 0.2, "no clear difference"),
                                             (-0.2, -0.01, "worse"), (-0.2, 0.0, "no clear difference"),
                                             (-0.1, 0.1, "no clear difference"), (NAN, 0.1, "n/a"),
                                             (0.1, NAN, "n/a")])  # fmt: skip
def test_verdict_needs_the_whole_interval_on_one_side_of_zero(low, high, word):
    assert tables.verdict(low, high) == word


# ---- headline -----------------------------------------------------------------------------------------------------


def _headline_results(summary=None) -> StudyResults:
    stats = _stats(
        ("t2w", "ref", "dice", "in_domain", 0.9, 0.88, 0.92, [(0, 0.89), (1, 0.91)]),
        ("t2w", "ref", "dice", "ood", 0.3, 0.25, 0.35, [(0, 0.28), (1, 0.32)]),
        ("t2w", "ref", "ood_gain_pct", "ood", 0.0, NAN, NAN, []),
        ("t2w", "aug", "dice", "in_domain", 0.875, NAN, NAN, [(0, 0.875)]),
        ("t2w", "aug", "dice", "ood", 0.6, 0.5, 0.7, []),
        ("t2w", "aug", "ood_gain_pct", "ood", 100.0, 80.0, 120.0, [(0, 100.0)]),
        ("t2w", "aug", "ood_gain_per_source_pct", "ood", 55.0, 50.0, 60.0, []),  # not shown on a source's row
        ("t2w", "aug", "in_domain_change_pct", "in_domain", -0.5556, -1.0, 0.25, [(0, -0.6), (1, -0.5)]),
        ("t2w", "aug", "in_domain_change_pct", "ood", 7.0, 6.0, 8.0, []),  # wrong target: never shown
        ("t2w", "aug", "dice", "in_domain", 0.1, 0.0, 0.2, [], "disc"),  # a class row: never in the headline
        ("all", "aug", "dice", "ood", 0.55, 0.45, 0.65, [(0, 0.5), (1, 0.6)]),
        ("all", "aug", "ood_gain_pct", "ood", 90.0, 70.0, 110.0, [(0, 80.0), (1, 100.0)]),
        ("all", "aug", "ood_gain_per_source_pct", "ood", 95.0, 75.0, 115.0, [(0, 90.0), (1, 100.0)]),
    )
    return _results(stats=stats, cells=[("t2w", "ref", 0), ("t2w", "aug", 0)], summary=summary)


def test_headline_puts_each_statistic_in_its_column():
    summary = pd.DataFrame([("t2w", "ref", 0.5, 0.01), ("t2w", "aug", 0.625, NAN)],
                           columns=["source", "arm", "s_per_iteration", "augment_s_per_iteration"])  # fmt: skip
    lines = tables.headline(_headline_results(summary))
    assert lines == [
        "| trained on | arm | seeds | in-domain Dice (per seed) | out-of-domain Dice [95 % CI] (per seed) | "
        "OOD gain vs `ref` [95 % CI] (per seed) | OOD gain, mean of per-source gains [95 % CI] | "
        "in-domain change vs `ref` | s / iteration (augment) |",
        "|---|---|---|---|---|---|---|---|---|",
        "| t2w | ref | 2 | 0.900 [0.880, 0.920] (s0 0.890, s1 0.910) | 0.300 [0.250, 0.350] (s0 0.280, s1 0.320) | "
        "+0.0 % | +0.0 % | n/a | 0.500 (0.010) |",
        "| t2w | aug | 1 | 0.875 | 0.600 [0.500, 0.700] | +100.0 % [+80.0, +120.0] | +100.0 % [+80.0, +120.0] | "
        "-0.56 % [-1.00, +0.25] | 0.625 (n/a) |",
        "| all | aug | 2 | n/a | 0.550 [0.450, 0.650] (s0 0.500, s1 0.600) | "
        "+90.0 % [+70.0, +110.0] (s0 +80.0, s1 +100.0) | +95.0 % [+75.0, +115.0] | n/a | n/a |",
    ]


def test_headline_timing_without_summary_or_augment_column():
    assert tables.headline(_headline_results())[2].endswith("| n/a | n/a |")
    summary = pd.DataFrame([("t2w", "aug", 0.25), ("ct", "ref", 9.0)], columns=["source", "arm", "s_per_iteration"])
    lines = tables.headline(_headline_results(summary))
    assert lines[2].endswith("| n/a | n/a |")  # t2w x ref is not in summary.csv
    assert lines[3].endswith("| 0.250 (n/a) |")  # an older summary.csv without the augment column


# ---- families, per-class ------------------------------------------------------------------------------------------


def test_families_one_column_per_family_in_first_seen_order():
    stats = _stats(("t2w", "ref", "dice", "ood_mr", 0.5, 0.4, 0.6, [(0, 0.45), (1, 0.55)]),
                   ("t2w", "ref", "dice", "ood_ct", 0.25, 0.2, 0.3, []),
                   ("t2w", MIX, "dice", "ood_ct", 0.125, NAN, NAN, []))  # fmt: skip
    domains = pd.DataFrame({"domain": ["ct", "t1w", "t2w", "ct-lowdose"], "family": ["ct", "mr", "mr", "ct"]})
    res = _results(stats=stats, cells=[("t2w", "ref", 0), ("t2w", MIX, 0)], domains=domains)
    assert tables.families(res) == [
        "| trained on | arm | CT-family targets [95 % CI] | MR-family targets [95 % CI] |",
        "|---|---|---|---|",
        "| t2w | ref | 0.250 [0.200, 0.300] | 0.500 [0.400, 0.600] (s0 0.450, s1 0.550) |",
        "| t2w | mix | 0.125 | n/a |",
    ]
    assert tables.families(_results(stats=stats, cells=[("t2w", "ref", 0)])) == []  # no domains.csv


def _class_rows(src, arm, measure, base):
    """Per class (vertebra, disc, canal) and target: ``base`` + 0.1 * class index + 0.01 (out of domain)."""
    return [(src, arm, measure, t, base + 0.1 * i + (0.01 if t == "ood" else 0.0), NAN, NAN, [(0, 9.0), (1, 9.0)], c)
            for t in ("in_domain", "ood") for i, c in enumerate(("vertebra", "disc", "canal"))]  # fmt: skip


def test_per_class_pooled_and_single_source_rows_never_share_a_table():
    stats = _stats(*_class_rows("all", "ref", "dice", 0.5), *_class_rows("ct", "ref", "dice", 0.2),
                   *_class_rows("ct", "aug", "dice", 0.3),
                   ("all", "ref", "dice", "in_domain", 0.99, NAN, NAN, []))  # the class mean: not a class column
    res = _results(stats=stats, cells=[("ct", "ref", 0), ("ct", "aug", 0)])
    head = ("| trained on | arm | vertebra, in domain | disc, in domain | canal, in domain | vertebra, out of domain | "
            "disc, out of domain | canal, out of domain |")  # fmt: skip
    sep = "|---|---|---|---|---|---|---|---|"
    assert tables.per_class(res, "dice") == [
        "*Pooled over sources (arms that ran on every source):*", "", head, sep,
        "| all | ref | 0.500 | 0.600 | 0.700 | 0.510 | 0.610 | 0.710 |", "",
        "*Trained on ct (with the arms that ran on some sources only):*", "", head, sep,
        "| ct | ref | 0.200 | 0.300 | 0.400 | 0.210 | 0.310 | 0.410 |",
        "| ct | aug | 0.300 | 0.400 | 0.500 | 0.310 | 0.410 | 0.510 |",
    ]


def test_per_class_hd95_has_one_digit_and_reads_the_hd95_rows():
    stats = _stats(*_class_rows("ct", "ref", "hd95", 2.0), *_class_rows("ct", "ref", "dice", 0.2))
    res = _results(stats=stats, cells=[("ct", "ref", 0)])
    assert tables.per_class(res, "hd95")[0] == "*Trained on ct:*"
    assert tables.per_class(res, "hd95")[-1] == "| ct | ref | 2.0 | 2.1 | 2.2 | 2.0 | 2.1 | 2.2 |"
    assert tables.per_class(res, "dice")[-1] == "| ct | ref | 0.200 | 0.300 | 0.400 | 0.210 | 0.310 | 0.410 |"


# ---- legacy -------------------------------------------------------------------------------------------------------


def test_legacy_prints_summary_csv_as_it_is():
    summary = pd.DataFrame([{"source": "ct", "arm": MIX, "in_domain_dice": 0.9, "ood_dice": 0.4, "ood_ci_low": 0.3,
                             "ood_ci_high": 0.5, "ood_gain_pct": 25.0, "in_domain_change_pct": -0.125,
                             "s_per_iteration": 0.75, "augment_s_per_iteration": 0.05}])  # fmt: skip
    res = _results(summary=summary)
    assert tables.legacy(res) == [
        "| trained on | arm | in-domain Dice | out-of-domain Dice [95 % CI] | OOD gain vs `ref` | "
        "in-domain change vs `ref` | s / iteration (augment) |",
        "|---|---|---|---|---|---|---|",
        "| ct | mix | 0.900 | 0.400 [0.300, 0.500] | 25.0 % | -0.12 % | 0.750 (0.050) |",
    ]
    res.summary = summary.drop(columns="augment_s_per_iteration")
    assert tables.legacy(res)[2].endswith("| 0.750 (n/a) |")


# ---- an ablation beside the main study ----------------------------------------------------------------------------


def _main_and_ablation():
    main = _results("main", stats=_stats(
        ("ct", "ref", "dice", "in_domain", 0.9, 0.85, 0.95, [(0, 0.9), (1, 0.9)]),
        ("ct", "ref", "dice", "ood", 0.2, 0.1, 0.3, []),
        ("ct", "ref", "ood_gain_pct", "ood", 0.0, 0.0, 0.0, []),
        ("ct", MIX, "dice", "in_domain", 0.8, 0.75, 0.85, []),
        ("ct", MIX, "dice", "ood", 0.4, 0.3, 0.5, []),
        ("ct", MIX, "ood_gain_pct", "ood", 100.0, 50.0, 150.0, []),
        ("ct", MIX, "in_domain_change_pct", "in_domain", -10.0, -12.0, -8.0, []),
        ("ct", "aug", "in_domain_change_pct", "in_domain", -1.0, -2.0, 0.5, []),
        ("ct", "aug", "dice", "ood", 0.5, 0.45, 0.55, []),
        ("all", MIX, "dice", "ood", 0.42, 0.3, 0.5, []),
    ), cells=[("ct", "ref", 0), ("ct", MIX, 0), ("ct", "aug", 0)])
    other = _results("abl", stats=_stats(
        ("ct", "ref", "dice", "in_domain", 0.875, NAN, NAN, []),
        ("ct", "ref", "dice", "ood", 0.25, 0.2, 0.3, []),
        ("ct", "studies/arms/mix-late.yaml", "dice", "in_domain", 0.85, 0.8, 0.9, []),
        ("ct", "studies/arms/mix-late.yaml", "dice", "ood", 0.6, 0.55, 0.65, []),
        ("ct", "studies/arms/mix-late.yaml", "ood_gain_pct", "ood", 140.0, 120.0, 160.0, [(0, 130.0), (1, 150.0)]),
        ("ct", "studies/arms/mix-late.yaml", "in_domain_change_pct", "in_domain", -3.0, -4.0, -2.0, []),
        ("ct", "aug", "dice", "ood", 0.5, 0.46, 0.56, []),
        ("ct", "aug", "in_domain_change_pct", "in_domain", NAN, NAN, NAN, []),
        ("all", "studies/arms/mix-late.yaml", "dice", "ood", 0.9, 0.8, 1.0, []),  # pooled: never beside main
    ), cells=[("ct", "ref", 0), ("ct", "studies/arms/mix-late.yaml", 0), ("ct", "aug", 0)])
    other.study["arms"] = ["ref", "studies/arms/mix-late.yaml", "aug"]
    return main, other


def test_against_sets_each_ablation_row_beside_the_main_study_namesake_or_counterpart():
    main, other = _main_and_ablation()
    assert tables.against(main, other, {"mix-late": MIX}) == [
        "| trained on | arm | in-domain Dice: main / abl | out-of-domain Dice: main / abl | "
        "OOD gain vs `ref`: main / abl |",
        "|---|---|---|---|---|",
        "| ct | ref | 0.900 [0.850, 0.950] / 0.875 | 0.200 [0.100, 0.300] / 0.250 [0.200, 0.300] | "
        "+0.0 % [+0.0, +0.0] / n/a |",
        "| ct | mix-late (main: `mix`) | 0.800 [0.750, 0.850] / 0.850 [0.800, 0.900] | "
        "0.400 [0.300, 0.500] / 0.600 [0.550, 0.650] | +100.0 % [+50.0, +150.0] / +140.0 % [+120.0, +160.0] |",
        "| ct | aug | n/a / n/a | 0.500 [0.450, 0.550] / 0.500 [0.460, 0.560] | n/a / n/a |",
    ]
    no_counterpart = tables.against(main, other)
    assert no_counterpart[3] == "| ct | mix-late | n/a / 0.850 [0.800, 0.900] | n/a / 0.600 [0.550, 0.650] | " \
                                "n/a / +140.0 % [+120.0, +160.0] |"


def test_in_domain_cost_and_ood_in_both_say_whether_the_intervals_separate():
    main, other = _main_and_ablation()
    pairs = {"mix-late": MIX}
    assert tables.in_domain_cost(main, other, pairs) == [
        "- `mix-late` trained on ct: in-domain change vs `ref` -10.00 % [-12.00, -8.00] in `main` "
        "(its arm: `mix`), -3.00 % [-4.00, -2.00] in `abl` (smaller here).",
    ]  # aug: NaN in the ablation, left out; ref: the reference, left out
    assert tables.ood_in_both(main, other, pairs) == [
        "- `mix-late` trained on ct: out-of-domain Dice 0.400 [0.300, 0.500] in `main` (its arm: `mix`), "
        "0.600 [0.550, 0.650] in `abl` (higher here).",
        "- `aug` trained on ct: out-of-domain Dice 0.500 [0.450, 0.550] in `main`, 0.500 [0.460, 0.560] in `abl` "
        "(the intervals overlap: no clear change).",
    ]
    assert tables.in_domain_cost(main, other) == []  # without its counterpart, mix-late has nothing in main


def test_in_domain_cost_and_ood_in_both_both_directions_signs_and_intervals():
    """``wide``: separated both ways (down); ``thin``: means without intervals; ``gone``: not in the main study."""
    main = _results("main", stats=_stats(
        ("ct", "wide", "in_domain_change_pct", "in_domain", 2.0, 1.0, 3.0, [(0, 1.5), (1, 2.5)]),
        ("ct", "wide", "dice", "ood", 0.6, 0.55, 0.65, [(0, 0.58), (1, 0.62)]),
        ("ct", "thin", "in_domain_change_pct", "in_domain", 1.0, NAN, NAN, []),
        ("ct", "thin", "dice", "ood", 0.5, NAN, NAN, []),
    ), cells=[("ct", "wide", 0), ("ct", "thin", 0)])
    other = _results("abl", stats=_stats(
        ("ct", "gone", "in_domain_change_pct", "in_domain", 1.0, 0.0, 2.0, []),
        ("ct", "gone", "dice", "ood", 0.5, 0.4, 0.6, []),
        ("ct", "wide", "in_domain_change_pct", "in_domain", -5.0, -6.0, -4.0, [(0, -5.5), (1, -4.5)]),
        ("ct", "wide", "dice", "ood", 0.4, 0.35, 0.45, [(0, 0.38), (1, 0.42)]),
        ("ct", "thin", "in_domain_change_pct", "in_domain", 0.5, NAN, NAN, []),
        ("ct", "thin", "dice", "ood", 0.25, NAN, NAN, []),
    ), cells=[("ct", "gone", 0), ("ct", "wide", 0), ("ct", "thin", 0)])
    assert tables.in_domain_cost(main, other) == [
        "- `wide` trained on ct: in-domain change vs `ref` +2.00 % [+1.00, +3.00] in `main`, "
        "-5.00 % [-6.00, -4.00] in `abl` (larger here).",
        "- `thin` trained on ct: in-domain change vs `ref` +1.00 % in `main`, +0.50 % in `abl` "
        "(the intervals overlap: no clear change).",
    ]
    assert tables.ood_in_both(main, other) == [
        "- `wide` trained on ct: out-of-domain Dice 0.600 [0.550, 0.650] in `main`, 0.400 [0.350, 0.450] in `abl` "
        "(lower here).",
        "- `thin` trained on ct: out-of-domain Dice 0.500 in `main`, 0.250 in `abl` "
        "(the intervals overlap: no clear change).",
    ]


@pytest.mark.parametrize("a, b, word", [
    ((0.5, 0.4, 0.6), (0.8, 0.7, 0.9), "up"), ((0.5, 0.4, 0.6), (0.2, 0.1, 0.3), "down"),
    ((0.5, 0.4, 0.6), (0.8, 0.6, 0.9), "overlap"), ((0.5, 0.4, 0.6), (0.2, 0.1, 0.4), "overlap"),
    ((0.5, 0.4, 0.6), (0.8, NAN, 0.9), "overlap"), ((0.5, 0.4, 0.6), (0.8, 0.7, NAN), "overlap"),
    ((0.5, NAN, 0.6), (0.8, 0.7, 0.9), "overlap"), ((0.5, 0.4, NAN), (0.2, 0.1, 0.3), "overlap"),
    ((0.5, 0.4, 0.6), (0.2, NAN, 0.3), "overlap"),
])  # fmt: skip
def test_separation_needs_disjoint_known_intervals(a, b, word):
    said = tables._separation((*a, []), (*b, []), "up", "down")
    assert said == (word if word != "overlap" else "the intervals overlap: no clear change")


# ---- head to head -------------------------------------------------------------------------------------------------


def _pairs(*rows) -> pd.DataFrame:
    """``comparisons.csv`` mean rows (source, arm, versus, target, value, lo, hi), plus a per-seed row each."""
    out = []
    for src, arm, versus, target, value, lo, hi in rows:
        key = dict(source=src, arm=arm, versus=versus, target=target)
        out += [{**key, "seed": "mean", "value": value, "ci_low": lo, "ci_high": hi},
                {**key, "seed": "0", "value": 9.0, "ci_low": NAN, "ci_high": NAN}]  # fmt: skip
    return pd.DataFrame(out)


def _h2h_results() -> StudyResults:
    stats = _stats(*[(s, a, "dice", "ood", 0.5, 0.4, 0.6, []) for s in ("t2w", "ct", "all") for a in ("ref", "aug")],
                   ("ct", MIX, "dice", "ood", 0.5, 0.4, 0.6, []))  # fmt: skip
    comparisons = _pairs(
        ("t2w", "aug", "ref", "in_domain", 0.01, -0.02, 0.04),
        ("t2w", "aug", "ref", "ood", 0.2, 0.1, 0.3),
        ("t2w", "ref", "aug", "ood", 5.0, 5.0, 5.0),  # the pair stored both ways: each way reads its own row
        ("ct", "ref", "aug", "ood", 0.15, 0.05, 0.25),  # stored the other way round: read negated
        ("all", "aug", "ref", "ood", -0.3, -0.4, -0.2),
        ("ct", MIX, "ref", "ood", 0.05, 0.0, 0.1),
        ("ct", MIX, "aug", "ood", 0.1, 0.01, 0.2),
    )
    return _results(stats=stats, cells=[("t2w", "ref", 0), ("ct", "ref", 0), ("t2w", "aug", 0), ("ct", MIX, 0)],
                    comparisons=comparisons)  # fmt: skip


def test_head_to_head_against_one_comparator():
    assert tables.head_to_head(_h2h_results(), ["ref"]) == [
        "| trained on | arm | in domain vs `ref` | out of domain vs `ref` |",
        "|---|---|---|---|",
        "| t2w | aug | +0.010 [-0.020, +0.040] no clear difference | +0.200 [+0.100, +0.300] better |",
        "| ct | mix | n/a | +0.050 [+0.000, +0.100] no clear difference |",
        "| ct | aug | n/a | -0.150 [-0.250, -0.050] worse |",
        "| all | aug | n/a | -0.300 [-0.400, -0.200] worse |",
    ]  # the comparator's own rows are left out


def test_head_to_head_against_two_comparators_keeps_their_rows_with_a_dash():
    lines = tables.head_to_head(_h2h_results(), ["ref", "aug"])
    assert lines[0] == ("| trained on | arm | in domain vs `ref` | out of domain vs `ref` | in domain vs `aug` | "
                        "out of domain vs `aug` |")  # fmt: skip
    assert lines[2:] == [
        "| t2w | ref | - | - | -0.010 [-0.040, +0.020] no clear difference | +5.000 [+5.000, +5.000] better |",
        "| t2w | aug | +0.010 [-0.020, +0.040] no clear difference | +0.200 [+0.100, +0.300] better | - | - |",
        "| ct | ref | - | - | n/a | +0.150 [+0.050, +0.250] better |",
        "| ct | mix | n/a | +0.050 [+0.000, +0.100] no clear difference | n/a | +0.100 [+0.010, +0.200] better |",
        "| ct | aug | n/a | -0.150 [-0.250, -0.050] worse | - | - |",
        "| all | ref | - | - | n/a | +0.300 [+0.200, +0.400] better |",
        "| all | aug | n/a | -0.300 [-0.400, -0.200] worse | - | - |",
    ]
    res = _h2h_results()
    res.comparisons = None
    for comparators in (["ref"], ["ref", "aug"]):  # no comparisons.csv: no row at all
        assert tables.head_to_head(res, comparators) == tables.head_to_head(_h2h_results(), comparators)[:2]


def test_head_to_head_leaves_out_rows_without_any_pair_and_goes_on():
    res = _h2h_results()
    res.comparisons = res.comparisons[res.comparisons["source"] != "t2w"]
    assert [line.split(" | ")[:2] for line in tables.head_to_head(res, ["ref"])[2:]] == [
        ["| ct", "mix"], ["| ct", "aug"], ["| all", "aug"]]  # t2w x aug: nothing to say


def test_delta_with_a_mean_but_no_interval_has_no_verdict():
    assert tables._delta((0.02, NAN, NAN)) == "+0.020 [n/a, n/a] n/a"
    assert tables._delta((NAN, 0.1, 0.2)) == "n/a"
    assert tables._delta((-0.25, -0.5, -0.125)) == "-0.250 [-0.500, -0.125] worse"


def test_head_to_head_summary_one_line_per_arm_and_scope():
    res = _h2h_results()
    assert tables.head_to_head_summary(res, ["aug"]) == [
        "- `mix`, trained on ct: out of domain better than `aug` (+0.100 [+0.010, +0.200]).",
    ]  # aug is the comparator, ref the reference
    res.study["reference_arm"] = "none"
    assert tables.head_to_head_summary(res, ["aug"]) == [
        "- `ref`, pooled over sources: out of domain better than `aug` (+0.300 [+0.200, +0.400]).",
        "- `mix`, trained on ct: out of domain better than `aug` (+0.100 [+0.010, +0.200]).",
    ]
    assert tables.head_to_head_summary(res, ["ref"]) == [
        "- `mix`, trained on ct: out of domain no clear difference from `ref` (+0.050 [+0.000, +0.100]).",
        "- `aug`, pooled over sources: out of domain worse than `ref` (-0.300 [-0.400, -0.200]).",
    ]
    assert tables.head_to_head_summary(res, ["ref", "aug"]) == [
        "- `mix`, trained on ct: out of domain no clear difference from `ref` (+0.050 [+0.000, +0.100]), "
        "better than `aug` (+0.100 [+0.010, +0.200]).",
    ]
    res.comparisons = _pairs(("t2w", "aug", "ref", "in_domain", -0.5, -0.6, -0.4),
                             ("t2w", "aug", "ref", "ood", 0.5, 0.4, 0.6))  # fmt: skip
    res.stats = res.stats[res.stats["source"] != "all"]
    assert tables.head_to_head_summary(res, ["ref"]) == [
        "- `aug`, trained on t2w: in domain worse than `ref` (-0.500 [-0.600, -0.400]); out of domain better than "
        "`ref` (+0.500 [+0.400, +0.600]).",
    ]  # not pooled: each source it ran on (ct has no comparison: no line)


# ---- results ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arm, short", [(MIX, "mix"), ("a/b.yml", "b"), ("c.json", "c"), ("nnunet", "nnunet"),
                                        ("x.txt", "x.txt"), ("v1.5", "v1.5")])  # fmt: skip
def test_label_is_the_stem_of_an_arm_file_only(arm, short):
    assert label(arm) == short


def test_sources_arms_seeds_in_the_study_order_then_as_seen():
    cells = [("ct", "zeta", 3), ("ct", "ref", 0), ("t2w", MIX, 1), ("t1w", "ref", 0), ("ct", "alpha", 1)]
    res = _results(cells=cells)
    res.study["sources"] = ["t2w", "mr", "ct"]  # mr: listed but not in the results
    res.study["arms"] = ["ref", "absent", MIX]
    assert res.has_results and res.sources == ["t2w", "ct", "t1w"]
    assert res.arms == ["ref", MIX, "zeta", "alpha"]
    assert res.seeds == [0, 1, 3]
    empty = _results()
    assert not empty.has_results and empty.sources == [] and empty.arms == [] and empty.seeds == []
    assert not _results(cells=cells, metrics=None).has_results
    res.metrics = res.metrics.iloc[:0]
    assert not res.has_results
    assert empty.reference == "ref"
    del empty.study["reference_arm"]
    assert empty.reference == "nnunet"


def test_families_and_commits():
    res = _results()
    assert res.families == {}
    res.domains = pd.DataFrame({"domain": ["ct", "t2w"], "family": ["ct", "mr"]})
    assert res.families == {"ct": "ct", "t2w": "mr"}
    assert res.commits == []
    res.cells = pd.DataFrame({"commit": ["0123456789abcdef", "fedcba9876543210+dirty", "0123456789ffff", None,
                                         "aaaaaaaaaaaaaaaa"],
                              "provenance": ["fresh", "fresh", "fresh", "fresh", "stale: engine changed"]})  # fmt: skip
    assert res.commits == ["0123456789", "fedcba9876+dirty"]
    res.cells = res.cells.drop(columns="provenance")
    assert res.commits == ["0123456789", "aaaaaaaaaa", "fedcba9876+dirty"]
    res.cells = res.cells.drop(columns="commit")
    assert res.commits == []


def test_n_cases_counts_domain_cases_and_distinct_anatomies():
    m = pd.DataFrame([(d, f"{d}_{a}", c) for d in ("ct", "t2w", "ct-lowdose") for a in (10000, 10001)
                      for c in ("vertebra", "disc")] + [("ct", "ct_10002", "disc")],
                     columns=["domain", "case", "class"]).assign(source="ct", arm="ref", seed=0, dice=0.5)  # fmt: skip
    assert _results(metrics=m).n_cases() == (7, 3)
    assert _results().n_cases() == (0, 0)
    ids = ["ct_10000", "ct_10001", "t2w_10000", "t2w_10001", "t2w_10002", "mr_fs_10002", "solo"]
    m = pd.DataFrame({"domain": [i.rsplit("_", 1)[0] for i in ids], "case": ids, "class": "disc"})
    assert _results(metrics=m.assign(source="ct", arm="ref", seed=0, dice=0.5)).n_cases() == (7, 4)
    # the anatomy is what follows the last "_" (a domain may hold one), the whole id without any


def test_stat_reads_one_statistic_with_its_seeds():
    stats = _stats(("ct", "ref", "dice", "ood", 0.5, 0.4, 0.6, [(0, 0.45), (1, 0.55)]),
                   ("ct", "ref", "dice", "ood", 0.1, 0.0, 0.2, [(0, 0.05)], "disc"),
                   ("ct", "ref", "dice", "in_domain", 0.9, 0.8, 1.0, [(0, 0.9)]),
                   ("ct", "ref", "hd95", "ood", 3.0, 2.0, 4.0, []),
                   ("ct", "aug", "dice", "ood", 0.7, 0.6, 0.8, []),
                   ("t2w", "ref", "dice", "ood", 0.2, 0.1, 0.3, []))  # fmt: skip
    res = _results(stats=stats)
    assert res.stat("ct", "ref", "dice", "ood") == (0.5, 0.4, 0.6, [("0", 0.45), ("1", 0.55)])
    assert res.stat("ct", "ref", "dice", "ood", "disc") == (0.1, 0.0, 0.2, [("0", 0.05)])
    assert res.stat("ct", "ref", "hd95", "ood")[:3] == (3.0, 2.0, 4.0)
    mean, lo, hi, seeds = res.stat("ct", "ref", "dice", "ood", "canal")
    assert math.isnan(mean) and math.isnan(lo) and math.isnan(hi) and seeds == []
    only_seeds = _stats(("ct", "ref", "dice", "ood", 0.5, 0.4, 0.6, [(0, 0.45)]))
    res.stats = only_seeds[only_seeds["seed"] != "mean"]
    assert math.isnan(res.stat("ct", "ref", "dice", "ood")[0])  # no mean row: absent
    res.stats = None
    assert all(math.isnan(x) for x in res.stat("ct", "ref", "dice", "ood")[:3])


def test_difference_reads_the_pair_either_way_round():
    res = _h2h_results()
    assert res.difference("ct", "aug", "ref", "ood") == (-0.15, -0.25, -0.05)
    assert res.difference("ct", "ref", "aug", "ood") == (0.15, 0.05, 0.25)
    assert res.difference("t2w", "aug", "ref", "in_domain") == (0.01, -0.02, 0.04)
    assert all(math.isnan(x) for x in res.difference("ct", "aug", "ref", "in_domain"))
    assert all(math.isnan(x) for x in res.difference("t2w", MIX, "ref", "ood"))
    res.comparisons = res.comparisons[res.comparisons["seed"] != "mean"]
    assert all(math.isnan(x) for x in res.difference("t2w", "aug", "ref", "ood"))  # per-seed rows only
    res.comparisons = None
    assert all(math.isnan(x) for x in res.difference("t2w", "aug", "ref", "ood"))


def test_blocks_and_groups():
    res = _h2h_results()
    assert res.blocks() == [("t2w", "ref"), ("t2w", "aug"), ("ct", "ref"), ("ct", MIX), ("ct", "aug"),
                            ("all", "ref"), ("all", "aug")]  # fmt: skip
    assert res.groups() == [
        ("pooled over sources (arms that ran on every source)", [("all", "ref"), ("all", "aug")]),
        ("trained on ct (with the arms that ran on some sources only)", [("ct", "ref"), ("ct", MIX), ("ct", "aug")]),
    ]
    res.stats = res.stats[res.stats["source"] != "all"]
    assert res.groups() == [("trained on t2w", [("t2w", "ref"), ("t2w", "aug")]),
                            ("trained on ct", [("ct", "ref"), ("ct", MIX), ("ct", "aug")])]  # fmt: skip
    res.stats = res.stats[res.stats["source"] != "t2w"]
    assert res.groups() == [("trained on ct", [("ct", "ref"), ("ct", MIX), ("ct", "aug")])]
    res.stats = None
    assert res.blocks() == [] and res.groups() == []


def test_case_dice_and_cell_means_weigh_each_seed_equally():
    """Seed 0 has one case (classes 0.2 and 0.4: case Dice 0.3), seed 1 two (0.6 and 1.0): the cell mean is
    (0.3 + 0.8) / 2 = 0.55, not the mean over the three cases (0.633)."""
    rows = [("ct", "ref", 0, "t2w", "t2w_1", "vertebra", 0.2), ("ct", "ref", 0, "t2w", "t2w_1", "disc", 0.4),
            ("ct", "ref", 1, "t2w", "t2w_1", "vertebra", 0.6), ("ct", "ref", 1, "t2w", "t2w_1", "disc", 0.6),
            ("ct", "ref", 1, "t2w", "t2w_2", "vertebra", 1.0), ("ct", "ref", 1, "t2w", "t2w_2", "disc", 1.0),
            ("ct", "ref", 0, "ct", "ct_1", "vertebra", 0.9), ("ct", "aug", 0, "t2w", "t2w_1", "disc", 0.1)]  # fmt: skip
    m = pd.DataFrame(rows, columns=["source", "arm", "seed", "domain", "case", "class", "dice"])
    res = _results(metrics=m)
    case = res.case_dice()
    assert list(case.columns) == ["source", "arm", "seed", "domain", "case", "dice"]
    assert case["dice"].round(6).tolist() == [0.3, 0.6, 1.0, 0.9, 0.1]
    cell = res.cell_means()
    assert list(cell.columns) == ["source", "arm", "domain", "dice"]
    got = {(r.source, r.arm, r.domain): round(r.dice, 6) for r in cell.itertuples()}
    assert got == {("ct", "ref", "t2w"): 0.55, ("ct", "ref", "ct"): 0.9, ("ct", "aug", "t2w"): 0.1}


def test_targets_in_the_listed_order_then_as_seen():
    m = _metrics([("ct", "ref", 0)])
    m = pd.concat([m.assign(domain=d) for d in ("t2w", "zz", "ct", "t1w")], ignore_index=True)
    res = _results(metrics=m)
    assert res.targets() == ["t2w", "zz", "ct", "t1w"]
    res.domains = pd.DataFrame({"domain": ["ct", "t1w", "t2w", "mr-extra"], "family": ["ct", "mr", "mr", "mr"]})
    assert res.targets() == ["ct", "t1w", "t2w", "zz"]
    res.study["data"] = {"domains": ["t1w", "t2w"]}
    assert res.targets() == ["t1w", "t2w", "zz", "ct"]  # the study's list wins over domains.csv
    res.metrics = None
    assert res.targets() == []


def test_unusable_cells_from_grid_else_from_cells():
    res = _results()
    assert res.unusable_cells().empty and list(res.unusable_cells().columns) == ["source", "arm", "seed", "status"]
    res.cells = pd.DataFrame({"source": ["ct", "ct"], "arm": ["ref", "aug"], "seed": [0, 1], "commit": ["a", "b"],
                              "provenance": ["fresh", "no provenance"]})  # fmt: skip
    bad = res.unusable_cells()
    assert bad.to_dict("records") == [{"source": "ct", "arm": "aug", "seed": 1, "status": "no provenance"}]
    res.cells = res.cells.drop(columns="provenance")
    assert res.unusable_cells().empty
    res.grid = pd.DataFrame({"source": ["ct", "ct", "t2w"], "arm": ["ref", "aug", "ref"], "seed": [0, 0, 1],
                             "status": ["fresh", "missing", "stale: engine changed"]})  # fmt: skip
    bad = res.unusable_cells()
    assert list(bad.index) == [0, 1] and list(bad.columns) == ["source", "arm", "seed", "status"]
    assert bad[["arm", "status"]].values.tolist() == [["aug", "missing"], ["ref", "stale: engine changed"]]


def test_load_reads_what_is_there_and_leaves_the_rest_none(tmp_path):
    folder = tmp_path / "my-study"
    folder.mkdir()
    assert load(folder).name == "my-study" and load(folder).study == {} and load(folder).stats is None
    (folder / "study.json").write_text(json.dumps({"name": "named", "arms": ["ref"]}))
    (folder / "metrics.csv").write_text("source,arm,seed,domain,case,class,dice,hd95\n"
                                        "ct,ref,0,ct,ct_1,vertebra,0.5,\nct,ref,0,ct,ct_1,disc,0.25,2.5\n")
    (folder / "stats.csv").write_text("source,arm,measure,target,class,seed,value,ci_low,ci_high\n"
                                      "ct,ref,dice,ood,mean,mean,1,0,2\nct,ref,dice,ood,mean,0,3,,\n")
    (folder / "comparisons.csv").write_text("source,arm,versus,target,seed,value,ci_low,ci_high\n"
                                            "ct,ref,aug,ood,mean,0.5,0.25,0.75\nct,ref,aug,ood,0,0.5,,\n")
    (folder / "monitor.csv").write_text("source,arm,seed,iteration,domain,dice\n")
    (folder / "curves.csv").write_text("")
    (folder / "domains.csv").write_text("domain,family\nct,ct\n")
    res = load(folder)
    assert res.name == "named" and res.study["arms"] == ["ref"] and res.folder == folder
    assert res.monitor is None and res.curves is None and res.summary is None and res.grid is None
    assert res.cells is None
    assert res.families == {"ct": "ct"}
    assert res.metrics["hd95"].dtype == float and math.isnan(res.metrics["hd95"][0])
    assert res.metrics["hd95"][1] == 2.5
    assert res.stats["value"].dtype == float and res.stats["seed"].tolist() == ["mean", "0"]
    assert res.stat("ct", "ref", "dice", "ood") == (1.0, 0.0, 2.0, [("0", 3.0)])
    assert res.difference("ct", "aug", "ref", "ood") == (-0.5, -0.75, -0.25)
    (folder / "metrics.csv").write_text("source,arm,seed,domain,case,class,dice,hd95\n")
    (folder / "curves.csv").write_text("source,arm,seed,iteration,hd95\nct,ref,0,1,x\n")
    (folder / "monitor.csv").write_text("source,arm,seed,iteration,domain,dice,hd95\nct,ref,0,1,t2w,0.5,3\n")
    (folder / "summary.csv").write_text("source,arm,s_per_iteration\nct,ref,0.5\n")
    (folder / "cells.csv").write_text("source,arm,seed,commit,provenance\nct,ref,0,abc,fresh\n")
    (folder / "grid.csv").write_text("source,arm,seed,status\nct,ref,0,missing\n")
    res = load(folder)
    assert res.metrics is None and not res.has_results
    assert math.isnan(res.curves["hd95"][0]) and res.curves["hd95"].dtype == float
    assert res.monitor["dice"].tolist() == [0.5] and res.monitor["hd95"].dtype == float
    assert res.summary["s_per_iteration"].tolist() == [0.5] and res.commits == ["abc"]
    assert res.unusable_cells()["status"].tolist() == ["missing"]


def test_load_reads_seeds_as_text_even_without_a_mean_row(tmp_path):
    """Seeds key the per-seed rows as text (``"0"``, beside ``"mean"``), also in a file that holds no mean row."""
    (tmp_path / "stats.csv").write_text("source,arm,measure,target,class,seed,value,ci_low,ci_high\n"
                                        "ct,ref,dice,ood,mean,0,0.5,,\nct,ref,dice,ood,mean,1,0.25,,\n")
    (tmp_path / "comparisons.csv").write_text("source,arm,versus,target,seed,value,ci_low,ci_high\n"
                                              "ct,ref,aug,ood,0,0.5,,\n")
    res = load(tmp_path)
    assert res.stats["seed"].tolist() == ["0", "1"] and res.comparisons["seed"].tolist() == ["0"]
