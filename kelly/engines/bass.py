"""BassEngine: the bass line under the chords.

Patterns (§6.5): pedal, root-only, root-fifth, walking, driving, pulsing, syncopated,
breathing, descending. Each profile has its preferred patterns; the bass plays the
chord's bass note (slash chords included) in octave two, approaches the next root by
step when walking, and leaves space where the emotion breathes.

With the networks' hints: ``space`` above neutral shortens each note to ``1 − d/2`` of its
length as it is written (air between the notes); below neutral the notes are lengthened
towards the next once the melody is fitted (:func:`fill_space`: legato, never into a minor
second with the melody); ``bass_lock`` is applied once the kit is written
(:func:`lock_to_kick`).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import SIXTEENTH, nearest_pc, note
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

PATTERNS = {
    "grief": ("breathing", "pedal", "root"),
    "sadness": ("root", "breathing"),
    "nostalgia": ("root_fifth", "root"),
    "peace": ("pedal", "root"),
    "love": ("root_fifth", "walking"),
    "hope": ("root_fifth", "driving"),
    "joy": ("driving", "syncopated"),
    "anger": ("driving", "syncopated"),
    "fear": ("pulsing", "syncopated"),
    "anxiety": ("pulsing", "syncopated"),
    "tension": ("syncopated", "pulsing"),
    "neutral": ("root_fifth", "root"),
}
PROGRAM = {"anger": 34, "fear": 38, "anxiety": 38, "joy": 33, "tension": 38, "peace": 32, "grief": 32}

# (step in 16ths, length in 16ths, degree: 0 root, 1 fifth, 2 octave, 3 approach)
RHYTHMS = {
    "pedal": [(0, 16, 0)],
    "root": [(0, 8, 0), (8, 8, 0)],
    "breathing": [(0, 12, 0)],
    "root_fifth": [(0, 6, 0), (6, 2, 0), (8, 8, 1)],
    "walking": [(0, 4, 0), (4, 4, 1), (8, 4, 2), (12, 4, 3)],
    "driving": [(s, 2, 0) for s in range(0, 16, 2)],
    "pulsing": [(s, 1, 0) for s in range(0, 16, 2)],
    "syncopated": [(0, 3, 0), (3, 3, 0), (6, 2, 1), (10, 3, 0), (14, 2, 2)],
}


#: Triple metres: 3/4 (beats on steps 0, 4, 8) and 6/8 (dotted-quarter beats on 0 and 6).
RHYTHMS_34 = {
    "pedal": [(0, 12, 0)], "root": [(0, 12, 0)], "breathing": [(0, 8, 0)],
    "root_fifth": [(0, 4, 0), (4, 4, 1), (8, 4, 1)], "walking": [(0, 4, 0), (4, 4, 1), (8, 4, 3)],
    "driving": [(s, 2, 0) for s in range(0, 12, 2)], "pulsing": [(s, 1, 0) for s in range(0, 12, 2)],
    "syncopated": [(0, 3, 0), (3, 3, 0), (6, 2, 1), (10, 2, 2)],
}
RHYTHMS_68 = {
    "pedal": [(0, 12, 0)], "root": [(0, 6, 0), (6, 6, 0)], "breathing": [(0, 10, 0)],
    "root_fifth": [(0, 6, 0), (6, 6, 1)], "walking": [(0, 6, 0), (6, 4, 1), (10, 2, 3)],
    "driving": [(s, 2, 0) for s in range(0, 12, 2)], "pulsing": [(s, 1, 0) for s in range(0, 12, 2)],
    "syncopated": [(0, 4, 0), (4, 2, 1), (6, 4, 0), (10, 2, 2)],
}


def rhythms_for(meter: tuple[int, int]) -> dict:
    return {(3, 4): RHYTHMS_34, (6, 8): RHYTHMS_68}.get(tuple(meter), RHYTHMS)


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    from kelly.engines.ml_hints import controls_by_bar

    ctl = controls_by_bar(plan)
    spaced = 0
    choices = PATTERNS.get(plan.profile, PATTERNS["neutral"])
    table = rhythms_for(plan.meter)
    if plan.params.groove == "swing" and plan.complexity > 0.6:
        choices = ("walking",) + choices
    notes: list[Note] = []
    used = []
    for section in plan.sections:
        pattern = choices[0] if section.energy >= 0.5 or len(choices) == 1 else choices[int(rng.integers(len(choices)))]
        if section.energy >= 0.9 and "driving" not in choices[:1] and plan.emotion.arousal > 0.55:
            pattern = "driving"
        used.append({"section": section.name, "pattern": pattern})
        # intros and outros sit on a tonic pedal: the home note is heard before the harmony moves
        pedal = section.name in ("intro", "outro", "emergence", "dissolve") and len(plan.sections) > 1
        if pedal and section is plan.sections[-1] and plan.rule("HARMONY_AvoidTonicResolution") > 0:
            pedal = False  # the ending must not come home, not even in the bass
        if pedal:
            used[-1]["pedal"] = "tonic"
        for bar in range(section.start_bar, section.end_bar):
            if not plan.layer_on("bass", bar):
                continue
            event = plan.chord_at(bar * plan.bar_ticks)
            key_here = plan.params_at_bar(bar).key
            root = nearest_pc(key_here.tonic_pc if pedal else event.chord.bass_pc, 40)
            fifth = root + 7 if root + 7 <= 52 else root - 5
            nxt = plan.chord_at((bar + 1) * plan.bar_ticks) if bar + 1 < plan.bars else event
            next_root = nearest_pc(nxt.chord.bass_pc, root)
            approach = next_root - 1 if next_root > root else next_root + 1
            velocity = plan.params_at_bar(bar).velocity
            if bar == plan.bars - 1 and plan.rule("HARMONY_AvoidTonicResolution") <= 0:
                # the last bar: the final chord's bass, held, so the piece ends on its root (or on the
                # bass note the chord asks for), never on a passing fifth
                notes.append(note(bar * plan.bar_ticks, root, int(plan.bar_ticks * 0.95), velocity))
                continue
            for step, length, degree in table[pattern]:
                start = bar * plan.bar_ticks + step * SIXTEENTH
                here = plan.chord_at(start)
                if here is not event and not pedal:
                    # a bar with two chords: the second half follows its own chord's bass
                    root = nearest_pc(here.chord.bass_pc, 40)
                    fifth = root + 7 if root + 7 <= 52 else root - 5
                pitch = (root, fifth, root + 12 if root + 12 <= 55 else root, approach)[degree]
                if pattern == "breathing" and rng.random() < 0.15:
                    continue
                dur = int(length * SIXTEENTH * (0.9 if length > 2 else 0.8))
                if ctl[bar] is not None and ctl[bar].g("space") > 0:
                    new = max(SIXTEENTH // 2, int(dur * (1 - 0.5 * ctl[bar].g("space"))))
                    spaced += new != dur
                    dur = new
                notes.append(note(start, pitch, dur, velocity))
    info = {"patterns": used}
    if plan.hints is not None:
        info["controls"] = {"notes_spaced": spaced}
    return Track("Bass", PROGRAM.get(plan.profile, 33), 2, notes, Role.BASS), info


def fill_space(plan: Plan, bass: Track, space: list[float | None], *, avoid=None, margin: int = 70) -> int:
    """Below-neutral ``space``: each bass note held on towards the next (``|d|`` of the gap, up to 10 ticks
    before it), unless held on it would sound a minor second against ``avoid`` (the melody, within
    ``margin`` ticks of the humanizer's drift). Changes ``bass`` in place; returns how many notes grew."""
    notes = sorted(bass.notes)
    grown = 0
    for k, n in enumerate(notes):
        d = space[min(len(space) - 1, n.start // plan.bar_ticks)] if space else None
        if not d or d >= 0 or k + 1 >= len(notes):
            continue
        gap = notes[k + 1].start - 10 - n.end
        if gap <= 0:
            continue
        dur = n.duration + int(gap * -d)
        if avoid is not None and avoid.clashes(n.pitch, n.start, n.start + dur + margin) and \
                not avoid.clashes(n.pitch, n.start, n.end):
            continue
        notes[k] = n.moved(duration=dur)
        grown += 1
    bass.notes = notes
    return grown


def lock_to_kick(plan: Plan, bass: Track, kicks: list[int], lock: list[float | None],
                 rng: np.random.Generator, *, avoid=None) -> dict:
    """Let the bass follow the kick (``bass_lock`` above neutral) or sustain through it (below).

    ``lock[bar]`` is the bar's ``bass_lock`` deviation (None without hints). With
    probability ``d`` a bar's bass is re-struck on the kick's onsets (plus beat one and any
    change of chord, so the harmony is never late), each note holding to the next onset,
    its pitch the one the bass line had there; with probability ``|d|`` below neutral the
    bar's repeated notes are tied into long ones. The last bar (the held ending) is left
    alone, and so is a bar where the change would add a minor second against ``avoid``
    (the melody, a :class:`kelly.engines.ml_hints.Sounding`). Changes ``bass`` in place;
    returns what was done.
    """
    locked = tied = kept = 0
    kicks = sorted(kicks)
    for bar in range(plan.bars - 1):
        d = lock[bar] if bar < len(lock) else None
        if not d:
            continue
        lo, hi = bar * plan.bar_ticks, (bar + 1) * plan.bar_ticks
        here = sorted(n for n in bass.notes if lo <= n.start < hi)
        if not here or rng.random() >= abs(d):
            continue
        rest = [n for n in bass.notes if not lo <= n.start < hi]
        if d > 0:
            onsets = {lo} | {k for k in kicks if lo <= k < hi} | {e.start for e in plan.chords if lo < e.start < hi}
            onsets = sorted(onsets)
            if onsets == [n.start for n in here]:
                continue
            new = []
            for k, t in enumerate(onsets):
                event = plan.chord_at(t)
                same = [n for n in here if plan.chord_at(n.start) is event]
                sounding = [n for n in same if n.start <= t] or same
                if not sounding:
                    continue
                src = sounding[-1]
                end = onsets[k + 1] if k + 1 < len(onsets) else hi
                new.append(src.moved(start=t, duration=max(SIXTEENTH // 2, int((end - t) * 0.9))))
            if avoid is not None and avoid.count(new) > avoid.count(here):
                kept += 1
                continue
            bass.notes = sorted(rest + new)
            locked += 1
        else:
            merged: list[Note] = []
            for n in here:
                prev = merged[-1] if merged else None
                if prev is not None and prev.pitch == n.pitch and plan.chord_at(prev.start) is plan.chord_at(n.start):
                    merged[-1] = prev.moved(duration=n.end - prev.start)
                else:
                    merged.append(n)
            if len(merged) < len(here):
                if avoid is not None and avoid.count(merged) > avoid.count(here):
                    kept += 1
                    continue
                bass.notes = sorted(rest + merged)
                tied += 1
    return {"bars_locked_to_kick": locked, "bars_tied": tied, "bars_kept_for_harmony": kept}

