"""Success paths of the ``spineaug`` command: ``--version``, ``config <preset|transform|file>``, ``bench`` with its
flags, and ``report`` on a tiny benchmark run (each must fail a test when broken)."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch

import spineaug
from spineaug import bench, cli


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"spineaug {spineaug.__version__}\n"


@pytest.mark.parametrize("name", spineaug.presets())
def test_config_of_a_preset_prints_its_full_config(capsys, name):
    assert cli.main(["config", name]) == 0
    assert json.loads(capsys.readouterr().out) == spineaug.Pipeline.from_preset(name).config()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_of_a_file_prints_normalised_values_with_defaults(tmp_path, capsys, suffix):
    path = tmp_path / f"mine{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"seed": 7, "transforms": [{"name": "Gamma", "p": "0.5"}, {"name": "Flip"}]}))
    else:
        path.write_text("seed: 7\ntransforms:\n  - {name: Gamma, p: '0.5'}\n  - {name: Flip}\n")
    assert cli.main(["config", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    gamma = spineaug.TRANSFORMS["Gamma"]().config()
    flip = spineaug.TRANSFORMS["Flip"]().config()
    assert shown == {"seed": 7, "transforms": [{**gamma, "p": 0.5}, flip]}


FLAGS = ["--pipelines", "nnunet", "--baselines", "torchio,monai", "--sizes", "16,24", "--batches", "1,3",
         "--device", "cpu", "--repeats", "4", "--warmup", "2", "--max-seconds", "1.5", "--threads", "1",
         "--seed", "9", "--no-transforms", "--no-checks", "--headline", "2,16"]  # fmt: skip
FLAG_VALUES = dict(pipelines=("nnunet",), baselines=("torchio", "monai"), sizes=(16, 24), batches=(1, 3),
                   devices=("cpu",), repeats=4, warmup=2, max_seconds=1.5, threads=(1,), seed=9, transforms=False,
                   checks=False, headline=(2, 16))  # fmt: skip


@pytest.mark.parametrize("quick", [False, True])
def test_bench_passes_every_flag_to_the_run(tmp_path, monkeypatch, quick):
    calls = []
    monkeypatch.setattr(bench, "run", lambda config, out: calls.append((config, out)))
    argv = ["bench", "--out", str(tmp_path / "b"), *FLAGS, *(["--quick"] if quick else [])]
    assert cli.main(argv) == 0
    expected = bench.BenchConfig.quick(**FLAG_VALUES) if quick else bench.BenchConfig(**FLAG_VALUES)
    assert calls == [(expected, str(tmp_path / "b"))]
    assert cli.main(["bench", "--out", "x"]) == 0 and calls[-1] == (bench.BenchConfig(), "x")
    assert cli.main(["bench", "--quick", "--out", "x"]) == 0 and calls[-1] == (bench.BenchConfig.quick(), "x")


def test_bench_then_report_on_a_tiny_run(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    out = tmp_path / "results" / "bench"
    argv = ["bench", "--out", str(out), "--pipelines", "none", "--baselines", "", "--sizes", "8", "--batches", "1,2",
            "--repeats", "1", "--warmup", "0", "--threads", "1", "--no-transforms", "--no-checks", "--device", "cpu",
            "--headline", "2,8"]
    assert cli.main(argv) == 0
    with open(out / "pipelines.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["pipeline"], r["impl"], r["batch"], r["size"], r["status"]) for r in rows) == [
        ("none", "spineaug", "1", "8", "ok"), ("none", "spineaug", "2", "8", "ok")]
    capsys.readouterr()
    reports = tmp_path / "reports"
    argv = ["report", "--results", str(tmp_path / "results"), "--out", str(reports),
            "--study-data", str(tmp_path / "none")]
    assert cli.main(argv) == 0  # a reduced run: its page goes beside the full run's, never over it
    captured = capsys.readouterr()
    assert captured.out.split() == [str(reports / "reduced" / "benchmark.md"), str(reports / "README.md")]
    assert "reduced run (pipelines ['none'] (full run: ['nnunet', 'xdomain'])" in captured.err
    assert not (reports / "benchmark.md").exists()
    assert cli.main([*argv, "--allow-reduced"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(reports / "benchmark.md"), str(reports / "README.md")]
    assert "no study results" in captured.err and "no fidelity results" in captured.err
    index = (reports / "README.md").read_text()
    assert "](benchmark.md)" in index and "## Missing inputs" in index
    text = (reports / "benchmark.md").read_text()
    assert "## Matched work on cpu" in text and "### `none`" in text
    assert (reports / "benchmark_bars.png").stat().st_size > 1000


def test_report_sends_a_quick_benchmark_run_elsewhere(tmp_path, capsys, monkeypatch):
    """`make bench-quick` then `make report` must not replace the committed reports/benchmark.md."""
    from spineaug.bench.config import reduced_settings
    from spineaug.report import benchmark

    assert reduced_settings(json.loads(json.dumps(bench.BenchConfig().model_dump()))) == []
    written = []
    monkeypatch.setattr(benchmark, "write", lambda results, out: written.append(str(out)) or f"{out}/benchmark.md")
    results = tmp_path / "results"
    (results / "bench").mkdir(parents=True)
    (results / "bench" / "pipelines.csv").write_text("x\n")
    argv = ["report", "--results", str(results), "--out", str(tmp_path / "reports"), "--study-data", str(tmp_path)]
    for config, target in ((bench.BenchConfig.quick(), "reports/reduced"), (bench.BenchConfig(), "reports")):
        meta = {"config": json.loads(json.dumps(config.model_dump()))}
        (results / "bench" / "meta.json").write_text(json.dumps(meta))
        assert cli.main(argv) == 0
        assert written[-1] == str(tmp_path / target)
    (results / "bench" / "training_meta.json").write_text(json.dumps({"config": {"iterations": 2}}))
    assert cli.main(argv) == 0 and written[-1] == str(tmp_path / "reports" / "reduced")
    assert "training iterations 2 (full run: 10)" in capsys.readouterr().err


def test_presets_lists_each_with_a_one_line_description(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == spineaug.presets()
    assert all(len(line) <= 120 and len(line.split()) > 2 for line in lines)
    assert any(line.startswith("none") and "No augmentation" in line for line in lines)
    assert cli.one_line("A thing (with a note (nested)): it works. More text.") == "A thing: it works"


@pytest.mark.parametrize(("name", "hint"), [("xdomian", "'xdomain'"), ("gama", "'Gamma'"), ("nnUNet", "'nnunet'")])
def test_config_suggests_close_names(capsys, name, hint):
    assert cli.main(["config", name]) == 2
    err = capsys.readouterr().err
    assert f"{name!r} is not a config file, a preset or a transform name; did you mean {hint}" in err
    assert cli.main(["config", "zzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err
    assert cli.main(["config", "missing.json"]) == 2  # a file name keeps the file error
    assert "not found" in capsys.readouterr().err


def test_long_commands_take_quiet_verbose_and_out(tmp_path, monkeypatch, capsys):
    parser = cli.build_parser()
    for argv in (["bench"], ["study"], ["phantom", "--out", "x"], ["predict", "-m", "m", "-i", "i", "-o", "o"]):
        args = parser.parse_args([*argv, "--quiet", "--verbose"])
        assert args.quiet and args.verbose and args.out
    calls = []
    monkeypatch.setattr(bench, "run", lambda config, out, **kw: calls.append(kw) or {})
    assert cli.main(["bench", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls[-1]["log"]("hidden") is None
    assert cli.main(["bench", "--quick", "--out", str(tmp_path)]) == 0 and calls[-1] == {}
    monkeypatch.setattr(bench, "run", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad size")))
    assert cli.main(["bench", "--out", str(tmp_path)]) == 2 and "error: bad size" in capsys.readouterr().err
    with pytest.raises(ValueError, match="bad size"):  # --verbose: the traceback instead of one line
        cli.main(["bench", "--out", str(tmp_path), "--verbose"])


def test_profile_prints_each_step_its_share_and_the_own_overhead(monkeypatch, capsys):
    from spineaug.bench import costs

    seen = {}

    def fake(aug, image, label, *, seed, warmup, repeats):
        seen.update(config=aug.config(), shape=tuple(image.shape), label=label.dtype, seed=seed, warmup=warmup,
                    repeats=repeats, check_finite=aug.check_finite)
        return costs.StepProfile(call_mean=0.100, own=0.004, calls=repeats,
                                 steps={(0, 8): 0.060, (1,): 0.010, (5,): 0.026})

    monkeypatch.setattr(costs, "profile_steps", fake)
    assert cli.main(["profile", "nnunet", "--batch", "3", "--size", "16", "--calls", "7", "--warmup", "1",
                     "--seed", "4"]) == 0
    assert seen == dict(config=spineaug.Pipeline.from_preset("nnunet").config(), shape=(3, 1, 16, 16, 16),
                        label=torch.int64, seed=4, warmup=1, repeats=7, check_finite=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("spineaug profile nnunet: B=3, 1x16^3 phantom patches, cpu, ")
    assert "mean of 7 calls after 1 warm-up (seed 4)" in lines[0]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]
    assert rows == [["resampling: #0 Spatial, #8 Flip", "60.00", "60.0%"], ["#1 GaussianNoise", "10.00", "10.0%"],
                    ["#5 LowResolution", "26.00", "26.0%"],
                    ["own overhead (parameter draws, input checks, glue)", "4.00", "4.0%"],
                    ["call (mean)", "100.00", "100.0%"]]


def test_profile_runs_a_transform_or_a_config_for_real(tmp_path, capsys):
    assert cli.main(["profile", "Gamma", "--size", "16", "--calls", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "\n#0 Gamma " in out and "own overhead" in out
    config = tmp_path / "two.yaml"
    config.write_text("transforms:\n  - {name: Flip, p: 1.0}\n  - {name: Brightness, p: 1.0}\n")
    assert cli.main(["profile", str(config), "--size", "16", "--calls", "3", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "1 thread(s), mean of 3 calls" in lines[0]
    steps = [line.split("  ")[0] for line in lines[2:]]
    assert steps == ["resampling: #0 Flip", "#1 Brightness", "own overhead (parameter draws, input checks, glue)",
                     "call (mean)"]
    shares = [float(line.rsplit(" ", 1)[1].rstrip("%")) for line in lines[2:-1]]
    assert sum(shares) == pytest.approx(100, abs=0.3)  # the steps and the own overhead make up the call


@pytest.mark.parametrize(("argv", "message"), [
    (["profile", "nnunet", "--calls", "0"], "--calls must be at least 1, got 0"),
    (["profile", "nnunet", "--batch", "0"], "--batch must be at least 1, got 0"),
    (["profile", "nnunet", "--size", "4"], "--size must be at least 8, got 4"),
    (["profile", "nnunet", "--warmup", "-1"], "--warmup must be at least 0, got -1"),
    (["profile", "nnunet", "--threads", "0"], "--threads must be at least 1, got 0"),
    (["profile", "xdomian"], "did you mean 'xdomain'"),
    (["profile", "missing.yaml"], "missing.yaml"),
])
def test_profile_refuses_bad_input_before_timing_anything(monkeypatch, capsys, argv, message):
    from spineaug.bench import costs

    monkeypatch.setattr(costs, "profile_steps", lambda *a, **k: pytest.fail("timed despite bad input"))
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_profile_on_a_cuda_device_the_machine_lacks_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["profile", "nnunet", "--device", "cuda"]) == 2
    assert "--device cuda: this machine has no CUDA device" in capsys.readouterr().err
