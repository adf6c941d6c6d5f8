"""The ``spineaug`` command line. Each subcommand is a thin layer over the public API."""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import re
import sys
import warnings
from pathlib import Path

import torch

import spineaug
from spineaug import _io, _schema
from spineaug.config import preset_config
from spineaug.integrations import nnunet, require
from spineaug.validation import NoEffectWarning


def one_line(text: str, width: int = 96) -> str:
    """The first sentence of ``text`` without its parentheses, cut at a word to ``width`` characters."""
    text = " ".join(text.split())
    while True:  # innermost parentheses first, so nested ones go too
        shorter = re.sub(r"\s*\([^()]*\)", "", text)
        if shorter == text:
            break
        text = shorter
    first = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0].rstrip(".;")
    return first if len(first) <= width else first[: width - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _cmd_presets(args: argparse.Namespace) -> int:
    names = spineaug.presets()
    pad = max(map(len, names))
    for name in names:
        description = preset_config(name).get("description") or ""
        print(f"{name:<{pad}}  {one_line(description)}".rstrip())
    return 0


def _unknown_name(source: str) -> str:
    """The error for a ``config`` argument that is neither a file nor a known preset or transform."""
    names = [*spineaug.presets(), *spineaug.TRANSFORMS]
    close = difflib.get_close_matches(source, names, n=3, cutoff=0.6) or difflib.get_close_matches(
        source.lower(), [n.lower() for n in names], n=3, cutoff=0.6)  # fmt: skip
    close = [n for n in names if n.lower() in close] if close and close[0] not in names else close
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    return (f"{source!r} is not a config file, a preset or a transform name{hint} (presets: "
            f"{', '.join(spineaug.presets())}; `spineaug presets` describes them)")  # fmt: skip


def _pipeline_of(source: str, **kwargs) -> spineaug.Pipeline:
    """The pipeline a ``config``/``profile`` argument names: a preset, one transform with its defaults, or a config
    file; anything else is refused with the closest names."""
    if source in spineaug.presets():
        return spineaug.Pipeline.from_preset(source, **kwargs)
    if source in spineaug.TRANSFORMS:
        return spineaug.Pipeline.from_config({"transforms": [{"name": source}]}, **kwargs)
    if not Path(source).exists() and not source.endswith((".json", ".yaml", ".yml")):
        raise ValueError(_unknown_name(source))
    return spineaug.Pipeline.from_config(source, **kwargs)


def _cmd_config(args: argparse.Namespace) -> int:
    source = args.config
    if source in spineaug.TRANSFORMS:  # a transform name: its parameters with their defaults, then its documentation
        cls = spineaug.TRANSFORMS[source]
        print(json.dumps(cls().config(), indent=2))
        print(inspect.getdoc(cls) or "")
        return 0
    print(json.dumps(_pipeline_of(source).config(), indent=2))
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    require("matplotlib", "report", "spineaug preview")
    from spineaug.preview import gallery  # lazy: the phantom and scipy stay out of `spineaug --help`

    _check_preview_options(args)
    _io.check_writable_folder(Path(args.out).parent, f"--out {args.out}: folder")  # written last: check it first
    if Path(args.out).is_dir():
        raise IsADirectoryError(f"--out {args.out} is a folder; name the PNG file to write")
    if args.phantom:
        from spineaug.preview import phantom  # lazy: as gallery above

        print(phantom.render(args.out, seed=args.case))
        return 0
    args.preset = args.preset or "xdomain"
    if args.label is not None and args.image is None:
        raise ValueError("--label needs --image")
    if args.config is None and args.preset not in spineaug.presets():
        raise ValueError(f"unknown preset {args.preset!r}; available presets: {', '.join(spineaug.presets())}")
    if not args.draws:  # a bad config fails before the case is read and the panels are drawn
        if args.config is not None:
            with warnings.catch_warnings():  # the gallery forces every entry on: p 0 is no concern here
                warnings.simplefilter("ignore", NoEffectWarning)
                spineaug.Pipeline.from_config(args.config)
        title, entries = gallery.preset_entries(args.config if args.config is not None else args.preset)
    elif args.patch is not None and (len(args.patch) != 3 or min(args.patch) < 1):
        raise ValueError(f"--patch must be three positive integers D,H,W, got {','.join(map(str, args.patch))}")
    if args.image is not None:
        volume = gallery.nifti_volume(args.image, args.label)
    else:
        try:
            volume = gallery.phantom_volume(args.case, args.domain or "t2w")
        except ImportError as exc:
            raise ValueError(f"the phantom is not available ({exc}); pass --image (and --label) NIfTI files") from None
    if args.draws:
        args.presets = args.presets or ("nnunet", "xdomain", "xdomain-plus")
        print(gallery.render_draws(volume, args.presets, args.out, draws=args.draws, seed=args.seed or 0,
                                   patch=args.patch))  # fmt: skip
        return 0
    out = gallery.render_gallery(volume, entries, args.out, seed=args.seed or 0, title=title,
                                 whole_case=args.whole_case)  # fmt: skip
    print(out)
    return 0


def _given(args: argparse.Namespace, *names: str) -> list[str]:
    """The options among ``names`` (attribute names) that the command line set: not None, not False, not 0."""
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, False, 0)]


