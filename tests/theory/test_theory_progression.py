"""``kelly diagnose`` and ``kelly reharm`` (kelly.theory.progression)."""

from __future__ import annotations

import json

import pytest

from kelly.errors import InputError
from kelly.theory.chords import parse_progression
from kelly.theory.progression import (
    REHARM_TECHNIQUES,
    STYLES,
    detect_key,
    diagnose,
    reharmonize,
)
from kelly.theory.roman import roman_to_chord
from kelly.theory.scales import Key


def test_f_c_am_dm_is_f_major():
    d = diagnose("F-C-Am-Dm")
    assert (d.key.tonic, d.mode) == ("F", "major")
    assert [r.roman for r in d.chords] == ["I", "V", "iii", "vi"]
    assert all(r.function == "diatonic" for r in d.chords)
    assert any("ends on Dm" in i for i in d.issues)
    assert d.suggestions


def test_am_f_c_g_is_a_minor_or_its_relative():
    d = diagnose("Am-F-C-G")
    assert d.key.name in ("A minor", "C major")
    assert d.key.name == "A minor"  # it starts on Am: the tonic weighting decides
    assert [r.roman for r in d.chords] == ["i", "VI", "III", "VII"]
    assert any("no V chord" in i for i in d.issues)


def test_borrowed_iv_is_flagged():
    d = diagnose("F-C-Bbm-F")
    assert d.key.name == "F major"
    bbm = d.chords[2]
    assert (bbm.chord.name, bbm.roman, bbm.function) == ("Bbm", "iv", "borrowed")
    assert "F minor" in bbm.note
    assert any("Bbm" in i and "borrowed" in i for i in d.issues)
    assert d.cadence == "minor plagal (iv–I)"


@pytest.mark.parametrize("prog,roman", [("C-Ab-Bb-C", "bVI"), ("C-Eb-F-C", "bIII"), ("G-F-C-G", "bVII")])
def test_borrowed_flat_degrees_are_named(prog, roman):
    d = diagnose(prog)
    borrowed = [r for r in d.chords if r.function == "borrowed"]
    assert borrowed and borrowed[0].roman == roman
    assert any(roman in issue for issue in d.issues)


def test_tritone_motion_no_v_and_ending():
    d = diagnose("C-F#-F-C")
    assert any("tritone root motion C → F#" in i for i in d.issues)
    assert any("no V chord" in i for i in d.issues)
    d = diagnose("C-Am-F-G-C")
    assert d.issues == [] and d.cadence == "authentic (V–I)"
    d = diagnose("C-F-G")
    assert d.cadence == "half (ends on V)" and not any("ends on" in i for i in d.issues)


def test_secondary_dominant_is_explained_not_flagged_as_borrowed():
    d = diagnose("C-A7-Dm-G7-C")
    a7 = d.chords[1]
    assert a7.function == "secondary dominant" and a7.note.startswith("V/ii")


