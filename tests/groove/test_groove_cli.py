"""``kelly groove ...`` end to end through ``kelly.cli.main``."""

from __future__ import annotations

import json

import pytest

from kelly.song import read_midi

from _groove_helpers import kit_song, straight_song


@pytest.fixture
def midi(tmp_path):
    path = tmp_path / "in.mid"
    straight_song(step=120).save(path)
    return path


def test_apply_then_extract(cli, midi, tmp_path, capsys):
    out = tmp_path / "jazz.mid"
    assert cli(["groove", "apply", str(midi), "--template", "jazz", "--intensity", "1", "-o", str(out)]) == 0
    groove = tmp_path / "groove.json"
    assert cli(["groove", "extract", str(out), "-o", str(groove)]) == 0
    data = json.loads(groove.read_text())
    assert data["swing_factor"] == pytest.approx(0.67, abs=0.05)
    assert len(data["timing_deviations"]) == 16 and len(data["velocity_curve"]) == 16
    assert data["source_file"] == str(out)
    # a groove.json is a template too
    again = tmp_path / "again.mid"
    assert cli(["groove", "apply", str(midi), "--template", str(groove), "-o", str(again)]) == 0
    assert read_midi(again).note_count() == read_midi(midi).note_count()
    assert cli(["groove", "apply", str(midi), "--template", "lofi", "-i", "0.3", "-o", str(again), "--force"]) == 0
    capsys.readouterr()
    assert cli(["groove", "extract", str(out)]) == 0  # no -o: JSON on stdout
    assert json.loads(capsys.readouterr().out)["name"] == "jazz"


def test_humanize_is_seeded(cli, tmp_path):
    src = tmp_path / "kit.mid"
    kit_song(bars=8).save(src)
    a, b, c = tmp_path / "a.mid", tmp_path / "b.mid", tmp_path / "c.mid"
    for path, seed in ((a, "9"), (b, "9"), (c, "10")):
        assert cli(["groove", "humanize", str(src), "--preset", "lofi_depression", "--seed", seed, "-o", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert cli(["groove", "humanize", str(src), "--style", "tight", "--complexity", "0.2", "--vulnerability", "0.9",
                "--no-ghost-notes", "--drums-only", "--seed", "1", "-o", str(a), "--force"]) == 0


def test_listings(cli, capsys):
    assert cli(["groove", "templates"]) == 0
    assert "bedroom_lofi" in capsys.readouterr().out
    assert cli(["groove", "templates", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 8
    assert cli(["groove", "presets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["presets"]) == 10 and set(data["styles"]) == {"tight", "natural", "loose", "drunk"}
    assert cli(["groove", "presets"]) == 0
    assert "funk_pocket" in capsys.readouterr().out


def _bad_files(tmp_path):
    text = tmp_path / "notes.mid"
    text.write_text("these are my feelings, not a MIDI file\n")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\xff\x00\x90")
    noise = tmp_path / "noise.mid"
    noise.write_bytes(bytes(range(256)) * 3)
    return [tmp_path / "missing.mid", text, corrupt, noise]


@pytest.mark.parametrize("action", [["extract"], ["apply", "--template", "rock"], ["humanize", "--seed", "1"]])
def test_unreadable_midi_is_one_line_exit_2(cli, tmp_path, capsys, action):
    for bad in _bad_files(tmp_path):
        argv = ["groove", action[0], str(bad), *action[1:]]
        if action[0] != "extract":
            argv += ["-o", str(tmp_path / "out.mid")]
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("kelly: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.parametrize("argv, needle", [
    (["apply", "{midi}", "--template", "polka", "-o", "{out}"], "funk"),
    (["apply", "{midi}", "--template", "{tmp}/missing.json", "-o", "{out}"], "missing.json"),
    (["apply", "{midi}", "--template", "jazz", "--intensity", "1.5", "-o", "{out}"], "intensity"),
    (["humanize", "{midi}", "--preset", "polka", "-o", "{out}"], "lofi_depression"),
    (["humanize", "{midi}", "--style", "wobbly", "-o", "{out}"], "drunk"),
    (["humanize", "{midi}", "--complexity", "7", "-o", "{out}"], "complexity"),
])
def test_bad_names_are_one_line_exit_2(cli, midi, tmp_path, capsys, argv, needle):
    fill = {"midi": str(midi), "out": str(tmp_path / "out.mid"), "tmp": str(tmp_path)}
    assert cli(["groove", *[a.format(**fill) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kelly: error:") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "out.mid").exists()
