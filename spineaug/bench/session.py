"""One benchmark session: :class:`Run` collects the rows and notes of every table, times cases (each piece of work
once), and writes the result files atomically. The table builders (:mod:`~spineaug.bench.runner`,
:mod:`~spineaug.bench.costs`, :mod:`~spineaug.bench.checks`) fill it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from spineaug import _io, _schema
from spineaug.bench.cases import make_batch
from spineaug.bench.config import BenchConfig
from spineaug.bench.timing import Timing, time_calls

Outcome = tuple[Timing | None, str, str]
"""``(timing or None, status, note)`` of one measured case."""


class Run:
    """Collects rows and notes of one benchmark run and writes them atomically."""

    def __init__(self, config: BenchConfig, out: Path, log: Callable[[str], None]) -> None:
        self.config, self.out, self.log = config, out, log
        self.run_id = _io.new_run_id()
        self.pipelines: list[dict[str, Any]] = []
        self.transforms: list[dict[str, Any]] = []
        self.engine: list[dict[str, Any]] = []
        self.mapping: list[dict[str, Any]] = []
        self.overhead: list[dict[str, Any]] = []
        self.memory: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._timed: dict[tuple, Outcome] = {}
        self._volume = max(config.sizes + (config.headline[1],))

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(f"NOTE: {text}")

    def base(self, device: torch.device, **fields: Any) -> dict[str, Any]:
        """The leading columns every timing and check row shares, plus ``fields``."""
        return dict(run_id=self.run_id, device=device.type, torch_threads=torch.get_num_threads(), **fields)

    def batch(self, b: int, s: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """The phantom batch of case ``(b, s)``; every case draws from one cached set of phantom volumes."""
        return make_batch(b, s, device, self.config.seed, volume_size=self._volume)

    def measure(self, fn: Callable[[Tensor, Tensor], Any], data: Callable[[], tuple[Tensor, Tensor]],
                device: torch.device, *, repeats: int, min_repeats: int | None = None,
                max_seconds: float = math.inf, key: tuple | None = None) -> Outcome:
        """Time ``fn`` on ``data()``; return ``(timing or None, status, note)``.

        ``key`` names the work (device, threads, config, case): a second request for the same work reuses the first
        timing instead of timing it again. A failing case (a baseline that errors, out of memory) becomes a row with
        its status; the run goes on.
        """
        if key is not None and key in self._timed:
            return self._timed[key]
        try:
            image, label = data()
            timing = time_calls(fn, image, label, warmup=self.config.warmup, repeats=repeats,
                                min_repeats=repeats if min_repeats is None else min_repeats, max_seconds=max_seconds)
            outcome: Outcome = (timing, _schema.STATUS_OK, "")
        except torch.OutOfMemoryError as exc:
            outcome = (None, "oom", f"out of memory: {str(exc).splitlines()[0][:200]}")
        except MemoryError:
            outcome = (None, "oom", "out of host memory")
        except Exception as exc:  # a baseline failing on one case must not stop the run
            outcome = (None, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if key is not None:
            self._timed[key] = outcome
        return outcome

    def write(self) -> dict[str, Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        files = {name: _io.atomic_write_csv(self.out / f"{name}.csv", getattr(self, name), columns)
                 for name, columns in _schema.BENCH_TABLES.items()}
        meta = {
            "run_id": self.run_id,
            "started": self.run_id[:15],
            "config": self.config.model_dump(),
            **_io.system_info(),
            "notes": self.notes,
            "command": " ".join(sys.argv),
        }
        text = json.dumps(meta, indent=1, default=str) + "\n"
        files["meta"] = _io.atomic_write_text(self.out / _schema.BENCH_META, text)
        return files
