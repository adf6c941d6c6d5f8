"""Golden outputs of the engine: a sha256 per case, to prove that a speed change leaves every output bit as it was.

``python tools/golden.py [--out FILE]`` runs the checkout it is imported from (set ``PYTHONPATH``) on fixed seeded
batches, on the CPU with one thread, and writes a JSON ``{case: sha256}`` (default: stdout). A case hashes the output
image's bytes, its dtype and shape, and the output label's bytes, so a change of value, dtype or shape shows. The
cases:

- ``preset/NAME/sSEED``: every preset of ``spineaug.presets()`` as configured (its probabilities, so subsets of the
  batch fire), for several seeds;
- ``forced/NAME/VARIANT/sSEED``: every registered transform alone, forced on (``RandomTransform.forced``) with
  ``defaults`` (registry defaults), ``preset`` (its entry in the first preset that uses it, as the benchmark takes
  it: ``spineaug.bench.cases.transform_entries``), ``exercise`` (every mechanism of ``tests/_exercise.py``),
  ``bare`` (exercise without retain_stats/blending/range clamping) and ``half`` (exercise at ``p = 0.5``: a
  subset of the batch fires);
- ``fingerprint/ARM``: ``spineaug.study.provenance.engine_fingerprint`` of every preset and study arm file, the
  hash a study cell records.

Batches: B = 2 smooth images (trilinear upsampling of seeded noise, as the study fingerprint's batch) with four
label regions, at 40 x 36 x 44, in float32 and (fewer cases) float64 at a CT-like scale.

``python tools/golden.py --check FILE`` recomputes and lists every case whose hash differs from (or is missing
in) ``FILE``; the exit status is 1 when any differs. ``--only SUBSTRING`` restricts to matching case names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, Iterator

import torch

SEEDS = (0, 1)
SHAPE = (40, 36, 44)
BATCH = 2


def make_batch(seed: int, dtype: torch.dtype = torch.float32, scale: float = 200.0, offset: float = -50.0):
    """A seeded smooth ``BATCH x 1 x SHAPE`` image and its int64 label map with values 0..3."""
    g = torch.Generator().manual_seed(1000 + seed)
    noise = torch.rand((BATCH, 1, *(max(s // 4, 2) for s in SHAPE)), generator=g, dtype=torch.float64)
    image = torch.nn.functional.interpolate(noise, size=SHAPE, mode="trilinear", align_corners=False)
    label = torch.bucketize(image, torch.tensor([0.35, 0.5, 0.65], dtype=torch.float64)).long()
    return (image * scale + offset).to(dtype).contiguous(), label


def digest(image: torch.Tensor, label: torch.Tensor | None) -> str:
    h = hashlib.sha256()
    h.update(f"{image.dtype} {tuple(image.shape)}".encode())
    h.update(image.detach().cpu().contiguous().numpy().tobytes())
    if label is not None:
        h.update(f"{label.dtype} {tuple(label.shape)}".encode())
        h.update(label.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _entries() -> Iterator[tuple[str, dict]]:
    import spineaug
    from spineaug.bench.cases import transform_entries
    from tests._exercise import BARE, EXERCISE, exercise

    preset_entry = {e["name"]: e for e, _ in transform_entries(spineaug.presets())}
    for name in sorted(spineaug.TRANSFORMS):
        cls = spineaug.TRANSFORMS[name]
        yield f"{name}/defaults", cls.forced({"name": name})
        if name in preset_entry:
            yield f"{name}/preset", cls.forced(preset_entry[name])
        if name in EXERCISE:
            ex = cls.forced({"name": name, **EXERCISE[name]})
            yield f"{name}/exercise", ex
            bare = {**exercise(name, **BARE)}
            if bare != EXERCISE[name]:
                yield f"{name}/bare", cls.forced({"name": name, **bare})
            yield f"{name}/half", {**ex, "p": 0.5}


def cases() -> Iterator[tuple[str, Callable[[], str]]]:
    """``(case name, thunk returning its hash)`` for every case, in a fixed order."""
    import spineaug

    def run(config: dict, seed: int, dtype: torch.dtype = torch.float32, **batch_kw) -> str:
        pipe = spineaug.Pipeline.from_config(config, check_finite=False)
        image, label = make_batch(seed, dtype, **batch_kw)
        out, lab = pipe(image, label, generator=torch.Generator().manual_seed(seed))
        return digest(out, lab)

    for name in spineaug.presets():
        config = spineaug.Pipeline.from_preset(name).config()
        for seed in SEEDS:
            yield f"preset/{name}/s{seed}", lambda c=config, s=seed: run(c, s)
        yield f"preset/{name}/f64/s0", lambda c=config: run(c, 0, torch.float64, scale=300.0, offset=1e4)
    for case, entry in _entries():
        config = {"seed": 0, "transforms": [entry]}
        for seed in SEEDS:
            yield f"forced/{case}/s{seed}", lambda c=config, s=seed: run(c, s)
        if case.endswith("/exercise"):
            yield f"forced/{case}/f64/s0", lambda c=config: run(c, 0, torch.float64, scale=300.0, offset=1e4)
    from spineaug.study.provenance import engine_fingerprint

    arms = list(spineaug.presets()) + sorted(str(p) for p in Path("studies/arms").glob("*.y*ml"))
    for arm in arms:
        yield f"fingerprint/{arm}", lambda a=arm: engine_fingerprint(a)


def compute(only: str | None) -> dict[str, str]:
    torch.set_num_threads(1)
    out = {}
    for name, thunk in cases():
        if only and only not in name:
            continue
        try:
            out[name] = thunk()
        except Exception as exc:  # a case that raises is recorded as such, so a change of behaviour shows too
            out[name] = f"error: {type(exc).__name__}: {exc}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the JSON here (default: stdout)")
    parser.add_argument("--check", metavar="FILE", help="compare with a recorded JSON and list the cases that differ")
    parser.add_argument("--only", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    result = compute(args.only)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if not args.check:
        if not args.out:
            print(json.dumps(result, indent=1, sort_keys=True))
        return 0
    recorded = json.loads(Path(args.check).read_text())
    if args.only:
        recorded = {k: v for k, v in recorded.items() if args.only in k}
    differ = sorted(k for k in recorded.keys() | result.keys() if recorded.get(k) != result.get(k))
    for k in differ:
        print(f"DIFFERS {k}: {recorded.get(k, 'missing')[:16]} -> {result.get(k, 'missing')[:16]}")
    fps = sum(k.startswith("fingerprint/") for k in result)
    print(f"golden: {len(result) - len(differ)}/{len(result)} cases identical ({fps} engine fingerprints), "
          f"{len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
