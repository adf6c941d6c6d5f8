"""The report index: ``reports/README.md``, the headline beside the paper and one paragraph and figure per page.

Reads only committed result files (every path below is relative to the report folder unless given):

* the study: ``data/study/default/`` (``stats.csv`` when the export has it, else ``summary.csv``; ``study.json``);
* the speed benchmark: ``bench/meta.json``, ``bench/pipelines.csv``, ``bench/training.csv`` (+ ``training_meta.json``);
* fidelity: ``fidelity/`` (``spineaug fidelity``); the phantom: ``phantom.json`` (``spineaug preview --phantom``);
* the figures the other pages wrote (study, benchmark, gallery, phantom PNGs).

Nothing here measures, and nothing depends on the clock: the same inputs give the same page. A missing input is listed
with the command that makes it, never an error. Provenance of each result: the commit and date it records, else the
commit and date git last recorded for the file (``git log``), else "not recorded".
"""

from __future__ import annotations

import ast
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spineaug import _io, _schema
from spineaug.report import fidelity as fidelity_report
from spineaug.report import training as training_report
from spineaug.report.study import ABLATIONS, PAPER
from spineaug.report.study.results import ALL, StudyResults
from spineaug.report.study.results import load as load_study

MAIN_STUDY = "default"
STRONG_ARM = "xdomain"
"""The arm that stands for the paper's strong augmentation (its AugLab configuration)."""
PAPER_TITLE = ("One Sequence to Segment Them All: Efficient Data Augmentation for CT and MRI Cross-Domain 3D Spine "
               "Segmentation")
STUDY_COMMAND = "spineaug study studies/default.yaml --executor local --workers 2 --export reports/data/study"


@dataclass(frozen=True)
class Value:
    """One headline number: the value, its interval (NaN when none) and how it was computed."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    how: str = ""

    @property
    def ok(self) -> bool:
        return self.value == self.value


MISSING = Value(float("nan"), how="not in the results")


@dataclass
class Inputs:
    """Where the index looks, and what it did not find (``(path, command that makes it)``)."""

    out: Path
    study: Path
    bench: Path
    fidelity: Path
    phantom: Path
    missing: list[tuple[str, str]] = field(default_factory=list)

    def need(self, path: Path, command: str) -> bool:
        if path.is_file():
            return True
        if (str(path), command) not in self.missing:
            self.missing.append((str(path), command))
        return False


def git_record(path: Path) -> str:
    """``<commit> (<date>)`` of the last commit that touched ``path``; ``not committed`` outside git or before."""
    try:
        text = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%h %cs", "--", path.name],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not committed"
    if not text:
        return "not committed"
    commit, date = text.split()
    return f"commit `{commit}` ({date})"


def _pct(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:+.{digits}f} %"


# ---------------------------------------------------------------------------------------------- study


def _per_source_mean(summary: pd.DataFrame, arm: str, column: str) -> Value:
    rows = summary[(summary["source"] != ALL) & (summary["arm"] == arm)]
    values = [(str(r.source), float(getattr(r, column))) for r in rows.itertuples()
              if getattr(r, column) == getattr(r, column)]  # fmt: skip
    if not values:
        return MISSING
    mean = sum(v for _, v in values) / len(values)
    parts = ", ".join(f"{s} {_pct(v)}" for s, v in values)
    return Value(mean, how=f"mean over sources of each source's value in summary.csv ({parts})")


def study_values(res: StudyResults | None, arm: str = STRONG_ARM) -> tuple[Value, Value, Value]:
    """Out-of-domain Dice gain (the paper's definition: mean over sources of each source's gain), in-domain change and
    the pooled out-of-domain gain of ``arm`` against the study's reference arm."""
    if res is None:
        return MISSING, MISSING, MISSING
    values = []
    for measure, target in (("ood_gain_per_source_pct", "ood"), ("in_domain_change_pct", "in_domain"),
                            ("ood_gain_pct", "ood")):  # fmt: skip
        mean, low, high, seeds = res.stat(ALL, arm, measure, target)
        if mean == mean:
            values.append(Value(mean, low, high, f"stats.csv, source all, {measure}, mean over seeds "
                                                 f"({len(seeds)}) with its 95 % two-level bootstrap interval"))
            continue
        summary = res.summary
        if summary is None or summary.empty:
            values.append(MISSING)
        elif measure == "ood_gain_pct":
            row = summary[(summary["source"] == ALL) & (summary["arm"] == arm)]
            v = float(row["ood_gain_pct"].iloc[0]) if not row.empty else float("nan")
            values.append(Value(v, how="summary.csv, row all (pooled over sources)") if v == v else MISSING)
        elif measure == "ood_gain_per_source_pct" and "ood_gain_per_source_pct" in summary:
            row = summary[(summary["source"] == ALL) & (summary["arm"] == arm)]
            v = float(row[measure].iloc[0]) if not row.empty else float("nan")
            values.append(Value(v, how="summary.csv, row all, ood_gain_per_source_pct") if v == v else
                          _per_source_mean(summary, arm, "ood_gain_pct"))
        else:
            column = "ood_gain_pct" if measure == "ood_gain_per_source_pct" else measure
            values.append(_per_source_mean(summary, arm, column))
    return values[0], values[1], values[2]


