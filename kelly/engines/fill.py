"""FillEngine: drum fills at the ends of sections.

Types (§6.5) chosen by profile: snare roll, tom run, ghost notes, flam. Intensity
(subtle/moderate/intense/explosive) gives the velocity boost −10/0/+15/+30; flams put a
grace note 15 ticks early at −25 velocity. A fill replaces the kit in its last beat(s).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import SIXTEENTH, note
from kelly.engines.context import Plan
from kelly.song import Note, Track

TOMS = (50, 48, 47, 45, 43, 41)
TYPES = {"grief": "ghost_notes", "sadness": "ghost_notes", "peace": "ghost_notes", "nostalgia": "flam",
         "love": "flam", "hope": "tom_run", "joy": "tom_run", "anger": "snare_roll", "fear": "snare_roll",
         "anxiety": "snare_roll", "tension": "tom_run", "neutral": "tom_run"}
BOOST = {"subtle": -10, "moderate": 0, "intense": 15, "explosive": 30}


def fill_notes(kind: str, start: int, beats: float, velocity: int, rng: np.random.Generator) -> list[Note]:
    """The notes of a fill ``beats`` quarter notes long (1.5 for a 6/8 dotted-quarter beat)."""
    steps = int(round(beats * 4))
    out: list[Note] = []
    for k in range(steps):
        t = start + k * SIXTEENTH
        ramp = velocity + int(20 * k / max(1, steps - 1))
        if kind == "snare_roll":
            out.append(note(t, 38, 90, ramp))
        elif kind == "tom_run":
            out.append(note(t, TOMS[min(len(TOMS) - 1, k * len(TOMS) // steps)], 110, ramp))
        elif kind == "ghost_notes":
            if k % 2 == 1 or rng.random() < 0.3:
                out.append(note(t, 38, 60, 28 + rng.integers(0, 12)))
        elif kind == "flam":
            if k % 2 == 0:
                out.append(note(max(0, t - 15), 38, 40, ramp - 25))
                out.append(note(t, 38, 90, ramp))
    return out


def apply(plan: Plan, drums: Track, rng: np.random.Generator) -> dict:
    """Add a fill at the end of every section that leads into another (and the last bar); returns where."""
    kind = TYPES.get(plan.profile, "tom_run")
    placed = []
    for idx, section in enumerate(plan.sections):
        bar = section.end_bar - 1
        if not plan.layer_on("drums", bar):
            continue
        nxt = plan.sections[idx + 1] if idx + 1 < len(plan.sections) else None
        rise = (nxt.energy - section.energy) if nxt else 0.0
        level = "explosive" if rise > 0.4 else "intense" if rise > 0.15 else "moderate" if nxt else "subtle"
        beats = 2 if level in ("intense", "explosive") and plan.beats > 2 else 1
        span = beats * plan.beat_ticks
        start = (bar + 1) * plan.bar_ticks - span
        drums.notes = [n for n in drums.notes if not (start <= n.start < start + span and n.pitch != 36)]
        drums.notes.extend(fill_notes(kind, start, span // plan.ppq if span % plan.ppq == 0 else span / plan.ppq,
                                      plan.params_at_bar(bar).velocity + BOOST[level], rng))
        placed.append({"bar": bar + 1, "type": kind, "intensity": level})
    drums.notes.sort()
    return {"fills": placed}
