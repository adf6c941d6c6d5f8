"""Head-to-head comparisons of arms (``comparisons.csv``): paired Dice differences against known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineaug.study import statistics, summary
from spineaug.study.statistics import comparisons, difference, verdict

CLASSES = statistics.CLASSES
DOMAINS = ("ct", "t1w", "t2w")


def _metrics(arms: dict[str, dict], sources=("ct", "t1w"), anatomies=4, seed=0) -> pd.DataFrame:
    """Rows of ``metrics.csv``; each arm: ``{"seeds": [...], "shift": f(source, domain, seed) -> Dice points}``
    (and optionally its own ``"sources"``).

    Every arm shares the same random baseline Dice per (source, seed, domain, anatomy, class), so an arm's
    difference to another is exactly the difference of their shifts, whatever the baseline: the comparison is
    paired, and its interval collapses onto the shift when the shift is constant.
    """
    rng = np.random.default_rng(seed)
    base = {}
    rows = []
    for arm, spec in arms.items():
        for src in spec.get("sources", sources):
            for s in spec["seeds"]:
                for dom in DOMAINS:
                    for a in range(anatomies):
                        for cls in CLASSES:
                            key = (src, s, dom, a, cls)
                            if key not in base:
                                base[key] = rng.uniform(0.2, 0.7)
                            dice = base[key] + spec["shift"](src, dom, s)
                            rows.append({"source": src, "arm": arm, "seed": s, "domain": dom, "case": f"{dom}_{a}",
                                         "class": cls, "dice": dice, "hd95": 1.0})  # fmt: skip
    return pd.DataFrame(rows)


def _row(table, source, arm, versus, target, seed="mean"):
    sel = table[(table["source"] == source) & (table["arm"] == arm) & (table["versus"] == versus)
                & (table["target"] == target) & (table["seed"].astype(str) == seed)]  # fmt: skip
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_a_constant_shift_is_found_exactly_in_and_out_of_domain():
    shift = lambda src, dom, s: -0.05 if dom == src else 0.10  # noqa: E731
    m = _metrics({"weak": {"seeds": [0, 1], "shift": lambda *a: 0.0}, "strong": {"seeds": [0, 1], "shift": shift}})
    table = comparisons(m, n_boot=300, arms=["weak", "strong"], sources=["ct", "t1w"])
    for src in ("ct", "t1w", "all"):
        ind, ood = _row(table, src, "strong", "weak", "in_domain"), _row(table, src, "strong", "weak", "ood")
        # paired: the baseline cancels in every replicate, so the interval is the shift itself
        assert ind["value"] == pytest.approx(-0.05) and ind["ci_low"] == pytest.approx(-0.05)
        assert ind["ci_high"] == pytest.approx(-0.05)
        assert ood["value"] == pytest.approx(0.10) and ood["ci_low"] == pytest.approx(0.10)
        assert ood["seeds"] == 2 and ood["anatomies"] == 4
        for s in ("0", "1"):
            assert _row(table, src, "strong", "weak", "ood", s)["value"] == pytest.approx(0.10)
    # each pair is stored once, versus the arm that comes first in the study's order
    assert table[(table["arm"] == "weak")].empty


def test_the_seed_level_spreads_the_interval_over_the_seeds_disagreement():
    shift = lambda src, dom, s: 0.1 if s == 0 else 0.3  # noqa: E731
    m = _metrics({"a": {"seeds": [0, 1], "shift": lambda *a: 0.0}, "b": {"seeds": [0, 1], "shift": shift}},
                 sources=("ct",))  # fmt: skip
    r = _row(comparisons(m, n_boot=2000, arms=["a", "b"]), "ct", "b", "a", "ood")
    # per seed 0.1 and 0.3; the mean 0.2; a replicate holds {0,0}, {0,1} or {1,1}: the interval is [0.1, 0.3]
    assert r["value"] == pytest.approx(0.2)
    assert r["ci_low"] == pytest.approx(0.1) and r["ci_high"] == pytest.approx(0.3)


def test_only_shared_seeds_are_compared_and_all_needs_every_source():
    m = _metrics({"ref": {"seeds": [0, 1], "shift": lambda *a: 0.0},
                  "single": {"seeds": [1], "shift": lambda src, dom, s: 0.2}})  # fmt: skip
    ct_only = _metrics({"ct-arm": {"seeds": [0, 1], "shift": lambda *a: 0.0}}, sources=("ct",))
    table = comparisons(pd.concat([m, ct_only]), n_boot=200, arms=["ref", "single", "ct-arm"], sources=["ct", "t1w"])
    r = _row(table, "all", "single", "ref", "ood")
    assert r["seeds"] == 1 and r["value"] == pytest.approx(0.2)
    assert set(table[table["arm"] == "single"]["seed"]) == {"mean", "1"}
    assert table[(table["arm"] == "ct-arm") & (table["source"] == "all")].empty  # ct-arm never ran on t1w
    assert not table[(table["arm"] == "ct-arm") & (table["source"] == "ct")].empty


def test_difference_reads_either_direction_and_verdicts():
    shift = lambda src, dom, s: 0.05 if dom != src else -0.2  # noqa: E731
    m = _metrics({"x": {"seeds": [0], "shift": lambda *a: 0.0}, "y": {"seeds": [0], "shift": shift}})
    table = comparisons(m, n_boot=200, arms=["x", "y"])
    assert difference(table, "ct", "y", "x", "ood") == pytest.approx((0.05, 0.05, 0.05))
    assert difference(table, "ct", "x", "y", "in_domain") == pytest.approx((0.2, 0.2, 0.2))
    assert np.isnan(difference(table, "ct", "x", "nope", "ood")[0])
    assert verdict(0.01, 0.2) == "better" and verdict(-0.3, -0.01) == "worse"
    assert verdict(-0.01, 0.02) == "no clear difference" and verdict(float("nan"), 1.0) == "n/a"


def test_a_single_source_study_has_no_pooled_rows():
    m = _metrics({"a": {"seeds": [0], "shift": lambda *a: 0.0}, "b": {"seeds": [0], "shift": lambda *a: 0.1}},
                 sources=("ct",))  # fmt: skip
    pairs = comparisons(m, n_boot=100, arms=["a", "b"], sources=["ct"])
    assert set(pairs["source"]) == {"ct"}
    stats = statistics.seed_statistics(m, "a", statistics.domain_families(DOMAINS), n_boot=100, sources=["ct"])
    assert set(stats["source"]) == {"ct"}


def test_pooled_rows_need_every_study_source_not_only_those_that_ran():
    m = _metrics({"a": {"seeds": [0], "shift": lambda *a: 0.0}, "b": {"seeds": [0], "shift": lambda *a: 0.1}})
    partial = comparisons(m, n_boot=100, arms=["a", "b"], sources=["ct", "t1w", "t2w"])  # t2w not run yet
    assert "all" not in set(partial["source"]) and {"ct", "t1w"} <= set(partial["source"])
    assert "all" in set(comparisons(m, n_boot=100, arms=["a", "b"], sources=["ct", "t1w"])["source"])


def test_a_pair_missing_on_one_source_is_still_compared_on_the_others():
    m = _metrics({"ref": {"seeds": [0], "shift": lambda *a: 0.0},
                  "late": {"seeds": [0], "shift": lambda *a: 0.25, "sources": ("t1w",)}})  # fmt: skip
    pairs = comparisons(m, n_boot=100, arms=["ref", "late"], sources=["ct", "t1w"])
    # no shared seeds on ct (the first source): that block is skipped, t1w is still compared
    assert _row(pairs, "t1w", "late", "ref", "ood")["value"] == pytest.approx(0.25)
    assert pairs[pairs["source"] == "ct"].empty


def test_an_interval_that_touches_zero_is_no_clear_difference():
    assert verdict(0.0, 0.2) == "no clear difference" and verdict(-0.2, 0.0) == "no clear difference"
    assert verdict(1e-9, 0.2) == "better" and verdict(-0.2, -1e-9) == "worse"


def test_real_data_cases_are_each_their_own_anatomy():
    case = pd.Series(["ct_10003", "ct-lowdose_10003", "sub-01_T1w", "case_0007"])
    domain = pd.Series(["ct", "ct-lowdose", "mri", "ct"])
    # phantom ids "<domain>_<seed>" pair across domains; other ids are one anatomy per domain and case
    assert statistics.anatomy(case, domain).tolist() == ["10003", "10003", "mri/sub-01_T1w", "ct/case_0007"]


def _paired(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Arms ``x`` and ``y``, one seed on ``ct``: Dice of anatomy ``k`` on t1w is ``x[k]`` / ``y[k]`` (every
    class)."""
    rows = [{"source": "ct", "arm": arm, "seed": 0, "domain": dom, "case": f"{dom}_{k}", "class": cls,
             "dice": v[k] if dom == "t1w" else 0.5, "hd95": 1.0}
            for arm, v in (("x", x), ("y", y)) for dom in ("ct", "t1w") for k in range(len(v)) for cls in CLASSES]
    return pd.DataFrame(rows)


