"""The translators of :mod:`spineaug.integrations.auglab`: one function per AugLab GPU module family.

Each translator reads a module's JSON block the way AugLab's builder (``AugTransformsGPU._build_transforms`` at commit
1ee096a) reads it, with the same key names and defaults, and returns the spineaug config entries without ``p`` (the
caller adds AugLab's ``probability``). A key that AugLab knows but does not read for that block gets a
:class:`NoEffectWarning`; an unknown key is a :class:`~spineaug.ConfigError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from spineaug.validation import ConfigError

Entry = dict[str, Any]


class AugLabWarning(UserWarning):
    """Something in an AugLab config that the translation does not carry over one to one."""


class NoEffectWarning(AugLabWarning):
    """A key that changes nothing in AugLab (not read, overridden, or in a module that never fires); ignored."""


class NotTranslatedWarning(AugLabWarning):
    """Something that acts in AugLab but that the translation leaves out or only approximates."""


# Every parameter name that AugLab's GPU modules, its GPU builder or its GPU trainer know. A block key in this set
# that the block's builder does not read has no effect (a NoEffectWarning); any other unknown key is a ConfigError.
_KNOWN_KEYS = frozenset(
    {
        "probability", "p", "same_on_batch", "keepdim", "apply_to_channel",
        "in_seg", "out_seg", "mix_in_out", "retain_stats", "mix_prob",
        "kernel_type", "absolute", "sigma", "unsharp_amount", "kernel_sizes",
        "flip_axis", "degrees", "translate", "scale", "shear", "resample",
        "max_clamp_amount", "mean", "std", "brightness_range", "gamma_range", "contrast_range",
        "crop", "pos", "one_dim", "coefficients", "order", "invert",
        "patch_center_dist_from_border", "random_crop", "p_elastic_deform", "p_rotation", "p_scaling", "scaling",
        "p_synchronize_scaling_across_axes", "bg_style_seg_sampling", "mode_seg",
    }
)  # fmt: skip
# Why a known key is not read, where there is more to say than "the builder does not pass it to this module".
UNREAD_REASONS = {
    "one_dim": "AugLab's builder hard-codes one_dim = true (one degraded axis)",
    "order": "AugLab's builder does not pass it; the bias field has order 3",
    "invert": "AugLab's builder does not pass it; the bias field is never inverted",
    "p": "AugLab's builder reads 'probability', not 'p' (so the module keeps AugLab's default probability 0)",
}
# Keys that only AugLab's CPU builder (``AugTransforms``) reads: a file with them at the top level is a CPU config.


def warn(cls: type[AugLabWarning], where: str, message: str) -> None:
    warnings.warn(f"AugLab config: {where}: {message}", cls, stacklevel=3)


class Block:
    """One module's parameters, read the way AugLab's builder reads them (``params.get(name, default)``)."""

    def __init__(self, key: str, params: Any) -> None:
        if not isinstance(params, dict):
            raise ConfigError(f"AugLab config: {key}: expected an object of parameters, got {params!r}")
        self.key, self.params, self.read = key, params, set()

    def _error(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"AugLab config: {self.key}.{name}: {message}")

    def raw(self, name: str, default: Any) -> Any:
        self.read.add(name)
        return self.params.get(name, default)

    def number(self, name: str, default: float) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(name, f"expected a number, got {value!r}")
        return float(value)

    def unit(self, name: str, default: float) -> float:
        value = self.number(name, default)
        if not 0.0 <= value <= 1.0:
            raise self._error(name, f"expected a probability in [0, 1], got {value!r}")
        return value

    def pair(self, name: str, default: tuple[float, float]) -> list[float]:
        value = self.raw(name, list(default))
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self._error(name, f"expected a [low, high] pair, got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise self._error(name, f"expected two numbers, got {value!r}")
        return [float(v) for v in value]

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if isinstance(value, str):
            raise self._error(
                name,
                f"expected true or false, got the string {value!r} (AugLab would read any non-empty string, "
                "even 'false', as true)",
            )
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise self._error(name, f"expected true or false, got {value!r}")

    def no_effect(self, name: str, message: str) -> None:
        """Warn that ``name`` (if present) has no effect in AugLab."""
        self.read.add(name)
        if name in self.params:
            warn(NoEffectWarning, f"{self.key}.{name}", message)

    def differs(self, name: str, message: str) -> None:
        warn(NotTranslatedWarning, f"{self.key}.{name}", message)

    def check_keys(self, *, report: bool = True) -> None:
        """Raise on unknown keys; warn about known keys that this module's builder does not read."""
        unknown = sorted(k for k in self.params if k not in _KNOWN_KEYS and k not in self.read)
        if unknown:
            raise ConfigError(
                f"AugLab config: {self.key}: unknown parameter(s) {unknown}; AugLab reads: {sorted(self.read)}"
            )
        if report:
            for name in self.params:
                if name not in self.read:
                    reason = UNREAD_REASONS.get(name, f"AugLab's builder does not pass it to {self.key}")
                    warn(NoEffectWarning, f"{self.key}.{name}", f"{reason}; ignored")


