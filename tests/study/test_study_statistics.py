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
    assert np.isnan(_get(st, "ct", "aug", "ood_gain_pct", "ood", seed="0"))  # the whole gain is n/a, not seed 0's
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="anatomies") == 0
    assert np.isnan(_get(st, "ct", "aug", "in_domain_change_pct", "in_domain"))
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


def _many_anatomies(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """One seed of each arm on ``ct``, tested on ``ct`` and ``t1w``: Dice ``values[arm][k]`` for anatomy ``k`` on
    t1w (every class), 0.5 on ct. Enough anatomies that the bootstrap interval depends on its seed and size."""
    rows = [("ct", arm, 0, dom, f"{dom}_{k}", cls, v[k] if dom == "t1w" else 0.5, 1.0)
            for arm, v in values.items() for dom in ("ct", "t1w") for k in range(len(v)) for cls in CLASSES]
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])


def test_domain_families_and_the_domain_table():
    assert S.domain_families(["ct", "t1w", "ct-lowdose", "scanner-x"]) == {
        "ct": "ct", "t1w": "mr", "ct-lowdose": "ct", "scanner-x": "other"}  # fmt: skip
    table = S.domain_table(["t2w", "ct", "scanner-x"])
    assert list(table.columns) == ["domain", "family"]
    assert table.values.tolist() == [["t2w", "mr"], ["ct", "ct"], ["scanner-x", "other"]]


def test_hierarchical_ci_with_one_seed_is_the_cluster_bootstrap_with_the_same_size_and_seed():
    values = np.random.default_rng(5).uniform(0.1, 0.9, 40)
    seeds, anatomies = np.zeros(40, int), np.arange(40)
    # defaults: 2000 replicates, generator seed 0 (those of bootstrap_ci)
    mean, lo, hi = S.hierarchical_ci(values, seeds, anatomies)
    assert (mean, lo, hi) == pytest.approx((values.mean(), *bootstrap_ci(values, anatomies)), abs=1e-12)
    # the given size and seed reach the bootstrap
    _, lo7, hi7 = S.hierarchical_ci(values, seeds, anatomies, n_boot=50, seed=7)
    assert (lo7, hi7) == pytest.approx(bootstrap_ci(values, anatomies, 50, seed=7), abs=1e-12)
    assert (lo7, hi7) != pytest.approx((lo, hi), abs=1e-12)


def test_seed_statistics_defaults_are_2000_replicates_with_generator_seed_0():
    values = np.random.default_rng(6).uniform(0.1, 0.9, 40)
    st = S.seed_statistics(_many_anatomies({"ref": values}), "ref", FAMILIES)
    anat = np.arange(40).astype(str)  # the anatomies as case ids name them
    lo, hi = bootstrap_ci(values, anat)
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_low") == pytest.approx(lo, abs=1e-12)
    assert _get(st, "ct", "ref", "dice", "ood", column="ci_high") == pytest.approx(hi, abs=1e-12)
    assert list(st.columns) == list(S.STATS_COLUMNS)


def test_seed_statistics_pass_their_bootstrap_size_and_seed_to_every_interval():
    values = np.random.default_rng(6).uniform(0.1, 0.9, 40)
    m = _many_anatomies({"ref": np.full(40, 0.5), "aug": values})
    anat = np.arange(40).astype(str)
    for kwargs, args in (({}, ()), ({"n_boot": 300, "seed": 7}, (300, 7))):
        st = S.seed_statistics(m, "ref", FAMILIES, **kwargs)
        lo, hi = bootstrap_ci(values, anat, *args[:1], **({"seed": args[1]} if args else {}))
        assert _get(st, "ct", "aug", "dice", "ood", column="ci_low") == pytest.approx(lo, abs=1e-12)
        assert _get(st, "ct", "aug", "dice", "ood", column="ci_high") == pytest.approx(hi, abs=1e-12)
        # the reference is 0.5 on every anatomy: a replicate's gain is 100 x (its mean / 0.5 - 1)
        assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="ci_low") == pytest.approx(200 * lo - 100)
        assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="ci_high") == pytest.approx(200 * hi - 100)
        assert _get(st, "ct", "aug", "ood_gain_pct", "ood", column="anatomies") == 40


