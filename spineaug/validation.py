"""One home for validation: :class:`ConfigError`, the validated value types and validated constructors.

Transform constructors are annotated with the types of this module and wrapped by :func:`validated_init`, so the
same checks and messages serve Python callers and JSON/YAML configs: a bad value raises a :class:`ConfigError` (a
``ValueError``) that names the argument. This module sits below the transforms and the config loader and imports
neither.
"""

from __future__ import annotations

import functools
import inspect
import operator
from typing import Annotated, Any, ClassVar

import torch
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    validate_call,
)


class ConfigError(ValueError):
    """A transform or pipeline configuration is invalid; the message names the offending key."""


class NoEffectWarning(UserWarning):
    """A config key or value that is accepted but can change nothing (named in the message)."""


def ordered(value: tuple[float, float]) -> tuple[float, float]:
    """Check that a ``(low, high)`` pair has ``low <= high``."""
    low, high = value
    if low > high:
        raise ValueError(f"range low {low} is above high {high}")
    return value


def _unique(axes: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must not repeat, got {list(axes)}")
    return axes


def _non_empty(axes: tuple[int, ...]) -> tuple[int, ...]:
    if not axes:
        raise ValueError("axes must list at least one axis")
    return axes


def _pair(bounds: dict[str, float]):
    """An ordered ``(low, high)`` pair whose ends both satisfy the pydantic ``Field`` bounds ``bounds``."""
    end = Annotated[float, Field(allow_inf_nan=False, **bounds)]
    return Annotated[tuple[end, end], AfterValidator(ordered)]


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A probability in [0, 1]."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A finite float (every float a transform takes is finite: constructors reject NaN/Inf, see :func:`validated_init`)."""
Range = Annotated[tuple[FiniteFloat, FiniteFloat], AfterValidator(ordered)]
"""A ``(low, high)`` interval with ``low <= high``."""
NonNegativeRange = _pair({"ge": 0.0})
"""A ``(low, high)`` interval of non-negative values."""
PositiveRange = _pair({"gt": 0.0})
"""A ``(low, high)`` interval of positive values."""
UnitRange = _pair({"ge": 0.0, "le": 1.0})
"""A ``(low, high)`` interval inside [0, 1]."""
FractionRange = _pair({"gt": 0.0, "le": 1.0})
"""A ``(low, high)`` interval inside (0, 1]: fractions of a size or a resolution (1 = all of it)."""
ShearRange = _pair({"gt": -90.0, "lt": 90.0})
"""A ``(low, high)`` interval of shear angles in degrees, strictly inside (-90, 90): at ±90° the map is singular."""
PositiveInt = Annotated[int, Field(ge=1)]
"""An integer of at least 1."""
Axes = Annotated[tuple[Annotated[int, Field(ge=0, le=2)], ...], AfterValidator(_unique)]
"""Spatial axes: 0 (D), 1 (H), 2 (W), each at most once."""
NonEmptyAxes = Annotated[Axes, AfterValidator(_non_empty)]
"""Spatial axes, at least one."""


def _format_validation_error(owner: str, error: ValidationError) -> str:
    lines: list[str] = []
    for item in error.errors():
        # Keep the argument name and list positions; drop pydantic's names of union members and validators.
        parts = [str(p) for p in item["loc"] if isinstance(p, int) or str(p).isidentifier()]
        where = ".".join(parts) or "(arguments)"
        line = f"{owner}: {where}: {item['msg']} (got {item.get('input')!r})"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def validated_init(init):
    """Wrap a constructor so that its annotated arguments are validated; errors become :class:`ConfigError`.

    Every float, wherever it sits (a plain ``float``, a range, a list), must be finite: NaN and ±Inf are rejected
    with the key named, so they can never reach a transform (``allow_inf_nan=False`` for the whole call). Unknown
    keyword arguments are named with the allowed ones. After a successful call the bound arguments (defaults
    filled in, as converted by the validation) are stored as ``self._init_args``, from which a transform rebuilds its config entry.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording(self, *args, **kwargs):  # receives the values pydantic converted ("0.5" -> 0.5)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        result = init(self, *args, **kwargs)
        # set after the body: a subclass's constructor (the outermost) wins over its base's super().__init__ call
        self._init_args = {k: v for k, v in bound.arguments.items() if k != "self"}
        return result

    checked = validate_call(
        recording, config=ConfigDict(arbitrary_types_allowed=True, strict=False, allow_inf_nan=False)
    )

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        allowed = [k for k in signature.parameters if k != "self"]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown key(s) {unknown}; allowed: {allowed}")
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{type(self).__name__}: {exc}") from None
        try:
            checked(self, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(type(self).__name__, exc)) from None

    return wrapper


def check_label_value(value: int, dtype: torch.dtype, key: str, owner: str) -> None:
    """Raise when a label value set by config key ``key`` of ``owner`` does not fit the label dtype.

    Called on every call that has a label (host-only work on a Python int and a dtype, no synchronisation), so an
    out-of-range value fails on the first call instead of wrapping silently (300 on uint8 would read as 44).

    Raises:
        ConfigError: Naming the key, the value, the dtype and its range.
    """
    info = torch.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise ConfigError(
            f"{owner}: {key}={value} does not fit the label dtype {dtype} (range [{info.min}, {info.max}]); "
            f"choose a {key} in that range or pass the label as a wider integer dtype"
        )


SEED_RANGE = (-(2**63), 2**64 - 1)
"""The seeds ``torch.Generator.manual_seed`` accepts (inclusive)."""


def check_seed(seed: object, key: str = "seed") -> int | None:
    """Return ``seed`` when it is ``None`` or an integer that ``torch.Generator.manual_seed`` accepts.

    Raises:
        ConfigError: Naming ``key``, the value and the accepted range (a bool, a float or 2**70 are not seeds).
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not hasattr(type(seed), "__index__"):
        raise ConfigError(f"'{key}' must be an integer or null, got {seed!r}")
    seed = operator.index(seed)  # numpy integers too
    low, high = SEED_RANGE
    if not low <= seed <= high:
        raise ConfigError(f"'{key}' must be an integer in [-2**63, 2**64 - 1] (a torch.Generator seed), got {seed}")
    return seed


def _seed_key(info: ValidationInfo) -> str:
    return info.field_name or "seed"


def _nullable_seed(value: object, info: ValidationInfo) -> int | None:
    return check_seed(value, _seed_key(info))


def _required_seed(value: object, info: ValidationInfo) -> int:
    key = _seed_key(info)
    if value is None or isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise ConfigError(f"'{key}' must be an integer, got {value!r}")
    return check_seed(value, key)


# The check runs on the raw value (before pydantic's lax int conversion would turn True into 1 or 2.0 into 2), so a
# model field refuses exactly what check_seed refuses.
Seed = Annotated[int | None, BeforeValidator(_nullable_seed)]
"""A seed field of a pydantic model: ``None`` or an integer :func:`check_seed` accepts (a bool, a float, a string or
an integer outside ``torch.Generator``'s range is refused, naming the field)."""
RequiredSeed = Annotated[int, BeforeValidator(_required_seed)]
"""A seed field that must hold an integer (the rule of :data:`Seed` without ``None``)."""


def validation_message(owner: str, error: ValidationError) -> str:
    """One line per problem of a pydantic ``error``: ``owner: key.path: what is wrong (got value)``.

    The message of a validator that raised (``unknown pipeline 'x'``...) is kept as written, without pydantic's
    ``Value error,`` prefix; pydantic's own messages (``Input should be greater than or equal to 1``) get the value.
    """
    lines: list[str] = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "value_error":
            line = f"{owner}: {where}: {item['ctx']['error']}"
        else:
            line = f"{owner}: {where}: {item['msg']} (got {item.get('input')!r})"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


class ValidatedModel(BaseModel):
    """Base of the validated configs above the engine (study, benchmark, executor options).

    Frozen, unknown keys refused, and built from keywords only after every field is checked: a bad value raises
    :attr:`error_type` (:class:`ConfigError` unless a subclass names its own ``ValueError``) with one line per
    problem naming the key (:func:`validation_message`). The validated object is what the layers pass on.

    For a config built on its own, not for a model nested in another one: pydantic runs a custom ``__init__`` for
    nested models too, so a nested model's errors would lose their key path in the outer model's message (the
    study's section models are plain ``BaseModel`` with the same ``model_config``; :func:`load_study` words them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    error_type: ClassVar[type[ValueError]] = ConfigError

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise self.error_type(validation_message(type(self).__name__, exc)) from None
