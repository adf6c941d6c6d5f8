"""Known answers for ``transforms.csv`` and ``overhead.csv`` (:mod:`spineaug.bench.costs`), with fake timings set by
construction: every column of every row, which batch and entry each timing is made of, the cache of forced timings,
failing entries, and the numbers of the progress lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import spineaug
from spineaug import _schema
from spineaug.bench import costs, session
from spineaug.bench.cases import forced_pipeline, spineaug_fn
from spineaug.bench.config import BenchConfig
from spineaug.bench.references import Reference
from spineaug.bench.session import Run
from spineaug.bench.timing import Timing
from spineaug.pipeline import StepClock

CPU = torch.device("cpu")


class _Run(Run):
    """A run whose batches are small seeded volumes, recording each batch request and each progress line."""

    def __init__(self, config: BenchConfig) -> None:
        self.lines: list[str] = []
        super().__init__(config, Path("/nonexistent"), self.lines.append)
        self.batches: list[tuple] = []

    def batch(self, b, s, device):
        self.batches.append((b, s, device))
        g = torch.Generator().manual_seed(b * 1000 + s)
        return torch.rand(b, 1, s, s, s, generator=g), torch.randint(0, 3, (b, 1, s, s, s), generator=g)


def _config(**overrides) -> BenchConfig:
    return BenchConfig.quick(**{"pipelines": ("nnunet",), "headline": (2, 8), "seed": 5, **overrides})


def _columns(run: Run, **fields) -> dict:
    return dict(run_id=run.run_id, device="cpu", torch_threads=torch.get_num_threads(), **fields)


def _summary(times: list[float]) -> dict:
    return Timing(times, None, "").summary()


# --- _forced: one entry forced on, timed once per (device, threads, entry, case) ---------------------------------

def _recording_time_calls(calls: list[dict], times=(0.001, 0.002, 0.003)):
    def fake(fn, image, label, **kw):
        calls.append(dict(fn=fn, image=image, label=label, **kw))
        return Timing(list(times), None, "")
    return fake


def test_forced_times_the_entry_forced_on_at_the_headline_case(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(session, "time_calls", _recording_time_calls(calls))
    run = _Run(_config(repeats=4, warmup=2))
    entry = {"name": "Gamma", "p": 0.3, "gamma": [0.7, 1.5]}
    timing, status, note = costs._forced(run, CPU, entry)
    assert (timing.times, status, note) == ([0.001, 0.002, 0.003], _schema.STATUS_OK, "")
    assert run.batches == [(2, 8, CPU)]
    (call,) = calls
    assert (call["warmup"], call["repeats"], call["min_repeats"]) == (2, 4, 4)
    assert call["image"].shape == (2, 1, 8, 8, 8) and call["label"].shape == (2, 1, 8, 8, 8)
    # The timed call is the entry forced on (every sample changes), seeded with the run's seed.
    image, label = run.batch(2, 8, CPU)
    want, _ = spineaug_fn(forced_pipeline([entry], 5, CPU), 5)(image, label)
    got, _ = call["fn"](image, label)
    assert torch.equal(got, want) and not torch.equal(got[0], image[0]) and not torch.equal(got[1], image[1])


def test_forced_timings_are_reused_for_the_same_entry_in_any_key_order(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(session, "time_calls", _recording_time_calls(calls))
    run = _Run(_config())
    first = costs._forced(run, CPU, {"name": "Gamma", "p": 0.3, "gamma": [0.7, 1.5]})
    again = costs._forced(run, CPU, {"gamma": [0.7, 1.5], "p": 0.3, "name": "Gamma"})
    assert again is first and len(calls) == 1
    costs._forced(run, CPU, {"name": "Gamma", "p": 0.3, "gamma": [0.8, 1.5]})  # other parameters: timed again
    assert len(calls) == 2
    run.config = _config(headline=(1, 8))  # another case: timed again
    costs._forced(run, CPU, {"name": "Gamma", "p": 0.3, "gamma": [0.7, 1.5]})
    assert len(calls) == 3 and run.batches[-1] == (1, 8, CPU)


def test_forced_with_an_invalid_entry_is_an_error_row_with_the_message(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(session, "time_calls", _recording_time_calls(calls))
    bad = {"name": "Gamma", "gamma": [0.7, 1.5], "not_a_parameter_" + "x" * 60: 1}  # a message over 200 chars
    with pytest.raises(ValueError) as exc:
        forced_pipeline([bad], 5, CPU)
    assert len(str(exc.value)) > 200
    assert costs._forced(_Run(_config()), CPU, bad) == (None, "error", str(exc.value)[:200])
    assert calls == []


# --- transforms.csv -----------------------------------------------------------------------------------------------

FLOOR = [0.002] * 5                  # median 0.002: the floor row
BESIDE = {"Gamma": [0.003] * 5, "GaussianBlur": [0.0015] * 5}  # the floor timed right after each entry
FORCED = [0.001, 0.006, 0.020]       # median 0.006, mean 0.009
REFERENCE = [0.004, 0.004, 0.004]    # mean 0.004


@pytest.fixture()
def transforms_run(monkeypatch):
    """``run_transforms`` over a failing entry, an entry without a reference and one with, timings faked."""
    record: dict[str, list] = dict(time_calls=[], floors=[], forced=[], passes=[], build=[])

    def fake_time_calls(fn, image, label, **kw):  # the references
        record["time_calls"].append(dict(fn=fn, image=image, label=label, **kw))
        return Timing(REFERENCE, None, "")

    def fake_floor_pass(image, label, warmup, repeats):  # the floor row, then one right after each timed entry
        record["floors"].append(dict(image=image, label=label, warmup=warmup, repeats=repeats))
        after = [e["name"] for _, _, e in record["forced"] if e["name"] != "Brightness"]
        return Timing(BESIDE[after[-1]] if record["forced"] else FLOOR, None, "")

    def fake_forced(run, device, entry):
        record["forced"].append((run, device, entry))
        return (None, "error", "boom") if entry["name"] == "Brightness" else (Timing(FORCED, None, ""), "ok", "")

    def fake_count_passes(fn, image, label):
        record["passes"].append(dict(fn=fn, image=image, label=label))
        return 7.0

    def build(image, label):
        record["build"].append((image, label))
        return lambda x, y: x

    entries = [({"name": "Brightness", "p": 0.15}, "nnunet"), ({"name": "Gamma", "p": 0.3}, "nnunet"),
               ({"name": "GaussianBlur", "p": 0.1}, "xdomain")]
    monkeypatch.setattr(costs, "time_calls", fake_time_calls)
    monkeypatch.setattr(costs, "floor_pass", fake_floor_pass)
    monkeypatch.setattr(costs, "_forced", fake_forced)
    monkeypatch.setattr(costs, "count_passes", fake_count_passes)
    monkeypatch.setattr(costs, "transform_entries", lambda presets: entries)
    monkeypatch.setattr(costs, "REFERENCES", {"GaussianBlur": Reference("three 1-D passes", build, 4.0)})
    run = _Run(_config(repeats=3, warmup=2))
    costs.run_transforms(run, CPU)
    return run, record, entries


def test_transform_rows_known_answers(transforms_run):
    run, _, _ = transforms_run
    floor, brightness, gamma, blur = run.transforms
    assert floor == _columns(run, batch=2, size=8, transform=_schema.FLOOR_TRANSFORM, kind=_schema.FLOOR_KIND,
                             source="-", **_summary(FLOOR), floor_median_s="0.002", ratio_to_floor="1", passes="1",
                             status=_schema.STATUS_OK, note="")
    # A failing entry: a row with its status and note, no timing; the next entries still run.
    assert brightness == _columns(run, batch=2, size=8, transform="Brightness", kind="elementwise", source="nnunet",
                                  status="error", note="boom", floor_median_s="0.002")
    # Each timed entry's ratio uses the floor timed right after it (its row's floor_median_s), not the first one.
    assert gamma == _columns(run, batch=2, size=8, transform="Gamma", kind="elementwise", source="nnunet",
                             status="ok", note="", floor_median_s="0.003", **_summary(FORCED),
                             ratio_to_floor="2", passes="7")                          # median 0.006 / 0.003
    assert blur == _columns(run, batch=2, size=8, transform="GaussianBlur", kind="stencil", source="xdomain",
                            status="ok", note="", floor_median_s="0.0015", **_summary(FORCED), ratio_to_floor="4",
                            passes="7", reference="three 1-D passes", reference_mean_s="0.004",
                            ratio_to_reference="2.25", reference_target="4")          # mean 0.009 / 0.004


def test_transform_timings_are_made_of_the_headline_batch_and_each_entry(transforms_run):
    run, record, entries = transforms_run
    assert run.batches[0] == (2, 8, CPU)
    image, label = run.batch(2, 8, CPU)
    reference, = record["time_calls"]
    assert len(record["floors"]) == 3  # the floor row, then after Gamma and GaussianBlur (Brightness failed)
    for call in (reference, *record["floors"]):
        assert torch.equal(call["image"], image) and torch.equal(call["label"], label)
    assert (reference["warmup"], reference["repeats"]) == (2, 5)  # at least 5 calls, whatever the run's repeats
    assert all((f["warmup"], f["repeats"]) == (2, 3) for f in record["floors"])  # floor_pass takes the max itself
    assert [(r, d, e) for r, d, e in record["forced"]] == [(run, CPU, e) for e, _ in entries]
    (b_image, b_label), = record["build"]
    assert torch.equal(b_image, image) and torch.equal(b_label, label)
    # Passes are counted on the headline batch, for the entry forced on with the run's seed.
    for call, (entry, _) in zip(record["passes"], entries[1:]):
        assert torch.equal(call["image"], image) and torch.equal(call["label"], label)
        want, _ = spineaug_fn(forced_pipeline([entry], 5, CPU), 5)(image, label)
        got, _ = call["fn"](image, label)
        assert torch.equal(got, want)


def test_the_floor_is_one_elementwise_pass_timed_at_least_five_times(monkeypatch):
    calls = []
    monkeypatch.setattr(costs, "time_calls", lambda fn, image, label, **kw: calls.append(dict(fn=fn, **kw)) or
                        Timing([0.001] * 5, None, ""))
    image = torch.randn(2, 1, 6, 6, 6, generator=torch.Generator().manual_seed(0))
    label = (image > 0).long()
    costs.floor_pass(image, label, 2, 3)
    costs.floor_pass(image, label, 1, 9)
    assert [(c["warmup"], c["repeats"]) for c in calls] == [(2, 5), (1, 9)]
    # A new tensor of the image's shape, equal to it within the factor: reads and writes every voxel once.
    out = calls[0]["fn"](image, label)
    assert out is not image and out.shape == image.shape and out.dtype == image.dtype
    torch.testing.assert_close(out, image, rtol=2e-4, atol=0)
    assert not torch.equal(out, image)


def test_transform_rows_use_at_least_the_run_repeats_for_floor_and_reference(monkeypatch):
    repeats = []
    monkeypatch.setattr(costs, "time_calls", lambda fn, image, label, **kw: repeats.append(kw["repeats"]) or
                        Timing([0.001] * 3, None, ""))
    monkeypatch.setattr(costs, "transform_entries", lambda presets: [])
    costs.run_transforms(_Run(_config(repeats=8)), CPU)
    assert repeats == [8]


def test_transform_entries_come_from_xdomain_then_nnunet(monkeypatch):
    seen = []
    monkeypatch.setattr(costs, "time_calls", lambda fn, image, label, **kw: Timing([0.001], None, ""))
    monkeypatch.setattr(costs, "transform_entries", lambda presets: seen.append(list(presets)) or [])
    costs.run_transforms(_Run(_config()), CPU)
    assert seen == [["xdomain", "nnunet"]]


def test_transform_progress_lines_carry_the_row_numbers(transforms_run):
    run, _, _ = transforms_run
    lines = [line.split() for line in run.lines]
    assert lines[0][:3] == ["transform", "Brightness", "error:"] and lines[0][-1] == "boom"
    # Gamma: mean 9.00 ms, median 0.006 / its floor's median 0.003 = 2.0; no reference.
    assert lines[1] == ["transform", "Gamma", "9.00", "ms", "mean", "=", "2.0", "x", "floor", "(median),", "7",
                        "passes"]
    assert lines[2][:12] == ["transform", "GaussianBlur", "9.00", "ms", "mean", "=", "4.0", "x", "floor",
                             "(median),", "7", "passes,"]
    assert lines[2][12:] == ["2.25", "x", "reference", "(mean)"]


def test_a_transform_whose_passes_cannot_be_counted_keeps_its_timing_row(monkeypatch, transforms_run):
    def failing(fn, image, label):
        raise RuntimeError("out of memory counting passes " + "x" * 200)

    monkeypatch.setattr(costs, "count_passes", failing)
    monkeypatch.setattr(costs, "time_calls", lambda fn, image, label, **kw: Timing(FLOOR, None, ""))
    monkeypatch.setattr(costs, "transform_entries", lambda presets: [({"name": "Gamma", "p": 0.3}, "nnunet")])
    run = _Run(_config())
    costs.run_transforms(run, CPU)
    gamma = run.transforms[1]
    assert gamma["passes"] == "-" and gamma["ratio_to_floor"] == "2" and gamma["status"] == "ok"  # 0.006 / 0.003
    assert re.fullmatch(r"\s*transform Gamma\s+passes not counted: out of memory counting passes x+", run.lines[0])
    assert run.lines[1].split()[-2:] == ["-", "passes"]


# --- overhead.csv -------------------------------------------------------------------------------------------------

NNUNET_P = {"Spatial": "0.36", "GaussianNoise": "0.1", "GaussianBlur": "0.1", "Brightness": "0.15",
            "Contrast": "0.15", "LowResolution": "0.125", "InverseGamma": "0.1", "Gamma": "0.3", "Flip": "0.875"}
"""The nnunet preset's firing probabilities, from its entries (Spatial: 1 - 0.8 * 0.8; Flip: 1 - 0.5 ** 3)."""


