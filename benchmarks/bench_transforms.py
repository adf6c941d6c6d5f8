"""Each transform forced on (p = 1), next to one elementwise pass (the memory-traffic floor), B=2."""

from __future__ import annotations

import torch

import spineaug

from ._common import DEVICES, SIZES, batch, sync

_NAMES = sorted(spineaug.TRANSFORMS)


def _entry(name: str) -> dict:
    from spineaug.bench import transform_entries

    presets = [p for p in ("xdomain", "nnunet") if p in spineaug.presets()]
    for entry, _ in transform_entries(presets):
        if entry["name"] == name:
            return entry
    return {"name": name}


class Transforms:
    params = (_NAMES, SIZES, DEVICES)
    param_names = ["transform", "size", "device"]
    timeout = 300

    def setup(self, transform: str, size: int, device: str) -> None:
        from spineaug.bench import forced_pipeline

        self.aug = forced_pipeline([_entry(transform)], 0, torch.device(device))
        self.image, self.label = batch(size, device)
        self.generator = torch.Generator().manual_seed(0)
        self.device = device
        self.aug(self.image, self.label, generator=self.generator)
        sync(device)

    def time_transform(self, transform: str, size: int, device: str) -> None:
        self.aug(self.image, self.label, generator=self.generator)
        sync(self.device)

    def peakmem_transform(self, transform: str, size: int, device: str) -> None:
        self.aug(self.image, self.label, generator=self.generator)
        sync(self.device)


class Floor:
    """One elementwise pass ``x * c`` over the same batch: divide a transform's time by this for its ratio."""

    params = (SIZES, DEVICES)
    param_names = ["size", "device"]

    def setup(self, size: int, device: str) -> None:
        self.image, _ = batch(size, device)
        self.factor = torch.tensor(1.0001, device=device)
        self.device = device

    def time_elementwise_pass(self, size: int, device: str) -> None:
        torch.mul(self.image, self.factor)
        sync(self.device)
