"""Argument types and options shared by the commands.

``seed_arg`` is the one definition of a seed: a whole number from 0 to 2**32 - 1, the
range every random stream in Kelly (``numpy.random.SeedSequence``, the intent's
humanizer, torch's initialisation) takes without wrapping or surprises. Anything else is
one argparse line, "argument --seed: …", and exit code 2.

``add_force`` gives every command that writes files the same ``--force``: without it an
existing destination is refused (:class:`kelly.fileio.DestinationExists`).
"""

from __future__ import annotations

import argparse
import re

#: The largest seed: seeds are unsigned 32-bit numbers.
SEED_MAX = 2**32 - 1

_WHOLE = re.compile(r"\+?[0-9]{1,20}")


def seed_arg(text: str) -> int:
    """argparse type for ``--seed``: a whole number from 0 to 4294967295 (2**32 - 1).

    Raises
    ------
    argparse.ArgumentTypeError
        For anything else (negative, too large, not a whole number), with the range.
    """
    value = str(text).strip()
    if _WHOLE.fullmatch(value) and int(value) <= SEED_MAX:
        return int(value)
    shown = text if len(str(text)) <= 40 else str(text)[:37] + "..."
    raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {SEED_MAX}, got {shown!r}")


def add_force(parser: argparse.ArgumentParser, *flags: str, help: str | None = None) -> None:  # noqa: A002
    """Add ``--force`` (and any extra ``flags``): replace existing output files, never an input."""
    parser.add_argument(*(flags or ("--force",)), action="store_true",
                        help=help or "replace output files that already exist (never a file this command reads)")
