"""Keys and modes.

A :class:`Key` is a spelled tonic plus a mode. Modes are the seven diatonic modes plus
harmonic and melodic minor; ``major`` and ``minor`` are aliases of ionian and aeolian.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kelly.errors import InputError
from kelly.theory.pitch import LETTER_PC, parse_note

MODE_INTERVALS: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
}
MODE_ALIASES = {"major": "ionian", "minor": "aeolian", "natural_minor": "aeolian", "maj": "ionian",
                "min": "aeolian", "m": "aeolian", "harmonic minor": "harmonic_minor",
                "melodic minor": "melodic_minor"}
#: Modes whose third is minor: heard as "minor" and given a minor key signature.
MINOR_MODES = frozenset({"dorian", "phrygian", "aeolian", "locrian", "harmonic_minor", "melodic_minor"})
#: How many semitones above its parent major scale each diatonic mode starts.
MODE_OFFSET = {"ionian": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "aeolian": 9,
               "locrian": 11, "harmonic_minor": 9, "melodic_minor": 9}

MAJOR_SCALE = MODE_INTERVALS["ionian"]


def normalize_mode(mode: str) -> str:
    """Canonical mode name, e.g. ``"Minor"`` → ``"aeolian"``."""
    key = (mode or "").strip().lower().replace("-", "_")
    key = MODE_ALIASES.get(key, key)
    if key not in MODE_INTERVALS:
        raise InputError(f"unknown mode {mode!r}; choose one of: major, minor, " + ", ".join(MODE_INTERVALS))
    return key


@dataclass(frozen=True)
class Key:
    """A tonic (spelled, e.g. ``"Bb"``) and a mode (canonical name)."""

    tonic: str
    mode: str = "ionian"

    def __post_init__(self) -> None:
        parse_note(self.tonic)
        object.__setattr__(self, "mode", normalize_mode(self.mode))

    @property
    def tonic_pc(self) -> int:
        return parse_note(self.tonic)[1]

    @property
    def tonic_letter(self) -> int:
        return parse_note(self.tonic)[0]

    @property
    def is_minor(self) -> bool:
        return self.mode in MINOR_MODES

    @property
    def intervals(self) -> tuple[int, ...]:
        return MODE_INTERVALS[self.mode]

    def scale_pcs(self) -> tuple[int, ...]:
        """Pitch classes of the scale, tonic first."""
        return tuple((self.tonic_pc + i) % 12 for i in self.intervals)

    def degree_pc(self, degree: int) -> int:
        """Pitch class of scale degree ``degree`` (1-based, wraps)."""
        return (self.tonic_pc + self.intervals[(degree - 1) % 7]) % 12

    def signature_name(self) -> str:
        """The key-signature name a MIDI file carries (major or minor only, e.g. ``"Am"``).

        Modes get the signature of their parent scale: D dorian → ``"Am"``'s accidentals
        written as its relative minor, so a DAW shows the right sharps and flats.
        """
        if self.mode in ("ionian", "aeolian"):
            return self.tonic + ("m" if self.mode == "aeolian" else "")
        offset = MODE_OFFSET[self.mode]
        parent_pc = (self.tonic_pc - offset) % 12
        if self.is_minor:
            rel = (parent_pc + 9) % 12
            return _SIGNATURE_MINOR[rel]
        return _SIGNATURE_MAJOR[parent_pc]

    @property
    def name(self) -> str:
        mode = {"ionian": "major", "aeolian": "minor"}.get(self.mode, self.mode.replace("_", " "))
        return f"{self.tonic} {mode}"

    def __str__(self) -> str:
        return self.name


_SIGNATURE_MAJOR = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SIGNATURE_MINOR = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")

_KEY_RE = re.compile(r"^\s*([A-Ga-g](?:##|bb|#|b|♯|♭)?)\s*(.*?)\s*$")


def parse_key(text: str) -> Key:
    """Parse a key such as ``"F"``, ``"Am"``, ``"C# minor"``, ``"D dorian"`` or ``"Bb major"``.

    A lowercase single letter (``"a"``) is read as minor, as in music21.
    """
    match = _KEY_RE.match(text or "")
    if not match:
        raise InputError(f"unknown key {text!r}; use a note and an optional mode, e.g. 'F', 'Am', 'D dorian'")
    tonic, rest = match.group(1), match.group(2)
    if rest in ("", None):
        mode = "aeolian" if tonic[0].islower() else "ionian"
    elif rest in ("m", "min", "-"):
        mode = "aeolian"
    elif rest in ("M", "maj"):
        mode = "ionian"
    else:
        try:
            mode = normalize_mode(rest)
        except InputError:
            raise InputError(f"unknown key {text!r}; the mode {rest!r} is not one of: major, minor, "
                             + ", ".join(MODE_INTERVALS)) from None
    tonic = tonic[0].upper() + tonic[1:].replace("♯", "#").replace("♭", "b")
    return Key(tonic, mode)


def key_from_pc(pc: int, mode: str) -> Key:
    """A conventionally spelled key for a tonic pitch class."""
    mode = normalize_mode(mode)
    names = _MINOR_TONICS if mode in MINOR_MODES else _MAJOR_TONICS
    return Key(names[pc % 12], mode)


_MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

__all__ = ["Key", "parse_key", "key_from_pc", "normalize_mode", "MODE_INTERVALS", "MINOR_MODES",
           "MAJOR_SCALE", "LETTER_PC"]
