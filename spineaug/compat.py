"""Read AugLab's JSON augmentation configs (CATALOG.md sections 2, 4 and 7.9) as spineaug pipelines.

AugLab names its GPU modules with keys such as ``"GammaTransform": {"p": 0.3, "gamma_range": [0.7, 1.5], ...}``
and applies them in a fixed order (not the JSON order). :func:`from_auglab` maps every key and parameter to the
spineaug entry of CATALOG.md's table, in AugLab's order, and builds a :class:`~spineaug.Pipeline`. The result has
spineaug's semantics (per-sample gates and parameters, centred kernels, image-only low resolution, working label
regions); it is not an emulation of AugLab's quirks.

Parameters that have no effect in AugLab (``same_on_batch``, which AugLab's container overrides; ``mix_in_out``
when ``in_seg = out_seg = 0``; ``retain_stats``/``mix_prob`` that AugLab's builder never forwards; modules with
``p = 0``, which are dropped) produce a :class:`UserWarning`; unknown keys and unsupported values raise
:class:`~spineaug.ConfigError` naming the key.

Example:
    >>> import spineaug.compat
    >>> aug = spineaug.compat.from_auglab({"GammaTransform": {"p": 0.3, "gamma_range": [0.7, 1.5]}})
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spineaug.pipeline import Pipeline
from spineaug.validation import ConfigError

Entry = dict[str, Any]
_REGION_KEYS = ("in_seg", "out_seg", "mix_in_out")


class _Module:
    """One AugLab module: the parameters it accepts and how it maps to spineaug entries."""

    def __init__(
        self,
        keys: set[str],
        build: Callable[[str, dict[str, Any]], list[Entry]],
        *,
        region: bool = False,
    ) -> None:
        self.keys = keys | {"p", "same_on_batch", "keepdim"} | (set(_REGION_KEYS) if region else set())
        self.build = build


def _warn(key: str, message: str) -> None:
    warnings.warn(f"AugLab config: {key}: {message}", UserWarning, stacklevel=4)


def _number(key: str, params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"AugLab config: {key}.{name}: expected a number, got {value!r}")
    return float(value)


def _pair(key: str, params: dict[str, Any], name: str, default: tuple[float, float]) -> list[float]:
    value = params.get(name, list(default))
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"AugLab config: {key}.{name}: expected a [low, high] pair, got {value!r}")
    return [float(v) for v in value]


def _region(key: str, params: dict[str, Any]) -> dict[str, Any]:
    """Map ``in_seg``/``out_seg``/``mix_in_out`` to spineaug's ``region`` option (absent when both are 0)."""
    p_in = _number(key, params, "in_seg", 0.0)
    p_out = _number(key, params, "out_seg", 0.0)
    if p_in == 0 and p_out == 0:
        if params.get("mix_in_out", False):
            _warn(f"{key}.mix_in_out", "has no effect with in_seg = out_seg = 0 (the transform acts everywhere)")
        return {}
    subset = 0.5 if params.get("mix_in_out", False) else 1.0
    return {"region": {"p_inside": p_in, "p_outside": p_out, "label_subset_p": subset}}


def _copy(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: params[n] for n in names if n in params}


# --------------------------------------------------------------------------------------------- module translators


def _flip(key: str, params: dict[str, Any]) -> list[Entry]:
    axes = params.get("flip_axis", [0])
    if isinstance(axes, int):
        axes = [axes]
    if len(axes) > 1:
        _warn(
            f"{key}.flip_axis",
            "AugLab flips all listed axes together; spineaug flips each listed axis independently with probability p",
        )
    return [{"name": "Flip", "axes": list(axes)}]


def _affine(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "Affine"}
    if "degrees" in params:
        d = params["degrees"]
        entry["degrees"] = [-abs(float(d)), abs(float(d))] if isinstance(d, (int, float)) else d
    if "translate" in params:
        entry["translate"] = params["translate"]
    if "scale" in params:
        entry["scale"] = _pair(key, params, "scale", (1.0, 1.0))
    if "shear" in params:
        shear = params["shear"]
        flat = [shear] if isinstance(shear, (int, float)) else list(shear)
        bound = max(abs(float(v)) for v in flat)
        entry["shear_deg"] = [-bound, bound]
    resample = str(params.get("resample", "bilinear")).lower()
    if resample not in ("bilinear", "linear", "trilinear"):
        _warn(f"{key}.resample", f"{resample!r} is not supported; spineaug resamples images trilinearly")
    return [entry]


def _mixing(params: dict[str, Any], retain_default: bool, mix_default: float) -> Entry:
    return {
        "retain_stats": bool(params.get("retain_stats", retain_default)),
        "mix_prob": float(params.get("mix_prob", mix_default)),
    }


