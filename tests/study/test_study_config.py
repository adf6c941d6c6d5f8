"""Study files: validation errors name the key, before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from spineaug.study import load_study
from spineaug.validation import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _study(**over):
    base = {"name": "t", "sources": ["t2w"], "arms": ["none", "nnunet"]}
    base.update(over)
    return base


@pytest.mark.parametrize(
    "name", ["quick", "default", "full", "ablation-schedule", "ablation-capacity", "ablation-mixing"]
)
def test_bundled_studies_validate(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # arm files are named relative to the repository root
    study = load_study(ROOT / "studies" / f"{name}.yaml")
    assert study.name == name
    assert study.sources and study.arms
    assert study.reference_arm in study.arms


def test_defaults_fill_in():
    study = load_study(_study())
    assert study.data.kind == "phantom"
    assert study.target_domains() == study.data.domain_names()
    assert len(study.target_domains()) >= 3


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"sources": ["mri"]}, "sources: unknown domain 'mri'"),
        ({"arms": ["strong"]}, "unknown arm 'strong'"),
        ({"arms": ["missing.json"]}, "config file not found: missing.json"),
        ({"arms": ["none", "none"]}, "must not repeat"),
        ({"targets": ["ct", "xray"]}, "targets: unknown domain 'xray'"),
        ({"training": {"iterations": 0}}, "training.iterations"),
        ({"training": {"p_foreground": 1.5}}, "training.p_foreground"),
        ({"training": {"patch_size": [32, 32]}}, "training.patch_size"),
        ({"model": {"name": "ResNet"}}, "model.name"),
        ({"data": {"kind": "phantom", "n_train": 2, "test_seed_start": 1}}, "test_seed_start"),
        ({"data": {"kind": "phantom", "domains": ["ct", "pet"]}}, "unknown phantom domain 'pet'"),
        ({"epochs": 3}, "epochs"),
        ({"name": "a b"}, "name"),
    ],
)
def test_bad_study_names_the_key(over, needle):
    with pytest.raises(ConfigError, match="study") as info:
        load_study(_study(**over))
    assert needle in str(info.value)


def test_bad_arm_config_file_is_validated_up_front(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"transforms": [{"name": "Gamma", "p": 2}]}')
    with pytest.raises(ConfigError, match=r"\(Gamma\): RandomGamma: p: Input should be less than or equal to 1 \(got 2\)") \
            as info:
        load_study(_study(arms=[str(bad)]))
    # the file's own entry index (the study's Spatial entry is added after validation) and the file's path
    assert f"arms: {bad}" in str(info.value) and "transforms[0] (Gamma)" in str(info.value)


def test_nifti_data_needs_existing_sources(tmp_path):
    data = {"kind": "nifti", "domains": {"ct": {"path": str(tmp_path), "n_train": 0, "n_val": 0}}}
    with pytest.raises(ConfigError, match="n_train = 0"):
        load_study(_study(sources=["ct"], data=data))


def test_study_file_errors_name_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nsources: [t2w]\narms: [none]\nseeds: [-1]\n")
    with pytest.raises(ConfigError, match=r"s\.yaml.*seeds"):
        load_study(path)


def test_arm_sources_restricts_an_arm():
    from spineaug.study import cells

    study = load_study(_study(sources=["t2w", "ct"], arms=["none", "nnunet"], arm_sources={"nnunet": ["ct"]}))
    assert [c.slug for c in cells(study)] == ["t2w__none__s0", "ct__none__s0", "ct__nnunet__s0"]
    with pytest.raises(ConfigError, match="arm_sources: 'xdomain' is not one of the arms"):
        load_study(_study(arm_sources={"xdomain": ["t2w"]}))
    with pytest.raises(ConfigError, match="arm_sources.nnunet: 'ct' is not one of the sources"):
        load_study(_study(arm_sources={"nnunet": ["ct"]}))


def test_reference_arm_and_folder_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="reference_arm: 'xdomain' is not one of the arms"):
        load_study(_study(reference_arm="xdomain"))
    same = tmp_path / "nnunet.json"
    same.write_text('{"transforms": [{"name": "Gamma", "p": 0.5}]}')
    with pytest.raises(ConfigError, match="share a result folder"):
        load_study(_study(arms=["nnunet", str(same)]))
    with pytest.raises(ConfigError, match="loader_workers"):
        load_study(_study(arms=["nnunet", "bgv2-nnunet"], training={"loader_workers": 0}))


def test_cli_study_status_and_quick_flag(tmp_path, capsys, monkeypatch):
    from spineaug.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["study", "--quick", "--status", "--out", str(tmp_path)]) == 0
    assert "study 'quick'" in capsys.readouterr().out
    assert main(["study", "studies/quick.yaml", "--quick", "--status"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["study", str(tmp_path / "none.yaml"), "--status"]) == 2
    assert "not found" in capsys.readouterr().err
