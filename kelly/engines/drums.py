"""DrumGrooveEngine: the kit, General MIDI drum map on channel 10.

Plays the rhythm engine's pattern bar by bar. Section energy thins it out: quiet
sections keep only kick on one and a cross-stick, middle sections add hats, full
sections play the whole pattern with open hats and ghost snares (velocity 25–40).

With the networks' hints every groove output that concerns the kit shapes each bar as it
is written (:func:`_shape` and :func:`_bar_with_controls`; ``d`` is an output's deviation
from neutral in [-1, 1], see :class:`kelly.engines.ml_hints.Controls`):

* feel per four-bar phrase (an even share of phrases, no random draw): ``double_time``
  plays the pattern twice as fast with sixteenth hats, ``half_time`` puts the backbeat on
  beat three (below neutral, a half-time pattern gets its backbeat back), ``shuffle_hat``
  plays the shuffle figure on the hat (below neutral a shuffle straightens);
  ``ride_vs_hat`` moves the hat part to the ride (51) in the most energetic phrases (below
  neutral, a ride pattern to the closed hat in the quietest);
* step probabilities: ``kick_density`` adds kicks on free eighths or drops all but beat
  one's, ``four_on_floor`` a kick on every beat (or none on the weak beats),
  ``kick_anticipation`` the kick on the last "and", ``syncopation`` moves beat kicks an
  eighth early (or off-beat kicks away) and the hat accents to the "and"s, ``complexity``
  adds or removes odd-sixteenth hits, ``hat_density`` fills or thins the hat's eighths,
  ``subdivision`` its sixteenths, ``ghost_prob`` and ``hat_open_prob`` scale ghost snares and
  open hats, ``snare_density`` adds snares beyond the backbeat, ``space`` thins the hats and
  ghosts (or fills them), ``energy_build`` thins the start of each phrase and fills its end
  (or the reverse);
* events: ``crash_prob`` a crash (49) on phrase and section starts, ``tom_density`` floor
  toms on the last beat, ``triplet_feel`` triplet hats on some beats, ``variation`` an extra
  hit in some bars (or below neutral bars that repeat the phrase's first);
* velocities: ``backbeat_strength`` on the backbeat (±14), ``downbeat_accent`` on beat one's
  kick and crash (±12), ``energy_build`` up to ±4 across the phrase.

Without hints the kit is written exactly as it always was (no extra random draw).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import SIXTEENTH, note
from kelly.engines.context import Plan
from kelly.engines.ml_hints import controls_by_bar, share
from kelly.engines.rhythm import PATTERNS, DrumPattern, pattern_for, patterns_for
from kelly.song import DRUM_CHANNEL, Note, Role, Track

KICK, SIDE_STICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 42, 46, 49, 51
LOW_FLOOR_TOM, HIGH_FLOOR_TOM = 41, 43


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    name = pattern_for(plan)
    pat = patterns_for(plan.meter)[name]
    if plan.hints is not None:
        return _generate_with_controls(plan, rng, name, pat)
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


def _phrase_ranks(plan: Plan) -> dict[int, float]:
    """Each four-bar phrase's place by energy, 0 the most energetic … 1 the quietest (later first on ties)."""
    n = (plan.bars + 3) // 4
    energy = [np.mean([plan.energy_at_bar(b) for b in range(4 * p, min(plan.bars, 4 * p + 4))]) for p in range(n)]
    order = sorted(range(n), key=lambda p: (-energy[p], -p))
    return {p: (rank + 0.5) / n for rank, p in enumerate(order)}


