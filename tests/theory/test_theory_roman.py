"""Roman numerals, exhaustively: every degree, accidental, case and suffix, in every key.

The expected answers are computed here from first principles (scale tables and interval
arithmetic written out in this file, not imported from kelly), and cross-checked against
music21's ``roman.RomanNumeral`` for the figures where music21's convention is ours:

* music21 applies an accidental to the *key's* degree; we apply a flat to the
  *major-scale* degree (pop/jazz ``bVI``). In major keys the two agree; in minor keys we
  compare only unflatted figures.
* music21's ``sixthMinor/seventhMinor=FLAT`` reads plain VI/VII in minor as the natural
  minor degrees, as we do, and ``#vii`` as the raised one, as we do.
* music21 reads a bare ``7`` as the *diatonic* seventh; we read it as a dominant (upper
  case) or minor (lower case) seventh, so sevenths are checked by arithmetic only, except
  the fully specified ``ø7`` and ``o7``.
"""

from __future__ import annotations

import itertools

import pytest

from kelly.errors import InputError
from kelly.theory.chords import QUALITIES, Chord, parse_chord
from kelly.theory.roman import chord_to_roman, roman_to_chord, romans_to_chords
from kelly.theory.scales import Key

# --- independent tables ---------------------------------------------------------------
NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MODES = {
    "ionian": [0, 2, 4, 5, 7, 9, 11],
    "aeolian": [0, 2, 3, 5, 7, 8, 10],
    "dorian": [0, 2, 3, 5, 7, 9, 10],
    "mixolydian": [0, 2, 4, 5, 7, 9, 10],
    "lydian": [0, 2, 4, 6, 7, 9, 11],
    "phrygian": [0, 1, 3, 5, 7, 8, 10],
}
MAJOR_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
KEYS = ([Key(t, "ionian") for t in MAJOR_TONICS] + [Key(t, "aeolian") for t in MINOR_TONICS]
        + [Key("D", "dorian"), Key("G", "mixolydian"), Key("F", "lydian"), Key("E", "phrygian"),
           Key("Bb", "dorian"), Key("F#", "mixolydian")])
NUMERALS = ["I", "II", "III", "IV", "V", "VI", "VII"]
ACCIDENTALS = {"": 0, "b": -1, "#": 1}

# suffix → (intervals for an upper-case numeral, intervals for a lower-case numeral)
SUFFIXES = {
    "": ({0, 4, 7}, {0, 3, 7}),
    "7": ({0, 4, 7, 10}, {0, 3, 7, 10}),
    "maj7": ({0, 4, 7, 11}, {0, 3, 7, 11}),
    "m7b5": ({0, 3, 6, 10}, {0, 3, 6, 10}),
    "ø7": ({0, 3, 6, 10}, {0, 3, 6, 10}),
    "°": ({0, 3, 6}, {0, 3, 6}),
    "dim": ({0, 3, 6}, {0, 3, 6}),
    "°7": ({0, 3, 6, 9}, {0, 3, 6, 9}),
    "+": ({0, 4, 8}, {0, 4, 8}),
    "aug": ({0, 4, 8}, {0, 4, 8}),
    "sus4": ({0, 5, 7}, {0, 5, 7}),
    "sus": ({0, 5, 7}, {0, 5, 7}),
    "sus2": ({0, 2, 7}, {0, 2, 7}),
    "add9": ({0, 4, 7, 2}, {0, 3, 7, 2}),
    "9": ({0, 4, 7, 10, 2}, {0, 3, 7, 10, 2}),
    "6": ({0, 4, 7, 9}, {0, 3, 7, 9}),
    "5": ({0, 7}, {0, 7}),
}
# slash figure → which chord tone is in the bass, as candidate intervals in order
SLASH = {"3": (4, 3, 5, 2), "5": (7, 6, 8), "7": (10, 11, 9)}


def name_pc(name: str) -> int:
    pc = NOTE_PC[name[0]]
    for ch in name[1:]:
        pc += {"#": 1, "b": -1}[ch]
    return pc % 12


def expected_root(key: Key, degree: int, acc: str) -> int:
    tonic = name_pc(key.tonic)
    if acc == "b":
        return (tonic + MAJOR[degree - 1] - 1) % 12  # a flat lowers the major-scale degree
    return (tonic + MODES[key.mode][degree - 1] + ACCIDENTALS[acc]) % 12  # a sharp raises the key's own


def expected_letter(key: Key, degree: int) -> str:
    letters = "CDEFGAB"
    return letters[(letters.index(key.tonic[0]) + degree - 1) % 7]


def chord_pcs(chord: Chord) -> set[int]:
    return {(name_pc(chord.root) + i) % 12 for i in QUALITIES[chord.quality][0]}


