"""Bad inputs get a clear error that names the culprit: non-finite config values, probabilities outside [0, 1],
inverted ranges and unknown keys (each a battery over every transform), degenerate shears, broken YAML/JSON files and
CLI misuse (unknown preset, unwritable output, a transform name for `spineaug config`)."""

from __future__ import annotations

import inspect
import json
import math
import re
import typing

import pytest

import spineaug
from spineaug import cli
from spineaug.config import load_config
from spineaug.validation import ConfigError, Probability, ordered
from tests._exercise import EXERCISE

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


def _annotated_fields(accept) -> list[tuple[str, str]]:
    """(transform, key) for every constructor argument of every transform whose annotation ``accept`` takes."""
    out = []
    for name, cls in sorted(spineaug.TRANSFORMS.items()):
        hints = typing.get_type_hints(cls.__init__, include_extras=True)
        out += [(name, key) for key, annotation in hints.items() if key != "return" and accept(annotation)]
    return out


def _is_ordered_range(annotation) -> bool:
    return any(getattr(v, "func", None) is ordered for v in getattr(annotation, "__metadata__", ()))


PROBABILITY_FIELDS = _annotated_fields(lambda a: a == Probability)
RANGE_FIELDS = _annotated_fields(_is_ordered_range)


def test_the_bad_config_battery_covers_every_transform():
    """Every transform has a probability; the ranges and sub-probabilities the per-family tests rely on are found."""
    assert {name for name, _ in PROBABILITY_FIELDS} == set(spineaug.TRANSFORMS)
    assert {("Laplacian", "mix_prob"), ("IPA", "p_blend"), ("LabelIntensityRemap", "p_inside"),
            ("Spatial", "p_elastic")} <= set(PROBABILITY_FIELDS)  # fmt: skip
    assert {("Spatial", "scale"), ("Gamma", "gamma"), ("GaussianBlur", "sigma"), ("UnsharpMask", "amount"),
            ("LabelIntensityRemap", "amplitude"), ("LabelAppearance", "mean"), ("LowResolution", "scale"),
            ("FovCrop", "pos"), ("GIN", "alpha"), ("Brightness", "multiplier")} <= set(RANGE_FIELDS)  # fmt: skip


def _bad_config_errors(name: str, entry: dict, pattern: str) -> None:
    """Both ways in (the class, a pipeline config) raise a ConfigError that matches ``pattern``."""
    with pytest.raises(ConfigError, match=pattern):
        spineaug.TRANSFORMS[name](**entry)
    with pytest.raises(ConfigError, match=rf"transforms\[0\] \({name}\): .*{pattern}"):
        spineaug.Pipeline.from_config({"transforms": [{"name": name, **entry}]})


@pytest.mark.parametrize("value", [1.5, -0.1], ids=["above-1", "below-0"])
@pytest.mark.parametrize("name, key", PROBABILITY_FIELDS, ids=[f"{n}.{k}" for n, k in PROBABILITY_FIELDS])
def test_probability_outside_0_1_rejected_naming_the_key(name, key, value):
    _bad_config_errors(name, {key: value}, rf"\b{key}\b.*(less|greater) than or equal to")


@pytest.mark.parametrize("name, key", RANGE_FIELDS, ids=[f"{n}.{k}" for n, k in RANGE_FIELDS])
def test_inverted_range_rejected_naming_the_key(name, key):
    low, high = {**spineaug.TRANSFORMS[name].defaults(), **EXERCISE[name]}[key]  # a range with low < high
    assert low < high, f"{name}.{key}: neither the default nor the exercise setting is a proper range"
    _bad_config_errors(name, {key: [high, low]}, rf"\b{key}\b.*range low {high} is above high {low}")


@pytest.mark.parametrize("name", sorted(spineaug.TRANSFORMS))
def test_unknown_key_rejected_naming_it(name):
    _bad_config_errors(name, {"bogus": 1}, r"unknown key\(s\) \['bogus'\]")


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


# --- config names and seeds -----------------------------------------------------------------------

