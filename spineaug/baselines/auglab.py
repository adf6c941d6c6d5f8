"""AugLab baseline: the reference toolbox's GPU pipeline (``AugTransformsGPU``), timed in its own environment.

AugLab (GPL-3.0) is used strictly as an installed dependency: nothing of it is copied here. It imports names that
kornia 0.8.3 and 0.9 removed (``kornia.core.Tensor``, ``kornia.utils.helpers``), so it cannot share ``.venv``
(kornia 0.9). ``make auglab-env`` builds ``.venv-auglab`` with only ``auglab`` and ``kornia==0.8.2`` installed
(``--no-deps``) and a ``.pth`` file that appends ``.venv``'s site-packages, so torch, numpy and batchgeneratorsv2 are
reused instead of a second ~6 GB torch install; the env's own kornia comes first on ``sys.path`` and wins. :func:`run`
writes a request file, runs ``_auglab_worker.py`` with that interpreter and reads the timings back as JSON.

Which AugLab: the snapshot of the paper's commit (``../shared/third_party/auglab-1ee096a.tar.gz``, 25 GPU modules
including the FOV crop) when it is present, otherwise the older PyPI wheel ``auglab==20260109`` (24 modules, other
module order, no FOV crop). ``make auglab-env`` records its choice in ``.venv-auglab/auglab-source.txt``;
:func:`installed_source` reads it and :func:`run` puts it into the reply's ``auglab`` version string, so the benchmark
meta states which one ran. The config is the snapshot's real ``transform_params_gpu.json`` (read from the tarball)
when available, else :data:`DEFAULT_GPU_CONFIG`, our restatement; ``AUGLAB_PARAMS_GPU_JSON`` overrides both.

AugLab is compared with ``xdomain`` only (its default GPU config is what ``xdomain`` re-implements).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineaug.baselines._common import Baseline, BaselineUnavailable, MappingRow, mapping_rows

LIBRARY = "auglab"
ENV_DIR = ".venv-auglab"
HINT = "run `make auglab-env`"
SNAPSHOT_NAME = "auglab-1ee096a.tar.gz"
SOURCE_FILE = "auglab-source.txt"
SNAPSHOT_SOURCE = "snapshot 1ee096a"
WHEEL_SOURCE = "wheel 20260109"
_GPU_JSON = "auglab/configs/transform_params_gpu.json"

DEFAULT_GPU_CONFIG: dict[str, dict[str, Any]] = {
    "FlipTransform": {"flip_axis": [0], "probability": 0.5},
    "AffineTransform": {"degrees": 5, "translate": [0.1, 0.1, 0.1], "scale": [0.7, 1.4],
                        "shear": [-5, 5, -5, 5, -5, 5], "probability": 0.0},
    "InverseTransform": {"retain_stats": True, "probability": 0.25},
    "HistogramEqualizationTransform": {"retain_stats": True, "mix_prob": 0.6, "probability": 0.25},
    "RedistributeSegTransform": {"in_seg": 0.25, "retain_stats": True, "probability": 0.4},
    "ScharrTransform": {"kernel_type": "Scharr", "absolute": True, "retain_stats": True, "mix_prob": 0.5,
                        "probability": 0.25},
    "UnsharpMaskTransform": {"kernel_type": "UnsharpMask", "sigma": 1.0, "unsharp_amount": 1.5, "mix_prob": 0.5,
                             "probability": 0.25},
    "RandomConvTransform": {"kernel_type": "RandConv", "kernel_sizes": [3, 5, 7], "retain_stats": True,
                            "mix_prob": 0.5, "probability": 0.2},
    "ClampTransform": {"max_clamp_amount": 0.2, "retain_stats": True, "probability": 0.0},
    "GaussianNoiseTransform": {"mean": 0.0, "std": 1.0, "probability": 0.1},
    "GaussianBlurTransform": {"kernel_type": "GaussianBlur", "sigma": 1.0, "probability": 0.2},
    "BrightnessTransform": {"brightness_range": [0.75, 1.25], "probability": 0.15},
    "GammaTransform": {"gamma_range": [0.7, 1.5], "retain_stats": True, "probability": 0.3},
    "InvGammaTransform": {"gamma_range": [0.7, 1.5], "retain_stats": True, "probability": 0.1},
    "ContrastTransform": {"contrast_range": [0.75, 1.25], "probability": 0.15},
    "FunctionTransform": {"retain_stats": True, "probability": 0.1},
    "SimulateLowResTransform": {"scale": [0.5, 1.0], "probability": 0.25},
    "AcqTransform": {"scale": [0.1, 1.0], "probability": 0.2},
    "BiasFieldTransform": {"coefficients": 0.2, "retain_stats": True, "probability": 0.15},
    "ZscoreNormalizationTransform": {"probability": 0.0},
}
"""AugLab's default GPU configuration, from CATALOG.md sections 2 and 8 (our restatement, in AugLab's keys); used only
when the snapshot (and so its real ``transform_params_gpu.json``) is absent."""

MAPPING: dict[str, tuple[str | None, str]] = {
    "Flip": ("RandomFlipTransformGPU", "batch-shared gate"),
    "Affine": ("RandomAffine3DCustom", "p 0 in the default config"),
    "Inversion": ("RandomInverseGPU", "per-sample Python loop"),
    "HistogramEqualization": ("RandomHistogramEqualizationGPU", "per-sample loop"),
    "LabelIntensityRemap": ("RandomRedistributeSegGPU", "per-sample, per-region loops"),
    "ScharrEdge": ("RandomConvTransformGPU[Scharr]", ""),
    "UnsharpMask": ("RandomConvTransformGPU[UnsharpMask]", ""),
    "RandomConv": ("RandomConvTransformGPU[RandConv]", "per-sample kernels in a loop"),
    "PercentileClamp": ("RandomClampGPU", "p 0 in the default config"),
    "GaussianNoise": ("RandomGaussianNoiseGPU", "batch-shared sigma"),
    "GaussianBlur": ("RandomConvTransformGPU[GaussianBlur]", "3-tap off-centre kernel"),
    "Brightness": ("RandomBrightnessGPU", "batch-shared factor"),
    "Gamma": ("RandomGammaGPU", ""),
    "InverseGamma": ("RandomGammaGPU(invert_image=True)", ""),
    "Contrast": ("RandomContrastGPU", "per-sample loop"),
    "IntensityFunction": ("RandomFunctionGPU x5", "five modules"),
    "LowResolution": ("RandomLowResTransformGPU", "degrades the label too"),
    "ThickSlice": ("RandomAcqTransformGPU", ""),
    "FovCrop": ("RandomCropTransformGPU", "snapshot 1ee096a only (the wheel has no FOV crop)"),
    "BiasField": ("RandomBiasFieldGPU", ""),
    "ZScore": ("ZscoreNormalizationGPU", "p 0 in the default config"),
}
NOTE_MISSING = "not in AugLab's GPU pipeline"


def mapping(pipeline: str) -> list[MappingRow]:
    """One row per transform of the preset: the AugLab GPU module that does the same, if any (for the installed
    AugLab: the wheel has no FOV crop)."""
    table = MAPPING
    if installed_source() == WHEEL_SOURCE:
        table = {**MAPPING, "FovCrop": (None, "not in the auglab wheel (only in the snapshot)")}
    return mapping_rows(pipeline, table, NOTE_MISSING)


def repo_root() -> Path:
    """The checkout that holds this package (``.venv-auglab`` lives there)."""
    return Path(__file__).resolve().parents[2]


def interpreter() -> Path:
    """The AugLab environment's Python: ``$SPINEAUG_AUGLAB_PYTHON`` or ``<repo>/.venv-auglab/bin/python``."""
    override = os.environ.get("SPINEAUG_AUGLAB_PYTHON")
    if override:
        return Path(override)
    for base in (repo_root(), Path.cwd()):
        candidate = base / ENV_DIR / "bin" / "python"
        if candidate.exists():
            return candidate
    return repo_root() / ENV_DIR / "bin" / "python"


