"""Speed benchmark: spineaug pipelines against the baseline libraries, per transform, and engine checks.

This is the runner behind ``spineaug bench`` and ``make benchmark``. Inputs are phantom patches (z-scored, with
their labels; the volumes are rendered once per run). It measures, in one process and one run:

* ``pipelines.csv``: each spineaug preset, each baseline that stands in for it and, for every partial or substitute
  baseline, spineaug restricted to exactly the entries that baseline expresses (``work`` = ``matched:<baseline>``,
  :func:`matched_config`). The headline case runs ``repeats`` calls at every thread count of ``threads``; a scaling
  grid follows at the most threads. Each row: mean with a 95 % bootstrap interval, median and quartiles, samples
  per second (from the mean), process peak RSS (or CUDA max allocated).
* ``transforms.csv``: every transform forced on (``RandomTransform.forced``), time per batch next to the time of one
  elementwise pass over the same batch (``x * c``: read once, write once), the memory-traffic floor.
* ``overhead.csv``: every entry of every preset forced on with its own parameters, and its expected cost (firing
  probability x mean); the report sets their sum against the preset's measured mean.
* ``engine.csv``: aten operations per call for B = 1, 2, 4, 8 (all transforms forced on) with a growth verdict, and
  host synchronisations in the apply path (``aten._local_scalar_dense``/``item``/``nonzero``/``unique`` on tensors
  derived from the data, counted by a dispatch mode; on CUDA also ``torch.cuda.set_sync_debug_mode("error")``).
* ``memory.csv``: peak extra memory of a call against the batch's bytes, and memory drift over a long run.
* ``mapping.csv``: which spineaug transform each baseline expresses, and how.
* ``training.csv`` + ``training_meta.json`` (``spineaug bench --training``, :mod:`spineaug.bench.training`):
  seconds per training iteration, split into data wait, augmentation and network, per augmentation arm.
* ``meta.json``: versions, threads, CPU, device, config, and the notes (skipped baselines, failures).

Every file is written atomically (temporary file + rename) when the run ends, so a re-run replaces whole files and
never mixes rows of two runs; each row carries the run id. The column names live in :mod:`spineaug._schema`, which
the report reads instead of this package.

Modules: ``config`` (:class:`BenchConfig`, validation), ``probes`` (op and sync counters), ``timing`` (repeated
calls and their statistics), ``cases`` (phantom batches, forced-on pipelines), ``matched`` (matched work),
``costs`` (per transform, overhead), ``checks`` (op counts, syncs, memory), ``memory`` (peak and drift probes),
``session`` (:class:`Run`: rows, timing cache, result files), ``runner`` (the run and its pipeline rows),
``training`` (the training-throughput benchmark: its request, data and network size), ``training_loop`` (one timed
setting, trained with the shared harness :mod:`spineaug.harness.train`), ``training_run`` (CPU budgets, rounds,
result files).

Example:
    >>> from spineaug import bench
    >>> cfg = bench.BenchConfig.quick(baselines=())                                       # doctest: +SKIP
    >>> bench.run(cfg, "results/bench")                                               # doctest: +SKIP
"""

from spineaug.bench.cases import forced_entry, forced_pipeline, kind, make_batch, spineaug_fn, transform_entries
from spineaug.bench.checks import op_growth, run_checks, run_memory
from spineaug.bench.config import (
    FULL_BATCHES,
    FULL_SIZES,
    HEADLINE,
    QUICK_BATCHES,
    QUICK_SIZES,
    WORKING_COPIES,
    BenchConfig,
    BenchError,
    available_memory,
    case_bytes,
    resolve_devices,
    validate,
)
from spineaug.bench.costs import run_overhead, run_transforms
from spineaug.bench.matched import FIXED_PIPELINE, matched_config, matched_preset
from spineaug.bench.memory import Drift, memory_drift, peak_extra_bytes
from spineaug.bench.probes import SYNC_OPS, SyncCounter, count_syncs
from spineaug.bench.runner import (
    ENGINE_COLUMNS,
    MAPPING_COLUMNS,
    MEMORY_COLUMNS,
    OVERHEAD_COLUMNS,
    PIPELINE_COLUMNS,
    TRANSFORM_COLUMNS,
    run,
    run_pipelines,
)
from spineaug.bench.session import Run
from spineaug.bench.timing import Timing, time_calls
from spineaug.bench.training import TrainingConfig
from spineaug.bench.training_run import run_training

__all__ = [
    "ENGINE_COLUMNS",
    "FIXED_PIPELINE",
    "FULL_BATCHES",
    "FULL_SIZES",
    "HEADLINE",
    "MAPPING_COLUMNS",
    "MEMORY_COLUMNS",
    "OVERHEAD_COLUMNS",
    "PIPELINE_COLUMNS",
    "QUICK_BATCHES",
    "QUICK_SIZES",
    "SYNC_OPS",
    "TRANSFORM_COLUMNS",
    "WORKING_COPIES",
    "BenchConfig",
    "BenchError",
    "Drift",
    "Run",
    "SyncCounter",
    "Timing",
    "TrainingConfig",
    "available_memory",
    "case_bytes",
    "count_syncs",
    "forced_entry",
    "forced_pipeline",
    "kind",
    "make_batch",
    "matched_config",
    "matched_preset",
    "memory_drift",
    "op_growth",
    "peak_extra_bytes",
    "resolve_devices",
    "run",
    "run_checks",
    "run_memory",
    "run_overhead",
    "run_pipelines",
    "run_training",
    "run_transforms",
    "spineaug_fn",
    "time_calls",
    "transform_entries",
    "validate",
]
