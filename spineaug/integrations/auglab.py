"""Read AugLab's JSON augmentation configs as spineaug pipelines (CATALOG.md sections 2, 4 and 7.9).

What is translated: what AugLab's GPU trainer (``nnUNetTrainerDAExtGPU``, AugLab commit 1ee096a) takes from a config
file. That is the top-level ``nnUNetSpatialTransform`` block (nnU-Net's spatial transform in the data loader), then
the GPU modules (at the top level, or under ``"GPU"``) in the order ``AugTransformsGPU`` builds them, which is not the
JSON order. Each block is read the way AugLab's builder reads it (:mod:`spineaug.integrations._auglab_block`): the
same key names (``probability``, not ``p``) and the same defaults for absent keys (a module without ``probability``
never fires). One translator function per AugLab module family maps it to spineaug entries; the table of modules is
:mod:`spineaug.integrations._auglab_modules`, the translators live in ``_auglab_spatial``, ``_auglab_intensity`` and
``_auglab_filters``. The result has
spineaug's semantics (per-sample draws, centred blur/unsharp kernels, image-only low resolution, working label
regions) and AugLab's behaviour otherwise. The
``xdomain`` preset equals this translation of the paper's ``transform_params_gpu.json``; ``tests/integrations/test_auglab.py``
checks that entry by entry.

Not translated: AugLab's CPU (data-loader) pipeline, that is a ``"CPU"`` block or a file in the CPU layout such as
``transform_params.json``. It gets a :class:`NotTranslatedWarning` and adds no entries.

Warnings: a :class:`NoEffectWarning` names a key that changes nothing in AugLab (its builder does not read it or
overrides it, or the module never fires). A :class:`NotTranslatedWarning` names something that does act in AugLab
but that the translation leaves out or approximates. Errors: unknown keys (typos) and values that spineaug cannot
express raise :class:`~spineaug.ConfigError` naming the key. So do string booleans such as ``"false"``, which
AugLab would read as true.

Example:
    >>> from spineaug.integrations.auglab import from_auglab
    >>> aug = from_auglab({"GammaTransform": {"probability": 0.3, "gamma_range": [0.7, 1.5]}})
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from spineaug.config import build_transform, load_config
from spineaug.integrations._auglab_block import (
    UNREAD_REASONS,
    AugLabWarning,
    Block,
    Entry,
    NoEffectWarning,
    NotTranslatedWarning,
    warn,
)
from spineaug.integrations._auglab_modules import GPU_TRANSLATORS
from spineaug.integrations._auglab_spatial import nnunet_spatial
from spineaug.pipeline import Pipeline
from spineaug.validation import ConfigError

__all__ = ["AugLabWarning", "NoEffectWarning", "NotTranslatedWarning", "auglab_to_config", "from_auglab"]

# Keys that only AugLab's CPU builder (``AugTransforms``) reads: a file with them at the top level is a CPU config.
_CPU_ONLY_KEYS = frozenset(
    {
        "ConvTransform", "HistogramEqualTransform", "RedistributeTransform", "ShapeTransform", "ArtifactTransform",
        "SpatialCustomTransform", "SpatialTransform", "MultiplicativeBrightnessTransform",
        "SimulateLowResolutionTransform", "GammaTransform_invert", "mirror_axes", "retain_stats",
    }
)  # fmt: skip
# Module names that both builders read (with different parameters).
_SHARED_NAMES = frozenset(
    {
        "GaussianNoiseTransform",
        "GaussianBlurTransform",
        "ContrastTransform",
        "GammaTransform",
        "FunctionTransform",
    }
)
_SPATIAL = "nnUNetSpatialTransform"


def _gated(key: str, params: Any, translate: Callable[[Block], list[Entry]]) -> list[Entry]:
    """Translate one GPU module; its ``probability`` (AugLab's default 0) becomes each entry's ``p``."""
    b = Block(key, params)
    if "p" in b.params and "probability" not in b.params:
        b.no_effect("p", UNREAD_REASONS["p"])
    p = b.unit("probability", 0.0)
    if p == 0:
        b.check_keys(report=False)  # a module that never fires: only typos matter
        how = "is 0" if "probability" in b.params else "is absent (AugLab's default is 0)"
        warn(NoEffectWarning, f"{key}.probability", f"{how}: the module never fires; left out")
        return []
    b.no_effect(
        "same_on_batch",
        "AugLab's container sets same_on_batch = true on every module; spineaug draws per sample",
    )
    b.no_effect("keepdim", "has no effect on (B, C, D, H, W) input")
    entries = [{**entry, "p": p} for entry in translate(b)]
    b.check_keys()
    return _checked(key, entries)


def _checked(key: str, entries: list[Entry]) -> list[Entry]:
    """Validate the spineaug entries translated from AugLab module ``key``; an error names that module."""
    for entry in entries:
        build_transform(entry, f"AugLab config: {key}")
    return entries


def _is_comment(key: str, value: Any) -> bool:
    return key.startswith("Comment") and isinstance(value, str)


def _parts(data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The GPU modules and the trainer's ``nnUNetSpatialTransform`` block (``None`` if absent) of a config file."""
    data = {k: v for k, v in data.items() if not _is_comment(k, v)}
    spatial = data.get(_SPATIAL)
    if "GPU" in data:
        gpu = data["GPU"]
        if not isinstance(gpu, dict):
            raise ConfigError(f"AugLab config: GPU: expected an object of modules, got {type(gpu).__name__}")
        for key in data:
            if key == "CPU":
                warn(NotTranslatedWarning, "CPU", "AugLab's CPU (data-loader) pipeline is not translated")
            elif key not in ("GPU", _SPATIAL):
                raise ConfigError(
                    f"AugLab config: unknown top-level key {key!r} next to 'GPU'; allowed: ['CPU', 'GPU', '{_SPATIAL}']"
                )
        return {k: v for k, v in gpu.items() if not _is_comment(k, v)}, spatial
    cpu_only = sorted(set(data) & _CPU_ONLY_KEYS)
    if cpu_only:
        gpu_only = sorted(set(data) & (set(GPU_TRANSLATORS) - _SHARED_NAMES))
        if gpu_only:
            raise ConfigError(
                f"AugLab config: mixes CPU-only keys {cpu_only} and GPU-only keys {gpu_only} at the top level; "
                "put them under 'CPU' and 'GPU'"
            )
        warn(
            NotTranslatedWarning,
            "(top level)",
            f"this is an AugLab CPU (data-loader) config ({', '.join(cpu_only)}, ...), read by AugTransforms; "
            "it is not translated and adds no entries",
        )
        return {}, None
    if "CPU" in data:
        warn(NotTranslatedWarning, "CPU", "AugLab's CPU (data-loader) pipeline is not translated")
    return {k: v for k, v in data.items() if k not in ("CPU", _SPATIAL)}, spatial


def auglab_to_config(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Translate an AugLab JSON config into a spineaug config dict (not yet validated).

    Args:
        source: Path to an AugLab JSON file, or its parsed dict: the GPU modules at the top level or under a
            ``"GPU"`` key, plus an optional top-level ``nnUNetSpatialTransform`` block.

    Returns:
        ``{"description": ..., "seed": None, "transforms": [...]}`` in AugLab's order of application.

    Raises:
        ConfigError: An unknown module or parameter key, or a value that spineaug cannot express.
    """
    if not isinstance(source, (str, Path, dict)):
        raise ConfigError(
            f"AugLab config: expected a JSON object of modules (or the path of a file holding one), "
            f"got {type(source).__name__}"
        )
    data = load_config(source, what="AugLab config", expected="a JSON object of modules")
    gpu, spatial = _parts(data)
    cpu = "CPU" in data or bool(set(data) & _CPU_ONLY_KEYS)  # warned about in _parts
    if not gpu and spatial is None and not cpu:
        warn(NoEffectWarning, "GPU" if "GPU" in data else "(top level)",
             f"names no GPU module and no {_SPATIAL}: the translation is an empty pipeline")  # fmt: skip
    unknown = sorted(set(gpu) - set(GPU_TRANSLATORS) - {_SPATIAL})
    if unknown:
        raise ConfigError(f"AugLab config: unknown module key(s) {unknown}; known: {sorted(GPU_TRANSLATORS)}")
    if _SPATIAL in gpu:
        warn(NoEffectWarning, f"GPU.{_SPATIAL}", "AugLab's trainer reads it from the top level only; ignored")
    entries: list[Entry] = []
    if spatial is not None:
        b = Block(_SPATIAL, spatial)
        translated = nnunet_spatial(b)
        b.check_keys()
        entries += _checked(_SPATIAL, translated)
    for key, translate in GPU_TRANSLATORS.items():
        if key in gpu:
            entries += _gated(key, gpu[key], translate)
    if "CropTransform" in gpu and "AcqTransform" not in gpu:
        warn(
            NotTranslatedWarning,
            "CropTransform",
            "AugLab's builder fails on this config (it reads CropTransform's same_on_batch from the missing "
            "AcqTransform block); translated as if it ran",
        )
    description = "Translated from an AugLab config by spineaug.integrations.auglab (GPU pipeline only)."
    return {"description": description, "seed": None, "transforms": entries}


def from_auglab(source: str | Path | dict[str, Any], **kwargs: Any) -> Pipeline:
    """Build a spineaug :class:`~spineaug.Pipeline` from an AugLab JSON config.

    Args:
        source: Path to an AugLab JSON file, or its parsed dict (see :func:`auglab_to_config`).
        **kwargs: Passed to :meth:`Pipeline.from_config` (e.g. ``seed=``, ``patch_size=``).

    Returns:
        The pipeline, with spineaug's per-sample semantics.

    Raises:
        ConfigError: An unknown key, or a value that is invalid or not expressible in spineaug.
    """
    return Pipeline.from_config(auglab_to_config(source), **kwargs)