def _region(b: Block) -> Entry:
    """AugLab's ``in_seg``/``out_seg``/``mix_in_out`` as spineaug's ``region`` (absent when both are 0)."""
    p_in, p_out, mix = b.number("in_seg", 0.0), b.number("out_seg", 0.0), b.flag("mix_in_out", False)
    if p_in == 0 and p_out == 0:
        if mix:
            b.no_effect(
                "mix_in_out", "has no effect with in_seg = out_seg = 0 (the transform acts everywhere)"
            )
        return {}
    return {"region": {"p_inside": p_in, "p_outside": p_out, "label_subset_p": 0.5 if mix else 1.0}}


# --------------------------------------------------------------------------------- translators, one per family
# Each reads exactly the keys (and defaults) that AugLab's builder reads for its block; the caller adds ``p``.


def _flip(b: Block) -> list[Entry]:
    axes = b.raw("flip_axis", [0])
    axes = [axes] if isinstance(axes, int) and not isinstance(axes, bool) else axes
    if not isinstance(axes, list) or not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise b._error("flip_axis", f"expected an axis or a non-empty list of axes, got {axes!r}")
    if len(axes) > 1:
        b.differs(
            "flip_axis", "AugLab flips all listed axes together; spineaug flips each listed axis on its own"
        )
    return [{"name": "Flip", "axes": axes}]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(b: Block, name: str, value: Any, sizes: tuple[int, ...]) -> list[float]:
    """``value`` as a list of numbers whose length is one of ``sizes``, or an error naming the key."""
    if not isinstance(value, list) or len(value) not in sizes or not all(_is_number(v) for v in value):
        raise b._error(name, f"expected a list of {' or '.join(map(str, sizes))} numbers, got {value!r}")
    return [float(v) for v in value]


def _rotation(b: Block) -> list:
    """Kornia's ``degrees`` (AugLab passes it on): ``d``, ``[lo, hi]``, ``[a, b, c]`` or ``[[lo, hi] x 3]``.

    Per-axis values are about kornia's x, y, z axes (W, H, D), so they are reversed into spineaug's (D, H, W) order.
    """
    value = b.raw("degrees", 10)
    if _is_number(value):
        return [-abs(float(value)), abs(float(value))]
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, list) for v in value):
        ranges = [_numbers(b, "degrees", v, (2,)) for v in value]
        if any(lo != -hi for lo, hi in ranges):
            b.differs("degrees", "asymmetric per-axis ranges: the rotation directions follow spineaug's convention")
        return ranges[::-1]
    bounds = _numbers(b, "degrees", value, (2, 3))
    if len(bounds) == 2:
        return bounds
    return [[-abs(v), abs(v)] for v in bounds[::-1]]


def _shear(b: Block) -> list[float]:
    """Kornia's ``shears`` as spineaug's one shear range for all six terms; per-term ranges must agree."""
    value = b.raw("shear", [-10, 10, -10, 10, -10, 10])
    if _is_number(value):
        return [-abs(float(value)), abs(float(value))]
    if isinstance(value, list) and len(value) == 6 and all(isinstance(v, list) for v in value):
        ranges = [_numbers(b, "shear", v, (2,)) for v in value]
    else:
        bounds = _numbers(b, "shear", value, (2, 6))
        if len(bounds) == 2:
            return bounds
        ranges = [[-abs(v), abs(v)] for v in bounds]
    if any(r != ranges[0] for r in ranges):
        raise b._error(
            "shear",
            f"per-term shear ranges {ranges} differ; spineaug's Affine takes one shear range for all six terms",
        )
    return ranges[0]


