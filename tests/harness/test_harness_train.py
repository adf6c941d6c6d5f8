"""The shared training harness (spineaug.harness.train): one network, loss, step, loop and arm placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spineaug.data import robust_zscore
from spineaug.harness import train as H
from spineaug.harness.augment import BASELINE_ARMS, Augmentation, build_augmentation

PATCH = (16, 16, 16)


@pytest.fixture(scope="module")
def samples():
    return H.phantom_samples("t2w", [0], shape=(24, 28, 48), spacing=4.0)


def test_phantom_sample_is_the_robust_z_score_as_one_channel(samples):
    from spineaug import phantom

    case = phantom.make_case(0, "t2w", shape=(24, 28, 48), spacing=4.0)
    (s,) = samples
    assert s.case_id == "phantom_000" and s.image.shape == (1, *case.image.shape) and s.image.dtype == np.float32
    assert np.array_equal(s.image, robust_zscore(case.image)[None])
    assert s.label.dtype == np.uint8 and np.array_equal(s.label, case.label)
    two = np.stack([case.image, 2 * case.image + 1])
    z = H.zscored(two, (1.0, 99.0))
    assert np.array_equal(z[1], robust_zscore(two[1], percentiles=(1.0, 99.0)))


@pytest.mark.parametrize("name", ["UNet", "DynUNet"])
def test_network_maps_a_patch_to_class_logits(name):
    torch.manual_seed(0)
    model = H.build_network(H.Network(filters=(4, 8, 16), name=name), in_channels=2)
    assert model(torch.zeros(1, 2, *PATCH)).shape == (1, H.N_CLASSES, *PATCH)
    with pytest.raises(ValueError, match="UNet or DynUNet"):
        H.build_network(H.Network(name="VNet"))


def test_study_and_benchmark_build_the_same_network():
    """The study's model config and the benchmark's network size go through the one builder."""
    from spineaug.bench.training import TrainingConfig, network
    from spineaug.study.config import Model
    from spineaug.study.train import build_model

    torch.manual_seed(3)
    bench = H.build_network(network(TrainingConfig(channels=(4, 8, 16)))).state_dict()
    torch.manual_seed(3)
    study = build_model(Model(filters=[4, 8, 16])).state_dict()
    assert list(bench) == list(study) and all(torch.equal(bench[k], study[k]) for k in bench)


def test_arm_placement_follows_the_built_arm():
    arm = H.training_arm(build_augmentation("nnunet", PATCH))
    assert isinstance(arm, H.InLoopArm) and arm.in_loop and arm.placement == "in loop"
    assert H.arm_placement("nnunet") is H.InLoopArm and H.arm_placement("studies/arms/x.yaml") is H.InLoopArm
    for name in BASELINE_ARMS:  # named without building it: no baseline library imported
        assert H.arm_placement(name) is H.WorkerArm and not H.WorkerArm.in_loop

    calls = []

    def fn(image, label):
        calls.append(1)
        return image + 1, label

    aug = Augmentation("fake", None, fn, 0.0, (1.0, 1.0), PATCH, {})
    worker = H.training_arm(aug)
    assert isinstance(worker, H.WorkerArm) and worker.placement == "loader workers"
    image, label = torch.zeros(1, *PATCH), torch.zeros(1, *PATCH, dtype=torch.int64)
    assert worker.augment(image, label, torch.Generator()) == (image, label)  # nothing in the loop
    wrapped = worker.wrapped(lambda f: lambda i, lb: f(i * 0 + 1, lb))
    out, _ = wrapped.dataset([(image, label)])[0]
    assert torch.equal(out, image + 2) and calls == [1]
    with pytest.raises(ValueError, match="neither"):
        H.training_arm(Augmentation("empty", None, None, 0.0, (1.0, 1.0), PATCH, {}))


def _train(samples, arm_name: str, iterations: int = 3, **trainer) -> list[H.Step]:
    device = torch.device("cpu")
    arm = H.training_arm(build_augmentation(arm_name, PATCH))
    patches = arm.patches(samples, PATCH, length=2 * iterations, seed=0)
    assert patches.read_size == arm.augmentation.read_size
    loader = H.training_loader(arm.dataset(patches), batch_size=2, workers=0, device=device)
    torch.manual_seed(0)
    model = H.build_network(H.Network(filters=(4, 8))).to(device)
    step = H.Trainer(model, device=device, **trainer)
    gen = torch.Generator().manual_seed(1)
    return list(H.training_steps(loader, arm.to(device), step, generator=gen, device=device))


def test_training_steps_yield_one_step_per_batch_and_replay_exactly(samples):
    steps = _train(samples, "xdomain")
    assert len(steps) == 3
    for s in steps:
        assert s.waited <= s.fetched <= s.moved <= s.augmented <= s.done and s.events is None
        assert np.isfinite(s.loss)
    again = _train(samples, "xdomain")
    assert [s.loss for s in steps] == [s.loss for s in again]
    other = _train(samples, "none")
    assert [s.loss for s in steps] != [s.loss for s in other]  # the arm's augmentation ran inside the step


def test_trainer_schedule_decays_the_learning_rate(samples):
    device = torch.device("cpu")
    model = H.build_network(H.Network(filters=(4, 8)))
    trainer = H.Trainer(model, device=device, lr=1e-2, iterations=4)
    assert trainer.scheduler is not None and not trainer.amp and not trainer.scaler.is_enabled()
    image, label = torch.randn(2, 1, *PATCH), torch.randint(0, 4, (2, 1, *PATCH))
    lrs = []
    for _ in range(3):
        trainer.step(image, label)
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-2
    assert H.Trainer(model, device=device).scheduler is None
    assert H.Trainer(model, device=device, amp=True).amp is False  # mixed precision only on CUDA