def available() -> bool:
    """Whether the AugLab environment exists."""
    return interpreter().exists()


def snapshot_path() -> Path:
    """Where the AugLab snapshot of the paper's commit lives: ``../shared/third_party/`` beside the checkout."""
    return repo_root().parent / "shared" / "third_party" / SNAPSHOT_NAME


def installed_source() -> str | None:
    """Which AugLab the environment holds: ``"snapshot 1ee096a"`` or ``"wheel 20260109"``; ``None`` without an env.

    An environment built before ``make auglab-env`` recorded its source holds the wheel (the only option then).
    """
    python = interpreter()
    if not python.exists():
        return None
    record = python.parent.parent / SOURCE_FILE
    if not record.is_file():
        return WHEEL_SOURCE
    return record.read_text().strip() or WHEEL_SOURCE


def gpu_config() -> tuple[dict[str, Any], str]:
    """The GPU configuration to time and where it comes from.

    Returns:
        ``(config, origin)``: the snapshot's real ``transform_params_gpu.json`` (origin ``"snapshot 1ee096a"``) when
        the snapshot is present, else :data:`DEFAULT_GPU_CONFIG` (origin ``"restatement"``).
    """
    path = snapshot_path()
    if path.is_file():
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(_GPU_JSON):
                    return json.loads(tar.extractfile(member).read().decode()), SNAPSHOT_SOURCE
    return DEFAULT_GPU_CONFIG, "restatement"


def build(pipeline: str, device: str = "cpu", seed: int = 0) -> Baseline:
    """Describe the AugLab baseline; its timings come from :func:`run` (a subprocess), so ``fn`` is ``None``."""
    if pipeline != "xdomain":
        raise BaselineUnavailable(f"AugLab's GPU pipeline is compared with 'xdomain' only, not {pipeline!r}")
    rows = mapping(pipeline)
    if not available():
        raise BaselineUnavailable(f"AugLab environment {interpreter()} not found; {HINT}")
    return Baseline(LIBRARY, pipeline, "substitute", None, rows, ("cpu", "cuda"), "")


