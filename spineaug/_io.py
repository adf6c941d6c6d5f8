"""Small, dependency-free helpers for result files: atomic writes, run ids, system info and process memory.

Shared by the benchmark runner (``spineaug.bench``), the report and the study runner. The module imports only the
standard library at import time (torch is imported inside the functions that describe it), so the AugLab worker,
which runs in an interpreter where spineaug is not importable, can load this file by path.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

VERSIONED_PACKAGES = (
    "spineaug", "torch", "numpy", "batchgeneratorsv2", "nnunetv2", "torchio", "monai", "kornia", "asv",
)
"""Packages whose versions :func:`package_versions` records by default."""


# ---------------------------------------------------------------------------------------------- atomic files


def check_writable_folder(path: str | Path, what: str = "--out") -> Path:
    """Raise ``OSError`` now if files cannot be written under the folder ``path`` (which need not exist yet).

    For runners that work for minutes before writing: the nearest existing ancestor must be a folder that accepts
    a new file (probed by creating and removing a temporary file there; nothing else is created).
    """
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {path}: {probe} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as exc:
        raise PermissionError(f"{what} {path}: cannot write in {probe} ({exc.strerror or exc})") from exc
    return path



def atomic_write(path: str | Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` on a temporary file in the same folder, then rename it to ``path``.

    A reader (or a process killed at any moment) never sees a half-written file, and a re-run replaces the whole
    file. Any writer works: ``lambda p: torch.save(obj, p)``, ``lambda p: np.savez(p, ...)``.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_csv(
    path: str | Path, rows: Iterable[Mapping[str, Any]] | Any, columns: Sequence[str] | None = None
) -> Path:
    """Write rows (dicts, or a pandas DataFrame) as CSV, atomically.

    Args:
        path: Output file.
        rows: An iterable of dicts, or a DataFrame (written without its index).
        columns: Column order. For dicts, missing keys are written empty and keys not listed are left out;
            defaults to the keys of the first row. For a DataFrame, selects and orders its columns.

    Returns:
        The written path.
    """
    if hasattr(rows, "to_csv") and hasattr(rows, "columns"):  # a pandas DataFrame, without importing pandas
        frame = rows if columns is None else rows[list(columns)]
        return atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return atomic_write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- run ids


def new_run_id() -> str:
    """A run id: local start time and a random suffix, e.g. ``20261124T045301-3fa2c1`` (sorts by time)."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


# ---------------------------------------------------------------------------------------------- system info


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def package_versions(packages: Iterable[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed version of each package, or ``"missing"``."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def git_state(folder: str | Path | None = None) -> str | None:
    """``<commit>`` or ``<commit>+dirty`` of the checkout holding spineaug (``None`` outside a git checkout)."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


ENGINE_PATHS = ("spineaug/functional", "spineaug/transforms", "spineaug/presets", "spineaug/pipeline.py",
                "spineaug/batch.py", "spineaug/_sampling.py")
"""The files whose code is the augmentation engine: a change there can change its speed or outputs."""


def changed_since(commit: str, paths: Iterable[str] = ENGINE_PATHS, folder: str | Path | None = None) -> list[str] | None:
    """Files under ``paths`` that differ between ``commit`` and the working tree (``None`` when git cannot say)."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        root = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        out = subprocess.run(["git", "-C", root, "diff", "--name-only", commit.split("+")[0], "--", *paths],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line for line in out.splitlines() if line]


def system_info() -> dict[str, Any]:
    """Threads, CPUs, platform, Python, package versions, GPU and spineaug's git commit (for ``meta.json``)."""
    import torch  # lazy: this file imports only the standard library (the AugLab worker loads it by path)

    return {
        "git": git_state(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpus_available": available_cpus(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": package_versions(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


# ---------------------------------------------------------------------------------------------- process memory


def read_proc_status(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmHWM``, ``VmRSS``) in bytes; ``None`` when unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int | None:
    """This process's resident-set high-water mark (``VmHWM``) in bytes; ``None`` off Linux."""
    return read_proc_status("VmHWM")


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark to the current RSS (Linux >= 4.0); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mem_available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


__all__ = [
    "atomic_write_csv",
    "atomic_write_text",
    "available_cpus",
    "cpu_model",
    "mem_available_bytes",
    "new_run_id",
    "package_versions",
    "peak_rss_bytes",
    "read_proc_status",
    "reset_peak_rss",
    "system_info",
]
