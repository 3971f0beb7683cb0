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


def clamp_velocity(v: float) -> int:
    return int(min(127, max(1, round(v))))


def note(start: int, pitch: int, duration: int, velocity: float) -> Note:
    return Note(int(start), int(min(127, max(0, pitch))), int(max(1, duration)), clamp_velocity(velocity))