def _study_settings(res: StudyResults) -> dict:
    training = res.study.get("training", {})
    if isinstance(training, str):  # older exports wrote the dict's repr
        try:
            training = ast.literal_eval(training)
        except (ValueError, SyntaxError):
            training = {}
    return training if isinstance(training, dict) else {}


def study_provenance(res: StudyResults) -> str:
    """Commit(s) the cells record, else git's record of the export; seeds; test cases."""
    cases, anatomies = res.n_cases() if res.has_results else (0, 0)
    recorded = ", ".join(f"`{c}`" for c in res.commits)
    record = git_record(res.folder / "summary.csv")
    where = f"cells at commit {recorded}" if recorded else (
        "commit not recorded in the export, " + ("which is " + record.replace("commit", "in commit", 1)
                                                  if record.startswith("commit") else "which is not committed"))
    seeds = res.seeds
    note = " (one training seed: read it as indicative)" if len(seeds) == 1 else ""
    partial = ""
    if res.grid is not None and "status" in res.grid and len(res.grid):
        fresh = int((res.grid["status"] == "fresh").sum())
        if fresh < len(res.grid):
            partial = (f"**partial: {fresh} of {len(res.grid)} cells of the study are finished** (the rest are listed "
                       "on the study page; these numbers change as they finish), ")
    return (f"{partial}study `{res.name}`, seeds {seeds}{note}, {cases} test cases per model ({anatomies} anatomies x "
            f"{len(res.targets()) if res.has_results else 0} domains); `{STUDY_COMMAND}`; {where}; machine not "
            f"recorded in the export")


# ---------------------------------------------------------------------------------------------- benchmark


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def training_value(bench: Path) -> tuple[Value, str]:
    """The ratio of seconds per training iteration, spineaug ``nnunet`` in the loop / nnU-Net's augmentation in
    its best loader setting, at the most cores of ``training.csv``; and the run's provenance."""
    rows = training_report.read_rows(bench)
    ratios = training_report.ratio_rows(rows)
    if not ratios:
        return MISSING, ""
    device, cores, workers, ratio = max(ratios, key=lambda r: r[1])
    meta = _json(bench / _schema.TRAINING_META)
    prov = (f"`spineaug bench --training`, run `{meta.get('run_id', rows[0]['run_id'])}`, commit "
            f"`{str(meta.get('git') or 'unknown')[:12]}`, {meta.get('cpu_model', 'machine not recorded')}, "
            f"{rows[0]['iterations']} timed iterations, fastest of {rows[0]['rounds']} rounds")
    return Value(ratio, how=f"training.csv, {device}, {cores} core(s), bgv2 with {workers} worker(s)"), prov


def bench_provenance(meta: dict) -> str:
    return (f"`{meta.get('command', 'spineaug bench')}`, run `{meta.get('run_id', '?')}`, commit "
            f"`{str(meta.get('git') or 'unknown')[:12]}`, {meta.get('cpu_model', '?')} "
            f"({meta.get('cpus_available', '?')} CPUs), GPU {meta.get('cuda') or 'none'}")


# ---------------------------------------------------------------------------------------------- page


def headline(inputs: Inputs) -> dict[str, Value]:
    """The three headline values (NaN when their inputs are absent), for the table and the tests."""
    res = _study(inputs)
    ood, ind, pooled = study_values(res)
    speed, _ = training_value(inputs.bench)
    return {"ood_gain_pct": ood, "in_domain_change_pct": ind, "ood_gain_pooled_pct": pooled, "training_ratio": speed}


def _study(inputs: Inputs) -> StudyResults | None:
    folder = inputs.study / MAIN_STUDY
    if not (folder / "summary.csv").is_file() and not (folder / "stats.csv").is_file():
        return None
    return load_study(folder)