CASES = list(itertools.product(range(1, 8), ACCIDENTALS, (True, False), SUFFIXES))


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name.replace(" ", "_"))
def test_every_numeral_in_every_key(key):
    checked = 0
    for degree, acc, upper, suffix in CASES:
        numeral = NUMERALS[degree - 1] if upper else NUMERALS[degree - 1].lower()
        figure = acc + numeral + suffix
        rc = roman_to_chord(figure, key)
        root = expected_root(key, degree, acc)
        intervals = SUFFIXES[suffix][0 if upper else 1]
        assert name_pc(rc.chord.root) == root, figure
        assert rc.chord.root[0] == expected_letter(key, degree), (figure, key.name, rc.chord.root)
        assert chord_pcs(rc.chord) == {(root + i) % 12 for i in intervals}, (figure, key.name, rc.chord)
        assert rc.degree == degree
        assert rc.chord.bass is None
        # round trip: naming the chord and reading the name back gives the same pitches
        back = roman_to_chord(chord_to_roman(rc.chord, key), key).chord
        assert name_pc(back.root) == root and chord_pcs(back) == chord_pcs(rc.chord), (figure, key.name)
        checked += 1
    assert checked == 7 * 3 * 2 * len(SUFFIXES)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name.replace(" ", "_"))
def test_slash_bass_in_every_key(key):
    for degree, suffix, figure in itertools.product(range(1, 8), ("", "7", "maj7", "sus4", "°7", "m7b5"),
                                                    ("3", "5", "7")):
        for numeral in (NUMERALS[degree - 1], NUMERALS[degree - 1].lower()):
            text = f"{numeral}{suffix}/{figure}"
            upper = numeral.isupper()
            ivs = SUFFIXES[suffix][0 if upper else 1]
            root = expected_root(key, degree, "")
            wanted = next((i for i in SLASH[figure] if i in ivs), None)
            if wanted is None:
                with pytest.raises(InputError):
                    roman_to_chord(text, key)
                continue
            chord = roman_to_chord(text, key).chord
            assert name_pc(chord.bass) == (root + wanted) % 12, (text, key.name, chord)
            assert chord_to_roman(chord, key).endswith("/" + figure), (text, chord_to_roman(chord, key))
            back = roman_to_chord(chord_to_roman(chord, key), key).chord
            assert name_pc(back.bass) == name_pc(chord.bass) and chord_pcs(back) == chord_pcs(chord)
    # a named bass note
    c = roman_to_chord("V/B", Key("C")).chord
    assert c.name == "G/B"
    c = roman_to_chord("IV/G", Key("C")).chord
    assert (c.name, chord_to_roman(c, Key("C"))) == ("F/G", "IV/G")


def test_modal_interchange_in_f_gives_f_c_bbm_f():
    """The README promise the original code broke (original-system §5.2)."""
    chords = romans_to_chords(["I", "V", "iv", "I"], Key("F"))
    assert [c.name for c in chords] == ["F", "C", "Bbm", "F"]
    assert [c.name for c in romans_to_chords("I-bVI-IV-I", Key("F"))] == ["F", "Db", "Bb", "F"]
    assert [c.name for c in romans_to_chords("i VI III VII", Key("A", "minor"))] == ["Am", "F", "C", "G"]
    assert [c.name for c in romans_to_chords("Imaj7 IVmaj7 viim7b5 IVmaj7", Key("C"))] == \
        ["Cmaj7", "Fmaj7", "Bm7b5", "Fmaj7"]
    assert [c.name for c in romans_to_chords("I V vi IV", Key("Eb"))] == ["Eb", "Bb", "Cm", "Ab"]


def test_spelled_names():
    assert roman_to_chord("bVII", Key("C")).chord.name == "Bb"
    assert roman_to_chord("bIII", Key("E")).chord.name == "G"
    assert roman_to_chord("#vii°7", Key("A", "minor")).chord.name == "G#dim7"
    assert roman_to_chord("#iv°7", Key("C")).chord.name == "F#dim7"
    assert roman_to_chord("V7/V", Key("C")).chord.name == "D7"
    assert roman_to_chord("V/ii", Key("C")).chord.name == "A"
    assert roman_to_chord("viiø7", Key("F#")).chord.name == "E#m7b5"
    assert roman_to_chord("bII", Key("C#", "minor")).chord.name == "D"
    assert roman_to_chord("IV", Key("D", "dorian")).chord.name == "G"
    assert roman_to_chord("bVII", Key("G", "mixolydian")).chord.name == "F"
    assert roman_to_chord("I/3", Key("C")).chord.name == "C/E"
    assert roman_to_chord("Iadd9/9", Key("C")).chord.name == "Cadd9/D"  # the ninth, not position 4


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name.replace(" ", "_"))
def test_chord_to_roman_round_trips_every_root_and_quality(key):
    names = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    for root, quality in itertools.product(names, QUALITIES):
        chord = Chord(root, quality)
        numeral = chord_to_roman(chord, key)
        back = roman_to_chord(numeral, key).chord
        assert name_pc(back.root) == name_pc(root), (chord.name, key.name, numeral)
        assert back.quality == quality, (chord.name, key.name, numeral, back)


