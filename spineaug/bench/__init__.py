"""Speed benchmark: spineaug pipelines against the baseline libraries, per transform, and engine checks.

This is the runner behind ``spineaug bench`` and ``make benchmark``. It measures, in one process and one run:

* ``pipelines.csv``: each spineaug preset and each baseline that stands in for it, on batches of
  ``B x 1 x S^3`` float32 images with int64 label maps: seconds per batch (median and quartiles over repeated calls
  with fresh random parameters, after warm-up), samples per second and peak memory (process RSS high-water mark,
  or CUDA max allocated).
* ``transforms.csv``: every transform forced on (``RandomTransform.forced``), time per batch next to the time of one
  elementwise pass over the same batch (``x * c``: read once, write once), the memory-traffic floor.
* ``engine.csv``: aten operations per call for B = 1, 2, 4 (all transforms forced on; must not grow with B) and
  host synchronisations in the apply path (``aten._local_scalar_dense``/``item``/``nonzero``/``unique`` on tensors
  derived from the data, counted by a dispatch mode; on CUDA also ``torch.cuda.set_sync_debug_mode("error")``).
* ``mapping.csv``: which spineaug transform each baseline expresses, and how.
* ``training.csv`` + ``training_meta.json`` (``spineaug bench --training``, :mod:`spineaug.bench.training`):
  seconds per training iteration, split into data wait, augmentation and network, per augmentation arm.
* ``meta.json``: versions, threads, CPU, device, grid, and the notes (skipped baselines, failures).

Every file is written atomically (temporary file + rename) when the run ends, so a re-run replaces whole files and
never mixes rows of two runs; each row carries the run id. The column names live in :mod:`spineaug._schema`, which
the report reads instead of this package.

Modules: ``config`` (:class:`BenchConfig`, validation), ``probes`` (op and sync counters), ``timing`` (repeated
calls and their statistics), ``cases`` (batches, forced-on pipelines), ``runner`` (the run and its rows).

Example:
    >>> from spineaug import bench
    >>> cfg = bench.BenchConfig(sizes=(16,), batches=(1,), repeats=2, baselines=())   # doctest: +SKIP
    >>> bench.run(cfg, "results/bench")                                               # doctest: +SKIP
"""

from spineaug.bench.cases import forced_entry, forced_pipeline, kind, make_batch, spineaug_fn, transform_entries
from spineaug.bench.config import (
    FULL_BATCHES,
    FULL_SIZES,
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
from spineaug.bench.probes import SYNC_OPS, SyncCounter, count_syncs
from spineaug.bench.runner import (
    ENGINE_COLUMNS,
    MAPPING_COLUMNS,
    PIPELINE_COLUMNS,
    TRANSFORM_COLUMNS,
    Run,
    run,
    run_checks,
    run_pipelines,
    run_transforms,
)
from spineaug.bench.timing import Timing, time_calls
from spineaug.bench.training import TrainingConfig, run_training

__all__ = [
    "ENGINE_COLUMNS",
    "FULL_BATCHES",
    "FULL_SIZES",
    "MAPPING_COLUMNS",
    "PIPELINE_COLUMNS",
    "QUICK_BATCHES",
    "QUICK_SIZES",
    "SYNC_OPS",
    "TRANSFORM_COLUMNS",
    "WORKING_COPIES",
    "BenchConfig",
    "BenchError",
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
    "resolve_devices",
    "run",
    "run_checks",
    "run_pipelines",
    "run_training",
    "run_transforms",
    "spineaug_fn",
    "time_calls",
    "transform_entries",
    "validate",
]
