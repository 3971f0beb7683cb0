"""``kelly emotions``: list the emotion thesaurus.

Why: people choose emotions by name (``kelly compose --emotion grief``) and need to
see which names exist, what they mean and where each sits in PAD space. The table is
for reading; ``--json`` gives every field (tiers, synonyms, sources) for tools.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    """Add the ``emotions`` sub-command to the ``kelly`` parser."""
    parser = subparsers.add_parser(
        "emotions", help="list the emotions Kelly knows (name, family, valence, arousal, dominance)",
        description="List the emotion thesaurus: every named emotion with its family, PAD point and meaning.")
    parser.add_argument("--json", action="store_true", help="print a JSON list of all entries with every field")
    parser.add_argument("--family", metavar="F", help="only this family (joy, sadness, anger, fear, surprise, "
                                                      "disgust, trust, anticipation)")
    parser.set_defaults(func=handler)


def handler(args) -> int:
    """Print the thesaurus as a table or as JSON; an unknown family is an InputError."""
    from kelly.emotion.thesaurus import load_thesaurus

    thesaurus = load_thesaurus()
    entries = thesaurus.in_family(args.family) if args.family else thesaurus.entries
    out = sys.stdout
    if args.json:
        json.dump([e.to_dict() for e in entries], out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    name_w = max(len(e.display_name) for e in entries)
    fam_w = max(len(e.family) for e in entries)
    out.write(f"{'name':<{name_w}}  {'family':<{fam_w}}  {'V':>5}  {'A':>4}  {'D':>4}  description\n")
    for e in entries:
        out.write(f"{e.display_name:<{name_w}}  {e.family:<{fam_w}}  {e.valence:>+5.2f}  {e.arousal:>4.2f}  "
                  f"{e.dominance:>4.2f}  {e.description}\n")
    out.write(f"{len(entries)} emotions\n")
    return 0
