"""``kelly ddsp …``, ``kelly render --voice ddsp`` and ``kelly compose --voice`` through ``kelly.cli.main``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("librosa")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("kelly: error: ")
    return err[0]


def _midi(path):
    from kelly.song import Note, Role, Song, Track

    song = Song(tracks=[Track(name="melody", program=73, channel=0, role=Role.MELODY,
                              notes=[Note(0, 72, 240, 100), Note(240, 76, 480, 90)]),
                        Track(name="bass", program=32, channel=1, role=Role.BASS,
                              notes=[Note(0, 48, 720, 90)])],
                tempos=[(0, 120.0)], title="cli test")
    song.save(path)
    return path


def test_validate_passes(cli, capsys, trained_voice):
    assert cli(["ddsp", "validate", str(trained_voice.folder)]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out
    assert "FAIL" not in out and "ok   torch vs numpy" in out


def test_validate_reports_a_failed_check(cli, capsys, voice_copy):
    (voice_copy / "ddsp.onnx").write_bytes(b"not an onnx model")
    assert cli(["ddsp", "validate", str(voice_copy)]) != 0
    out = capsys.readouterr().out
    assert "FAIL onnx" in out and "all checks passed" not in out


def test_validate_a_missing_folder(cli, capsys, tmp_path):
    assert cli(["ddsp", "validate", str(tmp_path / "nope")]) == 2
    assert "no such DDSP voice folder" in _error_line(capsys)


def test_train_no_standard_needs_audio(cli, capsys, tmp_path):
    assert cli(["ddsp", "train", "--no-standard", "--config", "tiny", "--out", str(tmp_path / "o")]) == 2
    assert "--no-standard needs --audio" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra,needle", [
    (["--set", "bogus=1"], "unknown ddsp setting"),
    (["--set", "steps=0"], "steps"),
    (["--set", "noequals"], "KEY=VALUE"),
    (["--config", "huge"], "no section"),
])
def test_train_bad_settings(cli, capsys, tmp_path, note_dir, extra, needle):
    argv = ["ddsp", "train", "--no-standard", "--audio", str(note_dir), "--config", "tiny", "--out",
            str(tmp_path / "o"), *extra]
    assert cli(argv) == 2
    assert needle in _error_line(capsys)


def test_train_audio_folder_without_sound_files(cli, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli(["ddsp", "train", "--no-standard", "--audio", str(tmp_path / "empty"), "--config", "tiny",
                "--out", str(tmp_path / "o")]) == 2
    assert "no WAV, FLAC, OGG or AIFF files" in _error_line(capsys)


def test_train_end_to_end(cli, capsys, tmp_path, trained_voice):
    out = tmp_path / "cli-voice"
    out.mkdir()
    # the features of the same --audio folder, as the fixture computed them: the data cache is reused
    for name in ("data.npz", "data.json"):
        shutil.copy(trained_voice.folder / name, out / name)
    argv = ["ddsp", "train", "--audio", str(trained_voice.audio), "--no-standard", "--config", "tiny",
            "--set", "steps=4", "--set", "eval_every=2", "--set", "eval_windows=4", "--set", "threads=1",
            "--out", str(out)]
    assert cli(argv) == 0
    captured = capsys.readouterr()
    assert "best validation loss" in captured.out and f"--voice ddsp:{out}" in captured.out
    assert "step      4" in captured.err
    for name in ("checkpoint.pt", "ddsp.pt", "ddsp.json", "ddsp.meta.json", "ddsp.onnx", "metrics.json"):
        assert (out / name).is_file(), name
    assert cli(["ddsp", "validate", str(out)]) == 0


def test_export_writes_a_voice(cli, capsys, tmp_path, trained_voice):
    dest = tmp_path / "exported"
    assert cli(["ddsp", "export", "--model", str(trained_voice.folder), "--out", str(dest)]) == 0
    assert (dest / "ddsp.json").read_bytes() == (trained_voice.folder / "ddsp.json").read_bytes()
    capsys.readouterr()
    assert cli(["ddsp", "validate", str(dest)]) == 0
    assert "all checks passed" in capsys.readouterr().out
    assert cli(["ddsp", "export", "--model", str(trained_voice.folder), "--out", str(dest)]) == 2  # no --force
    _error_line(capsys)
    assert cli(["ddsp", "export", "--model", str(tmp_path), "--out", str(dest)]) == 2
    assert "no ddsp.pt" in _error_line(capsys)


def test_render_with_the_voice(cli, capsys, tmp_path, trained_voice):
    from kelly.render.audio import read_wav

    midi = _midi(tmp_path / "song.mid")
    wav = tmp_path / "song.wav"
    assert cli(["render", str(midi), "--voice", f"ddsp:{trained_voice.folder}", "--out", str(wav),
                "--sample-rate", "22050", "--emotion", "0.3,0.6,0.5", "--seed", "5"]) == 0
    assert "the DDSP voice" in capsys.readouterr().out
    audio, sr = read_wav(wav)
    assert sr == 22050 and audio.ndim == 2 and audio.shape[1] == 2
    assert len(audio) > 1.5 * sr
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3
    # the same seed again gives the same file; an existing file needs --force
    assert cli(["render", str(midi), "--voice", f"ddsp:{trained_voice.folder}", "--out", str(wav),
                "--sample-rate", "22050", "--emotion", "0.3,0.6,0.5", "--seed", "5"]) == 2
    _error_line(capsys)
    again = tmp_path / "again.wav"
    assert cli(["render", str(midi), "--voice", f"ddsp:{trained_voice.folder}", "--out", str(again),
                "--sample-rate", "22050", "--emotion", "0.3,0.6,0.5", "--seed", "5"]) == 0
    assert again.read_bytes() == wav.read_bytes()


@pytest.mark.parametrize("args,needle", [
    (["--voice", "bogus"], "--voice takes"),
    (["--voice", "ddsp:{voice}", "--emotion", "2,0,0"], "emotion"),
    (["--voice", "ddsp:{voice}", "--emotion", "0,0.5"], "--emotion takes"),
    (["--voice", "ddsp:{voice}", "--emotion", "a,b,c"], "--emotion takes"),
    (["--voice", "ddsp:{voice}", "--emotion", "nan,0.5,0.5"], "emotion"),
    (["--emotion", "0,0.5,0.5"], "add --voice ddsp"),
    (["--voice", "ddsp:/nonexistent/kelly-voice"], "no such DDSP voice folder"),
    (["--voice", "soundfont:a.sf2", "--soundfont", "b.sf2"], "give the soundfont once"),
])
def test_render_refusals(cli, capsys, tmp_path, trained_voice, args, needle):
    midi = _midi(tmp_path / "song.mid")
    wav = tmp_path / "out.wav"
    argv = ["render", str(midi), "--out", str(wav)] + [a.format(voice=trained_voice.folder) for a in args]
    assert cli(argv) == 2
    assert needle in _error_line(capsys)
    assert not wav.exists()


def test_compose_voice_needs_wav(cli, capsys, tmp_path):
    out = tmp_path / "calm.mid"
    assert cli(["compose", "calm", "--voice", "ddsp", "--out", str(out)]) == 2
    assert "add --wav" in _error_line(capsys)
    assert not out.exists()


def test_compose_with_a_missing_voice_fails_before_composing(cli, capsys, tmp_path):
    from kelly.render import audio

    if not audio.synth_available():
        pytest.skip("FluidSynth is not installed")
    try:
        audio.find_soundfont()
    except audio.SoundfontError:
        pytest.skip("no General MIDI soundfont")
    out = tmp_path / "calm.mid"
    assert cli(["compose", "calm", "--voice", f"ddsp:{tmp_path / 'missing'}", "--wav", "--out", str(out)]) == 2
    assert "no such DDSP voice folder" in _error_line(capsys)
    assert not out.exists()
