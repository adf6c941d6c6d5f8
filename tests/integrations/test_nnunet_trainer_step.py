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


def test_a_resumed_trainer_continues_the_augmentation_stream(tmp_path, monkeypatch):
    """Checkpoint after two steps, resume a fresh trainer from it: its next step sees what the first trainer's
    third step saw (the generator state travels in the side file), and a trainer without it draws otherwise."""
    monkeypatch.setattr(trainers.nnUNetTrainer, "save_checkpoint", lambda self, filename: None)
    monkeypatch.setattr(trainers.nnUNetTrainer, "load_checkpoint", lambda self, source: None)
    patch = (8, 8, 8)

    def build(seed: int):
        trainer, read = _trainer(trainers.load_source("xdomain"), patch, seed=seed)
        trainer.local_rank, trainer.disable_checkpointing, trainer.spineaug_seed = 0, False, seed
        trainer.spineaug_resume_state = None
        trainer.print_to_log_file = lambda *args, **kwargs: None
        return trainer, read

    first, read = build(seed=3)
    batches = [_batch(read, b=2, seed=k) for k in range(3)]
    first.train_step(dict(batches[0]))
    first.train_step(dict(batches[1]))
    ckpt = tmp_path / "checkpoint_latest.pth"
    first.save_checkpoint(str(ckpt))
    side = trainers.generator_state_file(ckpt, 0)
    assert side == tmp_path / "checkpoint_latest.spineaug_rank0.pt" and side.is_file()
    first.train_step(dict(batches[2]))

    resumed, _ = build(seed=99)
    resumed.load_checkpoint(str(ckpt))
    resumed.train_step(dict(batches[2]))
    assert torch.equal(resumed.network.inputs[-1], first.network.inputs[-1])

    fresh, _ = build(seed=99)
    fresh.train_step(dict(batches[2]))
    assert not torch.equal(fresh.network.inputs[-1], first.network.inputs[-1])

    unbuilt, _ = build(seed=5)  # nnU-Net loads the checkpoint before it builds the pipeline: the state waits
    unbuilt.spineaug = None
    unbuilt.load_checkpoint(str(ckpt))
    assert torch.equal(unbuilt.spineaug_resume_state, torch.load(side, weights_only=True)["generator"])


def test_the_augmentation_seed_is_reproducible_and_differs_per_rank_and_fold():
    seed = trainers.augmentation_seed
    assert seed(0, 0, 0) == seed(0, 0, 0) == seed(None, 0, 0)
    assert len({seed(0, 0, r) for r in range(8)}) == 8  # DDP ranks draw different parameters
    assert len({seed(0, f, 0) for f in (0, 1, 2, 3, 4, "all")}) == 6
    assert seed(1, 0, 0) != seed(0, 0, 0) and 0 <= seed(-(2**63), "all", 3) < 2**63


def test_the_seed_environment_variable_is_validated(monkeypatch):
    monkeypatch.setenv(trainers.SEED_ENV, "abc")
    with pytest.raises(ValueError, match="SPINEAUG_SEED must be an integer, got 'abc'"):
        trainers._seed_from_env()
    monkeypatch.setenv(trainers.SEED_ENV, " 42 ")
    assert trainers._seed_from_env() == 42
    monkeypatch.setenv(trainers.SEED_ENV, str(2**70))
    with pytest.raises(ValueError, match="SPINEAUG_SEED"):
        trainers._seed_from_env()
