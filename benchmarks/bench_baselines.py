"""The baseline libraries on the same batches (B=2): nnU-Net's batchgeneratorsv2 pipeline, TorchIO, MONAI, kornia,
and AugLab's GPU pipeline (timed in ``.venv-auglab`` by a subprocess, reported as a ``track_`` value).

A baseline whose library (or environment) is missing is skipped: ``setup`` raises ``NotImplementedError``.
"""

from __future__ import annotations

import torch

from ._common import DEVICES, SIZES, batch, sync

LIBRARIES = ["batchgenerators", "torchio", "monai", "kornia"]


class Baselines:
    params = (LIBRARIES, ["nnunet", "xdomain"], SIZES, DEVICES)
    param_names = ["library", "pipeline", "size", "device"]
    timeout = 600

    def setup(self, library: str, pipeline: str, size: int, device: str) -> None:
        from spineaug import baselines

        try:
            base = baselines.build(library, pipeline, device=device, seed=0)
        except (baselines.BaselineUnavailable, ValueError) as exc:
            raise NotImplementedError(str(exc)) from None
        if device not in base.devices:
            raise NotImplementedError(f"{library} runs on {base.devices} only")
        self.fn = base.fn
        self.image, self.label = batch(size, device)
        self.device = device
        self.fn(self.image.clone(), self.label.clone())
        sync(device)

    def time_baseline(self, library: str, pipeline: str, size: int, device: str) -> None:
        # Clones are inside the clock here (asv has no per-call setup); they cost about one elementwise pass each.
        self.fn(self.image.clone(), self.label.clone())
        sync(self.device)

    def peakmem_baseline(self, library: str, pipeline: str, size: int, device: str) -> None:
        self.fn(self.image.clone(), self.label.clone())
        sync(self.device)


class AugLab:
    params = (SIZES, DEVICES)
    param_names = ["size", "device"]
    timeout = 900

    def setup(self, size: int, device: str) -> None:
        from spineaug.baselines import auglab

        if not auglab.available():
            raise NotImplementedError("AugLab environment missing: run `make auglab-env`")

    def track_auglab_seconds_per_batch(self, size: int, device: str) -> float:
        import statistics

        from spineaug.baselines import auglab

        reply = auglab.run([(2, size)], device=device, threads=torch.get_num_threads(), repeats=5, warmup=1)
        case = reply["cases"][0]
        if case["error"]:
            raise RuntimeError(case["error"])
        return statistics.median(case["times"])

    track_auglab_seconds_per_batch.unit = "seconds"
