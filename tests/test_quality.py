"""kelly.quality: each measure on small hand-built songs whose answer is known."""

from __future__ import annotations

import shutil

import pytest

from kelly import quality as q
from kelly.song import DRUM_CHANNEL, PPQ, Note, Role, Song, Track, read_midi_bytes

BAR = 4 * PPQ


def song_of(melody, *others, tempos=None, time_signature=(4, 4)) -> Song:
    tracks = [Track("Melody", 73, 0, list(melody), Role.MELODY), *others]
    return Song(tracks=tracks, tempos=tempos or [(0, 120.0)], time_signature=time_signature)


def pad(notes, program=89) -> Track:
    return Track("Pad", program, 3, list(notes), Role.PAD)


def n(start, pitch, dur=PPQ, vel=80) -> Note:
    return Note(start, pitch, dur, vel)


# ---------------------------------------------------------------------- clashes
def test_minor_ninth_against_accompaniment_is_a_clash():
    s = song_of([n(0, 73), n(PPQ, 76)], pad([n(0, 60, 2 * PPQ)]))  # C#5 over C4: a minor 9th; E5 over C4: fine
    assert q.clash_rate(s) == 0.5


def test_major_seventh_and_unison_are_not_clashes():
    s = song_of([n(0, 71), n(PPQ, 60)], pad([n(0, 60, 2 * PPQ)]))
    assert q.clash_rate(s) == 0.0


def test_minor_second_below_the_accompaniment_is_a_clash():
    s = song_of([n(0, 66)], pad([n(0, 67)]))
    assert q.clash_rate(s) == 1.0


