"""Transform gallery: one case under each transform of a preset, forced on, as a grid of mid-sagittal slices; and
several random draws of whole presets on one patch (:func:`render_draws`, ``spineaug preview --draws``).

Used by ``spineaug preview``. Every panel starts from the same (z-scored) case and the same seed; panel ``k`` runs a
one-entry pipeline made of entry ``k`` forced on (``RandomTransform.forced``: ``p = 1``, its effect gates above 0
raised to 1, blending ``mix_prob`` off), so each panel shows that transform's effect alone. Label contours are drawn
on every panel to show image/label alignment (geometric entries move both; intensity entries must not move the image).

Patches as in training (:func:`training_patches`): when a ``Spatial`` entry rotates or scales, every panel shows the
same final patch, the middle of the case, as large as fits; ``Spatial``'s panel reads the enlarged patch around it
and crops the final patch from the middle of its output (:meth:`spineaug.Pipeline.for_patch`, nnU-Net's loading),
so a rotation or zoom-out shows anatomy where it would otherwise show padding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spineaug
from spineaug import phantom
from spineaug.data import load_nifti
from spineaug.transforms import RandomSpatial

_LABEL_COLOURS = ("#ff4040", "#40c0ff", "#ffd040", "#60ff60", "#ff60ff", "#ffffff")
LABEL_NAMES = {1: "vertebra", 2: "intervertebral disc", 3: "spinal canal"}
"""The task labels (DESIGN.md, Data); the legend names other values ``label k``."""


def label_colour(value: int) -> str:
    """The contour colour of label ``value`` (1, 2, ...)."""
    return _LABEL_COLOURS[(value - 1) % len(_LABEL_COLOURS)]


def contour_labels(ax: Any, labels: np.ndarray, extent: tuple[float, float, float, float]) -> None:
    """Draw each foreground label's outline of a 2-D label slice (rows top to bottom) on ``ax``."""
    for value in range(1, int(labels.max(initial=0)) + 1):
        if (labels == value).any():
            ax.contour((labels == value).astype(float), levels=[0.5], colors=label_colour(value), linewidths=0.6,
                       extent=extent, origin="upper")  # fmt: skip


def label_legend(fig: Any, values: Sequence[int] = (1, 2, 3)) -> None:
    """A legend of the contour colours below the panels (outside the data)."""
    from matplotlib.lines import Line2D  # optional: matplotlib (report extra)

    handles = [Line2D([], [], color=label_colour(v), lw=2, label=f"{v}: {LABEL_NAMES.get(v, f'label {v}')}")
               for v in values]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False,
               title="label contours", title_fontsize=9)


@dataclass(frozen=True)
class GalleryCase:
    """A single case for the gallery.

    Attributes:
        image: (X, Y, Z) float32, RAS orientation (axis 0 left -> right, so ``X // 2`` is mid-sagittal).
        label: (X, Y, Z) integer label map, or ``None``.
        spacing: Voxel size in mm, (X, Y, Z).
        name: Shown in the figure title.
    """

    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, float, float]
    name: str


def phantom_volume(seed: int = 0, domain: str = "t2w", shape: Sequence[int] | None = None) -> GalleryCase:
    """Generate a phantom case (requires :mod:`spineaug.phantom`)."""
    kwargs: dict[str, Any] = {} if shape is None else {"shape": tuple(shape)}
    case = phantom.make_case(seed, domain, **kwargs)
    return GalleryCase(case.image, case.label, tuple(case.spacing), f"phantom case {seed} ({case.domain})")


def nifti_volume(image: str | Path, label: str | Path | None = None) -> GalleryCase:
    """Read a NIfTI image (and label) with :func:`spineaug.data.load_nifti`, reoriented to RAS (axis 0 left-right)."""
    img = load_nifti(image, dtype=np.float32)
    lab = None
    if label is not None:
        lab = load_nifti(label).data
        if lab.shape != img.shape:
            raise ValueError(f"label shape {lab.shape} does not match image shape {img.shape}")
        if not np.allclose(lab, np.round(lab)):
            raise ValueError(f"{label}: label map must hold integer values")
        lab = np.round(lab).astype(np.int64)
    return GalleryCase(img.data, lab, img.spacing, Path(image).name)


