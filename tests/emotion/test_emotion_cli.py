"""``kelly emotions`` and ``kelly feel`` through :func:`kelly.cli.main`."""

import io
import json

import pytest

from kelly import cli

KEYS = ["text", "emotion", "family", "valence", "arousal", "dominance", "intensity", "confidence",
        "secondary", "evidence"]


def test_feel_json_lines(capsys):
    assert cli.main(["feel", "--json", "I feel grief", "I'm not happy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert list(row) == KEYS
        for item in row["secondary"]:
            assert set(item) == {"emotion", "weight"}
        for ev in row["evidence"]:
            assert set(ev) == {"words", "emotion", "kind", "weight"}
    assert rows[0]["text"] == "I feel grief" and rows[0]["emotion"] == "grief"
    assert rows[1]["emotion"] != "happiness"


def test_feel_without_json_flag_is_also_json_lines(capsys):
    assert cli.main(["feel", "so happy"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == KEYS


def test_feel_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("I feel grief\n\n   \nI am so angry\n"))
    assert cli.main(["feel", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["I feel grief", "I am so angry"]
    assert rows[1]["family"] == "anger"


@pytest.mark.parametrize("argv, stdin", [(["feel", "   "], ""), (["feel"], "\n  \n"), (["feel", "--json"], "")])
def test_feel_empty_is_one_line_exit_2(monkeypatch, capsys, argv, stdin):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("kelly: error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_emotions_json(capsys):
    assert cli.main(["emotions", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) >= 72
    grief = next(d for d in data if d["name"] == "grief")
    assert grief["dominance"] == 0.25 and grief["family"] == "sadness"
    assert {"name", "family", "valence", "arousal", "dominance", "description", "related", "tiers",
            "source"} <= set(grief)


def test_emotions_table_and_family(capsys):
    assert cli.main(["emotions", "--family", "Fear"]) == 0
    out = capsys.readouterr().out
    assert "Terror" in out and "Grief" not in out
    assert cli.main(["emotions", "--family", "zest"]) == 2
    assert "unknown family" in capsys.readouterr().err
