"""MONAI integration: SpineAugd per sample (MONAI randomness, MetaTensor metadata) and on a batch; slow: training."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

monai = pytest.importorskip("monai")

from monai.data import MetaTensor, list_data_collate  # noqa: E402
from monai.transforms import Compose  # noqa: E402

from spineaug.integrations.monai import SpineAugd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _sample(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    image = MetaTensor(torch.randn(1, 24, 24, 24, generator=g), affine=affine, meta={"filename_or_obj": "a.nii.gz"})
    label = MetaTensor(torch.randint(0, 4, (1, 24, 24, 24), generator=g).float(), affine=affine)
    return {"image": image, "label": label, "id": 7}


def test_per_sample_in_compose_keeps_metadata_and_follows_set_random_state():
    data = _sample()
    before = data["image"].clone()
    make = lambda: Compose([SpineAugd(keys=("image", "label"), preset="xdomain", patch_size=(16, 16, 16))])  # noqa: E731
    a = make().set_random_state(5)(dict(data))
    b = make().set_random_state(5)(dict(data))
    c = make().set_random_state(6)(dict(data))
    assert isinstance(a["image"], MetaTensor) and isinstance(a["label"], MetaTensor)
    assert a["image"].shape == a["label"].shape == (1, 16, 16, 16)
    assert torch.equal(a["image"].affine, data["image"].affine) and a["image"].meta["filename_or_obj"] == "a.nii.gz"
    assert a["label"].dtype == data["label"].dtype and a["id"] == 7
    assert set(a["label"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
    assert not torch.equal(a["image"].as_tensor(), c["image"].as_tensor())
    assert torch.equal(data["image"], before)  # the caller's data is not changed


def test_batch_path_draws_per_sample():
    aug = SpineAugd(preset="nnunet").set_random_state(0)
    same = _sample()
    batch = list_data_collate([same, same, same, same])
    out = aug(batch)
    assert out["image"].shape == (4, 1, 24, 24, 24) and out["image"].is_batch
    assert len({out["image"][i].as_tensor().sum().item() for i in range(4)}) > 1


def test_missing_keys_and_bad_shapes_are_clear():
    aug = SpineAugd(preset="xdomain")
    with pytest.raises(KeyError, match="label key 'label' is missing"):
        aug({"image": torch.zeros(1, 8, 8, 8)})
    with pytest.raises(KeyError, match="image key 'img' is missing"):
        SpineAugd(keys=("img", "seg"))({"image": torch.zeros(1, 8, 8, 8)})
    with pytest.raises(ValueError, match=r"\(C, D, H, W\)"):
        aug({"image": torch.zeros(8, 8, 8), "label": torch.zeros(8, 8, 8)})
    with pytest.raises(ValueError, match="either preset= or config="):
        SpineAugd(preset="xdomain", config={"transforms": []})
    with pytest.raises(ValueError, match="unknown"):
        SpineAugd(preset="no-such-preset")
    # Without a label, a preset whose transforms need none still runs when the label key may be missing.
    out = SpineAugd(preset="nnunet", allow_missing_keys=True)({"image": torch.zeros(1, 8, 8, 8)})
    assert out["image"].shape == (1, 8, 8, 8)


def _example():
    spec = importlib.util.spec_from_file_location("monai_train", ROOT / "examples" / "monai_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["worker", "batch"])
def test_monai_training_runs_with_spineaug(mode):
    """examples/monai_train.py as written: CacheDataset + DataLoader + UNet, spineaug in the worker or on the batch."""
    losses = _example().main(["--mode", mode, "--iterations", "3", "--workers", "1"])
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
