"""The study's headline numbers on hand-made metrics: gains, pooled rows, the anatomy-level bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineaug.study.summary import anatomy, bootstrap_ci, summary_table

DOMAINS = ("ct", "t1w", "t2w")


def _metrics(dice: dict[tuple[str, str], float], n_cases: int = 4) -> pd.DataFrame:
    rows = []
    for (source, arm), value in dice.items():
        for domain in DOMAINS:
            for k in range(n_cases):
                d = value if domain != source else 0.9
                for cls in ("vertebra", "disc", "canal"):
                    rows.append((source, arm, 0, domain, f"{domain}_{10000 + k:05d}", cls, d + 0.01 * k, 1.0))
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "domain", "case", "class", "dice", "hd95"])


def _curves(metrics: pd.DataFrame) -> pd.DataFrame:
    cells = metrics[["source", "arm", "seed"]].drop_duplicates()
    rows = [(s, a, e, it, 1.0, 0.01, 0.1 if a != "none" else 0.0, 0.5, np.nan, it) for s, a, e in
            cells.itertuples(index=False) for it in range(1, 41)]  # fmt: skip
    return pd.DataFrame(rows, columns=["source", "arm", "seed", "iteration", "loss", "data_s", "augment_s",
                                       "network_s", "val_dice", "elapsed_s"])  # fmt: skip


def test_gain_and_in_domain_change_against_the_reference():
    m = _metrics({("ct", "nnunet"): 0.2, ("ct", "xdomain"): 0.5, ("t2w", "nnunet"): 0.4, ("t2w", "xdomain"): 0.6})
    t = summary_table(m, _curves(m), "nnunet", 200).set_index(["source", "arm"])
    ood = lambda v: v + 0.015  # noqa: E731 - mean of the +0.01 k offsets, k = 0..3
    assert t.loc[("ct", "xdomain"), "ood_gain_pct"] == pytest.approx(100 * (ood(0.5) / ood(0.2) - 1))
    assert t.loc[("ct", "xdomain"), "in_domain_change_pct"] == pytest.approx(0.0)
    assert t.loc[("all", "xdomain"), "ood_dice"] == pytest.approx((ood(0.5) + ood(0.6)) / 2)
    assert t.loc[("ct", "nnunet"), "s_per_iteration"] == pytest.approx(0.61)


def test_an_arm_on_some_sources_only_is_shown_on_them_never_pooled():
    m = _metrics({("ct", "nnunet"): 0.2, ("t2w", "nnunet"): 0.6, ("ct", "bgv2-nnunet"): 0.2})
    t = summary_table(m, _curves(m), "nnunet", 200).set_index(["source", "arm"])
    assert t.loc[("ct", "bgv2-nnunet"), "ood_gain_pct"] == pytest.approx(0.0)  # vs nnunet on ct
    assert ("all", "nnunet") in t.index and ("all", "bgv2-nnunet") not in t.index


def test_bootstrap_resamples_anatomies():
    cases = pd.Series(["ct_10000", "t1w_10000", "ct_10001", "t1w_10001"])
    domains = pd.Series(["ct", "t1w", "ct", "t1w"])
    assert anatomy(cases, domains).tolist() == ["10000", "10000", "10001", "10001"]
    assert anatomy(pd.Series(["sub-01"]), pd.Series(["verse"])).tolist() == ["verse/sub-01"]
    rng = np.random.default_rng(0)
    per_anatomy = rng.normal(0.5, 0.2, 6)
    values = np.repeat(per_anatomy, 9) + rng.normal(0, 0.01, 54)  # 6 anatomies x 9 domains, strongly correlated
    clusters = np.repeat(np.arange(6), 9)
    naive = np.subtract(*bootstrap_ci(values, None, 2000)[::-1])
    paired = np.subtract(*bootstrap_ci(values, clusters, 2000)[::-1])
    assert paired > 2 * naive  # treating 54 correlated rows as independent understates the spread
