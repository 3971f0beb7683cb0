"""Playable ranges of the General MIDI instruments, as MIDI pitches.

Ranges are the written-and-sounding compass of the real instruments each GM program
imitates (orchestration references: Adler, *The Study of Orchestration*, 4th ed.;
Piston, *Orchestration*; manufacturers' ranges for keyboards and synthesizers), widened
slightly for the synthetic families (a synth pad or lead has no hard limit, but
General MIDI banks are sampled over roughly C2–C7). Drums on channel 10 use the GM
percussion map, keys 27–87.
"""

from __future__ import annotations

#: (first program, last program, lowest pitch, highest pitch), by GM family or instrument.
_RANGES: tuple[tuple[int, int, int, int], ...] = (
    (0, 7, 21, 108),     # pianos, electric pianos, harpsichord, clavinet: A0–C8
    (8, 8, 60, 108),     # celesta
    (9, 9, 72, 108),     # glockenspiel
    (10, 10, 60, 96),    # music box
    (11, 11, 53, 89),    # vibraphone
    (12, 12, 45, 96),    # marimba
    (13, 13, 65, 96),    # xylophone
    (14, 14, 60, 77),    # tubular bells
    (15, 15, 48, 84),    # dulcimer
    (16, 20, 36, 96),    # organs
    (21, 21, 53, 89),    # accordion
    (22, 22, 60, 84),    # harmonica
    (23, 23, 53, 89),    # tango accordion
    (24, 31, 40, 88),    # guitars: E2–E6
    (32, 39, 28, 67),    # basses: E1–G4 (four-string compass)
    (40, 40, 55, 103),   # violin: G3–G7
    (41, 41, 48, 91),    # viola: C3–G6
    (42, 42, 36, 76),    # cello: C2–E5
    (43, 43, 28, 67),    # contrabass
    (44, 45, 28, 103),   # tremolo, pizzicato strings (section)
    (46, 46, 23, 103),   # harp
    (47, 47, 36, 57),    # timpani
    (48, 51, 28, 103),   # string ensembles, synth strings
    (52, 54, 40, 84),    # choir aahs, voice oohs, synth voice
    (55, 55, 36, 96),    # orchestra hit
    (56, 56, 52, 84),    # trumpet: E3–C6
    (57, 57, 40, 77),    # trombone: E2–F5
    (58, 58, 26, 58),    # tuba
    (59, 59, 52, 82),    # muted trumpet
    (60, 60, 34, 77),    # French horn
    (61, 63, 36, 84),    # brass section, synth brass
    (64, 64, 56, 88),    # soprano sax
    (65, 65, 49, 81),    # alto sax
    (66, 66, 44, 76),    # tenor sax
    (67, 67, 36, 69),    # baritone sax
    (68, 68, 58, 91),    # oboe: B♭3–G6
    (69, 69, 52, 81),    # English horn
    (70, 70, 34, 75),    # bassoon
    (71, 71, 50, 94),    # clarinet: D3–B♭6
    (72, 72, 74, 108),   # piccolo
    (73, 73, 60, 96),    # flute: C4–C7
    (74, 74, 60, 96),    # recorder
    (75, 79, 60, 96),    # pan flute, blown bottle, shakuhachi, whistle, ocarina
    (80, 87, 36, 96),    # synth leads
    (88, 95, 36, 96),    # synth pads
    (96, 103, 36, 96),   # synth effects
    (104, 104, 48, 77),  # sitar
    (105, 105, 48, 84),  # banjo
    (106, 106, 48, 84),  # shamisen
    (107, 107, 48, 84),  # koto
    (108, 108, 60, 84),  # kalimba
    (109, 109, 55, 77),  # bagpipe
    (110, 110, 55, 96),  # fiddle
    (111, 111, 60, 84),  # shanai
    (112, 119, 36, 96),  # percussive: tinkle bell … reverse cymbal (pitched use)
    (120, 127, 36, 96),  # sound effects
)

#: GM percussion map (channel 10): High Q (27) to Open Triangle (81), with the GM2 extension to 87.
DRUM_RANGE = (27, 87)


def playable_range(program: int, *, is_drum: bool = False) -> tuple[int, int]:
    """(lowest, highest) MIDI pitch of General MIDI ``program`` (0–127), or the drum map's keys."""
    if is_drum:
        return DRUM_RANGE
    for first, last, lo, hi in _RANGES:
        if first <= program <= last:
            return lo, hi
    return 0, 127
