"""Bad inputs get a clear error that names the culprit: non-finite config values, degenerate shears, broken YAML/JSON
files and CLI misuse (unknown preset, unwritable output, a transform name for `spineaug config`)."""

from __future__ import annotations

import inspect
import json
import math
import re

import pytest

import spineaug
from spineaug import cli
from spineaug.config import load_config
from spineaug.validation import ConfigError

NONFINITE = [math.nan, math.inf, -math.inf]


def _float_fields() -> list[tuple[str, str, object]]:
    """(transform, key, default) for every float field and every float (low, high) range of every transform."""
    out = []
    for name, cls in sorted(spineaug.TRANSFORMS.items()):
        for key, default in cls.defaults().items():
            if isinstance(default, float) and not isinstance(default, bool):
                out.append((name, key, default))
            elif isinstance(default, tuple) and default and all(isinstance(v, (int, float)) for v in default):
                if any(isinstance(v, float) for v in default):
                    out.append((name, key, default))
    return out


FLOAT_FIELDS = _float_fields()


def test_the_battery_covers_every_transform_with_float_fields():
    names = {name for name, _, _ in FLOAT_FIELDS}
    assert {"Spatial", "Affine", "FovCrop", "Gamma", "GaussianNoise", "Brightness", "LabelAppearance"} <= names
    assert len(FLOAT_FIELDS) >= 40


def _bad_values(default, bad: float) -> list[object]:
    if isinstance(default, float):
        return [bad]
    return [[bad, *default[1:]], [*default[:-1], bad]]


@pytest.mark.parametrize("bad", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name, key, default", FLOAT_FIELDS, ids=[f"{n}.{k}" for n, k, _ in FLOAT_FIELDS])
def test_nonfinite_values_rejected_naming_the_key(name, key, default, bad):
    for value in _bad_values(default, bad):
        with pytest.raises(ConfigError, match=rf"transforms\[0\] \({name}\): .*\b{key}\b.*(finite|greater|less)"):
            spineaug.Pipeline.from_config({"transforms": [{"name": name, key: value}]})


@pytest.mark.parametrize("shear", [[-90, 5], [0, 90], [-90, 90], [-120, 0]])
def test_degenerate_shear_rejected(shear):
    with pytest.raises(ConfigError, match=r"Affine\): .*shear_deg.*(greater than -90|less than 90)"):
        spineaug.Pipeline.from_config({"transforms": [{"name": "Affine", "shear_deg": shear}]})


def test_shear_just_inside_90_is_accepted():
    spineaug.Pipeline.from_config({"transforms": [{"name": "Affine", "shear_deg": [-89.0, 89.0]}]})


@pytest.mark.parametrize("entry, key", [
    ({"name": "Spatial", "pad_value": "NaN"}, "pad_value"),
    ({"name": "FovCrop", "fill": "value", "fill_value": "NaN"}, "fill_value"),
    ({"name": "Spatial", "rotation_deg": ["-Infinity", "Infinity"]}, "rotation_deg"),
    ({"name": "Brightness", "multiplier": [1.0, "Infinity"]}, "multiplier"),
])  # fmt: skip
def test_json_files_with_nan_or_infinity_are_rejected_by_spineaug_config(tmp_path, capsys, entry, key):
    text = json.dumps({"transforms": [entry]}).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    text = text.replace('"-Infinity"', "-Infinity")
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert cli.main(["config", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"\b{key}(\.\d)?: Input should be a finite number", err), err
    assert err.startswith("spineaug config: error:")


YAML_ERRORS = [
    ("transforms:\n  - name: Gamma\n    p: [0.5\n  - x: 1\n", 4, 6),
    ("transforms:\n- name: Gamma\n  p: 0.5\n bad: 1\n", 4, 2),
    ("seed: 1\ntransforms: {a: 1\n", 3, 1),
    ("transforms:\n  - name: 'Gamma\n", 3, 1),
]


@pytest.mark.parametrize("text, line, column", YAML_ERRORS)
def test_yaml_syntax_error_names_file_line_and_column(tmp_path, text, line, column):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"broken\.yaml, line {line}, column {column}: not valid YAML: ") as info:
        load_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, line, column", [('{"transforms": [}', 1, 17), ('{\n  "seed": 1,\n}', 3, 1)])
def test_json_syntax_error_names_file_line_and_column(tmp_path, text, line, column):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"broken\.json, line {line}, column {column}: not valid JSON: "):
        load_config(path)


@pytest.mark.parametrize("command", ["config", "preview"])
def test_cli_yaml_error_is_one_line_with_exit_2(tmp_path, capsys, command):
    path = tmp_path / "broken.yaml"
    path.write_text(YAML_ERRORS[0][0])
    argv = ["config", str(path)] if command == "config" else ["preview", "--config", str(path), "--out", str(tmp_path / "g.png")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spineaug {command}: error: {path}, line 4, column 6: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence)"


@pytest.mark.parametrize("name", sorted(spineaug.TRANSFORMS))
def test_cli_config_transform_name_shows_its_parameters(capsys, name):
    assert cli.main(["config", name]) == 0
    out = capsys.readouterr().out
    cls = spineaug.TRANSFORMS[name]
    shown = json.loads(out[: out.index("\n}\n") + 2])
    assert shown["name"] == name and set(shown) == {"name", *cls.defaults()}
    assert inspect.getdoc(cls).splitlines()[0] in out


def test_cli_preview_unknown_preset_lists_presets(tmp_path, capsys):
    assert cli.main(["preview", "--preset", "nope", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and all(p in err for p in spineaug.presets())


def test_cli_oserror_is_one_line_with_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argv = ["phantom", "--out", str(blocker / "sub"), "--cases", "1", "--quiet", "--shape", "8,8,8"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("spineaug phantom: error: ") and "Not a directory" in err and "a_file" in err
    assert "Traceback" not in err and err.count("\n") == 1