def _affine(b: Block) -> list[Entry]:
    translate = b.raw("translate", [0.1, 0.1, 0.1])
    entry: Entry = {
        "name": "Affine",
        "degrees": _rotation(b),
        # kornia's (dx, dy, dz) are (W, H, D) fractions; spineaug's are (D, H, W)
        "translate": _numbers(b, "translate", translate, (3,))[::-1],
        "scale": b.pair("scale", (0.9, 1.1)),
        "shear_deg": _shear(b),
    }
    resample = b.raw("resample", "bilinear")
    if not isinstance(resample, str):
        raise b._error("resample", f"expected a mode name such as 'bilinear', got {resample!r}")
    resample = resample.lower()
    if resample not in ("bilinear", "linear", "trilinear"):
        b.differs("resample", f"{resample!r} is not supported; spineaug resamples images trilinearly")
    return [entry]


def _inversion(b: Block) -> list[Entry]:
    mixing = {"retain_stats": b.flag("retain_stats", False), "mix_prob": b.unit("mix_prob", 0.0)}
    return [{"name": "Inversion", **mixing, **_region(b)}]


def _histogram(b: Block) -> list[Entry]:
    mixing = {"retain_stats": b.flag("retain_stats", False), "mix_prob": b.unit("mix_prob", 0.0)}
    return [{"name": "HistogramEqualization", "bins": 256, "interpolate": False, **mixing, **_region(b)}]


def _redistribute(b: Block) -> list[Entry]:
    # AugLab's GPU code remaps the union of all labels as one region.
    return [
        {
            "name": "LabelIntensityRemap",
            "p_inside": b.unit("in_seg", 0.2),
            "regions": "union",
            "retain_stats": b.flag("retain_stats", False),
        }
    ]


# The four convolution blocks build the same AugLab module (RandomConvTransformGPU); each block passes it different
# keys, the module's own defaults fill the rest, and ``kernel_type`` picks the kernel.
_CONV_DEFAULTS: dict[str, Any] = {
    "retain_stats": False,
    "absolute": False,
    "sigma": 1.0,
    "unsharp_amount": 1.0,
    "kernel_sizes": [1, 3, 5, 7],
    "mix_prob": 0.0,
}


def _laplace(b: Block, conv: dict[str, Any]) -> Entry:
    if conv["mix_prob"] > 0 or not conv["retain_stats"]:
        b.differs(
            "kernel_type",
            "spineaug's Laplacian is normalised by 1/26 (AugLab's kernel has gain 26): outputs agree only with "
            "retain_stats = true and mix_prob = 0",
        )
    return {"name": "Laplacian", "retain_stats": conv["retain_stats"], "mix_prob": conv["mix_prob"]}


