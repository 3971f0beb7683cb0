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
        description="Export the five networks: the trained weights shipped with Kelly (the default when all "
                    "five are there), weights from a folder, or untrained weights initialised from --seed. "
                    "Each RTNeural file gets a <model>.meta.json sidecar saying which.")
    p.add_argument("--format", dest="formats", action="append", metavar="FORMAT",
                   help="rtneural, onnx or checkpoint; repeat or comma-separate for several (default: rtneural)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--weights", metavar="shipped|untrained|DIR",
                   help="shipped: the trained weights in the package (kelly/assets/models, each checked against "
                        "its sidecar); untrained: initialised from --seed; DIR: a folder with <model>.json or "
                        "<model>.npz for all five networks, such as a kelly train --out folder (write ./shipped "
                        "for a folder of that name). Default: shipped when the package has all five, else "
                        "untrained (with a note)")
    p.add_argument("--seed", type=seed_arg, default=None,
                   help="initialisation seed 0-4294967295 for untrained weights (default 0); implies "
                        "--weights untrained")
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


#: Said on standard error when ``kelly export`` falls back to untrained weights by default.
NO_SHIPPED_NOTE = ("kelly: note: this Kelly has no trained weights in kelly/assets/models yet; exporting untrained "
                   "weights initialised from seed 0 (--weights untrained)")


def export_weights_choice(weights: str | None, seed: int | None) -> tuple[str, bool]:
    """What ``kelly export`` exports: ("shipped" | "untrained" | a folder, whether to say so).

    Without ``--weights``: untrained when ``--seed`` is given, else shipped when the package
    has all five trained networks, else untrained, and then the second value is True: the
    command prints :data:`NO_SHIPPED_NOTE` once its checks have passed.

    Raises
    ------
    InputError
        For ``--seed`` with weights that are not initialised from a seed.
    """
    from kelly.ml.export import shipped_weights_available

    if weights is not None and not weights.strip():
        raise InputError("--weights needs shipped, untrained or a folder")
    if seed is not None and weights not in (None, "untrained"):
        raise InputError(f"--seed initialises untrained weights; it cannot be used with --weights {weights}")
    if weights is not None:
        return weights, False
    if seed is not None:
        return "untrained", False
    if shipped_weights_available():
        return "shipped", False
    return "untrained", True


def cmd_export(args: argparse.Namespace) -> int:
    from kelly.ml.export import FORMATS, SHIPPED_DIR, export_models, load_weights, weight_input_files

    formats: list[str] = []
    for item in args.formats or ["rtneural"]:
        formats.extend(part.strip() for part in item.split(",") if part.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    choice, say_untrained = export_weights_choice(args.weights, args.seed)
    if choice == "shipped":
        inputs = weight_input_files(SHIPPED_DIR, shipped=True)
    elif choice == "untrained":
        inputs = []
    else:
        if not Path(choice).is_dir():
            raise InputError(f"--weights {choice}: not a folder (give shipped, untrained or a folder of model files)")
        inputs = weight_input_files(choice)
    from kelly.fileio import check_destinations

    # Every file the export will write, checked before torch starts: an existing one is refused
    # without --force; a symbolic link, folder or device in its place always, and a file the
    # export reads its weights from even with --force.
    check_destinations([Path(args.out) / name for name in export_file_names(formats)], overwrite=args.force,
                       inputs=inputs)
    weights = None if choice == "untrained" else load_weights(None if choice == "shipped" else choice)
    if say_untrained:
        print(NO_SHIPPED_NOTE, file=sys.stderr)
    try:
        written = export_models(args.out, formats, seed=0 if args.seed is None else args.seed, weights=weights)
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
