"""Cost of each transform forced on (``transforms.csv``) and the overhead of each preset (``overhead.csv``).

The floor is one elementwise pass ``x * c`` over the batch (read once, write once): the memory-traffic limit of any
transform that produces a new image. A preset's *expected* cost is the sum over its entries of the per-sample firing
probability times the entry's mean time forced on (only firing samples are computed, so cost grows with how many
fire); the *overhead* is the pipeline's measured mean minus that sum (dispatch, parameter draws, the fused
resampling's bookkeeping...), which the report sets against the 5 % target. That gap also holds whatever the
firing-probability model misses (work that spreads worse over the threads when one sample fires than when all do), so
the *fixed cost* is measured directly as well: the preset's mean on a batch of the same size at :data:`FIXED_COST_SIZE`
voxels per side, where the tensor work is negligible and what remains is dispatch, parameter draws and host work per
call (``engine.csv``, check ``fixed_cost``), an upper bound on the overhead that does not depend on the model.
The pipeline's own overhead is also measured inside each call of the preset at the headline case
(:func:`spineaug.pipeline.timing_steps`): the call's time minus the time of its steps (the one resampling, each other
entry's ``apply``), i.e. parameter draws, input checks and the glue between steps (``engine.csv``, checks
``call_mean`` and ``own_overhead``); the same calls give each entry's mean time inside the preset
(``overhead.csv``, ``in_pipeline_s``), which shows where the firing model's residual goes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

import spineaug
from spineaug import _schema
from spineaug.pipeline import timing_steps
from spineaug.bench.cases import forced_pipeline, kind, spineaug_fn, transform_entries
from spineaug.bench.probes import count_passes
from spineaug.bench.references import REFERENCES
from spineaug.bench.timing import time_calls
from spineaug.bench.session import Outcome, Run


def _forced(run: Run, device: torch.device, entry: dict[str, Any]) -> Outcome:
    """Mean time of ``entry`` forced on at the headline case (timed once per entry and thread count)."""
    b, s = run.config.headline
    key = (device.type, torch.get_num_threads(), "forced:" + json.dumps(entry, sort_keys=True), b, s)
    try:
        aug = forced_pipeline([entry], run.config.seed, device)
    except (ValueError, TypeError) as exc:
        return None, "error", str(exc)[:200]
    return run.measure(spineaug_fn(aug, run.config.seed), lambda: run.batch(b, s, device), device,
                       repeats=run.config.repeats, key=key)


def floor_pass(image: torch.Tensor, label: torch.Tensor, warmup: int, repeats: int):
    """Time one elementwise pass ``x * c`` over the batch (reads and writes every voxel once), at least 5 calls."""
    factor = torch.tensor(1.0001, device=image.device)
    return time_calls(lambda x, y: torch.mul(x, factor), image, label, warmup=warmup, repeats=max(repeats, 5))


def run_transforms(run: Run, device: torch.device) -> None:
    """Fill ``transforms.csv``: each transform forced on, versus one elementwise pass over the same batch.

    The floor is timed again right after each transform and that row's ratio uses it: on a shared machine whose
    speed drifts during the run, the drift cancels in the ratio (the first floor is the floor row)."""
    cfg = run.config
    b, s = cfg.headline
    image, label = run.batch(b, s, device)
    floor = floor_pass(image, label, cfg.warmup, cfg.repeats)
    floor_med = floor.median
    row = run.base(device, batch=b, size=s)
    run.transforms.append(dict(row, transform=_schema.FLOOR_TRANSFORM, kind=_schema.FLOOR_KIND, source="-",
                               **floor.summary(), floor_median_s=f"{floor_med:.6g}", ratio_to_floor="1", passes="1",
                               status=_schema.STATUS_OK, note=""))
    for entry, source in transform_entries(p for p in ("xdomain", "nnunet") if p in spineaug.presets()):
        name = entry["name"]
        base = dict(row, transform=name, kind=kind(name), source=source)
        timing, status, note = _forced(run, device, entry)
        base.update(status=status, note=note, floor_median_s=f"{floor_med:.6g}")
        if timing is None:
            run.transforms.append(base)
            run.log(f"  transform {name:22s} {status}: {note}")
            continue
        beside = floor_pass(image, label, cfg.warmup, cfg.repeats).median
        base.update(floor_median_s=f"{beside:.6g}")
        ref = {}
        if name in REFERENCES:
            reference = time_calls(REFERENCES[name].build(image, label), image, label, warmup=cfg.warmup,
                                   repeats=max(cfg.repeats, 5))
            ref = dict(reference=REFERENCES[name].description, reference_mean_s=f"{reference.mean:.6g}",
                       ratio_to_reference=f"{timing.mean / reference.mean:.4g}",
                       reference_target=f"{REFERENCES[name].target:g}")
        try:
            passes = f"{count_passes(spineaug_fn(forced_pipeline([entry], cfg.seed, device), cfg.seed), image, label):.3g}"
        except (RuntimeError, ValueError, TypeError) as exc:  # e.g. out of memory: the timing row still counts
            passes = "-"
            run.log(f"  transform {name:22s} passes not counted: {str(exc)[:120]}")
        run.transforms.append(dict(base, **timing.summary(), ratio_to_floor=f"{timing.median / beside:.4g}",
                                   passes=passes, **ref))
        run.log(f"  transform {name:22s} {timing.mean * 1e3:9.2f} ms mean = {timing.median / beside:6.1f} x floor "
                f"(median), {passes} passes" + (f", {ref['ratio_to_reference']} x reference (mean)" if ref else ""))


FIXED_COST_SIZE = 8
"""Side of the tiny volume whose preset time measures the fixed per-call cost."""


def firing_probability(entry: dict[str, Any]) -> float:
    """Per-sample probability that a config entry changes the sample (``RandomTransform.firing_probability``)."""
    return spineaug.TRANSFORMS[entry["name"]].firing_probability(entry)


def run_overhead(run: Run, device: torch.device) -> None:
    """Fill ``overhead.csv``: every entry of every preset forced on with its own parameters, its expected cost and
    its mean time inside the preset; and in ``engine.csv`` the preset's own overhead and fixed cost per call."""
    b, s = run.config.headline
    for pipeline in run.config.pipelines:
        inside, together = _inside_calls(run, device, pipeline)
        total = 0.0
        for position, entry in enumerate(spineaug.Pipeline.from_preset(pipeline).config()["transforms"]):
            p = firing_probability(entry)
            timing, status, note = _forced(run, device, entry)
            if position in together:
                note = "; ".join(filter(None, [note, together[position]]))
            row = run.base(device, pipeline=pipeline, position=position, transform=entry["name"], batch=b, size=s,
                           firing_p=f"{p:.4g}", status=status, note=note)
            if timing is not None:
                total += p * timing.mean
                row.update(forced_mean_s=f"{timing.mean:.6g}", expected_s=f"{p * timing.mean:.6g}")
            if position in inside:
                row.update(in_pipeline_s=f"{inside[position]:.6g}")
            run.overhead.append(row)
        run.log(f"  {pipeline}: sum of expected entry costs {total * 1e3:.1f} ms")
        _fixed_cost(run, device, pipeline, b)


