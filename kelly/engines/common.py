"""Small helpers the engines share: scale pitches in a range, weighted choices, clamps."""

from __future__ import annotations

import numpy as np

from kelly.song import Note
from kelly.theory.scales import Key

SIXTEENTH = 120  # ticks at 480 PPQ
EIGHTH = 240
QUARTER = 480


def scale_pitches(key: Key, low: int, high: int) -> list[int]:
    """All MIDI pitches of ``key``'s scale between ``low`` and ``high`` inclusive."""
    pcs = set(key.scale_pcs())
    return [p for p in range(max(0, low), min(127, high) + 1) if p % 12 in pcs]


def nearest_pc(pc: int, centre: int) -> int:
    """The pitch with pitch class ``pc`` nearest to ``centre``."""
    base = centre - ((centre - pc) % 12)
    return base if centre - base <= 6 else base + 12


def choose(rng: np.random.Generator, items, weights) -> object:
    """Pick one item with probability proportional to ``weights`` (all zero → uniform)."""
    w = np.asarray(weights, dtype=float)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    total = w.sum()
    if total <= 0:
        return items[int(rng.integers(len(items)))]
    return items[int(rng.choice(len(items), p=w / total))]


def bed_voicing(event) -> tuple[int, ...]:
    """The voicing a sustained bed (pad, strings) plays under ``event``.

    The chord's own voicing, except under a power chord (root and fifth, the guitar's
    parallel-fifths rule break): there the bed fills in the mode's own triad on that root,
    so the mode's third is heard while the guitar stays in fifths.
    """
    if event.chord.quality != "5":
        return tuple(event.voicing)
    from kelly.theory.chords import Chord
    from kelly.theory.modal import diatonic_quality
    from kelly.theory.voice_leading import voice_chord

    quality = diatonic_quality(event.key, event.chord.root_pc)
    if quality not in ("maj", "min", "dim"):
        return tuple(event.voicing)
    top = max(event.voicing)
    return voice_chord(Chord(event.chord.root, quality), None, low=max(36, top - 14), high=top + 2, voices=3)


def clamp_velocity(v: float) -> int:
    return int(min(127, max(1, round(v))))


def note(start: int, pitch: int, duration: int, velocity: float) -> Note:
    return Note(int(start), int(min(127, max(0, pitch))), int(max(1, duration)), clamp_velocity(velocity))
