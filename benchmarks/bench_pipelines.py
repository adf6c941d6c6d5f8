"""spineaug presets end to end: seconds and peak memory per batch of B=2, over size and device."""

from __future__ import annotations

import torch

import spineaug

from ._common import DEVICES, SIZES, batch, sync


class Pipelines:
    params = (["nnunet", "xdomain"], SIZES, DEVICES)
    param_names = ["pipeline", "size", "device"]
    timeout = 300

    def setup(self, pipeline: str, size: int, device: str) -> None:
        if pipeline not in spineaug.presets():
            raise NotImplementedError(f"preset {pipeline!r} not in this commit")
        self.aug = spineaug.Pipeline.from_preset(pipeline, check_finite=False).to(device)
        self.image, self.label = batch(size, device)
        self.generator = torch.Generator().manual_seed(0)
        self.device = device
        self.aug(self.image, self.label, generator=self.generator)  # warm-up
        sync(device)

    def time_pipeline(self, pipeline: str, size: int, device: str) -> None:
        self.aug(self.image, self.label, generator=self.generator)
        sync(self.device)

    def peakmem_pipeline(self, pipeline: str, size: int, device: str) -> None:
        self.aug(self.image, self.label, generator=self.generator)
        sync(self.device)

    def track_peak_extra_bytes(self, pipeline: str, size: int, device: str) -> float:
        """Memory one call needs at its peak beyond what is allocated before it (``peakmem_`` counts the whole
        process): ``spineaug.bench.peak_extra_bytes``, as ``spineaug bench`` reports it (CUDA:
        ``max_memory_allocated``; CPU: torch.profiler memory events)."""
        from spineaug.bench import peak_extra_bytes

        return float(peak_extra_bytes(lambda x, y: self.aug(x, y, generator=self.generator), self.image, self.label)[0])

    track_peak_extra_bytes.unit = "bytes"


class MatchedWork:
    """spineaug restricted to exactly the entries a baseline expresses (``spineaug.bench.matched_config``): the
    spineaug side of the benchmark's matched-work headline, per preset and baseline."""

    params = (["nnunet", "xdomain"], ["batchgenerators", "torchio", "monai", "kornia", "auglab"], SIZES, DEVICES)
    param_names = ["pipeline", "baseline", "size", "device"]
    timeout = 300

    def setup(self, pipeline: str, baseline: str, size: int, device: str) -> None:
        try:
            from spineaug.bench import matched_config
        except ImportError:
            raise NotImplementedError("matched work not in this commit") from None
        entries = matched_config(pipeline, baseline)
        if not entries:
            raise NotImplementedError(f"{baseline} expresses no entry of {pipeline}")
        self.aug = spineaug.Pipeline.from_config({"seed": 0, "transforms": entries}, check_finite=False).to(device)
        self.image, self.label = batch(size, device)
        self.generator = torch.Generator().manual_seed(0)
        self.device = device
        self.aug(self.image, self.label, generator=self.generator)  # warm-up
        sync(device)

    def time_matched(self, pipeline: str, baseline: str, size: int, device: str) -> None:
        self.aug(self.image, self.label, generator=self.generator)
        sync(self.device)


class EngineChecks:
    """Counts that must stay flat: aten ops per call (B=4 vs B=1) and host syncs per call (0)."""

    params = (["nnunet", "xdomain"],)
    param_names = ["pipeline"]

    def setup(self, pipeline: str) -> None:
        if pipeline not in spineaug.presets():
            raise NotImplementedError(f"preset {pipeline!r} not in this commit")
        self.entries = spineaug.Pipeline.from_preset(pipeline).config()["transforms"]

    def _count(self, batch_size: int) -> tuple[int, int]:
        from spineaug.bench import count_syncs, forced_pipeline, make_batch, spineaug_fn

        image, label = make_batch(batch_size, 24, torch.device("cpu"), 0)
        syncs, _, ops = count_syncs(spineaug_fn(forced_pipeline(self.entries, 0, torch.device("cpu")), 0), image, label)
        return syncs, ops

    def track_ops_ratio_b4_over_b1(self, pipeline: str) -> float:
        return self._count(4)[1] / self._count(1)[1]

    track_ops_ratio_b4_over_b1.unit = "ratio"

    def track_host_syncs_per_call(self, pipeline: str) -> int:
        return self._count(2)[0]

    track_host_syncs_per_call.unit = "syncs"
