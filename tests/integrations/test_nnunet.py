"""nnU-Net v2 integration: install command, config checks, and (slow) a real plan/train/predict run on phantom data."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nnunetv2")

from spineaug import cli  # noqa: E402
from spineaug.integrations import nnunet  # noqa: E402
from spineaug.integrations.nnunet import installer as install_mod  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_install_is_idempotent_and_uninstall_removes_only_its_file(tmp_path, capsys):
    other = tmp_path / "nnUNetTrainerOther.py"
    other.write_text("x = 1\n")
    assert cli.main(["nnunet-install", "--folder", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    path = tmp_path / install_mod.MODULE
    assert f"wrote {path}" in out and install_mod.CONTENT in out
    assert cli.main(["nnunet-install", "--folder", str(tmp_path)]) == 0
    assert "already installed" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, install_mod.MODULE])
    assert cli.main(["nnunet-install", "--uninstall", "--folder", str(tmp_path)]) == 0
    assert f"removed {path}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [other.name] and other.read_text() == "x = 1\n"


def test_install_refuses_foreign_file_and_unwritable_folder(tmp_path, capsys):
    (tmp_path / install_mod.MODULE).write_text("# mine\n")
    with pytest.raises(FileExistsError, match="not written by spineaug"):
        nnunet.install(tmp_path)
    with pytest.raises(FileExistsError, match="not written by spineaug"):
        nnunet.uninstall(tmp_path)
    assert (tmp_path / install_mod.MODULE).read_text() == "# mine\n"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert cli.main(["nnunet-install", "--folder", str(locked)]) == 2
        assert "not writable" in capsys.readouterr().err
        assert not any(locked.iterdir())
    finally:
        locked.chmod(0o755)


def test_installed_module_exposes_the_trainers(tmp_path):
    path, _ = nnunet.install(tmp_path)
    code = f"import runpy; ns = runpy.run_path({str(path)!r}); print(sorted(k for k in ns if k.startswith('nnUNet')))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    names = eval(out)  # noqa: S307 (our own printed list)
    assert {"nnUNetTrainerSpineAug", "nnUNetTrainerSpineAugNnunet", "nnUNetTrainerSpineAugPlus",
            "nnUNetTrainerSpineAugConfig", "nnUNetTrainerSpineAug_5epochs"} <= set(names)  # fmt: skip
    assert "nnUNetTrainer" not in names  # only ours: nnU-Net's own lookup must not find its base class here


def test_config_source_is_validated_before_training(tmp_path, monkeypatch):
    from spineaug.integrations.nnunet import trainers

    assert trainers.flip_axes(trainers.load_source("xdomain")) == (0,)
    assert trainers.flip_axes(trainers.load_source("nnunet")) == (0, 1, 2)
    assert trainers.flip_axes(trainers.load_source("none")) is None
    with pytest.raises(ValueError, match="neither a preset"):
        trainers.load_source("no-such-preset")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"transforms": [{"name": "Gamma", "p": 3}]}))
    with pytest.raises(ValueError, match="Gamma"):
        trainers.load_source(str(bad))
    # The trainer fails in __init__, before nnU-Net creates any output folder.
    monkeypatch.setenv("SPINEAUG_CONFIG", str(bad))
    with pytest.raises(ValueError, match="Gamma"):
        trainers.nnUNetTrainerSpineAugConfig({}, "3d_fullres", 0, {})
    monkeypatch.delenv("SPINEAUG_CONFIG")
    with pytest.raises(ValueError, match="SPINEAUG_CONFIG"):
        trainers.nnUNetTrainerSpineAugConfig({}, "3d_fullres", 0, {})
    monkeypatch.setenv("SPINEAUG_NNUNET_ITERATIONS", "zero")
    with pytest.raises(ValueError, match="SPINEAUG_NNUNET_ITERATIONS"):
        trainers.nnUNetTrainerSpineAug({}, "3d_fullres", 0, {})


def test_batch_pipeline_reads_enlarged_patch_and_builds_deep_supervision_targets():
    import torch

    from spineaug.integrations.nnunet import trainers

    pipe, read = trainers.batch_pipeline(trainers.load_source("xdomain"), (16, 16, 16))
    assert all(r > 16 for r in read)
    image = torch.randn(2, 1, *read)
    label = torch.randint(0, 4, (2, 1, *read), dtype=torch.int16)
    out, lbl = pipe(image, label, generator=torch.Generator().manual_seed(0))
    assert out.shape[2:] == lbl.shape[2:] == (16, 16, 16) and lbl.dtype == torch.int16
    targets = trainers.deep_supervision_targets(lbl, [[1, 1, 1], [0.5, 0.5, 0.5]])
    assert targets[0] is lbl and targets[1].shape == (2, 1, 8, 8, 8) and targets[1].dtype == torch.int16
    assert set(targets[1].unique().tolist()) <= set(lbl.unique().tolist())


def test_thin_slab_patches_rotate_in_plane_only():
    """Sagittal MRI plans (16 x 128 x 128): rotations about the slab axis only, so the read stays thin through it."""
    import torch

    from spineaug.integrations.nnunet import trainers

    assert trainers.is_anisotropic((16, 128, 128)) and not trainers.is_anisotropic((64, 64, 64))
    pipe, read = trainers.batch_pipeline(trainers.load_source("nnunet"), (8, 32, 32))
    spatial = next(e for e in pipe.config()["transforms"] if e["name"] == "Spatial")
    assert spatial["rotation_deg"] == [[-180.0, 180.0], [0.0, 0.0], [0.0, 0.0]]
    assert read[0] <= 12 and read[1] > 32  # only the isotropic zoom-out (<= 1.4) enlarges the slab axis
    out, _ = pipe(torch.randn(2, 1, *read), torch.zeros(2, 1, *read, dtype=torch.long),
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.shape[2:] == (8, 32, 32)


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found")
    return found


@pytest.mark.slow
def test_nnunet_plan_train_predict_on_phantom(tmp_path):
    """A real nnU-Net v2 run: plan, preprocess, train a spineaug trainer on the CPU, predict one case."""
    from spineaug import phantom

    raw, pre, res, ext = (tmp_path / n for n in ("raw", "pre", "res", "ext"))
    roots = phantom.write_datasets(raw, "ct", 2, 0, spacing=4.0, shape=(32, 40, 64), dataset_id=951, progress=False)
    dataset = roots["ct"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(res), nnUNet_compile="f",
               nnUNet_def_n_proc="1", nnUNet_extTrainer=str(ext), SPINEAUG_NNUNET_ITERATIONS="3")  # fmt: skip
    env.pop("SPINEAUG_CONFIG", None)

    def run(*args: str, **extra: str) -> str:
        proc = subprocess.run(args, env=dict(env, **extra), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    run(_tool("nnUNetv2_plan_and_preprocess"), "-d", "951", "-c", "3d_fullres", "-np", "1", "-npfp", "1")
    plans_file = pre / dataset.name / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    config = plans["configurations"]["3d_fullres"]  # a small patch and network keep the CPU run short
    config.update(patch_size=[32, 32, 32], batch_size=2)
    config["architecture"]["arch_kwargs"]["features_per_stage"] = [4, 8, 16, 32]
    plans_file.write_text(json.dumps(plans, indent=1))

    # nnU-Net finds the trainer through the module `spineaug nnunet-install` writes (here into nnUNet_extTrainer).
    ext.mkdir()
    assert cli.main(["nnunet-install", "--folder", str(ext)]) == 0
    trainer = "nnUNetTrainerSpineAug_1epoch"
    run(_tool("nnUNetv2_train"), "951", "3d_fullres", "all", "-tr", trainer, "-device", "cpu", nnUNet_n_proc_DA="0")

    fold = res / dataset.name / f"{trainer}__nnUNetPlans__3d_fullres" / "fold_all"
    assert (fold / "checkpoint_final.pth").is_file()
    saved = json.loads((fold / "spineaug_augmentation.json").read_text())
    assert saved["source"] == "xdomain" and saved["final_patch_size"] == [32, 32, 32]
    # the phantom is axial RAS: SimpleITK reads (z, y, x), so xdomain's left-right flip is array axis 2
    assert saved["inference_mirroring_axes"] == [2]
    assert saved["array_axes"] == {"left-right": 2, "posterior-anterior": 1, "inferior-superior": 0}
    assert next(e for e in saved["config"]["transforms"] if e["name"] == "Flip")["axes"] == [2]
    assert any(e["name"] == "Spatial" and e["crop"] == "center" for e in saved["config"]["transforms"])
    log = next(fold.glob("training_log_*.txt")).read_text()
    losses = [float(v) for v in re.findall(r"train_loss (\S+)", log)]
    assert losses and all(math.isfinite(v) for v in losses)

    import torch

    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == trainer and tuple(checkpoint["inference_allowed_mirroring_axes"]) == (2,)

    case = sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))[0]
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    shutil.copy(case, inp / case.name)
    run(_tool("nnUNetv2_predict"), "-i", str(inp), "-o", str(out), "-d", "951", "-c", "3d_fullres", "-tr", trainer,
        "-f", "all", "-device", "cpu", "-npp", "1", "-nps", "1")  # fmt: skip

    import nibabel as nib
    import numpy as np

    predicted = out / case.name.replace("_0000.nii.gz", ".nii.gz")
    ref = nib.load(case)
    seg = nib.load(predicted)
    assert seg.shape == ref.shape and np.allclose(seg.affine, ref.affine, atol=1e-4)
    values = np.unique(np.asarray(seg.dataobj))
    assert set(values.tolist()) <= {0, 1, 2, 3}


def test_workers_only_crop_and_map_padding_label():
    import torch

    from spineaug.integrations.nnunet import trainers

    transforms = trainers.nnUNetTrainerSpineAug.get_training_transforms((16, 16, 16), None, [[1, 1, 1]], (0,), False)
    image = torch.randn(1, 20, 20, 20)
    seg = torch.randint(-1, 3, (1, 20, 20, 20), dtype=torch.int16)
    out = transforms(image=image.clone(), segmentation=seg.clone())
    assert torch.equal(out["image"], image)  # no augmentation, no crop to the final patch in the workers
    assert torch.equal(out["segmentation"], seg.clamp_min(0))
