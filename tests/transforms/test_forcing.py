"""The class-level description of each transform: ``kind``, ``forced(entry)`` and ``firing_probability(entry)``."""

from __future__ import annotations

import copy

import pytest

import spineaug
from spineaug import bench
from spineaug.preview import gallery

NAMES = sorted(spineaug.TRANSFORMS)
KINDS = {"elementwise", "elementwise+quantile", "histogram", "label-lookup", "low-res field", "stencil",
         "resampling", "index"}


def _preset_entries() -> list[dict]:
    return [e for p in spineaug.presets() for e in spineaug.Pipeline.from_preset(p).config()["transforms"]]


def _report_formula(entry: dict) -> float:
    """The per-sample firing probability the benchmark report computed before it moved onto the classes."""
    p = float(entry.get("p", 1.0))
    if entry["name"] == "Spatial":
        stay = 1.0
        for key in ("p_rotation", "p_scale", "p_elastic"):
            stay *= 1.0 - float(entry.get(key, 0.0))
        return p * (1.0 - stay)
    if entry["name"] == "Flip":
        return 1.0 - (1.0 - p) ** len(entry.get("axes", [0]))
    return p


@pytest.mark.parametrize("name", NAMES)
def test_every_registry_entry_has_a_kind(name):
    assert spineaug.TRANSFORMS[name].kind in KINDS


@pytest.mark.parametrize("name", NAMES)
def test_a_forced_entry_fires_with_probability_one_and_builds(name):
    cls = spineaug.TRANSFORMS[name]
    for entry in [{"name": name, "p": 0.1}] + [e for e in _preset_entries() if e["name"] == name]:
        before = copy.deepcopy(entry)
        forced = cls.forced(entry)
        assert entry == before  # the caller's entry is not modified
        assert cls.firing_probability(forced) == pytest.approx(1.0)
        assert forced.get("mix_prob", 0.0) == 0.0
        assert all(forced.get(k, 0.0) in (0.0, 1.0) for k in cls.effect_gates)
        assert spineaug.build_transform(forced, name).config()["p"] == 1.0
    assert cls.forced({"name": name, "p": 0.1}) == cls.forced(cls.forced({"name": name, "p": 0.1}))


def test_forced_keeps_gates_that_are_off_and_variant_probabilities():
    spatial = spineaug.TRANSFORMS["Spatial"]
    out = spatial.forced({"name": "Spatial", "p_rotation": 0.2, "p_scale": 0.0, "p_foreground": 0.3})
    assert out == {"name": "Spatial", "p": 1.0, "p_rotation": 1.0, "p_scale": 0.0, "p_foreground": 0.3}
    moved = spatial.forced({"name": "Spatial", "p_rotation": 0.0, "p_scale": 0.0, "p_elastic": 0.0})
    assert moved["p_rotation"] == moved["p_scale"] == 1.0  # a forced Spatial always moves
    remap = spineaug.TRANSFORMS["LabelIntensityRemap"].forced({"name": "LabelIntensityRemap", "p_inside": 0.25})
    assert remap["p_inside"] == 0.25


def test_preset_firing_probabilities_match_the_benchmark_formula():
    from spineaug.bench.costs import firing_probability

    for entry in _preset_entries():
        expected = _report_formula(entry)
        assert spineaug.TRANSFORMS[entry["name"]].firing_probability(entry) == pytest.approx(expected)
        assert firing_probability(entry) == pytest.approx(expected)


def test_gallery_and_bench_force_the_same_way():
    for entry in _preset_entries():
        expected = spineaug.TRANSFORMS[entry["name"]].forced(entry)
        assert bench.forced_entry(entry) == expected
        assert gallery.force_on(entry) == {k: v for k, v in expected.items() if k != "patch_size"}
    assert bench.kind("Gamma") == "elementwise" and bench.kind("nope") == "other"
