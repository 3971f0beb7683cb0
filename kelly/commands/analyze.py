"""``kelly analyze``, ``kelly diagnose`` and ``kelly reharm``: the music-theory tools.

* ``kelly analyze FILE.mid [--json] [--segment beat|half_bar|bar] [--profile NAME]``:
  key and church mode (e.g. "D dorian (minor family; confidence 0.71)", beside the
  major/minor key), tempo, metre, chords with roman numerals and borrowed chords,
  sections, groove statistics and an estimate of valence and arousal
  (:mod:`kelly.theory.analysis`). With ``--json`` the mode is in ``key.church_mode`` and
  ``key.modal`` (tonic, mode, name, family, confidence, alternatives, evidence).
* ``kelly diagnose "F-C-Am-Dm" [--json]``: key, roman numerals, issues and suggestions.
* ``kelly reharm "F-C-Am-Dm" --style jazz [-n 3] [--seed S] [--json]``: reharmonisations
  (:mod:`kelly.theory.progression`).

Problems a user can fix (a missing or corrupt file, an unknown style, an unreadable
chord) raise :class:`~kelly.errors.KellyError`, which ``kelly`` prints as one line with
exit code 2.
"""

from __future__ import annotations

import json
import secrets

from kelly.commands.options import seed_arg


def register(subparsers) -> None:
    """Add the ``analyze``, ``diagnose`` and ``reharm`` sub-commands."""
    from kelly.theory.analysis import DEFAULT_PROFILE, KEY_PROFILES
    from kelly.theory.progression import STYLES

    p = subparsers.add_parser("analyze",
                              help="analyse a MIDI file: key and mode, tempo, chords, sections, groove, feeling",
                              description="Analyse a Standard MIDI File: key and church mode, tempo, metre, "
                                          "chords, sections, groove and feeling.")
    p.add_argument("file", metavar="FILE.mid", help="the MIDI file to analyse")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.add_argument("--segment", choices=("beat", "half_bar", "bar"), default="beat",
                   help="chord-analysis window (default: beat)")
    p.add_argument("--profile", choices=tuple(KEY_PROFILES), default=DEFAULT_PROFILE,
                   help=f"key-finding profile, also the base of the modal profiles (default: {DEFAULT_PROFILE})")
    p.set_defaults(func=run_analyze)

    p = subparsers.add_parser("diagnose", help="find the key of a chord progression and what could be better",
                              description='Diagnose a chord progression such as "F-C-Am-Dm".')
    p.add_argument("progression", help='chords separated by - | , or spaces, e.g. "F-C-Am-Dm"')
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_diagnose)

    p = subparsers.add_parser("reharm", help="reharmonise a chord progression in a style",
                              description='Reharmonise a chord progression such as "F-C-Am-Dm".')
    p.add_argument("progression", help='chords separated by - | , or spaces, e.g. "F-C-Am-Dm"')
    p.add_argument("-s", "--style", default="jazz", help="one of: " + ", ".join(STYLES) + " (default: jazz)")
    p.add_argument("-n", "--count", type=int, default=3, help="how many reharmonisations (1-20, default 3)")
    p.add_argument("--seed", type=seed_arg, default=None,
                   help="random seed 0-4294967295 (same seed, same results)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_reharm)


def run_analyze(args) -> int:
    from kelly.theory.analysis import analyze_file, summary_lines

    result = analyze_file(args.file, profile=args.profile, segment=args.segment)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(summary_lines(result)))
    return 0


def run_diagnose(args) -> int:
    from kelly.theory.progression import diagnose

    d = diagnose(args.progression)
    if args.json:
        print(json.dumps(d.to_dict(), ensure_ascii=False))
        return 0
    print(f"Key: {d.key.name}")
    print("Chords: " + "  ".join(f"{r.chord.name} ({r.roman})" for r in d.chords))
    print(f"Cadence: {d.cadence}")
    notes = [f"  {r.chord.name}: {r.function}, {r.note}" for r in d.chords if r.function != "diatonic"]
    if notes:
        print("Outside the key:")
        print("\n".join(notes))
    print("Issues:" + ("" if d.issues else " none"))
    for issue in d.issues:
        print(f"  - {issue}")
    print("Suggestions:")
    for s in d.suggestions:
        print(f"  - {s}")
    return 0


def run_reharm(args) -> int:
    from kelly.theory.progression import detect_key, reharmonize

    seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 31)
    results = reharmonize(args.progression, args.style, count=args.count, seed=seed)
    key, _ = detect_key(args.progression)
    if args.json:
        print(json.dumps({"progression": args.progression, "key": key.name, "style": args.style.lower(),
                          "seed": seed, "results": [r.to_dict() for r in results]}, ensure_ascii=False))
        return 0
    print(f"{args.progression} in {key.name}, {args.style.lower()} (seed {seed}):")
    for i, r in enumerate(results, 1):
        print(f"{i}. [{', '.join(r.techniques)}]")
        print(f"   {' - '.join(r.symbols)}")
        print(f"   {' - '.join(r.romans)}")
    return 0