def test_overhead_rows_known_answers_with_a_failing_entry(monkeypatch):
    forced = []

    def fake_forced(run, device, entry):
        forced.append((run, device, entry))
        if entry["name"] == "GaussianBlur":
            return None, "error", "boom"
        mean = 0.020 if entry["name"] == "Spatial" else 0.010
        return Timing([mean / 2, mean / 2, mean * 2], None, ""), "ok", ""

    monkeypatch.setattr(costs, "_forced", fake_forced)
    fixed: list[dict] = []
    monkeypatch.setattr(session, "time_calls", _recording_time_calls(fixed, times=(0.001, 0.002, 0.006)))
    inside_calls = []
    # The steps inside the preset (their own known answers below): nnunet's one resampling holds #0 and #8.
    monkeypatch.setattr(costs, "_inside_calls", lambda run, device, pipeline: inside_calls.append(pipeline) or (
        ({0: 0.05, 4: 0.002}, {0: "one resampling: #0 Spatial, #8 Flip", 8: "one resampling: #0 Spatial, #8 Flip"})
        if pipeline == "nnunet" else ({}, {})))
    run = _Run(_config(pipelines=("nnunet", "xdomain"), headline=(3, 16)))
    costs.run_overhead(run, CPU)
    assert inside_calls == ["nnunet", "xdomain"]
    nnunet = spineaug.Pipeline.from_preset("nnunet").config()["transforms"]
    xdomain = spineaug.Pipeline.from_preset("xdomain").config()["transforms"]
    assert [(r, d, e) for r, d, e in forced] == [(run, CPU, e) for e in nnunet + xdomain]
    assert len(run.overhead) == len(nnunet) + len(xdomain)
    for position, (row, entry) in enumerate(zip(run.overhead, nnunet)):
        name = entry["name"]
        want = _columns(run, pipeline="nnunet", position=position, transform=name, batch=3, size=16,
                        firing_p=NNUNET_P[name], status="ok", note="")
        if name == "GaussianBlur":
            want.update(status="error", note="boom")
        else:
            mean = 0.020 if name == "Spatial" else 0.010
            want.update(forced_mean_s=f"{mean:.6g}", expected_s=f"{float(NNUNET_P[name]) * mean:.6g}")
        if position in (0, 8):
            want.update(note="one resampling: #0 Spatial, #8 Flip")
        if position in (0, 4):
            want.update(in_pipeline_s={0: "0.05", 4: "0.002"}[position])
        assert row == want
    for position, (row, entry) in enumerate(zip(run.overhead[len(nnunet):], xdomain)):
        assert (row["pipeline"], row["position"], row["transform"]) == ("xdomain", position, entry["name"])
        assert row["firing_p"] == f"{costs.firing_probability(entry):.4g}"
    # The progress line: sum of p x mean over the timed entries (GaussianBlur failed):
    # 0.36 * 20 ms + (0.1 + 0.15 + 0.15 + 0.125 + 0.1 + 0.3 + 0.875) * 10 ms = 7.2 + 18.0 = 25.2 ms.
    assert run.lines[0] == "  nnunet: sum of expected entry costs 25.2 ms"
    want_x = sum(costs.firing_probability(e) * (0.020 if e["name"] == "Spatial" else 0.010)
                 for e in xdomain if e["name"] != "GaussianBlur")
    assert run.lines[2] == f"  xdomain: sum of expected entry costs {want_x * 1e3:.1f} ms"
    # The fixed cost: each whole preset on the headline batch at 8^3 (not the headline size), its mean in engine.csv.
    assert [(c["image"].shape, c["fn"].__closure__ is not None) for c in fixed] == [((3, 1, 8, 8, 8), True)] * 2
    assert run.batches[-2:] == [(3, costs.FIXED_COST_SIZE, CPU)] * 2 and costs.FIXED_COST_SIZE == 8
    note = "mean seconds per call on a tiny batch: dispatch, parameter draws, host work"
    assert run.engine == [_columns(run, pipeline=p, check="fixed_cost", batch=3, size=8, verdict="", note=note,
                                   value="0.003") for p in ("nnunet", "xdomain")]
    assert run.lines[1] == "  nnunet: fixed cost per call 3.00 ms (B=3, 8^3)"


