"""TensionEngine: a tension curve over the bars, and the chord colours that carry it.

Curves (§6.5): building, releasing, plateau, spike, wave, ramp. The curve's peak is the
emotion's dissonance (§3.4) raised by intensity. Where tension is high, chords gain a
suspension, an added ninth or (for dissonant emotions) a seventh; the original only
ever added a minor ninth above the root (§6.3 step 9).
"""

from __future__ import annotations

import math

import numpy as np

from kelly.theory.chords import Chord

CURVE_FOR_PROFILE = {"grief": "wave", "sadness": "releasing", "nostalgia": "wave", "peace": "plateau",
                     "love": "wave", "hope": "building", "joy": "ramp", "anger": "spike", "fear": "spike",
                     "anxiety": "building", "tension": "building", "neutral": "wave"}


def curve(name: str, bars: int, peak: float) -> np.ndarray:
    """Tension in [0, peak] for each bar."""
    x = np.linspace(0.0, 1.0, max(bars, 1))
    shapes = {
        "building": x,
        "releasing": 1.0 - x,
        "plateau": np.full_like(x, 0.6),
        "spike": np.where(np.abs(x - 0.7) < 0.15, 1.0, 0.35),
        "wave": 0.5 + 0.5 * np.sin(2 * math.pi * x * max(1, bars / 8) - math.pi / 2),
        "ramp": np.minimum(1.0, x * 1.4),
    }
    if name not in shapes:
        raise ValueError(f"unknown tension curve {name!r}")
    return np.clip(shapes[name] * peak, 0.0, 1.0)


def colour_chord(chord: Chord, tension: float, dissonance: float, rng: np.random.Generator) -> Chord:
    """Add a tension colour to ``chord`` when ``tension`` is high (> 0.5)."""
    if tension <= 0.5 or chord.quality not in ("maj", "min", "7", "min7", "maj7"):
        return chord
    roll = rng.random()
    if chord.quality == "maj":
        quality = "sus4" if roll < 0.35 else ("add9" if roll < 0.7 else ("maj7" if dissonance < 0.4 else "7"))
    elif chord.quality == "min":
        quality = "min7" if roll < 0.5 else ("madd9" if roll < 0.8 else "min9")
    elif chord.quality == "7":
        quality = "9" if roll < 0.5 else "7sus4"
    elif chord.quality == "maj7":
        quality = "maj9"
    else:
        quality = "min9"
    return Chord(chord.root, quality, chord.bass)
