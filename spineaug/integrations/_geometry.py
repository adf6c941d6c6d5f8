"""Where the augmented voxels came from: the voxel map of a pipeline call, for the adapters that keep affines.

A call's geometric entries (``Spatial``, ``Affine``, ``Flip``) compose into one sampling map: output voxel ``r``
reads input voxel ``centre + M @ (r - half) + shift`` (``half`` = the output centre), plus an elastic field when
the sample deforms. :func:`voxel_maps` rebuilds ``M``, ``centre`` and ``shift`` from the call's parameters with the
transforms' own :meth:`sampling` (so a crop centred on a foreground voxel lands where the call put it) and returns
it as a 4x4 matrix from output to input voxel indices: ``new_affine = affine @ map``. Exact for crops, flips,
rotations, scaling and shear; for a sample with an elastic deformation it is the linear part only.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from spineaug.batch import Batch


def voxel_maps(pipeline, image: Tensor, label: Tensor | None, params: Mapping) -> tuple[Tensor, Tensor]:
    """The (B, 4, 4) float64 output-to-input voxel maps of one call and a (B,) bool: the map is exact (no elastic).

    Args:
        pipeline: The :class:`spineaug.Pipeline` that was called.
        image, label: The batch it was called with, (B, C, D, H, W) and (B, 1, D, H, W) or ``None``.
        params: The call's parameters (``return_params=True``).
    """
    batch = Batch(image.contiguous(), None if label is None else label.contiguous())
    n = image.shape[0]
    matrix = torch.eye(3, dtype=torch.float64).expand(n, 3, 3).clone()
    shift = torch.zeros(n, 3, dtype=torch.float64)
    placement = None
    for transform, p in zip(pipeline.transforms, params.values()):
        if not transform.geometric:
            continue
        sampling = transform.sampling(p, batch)
        warp_m, warp_s = sampling.warp.matrix.double(), sampling.warp.shift.double()
        shift = (matrix @ warp_s[..., None])[..., 0] + shift  # moving by the earlier map, then by this one
        matrix = matrix @ warp_m
        if sampling.placement is not None:
            placement = sampling.placement
    in_shape = batch.spatial_shape
    if placement is None:
        out_shape, centre, control = in_shape, torch.tensor([(s - 1) / 2 for s in in_shape]).expand(n, 3), None
    else:
        out_shape, centre, control = placement.shape, placement.centre, placement.control
    half = torch.tensor([(s - 1) / 2 for s in out_shape], dtype=torch.float64)
    maps = torch.eye(4, dtype=torch.float64).expand(n, 4, 4).clone()
    maps[:, :3, :3] = matrix
    maps[:, :3, 3] = centre.detach().cpu().double() + shift - (matrix @ half[:, None])[..., 0]
    exact = torch.ones(n, dtype=torch.bool) if control is None else (control.cpu() == 0).flatten(1).all(1)
    return maps, exact
