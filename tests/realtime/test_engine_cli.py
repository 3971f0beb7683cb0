"""``kelly engine`` from the command line: a WAV to a MIDI file, its report, bad input, the fallback port, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from kelly.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    """Two seconds of soft low tones, then two of loud noise bursts, at 48 kHz."""
    sr = 48000
    rng = np.random.default_rng(3)
    t = np.arange(2 * sr) / sr
    calm = 0.05 * np.sin(2 * np.pi * 110 * t)
    env = (np.arange(2 * sr) % (sr // 8) < sr // 40).astype(float)
    loud = np.clip(rng.standard_normal(2 * sr) * 0.5 * (0.3 + env), -1, 1)
    path = tmp_path_factory.mktemp("cli") / "in.wav"
    sf.write(path, np.concatenate([calm, loud]).astype(np.float32), sr)
    return path


def paired(path: Path) -> int:
    """Note-ons in a MIDI file, asserting each is ended by exactly one note-off."""
    sounding: dict[tuple[int, int], bool] = defaultdict(bool)
    ons = 0
    for track in mido.MidiFile(path).tracks:
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0:
                assert not sounding[(msg.channel, msg.note)]
                sounding[(msg.channel, msg.note)] = True
                ons += 1
            elif msg.type in ("note_on", "note_off"):
                assert sounding[(msg.channel, msg.note)]
                sounding[(msg.channel, msg.note)] = False
    assert not any(sounding.values())
    return ons


def engine(*args: str) -> int:
    return main(["engine", *map(str, args)])


def test_a_wav_to_a_midi_file_with_a_report(wav, tmp_path, capsys):
    out, report = tmp_path / "out.mid", tmp_path / "r.json"
    assert engine("--audio-in", wav, "--midi-out", out, "--fast", "--no-socket", "--report", report,
                  "--phrase-bars", "2") == 0
    printed = capsys.readouterr()
    assert "audio path:" in printed.out and "latency added" in printed.out
    assert paired(out) > 0
    r = json.loads(report.read_text())
    bt = r["block_times"]
    assert bt["blocks"] == 4 * 48000 // 512 and bt["budget_ms"] == pytest.approx(512 / 48)
    assert 0 < bt["median_ms"] <= bt["p99_ms"] <= bt["max_ms"]
    assert r["clock"] == "audio" and r["seconds"] == pytest.approx(4.0, abs=0.02)
    assert r["frames"] > 150 and r["dropped_frames"] == 0 and r["bad_blocks"] == 0
    assert r["phrases"][0] == {"bar": 0, "time_s": 0.0, "emotion": "calm", "why": "start"}
    assert r["note_ons"] == paired(out)
    assert r["latency_samples"] > 0 and r["emotion_trace"]
    assert r["midi_out"].endswith("out.mid")


def test_twice_the_same_command_gives_the_same_midi(wav, tmp_path, capsys):
    for name in ("a.mid", "b.mid"):
        assert engine("--audio-in", wav, "--midi-out", tmp_path / name, "--fast", "--no-socket", "--seed", "5",
                      "--json") == 0
        assert json.loads(capsys.readouterr().out)["bars"] > 0
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()


def test_fast_on_the_internal_clock_stops_after_the_bars_asked(tmp_path, capsys):
    out = tmp_path / "bars.mid"
    assert engine("--fast", "--bars", "3", "--midi-out", out, "--no-socket", "--emotion", "happiness", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bars"] == 3 and r["clock"] == "internal"
    song = mido.MidiFile(out)
    assert paired(out) > 0
    # the file ends on the bar line after bar 3 (the run stops there)
    assert r["phrases"][0]["emotion"] == "happiness"
    assert song.length == pytest.approx(r["seconds"], abs=0.01)


def _bad(tmp_path: Path, wav: Path) -> dict[str, tuple[list, str]]:
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    csv = tmp_path / "bad.csv"
    csv.write_text("time,heart_rate\n0,72\n1,abc\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = str(tmp_path / "o.mid")
    return {
        "missing wav": (["--audio-in", tmp_path / "nope.wav", "--midi-out", out, "--fast", "--no-socket"], "nope.wav"),
        "text as wav": (["--audio-in", text, "--midi-out", out, "--fast", "--no-socket"], "notes.wav"),
        "block 0": (["--audio-in", wav, "--block", "0", "--midi-out", out, "--fast", "--no-socket"], "block"),
        "block 0 no audio": (["--block", "0", "--seconds", "1", "--midi-out", out, "--fast", "--no-socket"],
                             "--block"),
        "sr 1": (["--sr", "1", "--seconds", "1", "--midi-out", out, "--fast", "--no-socket"], "--sr"),
        "fast forever": (["--fast", "--midi-out", out, "--no-socket"], "--fast"),
        "bad csv": (["--biometrics", csv, "--seconds", "1", "--fast", "--midi-out", out, "--no-socket"],
                    "bad.csv line 3"),
        "missing csv": (["--biometrics", tmp_path / "gone.csv", "--seconds", "1", "--fast", "--midi-out", out,
                         "--no-socket"], "gone.csv"),
        "remote osc": (["--biometrics", "osc://8.8.8.8:9000", "--seconds", "1", "--fast", "--midi-out", out,
                        "--no-socket"], "8.8.8.8"),
        "midi under a file": (["--seconds", "1", "--fast", "--midi-out", blocker / "o.mid", "--no-socket"],
                              "a-file"),
        # in real time for 20 s: only a refusal before the run returns at once
        "midi in an impossible folder": (["--seconds", "20", "--midi-out", "/proc/kelly-nope/o.mid",
                                          "--no-socket"], "/proc/kelly-nope"),
        "seconds 0": (["--seconds", "0", "--fast", "--midi-out", out, "--no-socket"], "--seconds"),
        "bars 0": (["--bars", "0", "--fast", "--midi-out", out, "--no-socket"], "--bars"),
        "phrase bars 0": (["--seconds", "1", "--fast", "--phrase-bars", "0", "--midi-out", out, "--no-socket"],
                          "phrase"),
        "complexity": (["--seconds", "1", "--fast", "--complexity", "3", "--midi-out", out, "--no-socket"],
                       "--complexity"),
        "unknown emotion": (["--seconds", "1", "--fast", "--emotion", "zzzq", "--midi-out", out, "--no-socket"],
                            "zzzq"),
        "midi port": (["--seconds", "1", "--fast", "--midi-out", "no-such-port-xyz", "--no-socket"], "MIDI"),
    }


CASES = ["missing wav", "text as wav", "block 0", "block 0 no audio", "sr 1", "fast forever", "bad csv",
         "missing csv", "remote osc", "midi under a file", "midi in an impossible folder", "seconds 0", "bars 0",
         "phrase bars 0", "complexity", "unknown emotion", "midi port"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(case, wav, tmp_path, capsys):
    args, words = _bad(tmp_path, wav)[case]
    t0 = time.monotonic()
    assert engine(*args) == 2
    assert time.monotonic() - t0 < 5.0
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1, printed.err
    assert lines[0].startswith("kelly: error:") and words in lines[0], lines[0]
    assert "Traceback" not in printed.err and "ran " not in printed.out  # refused before running
    assert not (tmp_path / "o.mid").exists()


def test_a_missing_output_folder_is_made_as_for_every_kelly_output(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "o.mid"
    assert engine("--seconds", "1", "--fast", "--midi-out", out, "--no-socket") == 0
    assert out.exists()


def test_without_midi_out_and_no_midi_system_it_writes_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert engine("--seconds", "2", "--fast", "--no-socket") == 0
    err = capsys.readouterr().err
    if "no virtual MIDI port" not in err:
        pytest.skip("this machine has a MIDI system: the engine opened a virtual port")
    assert "kelly-out/engine/live.mid" in err and "--midi-out" in err
    assert paired(tmp_path / "kelly-out" / "engine" / "live.mid") > 0


def test_the_signal_handlers_are_put_back_after_a_run(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert engine("--seconds", "1", "--fast", "--midi-out", tmp_path / "h.mid", "--no-socket") == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_ctrl_c_ends_a_live_run_cleanly(tmp_path):
    out = tmp_path / "f.mid"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kelly", "engine", "--seconds", "30", "--midi-out", str(out),
                             "--no-socket", "--text", "I am happy"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()          # printed once the engine is built, just before it runs
        assert line.startswith("text read as"), line
        time.sleep(0.3)                        # the handlers are in place right after that line
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out_text, err_text = proc.communicate(timeout=10)
        assert time.monotonic() - t0 < 8.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err_text
    assert "Traceback" not in err_text
    assert out_text.startswith("ran ")
    assert paired(out) > 0
