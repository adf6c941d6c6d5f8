"""nnU-Net trainer step with stubs: the network sees the augmented batch; the targets come from the augmented label.

The trainer is built without nnU-Net's ``__init__`` (no plans, folders or data): only what ``train_step`` reads is
set, and the network and the loss are recording stubs, so nnU-Net's own ``train_step`` runs unchanged around them.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import spineaug

pytest.importorskip("nnunetv2")

from spineaug.integrations.nnunet import trainers  # noqa: E402

SCALES = [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]
# Geometry only, exact index path (centre crop + per-sample flips): an image equal to its label stays equal to it.
FLIP_ONLY = {"transforms": [{"name": "Spatial", "p_rotation": 0.0, "p_scale": 0.0, "p_elastic": 0.0},
                            {"name": "Flip", "p": 0.5, "axes": [0, 1, 2]}]}  # fmt: skip


class _RecordingNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x * self.weight


class _RecordingLoss:
    def __init__(self) -> None:
        self.targets: list = []

    def __call__(self, output: torch.Tensor, target) -> torch.Tensor:
        self.targets.append([t.clone() for t in target] if isinstance(target, list) else target.clone())
        return output.float().mean()


def _trainer(source: dict | spineaug.Pipeline, patch: tuple[int, int, int], seed: int = 0):
    trainer = object.__new__(trainers.nnUNetTrainerSpineAug)  # nnU-Net's __init__ wants plans and folders
    source = source if isinstance(source, spineaug.Pipeline) else spineaug.Pipeline.from_config(source)
    pipe, read = trainers.batch_pipeline(source, patch)
    pipe.generator.manual_seed(seed)  # the pipeline's own generator: train_step passes none
    trainer.spineaug, trainer.spineaug_read_size = pipe, read
    trainer.device = torch.device("cpu")
    trainer.network, trainer.loss = _RecordingNet(), _RecordingLoss()
    trainer.optimizer = torch.optim.SGD(trainer.network.parameters(), lr=0.0)
    trainer.grad_scaler = None
    trainer._get_deep_supervision_scales = lambda: SCALES
    return trainer, read


def _batch(read: tuple[int, int, int], b: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (b, 1, *read), generator=g, dtype=torch.int16)
    return {"data": target.float(), "target": target, "keys": [f"case{i}" for i in range(b)]}


def _centre(x: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    lo = [(n - p) // 2 for n, p in zip(x.shape[2:], patch)]
    return x[:, :, lo[0]:lo[0] + patch[0], lo[1]:lo[1] + patch[1], lo[2]:lo[2] + patch[2]]


def test_network_sees_augmented_data_and_targets_follow_the_augmented_label():
    patch = (8, 8, 8)
    trainer, read = _trainer(FLIP_ONLY, patch)
    batch = _batch(read)
    result = trainer.train_step(dict(batch))
    assert "loss" in result
    (seen,), (targets,) = trainer.network.inputs, trainer.loss.targets
    assert seen.shape == (4, 1, *patch)
    plain = _centre(batch["data"], patch)
    # Augmented: at least one sample differs from the un-augmented centre crop...
    changed = [not torch.equal(seen[i], plain[i]) for i in range(4)]
    assert any(changed), "the network received the un-augmented batch"
    # ...and every sample is a flip of it (geometry only, so no value was invented).
    for i in range(4):
        flips = [torch.flip(plain[i], [d + 1 for d in dims]) for dims in
                 ([], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2])]  # fmt: skip
        assert any(torch.equal(seen[i], f) for f in flips)
    # Deep-supervision targets: full resolution = the augmented label (aligned with the network input)...
    assert isinstance(targets, list) and len(targets) == 2
    assert targets[0].dtype == batch["target"].dtype and torch.equal(targets[0].float(), seen)
    # ...and the half-resolution target is derived from it, not from the un-augmented label.
    half = F.interpolate(seen, [4, 4, 4], mode="nearest-exact").to(targets[0].dtype)
    assert targets[1].shape == (4, 1, 4, 4, 4) and torch.equal(targets[1], half)
    assert torch.equal(batch["data"], batch["target"].float())  # the caller's batch is not changed


def test_the_preset_step_crops_the_enlarged_read_to_the_patch_and_downsamples_that():
    patch = (8, 8, 8)
    trainer, read = _trainer(trainers.load_source("nnunet"), patch)
    assert all(r > p for r, p in zip(read, patch))
    batch = _batch(read, b=3, seed=1)
    trainer.train_step(dict(batch))
    (seen,), (targets,) = trainer.network.inputs, trainer.loss.targets
    assert seen.shape == (3, 1, *patch) and [tuple(t.shape[2:]) for t in targets] == [patch, (4, 4, 4)]
    assert set(targets[0].unique().tolist()) <= {0, 1, 2, 3}
    half = F.interpolate(targets[0].float(), [4, 4, 4], mode="nearest-exact").to(targets[0].dtype)
    assert torch.equal(targets[1], half)