def _call(python: Path, worker: Path, request: Path, timeout: float, what: str) -> dict[str, Any]:
    """Run a worker script with the AugLab interpreter on a request file; its last stdout line is the JSON reply.

    Raises:
        BaselineUnavailable: The worker exited with an error (its stderr tail is in the message) or printed no JSON.
    """
    proc = subprocess.run([str(python), "-P", str(worker), str(request)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise BaselineUnavailable(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise BaselineUnavailable(f"{what} returned no JSON: {proc.stdout[-300:]!r}") from None


def run(
    cases: list[tuple[int, int]],
    *,
    device: str = "cpu",
    threads: int = 1,
    seed: int = 0,
    warmup: int = 1,
    repeats: int = 5,
    max_seconds: float = 60.0,
    timeout: float = 1800.0,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time AugLab's GPU pipeline on ``(batch, size)`` cases in the AugLab environment.

    ``threads`` is the worker's ``torch.set_num_threads``. ``data`` maps ``"BxS"`` to the ``(image, label)`` CPU
    tensors to time on (the inputs the in-process rows use); cases without data get the worker's random batch.

    Returns:
        The worker's JSON reply: versions (``auglab`` also names the installed source, e.g.
        ``"20260109, snapshot 1ee096a"``), ``source`` (:func:`installed_source`), ``config`` (where the config came
        from), and per case ``times`` (seconds per batch), ``peak_rss_bytes``, ``cuda_max_allocated_bytes``, ``error``.

    Raises:
        BaselineUnavailable: The environment is missing or the worker failed (its stderr tail is in the message).
    """
    python = interpreter()
    if not python.exists():
        raise BaselineUnavailable(f"AugLab environment {python} not found; {HINT}")
    worker = Path(__file__).with_name("_auglab_worker.py")
    with tempfile.TemporaryDirectory(prefix="spineaug-auglab-") as tmp:
        config = os.environ.get("AUGLAB_PARAMS_GPU_JSON")
        origin = config
        if not config:
            values, origin = gpu_config()
            config = str(Path(tmp) / "transform_params_gpu.json")
            Path(config).write_text(json.dumps(values, indent=1))
        request = Path(tmp) / "request.json"
        data_path = ""
        if data:
            data_path = str(Path(tmp) / "data.pt")
            torch.save(data, data_path)
        request.write_text(json.dumps({
            "config": config, "device": device, "threads": threads, "seed": seed, "warmup": warmup,
            "repeats": repeats, "cases": [list(c) for c in cases], "max_seconds": max_seconds, "data": data_path,
        }))
        reply = _call(python, worker, request, timeout, "AugLab worker")
    source = installed_source()
    reply["source"], reply["config"] = source, origin
    reply["auglab"] = f"{reply.get('auglab', '?')}, {source}"
    return reply


def probe(image: Any, label: Any, *, draws: int, matched: dict[str, dict[str, Any]] | None = None, seed: int = 0,
          timeout: float = 900.0) -> dict[str, Any]:
    """Observe AugLab's GPU modules on one volume, in the AugLab environment (``_auglab_probe.py``).

    Args:
        image: (1, 1, X, Y, Z) float array (numpy or torch, on the CPU).
        label: (1, 1, X, Y, Z) integer label map.
        draws: Calls of the full GPU container (the :func:`gpu_config` configuration) whose per-module coin flips
            are counted.
        matched: ``{id: single-module AugLab config}``: each is built alone and applied once to ``image``.
        seed: torch seed in the worker.

    Returns:
        The worker's reply: ``modules`` (class names in container order), ``fired`` (coin flips that said yes, per
        module), ``draws``, ``matched`` (``{id: output array}``, or an ``"error: ..."`` string), versions.

    Raises:
        BaselineUnavailable: The environment is missing or the worker failed.
    """
    python = interpreter()
    if not python.exists():
        raise BaselineUnavailable(f"AugLab environment {python} not found; {HINT}")
    worker = Path(__file__).with_name("_auglab_probe.py")
    with tempfile.TemporaryDirectory(prefix="spineaug-auglab-probe-") as tmp:
        values, origin = gpu_config()
        config = Path(tmp) / "transform_params_gpu.json"
        config.write_text(json.dumps(values, indent=1))
        np.save(Path(tmp) / "image.npy", np.asarray(image, dtype=np.float32))
        np.save(Path(tmp) / "label.npy", np.asarray(label, dtype=np.float32))
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "config": str(config), "image": str(Path(tmp) / "image.npy"), "label": str(Path(tmp) / "label.npy"),
            "draws": int(draws), "seed": int(seed), "out": tmp,
            "matched": [{"id": k, "config": v} for k, v in (matched or {}).items()],
        }))
        reply = _call(python, worker, request, timeout, "AugLab probe")
        reply["matched"] = {k: v if v.startswith("error") else np.load(v) for k, v in reply["matched"].items()}
    reply["source"], reply["config"] = installed_source(), origin
    return reply


if __name__ == "__main__":  # pragma: no cover - manual check: python -m spineaug.baselines.auglab
    print(json.dumps(run([(1, 32)], repeats=2), indent=1), file=sys.stdout)
