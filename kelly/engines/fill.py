"""FillEngine: drum fills at the ends of sections.

Types (§6.5) chosen by profile: snare roll, tom run, ghost notes, flam. Intensity
(subtle/moderate/intense/explosive) gives the velocity boost −10/0/+15/+30; flams put a
grace note 15 ticks early at −25 velocity. A fill replaces the kit in its last beat(s).

With the networks' hints (each bar its own, :class:`kelly.engines.ml_hints.Controls`):
``fill_prob`` above neutral adds a one-beat fill at the end of inner four-bar phrases
(probability ``d``), below it skips a section's fill (probability ``0.8·|d|``);
``tom_density`` beyond ±1/3 turns a fill into a tom run (or a tom run into a snare roll);
``triplet_feel`` above 1/3 plays the fill in sixteenth-note triplets (simple metres).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import SIXTEENTH, note
from kelly.engines.context import Plan
from kelly.engines.ml_hints import controls_by_bar
from kelly.song import Note, Track

TOMS = (50, 48, 47, 45, 43, 41)
TYPES = {"grief": "ghost_notes", "sadness": "ghost_notes", "peace": "ghost_notes", "nostalgia": "flam",
         "love": "flam", "hope": "tom_run", "joy": "tom_run", "anger": "snare_roll", "fear": "snare_roll",
         "anxiety": "snare_roll", "tension": "tom_run", "neutral": "tom_run"}
BOOST = {"subtle": -10, "moderate": 0, "intense": 15, "explosive": 30}


def fill_notes(kind: str, start: int, beats: float, velocity: int, rng: np.random.Generator,
               step: int = SIXTEENTH) -> list[Note]:
    """The notes of a fill ``beats`` quarter notes long (1.5 for a 6/8 dotted-quarter beat), one per ``step`` ticks."""
    steps = int(round(beats * 4 * SIXTEENTH / step))
    out: list[Note] = []
    for k in range(steps):
        t = start + k * step
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
    if plan.hints is not None:
        return _apply_with_controls(plan, drums, rng, kind)
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


def _apply_with_controls(plan: Plan, drums: Track, rng: np.random.Generator, own_kind: str) -> dict:
    """:func:`apply` with ``fill_prob``, ``tom_density`` and ``triplet_feel`` as controls (see the module docstring)."""
    ctl = controls_by_bar(plan)
    ends = {section.end_bar - 1: idx for idx, section in enumerate(plan.sections)}
    placed, skipped, added = [], 0, 0
    for bar in range(plan.bars):
        phrase_end = bar % 4 == 3 and bar < plan.bars - 1
        if (bar not in ends and not phrase_end) or not plan.layer_on("drums", bar):
            continue
        c = ctl[bar]
        fp = c.g("fill_prob")
        if bar in ends:
            idx = ends[bar]
            section = plan.sections[idx]
            nxt = plan.sections[idx + 1] if idx + 1 < len(plan.sections) else None
            if fp < 0 and rng.random() < -0.8 * fp:
                skipped += 1
                continue
            rise = (nxt.energy - section.energy) if nxt else 0.0
            level = "explosive" if rise > 0.4 else "intense" if rise > 0.15 else "moderate" if nxt else "subtle"
        elif fp > 0 and rng.random() < fp:
            level = "moderate"
            added += 1
        else:
            continue
        kind = own_kind
        td = c.g("tom_density")
        if td > 1 / 3:
            kind = "tom_run"
        elif td < -1 / 3 and kind == "tom_run":
            kind = "snare_roll"
        step = SIXTEENTH
        if c.g("triplet_feel") > 1 / 3 and not plan.compound:
            step = plan.ppq // 6
        beats = 2 if level in ("intense", "explosive") and plan.beats > 2 else 1
        span = beats * plan.beat_ticks
        start = (bar + 1) * plan.bar_ticks - span
        drums.notes = [n for n in drums.notes if not (start <= n.start < start + span and n.pitch != 36)]
        drums.notes.extend(fill_notes(kind, start, span // plan.ppq if span % plan.ppq == 0 else span / plan.ppq,
                                      plan.params_at_bar(bar).velocity + BOOST[level], rng, step))
        placed.append({"bar": bar + 1, "type": kind, "intensity": level,
                       **({"triplets": True} if step != SIXTEENTH else {})})
    drums.notes.sort()
    return {"fills": placed, "controls": {"phrase_fills_added": added, "section_fills_skipped": skipped}}
