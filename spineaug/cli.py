"""The ``spineaug`` command line. Each subcommand is a thin layer over the public API."""

from __future__ import annotations

import argparse
import json
import sys

import spineaug


def _cmd_presets(args: argparse.Namespace) -> int:
    for name in spineaug.presets():
        print(name)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    source = args.config
    aug = spineaug.Pipeline.from_preset(source) if source in spineaug.presets() else spineaug.Pipeline.from_config(source)
    print(json.dumps(aug.config(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spineaug", description=__doc__)
    parser.add_argument("--version", action="version", version=f"spineaug {spineaug.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("presets", help="list the bundled augmentation presets")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("config", help="validate a preset name or a JSON/YAML config and print it in full")
    p.add_argument("config", help="preset name or path to a .json/.yaml config")
    p.set_defaults(func=_cmd_config)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"spineaug {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
