"""Study report: ``reports/study.md`` and its figures from the compact results of ``spineaug study --export``.

Reads ``<data>/<study>/`` (the files committed under ``reports/data/study/``: ``stats.csv``, ``summary.csv``,
``metrics.csv``, ``curves.csv``, ``monitor.csv``, ``cells.csv``, ``grid.csv``, ``domains.csv``, ``study.json``,
``comparisons.csv``) and renders only: every statistic comes from the study layer's ``stats.csv`` and
``comparisons.csv`` (means over seeds, two-level bootstrap intervals; :mod:`spineaug.study.statistics`), the
figures draw means and spreads of ``metrics.csv`` rows. Missing
files or studies give a line on the page (what is missing and the command that makes it), never an error.

Sections: each main study (``default`` first), then one per ablation study (schedule, capacity, mixing), rendered
when its results exist and listed as pending otherwise.
"""

from __future__ import annotations

from pathlib import Path

from spineaug import _io
from spineaug.report.study import figures, tables
from spineaug.report.study.results import StudyResults, label, load

PAPER = {"ood_gain_pct": 155.0, "in_domain_change_pct": -0.008, "speedup_pct": 10.0}
"""The reference paper's headline: out-of-domain Dice gain, in-domain change, training speed-up (GPU aug)."""

MAIN = "default"
COMPARATORS = ("xdomain", "xdomain-plus")
"""The arms every other arm is held against head to head: the paper's recipe and our extension of it (a study
without them is held against its reference arm)."""
ABLATIONS = {
    "ablation-schedule": "Schedule: does training three times longer (6000 instead of 2000 iterations) change the "
                         "ranking of nnunet and xdomain-plus, or close the out-of-domain gap?",
    "ablation-capacity": "Capacity: does a network of twice the width (filters 16-128) change the ranking, i.e. is "
                         "the out-of-domain gain of strong augmentation a small-model effect?",
    "ablation-mixing": "Mixing: does strong augmentation on half of each batch (xdomain-plus on one sample, nnunet "
                       "on the other) keep the out-of-domain gain while giving back in-domain Dice?",
}  # fmt: skip
"""Ablation study name -> the plain-language question it answers."""
COUNTERPARTS = {"ablation-mixing": {"mix-xdomain-plus-nnunet": "xdomain-plus"}}
"""Ablation study name -> {its arm without a namesake in the main study: the main study's arm it varies}."""

INTERVAL = (
    "How to read the numbers: every value is the mean over training seeds of that seed's value (each seed's own "
    "value in parentheses, `s<seed>`). The interval is a 95 % two-level percentile bootstrap: draw the seeds with "
    "replacement, then the test anatomies with replacement within each drawn seed (an anatomy's cases in every "
    "target domain move together, since the phantom renders the same anatomies in every domain; target domains are "
    "fixed). With two seeds the seed level is coarse (a replicate holds both seeds or one seed twice): read it as "
    "'do the seeds agree', not as a calibrated between-seed spread; with one seed it is the anatomy-only bootstrap. "
    "Gains compare each seed with the reference arm's same seed, then average over seeds (n/a when the reference "
    "lacks one of the arm's seeds). Rows `all` pool the sources and list only the arms that ran on every source "
    "(an arm run on some sources appears on those only): there the pooled gain is the ratio of the pooled means and "
    "the paper's definition is the mean over sources of each source's gain. Out-of-domain Dice is over every test "
    "domain other than the source; family columns split those by modality (CT: ct, ct-lowdose; MR: the rest)."
)


def _run(name: str) -> str:
    return f"spineaug study studies/{name}.yaml --executor local --workers 2 --export reports/data/study"


def _provenance(res: StudyResults) -> str:
    cases, anatomies = res.n_cases()
    domains = len(res.targets())
    commits = ", ".join(f"`{c}`" for c in res.commits) or "not recorded"
    return (f"{cases} test cases per model ({anatomies} anatomies x {domains} domains), seeds {res.seeds}; "
            f"command `{_run(res.name)}`, then `spineaug report`; commit {commits}")  # fmt: skip


def _figure(path: Path | None, alt: str, caption: str, res: StudyResults) -> list[str]:
    if path is None:
        return [f"*{alt}: not drawn, its inputs are not in these results.*", ""]
    return [f"![{alt}]({path.name})", "", f"*{caption} {_provenance(res)}.*", ""]


def _cells(res: StudyResults) -> list[str]:
    bad = res.unusable_cells()
    if bad.empty:
        return ["Cells: every cell of the grid is finished and fresh." if res.grid is not None else
                "Cells: no grid listing (`grid.csv`) in these results; stale cells, if any, are in `cells.csv`.", ""]  # fmt: skip
    lines = [f"Cells not in these numbers ({len(bad)}): stale cells are left out, missing ones are not finished "
             f"yet (`{_run(res.name)}` resumes):", ""]  # fmt: skip
    for status, group in bad.groupby("status", sort=True):
        names = ", ".join(f"{r.source}/{label(r.arm)}/s{r.seed}" for r in group.itertuples())
        lines.append(f"- {status}: {names}")
    return [*lines, ""]


