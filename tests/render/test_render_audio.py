"""MIDI → WAV through FluidSynth: audible, the right length and rate, soloed tracks sound, clear errors.

The tests that make sound are skipped (with the reason) where there is no ``fluidsynth``
program or no soundfont (``scripts/install-synth.sh`` installs both); the error tests run
everywhere.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from _render_helpers import one_line_error

import kelly.render.audio as audio
from kelly.errors import FileFormatError, InputError, KellyError
from kelly.render import find_soundfont, find_synth, render_midi_file, render_song
from kelly.render.audio import SoundfontError, SynthNotFound, song_seconds, wav_stats
from kelly.song import Note, Song, Track

#: FluidSynth's release tail after the last note (reverb, long releases): measured 2-5 s.
MAX_TAIL_SECONDS = 8.0


@pytest.fixture(scope="module")
def soundfont():
    """A real soundfont (the small TimGM6mb when there is one, for speed), or skip without FluidSynth."""
    try:
        find_synth()
        found = find_soundfont()
    except KellyError as exc:
        pytest.skip(f"audio rendering unavailable here: {exc}")
    for small in ("/usr/share/sounds/sf2/TimGM6mb.sf2", audio._pretty_midi_soundfont()):
        if small is not None and os.path.isfile(small):
            return audio.check_soundfont(small)
    return found


# ----------------------------------------------------------------------------- audio
def test_render_song_is_audible_stereo_and_as_long_as_the_music(composition, soundfont):
    song = composition.song
    out = render_song(song, soundfont=soundfont, sample_rate=22050)
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == 2
    seconds = out.shape[0] / 22050
    music = song_seconds(song)
    assert music <= seconds <= music + MAX_TAIL_SECONDS, (seconds, music)
    peak = float(np.max(np.abs(out)))
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert 0.05 < peak < 1.0  # audible, never clipping
    assert 10 ** (-45 / 20) < rms < 10 ** (-8 / 20), rms  # between -45 and -8 dBFS
    assert np.all(np.abs(out) <= 1.0)


def test_render_midi_file_writes_a_wav_atomically(tmp_path, midi_file, composition, soundfont):
    wav = tmp_path / "out" / "song.wav"
    assert render_midi_file(midi_file, wav, soundfont=soundfont, sample_rate=32000) == wav
    info = wav_stats(wav)
    assert info["sample_rate"] == 32000 and info["channels"] == 2
    music = song_seconds(composition.song)
    assert music <= info["seconds"] <= music + MAX_TAIL_SECONDS
    assert 0.05 < info["peak"] < 1.0
    assert sorted(p.name for p in wav.parent.iterdir()) == ["song.wav"]  # no temporary file left
    assert oct(wav.stat().st_mode & 0o777) != oct(0o600)  # a new file gets 0o644 less the umask, not mkstemp's


def test_every_soloed_track_sounds(composition, soundfont):
    song = composition.song
    for track in song.tracks:
        if not track.notes:
            continue
        first = track.notes[:4]  # its first few notes, from the start: short renders
        solo = replace(song, tracks=[track.with_notes([n.moved(start=n.start - first[0].start) for n in first])])
        out = render_song(solo, soundfont=soundfont, sample_rate=8000)
        assert float(np.max(np.abs(out))) > 0.01, track.name


def test_render_refuses_an_existing_wav_until_forced(tmp_path, midi_file, soundfont):
    wav = tmp_path / "song.wav"
    wav.write_bytes(b"mine")
    with pytest.raises(KellyError, match="already exists; use --force"):
        render_midi_file(midi_file, wav, soundfont=soundfont)
    assert wav.read_bytes() == b"mine"
    render_midi_file(midi_file, wav, soundfont=soundfont, sample_rate=16000, force=True)
    assert wav_stats(wav)["sample_rate"] == 16000


def test_cli_render_writes_wav(tmp_path, midi_file, soundfont, cli):
    wav = tmp_path / "x.wav"
    code, out, err = cli("render", midi_file, "--out", wav, "--soundfont", soundfont, "--sample-rate", 22050)
    assert code == 0, err
    assert out.startswith(f"Wrote:   {wav} (") and "22,050 Hz" in out
    assert wav_stats(wav)["frames"] > 0


def test_cli_render_default_name_is_beside_the_midi(midi_file, soundfont, cli):
    code, out, err = cli("render", midi_file, "--soundfont", soundfont, "--sample-rate", 16000)
    assert code == 0, err
    assert midi_file.with_suffix(".wav").is_file()


def test_compose_wav(tmp_path, soundfont, cli):
    mid = tmp_path / "c.mid"
    code, out, err = cli("compose", "calm", "--bars", 2, "-o", mid, "--wav", "--soundfont", soundfont)
    assert code == 0, err
    assert f"Wrote:   {tmp_path / 'c.wav'} (" in out
    assert wav_stats(tmp_path / "c.wav")["peak"] > 0.01


# ----------------------------------------------------------------------------- FluidSynth failing (a stand-in)
def test_fluidsynth_failures_are_one_line_and_leave_nothing(tmp_path, midi_file, fake_soundfont, fake_synth,
                                                            monkeypatch):
    wav = tmp_path / "out.wav"
    cases = {"fail-load": "could not load the soundfont .*fake.sf2: fluidsynth: error: Failed to load SoundFont",
             "exit1": r"FluidSynth failed \(exit 1\): fluidsynth: error: something went wrong",
             "silent": "rendered .*song.mid as silence",
             "nothing": "FluidSynth wrote no audio for .*song.mid",
             "wrong-rate": "at 11025 Hz instead of 22050 Hz"}
    for mode, message in cases.items():
        fake_synth(mode)
        with pytest.raises(audio.RenderError, match=message) as info:
            render_midi_file(midi_file, wav, soundfont=fake_soundfont, sample_rate=22050)
        assert "\n" not in str(info.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["fake.sf2", "fluidsynth", "song.mid"]), mode
    fake_synth("sleep")
    monkeypatch.setattr(audio, "RENDER_TIMEOUT_BASE", 0.5)
    monkeypatch.setattr(audio, "RENDER_TIMEOUT_PER_SECOND", 0.0)
    with pytest.raises(audio.RenderError, match="FluidSynth took longer than 0 s"):
        render_midi_file(midi_file, wav, soundfont=fake_soundfont)
    assert not wav.exists()


def test_a_loud_render_is_turned_down_not_clipped(tmp_path, midi_file, fake_soundfont, fake_synth):
    fake_synth("loud")  # peaks at 4.0 (+12 dBFS) in FluidSynth's float output
    wav = render_midi_file(midi_file, tmp_path / "loud.wav", soundfont=fake_soundfont)
    info = wav_stats(wav)
    assert info["peak"] == pytest.approx(audio.PEAK_CEILING, abs=1e-3)
    fake_synth("tone")
    quiet = wav_stats(render_midi_file(midi_file, tmp_path / "quiet.wav", soundfont=fake_soundfont))
    assert quiet["peak"] == pytest.approx(0.3, abs=1e-3)  # a render under the ceiling is left as it is
    code = oct((tmp_path / "quiet.wav").stat().st_mode & 0o777)
    assert code != oct(0o600)  # a new file gets 0o644 less the umask, not mkstemp's 0o600


def test_render_song_keeps_a_fixed_gain_unless_asked(composition, fake_soundfont, fake_synth):
    fake_synth("loud")
    fixed = render_song(composition.song, soundfont=fake_soundfont, sample_rate=8000)
    assert fixed.dtype == np.float32 and float(np.max(np.abs(fixed))) == 1.0  # clipped, level unchanged
    fitted = render_song(composition.song, soundfont=fake_soundfont, sample_rate=8000, avoid_clipping=True)
    assert float(np.max(np.abs(fitted))) == pytest.approx(audio.PEAK_CEILING, abs=1e-4)
    fake_synth("tone")
    quiet = render_song(composition.song, soundfont=fake_soundfont, sample_rate=8000, avoid_clipping=True)
    assert float(np.max(np.abs(quiet))) == pytest.approx(0.3, abs=1e-4)  # never boosted


# ----------------------------------------------------------------------------- errors (no synth needed)
def test_missing_soundfont(midi_file, tmp_path, cli):
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "a.wav", "--soundfont", tmp_path / "nope.sf2")
    line = one_line_error(code, err)
    assert "nope.sf2: no such file" in line and "General MIDI .sf2" in line
    assert not (tmp_path / "a.wav").exists()


def test_soundfont_that_is_not_a_soundfont(midi_file, tmp_path, cli):
    text = tmp_path / "notes.sf2"
    text.write_text("these are not samples\n")
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "a.wav", "--soundfont", text)
    assert "notes.sf2: not a soundfont" in one_line_error(code, err)
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "a.wav", "--soundfont", midi_file)
    assert "not a soundfont" in one_line_error(code, err)  # a MIDI file is not a soundfont either
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "a.wav", "--soundfont", tmp_path)
    assert "is a folder" in one_line_error(code, err)


def test_truncated_soundfont(midi_file, tmp_path):
    sf = tmp_path / "cut.sf2"
    sf.write_bytes(b"RIFF" + (10_000).to_bytes(4, "little") + b"sfbk" + bytes(100))
    with pytest.raises(SoundfontError, match="truncated soundfont"):
        audio.check_soundfont(sf)


def test_no_soundfont_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("KELLY_SOUNDFONT", raising=False)
    monkeypatch.setattr(audio, "soundfont_candidates", lambda: [tmp_path / "none.sf2"])
    with pytest.raises(SoundfontError, match="no General MIDI soundfont found: install Debian's timgm6mb"):
        find_soundfont()


def test_soundfont_from_the_environment(monkeypatch, fake_soundfont, tmp_path):
    monkeypatch.setenv("KELLY_SOUNDFONT", str(fake_soundfont))
    assert find_soundfont() == fake_soundfont
    with pytest.raises(SoundfontError, match="x.sf2: no such file"):
        find_soundfont(tmp_path / "x.sf2")  # an explicit soundfont wins over the environment, even a bad one
    monkeypatch.setenv("KELLY_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(SoundfontError, match=r"\$KELLY_SOUNDFONT .*gone.sf2: no such file"):
        find_soundfont()


def test_no_fluidsynth(monkeypatch, midi_file, fake_soundfont, tmp_path, cli):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    monkeypatch.setattr(audio, "SYNTH_FALLBACKS", ())
    monkeypatch.setattr(audio, "_pyfluidsynth_available", lambda: False)
    with pytest.raises(SynthNotFound) as info:
        find_synth()
    assert str(info.value) == ("no FluidSynth found: install Debian's fluidsynth (apt-get install fluidsynth "
                               "timgm6mb-soundfont) or run make setup")
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "a.wav", "--soundfont", fake_soundfont)
    assert one_line_error(code, err) == f"kelly: error: {info.value}"
    assert not (tmp_path / "a.wav").exists()


def test_corrupt_midi(tmp_path, fake_soundfont, cli):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x00\x90")
    code, _out, err = cli("render", bad, "--out", tmp_path / "a.wav", "--soundfont", fake_soundfont)
    line = one_line_error(code, err)
    assert line.startswith(f"kelly: error: {bad}: truncated MIDI")
    with pytest.raises(FileFormatError, match="not a MIDI file"):
        render_midi_file(fake_soundfont, tmp_path / "b.wav", soundfont=fake_soundfont)
    code, _out, err = cli("render", tmp_path / "missing.mid", "--out", tmp_path / "a.wav")
    assert "missing.mid: no such file" in one_line_error(code, err)
    assert not (tmp_path / "a.wav").exists()


def test_existing_output_is_refused_before_anything(midi_file, tmp_path, cli):
    wav = tmp_path / "keep.wav"
    wav.write_bytes(b"my take")
    code, out, err = cli("render", midi_file, "--out", wav)
    assert one_line_error(code, err) == f"kelly: error: {wav} already exists; use --force to replace it"
    assert wav.read_bytes() == b"my take" and out == ""
    code, _out, err = cli("render", midi_file, "--out", midi_file.with_suffix(".mp3"))
    assert "--out takes a .wav file name" in one_line_error(code, err)
    code, _out, err = cli("render", midi_file, "--out", tmp_path / "x.wav", "--sample-rate", 100)
    assert "--sample-rate must be a whole number of Hz from 8,000 to 96,000" in one_line_error(code, err)


def test_compose_wav_over_an_existing_file_fails_before_composing(tmp_path, monkeypatch, cli):
    from kelly import generator

    def boom(*a, **k):
        raise AssertionError("composed although the output was refused")

    monkeypatch.setattr(generator, "compose", boom)
    (tmp_path / "s.wav").write_bytes(b"mine")
    code, _out, err = cli("compose", "grief", "--bars", 2, "-o", tmp_path / "s.mid", "--wav")
    assert one_line_error(code, err) == f"kelly: error: {tmp_path / 's.wav'} already exists; use --force to replace it"
    code, _out, err = cli("compose", "--wav", "I feel grief")
    assert "--wav takes a .wav file name, got 'I feel grief'" in one_line_error(code, err)
    assert not (tmp_path / "s.mid").exists()


def test_sample_rate_and_length_limits(fake_soundfont):
    with pytest.raises(InputError, match="--sample-rate"):
        render_song(Song(), soundfont=fake_soundfont, sample_rate=200_000)
    with pytest.raises(InputError, match="--sample-rate"):
        audio.check_sample_rate(True)
    assert audio.check_sample_rate(48000.0) == 48000
    with pytest.raises(InputError, match="no notes to render"):
        render_song(Song(), soundfont=fake_soundfont)
    # a note ending after 2,000 bars at 120 BPM: 4,000 s, more than an hour
    long = Song(tracks=[Track("Lead", notes=[Note(2000 * 1920, 60, 480, 90)])])
    assert song_seconds(long) > 3600
    with pytest.raises(InputError, match=r"lasts 1:06:4\d; Kelly renders at most 1:00:00"):
        render_song(long, soundfont=fake_soundfont)


def test_song_seconds_follows_the_tempo_map():
    song = Song(tracks=[Track("x", notes=[Note(0, 60, 4 * 480, 90)])], tempos=[(0, 120.0), (960, 60.0)])
    assert song_seconds(song) == pytest.approx(1.0 + 2.0)
    assert song_seconds(song, 960) == pytest.approx(1.0)
