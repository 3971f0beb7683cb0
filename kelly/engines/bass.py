"""BassEngine: the bass line under the chords.

Patterns (§6.5): pedal, root-only, root-fifth, walking, driving, pulsing, syncopated,
breathing, descending. Each profile has its preferred patterns; the bass plays the
chord's bass note (slash chords included) in octave two, approaches the next root by
step when walking, and leaves space where the emotion breathes.
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
                notes.append(note(start, pitch, dur, velocity))
    return Track("Bass", PROGRAM.get(plan.profile, 33), 2, notes, Role.BASS), {"patterns": used}

