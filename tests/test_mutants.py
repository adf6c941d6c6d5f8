"""``tools/mutants.py`` stays runnable: every mutant's anchors still occur exactly once in today's source."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("spineaug_mutants_tool", ROOT / "tools" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


@pytest.mark.parametrize("mutant", TOOL.MUTANTS, ids=lambda m: m.name)
def test_mutant_anchor_matches_the_source_once(mutant):
    text = (ROOT / mutant.file).read_text()
    patched = mutant.patch(text)  # raises, naming the mutant and anchor, when an anchor is gone or ambiguous
    assert patched != text
    tests = (ROOT / mutant.tests).read_text()
    for name in mutant.keyword.replace(" and ", " or ").split(" or "):
        assert name in tests or name in mutant.name, f"{mutant.name}: -k {name!r} selects nothing in {mutant.tests}"


def test_mutant_names_are_unique():
    names = [m.name for m in TOOL.MUTANTS]
    assert len(names) == len(set(names))


def test_the_listed_bugs_each_have_a_mutant():
    names = {m.name for m in TOOL.MUTANTS}
    for transform in ("GaussianBlur", "UnsharpMask", "ScharrEdge", "Laplacian", "RandomConv", "LowResolution",
                      "ThickSlice", "LabelIntensityRemap", "LabelAppearance", "LabelSynthesis",
                      "ClassLocationScale", "GIN", "IPA", "ProgressiveRandConv"):
        assert f"shared-gate-{transform}" in names
    assert {"mix-prob-no-op", "outside-as-everywhere", "label-subset-p-ignored", "reflect-as-edge", "float16-values",
            "retain-stats-mean-only", "geometric-not-first", "device-mismatch-unchecked", "cli-version"} <= names


def test_a_stale_anchor_is_reported_by_name():
    stale = TOOL.Mutant("stale", "x.py", (("not in the file", "y"),), "tests", "")
    with pytest.raises(ValueError, match=r"^mutant stale: anchor 'not in the file' occurs 0 times in x.py$"):
        stale.patch("some source")