def _shape(plan: Plan, name: str, pat: DrumPattern, c, bar: int, ranks: dict, count: dict) -> dict:
    """The bar's kit: step probabilities and choices after the groove outputs (see the module docstring)."""
    n = plan.steps
    beat = plan.beat_ticks // SIXTEENTH
    phrase = bar // 4
    duple = tuple(plan.meter) == (4, 4)
    kick, snare, hat, open_ = list(pat.kick), list(pat.snare), list(pat.hat), list(pat.open_hat)
    ghost = pat.ghost
    backbeat = {s for s in range(n) if pat.snare[s] >= 1.0}
    feel = "pattern"
    dt, ht, sh = c.g("double_time"), c.g("half_time"), c.g("shuffle_hat")
    if duple and dt > 0 and share(phrase, dt):
        kick = [kick[(2 * s) % n] for s in range(n)]
        snare = [snare[(2 * s) % n] for s in range(n)]
        hat, open_, ghost, feel = [1.0] * n, [0.0] * n, 0.0, "double_time"
        backbeat = {s for s in range(n) if snare[s] >= 1.0}
    elif duple and ht > 0 and name != "halftime" and share(phrase, ht):
        kick, snare, feel = list(PATTERNS["halftime"].kick), list(PATTERNS["halftime"].snare), "half_time"
        backbeat = {8}
    elif duple and ht < 0 and name == "halftime" and share(phrase, -ht):
        kick, snare, feel = list(PATTERNS["straight"].kick), list(PATTERNS["straight"].snare), "backbeat"
        backbeat = {4, 12}
    if not plan.compound and feel != "double_time":
        if sh > 0 and share(phrase + 3, sh):
            hat = [1.0 if s % 4 in (0, 3) else 0.0 for s in range(n)]
            feel = "shuffle_hat" if feel == "pattern" else feel
        elif sh < 0 and name == "shuffle" and share(phrase + 3, -sh):
            hat = [1.0 if s % 2 == 0 else 0.0 for s in range(n)]
    count[feel] = count.get(feel, 0) + 1
    ride = pat.ride
    rv = c.g("ride_vs_hat")
    if rv > 0 and not ride:
        ride = ranks[phrase] < rv
    elif rv < 0 and ride:
        ride = not (1.0 - ranks[phrase] < -rv)

    beats = [s for s in range(0, n, beat)]
    kd, ff, ka = c.g("kick_density"), c.g("four_on_floor"), c.g("kick_anticipation")
    for s in range(1, n):
        if kd > 0 and s % 2 == 0 and not kick[s] and not snare[s]:
            kick[s] = 0.5 * kd * (1.0 if s % beat == 0 else 0.6)
        elif kd < 0 and kick[s]:
            kick[s] *= 1.0 + 0.5 * kd
    for s in beats:
        if ff > 0:
            kick[s] = max(kick[s], ff)
        elif ff < 0 and s not in plan.strong_steps:
            kick[s] *= 1.0 + ff
    if ka > 0:
        kick[n - 2] = max(kick[n - 2], ka)
    elif ka < 0:
        kick[n - 2] *= 1.0 + ka
        kick[n - 1] *= 1.0 + ka
    sy = c.g("syncopation")
    if sy > 0:
        for s in beats[1:]:
            if kick[s] and not kick[s - 2] and not snare[s - 2]:
                kick[s - 2] = kick[s] * 0.5 * sy
                kick[s] *= 1.0 - 0.5 * sy
    elif sy < 0:
        for s in range(1, n):
            if s % beat and kick[s]:
                kick[s] *= 1.0 + sy
    cx = c.g("complexity")
    for s in range(1, n, 2):
        if cx > 0 and not kick[s] and not snare[s] and not snare[(s + 1) % n]:
            kick[s] = 0.12 * cx
        elif cx < 0:
            kick[s] *= 1.0 + cx
            snare[s] *= 1.0 + cx
            hat[s] *= 1.0 + cx
    hd, sb = c.g("hat_density"), c.g("subdivision")
    for s in range(n):
        if s % 2 == 0:
            if hd > 0:
                hat[s] = max(hat[s], hd)
            elif hd < 0 and s % beat:
                hat[s] *= 1.0 + hd
        else:
            if sb > 0:
                hat[s] = max(hat[s], 0.9 * sb)
            elif sb < 0:
                hat[s] *= 1.0 + sb
    ho = c.g("hat_open_prob")
    for s in range(n):
        if ho < 0:
            open_[s] *= 1.0 + ho
        elif ho > 0 and s % beat == beat // 2 and feel != "double_time":
            open_[s] = max(open_[s], 0.5 * ho)
    gp = c.g("ghost_prob")
    ghost = ghost * (1.0 + gp) if gp < 0 else ghost + (0.35 - ghost) * gp if ghost or gp else ghost
    sd = c.g("snare_density")
    extra = [0.0] * n
    for s in range(1, n):
        if sd > 0 and s % 2 == 0 and s % beat and not snare[s] and not kick[s]:
            extra[s] = 0.25 * sd
        elif sd < 0 and snare[s] and s not in backbeat:
            snare[s] *= 1.0 + sd
    if sd < 0:
        ghost *= 1.0 + 0.5 * sd
    sp = c.g("space")
    eb = c.g("energy_build")
    x = (bar % 4 + 0.5) / 4  # where the bar lies in its phrase
    build = max(0.0, 1.0 + 1.2 * eb * (x - 0.5))
    for s in range(n):
        if hat[s]:
            h = hat[s] * (1.0 - 0.5 * sp) if sp > 0 else hat[s] + (1.0 - hat[s]) * -sp if sp < 0 else hat[s]
            hat[s] = min(1.0, h * build) if s % beat else h
        extra[s] = min(1.0, extra[s] * build)
        open_[s] = min(1.0, open_[s] * build)
    ghost = min(1.0, ghost * (1.0 - sp if sp > 0 else 1.0) * build)
    return {"kick": kick, "snare": snare, "hat": hat, "open": open_, "ghost": ghost, "extra": extra,
            "ride": ride, "backbeat": backbeat, "feel": feel, "build": eb * (x - 0.5)}


