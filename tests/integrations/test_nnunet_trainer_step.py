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


# --- the trainer's set-up: seeding, iteration and epoch settings, the patch pipeline, the record it writes -----------

class _Log(list):
    def __call__(self, *args, **kwargs):
        self.append(" ".join(str(a) for a in args))


def _stub_nnunet_init(monkeypatch, *, local_rank: int = 0, regions: bool = False):
    """nnU-Net's ``__init__`` replaced by what the spineaug trainers read from it."""
    from types import SimpleNamespace

    def init(self, plans, configuration, fold, dataset_json, device):
        self.nnunet_args = (plans, configuration, fold, dataset_json, device)
        self.label_manager = SimpleNamespace(has_regions=regions)
        self.is_cascaded, self.local_rank, self.device = False, local_rank, device
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1000, 250, 50
        self.print_to_log_file = _Log()

    monkeypatch.setattr(trainers.nnUNetTrainer, "__init__", init)
    for name in (trainers.CONFIG_ENV, trainers.ITERATIONS_ENV, trainers.SEED_ENV):
        monkeypatch.delenv(name, raising=False)


PLANS = {"configurations": {"3d_fullres": {"patch_size": [8, 8, 8]}}}


def test_trainer_seed_comes_from_the_environment_else_the_config_mixed_with_fold_and_rank(monkeypatch, tmp_path):
    _stub_nnunet_init(monkeypatch, local_rank=1)
    cpu = torch.device("cpu")
    t = trainers.nnUNetTrainerSpineAug(PLANS, "3d_fullres", 2, {"name": "d"}, cpu)
    assert t.nnunet_args == (PLANS, "3d_fullres", 2, {"name": "d"}, cpu)
    assert t.spineaug_seed == trainers.augmentation_seed(None, 2, 1)  # the preset has no seed: 0
    assert (t.spineaug_name, t.num_epochs, t.num_iterations_per_epoch) == ("xdomain", 1000, 250)
    assert t.spineaug_source_pipeline.config() == trainers.load_source("xdomain").config()
    monkeypatch.setenv(trainers.SEED_ENV, "17")
    assert trainers.nnUNetTrainerSpineAug(PLANS, "3d_fullres", 2, {}, cpu).spineaug_seed == \
        trainers.augmentation_seed(17, 2, 1)
    monkeypatch.delenv(trainers.SEED_ENV)
    seeded = tmp_path / "seeded.json"
    seeded.write_text('{"seed": 23, "transforms": [{"name": "Gamma", "p": 0.5}]}')
    monkeypatch.setenv(trainers.CONFIG_ENV, str(seeded))
    t = trainers.nnUNetTrainerSpineAugConfig(PLANS, "3d_fullres", 2, {}, cpu)
    assert t.spineaug_seed == trainers.augmentation_seed(23, 2, 1) and t.spineaug_name == str(seeded)
    monkeypatch.setenv(trainers.SEED_ENV, "0")  # an explicit 0 wins over the config's seed
    assert trainers.nnUNetTrainerSpineAugConfig(PLANS, "3d_fullres", 2, {}, cpu).spineaug_seed == \
        trainers.augmentation_seed(0, 2, 1)


