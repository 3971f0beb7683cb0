"""The modal key finder: ``kelly analyze`` names the church mode (issue 8, item 1).

Hand-built songs in each of the six modes Kelly writes, on every tonic; Kelly's own pieces
in D dorian and G mixolydian; three of O'Neill's tunes (music21 corpus) whose ABC header
names a mode that music21's major/minor key finder cannot; and the pieces of the result
(profiles, ending evidence, confidence, JSON, summary line).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.song import Note, Song, Track, read_midi_bytes
from kelly.theory.analysis import (
    CHURCH_MODES,
    KEY_PROFILES,
    Ending,
    analyze_song,
    estimate_key,
    estimate_mode,
    final_sonority,
    modal_profiles,
    mode_scores,
    pitch_class_histogram,
    summary_lines,
)
from kelly.theory.scales import MODE_INTERVALS, Key, parse_key

PPQ = 480
BEAT = PPQ
BAR = 4 * PPQ
KELLY_MODES = ("ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian")


def modal_song(tonic_pc: int, mode: str) -> Song:
    """A melody that runs the scale up and down twice over a held tonic triad, then ends on the tonic.

    Melody from the tonic at octave 5, one beat a note; an accompaniment of the tonic
    triad (root in the bass) held for the whole run, as a drone would; the final bar a
    tonic triad with the tonic on top and in the bass.
    """
    ivs = MODE_INTERVALS[mode]
    root = 60 + tonic_pc
    run = [root + i for i in ivs] + [root + 12] + [root + i for i in reversed(ivs[1:])]
    melody = [Note(k * BEAT, p, BEAT, 90) for k, p in enumerate(run * 2)]
    end = len(melody) * BEAT
    triad = [root - 24, root - 12 + ivs[2], root - 12 + ivs[4]]
    accomp = [Note(0, p, end, 60) for p in triad]
    final = [Note(end, p, BAR, 80) for p in (root - 24, root - 12, root - 12 + ivs[2], root - 12 + ivs[4], root)]
    return Song(tracks=[Track("melody", 0, 0, sorted(melody + [final[-1]])),
                        Track("keys", 1, 0, sorted(accomp + final[:-1]))], tempos=[(0, 100.0)])


# --- hand-built songs --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", KELLY_MODES)
def test_hand_built_songs_in_each_mode_on_every_tonic(mode):
    for tonic in range(12):
        est = analyze_song(modal_song(tonic, mode)).key
        assert (est.modal.key.tonic_pc, est.mode) == (tonic, mode), (tonic, mode, est.modal)
        assert est.modal.family == ("minor" if Key("C", mode).is_minor else "major")
        assert est.modal.evidence["ending_on_tonic"] is True


@pytest.mark.parametrize("name", ["C major", "D dorian", "E phrygian", "F lydian", "G mixolydian", "A minor",
                                  "Bb dorian", "F# mixolydian", "Eb lydian", "C# phrygian"])
def test_modes_are_named_and_spelled_as_written(name):
    key = parse_key(name)
    est = analyze_song(modal_song(key.tonic_pc, key.mode)).key.modal
    assert est.key.name == name


def test_the_same_seven_notes_with_a_different_final_name_a_different_mode():
    """One collection (the white keys) and the same melody: only the drone and the final differ."""
    names = []
    for tonic, mode in ((0, "ionian"), (2, "dorian"), (4, "phrygian"), (5, "lydian"), (7, "mixolydian"),
                        (9, "aeolian")):
        names.append(analyze_song(modal_song(tonic, mode)).key.modal.key.name)
    assert names == ["C major", "D dorian", "E phrygian", "F lydian", "G mixolydian", "A minor"]


# --- Kelly's own pieces ------------------------------------------------------------------------
@pytest.mark.parametrize("emotion,key", [("nostalgia", "D dorian"), ("calm", "G mixolydian")])
def test_kelly_pieces_are_heard_in_the_mode_they_declare(emotion, key):
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import ComposeOptions, compose

    for seed in (1, 2):
        comp = compose(state_for(emotion), ComposeOptions(key=key, seed=seed))
        assert comp.explanation.parameters.key == key
        analysis = analyze_song(read_midi_bytes(comp.song.to_bytes()))
        assert analysis.key.modal.key.name == key
        assert analysis.key.modal.confidence > 0.5
        assert any(line.startswith(f"Key: {key} (") for line in summary_lines(analysis))


# --- O'Neill's tunes (music21 corpus) ----------------------------------------------------------
def _oneill_tune(music21, file: str, number: int) -> str:
    """The ABC text of one tune of music21's ``oneills1850`` collection."""
    text = (Path(music21.__file__).parent / "corpus" / "oneills1850" / file).read_text(encoding="latin-1")
    for block in re.split(r"(?m)^(?=X:)", text):
        if re.match(rf"X:\s*{number}\s*$", block.splitlines()[0] if block.strip() else ""):
            return block
    raise AssertionError(f"tune {number} not in {file}")


