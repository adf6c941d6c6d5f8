"""Mutation testing (mutmut) of the modules that compute reported numbers and of the integrations, one at a time.

Usage: ``python tools/mutation.py [MODULE ...] [--minutes N] [--jobs N]`` (``make mutation``; default: every scope).

Each module runs in its own scratch copy of the repository (``build/mutation/<module>/``: ``spineaug/``, ``tests/``
and ``pyproject.toml`` with a ``[tool.mutmut]`` section naming the module and its fast tests), so the working tree
is never touched and runs of different modules do not share state. Each run is time-boxed (``--minutes``); a cut
run still reports the mutants it judged. Prints, per module, killed / judged and the surviving mutants' names
(``cd build/mutation/<module> && mutmut show NAME`` shows the diff). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCOPES: dict[str, list[str]] = {
    "spineaug/study/statistics.py": ["tests/study/test_study_statistics.py", "tests/study/test_comparisons.py"],
    "spineaug/study/evaluate.py": ["tests/study/test_study_evaluate.py",
                                   "tests/study/test_study_run.py::test_evaluation_resumes_per_case"],
    "spineaug/report/study/tables.py": ["tests/test_report_study_tables.py"],
    "spineaug/report/study/results.py": ["tests/test_report_study_tables.py"],
    "spineaug/report/bench_targets.py": ["tests/bench/test_bench_numbers.py"],
    "spineaug/bench/costs.py": ["tests/bench/test_bench_costs.py", "tests/bench/test_bench_numbers.py"],
    "spineaug/bench/timing.py": ["tests/bench/test_bench_numbers.py"],
    "spineaug/integrations/monai.py": ["tests/integrations/test_monai_behaviour.py", "tests/integrations/test_monai.py",
                                       "tests/test_ignored_inputs.py"],
    "spineaug/integrations/torchio.py": ["tests/integrations/test_torchio_behaviour.py",
                                         "tests/integrations/test_torchio.py", "tests/test_ignored_inputs.py"],
    "spineaug/integrations/nnunet/trainers.py": ["tests/integrations/test_nnunet_trainer_step.py",
                                                 "tests/integrations/test_nnunet.py"],
}
"""Module -> the fast tests that guard it (slow tests are deselected). The study page's modules are guarded by
their known-answer tests; ``tests/test_report_study.py`` renders whole pages (about 25 s a run), too slow per mutant."""


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _scratch(module: str, tests: list[str]) -> Path:
    work = ROOT / "build" / "mutation" / re.sub(r"[^A-Za-z0-9]+", "_", module.removesuffix(".py"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("spineaug", "tests"):
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", text)
    text += (f"\n[tool.mutmut]\nsource_paths = [\"spineaug\"]\nonly_mutate = {_toml_list([module])}\n"
             f"also_copy = [\"tests\", \"pyproject.toml\"]\n"
             f"pytest_add_cli_args_test_selection = {_toml_list([*tests, '-m', 'not slow'])}\n")
    (work / "pyproject.toml").write_text(text)
    return work


def run(module: str, minutes: float, jobs: int) -> dict[str, object]:
    tests = SCOPES[module]
    work = _scratch(module, tests)
    mutmut = [sys.executable, "-m", "mutmut"]
    # Its own process group: at the time box, SIGINT lets mutmut stop its workers (results are saved per mutant).
    with open(work / "mutmut-run.log", "w") as log:  # its progress spinner, kept out of the summary
        # One OpenMP thread: mutmut forks each mutant's test run from a process that has run torch, and a forked
        # child can hang in torch's OpenMP pool (every mutant then reads as a timeout).
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.Popen([*mutmut, "run", "--max-children", str(jobs)], cwd=work, start_new_session=True,
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        proc.wait(timeout=minutes * 60)
        cut = False
    except subprocess.TimeoutExpired:
        cut = True
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True)
    states: dict[str, str] = {}
    for line in listing.stdout.splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name:
            states[name] = state
    killed = sum(s == "killed" for s in states.values())
    judged = sum(s in ("killed", "survived", "timeout", "suspicious") for s in states.values())
    survivors = sorted(n for n, s in states.items() if s == "survived")
    return dict(module=module, killed=killed, judged=judged, total=len(states), cut=cut, survivors=survivors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {sorted(SCOPES)})")
    parser.add_argument("--minutes", type=float, default=10.0, help="time box per module (default: 10)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested in parallel (default: 1)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(SCOPES))
    if unknown:
        parser.error(f"no mutation scope for {unknown}; known: {sorted(SCOPES)}")
    for module in args.modules or list(SCOPES):
        r = run(module, args.minutes, args.jobs)
        rate = f"{r['killed'] / r['judged']:.0%}" if r["judged"] else "-"
        print(f"{module}: killed {r['killed']} of {r['judged']} judged ({rate}), {r['total']} mutants"
              + (" (time box reached)" if r["cut"] else ""))
        for name in r["survivors"]:
            print(f"  survived: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