def _scharr(b: Block, conv: dict[str, Any]) -> Entry:
    if not conv["absolute"]:
        raise b._error(
            "absolute",
            "false (signed sum of responses) is not supported; spineaug's ScharrEdge returns the edge magnitude",
        )
    # AugLab's integer kernels, unnormalised: with mixing the output is still almost a pure edge map.
    return {
        "name": "ScharrEdge",
        "magnitude": "l1",
        "normalize": False,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _gaussian_blur(b: Block, conv: dict[str, Any]) -> Entry:
    return {
        "name": "GaussianBlur",
        "sigma": [0.0, conv["sigma"]],
        "per_axis": True,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _unsharp(b: Block, conv: dict[str, Any]) -> Entry:
    return {
        "name": "UnsharpMask",
        "sigma": [0.0, conv["sigma"]],
        "amount": [0.0, conv["unsharp_amount"]],
        "per_axis": True,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _rand_conv(b: Block, conv: dict[str, Any]) -> Entry:
    sizes = conv["kernel_sizes"]
    if not isinstance(sizes, list) or not sizes or not all(_is_number(k) and isinstance(k, int) for k in sizes):
        raise b._error("kernel_sizes", f"expected a non-empty list of odd kernel sizes, got {sizes!r}")
    return {
        "name": "RandomConv",
        "kernel_sizes": sizes,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


_KERNELS: dict[str, Callable[[Block, dict[str, Any]], Entry]] = {
    "Laplace": _laplace,
    "Scharr": _scharr,
    "GaussianBlur": _gaussian_blur,
    "UnsharpMask": _unsharp,
    "RandConv": _rand_conv,
}


def _conv(b: Block, kernel_default: str, **passed: Any) -> list[Entry]:
    kernel = b.raw("kernel_type", kernel_default)
    if kernel not in _KERNELS:
        raise b._error("kernel_type", f"{kernel!r} is not one of AugLab's kernels {sorted(_KERNELS)}")
    return [{**_KERNELS[kernel](b, {**_CONV_DEFAULTS, **passed}), **_region(b)}]


def _scharr_block(b: Block) -> list[Entry]:
    return _conv(
        b,
        "Scharr",
        retain_stats=b.flag("retain_stats", True),
        absolute=b.flag("absolute", True),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def _unsharp_block(b: Block) -> list[Entry]:
    return _conv(
        b,
        "UnsharpMask",
        sigma=b.number("sigma", 1.0),
        unsharp_amount=b.number("unsharp_amount", 1.5),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def _rand_conv_block(b: Block) -> list[Entry]:
    return _conv(
        b,
        "RandConv",
        retain_stats=b.flag("retain_stats", False),
        kernel_sizes=b.raw("kernel_sizes", [1, 3, 5, 7]),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def _blur_block(b: Block) -> list[Entry]:
    return _conv(b, "GaussianBlur", sigma=b.number("sigma", 1.0))


def _clamp(b: Block) -> list[Entry]:
    entry = {"name": "PercentileClamp", "max_amount": b.number("max_clamp_amount", 0.0)}
    return [{**entry, "retain_stats": b.flag("retain_stats", False), **_region(b)}]


def _noise(b: Block) -> list[Entry]:
    entry = {"name": "GaussianNoise", "sigma": [0.0, b.number("std", 1.0)], "mean": b.number("mean", 0.0)}
    return [{**entry, **_region(b)}]


def _brightness(b: Block) -> list[Entry]:
    entry = {"name": "Brightness", "multiplier": b.pair("brightness_range", (0.5, 1.5)), "sampler": "uniform"}
    return [{**entry, **_region(b)}]


def _gamma_family(name: str) -> Callable[[Block], list[Entry]]:
    def translate(b: Block) -> list[Entry]:
        entry = {"name": name, "gamma": b.pair("gamma_range", (0.7, 1.5)), "sampler": "uniform"}
        return [{**entry, "retain_stats": b.flag("retain_stats", False), **_region(b)}]

    return translate


def _contrast(b: Block) -> list[Entry]:
    contrast = b.pair("contrast_range", (0.75, 1.25))
    region = _region(b)
    if b.flag("retain_stats", False):
        b.no_effect(
            "retain_stats",
            "true restores each sample's mean and std, which undoes the contrast change: the module has no effect "
            "in AugLab; left out",
        )
        return []
    # AugLab does not clip to the input range (nnU-Net does).
    return [
        {"name": "Contrast", "contrast": contrast, "sampler": "uniform", "preserve_range": False, **region}
    ]


def _functions(b: Block) -> list[Entry]:
    retain, region = b.flag("retain_stats", False), _region(b)
    return [
        {"name": "IntensityFunction", "functions": [fn], "retain_stats": retain, **region}
        for fn in ("log1p", "sqrt", "sin", "exp", "sigmoid")  # AugLab's five modules, in its order
    ]


def _low_res(b: Block) -> list[Entry]:
    scale = b.pair("scale", (0.3, 1.0))
    return [{"name": "LowResolution", "scale": scale, "per_axis": True, "down": "linear", "up": "linear"}]


def _acquisition(b: Block) -> list[Entry]:
    scale = b.pair("scale", (0.3, 1.0))
    return [{"name": "ThickSlice", "scale": scale, "axes": [0, 1, 2], "profile": "linear", "up": "linear"}]


def _crop(b: Block) -> list[Entry]:
    entry = {"name": "FovCrop", "crop": b.pair("crop", (1.0, 1.0)), "pos": b.pair("pos", (0.0, 1.0))}
    return [{**entry, "axes": [0, 1, 2], "fill": "value", "fill_value": 0.0, "label_fill": 0}]


def _bias_field(b: Block) -> list[Entry]:
    value = b.raw("coefficients", 0.5)
    bound = value if _is_number(value) else None
    if isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) and value[0] == -value[1]:
        bound = value[1]
    if bound is None:
        raise b._error("coefficients", f"expected c or a symmetric pair [-c, c], got {value!r}")
    entry = {"name": "BiasField", "coefficients": abs(float(bound)), "order": 3, "signed": True}
    return [{**entry, "retain_stats": b.flag("retain_stats", False), **_region(b)}]


def _zscore(b: Block) -> list[Entry]:
    return [{"name": "ZScore"}]  # AugLab's builder passes only the probability


def nnunet_spatial(b: Block) -> list[Entry]:
    """The trainer's nnU-Net ``SpatialTransform`` (in the data loader, before the GPU modules)."""
    sync = b.unit("p_synchronize_scaling_across_axes", 1.0)
    if sync not in (0.0, 1.0):
        raise b._error(
            "p_synchronize_scaling_across_axes", f"only 0 or 1 can be expressed in spineaug, got {sync}"
        )
    entry: Entry = {
        "name": "Spatial",
        "p_rotation": b.unit("p_rotation", 0.0),
        "rotation_deg": [-30.0, 30.0],  # nnU-Net's rotation_for_DA in 3-D; not part of AugLab's JSON
        "p_scale": b.unit("p_scaling", 0.0),
        "scale": b.pair("scaling", (0.7, 1.4)),
        "per_axis_scale": sync == 0.0,
        "p_elastic": b.unit("p_elastic_deform", 0.0),
        "pad_mode": "constant",
        "pad_value": 0.0,
        "label_pad": 0,
    }
    if "patch_size" in b.params:  # a spineaug extension: AugLab takes the patch size from nnU-Net's plans
        size = b.raw("patch_size", None)
        if not isinstance(size, list) or len(size) != 3 or not all(isinstance(n, int) for n in size):
            raise b._error("patch_size", f"expected three integers [D, H, W], got {size!r}")
        entry["patch_size"] = size
    if b.flag("random_crop", False):
        b.raw("patch_center_dist_from_border", 0)
        b.differs("random_crop", "nnU-Net's random crop of the loaded patch is not modelled")
    else:
        b.no_effect("patch_center_dist_from_border", "is only used with random_crop = true; ignored")
    b.no_effect(
        "bg_style_seg_sampling",
        "AugLab's GPU trainer hard-codes false (and with its mode_seg = 'nearest' nnU-Net never uses it); ignored",
    )
    b.no_effect(
        "mode_seg", "AugLab's GPU trainer hard-codes 'nearest'; spineaug resamples labels nearest too"
    )
    return [entry]


# AugTransformsGPU._build_transforms, in its order of application.
GPU_TRANSLATORS: dict[str, Callable[[Block], list[Entry]]] = {
    "FlipTransform": _flip,
    "AffineTransform": _affine,
    "InverseTransform": _inversion,
    "HistogramEqualizationTransform": _histogram,
    "RedistributeSegTransform": _redistribute,
    "ScharrTransform": _scharr_block,
    "UnsharpMaskTransform": _unsharp_block,
    "RandomConvTransform": _rand_conv_block,
    "ClampTransform": _clamp,
    "GaussianNoiseTransform": _noise,
    "GaussianBlurTransform": _blur_block,
    "BrightnessTransform": _brightness,
    "GammaTransform": _gamma_family("Gamma"),
    "InvGammaTransform": _gamma_family("InverseGamma"),
    "ContrastTransform": _contrast,
    "FunctionTransform": _functions,
    "SimulateLowResTransform": _low_res,
    "AcqTransform": _acquisition,
    "CropTransform": _crop,
    "BiasFieldTransform": _bias_field,
    "ZscoreNormalizationTransform": _zscore,
}
