"""``kelly runtime``, ``kelly export`` and ``kelly validate``: the neural-network commands.

Heavy imports (torch, onnx) happen inside the handlers, so listing this module in the
CLI costs nothing when composing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kelly.commands.options import add_force, seed_arg
from kelly.errors import InputError, ModelError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "runtime", help="run an RTNeural JSON model over a CSV sequence (numpy runtime, no torch)",
        description="Run MODEL.json one time step per input line from a reset state. Each input line is one "
                    "step's input vector (comma-separated); each output line is the output vector.")
    p.add_argument("model", metavar="MODEL.json", help="RTNeural JSON model file")
    p.add_argument("--input", metavar="FILE.csv", help="input rows (default: standard input)")
    p.set_defaults(func=cmd_runtime)

    p = subparsers.add_parser(
        "export", help="write the five networks as RTNeural JSON, ONNX or torch checkpoints",
        description="Export the five networks (initialised from --seed until trained weights exist).")
    p.add_argument("--format", dest="formats", action="append", metavar="FORMAT",
                   help="rtneural, onnx or checkpoint; repeat or comma-separate for several (default: rtneural)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--seed", type=seed_arg, default=0, help="initialisation seed 0-4294967295 (default 0)")
    add_force(p, help="replace model files that already exist in DIR")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "validate", help="check exported models: structure, sizes, parameter counts, parity with torch",
        description="Validate the model files in DIR (RTNeural JSON, ONNX, checkpoints).")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--check-specs", action="store_true",
                   help="require all five models with the exact architecture and parameter counts")
    p.set_defaults(func=cmd_validate)


def cmd_runtime(args: argparse.Namespace) -> int:
    from kelly.ml.runtime import load_model, read_csv_file, read_csv_rows, run_rows

    model = load_model(Path(args.model))
    if args.input:
        source = args.input
        rows, lines = read_csv_file(args.input, model.in_size, with_lines=True)
    else:
        source = "standard input"
        rows, lines = read_csv_rows(sys.stdin, model.in_size, source=source, with_lines=True)
    run_rows(model, rows, sys.stdout, lines=lines, source=source)
    sys.stdout.flush()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kelly.ml.export import FORMATS, export_models

    formats: list[str] = []
    for item in args.formats or ["rtneural"]:
        formats.extend(part.strip() for part in item.split(",") if part.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    from kelly.fileio import check_destinations

    # Every file the export will write, checked before torch starts: an existing one is refused
    # without --force; a symbolic link, folder or device in its place always.
    check_destinations([Path(args.out) / name for name in export_file_names(formats)], overwrite=args.force)
    try:
        written = export_models(args.out, formats, seed=args.seed)
    except ImportError as exc:
        raise ModelError(f"export needs the ml extra (pip install 'kelly[ml]'): {exc}") from None
    for path in written:
        print(path)
    return 0


def export_file_names(formats) -> list[str]:
    """The names ``kelly export`` writes in its folder for ``formats`` (see :mod:`kelly.ml.export`)."""
    from kelly.ml.specs import MODEL_KEYS, SPECS

    names = []
    for key in MODEL_KEYS:
        if "rtneural" in formats:
            names.append(SPECS[key].file_name)
            names.append(f"{key}.meta.json")
        if "onnx" in formats:
            names.append(f"{key}.onnx")
        if "checkpoint" in formats:
            names.append(f"{key}.pt")
    if "onnx" in formats:
        names.append("pipeline.onnx")
    names.append("manifest.json")
    return names


def cmd_validate(args: argparse.Namespace) -> int:
    from kelly.ml.export import validate_dir

    checks = validate_dir(args.dir, check_specs=args.check_specs)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    if failed:
        raise ModelError(f"validation failed: {len(failed)} of {len(checks)} checks in {args.dir}; "
                         f"first: {failed[0].detail[:200]}")
    print(f"all {len(checks)} checks passed")
    return 0