def test_forced_pipelines_are_built_with_the_run_seed_on_the_run_device(monkeypatch):
    made = []
    monkeypatch.setattr(costs, "forced_pipeline", lambda entries, seed, device: made.append((seed, device)) or
                        forced_pipeline(entries, seed, device))
    monkeypatch.setattr(session, "time_calls", _recording_time_calls([]))
    costs._forced(_Run(_config()), CPU, {"name": "Gamma", "p": 0.3})
    assert made == [(5, CPU)]
    made.clear()
    monkeypatch.setattr(costs, "time_calls", lambda fn, image, label, **kw: Timing(FLOOR, None, ""))
    monkeypatch.setattr(costs, "count_passes", lambda fn, image, label: 1.0)
    monkeypatch.setattr(costs, "transform_entries", lambda presets: [({"name": "Gamma", "p": 0.3}, "nnunet")])
    costs.run_transforms(_Run(_config()), CPU)
    assert made == [(5, CPU), (5, CPU)]  # the timed pipeline and the one whose passes are counted


def test_the_floor_is_timed_on_the_given_batch(monkeypatch):
    calls = []
    monkeypatch.setattr(costs, "time_calls", _recording_time_calls(calls))
    image, label = torch.rand(2, 1, 4, 4, 4), torch.zeros(2, 1, 4, 4, 4, dtype=torch.long)
    costs.floor_pass(image, label, 1, 5)
    assert calls[0]["image"] is image and calls[0]["label"] is label


