"""Headline guarantees, each with a test that fails when it breaks.

Every test here checks values: the drawn parameters (``return_params`` and the typed :class:`Params`), or outputs
against a value computed another way. ``tools/mutants.py`` injects the bugs these tests must catch.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import spineaug
from spineaug.batch import Batch
from spineaug.transforms import IntensityParams, Params
from tests._exercise import EXERCISE
from tests.conftest import make_batch

# Transforms whose gate and own draws must be per sample, with their exercise settings (tests/_exercise.py), whose
# ranges are wide enough that every drawn field varies.
PER_SAMPLE = {name: EXERCISE[name] for name in (
    "GaussianBlur", "UnsharpMask", "ScharrEdge", "Laplacian", "RandomConv", "LowResolution", "ThickSlice",
    "LabelIntensityRemap", "LabelAppearance", "LabelSynthesis", "ClassLocationScale", "GIN", "IPA",
    "ProgressiveRandConv",
)}  # fmt: skip
B = 24


def _fields(params: Params, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor field of ``params`` (nested ones flattened with a dotted name)."""
    out: dict[str, torch.Tensor] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, Params):
            out.update(_fields(value, f"{prefix}{f.name}."))
        elif isinstance(value, torch.Tensor):
            out[prefix + f.name] = value
    return out


def _rows_differ(t: torch.Tensor) -> bool:
    return any(not torch.equal(t[0], t[i]) for i in range(1, t.shape[0]))


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return make_batch(b=B, shape=(10, 11, 12), seed=3)


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_gate_and_blend_weight_are_drawn_per_sample(name, batch):
    image, label = batch
    t = spineaug.build_transform({"name": name, "p": 0.5, "mix_prob": 0.5, **PER_SAMPLE[name]})
    params = t.sample_params(Batch(image, label), torch.Generator().manual_seed(0))
    assert isinstance(params, IntensityParams)
    assert 0 < int(params.gate.sum()) < B, f"{name}: one gate for the whole batch: {params.gate.tolist()}"
    mixed = params.alpha[params.alpha > 0]
    assert 0 < mixed.numel() < B and mixed.unique().numel() == mixed.numel(), f"{name}: alpha {params.alpha.tolist()}"
    assert bool(((mixed > 0) & (mixed < 1)).all())


@pytest.mark.parametrize("name", sorted(n for n in PER_SAMPLE if n not in ("ScharrEdge", "Laplacian")))
def test_own_parameters_are_drawn_per_sample(name, batch):
    image, label = batch
    aug = spineaug.Pipeline(spineaug.build_transform({"name": name, "p": 1.0, **PER_SAMPLE[name]}))
    _, _, params = aug(image, label, generator=torch.Generator().manual_seed(1), return_params=True)
    (drawn,) = params.values()
    values = _fields(drawn.values)
    assert values, f"{name} draws no values of its own"
    same = [k for k, v in values.items() if v.shape[0] != B or not _rows_differ(v)]
    assert not same, f"{name}: fields shared by the whole batch: {same}"
    # a continuous quantity drawn per sample takes B different values (rows can differ through another draw alone)
    few = {k: v.unique().numel() for k, v in values.items() if v.is_floating_point() and v.unique().numel() < B}
    assert not few, f"{name}: float fields with fewer than {B} distinct values: {few}"


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_a_sample_comes_out_as_alone_and_in_another_batch(name, batch):
    """Output of sample i = its output alone, and in a reordered batch, with the same per-sample parameters."""
    image, label = batch
    image, label = image[:6], label[:6]
    aug = spineaug.Pipeline(spineaug.build_transform({"name": name, "p": 0.7, "mix_prob": 0.5, **PER_SAMPLE[name]}))
    out, _, params = aug(image, label, generator=torch.Generator().manual_seed(2), return_params=True)
    ((key, drawn),) = params.items()
    assert bool(drawn.gate.any()) and not bool(drawn.gate.all())
    for i in range(image.shape[0]):
        rows = torch.tensor([i])
        alone, _ = aug(image[i : i + 1], label[i : i + 1], params={key: drawn.select(rows)})
        torch.testing.assert_close(alone[0], out[i], atol=2e-5, rtol=2e-5, msg=f"{name}: sample {i}")
        if not bool(drawn.gate[i]):
            assert torch.equal(out[i], image[i]), f"{name}: sample {i} did not fire but changed"
        else:
            assert not torch.allclose(out[i], image[i], atol=1e-3), f"{name}: sample {i} fired but is unchanged"
    perm = torch.tensor([4, 0, 5, 2, 1, 3])
    moved, _ = aug(image[perm], label[perm], params={key: drawn.select(perm)})
    torch.testing.assert_close(moved, out[perm], atol=2e-5, rtol=2e-5)


