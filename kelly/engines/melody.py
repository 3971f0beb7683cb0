"""MelodyEngine: the lead line.

Per profile (§6.5): contour shapes, notes per bar, rest probability, legato, GM
instrument and leap size. The line is built in four-bar phrases from a two-bar motif
(so it is memorable, not a random walk): the motif's rhythm repeats, its pitches follow
the phrase contour, strong beats prefer chord tones, and each phrase ends on a long
chord tone — the last one on the tonic. When the melody network runs, its note
probabilities weight the choice among the scale's pitches (never outside the key).
"""

from __future__ import annotations

import math

import numpy as np

from kelly.engines.common import SIXTEENTH, choose, nearest_pc, note, scale_pitches
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

#: contours, notes per bar (lo, hi), rest probability, legato, GM program, leap size (semitones)
PROFILES = {
    "grief": (("descending", "spiral_down", "collapse"), (2, 4), 0.3, 0.9, 0, 3),
    "sadness": (("descending", "arch", "wave"), (3, 5), 0.25, 0.85, 0, 4),
    "nostalgia": (("wave", "arch"), (3, 6), 0.2, 0.85, 65, 4),
    "peace": (("static", "wave", "arch"), (2, 4), 0.25, 0.95, 73, 3),
    "love": (("arch", "wave"), (3, 6), 0.15, 0.9, 73, 5),
    "hope": (("ascending", "arch", "spiral_up"), (4, 7), 0.1, 0.8, 0, 5),
    "joy": (("ascending", "arch", "wave"), (5, 8), 0.08, 0.7, 80, 7),
    "anger": (("jagged", "ascending", "collapse"), (6, 10), 0.05, 0.45, 30, 9),
    "fear": (("jagged", "spiral_up", "static"), (5, 9), 0.12, 0.5, 81, 8),
    "anxiety": (("wave", "jagged", "static"), (5, 9), 0.15, 0.6, 71, 6),
    "tension": (("inverse_arch", "jagged"), (4, 8), 0.15, 0.6, 81, 7),
    "neutral": (("wave", "arch"), (3, 6), 0.15, 0.8, 0, 5),
}


def contour_value(shape: str, x: float) -> float:
    """Target height in [-1, 1] at phrase position ``x`` in [0, 1]."""
    return {
        "ascending": -0.8 + 1.6 * x,
        "descending": 0.8 - 1.6 * x,
        "arch": -0.6 + 1.4 * math.sin(math.pi * x),
        "inverse_arch": 0.6 - 1.4 * math.sin(math.pi * x),
        "static": 0.1 * math.sin(6 * x),
        "wave": 0.7 * math.sin(2 * math.pi * x),
        "spiral_down": 0.8 - 1.6 * x + 0.35 * math.sin(4 * math.pi * x),
        "spiral_up": -0.8 + 1.6 * x + 0.35 * math.sin(4 * math.pi * x),
        "jagged": 0.9 * (1 if int(x * 8) % 2 else -1) * (0.4 + 0.6 * x),
        "collapse": 0.8 if x < 0.7 else 0.8 - 5 * (x - 0.7),
    }[shape]


_BEAT_WEIGHT = np.array([8, 1, 2, 1, 4, 1, 2, 1, 6, 1, 2, 1, 4, 1, 2, 1], dtype=float)


def motif_rhythm(n_notes: int, rng: np.random.Generator, *, grid: int = 2) -> list[int]:
    """Onsets (16th steps 0–15) for one bar with ``n_notes`` notes; beat one always sounds."""
    steps = list(range(0, 16, grid))
    n = max(1, min(n_notes, len(steps)))
    weights = _BEAT_WEIGHT[steps].copy()
    weights[0] = 0
    picked = {0}
    if n > 1:
        others = rng.choice([s for s in steps if s != 0], size=n - 1, replace=False,
                            p=weights[1:] / weights[1:].sum())
        picked.update(int(s) for s in others)
    return sorted(picked)


def register_centre(plan: Plan, bar: int = 0) -> int:
    params = plan.params_at_bar(bar)
    emo = plan.emotion_at_bar(bar)
    centre = 12 * (params.register_octave + 1) + 5 + int(round(4 * (emo.arousal - 0.5)))
    return max(57, min(79, centre))