def _refuse(given: list[str], why: str) -> None:
    """A ValueError naming options that would be read by nobody."""
    if given:
        raise ValueError(f"{', '.join(given)} {'has' if len(given) == 1 else 'have'} no effect {why}")


def _check_preview_options(args: argparse.Namespace) -> None:
    """Refuse preview options the chosen mode never reads."""
    if args.draws < 0:
        raise ValueError(f"--draws must be >= 0 (0: the gallery of one preset), got {args.draws}")
    if args.phantom:
        ignored = _given(args, "preset", "config", "image", "label", "domain", "whole_case", "seed", "draws",
                         "presets", "patch")  # fmt: skip
        _refuse(ignored, "with --phantom (it draws phantom case --case in every domain)")
        return
    if args.draws:
        _refuse(_given(args, "preset", "config", "whole_case"), "with --draws (it draws the presets of --presets)")
        if args.presets is not None and (not args.presets or len(set(args.presets)) != len(args.presets)):
            raise ValueError("--presets: name at least one preset, without repeats, got "
                             f"{','.join(args.presets)!r}")  # fmt: skip
        unknown = [p for p in args.presets or () if p not in spineaug.presets()]
        if unknown:
            raise ValueError(f"unknown preset(s) {unknown}; available presets: {', '.join(spineaug.presets())}")
    else:
        _refuse(_given(args, "presets", "patch"), "without --draws")
    if args.config is not None:
        _refuse(_given(args, "preset"), "with --config")
    if args.image is not None:
        _refuse(_given(args, "domain", "case"), "with --image (they choose a phantom case)")


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _csv_names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _headline(text: str) -> tuple[int, int]:
    try:
        batch, size = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--headline must be B,S (two integers), got {text!r}") from None
    return batch, size


def _cmd_bench(args: argparse.Namespace) -> int:
    from spineaug import bench  # lazy: keeps `spineaug --help` light (the phantom, nibabel, scipy)

    if args.training:
        _refuse(_given(args, "pipelines", "baselines", "headline", "threads", "max_seconds", "no_transforms",
                       "no_checks"), "with --training")  # fmt: skip
        return _bench_training(args)
    _refuse(_given(args, "cores"), "without --training")
    overrides = {k: v for k, v in dict(
        pipelines=args.pipelines, baselines=args.baselines, sizes=args.sizes, batches=args.batches,
        devices=args.device, repeats=args.repeats, warmup=args.warmup, max_seconds=args.max_seconds,
        threads=args.threads, seed=args.seed, headline=args.headline,
    ).items() if v is not None}
    if args.no_transforms:
        overrides["transforms"] = False
    if args.no_checks:
        overrides["checks"] = False
    config = bench.BenchConfig.quick(**overrides) if args.quick else bench.BenchConfig(**overrides)
    bench.run(config, args.out, **_log(args))
    return 0


def _log(args: argparse.Namespace) -> dict:
    """``log=`` for the benchmark runners: nothing with ``--quiet`` (their default prints each step)."""
    return {"log": lambda line: None} if args.quiet else {}


def _single(values: tuple[int, ...] | tuple[str, ...] | None, option: str) -> int | str | None:
    if values is not None and len(values) != 1:
        raise ValueError(f"{option} takes one value with --training, got {','.join(map(str, values))}")
    return None if values is None else values[0]