def test_one_seed_comparison_is_the_cluster_bootstrap_of_the_per_anatomy_differences():
    rng = np.random.default_rng(8)
    x, y = rng.uniform(0.2, 0.8, 40), rng.uniform(0.2, 0.8, 40)
    m, anat = _paired(x, y), np.arange(40).astype(str)  # the anatomies as case ids name them
    # defaults: 2000 replicates, generator seed 0 (those of bootstrap_ci)
    r = _row(comparisons(m, arms=["x", "y"]), "ct", "y", "x", "ood")
    lo, hi = summary.bootstrap_ci(y - x, anat)
    assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx(((y - x).mean(), lo, hi), abs=1e-12)
    # the given size and seed reach the bootstrap
    r7 = _row(comparisons(m, n_boot=300, seed=7, arms=["x", "y"]), "ct", "y", "x", "ood")
    lo7, hi7 = summary.bootstrap_ci(y - x, anat, 300, seed=7)
    assert (r7["ci_low"], r7["ci_high"]) == pytest.approx((lo7, hi7), abs=1e-12)
    assert (lo7, hi7) != pytest.approx((lo, hi), abs=1e-12)


def test_a_seed_without_rows_of_a_target_keeps_its_own_label():
    m = _metrics({"a": {"seeds": [0, 1], "shift": lambda *a: 0.0}, "b": {"seeds": [0, 1], "shift": lambda *a: 0.1}},
                 sources=("ct",))  # fmt: skip
    m = m[(m["seed"] == 1) | (m["domain"] == "ct")]  # seed 0 was only tested in-domain
    table = comparisons(m, n_boot=50, arms=["a", "b"], sources=["ct"])
    assert _row(table, "ct", "b", "a", "ood", seed="1")["value"] == pytest.approx(0.1)
    assert np.isnan(_row(table, "ct", "b", "a", "ood", seed="0")["value"])
    assert _row(table, "ct", "b", "a", "in_domain", seed="0")["value"] == pytest.approx(0.1)


