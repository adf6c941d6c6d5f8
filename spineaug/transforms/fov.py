"""Field-of-view crop (CATALOG.md 3.19): blank everything outside a random box, in the image and the label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from spineaug import _sampling as sample
from spineaug.batch import Batch
from spineaug.functional import intensity as FI
from spineaug.functional import resolution as FR
from spineaug.transforms.base import Params, RandomTransform
from spineaug.validation import FractionRange, NonEmptyAxes, Probability, UnitRange, check_label_value


@dataclass(frozen=True)
class FovCropParams(Params):
    """Parameters of :class:`RandomFovCrop`; a skipped sample's box is the whole volume."""

    start: Tensor  # (B, 3) long: first voxel inside the box, (d, h, w)
    stop: Tensor  # (B, 3) long: one past the last voxel inside


class RandomFovCrop(RandomTransform):
    """Simulate a limited field of view: keep a random box, fill the image and the label outside it. Shape unchanged.

    Per sample and axis, the box spans ``m = clamp(round(f * n), 1, n)`` voxels with ``f ~ U(crop)``, centred at
    ``c * n`` with ``c ~ U(pos)``, shifted to lie inside the volume.

    Args:
        crop: Range of the box size as a fraction of each axis.
        pos: Range of the box centre as a fraction of each axis.
        axes: Axes that are cropped; the box spans the others entirely.
        fill: Image value outside the box: each sample's (and channel's) ``"min"`` (background, the default),
            ``"mean"``, or the constant ``fill_value``.
        fill_value: Image value for ``fill="value"``.
        label_fill: Label value outside the box (background 0, or an ignore label); must fit the label's dtype
            (checked on every call with a label).
        p: Per-sample probability.
    """

    name = "FovCrop"
    kind = "elementwise"

    def __init__(
        self,
        crop: FractionRange = (0.5, 1.0),
        pos: UnitRange = (0.0, 1.0),
        axes: NonEmptyAxes = (0, 1, 2),
        fill: Literal["min", "mean", "value"] = "min",
        fill_value: float = 0.0,
        label_fill: Annotated[int, Field(ge=0)] = 0,
        p: Probability = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.crop, self.pos, self.axes = tuple(crop), tuple(pos), tuple(axes)
        self.fill, self.fill_value, self.label_fill = fill, fill_value, label_fill

    def check_label(self, label: Tensor | None) -> None:
        """As :meth:`RandomTransform.check_label`; also ``label_fill`` must fit the label's dtype."""
        super().check_label(label)
        if label is not None:
            check_label_value(self.label_fill, label.dtype, "label_fill", self.name)

    def sample_params(self, batch: Batch, generator: torch.Generator) -> FovCropParams:
        b = batch.size
        n = torch.tensor(batch.spatial_shape, dtype=torch.float32)
        gate = sample.bernoulli(generator, (b,), self.p)
        frac = sample.uniform(generator, (b, 3), *self.crop)
        centre = sample.uniform(generator, (b, 3), *self.pos)
        size = torch.round(frac * n).clamp(min=torch.ones(3), max=n)
        start = torch.minimum(torch.round(centre * n - size / 2).clamp_min(0), n - size)
        use = gate[:, None] & torch.tensor([a in self.axes for a in range(3)])
        start = torch.where(use, start, torch.zeros(())).long()
        stop = torch.where(use, start + size, n).long()
        return FovCropParams(start=start, stop=stop)

    def apply(self, batch: Batch, params: FovCropParams, *, inplace: bool = False) -> Batch:
        full = torch.tensor(batch.spatial_shape)
        if bool(((params.start == 0) & (params.stop == full)).all()):  # CPU parameters: nothing to crop
            return batch
        x = batch.image
        device = x.device
        inside = FR.box_mask(
            params.start.to(device, non_blocking=True),
            params.stop.to(device, non_blocking=True),
            batch.spatial_shape,
        )
        if self.fill == "min":
            value = FI.min_max(x)[0]
        elif self.fill == "mean":
            value = FI.safe_mean(x)
        else:
            value = torch.full((), self.fill_value, device=device)
        image = torch.where(inside, x, value.to(x.dtype))
        label = batch.label
        if label is not None:
            label = torch.where(
                inside, label, torch.full((), self.label_fill, dtype=label.dtype, device=device)
            )
        return batch.replace(image=image, label=label)
