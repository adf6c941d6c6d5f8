"""Passes and outputs of every benchmarked transform forced on, and their change between two checkouts.

``measure [--fused] OUT.pt [NAMES...]`` runs the checkout it is imported from (set ``PYTHONPATH``): for each transform of the
benchmark (``spineaug.bench.cases.transform_entries``, forced on as the benchmark does) it counts the passes over
the batch (``spineaug.bench.probes.count_passes``) and keeps its outputs for three seeds, on a fixed CT-scaled
phantom-like batch (2 x 48 x 56 x 64, CPU, one thread). ``--fused`` counts the path a GPU takes (one-pass
``var_mean``/``aminmax`` statistics, ``spineaug.functional.intensity.FUSED_REDUCTIONS``) instead of the CPU's.
``compare OLD.pt NEW.pt`` prints, per transform, the passes
before and after and the largest absolute difference between the outputs (with the output's largest magnitude, so
a difference reads as ulps or as a different draw).
"""

from __future__ import annotations

import sys

import torch


def measure(out: str, names: set[str]) -> None:
    import spineaug
    from spineaug.bench.cases import forced_pipeline, spineaug_fn, transform_entries
    from spineaug.bench.probes import count_passes
    from tests.conftest import make_batch

    torch.set_num_threads(1)
    image, label = make_batch(b=2, shape=(48, 56, 64), seed=3)
    image = image * 300 + 40  # CT-like scale and offset
    results = {}
    for entry, _ in transform_entries(p for p in ("xdomain", "nnunet") if p in spineaug.presets()):
        name = entry["name"]
        if names and name not in names:
            continue
        passes = count_passes(spineaug_fn(forced_pipeline([entry], 0, "cpu"), 0), image, label)
        outs = [forced_pipeline([entry], s, "cpu")(image, label, generator=torch.Generator().manual_seed(s))[0]
                for s in range(3)]
        results[name] = (passes, outs)
        print(f"{name:22s} {passes:6.2f}", flush=True)
    torch.save(results, out)


def compare(old: str, new: str) -> None:
    a, b = torch.load(old), torch.load(new)
    print("| transform | passes before | passes after | max abs difference | output max abs |")
    print("|---|---:|---:|---:|---:|")
    for name, (pb, ob) in b.items():
        if name not in a:
            continue
        pa, oa = a[name]
        diff = max(float((x.double() - y.double()).abs().max()) for x, y in zip(oa, ob))
        scale = max(float(x.abs().max()) for x in oa)
        print(f"| {name} | {pa:.3g} | {pb:.3g} | {diff:.3g} | {scale:.3g} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "measure":
        args = sys.argv[2:]
        if args[0] == "--fused":
            from spineaug.functional import intensity as FI

            FI.FUSED_REDUCTIONS = True
            args = args[1:]
        measure(args[0], set(args[1:]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
