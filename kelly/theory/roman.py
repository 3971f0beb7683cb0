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
  ``sus2``/``sus4``/``sus``, ``5`` (power chord), ``6``, ``11``.
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
        ("9", "9", "min9"), ("maj9", "maj9", "maj9"), ("11", "11", "min11"), ("m9", "min9", "min9"),
        ("m11", "min11", "min11"), ("add9", "add9", "madd9"),
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


#: Figured-bass style chord tones after a slash: the letter step above the root, and the
#: intervals (semitones above the root) that count as that chord tone, in preference order.
_CHORD_TONE_STEPS: dict[str, tuple[int, tuple[int, ...]]] = {
    "3": (2, (4, 3, 5, 2)),  # a sus chord's 4th or 2nd stands in for its third
    "5": (4, (7, 6, 8)),
    "7": (6, (10, 11, 9)),
    "9": (1, (14, 13, 15)),
}


def _chord_tone(quality: str, root_pc: int, root_letter: int, figure: str, numeral: str) -> tuple[int, int]:
    """(pitch class, letter index) of chord tone ``figure`` ("3", "5", "7" or "9") of a chord.

    Chord tones are found by interval, not by position in the quality's interval list:
    position 3 of ``add9`` (0, 4, 7, 14) is the ninth, not a seventh, so indexing by
    position (as an earlier version did) put the wrong note in the bass.
    """
    step, candidates = _CHORD_TONE_STEPS[figure]
    ivs = QUALITIES[quality][0]
    for iv in candidates:
        if iv in ivs:
            if figure == "3" and iv in (2, 5):
                step = 1 if iv == 2 else 3
            return (root_pc + iv) % 12, root_letter + step
    raise InputError(f"cannot read roman numeral {numeral!r}: the chord has no {figure} for the bass")


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
        if bass_spec in _CHORD_TONE_STEPS:
            bass_pc, bass_letter = _chord_tone(quality, pc, letter, bass_spec, numeral)
            bass = spell(bass_letter, bass_pc)
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
          "7sus4": "7sus4", "6": "6", "add9": "add9", "9": "9", "maj9": "maj9",
          "11": "11"}
_LOWER = {"min": "", "min7": "7", "minmaj7": "maj7", "dim": "°", "dim7": "°7", "hdim7": "ø7", "min6": "6",
          "madd9": "add9", "min9": "9", "min11": "11"}


def chord_to_roman(chord: Chord, key: Key) -> str:
    """Name ``chord`` as a roman numeral in ``key``; :func:`roman_to_chord` of the result gives the same pitches.

    Roots in the mode use plain numerals. A root outside the mode that belongs to the
    major scale is a raised degree of the mode (``#vi``, ``#vii°`` in minor, by the
    sharp convention of :func:`roman_to_chord`); other roots take a flat on the
    major-scale degree above (``bII``, ``bIII``, ``bV``, ``bVI``, ``bVII``), except that
    diminished chords prefer a sharp on the degree below (``#iv°7``, ``#i°7``: the
    passing-diminished spelling, since they lead upwards). A bass other than the root is
    written as a chord tone (``/3``, ``/5``, ``/7``, ``/9``) or, when it is not one, as a
    note name (``/E``).

    An earlier version named C# major in A minor ``bIV`` (spelled Db); it is now ``#III``.
    """
    offset = (chord.root_pc - key.tonic_pc) % 12
    mode_ivs = key.intervals
    below_in_mode = (offset - 1) % 12 in mode_ivs
    flat_ok = (offset + 1) % 12 in MAJOR_SCALE[1:]
    if offset in mode_ivs:
        degree, acc = mode_ivs.index(offset) + 1, ""
    elif below_in_mode and (offset in MAJOR_SCALE or chord.quality in _DIMINISHED or not flat_ok):
        degree, acc = mode_ivs.index((offset - 1) % 12) + 1, "#"
    elif flat_ok:
        degree, acc = MAJOR_SCALE.index((offset + 1) % 12) + 1, "b"
    else:  # neither a flat nor a sharp reaches it (only in exotic modes): use a double flat
        degree, acc = MAJOR_SCALE.index((offset + 2) % 12) + 1, "bb"
    numeral = _NUMERALS[degree - 1]
    if chord.quality in _LOWER:
        text = acc + numeral.lower() + _LOWER[chord.quality]
    else:
        text = acc + numeral + _UPPER.get(chord.quality, "")
    if chord.bass and chord.bass_pc != chord.root_pc:
        text += "/" + _bass_figure(chord)
    return text


_DIMINISHED = frozenset({"dim", "dim7", "hdim7"})


def _bass_figure(chord: Chord) -> str:
    """``"3"``/``"5"``/``"7"``/``"9"`` when the bass is that chord tone, else the bass's note name."""
    iv = (chord.bass_pc - chord.root_pc) % 12
    ivs = QUALITIES[chord.quality][0]
    for figure, (_, candidates) in _CHORD_TONE_STEPS.items():
        for cand in candidates:
            if cand in ivs:
                if cand % 12 == iv:
                    return figure
                break
    return chord.bass
