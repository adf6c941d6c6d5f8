"""Observe AugLab's GPU modules in its own interpreter (``.venv-auglab``); run as a script, never imported by spineaug.

The fidelity check of ``xdomain`` against the paper's toolbox (:mod:`spineaug.fidelity.auglab`) needs two
things from AugLab (GPL-3.0, used strictly as an installed package):

* **Firing rates**: AugLab's container built from a config file is called ``draws`` times on a batch of one; after
  each call every module's kornia parameter dict holds ``batch_prob``, the module's own coin flip for the sample.
* **Matched outputs**: for each single-module config (``p = 1`` and degenerate ranges, so the module is
  deterministic), the container's output on the given volume.

Usage (:func:`spineaug.baselines.auglab.probe` does this):
    .venv-auglab/bin/python spineaug/baselines/_auglab_probe.py REQUEST.json

``REQUEST.json``: ``{"config": PATH, "image": NPY, "label": NPY, "draws": N, "seed": S, "out": DIR,
"matched": [{"id": ID, "config": {...}}, ...]}`` with image and label of shape (1, 1, X, Y, Z). Reply on stdout, one
JSON object: ``{"auglab": VERSION, "kornia": VERSION, "modules": [class names in order], "fired": [counts],
"draws": N, "matched": {ID: NPY}}``; a matched config that fails has ``"error: ..."`` instead of a path.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from importlib.metadata import version

# This folder holds spineaug's own ``auglab.py``; keep it off sys.path so ``import auglab`` finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]


def main(request_path: str) -> int:
    warnings.filterwarnings("ignore")
    with open(request_path) as f:
        req = json.load(f)
    # optional: AugLab's environment (torch, kornia, auglab), imported once this folder is off sys.path
    import kornia
    import numpy as np
    import torch
    from auglab.transforms.gpu.transforms import AugTransformsGPU

    torch.set_num_threads(int(req.get("threads", 1)))
    torch.manual_seed(int(req.get("seed", 0)))
    image = torch.from_numpy(np.load(req["image"])).float()
    label = torch.from_numpy(np.load(req["label"])).float()
    aug = AugTransformsGPU(req["config"])
    modules = list(aug.children())
    fired = [0] * len(modules)
    with torch.no_grad():
        for _ in range(int(req["draws"])):
            aug(image.clone(), label.clone())  # AugLab works in place: each call gets a fresh copy
            for i, m in enumerate(modules):
                fired[i] += int(bool(m._params["batch_prob"].reshape(-1)[0]))
    matched = {}
    for item in req.get("matched", []):
        path = os.path.join(req["out"], f"{item['id']}.json")
        with open(path, "w") as f:
            json.dump(item["config"], f)
        try:
            single = AugTransformsGPU(path)
            with torch.no_grad():
                out = single(image.clone(), label.clone())
            result = out[0] if isinstance(out, (list, tuple)) else out
            npy = os.path.join(req["out"], f"{item['id']}.npy")
            np.save(npy, result.detach().cpu().numpy())
            matched[item["id"]] = npy
        except Exception as exc:  # report and go on with the next module
            matched[item["id"]] = f"error: {type(exc).__name__}: {exc}"
    reply = {
        "auglab": version("auglab"), "kornia": kornia.__version__,
        "modules": [type(m).__name__ for m in modules], "fired": fired, "draws": int(req["draws"]), "matched": matched,
    }
    json.dump(reply, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
