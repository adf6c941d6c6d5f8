"""The asv suite: every benchmark sets up and runs once at tiny sizes (a broken benchmark fails ``make test``), and
the configuration records results in the repository."""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_asv_benchmark_sets_up_and_runs_once(monkeypatch):
    """What ``asv run --quick`` does, in-process and tiny: import, setup and one call of every benchmark function."""
    monkeypatch.setenv("SPINEAUG_ASV_SIZES", "8")
    monkeypatch.setenv("SPINEAUG_ASV_PATCH", "16")
    monkeypatch.syspath_prepend(str(ROOT))
    for name in [m for m in list(sys.modules) if m == "benchmarks" or m.startswith("benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    ran: dict[str, int] = {}
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not hasattr(cls, "params"):
                continue
            methods = [m for m in dir(cls) if m.startswith(("time_", "peakmem_", "track_"))]
            for combo in itertools.product(*cls.params):
                obj = cls()
                try:
                    obj.setup(*combo)
                except NotImplementedError:
                    continue  # asv skips these too (missing library or environment)
                for m in methods:
                    value = getattr(obj, m)(*combo)
                    if m.startswith("track_"):
                        assert isinstance(value, (int, float)), (cls.__name__, m, combo, value)
                    ran[f"{cls.__name__}.{m}"] = ran.get(f"{cls.__name__}.{m}", 0) + 1
    for name in ("Pipelines.time_pipeline", "Pipelines.track_peak_extra_bytes", "Transforms.time_transform",
                 "Transforms.peakmem_transform", "TrainingIteration.time_iteration",
                 "TrainingIteration.peakmem_iteration", "Baselines.time_baseline", "MatchedWork.time_matched"):
        assert ran.get(name), name
    assert ran["TrainingIteration.time_iteration"] >= 4  # every arm on the CPU
    assert ran["MatchedWork.time_matched"] >= 6  # torchio, monai, kornia for both presets at least


def test_asv_results_are_recorded_in_the_repository():
    text = (ROOT / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    assert conf["results_dir"] == "benchmarks/results"
    make = (ROOT / "Makefile").read_text()
    recipe = make[make.index("\nasv:"):].split("\n\n")[0]
    assert "--set-commit-hash" in recipe and "--machine" in recipe and "--quick" not in recipe
    assert "ASV_PYTHONPATH=$(CURDIR)" in recipe
