"""MONAI integration: a dictionary transform that runs a spineaug pipeline per sample or on a collated batch.

One object, two places to use it:

- per sample, inside ``monai.transforms.Compose`` (data-loader workers): ``data[image]`` is (C, D, H, W) and
  ``data[label]`` (1, D, H, W);
- on a collated batch on the training device, inside the loop (the fast path): (B, C, D, H, W) and
  (B, 1, D, H, W); every sample still draws its own parameters.

Keys follow MONAI's label-aware dictionary transforms (``RandCropByPosNegLabeld(keys, label_key)``): ``keys``
lists every array to augment, ``label_key`` names the label map among them, and every other key is an image. Several
image keys (e.g. ``t1``, ``t2``) are augmented together as the channels of one image, so they stay aligned with each
other and with the label; each comes back with its own channels. The older form ``keys=("image", "label")``
without ``label_key`` still means image and label; ``label_key=None`` means no label.

Randomness follows MONAI: each call draws one seed from the transform's ``self.R`` (so ``set_random_state``, and
MONAI's ``DataLoader`` worker seeding, make runs reproducible) and spineaug draws all parameters from a
``torch.Generator`` seeded with it. ``prob`` (default 1) gates the whole call as MONAI's ``RandomizableTransform``
does (on a collated batch: the whole batch; use the config's per-entry ``p`` for per-sample gating); a call that
does not fire still crops to the config's ``Spatial`` patch (no rotation, scaling or deformation), so shapes never
depend on the gate.

``MetaTensor`` inputs come back as ``MetaTensor`` with their metadata, and the **affine follows the voxels**: the
call's geometric entries are one affine map per sample (crop, flips, rotation, scaling, shear), and the new affine
is ``affine @ map`` (exact for these; for a sample with an elastic deformation only the linear part, which the record
says). Each call appends one entry to ``applied_operations`` (class ``SpineAugd``, ``do_transforms``, and in
``extra_info`` the voxel map, whether it is exact and the preset/config); spineaug's augmentation is not invertible
through MONAI's ``Invertd`` (intensity transforms cannot be undone). Labels keep their dtype (MONAI loads label maps
as float; they are augmented as integers and converted back).

Example:
    >>> import torch
    >>> from spineaug.integrations.monai import SpineAugd
    >>> aug = SpineAugd(keys=["image", "label"], label_key="label", preset="nnunet", patch_size=(16, 16, 16))
    >>> out = aug.set_random_state(0)({"image": torch.randn(1, 24, 24, 24), "label": torch.zeros(1, 24, 24, 24)})
    >>> tuple(out["image"].shape), tuple(out["label"].shape)
    ((1, 16, 16, 16), (1, 16, 16, 16))
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import torch

import spineaug
from spineaug.integrations._extras import require
from spineaug.transforms import RandomSpatial
from spineaug.validation import NoEffectWarning

require("monai", "monai", "spineaug.integrations.monai")

from monai.data import MetaTensor  # noqa: E402
from monai.transforms import MapTransform, Randomizable  # noqa: E402
from monai.utils import TraceKeys  # noqa: E402

from spineaug.integrations._geometry import voxel_maps  # noqa: E402

__all__ = ["SpineAugd"]


_SECOND_KEY = "__second_key__"
"""Default ``label_key``: the older form, where a second key of ``keys`` is the label."""


class SpineAugd(Randomizable, MapTransform):
    """Apply a spineaug preset or config to the images and label map of a MONAI data dictionary.

    Args:
        keys: The keys to augment: the images (one or more; several are stacked as channels) and the label.
        label_key: The label map's key (it must be one of ``keys``); ``None``: no label. Left out: with two keys,
            the second is the label (the older form ``keys=("image", "label")``), with one key there is none.
        preset: A preset name (see :func:`spineaug.presets`); the default is ``xdomain`` when no config is given.
        config: A config dict or JSON/YAML file instead of ``preset``.
        patch_size: Output patch (D, H, W) of the ``Spatial`` entry (``None``: keep the input size).
        prob: Probability that a call augments (MONAI's ``prob``); otherwise it only crops to the patch.
        allow_missing_keys: Pass a dict without the label key through with the images augmented alone (a preset
            that needs a label still fails, naming the transform).
    """

    def __init__(
        self,
        keys: Sequence[Hashable] | Hashable = ("image", "label"),
        preset: str | None = None,
        config: str | Path | dict[str, Any] | None = None,
        *,
        label_key: Hashable | None = _SECOND_KEY,
        patch_size: tuple[int, int, int] | None = None,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if label_key == _SECOND_KEY:
            if len(keys) not in (1, 2):
                raise ValueError(f"keys {keys!r}: with more than two keys, name the label with label_key= "
                                 "(or label_key=None for images only)")  # fmt: skip
            label_key = keys[1] if len(keys) == 2 else None
        if label_key is not None and label_key not in keys:
            raise ValueError(f"label_key {label_key!r} must be one of keys {keys!r}: spineaug moves the label with "
                             "the images, so it is augmented and written back")  # fmt: skip
        if not keys or keys == (label_key,):
            raise ValueError(f"keys {keys!r} name no image to augment")
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys {keys!r}: a key is named twice (it would be augmented as two channels)")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        if allow_missing_keys and label_key is None:
            warnings.warn("SpineAugd: allow_missing_keys has no effect without a label key (only the label may be "
                          "missing; every image key is required)", NoEffectWarning, stacklevel=2)  # fmt: skip
        MapTransform.__init__(self, keys, allow_missing_keys)
        if preset is not None and config is not None:
            raise ValueError("give either preset= or config=, not both")
        if config is not None:
            self.pipeline = spineaug.Pipeline.from_config(config, patch_size=patch_size, check_finite=False)
        else:
            self.pipeline = spineaug.Pipeline.from_preset(preset or "xdomain", patch_size=patch_size,
                                                          check_finite=False)  # fmt: skip
        self.label_key = label_key
        self.image_keys = tuple(k for k in keys if k != label_key)
        self.prob = float(prob)
        self.crop_only = _crop_only(self.pipeline)
        if config is None:
            self.source = f"preset {preset or 'xdomain'}"
        else:
            self.source = "config dict" if isinstance(config, dict) else f"config {config}"
        self._seed = 0
        self._do_transform = True
        if self.pipeline.seed is not None:
            warnings.warn(f"SpineAugd: the config's seed ({self.pipeline.seed}) has no effect here: set_random_state and MONAI's worker "
                          "seeding draw each call's seed", NoEffectWarning, stacklevel=2)  # fmt: skip

    def randomize(self, data: Any = None) -> None:
        """Draw whether this call fires (only when ``prob < 1``) and its ``torch.Generator`` seed from ``self.R``."""
        self._do_transform = self.prob >= 1.0 or bool(self.R.rand() < self.prob)
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        missing = [k for k in self.image_keys if k not in data]
        if missing:
            raise KeyError(f"SpineAugd: image key {missing[0]!r} is missing from the data (keys: "
                           f"{sorted(map(str, data))})")  # fmt: skip
        label_key = self.label_key
        if label_key is not None and label_key not in data:
            if not self.allow_missing_keys:
                raise KeyError(f"SpineAugd: label key {label_key!r} is missing from the data (keys: "
                               f"{sorted(map(str, data))}); pass allow_missing_keys=True to augment images "
                               "alone")  # fmt: skip
            label_key = None
        images = [data[k] for k in self.image_keys]
        first = images[0]
        batched = _ndim(first) == 5
        if not batched and _ndim(first) != 4:
            raise ValueError(f"SpineAugd: {self.image_keys[0]!r} must be (C, D, H, W) per sample or (B, C, D, H, W) "
                             f"for a batch, got shape {tuple(first.shape)}")  # fmt: skip
        for k, im in zip(self.image_keys, images):
            if _ndim(im) != _ndim(first) or tuple(im.shape[-3:]) != tuple(first.shape[-3:]) or (
                    batched and im.shape[0] != first.shape[0]):  # fmt: skip
                raise ValueError(f"SpineAugd: image {k!r} has shape {tuple(im.shape)} but {self.image_keys[0]!r} "
                                 f"has {tuple(first.shape)}; images augmented together need the same grid")
        parts = [_plain(im) for im in images]
        parts = [p if p.is_floating_point() else p.float() for p in parts]
        dtype = reduce(torch.promote_types, [p.dtype for p in parts])  # promote_types takes two dtypes at a time
        img = parts[0] if len(parts) == 1 else torch.cat([p.to(dtype) for p in parts], dim=-4)
        label = data[label_key] if label_key is not None else None
        lbl = None if label is None else _plain(label)
        if lbl is not None:
            if _ndim(label) != img.ndim:
                raise ValueError(f"SpineAugd: {label_key!r} has shape {tuple(label.shape)} but "
                                 f"{self.image_keys[0]!r} has {tuple(first.shape)}")  # fmt: skip
            if lbl.is_floating_point():  # MONAI loads label maps as float: accept whole numbers only
                if not bool((lbl == lbl.round()).all()):  # a host sync, once per call, on the loader's tensor
                    raise ValueError(f"SpineAugd: {label_key!r} holds non-integer values; a label map must be integer")
                lbl = lbl.round()
            lbl = lbl.long()
            lbl = lbl.to(img.device)
        if not batched:
            img, lbl = img[None], None if lbl is None else lbl[None]
        self.randomize()
        pipeline = self.pipeline if self._do_transform else self.crop_only
        generator = torch.Generator().manual_seed(self._seed)
        tracked = any(isinstance(x, MetaTensor) for x in (*images, label))
        out_img, out_lbl, params = pipeline.to(img.device)(img, lbl, generator=generator, return_params=True)
        maps = exact = None
        if tracked:
            maps, exact = voxel_maps(pipeline, img, lbl, params)
        if not batched:
            out_img, out_lbl = out_img[0], None if out_lbl is None else out_lbl[0]
        result = dict(data)
        start = 0
        for k, im, part in zip(self.image_keys, images, parts):
            c = part.shape[-4]
            piece = out_img[..., start:start + c, :, :, :].to(part.dtype)
            start += c
            result[k] = self._like(piece, im, maps, exact, batched)
        if out_lbl is not None:
            result[label_key] = self._like(out_lbl.to(_dtype(label)), label, maps, exact, batched)
        return result

    def _like(self, out: torch.Tensor, ref: Any, maps: Any, exact: Any, batched: bool) -> Any:
        """``out`` with ``ref``'s metadata when ``ref`` is a MetaTensor: affine moved with the voxels, the call
        recorded in ``applied_operations`` (copies: the input is left unchanged)."""
        if not isinstance(ref, MetaTensor):
            return out
        result = MetaTensor(out)
        result.copy_meta_from(ref, copy_attr=True)
        affine = ref.affine
        v = maps.to(affine.device, torch.float64)
        new = affine.to(torch.float64) @ (v if batched else v[0])
        result.affine = new.to(affine.dtype)
        record = {
            TraceKeys.CLASS_NAME: type(self).__name__, TraceKeys.ID: id(self),
            TraceKeys.ORIG_SIZE: tuple(ref.shape[-3:]), TraceKeys.DO_TRANSFORM: self._do_transform,
            TraceKeys.TRACING: True, TraceKeys.LAZY: False,
            TraceKeys.EXTRA_INFO: {"augmentation": self.source, "voxel_map": v.tolist(),
                                   "affine_exact": bool(exact.all()), "invertible": False},
        }  # fmt: skip
        if batched and ref.is_batch and len(ref.applied_operations) == out.shape[0]:
            # a collated batch keeps one list per sample (MONAI writes "none" for a sample with none yet)
            per_sample = [[] if ops == TraceKeys.NONE else list(ops) for ops in ref.applied_operations]
            result.applied_operations = [
                [*ops, {**record, TraceKeys.EXTRA_INFO: {**record[TraceKeys.EXTRA_INFO], "voxel_map": v[i].tolist(),
                                                         "affine_exact": bool(exact[i])}}]
                for i, ops in enumerate(per_sample)
            ]  # fmt: skip
        elif not batched:
            record[TraceKeys.EXTRA_INFO]["voxel_map"] = v[0].tolist()
            result.applied_operations = [*ref.applied_operations, record]
        return result


def _crop_only(pipeline: spineaug.Pipeline) -> spineaug.Pipeline:
    """What a call that does not fire (``prob``) runs: the pipeline's ``Spatial`` crop, nothing else."""
    crop = spineaug.Pipeline(*pipeline.find(RandomSpatial), check_finite=False)
    return crop.replace(RandomSpatial, p_rotation=0.0, p_scale=0.0, p_elastic=0.0) if crop.transforms else crop


def _ndim(x: Any) -> int:
    return len(x.shape)


def _plain(x: Any) -> torch.Tensor:
    """A plain tensor view of a MetaTensor, tensor or array (no metadata tracking while spineaug runs)."""
    if isinstance(x, MetaTensor):
        return x.as_tensor()
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def _dtype(x: Any) -> torch.dtype:
    return x.dtype if isinstance(x, torch.Tensor) else torch.as_tensor(x).dtype