@pytest.mark.parametrize("name", [["Gamma"], {"a": 1}, 3, 1.5, True])
def test_a_name_that_is_not_a_string_names_the_key(name):
    with pytest.raises(ConfigError, match=r"transforms\[0\]: 'name' must be a string, one of \[.*'Gamma'.*got "):
        spineaug.Pipeline.from_config({"transforms": [{"name": name}]})


@pytest.mark.parametrize("seed", [2**70, 2**64, -(2**63) - 1, 1.5, "7", True, [1]])
def test_a_seed_torch_cannot_take_names_the_key(seed):
    with pytest.raises(ConfigError, match=r"^'seed' must be an integer"):
        spineaug.Pipeline.from_config({"seed": seed, "transforms": []})
    with pytest.raises(ConfigError, match=r"^'seed' must be an integer"):
        spineaug.Pipeline(seed=seed)


@pytest.mark.parametrize("seed", [2**64 - 1, -(2**63), 0])
def test_seeds_at_the_ends_of_torch_range_are_accepted(seed):
    assert spineaug.Pipeline.from_config({"seed": seed, "transforms": []}).seed == seed


# --- replayed params ------------------------------------------------------------------------------

def _replay_setup(b: int = 3):
    import torch

    from tests.conftest import make_batch

    aug = spineaug.Pipeline.from_config({"transforms": [{"name": "Flip", "p": 0.5}, {"name": "Gamma", "p": 0.5}]})
    image, label = make_batch(b=b)
    _, _, params = aug(image, label, generator=torch.Generator().manual_seed(0), return_params=True)
    return aug, image, label, params


@pytest.mark.parametrize("b", [1, 2, 5])
def test_replaying_params_of_another_batch_size_says_so(b):
    from tests.conftest import make_batch

    aug, _, _, params = _replay_setup(3)
    image, label = make_batch(b=b)
    with pytest.raises(ValueError, match=rf"params\['0:Flip'\] was drawn for a batch of 3 samples but the image has B = {b}"):
        aug(image, label, params=params)


@pytest.mark.parametrize("bad, message", [
    (lambda p: [p["1:Gamma"], p["0:Flip"]], r"params\['0:Flip'\] must be of type FlipParams \(drawn by Flip\), got IntensityParams"),
    (lambda p: [p["0:Flip"], 7], r"params\['1:Gamma'\] must be of type IntensityParams \(drawn by Gamma\), got int"),
    (lambda p: {"0:Flip": p["0:Flip"], "1:Gamma": None}, r"params\['1:Gamma'\] must be of type IntensityParams .*got NoneType"),
    (lambda p: [p["0:Flip"]], r"params has 1 entries but the pipeline has 2 transforms"),
    (lambda p: {"0:Flip": p["0:Flip"], "2:Gamma": p["1:Gamma"]}, r"params keys \['0:Flip', '2:Gamma'\] do not match"),
    (lambda p: "0:Flip", r"params must be the dict returned with return_params=True .*got str"),
    (lambda p: 3, r"params must be the dict returned with return_params=True .*got int"),
])  # fmt: skip
def test_malformed_params_say_what_is_wrong(bad, message):
    aug, image, label, params = _replay_setup()
    with pytest.raises((TypeError, ValueError), match=message):
        aug(image, label, params=bad(params))


def test_params_and_generator_together_is_an_error():
    import torch

    aug, image, label, params = _replay_setup()
    with pytest.raises(ValueError, match=r"pass generator= or params=, not both.*generator would be ignored"):
        aug(image, label, params=params, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(spineaug.TRANSFORMS))
def test_every_transform_replays_its_own_params(name):
    import torch

    from tests.conftest import make_batch

    aug = spineaug.Pipeline.from_config({"transforms": [spineaug.TRANSFORMS[name].forced({"name": name})]})
    image, label = make_batch(b=2)
    out, lab, params = aug(image, label, generator=torch.Generator().manual_seed(0), return_params=True)
    again, lab2 = aug(image, label, params=list(params.values()))
    assert torch.equal(out, again) and torch.equal(lab, lab2)


# --- the AugLab importer ---------------------------------------------------------------------------

