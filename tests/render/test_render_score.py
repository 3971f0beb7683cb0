"""MusicXML from the quantized parts: key signature, one part per pitched track, no tuplets, nothing under a 16th."""

from __future__ import annotations

import pytest
from _render_helpers import one_line_error

from kelly.errors import InputError, OutputError
from kelly.render.score import build_score, key_sharps, quantize_notes, speller, write_musicxml
from kelly.song import DRUM_CHANNEL, Note, Song, Track

ALLOWED_TYPES = {"16th", "eighth", "quarter", "half", "whole"}


def _parse(path):
    from music21 import converter

    return converter.parse(str(path), format="musicxml")


def _check_notation(score, song):
    """The rules every score Kelly writes keeps."""
    from music21 import note as m21note

    pitched = [t for t in song.tracks if t.notes and not t.is_drum]
    drums = [t for t in song.tracks if t.notes and t.is_drum]
    parts = list(score.parts)
    is_drum = [any(isinstance(n, m21note.Unpitched) or n.isChord and n.notes and
                   isinstance(n.notes[0], m21note.Unpitched) for n in p.recurse().notes) for p in parts]
    assert sum(not d for d in is_drum) == len(pitched)
    assert sum(is_drum) == len(drums)
    for part in parts:
        for element in part.recurse().notesAndRests:
            d = element.duration
            assert not d.tuplets, (part.partName, element, d)
            assert d.type in ALLOWED_TYPES, (part.partName, element, d.type)
            assert d.quarterLength >= 0.25, (part.partName, element, d.quarterLength)
    return parts, is_drum


def test_score_of_a_composition(tmp_path, composition):
    path = write_musicxml(composition.score, tmp_path / "song.musicxml", title="grief")
    assert composition.score.key_signature == "Dm"
    score = _parse(path)
    parts, is_drum = _check_notation(score, composition.score)
    assert score.metadata.bestTitle == "grief"
    for part, drum in zip(parts, is_drum):
        signatures = list(part.recurse().getElementsByClass("KeySignature"))
        if drum:
            assert not signatures
        else:
            assert signatures and signatures[0].sharps == -1, part.partName  # D minor: one flat
    names = [p.partName for p in parts]
    assert names == [t.name for t in composition.score.tracks if t.notes]
    assert list(parts[0].recurse().getElementsByClass("MetronomeMark"))


def test_performed_midi_is_quantized_too(tmp_path, midi_file, cli):
    xml = tmp_path / "performed.musicxml"
    code, out, err = cli("render", midi_file, "--score", xml)
    assert code == 0, err
    assert out.startswith(f"Wrote:   {xml} (MusicXML, ")
    from kelly.song import read_midi

    song = read_midi(midi_file)
    _check_notation(_parse(xml), song)


@pytest.mark.parametrize("name, sharps", [("C", 0), ("Am", 0), ("Eb", -3), ("F#m", 3), ("Bbm", -5), ("C#", 7),
                                          ("Abm", -7), ("Dm", -1), ("B", 5)])
def test_key_signatures(name, sharps):
    assert key_sharps(name)[0] == sharps


def test_spelling_follows_the_key():
    dm = speller(*key_sharps("Dm")[:1], "D", "minor")
    assert [dm(p)[0] for p in (70, 61, 63, 66)] == ["Bb", "C#", "Eb", "F#"]
    assert speller(-7, "Cb", "major")(71) == ("Cb", 5)  # Cb5 sounds as MIDI 71
    assert speller(7, "C#", "major")(60) == ("B#", 3)


def test_quantize_to_sixteenths():
    ppq = 480
    notes = [Note(7, 60, 100, 90),     # a hair late, short: a 16th at 0
             Note(115, 60, 10, 90),    # re-struck: the first one is cut there
             Note(0, 64, 400, 80), Note(0, 64, 480, 70),  # the same note twice: the longer kept
             Note(250, 67, 229, 70)]   # 8th-ish swung: onset rounds to the 16th grid
    steps = quantize_notes(notes, ppq)
    assert steps == [(0, 1, 60, 90), (0, 4, 64, 70), (1, 2, 60, 90), (2, 4, 67, 70)]


def test_odd_parts_notate(tmp_path):
    drums = Track("Kit", channel=DRUM_CHANNEL, notes=[Note(0, 36, 30, 100), Note(0, 42, 30, 90), Note(120, 99, 30, 60)])
    lead = Track("Lead", program=127, notes=[Note(0, 60, 2000, 90), Note(100, 64, 37, 90)])  # across the bar
    song = Song(tracks=[lead, drums], key_signature="F#m", time_signature=(7, 8), tempos=[(0, 90.0), (960, 140.0)])
    score = build_score(song)
    _check_notation(score, song)
    out = tmp_path / "odd.xml"
    write_musicxml(song, out)
    _check_notation(_parse(out), song)


def test_errors(tmp_path, composition):
    with pytest.raises(InputError, match="no notes"):
        build_score(Song())
    with pytest.raises(InputError, match="sixteenth"):
        build_score(Song(tracks=[Track("x", notes=[Note(0, 60, 10, 90)])], time_signature=(1, 32)))
    long = Song(tracks=[Track("x", notes=[Note(600 * 1920, 60, 480, 90)])])
    with pytest.raises(InputError, match="601 bars long; Kelly notates at most 512"):
        build_score(long)
    target = tmp_path / "s.musicxml"
    target.write_text("mine")
    with pytest.raises(OutputError, match="already exists"):
        write_musicxml(composition.score, target)
    assert target.read_text() == "mine"


def test_cli_score_errors(tmp_path, midi_file, cli):
    code, _out, err = cli("render", midi_file, "--score", tmp_path / "s.pdf")
    assert "--score takes a .musicxml or .xml file name" in one_line_error(code, err)
    keep = tmp_path / "s.musicxml"
    keep.write_text("mine")
    code, _out, err = cli("render", midi_file, "--score", keep)
    assert one_line_error(code, err) == f"kelly: error: {keep} already exists; use --force to replace it"
    code, _out, err = cli("render", midi_file, "--score", midi_file.with_suffix(".xml"), "--plot", midi_file)
    assert "--plot takes a .png file name" in one_line_error(code, err)
