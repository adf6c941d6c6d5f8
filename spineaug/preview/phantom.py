"""The phantom figure: one anatomy in every domain (mid-sagittal slices with label contours) and its description.

``spineaug preview --phantom --out reports/phantom.png`` (``make phantom-figure``) writes the PNG and, beside it,
``phantom.json`` (:data:`spineaug._schema.PHANTOM_DOMAINS`): what each domain simulates
(:data:`spineaug.phantom.DOMAINS`), the case's seed, shape and spacing, and the command, commit, date and machine,
which the report index reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from spineaug import _io, _schema, phantom
from spineaug.preview.gallery import contour_labels, label_legend


def describe(seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> dict[str, Any]:
    """The metadata of the figure: every domain's name, modality, channel and description, and the case."""
    info = _io.system_info()
    return {
        "command": f"spineaug preview --phantom --out reports/{_schema.PHANTOM_FIGURE}"
                   + (f" --case {seed}" if seed else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": info["git"],
        "machine": f"{info['cpu_model']} ({info['cpus_available']} CPUs available)",
        "phantom_version": phantom.VERSION,
        "seed": seed,
        "shape": list(shape),
        "spacing": list(spacing),
        "slice": "mid-sagittal: axis 0 (left-right) of the RAS arrays at X // 2; superior at the top",
        "labels": {name: value for name, value in phantom.LABELS.items() if value},
        "domains": [{"name": d.name, "modality": d.modality, "channel": d.channel_name, "description": d.description,
                     "source": d.name in phantom.SOURCE_DOMAINS} for d in phantom.DOMAINS.values()],
    }  # fmt: skip


def render(out: str | Path, seed: int = 0, columns: int = 5, shape: tuple[int, int, int] | None = None) -> Path:
    """Render case ``seed`` of the phantom in every domain to ``out`` (PNG) and write ``phantom.json`` beside it
    (``shape``: the phantom's grid, default :data:`spineaug.phantom.DEFAULT_SHAPE`)."""
    import matplotlib  # optional: matplotlib (report extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = phantom.make_cases(seed) if shape is None else phantom.make_cases(seed, shape=shape)
    first = next(iter(cases.values()))
    shape, spacing = tuple(first.image.shape), tuple(float(s) for s in first.spacing)
    meta = describe(seed, shape, spacing)
    x = shape[0] // 2
    extent = (0, shape[1] * spacing[1], 0, shape[2] * spacing[2])
    rows = -(-len(cases) // columns)
    panel_h = 3.4
    panel_w = max(1.2, panel_h * (shape[1] * spacing[1]) / (shape[2] * spacing[2]))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * (panel_w + 0.4), rows * (panel_h + 0.7)),
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, case) in zip(axes.flat, cases.items()):
        sl = np.flipud(case.image[x].T)
        lo, hi = np.percentile(sl, [0.5, 99.5])
        ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent, interpolation="nearest")
        contour_labels(ax, np.flipud(case.label[x].T), extent)
        spec = phantom.DOMAINS[name]
        role = "training source" if name in phantom.SOURCE_DOMAINS else "test only"
        ax.set_title(f"{name} ({spec.modality.upper()}, {role})", fontsize=9)
    fig.suptitle(f"Phantom case {seed}: the same anatomy in all {len(cases)} domains (mid-sagittal slice, "
                 f"{shape[1] * spacing[1]:.0f} x {shape[2] * spacing[2]:.0f} mm, label contours)", fontsize=11)
    label_legend(fig)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _io.atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    meta["figure"] = out.name
    _io.atomic_write_text(out.with_name(_schema.PHANTOM_DOMAINS), json.dumps(meta, indent=1) + "\n")
    return out


__all__ = ["describe", "render"]
