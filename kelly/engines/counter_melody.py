"""CounterMelodyEngine: a second voice answering the melody.

Motion types (§6.5): parallel (a third or sixth below in the scale), contrary (moves
against the melody's direction), oblique (holds while the melody moves). It plays on
a subset of the melody's notes (density by profile) and stays below the melody.
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import note, scale_pitches
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

#: motion, scale steps below, density, GM program
PROFILES = {
    "grief": ("contrary", 5, 0.4, 42), "sadness": ("contrary", 5, 0.45, 42), "nostalgia": ("parallel", 2, 0.5, 71),
    "peace": ("oblique", 5, 0.35, 71), "love": ("parallel", 2, 0.55, 68), "hope": ("parallel", 2, 0.5, 71),
    "joy": ("parallel", 2, 0.6, 56), "anger": ("contrary", 4, 0.5, 61), "fear": ("contrary", 5, 0.4, 42),
    "anxiety": ("oblique", 4, 0.45, 68), "tension": ("contrary", 4, 0.45, 61), "neutral": ("parallel", 2, 0.5, 71),
}


def generate(plan: Plan, melody: Track, rng: np.random.Generator) -> tuple[Track, dict]:
    motion, steps_below, density, program = PROFILES.get(plan.profile, PROFILES["neutral"])
    notes: list[Note] = []
    prev_mel = prev_out = None
    for mel in melody.notes:
        bar = mel.start // plan.bar_ticks
        if not plan.layer_on("counter_melody", bar) or rng.random() > density:
            continue
        params = plan.params_at_bar(bar)
        scale = scale_pitches(params.key, mel.pitch - 16, mel.pitch)
        below = [p for p in scale if p < mel.pitch]
        if not below:
            continue
        if motion == "parallel" or prev_mel is None or prev_out is None:
            pitch = below[max(0, len(below) - steps_below)]
        elif motion == "contrary":
            direction = -1 if mel.pitch > prev_mel else 1 if mel.pitch < prev_mel else 0
            cands = [p for p in below if (p - prev_out) * direction > 0 and abs(p - prev_out) <= 4] or [prev_out]
            pitch = cands[0] if direction < 0 else cands[-1] if direction > 0 else prev_out
            pitch = min(pitch, mel.pitch - 3)
        else:
            pitch = prev_out if prev_out < mel.pitch - 2 else below[max(0, len(below) - steps_below)]
        notes.append(note(mel.start, pitch, mel.duration, params.velocity))
        prev_mel, prev_out = mel.pitch, pitch
    return Track("Counter-melody", program, 5, notes, Role.COUNTER), {"motion": motion, "program": program}
