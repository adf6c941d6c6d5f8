"""Configs: reading JSON/YAML files, the bundled presets, and building validated transforms from config entries.

A config is a mapping ``{"seed": int | null, "description": str, "transforms": [entry, ...]}``; an entry is
``{"name": <key of spineaug.TRANSFORMS>, **arguments}``. Every key and value is validated by the transform's
constructor (see :mod:`spineaug.validation`); errors name the entry (``transforms[3] (Gamma): p: ...``).
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from spineaug.transforms import TRANSFORMS, RandomSpatial, RandomTransform
from spineaug.validation import ConfigError, NoEffectWarning, check_seed

TOP_LEVEL_KEYS = frozenset({"seed", "transforms", "description"})
"""The keys a pipeline config may have."""


def presets() -> list[str]:
    """Names of the bundled presets (``Pipeline.from_preset`` accepts each)."""
    folder = resources.files("spineaug").joinpath("presets")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def preset_config(name: str) -> dict[str, Any]:
    """The config dict of a bundled preset."""
    names = presets()
    if name not in names:
        raise ValueError(f"unknown preset {name!r}; available presets: {names}")
    return json.loads(resources.files("spineaug").joinpath("presets").joinpath(f"{name}.json").read_text())


def load_config(
    source: str | Path | dict[str, Any],
    *,
    what: str = "config",
    expected: str = "a mapping with a 'transforms' list",
) -> dict[str, Any]:
    """Read a config from a dict, a ``.json`` file or a ``.yaml``/``.yml`` file (the content is not validated).

    Args:
        source: A dict (returned as is) or a file path.
        what: What the file holds, for messages (e.g. ``"AugLab config"``).
        expected: What its top level must be, for messages.

    Raises:
        FileNotFoundError: No such file.
        ConfigError: The file is not valid JSON/YAML, or its top level is not a mapping.
    """
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # lazy: keeps `import spineaug` light (YAML configs only)

        try:
            data = yaml.load(text, Loader=_unique_keys_loader(yaml))  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_error(path, exc)) from None
    else:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
        except _DuplicateKey as exc:
            raise ConfigError(f"{path}: key {exc.args[0]!r} appears twice in one object; only the last would be "
                              "read") from None  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} must be {expected}, got {type(data).__name__}")
    return data


class _DuplicateKey(Exception):
    """A key given twice in one JSON object (``json`` would keep the last one silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of :func:`json.loads` that refuses a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _unique_keys_loader(yaml: Any) -> type:
    """A ``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last one silently)."""

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping; only the last would be read",
                        key_node.start_mark)  # fmt: skip
                if isinstance(key, Hashable):
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _yaml_error(path: Path, exc: Exception) -> str:
    """One line for a YAML syntax error: file, line and column (1-based) and the parser's complaint."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def build_transform(entry: dict[str, Any], where: str = "transform") -> RandomTransform:
    """Build one transform from a config entry ``{"name": ..., **params}``."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each transform entry must be a mapping with a 'name', got {entry!r}")
    params = dict(entry)
    name = params.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: missing 'name' (one of {sorted(TRANSFORMS)})")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: 'name' must be a string, one of {sorted(TRANSFORMS)}; got {name!r}")
    if name not in TRANSFORMS:
        raise ConfigError(f"{where}: unknown transform name {name!r}; known names: {sorted(TRANSFORMS)}")
    try:
        transform = TRANSFORMS[name](**params)
    except ConfigError as exc:
        raise ConfigError(f"{where} ({name}): {exc}") from None
    if name != RandomSpatial.name and "p" in params and float(params["p"]) == 0:  # Spatial at p 0 still crops to its patch
        warnings.warn(f"{where} ({name}): p is 0, so the entry never fires and has no effect", NoEffectWarning,
                      stacklevel=2)  # fmt: skip
    return transform


def with_patch(entries: list[Any], patch_size: Any = None, p_foreground: Any = None) -> list[Any]:
    """Config entries with the ``Spatial`` entry's ``patch_size``/``p_foreground`` overridden (``None``: keep).

    Without a ``Spatial`` entry, a given ``patch_size`` inserts one first that only crops: every probability 0, so it
    cuts a patch at a random position (or, with ``p_foreground``, centred on a random foreground voxel) and changes
    nothing else. The values are validated when the entries are built, like any config value.
    """
    overrides = {k: v for k, v in (("patch_size", patch_size), ("p_foreground", p_foreground)) if v is not None}
    if not overrides:
        return entries
    spatial = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == RandomSpatial.name]
    if spatial:
        return [dict(e, **overrides) if i in spatial else e for i, e in enumerate(entries)]
    if patch_size is None:
        raise ConfigError("p_foreground needs a patch: the config has no 'Spatial' entry, so pass patch_size= too")
    crop = {"name": RandomSpatial.name, "p_rotation": 0.0, "p_scale": 0.0, "p_elastic": 0.0, "p_foreground": 0.0,
            "p": 0.0}  # fmt: skip
    return [dict(crop, **overrides), *entries]


def build_pipeline_parts(
    source: str | Path | dict[str, Any], *, patch_size: Any = None, p_foreground: Any = None
) -> tuple[list[RandomTransform], int | None]:
    """Read and validate a pipeline config: its transforms (in config order) and its seed.

    Args:
        source: A config dict or the path of a JSON/YAML file.
        patch_size: Overrides the patch of the ``Spatial`` entry, see :func:`with_patch`.
        p_foreground: Overrides the foreground probability of the ``Spatial`` entry, see :func:`with_patch`.
    """
    data = load_config(source)
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"unknown top-level config key(s) {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    if "transforms" not in data:
        raise ConfigError(f"the config has no 'transforms' list (keys: {sorted(data)}); write 'transforms: []' "
                          "for the identity")  # fmt: skip
    entries = data["transforms"]
    if not isinstance(entries, list):
        raise ConfigError(f"'transforms' must be a list of entries, got {type(entries).__name__}")
    seed = check_seed(data.get("seed"))
    entries = with_patch(entries, patch_size, p_foreground)
    return [build_transform(e, f"transforms[{i}]") for i, e in enumerate(entries)], seed