def test_fixed_cost_times_the_whole_preset_once_per_case_with_at_least_five_calls(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(session, "time_calls", _recording_time_calls(calls, times=(0.01, 0.01, 0.01)))
    moved = []
    to = spineaug.Pipeline.to
    monkeypatch.setattr(spineaug.Pipeline, "to", lambda self, device: moved.append(device) or to(self, device))
    run = _Run(_config(repeats=3))
    costs._fixed_cost(run, CPU, "nnunet", 2)
    costs._fixed_cost(run, CPU, "nnunet", 2)  # the same case again: its timing is reused
    assert len(calls) == 1 and calls[0]["repeats"] == 5 and moved == [CPU, CPU]
    assert [r["value"] for r in run.engine] == ["0.01", "0.01"]
    assert run.lines[0] == "  nnunet: fixed cost per call 10.00 ms (B=2, 8^3)"
    # the timed call is the whole preset, drawing from the run's seed
    image, label = run.batch(2, costs.FIXED_COST_SIZE, CPU)
    want, _ = spineaug_fn(spineaug.Pipeline.from_preset("nnunet"), 5)(image, label)
    got, _ = calls[0]["fn"](image, label)
    assert torch.equal(got, want)
    run = _Run(_config(repeats=8))
    costs._fixed_cost(run, CPU, "nnunet", 2)
    assert calls[-1]["repeats"] == 8


def test_overhead_progress_line_is_the_sum_in_milliseconds(monkeypatch):
    entries = spineaug.Pipeline.from_preset("nnunet").config()["transforms"]
    mean = 0.1 / sum(costs.firing_probability(e) for e in entries)  # expected costs sum to 100 ms
    monkeypatch.setattr(costs, "_forced", lambda run, device, entry: (Timing([mean] * 3, None, ""), "ok", ""))
    monkeypatch.setattr(costs, "_fixed_cost", lambda *a: None)
    monkeypatch.setattr(costs, "_inside_calls", lambda *a: ({}, {}))
    run = _Run(_config())
    costs.run_overhead(run, CPU)
    assert run.lines == ["  nnunet: sum of expected entry costs 100.0 ms"]


def _stepping_clock(monkeypatch, phase: dict) -> None:
    """Make every clocked step last ``phase["step"]`` seconds exactly (the clock advances that much per reading)."""
    def now(self):
        phase["t"] += phase["step"]
        return phase["t"]
    phase["t"] = 0.0
    monkeypatch.setattr(StepClock, "now", now)


def test_inside_calls_split_each_timed_call_into_its_steps_and_the_pipelines_own_time(monkeypatch):
    phase = {"step": 0.005}  # the warm-up calls' steps last 5 ms; the timed calls' 1 ms
    _stepping_clock(monkeypatch, phase)
    seen = []

    def fake_time_calls(fn, image, label, *, warmup, repeats, **kw):
        seen.append((tuple(image.shape), warmup, repeats))
        for i in range(warmup + repeats):
            phase["step"] = 0.005 if i < warmup else 0.001
            fn(image.clone(), label.clone())
        return Timing([0.010, 0.012, 0.014], None, "")

    monkeypatch.setattr(costs, "time_calls", fake_time_calls)
    run = _Run(_config(repeats=3, warmup=2, headline=(2, 8)))
    inside, together = costs._inside_calls(run, CPU, "nnunet")
    assert seen == [((2, 1, 8, 8, 8), 2, 3)] and run.batches == [(2, 8, CPU)]
    # nnunet: one resampling for Spatial (#0) and Flip (#8), then the seven other entries: 8 steps of 1 ms per call.
    assert sorted(inside) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert all(v == pytest.approx(0.001) for v in inside.values())  # the 5 ms warm-up steps are not counted
    assert together == {0: "one resampling: #0 Spatial, #8 Flip", 8: "one resampling: #0 Spatial, #8 Flip"}
    # own overhead per call: 10, 12, 14 ms minus 8 ms of steps -> 4 ms on average, of a 12 ms mean call.
    base = dict(pipeline="nnunet", batch=2, size=8, verdict="")
    assert run.engine == [
        _columns(run, check="call_mean", value="0.012", note="mean seconds per call over 3 calls with the steps clocked",
                 **base),
        _columns(run, check="own_overhead", value="0.004",
                 note="mean seconds per call outside the steps: parameter draws, input checks, glue", **base)]
    assert run.lines == ["  nnunet: own overhead 4.00 ms of 12.0 ms per call"]


def test_inside_calls_that_fail_leave_rows_that_say_so(monkeypatch):
    def failing(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(costs, "time_calls", failing)
    run = _Run(_config())
    assert costs._inside_calls(run, CPU, "nnunet") == ({}, {})
    assert [(r["check"], r.get("value"), r["note"]) for r in run.engine] == [
        ("call_mean", None, "not measured: RuntimeError: boom"), ("own_overhead", None, "not measured: RuntimeError: boom")]
