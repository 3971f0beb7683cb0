"""TransitionEngine: what happens at the seams between sections.

Types (§6.5): build (a sweep-pad riser across the last bar and a crash on the new
downbeat) when energy rises, breakdown (the kit drops out on the last beat) when it
falls, crossfade (a held pad tone across the seam) otherwise. Two-bar risers for big
jumps, as the original's transitions were two bars long.
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import note
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

CRASH = 49


def generate(plan: Plan, drums: Track | None, rng: np.random.Generator) -> tuple[Track, dict]:
    notes: list[Note] = []
    seams = []
    for prev, nxt in zip(plan.sections, plan.sections[1:]):
        seam = nxt.start_bar * plan.bar_ticks
        rise = nxt.energy - prev.energy
        velocity = plan.params_at_bar(nxt.start_bar).velocity
        tonic = 60 + plan.key.tonic_pc
        if rise > 0.15:
            kind = "build"
            length = 2 if rise > 0.4 and prev.bars >= 3 else 1
            start = seam - length * plan.bar_ticks
            notes.append(note(start, tonic + 7, length * plan.bar_ticks, velocity - 20))
            if drums is not None and plan.layer_on("drums", nxt.start_bar):
                drums.notes.append(note(seam, CRASH, plan.beat_ticks, velocity + 10))
        elif rise < -0.15:
            kind = "breakdown"
            if drums is not None:
                cut = seam - plan.beat_ticks
                drums.notes = [n for n in drums.notes if not (cut <= n.start < seam)]
            notes.append(note(seam, tonic, plan.bar_ticks, velocity - 25))
        else:
            kind = "crossfade"
            notes.append(note(seam - plan.beat_ticks, tonic + 12, 2 * plan.beat_ticks, velocity - 25))
        seams.append({"bar": nxt.start_bar + 1, "from": prev.name, "to": nxt.name, "type": kind})
    if drums is not None:
        drums.notes.sort()
    notes.sort()
    return Track("Transitions", 95, 6, notes, Role.FX), {"transitions": seams}
