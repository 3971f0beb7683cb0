"""``kelly groove``: extract, apply, humanize, and list templates and presets.

Sub-commands::

    kelly groove extract FILE.mid [-o groove.json] [--track NAME ...] [--force]
    kelly groove apply FILE.mid --template NAME|groove.json [--intensity X] -o out.mid [--track NAME ...] [--force]
    kelly groove humanize FILE.mid [--preset NAME | --style tight|natural|loose|drunk]
                          [--complexity X] [--vulnerability X] [--no-ghost-notes] [--drums-only]
                          [--seed S] -o out.mid [--force]
    kelly groove swing FILE.mid --amount X -o out.mid [--force]
    kelly groove templates [--json]
    kelly groove presets [--json]

The groove library is imported inside the handlers so ``kelly --help`` stays fast.
Outputs are written atomically; an existing ``-o`` file is refused unless ``--force``, and
an input (the MIDI, a template file) is never an output, even with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from kelly.commands.options import add_force, seed_arg


def register(subparsers) -> None:
    """Add the ``groove`` command and its sub-commands to the ``kelly`` parser."""
    parser = subparsers.add_parser(
        "groove", help="extract, apply and humanize grooves",
        description="Groove tools: per-16th timing templates, swing and seeded humanization.",
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    sub = parser.add_subparsers(dest="groove_command", metavar="ACTION", parser_class=type(parser))

    p = sub.add_parser("extract", help="measure a groove template (JSON) from a MIDI file")
    p.add_argument("midi", help="input MIDI file")
    p.add_argument("-o", "--output", help="write the template here (default: print it)")
    p.add_argument("--track", action="append", help="only measure this track (repeatable)")
    p.add_argument("--name", help="template name (default: the file name)")
    add_force(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("apply", help="apply a genre template or a groove.json to a MIDI file")
    p.add_argument("midi", help="input MIDI file")
    p.add_argument("-t", "--template", "-g", "--genre", dest="template", required=True,
                   help="genre (funk, jazz, rock, hiphop, edm, latin, blues, bedroom_lofi/lofi) or a .json file")
    p.add_argument("-i", "--intensity", type=float, default=1.0, help="0 (no change) to 1 (full template); default 1")
    p.add_argument("--track", action="append", help="only groove this track (repeatable)")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")
    add_force(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("humanize", help="seeded human timing, dynamics, dropouts and ghost notes")
    p.add_argument("midi", help="input MIDI file")
    which = p.add_mutually_exclusive_group()
    which.add_argument("-p", "--preset", help="one of the presets ('kelly groove presets')")
    which.add_argument("-s", "--style", help="tight, natural, loose or drunk (default natural)")
    p.add_argument("-c", "--complexity", "--intensity", dest="complexity", type=float,
                   help="override timing looseness 0..1")
    p.add_argument("-v", "--vulnerability", type=float, help="override dynamic fragility 0..1")
    p.add_argument("--no-ghost-notes", action="store_true", help="never add ghost notes")
    p.add_argument("--drums-only", action="store_true", help="leave non-drum tracks alone")
    p.add_argument("--seed", type=seed_arg,
                   help="random seed 0-4294967295 (same seed, same file); default: a fresh one, printed")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")
    add_force(p)
    p.set_defaults(func=cmd_humanize)

    p = sub.add_parser("swing", help="swing the off-beat eighths (0 straight, 0.67 triplet, 1 dotted)")
    p.add_argument("midi", help="input MIDI file")
    p.add_argument("-a", "--amount", type=float, required=True, help="swing factor 0..1")
    p.add_argument("--track", action="append", help="only swing this track (repeatable)")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")
    add_force(p)
    p.set_defaults(func=cmd_swing)

    p = sub.add_parser("templates", help="list the genre templates")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_templates)

    p = sub.add_parser("presets", help="list the humanize presets and styles")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_presets)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _check_output(args, *inputs) -> None:
    """Refuse ``-o`` before any work: an existing file (without ``--force``), an input, a link or folder."""
    from kelly.fileio import check_destination

    check_destination(args.output, overwrite=args.force, inputs=inputs)


def _write_song(args, song, *inputs) -> None:
    """Write ``song`` to ``-o`` atomically, never over an input or (without ``--force``) an existing file."""
    from kelly.fileio import write_bytes_atomic

    write_bytes_atomic(args.output, song.to_bytes(), overwrite=args.force, inputs=inputs)


def _template_file(spec: str) -> str | None:
    """The template argument when it names a file (an input), else ``None`` (a genre name)."""
    return spec if spec.lower().endswith(".json") or os.sep in spec or os.path.isfile(spec) else None


def cmd_extract(args) -> int:
    from pathlib import Path

    from kelly.groove import extract_groove
    from kelly.song import read_midi

    if args.output:
        _check_output(args, args.midi)
    song = read_midi(args.midi)
    _warn(song)
    template = extract_groove(song, tracks=args.track, name=args.name or Path(args.midi).stem,
                              source_file=str(args.midi))
    if args.output:
        from kelly.fileio import write_json_atomic

        write_json_atomic(args.output, template.to_dict(), overwrite=args.force, inputs=(args.midi,))
        print(f"wrote {args.output}: swing {template.swing_factor:.3f}, "
              f"mean deviation {template.timing_stats['mean_deviation_ms']:.1f} ms")
    else:
        print(json.dumps(template.to_dict(), indent=2))
    return 0


def cmd_apply(args) -> int:
    from kelly.groove import apply_template, resolve_template
    from kelly.groove.swing import check_amount
    from kelly.song import read_midi

    intensity = check_amount(args.intensity, "--intensity")
    inputs = (args.midi, _template_file(args.template))
    _check_output(args, *inputs)
    template = resolve_template(args.template)
    song = read_midi(args.midi)
    _warn(song)
    result = apply_template(song, template, intensity, tracks=args.track)
    _write_song(args, result, *inputs)
    print(f"wrote {args.output}: {template.name} at intensity {intensity:g}, {result.note_count()} notes")
    return 0


def cmd_humanize(args) -> int:
    import secrets

    import numpy as np

    from kelly.groove import get_preset, get_style, humanize
    from kelly.groove.swing import check_amount
    from kelly.song import read_midi

    settings = get_preset(args.preset) if args.preset else get_style(args.style or "natural")
    settings = settings.with_overrides(
        complexity=None if args.complexity is None else check_amount(args.complexity, "--complexity"),
        vulnerability=None if args.vulnerability is None else check_amount(args.vulnerability, "--vulnerability"),
        ghost_notes=False if args.no_ghost_notes else None,
    )
    _check_output(args, args.midi)
    song = read_midi(args.midi)
    _warn(song)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    tracks = [i for i, t in enumerate(song.tracks) if t.is_drum] if args.drums_only else None
    result = humanize(song, settings, np.random.default_rng(seed), tracks=tracks)
    _write_song(args, result, args.midi)
    print(f"wrote {args.output}: {settings.name} (complexity {settings.complexity:g}, "
          f"vulnerability {settings.vulnerability:g}), seed {seed}, {result.note_count()} notes")
    return 0


def cmd_swing(args) -> int:
    from kelly.groove import swing
    from kelly.groove.swing import check_amount
    from kelly.song import read_midi

    amount = check_amount(args.amount, "--amount")
    _check_output(args, args.midi)
    song = read_midi(args.midi)
    _warn(song)
    result = swing(song, amount, tracks=args.track)
    _write_song(args, result, args.midi)
    print(f"wrote {args.output}: swing {amount:g}")
    return 0


def cmd_templates(args) -> int:
    from kelly.groove import GENRE_TEMPLATES

    if args.json:
        print(json.dumps({key: t.to_dict() for key, t in GENRE_TEMPLATES.items()}, indent=2))
        return 0
    for key, t in GENRE_TEMPLATES.items():
        lo, hi = t.tempo_range or (t.tempo_bpm, t.tempo_bpm)
        print(f"{key:<13} {t.name:<15} swing {t.swing_factor:<5g} tempo {lo:g}-{hi:g} bpm")
    print("(lofi is an alias of bedroom_lofi)")
    return 0


def cmd_presets(args) -> int:
    from kelly.groove import PRESETS, STYLES

    if args.json:
        data = {
            "presets": {name: {"description": p.description, **p.settings.to_dict()} for name, p in PRESETS.items()},
            "styles": {name: {"complexity": c, "vulnerability": v} for name, (c, v) in STYLES.items()},
        }
        print(json.dumps(data, indent=2))
        return 0
    for name, p in PRESETS.items():
        s = p.settings
        print(f"{name:<24} complexity {s.complexity:<4g} vulnerability {s.vulnerability:<4g} {p.description}")
    print("styles: " + ", ".join(f"{n} ({c:g}, {v:g})" for n, (c, v) in STYLES.items()))
    return 0


def _warn(song) -> None:
    """Say on standard error what the MIDI reader repaired (tempo 0, a 0/4 time signature …)."""
    for line in getattr(song, "warnings", ()):
        print(f"kelly: warning: {line}", file=sys.stderr)
