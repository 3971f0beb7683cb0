"""DrumGrooveEngine: the kit, General MIDI drum map on channel 10.

Plays the rhythm engine's pattern bar by bar. Section energy thins it out: quiet
sections keep only kick on one and a cross-stick, middle sections add hats, full
sections play the whole pattern with open hats and ghost snares (velocity 25–40).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import SIXTEENTH, note
from kelly.engines.context import Plan
from kelly.engines.rhythm import pattern_for, patterns_for
from kelly.song import DRUM_CHANNEL, Note, Role, Track

KICK, SIDE_STICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 42, 46, 49, 51


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    name = pattern_for(plan)
    pat = patterns_for(plan.meter)[name]
    notes: list[Note] = []
    for bar in range(plan.bars):
        if not plan.layer_on("drums", bar):
            continue
        energy = plan.energy_at_bar(bar) if len(plan.sections) > 1 else 0.7
        base = bar * plan.bar_ticks
        vel = plan.params_at_bar(bar).velocity
        for s in range(plan.steps):
            t = base + s * SIXTEENTH
            if pat.kick[s] and rng.random() < pat.kick[s] and (energy >= 0.5 or s == 0):
                notes.append(note(t, KICK, 100, vel + 8))
            if pat.snare[s] and rng.random() < pat.snare[s]:
                notes.append(note(t, SNARE if energy >= 0.5 else SIDE_STICK, 100, vel + 4))
            elif energy >= 0.6 and pat.ghost and not pat.kick[s] and rng.random() < pat.ghost:
                notes.append(note(t, SNARE, 60, 25 + rng.integers(0, 16)))
            if pat.hat[s] and rng.random() < pat.hat[s]:
                accent = 8 if s % 4 == 0 else 0
                notes.append(note(t, RIDE if pat.ride else CLOSED_HAT, 80, vel - 22 + accent))
            if energy >= 0.8 and pat.open_hat[s] and rng.random() < pat.open_hat[s]:
                notes.append(note(t, OPEN_HAT, 200, vel - 15))
    notes.sort()
    return Track("Drums", 0, DRUM_CHANNEL, notes, Role.DRUMS), {"pattern": name}
