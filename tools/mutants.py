"""Mutation check: re-inject known engine and command-line bugs one at a time and report whether a fast test
catches each.

Each mutant patches a temporary copy of the repository (``spineaug/``, ``tests/``, ``pyproject.toml``; the working
tree is never touched), then runs the fast tests that guard that guarantee. A mutant is *caught* when they fail.
The unmutated copy runs first and must pass, otherwise every "caught" would mean nothing.

Usage::

    python tools/mutants.py              # all mutants (``make mutants``)
    python tools/mutants.py --list       # names only
    python tools/mutants.py --only float16-values --only reflect-as-edge

A mutant's patch is one or more ``(anchor, replacement)`` edits, each anchor occurring exactly once in its file,
and optionally code appended to the file. ``tests/test_mutants.py`` checks that every anchor still matches, so the
list cannot rot silently: when a refactor moves an anchor, update it here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("spineaug", "tests", "pyproject.toml")
G = "tests/test_guarantees.py"
PINS = ("tests/test_preset_pins.py", "test_preset_equals or test_affine")  # (tests, keyword)
CLI = "tests/test_cli.py"


@dataclass(frozen=True)
class Mutant:
    """One injected bug.

    Attributes:
        name: Short identifier (``--only``).
        file: File to patch, relative to the repository root.
        edits: ``(anchor, replacement)`` pairs; each anchor must occur exactly once in ``file``.
        append: Code appended to ``file`` after the edits.
        tests: Test file whose selected tests must fail.
        keyword: pytest ``-k`` expression selecting the tests of ``tests`` that guard this guarantee.
    """

    name: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: str
    keyword: str
    append: str = ""

    def patch(self, text: str) -> str:
        """Return ``text`` with the mutant injected; ``ValueError`` when an anchor does not occur exactly once."""
        for anchor, replacement in self.edits:
            count = text.count(anchor)
            if count != 1:
                raise ValueError(f"mutant {self.name}: anchor {anchor!r} occurs {count} times in {self.file}")
            text = text.replace(anchor, replacement)
        return text + self.append


@dataclass
class Outcome:
    """Result of one mutant's test run."""

    mutant: str
    returncode: int  # pytest's: 0 passed, 1 some test failed (caught), other values are errors
    seconds: float
    tail: list[str] = field(default_factory=list)


# Appended to a transform's module: wrap its sample_params so that every sample gets sample 0's draw.
_SHARED = """

import dataclasses as _mutant_dc
import torch as _mutant_torch

_mutant_orig_{n} = {cls}.sample_params


def _mutant_sample_params_{n}(self, batch, generator):
    params = _mutant_orig_{n}(self, batch, generator)
    first = _mutant_torch.zeros(batch.size, dtype=_mutant_torch.long)
    return {change}


{cls}.sample_params = _mutant_sample_params_{n}
"""
# the gate (and the blend weight drawn with it) of sample 0 for all; or the transform's own values of sample 0
_SHARED_GATE = "_mutant_dc.replace(params, gate=params.gate[first], alpha=params.alpha[first])"
_SHARED_DRAW = "_mutant_dc.replace(params, values=params.values.select(first))"

_CLASSES = {
    "GaussianBlur": ("RandomGaussianBlur", "spineaug/transforms/filters.py"),
    "UnsharpMask": ("RandomUnsharpMask", "spineaug/transforms/filters.py"),
    "ScharrEdge": ("RandomScharrEdge", "spineaug/transforms/filters.py"),
    "Laplacian": ("RandomLaplacian", "spineaug/transforms/filters.py"),
    "RandomConv": ("RandomConv", "spineaug/transforms/filters.py"),
    "LowResolution": ("RandomLowResolution", "spineaug/transforms/resolution.py"),
    "ThickSlice": ("RandomThickSlice", "spineaug/transforms/resolution.py"),
    "LabelIntensityRemap": ("RandomLabelIntensityRemap", "spineaug/transforms/labels.py"),
    "LabelAppearance": ("RandomLabelAppearance", "spineaug/transforms/labels.py"),
    "LabelSynthesis": ("RandomLabelSynthesis", "spineaug/transforms/synthesis.py"),
    "ClassLocationScale": ("RandomClassLocationScale", "spineaug/transforms/synthesis.py"),
    "GIN": ("RandomGIN", "spineaug/transforms/randconv.py"),
    "IPA": ("RandomIPA", "spineaug/transforms/randconv.py"),
    "ProgressiveRandConv": ("RandomProgressiveRandConv", "spineaug/transforms/randconv.py"),
}
_NO_OWN_VALUES = ("ScharrEdge", "Laplacian")


