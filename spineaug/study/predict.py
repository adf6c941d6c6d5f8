"""Segment NIfTI files with a study model; label maps are written on each input's own grid, affine and header.

Inputs follow nnU-Net's naming, so a folder that ``nnUNetv2_predict`` reads works here too, and the outputs are
named as nnU-Net names them: the channels of one case are ``CASE_0000.nii.gz``, ``CASE_0001.nii.gz``, ... and its
label map is ``CASE.nii.gz``. A file without a channel suffix is a one-channel case of its own (same name out).
Each input is read in RAS at the model's spacing and z-scored exactly as in training (each channel on its own),
segmented by sliding window (optionally averaged over mirrored copies, nnU-Net's test-time augmentation), and the
class map is mapped back (nearest neighbour, through the affines) onto the input's voxel grid in its original
orientation.

Model files are read with ``torch.load(weights_only=True)``: tensors and plain data only, nothing is unpickled. A
``model.pt`` that holds other Python objects (written by an older spineaug) is refused with a message; pass
``trusted=True`` (``--trust-model``) to load such a file you trust.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from scipy.ndimage import affine_transform
from tqdm.auto import tqdm

from spineaug import _io
from spineaug.data.nifti import load_nifti, resample, robust_zscore
from spineaug.study.config import Model
from spineaug.study.train import N_CLASSES, build_model, predict_volume

NIFTI_SUFFIXES = (".nii.gz", ".nii")
CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
"""nnU-Net's channel suffix: ``CASE_0000`` is channel 0 of case ``CASE``."""