# ----------------------------------------------------------------------------------- blending, regions, stats


def test_mix_prob_blends_with_the_original_by_the_drawn_weight():
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=4)
    t = spineaug.build_transform({"name": "GaussianBlur", "sigma": [1.0, 1.5], "mix_prob": 1.0})
    batch = Batch(image, label)
    params = t.sample_params(batch, torch.Generator().manual_seed(0))
    assert bool(((params.alpha > 0) & (params.alpha < 1)).all())
    pure = t.apply(batch, dataclasses.replace(params, alpha=torch.zeros(4))).image
    mixed = t.apply(batch, params).image
    a = params.alpha.view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(mixed, a * image + (1 - a) * pure, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mixed, pure, atol=1e-3)


def _brightness(region: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, IntensityParams]:
    image, label = make_batch(b=8, shape=(8, 9, 10), seed=5)
    image = image + 10.0  # every voxel non-zero, so doubling changes every voxel
    t = spineaug.build_transform({"name": "Brightness", "multiplier": [2.0, 2.0], "region": region})
    batch = Batch(image, label)
    params = t.sample_params(batch, torch.Generator().manual_seed(0))
    return image, label, t.apply(batch, params).image, params


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_region_option_changes_only_its_side_of_the_label(where):
    image, label, out, params = _brightness({f"p_{where}": 1.0})
    assert params.region_mode.tolist() == [1 if where == "inside" else 2] * 8
    foreground = (label > 0).expand_as(image)
    changed = foreground if where == "inside" else ~foreground
    torch.testing.assert_close(out[changed], 2 * image[changed])
    assert torch.equal(out[~changed], image[~changed])


def test_label_subset_p_picks_a_random_subset_of_labels_per_sample():
    image, label, out, params = _brightness({"p_inside": 1.0, "label_subset_p": 0.5, "max_label": 3})
    keep = params.keep[:, :4]
    assert not bool(keep[:, 0].any()), "background is never part of the region"
    assert _rows_differ(keep) and 0 < int(keep[:, 1:].sum()) < keep[:, 1:].numel(), keep.tolist()
    for b in range(8):
        for value in range(4):
            where = (label[b] == value).expand_as(image[b])
            expected = 2 * image[b][where] if bool(keep[b, value]) else image[b][where]
            torch.testing.assert_close(out[b][where], expected, msg=f"sample {b}, label {value}")