def _batch_shared() -> list[Mutant]:
    """One gate for the whole batch, and one draw of the transform's own values, for each transform of the list."""
    out = []
    for name, (cls, path) in _CLASSES.items():
        anchor = ((f"class {cls}(", f"class {cls}("),)  # no change: only checks the class still lives in `path`
        for kind, change in (("gate", _SHARED_GATE), ("draw", _SHARED_DRAW)):
            if kind == "draw" and name in _NO_OWN_VALUES:
                continue
            code = _SHARED.format(n=len(out), cls=cls, change=change)
            test = "test_gate_and_blend_weight" if kind == "gate" else "test_own_parameters"
            out.append(Mutant(f"shared-{kind}-{name}", path, anchor, G, f"{test} and {name}", append=code))
    return out


MUTANTS: list[Mutant] = [
    Mutant("shared-gate-base", "spineaug/transforms/base.py",
           (("sample.bernoulli(generator, (n,), self.p)", "sample.bernoulli(generator, (1,), self.p).expand(n)"),),
           G, "test_gate_and_blend_weight_are_drawn_per_sample"),
    *_batch_shared(),
    Mutant("shared-draw-ThickSlice-scale", "spineaug/transforms/resolution.py",
           (("s = sample.uniform(generator, (n, 1), *self.scale)",
             "s = sample.uniform(generator, (1, 1), *self.scale).expand(n, 1)"),), G, "test_own_parameters"),
    Mutant("first-sigma-for-all-GaussianBlur", "spineaug/transforms/filters.py",
           (("FF.gaussian_blur(x, values.sigma, self.truncate)",
             "FF.gaussian_blur(x, values.sigma[:1].expand_as(values.sigma), self.truncate)"),),
           G, "test_a_sample_comes_out_as_alone"),
    Mutant("mix-prob-no-op", "spineaug/transforms/base.py",
           (("y = FI.blend(x, y, ", "y = y if True else FI.blend(x, y, "),), G, "test_mix_prob"),
    Mutant("outside-as-everywhere", "spineaug/functional/intensity.py",
           (("(mode == REGION_OUTSIDE) & ~mask", "(mode == REGION_OUTSIDE)"),), G, "test_region_option"),
    Mutant("label-subset-p-ignored", "spineaug/transforms/base.py",
           (("self.region.label_subset_p)", "1.0)"),), G, "test_label_subset_p"),
    Mutant("nnunet-gamma-p-halved", "spineaug/presets/nnunet.json",
           (('{"name": "Gamma", "p": 0.3,', '{"name": "Gamma", "p": 0.15,'),), *PINS),
    Mutant("xdomain-scharr-p-halved", "spineaug/presets/xdomain.json",
           (('{"name": "ScharrEdge", "p": 0.25,', '{"name": "ScharrEdge", "p": 0.125,'),), *PINS),
    Mutant("xdomain-plus-label-appearance-p-halved", "spineaug/presets/xdomain-plus.json",
           (('{"name": "LabelAppearance", "p": 0.15,', '{"name": "LabelAppearance", "p": 0.075,'),), *PINS),
    Mutant("nnunet-rotation-x1.5", "spineaug/presets/nnunet.json",
           (('"rotation_deg": [-30.0, 30.0]', '"rotation_deg": [-45.0, 45.0]'),), *PINS),
    Mutant("xdomain-noise-sigma-x3", "spineaug/presets/xdomain.json",
           (('"GaussianNoise", "p": 0.1, "sigma": [0.0, 1.0]', '"GaussianNoise", "p": 0.1, "sigma": [0.0, 3.0]'),),
           *PINS),
    Mutant("elastic-magnitude-x3", "spineaug/transforms/spatial.py",
           (("elastic_magnitude: NonNegativeRange = (0.0, 4.0)", "elastic_magnitude: NonNegativeRange = (0.0, 12.0)"),),
           *PINS),
    Mutant("affine-translate-x2", "spineaug/transforms/spatial.py",
           (("] = (0.1, 0.1, 0.1),", "] = (0.2, 0.2, 0.2),"),), *PINS),
    Mutant("reflect-as-edge", "spineaug/functional/spatial.py",
           (('"reflect": "reflection"', '"reflect": "border"'),), G, "test_reflect_padding"),
    Mutant("float16-values", "spineaug/functional/spatial.py",
           (("    return out.to(x.dtype)",
             "    return (out.bfloat16() if x.dtype == torch.float16 else out).to(x.dtype)"),), G, "test_float16"),
    Mutant("retain-stats-mean-only", "spineaug/transforms/base.py",
           (("y, use_x = FI.restore_stats(y, x, inplace=_own(y, x))",
             "y, use_x = FI.restore_stats(y, x, inplace=_own(y, x)); "
             "y = 2 * y - y.mean(dim=(2, 3, 4), keepdim=True)"),),
           G, "test_retain_stats"),
    Mutant("geometric-not-first", "spineaug/pipeline.py",
           (("geometric = [i for i, t in enumerate(self.transforms) if t.geometric]", "geometric = []"),
            ("            if t.geometric:\n                continue\n", "")),
           G, "test_geometric_entries_run_first"),
    Mutant("device-mismatch-unchecked", "spineaug/pipeline.py",
           (("if label.device != image.device:", "if False:"),), G, "test_image_and_label_on_different_devices"),
    Mutant("cli-config-preset", "spineaug/cli.py",
           (("if source in spineaug.presets():", "if source in ():"),), CLI, "test_config_of_a_preset"),
    Mutant("cli-config-file", "spineaug/cli.py",
           (("print(json.dumps(_pipeline_of(source).config(), indent=2))",
             "print(json.dumps(_pipeline_of(source).config()['transforms'], indent=2))"),),
           CLI, "test_config_of_a_file"),
    Mutant("cli-bench-flags", "spineaug/cli.py",
           (("sizes=args.sizes, batches=args.batches", "sizes=args.batches, batches=args.sizes"),),
           CLI, "test_bench_passes_every_flag"),
    Mutant("cli-bench-no-checks", "spineaug/cli.py",
           (('overrides["checks"] = False', 'overrides["transforms"] = False'),), CLI, "test_bench_passes_every_flag"),
    Mutant("cli-report", "spineaug/cli.py",
           (("print(benchmark.write(results, bench_out))", "print(benchmark.write(results, results))"),),
           CLI, "test_bench_then_report"),
    Mutant("cli-version", "spineaug/cli.py",
           (('version=f"spineaug {spineaug.__version__}"', 'version="spineaug"'),), CLI, "test_version"),
]  # fmt: skip


