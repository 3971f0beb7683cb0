"""DynamicsEngine: the velocity of every note.

Each note's velocity is built around the emotion's base velocity (60 + 67·dominance,
§3.1 — the figure the original computed and never used) and kept inside the dynamics
range (§3.4: 40 + (1 − r)·40 … 80 + 47·r):

    velocity = base + part offset + section energy + phrase shape + metric accent

Phrase shapes per profile (§6.5: grief = constant/decrescendo/swell; anger = accents
and sforzandi). The engine writes velocities; the groove pass only jitters them.

With the networks' hints (:class:`kelly.engines.ml_hints.Controls`, each bar its own)
the same sum is written with the expression outputs as controls, all neutral at 0.5:

    velocity = base + shift + part offset
               + spread · (contrast · section energy + phrase shape + accent + downbeat
                           + crescendo + phrase arch)

``velocity_base`` shifts the base half-way to ``127·u`` (and the range with it);
``velocity_range`` scales the spread by ``0.5 + u``; ``accent`` moves the metric accents
by ``6·d`` on every beat (never below 0); the groove's ``downbeat_accent`` adds ``6·d`` on
beat one; ``crescendo`` ramps ``±10·d`` over each four-bar phrase, ``phrase_arch`` arches it
by ``10·d·(sin πx − 2/π)``; the groove's ``dynamic_contrast`` scales the section-energy term
by ``2·u`` (0 flattens the sections, 1 doubles their difference). Drums keep their own
accents and take the contrast, crescendo and arch at the weights they take the rest.
"""

from __future__ import annotations

import math


from kelly.engines.context import Plan
from kelly.engines.ml_hints import controls_by_bar, signed
from kelly.song import Track

#: Offset of each part from the base velocity: the melody leads, pads sit underneath.
#: Sustained General MIDI pads and string sections sound 10–15 dB louder than a lead at the same
#: velocity (measured with FluidR3_GM: benchmarks/bench_music.py), so they sit far lower.
PART_OFFSET = {"Melody": 6, "Counter-melody": -14, "Chords": -14, "Bass": 0, "Pad": -40, "Strings": -30,
               "Drums": 0, "Percussion": -6, "Transitions": -34}
#: Parts allowed under the dynamics range's floor (a bed may be quieter than the quietest lead note).
BED_FLOOR = {"Pad": 18, "Strings": 22, "Transitions": 18, "Counter-melody": 30, "Chords": 30}
SHAPES = {"grief": "swell", "sadness": "decrescendo", "nostalgia": "swell", "peace": "constant", "love": "swell",
          "hope": "crescendo", "joy": "crescendo", "anger": "sforzando", "fear": "hairpin", "anxiety": "hairpin",
          "tension": "crescendo", "neutral": "swell"}


def phrase_shape(shape: str, x: float) -> float:
    """Offset in velocity units at phrase position ``x`` in [0, 1)."""
    return {
        "constant": 0.0,
        "crescendo": -8 + 16 * x,
        "decrescendo": 8 - 16 * x,
        "swell": -6 + 12 * math.sin(math.pi * x),
        "hairpin": 10 * abs(2 * x - 1) - 5,
        "sforzando": 12 if x < 0.06 else -4,
    }[shape]


#: Above this velocity the dynamics bend (a soft knee) so loud music keeps its shape instead of saturating.
KNEE = 108
#: The ceiling outside the climax, and at the climax (the bar where the tension curve peaks, in the loudest section).
CEILING, CLIMAX_CEILING = 118, 124


def _soft_limit(v: float, ceiling: int) -> float:
    if v > KNEE:
        v = KNEE + (v - KNEE) * 0.4
    return min(ceiling, v)