AUGLAB_BAD = [
    ({"GammaTransform": {"probability": 0.3, "gamma_range": ["a", 1.5]}}, r"GammaTransform\.gamma_range: expected two numbers"),
    ({"GammaTransform": {"probability": 0.3, "gamma_range": []}}, r"GammaTransform\.gamma_range: expected a \[low, high\] pair, got \[\]"),
    ({"GammaTransform": {"probability": 0.3, "gamma_range": 1.2}}, r"GammaTransform\.gamma_range: expected a \[low, high\] pair, got 1\.2"),
    ({"BrightnessTransform": {"probability": 0.3, "brightness_range": 2}}, r"BrightnessTransform\.brightness_range: expected a \[low"),
    ({"ContrastTransform": {"probability": 0.3, "contrast_range": [None, 1]}}, r"ContrastTransform\.contrast_range: expected two numbers"),
    ({"AffineTransform": {"probability": 0.3, "degrees": "ten"}}, r"AffineTransform\.degrees: expected a list of 2 or 3 numbers, got 'ten'"),
    ({"AffineTransform": {"probability": 0.3, "degrees": []}}, r"AffineTransform\.degrees: expected a list of 2 or 3 numbers, got \[\]"),
    ({"AffineTransform": {"probability": 0.3, "degrees": [[1, 2], [3, 4]]}}, r"AffineTransform\.degrees: expected a list of 2 or 3 numbers"),
    ({"AffineTransform": {"probability": 0.3, "degrees": [[-1, 1], [-2, "x"], [0, 1]]}}, r"AffineTransform\.degrees: expected a list of 2 numbers"),
    ({"AffineTransform": {"probability": 0.3, "translate": 0.1}}, r"AffineTransform\.translate: expected a list of 3 numbers, got 0\.1"),
    ({"AffineTransform": {"probability": 0.3, "translate": []}}, r"AffineTransform\.translate: expected a list of 3 numbers, got \[\]"),
    ({"AffineTransform": {"probability": 0.3, "translate": [2, 0.1, 0.1]}}, r"AffineTransform \(Affine\): .*translate\.2: .*less than or equal to 1"),
    ({"AffineTransform": {"probability": 0.3, "shear": [5, 10, 5, 5, 5, 5]}}, r"AffineTransform\.shear: per-term shear ranges .* differ"),
    ({"AffineTransform": {"probability": 0.3, "shear": "x"}}, r"AffineTransform\.shear: expected a list of 2 or 6 numbers"),
    ({"AffineTransform": {"probability": 0.3, "shear": [90, 90]}}, r"AffineTransform \(Affine\): .*shear_deg\.0: .*less than 90"),
    ({"AffineTransform": {"probability": 0.3, "scale": [1.2, 0.9]}}, r"AffineTransform \(Affine\): .*scale: .*range low 1\.2 is above high 0\.9"),
    ({"AffineTransform": {"probability": 0.3, "resample": 3}}, r"AffineTransform\.resample: expected a mode name"),
    ({"FlipTransform": {"probability": 0.3, "flip_axis": []}}, r"FlipTransform\.flip_axis: expected an axis or a non-empty list of axes, got \[\]"),
    ({"FlipTransform": {"probability": 0.3, "flip_axis": "0"}}, r"FlipTransform\.flip_axis: expected an axis"),
    ({"FlipTransform": {"probability": 0.3, "flip_axis": [5]}}, r"FlipTransform \(Flip\): .*axes\.0: .*less than or equal to 2"),
    ({"RandomConvTransform": {"probability": 0.3, "kernel_sizes": 3}}, r"RandomConvTransform\.kernel_sizes: expected a non-empty list of odd kernel sizes, got 3"),
    ({"RandomConvTransform": {"probability": 0.3, "kernel_sizes": []}}, r"RandomConvTransform\.kernel_sizes: expected a non-empty list"),
    ({"RandomConvTransform": {"probability": 0.3, "kernel_sizes": ["3"]}}, r"RandomConvTransform\.kernel_sizes: expected a non-empty list"),
    ({"RandomConvTransform": {"probability": 0.3, "kernel_sizes": [4]}}, r"RandomConvTransform \(RandomConv\): .*kernel sizes must be odd"),
    ({"BiasFieldTransform": {"probability": 0.3, "coefficients": ["a", "a"]}}, r"BiasFieldTransform\.coefficients: expected c or a symmetric pair"),
    ({"BiasFieldTransform": {"probability": 0.3, "coefficients": []}}, r"BiasFieldTransform\.coefficients: expected c or a symmetric pair"),
    ({"ClampTransform": {"probability": 0.3, "max_clamp_amount": "x"}}, r"ClampTransform\.max_clamp_amount: expected a number, got 'x'"),
    ({"GaussianNoiseTransform": {"probability": 0.3, "std": -1}}, r"GaussianNoiseTransform \(GaussianNoise\): .*sigma\.1: .*greater than or equal to 0"),
    ({"GaussianNoiseTransform": {"probability": "0.3"}}, r"GaussianNoiseTransform\.probability: expected a number, got '0\.3'"),
    ({"GaussianNoiseTransform": [0.3]}, r"GaussianNoiseTransform: expected an object of parameters, got \[0\.3\]"),
    ({"nnUNetSpatialTransform": {"patch_size": 64}}, r"nnUNetSpatialTransform\.patch_size: expected three integers \[D, H, W\], got 64"),
    ({"nnUNetSpatialTransform": {"patch_size": []}}, r"nnUNetSpatialTransform\.patch_size: expected three integers"),
    ({"nnUNetSpatialTransform": {"scaling": [1.4, 0.7], "p_scaling": 0.2}}, r"nnUNetSpatialTransform \(Spatial\): .*scale: .*range low 1\.4"),
    ({"nnUNetSpatialTransform": {"scaling": 1.2}}, r"nnUNetSpatialTransform\.scaling: expected a \[low, high\] pair"),
    ({"GPU": [1, 2]}, r"GPU: expected an object of modules, got list"),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::spineaug.integrations.auglab.AugLabWarning")
@pytest.mark.parametrize("config, message", AUGLAB_BAD, ids=[f"auglab{i}" for i in range(len(AUGLAB_BAD))])
def test_auglab_bad_values_name_the_module_and_key(config, message):
    from spineaug.integrations.auglab import from_auglab

    with pytest.raises(ConfigError, match=rf"^AugLab config: .*{message}"):
        from_auglab(config)


@pytest.mark.parametrize("source", [[1, 2], [{"GammaTransform": {}}], 3, None])
def test_auglab_top_level_that_is_not_an_object_is_named(source):
    from spineaug.integrations.auglab import from_auglab

    with pytest.raises(ConfigError, match=r"AugLab config: expected a JSON object of modules .*got "):
        from_auglab(source)


def test_auglab_top_level_json_list_file_names_the_file(tmp_path):
    from spineaug.integrations.auglab import from_auglab

    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"list\.json: the AugLab config must be a JSON object of modules, got list"):
        from_auglab(path)


@pytest.mark.filterwarnings("ignore::spineaug.integrations.auglab.AugLabWarning")
def test_auglab_per_axis_ranges_are_not_collapsed():
    from spineaug.integrations.auglab import auglab_to_config

    block = {"probability": 0.3, "degrees": [10, 20, 30], "translate": [0.1, 0.2, 0.3], "shear": [7, 7, 7, 7, 7, 7]}
    (entry,) = auglab_to_config({"AffineTransform": block})["transforms"]
    # kornia's per-axis values are about x, y, z (W, H, D); spineaug's are (D, H, W)
    assert entry["degrees"] == [[-30.0, 30.0], [-20.0, 20.0], [-10.0, 10.0]]
    assert entry["translate"] == [0.3, 0.2, 0.1]
    assert entry["shear_deg"] == [-7.0, 7.0]
    pairs = {"probability": 0.3, "degrees": [[-1, 1], [-2, 2], [-3, 3]]}
    assert auglab_to_config({"AffineTransform": pairs})["transforms"][0]["degrees"] == [[-3, 3], [-2, 2], [-1, 1]]