@pytest.mark.parametrize("file,number,header,music21_says,kelly_hears", [
    ("0701-0720.abc", 716, "K:Dmix", "D major", "D mixolydian"),      # Kitty Magee
    ("0550-0625.abc", 607, "K:Gmix", "G major", "G mixolydian"),      # I Leave You in Sadness
    ("1476-1555.abc", 1542, "K:DDor", "d minor", "D dorian"),         # The Jug of Punch
])
def test_oneill_modal_tunes_through_midi(tmp_path, file, number, header, music21_says, kelly_hears):
    music21 = pytest.importorskip("music21")
    abc = _oneill_tune(music21, file, number)
    assert header in abc
    score = music21.converter.parse(abc, format="abc")
    assert str(score.analyze("key")) == music21_says  # music21 names only major and minor keys
    path = tmp_path / f"oneill_{number}.mid"
    score.write("midi", fp=str(path))
    from kelly.theory.analysis import analyze_file

    modal = analyze_file(path).key.modal
    assert modal.key.name == kelly_hears
    assert modal.evidence["ending_on_tonic"] is True


# --- the parts ---------------------------------------------------------------------------------
def test_modal_profiles_swap_the_characteristic_degrees():
    prof = modal_profiles("aarden")
    major, minor = (np.asarray(p) for p in KEY_PROFILES["aarden"])
    assert prof.shape == (7, 12)
    row = dict(zip(CHURCH_MODES, prof))
    assert np.array_equal(row["ionian"], major) and np.array_equal(row["aeolian"], minor)
    assert row["mixolydian"][10] == major[11] and row["mixolydian"][11] == major[10]
    assert row["lydian"][6] == major[5] and row["dorian"][9] == minor[8] and row["phrygian"][1] == minor[2]
    with pytest.raises(InputError):
        modal_profiles("nope")


def test_histogram_alone_and_the_ending_decide_the_tonic_within_one_collection():
    # the white keys, with D and A heaviest: D dorian without an ending
    h = np.zeros(12)
    for pc, w in ((2, 4), (4, 2), (5, 3), (7, 2), (9, 3), (11, 1.5), (0, 2)):
        h[pc] = w
    assert estimate_mode(h).key.name == "D dorian"
    assert estimate_mode(h, ending=Ending(2, (0.0,) * 12)).confidence > estimate_mode(h).confidence
    # a flat histogram of the white keys: only the ending tells G mixolydian from C major
    flat = np.zeros(12)
    flat[[0, 2, 4, 5, 7, 9, 11]] = 1.0
    assert estimate_mode(flat, ending=Ending(7, tuple(float(i in (7, 11, 2)) for i in range(12)))).key.name \
        == "G mixolydian"