def force_on(entry: dict[str, Any]) -> dict[str, Any]:
    """Return ``entry`` forced on (``RandomTransform.forced``: fires for every sample, pure effect, no blending).

    Spatial's ``patch_size`` is dropped as well, so its panel keeps the input's shape (:meth:`spineaug.Pipeline.for_patch`
    makes it cut a training patch instead).
    """
    cls = spineaug.TRANSFORMS.get(entry.get("name"))
    forced = dict(entry) if cls is None else cls.forced(entry)  # an unknown name fails later, with its message
    forced.pop("patch_size", None)
    return forced


def training_patches(
    shape: Sequence[int], pipelines: Sequence[spineaug.Pipeline]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The final patch and its enlarged read for a case of ``shape`` under the ``Spatial`` entries of ``pipelines``.

    The final patch is the largest one with the case's proportions whose read (the largest of the pipelines'
    :meth:`~spineaug.Pipeline.for_patch` reads, that is of their ``Spatial`` entries'
    :meth:`~spineaug.transforms.RandomSpatial.read_size`) fits inside the case. Without a rotating or scaling
    ``Spatial`` entry both are the case's shape.
    """
    shape = tuple(int(s) for s in shape)
    spatial = [t for pipe in pipelines for t in pipe.find(RandomSpatial)]

    def enlarged(patch: tuple[int, ...]) -> tuple[int, ...]:
        sizes = [t.read_size(patch) for t in spatial] or [patch]
        return tuple(max(s[a] for s in sizes) for a in range(3))

    for step in range(100, 9, -1):
        patch = tuple(max(1, int(s * step / 100)) for s in shape)
        read = enlarged(patch)
        if all(r <= s for r, s in zip(read, shape)):
            return patch, read
    raise ValueError(f"case shape {shape} is too small for the Spatial entries' rotation/scale ranges")


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The middle ``size`` (D, H, W) of ``x`` (..., D, H, W), a view."""
    starts = [(s - p) // 2 for s, p in zip(x.shape[-3:], size)]
    return x[..., starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1], starts[2]:starts[2] + size[2]]


def _titles(entries: list[dict[str, Any]]) -> list[str]:
    counts = Counter(e["name"] for e in entries)
    titles = []
    for e in entries:
        title = e["name"]
        if counts[title] > 1:
            extra = e.get("functions") or e.get("axes") or ""
            if isinstance(extra, (list, tuple)):
                extra = ",".join(str(v) for v in extra)
            title = f"{title} ({extra})" if extra else title
        titles.append(title)
    return titles