def test_per_source_gain_averages_the_sources_of_each_seed():
    # (seed, group) means: groups are arm on ct, arm on t1w, reference on ct, reference on t1w
    means = np.array([[0.4, 0.6, 0.2, 0.6],    # seed 0: gains +100 %, 0 %: mean 50
                      [0.6, 0.9, 0.3, 0.6]])   # seed 1: gains +100 %, +50 %: mean 75
    stat = S._per_source_gain(2)
    assert stat(means) == pytest.approx([50.0, 75.0])
    np.testing.assert_allclose(stat(means[None]), [[50.0, 75.0]])  # a replicate axis in front


def test_rows_follow_the_given_arm_order_not_the_alphabet():
    m = _metrics({("ct", "alpha", 0): 0.4, ("ct", "zeta", 0): 0.6})
    st = S.seed_statistics(m, "alpha", FAMILIES, 20, arms=["zeta", "alpha"])
    assert list(dict.fromkeys(st["arm"])) == ["zeta", "alpha"]


def test_empty_metrics_and_absent_rows():
    empty = pd.DataFrame(columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])
    st = S.seed_statistics(empty, "ref", FAMILIES)
    assert st.empty and list(st.columns) == list(S.STATS_COLUMNS)
    st = _stats(_metrics({("ct", "ref", 0): 0.5}), n_boot=20)
    assert S.lookup(st, "ct", "ref", "dice", "nowhere") is None


def _domains(cells: dict[tuple[str, str, int], dict[str, float]], n: int = N_ANATOMIES, **extra) -> pd.DataFrame:
    """Rows of each (source, arm, seed) cell on its own test domains: ``{domain: Dice}`` (every anatomy and
    class)."""
    rows = [dict(source=src, arm=arm, seed=seed, domain=dom, case=f"{dom}_{10000 + k}", **{"class": cls},
                 dice=dice, hd95=1.0, **extra)
            for (src, arm, seed), doms in cells.items() for dom, dice in doms.items() for k in range(n)
            for cls in CLASSES]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_seed_without_rows_of_a_target_keeps_its_own_label():
    m = _metrics({("ct", "ref", 0): 0.2, ("ct", "ref", 1): 0.4, ("ct", "aug", 0): 0.3, ("ct", "aug", 1): 0.6})
    m = m[(m["seed"] == 1) | (m["domain"] == "ct")]  # seed 0 was only tested in-domain
    st = _stats(m, n_boot=50)
    assert np.isnan(_get(st, "ct", "aug", "dice", "ood", seed="0"))
    assert _get(st, "ct", "aug", "dice", "ood", seed="1") == pytest.approx(0.6)
    assert np.isnan(_get(st, "ct", "aug", "ood_gain_pct", "ood", seed="0"))
    assert _get(st, "ct", "aug", "ood_gain_pct", "ood", seed="1") == pytest.approx(50.0)


def test_a_target_without_rows_has_no_anatomies():
    st = _stats(_domains({("ct", "ref", 0): {"t1w": 0.5}}), n_boot=20)  # never tested on its own domain
    assert np.isnan(_get(st, "ct", "ref", "dice", "in_domain"))
    assert _get(st, "ct", "ref", "dice", "in_domain", column="anatomies") == 0


def test_family_targets_only_where_the_source_has_such_domains_and_only_the_mean_dice():
    st = _stats(_domains({("t1w", "ref", 0): {"t1w": 0.9, "t2w": 0.4}}), n_boot=20)
    assert S.lookup(st, "t1w", "ref", "dice", "ood_ct") is None  # no other ct domain tested
    assert _get(st, "t1w", "ref", "dice", "ood_mr") == pytest.approx(0.4)
    assert S.lookup(st, "t1w", "ref", "hd95", "ood_mr") is None
    assert S.lookup(st, "t1w", "ref", "dice", "ood_mr", cls="disc") is None
    assert _get(st, "t1w", "ref", "dice", "ood", cls="disc") == pytest.approx(0.4)