def _header(res: StudyResults, level: str) -> list[str]:
    s = res.study
    training, model = s.get("training") or {}, s.get("model") or {}
    return [f"{level} Study `{res.name}`", "", str(s.get("description", "")).strip(), "",
            f"Command: `{_run(res.name)}`; seeds {res.seeds or s.get('seeds')}, {training.get('iterations')} "
            f"iterations, patch {training.get('patch_size')}, model {model.get('name')} {model.get('filters')}; "
            f"reference arm `{label(res.reference)}`.{_compute(s)}", ""]  # fmt: skip


def _compute(study: dict) -> str:
    """The header's compute sentence, from the export's record of what its finished cells cost ("" when none)."""
    c = study.get("compute")
    if not c:
        return ""
    return f" Compute: {c['cpu_hours']:.1f} CPU-hours for {c['cells']} finished cells ({c['definition']})."


def _section(res: StudyResults, out: Path, extra: list[StudyResults], level: str = "##",
             main: StudyResults | None = None) -> list[str]:  # fmt: skip
    """One study's tables and figures; an ablation (``main`` given) gets a table beside ``main`` and fewer figures."""
    lines = _header(res, level)
    if not res.has_results:
        return [*lines, f"No results yet for `{res.name}`: run `{_run(res.name)}`.", "", *_cells(res)]
    sub = level + "#"
    if res.stats is None:
        lines += [f"Seed statistics (`stats.csv`) are not in these results (exported before they existed): the table "
                  f"below pools seeds and its interval covers test anatomies only. Re-export with `{_run(res.name)}` "
                  "(finished cells are kept).", ""]  # fmt: skip
        if res.summary is not None:
            lines += [*tables.legacy(res), ""]
    else:
        lines += [f"{sub} Headline", "", *tables.headline(res), ""]
        if main is None:
            lines += [f"Paper (AugLab vs nnU-Net's default augmentation, real CT/MRI, GPU): "
                      f"+{PAPER['ood_gain_pct']:.0f} % out-of-domain Dice, {PAPER['in_domain_change_pct']} % in domain, "
                      f"~{PAPER['speedup_pct']:.0f} % faster training with GPU augmentation. Seconds per iteration "
                      "(data wait + augmentation + network) were measured on the machine that ran the study, with two "
                      "cells sharing its cores: not a controlled speed comparison between arms.", ""]  # fmt: skip
        if main is None and res.comparisons is not None:
            lines += _head_to_head(res)
        if main is not None and main.stats is not None:
            pairs = COUNTERPARTS.get(res.name)
            lines += [f"{sub} Beside `{main.name}`", "", f"The same source and arm in `{main.name}` and here (mean over "
                      "seeds [95 % CI]; an arm without a namesake there beside the arm it varies); n/a where the arm "
                      "is not in both.", "", *tables.against(main, res, pairs), ""]  # fmt: skip
            cost = tables.in_domain_cost(main, res, pairs)
            if cost:
                lines += [f"The in-domain cost of each arm (its in-domain change vs `{label(res.reference)}`, mean "
                          "over seeds [95 % CI]) in both studies; 'smaller' or 'larger' only where the two intervals "
                          "do not overlap:", "", *cost, ""]  # fmt: skip
            ood = tables.ood_in_both(main, res, pairs)
            if ood:
                lines += ["Its out-of-domain Dice (mean over seeds [95 % CI]) in both studies; 'higher' or 'lower' "
                          "only where the two intervals do not overlap:", "", *ood, ""]  # fmt: skip
        fam = tables.families(res)
        if fam:
            lines += [f"{sub} CT family vs MR family targets", "",
                      "Out-of-domain Dice on the targets of each modality family (the source domain itself left out: "
                      "a ct model's CT-family target is ct-lowdose).", "", *fam, ""]  # fmt: skip
        lines += [f"{sub} Per class", "", "Dice per class (mean over seeds [95 % CI]); a class a prediction misses "
                  "scores 0.", "", *tables.per_class(res, "dice"), "",
                  "HD95 per class in mm (mean over the cases where it is defined).", "",
                  *tables.per_class(res, "hd95"), ""]  # fmt: skip
    lines += [f"{sub} Cells", "", *_cells(res)]
    lines += [f"{sub} Figures", ""]
    plots = [
        (figures.heatmap(res, out), "Dice heatmaps",
         "Mean Dice (over vertebra, disc, canal and the test cases, then over seeds) of each model (row: the domain "
         "it was trained on) on each test domain, one panel per arm."),
        (figures.ood_spread(res, out), "out-of-domain Dice per target",
         "Out-of-domain Dice per test domain: a box per arm over every test case of every seed (anatomies x seeds), "
         "dots the cases; one panel per source domain."),
        (figures.families(res, out) if res.stats is not None else None, "CT vs MR family",
         "Out-of-domain Dice on CT-family vs MR-family targets per source and arm; bars: mean over seeds, whiskers: "
         "95 % two-level bootstrap interval."),
        (figures.classes(res, out) if res.stats is not None else None, "per-class Dice and HD95",
         "Per-class Dice and HD95 (mm), in domain and out of domain; top row: pooled over sources, for the arms "
         "that ran on every source; further rows: every arm on a source where an arm ran that is not pooled; "
         "whiskers: 95 % two-level bootstrap interval."),
        (figures.curves(res, out), "learning curves",
         "Learning curves, mean over seeds per arm: validation Dice in the source domain (top) and out-of-domain "
         "monitoring Dice (bottom: the mean over the other domains' monitoring anatomy), at each validation step."),
        (figures.tradeoff(res, extra, out) if res.stats is not None else None, "in-domain vs out-of-domain",
         "In-domain vs out-of-domain Dice per arm (mean over seeds; bars: the range over seeds), one panel per "
         "source; hollow markers (one shape per ablation study): the ablation studies' arms on their sources."),
        (figures.examples(res, out), "example predictions",
         f"Example predictions of seed {min(res.seeds) if res.seeds else 0}: per source, its own domain and two "
         "other domains (one of the other modality family, one of its own), the mid-sagittal slice of one saved "
         "test case (`evaluation.save_predictions`, from `examples.npz`); filled: the prediction, contours: the "
         "ground truth; one row per arm."),
    ]  # fmt: skip
    if main is not None:  # an ablation: its arms are in the main study's trade-off figure already
        plots = [plots[1], plots[4]]
    for path, alt, caption in plots:
        lines += _figure(path, alt, caption, res)
    return lines


