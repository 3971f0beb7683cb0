"""``kelly intent``: write, check and compose three-phase song intents.

Why a separate door from ``kelly compose``: a song written on purpose starts from the
event and the longing (Phase 0), not from a mood word, and the technical choices —
including the rule it breaks — must be justified by them. ``new`` writes a template,
``validate`` names every problem, ``process`` composes, ``suggest`` proposes a palette for
an emotion, ``list`` shows the allowed values. A malformed file is one line on standard
error and exit code 2 (a ``KellyError``), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kelly.commands.options import seed_arg
from kelly.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("intent", help="three-phase song intents: new, validate, process, suggest, list",
                       description="Write, check and compose song intents (Phase 0 why, Phase 1 feel, "
                                   "Phase 2 technique).")
    isub = p.add_subparsers(dest="intent_command", metavar="ACTION", parser_class=type(p))

    q = isub.add_parser("new", help="write an intent template")
    q.add_argument("-t", "--title", default="Untitled", help="song title")
    q.add_argument("-o", "--output", help="file to write (default: print to standard output)")
    q.add_argument("-f", "--force", action="store_true", help="replace an existing file")
    q.set_defaults(func=run_new)

    q = isub.add_parser("validate", help="check an intent file; exit 2 if it has problems")
    q.add_argument("file")
    q.add_argument("--json", action="store_true", help="print {valid, problems} as JSON")
    q.set_defaults(func=run_validate)

    q = isub.add_parser("process", help="compose MIDI (and an explanation JSON) from an intent file")
    q.add_argument("file")
    q.add_argument("-o", "--output", help="output .mid path (default kelly-out/<title>.mid, or the next free "
                                          "<title>-2.mid ...); FILE.json beside it explains it")
    q.add_argument("--seed", type=seed_arg, default=0,
                   help="random seed 0-4294967295; the same seed gives byte-identical MIDI")
    q.add_argument("--bars", type=int, default=16, help="length in bars (1-512, default 16)")
    q.add_argument("--json", action="store_true", help="print the explanation JSON on standard output")
    q.add_argument("-f", "--force", action="store_true",
                   help="compose even if validation finds problems (unusable fields are skipped), and replace "
                        "an existing -o FILE.mid and FILE.json (never the intent file itself)")
    q.set_defaults(func=run_process)

    q = isub.add_parser("suggest", help="modes, tempo, density, textures and rules for an emotion")
    q.add_argument("emotion", nargs="+")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_suggest)

    q = isub.add_parser("list", help="the allowed values: arcs, vulnerability, grooves, stakes, moods, rules")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_list)

    p.set_defaults(func=_need_action(p))


def _need_action(parser):
    def run(args) -> int:
        parser.print_help(sys.stderr)
        return 2
    return run


def run_new(args) -> int:
    from kelly.fileio import write_json_atomic
    from kelly.intent.schema import template

    doc = template(args.title)
    if not args.output:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    out = Path(args.output)
    write_json_atomic(out, doc, overwrite=args.force)
    print(f"Wrote {out}: fill in Phase 0 first, then check it with `kelly intent validate {out}`")
    return 0


def run_validate(args) -> int:
    from kelly.intent.schema import check_document, load_document

    _, problems = check_document(load_document(args.file))
    if args.json:
        json.dump({"file": args.file, "valid": not problems, "problems": problems}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif problems:
        print(f"{args.file}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  - {p}")
    else:
        print(f"{args.file}: valid")
    return 2 if problems else 0


def run_process(args) -> int:
    from kelly.commands.compose import check_output, slugify, write_composition
    from kelly.generator import MAX_BARS
    from kelly.intent.process import process_intent
    from kelly.intent.schema import CompleteSongIntent, load_document

    if not 1 <= args.bars <= MAX_BARS:
        raise InputError(f"--bars must be a whole number from 1 to {MAX_BARS}, got {args.bars}")
    intent = CompleteSongIntent.from_dict(load_document(args.file))
    stem = slugify(intent.title)
    inputs = (args.file,)  # the intent is never an output: my-song.json -o my-song.mid would replace it
    check_output(args.output, stem, force=args.force, inputs=inputs, flag="--output")
    result = process_intent(intent, bars=args.bars, seed=args.seed, force=args.force)
    ex = result.explanation
    ex.intent.file = str(args.file)
    out = write_composition(result, args.output, stem, flag="--output", force=args.force, inputs=inputs)
    if args.json:
        json.dump(ex.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    applied = ex.intent.applied
    print(f"Intent:  {intent.title} ({args.file})")
    for name, value in applied.items():
        text = value if isinstance(value, str) else ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
        print(f"  {name}: {text}")
    for item in ex.intent.skipped:
        print(f"  skipped: {item}")
    if ex.rule_breaks:
        print("Rules broken: " + ", ".join(f"{r.rule} ({r.why})" for r in ex.rule_breaks))
    print(f"Wrote:   {out} and {out.with_suffix('.json')}")
    return 0


def run_suggest(args) -> int:
    from kelly.intent.suggest import suggest_palette

    pal = suggest_palette(" ".join(args.emotion))
    if args.json:
        json.dump(pal, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"Emotion:  {pal['emotion']} -> affect {pal['affect']} ({pal['how']})")
    print(f"Modes:    {', '.join(pal['modes'])}")
    print(f"Tempo:    {pal['tempo_range'][0]}-{pal['tempo_range'][1]} BPM")
    print(f"Density:  {pal['density']}")
    print(f"Textures: {', '.join(pal['textures'])}")
    if pal["rules"]:
        print("Rules to consider breaking:")
        for r in pal["rules"]:
            print(f"  {r['id']}: {r['description']} ({r['effect']})")
    else:
        print("Rules to consider breaking: none in the catalogue name this emotion; see `kelly rules`")
    if pal["automatic_rules"]:
        print("Kelly breaks by itself: " + ", ".join(f"{r['rule']} ({r['severity']:.2f})"
                                                   for r in pal["automatic_rules"]))
    return 0


def option_lists() -> dict:
    """Every enumerated value an intent accepts, and the rules by category."""
    from kelly.intent.rules import CATEGORIES, RULES
    from kelly.intent.schema import (CORE_STAKES, GENRE_OPTIONS, GROOVE_FEELS, MOOD_OPTIONS, NARRATIVE_ARCS,
                                     TEXTURES, VULNERABILITY)
    from kelly.intent.suggest import AFFECT_MODE_MAP
    from kelly.theory.scales import MODE_INTERVALS

    return {
        "narrative_arcs": list(NARRATIVE_ARCS),
        "vulnerability_scale": list(VULNERABILITY),
        "groove_feels": list(GROOVE_FEELS),
        "core_stakes": list(CORE_STAKES),
        "moods": list(MOOD_OPTIONS),
        "textures": list(TEXTURES),
        "genres": list(GENRE_OPTIONS),
        "affects": list(AFFECT_MODE_MAP),
        "modes": list(MODE_INTERVALS),
        "rules": {c: [r.id for r in RULES if r.category == c] for c in CATEGORIES},
    }


def run_list(args) -> int:
    lists = option_lists()
    if args.json:
        json.dump(lists, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for name, values in lists.items():
        if isinstance(values, dict):
            print(f"{name}:")
            for cat, ids in values.items():
                print(f"  {cat} ({len(ids)}): {', '.join(ids)}")
        else:
            print(f"{name}: {', '.join(values)}")
    return 0
