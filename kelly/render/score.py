"""MusicXML scores through music21, notated from the quantized parts.

Notate :attr:`kelly.generator.Composition.score` (the song before swing and
humanization), not the performed ``.song``; a MIDI file read back (``kelly render FILE.mid
--score``) is quantized the same way, so a humanized file notates cleanly too.

How a :class:`~kelly.song.Song` becomes a score (:func:`build_score`):

* **Quantized to sixteenths.** Every onset and every release is rounded to the nearest
  sixteenth note; a note shorter than that becomes a sixteenth. No triplets, no tuplets,
  nothing shorter than a sixteenth is ever written (swung eighths become straight ones,
  or a dotted-eighth/sixteenth pair where the swing was strong). Identical notes are
  merged; a repeated pitch that would overlap itself is cut where it is struck again.
* **One part per pitched track** with notes, named after the track, with the music21
  instrument of its General MIDI program (``instrument.instrumentFromMidiProgram``; a
  program music21 does not know keeps a plain instrument with that program). Notes that
  sound together in a part are notated as chords (``chordify``); a note held across a
  change is split and tied. Clefs are chosen by music21 from the range.
* **Drums as percussion parts** (one per drum track: Kelly's "Drums" and "Percussion"),
  on a percussion clef with unpitched notes at the usual drum-set positions (kick F4,
  snare C5, hi-hat G5 with x noteheads, cymbals above; other GM percussion keys above the
  staff). Hits at the same sixteenth form one percussion chord; each lasts until the next
  hit, at most a quarter note, never across a bar line.
* Key signature from ``song.key_signature`` (mido names: ``"C"``, ``"Am"``, ``"Eb"``,
  ``"F#m"``), with pitches spelled in that key (the raised leading tone of a minor key as
  a sharp); the time signature; a metronome mark at the start and wherever the tempo
  changes; the section markers as rehearsal marks; title and composer ("Kelly") in the
  metadata.

music21 is imported inside the functions (it takes about a second), so composing without
``--musicxml`` never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from kelly.errors import InputError, KellyError

#: Quantization grid: notes per quarter (4 → sixteenths).
GRID_PER_QUARTER = 4
#: Longest a drum hit is notated, in grid steps (a quarter note).
MAX_DRUM_STEPS = 4
#: Largest score notated (music21 takes about a second per 32 dense bars): Kelly's longest composition.
MAX_SCORE_BARS = 512
MAX_SCORE_NOTES = 50_000


class ScoreError(KellyError):
    """music21 could not notate the song."""

_SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: Key signatures as mido names → number of sharps (negative: flats).
_MAJOR_SHARPS = {"Cb": -7, "Gb": -6, "Db": -5, "Ab": -4, "Eb": -3, "Bb": -2, "F": -1, "C": 0, "G": 1, "D": 2,
                 "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7}
_ORDER_OF_SHARPS = "FCGDAEB"

#: GM percussion key → (display step, display octave, notehead) on a five-line percussion staff.
DRUM_POSITIONS: dict[int, tuple[str, int, str]] = {
    35: ("F", 4, "normal"), 36: ("F", 4, "normal"),  # kicks
    37: ("C", 5, "x"), 38: ("C", 5, "normal"), 40: ("C", 5, "normal"), 39: ("D", 5, "x"),  # snares, clap
    41: ("G", 4, "normal"), 43: ("A", 4, "normal"), 45: ("D", 5, "normal"), 47: ("D", 5, "normal"),  # toms
    48: ("E", 5, "normal"), 50: ("E", 5, "normal"),
    42: ("G", 5, "x"), 44: ("D", 4, "x"), 46: ("G", 5, "circle-x"),  # hi-hats
    49: ("A", 5, "x"), 57: ("A", 5, "x"), 51: ("F", 5, "x"), 59: ("F", 5, "x"), 53: ("F", 5, "diamond"),  # cymbals
    52: ("B", 5, "x"), 55: ("B", 5, "x"),
}
#: Where any other percussion key goes: above the staff, x notehead.
OTHER_DRUM_POSITION = ("C", 6, "x")


# --------------------------------------------------------------------------- key and spelling
def key_sharps(name: str | None) -> tuple[int, str | None, str]:
    """``(sharps, tonic, mode)`` of a mido key name ("Eb" → (-3, "Eb", "major"), "F#m" → (3, "F#", "minor")).

    ``None`` or an unknown name gives ``(0, None, "major")`` (no key signature is written).
    """
    if not name:
        return 0, None, "major"
    text = str(name).strip()
    minor = text.endswith("m") and len(text) > 1
    tonic = text[:-1] if minor else text
    if tonic[:1].lower() in _LETTER_PC:
        tonic = tonic[0].upper() + tonic[1:]
    if minor:
        # the relative major is a minor third up; find the major with the same signature
        pc = (_LETTER_PC.get(tonic[:1], 0) + {"#": 1, "b": -1}.get(tonic[1:2], 0) + 3) % 12
        letter = "CDEFGAB"[("CDEFGAB".index(tonic[0]) + 2) % 7] if tonic[:1] in _LETTER_PC else "C"
        diff = (pc - _LETTER_PC[letter] + 6) % 12 - 6
        major = letter + {1: "#", -1: "b", 0: ""}.get(diff, "")
        if major in _MAJOR_SHARPS:
            return _MAJOR_SHARPS[major], tonic, "minor"
        return 0, None, "major"
    if tonic in _MAJOR_SHARPS:
        return _MAJOR_SHARPS[tonic], tonic, "major"
    return 0, None, "major"


def speller(sharps: int, tonic: str | None = None, mode: str = "major"):
    """A function MIDI pitch → (note name such as ``"Bb"``, octave) spelling in the key.

    Pitch classes in the key take the key's letters (B♭ in D minor, E♯ in F♯ major); a
    minor key's leading tone is the raised seventh (C♯ in D minor, F𝄪 in G♯ minor); any
    other note takes whichever of its sharp or flat name lies nearer the key on the line
    of fifths (in D minor: E♭, F♯, A♭; in C: C♯, E♭, F♯, G♯, B♭).
    """
    altered = {}
    if sharps > 0:
        altered = {letter: 1 for letter in _ORDER_OF_SHARPS[:sharps]}
    elif sharps < 0:
        altered = {letter: -1 for letter in _ORDER_OF_SHARPS[::-1][:-sharps]}
    names: dict[int, tuple[str, int]] = {}
    for letter, pc in _LETTER_PC.items():
        alter = altered.get(letter, 0)
        names[(pc + alter) % 12] = (letter + {1: "#", -1: "b", 0: ""}[alter], alter)
    if tonic and mode == "minor" and tonic[:1] in _LETTER_PC:
        tonic_pc = (_LETTER_PC[tonic[0]] + {"#": 1, "b": -1}.get(tonic[1:2], 0)) % 12
        seventh = "CDEFGAB"[("CDEFGAB".index(tonic[0]) + 6) % 7]
        alter = (tonic_pc - 1 - _LETTER_PC[seventh] + 6) % 12 - 6
        if alter in (-1, 0, 1, 2):
            names.setdefault((tonic_pc - 1) % 12, (seventh + {2: "##", 1: "#", 0: "", -1: "b"}[alter], alter))
    center = sharps + 2  # the middle of the key's notes on the line of fifths (C major: D)

    def fifths(name: str) -> int:
        return "FCGDAEB".index(name[0]) - 1 + 7 * (name.count("#") - name.count("b"))

    def spell(midi: int) -> tuple[str, int]:
        pc = midi % 12
        if pc in names:
            name, alter = names[pc]
        else:  # chromatic: the spelling nearest the key on the line of fifths (ties: the key's side)
            sharp, flat = _SHARPS[pc], _FLATS[pc]
            ds, df = abs(fifths(sharp) - center), abs(fifths(flat) - center)
            name = sharp if ds < df or (ds == df and sharps >= 0) else flat
            alter = name.count("#") - name.count("b")
        letter_pc = _LETTER_PC[name[0]]
        octave = (midi - letter_pc - alter) // 12 - 1  # B#3 is MIDI 60, Cb5 is MIDI 71
        return name, octave

    return spell


# --------------------------------------------------------------------------- quantization
def quantize_notes(notes, ppq: int, *, grid: int = GRID_PER_QUARTER) -> list[tuple[int, int, int, int]]:
    """Notes as ``(start, end, pitch, velocity)`` in grid steps (sixteenths), cleaned for notation.

    Onsets and releases are rounded to the grid; a note shorter than a step lasts one
    step; identical notes are merged (the longest kept); a pitch struck again while it
    still sounds is cut there.
    """
    steps: dict[tuple[int, int], tuple[int, int]] = {}
    for n in notes:
        if n.duration <= 0:
            continue
        start = round(n.start * grid / ppq)
        end = max(start + 1, round((n.start + n.duration) * grid / ppq))
        key = (start, int(n.pitch))
        if key not in steps or end > steps[key][0]:
            steps[key] = (end, int(n.velocity))
    ordered = sorted((s, e, p, v) for (s, p), (e, v) in steps.items())
    last: dict[int, int] = {}  # pitch → index of its latest note
    out: list[list[int]] = []
    for s, e, p, v in ordered:
        if s < 0:
            s, e = 0, max(1, e)
        if p in last:
            prev = out[last[p]]
            if prev[1] > s:
                prev[1] = s
        last[p] = len(out)
        out.append([s, e, p, v])
    return [tuple(x) for x in out if x[1] > x[0]]


# --------------------------------------------------------------------------- building the score
def _instrument_for(track):
    from music21 import instrument

    try:
        inst = instrument.instrumentFromMidiProgram(int(track.program) & 127)
    except Exception:  # noqa: BLE001 - music21 raises its own exception types for unknown programs
        inst = instrument.Instrument()
        inst.midiProgram = int(track.program) & 127
    inst.partName = track.name
    inst.partAbbreviation = track.name[:4]
    inst.instrumentName = track.name
    return inst


def _slices(steps) -> list[tuple[int, int, list[tuple[int, str | None]]]]:
    """The part cut wherever a note starts or stops: ``[(start, end, [(pitch, tie), ...])]`` with sound.

    A note that sounds through several slices is tied across them (``tie`` is ``"start"``,
    ``"continue"``, ``"stop"``, or ``None`` for a note that fits its slice), as music21's
    ``chordify`` would do, only without its cost.
    """
    bounds = sorted({s for s, _e, _p, _v in steps} | {e for _s, e, _p, _v in steps})
    ordered = sorted(steps)
    out, active, i = [], [], 0
    for a, b in zip(bounds, bounds[1:]):
        while i < len(ordered) and ordered[i][0] <= a:
            active.append(ordered[i])
            i += 1
        active = [n for n in active if n[1] > a]
        if not active:
            continue
        notes = []
        for s, e, p, _v in sorted(active, key=lambda n: n[2]):
            first, last = s == a, e == b
            notes.append((p, None if first and last else "start" if first else "stop" if last else "continue"))
        out.append((a, b, notes))
    return out


def _pitched_part(track, steps, spell, step_ql):
    from music21 import chord, note, pitch, stream, tie

    part = stream.Part()
    part.partName = track.name
    part.insert(0, _instrument_for(track))
    names: dict[int, tuple[str, int]] = {}
    for a, b, sounding in _slices(steps):
        made = []
        for p, kind in sounding:
            name, octave = names.setdefault(p, spell(p))
            n = note.Note(pitch.Pitch(name.replace("b", "-") if len(name) > 1 else name, octave=octave))
            if kind is not None:
                n.tie = tie.Tie(kind)
            made.append(n)
        element = made[0] if len(made) == 1 else chord.Chord(made)
        element.quarterLength = (b - a) * step_ql
        part.insert(a * step_ql, element)
    return part


def _drum_part(track, steps, step_ql, bar_steps):
    from music21 import clef, instrument, note, percussion, stream

    part = stream.Part()
    part.partName = track.name
    inst = instrument.UnpitchedPercussion()
    inst.partName = inst.instrumentName = track.name
    inst.midiChannel = 9
    part.insert(0, inst)
    part.insert(0, clef.PercussionClef())
    onsets: dict[int, list[int]] = {}
    for s, _e, p, _v in steps:
        onsets.setdefault(s, []).append(p)
    times = sorted(onsets)
    for i, s in enumerate(times):
        nxt = times[i + 1] if i + 1 < len(times) else s + MAX_DRUM_STEPS
        bar_end = (s // bar_steps + 1) * bar_steps
        length = max(1, min(nxt, bar_end, s + MAX_DRUM_STEPS) - s)
        hits = []
        seen = set()
        for p in sorted(set(onsets[s])):
            step, octave, head = DRUM_POSITIONS.get(p, OTHER_DRUM_POSITION)
            if (step, octave) in seen:
                continue
            seen.add((step, octave))
            hit = note.Unpitched(displayName=f"{step}{octave}")
            hit.notehead = head
            hit.stemDirection = "up"
            hits.append(hit)
        element = hits[0] if len(hits) == 1 else percussion.PercussionChord(hits)
        element.quarterLength = length * step_ql
        part.insert(s * step_ql, element)
    return part


def build_score(song, *, title: str | None = None):
    """A :class:`music21.stream.Score` of ``song`` (see the module docstring for how it is notated).

    Raises
    ------
    InputError
        If the song has no notes, more than :data:`MAX_SCORE_NOTES` notes or
        :data:`MAX_SCORE_BARS` bars, or a time signature finer than the sixteenth grid.
    """
    from fractions import Fraction

    from music21 import expressions, key, meter, metadata, stream, tempo

    if song.note_count() == 0:
        raise InputError("nothing to notate: the song has no notes")
    num, den = song.time_signature
    step_ql = Fraction(1, GRID_PER_QUARTER)
    bar_ql = Fraction(4 * num, den)
    if bar_ql / step_ql != int(bar_ql / step_ql):
        raise InputError(f"cannot notate a {num}/{den} bar on a sixteenth-note grid")
    bar_steps = int(bar_ql / step_ql)
    sharps, tonic, mode = key_sharps(song.key_signature)
    spell = speller(sharps, tonic, mode)

    if song.note_count() > MAX_SCORE_NOTES:
        raise InputError(f"the song has {song.note_count():,} notes; Kelly notates at most {MAX_SCORE_NOTES:,} "
                         "in one score, so cut it into parts")
    parts_steps = [(t, quantize_notes(t.notes, song.ppq)) for t in song.tracks if t.notes]
    last = max((e for _t, steps in parts_steps for _s, e, _p, _v in steps), default=1)
    bars = max(1, -(-last // bar_steps))
    if bars > MAX_SCORE_BARS:
        raise InputError(f"the song is {bars:,} bars long; Kelly notates at most {MAX_SCORE_BARS} bars in one score, "
                         "so cut it into parts")
    total_ql = bars * bar_ql

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = title if title is not None else (song.title or "Kelly")
    score.metadata.composer = "Kelly"
    first = True
    for number, (track, steps) in enumerate(parts_steps, 1):
        if track.is_drum:
            part = _drum_part(track, steps, step_ql, bar_steps)
        else:
            part = _pitched_part(track, steps, spell, step_ql)
            if tonic is not None:
                part.insert(0, key.Key(tonic.replace("b", "-") if len(tonic) > 1 else tonic, mode))
        part.id = f"P{number}"  # stable ids (music21 would make random ones)
        for inst in part.getElementsByClass("Instrument"):
            inst.partId = part.id
            inst.instrumentId = f"P{number}-I1"
        part.insert(0, meter.TimeSignature(f"{num}/{den}"))
        if first:
            previous = None
            for tick, bpm in sorted(song.tempos) or [(0, 120.0)]:
                at = min(total_ql, Fraction(round(tick * GRID_PER_QUARTER / song.ppq)) * step_ql)
                shown = round(float(bpm))
                if shown != previous and at < total_ql:
                    part.insert(at, tempo.MetronomeMark(number=shown, referent=1.0))
                    previous = shown
            for tick, name in song.markers:
                at = Fraction(round(tick * GRID_PER_QUARTER / song.ppq)) * step_ql
                if 0 <= at < total_ql and name:
                    part.insert(at, expressions.RehearsalMark(str(name)[:40]))
            first = False
        part.makeRests(refStreamOrTimeRange=[0.0, float(total_ql)], fillGaps=True, inPlace=True,
                       hideRests=False)
        part.makeNotation(inPlace=True)
        part.splitAtDurations(recurse=True)  # a 5/16 note or 11/16 rest becomes tied/adjacent plain values
        score.insert(0, part)
    return score


def musicxml_bytes(song, *, title: str | None = None) -> bytes:
    """The MusicXML document (``score-partwise``, UTF-8) of :func:`build_score`."""
    from music21.exceptions21 import Music21Exception
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        exporter = GeneralObjectExporter(build_score(song, title=title))
        exporter.makeNotation = False  # build_score already made measures, ties and beams (same bytes, less time)
        return exporter.parse()
    except Music21Exception as exc:
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ScoreError(f"music21 could not write this score as MusicXML: {message}") from None


def write_musicxml(song, path: str | os.PathLike, *, title: str | None = None, force: bool = False,
                   inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``song`` as an uncompressed MusicXML file (``.musicxml``), atomically.

    Pass the quantized ``Composition.score`` (or a song read from MIDI); it is quantized to
    sixteenths either way. An existing ``path`` is refused unless ``force``; ``inputs`` are
    never written over.

    Raises
    ------
    InputError
        See :func:`build_score`.
    OutputError
        See :func:`kelly.fileio.write_bytes_atomic`.
    """
    from kelly.fileio import check_destination, write_bytes_atomic

    check_destination(path, overwrite=force, inputs=inputs)
    return write_bytes_atomic(path, musicxml_bytes(song, title=title), overwrite=force, inputs=inputs)