def test_empty_or_pairless_metrics_give_an_empty_table_with_the_columns():
    m = _metrics({"a": {"seeds": [0], "shift": lambda *a: 0.0}})
    for metrics in (m.iloc[:0], m):  # no rows; one arm: no pair
        table = comparisons(metrics, n_boot=20)
        assert table.empty and list(table.columns) == list(statistics._schema.STUDY_COMPARISON_COLUMNS)
    assert statistics._common_seeds(m[["source", "arm", "seed"]], [], ["ct"]) == []


def test_difference_picks_its_own_source_and_pair_and_is_nan_without_a_table():
    head = dict(target="ood", seed="mean", seeds=1, anatomies=4)
    table = pd.DataFrame([dict(head, source="ct", arm="c", versus="b", value=9.0, ci_low=8.0, ci_high=10.0),
                          dict(head, source="t1w", arm="c", versus="a", value=2.0, ci_low=1.0, ci_high=3.0),
                          dict(head, source="t1w", arm="c", versus="b", value=3.0, ci_low=2.5, ci_high=3.5)])
    assert difference(table, "t1w", "c", "b", "ood") == (3.0, 2.5, 3.5)
    assert difference(table, "t1w", "b", "c", "ood") == (-3.0, -3.5, -2.5)
    for missing in (None, table.iloc[:0]):
        got = difference(missing, "t1w", "c", "b", "ood")
        assert len(got) == 3 and np.isnan(got).all()