def _head_to_head(res: StudyResults) -> list[str]:
    comparators = [c for c in COMPARATORS if c in res.arms] or [res.reference]
    names = " and ".join(f"`{label(c)}`" for c in comparators)
    lines = ["### Head to head", "",
             f"Each arm against {names}: its mean Dice minus theirs, in Dice points, in domain and out of domain "
             "(mean over the seeds both arms ran [95 % CI]). The comparison is paired: each bootstrap replicate draws "
             "the seeds, then the test anatomies, once for both arms, so what the two arms share (the same models' "
             "seeds, the same anatomies) cancels. *Better*/*worse*: the whole interval is above/below 0; with two "
             "seeds read it as 'both seeds agree'.", "", *tables.head_to_head(res, comparators), ""]  # fmt: skip
    summary = tables.head_to_head_summary(res, comparators)
    if summary:
        lines += ["In words, for every other arm (pooled over sources where it ran on every source, else per source):",
                  "", *summary, ""]  # fmt: skip
    return lines


def _ablation(name: str, question: str, res: StudyResults | None, out: Path, main: StudyResults | None) -> list[str]:
    lines = [f"### {name}", "", f"Question. {question}", ""]
    if res is None or not res.has_results:
        return [*lines, f"Pending: no results yet for `{name}`: run `{_run(name)}`.", ""]
    return [*lines, *_section(res, out, [], level="###", main=main)[2:]]


def write(data: str | Path = "reports/data/study", out: str | Path = "reports") -> Path:
    """Write ``<out>/study.md`` (+ PNGs) from every study folder under ``data``; returns the markdown path."""
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folders = sorted({p.parent for p in data.glob("*/*") if p.name in ("study.json", "summary.csv", "metrics.csv")})
    found = {f.name: load(f) for f in folders}
    main = [n for n in found if n not in ABLATIONS and not n.startswith("ablation-")]
    main = sorted(main, key=lambda n: (n != MAIN, n))
    ablations = [found[n] for n in found if n in ABLATIONS or n.startswith("ablation-")]
    lines = ["# Cross-domain study", "", f"Generated by `spineaug report` from the compact study results in `{data}`; "
             "every arm and seed that was run is listed.", "", INTERVAL, ""]  # fmt: skip
    if (out / "phantom.png").is_file():  # the data every result comes from (drawn by `spineaug preview --phantom`)
        lines += ["## The data", "", "![the phantom in every domain](phantom.png)", "",
                  "*Figure: the same phantom anatomy rendered in all ten domains (mid-sagittal slices, label "
                  "contours); what each domain simulates is listed in the [index](README.md). Drawn by `spineaug "
                  "preview --phantom --out reports/phantom.png`.*", ""]  # fmt: skip
    if MAIN not in found:
        lines += [f"No results yet for `{MAIN}`: run `{_run(MAIN)}`.", ""]
    for name in main:
        lines += _section(found[name], out, [a for a in ablations if a.has_results] if name == MAIN else [])
    lines += ["## Ablations", "", "Each ablation changes one setting of the default study for a subset of its cells "
              "and asks whether the default's conclusion survives it. Their arms also appear as hollow markers in "
              "the default study's in-domain vs out-of-domain figure.", ""]  # fmt: skip
    for name in [*ABLATIONS, *(n for n in found if n.startswith("ablation-") and n not in ABLATIONS)]:
        main_results = found.get(MAIN) if found.get(MAIN) is not None and found[MAIN].has_results else None
        lines += _ablation(name, ABLATIONS.get(name, "(no question recorded)"), found.get(name), out, main_results)
    return _io.atomic_write_text(out / "study.md", "\n".join(lines))