def _bench_training(args: argparse.Namespace) -> int:
    from spineaug import bench  # lazy: as in _cmd_bench

    patch = _single(args.sizes, "--sizes")
    overrides = {k: v for k, v in dict(
        patch_size=None if patch is None else (patch,) * 3, batch_size=_single(args.batches, "--batches"),
        device=_single(args.device, "--device"), iterations=args.repeats, warmup=args.warmup, seed=args.seed,
        cpu_budgets=args.cores,
    ).items() if v is not None}
    config = bench.TrainingConfig.quick(**overrides) if args.quick else bench.TrainingConfig(**overrides)
    bench.run_training(config, args.out, **_log(args))
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from spineaug.bench import cases, costs  # lazy: as in _cmd_bench

    for option, value, least in (("--batch", args.batch, 1), ("--size", args.size, 8), ("--calls", args.calls, 1),
                                 ("--warmup", args.warmup, 0), ("--threads", args.threads, 1)):
        if value is not None and value < least:
            raise ValueError(f"{option} must be at least {least}, got {value}")
    aug = _pipeline_of(args.config, check_finite=False)  # as the benchmark times it
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: this machine has no CUDA device")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    image, label = cases.make_batch(args.batch, args.size, device, args.seed)
    prof = costs.profile_steps(aug.to(device), image, label, seed=args.seed, warmup=args.warmup, repeats=args.calls)
    rows = [(costs.step_name(aug, pos), sec) for pos, sec in prof.steps.items()]
    rows += [("own overhead (parameter draws, input checks, glue)", prof.own), ("call (mean)", prof.call_mean)]
    pad = max(len(label) for label, _ in rows)
    print(f"spineaug profile {args.config}: B={args.batch}, 1x{args.size}^3 phantom patches, {device.type}, "
          f"{torch.get_num_threads()} thread(s), mean of {prof.calls} calls after {args.warmup} warm-up (seed "
          f"{args.seed})")
    print(f"{'step':<{pad}}  {'ms':>9}  {'share':>6}")
    for label, sec in rows:
        print(f"{label:<{pad}}  {sec * 1e3:9.2f}  {sec / prof.call_mean:6.1%}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    require("pandas", "report", "spineaug report")
    require("matplotlib", "report", "spineaug report")
    # optional: pandas and matplotlib (report extra)
    from spineaug.report import benchmark, index
    from spineaug.report import fidelity as fidelity_report

    if args.fidelity:
        _refuse(_given(args, "allow_reduced"), "with --fidelity (it renders the fidelity page only)")
    out = _io.check_writable_folder(Path(args.out), "--out")  # pages are written after the figures: check first
    fidelity = Path(args.fidelity_data) if args.fidelity_data else out / "fidelity"
    if (fidelity / "matched.csv").exists() or (fidelity / "rates.csv").exists():
        print(fidelity_report.write(fidelity, out))
    else:
        print(f"spineaug report: no fidelity results in {fidelity} (run `make fidelity`); skipped", file=sys.stderr)
    if args.fidelity:
        return 0
    results = Path(args.results)
    committed = out / "bench"
    if (results / "bench" / "pipelines.csv").exists() or (results / "pipelines.csv").exists():
        bench_out = out
        reduced = _reduced_benchmark(results)
        if reduced and not args.allow_reduced:  # never replace the page of a full run with a quick or partial one
            print(f"spineaug report: the benchmark results in {results} come from a reduced run ({'; '.join(reduced)}):"
                  f" writing {out / 'reduced' / 'benchmark.md'}, not {out / 'benchmark.md'} (--allow-reduced writes "
                  "it there)", file=sys.stderr)  # fmt: skip
            bench_out = out / "reduced"
        print(benchmark.write(results, bench_out))
    elif (committed / "pipelines.csv").exists():
        print(benchmark.write(committed, out))  # the committed copy: the report renders it again
    else:
        print(f"spineaug report: no benchmark results under {results} or {committed} (run `spineaug bench`); skipped",
              file=sys.stderr)
    studies = Path(args.study_data)
    if any(studies.glob("*/summary.csv")):
        from spineaug.report import study  # optional: pandas (report extra)

        print(study.write(studies, out))
    else:
        print(f"spineaug report: no study results under {studies} (run `make study`); skipped", file=sys.stderr)
    print(index.write(out, study_data=studies, fidelity=fidelity))
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from spineaug import fidelity  # lazy: keeps `spineaug --help` light (baselines, AugLab importer)

    print(fidelity.run(args.out, draws=args.draws, seed=args.seed, auglab=not args.no_auglab))
    return 0


def _reduced_benchmark(results) -> list[str]:
    """How the benchmark run in ``results`` (``bench/`` or the folder itself) is smaller than a full run."""
    # lazy: importing spineaug.bench loads the phantom, nibabel and scipy
    from spineaug.bench.config import reduced_settings
    from spineaug.bench.training import reduced_training_settings

    folder = results / "bench" if (results / "bench" / "pipelines.csv").exists() else results
    found = []
    for name, check, what in ((_schema.BENCH_META, reduced_settings, ""),
                              (_schema.TRAINING_META, reduced_training_settings, "training ")):  # fmt: skip
        path = folder / name
        if path.is_file():
            found += [what + d for d in check(json.loads(path.read_text()).get("config", {}))]
    return found


def _cmd_phantom(args: argparse.Namespace) -> int:
    from spineaug import phantom  # lazy: keeps `spineaug --help` light (scipy)

    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        raise ValueError(f"--shape must be three comma-separated integers X,Y,Z, got {args.shape!r}") from None
    try:
        spacing = [float(v) for v in args.spacing.split(",")] if "," in args.spacing else float(args.spacing)
    except ValueError:
        raise ValueError(f"--spacing must be a number or X,Y,Z in mm, got {args.spacing!r}") from None
    roots = phantom.write_datasets(
        args.out, args.domains, args.cases, args.seed, spacing=spacing, shape=shape,
        dataset_id=args.dataset_id, overwrite=args.overwrite, progress=not args.quiet,
    )  # fmt: skip
    for root in roots.values():
        print(root)
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from spineaug import study  # lazy: keeps `spineaug --help` light (the harness, nibabel, scipy)

    if args.quick and args.study is not None:
        raise ValueError("give a study file or --quick, not both")
    slurm_options = _given(args, "partition", "gpus", "cpus", "mem_gb", "time_min")
    if args.status:
        _refuse(_given(args, "summarize", "export", "include_stale", "executor", "workers") + slurm_options,
                "with --status (it only lists the cells)")  # fmt: skip
    elif args.summarize:
        _refuse(_given(args, "executor", "workers") + slurm_options, "with --summarize (it trains no cell)")
    elif (args.executor or "inline") != "slurm":
        _refuse(slurm_options, f"with --executor {args.executor or 'inline'} (they are SLURM resources)")
        if (args.executor or "inline") == "inline":
            _refuse(_given(args, "workers"), "with --executor inline (one cell at a time)")
    cfg = study.load_study(args.study or ("studies/quick.yaml" if args.quick else "studies/default.yaml"))
    out = Path(args.out) / cfg.name
    exports = []
    for folder in args.resume_from or ():
        from spineaug.study.archive import RECORDS  # optional: pandas (study extra)

        folder = Path(folder)
        export = folder if (folder / RECORDS).is_file() else folder / cfg.name
        if not (export / RECORDS).is_file():  # every export is checked before the first is restored
            raise FileNotFoundError(f"--resume-from {folder}: no {RECORDS} in {folder} or {export} (an export "
                                    "written by `spineaug study --export`)")  # fmt: skip
        exports.append(export)
    for export in exports:
        from spineaug.study.archive import restore  # optional: pandas (study extra)

        restored = restore(cfg, export, out)
        print(f"restored {len(restored)} finished cell(s) from {export}", file=sys.stderr)
    if args.status:
        print(study.status(cfg, out))
        return 0
    if args.summarize:
        from spineaug.study.runner import cell_state  # lazy: as spineaug.study above

        if not any(cell_state(out, c) == "done" for c in study.cells(cfg)):
            raise ValueError(f"--summarize: no finished cell of study {cfg.name!r} in {out}; run the study (or "
                             "--resume-from an export) first")  # fmt: skip
        study.summarize(cfg, out, include_stale=args.include_stale)
        print(out / "summary.md")
        if args.export:
            print(study.export(out, Path(args.export) / cfg.name, cfg))
        return 0
    if args.export:  # written after the whole study: check it before the study starts
        _io.check_writable_folder(Path(args.export) / cfg.name, "--export")
    slurm = study.SlurmOptions(**{k: v for k, v in dict(partition=args.partition, gpus=args.gpus, cpus=args.cpus,
                                                        mem_gb=args.mem_gb, time_min=args.time_min).items()
                                  if v is not None})  # fmt: skip
    study.run_study(cfg, out, executor=args.executor or "inline", workers=args.workers or 1, slurm=slurm,
                    progress=not args.quiet, include_stale=args.include_stale)  # fmt: skip
    print(out / "summary.md")
    if args.export:
        print(study.export(out, Path(args.export) / cfg.name, cfg))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    require("monai", "study", "spineaug predict")
    from spineaug.study.predict import predict  # lazy: as spineaug.study in _cmd_study

    if not args.tta:
        _refuse(_given(args, "mirror_axes"), "without --tta")
    try:
        axes = _csv_ints(args.mirror_axes or "0") if args.tta else ()
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"--mirror-axes: {exc}") from None
    for path in predict(args.model, args.input, args.out, progress=not args.quiet, device=args.device,
                        mirror_axes=axes, trusted=args.trust_model):  # fmt: skip
        print(path)
    return 0


