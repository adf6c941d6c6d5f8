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
    (tmp_path / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0}, '
                                           '"numTraining": 0, "file_ending": ".nii.gz"}')
    (tmp_path / "labelsTr").mkdir()
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


@pytest.mark.parametrize("name", ["quick", "ablation-mixing"])
def test_bundled_studies_load_from_any_working_directory(name, tmp_path, monkeypatch):
    """The studies ship inside the package; their arm files resolve from the study file, not the cwd."""
    from spineaug.study.config import BUNDLED_STUDIES, bundled_studies

    monkeypatch.chdir(tmp_path)
    assert BUNDLED_STUDIES.parent.name == "spineaug" and name in bundled_studies()
    for source in (name, f"studies/{name}.yaml", BUNDLED_STUDIES / f"{name}.yaml"):
        study = load_study(source)
        assert study.name == name and Path(study.base_dir) == BUNDLED_STUDIES
        assert "base_dir" not in study.model_dump(mode="json")  # study.json and hashes do not depend on where it lies


def test_repository_studies_folder_is_the_bundled_one():
    from spineaug.study.config import BUNDLED_STUDIES

    assert (ROOT / "studies").resolve() == BUNDLED_STUDIES
    assert (BUNDLED_STUDIES / "arms" / "mix-xdomain-plus-nnunet.yaml").is_file()


def test_arm_files_resolve_relative_to_the_study_file(tmp_path, monkeypatch):
    import json

    import pickle

    from spineaug.harness.augment import build_augmentation

    folder = tmp_path / "mine"
    (folder / "arms").mkdir(parents=True)
    (folder / "arms" / "mixed.yaml").write_text("mix: {strong: xdomain, weak: nnunet, fraction: 0.5}\n")
    (folder / "study.json").write_text(json.dumps(_study(arms=["nnunet", "arms/mixed.yaml"])))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    study = load_study(folder / "study.json")
    assert study.arms == ["nnunet", "arms/mixed.yaml"]  # the arm keeps its name (result rows, folders)
    again = pickle.loads(pickle.dumps(study))  # what a worker process receives
    assert build_augmentation("arms/mixed.yaml", (16, 16, 16), base_dir=again.base_dir).config["mix"]["weak"] == "nnunet"
    with pytest.raises(ConfigError, match="config file not found: arms/other.yaml"):
        load_study(_study(arms=["nnunet", "arms/other.yaml"]))  # a dict has no folder: the cwd only


def test_unknown_study_name_lists_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="bundled studies: .*quick"):
        load_study("studies/nope.yaml")


def test_quick_study_status_from_another_directory(tmp_path, monkeypatch, capsys):
    from spineaug.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["study", "--quick", "--status", "--out", str(tmp_path / "r")]) == 0
    assert "study 'quick'" in capsys.readouterr().out


def test_bgv2_arm_without_nnunet_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nnunetv2", None)  # as if the `nnunet` extra were not installed
    with pytest.raises(ValueError, match=r"bgv2-nnunet.*pip install -e '\.\[nnunet\]'"):
        load_study(_study(arms=["nnunet", "bgv2-nnunet"], training={"loader_workers": 1}))


def test_a_validated_study_pickles_without_validating_again(tmp_path, monkeypatch):
    """A submitit worker receives the runner's validated study as it is: the pickle round trip keeps every field
    (``base_dir`` too, which ``model_dump`` leaves out) and runs no validation (no arm is built again)."""
    import pickle

    from spineaug.study import config as C

    study = load_study(_study(sources=["t2w", "ct"], arms=["none", "nnunet"], seeds=[0, 3], arm_seeds={"none": [5]},
                              base_dir=str(tmp_path)))  # fmt: skip

    class Revalidated(Exception):  # not a ValueError: pydantic lets it through
        pass

    def refuse(*args, **kwargs):
        raise Revalidated

    monkeypatch.setattr(C, "_check_arm", refuse)
    for again in (pickle.loads(pickle.dumps(study)), _submitit_round_trip(study, tmp_path)):
        assert again == study and again.base_dir == str(tmp_path)
        assert again.model_dump(mode="json") == study.model_dump(mode="json")
    with pytest.raises(Revalidated):
        C.StudyConfig.model_validate(study.model_dump())  # the check above would see a re-validation


def _submitit_round_trip(study, tmp_path):
    """The study as a submitit job receives it (submitit pickles the call with cloudpickle)."""
    utils = pytest.importorskip("submitit.core.utils")
    from spineaug.study.runner import run_cell

    path = tmp_path / "job.pkl"
    utils.DelayedSubmission(run_cell, study, str(tmp_path), None, False).dump(path)
    return utils.DelayedSubmission.load(path).args[0]


@pytest.mark.parametrize("seed", [True, 1.0, "1", -1, None, 2**64])
def test_study_seeds_follow_the_engine_seed_rule(seed):
    """Seeds are integers (a bool, a float or a string is refused, not converted), >= 0 (they name folders)."""
    for spec in (_study(seeds=[seed]), _study(arm_seeds={"nnunet": [seed]})):
        with pytest.raises(ConfigError, match="seeds"):
            load_study(spec)
    with pytest.raises(ConfigError, match="test_seed_start"):
        load_study(_study(data={"kind": "phantom", "spacing": 2.0, "test_seed_start": seed}))


def test_slurm_options_are_validated_when_built():
    from spineaug.study import SlurmOptions

    assert SlurmOptions(partition="gpu", gpus=0).cpus == 8
    with pytest.raises(ConfigError, match=r"SlurmOptions: cpus: Input should be greater than or equal to 1 \(got 0\)"):
        SlurmOptions(cpus=0)
    with pytest.raises(ConfigError, match="SlurmOptions: mem: Extra inputs are not permitted"):
        SlurmOptions(mem=32)

