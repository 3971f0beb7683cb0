"""Chords: qualities, symbols and parsing.

A :class:`Chord` is a spelled root, a quality from :data:`QUALITIES` and an optional
bass note (slash chords). ``Chord.name`` gives the lead-sheet symbol ("Bbm", "G7/B").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kelly.errors import InputError
from kelly.theory.pitch import parse_note

#: Intervals above the root, and the suffix used in chord symbols.
QUALITIES: dict[str, tuple[tuple[int, ...], str]] = {
    "maj": ((0, 4, 7), ""),
    "min": ((0, 3, 7), "m"),
    "dim": ((0, 3, 6), "dim"),
    "aug": ((0, 4, 8), "aug"),
    "5": ((0, 7), "5"),
    "sus2": ((0, 2, 7), "sus2"),
    "sus4": ((0, 5, 7), "sus4"),
    "7": ((0, 4, 7, 10), "7"),
    "maj7": ((0, 4, 7, 11), "maj7"),
    "min7": ((0, 3, 7, 10), "m7"),
    "minmaj7": ((0, 3, 7, 11), "mMaj7"),
    "hdim7": ((0, 3, 6, 10), "m7b5"),
    "dim7": ((0, 3, 6, 9), "dim7"),
    "aug7": ((0, 4, 8, 10), "aug7"),
    "7sus4": ((0, 5, 7, 10), "7sus4"),
    "6": ((0, 4, 7, 9), "6"),
    "min6": ((0, 3, 7, 9), "m6"),
    "add9": ((0, 4, 7, 14), "add9"),
    "madd9": ((0, 3, 7, 14), "madd9"),
    "9": ((0, 4, 7, 10, 14), "9"),
    "maj9": ((0, 4, 7, 11, 14), "maj9"),
    "min9": ((0, 3, 7, 10, 14), "m9"),
    "11": ((0, 4, 7, 10, 14, 17), "11"),
    "min11": ((0, 3, 7, 10, 14, 17), "m11"),
}

#: Symbol suffixes accepted when parsing, longest first.
_SUFFIXES: list[tuple[str, str]] = sorted(
    [(sfx, q) for q, (_, sfx) in QUALITIES.items() if sfx]
    + [("maj", "maj"), ("M7", "maj7"), ("Maj7", "maj7"), ("Δ7", "maj7"), ("Δ", "maj7"), ("min7", "min7"),
       ("-7", "min7"), ("min", "min"), ("-", "min"), ("°7", "dim7"), ("o7", "dim7"), ("°", "dim"), ("o", "dim"),
       ("ø7", "hdim7"), ("ø", "hdim7"), ("+", "aug"), ("sus", "sus4"), ("m(maj7)", "minmaj7"), ("mmaj7", "minmaj7"),
       ("min9", "min9"), ("m7(b5)", "hdim7"), ("dom7", "7")],
    key=lambda item: -len(item[0]),
)
_SYMBOL_RE = re.compile(r"^\s*([A-G](?:##|bb|#|b)?)(.*?)(?:/([A-G](?:#|b)?))?\s*$")


@dataclass(frozen=True)
class Chord:
    """A chord: spelled root, quality key of :data:`QUALITIES`, optional spelled bass."""

    root: str
    quality: str = "maj"
    bass: str | None = None

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise InputError(f"unknown chord quality {self.quality!r}")

    @property
    def root_pc(self) -> int:
        return parse_note(self.root)[1]

    @property
    def bass_pc(self) -> int:
        return parse_note(self.bass)[1] if self.bass else self.root_pc

    @property
    def intervals(self) -> tuple[int, ...]:
        return QUALITIES[self.quality][0]

    def pitch_classes(self) -> tuple[int, ...]:
        """Pitch classes, root first (the bass, if different, is not included)."""
        return tuple((self.root_pc + i) % 12 for i in self.intervals)

    @property
    def name(self) -> str:
        text = self.root + QUALITIES[self.quality][1]
        return f"{text}/{self.bass}" if self.bass else text

    @property
    def is_minor(self) -> bool:
        return 3 in self.intervals and 4 not in self.intervals

    def __str__(self) -> str:
        return self.name


def parse_chord(symbol: str) -> Chord:
    """Parse a lead-sheet symbol: ``"Am7"``, ``"Bb"``, ``"G/B"``, ``"F#m7b5"``, ``"Csus4"``."""
    match = _SYMBOL_RE.match(symbol or "")
    if not match:
        raise InputError(f"cannot read chord {symbol!r}; write it like 'C', 'Am7', 'Bb/D' or 'F#m7b5'")
    root, rest, bass = match.groups()
    quality = "maj"
    if rest:
        for sfx, q in _SUFFIXES:
            if rest == sfx:
                quality = q
                break
        else:
            raise InputError(f"cannot read chord {symbol!r}: unknown quality {rest!r}")
    return Chord(root, quality, bass)


def parse_progression(text: str) -> list[Chord]:
    """Split a progression such as ``"F-C-Am-Dm"`` or ``"Am | F | C | G"`` into chords."""
    parts = [p for p in re.split(r"[\s,|–—]+|(?<=[^/\s])-(?=[A-G])", text or "") if p]
    if not parts:
        raise InputError("the progression is empty; write chords like 'F-C-Am-Dm'")
    return [parse_chord(p) for p in parts]
