"""One registry of per-transform exercise settings, shared by the batteries that run over the transform registry.

``EXERCISE[name]`` holds the keyword arguments (besides ``p``) that make transform ``name`` fire with a visible
effect and exercise every mechanism it has: ranges widened so that each drawn value varies from sample to sample,
and sub-probabilities (``p_rotation``, ``p_inside``, ``p_blend``, ...) at 0.5 so that a batch takes both branches of
each. Switches that change how the effect is delivered (``retain_stats``, ``mix_prob``, ``preserve_range``) stay at
their defaults, so a battery over the registry still covers the default paths; a test that needs the bare effect
asks for it with :func:`exercise` (``exercise(name, **BARE)``). Every setting keeps the image's shape (``Spatial``
has no ``patch_size``), so a battery may compare output with input voxel by voxel.

A new transform needs an entry here: ``tests/transforms/test_contract.py`` fails for a registered transform without
one.
"""

from __future__ import annotations

import spineaug

EXERCISE: dict[str, dict[str, object]] = {
    # geometric: every mechanism of the one resampling (rotation, scaling, elastic on a small control grid)
    "Spatial": {"p_rotation": 0.5, "p_scale": 0.5, "p_elastic": 0.5, "elastic_spacing": 4, "p_foreground": 0.5},
    "Affine": {},
    "Flip": {"axes": [0, 1, 2]},
    # intensity
    "Inversion": {},
    "HistogramEqualization": {},
    "PercentileClamp": {"max_amount": 0.45},
    "GaussianNoise": {"sigma": [0.1, 2.0]},
    "Brightness": {"multiplier": [0.2, 3.0]},
    "Contrast": {"contrast": [0.2, 3.0]},
    "IntensityFunction": {},
    "BiasField": {"coefficients": 1.0},
    "ZScore": {},
    "Gamma": {"gamma": [0.3, 3.0]},
    "InverseGamma": {"gamma": [0.3, 3.0]},
    # filters
    "GaussianBlur": {"sigma": [0.5, 2.0]},
    "UnsharpMask": {"sigma": [0.5, 2.0], "amount": [0.5, 2.0]},
    "ScharrEdge": {},
    "Laplacian": {},
    "RandomConv": {},
    # resolution and field of view
    "LowResolution": {"scale": [0.3, 0.9]},
    "ThickSlice": {"scale": [0.2, 0.9]},
    "FovCrop": {},
    # label-guided
    "LabelIntensityRemap": {"p_inside": 0.5, "width": [0.05, 0.2]},
    "LabelAppearance": {"std": [0.05, 0.5], "texture": [0.0, 0.5], "p_bias": 0.5},
    "LabelSynthesis": {"clusters": [1, 4]},
    "ClassLocationScale": {"p_global": 0.5},
    # random convolutions
    "GIN": {},
    "IPA": {"p_blend": 0.5},
    "ProgressiveRandConv": {"smoothing_sigma": [0.5, 1.0]},  # a near-delta kernel with one repeat is pointwise
}

# The bare effect: no statistics restored, no blending with the input, no clamping to the input's range.
BARE: dict[str, object] = {"retain_stats": False, "mix_prob": 0.0, "preserve_range": False}


def exercise(name: str, **switches: object) -> dict[str, object]:
    """``EXERCISE[name]`` plus those of ``switches`` (e.g. ``retain_stats=False``) that the transform has."""
    defaults = spineaug.TRANSFORMS[name].defaults()
    return {**EXERCISE[name], **{k: v for k, v in switches.items() if k in defaults}}


def forced_entry(name: str, p: float = 1.0) -> dict[str, object]:
    """The config entry of ``name`` with its exercise settings, forced on (``RandomTransform.forced``: effect
    gates raised so that ``p`` alone decides whether a sample is augmented), at probability ``p``, blending left at
    its default so that a battery covers it too."""
    forced = spineaug.TRANSFORMS[name].forced({"name": name, **EXERCISE[name]})
    forced.pop("mix_prob", None)
    return {**forced, "p": p}
