"""TorchIO integration: a ``tio.Transform`` that runs a spineaug pipeline on one ``Subject``.

Use it in ``tio.Compose`` like any TorchIO transform. It augments one subject at a time, on the CPU, in the
data-loader workers (TorchIO's pattern). For speed, prefer spineaug's batched path: collate the batch, move it to
the GPU and call ``spineaug.Pipeline`` (or :class:`spineaug.integrations.monai.SpineAugd`) on it in the training
loop, where every sample still draws its own parameters.

Randomness follows TorchIO: each call draws one seed from torch's global generator (seeded per worker by PyTorch's
``DataLoader``; ``torch.manual_seed`` makes runs reproducible) and spineaug draws every parameter from a
``torch.Generator`` seeded with it. The image and label keep their type (``ScalarImage``/``LabelMap``), and their
**affine follows the voxels**: the call's geometric entries are one affine map (crop, flips, rotation, scaling,
shear) and the new affine is ``affine @ map`` (exact for these; with an elastic deformation, the linear part only).

``include``/``exclude`` (TorchIO's own arguments) choose the images the transform sees: the scalar image and the
label map are picked among them. An image left out stays as it is, which a geometric pipeline would misalign, so
then the call is refused with the names (an intensity-only pipeline leaves it alone).

Example:
    >>> import torch, torchio as tio
    >>> from spineaug.integrations.torchio import SpineAug
    >>> subject = tio.Subject(image=tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24)),
    ...                       label=tio.LabelMap(tensor=torch.zeros(1, 24, 24, 24, dtype=torch.long)))
    >>> out = tio.Compose([tio.ZNormalization(), SpineAug(preset="xdomain")])(subject)
    >>> tuple(out["image"].shape)
    (1, 24, 24, 24)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

import spineaug
from spineaug.integrations._extras import require
from spineaug.integrations._geometry import voxel_maps
from spineaug.validation import NoEffectWarning

tio = require("torchio", "torchio", "spineaug.integrations.torchio")

__all__ = ["SpineAug"]


class SpineAug(tio.Transform):
    """Apply a spineaug preset or config to a subject's scalar image and label map.

    Args:
        preset: A preset name (see :func:`spineaug.presets`); the default is ``xdomain`` when no config is given.
        config: A config dict or JSON/YAML file instead of ``preset``.
        patch_size: Output patch of the ``Spatial`` entry (``None``: keep the shape). Other images of the subject
            are not changed, so with a patch size use a subject of one image and one label map.
        image_key: The ``ScalarImage`` to augment (default: the only one that ``include``/``exclude`` let through).
        label_key: The ``LabelMap`` (default: the only one that ``include``/``exclude`` let through, or none).
        **kwargs: Passed to ``tio.Transform`` (``p``, ``copy``, ``include``, ``exclude``).
    """

    def __init__(
        self,
        preset: str | None = None,
        config: str | Path | dict[str, Any] | None = None,
        *,
        patch_size: tuple[int, int, int] | None = None,
        image_key: str | None = None,
        label_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if preset is not None and config is not None:
            raise ValueError("give either preset= or config=, not both")
        if config is not None:
            self.pipeline = spineaug.Pipeline.from_config(config, patch_size=patch_size)
        else:
            self.pipeline = spineaug.Pipeline.from_preset(preset or "xdomain", patch_size=patch_size)
        self.preset, self.config, self.patch_size = preset, config, patch_size
        if self.pipeline.seed is not None:
            warnings.warn(f"SpineAug: the config's seed ({self.pipeline.seed}) has no effect here: torch's global generator (torch.manual_seed) "
                          "draws each call's seed", NoEffectWarning, stacklevel=2)  # fmt: skip
        self.image_key, self.label_key = image_key, label_key
        self.args_names = ["preset", "config", "patch_size", "image_key", "label_key"]
        self._needs_label = [t.name for t in self.pipeline.transforms if t.requires_label]
        self._geometric = any(t.geometric for t in self.pipeline.transforms)

    def _names(self, subject: tio.Subject) -> tuple[str, str | None]:
        images = subject.get_images_dict(intensity_only=False, include=self.include, exclude=self.exclude)
        scalars = [k for k, v in images.items() if isinstance(v, tio.ScalarImage)]
        labels = [k for k, v in images.items() if isinstance(v, tio.LabelMap)]
        if self.image_key is not None:
            if self.image_key not in scalars:
                raise KeyError(f"SpineAug: image_key {self.image_key!r} is not a ScalarImage of the subject "
                               f"(scalar images: {scalars}{_filtered(self)})")  # fmt: skip
            image = self.image_key
        elif len(scalars) == 1:
            image = scalars[0]
        else:
            raise ValueError(f"SpineAug: the subject has {len(scalars)} scalar images {scalars}{_filtered(self)}; "
                             "pass image_key= (or include=)")
        if self.label_key is not None:
            if self.label_key not in labels:
                raise KeyError(f"SpineAug: label_key {self.label_key!r} is not a LabelMap of the subject "
                               f"(label maps: {labels}{_filtered(self)})")  # fmt: skip
            label = self.label_key
        elif len(labels) <= 1:
            label = labels[0] if labels else None
        else:
            raise ValueError(f"SpineAug: the subject has {len(labels)} label maps {labels}; pass label_key=")
        if label is None and self._needs_label:
            raise ValueError(f"SpineAug: the subject has no LabelMap, but the augmentation needs one "
                             f"(transforms {self._needs_label})")  # fmt: skip
        return image, label

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        image_key, label_key = self._names(subject)
        others = [k for k in subject.get_images_dict(intensity_only=False) if k not in (image_key, label_key)]
        if others and self._geometric:
            left_out = " (left out by include/exclude)" if self.include is not None or self.exclude is not None else ""
            raise ValueError(
                f"SpineAug: the subject also holds {others}{left_out}; the pipeline moves {image_key!r}"
                f"{f' and {label_key!r}' if label_key else ''} geometrically, which would misalign them: include "
                "every image of the subject, or use an intensity-only config"
            )
        image = subject[image_key]
        data = image.data[None]
        data = data if data.is_floating_point() else data.float()
        label = None
        if label_key is not None:
            label = subject[label_key]
            if label.data.is_floating_point() and not torch.equal(label.data, label.data.round()):
                raise ValueError(f"SpineAug: LabelMap {label_key!r} holds non-integer values")
            if label.spatial_shape != image.spatial_shape:
                raise ValueError(f"SpineAug: LabelMap {label_key!r} has shape {label.spatial_shape} but "
                                 f"{image_key!r} has {image.spatial_shape}")  # fmt: skip
        seed = int(torch.randint(0, 2**62, (1,)))  # TorchIO's convention: torch's global RNG
        generator = torch.Generator().manual_seed(seed)
        lbl = None if label is None else label.data[None].long()
        out, out_label, params = self.pipeline(data, lbl, generator=generator, return_params=True)
        voxel_map = voxel_maps(self.pipeline, data, lbl, params)[0][0].numpy() if self._geometric else None
        for img, values in ((image, out[0]), (label, None if label is None else out_label[0].to(label.data.dtype))):
            if img is None:
                continue
            affine = img.affine if voxel_map is None else img.affine @ voxel_map
            img.set_data(values)
            img.affine = affine
        return subject


def _filtered(transform: tio.Transform) -> str:
    if transform.include is not None:
        return f", with include={list(transform.include)}"
    if transform.exclude is not None:
        return f", with exclude={list(transform.exclude)}"
    return ""
