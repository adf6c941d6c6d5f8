"""Training-throughput section of the benchmark report, from ``training.csv`` (``spineaug bench --training``).

:func:`markdown` returns the section (empty when the file is absent) for the benchmark report to include. It reads
the CSV with the standard library only and the column names of :mod:`spineaug._schema`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from spineaug import _schema

PAPER_RATIO = 0.9
"""The paper's figure: a training iteration with spineaug-style GPU augmentation takes ~0.9x the time of one with
nnU-Net's CPU augmentation in loader workers (~10 % faster), measured on a GPU."""

BASELINE_ARM = "bgv2-nnunet"
ARM_LABELS = {
    "bgv2-nnunet": "(a) batchgeneratorsv2 nnU-Net, loader workers",
    "nnunet": "(b) spineaug `nnunet`, in loop",
    "xdomain": "(c) spineaug `xdomain`, in loop",
    "none": "(d) no augmentation",
}


def read_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/training.csv`` that ran (status ok); empty without the file."""
    path = folder / _schema.TRAINING_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("status") == _schema.STATUS_OK]


def _s(value: str | float) -> str:
    if value in ("", None):
        return "-"
    x = float(value)
    return f"{x:.2f} s" if x >= 1 else f"{x * 1e3:.0f} ms"


def _baseline(rows: list[dict[str, str]], device: str, budget: str) -> dict[str, str] | None:
    """The fastest bgv2 row under ``budget`` cores (over its worker counts): nnU-Net as well as it runs there."""
    cands = [r for r in rows if r["device"] == device and r["cpu_budget"] == budget and r["arm"] == BASELINE_ARM]
    return min(cands, key=lambda r: float(r["iteration_s"]), default=None)


def ratio_rows(rows: list[dict[str, str]]) -> list[tuple[str, int, int, float]]:
    """``(device, cores, bgv2 workers, ratio)``: spineaug ``nnunet`` s/iteration over bgv2's, per device and budget."""
    out = []
    for device in dict.fromkeys(r["device"] for r in rows):
        for budget in dict.fromkeys(r["cpu_budget"] for r in rows if r["device"] == device):
            base = _baseline(rows, device, budget)
            ours = [r for r in rows if r["device"] == device and r["cpu_budget"] == budget and r["arm"] == "nnunet"]
            if base and ours:
                ratio = float(ours[0]["iteration_s"]) / float(base["iteration_s"])
                out.append((device, int(budget), int(base["workers"]), ratio))
    return out


def markdown(folder: str | Path) -> str:
    """The training-throughput section (markdown) from ``folder/training.csv``; ``""`` when there is none."""
    folder = Path(folder)
    rows = read_rows(folder)
    if not rows:
        return ""
    meta_path = folder / _schema.TRAINING_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    cfg = meta.get("config", {})
    first = rows[0]
    lines = [
        "## Training throughput",
        "",
        f"Seconds per training iteration of a fixed small MONAI UNet (channels {cfg.get('channels', '?')}) with "
        f"DiceCE loss and Adam on phantom patches {first['patch']} (B={first['batch']}, {first['iterations']} timed "
        f"iterations after {first['warmup']} warm-up), device {meta.get('cuda') or first['device']}. Rotating/scaling "
        "arms read an enlarged patch and crop the final one, as nnU-Net does. *data*: the loop waiting for the loader; "
        "*augment*: the augmentation in the loop (for bgv2 with 0 workers, inside the loader in the main process; "
        "with workers it is hidden in the wait); *network*: forward, loss, backward and step. In-loop arms load with "
        f"{meta.get('in_loop_loader_workers', 0)} workers. Cores: the process and its loader workers pinned to that "
        "many CPUs (`os.sched_setaffinity`, torch threads = cores; see the pinning column of training.csv).",
        "",
        "| cores | arm | workers | s / iteration | data | augment | network | samples/s | vs (a) "
        "| slowdown vs most cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for device in dict.fromkeys(r["device"] for r in rows):
        dev = [r for r in rows if r["device"] == device]
        most = max(int(r["cpu_budget"]) for r in dev)
        for r in dev:
            base = _baseline(rows, device, r["cpu_budget"])
            vs = f"{float(r['iteration_s']) / float(base['iteration_s']):.2f}x" if base else "-"
            ref = [q for q in dev if int(q["cpu_budget"]) == most and (q["arm"], q["workers"]) == (r["arm"], r["workers"])]
            slow = f"{float(r['iteration_s']) / float(ref[0]['iteration_s']):.2f}x" if ref else "-"
            lines.append(f"| {r['cpu_budget']} | {ARM_LABELS.get(r['arm'], r['arm'])} | {r['workers']} | "
                         f"{_s(r['iteration_s'])} | {_s(r['data_s'])} | {_s(r['augment_s'])} | {_s(r['network_s'])} | "
                         f"{float(r['samples_per_s']):.2f} | {vs} | {slow} |")
    lines.append("")
    for device, budget, workers, ratio in ratio_rows(rows):
        lines.append(f"- Ratio (b)/(a) on {device}, {budget} core(s), bgv2 with {workers} worker(s): **{ratio:.2f}** "
                     f"(paper: ~{PAPER_RATIO}, measured on a GPU; a CPU-only run trains the network on the same cores "
                     "the augmentation uses, so it is not the paper's setting).")
    return "\n".join(lines) + "\n"
