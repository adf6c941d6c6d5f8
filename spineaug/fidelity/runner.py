"""Write the fidelity measurements to result files: ``matched.csv``, ``rates.csv``, ``sigma.csv`` and ``meta.json``.

The report (:mod:`spineaug.report.fidelity`) renders these files; it never runs a library. The committed copy lives
in ``reports/fidelity/`` (``make fidelity``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from spineaug import _io, _schema
from spineaug.baselines import BaselineUnavailable
from spineaug.fidelity import auglab as auglab_fidelity
from spineaug.fidelity import nnunet as nnunet_fidelity


def _verdict(ok: bool) -> str:
    return _schema.VERDICT_OK if ok else "outside"


def match_row(m: Any) -> dict[str, Any]:
    """A ``matched.csv`` row of a :class:`spineaug.fidelity.nnunet.Match`."""
    return dict(preset="nnunet", entry=m.entry, parameter=m.parameter, reference_behaviour=m.reference, ours=m.ours,
                difference=f"{m.difference:.6g}", metric=m.metric, tolerance=f"{m.tolerance:g}", region="all",
                intentional=m.intentional, verdict=_verdict(m.difference <= m.tolerance), error="")


def rate_row(preset: str, r: Any) -> dict[str, Any]:
    """A ``rates.csv`` row of a :class:`spineaug.fidelity.nnunet.Rate`."""
    return dict(preset=preset, entry=r.entry, reference_rate=f"{r.reference:.6g}", ours_rate=f"{r.ours:.6g}",
                expected=f"{r.expected:.6g}", draws=r.draws, z=f"{r.z:.4f}",
                verdict=_verdict(abs(r.z) < _schema.FIDELITY_RATE_SIGMAS))


def sigma_row(s: Any) -> dict[str, Any]:
    """A ``sigma.csv`` row of a :class:`spineaug.fidelity.nnunet.SigmaStats` (nnU-Net's Gaussian noise)."""
    return dict(preset="nnunet", entry="GaussianNoise", reference_mean=f"{s.reference_mean:.6g}",
                ours_mean=f"{s.ours_mean:.6g}", reference_sd=f"{s.reference_sd:.6g}", ours_sd=f"{s.ours_sd:.6g}",
                draws=s.draws, z=f"{s.z:.4f}", verdict=_verdict(abs(s.z) < _schema.FIDELITY_RATE_SIGMAS))


def nnunet_rows(draws: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Matched, rate and sigma rows of ``nnunet`` vs nnU-Net v2 (:mod:`spineaug.fidelity.nnunet`)."""
    return ([match_row(m) for m in nnunet_fidelity.matched(seed)],
            [rate_row("nnunet", r) for r in nnunet_fidelity.rates(draws, seed)],
            [sigma_row(nnunet_fidelity.noise_sigma(draws, seed))])


def write_rows(out: str | Path, matched: list[dict], rates: list[dict], sigma: list[dict]) -> None:
    """Write the three CSV files of a run."""
    out = Path(out)
    _io.atomic_write_csv(out / _schema.FIDELITY_MATCHED, matched, _schema.FIDELITY_MATCH_COLUMNS)
    _io.atomic_write_csv(out / _schema.FIDELITY_RATES, rates, _schema.FIDELITY_RATE_COLUMNS)
    _io.atomic_write_csv(out / _schema.FIDELITY_SIGMA, sigma, _schema.FIDELITY_SIGMA_COLUMNS)


def auglab_rows(draws: int, seed: int) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Matched and rate rows of ``xdomain`` vs AugLab, and what was measured (or why not: no AugLab environment)."""
    try:
        rates, matches, reply = auglab_fidelity.measure(draws, seed)
    except BaselineUnavailable as exc:
        return [], [], {"measured": False, "reason": str(exc)}
    matched = []
    for m in matches:
        c = m.comparison
        cfg = ", ".join(f"{k} {v}" for k, v in c.config.items() if k != "probability")
        verdict = "error" if m.error else _verdict(m.ok)
        matched.append(dict(preset="xdomain", entry=c.key, parameter=cfg or "-", reference_behaviour=c.key.split("@")[0],
                            ours=m.entries, difference="" if m.error else f"{m.difference:.6g}",
                            metric="max |diff| / std of AugLab's output", tolerance=f"{c.tolerance:g}",
                            region=c.region, intentional=c.intentional, verdict=verdict, error=m.error))
    rate_rows = [rate_row("xdomain", r) for r in rates]
    info = {"measured": True, **{k: reply.get(k) for k in ("auglab", "source", "kornia", "config")}}
    return matched, rate_rows, info


def run(out: str | Path = "results/fidelity", draws: int = 400, seed: int = 0, auglab: bool = True) -> Path:
    """Measure ``nnunet`` vs nnU-Net v2 and (when ``auglab`` and its environment exist) ``xdomain`` vs AugLab; write
    the result files into ``out`` and return the folder."""
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    out = _io.check_writable_folder(Path(out), "--out")  # written after minutes of measuring: check first
    started = time.time()
    info = _io.system_info()  # before anything is written: the commit as it was measured
    matched, rates, sigma = nnunet_rows(draws, seed)
    if auglab:
        a_matched, a_rates, auglab_info = auglab_rows(draws, seed)
    else:
        a_matched, a_rates, auglab_info = [], [], {"measured": False, "reason": "not requested (--no-auglab)"}
    write_rows(out, matched + a_matched, rates + a_rates, sigma)
    meta = {
        "run_id": _io.new_run_id(),
        "command": f"spineaug fidelity --out {out}" + (f" --draws {draws}" if draws != 400 else "")
                   + (f" --seed {seed}" if seed else "") + ("" if auglab else " --no-auglab"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "git": info["git"],
        "machine": f"{info['cpu_model']} ({info['cpus_available']} CPUs available)",
        "cuda": info["cuda"],
        "versions": {k: v for k, v in info["versions"].items() if k in ("spineaug", "torch", "batchgeneratorsv2",
                                                                        "nnunetv2", "kornia")},
        "draws": draws,
        "seed": seed,
        "rate_sigmas": _schema.FIDELITY_RATE_SIGMAS,
        "auglab": auglab_info,
    }  # fmt: skip
    _io.atomic_write_text(out / _schema.FIDELITY_META, json.dumps(meta, indent=1) + "\n")
    return out
