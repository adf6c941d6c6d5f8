"""MONAI integration: a dictionary transform that runs a spineaug pipeline per sample or on a collated batch.

One object, two places to use it:

- per sample, inside ``monai.transforms.Compose`` (data-loader workers): ``data[image]`` is (C, D, H, W) and
  ``data[label]`` (1, D, H, W);
- on a collated batch on the training device, inside the loop (the fast path): (B, C, D, H, W) and
  (B, 1, D, H, W); every sample still draws its own parameters.

Randomness follows MONAI: each call draws one seed from the transform's ``self.R`` (so ``set_random_state``, and
MONAI's ``DataLoader`` worker seeding, make runs reproducible) and spineaug draws all parameters from a
``torch.Generator`` seeded with it. ``MetaTensor`` inputs come back as ``MetaTensor`` with their metadata (affine,
spacing, filename...) unchanged: spineaug works in array axes and does not rewrite the affine, so after a patch crop,
rotation or flip the affine no longer describes the augmented voxel grid (harmless for training; do not save or
invert augmented samples as if it were exact). Labels keep their dtype (MONAI loads label maps
as float; they are augmented as integers and converted back).

Example:
    >>> import torch
    >>> from spineaug.integrations.monai import SpineAugd
    >>> aug = SpineAugd(keys=("image", "label"), preset="nnunet", patch_size=(16, 16, 16)).set_random_state(0)
    >>> out = aug({"image": torch.randn(1, 24, 24, 24), "label": torch.zeros(1, 24, 24, 24)})
    >>> tuple(out["image"].shape), tuple(out["label"].shape)
    ((1, 16, 16, 16), (1, 16, 16, 16))
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

import spineaug
from spineaug.integrations._extras import require
from spineaug.validation import NoEffectWarning

require("monai", "monai", "spineaug.integrations.monai")

from monai.data import MetaTensor  # noqa: E402
from monai.transforms import MapTransform, Randomizable  # noqa: E402

__all__ = ["SpineAugd"]


class SpineAugd(Randomizable, MapTransform):
    """Apply a spineaug preset or config to ``data[keys[0]]`` (image) and ``data[keys[1]]`` (label, optional).

    Args:
        keys: ``(image_key, label_key)`` or ``(image_key,)``.
        preset: A preset name (see :func:`spineaug.presets`); the default is ``xdomain`` when no config is given.
        config: A config dict or JSON/YAML file instead of ``preset``.
        patch_size: Output patch (D, H, W) of the ``Spatial`` entry (``None``: keep the input size).
        allow_missing_keys: Pass a dict without the label key through with the image augmented alone (a preset
            that needs a label still fails, naming the transform).
    """

    def __init__(
        self,
        keys: Sequence[Hashable] = ("image", "label"),
        preset: str | None = None,
        config: str | Path | dict[str, Any] | None = None,
        *,
        patch_size: tuple[int, int, int] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if len(keys) not in (1, 2):
            raise ValueError(f"keys must be (image_key,) or (image_key, label_key), got {keys!r}")
        MapTransform.__init__(self, keys, allow_missing_keys)
        if preset is not None and config is not None:
            raise ValueError("give either preset= or config=, not both")
        if config is not None:
            self.pipeline = spineaug.Pipeline.from_config(config, patch_size=patch_size, check_finite=False)
        else:
            self.pipeline = spineaug.Pipeline.from_preset(preset or "xdomain", patch_size=patch_size,
                                                          check_finite=False)  # fmt: skip
        self._seed = 0
        if self.pipeline.seed is not None:
            warnings.warn(f"SpineAugd: the config's seed ({self.pipeline.seed}) has no effect here: set_random_state and MONAI's worker "
                          "seeding draw each call's seed", NoEffectWarning, stacklevel=2)  # fmt: skip

    def randomize(self, data: Any = None) -> None:
        """Draw the seed of this call's ``torch.Generator`` from ``self.R`` (MONAI's per-transform RNG)."""
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        image_key = self.keys[0]
        label_key = self.keys[1] if len(self.keys) > 1 else None
        if image_key not in data:
            raise KeyError(f"SpineAugd: image key {image_key!r} is missing from the data (keys: {sorted(map(str, data))})")
        if label_key is not None and label_key not in data and not self.allow_missing_keys:
            raise KeyError(f"SpineAugd: label key {label_key!r} is missing from the data (keys: "
                           f"{sorted(map(str, data))}); pass allow_missing_keys=True to augment images alone")  # fmt: skip
        image = data[image_key]
        label = data[label_key] if label_key is not None and label_key in data else None
        batched = _ndim(image) == 5
        if not batched and _ndim(image) != 4:
            raise ValueError(f"SpineAugd: {image_key!r} must be (C, D, H, W) per sample or (B, C, D, H, W) for a "
                             f"batch, got shape {tuple(image.shape)}")  # fmt: skip
        img = _plain(image)
        if not img.is_floating_point():
            img = img.float()
        lbl = None if label is None else _plain(label)
        if lbl is not None:
            if _ndim(label) != img.ndim:
                raise ValueError(f"SpineAugd: {label_key!r} has shape {tuple(label.shape)} but {image_key!r} has "
                                 f"{tuple(image.shape)}")  # fmt: skip
            if lbl.is_floating_point():  # MONAI loads label maps as float: accept whole numbers only
                if not bool((lbl == lbl.round()).all()):  # a host sync, once per call, on the loader's tensor
                    raise ValueError(f"SpineAugd: {label_key!r} holds non-integer values; a label map must be integer")
                lbl = lbl.round()
            lbl = lbl.long()
            lbl = lbl.to(img.device)
        if not batched:
            img, lbl = img[None], None if lbl is None else lbl[None]
        self.randomize()
        generator = torch.Generator().manual_seed(self._seed)
        out_img, out_lbl = self.pipeline.to(img.device)(img, lbl, generator=generator)
        if not batched:
            out_img, out_lbl = out_img[0], None if out_lbl is None else out_lbl[0]
        result = dict(data)
        result[image_key] = _like(out_img, image)
        if out_lbl is not None:
            result[label_key] = _like(out_lbl.to(_dtype(label)), label)
        return result


def _ndim(x: Any) -> int:
    return len(x.shape)


def _plain(x: Any) -> torch.Tensor:
    """A plain tensor view of a MetaTensor, tensor or array (no metadata tracking while spineaug runs)."""
    if isinstance(x, MetaTensor):
        return x.as_tensor()
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def _dtype(x: Any) -> torch.dtype:
    return x.dtype if isinstance(x, torch.Tensor) else torch.as_tensor(x).dtype


def _like(out: torch.Tensor, ref: Any) -> Any:
    """``out`` carrying ``ref``'s metadata when ``ref`` is a MetaTensor (a copy: the input is left unchanged)."""
    if not isinstance(ref, MetaTensor):
        return out
    result = MetaTensor(out)
    result.copy_meta_from(ref, copy_attr=True)
    return result
