"""Playable ranges of the General MIDI instruments, as MIDI pitches (sounding pitch; middle C = 60).

One table for the engines (which keep every part inside its instrument's range,
:mod:`kelly.engines.arrange`) and the music report (:func:`kelly.quality.out_of_range_notes`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstrumentRange:
    first: int
    last: int
    low: int
    high: int
    what: str


# Playable ranges (sounding pitch, MIDI numbers; middle C = 60) for every General MIDI
# program. Orchestral instruments: the "Ranges of Orchestral Instruments" table of the
# Orchestra Library (orchestralibrary.com/reftables/rang.html, written ranges and
# transpositions, after Del Mar, Read and Kennan), S. Adler, "The Study of Orchestration"
# (range charts) and the Vienna Symphonic Library Academy pages (vsl.co.at/academy); each
# upper limit is the top of professional writing, not of virtuoso extensions.
# Keyboards: 88-key piano A0-C8; Fender Rhodes Mark I 73 E1-E7; Hohner Clavinet D6
# F1-E6; harpsichord FF-f''' (F1-F6); Hammond manuals C2-C7, drawbars an octave either
# side. Fretted: guitar in standard tuning E2 up to the 24th fret (E6); bass E1-G4, with a
# 5-string's low B0 (23) allowed for the whole bass family (32-39, synth bass included).
# General MIDI synth families (leads, pads, effects) have no acoustic instrument behind
# them: they get the five-octave C2-C7 of a 61-key synth keyboard. Sound effects
# (120-127) take any pitch. Drum kit: GM2 percussion key map 27-87 (GM level 1 is 35-81).
RANGES = (
    InstrumentRange(0, 3, 21, 108, "piano"),
    InstrumentRange(4, 5, 28, 100, "electric piano"),
    InstrumentRange(6, 6, 29, 89, "harpsichord"),
    InstrumentRange(7, 7, 29, 88, "clavinet"),
    InstrumentRange(8, 8, 60, 108, "celesta"),
    InstrumentRange(9, 9, 79, 108, "glockenspiel"),
    InstrumentRange(10, 10, 60, 96, "music box"),
    InstrumentRange(11, 11, 53, 89, "vibraphone"),
    InstrumentRange(12, 12, 36, 96, "marimba"),
    InstrumentRange(13, 13, 65, 108, "xylophone"),
    InstrumentRange(14, 14, 60, 77, "tubular bells"),
    InstrumentRange(15, 15, 48, 91, "dulcimer"),
    InstrumentRange(16, 20, 24, 108, "organ"),
    InstrumentRange(21, 21, 36, 96, "accordion"),
    InstrumentRange(22, 22, 60, 96, "harmonica"),
    InstrumentRange(23, 23, 36, 96, "bandoneon"),
    InstrumentRange(24, 31, 40, 88, "guitar"),
    InstrumentRange(32, 39, 23, 67, "bass"),
    InstrumentRange(40, 40, 55, 103, "violin"),
    InstrumentRange(41, 41, 48, 91, "viola"),
    InstrumentRange(42, 42, 36, 76, "cello"),
    InstrumentRange(43, 43, 28, 67, "contrabass"),
    InstrumentRange(44, 45, 28, 103, "string section"),
    InstrumentRange(46, 46, 24, 103, "harp"),
    InstrumentRange(47, 47, 38, 60, "timpani"),
    InstrumentRange(48, 51, 28, 103, "string ensemble"),
    InstrumentRange(52, 53, 40, 84, "choir"),
    InstrumentRange(54, 55, 36, 96, "synth voice / orchestra hit"),
    InstrumentRange(56, 56, 52, 84, "trumpet"),
    InstrumentRange(57, 57, 40, 77, "trombone"),
    InstrumentRange(58, 58, 26, 65, "tuba"),
    InstrumentRange(59, 59, 52, 84, "muted trumpet"),
    InstrumentRange(60, 60, 34, 77, "french horn"),
    InstrumentRange(61, 61, 34, 84, "brass section"),
    InstrumentRange(62, 63, 36, 96, "synth brass"),
    InstrumentRange(64, 64, 56, 87, "soprano sax"),
    InstrumentRange(65, 65, 49, 81, "alto sax"),
    InstrumentRange(66, 66, 44, 76, "tenor sax"),
    InstrumentRange(67, 67, 36, 69, "baritone sax"),
    InstrumentRange(68, 68, 58, 91, "oboe"),
    InstrumentRange(69, 69, 52, 84, "english horn"),
    InstrumentRange(70, 70, 34, 75, "bassoon"),
    InstrumentRange(71, 71, 50, 94, "clarinet"),
    InstrumentRange(72, 72, 74, 108, "piccolo"),
    InstrumentRange(73, 73, 60, 96, "flute"),
    InstrumentRange(74, 79, 60, 96, "recorder / pipes"),
    InstrumentRange(80, 87, 36, 96, "synth lead"),
    InstrumentRange(88, 95, 36, 96, "synth pad"),
    InstrumentRange(96, 103, 36, 96, "synth effects"),
    InstrumentRange(104, 104, 48, 84, "sitar"),
    InstrumentRange(105, 105, 48, 86, "banjo"),
    InstrumentRange(106, 106, 50, 86, "shamisen"),
    InstrumentRange(107, 107, 48, 91, "koto"),
    InstrumentRange(108, 108, 60, 88, "kalimba"),
    InstrumentRange(109, 109, 67, 81, "bagpipe"),
    InstrumentRange(110, 110, 55, 103, "fiddle"),
    InstrumentRange(111, 111, 60, 84, "shanai"),
    InstrumentRange(112, 119, 24, 108, "pitched percussion"),
    InstrumentRange(120, 127, 0, 127, "sound effect"),
)
#: General MIDI percussion key map (GM2), for drum tracks.
DRUM_RANGE = (27, 87)




def instrument_range(program: int) -> InstrumentRange:
    """The range row of General MIDI ``program`` (0–127)."""
    program = int(program) & 127
    return next(r for r in RANGES if r.first <= program <= r.last)


def playable_range(program: int, *, is_drum: bool = False) -> tuple[int, int]:
    """(lowest, highest) MIDI pitch of General MIDI ``program``, or the drum map's keys."""
    if is_drum:
        return DRUM_RANGE
    r = instrument_range(program)
    return r.low, r.high