def _cmd_nnunet_install(args: argparse.Namespace) -> int:
    try:
        if args.uninstall:
            path = nnunet.uninstall(args.folder)
            print(f"removed {path}" if path else "nothing to remove: spineaug's trainer module is not installed")
            return 0
        path, written = nnunet.install(args.folder)
    except (ImportError, OSError) as exc:
        print(f"spineaug nnunet-install: error: {exc}", file=sys.stderr)
        return 2
    if written:
        print(f"wrote {path}:\n{path.read_text()}", end="")
    else:
        print(f"already installed: {path}")
    return 0


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true",
                   help="also show the libraries' deprecation warnings (hidden otherwise) and a traceback on error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spineaug", description=__doc__)
    parser.add_argument("--version", action="version", version=f"spineaug {spineaug.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("presets", help="list the bundled augmentation presets")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("config", help="validate a preset name or a JSON/YAML config and print it in full; "
                       "a transform name (e.g. Gamma) prints its parameters")
    p.add_argument("config", help="preset name, transform name or path to a .json/.yaml config")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("preview", help="render one case under each transform of a preset (forced on) to a PNG grid; "
                       "or random draws of whole presets (--draws); or the phantom in every domain (--phantom)")
    p.add_argument("--preset", default=None, help="preset name (default: xdomain)")
    p.add_argument("--config", default=None, help="a JSON/YAML config instead of --preset")
    p.add_argument("--out", default="gallery.png", help="output PNG (default: gallery.png)")
    p.add_argument("--image", default=None, help="NIfTI image to show instead of a phantom case")
    p.add_argument("--label", default=None, help="NIfTI label map for --image (needed by label-guided transforms)")
    p.add_argument("--domain", default=None, help="phantom domain (default: t2w)")
    p.add_argument("--case", type=int, default=0, help="phantom case seed (default: 0)")
    p.add_argument("--whole-case", action="store_true",
                   help="show the whole case in every panel (default: the final training patch from the middle of "
                        "the case, Spatial reading the enlarged patch around it as nnU-Net's loader does)")
    p.add_argument("--seed", type=int, default=None, help="augmentation seed for every panel (default: 0)")
    p.add_argument("--draws", type=int, default=0,
                   help="instead: N random draws of each whole preset of --presets on the same patch, one row each")
    p.add_argument("--presets", type=_csv_names, default=None,
                   help="with --draws: presets, comma-separated (default: nnunet,xdomain,xdomain-plus)")
    p.add_argument("--patch", type=_csv_ints, default=None,
                   help="with --draws: the final patch D,H,W (default: the largest whose enlarged read fits the case)")
    p.add_argument("--phantom", action="store_true",
                   help="instead: phantom case --case in every domain (mid-sagittal slices, label contours) to --out, "
                        "and the domains' descriptions to phantom.json beside it")
    p.set_defaults(func=_cmd_preview)

    p = sub.add_parser("bench", help="time spineaug pipelines against the baseline libraries (CSV files)")
    p.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    p.add_argument("--quick", action="store_true", help="reduced grid for CI (a few minutes)")
    p.add_argument("--pipelines", type=_csv_names, default=None, help="presets, comma-separated (default: nnunet,xdomain)")
    p.add_argument("--baselines", type=_csv_names, default=None,
                   help=f"baselines, comma-separated (default: {','.join(_schema.BASELINE_LIBRARIES)}; '' = none)")
    p.add_argument("--sizes", type=_csv_ints, default=None, help="cube edges S of the scaling grid, comma-separated (default: 64,96,128)")
    p.add_argument("--batches", type=_csv_ints, default=None, help="batch sizes B, comma-separated (default: 1,2,4)")
    p.add_argument("--device", type=_csv_names, default=None, help="cpu, cuda or auto (default: auto)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per headline case and per transform")
    p.add_argument("--headline", type=_headline, default=None,
                   help="the headline case B,S (batch, edge of the cubic patch; default: 2,128)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per case")
    p.add_argument("--max-seconds", type=float, default=None, help="time budget per case")
    p.add_argument("--threads", type=_csv_ints, default=None,
                   help="torch thread counts of the headline case, comma-separated (default: 1,2)")
    p.add_argument("--seed", type=int, default=None, help="seed of data and pipelines")
    p.add_argument("--no-transforms", action="store_true", help="skip the per-transform table")
    p.add_argument("--no-checks", action="store_true", help="skip op-count and host-sync checks")
    p.add_argument("--training", action="store_true",
                   help="instead: seconds per training iteration per augmentation arm (training.csv); --sizes is "
                   "the patch edge, --batches the batch size, --repeats the timed iterations (one value each)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (the result files are written as usual)")
    _verbose(p)
    p.add_argument("--cores", type=_csv_ints, default=None,
                   help="with --training: CPU budgets, comma-separated (default: all, a quarter, 1)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("profile", help="where a pipeline's time goes: the mean time of each of its steps (the one "
                       "resampling, each other entry) and its own overhead, over calls on phantom patches")
    p.add_argument("config", help="preset name, path to a .json/.yaml config, or one transform name (its defaults)")
    p.add_argument("--batch", type=int, default=2, help="batch size B (default: 2)")
    p.add_argument("--size", type=int, default=128, help="edge S of the cubic patches (default: 128)")
    p.add_argument("--calls", type=int, default=20, help="timed calls (default: 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the patches and of the draws (default: 0)")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("report", help="markdown + figures from result files: benchmark.md, study.md, fidelity.md and "
                       "the index README.md (renders only; missing inputs are listed, not fatal)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--study-data", default="reports/data/study",
                   help="compact study results, one folder per study (default: reports/data/study)")
    p.add_argument("--allow-reduced", action="store_true",
                   help="write the page of a reduced benchmark run (--quick, fewer sizes or baselines) into --out "
                        "itself (default: OUT/reduced/, so the page of a full run is never replaced)")
    p.add_argument("--fidelity-data", default=None,
                   help="fidelity result files of `spineaug fidelity` (default: OUT/fidelity, the committed copy)")
    p.add_argument("--fidelity", action="store_true",
                   help="only render OUT/fidelity.md from the fidelity result files (`spineaug fidelity` measures)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("fidelity", help="measure the presets against their references (nnunet vs nnU-Net v2; xdomain "
                       "vs AugLab when .venv-auglab exists) and write result files (a few minutes)")
    p.add_argument("--out", default="results/fidelity", help="output folder (default: results/fidelity)")
    p.add_argument("--draws", type=int, default=400, help="samples per firing-rate comparison (default: 400)")
    p.add_argument("--seed", type=int, default=0, help="seed of the volume and the draws (default: 0)")
    p.add_argument("--no-auglab", action="store_true", help="skip the comparison with AugLab")
    p.set_defaults(func=_cmd_fidelity)

    p = sub.add_parser("phantom", help="write synthetic spine phantom datasets (nnU-Net raw format, one per domain)")
    p.add_argument("--out", required=True, help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--domains", default="ct,t1w,t2w", help="comma-separated domains (default: ct,t1w,t2w)")
    p.add_argument("--cases", type=int, default=8, help="cases per domain (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="anatomy seed of the first case (default: 0)")
    p.add_argument("--spacing", default="2.0", help="voxel size in mm: one number or X,Y,Z (default: 2.0)")
    p.add_argument("--shape", default="64,80,128", help="grid X,Y,Z in voxels (default: 64,80,128)")
    p.add_argument("--dataset-id", type=int, default=900, help="nnU-Net id of the first dataset (default: 900)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out; replaces the datasets written")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _verbose(p)
    p.set_defaults(func=_cmd_phantom)

    p = sub.add_parser("study", help="cross-domain study: train per source x augmentation arm, Dice on every domain")
    p.add_argument("study", nargs="?", default=None, help="study file, or a bundled study's name (quick, default, full, "
                   "ablation-*; default: default)")
    p.add_argument("--quick", action="store_true",
                   help="run the bundled quick study (studies/quick.yaml, about a minute)")
    p.add_argument("--out", default="results/study", help="results root; the study writes OUT/<name> (default: results/study)")
    p.add_argument("--status", action="store_true",
                   help="show per cell: done, running or missing, the recorded commit, fresh or stale; and exit")
    p.add_argument("--resume-from", action="append", metavar="EXPORT",
                   help="first restore the finished, still-fresh cells of an export (EXPORT/<name>, e.g. "
                        "reports/data/study, or a folder holding cells.json) into OUT, so they are not trained "
                        "again; repeat it to restore from several (e.g. an ablation's reference cells from the "
                        "default study's export)")
    p.add_argument("--summarize", action="store_true",
                   help="summarise the finished cells without training any (with --export: copy the compact results)")
    p.add_argument("--include-stale", action="store_true",
                   help="pool stale cells and cells without provenance into the summary (default: leave them out)")
    p.add_argument("--executor", default=None, choices=["inline", "local", "slurm", "debug"],
                   help="inline (default), local (parallel processes via submitit), slurm (one job per cell), debug")
    p.add_argument("--workers", type=int, default=None,
                   help="cells at once (local) / array parallelism (slurm) (default: 1)")
    p.add_argument("--partition", default=None, help="slurm partition")
    p.add_argument("--gpus", type=int, default=None, help="slurm GPUs per job (default: 1)")
    p.add_argument("--cpus", type=int, default=None, help="slurm CPUs per job (default: 8)")
    p.add_argument("--mem-gb", type=int, default=None, help="slurm memory per job in GB (default: 32)")
    p.add_argument("--time-min", type=int, default=None, help="slurm time limit per job in minutes (default: 240)")
    p.add_argument("--export", default=None, help="also copy the compact results to EXPORT/<name> (e.g. reports/data/study)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _verbose(p)
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("predict", help="segment NIfTI files with a study model (labels on each input's own grid; "
                                       "nnU-Net's file naming: CASE_0000.nii.gz in, CASE.nii.gz out)")
    p.add_argument("-m", "--model", required=True, help="a study cell's model.pt")
    p.add_argument("-i", "--input", required=True,
                   help="a .nii/.nii.gz file or a folder of them; a case's channels are CASE_0000, CASE_0001, ...")
    p.add_argument("-o", "--out", "--output", dest="out", required=True, help="output folder for the label maps")
    p.add_argument("--device", "-device", default="auto",
                   help="cpu, cuda (cuda:N) or auto (default: auto, cuda when present); -device as nnUNetv2_predict")
    p.add_argument("--tta", action="store_true",
                   help="test-time mirroring as nnU-Net does: average the softmax over mirrored copies")
    p.add_argument("--mirror-axes", default=None,
                   help="axes mirrored with --tta, of the RAS grid (0 left-right, 1 posterior-anterior, 2 "
                        "inferior-superior; default 0, the one axis the study's presets flip)")
    p.add_argument("--trust-model", action="store_true",
                   help="load an older model.pt that holds other Python objects (unpickles it: trusted files only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _verbose(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("nnunet-install", help="make nnUNetv2_train -tr find spineaug's trainers (adds one module)")
    p.add_argument("--uninstall", action="store_true", help="remove exactly the module nnunet-install wrote")
    p.add_argument("--folder", default=None, help="trainer folder (default: the installed nnunetv2's "
                   "training/nnUNetTrainer; or a folder listed in nnUNet_extTrainer)")
    p.set_defaults(func=_cmd_nnunet_install)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", None)
    before = os.environ.get("PYTHONWARNINGS")
    if verbose is False:  # a long command without --verbose: no deprecation notices from MONAI & co., here or in workers
        hidden = [w for w in ("ignore::FutureWarning", "ignore::DeprecationWarning") if w not in (before or "")]
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [before, *hidden]))
    try:
        with warnings.catch_warnings():
            if verbose is False:
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
            return args.func(args)
    except (ValueError, TypeError, ImportError, RuntimeError) as exc:
        if verbose:
            raise
        print(f"spineaug {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # missing files, unwritable folders, an --out under a file, a full disk...
        if verbose:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) and str(exc.filename) not in str(exc) else ""
        print(f"spineaug {args.command}: error: {exc}{where}", file=sys.stderr)
        return 2
    finally:
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


if __name__ == "__main__":
    sys.exit(main())
