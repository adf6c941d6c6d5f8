"""Memory of a pipeline call: the peak it allocates beyond its input batch, and whether memory drifts over a run.

Peak extra memory counts torch's allocator, not the process. On the CPU, ``torch.profiler`` with
``profile_memory=True`` records every allocation and free of c10's CPU allocator (the ``[memory]`` events, in
order, with their sizes); their running sum's maximum is the call's peak beyond what existed before it. The
alternatives do not measure this: ``tracemalloc`` sees only Python's allocator (a call that allocates hundreds of
MiB of tensors shows a few KiB), and the process RSS includes the interpreter, every imported library, glibc's
arenas and pages freed but not returned, so its high-water mark says little about one call. On CUDA it is
``torch.cuda.max_memory_allocated`` minus what was allocated before the call.

Drift compares the process RSS (and on CUDA ``torch.cuda.memory_allocated``) after ``early`` and after ``late``
calls of the same pipeline: a leak (growing caches, references kept per call) shows as growth; here RSS is the
right measure, since a leak anywhere in the process is what stalls a long training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from spineaug import _io

CPU_METHOD = "torch.profiler memory events (CPU allocator)"
CUDA_METHOD = "torch.cuda.max_memory_allocated"


def _cpu_peak(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn(image, label)
        del out
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += int(e.nbytes())
        peak = max(peak, current)
    return peak


def peak_extra_bytes(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor) -> tuple[int, str]:
    """Bytes allocated by one call ``fn(image, label)`` at its peak beyond what existed before (its outputs
    included); returns ``(bytes, method)``. Inputs are cloned before the measurement starts."""
    x, y = image.clone(), label.clone()
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        out = fn(x, y)
        torch.cuda.synchronize(x.device)
        peak = torch.cuda.max_memory_allocated(x.device) - before
        del out
        return int(peak), CUDA_METHOD
    return _cpu_peak(fn, x, y), CPU_METHOD


@dataclass
class Drift:
    """Memory after ``early`` and after ``late`` calls (bytes; ``None`` where not measurable)."""

    early: int
    late: int
    rss_early: int | None
    rss_late: int | None
    cuda_early: int | None = None
    cuda_late: int | None = None
    seconds: float = 0.0


def memory_drift(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor, early: int, late: int) -> Drift:
    """Call ``fn(image, label)`` ``late`` times; read RSS (and CUDA allocated memory) after ``early`` and ``late``."""
    def read() -> tuple[int | None, int | None]:
        if image.is_cuda:
            torch.cuda.synchronize(image.device)
            return _io.read_proc_status("VmRSS"), int(torch.cuda.memory_allocated(image.device))
        return _io.read_proc_status("VmRSS"), None

    started = time.perf_counter()
    marks: dict[int, tuple[int | None, int | None]] = {}
    for i in range(1, late + 1):
        fn(image, label)
        if i in (early, late):
            marks[i] = read()
    (rss0, cuda0), (rss1, cuda1) = marks[early], marks[late]
    return Drift(early, late, rss0, rss1, cuda0, cuda1, time.perf_counter() - started)
