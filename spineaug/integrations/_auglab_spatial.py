"""Translators of AugLab's geometric blocks: ``FlipTransform``, ``AffineTransform`` and the trainer's spatial block.

Each reads exactly the keys (and defaults) that AugLab's builder reads for its block (see
:mod:`spineaug.integrations._auglab_block`) and returns spineaug config entries; for the GPU modules the caller adds
``p``. Kornia's per-axis values (x, y, z = W, H, D) are reversed into spineaug's (D, H, W) order.
"""

from __future__ import annotations

from spineaug.integrations._auglab_block import Block, Entry, is_number


def flip(b: Block) -> list[Entry]:
    """``FlipTransform``: a ``Flip`` of the listed axes (``flip_axis``)."""
    axes = b.raw("flip_axis", [0])
    axes = [axes] if isinstance(axes, int) and not isinstance(axes, bool) else axes
    if not isinstance(axes, list) or not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise b.error("flip_axis", f"expected an axis or a non-empty list of axes, got {axes!r}")
    if len(axes) > 1:
        b.differs(
            "flip_axis", "AugLab flips all listed axes together; spineaug flips each listed axis on its own"
        )
    return [{"name": "Flip", "axes": axes}]


def _rotation(b: Block) -> list:
    """Kornia's ``degrees`` (AugLab passes it on): ``d``, ``[lo, hi]``, ``[a, b, c]`` or ``[[lo, hi] x 3]``.

    Per-axis values are about kornia's x, y, z axes (W, H, D), so they are reversed into spineaug's (D, H, W) order.
    """
    value = b.raw("degrees", 10)
    if is_number(value):
        return [-abs(float(value)), abs(float(value))]
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, list) for v in value):
        ranges = [b.numbers("degrees", v, (2,)) for v in value]
        if any(lo != -hi for lo, hi in ranges):
            b.differs("degrees", "asymmetric per-axis ranges: the rotation directions follow spineaug's convention")
        return ranges[::-1]
    bounds = b.numbers("degrees", value, (2, 3))
    if len(bounds) == 2:
        return bounds
    return [[-abs(v), abs(v)] for v in bounds[::-1]]


def _shear(b: Block) -> list[float]:
    """Kornia's ``shears`` as spineaug's one shear range for all six terms; per-term ranges must agree."""
    value = b.raw("shear", [-10, 10, -10, 10, -10, 10])
    if is_number(value):
        return [-abs(float(value)), abs(float(value))]
    if isinstance(value, list) and len(value) == 6 and all(isinstance(v, list) for v in value):
        ranges = [b.numbers("shear", v, (2,)) for v in value]
    else:
        bounds = b.numbers("shear", value, (2, 6))
        if len(bounds) == 2:
            return bounds
        ranges = [[-abs(v), abs(v)] for v in bounds]
    if any(r != ranges[0] for r in ranges):
        raise b.error(
            "shear",
            f"per-term shear ranges {ranges} differ; spineaug's Affine takes one shear range for all six terms",
        )
    return ranges[0]


def affine(b: Block) -> list[Entry]:
    """``AffineTransform`` (kornia's ``RandomAffine3D``): an ``Affine`` entry."""
    translate = b.raw("translate", [0.1, 0.1, 0.1])
    entry: Entry = {
        "name": "Affine",
        "degrees": _rotation(b),
        # kornia's (dx, dy, dz) are (W, H, D) fractions; spineaug's are (D, H, W)
        "translate": b.numbers("translate", translate, (3,))[::-1],
        "scale": b.pair("scale", (0.9, 1.1)),
        "shear_deg": _shear(b),
    }
    resample = b.raw("resample", "bilinear")
    if not isinstance(resample, str):
        raise b.error("resample", f"expected a mode name such as 'bilinear', got {resample!r}")
    resample = resample.lower()
    if resample not in ("bilinear", "linear", "trilinear"):
        b.differs("resample", f"{resample!r} is not supported; spineaug resamples images trilinearly")
    return [entry]


def nnunet_spatial(b: Block) -> list[Entry]:
    """The trainer's nnU-Net ``SpatialTransform`` (in the data loader, before the GPU modules)."""
    sync = b.unit("p_synchronize_scaling_across_axes", 1.0)
    if sync not in (0.0, 1.0):
        raise b.error(
            "p_synchronize_scaling_across_axes", f"only 0 or 1 can be expressed in spineaug, got {sync}"
        )
    entry: Entry = {
        "name": "Spatial",
        "p_rotation": b.unit("p_rotation", 0.0),
        "rotation_deg": [-30.0, 30.0],  # nnU-Net's rotation_for_DA in 3-D; not part of AugLab's JSON
        "p_scale": b.unit("p_scaling", 0.0),
        "scale": b.pair("scaling", (0.7, 1.4)),
        "per_axis_scale": sync == 0.0,
        "p_elastic": b.unit("p_elastic_deform", 0.0),
        "pad_mode": "constant",
        "pad_value": 0.0,
        "label_pad": 0,
    }
    if "patch_size" in b.params:  # a spineaug extension: AugLab takes the patch size from nnU-Net's plans
        size = b.raw("patch_size", None)
        if not isinstance(size, list) or len(size) != 3 or not all(isinstance(n, int) for n in size):
            raise b.error("patch_size", f"expected three integers [D, H, W], got {size!r}")
        entry["patch_size"] = size
    if b.flag("random_crop", False):
        b.raw("patch_center_dist_from_border", 0)
        b.differs("random_crop", "nnU-Net's random crop of the loaded patch is not modelled")
    else:
        b.no_effect("patch_center_dist_from_border", "is only used with random_crop = true; ignored")
    b.no_effect(
        "bg_style_seg_sampling",
        "AugLab's GPU trainer hard-codes false (and with its mode_seg = 'nearest' nnU-Net never uses it); ignored",
    )
    b.no_effect(
        "mode_seg", "AugLab's GPU trainer hard-codes 'nearest'; spineaug resamples labels nearest too"
    )
    return [entry]
