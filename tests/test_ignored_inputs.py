"""Inputs that are accepted but can change nothing are refused, or named in a NoEffectWarning."""

from __future__ import annotations

import json
import warnings

import pytest

import spineaug
from spineaug.study import load_study
from spineaug.validation import ConfigError, NoEffectWarning


@pytest.mark.parametrize("name", ["Flip", "FovCrop", "LowResolution", "ThickSlice"])
def test_empty_axes_are_refused(name):
    with pytest.raises(ConfigError, match=rf"transforms\[0\] \({name}\): .*axes: .*at least one axis"):
        spineaug.Pipeline.from_config({"transforms": [{"name": name, "axes": []}]})


def test_an_entry_that_never_fires_is_named():
    with pytest.warns(NoEffectWarning, match=r"transforms\[1\] \(Gamma\): p is 0, so the entry never fires"):
        spineaug.Pipeline.from_config({"transforms": [{"name": "Flip", "p": 0.5}, {"name": "Gamma", "p": 0}]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoEffectWarning)
        # Spatial at p 0 still crops to its patch; a default p is not a written 0.
        spineaug.Pipeline.from_config({"transforms": [{"name": "Spatial", "p": 0.0}, {"name": "Gamma"}]},
                                      patch_size=(8, 8, 8))  # fmt: skip
        for preset in spineaug.presets():
            spineaug.Pipeline.from_preset(preset, patch_size=(16, 16, 16))


def test_auglab_no_effect_warnings_are_the_same_category():
    from spineaug.integrations import auglab

    assert issubclass(auglab.NoEffectWarning, NoEffectWarning)


def test_a_seed_in_a_study_arm_file_is_refused(tmp_path):
    arm = tmp_path / "arm.json"
    arm.write_text(json.dumps({"seed": 3, "transforms": [{"name": "Gamma", "p": 0.5}]}))
    with pytest.raises(ConfigError, match=r"arm.json: seed 3 has no effect in a study"):
        load_study({"name": "t", "sources": ["t2w"], "arms": ["nnunet", str(arm)]})
    arm.write_text(json.dumps({"seed": None, "transforms": [{"name": "Gamma", "p": 0.5}]}))
    assert load_study({"name": "t", "sources": ["t2w"], "arms": ["nnunet", str(arm)]})


def test_a_config_seed_in_the_monai_and_torchio_adapters_is_named():
    pytest.importorskip("monai")
    pytest.importorskip("torchio")
    from spineaug.integrations.monai import SpineAugd
    from spineaug.integrations.torchio import SpineAug

    config = {"seed": 5, "transforms": [{"name": "Gamma", "p": 0.5}]}
    with pytest.warns(NoEffectWarning, match=r"SpineAugd: the config's seed \(5\) has no effect"):
        SpineAugd(keys=("image",), config=config)
    with pytest.warns(NoEffectWarning, match=r"SpineAug: the config's seed \(5\) has no effect"):
        SpineAug(config=config)


@pytest.mark.parametrize(("name", "text", "key"), [
    ("study.yaml", "name: t\nsources: [t2w]\narms: [none]\narms: [none, nnunet]\n", "arms"),
    ("pipeline.json", '{"transforms": [{"name": "Gamma", "p": 0.2, "p": 0.5}]}', "p"),
])  # fmt: skip
def test_a_key_written_twice_in_a_config_file_is_refused(tmp_path, name, text, key):
    """JSON and YAML readers keep the last of two equal keys: the first was read by nobody."""
    from spineaug.config import load_config

    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=rf"{name}.*key '{key}' appears twice"):
        load_config(tmp_path / name)


@pytest.mark.parametrize(("change", "message"), [
    ({"targets": []}, r"targets: \[\] names no domain"),
    ({"targets": ["ct", "ct"]}, r"targets: values must not repeat"),
    ({"data": {"kind": "phantom", "domains": []}}, r"domains: \[\] names no domain"),
    ({"data": {"kind": "phantom", "domains": ["t2w", "ct", "t2w"]}}, r"domains: values must not repeat"),
    ({"seeds": []}, r"seeds: \[\] leaves the arms \['none', 'nnunet'\] without a cell"),
    ({"arm_sources": {"none": []}}, r"arm_sources.none: name at least one source"),
    ({"arm_sources": {"none": ["t2w", "t2w"]}}, r"arm_sources.none: .*without repeats"),
])  # fmt: skip
def test_empty_or_repeated_study_lists_are_refused(change, message):
    study = {"name": "t", "sources": ["t2w"], "arms": ["none", "nnunet"], **change}
    with pytest.raises(ConfigError, match=message):
        load_study(study)
    # every arm seeded by arm_seeds: an empty `seeds` leaves no arm without a cell
    assert load_study({"name": "t", "sources": ["t2w"], "arms": ["none"], "reference_arm": "none", "seeds": [],
                       "arm_seeds": {"none": [1]}})  # fmt: skip


