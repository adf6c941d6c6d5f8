"""The study page's markdown tables, from ``stats.csv`` (seed-aware) and ``summary.csv`` (timings)."""

from __future__ import annotations

import math

from spineaug.report.study.results import ALL, CLASSES, StudyResults, label


def fmt(v, digits: int = 3, suffix: str = "", sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:{'+' if sign else ''}.{digits}f}{suffix}"


def cell(stat: tuple, digits: int = 3, suffix: str = "", sign: bool = False, seeds: bool = True) -> str:
    """``mean [lo, hi] (s0 a, s1 b)`` of one :meth:`StudyResults.stat` (the interval only with 2+ replicates)."""
    mean, lo, hi, per_seed = stat
    text = fmt(mean, digits, suffix, sign)
    if math.isnan(mean):
        return text
    if not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{fmt(lo, digits, sign=sign)}, {fmt(hi, digits, sign=sign)}]"
    if seeds and len(per_seed) > 1:
        text += " (" + ", ".join(f"s{s} {fmt(v, digits, sign=sign)}" for s, v in per_seed) + ")"
    return text


def _timing(res: StudyResults, source: str, arm: str) -> str:
    if res.summary is None:
        return "n/a"
    sel = res.summary[(res.summary["source"] == source) & (res.summary["arm"] == arm)]
    if sel.empty:
        return "n/a"
    r = sel.iloc[0]
    aug = r.get("augment_s_per_iteration", float("nan"))
    return f"{fmt(float(r['s_per_iteration']))} ({fmt(float(aug))})"


