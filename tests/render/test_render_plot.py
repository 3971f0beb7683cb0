"""Piano-roll PNGs: written atomically, the documented size, not blank; drums in their own lane."""

from __future__ import annotations

import numpy as np
import pytest
from _render_helpers import one_line_error, png_size

from kelly.errors import OutputError
from kelly.render.plot import DPI, chords_per_bar, figure_size, note_name, plot_song, render_png, song_bars
from kelly.song import DRUM_CHANNEL, Note, Song, Track


def _pixels(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))


def test_plot_is_a_png_of_the_documented_size_and_not_blank(tmp_path, composition):
    song = composition.song
    chords = chords_per_bar([c.symbol for c in composition.explanation.progression.chords], song.bar_ticks)
    out = plot_song(song, tmp_path / "roll.png", chords=chords, title="grief")
    width, height = figure_size(song_bars(song))
    assert png_size(out) == (round(width * DPI), round(height * DPI))
    img = _pixels(out)[..., :3]
    ink = np.any(img < 0.9, axis=-1).mean()
    assert 0.03 < ink < 0.8, ink  # drawn on, not a solid block
    colours = {tuple(c) for c in np.round(img.reshape(-1, 3) * 8).astype(int)}
    assert len(colours) > 10  # one colour per track, and more


def test_plot_refuses_an_existing_file_until_forced(tmp_path, composition):
    target = tmp_path / "roll.png"
    target.write_bytes(b"mine")
    with pytest.raises(OutputError, match="already exists; use --force"):
        plot_song(composition.song, target)
    assert target.read_bytes() == b"mine"
    plot_song(composition.song, target, force=True)
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_drums_only_pitched_only_and_empty_songs_plot():
    kit = Track("Drums", channel=DRUM_CHANNEL, notes=[Note(i * 240, p, 60, 100) for i, p in enumerate([36, 42, 38, 42])])
    lead = Track("Lead", program=73, notes=[Note(0, 72, 960, 90), Note(960, 74, 960, 70)])
    for tracks in ([kit], [lead], [lead, kit], []):
        data = render_png(Song(tracks=tracks, markers=[(0, "intro")]), chords=[(0, "Dm")])
        assert data[:4] == b"\x89PNG"


def test_long_songs_keep_a_bounded_width():
    lead = Track("Lead", notes=[Note(i * 1920, 60 + i % 12, 960, 90) for i in range(300)])
    song = Song(tracks=[lead])
    assert song_bars(song) == 300
    assert figure_size(300)[0] * DPI <= 3200


def test_note_names():
    assert [note_name(p) for p in (60, 61, 21, 108)] == ["C4", "C#4", "A0", "C8"]


def test_cli_render_plot_needs_no_synthesizer(tmp_path, midi_file, cli, monkeypatch):
    import kelly.render.audio as audio

    monkeypatch.setattr(audio, "find_synth", lambda: (_ for _ in ()).throw(AssertionError("not needed")))
    png = tmp_path / "roll.png"
    code, out, err = cli("render", midi_file, "--plot", png)
    assert code == 0, err
    assert out.startswith(f"Wrote:   {png} (piano roll, ") and png_size(png)[0] >= 1000
    code, _out, err = cli("render", midi_file, "--plot", tmp_path / "roll.jpg")
    assert "--plot takes a .png file name" in one_line_error(code, err)


def test_compose_plot_and_musicxml_beside_the_midi(tmp_path, cli):
    mid = tmp_path / "grief.mid"
    code, out, err = cli("compose", "I feel grief", "--bars", 4, "-o", mid, "--plot", "--musicxml")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("Wrote:")]
    assert lines[0] == f"Wrote:   {mid} and {mid.with_suffix('.json')}"
    assert lines[1].startswith(f"Wrote:   {tmp_path / 'grief.png'} (piano roll, 4 bars")
    assert lines[2].startswith(f"Wrote:   {tmp_path / 'grief.musicxml'} (MusicXML, ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grief.json", "grief.mid", "grief.musicxml", "grief.png"]


def test_compose_without_the_flags_is_unchanged(tmp_path, cli):
    mid = tmp_path / "calm.mid"
    code, out, err = cli("compose", "calm", "--bars", 2, "-o", mid)
    assert code == 0, err
    assert out.count("Wrote:") == 1 and out.rstrip().endswith(f"Wrote:   {mid} and {mid.with_suffix('.json')}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm.json", "calm.mid"]


def test_compose_json_keeps_stdout_json_only(tmp_path, cli):
    import json

    code, out, err = cli("compose", "calm", "--bars", 2, "-o", tmp_path / "c.mid", "--json", "--plot",
                         tmp_path / "roll.png")
    assert code == 0, err
    assert json.loads(out)["bars"] == 2
    assert err.startswith(f"Wrote:   {tmp_path / 'roll.png'} (piano roll")


def test_compose_default_names_skip_a_taken_plot(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kelly-out").mkdir()
    (tmp_path / "kelly-out" / "calm.png").write_bytes(b"someone else's")
    code, out, err = cli("compose", "calm", "--bars", 2, "--plot")
    assert code == 0, err
    assert "Wrote:   kelly-out/calm-2.png" in out
    assert (tmp_path / "kelly-out" / "calm.png").read_bytes() == b"someone else's"
