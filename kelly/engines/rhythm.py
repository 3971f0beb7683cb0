"""RhythmEngine: the 16-step patterns the kit plays, and an auxiliary percussion part.

Patterns per profile follow the original's (§6.5: grief has kick on steps 0 and 8, snare
on 4 and 12, sparse hats), adjusted by groove type: halftime puts the snare on beat 3,
syncopated adds off-beat kicks. Step values are probabilities (1 = always).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kelly.engines.common import SIXTEENTH, note
from kelly.engines.context import Plan
from kelly.song import DRUM_CHANNEL, Note, Role, Track


@dataclass(frozen=True)
class DrumPattern:
    kick: tuple[float, ...]
    snare: tuple[float, ...]
    hat: tuple[float, ...]
    open_hat: tuple[float, ...]
    ghost: float  # probability of a ghost snare on an empty 16th
    ride: bool = False


def _steps(*on: int, p: float = 1.0, n: int = 16) -> tuple[float, ...]:
    return tuple(p if s in on else 0.0 for s in range(n))


PATTERNS = {
    "halftime": DrumPattern(_steps(0, 10), _steps(8), _steps(0, 4, 8, 12, p=0.6), _steps(), 0.08),
    "straight": DrumPattern(_steps(0, 8), _steps(4, 12), _steps(0, 2, 4, 6, 8, 10, 12, 14), _steps(14, p=0.3), 0.1),
    "swing": DrumPattern(_steps(0, 8), _steps(4, 12), _steps(0, 4, 6, 8, 12, 14), _steps(), 0.12, ride=True),
    "shuffle": DrumPattern(_steps(0, 10), _steps(4, 12), _steps(0, 3, 4, 7, 8, 11, 12, 15), _steps(), 0.1),
    "syncopated": DrumPattern(tuple(1.0 if s in (0, 3, 8) else 0.5 if s in (6, 11, 14) else 0.0 for s in range(16)),
                              _steps(4, 12), tuple(1.0 if s % 2 == 0 else 0.4 for s in range(16)),
                              _steps(6, 14, p=0.4), 0.2),
    "driving": DrumPattern(_steps(0, 4, 8, 12), _steps(4, 12), tuple(1.0 for _ in range(16)), _steps(2, 10, p=0.5),
                           0.05),
}


#: Triple metres (12 sixteenths a bar). 3/4: the kick on one, the backbeat on two and three;
#: 6/8: two dotted-quarter beats, the kick on one, the snare on four, eighths on the hat.
_WALTZ = DrumPattern(_steps(0, n=12), _steps(4, 8, n=12), _steps(0, 2, 4, 6, 8, 10, p=0.8, n=12), _steps(n=12), 0.08)
_WALTZ_SOFT = DrumPattern(_steps(0, n=12), _steps(8, n=12), _steps(0, 4, 8, p=0.7, n=12), _steps(n=12), 0.05)
_SIX_EIGHT = DrumPattern(tuple(1.0 if s == 0 else 0.4 if s == 10 else 0.0 for s in range(12)), _steps(6, n=12),
                         _steps(0, 2, 4, 6, 8, 10, n=12), _steps(n=12), 0.08)
_SIX_EIGHT_SOFT = DrumPattern(_steps(0, n=12), _steps(6, p=0.8, n=12), _steps(0, 6, p=0.7, n=12), _steps(n=12), 0.04)
PATTERNS_34 = {name: (_WALTZ_SOFT if name in ("halftime", "shuffle") else _WALTZ) for name in PATTERNS}
PATTERNS_68 = {name: (_SIX_EIGHT_SOFT if name in ("halftime", "shuffle") else _SIX_EIGHT) for name in PATTERNS}


def patterns_for(meter: tuple[int, int]) -> dict:
    """The kit patterns for a metre (every metre offers the same pattern names)."""
    return {(3, 4): PATTERNS_34, (6, 8): PATTERNS_68}.get(tuple(meter), PATTERNS)


def pattern_for(plan: Plan) -> str:
    """Pattern name: halftime for grief/sadness, driving for rage-like arousal, else the groove type."""
    if plan.profile in ("grief", "sadness") or (plan.emotion.valence < -0.5 and plan.emotion.arousal < 0.4):
        return "halftime"
    if plan.emotion.arousal > 0.85 and plan.profile in ("anger", "fear", "joy"):
        return "driving"
    return plan.params.groove if plan.params.groove in PATTERNS else "straight"


def percussion(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    """Shaker (70) on 8ths/16ths, tambourine (54) on the backbeat, claps (39) for bright energy.

    With the networks' hints (each bar its own): ``subdivision`` beyond ±1/3 sets the
    shaker's grid (sixteenths above, eighths below; else arousal decides);
    ``percussion_density`` above neutral adds a tambourine on the off-beat eighths
    (probability ``d``), below it drops off-beat shaker notes (probability ``|d|``).
    """
    if plan.hints is not None:
        return _percussion_with_controls(plan, rng)
    notes: list[Note] = []
    sixteenths = plan.emotion.arousal > 0.7
    beat_steps = plan.beat_ticks // SIXTEENTH
    backbeat = (4, 12) if plan.meter == (4, 4) else tuple(range(beat_steps, plan.steps, beat_steps))
    for bar in range(plan.bars):
        if not plan.layer_on("rhythm", bar):
            continue
        base = bar * plan.bar_ticks
        vel = plan.params_at_bar(bar).velocity
        for s in range(0, plan.steps, 1 if sixteenths else 2):
            accent = 10 if s % beat_steps == beat_steps // 2 else 0
            notes.append(note(base + s * SIXTEENTH, 70, 60, vel - 30 + accent + rng.integers(-4, 5)))
        for s in backbeat:
            notes.append(note(base + s * SIXTEENTH, 39 if plan.emotion.valence > 0.3 else 54, 60, vel - 12))
    return Track("Percussion", 0, DRUM_CHANNEL, notes, Role.PERCUSSION), {"shaker": "16ths" if sixteenths else "8ths"}


def _percussion_with_controls(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    """:func:`percussion` with ``subdivision`` and ``percussion_density`` as controls."""
    from kelly.engines.ml_hints import controls_by_bar

    ctl = controls_by_bar(plan)
    notes: list[Note] = []
    beat_steps = plan.beat_ticks // SIXTEENTH
    backbeat = (4, 12) if plan.meter == (4, 4) else tuple(range(beat_steps, plan.steps, beat_steps))
    grids, shaker_dropped, tambourines = set(), 0, 0
    for bar in range(plan.bars):
        if not plan.layer_on("rhythm", bar):
            continue
        c = ctl[bar]
        sb, pd = c.g("subdivision"), c.g("percussion_density")
        sixteenths = True if sb > 1 / 3 else False if sb < -1 / 3 else plan.emotion.arousal > 0.7
        grids.add("16ths" if sixteenths else "8ths")
        base = bar * plan.bar_ticks
        vel = plan.params_at_bar(bar).velocity
        for s in range(0, plan.steps, 1 if sixteenths else 2):
            accent = 10 if s % beat_steps == beat_steps // 2 else 0
            jitter = rng.integers(-4, 5)
            if pd < 0 and s % beat_steps and rng.random() < -pd:
                shaker_dropped += 1
                continue
            notes.append(note(base + s * SIXTEENTH, 70, 60, vel - 30 + accent + jitter))
        clap = 39 if plan.emotion.valence > 0.3 else 54
        for s in backbeat:
            notes.append(note(base + s * SIXTEENTH, clap, 60, vel - 12))
        if pd > 0:
            for s in range(beat_steps // 2, plan.steps, beat_steps):
                if s not in backbeat and rng.random() < pd:
                    notes.append(note(base + s * SIXTEENTH, 54, 60, vel - 18))
                    tambourines += 1
    notes.sort()
    return Track("Percussion", 0, DRUM_CHANNEL, notes, Role.PERCUSSION), {
        "shaker": "/".join(sorted(grids)) or ("16ths" if plan.emotion.arousal > 0.7 else "8ths"),
        "controls": {"shaker_notes_dropped": shaker_dropped, "tambourines_added": tambourines}}