def test_a_final_dominant_seventh_is_a_half_close():
    """C–Am–F–G7 stopped on G7 is in C major (the profiles alone lean to F lydian)."""
    chords = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62, 65]] * 2
    notes = []
    for i, pitches in enumerate(chords):
        notes.append(Note(i * BAR, pitches[0] - 12, BAR, 80))
        notes += [Note(i * BAR, p, BAR, 80) for p in pitches]
    ending = final_sonority(notes, PPQ)
    assert ending.bass_pc == 7
    est = estimate_mode(pitch_class_histogram(notes, PPQ), ending=ending)
    assert est.key.name == "C major"
    assert est.evidence["ending"] == pytest.approx(0.15)


def test_final_sonority_is_what_sounds_at_the_last_onset():
    notes = [Note(0, 50, 4 * BEAT, 80), Note(0, 62, BEAT, 80), Note(3 * BEAT, 66, BEAT, 80)]
    e = final_sonority(notes, PPQ)
    assert e.bass_pc == 2 and e.weights[6] == 1.0 and e.weights[2] == 1.0  # D held under the F#; the upper D ended
    assert final_sonority([], PPQ) is None
    single = final_sonority([Note(0, 69, BEAT, 80)], PPQ)
    assert (single.bass_pc, single.root_pc, single.home_pc) == (9, None, 9)


def test_an_ending_in_second_inversion_counts_its_root():
    """A dorian piece whose last chord is Am/E: the ending points at A, not at E."""
    song = modal_song(9, "dorian")
    keys = song.tracks[1]
    end = max(n.start for n in keys.notes)
    bass = [n for n in keys.notes if n.start == end and n.pitch == 9 + 60 - 24][0]
    keys.notes[keys.notes.index(bass)] = Note(bass.start, 52, bass.duration, bass.velocity)  # E under the A minor chord
    ending = final_sonority([n for t in song.tracks for n in t.notes], PPQ)
    assert (ending.bass_pc, ending.root_pc) == (4, 9)
    est = analyze_song(song).key.modal
    assert est.key.name == "A dorian"
    assert est.evidence["ending_bass"] == "E" and est.evidence["ending_root"] == "A"
    assert est.evidence["ending_on_tonic"] is True


def test_scores_confidence_and_alternatives():
    h = pitch_class_histogram(modal_song(2, "dorian").tracks[0].notes)
    scores = mode_scores(h)
    assert scores.shape == (7, 12)
    est = estimate_mode(h)
    assert 0 < est.confidence <= 1 and est.margin >= 0
    assert len(est.alternatives) == 4 and all(0 <= c <= est.confidence for _, c in est.alternatives)
    assert est.score == pytest.approx(scores.max())
    with pytest.raises(InputError):
        estimate_mode(np.zeros(12))


def test_estimate_key_keeps_the_major_minor_answer_and_adds_the_mode():
    song = modal_song(7, "mixolydian")
    h = pitch_class_histogram([n for t in song.tracks for n in t.notes])
    plain = estimate_key(h)
    assert plain.key.mode in ("ionian", "aeolian")  # the major/minor answer is untouched
    assert plain.modal is not None and plain.mode == plain.modal.key.mode
    a = analyze_song(song)
    assert a.key.mode == "mixolydian" and a.key.mode_confidence == a.key.modal.confidence


def test_json_and_summary_report_the_mode(kelly, tmp_path):
    path = tmp_path / "dorian.mid"
    modal_song(2, "dorian").save(path)
    code, out, _ = kelly("analyze", str(path))
    assert code == 0
    assert re.search(r"^Key: D dorian \(minor family; confidence \d\.\d\d; then ", out, re.M)
    assert re.search(r"^Major/minor: D minor \(r = ", out, re.M)
    code, out, _ = kelly("analyze", str(path), "--json")
    data = json.loads(out)["key"]
    assert data["mode"] == "minor" and data["name"] == "D minor"  # the major/minor fields as before
    assert data["church_mode"] == "dorian"
    modal = data["modal"]
    assert (modal["tonic"], modal["mode"], modal["name"], modal["family"]) == ("D", "dorian", "D dorian", "minor")
    assert 0 < modal["confidence"] <= 1 and len(modal["alternatives"]) == 4
    assert modal["evidence"]["ending_bass"] == "D" and modal["evidence"]["ending_on_tonic"] is True