def test_trainer_iterations_epochs_and_an_ignored_config_variable(monkeypatch):
    _stub_nnunet_init(monkeypatch)
    cpu = torch.device("cpu")
    monkeypatch.setenv(trainers.ITERATIONS_ENV, " 11 ")
    monkeypatch.setenv(trainers.CONFIG_ENV, "nnunet")
    t = trainers.nnUNetTrainerSpineAugPlus_5epochs(PLANS, "3d_fullres", 0, {}, cpu)
    assert (t.num_epochs, t.num_iterations_per_epoch, t.num_val_iterations_per_epoch) == (5, 11, 2)
    assert t.spineaug_name == "xdomain-plus"
    assert t.print_to_log_file == ["SPINEAUG_CONFIG='nnunet' is ignored by nnUNetTrainerSpineAugPlus_5epochs "
                                   "(preset 'xdomain-plus'); use nnUNetTrainerSpineAugConfig to train with it"]
    monkeypatch.setenv(trainers.ITERATIONS_ENV, "1")
    t = trainers.nnUNetTrainerSpineAugNnunet_1epoch(PLANS, "3d_fullres", 0, {}, cpu)
    assert (t.num_epochs, t.num_iterations_per_epoch, t.num_val_iterations_per_epoch) == (1, 1, 1)
    assert t.spineaug_name == "nnunet"
    for bad in ("0", "-3", "2.5"):
        monkeypatch.setenv(trainers.ITERATIONS_ENV, bad)
        with pytest.raises(ValueError, match=f"SPINEAUG_NNUNET_ITERATIONS must be a positive integer, got '{bad}'"):
            trainers.nnUNetTrainerSpineAug(PLANS, "3d_fullres", 0, {}, cpu)
    monkeypatch.delenv(trainers.ITERATIONS_ENV)
    assert trainers.nnUNetTrainerSpineAug({}, "3d_fullres", 0, {}, cpu).num_epochs == 1000  # plans without patch
    monkeypatch.delenv(trainers.CONFIG_ENV)
    with pytest.raises(ValueError) as exc:
        trainers.nnUNetTrainerSpineAugConfig(PLANS, "3d_fullres", 0, {}, cpu)
    assert str(exc.value).startswith("nnUNetTrainerSpineAugConfig reads its augmentation from SPINEAUG_CONFIG")
    with pytest.raises(ValueError, match=r"3-D patches; configuration '2d' has patch \[8, 8\]"):
        trainers.nnUNetTrainerSpineAug({"configurations": {"2d": {"patch_size": [8, 8]}}}, "2d", 0, {}, cpu)
    _stub_nnunet_init(monkeypatch, regions=True)
    with pytest.raises(ValueError, match="plain label maps only"):
        trainers.nnUNetTrainerSpineAug(PLANS, "3d_fullres", 0, {}, cpu)


def _configured(monkeypatch, tmp_path, source: str = "nnunet", axes=(2, 1, 0), resume=None, mask=False):
    """A trainer after nnU-Net's set-up hook, with the dataset's axis mapping ``axes`` (``None``: unknown)."""
    from types import SimpleNamespace

    _stub_nnunet_init(monkeypatch)
    seen = []
    monkeypatch.setattr(trainers, "dataset_array_axes", lambda folder, forward: seen.append((folder, forward)) or (
        axes, "axes note"))  # fmt: skip
    monkeypatch.setenv(trainers.CONFIG_ENV, source)
    t = trainers.nnUNetTrainerSpineAugConfig(PLANS, "3d_fullres", 0, {}, torch.device("cpu"))
    t.configuration_manager = SimpleNamespace(patch_size=[8, 8, 8], use_mask_for_norm=[mask])
    t.plans_manager = SimpleNamespace(transpose_forward=[0, 2, 1])
    t.preprocessed_dataset_folder = str(tmp_path)
    if resume is not None:
        t.spineaug_resume_state = resume
    result = t.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    assert seen == [(str(tmp_path), [0, 2, 1])]
    return t, result


def test_set_up_builds_the_patch_pipeline_in_array_axes_seeded_from_the_trainer_seed(monkeypatch, tmp_path):
    t, result = _configured(monkeypatch, tmp_path, source="xdomain", axes=(2, 1, 0))
    want, read = trainers.batch_pipeline(
        spineaug.Pipeline.from_config(trainers.remap_config(trainers.load_source("xdomain").config(), (2, 1, 0))),
        (8, 8, 8))
    assert result == (None, False, read, (2,))  # xdomain flips anatomical axis 0: array axis 2 here
    assert t.spineaug_read_size == read and t.inference_allowed_mirroring_axes == (2,) and t.spineaug_axes == (2, 1, 0)
    assert t.spineaug.config() == want.config()
    flip = next(e for e in t.spineaug.config()["transforms"] if e["name"] == "Flip")
    assert flip["axes"] == [2]
    # The stream starts from the trainer's seed: the pipeline's next draws are those of a generator seeded with it.
    want.generator.manual_seed(t.spineaug_seed)
    image, label = torch.rand(2, 1, *read), torch.randint(0, 3, (2, 1, *read))
    assert torch.equal(t.spineaug(image, label)[0], want(image, label)[0])
    assert t.print_to_log_file[0] == "spineaug: axes note"
    assert t.print_to_log_file[-1] == (f"spineaug 'xdomain': read {list(read)}, final patch [8, 8, 8], "
                                       "test-time mirroring axes (2,)")


