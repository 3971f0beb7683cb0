"""PadEngine: a sustained harmonic bed in the chords' register, under the melody.

Profiles (§6.5) set the GM pad sound and how it moves (warm pad 89, polysynth 90, halo 94 rather
than the new-age 88 and sweep 95 pads, which rendered 6–10 dB over the lead as beds): "breathing" pads re-strike each
bar with a gap, "sustained" pads tie across a chord that does not change. Extensions
(the added ninth, on major chords only, where it cannot rub against a minor third)
appear with probability by profile, more often with complexity.
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import bed_voicing, note
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

#: GM program, movement, ninth probability
PROFILES = {
    "grief": (89, "breathing", 0.4), "sadness": (89, "sustained", 0.3), "nostalgia": (89, "sustained", 0.4),
    "peace": (91, "sustained", 0.5), "love": (89, "sustained", 0.4), "hope": (89, "sustained", 0.3),
    "joy": (90, "pulse", 0.2), "anger": (90, "pulse", 0.1), "fear": (94, "breathing", 0.2),
    "anxiety": (94, "pulse", 0.2), "tension": (94, "breathing", 0.3), "neutral": (89, "sustained", 0.3),
}


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    program, movement, ninth_p = PROFILES.get(plan.profile, PROFILES["neutral"])
    notes: list[Note] = []
    held: dict[int, int] = {}  # pitch -> index in notes of the note that may be extended
    for event in plan.chords:
        bar = event.start // plan.bar_ticks
        if not plan.layer_on("pad", bar):
            held = {}
            continue
        # the pad doubles the chord voicing an octave up only where that stays under the melody
        chord_voicing = bed_voicing(event)
        ceiling = max(chord_voicing) + 3
        voicing = [p + 12 if p + 12 <= ceiling and p < 52 else p for p in chord_voicing]
        if rng.random() < ninth_p * (0.5 + plan.complexity) and event.chord.quality in ("maj", "maj7", "7", "sus2"):
            # the ninth above the chord's root (not above the lowest voice: an inversion's bass is not the root)
            ninth_pc = (event.chord.root_pc + 2) % 12
            options = [p for p in range(voicing[0] + 1, ceiling + 1) if p % 12 == ninth_pc and p not in voicing]
            if options:
                voicing.append(options[-1])
        velocity = plan.params_at_bar(bar).velocity
        if movement == "pulse":
            half = plan.bar_ticks // 2 if not plan.meter == (3, 4) else plan.bar_ticks // 3
            for t in range(event.start, event.end, half):
                for p in voicing:
                    notes.append(note(t, p, min(half, event.end - t) - 60, velocity))
            held = {}
            continue
        dur = event.duration - (240 if movement == "breathing" else 0)
        new_held = {}
        for p in sorted(set(voicing)):
            if movement == "sustained" and p in held and notes[held[p]].end == event.start:
                old = notes[held[p]]
                notes[held[p]] = old.moved(duration=old.duration + dur)
                new_held[p] = held[p]
            else:
                notes.append(note(event.start, p, dur, velocity))
                new_held[p] = len(notes) - 1
        held = new_held
    notes.sort()
    return Track("Pad", program, 3, notes, Role.PAD), {"program": program, "movement": movement}