def test_overlap_shorter_than_a_32nd_is_not_sounding_together():
    s = song_of([n(0, 61, PPQ)], pad([n(PPQ - PPQ // 8 + 1, 60)]))  # overlaps by 59 ticks at 480 PPQ
    assert q.clash_rate(s) == 0.0
    s = song_of([n(0, 61, PPQ)], pad([n(PPQ - PPQ // 8, 60)]))  # exactly a 32nd
    assert q.clash_rate(s) == 1.0


def test_drums_are_ignored_and_no_melody_gives_none():
    drums = Track("Drums", 0, DRUM_CHANNEL, [n(0, 61)], Role.DRUMS)
    assert q.clash_rate(song_of([n(0, 60)], drums)) == 0.0
    assert q.clash_rate(Song(tracks=[pad([n(0, 60)])])) is None


def test_only_the_first_melody_track_is_the_melody():
    drift = Track("Melody (drift)", 73, 5, [n(0, 61)], Role.MELODY)
    s = song_of([n(0, 60)], drift)
    assert q.clash_rate(s) == 1.0  # the second melody track is accompaniment
    assert q.melody_on_top_rate(s) == 0.0


# ---------------------------------------------------------------------- on top
def test_melody_under_a_pad_is_not_on_top():
    s = song_of([n(0, 60), n(PPQ, 62), n(2 * PPQ, 72)], pad([n(0, 67, 3 * PPQ)]))
    assert q.melody_on_top_rate(s) == pytest.approx(1 / 3)


def test_unison_with_the_top_voice_counts_as_on_top():
    s = song_of([n(0, 67)], pad([n(0, 67), n(0, 60)]))
    assert q.melody_on_top_rate(s) == 1.0


def test_melody_alone_is_on_top():
    assert q.melody_on_top_rate(song_of([n(0, 40)], pad([n(4 * PPQ, 90)]))) == 1.0


# ------------------------------------------------------------------- restatement
def _pattern_bar(bar: int, shift: int, pattern=((0, 0), (2, 4), (4, 7), (8, 5), (12, 2))):
    return [n(bar * BAR + pos * PPQ // 4, 60 + shift + p, PPQ // 4) for pos, p in pattern]


def test_transposed_bars_restate_the_first():
    notes = [x for b in range(16) for x in _pattern_bar(b, b % 5)]
    assert q.restated_bar_fraction(song_of(notes)) == pytest.approx(15 / 16)


def test_bars_with_new_rhythms_restate_nothing():
    # bar b: a downbeat and a second note b + 1 sixteenths later, so no two bars share a rhythm
    notes = [x for b in range(15) for x in (n(b * BAR, 60, 60), n(b * BAR + (b + 1) * PPQ // 4, 62, 60))]
    assert q.restated_bar_fraction(song_of(notes), min_bars=15) == 0.0
    # a last bar that is bar 3 a fifth higher restates it
    notes += [n(15 * BAR, 67, 60), n(15 * BAR + 4 * PPQ // 4, 69, 60)]
    assert q.restated_bar_fraction(song_of(notes)) == pytest.approx(1 / 16)
    # the same rhythm with another interval does not
    notes[-1] = n(15 * BAR + 4 * PPQ // 4, 70, 60)
    assert q.restated_bar_fraction(song_of(notes)) == 0.0


def test_one_note_bars_do_not_restate_busy_bars():
    notes = _pattern_bar(0, 0) + [n(b * BAR, 60) for b in range(1, 16)]
    # bar 1's single downbeat note matches 1 of bar 0's 5 notes; bars 2.. restate bar 1
    assert q.restated_bar_fraction(song_of(notes)) == pytest.approx(14 / 16)


def test_restatement_needs_sixteen_bars_and_follows_the_time_signature():
    notes = [x for b in range(8) for x in _pattern_bar(b, 0)]
    assert q.restated_bar_fraction(song_of(notes)) is None
    bar34 = 3 * PPQ
    notes = [n(b * bar34 + off, 60 + b % 3 + p, 100) for b in range(24) for off, p in ((0, 0), (PPQ, 4), (2 * PPQ, 7))]
    assert q.restated_bar_fraction(song_of(notes, time_signature=(3, 4))) == pytest.approx(23 / 24)
    # read as 4/4 the same notes fall across the barlines and repeat only every 9 bars of 4/4 (36 beats)
    assert q.restated_bar_fraction(song_of(notes)) < 0.8


def test_humanized_onsets_still_restate():
    notes = [x for b in range(16) for x in _pattern_bar(b, 0)]
    jitter = [x.moved(start=max(0, x.start + (-17 if k % 3 else 23))) for k, x in enumerate(notes)]
    assert q.restated_bar_fraction(song_of(jitter)) == pytest.approx(15 / 16)


# ------------------------------------------------------------- duplicates, range
def test_duplicates_count_every_note_of_a_group():
    s = song_of([n(0, 60), n(0, 60, 2 * PPQ), n(0, 64), n(PPQ, 60)], pad([n(0, 60)]))
    assert q.duplicate_notes(s) == {"Melody": 2}


def test_out_of_range_bass_and_drums():
    bass = Track("Bass", 33, 2, [n(0, 10), n(PPQ, 28), n(2 * PPQ, 23)], Role.BASS)
    drums = Track("Drums", 0, DRUM_CHANNEL, [n(0, 36), n(PPQ, 20)], Role.DRUMS)
    flute = [n(0, 55), n(PPQ, 72)]  # program 73 flute: C4 and up
    assert q.out_of_range_notes(song_of(flute, bass, drums)) == {"Melody": 1, "Bass": 1, "Drums": 1}


def test_every_program_has_a_range():
    for program in range(128):
        low, high, what = q.playable_range(Track("x", program))
        assert 0 <= low < high <= 127 and what
    assert q.playable_range(Track("Piano", 0))[:2] == (21, 108)
    assert q.playable_range(Track("Violin", 40))[:2] == (55, 103)


# --------------------------------------------------------------------------- keys
def _chords(progression, bars_each=1):
    notes, t = [], 0
    for chord in progression:
        notes += [n(t, p, BAR) for p in chord]
        t += BAR * bars_each
    return notes


def test_key_heard_in_c_major_and_a_minor():
    c_major = _chords([(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)])
    s = song_of([n(k * PPQ, p) for k, p in enumerate((72, 74, 76, 77, 79, 77, 76, 72))], pad(c_major))
    assert q.key_heard(s) == ("C", "major")
    assert q.mode_family_heard(s, "C major") is True
    assert q.mode_family_heard(s, "C lydian") is True
    assert q.mode_family_heard(s, "Am") is False  # relative minor: wrong tonic
    assert q.mode_family_heard(s, "C minor") is False
    a_minor = _chords([(57, 60, 64), (50, 53, 57), (52, 56, 59), (57, 60, 64)])
    s = song_of([n(k * PPQ, p) for k, p in enumerate((69, 71, 72, 74, 76, 74, 72, 69))], pad(a_minor))
    assert q.key_heard(s) == ("A", "minor")
    assert q.mode_family_heard(s, "A aeolian") is True and q.mode_family_heard(s, "A dorian") is True


def test_parse_and_declared_keys():
    assert q.parse_key("Am") == (9, "A", "minor")
    assert q.parse_key("Eb") == (3, "Eb", "major")
    assert q.parse_key("F#m") == (6, "F#", "minor")
    assert q.parse_key("D dorian") == (2, "D", "dorian")
    assert q.parse_key("Bb harmonic_minor")[2] == "harmonic minor"
    with pytest.raises(ValueError):
        q.parse_key("H major")
    assert q.mode_family("mixolydian") == "major" and q.mode_family("phrygian") == "minor"
    s = song_of([n(0, 60)])
    s.key_signature = "Am"
    assert q.declared_key(s) == "Am"
    assert q.declared_key(s, {"parameters": {"key": "D dorian", "detailed_mode": "aeolian"}}) == "D dorian"
    assert q.declared_key(s, {"parameters": {"key": "D", "detailed_mode": "dorian"}}) == "D dorian"


def test_key_report_checks_journey_sections_separately():
    c_major = _chords([(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)])
    c_minor = _chords([(48, 51, 55), (53, 56, 60), (55, 59, 62), (48, 51, 55)])
    s = song_of([], pad(c_major + [x.moved(start=x.start + 4 * BAR) for x in c_minor]))
    sections = {"arrangement": {"sections": [{"start_bar": 1, "bars": 4, "key": "C major"},
                                             {"start_bar": 5, "bars": 4, "key": "C minor"}]},
                "parameters": {"key": "C major"}}
    rep = q.key_report(s, sections)
    assert [c["ok"] for c in rep["sections"]] == [True, True] and rep["ok"] is True


# ---------------------------------------------------------- dynamics, tempo, leaps
def test_velocity_stats_by_role():
    drums = Track("Drums", 0, DRUM_CHANNEL, [n(0, 36, vel=127)], Role.DRUMS)
    s = song_of([n(0, 72, vel=100), n(PPQ, 74, vel=127)], pad([n(0, 60, vel=40)]), drums)
    v = q.velocity_stats(s)
    assert v["by_role"]["melody"]["mean"] == 113.5 and v["by_role"]["pad"]["median"] == 40
    assert v["max"] == 127 and v["at_127"] == pytest.approx(1 / 3) and "drums" not in v["by_role"]


def test_tempo_jump_between_bars():
    notes = [n(b * BAR, 60) for b in range(6)]
    s = song_of(notes, tempos=[(0, 100.0), (2 * BAR, 100.0), (3 * BAR - PPQ, 110.0), (3 * BAR, 125.0)])
    assert q.max_tempo_step(s) == pytest.approx(0.25)  # downbeats 100, 100, 100, 125
    assert q.max_tempo_step(song_of(notes)) == 0.0


def test_melody_leaps_and_register():
    s = song_of([n(0, 60), n(0, 55), n(PPQ, 72), n(2 * PPQ, 71), n(3 * PPQ, 84)])
    leaps = q.melody_leaps(s)  # line 60 → 72 → 71 → 84 (the double stop counts its top note)
    assert leaps == {"over_fifth": pytest.approx(2 / 3), "over_octave": pytest.approx(1 / 3), "largest": 13, "n": 3}
    assert q.melody_register(s) == {"mean": 68.4, "median": 71, "low": 55, "high": 84}


# ------------------------------------------------------------------- the report
def test_report_on_a_composed_piece_read_back():
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import ComposeOptions, compose

    comp = compose(state_for("hope"), ComposeOptions(bars=8, seed=3))
    song = read_midi_bytes(comp.song.to_bytes())
    rep = q.report(song, comp.explanation)
    assert 0.0 <= rep["clash_rate"] <= 1.0 and 0.0 <= rep["melody_on_top_rate"] <= 1.0
    assert rep["restated_bar_fraction"] is None  # under 16 bars
    assert rep["key"]["declared"] == comp.explanation.parameters.key
    assert rep["key"]["ok"] in (True, False)
    assert rep["levels"] is None and rep["bars"] >= 8


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="no fluidsynth program")
def test_rendered_levels_hear_a_loud_melody_over_a_soft_pad():
    if q._renderer() is None:
        pytest.skip("kelly.render.audio is missing")
    s = song_of([n(k * PPQ, 72 + k % 3, PPQ, 120) for k in range(8)], pad([n(0, 60, 8 * PPQ, 30)], program=0))
    s.tracks[0].program = 0
    lv = q.rendered_levels(s)
    if lv is None:
        pytest.skip("no soundfont")
    assert set(lv["levels_db"]) == {"Melody", "Pad"}
    assert lv["loudest_accompaniment"] == "Pad" and lv["melody_minus_loudest_db"] > 3.0


def test_a_weighted_frame_power_of_sines():
    import numpy as np

    sr = 22050
    t = np.arange(sr) / sr
    for freq, gain_db in ((1000, 0.0), (100, -19.1), (4000, 1.0)):
        x = 0.5 * np.sin(2 * np.pi * freq * t)
        power = q._frame_powers(np.stack([x, x], axis=1), sr)
        assert 10 * np.log10(power[0]) == pytest.approx(10 * np.log10(0.125) + gain_db, abs=0.1)