def _rel(inputs: Inputs, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(inputs.out.resolve()))
    except ValueError:
        return str(path)


def _figure(inputs: Inputs, name: str, alt: str, caption: str, command: str) -> list[str]:
    path = inputs.out / name
    if not inputs.need(path, command):
        return [f"*{alt}: not drawn (missing `{name}`; `{command}`).*", ""]
    return [f"![{alt}]({name})", "", f"*Figure: {caption}*", ""]


def render(inputs: Inputs) -> str:
    inputs.missing.clear()
    res = _study(inputs)
    if res is None:
        inputs.need(inputs.study / MAIN_STUDY / "summary.csv", "make study")
    h = headline(inputs)
    ood, ind, pooled, speed = h["ood_gain_pct"], h["in_domain_change_pct"], h["ood_gain_pooled_pct"], h["training_ratio"]
    _, speed_prov = training_value(inputs.bench)
    if not speed.ok:
        inputs.need(inputs.bench / _schema.TRAINING_CSV, "spineaug bench --training --out results/bench && make report")
    bench_meta = _json(inputs.bench / _schema.BENCH_META)
    inputs.need(inputs.bench / _schema.BENCH_META, "make benchmark")
    fid = fidelity_report.load(inputs.fidelity)
    for path in fid.missing:
        inputs.need(Path(path), "make fidelity")
    phantom = _json(inputs.phantom)
    inputs.need(inputs.phantom, "make phantom-figure")
    settings = _study_settings(res) if res is not None else {}
    model = (res.study.get("model") or {}) if res is not None else {}
    data = (res.study.get("data") or {}) if res is not None else {}

    def interval(v: Value) -> str:
        return f" [{v.low:+.1f}, {v.high:+.1f}]" if v.low == v.low and v.high == v.high else ""

    lines = [
        "# spineaug reports",
        "",
        "Generated by `spineaug report` (`make report`) from the committed result files listed under each table and "
        "figure; the same files give the same page. Pages: [study](study.md) (with the ablations), "
        "[benchmark](benchmark.md), [fidelity](fidelity.md), and the gallery and phantom pictures below.",
        "",
        "## Headline beside the paper",
        "",
        f"The paper, *{PAPER_TITLE}*, trained one model per source (CT, T1w, T2w) and tested each on seven other "
        "CT/MRI datasets. Ours: the same comparison on the phantom (`xdomain`, the paper's augmentation, against "
        "`nnunet`, nnU-Net's default, as the reference arm).",
        "",
        "| measure | paper | ours | how ours is computed |",
        "|---|---|---|---|",
        f"| out-of-domain Dice, strong vs default augmentation | +{PAPER['ood_gain_pct']:g} % | "
        f"{_pct(ood.value)}{interval(ood)} | {ood.how} |",
        f"| in-domain Dice change | {PAPER['in_domain_change_pct']:+g} % | {_pct(ind.value, 2)}{interval(ind)} | "
        f"{ind.how} |",
        f"| training iteration time, augmentation in the loop vs nnU-Net's loader workers | ~{PAPER['speedup_pct']:g} % "
        f"faster (x{1 - PAPER['speedup_pct'] / 100:.1f}) | "
        + (f"{abs(1 - speed.value) * 100:.0f} % {'faster' if speed.value <= 1 else 'slower'} (x{speed.value:.2f})"
           if speed.ok else "-")
        + f" | {speed.how} |",
        "",
        f"*Table: headline measures. Dice: {study_provenance(res) if res is not None else 'study results missing'}"
        + (f"; pooled over sources the gain is {_pct(pooled.value)}" if pooled.ok else "")
        + f". Training time: {speed_prov or 'training benchmark missing'}.*",
        "",
        "How our settings differ from the paper's:",
        "",
        "- **Data**: paper: real CT and MRI datasets (three training sources, seven out-of-distribution test sets); "
        f"ours: the synthetic phantom (below), sources {res.study.get('sources') if res is not None else '?'}, "
        f"{data.get('n_train', '?')} training cases per source, every model tested on all ten domains "
        f"({data.get('n_test', '?')} anatomies each).",
        "- **Hardware**: paper: a GPU, augmentation on the GPU; ours: "
        f"{bench_meta.get('cpus_available', '?')} CPU cores ({bench_meta.get('cpu_model', 'model not recorded')}, GPU "
        f"{bench_meta.get('cuda') or 'none'}), shared with other work, so network and augmentation compete for the "
        "same cores (the speed row is a CPU figure).",
        f"- **Model size**: paper: nnU-Net's 3-D U-Net; ours: a small MONAI {model.get('name', 'UNet')} (filters "
        f"{model.get('filters', '?')}), patch {settings.get('patch_size', '?')}, batch {settings.get('batch_size', '?')}.",
        f"- **Iterations**: paper: nnU-Net's training schedule; ours: {settings.get('iterations', '?')} iterations "
        "per model.",
        f"- **Seeds**: paper: one model per source; ours: seeds {res.seeds if res is not None else '?'} per source x "
        "arm, with intervals over seeds and test anatomies.",
        "",
        "## Pages",
        "",
    ]
    # study
    lines += ["### Cross-domain study ([study.md](study.md))", "",
              "Each arm trains one model per source domain and is scored on every domain; the heatmap shows mean "
              "Dice per source x arm (rows) and test domain (columns), the page adds intervals, per-class and "
              "per-family tables and learning curves.", ""]
    lines += _figure(inputs, f"study_{MAIN_STUDY}_heatmap.png", "Dice heatmap",
                     f"mean Dice per test domain. {study_provenance(res) if res is not None else 'no study results'}.",
                     "make study")
    lines += _figure(inputs, f"study_{MAIN_STUDY}_tradeoff.png", "in-domain vs out-of-domain Dice",
                     "in-domain against out-of-domain Dice per arm and source (mean over seeds, bars: the range over "
                     "seeds; hollow markers: ablation arms), from the same results as the heatmap.", "make study")
    lines += _figure(inputs, f"study_{MAIN_STUDY}_examples.png", "example predictions",
                     "example predictions on the mid-sagittal slice of one saved test case per domain (filled: the "
                     "prediction, contours: the ground truth), one row per arm, the source's own domain and one "
                     "domain of each modality family, from `examples.npz` of the same results.", "make study")
    # ablations
    lines += ["### Ablations ([study.md](study.md#ablations))", ""]
    ab_rows = []
    for name, question in ABLATIONS.items():
        folder = inputs.study / name
        have = (folder / "summary.csv").is_file() or (folder / "stats.csv").is_file()
        ab_rows.append(f"- `{name}`: {question} " + ("Results on the study page." if have else
                       f"Pending: no results in `{_rel(inputs, folder)}` (`spineaug study studies/{name}.yaml "
                       "--executor local --workers 2 --export reports/data/study`)."))  # fmt: skip
    lines += ab_rows + [""]
    done = [n for n in ABLATIONS if (inputs.out / f"study_{n}_ood_spread.png").is_file()]
    if done:
        name = done[0]
        lines += [f"![{name}](study_{name}_ood_spread.png)", "",
                  f"*Figure: out-of-domain Dice spread of `{name}` (see the study page for its provenance).*", ""]
    # benchmark
    lines += ["### Speed benchmark ([benchmark.md](benchmark.md))", "",
              "Seconds per augmentation call of spineaug and each baseline library on the same batches; the headline "
              "is the speed-up on matched work (spineaug restricted to what the baseline expresses). The page adds "
              "whole-preset times, scaling with volume and batch size, per-transform costs, where each preset's call "
              "goes and the training-iteration split.", ""]
    cfg = bench_meta.get("config", {})
    lines += _figure(inputs, "benchmark_speedups.png", "matched-work speed-ups",
                     f"speed-up on matched work per baseline with conservative 95 % intervals, headline case "
                     f"B={(cfg.get('headline') or ['?'])[0]}, S={(cfg.get('headline') or ['?', '?'])[1]}, "
                     f"{cfg.get('repeats', '?')} timed calls per case. {bench_provenance(bench_meta)}.", "make benchmark")
    lines += _figure(inputs, "benchmark_transforms.png", "per-transform cost",
                     f"milliseconds per call of each transform forced on, with its passes over the batch, same run. "
                     f"{bench_provenance(bench_meta)}.", "make benchmark")
    lines += _figure(inputs, "benchmark_time_split.png", "where a preset's call goes",
                     f"mean milliseconds of each step inside each preset and the pipeline's own overhead (the call "
                     f"minus its clocked steps), same run. {bench_provenance(bench_meta)}.", "make benchmark")
    lines += _figure(inputs, "benchmark_training.png", "training-iteration split",
                     "seconds of one training iteration split into data wait, augmentation and network, per arm and "
                     "CPU budget (`spineaug bench --training`, the run named in the headline table).", "make benchmark")
    # fidelity
    lines += ["### Fidelity ([fidelity.md](fidelity.md))", "",
              "Whether the presets named after a reference behave like it: one transform at one fixed value in both "
              "libraries (matched differences), and how often each entry fires over many draws (two-proportion z).",
              ""]
    rows = fidelity_report.summary(fid)
    if rows:
        lines += ["| " + " | ".join(fidelity_report.SUMMARY_HEADER) + " |",
                  "|" + "|".join("---" for _ in fidelity_report.SUMMARY_HEADER) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        bound = fid.meta.get("rate_sigmas", _schema.FIDELITY_RATE_SIGMAS)
        lines += ["", f"*Table: matched comparisons within their tolerance and firing rates with |z| below {bound:g}, "
                      f"{fid.meta.get('draws', '?')} draws per rate, one synthetic volume (seed "
                      f"{fid.meta.get('seed', '?')}). {fidelity_report.provenance(fid)}.*", ""]
    else:
        lines += ["*Not measured: no fidelity result files (`make fidelity`).*", ""]
    # gallery
    lines += ["### Gallery", "",
              "What the network sees: random draws of each whole preset on the same patch of one phantom case (each "
              "sample draws its own parameters). Each transform alone, forced on: [xdomain](gallery.png), "
              "[gin-ipa](gallery-gin-ipa.png), [progressive-randconv](gallery-progressive-randconv.png).", ""]
    lines += _figure(inputs, "gallery-draws.png", "random draws of whole presets",
                     "six random draws per preset (rows) on the study's 48^3 training patch of phantom case 0 (t2w), "
                     "mid-sagittal slices, label contours; `make preview` (`spineaug preview --draws 6 --patch "
                     f"48,48,48 --presets ...`; CPU, seeded: any machine draws the same picture), "
                     f"{git_record(inputs.out / 'gallery-draws.png')}.", "make preview")
    # phantom
    lines += ["### Phantom", "",
              "The synthetic spine behind every result: one anatomy (vertebrae, discs, canal, surrounding tissue) "
              "rendered in ten CT and MR appearances; the study trains on three and tests on all.", ""]
    where = (f"`{phantom.get('command', 'spineaug preview --phantom')}` at commit "
             f"`{str(phantom.get('git') or 'unknown')[:12]}`, {phantom.get('date', '?')}, {phantom.get('machine', '?')}")
    lines += _figure(inputs, _schema.PHANTOM_FIGURE, "phantom in every domain",
                     f"phantom case {phantom.get('seed', '?')} (phantom version {phantom.get('phantom_version', '?')}, "
                     f"grid {phantom.get('shape', '?')} at {phantom.get('spacing', '?')} mm) in every domain, "
                     f"{phantom.get('slice', 'mid-sagittal slice')}, label contours. {where}.", "make phantom-figure")
    if phantom.get("domains"):
        lines += ["| domain | modality | role | what it simulates |", "|---|---|---|---|"]
        for d in phantom["domains"]:
            role = "training source" if d.get("source") else "test only"
            lines.append(f"| `{d['name']}` | {str(d.get('modality', '')).upper()} | {role} | {d.get('description', '')} |")
        lines += ["", f"*Table: the phantom's domains (`spineaug.phantom.DOMAINS`), from `{_rel(inputs, inputs.phantom)}`"
                      f"; {where}.*", ""]
    lines += ["## Missing inputs", ""]
    if inputs.missing:
        lines += [f"- `{_rel(inputs, Path(p))}`: `{cmd}`" for p, cmd in inputs.missing]
    else:
        lines.append("None: every input above was found.")
    return "\n".join(lines) + "\n"


def write(out: str | Path = "reports", *, study_data: str | Path | None = None, bench: str | Path | None = None,
          fidelity: str | Path | None = None, phantom: str | Path | None = None) -> Path:
    """Write ``<out>/README.md`` (defaults: ``<out>/data/study``, ``<out>/bench``, ``<out>/fidelity``,
    ``<out>/phantom.json``); return its path."""
    out = Path(out)
    inputs = Inputs(out, Path(study_data) if study_data else out / "data" / "study",
                    Path(bench) if bench else out / "bench", Path(fidelity) if fidelity else out / "fidelity",
                    Path(phantom) if phantom else out / _schema.PHANTOM_DOMAINS)  # fmt: skip
    return _io.atomic_write_text(out / "README.md", render(inputs))


__all__ = ["Inputs", "Value", "headline", "render", "study_values", "training_value", "write"]
