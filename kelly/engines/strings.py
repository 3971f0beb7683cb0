"""StringEngine: string section lines above the harmony.

Low arousal: long sustained chords that swell (the dynamics engine shapes the swell).
High arousal: repeated eighths (spiccato-like ostinato) on the upper chord tones. The
top voice is the chord voicing's, under the melody, so the strings never mask the lead.
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import bed_voicing, note
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    arousal = plan.emotion.arousal
    program = 49 if plan.emotion.valence < -0.4 and arousal < 0.5 else 48
    style = "ostinato" if arousal > 0.65 else "sustain"
    notes: list[Note] = []
    for event in plan.chords:
        bar = event.start // plan.bar_ticks
        if not plan.layer_on("strings", bar):
            continue
        velocity = plan.params_at_bar(bar).velocity
        # the section spreads the voicing: its lowest tone an octave down (cellos), the rest as voiced
        voiced = sorted(bed_voicing(event))
        tones = sorted({voiced[0] - 12 if voiced[0] - 12 >= 36 else voiced[0]} | set(voiced[1:]))
        tones = [p for p in tones if 36 <= p <= 84] or voiced
        if style == "sustain":
            for p in tones:
                notes.append(note(event.start, p, event.duration - 30, velocity))
        else:
            upper = tones[-2:]
            for t in range(event.start, event.end, plan.ppq // 2):
                for p in upper:
                    notes.append(note(t, p, 200, velocity))
            notes.append(note(event.start, tones[0], event.duration - 30, velocity))
    notes.sort()
    return Track("Strings", program, 4, notes, Role.STRINGS), {"style": style, "program": program}