def test_set_up_without_orientation_uses_config_axes_and_a_resumed_state(monkeypatch, tmp_path):
    state = torch.Generator().manual_seed(1234).get_state()
    t, result = _configured(monkeypatch, tmp_path, source="xdomain", axes=None, resume=state, mask=True)
    assert result[3] == (0,) and t.spineaug_axes is None
    assert torch.equal(t.spineaug.generator.get_state(), state)
    assert "spineaug: augmentation stream resumed from the checkpoint's generator state" in t.print_to_log_file
    assert any("use_mask_for_norm is set" in line for line in t.print_to_log_file)
    t, _ = _configured(monkeypatch, tmp_path, source="none", axes=(0, 1, 2))
    assert t.inference_allowed_mirroring_axes is None
    assert not any("use_mask_for_norm" in line for line in t.print_to_log_file)


def test_training_start_records_the_resolved_augmentation(monkeypatch, tmp_path):
    import json

    monkeypatch.setattr(trainers.nnUNetTrainer, "on_train_start", lambda self: None)
    t, (_, _, read, _) = _configured(monkeypatch, tmp_path, source="nnunet", axes=(2, 1, 0))
    t.output_folder = str(tmp_path)
    t.on_train_start()
    record = json.loads((tmp_path / trainers.CONFIG_FILE).read_text())
    assert record == {"trainer": "nnUNetTrainerSpineAugConfig", "source": "nnunet", "final_patch_size": [8, 8, 8],
                      "read_patch_size": list(read), "inference_mirroring_axes": [0, 1, 2],
                      "array_axes": {name: a for name, a in zip(trainers.ANATOMICAL, (2, 1, 0))},
                      "seed": t.spineaug_seed, "config": json.loads(json.dumps(t.spineaug.config()))}
    (tmp_path / trainers.CONFIG_FILE).unlink()
    t.local_rank = 1  # only rank 0 writes it
    t.on_train_start()
    assert not (tmp_path / trainers.CONFIG_FILE).exists()


def test_training_record_without_a_known_orientation(monkeypatch, tmp_path):
    import json

    monkeypatch.setattr(trainers.nnUNetTrainer, "on_train_start", lambda self: None)
    t, _ = _configured(monkeypatch, tmp_path, source="xdomain", axes=None)
    t.output_folder = str(tmp_path)
    t.on_train_start()
    record = json.loads((tmp_path / trainers.CONFIG_FILE).read_text())
    assert record["array_axes"] is None and record["inference_mirroring_axes"] == [0]


def test_checkpoint_side_files_follow_the_checkpoint_and_its_settings(monkeypatch, tmp_path):
    saved, loaded = [], []
    monkeypatch.setattr(trainers.nnUNetTrainer, "save_checkpoint", lambda self, filename: saved.append(filename))
    monkeypatch.setattr(trainers.nnUNetTrainer, "load_checkpoint", lambda self, source: loaded.append(source))
    _stub_nnunet_init(monkeypatch)
    t = trainers.nnUNetTrainerSpineAug(PLANS, "3d_fullres", 0, {}, torch.device("cpu"))
    t.disable_checkpointing = False
    ckpt = str(tmp_path / "checkpoint_best.pth")
    t.save_checkpoint(ckpt)  # before the pipeline is built: nnU-Net's checkpoint only
    side = trainers.generator_state_file(ckpt, 0)
    assert saved == [ckpt] and not side.exists()
    t, _ = _configured(monkeypatch, tmp_path, source="xdomain")
    t.disable_checkpointing = True
    t.save_checkpoint(ckpt)
    assert not side.exists()
    t.disable_checkpointing = False
    t.save_checkpoint(ckpt)
    state = torch.load(side, weights_only=True)
    assert set(state) == {"generator", "seed"} and state["seed"] == t.spineaug_seed
    assert torch.equal(state["generator"], t.spineaug.generator.get_state())
    # Loading: nnU-Net's checkpoint first; without a side file (or from a dict) the stream starts from its seed.
    fresh, _ = _configured(monkeypatch, tmp_path, source="xdomain")
    other = str(tmp_path / "checkpoint_final.pth")
    for source in (other, {"network_weights": {}}):
        fresh.print_to_log_file.clear()
        fresh.load_checkpoint(source)
        assert loaded[-1] is source and fresh.spineaug_resume_state is None
        assert fresh.print_to_log_file == ["spineaug: no augmentation generator state beside the checkpoint; the "
                                           "augmentation stream starts from its seed"]
    fresh.load_checkpoint(ckpt)
    assert torch.equal(fresh.spineaug_resume_state, state["generator"])


