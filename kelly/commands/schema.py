"""``kelly schema [NAME]``: print the JSON Schema of a contract Kelly publishes.

Why: tools that read Kelly's output (the explanation JSON beside every MIDI file, the
web app) should validate it against the exact schema of the Kelly they run, not a copy
that may have drifted. The same text is committed as ``docs/schemas/NAME.schema.json``
(a test keeps the two equal). See ``docs/explanation.md``.
"""

from __future__ import annotations

import sys

#: The schemas this command prints (kelly.contracts.SCHEMAS; a test keeps the two lists equal).
NAMES = ("explanation", "protocol")


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the explanation JSON",
                       description="Print the JSON Schema (draft 2020-12) of a contract Kelly publishes; the "
                                   "explanation is what kelly compose writes beside each MIDI file.")
    p.add_argument("name", nargs="?", default="explanation", choices=NAMES,
                   help="which schema: explanation (the JSON beside each MIDI file) or protocol (the engine socket messages); default explanation")
    p.set_defaults(func=run)


def run(args) -> int:
    from kelly.contracts import schema_text

    sys.stdout.write(schema_text(args.name))
    return 0
