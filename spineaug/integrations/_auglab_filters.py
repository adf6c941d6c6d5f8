"""Translators of AugLab's convolution blocks: Scharr edges, unsharp masking, random convolution and Gaussian blur.

The four blocks build the same AugLab module (``RandomConvTransformGPU``); each block passes it different keys, the
module's own defaults fill the rest, and ``kernel_type`` picks the kernel, so one translator per kernel maps the
resolved parameters to a spineaug entry (``Laplacian``, ``ScharrEdge``, ``GaussianBlur``, ``UnsharpMask`` or
``RandomConv``). The caller adds AugLab's ``probability`` as ``p``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spineaug.integrations._auglab_block import Block, Entry, is_number


# RandomConvTransformGPU's own defaults: they fill the keys that a block does not pass to it.
_CONV_DEFAULTS: dict[str, Any] = {
    "retain_stats": False,
    "absolute": False,
    "sigma": 1.0,
    "unsharp_amount": 1.0,
    "kernel_sizes": [1, 3, 5, 7],
    "mix_prob": 0.0,
}


def _laplace(b: Block, conv: dict[str, Any]) -> Entry:
    if conv["mix_prob"] > 0 or not conv["retain_stats"]:
        b.differs(
            "kernel_type",
            "spineaug's Laplacian is normalised by 1/26 (AugLab's kernel has gain 26): outputs agree only with "
            "retain_stats = true and mix_prob = 0",
        )
    return {"name": "Laplacian", "retain_stats": conv["retain_stats"], "mix_prob": conv["mix_prob"]}


def _scharr(b: Block, conv: dict[str, Any]) -> Entry:
    if not conv["absolute"]:
        raise b.error(
            "absolute",
            "false (signed sum of responses) is not supported; spineaug's ScharrEdge returns the edge magnitude",
        )
    # AugLab's integer kernels, unnormalised: with mixing the output is still almost a pure edge map.
    return {
        "name": "ScharrEdge",
        "magnitude": "l1",
        "normalize": False,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _gaussian_blur(b: Block, conv: dict[str, Any]) -> Entry:
    return {
        "name": "GaussianBlur",
        "sigma": [0.0, conv["sigma"]],
        "per_axis": True,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _unsharp(b: Block, conv: dict[str, Any]) -> Entry:
    return {
        "name": "UnsharpMask",
        "sigma": [0.0, conv["sigma"]],
        "amount": [0.0, conv["unsharp_amount"]],
        "per_axis": True,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


def _rand_conv(b: Block, conv: dict[str, Any]) -> Entry:
    sizes = conv["kernel_sizes"]
    if not isinstance(sizes, list) or not sizes or not all(is_number(k) and isinstance(k, int) for k in sizes):
        raise b.error("kernel_sizes", f"expected a non-empty list of odd kernel sizes, got {sizes!r}")
    return {
        "name": "RandomConv",
        "kernel_sizes": sizes,
        "retain_stats": conv["retain_stats"],
        "mix_prob": conv["mix_prob"],
    }


_KERNELS: dict[str, Callable[[Block, dict[str, Any]], Entry]] = {
    "Laplace": _laplace,
    "Scharr": _scharr,
    "GaussianBlur": _gaussian_blur,
    "UnsharpMask": _unsharp,
    "RandConv": _rand_conv,
}


def _conv(b: Block, kernel_default: str, **passed: Any) -> list[Entry]:
    kernel = b.raw("kernel_type", kernel_default)
    if kernel not in _KERNELS:
        raise b.error("kernel_type", f"{kernel!r} is not one of AugLab's kernels {sorted(_KERNELS)}")
    return [{**_KERNELS[kernel](b, {**_CONV_DEFAULTS, **passed}), **b.region()}]


def scharr_block(b: Block) -> list[Entry]:
    """``ScharrTransform``: by default a ``ScharrEdge`` entry (the edge magnitude, unnormalised)."""
    return _conv(
        b,
        "Scharr",
        retain_stats=b.flag("retain_stats", True),
        absolute=b.flag("absolute", True),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def unsharp_block(b: Block) -> list[Entry]:
    """``UnsharpMaskTransform``: by default an ``UnsharpMask`` entry."""
    return _conv(
        b,
        "UnsharpMask",
        sigma=b.number("sigma", 1.0),
        unsharp_amount=b.number("unsharp_amount", 1.5),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def rand_conv_block(b: Block) -> list[Entry]:
    """``RandomConvTransform``: by default a ``RandomConv`` entry."""
    return _conv(
        b,
        "RandConv",
        retain_stats=b.flag("retain_stats", False),
        kernel_sizes=b.raw("kernel_sizes", [1, 3, 5, 7]),
        mix_prob=b.unit("mix_prob", 0.0),
    )


def blur_block(b: Block) -> list[Entry]:
    """``GaussianBlurTransform``: by default a ``GaussianBlur`` entry."""
    return _conv(b, "GaussianBlur", sigma=b.number("sigma", 1.0))
