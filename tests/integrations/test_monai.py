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
    assert a["image"].meta["filename_or_obj"] == "a.nii.gz"
    assert torch.equal(a["image"].affine, a["label"].affine)  # moved with the crop (tested below)
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


def _coords(shape=(20, 22, 24)) -> torch.Tensor:
    """(3, D, H, W): each voxel holds its own (d, h, w) index, so an output voxel says where it was read."""
    return torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij"))


@pytest.mark.parametrize("config", [
    {"transforms": [{"name": "Spatial", "patch_size": [10, 12, 8], "p_foreground": 0.5, "p_rotation": 0,
                     "p_scale": 0},
                    {"name": "Flip", "p": 0.5, "axes": [0, 1, 2]}]},
    {"transforms": [{"name": "Spatial", "patch_size": [10, 12, 8], "p_rotation": 1.0, "rotation_deg": [-20, 20],
                     "p_scale": 1.0, "scale": [0.8, 1.2]}, {"name": "Flip", "p": 0.5, "axes": [0, 1, 2]}]},
])  # fmt: skip
def test_label_key_form_moves_the_affine_with_the_voxels(config):
    """keys + label_key as MONAI's label-aware transforms; affine @ map sends each output voxel to its world point."""
    affine = torch.tensor([[0.0, 0, -2, 50], [1.5, 0, 0, -20], [0, 3, 0, 7], [0, 0, 0, 1]], dtype=torch.float64)
    coords = _coords()
    label = torch.zeros(1, 20, 22, 24)
    label[:, 12:15, 3:6, 18:20] = 2
    data = {"img": MetaTensor(coords.clone(), affine=affine), "seg": MetaTensor(label, affine=affine)}
    aug = SpineAugd(keys=["img", "seg"], label_key="seg", config=config)
    for seed in range(4):
        out = aug.set_random_state(seed)(data)
        new = out["img"].affine.double()
        assert torch.equal(new, out["seg"].affine.double()) and out["img"].shape == (3, 10, 12, 8)
        grid = _coords((10, 12, 8)).reshape(3, -1)
        source = out["img"].as_tensor().reshape(3, -1).double()  # the input voxel each output voxel read
        world_new = new[:3, :3] @ grid + new[:3, 3:]
        predicted = torch.linalg.solve(affine[:3, :3], world_new - affine[:3, 3:])  # input voxel, by the affine
        inside = ((predicted >= 0) & (predicted <= torch.tensor([19.0, 21.0, 23.0])[:, None])).all(0)
        assert inside.sum() > 100
        assert torch.allclose(predicted[:, inside], source[:, inside], atol=1e-3)
        ops = out["img"].applied_operations
        assert ops[-1]["class"] == "SpineAugd" and ops[-1]["extra_info"]["affine_exact"] is True
        assert data["img"].applied_operations == []  # the input's record is not changed


def test_several_image_keys_stay_aligned_and_keep_their_channels():
    g = torch.Generator().manual_seed(0)
    t1 = torch.randn(1, 16, 16, 16, generator=g)
    data = {"t1": t1, "t2": t1 * 2.0 + 1.0, "seg": torch.zeros(1, 16, 16, 16)}
    flip = {"transforms": [{"name": "Flip", "p": 1.0, "axes": [0]}]}
    out = SpineAugd(keys=["t1", "t2", "seg"], label_key="seg", config=flip).set_random_state(0)(data)
    assert out["t1"].shape == out["t2"].shape == (1, 16, 16, 16)
    assert torch.equal(out["t1"], t1.flip(1)) and torch.allclose(out["t2"], out["t1"] * 2.0 + 1.0)
    with pytest.raises(ValueError, match="label_key 'mask' must be one of keys"):
        SpineAugd(keys=["t1", "seg"], label_key="mask")
    with pytest.raises(ValueError, match="name the label with label_key"):
        SpineAugd(keys=["t1", "t2", "seg"])
    out = SpineAugd(keys=["t1", "t2"], label_key=None, config=flip).set_random_state(0)(data)  # images only
    assert torch.equal(out["t2"], data["t2"].flip(1)) and out["seg"] is data["seg"]


def test_prob_gates_the_call_and_still_crops():
    data = {"image": _coords((24, 24, 24)).float(), "label": torch.zeros(1, 24, 24, 24)}
    never = SpineAugd(preset="xdomain", patch_size=(16, 16, 16), prob=0.0)
    for seed in range(3):
        out = never.set_random_state(seed)(data)["image"]
        start = out[:, 0, 0, 0].long().tolist()  # a plain crop: each voxel still holds its own index
        assert out.shape == (3, 16, 16, 16) and torch.equal(out, data["image"][:, start[0]:start[0] + 16,
                                                                               start[1]:start[1] + 16,
                                                                               start[2]:start[2] + 16])
    ones = [SpineAugd(preset="nnunet", prob=0.5).set_random_state(s) for s in range(20)]
    fired = [a.randomize() or a._do_transform for a in ones]
    assert 0 < sum(fired) < 20
    with pytest.raises(ValueError, match="prob"):
        SpineAugd(preset="nnunet", prob=1.5)
    # prob=1 draws the same seed sequence as before the gate existed: runs stay reproducible across versions
    a, b = SpineAugd(preset="nnunet").set_random_state(3), SpineAugd(preset="nnunet").set_random_state(3)
    a.randomize()
    assert a._seed == int(b.R.randint(0, 2**31 - 1))


def test_batched_metatensor_affines_move_per_sample():
    same = _sample()
    batch = list_data_collate([same, same])
    flip = {"transforms": [{"name": "Flip", "p": 0.5, "axes": [0]}]}
    out = SpineAugd(config=flip).set_random_state(1)(batch)
    affines = out["image"].affine
    assert affines.shape == (2, 4, 4)
    for i in range(2):
        flipped = not torch.equal(out["image"][i].as_tensor(), batch["image"][i].as_tensor())
        assert (affines[i, 0, 0] < 0) == flipped
        assert out["image"].applied_operations[i][-1]["class"] == "SpineAugd"
