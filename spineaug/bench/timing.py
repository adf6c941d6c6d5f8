"""Timing statistics: repeated calls with fresh random parameters, their quantiles and peak memory."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from spineaug import _io


@dataclass
class Timing:
    """Seconds per call of one case."""

    times: list[float]
    peak_mem: int | None
    mem_kind: str

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    def mean_interval(self, confidence: float = 0.95, resamples: int = 2000) -> tuple[float, float]:
        """Percentile-bootstrap interval of the mean (seeded, so a re-render gives the same numbers).

        The cost per call is bimodal (a call that fires a resampling costs many times one that does not), so no
        normal approximation: resample the calls with replacement and take the quantiles of the resampled means.
        """
        xs = np.asarray(self.times, dtype=np.float64)
        if len(xs) < 2:
            return float(xs[0]), float(xs[0])
        rng = np.random.default_rng(len(xs))
        means = xs[rng.integers(0, len(xs), size=(resamples, len(xs)))].mean(axis=1)
        alpha = (1 - confidence) / 2
        return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))

    def quantile(self, q: float) -> float:
        xs = sorted(self.times)
        if len(xs) == 1:
            return xs[0]
        pos = q * (len(xs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    def summary(self) -> dict[str, Any]:
        """The statistics columns of a result row, as written to the CSV files (6 significant digits).

        The one place rows format timings; a table keeps the columns its schema lists and drops the others.
        """
        med = self.median
        q25, q75 = self.quantile(0.25), self.quantile(0.75)
        low, high = self.mean_interval()
        return dict(
            repeats=len(self.times), median_s=f"{med:.6g}", q25_s=f"{q25:.6g}", q75_s=f"{q75:.6g}",
            iqr_s=f"{q75 - q25:.6g}", mean_s=f"{self.mean:.6g}", mean_ci_low_s=f"{low:.6g}",
            mean_ci_high_s=f"{high:.6g}",
            min_s=f"{min(self.times):.6g}", max_s=f"{max(self.times):.6g}",
            peak_mem_bytes="" if self.peak_mem is None else str(int(self.peak_mem)), mem_kind=self.mem_kind,
        )


def time_calls(
    fn: Callable[[Tensor, Tensor], Any],
    image: Tensor,
    label: Tensor,
    *,
    warmup: int,
    repeats: int,
    min_repeats: int = 1,
    max_seconds: float = math.inf,
) -> Timing:
    """Time ``fn`` on fresh clones of ``image``/``label`` (cloned outside the clock: some libraries work in place).

    The result is released after the clock stops, as the inputs are cloned before it starts: freeing a call's
    output (on the CPU, returning tens of MiB to the system) is the caller's business, not the call's.

    Each call draws fresh random parameters (the pipelines' generators advance). On CUDA the device is synchronised
    before starting and before stopping the clock, so the time covers the queued kernels.
    """
    cuda = image.is_cuda
    for _ in range(warmup):
        fn(image.clone(), label.clone())
    if cuda:
        torch.cuda.synchronize(image.device)
        torch.cuda.reset_peak_memory_stats(image.device)
    else:
        _io.reset_peak_rss()
    times: list[float] = []
    started = time.perf_counter()
    for i in range(repeats):
        x, y = image.clone(), label.clone()
        if cuda:
            torch.cuda.synchronize(image.device)
        t0 = time.perf_counter()
        result = fn(x, y)
        if cuda:
            torch.cuda.synchronize(image.device)
        times.append(time.perf_counter() - t0)
        del x, y, result
        if i + 1 >= min_repeats and time.perf_counter() - started > max_seconds:
            break
    if cuda:
        return Timing(times, int(torch.cuda.max_memory_allocated(image.device)), "cuda_max_allocated")
    return Timing(times, _io.peak_rss_bytes(), "rss_peak")
