"""MelodyEngine: the lead line.

Lead instruments are ones that sing over a sustained bed: grief's cello, sadness's
clarinet, hope's violin (a piano lead decays under a pad and was measured 9–11 dB below it),
anger's "charang" lead (a distortion-guitar lead that cuts through overdriven power chords;
GM's distortion guitar sat 4–8 dB under them whatever its velocity).

Per profile (§6.5): contour shapes, notes per bar, rest probability, legato, GM
instrument and leap size. The line is built in four-bar phrases from a two-bar motif
(so it is memorable, not a random walk): the motif's rhythm repeats, its pitches follow
the phrase contour, strong beats prefer chord tones, and each phrase ends on a long
chord tone — the last one on the tonic. When the melody network runs, its note
probabilities weight the choice among the scale's pitches (never outside the key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kelly.engines.common import EIGHTH, SIXTEENTH, choose, note
from kelly.engines.context import Plan
from kelly.song import Note, Role, Track

#: contours, notes per bar (lo, hi), rest probability, legato, GM program, leap size (semitones)
PROFILES = {
    "grief": (("descending", "spiral_down", "collapse"), (2, 4), 0.3, 0.9, 42, 3),
    "sadness": (("descending", "arch", "wave"), (3, 5), 0.25, 0.85, 71, 4),
    "nostalgia": (("wave", "arch"), (3, 6), 0.2, 0.85, 65, 4),
    "peace": (("static", "wave", "arch"), (2, 4), 0.25, 0.95, 73, 3),
    "love": (("arch", "wave"), (3, 6), 0.15, 0.9, 73, 5),
    "hope": (("ascending", "arch", "spiral_up"), (4, 7), 0.1, 0.8, 40, 5),
    "joy": (("ascending", "arch", "wave"), (5, 8), 0.08, 0.7, 80, 7),
    "anger": (("jagged", "ascending", "collapse"), (6, 10), 0.05, 0.45, 84, 9),
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
#: Metric weight of each sixteenth in 3/4 (three beats) and 6/8 (two dotted-quarter beats of three eighths).
_BEAT_WEIGHT_34 = np.array([8, 1, 2, 1, 5, 1, 2, 1, 5, 1, 2, 1], dtype=float)
_BEAT_WEIGHT_68 = np.array([8, 1, 3, 1, 3, 1, 6, 1, 3, 1, 3, 1], dtype=float)


def beat_weights(meter: tuple[int, int] = (4, 4)) -> np.ndarray:
    """How strongly each sixteenth of a bar is felt in ``meter``."""
    return {(3, 4): _BEAT_WEIGHT_34, (6, 8): _BEAT_WEIGHT_68}.get(tuple(meter), _BEAT_WEIGHT)


def motif_rhythm(n_notes: int, rng: np.random.Generator, *, grid: int = 2,
                 meter: tuple[int, int] = (4, 4)) -> list[int]:
    """Onsets (16th steps) for one bar of ``meter`` with ``n_notes`` notes; beat one always sounds."""
    table = beat_weights(meter)
    steps = list(range(0, len(table), grid))
    n = max(1, min(n_notes, len(steps)))
    weights = table[steps].copy()
    weights[0] = 0
    picked = {0}
    if n > 1:
        others = rng.choice([s for s in steps if s != 0], size=n - 1, replace=False,
                            p=weights[1:] / weights[1:].sum())
        picked.update(int(s) for s in others)
    return sorted(picked)


def register_centre(plan: Plan, bar: int = 0) -> int:
    """The melody's centre pitch in ``bar``: rises with valence and arousal (:func:`kelly.mapping.melody_centre`)."""
    return plan.params_at_bar(bar).register_centre


def melody_range(plan: Plan, bar: int = 0) -> tuple[int, int]:
    """(lowest, highest) pitch the melody uses in ``bar``: a tenth around the centre, more above than below."""
    c = register_centre(plan, bar)
    return c - 5, c + 9


def accompaniment_ceiling(plan: Plan, bar: int) -> int:
    """The highest pitch a chord voicing may reach in ``bar``: a fourth under the melody's centre."""
    return register_centre(plan, bar) - 5


