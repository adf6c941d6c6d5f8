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
