"""Seed-aware statistics of a study: means over training seeds with intervals that include the seed variation.

Every number is computed per *seed* first and then summarised over seeds, so a seed counts once however many test
rows it has, and a gain compares an arm's seed ``s`` with the reference arm's seed ``s`` (never a pooled seed mix).

The interval is a **two-level (hierarchical) percentile bootstrap**, 95 %: each replicate draws the seeds with
replacement (as many as there are), then, within each drawn seed, the test *anatomies* with replacement (the
phantom renders the same anatomies in every domain, so the rows of one anatomy, across target domains, classes and
pooled sources, are resampled together: the cluster bootstrap; on pooled rows a drawn seed brings every source's
model trained with that seed). The replicate's statistic is the mean over the drawn seeds of the per-seed
statistic; the interval is its 2.5th and 97.5th percentiles. Target domains are fixed, not resampled. With one seed
the interval is the anatomy-only cluster bootstrap; with two seeds the seed level can only draw {a, a}, {a, b} or
{b, b}, so it is coarse: it shows whether the seeds disagree, not a calibrated between-seed spread. Each statistic
uses its own generator seeded with ``seed`` (default 0): the result does not depend on the order statistics are
computed in.

Measures (:func:`seed_statistics`, written to ``stats.csv``; one row per source x arm x measure x target x class x
seed, ``seed = "mean"`` holding the mean over seeds and the interval):

- ``dice``: mean foreground Dice of a case (the mean over vertebra, disc and canal; a missed class counts 0), or
  one class's Dice; targets ``in_domain``, ``ood`` (every other domain) and ``ood_<family>`` (the other domains
  of one modality family, e.g. ``ood_ct``, ``ood_mr``).
- ``hd95``: 95th-percentile Hausdorff distance in mm, mean over the classes where it is defined.
- ``ood_gain_pct`` / ``in_domain_change_pct``: per seed, 100 x (arm mean / reference mean - 1) on the same source(s)
  and the same seed; ``n/a`` (NaN) when the reference lacks one of the arm's seeds or sources. On ``all`` rows this
  is the gain of the pooled means (the ratio of the means over every source's rows);
  ``ood_gain_per_source_pct`` is the paper's definition: the mean over sources of each source's gain.

``source = "all"`` rows pool the sources, and only arms that ran on every source with the same seeds appear there
(an arm restricted to some sources is shown on its own sources only). The input is the fresh-only ``metrics.csv``
that :func:`spineaug.study.summary.summarize` pools: stale cells never reach these numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from spineaug import _schema
from spineaug.phantom import DOMAINS

CLASSES = ("vertebra", "disc", "canal")
"""The task's foreground classes, in label order."""
STATS_COLUMNS = _schema.STUDY_STATS_COLUMNS
MEAN = "mean"
"""``seed`` of the row that holds the mean over seeds and the interval (``class`` of the row over all classes)."""
ALL = "all"
"""``source`` of the rows that pool the sources."""


# ---------------------------------------------------------------------------------------------- domains


def domain_families(domains: Sequence[str]) -> dict[str, str]:
    """Each domain's modality family (``ct`` or ``mr``) from :data:`spineaug.phantom.DOMAINS`; others ``other``."""
    return {d: (DOMAINS[d].modality if d in DOMAINS else "other") for d in domains}


def domain_table(domains: Sequence[str]) -> pd.DataFrame:
    """``domains.csv``: one row per domain of the study, with its family (so the report needs no phantom)."""
    fam = domain_families(domains)
    return pd.DataFrame({"domain": list(fam), "family": list(fam.values())}, columns=list(_schema.STUDY_DOMAIN_COLUMNS))


# ---------------------------------------------------------------------------------------------- cases


def anatomy(case: pd.Series, domain: pd.Series) -> pd.Series:
    """The anatomy a test case shows: ``<domain>_<seed>`` (phantom, paired across domains) -> the seed; real
    data (other case ids) -> domain and case, each its own anatomy."""
    case, domain = case.astype(str), domain.astype(str)
    prefix = domain + "_"
    paired = pd.Series([c.startswith(p) for c, p in zip(case, prefix)], index=case.index)
    return case.where(~paired, case.str.rsplit("_", n=1).str[-1]).where(paired, domain + "/" + case)


