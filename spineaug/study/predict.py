"""Segment NIfTI files with a study model; label maps are written on each input's own grid, affine and header.

Each input is read in RAS at the model's spacing and z-scored exactly as in training, segmented by sliding
window, and the class map is mapped back (nearest neighbour, through the affines) onto the input's voxel grid in
its original orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def load_model(path: str | Path, device: torch.device | None = None):
    """A study model file (``cells/*/model.pt``) -> ``(model, spec)``; clear errors for anything else."""
    from spineaug.study.config import Model
    from spineaug.study.train import N_CLASSES, build_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    device = device or torch.device("cpu")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "spec" not in state or "model" not in state:
        raise ValueError(f"{path}: not a spineaug study model (expected the model.pt of a finished study cell)")
    spec = state["spec"]
    if spec.get("n_classes") != N_CLASSES:
        raise ValueError(f"{path}: model has {spec.get('n_classes')} classes, this version predicts {N_CLASSES}")
    model = build_model(Model.model_validate(spec["model"]), spec["in_channels"]).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the architecture in its spec: {exc}") from None
    model.eval()
    return model, spec


def _inputs(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(NIFTI_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"no .nii/.nii.gz files in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise ValueError(f"input must be a .nii or .nii.gz file, got {path}")
    return [path]


def segment_file(model, spec: dict, path: Path, out_dir: Path, device: torch.device) -> Path:
    """Segment one NIfTI file; returns the written label file (same name, in ``out_dir``)."""
    import nibabel as nib
    from scipy.ndimage import affine_transform

    from spineaug.data.nifti import load_nifti, resample, robust_zscore
    from spineaug.study.train import predict_volume

    original = nib.load(str(path))
    if len(original.shape) != 3:
        raise ValueError(f"{path}: expected a 3-D image, got shape {original.shape}")
    volume = resample(load_nifti(path, reorient=True, dtype=np.float32), spec["spacing"], order=1)
    image = robust_zscore(volume.data, percentiles=tuple(spec["zscore_percentiles"]))[None]
    pred = predict_volume(model, torch.from_numpy(image), spec, device).numpy().astype(np.uint8)
    # model voxel <- world <- input voxel; nearest neighbour keeps label values exact
    m = np.linalg.inv(volume.affine) @ original.affine
    out = affine_transform(pred, m[:3, :3], offset=m[:3, 3], output_shape=original.shape, order=0, mode="constant",
                           cval=0)  # fmt: skip
    header = original.header.copy()
    header.set_data_dtype(np.uint8)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nib.save(nib.Nifti1Image(out.astype(np.uint8), original.affine, header), str(target))
    return target


def predict(model_path: str | Path, inputs: str | Path, output: str | Path, *, progress: bool = True) -> list[Path]:
    """Segment a file or every NIfTI file of a folder; returns the written label files."""
    from spineaug import _io

    _io.check_writable_folder(output, "--output")  # before loading the model and reading the inputs
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, spec = load_model(model_path, device)
    files = _inputs(Path(inputs))
    out = Path(output).resolve()
    if any(f.resolve().parent == out for f in files):
        raise ValueError(f"--output {output} is the input folder: the label maps would overwrite the images")
    if progress:
        from tqdm.auto import tqdm

        files = tqdm(files, desc="predict", unit="file")
    return [segment_file(model, spec, f, Path(output), device) for f in files]