@dataclass(frozen=True)
class StepProfile:
    """Where a pipeline's calls go, from :func:`profile_steps`.

    Attributes:
        call_mean: Mean seconds per call.
        own: Mean seconds per call outside the steps: parameter draws, input checks, glue.
        steps: Mean seconds per call of each step, keyed by the positions of its entries in the config (the one
            resampling holds every geometric entry), in the order the steps run.
        calls: The number of timed calls.
    """

    call_mean: float
    own: float
    steps: dict[tuple[int, ...], float]
    calls: int


def profile_steps(aug: spineaug.Pipeline, image: torch.Tensor, label: torch.Tensor, *, seed: int, warmup: int,
                  repeats: int) -> StepProfile:
    """Time ``aug`` on fresh clones of ``image``/``label`` (:func:`time_calls`, drawing from one generator seeded
    ``seed``) with its steps clocked (:func:`spineaug.pipeline.timing_steps`); the warm-up calls are not counted."""
    with timing_steps(image.device) as clock:
        timing = time_calls(spineaug_fn(aug, seed), image, label, warmup=warmup, repeats=repeats)
    calls = clock.calls[-len(timing.times):]  # the warm-up calls come first
    n = len(calls)
    steps: dict[tuple[int, ...], float] = {}
    for call in calls:
        for positions, seconds in call:
            steps[positions] = steps.get(positions, 0.0) + seconds / n
    own = sum(t - sum(sec for _, sec in call) for t, call in zip(timing.times, calls)) / n
    return StepProfile(call_mean=timing.mean, own=own, steps=steps, calls=n)


