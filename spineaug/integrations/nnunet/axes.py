"""Anatomical axes of a spineaug config in nnU-Net's training arrays.

spineaug configs name anatomical axes: 0 left-right, 1 posterior-anterior, 2 inferior-superior (the RAS array axes
spineaug's own loaders deliver), so ``Flip`` of axis 0 is the left-right flip that keeps the vertebra order. nnU-Net
does not reorient: its readers return each file's voxel axes reversed (SimpleITK's ``(z, y, x)``; ``NibabelIO``
transposes to match), and planning then permutes them by the plans' ``transpose_forward`` (the lowest-resolution
axis first). For an axial RAS NIfTI the left-right axis is array axis 2, not 0. :func:`array_axes` finds, from a
case's preprocessed properties (the file's direction cosines or affine) and ``transpose_forward``, the training-array
axis of each anatomical axis; :func:`remap_config` rewrites a config's axis-bearing parameters with it.
"""

from __future__ import annotations

import copy
import pickle
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ANATOMICAL = ("left-right", "posterior-anterior", "inferior-superior")
"""spineaug's axis names, in order (the RAS array axes)."""


def _direction(properties: Mapping[str, Any]) -> np.ndarray | None:
    """(3, 3): column ``j`` is the world direction of the file's voxel axis ``j`` (any scale, any handedness)."""
    if "sitk_stuff" in properties:
        return np.asarray(properties["sitk_stuff"]["direction"], dtype=float).reshape(3, 3)
    if "nibabel_stuff" in properties:
        stuff = properties["nibabel_stuff"]
        affine = stuff.get("reoriented_affine", stuff.get("original_affine"))
        return None if affine is None else np.asarray(affine, dtype=float)[:3, :3]
    return None


def array_axes(properties: Mapping[str, Any], transpose_forward: Sequence[int]) -> tuple[int, int, int] | None:
    """Training-array axis of each anatomical axis (left-right, posterior-anterior, inferior-superior).

    Args:
        properties: A case's properties as nnU-Net's reader returns them and preprocessing stores them
            (``CASE.pkl``): ``sitk_stuff.direction`` (SimpleITKIO) or ``nibabel_stuff`` (NibabelIO, with or without
            reorientation).
        transpose_forward: The plans' ``transpose_forward``.

    Returns:
        ``(lr, pa, is)`` array axes, or ``None`` when the properties hold no orientation or the voxel axes are too
        oblique to name (two voxel axes closest to the same world axis).
    """
    direction = _direction(properties)
    if direction is None or direction.shape != (3, 3):
        return None
    world_of_voxel = np.abs(direction).argmax(0)  # world axis (x: L-R, y: P-A, z: I-S in RAS and LPS alike)
    if sorted(world_of_voxel.tolist()) != [0, 1, 2]:
        return None
    order = [int(a) for a in transpose_forward]
    out = [0, 0, 0]
    for voxel, world in enumerate(world_of_voxel.tolist()):
        out[world] = order.index(2 - voxel)  # readers reverse the voxel axes; planning then permutes them
    return out[0], out[1], out[2]


def dataset_array_axes(
    folder: str | Path, transpose_forward: Sequence[int]
) -> tuple[tuple[int, int, int] | None, str]:
    """:func:`array_axes` over every case of a preprocessed configuration folder (``CASE.pkl`` files).

    Returns:
        The mapping most cases share (``None`` when no case says), and a note for the training log (cases that
        disagree, or why there is no mapping).
    """
    found: Counter = Counter()
    for path in sorted(Path(folder).glob("*.pkl")):
        with path.open("rb") as f:
            properties = pickle.load(f)  # nnU-Net's own preprocessing output, as nnU-Net reads it
        found[array_axes(properties, transpose_forward)] += 1
    if not found:
        return None, f"no case properties (*.pkl) in {folder}: config axes used as array axes"
    mapping, count = found.most_common(1)[0]
    if mapping is None:
        return None, "the cases' orientation is unknown or oblique: config axes used as array axes"
    names = ", ".join(f"{n} -> array axis {a}" for n, a in zip(ANATOMICAL, mapping))
    note = f"anatomical axes: {names} (transpose_forward {list(transpose_forward)})"
    if count < sum(found.values()):
        note += f"; {sum(found.values()) - count} of {sum(found.values())} cases are oriented otherwise"
    return mapping, note


def remap_config(config: Mapping[str, Any], axes: Sequence[int]) -> dict[str, Any]:
    """``config`` with its anatomical axes written as training-array axes.

    Rewritten: every entry's ``axes`` list (``Flip``, ``ThickSlice``...), per-axis rotation ranges (``Spatial``'s
    ``rotation_deg`` and ``Affine``'s ``degrees`` given as three ranges) and ``Affine``'s per-axis ``translate``.
    ``patch_size`` is nnU-Net's (already array axes) and stays; so do isotropic values and ``Affine``'s shear.
    """
    out = copy.deepcopy(dict(config))

    def permuted(values: Sequence[Any]) -> list[Any]:
        result: list[Any] = [None, None, None]
        for anatomical, value in enumerate(values):
            result[axes[anatomical]] = value
        return result

    for entry in out.get("transforms", []):
        if isinstance(entry.get("axes"), list):
            entry["axes"] = sorted(axes[int(a)] for a in entry["axes"])
        for key in ("rotation_deg", "degrees"):
            value = entry.get(key)
            if isinstance(value, list) and len(value) == 3 and all(isinstance(v, list) for v in value):
                entry[key] = permuted(value)
        if entry.get("name") == "Affine" and isinstance(entry.get("translate"), list) and len(entry["translate"]) == 3:
            entry["translate"] = permuted(entry["translate"])
    return out
