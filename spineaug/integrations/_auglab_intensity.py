"""Translators of AugLab's intensity and acquisition blocks: one function per module family.

Intensity: inversion, histogram equalisation, label-region remapping, clamping, noise, brightness, gamma, contrast,
the intensity functions, bias field and z-score. Acquisition: low resolution, thick slices and field-of-view crop.
Each reads exactly the keys (and defaults) that AugLab's builder reads for its block (see
:mod:`spineaug.integrations._auglab_block`) and returns spineaug config entries without ``p`` (the caller adds
AugLab's ``probability``).
"""

from __future__ import annotations

from collections.abc import Callable

from spineaug.integrations._auglab_block import Block, Entry, is_number


def inversion(b: Block) -> list[Entry]:
    """``InverseTransform``: an ``Inversion`` entry."""
    mixing = {"retain_stats": b.flag("retain_stats", False), "mix_prob": b.unit("mix_prob", 0.0)}
    return [{"name": "Inversion", **mixing, **b.region()}]


def histogram(b: Block) -> list[Entry]:
    """``HistogramEqualizationTransform``: a ``HistogramEqualization`` entry (256 bins, no interpolation)."""
    mixing = {"retain_stats": b.flag("retain_stats", False), "mix_prob": b.unit("mix_prob", 0.0)}
    return [{"name": "HistogramEqualization", "bins": 256, "interpolate": False, **mixing, **b.region()}]


def redistribute(b: Block) -> list[Entry]:
    """``RedistributeSegTransform``: a ``LabelIntensityRemap`` of the union of all labels."""
    # AugLab's GPU code remaps the union of all labels as one region.
    return [
        {
            "name": "LabelIntensityRemap",
            "p_inside": b.unit("in_seg", 0.2),
            "regions": "union",
            "retain_stats": b.flag("retain_stats", False),
        }
    ]


def clamp(b: Block) -> list[Entry]:
    """``ClampTransform``: a ``PercentileClamp`` entry."""
    entry = {"name": "PercentileClamp", "max_amount": b.number("max_clamp_amount", 0.0)}
    return [{**entry, "retain_stats": b.flag("retain_stats", False), **b.region()}]


def noise(b: Block) -> list[Entry]:
    """``GaussianNoiseTransform``: a ``GaussianNoise`` entry with sigma drawn from [0, std]."""
    entry = {"name": "GaussianNoise", "sigma": [0.0, b.number("std", 1.0)], "mean": b.number("mean", 0.0)}
    return [{**entry, **b.region()}]


def brightness(b: Block) -> list[Entry]:
    """``BrightnessTransform``: a ``Brightness`` entry (uniform multiplier)."""
    entry = {"name": "Brightness", "multiplier": b.pair("brightness_range", (0.5, 1.5)), "sampler": "uniform"}
    return [{**entry, **b.region()}]


def gamma_family(name: str) -> Callable[[Block], list[Entry]]:
    """The translator of ``GammaTransform`` or ``InvGammaTransform``: an entry named ``name``."""
    def translate(b: Block) -> list[Entry]:
        entry = {"name": name, "gamma": b.pair("gamma_range", (0.7, 1.5)), "sampler": "uniform"}
        return [{**entry, "retain_stats": b.flag("retain_stats", False), **b.region()}]

    return translate


def contrast(b: Block) -> list[Entry]:
    """``ContrastTransform``: a ``Contrast`` entry, or none where AugLab's retain_stats undoes it."""
    contrast = b.pair("contrast_range", (0.75, 1.25))
    region = b.region()
    if b.flag("retain_stats", False):
        b.no_effect(
            "retain_stats",
            "true restores each sample's mean and std, which undoes the contrast change: the module has no effect "
            "in AugLab; left out",
        )
        return []
    # AugLab does not clip to the input range (nnU-Net does).
    return [
        {"name": "Contrast", "contrast": contrast, "sampler": "uniform", "preserve_range": False, **region}
    ]


def functions(b: Block) -> list[Entry]:
    """``FunctionTransform``: one ``IntensityFunction`` entry per function AugLab applies."""
    retain, region = b.flag("retain_stats", False), b.region()
    return [
        {"name": "IntensityFunction", "functions": [fn], "retain_stats": retain, **region}
        for fn in ("log1p", "sqrt", "sin", "exp", "sigmoid")  # AugLab's five modules, in its order
    ]


def low_res(b: Block) -> list[Entry]:
    """``SimulateLowResTransform``: a ``LowResolution`` entry (per axis, linear down and up)."""
    scale = b.pair("scale", (0.3, 1.0))
    return [{"name": "LowResolution", "scale": scale, "per_axis": True, "down": "linear", "up": "linear"}]


def acquisition(b: Block) -> list[Entry]:
    """``AcqTransform``: a ``ThickSlice`` entry over all three axes."""
    scale = b.pair("scale", (0.3, 1.0))
    return [{"name": "ThickSlice", "scale": scale, "axes": [0, 1, 2], "profile": "linear", "up": "linear"}]


def crop(b: Block) -> list[Entry]:
    """``CropTransform``: a ``FovCrop`` entry that fills outside the field of view with 0."""
    entry = {"name": "FovCrop", "crop": b.pair("crop", (1.0, 1.0)), "pos": b.pair("pos", (0.0, 1.0))}
    return [{**entry, "axes": [0, 1, 2], "fill": "value", "fill_value": 0.0, "label_fill": 0}]


def bias_field(b: Block) -> list[Entry]:
    """``BiasFieldTransform``: a ``BiasField`` entry (order 3, signed coefficients)."""
    value = b.raw("coefficients", 0.5)
    bound = value if is_number(value) else None
    if isinstance(value, list) and len(value) == 2 and all(map(is_number, value)) and value[0] == -value[1]:
        bound = value[1]
    if bound is None:
        raise b.error("coefficients", f"expected c or a symmetric pair [-c, c], got {value!r}")
    entry = {"name": "BiasField", "coefficients": abs(float(bound)), "order": 3, "signed": True}
    return [{**entry, "retain_stats": b.flag("retain_stats", False), **b.region()}]


def zscore(b: Block) -> list[Entry]:
    """``ZscoreNormalizationTransform``: a ``ZScore`` entry."""
    return [{"name": "ZScore"}]  # AugLab's builder passes only the probability