def read_model_file(path: str | Path, device: torch.device | None = None, *, trusted: bool = False) -> Any:
    """``torch.load`` a study model file safely (``weights_only=True``); ``trusted`` also loads older files that
    hold other Python objects (that unpickles them: only for files you trust)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if trusted:
            return torch.load(path, map_location=device, weights_only=False)
        raise ValueError(
            f"{path}: holds Python objects besides tensors and plain data (a model.pt written by an older spineaug, "
            f"or not a spineaug file), so it is not loaded without unpickling them ({str(exc).splitlines()[0]}). "
            "If you trust the file, pass --trust-model (predict(..., trusted=True))."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from None


def load_model(path: str | Path, device: torch.device | None = None, *, trusted: bool = False):
    """A study model file (``cells/*/model.pt``) -> ``(model, spec)``; clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    device = device or torch.device("cpu")
    state = read_model_file(path, device, trusted=trusted)
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


def _nifti_stem(path: Path) -> tuple[str, str]:
    suffix = next(sfx for sfx in NIFTI_SUFFIXES if path.name.endswith(sfx))
    return path.name[: -len(suffix)], suffix


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


def group_cases(files: Sequence[Path]) -> dict[str, list[Path]]:
    """Files grouped by case, channels in order: ``CASE_0000``, ``CASE_0001``... (nnU-Net); another name is a
    one-channel case of its own. Output file name -> input files."""
    cases: dict[str, dict[int, Path]] = {}
    for f in files:
        stem, suffix = _nifti_stem(f)
        m = CHANNEL.match(stem)
        case, channel = (m["case"], int(m["channel"])) if m else (stem, -1)
        out = case + suffix
        if out in cases and (channel == -1 or -1 in cases[out]):
            raise ValueError(f"{f.name} and {[p.name for p in cases[out].values()]} would write the same label map "
                             f"{out}")  # fmt: skip
        cases.setdefault(out, {})[channel] = f
    grouped = {}
    for out, channels in cases.items():
        numbers = sorted(channels)
        if numbers != [-1] and numbers != list(range(len(numbers))):
            raise ValueError(f"case {out}: channels {[f'{n:04d}' for n in numbers]}; nnU-Net numbers a case's "
                             "channels _0000, _0001, ... without gaps")  # fmt: skip
        grouped[out] = [channels[n] for n in numbers]
    return grouped


def _mirrored(model, image: torch.Tensor, spec: dict, device: torch.device, axes: Sequence[int]) -> torch.Tensor:
    """Class map averaged over the softmax of every mirrored copy along ``axes`` (nnU-Net's test-time mirroring)."""
    from monai.inferers import sliding_window_inference  # optional: monai (study extra)

    roi, overlap, sw = tuple(spec["patch_size"]), spec.get("overlap", 0.25), spec.get("sw_batch_size", 2)
    x = image[None].to(device)
    total, count = None, 0
    with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
        for k in range(len(axes) + 1):
            for subset in combinations(axes, k):
                dims = [a + 2 for a in subset]
                view = x.flip(dims) if dims else x
                logits = sliding_window_inference(view, roi, sw, model, overlap=overlap, mode="gaussian",
                                                  padding_mode="constant")  # fmt: skip
                prob = torch.softmax(logits.float(), 1)
                prob = prob.flip(dims) if dims else prob
                total = prob if total is None else total + prob
                count += 1
    return (total / count).argmax(1)[0].cpu()


def check_case(files: Sequence[Path], in_channels: int, name: str):
    """The first channel's NIfTI image (header only), once the headers show that the case has the model's channel
    count, is 3-D and that its channels share one grid."""
    if len(files) != in_channels:
        raise ValueError(f"{name}: {len(files)} channel file(s) ({', '.join(f.name for f in files)}) but the "
                         f"model takes {in_channels}")  # fmt: skip
    original = nib.load(str(files[0]))
    if len(original.shape) != 3:
        raise ValueError(f"{files[0]}: expected a 3-D image, got shape {original.shape}")
    for f in files[1:]:
        other = nib.load(str(f))
        if other.shape != original.shape or not np.allclose(other.affine, original.affine, atol=1e-4):
            raise ValueError(f"{f.name}: shape {other.shape} / affine differ from {files[0].name}'s; the channels of a "
                             "case must share one grid")  # fmt: skip
    return original


def segment_case(model, spec: dict, files: Sequence[Path], target: Path, device: torch.device, *,
                 mirror_axes: Sequence[int] = ()) -> Path:  # fmt: skip
    """Segment one case (its channel files in order); writes ``target`` on the first channel's grid."""
    files = list(files)
    original = check_case(files, spec["in_channels"], target.name)
    volumes = [resample(load_nifti(f, reorient=True, dtype=np.float32), spec["spacing"], order=1) for f in files]
    image = np.stack([robust_zscore(v.data, percentiles=tuple(spec["zscore_percentiles"])) for v in volumes])
    if mirror_axes:
        pred = _mirrored(model, torch.from_numpy(image), spec, device, mirror_axes)
    else:
        pred = predict_volume(model, torch.from_numpy(image), spec, device)
    pred = pred.numpy().astype(np.uint8)
    # model voxel <- world <- input voxel; nearest neighbour keeps label values exact
    m = np.linalg.inv(volumes[0].affine) @ original.affine
    out = affine_transform(pred, m[:3, :3], offset=m[:3, 3], output_shape=original.shape, order=0, mode="constant",
                           cval=0)  # fmt: skip
    header = original.header.copy()
    header.set_data_dtype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(out.astype(np.uint8), original.affine, header), str(target))
    return target


def segment_file(model, spec: dict, path: Path, out_dir: Path, device: torch.device) -> Path:
    """Segment one one-channel NIfTI file; returns the written label file (nnU-Net's name, in ``out_dir``)."""
    (name, files), = group_cases([path]).items()
    return segment_case(model, spec, files, out_dir / name, device)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else the CPU; ``"cuda"`` without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                         "device(s)")  # fmt: skip
    return device


def predict(model_path: str | Path, inputs: str | Path, output: str | Path, *, progress: bool = True,
            device: str | torch.device | None = None, mirror_axes: Sequence[int] = (),
            trusted: bool = False) -> list[Path]:  # fmt: skip
    """Segment a file or every case of a folder (nnU-Net naming, see the module docstring); returns the written
    label files.

    Args:
        device: ``cpu``, ``cuda`` (``cuda:1``...) or ``auto``/``None`` (CUDA when available).
        mirror_axes: Test-time mirroring along these axes of the model's RAS grid (0 left-right, 1
            posterior-anterior, 2 inferior-superior), every combination averaged, as nnU-Net does; empty: none.
            The study's presets flip axis 0 only, so ``(0,)`` is the one its models were trained for.
        trusted: Load an older model file that holds other Python objects (unpickling it).
    """
    if any(a not in (0, 1, 2) for a in mirror_axes) or len(set(mirror_axes)) != len(mirror_axes):
        raise ValueError(f"mirror axes must be distinct values of 0, 1, 2, got {list(mirror_axes)}")
    _io.check_writable_folder(output, "--out")  # before loading the model and reading the inputs
    device = resolve_device(device)
    cases = group_cases(_inputs(Path(inputs)))  # a missing or misnamed input shows before the model loads
    out = Path(output).resolve()
    if any(f.resolve().parent == out for files in cases.values() for f in files):
        raise ValueError(f"--out {output} is the input folder: the label maps would overwrite the images")
    model, spec = load_model(model_path, device, trusted=trusted)
    for name, files in cases.items():  # from the headers: a bad case fails now, not after the cases before it
        check_case(files, spec["in_channels"], name)
    items = list(cases.items())
    if progress:
        items = tqdm(items, desc="predict", unit="case")
    return [segment_case(model, spec, files, Path(output) / name, device, mirror_axes=tuple(mirror_axes))
            for name, files in items]  # fmt: skip