def test_paired_patterns_on_an_nnunet_raw_domain_are_refused(tmp_path):
    data = {"kind": "nifti", "domains": {"ct": {"path": str(tmp_path), "image": "img/{id}.nii.gz", "n_train": 1,
                                                "n_val": 1}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"'image' and 'label' patterns are for format 'paired'"):
        load_study({"name": "t", "sources": ["ct"], "arms": ["nnunet"], "data": data})


@pytest.mark.parametrize(("change", "message"), [
    ({"pipelines": ()}, r"pipelines: name at least one value"),
    ({"devices": ()}, r"devices: name at least one value"),
    ({"sizes": (32, 32)}, r"sizes: values must not repeat"),
    ({"threads": (1, 2, 1)}, r"threads: values must not repeat"),
    ({"pipelines": ("nnunet", "nnunet")}, r"pipelines: values must not repeat"),
    ({"baselines": ("monai", "monai")}, r"baselines: values must not repeat"),
])  # fmt: skip
def test_empty_or_repeated_bench_lists_are_refused(change, message):
    from spineaug.bench import BenchConfig, BenchError
    from spineaug.bench.training import TrainingConfig

    with pytest.raises(BenchError, match=message):
        BenchConfig.quick(**change)
    assert BenchConfig.quick(baselines=()).baselines == ()  # no baseline: spineaug alone, as documented
    with pytest.raises(BenchError, match=r"arms must not repeat"):
        TrainingConfig.quick(arms=("none", "none"))
    assert TrainingConfig.quick(channels=(4, 4)).channels == (4, 4)  # a UNet's levels may repeat a width


def _started(*args, **kwargs):
    raise AssertionError("the command ran with an option it ignores")


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--training", "--pipelines", "nnunet", "--threads", "1"], "--pipelines, --threads have no effect with --training"),
    (["bench", "--quick", "--cores", "1"], "--cores has no effect without --training"),
    (["study", "--quick", "--status", "--export", "x"], "--export has no effect with --status"),
    (["study", "--quick", "--summarize", "--workers", "2"], "--workers has no effect with --summarize"),
    (["study", "--quick", "--gpus", "2", "--executor", "local"], "--gpus has no effect with --executor local"),
    (["study", "--quick", "--workers", "2"], "--workers has no effect with --executor inline"),
    (["predict", "-m", "m.pt", "-i", "in", "-o", "out", "--mirror-axes", "2"], "--mirror-axes has no effect without --tta"),
    (["preview", "--phantom", "--preset", "nnunet"], "--preset has no effect with --phantom"),
    (["preview", "--presets", "nnunet"], "--presets has no effect without --draws"),
    (["preview", "--draws", "2", "--whole-case"], "--whole-case has no effect with --draws"),
    (["preview", "--config", "a.json", "--preset", "nnunet"], "--preset has no effect with --config"),
    (["preview", "--image", "a.nii.gz", "--domain", "ct"], "--domain has no effect with --image"),
    (["report", "--fidelity", "--allow-reduced"], "--allow-reduced has no effect with --fidelity"),
])  # fmt: skip
def test_a_command_line_option_the_subcommand_ignores_is_refused(argv, message, monkeypatch, capsys):
    from spineaug import bench, study
    from spineaug.cli import main

    for module, names in ((bench, ("run", "run_training")), (study, ("load_study", "run_study", "status"))):
        for name in names:
            monkeypatch.setattr(module, name, _started)
    if argv[0] in ("preview", "report"):
        pytest.importorskip("matplotlib")
    if argv[0] == "predict":
        pytest.importorskip("monai")
        from spineaug.study import predict

        monkeypatch.setattr(predict, "predict", _started)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("fraction", "batch", "idle"), [(0.0, 2, "strong"), (1.0, 2, "weak"), (0.2, 2, "strong"),
                                                         (0.8, 2, "weak")])  # fmt: skip
