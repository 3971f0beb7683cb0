"""``kelly runtime``, ``kelly export`` and ``kelly validate``: the neural-network commands.

Heavy imports (torch, onnx) happen inside the handlers, so listing this module in the
CLI costs nothing when composing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kelly.errors import FileFormatError, InputError, ModelError


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
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "validate", help="check exported models: structure, sizes, parameter counts, parity with torch",
        description="Validate the model files in DIR (RTNeural JSON, ONNX, checkpoints).")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--check-specs", action="store_true",
                   help="require all five models with the exact architecture and parameter counts")
    p.set_defaults(func=cmd_validate)


def cmd_runtime(args: argparse.Namespace) -> int:
    from kelly.ml.runtime import format_row, load_model, read_csv_rows

    model = load_model(Path(args.model))
    if args.input:
        try:
            with open(args.input, encoding="utf-8") as handle:
                rows = read_csv_rows(handle, model.in_size, source=args.input)
        except FileNotFoundError:
            raise InputError(f"input file {args.input} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"cannot read {args.input}: {exc}") from None
    else:
        rows = read_csv_rows(sys.stdin, model.in_size, source="standard input")
    model.reset()
    out = sys.stdout
    for row in rows:
        out.write(format_row(model.forward(row)) + "\n")
    out.flush()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kelly.ml.export import FORMATS, export_models

    formats: list[str] = []
    for item in args.formats or ["rtneural"]:
        formats.extend(part.strip() for part in item.split(",") if part.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    try:
        written = export_models(args.out, formats, seed=args.seed)
    except ImportError as exc:
        raise ModelError(f"export needs the ml extra (pip install 'kelly[ml]'): {exc}") from None
    for path in written:
        print(path)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from kelly.ml.export import validate_dir

    checks = validate_dir(args.dir, check_specs=args.check_specs)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    if failed:
        raise ModelError(f"validation failed: {len(failed)} of {len(checks)} checks in {args.dir}")
    print(f"all {len(checks)} checks passed")
    return 0