def _bar_with_controls(plan: Plan, bar: int, k: dict, c, energy: float, rng: np.random.Generator,
                       count: dict) -> list[Note]:
    """One bar of the kit from its shaped pattern ``k`` (:func:`_shape`) and the bar's controls ``c``."""
    n = plan.steps
    beat = plan.beat_ticks // SIXTEENTH
    base = bar * plan.bar_ticks
    vel = plan.params_at_bar(bar).velocity + int(round(12 * k["build"]))
    bb, da, sy = c.g("backbeat_strength"), c.g("downbeat_accent"), c.g("syncopation")
    notes: list[Note] = []
    # beats whose hats become triplets, and a tom figure on the last beat
    triplets = set()
    tf = c.g("triplet_feel")
    if tf > 0 and not plan.compound and energy >= 0.5:
        triplets = {b for b in range(n // beat) if rng.random() < 0.6 * tf}
    td = c.g("tom_density")
    toms = td > 0 and energy >= 0.5 and n // beat > 1 and rng.random() < 0.5 * td
    crash = False
    cp = c.g("crash_prob")
    section = plan.section_at_bar(bar)
    if cp > 0 and bar > 0 and (bar % 4 == 0 or section.start_bar == bar):
        seam = section.start_bar == bar
        prev = plan.section_at_bar(bar - 1)
        if not (seam and "transitions" in plan.layers and section.energy - prev.energy > 0.15):
            crash = rng.random() < (min(1.0, 2 * cp) if seam else cp)  # the transition crashes on a rising seam
    hat_pitch = RIDE if k["ride"] else CLOSED_HAT
    for s in range(n):
        t = base + s * SIXTEENTH
        kick = k["kick"][s]
        if kick and rng.random() < kick and (energy >= 0.5 or s == 0):
            notes.append(note(t, KICK, 100, vel + 8 + (int(round(12 * da)) if s == 0 else 0)))
        if k["snare"][s] and rng.random() < k["snare"][s]:
            accent = int(round(14 * bb)) if s in k["backbeat"] else 0
            notes.append(note(t, SNARE if energy >= 0.5 else SIDE_STICK, 100, vel + 4 + accent))
        elif energy >= 0.6 and k["ghost"] and not k["kick"][s] and rng.random() < k["ghost"]:
            notes.append(note(t, SNARE, 60, 25 + rng.integers(0, 16)))
            count["ghost_snares"] += 1
        elif energy >= 0.5 and k["extra"][s] and rng.random() < k["extra"][s]:
            notes.append(note(t, SNARE, 90, vel - 10))
            count["extra_snares"] += 1
        # the hat, then the open hat, drawn in the order the plain kit draws them (an open hat replaces
        # the closed one it would have sounded with: one hand, one hi-hat)
        tom_here = toms and s >= n - beat and s % 2 == 0
        hit = not tom_here and s // beat not in triplets and not (crash and s == 0) and k["hat"][s] and \
            rng.random() < k["hat"][s]
        opened = not tom_here and energy >= 0.8 - 0.3 * max(0.0, c.g("hat_open_prob")) and k["open"][s] and \
            rng.random() < k["open"][s]
        if tom_here:
            notes.append(note(t, HIGH_FLOOR_TOM if s == n - beat else LOW_FLOOR_TOM, 120, vel - 6))
            count["toms"] += 1
        elif opened:
            notes.append(note(t, OPEN_HAT, 200, vel - 15))
            count["open_hats"] += 1
        elif hit:
            on_beat, on_and = s % 4 == 0, s % beat == beat // 2
            accent = 8 * (1.0 - max(0.0, sy)) if on_beat else 12 * max(0.0, sy) if on_and else 0.0
            notes.append(note(t, hat_pitch, 80, vel - 22 + int(round(accent))))
            count["ride" if k["ride"] else "hats"] += 1
    for b in sorted(triplets):
        start = base + b * plan.beat_ticks
        for j in range(3):
            notes.append(note(start + j * plan.beat_ticks // 3, hat_pitch, 70, vel - 22 + (6 if j == 0 else 0)))
        count["triplet_beats"] += 1
    if crash:
        notes.append(note(base, CRASH, 2 * plan.beat_ticks, vel + 10 + int(round(12 * da))))
        count["crashes"] += 1
    va = c.g("variation")
    if va > 0 and energy >= 0.5 and rng.random() < 0.6 * va:
        taken = {m.start for m in notes if m.pitch in (KICK, SNARE)}
        free = [s for s in range(n // 2, n) if base + s * SIXTEENTH not in taken]
        if free:
            s = free[int(rng.integers(len(free)))]
            notes.append(note(base + s * SIXTEENTH, KICK if s % 2 == 0 else SNARE, 90,
                              vel - (2 if s % 2 == 0 else 12)))
            count["variations"] += 1
    return notes


def _generate_with_controls(plan: Plan, rng: np.random.Generator, name: str, pat: DrumPattern) -> tuple[Track, dict]:
    """The kit with the groove outputs as controls, bar by bar (see the module docstring)."""
    ctl = controls_by_bar(plan)
    ranks = _phrase_ranks(plan)
    count = {key: 0 for key in ("hats", "ride", "open_hats", "ghost_snares", "extra_snares", "toms", "crashes",
                                "triplet_beats", "variations", "repeated_bars")}
    feels: dict = {}
    firsts: dict[int, tuple[float, list]] = {}  # each phrase's first bar, for bars that repeat it
    notes: list[Note] = []
    for bar in range(plan.bars):
        if not plan.layer_on("drums", bar):
            continue
        c = ctl[bar]
        energy = plan.energy_at_bar(bar) if len(plan.sections) > 1 else 0.7
        base = bar * plan.bar_ticks
        vel = plan.params_at_bar(bar).velocity
        phrase = bar // 4
        va = c.g("variation")
        if va < 0 and bar % 4 and phrase in firsts and firsts[phrase][0] == energy and rng.random() < -va:
            notes += [note(base + off, pitch, dur, vel + rel) for off, pitch, dur, rel in firsts[phrase][1]]
            count["repeated_bars"] += 1
            continue
        shaped = _shape(plan, name, pat, c, bar, ranks, feels)
        bar_notes = _bar_with_controls(plan, bar, shaped, c, energy, rng, count)
        if bar % 4 == 0:
            firsts[phrase] = (energy, [(m.start - base, m.pitch, m.duration, m.velocity - vel)
                                       for m in bar_notes if m.pitch != CRASH])
        notes += bar_notes
    notes.sort()
    kick_bars = [sum(1 for m in notes if m.pitch == KICK and m.start // plan.bar_ticks == b) for b in range(plan.bars)]
    played = [k for b, k in enumerate(kick_bars) if plan.layer_on("drums", b)]
    return Track("Drums", 0, DRUM_CHANNEL, notes, Role.DRUMS), {
        "pattern": name, "controls": {**count, "feel_bars": feels,
                                      "kicks_per_bar": round(float(np.mean(played)), 2) if played else 0.0}}
