"""``kelly.theory.analysis`` and ``kelly analyze`` on small songs built here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kelly.errors import FileFormatError, InputError
from kelly.song import Note, Song, Track, read_midi
from kelly.theory.analysis import (
    KEY_PROFILES,
    analyze_file,
    analyze_song,
    detect_chords,
    estimate_key,
    groove_statistics,
    key_correlations,
    match_chord,
    pitch_class_histogram,
    summary_lines,
)
from kelly.theory.scales import Key

PPQ = 480
BAR = 4 * PPQ


def block_chords(chords: list[list[int]], *, bar: int = BAR, velocity: int = 80, start: int = 0) -> list[Note]:
    """One block chord per bar (MIDI pitches), plus the root an octave down."""
    notes = []
    for i, pitches in enumerate(chords):
        t = start + i * bar
        notes.append(Note(t, pitches[0] - 12, bar, velocity))
        notes += [Note(t, p, bar, velocity) for p in pitches]
    return notes


def song_of(notes, *, drums=None, tempos=None, markers=None, ts=(4, 4)) -> Song:
    tracks = [Track("keys", 0, 0, sorted(notes))]
    if drums:
        tracks.append(Track("drums", 0, 9, sorted(drums)))
    return Song(tracks=tracks, tempos=tempos or [(0, 120.0)], markers=markers or [], time_signature=ts)


C, AM, F, G, G7, FM, DM, E = [60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62], [55, 59, 62, 65], \
    [53, 56, 60], [50, 53, 57], [52, 56, 59]


def test_profiles_are_complete_and_rotation_is_right():
    for major, minor in KEY_PROFILES.values():
        assert len(major) == len(minor) == 12
    # a histogram equal to the C major profile itself correlates 1.0 with C major
    h = np.array(KEY_PROFILES["krumhansl"][0])
    r = key_correlations(h, "krumhansl")
    assert r[0, 0] == pytest.approx(1.0)
    # shifting it up a fifth gives G major
    assert estimate_key(np.roll(h, 7), "krumhansl").key.name == "G major"
    with pytest.raises(InputError):
        estimate_key(np.zeros(12))
    with pytest.raises(InputError):
        key_correlations(h, "nope")


@pytest.mark.parametrize("tonic", range(12))
def test_key_of_cadential_progressions_in_all_keys(tonic):
    major = block_chords([[p + tonic for p in ch] for ch in (C, F, G7, C, AM, DM, G7, C)])
    est = estimate_key(pitch_class_histogram(major))
    assert (est.key.tonic_pc, est.key.is_minor) == (tonic, False)
    # i iv V i in minor (harmonic minor V)
    minor = block_chords([[p + tonic for p in ch] for ch in ([57, 60, 64], [50, 53, 57], [52, 56, 59],
                                                             [57, 60, 64], [50, 53, 57], [52, 56, 59, 62],
                                                             [57, 60, 64])])
    est = estimate_key(pitch_class_histogram(minor))
    assert (est.key.tonic_pc, est.key.is_minor) == ((tonic + 9) % 12, True)


def test_match_chord_templates():
    w = np.zeros(12)
    w[[0, 4, 7]] = 1
    assert match_chord(w)[:2] == (0, "maj")
    w[10] = 1
    assert match_chord(w)[:2] == (0, "7")
    w = np.zeros(12)
    w[[9, 0, 4]] = 1
    assert match_chord(w, bass_pc=9)[:2] == (9, "min")
    w = np.zeros(12)
    w[[11, 2, 5]] = 1
    assert match_chord(w)[:2] == (11, "dim")
    w = np.zeros(12)
    w[[0, 4, 7]] = 1
    w[2] = 0.3  # a passing note does not change the chord
    assert match_chord(w)[:2] == (0, "maj")


def test_chords_romans_and_borrowed():
    song = song_of(block_chords([C, AM, F, G, C, FM, G7, C]))
    chords = detect_chords(song, Key("C"))
    assert [c.chord.name for c in chords] == ["C", "Am", "F", "G", "C", "Fm", "G7", "C"]
    assert [c.roman for c in chords] == ["I", "vi", "IV", "V", "I", "iv", "V7", "I"]
    kinds = [c.kind for c in chords]
    assert kinds[5] == "borrowed" and chords[5].source == "C minor"
    assert kinds.count("diatonic") == 7
    # segmenting by bar gives the same chords here
    assert [c.chord.name for c in detect_chords(song, Key("C"), segment="bar")][:4] == ["C", "Am", "F", "G"]
    with pytest.raises(InputError):
        detect_chords(song, Key("C"), segment="fortnight")


def test_inversions_and_secondary_dominants():
    first_inversion = [64, 67, 72]  # C/E
    d7 = [50, 54, 57, 60]  # D7 → G: V7/V
    notes = []
    for i, pitches in enumerate([F, first_inversion, d7, G, C]):
        notes += [Note(i * BAR, p, BAR, 80) for p in pitches]
    chords = detect_chords(song_of(notes), Key("C"))
    assert chords[1].chord.name == "C/E" and chords[1].roman == "I/3"
    assert chords[2].chord.name == "D7" and chords[2].kind == "secondary dominant"


def test_analyze_song_whole_piece():
    drums = [Note(i * PPQ, 42, 60, 70 + (i % 2) * 40) for i in range(32)]  # hats would say "F#" if counted
    song = song_of(block_chords([C, AM, F, G7] * 2), drums=drums, tempos=[(0, 100.0), (4 * BAR, 80.0)])
    a = analyze_song(song)
    assert a.key.key.name == "C major"
    assert a.tempo_bpm == 100.0
    assert [c["bpm"] for c in a.tempo_changes] == [100.0, 80.0]
    assert a.tempo_changes[1]["bar"] == 5
    # 16 beats at 100 bpm + 16 beats at 80 bpm
    assert a.duration_s == pytest.approx(16 * 0.6 + 16 * 0.75)
    assert 80 < a.mean_tempo_bpm < 100
    assert a.time_signature == (4, 4) and a.bars == 8
    d = a.to_dict()
    json.dumps(d)
    assert d["key"]["tonic"] == "C" and d["key"]["mode"] == "major"
    assert d["chords"][0]["chord"] == "C" and d["chords"][0]["bar"] == 1
    assert -1 <= d["affect"]["valence"] <= 1 and 0 <= d["affect"]["arousal"] <= 1
    assert any("Key: C major" in line for line in summary_lines(a))


def test_drums_only_or_empty_is_a_clear_error():
    with pytest.raises(InputError, match="only drum"):
        analyze_song(Song(tracks=[Track("d", 0, 9, [Note(0, 36, 100, 100)])]))
    with pytest.raises(InputError, match="no notes"):
        analyze_song(Song(tracks=[]))


def test_sections_from_markers_and_from_energy():
    quiet = block_chords([C, AM, F, G] * 2, velocity=40)
    busy = []
    for bar in range(8, 16):
        for i in range(16):
            busy.append(Note(bar * BAR + i * PPQ // 4, 72 + (i % 5), PPQ // 4, 110))
        busy += [Note(bar * BAR, p, BAR, 100) for p in C]
    song = song_of(quiet + busy)
    a = analyze_song(song)
    assert not a.sections_from_markers
    assert [s.start_bar for s in a.sections] == [0, 8]
    assert a.sections[1].energy > a.sections[0].energy
    assert a.sections[0].name != a.sections[1].name

    marked = song_of(quiet + busy, markers=[(0, "Verse"), (8 * BAR, "Chorus")])
    a = analyze_song(marked)
    assert a.sections_from_markers
    assert [(s.name, s.start_bar, s.end_bar) for s in a.sections] == [("Verse", 0, 8), ("Chorus", 8, 16)]


def test_groove_swing_timing_and_velocity():
    # swung eighths: off-beats at 2/3 of the beat (triplet swing), alternating accents and ghosts
    notes = []
    for beat in range(16):
        notes.append(Note(beat * PPQ, 60, 100, 110))
        notes.append(Note(beat * PPQ + 320, 62, 100, 30))
    g = groove_statistics(song_of(notes))
    assert g["swing_ratio"] == pytest.approx(2.0, abs=0.01)
    assert g["velocity"]["ghost_count"] == 16 and g["velocity"]["accent_count"] == 16
    assert g["velocity"]["min"] == 30 and g["velocity"]["max"] == 110
    assert g["velocity"]["mean"] == pytest.approx(70)

    straight = [Note(i * PPQ // 2, 60, 100, 80) for i in range(32)]
    assert groove_statistics(song_of(straight))["swing_ratio"] == pytest.approx(1.0)

    # every note 10 ticks late at 120 bpm: 10 * 60000 / (120 * 480) ms
    late = [Note(i * PPQ // 4 + 10, 60, 50, 80) for i in range(32)]
    t = groove_statistics(song_of(late))["timing_ms"]
    assert t["mean"] == pytest.approx(10 * 60000 / (120 * 480), abs=1e-3)
    assert t["std"] == pytest.approx(0, abs=1e-6)
    assert t["max_abs"] == pytest.approx(10.417, abs=1e-3)


def test_affect_follows_mode_tempo_and_energy():
    happy = song_of(block_chords([C, F, G, C] * 4, velocity=110), tempos=[(0, 160.0)])
    happy.tracks[0].notes += [Note(i * PPQ // 4, 72 + (i % 3) * 2, PPQ // 4, 110) for i in range(256)]
    sad = song_of(block_chords([AM, DM, E, AM] * 4, velocity=45), tempos=[(0, 60.0)])
    a_happy = analyze_song(happy).affect
    a_sad = analyze_song(sad).affect
    assert a_happy["valence"] > 0.3 > -0.3 > a_sad["valence"]
    assert a_happy["arousal"] > 0.7 and a_sad["arousal"] < 0.35
    for a in (a_happy, a_sad):
        assert -1 <= a["valence"] <= 1 and 0 <= a["arousal"] <= 1


def test_round_trip_through_a_midi_file(tmp_path):
    song = song_of(block_chords([AM, DM, E, AM]), tempos=[(0, 90.0)])
    path = tmp_path / "minor.mid"
    song.save(path)
    a = analyze_file(path)
    assert a.key.key.name == "A minor"
    assert [c.roman for c in a.chords] == ["i", "iv", "V", "i"]
    assert a.tempo_bpm == pytest.approx(90.0)


# --- the command line ---------------------------------------------------------------------------
def test_cli_analyze_human_and_json(kelly, tmp_path):
    path = tmp_path / "song.mid"
    song_of(block_chords([C, AM, F, G7, C])).save(path)
    code, out, err = kelly("analyze", str(path))
    assert code == 0 and err == ""
    assert "Key: C major" in out and "Roman:  I vi IV V7 I" in out and "valence" in out
    code, out, _ = kelly("analyze", str(path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["key"]["name"] == "C major"
    assert [c["roman"] for c in data["chords"]] == ["I", "vi", "IV", "V7", "I"]
    assert data["time_signature"] == "4/4"
    assert set(data["groove"]) >= {"swing_ratio", "timing_ms", "velocity"}
    assert set(data["affect"]) >= {"valence", "arousal", "components"}


@pytest.mark.parametrize("kind", ["corrupt", "missing", "text", "truncated", "folder", "empty"])
def test_cli_analyze_bad_files_exit_2_with_one_line(kelly, tmp_path, kind):
    path = tmp_path / "bad.mid"
    if kind == "corrupt":
        path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff\xff\xff\x00\x90\x3c")
    elif kind == "text":
        path.write_text("this is not music\n")
    elif kind == "truncated":
        good = song_of(block_chords([C, G])).to_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "folder":
        path = tmp_path
    elif kind == "empty":
        path.write_bytes(b"")
    code, out, err = kelly("analyze", str(path))
    assert code == 2, (kind, out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("kelly: error:")
    assert "Traceback" not in err


def test_read_errors_are_file_format_errors(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"\x00\x01garbage")
    with pytest.raises(FileFormatError):
        read_midi(tmp_path / "x.mid")
    with pytest.raises(FileFormatError):
        analyze_file(tmp_path / "nope.mid")