def _zscore(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    return (image - image.mean()) / max(float(image.std()), 1e-8)


def render_gallery(
    volume: GalleryCase,
    entries: list[dict[str, Any]],
    out: str | Path,
    *,
    seed: int = 0,
    title: str = "",
    columns: int = 6,
    whole_case: bool = False,
) -> Path:
    """Render the original and each entry forced on, as mid-sagittal slices in a grid, to a PNG.

    Args:
        volume: The case (RAS orientation).
        entries: Config entries (as in a preset's ``"transforms"`` list).
        out: Output PNG path (parent folders are created).
        seed: Generator seed used for every panel.
        title: Figure title (the case name is appended).
        columns: Panels per row.
        whole_case: Show the whole case in every panel (Spatial pads what it rotates in) instead of the final patch
            of :func:`training_patches`.

    Returns:
        The written path.
    """
    import matplotlib  # optional: matplotlib (report extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = torch.from_numpy(_zscore(volume.image))[None, None]
    label = None if volume.label is None else torch.from_numpy(volume.label.astype(np.int64))[None, None]
    shape = tuple(volume.image.shape)
    forced = [spineaug.Pipeline(spineaug.build_transform(force_on(entry), name), seed=seed)
              for name, entry in zip(_titles(entries), entries)]  # fmt: skip
    patch, read = (shape, shape) if whole_case else training_patches(shape, forced)

    def crop(x: torch.Tensor | None, size: Sequence[int]) -> torch.Tensor | None:
        return None if x is None else center_crop(x, size)

    final_label = crop(label, patch)
    panels: list[tuple[str, np.ndarray | None, np.ndarray | None, str]] = [
        ("original", crop(image, patch)[0, 0].numpy(), None if final_label is None else final_label[0, 0].numpy(), "")
    ]
    for name, pipe in zip(_titles(entries), forced):
        if pipe.transforms[0].requires_label and label is None:
            panels.append((name, None, None, "needs a label map"))
            continue
        size = patch
        if pipe.find(RandomSpatial) and patch != read:  # reads the enlarged patch and cuts the final one, as in training
            pipe, size = pipe.for_patch(patch).pipeline, read
        img, lab = pipe(crop(image, size), crop(label, size), generator=torch.Generator().manual_seed(seed))
        panels.append((name, img[0, 0].numpy(), None if lab is None else lab[0, 0].numpy(), ""))

    rows = -(-len(panels) // columns)
    sy, sz = volume.spacing[1], volume.spacing[2]
    ny, nz = patch[1], patch[2]
    panel_h = 2.8
    panel_w = max(1.2, min(4.0, panel_h * (ny * sy) / (nz * sz)))
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * panel_w, rows * (panel_h + 0.35)), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, img, lab, note) in zip(axes.flat, panels):
        ax.set_title(name, fontsize=9)
        if img is None:
            ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=8, transform=ax.transAxes)
            continue
        x = img.shape[0] // 2
        sl = np.flipud(img[x].T)  # rows: superior at the top; columns: posterior -> anterior
        lo, hi = np.percentile(sl, [0.5, 99.5])
        extent = (0, img.shape[1] * sy, 0, img.shape[2] * sz)
        ax.imshow(
            sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent, interpolation="nearest"
        )
        if lab is not None:
            contour_labels(ax, np.flipud(lab[x].T), extent)
    heading = f"{title} - {volume.name}, mid-sagittal slice, each transform forced on (seed {seed})".strip(" -")
    if patch != read:
        heading += (f"\nfinal patch {'x'.join(map(str, patch))} from the middle of the case; Spatial reads the "
                    f"enlarged patch {'x'.join(map(str, read))} around it, as nnU-Net's loader does")
    fig.suptitle(heading, fontsize=11)
    if volume.label is not None:
        label_legend(fig, sorted(int(v) for v in np.unique(volume.label) if v > 0))
    fig.tight_layout(rect=(0, 0.06 if volume.label is not None else 0, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def render_draws(
    volume: GalleryCase, presets: Sequence[str], out: str | Path, *, draws: int = 6, seed: int = 0,
    patch: Sequence[int] | None = None,
) -> Path:
    """Render ``draws`` random draws of each whole preset (every entry at its own probability) on one patch.

    Every row starts from the same final patch in the middle of the case (the largest that every preset's
    enlarged read fits around, :func:`training_patches`; or ``patch``, e.g. the study's training patch, whose
    enlarged read is then clamped to the case, beyond which Spatial pads as in training); each preset runs once on a batch of ``draws`` copies, so
    each sample draws its own parameters, from the generator seeded with ``seed``. Label contours show alignment.

    Returns:
        The written path.
    """
    import matplotlib  # optional: matplotlib (report extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, spineaug.Pipeline.from_config({"seed": seed, "transforms": preset_entries(name)[1]}))
            for name in presets]  # fmt: skip
    shape = tuple(volume.image.shape)
    if patch is None:
        patch, read = training_patches(shape, [pipe for _, pipe in rows])
    else:
        patch = tuple(int(p) for p in patch)
        if any(p > s for p, s in zip(patch, shape)):
            raise ValueError(f"patch {patch} is larger than the case {shape}")
        sizes = [pipe.for_patch(patch).read_size for _, pipe in rows if pipe.find(RandomSpatial)] or [patch]
        read = tuple(min(max(s[a] for s in sizes), shape[a]) for a in range(3))
    image = torch.from_numpy(_zscore(volume.image))[None, None]
    label = None if volume.label is None else torch.from_numpy(volume.label.astype(np.int64))[None, None]
    panels: list[list[tuple[str, np.ndarray, np.ndarray | None]]] = []
    for name, pipe in rows:
        size = patch
        if pipe.find(RandomSpatial):  # as in training: Spatial cuts the patch from the middle of the enlarged read
            pipe, size = pipe.for_patch(patch).pipeline, read
        x = center_crop(image, size).expand(draws, -1, -1, -1, -1).contiguous()
        y = None if label is None else center_crop(label, size).expand(draws, -1, -1, -1, -1).contiguous()
        img, lab = pipe(x, y, generator=torch.Generator().manual_seed(seed))
        img, lab = center_crop(img, patch), None if lab is None else center_crop(lab, patch)
        first = center_crop(image, patch)[0, 0].numpy(), None if label is None else center_crop(label, patch)[0, 0].numpy()
        panels.append([("original", *first)] + [
            (f"draw {i + 1}", img[i, 0].numpy(), None if lab is None else lab[i, 0].numpy()) for i in range(draws)])
    sy, sz = volume.spacing[1], volume.spacing[2]
    panel_h = 2.4
    panel_w = max(1.0, min(3.5, panel_h * (patch[1] * sy) / (patch[2] * sz)))
    fig, axes = plt.subplots(len(rows), draws + 1, figsize=((draws + 1) * panel_w + 1.2, len(rows) * (panel_h + 0.3)
                                                            + 0.7), squeeze=False)  # fmt: skip
    extent = (0, patch[1] * sy, 0, patch[2] * sz)
    for r, ((name, _), row) in enumerate(zip(rows, panels)):
        for c, (title, img, lab) in enumerate(row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            x = img.shape[0] // 2
            sl = np.flipud(img[x].T)
            lo, hi = np.percentile(sl, [0.5, 99.5])
            ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent, interpolation="nearest")
            if lab is not None:
                contour_labels(ax, np.flipud(lab[x].T), extent)
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.suptitle(f"{volume.name}: {draws} random draws of each whole preset (every entry at its own probability) on "
                 f"the same {'x'.join(map(str, patch))} patch, mid-sagittal slice (seed {seed})", fontsize=11)
    if volume.label is not None:
        label_legend(fig, sorted(int(v) for v in np.unique(volume.label) if v > 0))
    fig.tight_layout(rect=(0, 0.06 if volume.label is not None else 0, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def preset_entries(source: str | Path | dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(title, entries)`` of a preset name or a config file/dict."""
    if isinstance(source, str) and source in spineaug.presets():
        # the package's folder, not ``spineaug.presets`` as a module: importing that would shadow ``spineaug.presets()``
        data = json.loads(resources.files("spineaug").joinpath("presets", f"{source}.json").read_text())
        return f"preset {source}", list(data.get("transforms", []))
    data = spineaug.load_config(source)
    return f"config {source}" if not isinstance(source, dict) else "config", list(data.get("transforms", []))


__all__ = [
    "LABEL_NAMES", "GalleryCase", "center_crop", "contour_labels", "force_on", "label_colour", "label_legend",
    "nifti_volume", "phantom_volume", "preset_entries", "render_draws", "render_gallery", "training_patches",
]