def test_chord_to_roman_names():
    c, am = Key("C"), Key("A", "minor")
    assert chord_to_roman(parse_chord("Ab"), c) == "bVI"
    assert chord_to_roman(parse_chord("Bb7"), c) == "bVII7"
    assert chord_to_roman(parse_chord("Fm"), c) == "iv"
    assert chord_to_roman(parse_chord("Bm7b5"), c) == "viiø7"
    assert chord_to_roman(parse_chord("F#dim7"), c) == "#iv°7"
    assert chord_to_roman(parse_chord("C#dim7"), c) == "#i°7"
    assert chord_to_roman(parse_chord("E"), am) == "V"
    assert chord_to_roman(parse_chord("G#dim"), am) == "#vii°"
    assert chord_to_roman(parse_chord("C#"), am) == "#III"  # not bIV (spelled Db), as before the fix
    assert chord_to_roman(parse_chord("F#m"), am) == "#vi"
    assert chord_to_roman(parse_chord("Bb"), am) == "bII"
    assert chord_to_roman(parse_chord("Dm7"), c) == "ii7"
    assert chord_to_roman(parse_chord("Cmaj7"), c) == "Imaj7"
    assert chord_to_roman(parse_chord("Gsus4"), c) == "Vsus4"
    assert chord_to_roman(parse_chord("Cadd9"), c) == "Iadd9"
    assert chord_to_roman(parse_chord("Eaug"), c) == "III+"
    assert chord_to_roman(parse_chord("C/E"), c) == "I/3"
    assert chord_to_roman(parse_chord("G7/F"), c) == "V7/7"
    assert chord_to_roman(parse_chord("C/D"), c) == "I/D"


@pytest.mark.parametrize("bad", ["", "VIII", "H", "Vxyz", "I/Q"])
def test_bad_numerals_raise_input_error(bad):
    with pytest.raises(InputError):
        roman_to_chord(bad, Key("C"))


# --- music21 as a second oracle ---------------------------------------------------------------
def _m21_key(key: Key):
    from music21 import key as m21key

    tonic = key.tonic.replace("b", "-") if len(key.tonic) > 1 else key.tonic
    return m21key.Key(tonic.lower() if key.is_minor else tonic)


@pytest.mark.parametrize("key", [k for k in KEYS if k.mode in ("ionian", "aeolian")],
                         ids=lambda k: k.name.replace(" ", "_"))
def test_against_music21(key):
    roman = pytest.importorskip("music21.roman")
    m21k = _m21_key(key)
    # our suffix → music21's, for fully specified qualities; our slash → music21 figured bass
    suffix_map = {"": "", "°": "o", "+": "+", "ø7": "ø7", "°7": "o7"}
    inversion_map = {"": "", "/3": "6", "/5": "64"}
    accs = ["", "#", "b"] if key.mode == "ionian" else ["", "#"]
    compared = 0
    for degree, acc, upper, (ours_sfx, theirs_sfx), (ours_inv, theirs_inv) in itertools.product(
            range(1, 8), accs, (True, False), suffix_map.items(), inversion_map.items()):
        if theirs_sfx in ("ø7", "o7") and theirs_inv:
            continue  # music21 writes seventh-chord inversions as 65/43/42
        numeral = NUMERALS[degree - 1] if upper else NUMERALS[degree - 1].lower()
        ours = roman_to_chord(acc + numeral + ours_sfx + ours_inv, key).chord
        theirs = roman.RomanNumeral(acc + numeral + theirs_sfx + theirs_inv, m21k,
                                    sixthMinor=roman.Minor67Default.FLAT,
                                    seventhMinor=roman.Minor67Default.FLAT)
        assert chord_pcs(ours) == {p.pitchClass for p in theirs.pitches}, (acc + numeral + ours_sfx, key.name)
        assert name_pc(ours.bass or ours.root) == theirs.bass().pitchClass
        m21_root = theirs.root().name.replace("-", "b")
        if len(m21_root) <= 3:
            assert ours.root == m21_root, (acc + numeral + ours_sfx, key.name, ours.root, m21_root)
        compared += 1
    assert compared > 300