@pytest.mark.parametrize("tonic", ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"])
def test_key_detection_in_every_key(tonic):
    for mode, romans in (("major", "I vi IV V7 I"), ("minor", "i iv V7 i")):
        key = Key(tonic, mode)
        chords = [roman_to_chord(r, key).chord for r in romans.split()]
        found, ranking = detect_key(chords)
        assert (found.tonic_pc, found.is_minor) == (key.tonic_pc, key.is_minor), (tonic, mode, found)
        assert len(ranking) == 24


def test_diagnose_errors_and_json():
    with pytest.raises(InputError):
        diagnose("")
    with pytest.raises(InputError, match="cannot read chord"):
        diagnose("C-Hm-G")
    json.dumps(diagnose("F-C-Am-Dm").to_dict())


@pytest.mark.parametrize("style", STYLES)
def test_reharm_gives_n_distinct_results_deterministically(style):
    for prog in ("F-C-Am-Dm", "C-G-Am-F", "Am-F-C-G", "Dm7-G7-Cmaj7"):
        results = reharmonize(prog, style, count=5, seed=7)
        assert len(results) == 5
        sequences = [tuple(r.symbols) for r in results]
        assert len(set(sequences)) == 5
        assert tuple(c.name for c in parse_progression(prog)) not in sequences
        names = set(REHARM_TECHNIQUES[style]) | {"diatonic_sevenths"}
        for r in results:
            assert r.techniques and set(r.techniques) <= names
            assert len(r.romans) == len(r.chords)
            key, _ = detect_key(prog)
            for chord, numeral in zip(r.chords, r.romans):  # every numeral names its chord
                back = roman_to_chord(numeral, key).chord
                assert back.root_pc == chord.root_pc and back.quality == chord.quality, (chord, numeral)
        again = reharmonize(prog, style, count=5, seed=7)
        assert [r.to_dict() for r in again] == [r.to_dict() for r in results]
    other = reharmonize("F-C-Am-Dm", style, count=5, seed=8)
    assert [r.to_dict() for r in other] != [r.to_dict() for r in reharmonize("F-C-Am-Dm", style, count=5, seed=7)]


def test_every_technique_is_used_somewhere():
    for style, techniques in REHARM_TECHNIQUES.items():
        used = set()
        for seed in range(5):
            for r in reharmonize("C-Am-F-G-C", style, count=8, seed=seed):
                used |= set(r.techniques)
        assert set(techniques) <= used, (style, set(techniques) - used)


def test_technique_content():
    tritone = reharmonize("Dm7-G7-Cmaj7", "jazz", count=12, seed=0)
    subs = [r for r in tritone if r.techniques[0] == "tritone_substitution"]
    assert any("Db7" in r.symbols for r in subs)
    pop = reharmonize("C-F-G-C", "pop", count=8, seed=1)
    borrowed = [r for r in pop if r.techniques == ("borrowed_from_parallel",)]
    assert borrowed and any(s in ("Fm", "Bb") for s in borrowed[0].symbols)
    classical = reharmonize("C-F-G-C", "classical", count=8, seed=2)
    six_four = [r for r in classical if r.techniques == ("cadential_six_four",)]
    assert six_four and "C/G" in six_four[0].symbols and "I/5" in six_four[0].romans


def test_reharm_errors():
    with pytest.raises(InputError, match="jazz, pop, rnb, classical, experimental"):
        reharmonize("C-F-G", "metal")
    with pytest.raises(InputError):
        reharmonize("C-F-G", "jazz", count=0)
    with pytest.raises(InputError, match="cannot read chord"):
        reharmonize("C-Q-G", "jazz")
    assert reharmonize("C-F-G", "R&B", count=2)  # spelled the usual way


# --- command line ----------------------------------------------------------------------------------
def test_cli_diagnose(kelly):
    code, out, err = kelly("diagnose", "F-C-Bbm-F")
    assert code == 0 and "Key: F major" in out and "Bbm (iv)" in out and "borrowed" in out
    code, out, _ = kelly("diagnose", "F-C-Am-Dm", "--json")
    data = json.loads(out)
    assert (data["key"], data["mode"]) == ("F", "major")
    assert [c["roman"] for c in data["chords"]] == ["I", "V", "iii", "vi"]
    assert isinstance(data["issues"], list) and isinstance(data["suggestions"], list)


def test_cli_reharm(kelly):
    code, out, _ = kelly("reharm", "F-C-Am-Dm", "--style", "jazz", "-n", "4", "--seed", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["seed"] == 3 and len(data["results"]) == 4
    assert len({tuple(r["chords"]) for r in data["results"]}) == 4
    code2, out2, _ = kelly("reharm", "F-C-Am-Dm", "--style", "jazz", "-n", "4", "--seed", "3", "--json")
    assert out2 == out
    code, out, _ = kelly("reharm", "F-C-Am-Dm", "-s", "pop", "--seed", "1")
    assert code == 0 and out.count("\n1. ") + out.count("\n2. ") + out.count("\n3. ") == 3


@pytest.mark.parametrize("argv,needle", [
    (("reharm", "F-C", "--style", "metal"), "choose one of: jazz, pop, rnb, classical, experimental"),
    (("reharm", "F-Xq-C", "--style", "pop"), "cannot read chord"),
    (("diagnose", "Z"), "cannot read chord"),
    (("reharm", "F-C", "-n", "99"), "between 1 and 20"),
])
def test_cli_errors_exit_2(kelly, argv, needle):
    code, out, err = kelly(*argv)
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1
