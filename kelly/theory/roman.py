"""Roman numerals → chords in any key and mode, and chords → roman numerals.

The original system got this wrong twice (original-system.md §5.2: every numeral
containing "I" became the tonic; §6.4: semitone offsets read as scale degrees). Here:

* The numeral (I … VII) is a scale degree. Without an accidental its root comes from
  the key's own mode, so ``VI`` in A minor is F and ``IV`` in D dorian is G.
* A flat (``b``/♭) lowers the *major-scale* degree, the pop/jazz convention the
  original progressions use (``bIII``, ``bVI``, ``bVII``): in C, ``bVI`` is Ab; in A
  minor ``bVI`` and ``VI`` are the same F. A sharp (``#``/♯) raises the key's *own*
  degree, the classical convention for minor keys: ``#vii°`` in A minor is G#dim and
  ``#vi`` is F#m. In a major key both conventions agree.
* Case gives the triad quality (upper = major, lower = minor); suffixes refine it:
  ``°``/``o``/``dim``, ``+``/``aug``, ``ø``/``m7b5``, ``7``, ``maj7``, ``9``, ``add9``,
  ``sus2``/``sus4``/``sus``, ``5`` (power chord), ``6``.
* ``X/Y`` with a numeral ``Y`` is an applied chord (``V/V`` = the dominant of the
  dominant); ``X/3``, ``X/5``, ``X/7`` put that chord tone in the bass; ``X/E`` puts a
  named note in the bass.
* Roots are spelled by letter: in F, ``iv`` is Bbm, not A#m.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kelly.errors import InputError
from kelly.theory.chords import QUALITIES, Chord
from kelly.theory.pitch import parse_note, spell
from kelly.theory.scales import MAJOR_SCALE, Key

_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")
_ROMAN_RE = re.compile(
    r"^(?P<acc>bb|b|##|#|♭|♯)?(?P<num>VII|VI|IV|V|III|II|I|vii|vi|iv|v|iii|ii|i)(?P<suffix>[^/]*)(?:/(?P<slash>.+))?$"
)

# (suffix, quality for an upper-case numeral, quality for a lower-case numeral)
_SUFFIX_TABLE: list[tuple[str, str, str]] = sorted(
    [
        ("", "maj", "min"), ("5", "5", "5"), ("6", "6", "min6"), ("7", "7", "min7"),
        ("maj7", "maj7", "minmaj7"), ("M7", "maj7", "minmaj7"), ("Δ7", "maj7", "minmaj7"), ("Δ", "maj7", "minmaj7"),
        ("9", "9", "min9"), ("maj9", "maj9", "maj9"), ("add9", "add9", "madd9"),
        ("°", "dim", "dim"), ("o", "dim", "dim"), ("dim", "dim", "dim"),
        ("°7", "dim7", "dim7"), ("o7", "dim7", "dim7"), ("dim7", "dim7", "dim7"),
        ("ø", "hdim7", "hdim7"), ("ø7", "hdim7", "hdim7"), ("m7b5", "hdim7", "hdim7"), ("7b5", "hdim7", "hdim7"),
        ("+", "aug", "aug"), ("aug", "aug", "aug"), ("+7", "aug7", "aug7"),
        ("sus", "sus4", "sus4"), ("sus4", "sus4", "sus4"), ("sus2", "sus2", "sus2"), ("7sus4", "7sus4", "7sus4"),
        ("m", "min", "min"), ("m7", "min7", "min7"),
    ],
    key=lambda row: -len(row[0]),
)
_ACC = {None: 0, "": 0, "b": -1, "♭": -1, "bb": -2, "#": 1, "♯": 1, "##": 2}


@dataclass(frozen=True)
class RomanChord:
    """A parsed numeral: its source text and the chord it names in a key."""

    numeral: str
    chord: Chord
    degree: int  # 1..7 of the (possibly applied) numeral
    borrowed: bool  # the root or quality lies outside the key's mode


def _degree_root(key: Key, degree: int, accidental: int) -> tuple[int, int]:
    """(letter index, pitch class) of a degree in ``key``, altered as the module docstring says."""
    letter = key.tonic_letter + degree - 1
    if accidental < 0:
        pc = (key.tonic_pc + MAJOR_SCALE[degree - 1] + accidental) % 12
    else:
        pc = (key.degree_pc(degree) + accidental) % 12
    return letter, pc


def _quality(suffix: str, upper: bool, numeral: str) -> str:
    for text, up_q, low_q in _SUFFIX_TABLE:
        if suffix == text:
            return up_q if upper else low_q
    raise InputError(f"cannot read roman numeral {numeral!r}: unknown suffix {suffix!r} "
                     "(use 7, maj7, m7b5, dim, aug, sus2, sus4, add9, 5, 6 or 9)")


def roman_to_chord(numeral: str, key: Key) -> RomanChord:
    """Resolve one roman numeral (e.g. ``"bVI"``, ``"viiø7"``, ``"V7/V"``, ``"I/3"``) in ``key``."""
    text = (numeral or "").strip()
    match = _ROMAN_RE.match(text)
    if not match:
        raise InputError(f"cannot read roman numeral {numeral!r}; use I–VII with optional b/# and a suffix, "
                         "e.g. 'bVI', 'iv', 'V7', 'viiø7', 'V/V'")
    slash = match.group("slash")
    target_key = key
    bass_spec = None
    if slash:
        if _ROMAN_RE.match(slash) and not slash.isdigit():
            applied = roman_to_chord(slash, key)
            target_key = Key(applied.chord.root, "aeolian" if applied.chord.is_minor else "ionian")
        else:
            bass_spec = slash
    num = match.group("num")
    degree = _NUMERALS.index(num.upper()) + 1
    letter, pc = _degree_root(target_key, degree, _ACC[match.group("acc")])
    quality = _quality(match.group("suffix"), num.isupper(), text)
    root = spell(letter, pc)
    bass = None
    if bass_spec:
        if bass_spec in ("3", "5", "7", "9"):
            idx = {"3": 1, "5": 2, "7": 3, "9": 4}[bass_spec]
            ivs = QUALITIES[quality][0]
            if idx >= len(ivs):
                raise InputError(f"cannot read roman numeral {numeral!r}: the chord has no {bass_spec} for the bass")
            bass_pc = (pc + ivs[idx]) % 12
            bass = spell(letter + [0, 2, 4, 6, 1][idx], bass_pc)
        else:
            try:
                parse_note(bass_spec)
            except InputError:
                raise InputError(f"cannot read roman numeral {numeral!r}: after '/' put a numeral (V/V), "
                                 "a chord tone (3, 5, 7) or a note name (E)") from None
            bass = bass_spec[0].upper() + bass_spec[1:]
    chord = Chord(root, quality, bass)
    scale = set(key.scale_pcs())
    borrowed = bool(slash and not bass_spec) or not set(chord.pitch_classes()[:3]) <= scale
    return RomanChord(text, chord, degree, borrowed)


def romans_to_chords(numerals, key: Key) -> list[Chord]:
    """Resolve a sequence of numerals (a list, or a string split on spaces, dashes, commas)."""
    if isinstance(numerals, str):
        numerals = [n for n in re.split(r"[\s,–—|]+|-(?=[b#♭♯]?[IViv])", numerals) if n]
    return [roman_to_chord(n, key).chord for n in numerals]


_UPPER = {"maj": "", "7": "7", "maj7": "maj7", "aug": "+", "aug7": "+7", "5": "5", "sus2": "sus2", "sus4": "sus4",
          "7sus4": "7sus4", "6": "6", "add9": "add9", "9": "9", "maj9": "maj9"}
_LOWER = {"min": "", "min7": "7", "minmaj7": "maj7", "dim": "°", "dim7": "°7", "hdim7": "ø7", "min6": "6",
          "madd9": "add9", "min9": "9"}


def chord_to_roman(chord: Chord, key: Key) -> str:
    """Name ``chord`` as a roman numeral in ``key`` (inverse of :func:`roman_to_chord` for root-position chords).

    Roots in the mode use plain numerals; others a flat on the major-scale degree above
    (bII, bIII, bV, bVI, bVII) or, where that is not possible, a sharp on the mode's degree
    below (#vii° in minor).
    """
    offset = (chord.root_pc - key.tonic_pc) % 12
    mode_ivs = key.intervals
    if offset in mode_ivs:
        degree, acc = mode_ivs.index(offset) + 1, ""
    elif (offset + 1) % 12 in MAJOR_SCALE[1:]:
        degree, acc = MAJOR_SCALE.index((offset + 1) % 12) + 1, "b"
    else:
        degree, acc = mode_ivs.index((offset - 1) % 12) + 1, "#"
    numeral = _NUMERALS[degree - 1]
    if chord.quality in _LOWER:
        text = acc + numeral.lower() + _LOWER[chord.quality]
    else:
        text = acc + numeral + _UPPER.get(chord.quality, "")
    return text
