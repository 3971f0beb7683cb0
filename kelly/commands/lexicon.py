"""``kelly lexicon``: look words up in the V/A/D lexicon, see where it came from, rebuild it.

Why: when a reading surprises someone, the first question is "what does Kelly think this
word means?". ``kelly lexicon WORD …`` answers with the word's valence, arousal,
dominance and the source of the value; ``--info`` shows the sources, their licences,
the build method and its held-out figures; ``--build`` reruns the reproducible build
(needs the ``lexicon`` extra: ``make lexicon``).
"""

from __future__ import annotations

import json
import sys

from kelly.errors import InputError

#: Longest word or expression looked up (characters).
MAX_WORD = 200


def register(subparsers) -> None:
    """Add the ``lexicon`` sub-command to the ``kelly`` parser."""
    parser = subparsers.add_parser(
        "lexicon", help="look words up in the V/A/D lexicon (or show its sources, or rebuild it)",
        description="Look words and expressions up in Kelly's valence/arousal/dominance lexicon. Prints one JSON "
                    "object per word: its value and the source of the value, or found: false.")
    parser.add_argument("words", nargs="*", metavar="WORD", help="a word or expression (quote multi-word ones)")
    parser.add_argument("--info", action="store_true", help="print the table's sources, licences, method and "
                                                            "held-out figures")
    parser.add_argument("--build", action="store_true", help="rebuild the table from its sources "
                                                             "(needs the lexicon extra; see make lexicon)")
    parser.set_defaults(func=handler)


def handler(args) -> int:
    from kelly.emotion.lexicon import load_lexicon
    from kelly.emotion.thesaurus import normalize_phrase

    if args.build:
        try:
            from kelly.emotion.lexicon_build import main as build_main
            import sentence_transformers  # noqa: F401
            import vaderSentiment  # noqa: F401
        except ImportError as exc:
            raise InputError(f"building the lexicon needs the lexicon extra ({exc.name} is missing); "
                             "run `make lexicon`") from None
        return build_main([])
    lex = load_lexicon()
    if args.info:
        header = dict(lex.header)
        header["entries"] = len(lex)
        sys.stdout.write(json.dumps(header, indent=1, ensure_ascii=False) + "\n")
        return 0
    if not args.words:
        raise InputError('give a word to look up, e.g. kelly lexicon trapped "falling apart", or --info')
    for word in args.words:
        if len(word) > MAX_WORD:
            raise InputError(f"a word of {len(word)} characters is too long to look up (at most {MAX_WORD})")
    for word in args.words:
        key = normalize_phrase(word) or word.strip()
        entry = lex.get(key)
        row = entry.to_dict() if entry is not None else {"word": key, "found": False}
        if entry is not None:
            row["strength"] = round(entry.strength, 3)
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0