def _inversion(key: str, params: dict[str, Any]) -> list[Entry]:
    return [{"name": "Inversion", **_mixing(params, True, 0.0), **_region(key, params)}]


def _histogram(key: str, params: dict[str, Any]) -> list[Entry]:
    return [{"name": "HistogramEqualization", **_mixing(params, True, 0.6), **_region(key, params)}]


def _redistribute(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "LabelIntensityRemap"}  # per-label regions, as AugLab intends (its GPU code unions them)
    if "in_seg" in params:
        entry["p_inside"] = _number(key, params, "in_seg", 0.25)
    if "retain_stats" in params:
        entry["retain_stats"] = bool(params["retain_stats"])
    return [entry]


def _conv(kind: str) -> Callable[[str, dict[str, Any]], list[Entry]]:
    def build(key: str, params: dict[str, Any]) -> list[Entry]:
        kernel = str(params.get("kernel_type", kind))
        if kernel.lower() not in (kind.lower(), "laplace", "scharr"):
            raise ConfigError(f"AugLab config: {key}.kernel_type: unsupported kernel {kernel!r}")
        region = _region(key, params)
        if kind == "Scharr":
            if kernel.lower() == "laplace":
                return [{"name": "Laplacian", **_mixing(params, True, 0.5), **region}]
            if params.get("absolute", True) is not True:
                raise ConfigError(
                    f"AugLab config: {key}.absolute: false (signed sum of responses) is not supported; "
                    "spineaug's ScharrEdge returns the edge magnitude"
                )
            return [{"name": "ScharrEdge", "magnitude": "l1", **_mixing(params, True, 0.5), **region}]
        if kind == "UnsharpMask":
            if "retain_stats" in params:
                _warn(f"{key}.retain_stats", "AugLab's builder does not forward it (always false); ignored")
            mix = float(params.get("mix_prob", 0.5))
            entry: Entry = {"name": "UnsharpMask", "retain_stats": False, "mix_prob": mix}
            if "sigma" in params:
                entry["sigma"] = [0.0, _number(key, params, "sigma", 1.0)]
            if "unsharp_amount" in params:
                entry["amount"] = [0.0, _number(key, params, "unsharp_amount", 1.5)]
            return [{**entry, **region}]
        if kind == "RandConv":
            entry = {"name": "RandomConv", **_mixing(params, True, 0.5)}
            if "kernel_sizes" in params:
                entry["kernel_sizes"] = list(params["kernel_sizes"])
            return [{**entry, **region}]
        # GaussianBlur
        for dead in ("retain_stats", "mix_prob"):
            if dead in params:
                _warn(f"{key}.{dead}", "AugLab's builder does not forward it to the blur; ignored")
        entry = {"name": "GaussianBlur"}
        if "sigma" in params:
            entry["sigma"] = [0.0, _number(key, params, "sigma", 1.0)]
        return [{**entry, **region}]

    return build


def _clamp(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "PercentileClamp", "retain_stats": bool(params.get("retain_stats", True))}
    if "max_clamp_amount" in params:
        entry["max_amount"] = _number(key, params, "max_clamp_amount", 0.2)
    return [{**entry, **_region(key, params)}]


def _noise(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "GaussianNoise", "sigma": [0.0, _number(key, params, "std", 1.0)]}
    if "mean" in params:
        entry["mean"] = _number(key, params, "mean", 0.0)
    return [{**entry, **_region(key, params)}]


def _affine_intensity(name: str, range_key: str, ours: str) -> Callable[[str, dict[str, Any]], list[Entry]]:
    def build(key: str, params: dict[str, Any]) -> list[Entry]:
        if params.get("retain_stats", False):
            _warn(f"{key}.retain_stats", f"true would undo {name} (an affine map) entirely; ignored")
        entry: Entry = {"name": name, "sampler": "uniform"}
        if range_key in params:
            entry[ours] = _pair(key, params, range_key, (0.75, 1.25))
        if name == "Contrast":
            entry["preserve_range"] = False  # AugLab does not clip (nnU-Net does)
        return [{**entry, **_region(key, params)}]

    return build


def _gamma(name: str) -> Callable[[str, dict[str, Any]], list[Entry]]:
    def build(key: str, params: dict[str, Any]) -> list[Entry]:
        entry: Entry = {"name": name, "sampler": "uniform", "retain_stats": bool(params.get("retain_stats", True))}
        if "gamma_range" in params:
            entry["gamma"] = _pair(key, params, "gamma_range", (0.7, 1.5))
        return [{**entry, **_region(key, params)}]

    return build


