"""Seed-aware statistics on hand-built metrics whose right answers are known by construction.

Each fixture fixes Dice per (source, arm, seed, domain, anatomy, class), so the means, gains and intervals follow
by hand; the tests also pin which rows are grouped together (seeds, anatomies, target domains, classes): a swapped
grouping changes at least one of these answers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from spineaug.study import statistics as S
from spineaug.study.summary import bootstrap_ci, summary_markdown, summary_table

DOMAINS = ("ct", "ct-lowdose", "t1w", "t2w")
FAMILIES = {"ct": "ct", "ct-lowdose": "ct", "t1w": "mr", "t2w": "mr"}
CLASSES = ("vertebra", "disc", "canal")
N_ANATOMIES = 4
Value = Callable[[str, int, str], float]  # (domain, anatomy, class) -> Dice


def _metrics(cells: dict[tuple[str, str, int], float | Value], hd95: Value | None = None) -> pd.DataFrame:
    """Rows for every (source, arm, seed) cell: each domain x anatomy x class; a float is a constant Dice."""
    rows = []
    for (source, arm, seed), dice in cells.items():
        for domain in DOMAINS:
            for k in range(N_ANATOMIES):
                for cls in CLASSES:
                    d = dice(domain, k, cls) if callable(dice) else dice
                    h = hd95(domain, k, cls) if hd95 is not None else 1.0
                    rows.append((source, arm, seed, domain, f"{domain}_{10000 + k}", cls, d, h))
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])


def _stats(metrics: pd.DataFrame, reference: str = "ref", n_boot: int = 2000) -> pd.DataFrame:
    return S.seed_statistics(metrics, reference, FAMILIES, n_boot)


def _get(stats, source, arm, measure, target, cls=S.MEAN, seed=S.MEAN, column="value") -> float:
    row = S.lookup(stats, source, arm, measure, target, cls, seed)
    assert row is not None, (source, arm, measure, target, cls, seed)
    return float(row[column])


def test_two_seeds_mean_and_an_interval_spanning_both_seeds():
    m = _metrics({("ct", "ref", 0): 0.6, ("ct", "ref", 1): 0.8})
    st = _stats(m)
    assert _get(st, "ct", "ref", "dice", "ood") == pytest.approx(0.7)
    assert _get(st, "ct", "ref", "dice", "ood", seed="0") == pytest.approx(0.6)
    assert _get(st, "ct", "ref", "dice", "ood", seed="1") == pytest.approx(0.8)
    # replicates are {0.6, 0.7, 0.8} (seeds {0,0}, {0,1}, {1,1}): the interval is both seeds' values; resampling
    # anatomies as if they were the top level (a swapped grouping) would almost never draw seed 0 everywhere
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_low") == pytest.approx(0.6)
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_high") == pytest.approx(0.8)
    assert _get(st, "ct", "ref", "dice", "ood", column="seeds") == 2
    assert _get(st, "ct", "ref", "dice", "ood", column="anatomies") == N_ANATOMIES
    ood = m[m["domain"] != "ct"]
    mean, lo, hi = S.hierarchical_ci(ood["dice"], ood["seed"], ood["case"].str[-5:])
    assert (mean, lo, hi) == pytest.approx((0.7, 0.6, 0.8))


def test_one_seed_interval_is_the_anatomy_only_bootstrap():
    rng = np.random.default_rng(3)
    per_anatomy = rng.uniform(0.2, 0.9, N_ANATOMIES)
    noise = {(d, k, c): rng.normal(0, 0.02) for d in DOMAINS for k in range(N_ANATOMIES) for c in CLASSES}
    m = _metrics({("ct", "ref", 0): lambda d, k, c: per_anatomy[k] + noise[d, k, c]})
    st = _stats(m)
    ood = m[m["domain"] != "ct"].groupby(["domain", "case"], as_index=False)["dice"].mean()
    clusters = ood["case"].str[-5:].to_numpy()  # the anatomy, from the fixture's own construction
    lo, hi = bootstrap_ci(ood["dice"].to_numpy(), clusters, 2000, seed=0)
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_low") == pytest.approx(lo, abs=1e-12)
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_high") == pytest.approx(hi, abs=1e-12)
    # and clustering by anatomy matters: cases resampled independently give a clearly narrower interval
    naive = np.subtract(*bootstrap_ci(ood["dice"].to_numpy(), None, 2000)[::-1])
    assert hi - lo > 1.5 * naive


def test_a_missed_class_scores_zero_and_costs_the_case_a_third():
    def dice(domain, k, cls):
        return 0.0 if (domain, k, cls) == ("t1w", 2, "canal") else 0.9

    st = _stats(_metrics({("ct", "ref", 0): dice}))
    n_ood = 3 * N_ANATOMIES  # ct-lowdose, t1w, t2w
    assert _get(st, "ct", "ref", "dice", "ood", cls="canal") == pytest.approx((n_ood - 1) * 0.9 / n_ood)
    assert _get(st, "ct", "ref", "dice", "ood", cls="vertebra") == pytest.approx(0.9)
    assert _get(st, "ct", "ref", "dice", "ood") == pytest.approx(0.9 - 0.9 / 3 / n_ood)
    assert _get(st, "ct", "ref", "dice", "in_domain", cls="canal") == pytest.approx(0.9)


def test_hd95_averages_the_classes_where_it_is_defined():
    hd = {"vertebra": 2.0, "disc": 4.0, "canal": float("nan")}
    st = _stats(_metrics({("ct", "ref", 0): 0.5}, hd95=lambda d, k, c: hd[c] * (2 if d == "ct" else 1)))
    assert _get(st, "ct", "ref", "hd95", "ood") == pytest.approx(3.0)
    assert _get(st, "ct", "ref", "hd95", "in_domain") == pytest.approx(6.0)
    assert _get(st, "ct", "ref", "hd95", "ood", cls="disc") == pytest.approx(4.0)
    assert np.isnan(_get(st, "ct", "ref", "hd95", "ood", cls="canal"))


def test_gains_per_seed_against_the_same_seed_of_the_reference():
    m = _metrics({("ct", "ref", 0): lambda d, k, c: 0.9 if d == "ct" else 0.2,
                  ("ct", "ref", 1): lambda d, k, c: 0.9 if d == "ct" else 0.4,
                  ("ct", "aug", 0): lambda d, k, c: 0.9 if d == "ct" else 0.4,
                  ("ct", "aug", 1): lambda d, k, c: 0.9 if d == "ct" else 0.6})  # fmt: skip
    st = _stats(m)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", seed="0") == pytest.approx(100.0)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", seed="1") == pytest.approx(50.0)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood") == pytest.approx(75.0)  # not 0.5 / 0.3 - 1 = +66.7 %
    assert _get(st, "ct", "aug", "in_domain_change_pct", "in_domain") == pytest.approx(0.0)
    assert _get(st, "ct", "ref", "ood_gain_pct", "ood") == pytest.approx(0.0)
    # constant Dice per seed: replicates draw seed 1 twice (+50 %), both (+75 %) or seed 0 twice (+100 %)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="ci_low") == pytest.approx(50.0)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="ci_high") == pytest.approx(100.0)
    table = summary_table(m, _curves(m), "ref", 200, stats=st).set_index(["source", "arm"])
    assert table.loc[("ct", "aug"), "ood_gain_pct"] == pytest.approx(75.0)
    assert table.loc[("ct", "aug"), "ood_dice"] == pytest.approx(0.5)


def test_an_arm_with_seeds_the_reference_lacks_gets_no_gain():
    m = _metrics({("ct", "ref", 0): 0.2, ("ct", "ref", 1): 0.4, ("ct", "aug", 0): 0.4, ("ct", "aug", 2): 0.6,
                  ("ct", "one", 0): 0.3})  # fmt: skip
    st = _stats(m)
    assert np.isnan(_get(st, "ct", "aug", "ood_gain_pct", "ood"))
    assert np.isnan(_get(st, "ct", "aug", "ood_gain_pct", "ood", seed="2"))
    assert _get(st, "ct", "one", "ood_gain_pct", "ood") == pytest.approx(50.0)  # seed 0 only, against ref seed 0
    table = summary_table(m, _curves(m), "ref", 200, stats=st)
    text = summary_markdown(_Study(), table, stats=st)
    assert "| ct | aug | 2 |" in text and "| n/a % |" in text


def test_mean_of_per_source_gains_beside_the_pooled_gain():
    m = pd.concat([_metrics({("ct", "ref", 0): 0.2, ("ct", "aug", 0): 0.4}),
                   _metrics({("t1w", "ref", 0): 0.6, ("t1w", "aug", 0): 0.6})], ignore_index=True)  # fmt: skip
    st = _stats(m)
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood") == pytest.approx(100.0)
    assert _get(st, "t1w", "aug", "ood_gain_pct", "ood") == pytest.approx(0.0)
    assert _get(st, "all", "aug", "ood_gain_per_source_pct", "ood") == pytest.approx(50.0)  # the paper's
    assert _get(st, "all", "aug", "ood_gain_pct", "ood") == pytest.approx(100 * (0.5 / 0.4 - 1))  # pooled: +25 %
    table = summary_table(m, _curves(m), "ref", 200, stats=st).set_index(["source", "arm"])
    assert table.loc[("all", "aug"), "ood_gain_per_source_pct"] == pytest.approx(50.0)
    assert table.loc[("all", "aug"), "ood_gain_pct"] == pytest.approx(25.0)


def test_family_means_split_the_other_domains_by_modality():
    by_domain = {"ct": 0.95, "ct-lowdose": 0.7, "t1w": 0.3, "t2w": 0.5}
    st = _stats(_metrics({("ct", "ref", 0): lambda d, k, c: by_domain[d], ("t1w", "ref", 0): 0.5}))
    assert _get(st, "ct", "ref", "dice", "ood_ct") == pytest.approx(0.7)  # ct-lowdose only: ct is in-domain
    assert _get(st, "ct", "ref", "dice", "ood_mr") == pytest.approx(0.4)
    assert _get(st, "ct", "ref", "dice", "ood") == pytest.approx(0.5)
    assert _get(st, "ct", "ref", "dice", "in_domain") == pytest.approx(0.95)


def test_pooled_rows_only_for_arms_on_every_source():
    m = _metrics({("ct", "ref", 0): 0.2, ("t1w", "ref", 0): 0.4, ("ct", "cpu", 0): 0.3,
                  ("ct", "aug", 0): 0.5, ("ct", "aug", 1): 0.5, ("t1w", "aug", 0): 0.5})  # fmt: skip
    st = _stats(m)
    pooled = set(st[st["source"] == S.ALL]["arm"])
    assert pooled == {"ref"}  # cpu: ct only; aug: seed 1 on ct only (an incomplete grid is not pooled)
    assert _get(st, "all", "ref", "dice", "ood") == pytest.approx(0.3)
    assert _get(st, "ct", "cpu", "ood_gain_pct", "ood") == pytest.approx(50.0)


def test_a_partial_run_pools_no_arm_until_it_reached_every_study_source():
    m = _metrics({("ct", "ref", 0): 0.2, ("t1w", "ref", 0): 0.4})  # the study also trains on t2w: not there yet
    assert set(_stats(m)["source"]) == {"ct", "t1w", S.ALL}  # the sources present, by default
    st = S.seed_statistics(m, "ref", FAMILIES, 200, sources=["ct", "t1w", "t2w"])
    assert set(st["source"]) == {"ct", "t1w"}


def test_anatomies_are_resampled_together_across_sources_and_domains():
    """Pooled rows resample an anatomy in every source and domain at once (phantom anatomies are shared)."""
    per_anatomy = np.array([0.1, 0.3, 0.6, 0.9])
    m = _metrics({("ct", "ref", 0): lambda d, k, c: per_anatomy[k], ("t1w", "ref", 0): lambda d, k, c: per_anatomy[k]})
    st = _stats(m)
    lo, hi = bootstrap_ci(per_anatomy, np.arange(N_ANATOMIES), 2000, seed=0)
    assert _get(st, "all", "ref", "dice", "ood", column="ci_low") == pytest.approx(lo)
    assert _get(st, "all", "ref", "dice", "ood", column="ci_high") == pytest.approx(hi)


def test_deterministic():
    m = _metrics({("ct", "ref", 0): lambda d, k, c: 0.1 * k + 0.05 * len(d), ("ct", "ref", 1): 0.5})
    pd.testing.assert_frame_equal(_stats(m, n_boot=300), _stats(m, n_boot=300))


class _Study:
    name = "fixture"
    description = "hand-built"
    reference_arm = "ref"


def _curves(metrics: pd.DataFrame) -> pd.DataFrame:
    cells = metrics[["source", "arm", "seed"]].drop_duplicates()
    rows = [(s, a, e, it, 1.0, 0.01, 0.1, 0.5, np.nan, it) for s, a, e in cells.itertuples(index=False)
            for it in range(1, 41)]  # fmt: skip
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "iteration", "loss", "data_s", "augment_s",
                                       "network_s", "val_dice", "elapsed_s"])  # fmt: skip
