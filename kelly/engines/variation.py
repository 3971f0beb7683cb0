"""VariationEngine: repeated sections come back changed.

When a section name returns (the second verse, the last chorus) the second half of its
melody is varied (the first half restates the section as it was first heard) by a
technique chosen by profile (§6.5: grief prefers simplification and
fragmentation): ornamentation (a scale neighbour before a note), octave lift for the
final chorus, rhythmic displacement by an eighth, fragmentation (dropping every other
weak note) or simplification (keeping strong-beat notes only).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.common import scale_pitches
from kelly.engines.context import Plan
from kelly.song import Note, Track

TECHNIQUES = {"grief": ("simplification", "fragmentation"), "sadness": ("fragmentation", "ornamentation"),
              "nostalgia": ("ornamentation",), "peace": ("simplification",), "love": ("ornamentation", "octave_lift"),
              "hope": ("octave_lift", "ornamentation"), "joy": ("octave_lift", "displacement"),
              "anger": ("displacement", "fragmentation"), "fear": ("fragmentation", "displacement"),
              "anxiety": ("displacement", "ornamentation"), "tension": ("displacement",),
              "neutral": ("ornamentation", "displacement")}


def _vary(notes: list[Note], technique: str, plan: Plan, rng: np.random.Generator) -> list[Note]:
    if technique == "octave_lift":
        return [n.moved(pitch=n.pitch + 12) if n.pitch + 12 <= 88 else n for n in notes]
    if technique == "displacement":
        end = max((n.end for n in notes), default=0)
        return [n.moved(start=n.start + 240, duration=max(60, min(n.duration, end - n.start - 240)))
                for n in notes[:-1] if n.start + 240 < end] + notes[-1:]
    if technique == "fragmentation":
        return [n for k, n in enumerate(notes) if (n.start % plan.bar_ticks) % (2 * plan.beat_ticks) == 0
                or k % 2 == 0 or k == len(notes) - 1]
    if technique == "simplification":
        keep = [n for n in notes if (n.start % plan.bar_ticks) % plan.beat_ticks == 0]
        return keep or notes
    if technique == "ornamentation":
        out = []
        for n in notes:
            if n.duration >= 480 and rng.random() < 0.4:
                bar = n.start // plan.bar_ticks
                scale = scale_pitches(plan.params_at_bar(bar).key, n.pitch + 1, n.pitch + 3)
                if scale:
                    out.append(n.moved(duration=120, pitch=scale[0]))
                    out.append(n.moved(start=n.start + 120, duration=n.duration - 120))
                    continue
            out.append(n)
        return out
    raise ValueError(f"unknown variation {technique!r}")


def apply(plan: Plan, melody: Track, rng: np.random.Generator) -> dict:
    """Vary the melody in every repeated section; returns which technique went where."""
    choices = TECHNIQUES.get(plan.profile, TECHNIQUES["neutral"])
    seen: set[str] = set()
    applied = []
    notes = list(melody.notes)
    for idx, section in enumerate(plan.sections):
        if section.name not in seen:
            seen.add(section.name)
            continue
        technique = choices[int(rng.integers(len(choices)))]
        if technique == "octave_lift" and idx != max(i for i, s in enumerate(plan.sections) if s.name == section.name):
            technique = choices[-1] if choices[-1] != "octave_lift" else "ornamentation"
        # the first half comes back as it was (so the listener recognises the section); the second
        # half is varied (an octave lift still lifts the whole section: it keeps every interval)
        half = section.start_bar + (0 if technique == "octave_lift" else section.bars // 2)
        lo, hi = half * plan.bar_ticks, section.end_bar * plan.bar_ticks
        inside = [n for n in notes if lo <= n.start < hi]
        outside = [n for n in notes if not lo <= n.start < hi]
        if not inside:
            continue
        notes = sorted(outside + _vary(inside, technique, plan, rng))
        applied.append({"section": section.name, "start_bar": section.start_bar + 1, "from_bar": half + 1,
                        "technique": technique})
    melody.notes = notes
    return {"variations": applied}