def test_a_mixing_arm_whose_split_leaves_one_preset_idle_is_refused(tmp_path, fraction, batch, idle):
    arm = tmp_path / "mix.yaml"
    arm.write_text(f"mix: {{strong: xdomain, weak: nnunet, fraction: {fraction}}}\n")
    study = {"name": "t", "sources": ["t2w"], "arms": ["nnunet", str(arm)], "training": {"batch_size": batch}}
    with pytest.raises(ConfigError, match=rf"mix fraction {fraction} gives .* so the {idle} preset never runs"):
        load_study(study)
    assert load_study(dict(study, training={"batch_size": 4}) if fraction in (0.2, 0.8) else
                      dict(study, arms=["nnunet"]))  # fmt: skip


def test_a_repeat_floor_above_the_cap_is_refused():
    from spineaug.bench import BenchConfig, BenchError

    with pytest.raises(BenchError, match=r"min_repeats \(5\) > grid_repeats \(3\)"):
        BenchConfig.quick(min_repeats=5)


def test_monai_adapter_options_that_change_nothing():
    pytest.importorskip("monai")
    from spineaug.integrations.monai import SpineAugd

    with pytest.raises(ValueError, match=r"a key is named twice"):
        SpineAugd(keys=("image", "image", "label"), label_key="label", preset="none")
    with pytest.warns(NoEffectWarning, match=r"SpineAugd: allow_missing_keys has no effect without a label key"):
        SpineAugd(keys=("image",), preset="none", allow_missing_keys=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoEffectWarning)
        SpineAugd(keys=("image", "label"), preset="none", prob=0.5, allow_missing_keys=True)


def test_a_pipeline_config_without_a_transforms_list_is_refused(tmp_path):
    """A file whose list sat under another name (or a study file passed by mistake) built the identity."""
    with pytest.raises(ConfigError, match=r"the config has no 'transforms' list \(keys: \['description', 'seed'\]\)"):
        spineaug.Pipeline.from_config({"seed": 1, "description": "strong"})
    assert spineaug.Pipeline.from_config({"transforms": []})  # the identity, written out


@pytest.mark.parametrize(("config", "where"), [({}, r"\(top level\)"), ({"GPU": {}}, "GPU"),
                                               ({"Comment": "only a comment"}, r"\(top level\)")])  # fmt: skip
def test_an_auglab_config_without_a_module_is_named(config, where):
    from spineaug.integrations.auglab import auglab_to_config

    with pytest.warns(NoEffectWarning, match=rf"AugLab config: {where}: names no GPU module .* an empty pipeline"):
        assert auglab_to_config(config)["transforms"] == []


def test_more_monitored_cases_than_phantom_validation_anatomies_is_refused():
    """The monitoring set is cut to the validation anatomies: the extra cases were silently never monitored."""
    study = {"name": "t", "sources": ["t2w"], "arms": ["nnunet"], "data": {"kind": "phantom", "n_val": 2}}
    with pytest.raises(ConfigError, match=r"training.monitor_cases \(3\) > data.n_val \(2\)"):
        load_study(dict(study, training={"monitor_cases": 3}))
    assert load_study(dict(study, training={"monitor_cases": 2}))


@pytest.mark.parametrize(("argv", "message"), [
    (["--draws", "2", "--presets", ","], "--presets: name at least one preset, without repeats"),
    (["--draws", "2", "--presets", "nnunet,nnunet"], "--presets: name at least one preset, without repeats"),
    (["--draws", "-1"], "--draws must be >= 0"),
])  # fmt: skip
def test_preview_draws_of_no_preset_or_a_repeated_one_are_refused(tmp_path, monkeypatch, capsys, argv, message):
    pytest.importorskip("matplotlib")
    from spineaug.cli import main
    from spineaug.preview import gallery

    for name in ("phantom_volume", "render_gallery", "render_draws"):
        monkeypatch.setattr(gallery, name, _started)
    assert main(["preview", *argv, "--out", str(tmp_path / "g.png")]) == 2
    assert message in capsys.readouterr().err


def test_a_mixing_arm_of_one_preset_with_itself_is_refused(tmp_path):
    arm = tmp_path / "mix.yaml"
    arm.write_text("mix: {strong: nnunet, weak: nnunet, fraction: 0.5}\n")
    with pytest.raises(ConfigError, match=r"strong and weak are both 'nnunet': the mix changes nothing"):
        load_study({"name": "t", "sources": ["t2w"], "arms": ["none", str(arm)], "reference_arm": "none"})