def _hint_weights(plan: Plan, pitches: list[int], bar: int = 0) -> np.ndarray:
    """How much the melody network likes each of ``pitches`` in ``bar`` (1 each without networks).

    The bar's own row of note probabilities (:meth:`Plan.note_probs_at_bar`: the network
    stepped once per bar, its state carried), else the hints' one row for every bar.
    """
    note_probs = plan.note_probs_at_bar(bar)
    if note_probs is None:
        return np.ones(len(pitches))
    from kelly.ml.schema import transpose_note_probs

    # the network's probabilities are in the key of C; move them to this key
    tonic = plan.params_at_bar(bar).key.tonic_pc
    probs = np.asarray(transpose_note_probs(np.asarray(note_probs), tonic), dtype=float)
    w = np.array([probs[p] if 0 <= p < len(probs) else 0.0 for p in pitches])
    # Blend with uniform so the network shapes but never silences the scale.
    return 0.5 + w / (w.max() + 1e-9)


@dataclass(frozen=True)
class Motif:
    """A one-bar cell: onsets (16th steps) and the scale steps between successive notes."""

    onsets: tuple[int, ...]
    moves: tuple[int, ...]  # len(onsets) - 1 scale steps (+ up, − down)


def make_motif(n_notes: int, rng: np.random.Generator, *, grid: int, leap: int,
               meter: tuple[int, int] = (4, 4)) -> Motif:
    """A singable cell: mostly steps, at most one leap (a fourth to a sixth), always answered by a step back."""
    onsets = tuple(motif_rhythm(n_notes, rng, grid=grid, meter=meter))
    moves: list[int] = []
    k = 0
    while len(moves) < len(onsets) - 1:
        if leap >= 5 and k == 0 and len(onsets) >= 3 and rng.random() < 0.45:
            size = int(rng.integers(3, 5 if leap < 8 else 6))  # scale steps: a fourth .. a sixth
            sign = 1 if rng.random() < 0.6 else -1
            moves += [sign * size, -sign]  # the leap, then a step back against it
            k += 1
            continue
        moves.append(int(rng.choice([-2, -1, -1, 0, 1, 1, 2])))
        k += 1
    return Motif(onsets, tuple(moves[:len(onsets) - 1]))


