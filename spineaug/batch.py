"""The unit of data every transform consumes and returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of volumes and, optionally, their label maps.

    Attributes:
        image: Images, (B, C, D, H, W), floating point.
        label: Label maps, (B, 1, D, H, W), integer, 0 = background; ``None`` when absent.
    """

    image: Tensor
    label: Tensor | None = None

    @property
    def size(self) -> int:
        """Number of samples in the batch."""
        return self.image.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The (D, H, W) shape of the volumes."""
        d, h, w = self.image.shape[2:]
        return d, h, w

    def replace(self, **changes) -> Batch:
        """Return a copy with some fields replaced."""
        return dataclasses.replace(self, **changes)