def test_patch_pipeline_helpers_known_answers(tmp_path):
    import re

    assert not trainers.is_anisotropic((16, 48, 48))  # exactly nnU-Net's threshold (3): not a thin slab, as there
    assert trainers.is_anisotropic((16, 49, 48))
    # An intensity-only config on a thin slab: the crop entry is added before the in-plane rotation is set.
    gamma = spineaug.Pipeline.from_config({"transforms": [{"name": "Gamma", "p": 1.0}]})
    pipe, read = trainers.batch_pipeline(gamma, (8, 32, 32))
    assert read == (8, 32, 32) and [e["name"] for e in pipe.config()["transforms"]] == ["Spatial", "Gamma"]
    # nnU-Net's data is trusted: no NaN check on the device.
    image = torch.rand(1, 1, *read)
    image[0, 0, 0, 0, 0] = float("nan")
    pipe(image, torch.zeros(1, 1, *read, dtype=torch.long))
    from spineaug.validation import NoEffectWarning

    with pytest.warns(NoEffectWarning):
        never = spineaug.Pipeline.from_config({"transforms": [{"name": "Flip", "p": 0.0, "axes": [1]}]})
    assert trainers.flip_axes(never) is None
    # Seeds: every base gives its own stream; negative bases wrap modulo 2**64.
    seed = trainers.augmentation_seed
    assert len({seed(b, 0, 0) for b in range(6)}) == 6
    assert seed(-1, 0, 0) == seed(2**64 - 1, 0, 0) and seed(-(2**63), 1, 0) == seed(2**63, 1, 0)
    with pytest.raises(ValueError, match=re.escape(f"({', '.join(spineaug.presets())})")):
        trainers.load_source(str(tmp_path / "missing.json"))


class _Moved:
    """A batch entry that records how ``train_step`` moves it (nnU-Net's loader hands over CPU tensors) and returns
    the tensor, so the step runs on the CPU whatever device it names."""

    def __init__(self, tensor: torch.Tensor, calls: list) -> None:
        self.tensor, self.calls = tensor, calls

    def to(self, *args, **kwargs) -> torch.Tensor:
        self.calls.append((args, kwargs))
        return self.tensor


def test_the_step_moves_data_and_target_to_the_training_device_without_blocking(monkeypatch):
    """Both tensors go to the trainer's device (a GPU in training: named here, not used) with ``non_blocking``, so
    the copy overlaps the previous step; nnU-Net's own step (stubbed: it would open that GPU) gets the result."""
    trainer, read = _trainer(FLIP_ONLY, (8, 8, 8))
    trainer.device = torch.device("cuda", 3)
    handed = []
    monkeypatch.setattr(trainers.nnUNetTrainer, "train_step", lambda self, b: handed.append(b) or {"loss": 0.0})
    batch, calls = _batch(read), []
    moved = dict(batch, data=_Moved(batch["data"], calls), target=_Moved(batch["target"], calls))
    trainer.train_step(moved)
    assert calls == [((torch.device("cuda", 3),), {"non_blocking": True})] * 2
    (step,) = handed
    assert step["data"].shape == (4, 1, 8, 8, 8) and [t.shape[2:] for t in step["target"]] == [(8, 8, 8), (4, 4, 4)]
