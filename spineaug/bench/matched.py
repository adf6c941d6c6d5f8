"""Matched work: spineaug restricted to exactly what a baseline expresses, so a speed ratio compares the same work.

A *partial* baseline (TorchIO, MONAI, kornia) runs only the preset entries its library has; a *substitute* runs its
library's own standard pipeline. Timing the whole preset against either compares different amounts of work. The
matched configuration keeps the preset entries (same probabilities and ranges) whose row in the baseline's mapping
(``spineaug.baselines.mapping``, the same table that gives the *coverage* column) names an equivalent, and drops the
others; nothing is restated by hand.

One exception is data, not a copy: a substitute that runs a fixed pipeline whatever the preset (batchgeneratorsv2 runs
nnU-Net's default augmentation) does the work of the preset it reproduces exactly, so its matched work is that
preset (:data:`FIXED_PIPELINE`).
"""

from __future__ import annotations

from typing import Any

from spineaug import baselines
from spineaug.baselines import preset_entries

FIXED_PIPELINE = {"batchgenerators": "nnunet"}
"""Baselines whose pipeline does not depend on the preset -> the preset they reproduce exactly (fidelity exact)."""


def matched_preset(preset: str, baseline: str) -> str:
    """The preset whose entries ``baseline`` runs when it stands in for ``preset`` (usually ``preset`` itself)."""
    return FIXED_PIPELINE.get(baseline, preset)


def matched_config(preset: str, baseline: str) -> list[dict[str, Any]]:
    """The entries of ``preset`` that ``baseline`` expresses, in preset order, with their own parameters.

    Args:
        preset: A spineaug preset name.
        baseline: A name of ``spineaug.baselines.LIBRARIES``.

    Returns:
        Config entries (``{"name": ..., ...}``); an empty list when the baseline expresses none.

    Raises:
        ValueError: Unknown preset or baseline.
    """
    source = matched_preset(preset, baseline)
    rows = baselines.mapping(baseline, source)
    entries = preset_entries(source)
    if [r.spineaug for r in rows] != [e["name"] for e in entries]:
        raise ValueError(f"mapping of {baseline!r} for {source!r} does not list the preset's entries in order")
    return [dict(e) for e, r in zip(entries, rows) if r.equivalent is not None]


def needs_matched(fidelity: str) -> bool:
    """Whether a baseline of this fidelity needs a matched spineaug row (exact baselines already match)."""
    return fidelity in ("partial", "substitute")
