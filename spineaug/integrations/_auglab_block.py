"""How :mod:`spineaug.integrations.auglab` reads one AugLab module block, and the warnings it gives.

:class:`Block` holds one module's JSON parameters and reads them the way AugLab's builder
(``AugTransformsGPU._build_transforms`` at commit 1ee096a) does, ``params.get(name, default)``, while checking each
value's type and remembering which keys were read. A key that AugLab knows but does not read for that block gets a
:class:`NoEffectWarning`; an unknown key is a :class:`~spineaug.ConfigError`. Its readers cover the values that several
translator families share: numbers, pairs, flags, lists of numbers and the label ``region``.
"""

from __future__ import annotations

import warnings
from typing import Any

from spineaug.validation import ConfigError
from spineaug.validation import NoEffectWarning as _NoEffectWarning

Entry = dict[str, Any]


class AugLabWarning(UserWarning):
    """Something in an AugLab config that the translation does not carry over one to one."""


class NoEffectWarning(AugLabWarning, _NoEffectWarning):
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


def warn(cls: type[AugLabWarning], where: str, message: str) -> None:
    """Warn about ``where`` (``module.key``), attributed to the code that called the caller."""
    warnings.warn(f"AugLab config: {where}: {message}", cls, stacklevel=3)


class Block:
    """One module's parameters, read the way AugLab's builder reads them (``params.get(name, default)``)."""

    def __init__(self, key: str, params: Any) -> None:
        if not isinstance(params, dict):
            raise ConfigError(f"AugLab config: {key}: expected an object of parameters, got {params!r}")
        self.key, self.params, self.read = key, params, set()

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"AugLab config: {self.key}.{name}: {message}")

    def raw(self, name: str, default: Any) -> Any:
        self.read.add(name)
        return self.params.get(name, default)

    def number(self, name: str, default: float) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"expected a number, got {value!r}")
        return float(value)

    def unit(self, name: str, default: float) -> float:
        value = self.number(name, default)
        if not 0.0 <= value <= 1.0:
            raise self.error(name, f"expected a probability in [0, 1], got {value!r}")
        return value

    def pair(self, name: str, default: tuple[float, float]) -> list[float]:
        value = self.raw(name, list(default))
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.error(name, f"expected a [low, high] pair, got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise self.error(name, f"expected two numbers, got {value!r}")
        return [float(v) for v in value]

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if isinstance(value, str):
            raise self.error(
                name,
                f"expected true or false, got the string {value!r} (AugLab would read any non-empty string, "
                "even 'false', as true)",
            )
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise self.error(name, f"expected true or false, got {value!r}")

    def numbers(self, name: str, value: Any, sizes: tuple[int, ...]) -> list[float]:
        """``value`` (read from key ``name``) as a list of numbers whose length is one of ``sizes``."""
        if not isinstance(value, list) or len(value) not in sizes or not all(is_number(v) for v in value):
            lengths = " or ".join(map(str, sizes))
            raise self.error(name, f"expected a list of {lengths} numbers, got {value!r}")
        return [float(v) for v in value]

    def region(self) -> Entry:
        """AugLab's ``in_seg``/``out_seg``/``mix_in_out`` as spineaug's ``region`` (absent when both are 0)."""
        p_in, p_out = self.number("in_seg", 0.0), self.number("out_seg", 0.0)
        mix = self.flag("mix_in_out", False)
        if p_in == 0 and p_out == 0:
            if mix:
                self.no_effect(
                    "mix_in_out", "has no effect with in_seg = out_seg = 0 (the transform acts everywhere)"
                )
            return {}
        return {"region": {"p_inside": p_in, "p_outside": p_out, "label_subset_p": 0.5 if mix else 1.0}}

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


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (JSON's ``true``/``false`` are not numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
