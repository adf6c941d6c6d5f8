"""Bundled presets: each loads, validates and runs; ``nnunet`` matches batchgeneratorsv2 statistically."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
import torch

import spineaug
from tests.conftest import make_batch


@pytest.mark.parametrize("name", spineaug.presets())
def test_every_preset_loads_and_runs_on_a_small_batch(name):
    aug = spineaug.Pipeline.from_preset(name, seed=0)
    image, label = make_batch(3, (12, 14, 16))
    out, lab = aug(image, label)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.isfinite(out).all()
    assert lab.dtype == label.dtype
    assert set(lab.unique().tolist()) <= set(label.unique().tolist()) | {0}
    again, _ = spineaug.Pipeline.from_preset(name, seed=0)(image, label)
    torch.testing.assert_close(again, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", spineaug.presets())
def test_every_preset_has_a_description_and_round_trips(name):
    data = json.loads(resources.files("spineaug").joinpath("presets", f"{name}.json").read_text())
    assert isinstance(data.get("description"), str) and data["description"]
    aug = spineaug.Pipeline.from_preset(name)
    rebuilt = spineaug.Pipeline.from_config(aug.config())
    assert rebuilt.config() == aug.config()


def test_expected_presets_exist():
    assert {"none", "nnunet", "xdomain"} <= set(spineaug.presets())


def test_nnunet_preset_encodes_effective_per_channel_probabilities():
    entries = {e.name: e for e in spineaug.Pipeline.from_preset("nnunet").transforms}
    assert entries["GaussianBlur"].p == pytest.approx(0.2 * 0.5)
    assert entries["LowResolution"].p == pytest.approx(0.25 * 0.5)
    assert entries["Gamma"].p == 0.3 and entries["InverseGamma"].p == 0.1
    assert entries["Flip"].axes == (0, 1, 2)


# ------------------------------------------------------------------------------------ nnU-Net parity (statistical)

DRAWS = 400
SHAPE = (16, 16, 16)


def _phantom() -> tuple[torch.Tensor, torch.Tensor]:
    """One smooth, z-scored single-channel patch with a blob label."""
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.avg_pool3d(torch.randn(1, 1, *SHAPE, generator=g), 3, 1, 1)[0]
    img = (img - img.mean()) / img.std()
    return img, (img > 0.5).long()


def _summaries(images: torch.Tensor) -> dict[str, np.ndarray]:
    flat = images.flatten(1).double()
    return {
        "mean": flat.mean(1).numpy(),
        "std": flat.std(1).numpy(),
        "max": flat.amax(1).numpy(),
        "p90": flat.quantile(0.9, dim=1).numpy(),
    }


def _bgv2_outputs(img: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    transforms = nnUNetTrainer.get_training_transforms(
        SHAPE, (-math.pi / 6, math.pi / 6), None, (0, 1, 2), False
    )
    np_state = np.random.get_state()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        np.random.seed(0)
        try:
            outs = [transforms(image=img.clone(), segmentation=seg.clone())["image"] for _ in range(DRAWS)]
        finally:
            np.random.set_state(np_state)
    return torch.stack(outs)


def test_nnunet_preset_matches_batchgeneratorsv2_distribution():
    stats = pytest.importorskip("scipy.stats")
    pytest.importorskip("nnunetv2")
    img, seg = _phantom()
    theirs = _summaries(_bgv2_outputs(img, seg))
    aug = spineaug.Pipeline.from_preset("nnunet", seed=1)
    batch = img[None].expand(DRAWS, -1, -1, -1, -1).contiguous()
    ours_img, _ = aug(batch, seg[None].expand(DRAWS, -1, -1, -1, -1).contiguous())
    ours = _summaries(ours_img)
    for key in theirs:
        result = stats.ks_2samp(ours[key], theirs[key])
        # Same distribution at n = 400 gives D > 0.15 with probability ~2e-4; the seeds are fixed, so no flakiness.
        assert result.statistic < 0.15, (key, result)
        for q in (0.25, 0.5, 0.75):
            a, b = np.quantile(ours[key], q), np.quantile(theirs[key], q)
            assert abs(a - b) < 0.1 * (abs(b) + 0.5), (key, q, a, b)
    # The identity draws (nothing fired, or only flips) occur equally often in both.
    identity_std = img.double().std().item()
    ours_same = np.isclose(ours["std"], identity_std, atol=1e-4).mean()
    theirs_same = np.isclose(theirs["std"], identity_std, atol=1e-4).mean()
    assert abs(ours_same - theirs_same) < 0.12


# ------------------------------------------------------------------------------------------------ xdomain-plus

PLUS_CHANGES = {
    ("Spatial", "pad_mode"),
    ("LabelIntensityRemap", "regions"),
    ("ScharrEdge", "normalize"),
    ("LowResolution", "down"),
    ("ThickSlice", "profile"),
    ("FovCrop", "fill"),
    ("BiasField", "signed"),
}


def test_xdomain_plus_differs_from_xdomain_only_in_its_documented_entries():
    assert "xdomain-plus" in spineaug.presets()
    base = spineaug.Pipeline.from_preset("xdomain").config()["transforms"]
    plus = spineaug.Pipeline.from_preset("xdomain-plus").config()["transforms"]
    added = [e for e in plus if e["name"] == "LabelAppearance"]
    assert len(added) == 1 and 0.0 < added[0]["p"] <= 0.25
    plus = [e for e in plus if e["name"] != "LabelAppearance"]
    assert [e["name"] for e in plus] == [e["name"] for e in base]
    changed = {(b["name"], k) for b, e in zip(base, plus) for k in b if b[k] != e[k]}
    assert changed == PLUS_CHANGES
    description = json.loads(resources.files("spineaug").joinpath("presets", "xdomain-plus.json").read_text())[
        "description"
    ]
    for name, key in PLUS_CHANGES | {("LabelAppearance", "p")}:
        assert name in description, name


def test_xdomain_plus_runs_with_every_label_transform_firing():
    aug = spineaug.Pipeline.from_preset("xdomain-plus", seed=3)
    image, label = make_batch(6, (16, 16, 16))
    out, lab = aug(image, label)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert set(lab.unique().tolist()) <= set(label.unique().tolist()) | {0}
    cfg = aug.config()
    for entry in cfg["transforms"]:
        entry["p"] = 1.0 if entry["name"] in ("LabelIntensityRemap", "LabelAppearance", "FovCrop") else 0.0
    forced, _ = spineaug.Pipeline.from_config(cfg)(image, label, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(forced).all() and not torch.allclose(forced, image)


def test_readme_usage_snippets_run_and_the_label_needs_are_as_stated():
    """The README's usage snippets define what they use and run; the presets' label needs are as it says."""
    import re
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    usage = text[text.index("## Usage"):text.index("### What every call guarantees")]
    blocks = re.findall(r"```python\n(.*?)```", usage, flags=re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    exec(blocks[0].replace("64, 64, 64", "16, 16, 16"), namespace)  # noqa: S102 (our own README)
    exec(blocks[1], namespace)  # noqa: S102
    assert namespace["out"].shape == namespace["image"].shape
    needs = {
        p for p in spineaug.presets() if any(t.requires_label for t in spineaug.Pipeline.from_preset(p).transforms)
    }
    assert needs == {"xdomain", "xdomain-plus", "synthseg", "slaug"}
    image = torch.randn(1, 1, 16, 16, 16)
    for preset in ("none", "nnunet"):
        out, lab = spineaug.Pipeline.from_preset(preset, seed=0)(image)
        assert lab is None and out.shape == image.shape
    with pytest.raises(ValueError, match="LabelIntensityRemap needs a label map"):
        spineaug.Pipeline.from_preset("xdomain", seed=0)(image)