def step_name(aug: spineaug.Pipeline, positions: tuple[int, ...]) -> str:
    """A step of ``aug`` by its entries: ``"#3 Brightness"``, or ``"resampling: #0 Spatial, #8 Flip"`` for the one
    resampling of its geometric entries."""
    names = ", ".join(f"#{i} {aug.transforms[i].name}" for i in positions)
    return f"resampling: {names}" if aug.transforms[positions[0]].geometric else names


def _inside_calls(run: Run, device: torch.device, pipeline: str) -> tuple[dict[int, float], dict[int, str]]:
    """Profile the preset at the headline case (:func:`profile_steps`); append its mean call and own overhead to
    ``engine.csv``.

    Returns:
        The mean seconds per call of each step, keyed by the position of its first entry (the one resampling holds
        every geometric entry), and a note for each geometric entry saying which entries it was resampled with.
    """
    b, s = run.config.headline
    aug = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)  # as the preset's timing
    row = dict(pipeline=pipeline, batch=b, size=s, verdict="")
    try:
        image, label = run.batch(b, s, device)
        prof = profile_steps(aug, image, label, seed=run.config.seed, warmup=run.config.warmup,
                             repeats=run.config.repeats)
    except Exception as exc:  # as run.measure: a failing case becomes a row, the run goes on
        note = f"not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        run.engine += [run.base(device, check=check, note=note, **row) for check in ("call_mean", "own_overhead")]
        return {}, {}
    inside = {positions[0]: seconds for positions, seconds in prof.steps.items()}
    together = {i: "one " + step_name(aug, positions) for positions in prof.steps if len(positions) > 1
                for i in positions}
    run.engine.append(run.base(device, check="call_mean", value=f"{prof.call_mean:.6g}",
                               note=f"mean seconds per call over {prof.calls} calls with the steps clocked", **row))
    run.engine.append(run.base(device, check="own_overhead", value=f"{prof.own:.6g}",
                               note="mean seconds per call outside the steps: parameter draws, input checks, glue",
                               **row))
    run.log(f"  {pipeline}: own overhead {prof.own * 1e3:.2f} ms of {prof.call_mean * 1e3:.1f} ms per call")
    return inside, together


def _fixed_cost(run: Run, device: torch.device, pipeline: str, b: int) -> None:
    """Append the preset's mean at ``b`` x :data:`FIXED_COST_SIZE`^3 to ``engine.csv`` (check ``fixed_cost``)."""
    s = FIXED_COST_SIZE
    aug = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)  # as the preset's timing
    timing, _, note = run.measure(spineaug_fn(aug, run.config.seed), lambda: run.batch(b, s, device), device,
                                  repeats=max(run.config.repeats, 5),
                                  key=(device.type, torch.get_num_threads(), "fixed:" + pipeline, b, s))
    row = run.base(device, pipeline=pipeline, check="fixed_cost", batch=b, size=s, verdict="",
                   note=note or "mean seconds per call on a tiny batch: dispatch, parameter draws, host work")
    if timing is not None:
        row.update(value=f"{timing.mean:.6g}")
        run.log(f"  {pipeline}: fixed cost per call {timing.mean * 1e3:.2f} ms (B={b}, {s}^3)")
    run.engine.append(row)
