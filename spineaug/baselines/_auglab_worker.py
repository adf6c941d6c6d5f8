"""Time AugLab's GPU pipeline in its own interpreter (``.venv-auglab``); run as a script, never imported by spineaug.

AugLab (GPL-3.0) is used as an installed package only: this script imports it, builds its GPU container from a
config file and times calls. It prints one JSON object on stdout.

Usage (the runner in ``spineaug.bench`` does this):
    .venv-auglab/bin/python spineaug/baselines/_auglab_worker.py REQUEST.json

``REQUEST.json``: ``{"config": PATH, "device": "cpu", "threads": 2, "seed": 0, "warmup": 1, "repeats": 5,
"cases": [[B, S], ...], "max_seconds": 60, "data": ""}`` (``data``: an optional ``torch.save`` file mapping ``"BxS"`` to
``(image, label)``; other cases get a random batch). Reply: ``{"kornia": ..., "auglab": ..., "cases": [{"batch": B, "size": S,
"times": [...], "peak_rss_bytes": ..., "cuda_max_allocated_bytes": ..., "error": null}, ...]}``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from importlib.metadata import version

# This folder holds spineaug's own ``auglab.py``; keep it off sys.path so ``import auglab`` finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]


def _load_io():
    """spineaug's ``_io.py`` (atomic files, ``/proc`` memory readers), loaded by path.

    This worker runs in ``.venv-auglab``, where spineaug is not importable (and importing the package would pull in
    its dependencies); ``_io.py`` imports only the standard library, so its file is loaded on its own.
    """
    spec = importlib.util.spec_from_file_location("_spineaug_io", os.path.join(os.path.dirname(_HERE), "_io.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_io = _load_io()


def main(request_path: str) -> int:
    warnings.filterwarnings("ignore")
    with open(request_path) as f:
        req = json.load(f)
    # optional: AugLab's environment (torch, kornia, auglab), imported once this folder is off sys.path
    import torch

    torch.set_num_threads(int(req.get("threads", torch.get_num_threads())))
    import kornia
    from auglab.transforms.gpu.transforms import AugTransformsGPU

    device = torch.device(req.get("device", "cpu"))
    torch.manual_seed(int(req.get("seed", 0)))
    aug = AugTransformsGPU(req["config"]).to(device)
    out = {
        "kornia": kornia.__version__,
        "auglab": version("auglab"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n_modules": len(list(aug.children())),
        "cases": [],
    }
    budget = float(req.get("max_seconds", 1e9))
    data = torch.load(req["data"]) if req.get("data") else {}
    for b, s in req["cases"]:
        case = {"batch": b, "size": s, "times": [], "peak_rss_bytes": None, "cuda_max_allocated_bytes": None,
                "error": None}
        out["cases"].append(case)
        try:
            if f"{b}x{s}" in data:  # the batch the in-process rows use
                image, label = data[f"{b}x{s}"]
                image, label = image.to(device), label.to(torch.int16).to(device)
            else:
                g = torch.Generator().manual_seed(int(req.get("seed", 0)) + 1000 * b + s)
                image = torch.randn((b, 1, s, s, s), generator=g).to(device)
                label = torch.randint(0, 4, (b, 1, s, s, s), generator=g).to(torch.int16).to(device)
            _io.reset_peak_rss()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            started = time.perf_counter()
            for i in range(int(req.get("warmup", 1)) + int(req.get("repeats", 5))):
                # AugLab mutates its input in place, as in its trainer each batch is fresh: clone outside the clock.
                x, y = image.clone(), label.clone()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                with torch.no_grad():
                    rx, ry = aug(x, y)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                dt = time.perf_counter() - t0
                del rx, ry  # released after the clock stops, as spineaug.bench.timing.time_calls does
                if i >= int(req.get("warmup", 1)):
                    case["times"].append(dt)
                if time.perf_counter() - started > budget and case["times"]:
                    break
            case["peak_rss_bytes"] = _io.peak_rss_bytes()
            if device.type == "cuda":
                case["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
        except Exception as exc:  # report and go on with the next case
            case["error"] = f"{type(exc).__name__}: {exc}"
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