def _functions(key: str, params: dict[str, Any]) -> list[Entry]:
    retain = bool(params.get("retain_stats", True))
    region = _region(key, params)
    return [
        {"name": "IntensityFunction", "functions": [fn], "retain_stats": retain, **region}
        for fn in ("log1p", "sqrt", "sin", "exp", "sigmoid")
    ]


def _low_res(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "LowResolution", "per_axis": True, "down": "linear"}
    if "scale" in params:
        entry["scale"] = _pair(key, params, "scale", (0.5, 1.0))
    return [entry]


def _thick_slice(key: str, params: dict[str, Any]) -> list[Entry]:
    if "one_dim" in params:
        _warn(f"{key}.one_dim", "AugLab's builder hard-codes one degraded axis; ignored")
    entry: Entry = {"name": "ThickSlice"}
    if "scale" in params:
        entry["scale"] = _pair(key, params, "scale", (0.1, 1.0))
    return [entry]


def _crop(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "FovCrop"}
    if "crop" in params:
        entry["crop"] = _pair(key, params, "crop", (0.5, 1.0))
    if "pos" in params:
        entry["pos"] = _pair(key, params, "pos", (0.0, 1.0))
    return [entry]


def _bias(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {"name": "BiasField", **_copy(params, "coefficients", "order", "invert")}
    entry["retain_stats"] = bool(params.get("retain_stats", True))
    return [{**entry, **_region(key, params)}]


def _zscore(key: str, params: dict[str, Any]) -> list[Entry]:
    return [{"name": "ZScore", **_region(key, params)}]


def _nnunet_spatial(key: str, params: dict[str, Any]) -> list[Entry]:
    entry: Entry = {
        "name": "Spatial",
        "p_rotation": _number(key, params, "p_rotation", 0.2),
        "rotation_deg": [-30.0, 30.0],  # nnU-Net's rotation_for_DA in 3-D; not part of AugLab's JSON
        "p_scale": _number(key, params, "p_scaling", 0.2),
        "scale": _pair(key, params, "scaling", (0.7, 1.4)),
        "p_elastic": _number(key, params, "p_elastic_deform", 0.0),
    }
    if "patch_size" in params:
        entry["patch_size"] = list(params["patch_size"])
    if "patch_center_dist_from_border" in params and not params.get("random_crop", False):
        _warn(f"{key}.patch_center_dist_from_border", "is only used with random_crop = true; ignored")
    if params.get("mode_seg", "nearest") != "nearest":
        _warn(f"{key}.mode_seg", "spineaug resamples labels with nearest neighbour")
    return [entry]


# AugLab's GPU builder order (CATALOG.md section 2), preceded by the CPU-side nnU-Net spatial transform (section 4).
_MODULES: dict[str, _Module] = {
    "nnUNetSpatialTransform": _Module(
        {
            "patch_size",
            "random_crop",
            "p_rotation",
            "p_scaling",
            "scaling",
            "p_elastic_deform",
            "mode_seg",
            "patch_center_dist_from_border",
            "p_synchronize_scaling_across_axes",
        },
        _nnunet_spatial,
    ),
    "FlipTransform": _Module({"flip_axis"}, _flip),
    "AffineTransform": _Module({"degrees", "translate", "scale", "shear", "resample"}, _affine),
    "InverseTransform": _Module({"retain_stats", "mix_prob"}, _inversion, region=True),
    "HistogramEqualizationTransform": _Module({"retain_stats", "mix_prob"}, _histogram, region=True),
    "RedistributeSegTransform": _Module({"in_seg", "retain_stats"}, _redistribute),
    "ScharrTransform": _Module({"kernel_type", "absolute", "retain_stats", "mix_prob"}, _conv("Scharr"), region=True),
    "UnsharpMaskTransform": _Module(
        {"kernel_type", "sigma", "unsharp_amount", "retain_stats", "mix_prob"}, _conv("UnsharpMask"), region=True
    ),
    "RandomConvTransform": _Module(
        {"kernel_type", "kernel_sizes", "retain_stats", "mix_prob"}, _conv("RandConv"), region=True
    ),
    "ClampTransform": _Module({"max_clamp_amount", "retain_stats"}, _clamp, region=True),
    "GaussianNoiseTransform": _Module({"mean", "std"}, _noise, region=True),
    "GaussianBlurTransform": _Module(
        {"kernel_type", "sigma", "retain_stats", "mix_prob"}, _conv("GaussianBlur"), region=True
    ),
    "BrightnessTransform": _Module(
        {"brightness_range", "retain_stats"},
        _affine_intensity("Brightness", "brightness_range", "multiplier"),
        region=True,
    ),
    "GammaTransform": _Module({"gamma_range", "retain_stats"}, _gamma("Gamma"), region=True),
    "InvGammaTransform": _Module({"gamma_range", "retain_stats"}, _gamma("InverseGamma"), region=True),
    "ContrastTransform": _Module(
        {"contrast_range", "retain_stats"}, _affine_intensity("Contrast", "contrast_range", "contrast"), region=True
    ),
    "FunctionTransform": _Module({"retain_stats"}, _functions, region=True),
    "SimulateLowResTransform": _Module({"scale"}, _low_res),
    "AcqTransform": _Module({"scale", "one_dim"}, _thick_slice),
    "CropTransform": _Module({"crop", "pos"}, _crop),
    "BiasFieldTransform": _Module({"coefficients", "order", "invert", "retain_stats"}, _bias, region=True),
    "ZscoreNormalizationTransform": _Module(set(), _zscore, region=True),
}
_IGNORED_BLOCKS = {"CPU": "AugLab's CPU (data-loader) pipeline is not translated; only the GPU block is used"}


def _load(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"AugLab config not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"AugLab config must be a JSON object of modules, got {type(data).__name__}")
    return data


def _modules(data: dict[str, Any]) -> dict[str, Any]:
    """The GPU block (top level, or under ``"GPU"``), with a top-level ``nnUNetSpatialTransform`` merged in."""
    if "GPU" not in data:
        return data
    block = data["GPU"]
    if not isinstance(block, dict):
        raise ConfigError(f"AugLab config: GPU: expected an object of modules, got {type(block).__name__}")
    for key in data:
        if key == "GPU":
            continue
        if key in _IGNORED_BLOCKS:
            _warn(key, _IGNORED_BLOCKS[key])
        elif key == "nnUNetSpatialTransform":
            block = {**block, key: data[key]}
        else:
            raise ConfigError(
                f"AugLab config: unknown top-level key {key!r} next to 'GPU'; allowed: "
                f"{sorted(['GPU', 'nnUNetSpatialTransform', *_IGNORED_BLOCKS])}"
            )
    return block


def auglab_to_config(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Translate an AugLab JSON config into a spineaug config dict (not yet validated).

    Args:
        source: Path to an AugLab JSON file, or its parsed dict. Either the modules at the top level or under a
            ``"GPU"`` key (a ``"CPU"`` block is ignored with a warning).

    Returns:
        ``{"description": ..., "seed": None, "transforms": [...]}`` in AugLab's application order.

    Raises:
        ConfigError: An unknown module or parameter key, or a value spineaug cannot express.
    """
    modules = _modules(_load(source))
    for key in modules:
        if key not in _MODULES:
            if key in _IGNORED_BLOCKS:
                _warn(key, _IGNORED_BLOCKS[key])
                continue
            raise ConfigError(f"AugLab config: unknown module key {key!r}; known: {sorted(_MODULES)}")
    entries: list[Entry] = []
    for key, module in _MODULES.items():
        if key not in modules:
            continue
        params = modules[key]
        if not isinstance(params, dict):
            raise ConfigError(f"AugLab config: {key}: expected an object of parameters, got {params!r}")
        unknown = sorted(set(params) - module.keys)
        if unknown:
            raise ConfigError(f"AugLab config: {key}: unknown parameter(s) {unknown}; allowed: {sorted(module.keys)}")
        if "same_on_batch" in params:
            _warn(
                f"{key}.same_on_batch",
                "overridden to true by AugLab's container; spineaug always draws per sample",
            )
        if "keepdim" in params:
            _warn(f"{key}.keepdim", "has no effect (spineaug keeps (B, C, D, H, W))")
        p = _number(key, params, "p", 1.0)
        if key == "nnUNetSpatialTransform":
            entries.extend(module.build(key, params))
            continue
        if p == 0:
            _warn(f"{key}.p", "is 0: the module never fires; dropped")
            continue
        entries.extend({**entry, "p": p} for entry in module.build(key, params))
    return {"description": "Translated from an AugLab config by spineaug.compat.", "seed": None, "transforms": entries}


def from_auglab(source: str | Path | dict[str, Any], **kwargs: Any) -> Pipeline:
    """Build a spineaug :class:`~spineaug.Pipeline` from an AugLab JSON config.

    Args:
        source: Path to an AugLab JSON file, or its parsed dict (see :func:`auglab_to_config`).
        **kwargs: Passed to :meth:`Pipeline.from_config` (e.g. ``seed=``).

    Returns:
        The pipeline, with spineaug's per-sample semantics.

    Raises:
        ConfigError: An unknown key, or a value that is invalid or not expressible in spineaug.
    """
    return Pipeline.from_config(auglab_to_config(source), **kwargs)