def climax_bar(plan: Plan) -> int:
    """The bar the piece builds to: the highest tension in the most energetic section (latest on ties)."""
    best = max(s.energy for s in plan.sections)
    bars = [b for s in plan.sections if s.energy == best for b in range(s.start_bar, s.end_bar)]
    tension = {e.start // plan.bar_ticks: e.tension for e in plan.chords}
    return max(bars, key=lambda b: (tension.get(b, 0.0), b)) if bars else plan.bars - 1


def apply(plan: Plan, tracks: list[Track]) -> dict:
    """Set velocities on every track in place; returns the shape used and the overall range.

    Loudness comes from the bar's base velocity (the seed's formula on loudness, see
    :func:`kelly.mapping.loudness`); the part's offset puts the melody in front; section
    energy, the phrase shape and metric accents move it; above velocity 108 a soft knee
    bends everything down so nothing outside the climax bar passes 118 (124 at the climax).
    """
    shape = SHAPES.get(plan.profile, "swell")
    if plan.hints is not None:
        return _apply_with_controls(plan, tracks, shape)
    lo_all, hi_all = 127, 1
    phrase_ticks = 4 * plan.bar_ticks
    peak = climax_bar(plan)
    for track in tracks:
        offset = PART_OFFSET.get(track.name, 0)
        out = []
        for n in track.notes:
            bar = min(plan.bars - 1, n.start // plan.bar_ticks)
            params = plan.params_at_bar(bar)
            section = plan.section_at_bar(bar)
            energy = (section.energy - 0.6) * 16 if len(plan.sections) > 1 else 0.0
            x = (n.start % phrase_ticks) / phrase_ticks
            beat_pos = (n.start % plan.bar_ticks) % plan.beat_ticks
            accent = 4 if n.start % plan.bar_ticks == 0 else (2 if beat_pos == 0 else 0)
            ceiling = CLIMAX_CEILING if bar == peak else CEILING
            if track.is_drum:
                # drums carry their own accents and ghost notes; keep their relative levels
                rel = n.velocity - params.velocity
                target = params.velocity + rel + energy * 0.7 + phrase_shape(shape, x) * 0.5
                v = _soft_limit(max(1, target), ceiling)
            else:
                target = params.velocity + offset + energy + phrase_shape(shape, x) + accent
                floor = BED_FLOOR.get(track.name, params.velocity_min)
                v = _soft_limit(min(params.velocity_max, max(floor, target)), ceiling)
            v = int(round(v))
            lo_all, hi_all = min(lo_all, v), max(hi_all, v)
            out.append(n.moved(velocity=max(1, min(127, v))))
        track.notes = out
    return {"shape": shape, "climax_bar": peak + 1}


#: How far the expression controls move velocities at their extremes (velocity units).
ACCENT_RANGE, DOWNBEAT_RANGE, CRESCENDO_RANGE, ARCH_RANGE = 6, 6, 10, 10


def _apply_with_controls(plan: Plan, tracks: list[Track], shape: str) -> dict:
    """:func:`apply` with the networks' expression and groove outputs as controls (see the module docstring)."""
    ctl = controls_by_bar(plan)
    phrase_ticks = 4 * plan.bar_ticks
    peak = climax_bar(plan)
    for track in tracks:
        offset = PART_OFFSET.get(track.name, 0)
        out = []
        for n in track.notes:
            bar = min(plan.bars - 1, n.start // plan.bar_ticks)
            c = ctl[bar]
            params = plan.params_at_bar(bar)
            section = plan.section_at_bar(bar)
            energy = (section.energy - 0.6) * 16 if len(plan.sections) > 1 else 0.0
            energy *= 2 * c.groove["dynamic_contrast"]
            x = (n.start % phrase_ticks) / phrase_ticks
            shaped = (phrase_shape(shape, x) + CRESCENDO_RANGE * c.e("crescendo") * (2 * x - 1)
                      + ARCH_RANGE * c.e("phrase_arch") * (math.sin(math.pi * x) - 2 / math.pi))
            beat_pos = (n.start % plan.bar_ticks) % plan.beat_ticks
            downbeat = n.start % plan.bar_ticks == 0
            ceiling = CLIMAX_CEILING if bar == peak else CEILING
            if track.is_drum:
                rel = n.velocity - params.velocity
                target = params.velocity + rel + energy * 0.7 + shaped * 0.5
                v = _soft_limit(max(1, target), ceiling)
            else:
                accent = 4 if downbeat else (2 if beat_pos == 0 else 0)
                if beat_pos == 0:
                    accent = max(0.0, accent + ACCENT_RANGE * c.e("accent"))
                if downbeat:
                    accent += DOWNBEAT_RANGE * c.g("downbeat_accent")
                shift = 0.5 * (127.0 * c.expression["velocity_base"] - params.velocity)
                spread = 0.5 + c.expression["velocity_range"]
                target = params.velocity + shift + offset + spread * (energy + shaped + accent)
                floor = max(1.0, BED_FLOOR.get(track.name, params.velocity_min) + min(0.0, shift))
                v = _soft_limit(min(params.velocity_max + shift, max(floor, target)), ceiling)
            out.append(n.moved(velocity=max(1, min(127, int(round(v))))))
        track.notes = out
    first = ctl[0]
    return {"shape": shape, "climax_bar": peak + 1, "controls": {
        "velocity_shift": signed(0.5 * (127.0 * first.expression["velocity_base"] - plan.params.velocity)),
        "velocity_spread": signed(0.5 + first.expression["velocity_range"]),
        "beat_accent": signed(ACCENT_RANGE * first.e("accent")),
        "downbeat_accent": signed(DOWNBEAT_RANGE * first.g("downbeat_accent")),
        "crescendo_per_phrase": signed(2 * CRESCENDO_RANGE * first.e("crescendo")),
        "phrase_arch": signed(ARCH_RANGE * first.e("phrase_arch")),
        "section_contrast": signed(2 * first.groove["dynamic_contrast"]),
        **({"per_section": True} if plan.section_hints else {})}}
