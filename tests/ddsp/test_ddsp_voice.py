"""A trained voice rendering notes and songs (kelly.ddsp.voice)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("librosa")

from kelly.ddsp import voice as dv  # noqa: E402
from kelly.ddsp.core import FRAME_RATE, HOP, LOUDNESS_MIN_DB, SAMPLE_RATE  # noqa: E402
from kelly.errors import InputError, ModelError  # noqa: E402


@pytest.fixture(scope="module")
def voice(trained_voice):
    return dv.DdspVoice(trained_voice.folder)


def test_envelope_rises_holds_and_releases():
    env = dv.Envelope(attack=0.1, decay_db_per_s=5.0, release=0.2)
    n, held = 200, 80
    db = dv.envelope_db(n, held, -20.0, env)
    assert db.shape == (n,)
    assert db[0] == LOUDNESS_MIN_DB  # nothing before the note starts
    attack = db[:int(0.1 * FRAME_RATE) + 1]
    assert np.all(np.diff(attack) > 0)
    assert db[int(0.1 * FRAME_RATE)] == pytest.approx(-20.0, abs=1e-6)
    assert np.all(np.diff(db[10:held]) <= 0)  # decays while held
    assert db[held - 1] == pytest.approx(-20.0 - 5.0 * ((held - 1) / FRAME_RATE - 0.1), abs=1e-6)
    assert np.all(np.diff(db[held:]) <= 0)  # and falls after the key is released
    assert np.all(db >= LOUDNESS_MIN_DB)
    assert np.all(db[held + int(0.2 * FRAME_RATE) + 5:] == LOUDNESS_MIN_DB)  # 60 dB down, then the floor


def test_peak_loudness_follows_velocity_and_dominance(voice):
    soft, loud = voice.peak_db(60, 30), voice.peak_db(60, 120)
    assert soft != loud
    assert voice.peak_db(60, 90, 1.0) - voice.peak_db(60, 90, 0.0) == pytest.approx(2 * dv.DOMINANCE_DB)
    assert all(voice.peak_db(p, v) <= -1.0 for p in (30, 60, 90) for v in (1, 127))


NOTES = [(0.1, 0.6, 60, 100, "melody"), (0.3, 1.0, 67, 80, "pad"), (0.5, 0.8, 48, 110, "bass")]


def test_render_notes_is_deterministic_for_a_seed(voice):
    n = int(1.8 * SAMPLE_RATE)
    a = voice.render_notes(NOTES, n, seed=3)
    b = voice.render_notes(NOTES, n, seed=3)
    c = voice.render_notes(NOTES, n, seed=4)
    assert a.shape == (n, 2) and np.all(np.isfinite(a))
    assert a.tobytes() == b.tobytes()
    assert not np.allclose(a, c)


def test_a_note_starts_at_its_start(voice):
    start = 0.5
    n = int(1.5 * SAMPLE_RATE)
    out = voice.render_notes([(start, 0.9, 64, 100, "melody")], n, seed=0)
    a = int(start * SAMPLE_RATE)
    assert np.all(out[:a] == 0.0)
    assert np.abs(out[a:a + 30 * HOP]).max() > 1e-4
    assert np.allclose(out[:, 0], out[:, 1])  # centred


def test_pan_moves_a_note(voice):
    n = SAMPLE_RATE
    left = voice.render_notes([(0.0, 0.5, 60, 100, "melody")], n, pan=[-1.0])
    assert np.abs(left[:, 0]).max() > 1e-4 and np.abs(left[:, 1]).max() < 1e-6


def test_no_notes_is_silence(voice):
    assert not voice.render_notes([], 100).any()


def _song():
    from kelly.song import Note, Role, Song, Track

    melody = Track(name="melody", program=73, channel=0, role=Role.MELODY,
                   notes=[Note(0, 72, 240, 100), Note(240, 74, 240, 90), Note(480, 76, 480, 100)])
    chords = Track(name="piano", program=0, channel=1, role=Role.HARMONY,
                   notes=[Note(0, 60, 960, 70), Note(0, 64, 960, 70), Note(0, 67, 960, 70)])
    return Song(tracks=[melody, chords], tempos=[(0, 120.0)], title="ddsp test")  # 960 ticks = 1 s


def test_render_song(voice):
    from kelly.render.audio import song_seconds

    song = _song()
    out = dv.render_song(song, voice=voice, sample_rate=22050)
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == 2
    expected = (song_seconds(song) + 1.5) * 22050
    assert abs(len(out) - expected) <= 0.01 * expected
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() > 1e-3
    again = dv.render_song(song, voice=voice, sample_rate=22050)
    assert np.array_equal(out, again)


def test_render_song_follows_emotion_sections(voice):
    song = _song()
    sections = [(0.0, (-0.5, 0.2, 0.5)), (1.0, (0.5, 0.8, 0.5))]
    out = dv.render_song(song, voice=voice, sample_rate=16000, emotion=sections, reverb=0.0)
    assert np.all(np.isfinite(out)) and np.abs(out).max() > 1e-3
    neutral = dv.render_song(song, voice=voice, sample_rate=16000, reverb=0.0)
    assert out.shape == neutral.shape and not np.allclose(out, neutral)


def test_emotion_function_picks_the_section():
    at = dv._emotion_fn([(1.0, (0.5, 0.8, 0.5)), (0.0, (-0.5, 0.2, 0.5))])  # any order
    assert at(0.0) == (-0.5, 0.2, 0.5) and at(0.99) == (-0.5, 0.2, 0.5)
    assert at(1.0) == (0.5, 0.8, 0.5) and at(30.0) == (0.5, 0.8, 0.5)
    assert dv._emotion_fn((0.1, 0.2, 0.3))(5.0) == (0.1, 0.2, 0.3)
    assert dv._emotion_fn(None) is None


@pytest.mark.parametrize("bad", [(2, 0, 0), (0, -0.1, 0), (0, 0, 1.5), (float("nan"), 0.5, 0.5), (0, 0.5),
                                 "abc", None])
def test_check_emotion_rejects(bad):
    with pytest.raises(InputError):
        dv.check_emotion(bad)


def test_bad_emotions_are_refused_by_render_song(voice):
    with pytest.raises(InputError):
        dv.render_song(_song(), voice=voice, emotion=(2.0, 0.0, 0.0))
    with pytest.raises(InputError):
        dv.render_song(_song(), voice=voice, emotion=[(0.0, (0.0, float("nan"), 0.5))])
    with pytest.raises(InputError):
        dv.render_song(_song(), voice=voice, reverb=2.0)


def test_a_song_without_notes_is_an_input_error(voice):
    from kelly.song import Song, Track

    with pytest.raises(InputError, match="no notes"):
        dv.render_song(Song(tracks=[Track(name="melody")]), voice=voice)


def test_find_voice_order(monkeypatch, tmp_path, trained_voice):
    monkeypatch.setenv(dv.ENV_VOICE, str(trained_voice.folder))
    assert dv.find_voice(tmp_path) == tmp_path
    assert dv.find_voice() == trained_voice.folder
    monkeypatch.delenv(dv.ENV_VOICE)
    monkeypatch.setattr(dv, "SHIPPED_VOICE", tmp_path / "none")
    with pytest.raises(ModelError, match="no DDSP voice is installed"):
        dv.find_voice()


def test_a_missing_voice_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such DDSP voice folder"):
        dv.DdspVoice(tmp_path / "missing")


def test_drums_are_skipped_without_needing_the_voice():
    from kelly.song import Note, Song, Track

    song = Song(tracks=[Track(name="drums", channel=9, notes=[Note(0, 36, 120, 100)]),
                        Track(name="bass", channel=2, notes=[Note(480, 40, 480, 90)])])
    notes, pan, drums = dv.song_notes(song)
    assert drums == [0]
    assert notes == [(0.5, 1.0, 40, 90, "bass")] and pan == [0.0]


def test_render_song_with_drums_uses_the_soundfont(voice):
    from kelly.render import audio
    from kelly.song import Note, Track

    if not audio.synth_available():
        pytest.skip("FluidSynth is not installed")
    try:
        sf = audio.find_soundfont()
    except audio.SoundfontError:
        pytest.skip("no General MIDI soundfont")
    song = _song()
    song.tracks.append(Track(name="drums", channel=9, notes=[Note(0, 36, 120, 110), Note(480, 38, 120, 110)]))
    with_drums = dv.render_song(song, voice=voice, sample_rate=22050, soundfont=sf)
    without = dv.render_song(_song(), voice=voice, sample_rate=22050)
    assert with_drums.shape[1] == 2 and len(with_drums) >= len(without)
    assert np.all(np.isfinite(with_drums))
    assert not np.allclose(with_drums[:len(without)], without, atol=1e-4)
