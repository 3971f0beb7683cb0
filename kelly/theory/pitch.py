"""Pitch classes and their spelling.

Pitch classes are integers 0–11 (C = 0). Names are spelled by *letter*, so that the
fourth degree of F is "Bb" and not "A#": a spelled note is a letter index (C=0 … B=6)
plus an accidental offset in semitones.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kelly.errors import InputError

LETTERS = "CDEFGAB"
#: Pitch class of each natural letter.
LETTER_PC = (0, 2, 4, 5, 7, 9, 11)
_ACCIDENTAL_TEXT = {-2: "bb", -1: "b", 0: "", 1: "#", 2: "##"}
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])(##|bb|#|b|♯|♭|x)?\s*$")


@lru_cache(maxsize=512)  # pure and called thousands of times per piece (every chord root, every key)
def parse_note(name: str) -> tuple[int, int]:
    """Parse a note name such as ``"Bb"`` or ``"F#"``.

    Returns
    -------
    (letter_index, pitch_class)
    """
    match = _NOTE_RE.match(name or "")
    if not match:
        raise InputError(f"unknown note name {name!r}; use a letter A–G with an optional # or b, e.g. 'F#' or 'Bb'")
    letter = LETTERS.index(match.group(1).upper())
    acc = {None: 0, "#": 1, "♯": 1, "x": 2, "##": 2, "b": -1, "♭": -1, "bb": -2}[match.group(2)]
    return letter, (LETTER_PC[letter] + acc) % 12


def spell(letter: int, pc: int) -> str:
    """Name pitch class ``pc`` using letter ``letter`` (with up to two accidentals).

    Falls back to a plain sharp/flat name when the letter is too far away.
    """
    letter %= 7
    diff = (pc - LETTER_PC[letter]) % 12
    if diff > 6:
        diff -= 12
    if diff in _ACCIDENTAL_TEXT:
        return LETTERS[letter] + _ACCIDENTAL_TEXT[diff]
    return pc_name(pc)


_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def pc_name(pc: int, *, flats: bool = True) -> str:
    """A plain name for a pitch class (flats by default, as borrowed chords are spelled)."""
    return (_FLAT_NAMES if flats else _SHARP_NAMES)[pc % 12]
