"""Emotional journeys (the iso principle): the MIDI itself moves from the first emotion to the last.

Measured from the written file, not from the explanation: tempo from the MIDI tempo map
(read with mido), mode from the notes of the first and last sections (how often the
minor third above the shared tonic sounds against the major third), sections from the
explanation and the MIDI markers.
"""

from __future__ import annotations

import json

import mido
import pytest

from kelly.cli import main
from kelly.song import read_midi
from kelly.theory.scales import parse_key


def _compose(tmp_path, *args):
    out = tmp_path / "journey.mid"
    assert main(["compose", *args, "--seed", "1", "-o", str(out)]) == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def _tempos(path):
    mid = mido.MidiFile(str(path))
    return [mido.tempo2bpm(m.tempo) for m in mid.tracks[0] if m.type == "set_tempo"]


def _thirds(song, tonic_pc: int, lo: int, hi: int) -> tuple[int, int]:
    """(minor-third count, major-third count) above the tonic among pitched notes starting in [lo, hi)."""
    pcs = [n.pitch % 12 for t in song.tracks if not t.is_drum for n in t.notes if lo <= n.start < hi]
    return pcs.count((tonic_pc + 3) % 12), pcs.count((tonic_pc + 4) % 12)


def test_grief_to_hope_starts_minor_and_slow_and_ends_major_and_faster(tmp_path, capsys):
    out, ex = _compose(tmp_path, "I feel grief", "--to", "hope", "--bars", "16")
    capsys.readouterr()
    assert ex["journey"] == ["grief", "hope"]
    sections = ex["arrangement"]["sections"]
    assert [s["emotion"] for s in sections] == ["grief", "hope"]
    for s in sections:  # the path is explained section by section
        assert {"tempo_bpm", "key", "mode", "base_velocity", "density", "register_octave", "chords"} <= set(s)
        assert len(s["chords"]) == s["bars"]  # one chord a bar, referred to by index into progression.chords

    tempos = _tempos(out)
    assert tempos[-1] >= tempos[0] + 15  # faster at the end, read from the MIDI tempo map
    assert tempos == sorted(tempos)  # the ramp at the seam only rises

    song = read_midi(out)
    tonic = parse_key(sections[0]["key"]).tonic_pc
    assert parse_key(sections[-1]["key"]).tonic_pc == tonic  # one shared tonic
    bar = 1920
    first = sections[0]
    last = sections[-1]
    minor3, major3 = _thirds(song, tonic, 0, first["bars"] * bar)
    assert minor3 > 2 * major3, (minor3, major3)
    minor3, major3 = _thirds(song, tonic, (last["start_bar"] - 1) * bar, 16 * bar)
    assert major3 > 2 * minor3, (minor3, major3)
    assert ex["progression"]["chords"][-1]["numeral"] == "I"  # it arrives home in the new mode
    assert ex["ending"]["home"] and ex["ending"]["cadence"] == "authentic"


def test_journey_through_three_emotions_in_order(tmp_path, capsys):
    out, ex = _compose(tmp_path, "--journey", "grief,acceptance,hope", "--bars", "12")
    capsys.readouterr()
    assert [s["emotion"] for s in ex["arrangement"]["sections"]] == ["grief", "acceptance", "hope"]
    assert [s["start_bar"] for s in ex["arrangement"]["sections"]] == [1, 5, 9]
    song = read_midi(out)
    assert [text for _, text in song.markers] == ["grief", "acceptance", "hope"]
    assert [t for t, _ in song.markers] == [0, 4 * 1920, 8 * 1920]
    modes = [s["mode"] for s in ex["arrangement"]["sections"]]
    assert modes[0] == "minor" and modes[-1] == "major"


@pytest.mark.parametrize("args", [["I feel grief", "--to", "blorf"], ["--journey", "grief,blorf,hope"],
                                  ["--journey", "grief"]])
def test_unknown_or_short_journey_is_one_line_and_exit_2(tmp_path, capsys, args):
    assert main(["compose", *args, "-o", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kelly: error:") and "Traceback" not in err
    assert not (tmp_path / "x.mid").exists()