def _copy(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def _pytest(cwd: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def run_one(mutant: Mutant | None, tests: tuple[str, ...]) -> Outcome:
    """Run ``tests`` on a fresh copy of the repository with ``mutant`` injected (``None``: unmutated)."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spineaug-mutant-") as tmp:
        root = Path(tmp)
        _copy(root)
        if mutant is not None:
            path = root / mutant.file
            path.write_text(mutant.patch(path.read_text()))
        result = _pytest(root, tests)
    tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
    return Outcome(mutant.name if mutant else "(none)", result.returncode, time.monotonic() - start, tail)


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and the selected mutants; exit 1 if the baseline fails or any mutant is not caught."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=None, help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:45s} {m.file}")
        return 0
    chosen = [m for m in MUTANTS if args.only is None or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))} (see --list)")
    for m in chosen:  # fail fast on a stale anchor, before any test runs
        m.patch((ROOT / m.file).read_text())
    all_tests = tuple(dict.fromkeys(m.tests for m in chosen))
    baseline = run_one(None, all_tests)
    if baseline.returncode != 0:
        print("the unmutated copy fails its tests; fix that first:\n  " + "\n  ".join(baseline.tail))
        return 1
    missed = []
    for m in chosen:
        outcome = run_one(m, (m.tests, "-k", m.keyword))
        # exit 1 = a test failed; anything else (collection or import error, no test run) does not count as caught
        status = {0: "MISSED", 1: "caught"}.get(outcome.returncode, f"ERROR (pytest exit {outcome.returncode})")
        print(f"{status:8s}  {m.name:45s} {outcome.seconds:5.1f} s", flush=True)
        if outcome.returncode != 1:
            missed.append(m.name)
            print("          " + "\n          ".join(outcome.tail))
    summary = f"{len(chosen) - len(missed)} of {len(chosen)} mutants caught"
    print(summary + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