def develop(motif: Motif, how: str, rng: np.random.Generator, *, grid: int, steps: int = 16) -> Motif:
    """A development of ``motif``: ``inversion`` (moves upside down), ``rhythm`` (one onset moved or split),
    ``fragment`` (its first half, then a held note) or the motif itself (``repeat``/``sequence``)."""
    if how == "inversion":
        return Motif(motif.onsets, tuple(-m for m in motif.moves))
    if how == "fragment" and len(motif.onsets) >= 3:
        keep = max(2, len(motif.onsets) // 2)
        return Motif(motif.onsets[:keep], motif.moves[:keep - 1])
    if how == "rhythm" and len(motif.onsets) >= 2:
        onsets = list(motif.onsets)
        gaps = [(onsets[k + 1] if k + 1 < len(onsets) else steps) - onsets[k] for k in range(len(onsets))]
        k = int(np.argmax(gaps))
        if gaps[k] >= 2 * grid:
            # split the longest note into two: the cell keeps its shape with one more step in it
            onsets.insert(k + 1, onsets[k] + gaps[k] // 2 // grid * grid)
            moves = list(motif.moves)
            moves.insert(k, 1 if (moves[k - 1] if k > 0 and moves else 1) >= 0 else -1)
            return Motif(tuple(onsets), tuple(moves[:len(onsets) - 1]))
    return motif


#: What each bar of an eight-bar period does with the section's motif (the cadence bars are
#: whatever the harmony closes on): state, sequence, develop, …, restate bars one and two, develop.
PERIOD = ("motif", "sequence", "develop", "develop", "restate", "restate", "develop2", "develop2")


def _step(pitch: int, move: int, scale: list[int]) -> int:
    """Move ``move`` scale steps from ``pitch`` (a pitch off the scale snaps to the nearest scale tone first)."""
    if not scale:
        return pitch
    idx = min(range(len(scale)), key=lambda k: (abs(scale[k] - pitch), scale[k]))
    idx = min(len(scale) - 1, max(0, idx + move))
    return scale[idx]


def _scale_in(pcs, lo: int, hi: int) -> list[int]:
    pcs = set(pcs)
    return [p for p in range(max(0, lo), min(127, hi) + 1) if p % 12 in pcs]


def _fit_note(pitch: int, direction: int, start: int, end: int, plan: Plan, strong: bool,
              lo: int, hi: int) -> int:
    """Make ``pitch`` belong to the moment: in the world scale, a chord tone on strong beats, never an avoid note."""
    event = plan.chord_at(start)
    tones = set(event.tones)
    avoid: set[int] = set()
    for e in plan.chords_in(start, end):
        avoid |= {(t + 1) % 12 for t in e.tones}
    scale = _scale_in(event.scale or plan.params_at_bar(start // plan.bar_ticks).key.scale_pcs(), lo - 4, hi + 4)
    while pitch > hi + 2:
        pitch -= 12
    while pitch < lo - 2:
        pitch += 12
    good = [p for p in scale if p % 12 not in avoid and (not strong or p % 12 in tones)]
    if not good:
        good = [p for p in scale if p % 12 not in avoid] or scale
    if pitch in good:
        return pitch
    # the nearest good pitch, preferring the direction the line was moving
    return min(good, key=lambda p: (abs(p - pitch), 0 if (p - pitch) * direction >= 0 else 1, p))


def _realize(motif: Motif, bar: int, target: float, prev: int | None, plan: Plan, rng: np.random.Generator,
             legato: float, *, cadence: str | None = None, final: bool = False) -> list[Note]:
    """Sound ``motif`` in ``bar``: the first note a chord tone near ``target``, the rest by scale steps."""
    lo, hi = melody_range(plan, bar)
    params = plan.params_at_bar(bar)
    base = bar * plan.bar_ticks
    onsets = list(motif.onsets)
    moves = list(motif.moves)
    if cadence:
        # a cadence bar: the cell's opening, then a long closing note from the middle of the bar
        mid = plan.half_step
        head = [s for s in onsets if s < mid][:2] or [0]
        onsets = head + ([mid] if head[-1] < mid else [])
        moves = moves[:len(onsets) - 1] + [0] * max(0, len(onsets) - 1 - len(moves))
    event = plan.chord_at(base)
    chord_pitches = [p for p in range(lo, hi + 1) if p % 12 in event.tones and p % 12 not in
                     {(t + 1) % 12 for t in event.tones}]
    weights = []
    hint_w = _hint_weights(plan, chord_pitches, bar)
    tonic_pc = params.key.tonic_pc
    third = 1.6 if params.key.mode == "dorian" else 1.3  # dorian's minor third tells it from major
    home = {tonic_pc: 1.8, (tonic_pc + params.key.intervals[2]) % 12: third, (tonic_pc + 7) % 12: 1.15}
    for p, hw in zip(chord_pitches, hint_w):
        # tonal gravity: the tonic triad pulls, so the key (and a mode against its tonic) is heard
        w = math.exp(-abs(p - target) / 2.5) * hw * home.get(p % 12, 1.0)
        if prev is not None:
            w *= math.exp(-max(0, abs(p - prev) - 5) / 2.0)
        weights.append(w)
    pitch = int(choose(rng, chord_pitches, weights)) if chord_pitches else int(round(target))
    notes: list[Note] = []
    for k, step in enumerate(onsets):
        start = base + step * SIXTEENTH
        nxt = (onsets[k + 1] if k + 1 < len(onsets) else plan.steps) * SIXTEENTH
        end = base + nxt
        last = k == len(onsets) - 1
        if k > 0:
            scale = _scale_in(plan.chord_at(start).scale or params.key.scale_pcs(), lo - 4, hi + 4)
            pitch = _step(pitch, moves[k - 1], scale)
        direction = 1 if k > 0 and moves[k - 1] > 0 else -1
        strong = step in plan.strong_steps
        pitch = _fit_note(pitch, direction, start, end, plan, strong, lo, hi)
        if last and cadence:
            goal = plan.chord_at(start)
            avoid = {(t + 1) % 12 for t in goal.tones}
            if cadence == "authentic" or final:
                home = {tonic_pc}
            else:  # a half cadence rests on the chord's third or fifth, not on the tonic
                home = set(goal.tones) - {tonic_pc} or set(goal.tones)
            home = (home - avoid) or (set(goal.tones) - avoid) or home  # over Imaj7 the tonic would rub the 7th
            options = [p for p in range(lo - 2, hi + 3) if p % 12 in home]
            if options:
                pitch = min(options, key=lambda p: (abs(p - pitch), p))
        dur = int((nxt - step * SIXTEENTH) * (0.95 if last and cadence else legato))
        notes.append(note(start, pitch, max(SIXTEENTH // 2, dur), params.velocity))
    return notes


def _transposed(src: list[Note], dt: int, semis: int, plan: Plan, lo: int, hi: int) -> list[Note]:
    """``src`` moved by ``dt`` ticks and ``semis`` semitones (a restatement or a sequence), each note
    refitted only where the new moment needs it (an avoid note, a tone off the scale, a
    non-chord tone on a strong beat), so the bar is heard as the same figure."""
    if not src:
        return []
    mean = sum(n.pitch for n in src) / len(src) + semis
    while mean + 0 > hi + 2 and semis - 12 >= -24:
        semis -= 12
        mean -= 12
    while mean < lo - 2 and semis + 12 <= 24:
        semis += 12
        mean += 12
    out = []
    for k, n in enumerate(src):
        start = n.start + dt
        p = n.pitch + semis
        direction = 1 if k == 0 or p >= out[-1].pitch else -1
        strong = (start % plan.bar_ticks) // SIXTEENTH in plan.strong_steps and start % SIXTEENTH == 0
        p = _fit_note(p, direction, start, start + n.duration, plan, strong, lo, hi)
        out.append(n.moved(start=start, pitch=p))
    return out


def _root_shift(plan: Plan, bar: int, src_bar: int) -> int:
    """Semitones between the chords that open ``bar`` and ``src_bar`` (−5..+6): how far to move a figure."""
    a = plan.chord_at(bar * plan.bar_ticks).chord.root_pc
    b = plan.chord_at(src_bar * plan.bar_ticks).chord.root_pc
    d = (a - b) % 12
    return d - 12 if d > 6 else d


def _ornament(notes: list[Note], plan: Plan, rng: np.random.Generator, p: float) -> list[Note]:
    """Ornaments (complexity > 0.6): passing tones where two notes a third apart leave room (the scale
    tone between), and above complexity 0.75 a sixteenth-note upper neighbour leading into a long note."""
    out: list[Note] = []
    for k, n in enumerate(notes):
        if plan.complexity > 0.75 and n.duration >= plan.ppq * 3 // 2 and k > 0 and rng.random() < p:
            lead = n.start - SIXTEENTH
            event = plan.chord_at(lead)
            avoid = {(t + 1) % 12 for t in event.tones} | {(t + 1) % 12 for t in plan.chord_at(n.start).tones}
            above = [q for q in (n.pitch + 1, n.pitch + 2) if q % 12 in set(event.scale) and q % 12 not in avoid]
            if above and out and out[-1].end <= lead:
                out.append(note(lead, above[0], SIXTEENTH - 10, n.velocity))
        out.append(n)
        if k + 1 >= len(notes) or rng.random() >= p:
            continue
        m = notes[k + 1]
        gap = m.start - n.start
        if gap < 2 * EIGHTH or abs(m.pitch - n.pitch) not in (3, 4) or n.start // plan.bar_ticks != \
                m.start // plan.bar_ticks:
            continue
        mid_t = m.start - SIXTEENTH * (2 if gap >= 3 * EIGHTH else 1)
        event = plan.chord_at(mid_t)
        avoid = {(t + 1) % 12 for t in event.tones}
        between = [q for q in range(min(n.pitch, m.pitch) + 1, max(n.pitch, m.pitch))
                   if q % 12 in set(event.scale) and q % 12 not in avoid]
        if between:
            out[-1] = n.moved(duration=max(SIXTEENTH // 2, min(n.duration, mid_t - n.start)))
            out.append(note(mid_t, between[0], m.start - mid_t - 10, n.velocity))
    return out


def generate(plan: Plan, rng: np.random.Generator) -> tuple[Track, dict]:
    """Write the melody; returns the track and what was chosen.

    Each section states a one-bar motif and develops it over eight-bar periods
    (:data:`PERIOD`): a sequence (the motif a step higher or lower), an inversion or a
    rhythmic variation, the cadence the harmony closes on (a half cadence rests on the
    chord's third or fifth, an authentic one on the tonic), then bars one and two come
    back (note for note when the chords are the same) before a last development. A
    section that returns (a second verse, every chorus) restates its first statement.
    Every note is fitted to the chord of its moment (:func:`_fit_note`).
    """
    contours, (lo_n, hi_n), rest_p, legato, program, leap = PROFILES.get(plan.profile, PROFILES["neutral"])
    notes: list[Note] = []
    chosen_contours: list[str] = []
    statements: dict[str, tuple[int, list[Note]]] = {}
    restated_sections: list[str] = []
    prev: int | None = None
    for section in plan.sections:
        if section.name in statements and section.emotion is None:
            first_start, first_notes = statements[section.name]
            first_bars = next(s.bars for s in plan.sections if s.name == section.name)
            same = first_bars == section.bars and all(
                plan.chords_in(b * plan.bar_ticks, (b + 1) * plan.bar_ticks) and
                [e.chord for e in plan.chords_in((first_start + k) * plan.bar_ticks, (first_start + k + 1) *
                                                 plan.bar_ticks)] ==
                [e.chord for e in plan.chords_in(b * plan.bar_ticks, (b + 1) * plan.bar_ticks)]
                for k, b in enumerate(range(section.start_bar, section.end_bar)))
            if same:
                shift = (section.start_bar - first_start) * plan.bar_ticks
                copied = [n.moved(start=n.start + shift) for n in first_notes
                          if plan.layer_on("melody", (n.start + shift) // plan.bar_ticks)]
                notes.extend(copied)
                restated_sections.append(section.name)
                prev = copied[-1].pitch if copied else prev
                continue
        section_notes: list[Note] = []
        shape = contours[int(rng.integers(len(contours)))]
        chosen_contours.append(shape)
        energy = section.energy if len(plan.sections) > 1 else 0.6
        density = plan.params_at_bar(section.start_bar).density
        n_per_bar = int(round(lo_n + (hi_n - lo_n) * min(1.0, density * (0.6 + 0.6 * energy))))
        n_per_bar = max(1, n_per_bar * plan.steps // 16)
        if plan.complexity < 0.3:
            n_per_bar = max(2, n_per_bar - 1)
        grid = 1 if n_per_bar > 8 else 2
        motif = make_motif(n_per_bar, rng, grid=grid, leap=leap, meter=plan.meter)
        seq_shift = int(rng.choice([-2, -1, 1, 2]))
        dev = ("inversion", "rhythm", "fragment")[int(rng.integers(3))]
        dev2 = ("rhythm", "inversion", "repeat")[int(rng.integers(3))]
        period_bars: dict[int, tuple[list[Note], float]] = {}
        anchor: float | None = None
        for k in range(section.bars):
            bar = section.start_bar + k
            if not plan.layer_on("melody", bar):
                prev = None
                continue
            centre = register_centre(plan, bar)
            x = (k % 8) / 8.0
            target = centre + 2 + contour_value(shape, x) * 5
            role = PERIOD[k % 8]
            closing = plan.chord_at((bar + 1) * plan.bar_ticks - 1)
            cadence = closing.cadence
            final = bar == plan.bars - 1
            lo, hi = melody_range(plan, bar)
            if role == "restate" and (k - 4) in period_bars and period_bars[k - 4][0] and not cadence:
                # bars one and two come back: the same figure, moved with the harmony if it moved
                src_notes, src_anchor = period_bars[k - 4]
                bar_notes = _transposed(src_notes, 4 * plan.bar_ticks, _root_shift(plan, bar, bar - 4), plan, lo, hi)
                period_bars[k] = (bar_notes, src_anchor)
            elif role == "sequence" and (k - 1) in period_bars and period_bars[k - 1][0] and not cadence:
                # a sequence: the motif's bar again, a step higher or lower (or with the chord's root)
                src_notes, src_anchor = period_bars[k - 1]
                semis = _root_shift(plan, bar, bar - 1) or (2 if seq_shift > 0 else -2) * (1 + (abs(seq_shift) > 1))
                bar_notes = _transposed(src_notes, plan.bar_ticks, semis, plan, lo, hi)
                period_bars[k] = (bar_notes, src_anchor + semis)
            else:
                if role == "motif" or anchor is None:
                    cell, goal = motif, target
                elif role == "sequence":
                    cell, goal = motif, anchor + 2 * seq_shift
                elif role == "develop":
                    cell, goal = develop(motif, dev, rng, grid=grid, steps=plan.steps), target
                else:
                    cell, goal = develop(motif, dev2, rng, grid=grid, steps=plan.steps), target
                bar_notes = _realize(cell, bar, goal, prev, plan, rng, legato, cadence=cadence, final=final)
                if bar_notes and not cadence and rest_p > 0:
                    # breathing: an inner note may fall silent (never the first or the last)
                    bar_notes = [n for j, n in enumerate(bar_notes)
                                 if j in (0, len(bar_notes) - 1) or rng.random() >= rest_p * 0.6]
                if bar_notes:
                    anchor = bar_notes[0].pitch
                period_bars[k] = (bar_notes, anchor if anchor is not None else target)
            if plan.complexity > 0.6 and not cadence:
                bar_notes = _ornament(bar_notes, plan, rng, (plan.complexity - 0.6) * 1.5)
            section_notes.extend(bar_notes)
            if bar_notes:
                prev = bar_notes[-1].pitch
        statements.setdefault(section.name, (section.start_bar, section_notes))
        notes.extend(section_notes)
    notes.sort()
    info = {"contours": chosen_contours, "program": program, "restated_sections": restated_sections}
    return Track("Melody", program, 0, notes, Role.MELODY), info