def case_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x domain x case: ``dice``/``hd95`` (means over classes) and ``dice_<class>``/``hd95_<class>``.

    ``hd95`` averages the classes where it is defined (NaN when none is); ``dice`` averages all three classes.
    Also ``anatomy`` (:func:`anatomy`) and ``in_domain`` (the case's domain is the cell's source).
    """
    keys = ["source", "arm", "seed", "domain", "case"]
    m = metrics.copy()
    m["hd95"] = pd.to_numeric(m["hd95"], errors="coerce")
    wide = m.pivot_table(index=keys, columns="class", values=["dice", "hd95"], aggfunc="mean", dropna=False)
    out = pd.DataFrame(index=wide.index)
    classes = [c for c in CLASSES if ("dice", c) in wide.columns] or sorted(m["class"].unique())
    for c in classes:
        out[f"dice_{c}"] = wide[("dice", c)]
        out[f"hd95_{c}"] = wide[("hd95", c)] if ("hd95", c) in wide.columns else np.nan
    out["dice"] = out[[f"dice_{c}" for c in classes]].mean(axis=1, skipna=False)
    out["hd95"] = out[[f"hd95_{c}" for c in classes]].mean(axis=1, skipna=True)
    out = out.reset_index()
    out = out.dropna(subset=["dice"]).reset_index(drop=True)  # a case missing a class row is incomplete
    out["anatomy"] = anatomy(out["case"], out["domain"])
    out["in_domain"] = out["source"] == out["domain"]
    return out


# ---------------------------------------------------------------------------------------------- the bootstrap


def cube(seeds: np.ndarray, anatomies: np.ndarray, values: np.ndarray, groups: np.ndarray | None = None,
         n_groups: int = 1, seed_order: Sequence | None = None):  # fmt: skip
    """Sums and counts of ``values`` per seed x anatomy x group: arrays of shape (S, A, G); NaN values left out.

    Args:
        seeds, anatomies: Each row's training seed and test anatomy (anatomies are clusters: resampled whole).
        groups: Each row's group index in ``range(n_groups)`` (e.g. arm vs reference, or one per source).
        seed_order: The seeds, in the order of the first axis (default: the sorted distinct seeds).
    """
    values = np.asarray(values, dtype=float)
    ok = ~np.isnan(values)
    seeds, anatomies, values = np.asarray(seeds)[ok], np.asarray(anatomies)[ok], values[ok]
    groups = np.zeros(len(values), dtype=int) if groups is None else np.asarray(groups)[ok]
    keys = np.unique(seeds) if seed_order is None else np.asarray(seed_order)
    where = {k: i for i, k in enumerate(keys.tolist())}
    s = np.array([where[k] for k in seeds.tolist()], dtype=int)
    _, a = np.unique(anatomies, return_inverse=True)
    n_anat = int(a.max()) + 1 if len(a) else 0
    sums = np.zeros((len(keys), n_anat, n_groups))
    counts = np.zeros_like(sums)
    np.add.at(sums, (s, a, groups), values)
    np.add.at(counts, (s, a, groups), 1.0)
    return sums, counts


def resample(sums: np.ndarray, counts: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """Per-seed group means of ``n_boot`` two-level bootstrap replicates: shape (n_boot, S, G).

    A replicate draws S seeds with replacement, then, for each drawn seed, A anatomies with replacement (the
    anatomy draws are made first, so with one seed this is exactly the anatomy-only cluster bootstrap of
    :func:`spineaug.study.summary.bootstrap_ci` with the same ``seed``). A drawn anatomy with no rows in a group
    adds nothing to that group's mean (NaN when the group gets no rows at all).
    """
    n_seeds, n_anat, _ = sums.shape
    rng = np.random.default_rng(seed)
    anat = rng.integers(0, n_anat, (n_boot, n_seeds, n_anat))
    pick = rng.integers(0, n_seeds, (n_boot, n_seeds))
    s = pick[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[s, anat].sum(axis=2) / counts[s, anat].sum(axis=2)


Statistic = Callable[[np.ndarray], np.ndarray]
"""Per-seed group means (..., S, G) -> the per-seed statistic (..., S)."""


def _first(means: np.ndarray) -> np.ndarray:
    return means[..., 0]


def summarise(sums: np.ndarray, counts: np.ndarray, statistic: Statistic = _first, n_boot: int = 2000,
              seed: int = 0) -> tuple[np.ndarray, float, float, float]:  # fmt: skip
    """The per-seed values, their mean over seeds, and the two-level 95 % bootstrap interval of that mean.

    Returns:
        ``(per_seed (S,), mean, ci_low, ci_high)``; NaN where undefined.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = statistic(sums.sum(axis=1) / counts.sum(axis=1))
    if sums.size == 0 or np.isnan(per_seed).all():
        return per_seed, float("nan"), float("nan"), float("nan")
    reps = statistic(resample(sums, counts, n_boot, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates (a group without rows)
        boot = np.nanmean(reps, axis=1)
        lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if not np.isnan(boot).all() else (np.nan, np.nan)
    return per_seed, float(np.mean(per_seed)), float(lo), float(hi)


def hierarchical_ci(values, seeds, anatomies, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of the per-seed mean of ``values``, with its two-level 95 % bootstrap interval.

    Returns:
        ``(mean, ci_low, ci_high)``.
    """
    sums, counts = cube(seeds, anatomies, values)
    _, mean, lo, hi = summarise(sums, counts, n_boot=n_boot, seed=seed)
    return mean, lo, hi


def _gain(means: np.ndarray) -> np.ndarray:
    return 100.0 * (means[..., 0] / means[..., 1] - 1.0)


def _per_source_gain(n_sources: int) -> Statistic:
    def statistic(means: np.ndarray) -> np.ndarray:
        arm, ref = means[..., :n_sources], means[..., n_sources:]
        return np.mean(100.0 * (arm / ref - 1.0), axis=-1)

    return statistic


# ---------------------------------------------------------------------------------------------- the table


def _targets(case: pd.DataFrame, families: Mapping[str, str]) -> dict[str, np.ndarray]:
    ood = ~case["in_domain"].to_numpy()
    fam = case["domain"].map(lambda d: families.get(d, "other")).to_numpy()
    out = {"in_domain": ~ood, "ood": ood}
    for f in dict.fromkeys(families.values()):
        out[f"ood_{f}"] = ood & (fam == f)
    return out


def _blocks(case: pd.DataFrame, study_sources: Sequence[str] | None = None) -> list[tuple[str, str, list[str], list]]:
    """(source label, arm, sources, seeds) for every row block; ``all`` only for arms on every source, same seeds.

    ``study_sources``: the sources of the study; an ``all`` row needs all of them (a partial run whose arm has not
    reached every source yet gets none), by default the sources present in ``case``.
    """
    sources = sorted(study_sources) if study_sources is not None else sorted(case["source"].unique())
    arms = list(dict.fromkeys(case["arm"]))
    grid = case[["source", "arm", "seed"]].drop_duplicates()
    out = []
    for src in sorted(case["source"].unique()):
        for arm in arms:
            seeds = sorted(grid[(grid["source"] == src) & (grid["arm"] == arm)]["seed"].unique().tolist())
            if seeds:
                out.append((src, arm, [src], seeds))
    if len(sources) > 1:
        for arm in arms:
            per = [set(grid[(grid["source"] == s) & (grid["arm"] == arm)]["seed"]) for s in sources]
            if per[0] and all(p == per[0] for p in per):
                out.append((ALL, arm, sources, sorted(per[0])))
    return out


def _rows(src, arm, measure, target, cls, seeds, per_seed, mean, lo, hi, n_anat) -> list[dict]:
    base = {"source": src, "arm": arm, "measure": measure, "target": target, "class": cls,
            "seeds": len(seeds), "anatomies": n_anat}  # fmt: skip
    rows = [{**base, "seed": MEAN, "value": mean, "ci_low": lo, "ci_high": hi}]
    for s, v in zip(seeds, per_seed):
        rows.append({**base, "seed": str(s), "value": float(v), "ci_low": np.nan, "ci_high": np.nan})
    return rows


def seed_statistics(metrics: pd.DataFrame, reference: str, families: Mapping[str, str], n_boot: int = 2000,
                    seed: int = 0, arms: Sequence[str] | None = None,
                    sources: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """``stats.csv`` (see the module docstring) from fresh ``metrics.csv`` rows.

    Args:
        metrics: Rows with the ``metrics.csv`` columns (source, arm, seed, domain, case, class, dice, hd95).
        reference: The arm gains compare with.
        families: Domain -> modality family (:func:`domain_families`).
        n_boot: Bootstrap replicates.
        seed: The bootstrap's generator seed (the same seed for every statistic: deterministic output).
        arms: The order of the arms in the table (default: as they first appear in ``metrics``).
        sources: The study's sources: ``all`` rows only for arms with fresh results on every one of them (default:
            the sources present in ``metrics``).
    """
    if metrics.empty:
        return pd.DataFrame(columns=list(STATS_COLUMNS))
    case = case_table(metrics)
    order = {a: i for i, a in enumerate(dict.fromkeys([*(arms or ()), *metrics["arm"]]))}
    case = case.sort_values("arm", key=lambda a: a.map(order), kind="stable").reset_index(drop=True)
    masks = _targets(case, families)
    seed_col, anat_col = case["seed"].to_numpy(), case["anatomy"].to_numpy()
    src_col, arm_col = case["source"].to_numpy(), case["arm"].to_numpy()
    measures = [("dice", "dice", MEAN), *[("dice", f"dice_{c}", c) for c in CLASSES if f"dice_{c}" in case],
                ("hd95", "hd95", MEAN), *[("hd95", f"hd95_{c}", c) for c in CLASSES if f"hd95_{c}" in case]]  # fmt: skip
    rows: list[dict] = []
    for src, arm, sources, seeds in _blocks(case, sources):
        in_block = np.isin(src_col, sources) & np.isin(seed_col, seeds)
        mine = in_block & (arm_col == arm)
        for target, mask in masks.items():
            if target.startswith("ood_") and not (mine & mask).any():
                continue
            for measure, column, cls in measures:
                if target.startswith("ood_") and (measure != "dice" or cls != MEAN):
                    continue
                sel = mine & mask
                sums, counts = cube(seed_col[sel], anat_col[sel], case[column].to_numpy()[sel], seed_order=seeds)
                per, mean, lo, hi = summarise(sums, counts, n_boot=n_boot, seed=seed)
                rows += _rows(src, arm, measure, target, cls, seeds, per, mean, lo, hi, sums.shape[1])
        rows += _gain_rows(case, src, arm, sources, seeds, reference, masks, n_boot, seed)
    return pd.DataFrame(rows, columns=list(STATS_COLUMNS))


def _gain_rows(case, src, arm, sources, seeds, reference, masks, n_boot, seed) -> list[dict]:
    ref_grid = case[case["arm"] == reference][["source", "seed"]].drop_duplicates()
    have = set(ref_grid.itertuples(index=False, name=None))
    complete = all((s, e) in have for s in sources for e in seeds)
    plan = [("ood_gain_pct", "ood"), ("in_domain_change_pct", "in_domain")]
    if src == ALL:
        plan.append(("ood_gain_per_source_pct", "ood"))
    rows = []
    for measure, target in plan:
        if not complete:
            nan = np.full(len(seeds), np.nan)
            rows += _rows(src, arm, measure, target, MEAN, seeds, nan, np.nan, np.nan, np.nan, 0)
            continue
        sel = masks[target] & case["source"].isin(sources).to_numpy() & case["seed"].isin(seeds).to_numpy()
        sel &= case["arm"].isin([arm, reference]).to_numpy()
        part = case[sel]
        is_ref = (part["arm"] == reference).to_numpy()
        if arm == reference:  # the reference against itself: both groups are its own rows
            part = pd.concat([part, part], ignore_index=True)
            is_ref = np.r_[np.zeros(len(part) // 2, bool), np.ones(len(part) // 2, bool)]
        if measure == "ood_gain_per_source_pct":
            code = part["source"].map({s: i for i, s in enumerate(sources)}).to_numpy()
            groups, n_groups, stat = code + len(sources) * is_ref, 2 * len(sources), _per_source_gain(len(sources))
        else:
            groups, n_groups, stat = is_ref.astype(int), 2, _gain
        sums, counts = cube(part["seed"].to_numpy(), part["anatomy"].to_numpy(), part["dice"].to_numpy(), groups,
                            n_groups, seed_order=seeds)  # fmt: skip
        per, mean, lo, hi = summarise(sums, counts, stat, n_boot, seed)
        rows += _rows(src, arm, measure, target, MEAN, seeds, per, mean, lo, hi, sums.shape[1])
    return rows


# ---------------------------------------------------------------------------------------------- head to head


def _difference(means: np.ndarray) -> np.ndarray:
    return means[..., 0] - means[..., 1]


def _common_seeds(grid: pd.DataFrame, arms: Sequence[str], sources: Sequence[str]) -> list:
    """The seeds every one of ``arms`` ran with on every one of ``sources``."""
    sets = [set(grid[(grid["source"] == s) & (grid["arm"] == a)]["seed"]) for a in arms for s in sources]
    return sorted(set.intersection(*sets)) if sets else []


def comparisons(metrics: pd.DataFrame, n_boot: int = 2000, seed: int = 0, arms: Sequence[str] | None = None,
                sources: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """``comparisons.csv``: every pair of arms head to head, Dice points of ``arm`` minus ``versus``.

    One row block per source (and ``all``, pooling the study's sources, when both arms ran on every one of them)
    x pair x target (``in_domain``, ``ood``): the difference of mean Dice per seed (``seed`` rows) and its mean over
    the seeds both arms share, with the two-level bootstrap interval of :func:`summarise`. The comparison is
    *paired*: a replicate draws seeds and then anatomies once for both arms, so both arms are judged on the same
    drawn models' seeds and the same drawn test anatomies, and the variation both arms share cancels. Each pair
    appears once, ``versus`` the arm that comes first in ``arms`` (the study's order); the difference the other
    way round is the negation (see :func:`difference`).
    """
    if metrics.empty:
        return pd.DataFrame(columns=list(_schema.STUDY_COMPARISON_COLUMNS))
    case = case_table(metrics)
    order = list(dict.fromkeys([*(arms or ()), *case["arm"]]))
    order = [a for a in order if a in set(case["arm"])]
    grid = case[["source", "arm", "seed"]].drop_duplicates()
    study_sources = sorted(sources) if sources is not None else sorted(case["source"].unique())
    blocks = [(s, [s]) for s in sorted(case["source"].unique())]
    if len(study_sources) > 1:
        blocks.append((ALL, study_sources))
    masks = _targets(case, {})
    rows: list[dict] = []
    for i, versus in enumerate(order):
        for arm in order[i + 1:]:
            for label, srcs in blocks:
                seeds = _common_seeds(grid, [arm, versus], srcs)
                if not seeds:
                    continue
                sel = case["source"].isin(srcs) & case["seed"].isin(seeds) & case["arm"].isin([arm, versus])
                for target in ("in_domain", "ood"):
                    part = case[sel.to_numpy() & masks[target]]
                    groups = (part["arm"] == versus).to_numpy().astype(int)
                    sums, counts = cube(part["seed"].to_numpy(), part["anatomy"].to_numpy(), part["dice"].to_numpy(),
                                        groups, 2, seed_order=seeds)  # fmt: skip
                    per, mean, lo, hi = summarise(sums, counts, _difference, n_boot, seed)
                    base = {"source": label, "arm": arm, "versus": versus, "target": target, "seeds": len(seeds),
                            "anatomies": sums.shape[1]}  # fmt: skip
                    rows.append({**base, "seed": MEAN, "value": mean, "ci_low": lo, "ci_high": hi})
                    rows += [{**base, "seed": str(s), "value": float(v), "ci_low": np.nan, "ci_high": np.nan}
                             for s, v in zip(seeds, per)]  # fmt: skip
    return pd.DataFrame(rows, columns=list(_schema.STUDY_COMPARISON_COLUMNS))


def difference(table: pd.DataFrame, source: str, arm: str, versus: str, target: str) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of ``arm`` minus ``versus`` in Dice points from a :func:`comparisons` table, whichever
    way round the pair is stored; NaNs when the pair is not there."""
    nan = (float("nan"),) * 3
    if table is None or table.empty:
        return nan
    head = table[(table["source"] == source) & (table["target"] == target) & (table["seed"].astype(str) == MEAN)]
    own = head[(head["arm"] == arm) & (head["versus"] == versus)]
    if not own.empty:
        r = own.iloc[0]
        return float(r["value"]), float(r["ci_low"]), float(r["ci_high"])
    flipped = head[(head["arm"] == versus) & (head["versus"] == arm)]
    if not flipped.empty:
        r = flipped.iloc[0]
        return -float(r["value"]), -float(r["ci_high"]), -float(r["ci_low"])
    return nan


def verdict(low: float, high: float) -> str:
    """``better`` when the whole interval is above 0, ``worse`` when below, ``no clear difference`` otherwise."""
    if np.isnan(low) or np.isnan(high):
        return "n/a"
    return "better" if low > 0 else "worse" if high < 0 else "no clear difference"


def lookup(stats: pd.DataFrame, source: str, arm: str, measure: str, target: str, cls: str = MEAN,
           seed: str = MEAN) -> pd.Series | None:  # fmt: skip
    """The one ``stats.csv`` row for these keys (``None`` when absent)."""
    sel = stats[(stats["source"] == source) & (stats["arm"] == arm) & (stats["measure"] == measure)
                & (stats["target"] == target) & (stats["class"] == cls) & (stats["seed"].astype(str) == str(seed))]  # fmt: skip
    return None if sel.empty else sel.iloc[0]