def headline(res: StudyResults) -> list[str]:
    """Per source (and pooled) x arm: in-domain and out-of-domain Dice, gains, in-domain change, s/iteration."""
    ref = label(res.reference)
    head = ["trained on", "arm", "seeds", "in-domain Dice (per seed)", "out-of-domain Dice [95 % CI] (per seed)",
            f"OOD gain vs `{ref}` [95 % CI] (per seed)", "OOD gain, mean of per-source gains [95 % CI]",
            f"in-domain change vs `{ref}`", "s / iteration (augment)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for src, arm in res.blocks():
        n = res.stat(src, arm, "dice", "ood")[3]
        per_source = "ood_gain_per_source_pct" if src == ALL else "ood_gain_pct"
        lines.append(
            f"| {src} | {label(arm)} | {max(1, len(n))} | {cell(res.stat(src, arm, 'dice', 'in_domain'))} | "
            f"{cell(res.stat(src, arm, 'dice', 'ood'))} | "
            f"{cell(res.stat(src, arm, 'ood_gain_pct', 'ood'), 1, ' %', sign=True)} | "
            f"{cell(res.stat(src, arm, per_source, 'ood'), 1, ' %', sign=True, seeds=False)} | "
            f"{cell(res.stat(src, arm, 'in_domain_change_pct', 'in_domain'), 2, ' %', sign=True, seeds=False)} | "
            f"{_timing(res, src, arm)} |"
        )
    return lines


def families(res: StudyResults) -> list[str]:
    """Per source x arm: out-of-domain Dice on each modality family's targets (the source itself left out)."""
    fams = list(dict.fromkeys(res.families.values()))
    if not fams:
        return []
    head = ["trained on", "arm", *(f"{f.upper()}-family targets [95 % CI]" for f in fams)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for src, arm in res.blocks():
        values = [cell(res.stat(src, arm, "dice", f"ood_{f}")) for f in fams]
        lines.append(f"| {src} | {label(arm)} | " + " | ".join(values) + " |")
    return lines


def per_class(res: StudyResults, measure: str) -> list[str]:
    """Per-class Dice or HD95, in domain and out of domain: one table per group of :meth:`StudyResults.groups`."""
    digits = 3 if measure == "dice" else 1
    head = ["trained on", "arm", *(f"{c}, {w}" for w in ("in domain", "out of domain") for c in CLASSES)]
    lines = []
    for title, blocks in res.groups():
        lines += [f"*{title[0].upper()}{title[1:]}:*", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for src, arm in blocks:
            values = [cell(res.stat(src, arm, measure, t, c), digits, seeds=False) for t in ("in_domain", "ood")
                      for c in CLASSES]  # fmt: skip
            lines.append(f"| {src} | {label(arm)} | " + " | ".join(values) + " |")
        lines.append("")
    return lines[:-1]


def legacy(res: StudyResults) -> list[str]:
    """``summary.csv`` as it is, for results exported before ``stats.csv`` existed."""
    s = res.summary
    head = ["trained on", "arm", "in-domain Dice", "out-of-domain Dice [95 % CI]", f"OOD gain vs `{res.reference}`",
            f"in-domain change vs `{res.reference}`", "s / iteration (augment)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in s.to_dict("records"):
        lines.append(
            f"| {r['source']} | {label(r['arm'])} | {fmt(r['in_domain_dice'])} | {fmt(r['ood_dice'])} "
            f"[{fmt(r['ood_ci_low'])}, {fmt(r['ood_ci_high'])}] | {fmt(r['ood_gain_pct'], 1, ' %')} | "
            f"{fmt(r['in_domain_change_pct'], 2, ' %')} | {fmt(r['s_per_iteration'])} "
            f"({fmt(r.get('augment_s_per_iteration', float('nan')))}) |"
        )
    return lines


def _namesake(arm: str, counterparts: dict[str, str] | None) -> str:
    """The main study's arm an ablation arm is set beside: its counterpart where one is declared, else itself."""
    return (counterparts or {}).get(label(arm), arm)


def _as(arm: str, main_arm: str, where: str) -> str:
    """How a row names the main study's arm: nothing for a namesake, else the counterpart (``where``: its study)."""
    return "" if main_arm == arm else f" ({where}: `{label(main_arm)}`)"


def against(main: StudyResults, other: StudyResults, counterparts: dict[str, str] | None = None) -> list[str]:
    """An ablation beside the main study: the same source x arm's Dice and gain in both (main first); per source
    only, since the two studies' pooled rows may pool different sources. ``counterparts`` sets an ablation arm
    without a namesake in the main study (by its label) beside the main study's arm it varies."""
    ref = label(other.reference)
    head = ["trained on", "arm", f"in-domain Dice: {main.name} / {other.name}",
            f"out-of-domain Dice: {main.name} / {other.name}", f"OOD gain vs `{ref}`: {main.name} / {other.name}"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for src, arm in [(s, a) for s, a in other.blocks() if s != ALL]:  # pooled rows may pool other sources
        mine = _namesake(arm, counterparts)
        pairs = [(cell(main.stat(src, mine, m, t), d, sfx, sign, seeds=False),
                  cell(other.stat(src, arm, m, t), d, sfx, sign, seeds=False))
                 for m, t, d, sfx, sign in (("dice", "in_domain", 3, "", False), ("dice", "ood", 3, "", False),
                                            ("ood_gain_pct", "ood", 1, " %", True))]  # fmt: skip
        lines.append(f"| {src} | {label(arm)}{_as(arm, mine, main.name)} | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
    return lines


def verdict(low: float, high: float) -> str:
    """``better`` when the whole interval is above 0, ``worse`` when below, ``no clear difference`` otherwise."""
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return "better" if low > 0 else "worse" if high < 0 else "no clear difference"


def _interval(diff: tuple[float, float, float]) -> str:
    mean, lo, hi = diff
    return f"{fmt(mean, 3, sign=True)} [{fmt(lo, 3, sign=True)}, {fmt(hi, 3, sign=True)}]"


def _delta(diff: tuple[float, float, float]) -> str:
    return "n/a" if math.isnan(diff[0]) else f"{_interval(diff)} {verdict(diff[1], diff[2])}"


def head_to_head(res: StudyResults, comparators: list[str]) -> list[str]:
    """Per source (and pooled) x arm: its Dice minus each comparator's, in domain and out of domain, paired over
    the seeds both ran and the same test anatomies (``comparisons.csv``), with the verdict of the interval."""
    head = ["trained on", "arm", *(f"{w} vs `{label(c)}`" for c in comparators for w in ("in domain", "out of domain"))]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for src, arm in res.blocks():
        if arm in comparators and len(comparators) == 1:
            continue
        values = ["-" if arm == c else _delta(res.difference(src, arm, c, t)) for c in comparators
                  for t in ("in_domain", "ood")]  # fmt: skip
        if all(v in ("-", "n/a") for v in values):
            continue
        lines.append(f"| {src} | {label(arm)} | " + " | ".join(values) + " |")
    return lines


def head_to_head_summary(res: StudyResults, comparators: list[str]) -> list[str]:
    """One plain line per arm (the comparators and the reference arm left out) and scope (pooled over sources when
    the arm ran on every source, else each source it ran on): better, worse or no clear difference than each
    comparator, in domain and out of domain, with the differences and intervals that say so."""
    phrase = {"better": "better than", "worse": "worse than", "no clear difference": "no clear difference from"}
    pooled = {a for s, a in res.blocks() if s == ALL}
    lines = []
    for arm in res.arms:
        if arm in comparators or arm == res.reference:
            continue
        scopes = [ALL] if arm in pooled else [s for s, a in res.blocks() if a == arm and s != ALL]
        for src in scopes:
            parts = []
            for target, where in (("in_domain", "in domain"), ("ood", "out of domain")):
                said = []
                for c in comparators:
                    diff = res.difference(src, arm, c, target)
                    v = verdict(diff[1], diff[2])
                    if v != "n/a":
                        said.append(f"{phrase[v]} `{label(c)}` ({_interval(diff)})")
                if said:
                    parts.append(f"{where} " + ", ".join(said))
            if parts:
                scope = "pooled over sources" if src == ALL else f"trained on {src}"
                lines.append(f"- `{label(arm)}`, {scope}: " + "; ".join(parts) + ".")
    return lines


def _separation(a: tuple, b: tuple, up: str, down: str) -> str:
    """``up``/``down`` when ``b``'s interval lies wholly above/below ``a``'s, else "the intervals overlap"."""
    if not any(math.isnan(x) for x in (*a[1:3], *b[1:3])) and (b[1] > a[2] or b[2] < a[1]):
        return up if b[0] > a[0] else down
    return "the intervals overlap: no clear change"


def in_domain_cost(main: StudyResults, other: StudyResults, counterparts: dict[str, str] | None = None) -> list[str]:
    """Per source x arm of an ablation (the reference left out): the in-domain change vs the reference in the main
    study and in the ablation, and whether the two intervals separate."""
    return _both(main, other, counterparts, "in_domain_change_pct", "in_domain", "in-domain change vs `{ref}`",
                 ("smaller here", "larger here"), digits=2, suffix=" %", sign=True)


def ood_in_both(main: StudyResults, other: StudyResults, counterparts: dict[str, str] | None = None) -> list[str]:
    """Per source x arm of an ablation (the reference left out): out-of-domain Dice in the main study and in the
    ablation, and whether the two intervals separate."""
    return _both(main, other, counterparts, "dice", "ood", "out-of-domain Dice", ("higher here", "lower here"),
                 digits=3, suffix="", sign=False)


def _both(main, other, counterparts, measure: str, target: str, what: str, words: tuple[str, str], *, digits: int,
          suffix: str, sign: bool) -> list[str]:  # fmt: skip
    lines = []
    ref = label(other.reference)
    for src, arm in [(s, a) for s, a in other.blocks() if s != ALL and a != other.reference]:
        mine = _namesake(arm, counterparts)
        a = main.stat(src, mine, measure, target)
        b = other.stat(src, arm, measure, target)
        if math.isnan(a[0]) or math.isnan(b[0]):
            continue
        lines.append(f"- `{label(arm)}` trained on {src}: {what.format(ref=ref)} "
                     f"{cell(a, digits, suffix, sign=sign, seeds=False)} in `{main.name}`{_as(arm, mine, 'its arm')}, "
                     f"{cell(b, digits, suffix, sign=sign, seeds=False)} in `{other.name}` "
                     f"({_separation(a, b, *words)}).")  # fmt: skip
    return lines
