"""One training iteration per augmentation arm (small): the asv counterpart of ``spineaug bench --training``.

An iteration reads B enlarged patches from phantom cases (``PatchSampler``), augments them (bgv2 per sample in this
process, as a loader worker would; spineaug on the batch) and runs one forward/backward/step of the small MONAI
UNet with DiceCE loss, reading the loss back. The phantom is the quick configuration's (one coarse case). No loader workers here: asv times one process; the worker and CPU-core
settings are ``spineaug bench --training``'s. Patch edge: ``SPINEAUG_ASV_PATCH`` (default 32).
"""

from __future__ import annotations

import functools
import os

import torch

from ._common import DEVICES, sync

PATCH = int(os.environ.get("SPINEAUG_ASV_PATCH", "32"))
ARMS = ["bgv2-nnunet", "nnunet", "xdomain", "none"]


@functools.cache
def _samples(config):
    """The (small, coarse) phantom case of the quick training config, rendered once per process."""
    from spineaug.bench import training

    return training.phantom_samples(config)


class TrainingIteration:
    params = (ARMS, DEVICES)
    param_names = ["arm", "device"]
    timeout = 300
    number = 1  # one iteration per sample; asv's statistics come from the repeats
    repeat = (3, 10, 8.0)
    warmup_time = 0.0  # setup already ran one iteration

    def setup(self, arm: str, device: str) -> None:
        try:
            from spineaug.bench import training
            from spineaug.data import PatchSampler
            try:
                from spineaug.harness.augment import build_augmentation
            except ImportError:  # a commit before the shared training harness
                from spineaug.study.augment import build_augmentation
        except ImportError as exc:  # a commit before the training benchmark, or MONAI missing
            raise NotImplementedError(str(exc)) from None
        config = training.TrainingConfig.quick(patch_size=(PATCH,) * 3, batch_size=2, channels=(8, 16, 32))
        self.arm = build_augmentation(arm, config.patch_size)
        self.sampler = PatchSampler(_samples(config), config.patch_size, length=10_000, seed=0,
                                    rotation_deg=self.arm.rotation_deg, scale=self.arm.scale)
        self.pipe = self.arm.batch.to(device) if self.arm.batch is not None else None
        self.generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.train_step = _train_step(training, config, torch.device(device))
        self.device, self.batch_size, self.index = torch.device(device), config.batch_size, 0
        self.step()  # warm-up
        sync(device)

    def step(self) -> float:
        items = []
        for _ in range(self.batch_size):
            image, label = self.sampler[self.index % len(self.sampler)]
            self.index += 1
            items.append(self.arm.worker(image, label) if self.arm.worker is not None else (image, label))
        image = torch.stack([i.float() for i, _ in items]).to(self.device)
        label = torch.stack([lb.long() for _, lb in items]).to(self.device)
        if self.pipe is not None:
            image, label = self.pipe(image, label, generator=self.generator)
        return self.train_step(image, label)

    def time_iteration(self, arm: str, device: str) -> None:
        self.step()

    def peakmem_iteration(self, arm: str, device: str) -> None:
        self.step()


def _train_step(training, config, device: torch.device):
    """One optimiser step of the benchmark's network, loss read back: the shared harness's ``Trainer``, or on a
    commit before it the same network, Adam and DiceCE loss built here."""
    try:
        from spineaug.harness.train import Trainer, build_network
    except ImportError:
        from monai.losses import DiceCELoss

        model = training.build_network(config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

        def step(image, label) -> float:
            loss = loss_fn(model(image), label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        return step
    trainer = Trainer(build_network(training.network(config)).to(device), device=device, lr=1e-3)
    return lambda image, label: float(trainer.step(image, label))
