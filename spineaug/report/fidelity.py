"""Fidelity report: ``fidelity.md`` from the result files of ``spineaug fidelity`` (renders only).

Reads ``matched.csv``, ``rates.csv``, ``sigma.csv`` and ``meta.json`` (columns: :mod:`spineaug._schema`), by default
the committed copy in ``reports/fidelity/``; the measurements themselves live in :mod:`spineaug.fidelity`.
:func:`summary` gives the index its one-table digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spineaug import _io, _schema

REFERENCES = {"nnunet": "nnU-Net v2 (batchgeneratorsv2)", "xdomain": "AugLab (the paper's toolbox, commit 1ee096a)"}
"""Preset -> the reference it is compared with."""


@dataclass
class FidelityResults:
    """The frames of one fidelity run; empty frames and the names of missing files when absent."""

    folder: Path
    matched: pd.DataFrame
    rates: pd.DataFrame
    sigma: pd.DataFrame
    meta: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.matched.empty or not self.rates.empty


def load(folder: str | Path) -> FidelityResults:
    """Read a fidelity run; absent files give empty frames and are listed in ``missing``."""
    folder = Path(folder)
    frames, missing = {}, []
    for name, columns in ((_schema.FIDELITY_MATCHED, _schema.FIDELITY_MATCH_COLUMNS),
                          (_schema.FIDELITY_RATES, _schema.FIDELITY_RATE_COLUMNS),
                          (_schema.FIDELITY_SIGMA, _schema.FIDELITY_SIGMA_COLUMNS)):  # fmt: skip
        path = folder / name
        if path.is_file() and path.stat().st_size > 0:
            frames[name] = pd.read_csv(path, keep_default_na=False, dtype=str)
        else:
            frames[name] = pd.DataFrame(columns=list(columns))
            missing.append(str(path))
    meta_path = folder / _schema.FIDELITY_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not meta_path.is_file():
        missing.append(str(meta_path))
    return FidelityResults(folder, frames[_schema.FIDELITY_MATCHED], frames[_schema.FIDELITY_RATES],
                           frames[_schema.FIDELITY_SIGMA], meta, missing)


def fmt_number(text: str) -> str:
    """A measured difference for the tables: ``0``, two significant digits below 0.01, else three decimals."""
    if text in ("", None):
        return "-"
    x = float(text)
    return "0" if x == 0 else f"{x:.2g}" if abs(x) < 0.01 else f"{x:.3f}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def provenance(res: FidelityResults) -> str:
    """Command, commit, date and machine of the run, one line."""
    m = res.meta
    return (f"`{m.get('command', 'spineaug fidelity')}` at commit `{str(m.get('git') or 'unknown')[:12]}`, "
            f"{m.get('date', 'date unknown')}, on {m.get('machine', 'an unrecorded machine')}")


def summary(res: FidelityResults) -> list[list[str]]:
    """Per preset: matched comparisons within tolerance, the largest exact-match difference, firing rates within
    the z bound and the largest ``|z|`` (rows for the index)."""
    rows = []
    for preset in REFERENCES:
        m = res.matched[res.matched.preset == preset]
        r = res.rates[res.rates.preset == preset]
        if m.empty and r.empty:
            continue
        exact = m[m.intentional.str.startswith("exact") & (m.difference != "")]
        worst_exact = max((float(v) for v in exact.difference), default=float("nan"))
        zs = [abs(float(z)) for z in r.z]
        rows.append([
            f"`{preset}` vs {REFERENCES[preset]}",
            f"{int((m.verdict == _schema.VERDICT_OK).sum())} / {len(m)}",
            fmt_number(f"{worst_exact}") if worst_exact == worst_exact else "-",
            f"{int((r.verdict == _schema.VERDICT_OK).sum())} / {len(r)}",
            f"{max(zs):.2f}" if zs else "-",
        ])  # fmt: skip
    return rows


SUMMARY_HEADER = ["comparison", "matched within tolerance", "largest difference where exact (/ std)",
                  "firing rates within z bound", "largest |z|"]


def render(res: FidelityResults) -> str:
    """The markdown of ``fidelity.md``."""
    meta = res.meta
    bound = meta.get("rate_sigmas", _schema.FIDELITY_RATE_SIGMAS)
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    lines = [
        "# Fidelity: presets vs their references",
        "",
        "Measured by `spineaug fidelity` (spineaug/fidelity/; `make fidelity`) into the result files in "
        f"`{res.folder.name}/` and rendered here by `spineaug report`. Run: {provenance(res)}; {versions}. Synthetic "
        "seeded volume (smooth random intensities, four labels), z-scored; image differences are relative to its "
        "std. `tests/test_fidelity.py` checks the same measurements against the same tolerances.",
        "",
    ]
    if res.missing:
        lines += ["Missing inputs (run `make fidelity`): " + ", ".join(f"`{p}`" for p in res.missing), ""]
    for preset, reference in REFERENCES.items():
        m = res.matched[res.matched.preset == preset]
        r = res.rates[res.rates.preset == preset]
        lines += [f"## `{preset}` vs {reference}", ""]
        if preset == "xdomain" and m.empty and r.empty:
            reason = meta.get("auglab", {}).get("reason", "no rows in the result files")
            lines += [f"Not measured: {reason}.", ""]
            continue
        if preset == "xdomain":
            a = meta.get("auglab", {})
            lines += [f"AugLab {a.get('auglab')} ({a.get('source')}), kornia {a.get('kornia')}, config "
                      f"`transform_params_gpu.json` ({a.get('config')}), run in `.venv-auglab` (`make auglab-env`). "
                      "Modules whose draws cannot be fixed from a config (noise fields, random kernels, remapping "
                      "curves, bias field, axis choices) are compared by firing rate only.", ""]
        lines += [f"### Matched parameters ({len(m)} comparisons)", "",
                  "| entry | parameter | reference | ours | voxels | measured difference | tolerance | verdict "
                  "| intentional? |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in m.itertuples():
            diff = row.error or f"{fmt_number(row.difference)} ({row.metric})"
            lines.append("| " + " | ".join(_cell(c) for c in (
                row.entry, row.parameter, row.reference_behaviour, row.ours, row.region, diff,
                fmt_number(row.tolerance), row.verdict, row.intentional)) + " |")  # fmt: skip
        draws = r.draws.iloc[0] if not r.empty else meta.get("draws", "?")
        lines += ["", f"*Table: one transform with one fixed value (p = 1) in both libraries on the same input; "
                      f"measured difference of the outputs and the accepted tolerance. {provenance(res)}; 1 volume, "
                      f"seed {meta.get('seed', 0)}.*", ""]
        lines += [f"### Firing rates ({draws} draws each)", "",
                  "| entry | reference | ours | preset probability | z | verdict |", "|---|---|---|---|---|---|"]
        for row in r.itertuples():
            lines.append(f"| {_cell(row.entry)} | {float(row.reference_rate):.3f} | {float(row.ours_rate):.3f} | "
                         f"{float(row.expected):.3f} | {float(row.z):+.2f} | {row.verdict} |")
        lines += ["", f"*Table: share of the {draws} samples each library changed when the entry runs alone (a sample "
                      f"fired when its output differs from its input), the preset's own probability and the "
                      f"two-proportion z-score (accepted below {bound:g}). {provenance(res)}; seed "
                      f"{meta.get('seed', 0)}.*", ""]
        for row in res.sigma[res.sigma.preset == preset].itertuples():
            lines += [f"{row.entry} sigma over {row.draws} firings each (residual std, nnU-Net's range U(0, 0.1)): "
                      f"reference mean {float(row.reference_mean):.4f} (sd {float(row.reference_sd):.4f}), ours mean "
                      f"{float(row.ours_mean):.4f} (sd {float(row.ours_sd):.4f}), z {float(row.z):+.2f}.", ""]
        if preset == "nnunet":
            lines += ["GaussianBlur and LowResolution: the preset's probabilities are nnU-Net's effective ones for "
                      "one channel (0.2 x 0.5 per channel, 0.25 x 0.5). LowResolution at a scale close to 1 keeps the "
                      "size of a small volume and so does not change it, in both libraries.", ""]
        else:
            lines += ["AugLab's container shares each coin flip across the batch (`same_on_batch = True`); spineaug "
                      "draws per sample, so the per-sample rate is the same and only the correlation within a batch "
                      "differs.", ""]
    return "\n".join(lines)


def write(folder: str | Path = "reports/fidelity", out: str | Path = "reports") -> Path:
    """Render ``<out>/fidelity.md`` from the fidelity result files in ``folder``; return its path."""
    return _io.atomic_write_text(Path(out) / "fidelity.md", render(load(folder)))


__all__ = ["REFERENCES", "SUMMARY_HEADER", "FidelityResults", "load", "provenance", "render", "summary", "write"]
