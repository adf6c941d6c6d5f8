"""Names shared by the writers of result files and their readers: files, columns and fixed values.

The benchmark runner (``spineaug.bench``) writes these files; the report (``spineaug.report``) reads them and
imports this module, never the runner. Pure data: it imports nothing, so any reader can use it cheaply.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------- spineaug bench

BENCH_PIPELINE_COLUMNS = [
    "run_id", "device", "torch_threads", "pipeline", "impl", "work", "library_version", "fidelity", "coverage",
    "batch", "size", "voxels", "warmup", "repeats", "median_s", "q25_s", "q75_s", "iqr_s", "mean_s", "mean_ci_low_s",
    "mean_ci_high_s", "min_s", "max_s", "samples_per_s", "peak_mem_bytes", "mem_kind", "status", "note",
]
"""``pipelines.csv``: one row per (device, threads, pipeline, implementation, work, batch, size)."""

WORK_PRESET = "preset"
"""``pipelines.csv`` ``work`` of a row that runs the whole preset (or, for a baseline, its own stand-in)."""

WORK_MATCHED = "matched:"
"""Prefix of ``work`` for a spineaug row restricted to what one baseline expresses (``matched:torchio``)."""

BENCH_TRANSFORM_COLUMNS = [
    "run_id", "device", "torch_threads", "transform", "kind", "source", "batch", "size", "repeats",
    "median_s", "q25_s", "q75_s", "mean_s", "mean_ci_low_s", "mean_ci_high_s", "floor_median_s", "ratio_to_floor",
    "passes", "reference", "reference_mean_s", "ratio_to_reference", "reference_target", "status", "note",
]
"""``transforms.csv``: one row per (device, transform forced on), plus the elementwise floor; ``passes`` counts the
call's passes over the batch (:func:`spineaug.bench.probes.count_passes`; the floor is 1); stencil, histogram,
label-lookup, resampling and the transcendental elementwise transforms also carry their reference expression
(:mod:`spineaug.bench.references`), the ratio of means and the multiple of the reference they must stay within
(``reference_target``; empty in files written before it existed: then the target of the transform's kind)."""

BENCH_ENGINE_COLUMNS = [
    "run_id", "device", "torch_threads", "pipeline", "check", "batch", "size", "value", "verdict", "note",
]
"""``engine.csv``: op counts, their growth with B (verdict ``flat``/``grows``), host synchronisations, and per preset
the fixed cost per call (``fixed_cost``), the mean call with its steps clocked (``call_mean``) and the part of it
outside the steps (``own_overhead``), in seconds."""

BENCH_OVERHEAD_COLUMNS = [
    "run_id", "device", "torch_threads", "pipeline", "position", "transform", "batch", "size", "firing_p",
    "forced_mean_s", "expected_s", "in_pipeline_s", "status", "note",
]
"""``overhead.csv``: each preset entry forced on (its own parameters): expected cost = firing probability x mean;
``in_pipeline_s``: the mean seconds per call of the entry's step inside the preset (the one resampling of all geometric
entries is on the first of them; empty on the others and in files written before the column)."""

BENCH_MEMORY_COLUMNS = [
    "run_id", "device", "torch_threads", "pipeline", "check", "batch", "size", "calls", "value_bytes",
    "reference_bytes", "ratio", "target", "verdict", "method", "note",
]
"""``memory.csv``: peak extra memory of a call versus the batch's bytes, and memory drift over a long run."""

BENCH_MAPPING_COLUMNS = ["baseline", "pipeline", "spineaug", "equivalent", "note"]
"""``mapping.csv``: which spineaug transform each baseline expresses."""

BENCH_TABLES = {
    "pipelines": BENCH_PIPELINE_COLUMNS,
    "transforms": BENCH_TRANSFORM_COLUMNS,
    "engine": BENCH_ENGINE_COLUMNS,
    "mapping": BENCH_MAPPING_COLUMNS,
    "overhead": BENCH_OVERHEAD_COLUMNS,
    "memory": BENCH_MEMORY_COLUMNS,
}
"""Table name (the file is ``<name>.csv``) -> its columns, in the order the runner writes them."""

BENCH_META = "meta.json"
"""Run metadata: config, versions, threads, CPU, device and notes."""


FLOOR_KIND = "floor"
"""``transforms.csv`` ``kind`` of the elementwise-pass reference row."""

FLOOR_TRANSFORM = "(elementwise pass x*c)"
"""``transforms.csv`` ``transform`` of the elementwise-pass reference row."""

TRAINING_COLUMNS = [
    "run_id", "device", "arm", "impl", "placement", "workers", "cpu_budget", "cpu_pinning", "torch_threads",
    "batch", "patch", "read_patch", "warmup", "iterations", "rounds", "iteration_s", "iteration_median_s",
    "data_s", "augment_s", "network_s", "samples_per_s", "status", "note",
]
"""``training.csv`` (``spineaug bench --training``): one row per (CPU budget, arm, loader workers), the fastest of
``rounds`` runs; seconds per training iteration (wall clock) and its mean parts: data wait, augmentation in the
loop, network step."""

TRAINING_CSV = "training.csv"
"""The training-throughput table, in the benchmark folder beside ``pipelines.csv``."""

TRAINING_META = "training_meta.json"
"""Metadata of the training-throughput run (config, CPU pinning, versions, device)."""

BENCH_FILES = [f"{name}.csv" for name in BENCH_TABLES] + [BENCH_META, TRAINING_CSV, TRAINING_META]
"""Every file of one benchmark run (``training.csv`` only when the training benchmark ran)."""

STATUS_OK = "ok"
"""``status`` of a row that measured successfully (others: ``error``, ``oom``)."""


# ---------------------------------------------------------------------------------------------- study

STUDY_METRIC_COLUMNS = ("source", "arm", "seed", "domain", "case", "class", "dice", "hd95")
"""``metrics.csv``: one row per cell x test domain x case x foreground class (HD95 in mm, empty when undefined)."""
STUDY_LOG_COLUMNS = ("iteration", "loss", "data_s", "augment_s", "network_s", "val_dice", "elapsed_s")
"""``train_log.csv``: per iteration; seconds waiting for data / augmenting / in the network; validation Dice."""
STUDY_MONITOR_COLUMNS = ("iteration", "domain", "dice")
"""``monitor_log.csv``: out-of-domain monitoring Dice per validation iteration and other domain (curves only)."""
STUDY_CELL_COLUMNS = ("source", "arm", "seed", "commit", "provenance", "train_s", "eval_s", "threads")
"""``cells.csv``: one row per finished cell: its commit, provenance status and cost (wall seconds, threads)."""
STUDY_SUMMARY_COLUMNS = (
    "source", "arm", "seeds", "in_domain_dice", "ood_dice", "ood_ci_low", "ood_ci_high", "ood_gain_pct",
    "in_domain_change_pct", "s_per_iteration", "augment_s_per_iteration", "iterations", "final_val_dice",
    "stale_cells", "ood_gain_per_source_pct",
)  # fmt: skip
"""``summary.csv``: one row per source (or ``all``, the arms that ran on every source) x arm: means over seeds of the
per-seed values, the two-level bootstrap interval of out-of-domain Dice, gains against the reference arm's same
seeds (``ood_gain_per_source_pct``: the paper's mean over sources of each source's gain; on a source's own row the
same as ``ood_gain_pct``)."""
STUDY_STATS_COLUMNS = (
    "source", "arm", "measure", "target", "class", "seed", "value", "ci_low", "ci_high", "seeds", "anatomies",
)  # fmt: skip
"""``stats.csv``: seed-aware statistics (:mod:`spineaug.study.statistics`): one row per source (or ``all``) x arm x
measure (``dice``, ``hd95``, ``ood_gain_pct``, ``ood_gain_per_source_pct``, ``in_domain_change_pct``) x target
(``in_domain``, ``ood``, ``ood_<family>``) x class (``mean`` or a class) x seed; the ``seed = mean`` row holds the
mean over seeds and its two-level (seeds, then anatomies) 95 % bootstrap interval, the others each seed's value."""
STUDY_COMPARISON_COLUMNS = (
    "source", "arm", "versus", "target", "seed", "value", "ci_low", "ci_high", "seeds", "anatomies",
)  # fmt: skip
"""``comparisons.csv``: every pair of arms head to head (:func:`spineaug.study.statistics.comparisons`): Dice points
of ``arm`` minus ``versus`` per source (or ``all``) x target (``in_domain``, ``ood``) x seed; the ``seed = mean`` row
holds the mean over the seeds both arms share and its paired two-level 95 % bootstrap interval."""
STUDY_DOMAIN_COLUMNS = ("domain", "family")
"""``domains.csv``: every domain of the study and its modality family (``ct``, ``mr``; ``other`` when unknown)."""
STUDY_GRID_COLUMNS = ("source", "arm", "seed", "status")
"""``grid.csv``: every cell of the study's grid: ``fresh``, ``stale: ...``/``no provenance`` or ``missing``."""
STUDY_FILES = (
    "study.json", "metrics.csv", "curves.csv", "summary.csv", "summary.md", "monitor.csv", "cells.csv", "stats.csv",
    "comparisons.csv", "domains.csv", "grid.csv",
)  # fmt: skip
"""The compact study results that ``spineaug study --export`` copies and ``spineaug report`` reads."""

BASELINE_LIBRARIES = ("batchgenerators", "torchio", "monai", "kornia", "auglab")
"""The baseline libraries, in the order every table and figure lists them: ``spineaug.baselines`` builds them,
``spineaug bench --baselines`` accepts them, the benchmark report draws them (one registry; CONTRIBUTING.md lists
what else names them)."""

REFERENCE_TARGET = 5.0
"""Stencil, histogram and label-lookup transforms forced on within this multiple of their reference
expression (:mod:`spineaug.bench.references`)."""

SAME_WORK_TARGET = 3.0
"""Transforms whose reference expression is nearly their own work (histogram equalisation, the bias field, the
axis-operator degradations, the transcendental elementwise maps) forced on within this multiple of it."""

RESAMPLING_TARGET = 1.5
"""The "one grid_sample-class pass per tensor" target: resampling transforms forced on within this multiple of torch's
own grid and one ``grid_sample`` per tensor (the grid, padding and exact-label bookkeeping on top)."""


# ---------------------------------------------------------------------------------------------- spineaug fidelity

FIDELITY_MATCH_COLUMNS = (
    "preset", "entry", "parameter", "reference_behaviour", "ours", "difference", "metric", "tolerance", "region",
    "intentional", "verdict", "error",
)  # fmt: skip
"""``matched.csv``: one row per matched-parameter comparison of a preset with its reference (``preset`` ``nnunet``:
nnU-Net v2's batchgeneratorsv2; ``xdomain``: AugLab at the paper's commit): the same transform with one fixed value in
both libraries on the same input, the difference of the outputs (``metric`` says which), the accepted tolerance and
``verdict`` (``ok`` within it, ``outside``, ``error`` when the reference failed)."""
FIDELITY_RATE_COLUMNS = ("preset", "entry", "reference_rate", "ours_rate", "expected", "draws", "z", "verdict")
"""``rates.csv``: per preset entry, the share of ``draws`` samples the reference and spineaug changed, the preset's
own firing probability and the two-proportion z-score (``verdict`` ``ok`` when ``|z|`` is below
:data:`FIDELITY_RATE_SIGMAS`)."""
FIDELITY_SIGMA_COLUMNS = (
    "preset", "entry", "reference_mean", "ours_mean", "reference_sd", "ours_sd", "draws", "z", "verdict",
)  # fmt: skip
"""``sigma.csv``: the realised noise std over ``draws`` firings in both libraries (mean, sd, z of the means)."""
FIDELITY_MATCHED = "matched.csv"
FIDELITY_RATES = "rates.csv"
FIDELITY_SIGMA = "sigma.csv"
FIDELITY_META = "meta.json"
"""Run metadata of ``spineaug fidelity``: command, date, commit, machine, versions, draws, seed, the AugLab reply (or
why AugLab was not measured)."""
FIDELITY_FILES = (FIDELITY_MATCHED, FIDELITY_RATES, FIDELITY_SIGMA, FIDELITY_META)
"""Every file of one fidelity run (committed under ``reports/fidelity/``)."""
FIDELITY_RATE_SIGMAS = 4.0
"""Firing rates (and noise std means) agree when the z-score is below this."""
VERDICT_OK = "ok"


# ---------------------------------------------------------------------------------------------- phantom figure

PHANTOM_FIGURE = "phantom.png"
PHANTOM_DOMAINS = "phantom.json"
"""``spineaug preview --phantom``: the figure (one anatomy in every domain) and its metadata: command, date, commit,
machine, seed, shape, spacing and per domain its modality and what it simulates (``spineaug.phantom.DOMAINS``)."""