def _hint_weights(plan: Plan, pitches: list[int]) -> np.ndarray:
    hints = plan.hints
    if hints is None:
        return np.ones(len(pitches))
    from kelly.ml.schema import transpose_note_probs

    # the network's probabilities are in the key of C; move them to this key
    probs = np.asarray(transpose_note_probs(np.asarray(hints.note_probs), plan.key.tonic_pc), dtype=float)
    w = np.array([probs[p] if 0 <= p < len(probs) else 0.0 for p in pitches])
    # Blend with uniform so the network shapes but never silences the scale.
    return 0.5 + w / (w.max() + 1e-9)


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    """Write the melody; returns the track and what was chosen."""
    contours, (lo_n, hi_n), rest_p, legato, program, leap = PROFILES.get(plan.profile, PROFILES["neutral"])
    notes: list[Note] = []
    bar_ticks = plan.bar_ticks
    chosen_contours = []
    density = plan.params.density
    motif: list[int] | None = None
    prev_pitch: int | None = None
    for phrase_start in range(0, plan.bars, 4):
        phrase_bars = min(4, plan.bars - phrase_start)
        shape = contours[int(rng.integers(len(contours)))]
        chosen_contours.append(shape)
        section = plan.section_at_bar(phrase_start)
        energy = section.energy if len(plan.sections) > 1 else 0.6
        n_per_bar = int(round(lo_n + (hi_n - lo_n) * min(1.0, density * (0.6 + 0.6 * energy))))
        grid = 1 if n_per_bar > 8 else 2
        if motif is None or phrase_start % 8 == 0:
            motif = motif_rhythm(n_per_bar, rng, grid=grid)
        for b in range(phrase_bars):
            bar = phrase_start + b
            if not plan.layer_on("melody", bar):
                prev_pitch = None
                continue
            params = plan.params_at_bar(bar)
            centre = register_centre(plan, bar)
            pitches = scale_pitches(params.key, centre - 10, centre + 10)
            hint_w = _hint_weights(plan, pitches)
            last_bar_of_phrase = b == phrase_bars - 1
            onsets = motif if b % 2 == 0 else motif_rhythm(n_per_bar, rng, grid=grid)
            if last_bar_of_phrase:
                onsets = [s for s in onsets if s <= 8][:3] or [0]
            for k, step in enumerate(onsets):
                start = bar * bar_ticks + step * SIXTEENTH
                nxt = onsets[k + 1] * SIXTEENTH if k + 1 < len(onsets) else 16 * SIXTEENTH
                span = nxt - step * SIXTEENTH
                is_last = last_bar_of_phrase and k == len(onsets) - 1
                if not is_last and k > 0 and rng.random() < rest_p:
                    continue
                event = plan.chord_at(start)
                chord_pcs = set(event.chord.pitch_classes())
                tonic_pc = params.key.tonic_pc
                home = {tonic_pc: 1.6, (tonic_pc + params.key.intervals[2]) % 12: 1.3,
                        (tonic_pc + 7) % 12: 1.25}
                x = (b * 16 + step) / (phrase_bars * 16)
                target = centre + contour_value(shape, x) * 8
                strong = step in (0, 8) or is_last
                w = []
                for p, hw in zip(pitches, hint_w):
                    # tonal gravity: the tonic triad's degrees pull a little harder, so the
                    # key (and a minor key's minor third) is heard, not just implied
                    weight = math.exp(-abs(p - target) / 3.0) * hw * home.get(p % 12, 1.0)
                    if p % 12 in chord_pcs:
                        weight *= 4.0 if strong else 1.6
                    elif strong:
                        weight *= 0.3
                    if prev_pitch is not None:
                        interval = abs(p - prev_pitch)
                        weight *= math.exp(-max(0, interval - leap) / 2.0) * (0.6 if interval == 0 else 1.0)
                    w.append(weight)
                pitch = int(choose(rng, pitches, w))
                if is_last:
                    # phrase ends on a chord tone; the final phrase on the tonic
                    home = params.key.tonic_pc if bar == plan.bars - 1 else event.chord.root_pc
                    pitch = nearest_pc(home, prev_pitch if prev_pitch is not None else centre)
                    span = bar_ticks - step * SIXTEENTH
                duration = int(span * (legato if not is_last else 0.95))
                notes.append(note(start, pitch, max(SIXTEENTH // 2, duration), params.velocity))
                prev_pitch = pitch
    return Track("Melody", program, 0, notes, Role.MELODY), {"contours": chosen_contours, "program": program}