@pytest.mark.parametrize("entry", [
    {"name": "Gamma", "gamma": [0.5, 2.0], "retain_stats": True},
    {"name": "GaussianBlur", "sigma": [1.0, 2.0], "retain_stats": True},
    {"name": "RandomConv", "mix_prob": 0.0},
    {"name": "ScharrEdge", "mix_prob": 0.0},
    {"name": "IntensityFunction", "functions": ["exp"], "retain_stats": True},
], ids=lambda e: e["name"])  # fmt: skip
def test_retain_stats_keeps_each_samples_mean_and_std(entry):
    image, label = make_batch(b=4, shape=(10, 11, 12), seed=6)
    aug = spineaug.Pipeline(spineaug.build_transform(entry))
    out, _ = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(out, image, atol=1e-2)
    dims = (1, 2, 3, 4)
    torch.testing.assert_close(out.double().mean(dims), image.double().mean(dims), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.double().std(dims), image.double().std(dims), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------- spatial, dtype, order


def _ramp(n: int = 16) -> torch.Tensor:
    """A (1, 1, n, n, n) image whose value is the W index: reads outside the volume show the padding rule."""
    return torch.arange(n, dtype=torch.float32).expand(1, 1, n, n, n).contiguous()


def test_reflect_padding_mirrors_and_edge_padding_repeats_the_border():
    image = _ramp()
    rows = {}
    for mode in ("reflect", "edge"):
        aug = spineaug.Pipeline(spineaug.build_transform(
            {"name": "Spatial", "p_scale": 1.0, "scale": [2.0, 2.0], "pad_mode": mode}))
        out, _ = aug(image, generator=torch.Generator().manual_seed(0))
        rows[mode] = out[0, 0, 8, 8]
    edge, reflect = rows["edge"], rows["reflect"]
    # zoomed out by 2 (scale 2 stretches the sampling grid): output voxel i reads W = 2 i - 7.5; 8 of 16 are inside
    inside = torch.arange(16) * 2.0 - 7.5
    torch.testing.assert_close(edge, inside.clamp(0, 15), atol=1e-4, rtol=0)
    mirrored = torch.where(inside < -0.5, -1 - inside, torch.where(inside > 15.5, 31 - inside, inside))
    torch.testing.assert_close(reflect, mirrored.clamp(0, 15), atol=1e-4, rtol=0)


FLOAT16_ENTRIES = [
    {"name": "Spatial", "p_rotation": 1.0, "p_scale": 1.0},
    {"name": "Spatial", "p_elastic": 1.0, "elastic_spacing": 4, "pad_mode": "reflect"},
    {"name": "Gamma", "retain_stats": True},
    {"name": "Brightness"},
    {"name": "GaussianBlur"},
    {"name": "LowResolution", "scale": [0.5, 0.8]},
    {"name": "UnsharpMask", "mix_prob": 0.0},
]


@pytest.mark.parametrize("entry", FLOAT16_ENTRIES, ids=lambda e: "-".join(f"{v}" for v in e.values()))
def test_float16_values_are_float32_values_rounded_once(entry):
    """A float16 image comes out as the float32 computation on the same values, rounded to float16 once."""
    image, label = make_batch(b=3, shape=(12, 13, 14), seed=7)
    half = image.half()
    aug = spineaug.Pipeline(spineaug.build_transform(entry))
    out16, lab16 = aug(half, label, generator=torch.Generator().manual_seed(0))
    out32, lab32 = aug(half.float(), label, generator=torch.Generator().manual_seed(0))
    assert out16.dtype == torch.float16 and torch.equal(lab16, lab32)
    assert not torch.allclose(out32, half.float(), atol=1e-2)
    # one rounding to float16 is at most half a unit in the last place: 2**-11 relative (float16 has 10 bits)
    torch.testing.assert_close(out16.float(), out32, rtol=2**-11, atol=1e-5 * float(out32.abs().max()))


def test_geometric_entries_run_first_whatever_their_position():
    image, label = make_batch(b=3, shape=(12, 13, 14), seed=8)
    blur = {"name": "GaussianBlur", "sigma": [1.0, 2.0]}
    spatial = {"name": "Spatial", "p_rotation": 1.0, "rotation_deg": [20.0, 40.0]}
    after = spineaug.Pipeline(spineaug.build_transform(blur), spineaug.build_transform(spatial))
    before = spineaug.Pipeline(spineaug.build_transform(spatial), spineaug.build_transform(blur))
    out_a, lab_a, params = after(image, label, generator=torch.Generator().manual_seed(0), return_params=True)
    out_b, lab_b = before(image, label, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out_a, out_b, atol=0, rtol=0)
    assert torch.equal(lab_a, lab_b)
    moved = after.transforms[1].apply(Batch(image, label), params["1:Spatial"])
    expected = after.transforms[0].apply(moved, params["0:GaussianBlur"])
    torch.testing.assert_close(out_a, expected.image, atol=1e-6, rtol=1e-6)


def test_image_and_label_on_different_devices_is_an_error():
    image = torch.zeros(1, 1, 4, 4, 4)
    label = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long, device="meta")
    aug = spineaug.Pipeline.from_preset("none")
    with pytest.raises(ValueError, match=r"label is on meta\b.*\bimage is on cpu"):
        aug(image, label)
