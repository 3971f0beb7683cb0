"""``kelly ctl`` against a server in front of the in-memory engine: outputs and exit codes."""

from __future__ import annotations

import json

import pytest

from kelly.cli import main


@pytest.fixture
def ctl(server, sock_path, capsys):
    """Run ``kelly ctl --socket PATH ARGS...``; returns (exit code, stdout, stderr)."""
    def run(*args: str, socket: str | None = None):
        code = main(["ctl", "--socket", str(socket or sock_path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_state_human_and_json(ctl, engine):
    engine.emotion = (-0.6, 0.3, 0.4)
    code, out, err = ctl("state")
    assert code == 0 and err == ""
    assert "bar 3, 96 bpm in 4/4" in out
    assert "calm: V -0.60  A 0.30  D 0.40" in out
    assert "models    live: emotionrecognizer" in out
    code, out, _ = ctl("--json", "state")
    assert code == 0 and json.loads(out)["emotion"]["valence"] == -0.6


def test_options_may_follow_the_action(ctl, sock_path, capsys):
    assert main(["ctl", "state", "--json", "--socket", str(sock_path)]) == 0
    assert json.loads(capsys.readouterr().out)["bar"] == 3


def test_emotion(ctl, engine):
    code, out, _ = ctl("emotion", "-0.5", "0.7")
    assert code == 0 and out == "emotion set: V -0.50  A 0.70  D 0.50\n"
    assert engine.emotion == (-0.5, 0.7, 0.5)
    code, out, _ = ctl("--json", "emotion", "0.1", "0.2", "0.9")
    assert code == 0 and json.loads(out)["type"] == "Ok" and engine.emotion == (0.1, 0.2, 0.9)


def test_emotion_out_of_range_is_refused_before_sending(ctl, engine):
    code, out, err = ctl("emotion", "3", "0.5")
    assert code == 2 and out == ""
    assert err == "kelly: error: SetEmotion.valence: must be <= 1 (got 3.0)\n"
    assert engine.seq == 0


def test_text(ctl, engine):
    code, out, _ = ctl("text", "I", "miss", "her")
    assert code == 0 and out == "read as grief\n" and engine.text == "I miss her"
    code, out, _ = ctl("text", "fine")
    assert code == 0 and out == "text sent\n"


def test_generate(ctl, short_tmp):
    code, out, _ = ctl("generate", "--bars", "4")
    assert code == 0 and out == f"wrote {short_tmp / 'live-4.mid'} (4 bars)\n"
    code, out, _ = ctl("--json", "generate")
    answer = json.loads(out)
    assert answer["type"] == "MIDIGenerated" and answer["bars"] == 8


def test_load_enable_disable(ctl, engine):
    code, out, _ = ctl("load", "harmonypredictor.npz")
    assert code == 0 and out == "loaded harmonypredictor\n"
    code, out, _ = ctl("disable", "groovepredictor")
    assert code == 0 and "groovepredictor disabled" in out and engine.enabled["groovepredictor"] is False
    code, out, _ = ctl("enable", "groovepredictor")
    assert code == 0 and out == "groovepredictor enabled\n" and engine.enabled["groovepredictor"] is True


def test_engine_errors_are_one_line_and_exit_2(ctl):
    code, out, err = ctl("load", "../secrets.npz")
    assert code == 2 and out == ""
    assert err == "kelly: error: model path ../secrets.npz is outside the models folder\n"
    code, _, err = ctl("enable", "nope")
    assert code == 2 and err.startswith("kelly: error: unknown network 'nope'")
    code, _, err = ctl("text", "boom")
    assert code == 2 and err == "kelly: error: internal error in SetText: RuntimeError: the text reader fell over\n"


def test_watch(ctl):
    code, out, _ = ctl("watch", "--count", "3", "--interval", "10")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and all(line.startswith("bar 3") for line in lines)
    code, out, _ = ctl("--json", "watch", "--count", "2", "--interval", "10")
    assert code == 0 and [json.loads(line)["tempo_bpm"] for line in out.splitlines()] == [96.0, 96.0]
    code, _, err = ctl("watch", "--interval", "1")
    assert code == 2 and err == "kelly: error: Subscribe.interval_ms: must be >= 10 (got 1)\n"


def test_shutdown(ctl, server, engine):
    code, out, _ = ctl("shutdown")
    assert code == 0 and out == "the engine is stopping\n"
    assert server.wait(3.0) and engine.shutdowns == 1


def test_no_engine_is_exit_2_with_the_message(short_tmp, capsys):
    path = short_tmp / "none.sock"
    assert main(["ctl", "--socket", str(path), "state"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"kelly: error: no kelly engine is listening at {path}; start one with `kelly engine`\n"


def test_a_timeout_must_be_positive(ctl):
    code, _, err = ctl("--timeout", "0", "state")
    assert code == 2 and err == "kelly: error: --timeout must be a number of seconds above 0 (got 0)\n"


def test_an_action_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        main(["ctl"])
    assert info.value.code == 2
    assert "required: ACTION" in capsys.readouterr().err