def test_a_domain_missing_from_the_families_counts_as_other():
    m = _domains({("ct", "ref", 0): {"ct": 0.9, "scanner-x": 0.2, "scanner-y": 0.6}})
    st = S.seed_statistics(m, "ref", {"ct": "ct", "scanner-x": "other"}, 20)
    assert _get(st, "ct", "ref", "dice", "ood_other") == pytest.approx(0.4)  # both scanners


def test_anatomy_keeps_the_series_index_and_splits_at_the_last_underscore():
    case = pd.Series(["my_site_7", "other_site_7", "my_site_8"], index=[5, 9, 2])
    domain = pd.Series(["my_site", "other_site", "elsewhere"], index=[5, 9, 2])
    got = S.anatomy(case, domain)
    assert got.to_dict() == {5: "7", 9: "7", 2: "elsewhere/my_site_8"}


def test_case_table_known_answers():
    m = _domains({("ct", "ref", 0): {"ct": 0.6}}, n=2)
    m["hd95"] = m["hd95"].astype(object)
    m.loc[m["class"] == "disc", "hd95"] = "3.0"  # metrics.csv text: a number, or empty when undefined
    m.loc[m["class"] == "canal", "hd95"] = ""
    m.loc[(m["class"] == "vertebra") & (m["case"] == "ct_10001"), "dice"] = 0.0  # a missed class counts 0
    extra = m[m["class"] == "vertebra"].assign(**{"class": "background", "dice": 1.0})  # not a foreground class
    m = pd.concat([m, extra, m.iloc[:1].assign(case="ct_10002")], ignore_index=True)  # ct_10002: one class only
    m["note"] = "text"  # a column that is not a measure
    case = S.case_table(m)
    assert list(case.columns) == ["source", "arm", "seed", "domain", "case", "dice_vertebra", "hd95_vertebra",
                                  "dice_disc", "hd95_disc", "dice_canal", "hd95_canal", "dice", "hd95", "anatomy",
                                  "in_domain"]  # fmt: skip
    assert case["case"].tolist() == ["ct_10000", "ct_10001"]  # the incomplete case is left out
    assert case["dice"].tolist() == pytest.approx([0.6, 0.4])
    assert case["hd95"].tolist() == pytest.approx([2.0, 2.0])  # (1 + 3) / 2: canal undefined
    # other class names (no vertebra/disc/canal at all): every class the rows have
    other = _domains({("ct", "ref", 0): {"ct": 0.6}}, n=1)
    other["class"] = other["class"].map({"vertebra": "a", "disc": "b", "canal": "c"})
    other.loc[other["class"] == "c", "dice"] = 0.0
    assert S.case_table(other)["dice"].tolist() == pytest.approx([0.4])


def test_small_cubes_and_missing_values():
    assert S.hierarchical_ci([0.5], [0], [0]) == pytest.approx((0.5, 0.5, 0.5))  # one row is a whole cube
    assert S.hierarchical_ci([0.2, None, 0.4], [0, 0, 0], [0, 1, 2])[0] == pytest.approx(0.3)  # None: missing
    sums, counts = S.cube(np.zeros(40, int), np.arange(40), np.random.default_rng(9).uniform(0, 1, 40))
    assert S.summarise(sums, counts)[1:] == S.summarise(sums, counts, n_boot=2000, seed=0)[1:]  # the defaults
    assert S.summarise(sums, counts)[2:] != S.summarise(sums, counts, n_boot=2000, seed=1)[2:]
    assert S.summarise(sums, counts)[2:] != S.summarise(sums, counts, n_boot=2001, seed=0)[2:]
