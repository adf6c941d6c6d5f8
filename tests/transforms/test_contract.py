"""The contract every registered transform keeps (torchvision-style check, run over the whole registry), each
transform forced on with its exercise settings (tests/_exercise.py, which must cover every registered transform)."""

from __future__ import annotations

import pytest
import torch

import spineaug
from spineaug.transforms.base import IntensityTransform
from tests._exercise import EXERCISE
from tests._exercise import forced_entry as entry
from tests.conftest import make_batch

NAMES = sorted(spineaug.TRANSFORMS)


def build(name: str, p: float = 1.0) -> spineaug.Pipeline:
    return spineaug.Pipeline.from_config({"transforms": [entry(name, p)]})


def test_every_registered_transform_has_exercise_settings():
    """A transform added to the registry without an entry in tests/_exercise.py would escape every battery."""
    missing = sorted(set(spineaug.TRANSFORMS) - set(EXERCISE))
    assert not missing, f"add exercise settings to tests/_exercise.py for {missing}"
    assert not set(EXERCISE) - set(spineaug.TRANSFORMS), "exercise settings for transforms that are not registered"


@pytest.mark.parametrize("name", NAMES)
def test_exercise_settings_are_valid_and_visible(name):
    """The settings pass validation, and forced on they change every sample of a batch."""
    spineaug.build_transform({"name": name, **EXERCISE[name]})
    image, label = make_batch(b=4, shape=(10, 12, 14))
    out, lab = build(name)(image, label, generator=torch.Generator().manual_seed(0))
    for i in range(4):
        assert not (torch.equal(out[i], image[i]) and torch.equal(lab[i], label[i])), f"{name}: sample {i} unchanged"


@pytest.mark.parametrize("name", NAMES)
def test_contract(name, device):
    image, label = make_batch(b=3, shape=(10, 12, 14), device=device)
    before = (image.clone(), label.clone(), image._version, label._version)
    aug = build(name)
    out, lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    # shape, dtype, device kept; inputs untouched; outputs finite
    assert out.shape == image.shape and out.dtype == image.dtype and out.device == image.device
    assert lab.shape == label.shape and lab.dtype == label.dtype and lab.device == label.device
    assert torch.equal(image, before[0]) and torch.equal(label, before[1])
    assert (image._version, label._version) == before[2:]
    assert torch.isfinite(out).all()
    if isinstance(aug.transforms[0], IntensityTransform):
        assert torch.equal(lab, label), "intensity transforms never touch labels"
    assert set(lab.unique().tolist()) <= set(label.unique().tolist()) | {0}
    # seeded determinism
    again = aug(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again[0]) and torch.equal(lab, again[1])


@pytest.mark.parametrize("name", NAMES)
def test_probability_zero_is_the_identity(name):
    image, label = make_batch(b=2)
    out, lab = build(name, p=0.0)(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, image) and torch.equal(lab, label)


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_gated_independently(name):
    # identical samples, p = 0.5: some fire and some do not, so the batch cannot come out uniform
    image, label = make_batch(b=1, shape=(10, 12, 14))
    image, label = image.expand(8, -1, -1, -1, -1), label.expand(8, -1, -1, -1, -1)
    out, _ = build(name, p=0.5)(image, label, generator=torch.Generator().manual_seed(0))
    assert any(not torch.allclose(out[0], out[i]) for i in range(1, 8))


@pytest.mark.parametrize("name", NAMES)
def test_apply_path_never_reads_data_on_the_host(name):
    # meta tensors have no values: .item(), bool(tensor) or data-dependent branching on them raises
    aug = spineaug.Pipeline.from_config({"transforms": [entry(name, 0.7)]}, check_finite=False)
    image = torch.empty(3, 1, 10, 12, 14, device="meta")
    label = torch.empty(3, 1, 10, 12, 14, dtype=torch.long, device="meta")
    for seed in range(3):
        out, lab = aug(image, label, generator=torch.Generator().manual_seed(seed))
        assert out.shape == image.shape and lab.shape == label.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["constant", "huge", "negative", "tiny_range"])
def test_adversarial_but_valid_inputs_stay_finite(name, kind):
    image, label = make_batch(b=2, shape=(8, 9, 10))
    image = {
        "constant": torch.full_like(image, 3.0),
        "huge": image * 1e6,
        "negative": image - 1e4,
        "tiny_range": 1.0 + image * 1e-7,
    }[kind]
    out, _ = build(name)(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same values as ``x`` in other memory layouts: channels-last, a strided view, a permuted copy."""
    strided = torch.empty(x.shape[0], x.shape[1], *(2 * n for n in x.shape[2:]), dtype=x.dtype)[:, :, ::2, ::2, ::2]
    strided.copy_(x)
    permuted = x.permute(0, 1, 4, 3, 2).contiguous().permute(0, 1, 4, 3, 2)
    out = {"strided": strided, "permuted": permuted}
    if x.is_floating_point():
        out["channels_last_3d"] = x.to(memory_format=torch.channels_last_3d)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_results_do_not_depend_on_the_memory_layout(name):
    image, label = make_batch(b=2, shape=(10, 12, 14))
    image = torch.cat([image, image * 0.5 + 1], dim=1)  # two channels: channels-last differs from contiguous
    aug = build(name)
    ref, ref_lab = aug(image, label, generator=torch.Generator().manual_seed(0))
    for layout, x in _layouts(image).items():
        for lab_layout, y in {"contiguous": label, **_layouts(label)}.items():
            assert torch.equal(x, image) and torch.equal(y, label)
            out, lab = aug(x, y, generator=torch.Generator().manual_seed(0))
            assert torch.equal(out, ref), f"{name}: image in {layout} layout gives other values"
            assert torch.equal(lab, ref_lab), f"{name}: label in {lab_layout} layout gives other values"
