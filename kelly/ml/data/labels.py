"""Weak emotion labels for music that carries none: valence, arousal and dominance proxies.

The music21 corpus (chorales, folk songs, dance tunes, polyphony) has no emotion
annotations. What it has is mode, metre, note density, sometimes a tempo marking, and
in the Irish and Scottish collections a tune type (reel, jig, air) and a performance word
(*Slow*, *Lively*, *With spirit*). These map to emotion only roughly; every formula
below is a documented judgement, not a fit to listener ratings, and ``docs/data.md``
says what that means for training.

Valence (mode)
--------------
``valence = MODE_VALENCE[mode] × weight``, with the mode brightness order Kelly uses
elsewhere (:data:`kelly.ml.schema.MODES`): lydian +0.7, ionian +0.6, mixolydian +0.35,
dorian −0.3, aeolian −0.6, phrygian −0.7, locrian −0.8. Major-family modes (a major
third over the tonic) are positive, minor-family ones negative. ``weight`` is 1 when the
mode comes from the piece's header (an ABC ``K:`` field that names it) and
``0.5 + 0.5 × confidence`` when it comes from key analysis (the modal key finder's
confidence, :func:`kelly.theory.analysis.estimate_mode`). No label exceeds 0.8 in
size: mode alone does not make a piece ecstatic or desperate.

Arousal (tempo, density, metre)
-------------------------------
``arousal = clip(0.45 × tempo + 0.40 × density + 0.15 × metre, 0, 1)``

* ``tempo``: from a tempo marking, ``clip((bpm − 50) / 130, 0, 1)`` (quarter notes per
  minute; 50 → 0, 180 → 1); else from a performance word (:data:`TEMPO_WORDS`); else
  from the tune type (:data:`RHYTHM_AROUSAL`); else 0.5 (unknown).
* ``density``: ``clip(log2(1 + nps) / log2(17), 0, 1)`` with nps the distinct onsets per
  second at the marked tempo, or at 100 quarter notes a minute when there is none
  (the same curve as ``kelly analyze``'s affect estimate).
* ``metre``: :func:`meter_arousal` (compound dance metres livelier, half-note beats calmer).

Dominance (dynamics)
--------------------
``dominance = 0.5 + 0.35 × clip((mean velocity − 80) / 40, −1, 1)`` when the piece has
dynamics (dynamic marks in the score; for MIDI from elsewhere, velocities that vary),
else 0.5. Register is *not* used: in this corpus it
mostly tells a four-voice chorale (a bass line) from a solo tune, not power.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

#: Valence by church mode (see the module docstring).
MODE_VALENCE = {"lydian": 0.7, "ionian": 0.6, "mixolydian": 0.35, "dorian": -0.3, "aeolian": -0.6,
                "phrygian": -0.7, "locrian": -0.8}
#: Mode family: the quality of the third over the tonic.
MODE_FAMILY = {"ionian": "major", "lydian": "major", "mixolydian": "major",
               "dorian": "minor", "phrygian": "minor", "aeolian": "minor", "locrian": "minor"}
#: Tempo assumed for the density term when a piece has no tempo marking (quarter notes a minute).
ASSUMED_BPM = 100.0
#: Performance and tempo words found in tune headers (O'Neill's ``N:`` notes and the like) → tempo term.
TEMPO_WORDS = {"very slow": 0.1, "slowly": 0.2, "slow": 0.2, "plaintive": 0.2, "tenderly": 0.25,
               "mournful": 0.2, "with feeling": 0.3, "with expression": 0.3, "andante": 0.35, "moderato": 0.45,
               "moderate": 0.45, "gaily": 0.7, "animated": 0.75, "lively": 0.75, "with spirit": 0.75,
               "spirited": 0.75, "allegro": 0.75, "quick": 0.8, "brisk": 0.8, "fast": 0.8}
#: Tune types (ABC ``R:`` fields, titles such as "… Reel") and a few Essen genres → tempo term.
RHYTHM_AROUSAL = {"reel": 0.85, "slip jig": 0.75, "slipjig": 0.75, "double jig": 0.8, "single jig": 0.8,
                  "jig": 0.8, "slide": 0.8, "polka": 0.8, "highland fling": 0.8, "fling": 0.8, "clog": 0.75,
                  "walkaround": 0.7, "hornpipe": 0.65, "march": 0.65, "set dance": 0.65, "long dance": 0.6,
                  "strathspey": 0.6, "gavotte": 0.6, "mazurka": 0.6, "waltz": 0.5, "air": 0.25,
                  "lament": 0.15, "tanz": 0.7, "reigen": 0.65, "wiegenlied": 0.2}


def _word_pattern(words) -> re.Pattern[str]:
    alts = sorted(words, key=len, reverse=True)  # "very slow" before "slow", "slip jig" before "jig"
    return re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in alts) + r")(?![a-z])", re.IGNORECASE)


_TEMPO_RE = _word_pattern(TEMPO_WORDS)
_RHYTHM_RE = _word_pattern(RHYTHM_AROUSAL)


def tempo_word(text: str) -> str | None:
    """The first performance word of :data:`TEMPO_WORDS` in ``text`` (lower case), or None."""
    m = _TEMPO_RE.search(text or "")
    return m.group(1).lower() if m else None


def rhythm_type(text: str) -> str | None:
    """The first tune type of :data:`RHYTHM_AROUSAL` in ``text`` (lower case), or None."""
    m = _RHYTHM_RE.search(text or "")
    return m.group(1).lower() if m else None


def mode_valence(mode: str, *, from_header: bool, confidence: float | None = None) -> float:
    """Valence of a church mode, weighted by how sure the mode is (module docstring)."""
    base = MODE_VALENCE[mode]
    if from_header:
        return base
    c = 0.0 if confidence is None else float(np.clip(confidence, 0.0, 1.0))
    return base * (0.5 + 0.5 * c)


def meter_arousal(numerator: int | None, denominator: int | None) -> float:
    """Metre term of arousal: 6/8, 9/8, 12/8 0.65; 2/4 and 2/8 0.55; 4/4 0.5; 3/4, 3/8 0.45;
    half-note beats (2/2, 3/2, 4/2) 0.35; anything else (or unknown) 0.5."""
    if not numerator or not denominator:
        return 0.5
    if denominator == 8 and numerator in (6, 9, 12):
        return 0.65
    if denominator == 2:
        return 0.35
    if numerator == 2:
        return 0.55
    if numerator == 3:
        return 0.45
    return 0.5


def density_arousal(onsets_per_quarter: float, bpm: float | None) -> float:
    """Density term: distinct onsets per second (at ``bpm``, or :data:`ASSUMED_BPM`) on a log curve."""
    nps = max(0.0, float(onsets_per_quarter)) * (bpm or ASSUMED_BPM) / 60.0
    return float(np.clip(math.log2(1.0 + nps) / math.log2(17.0), 0.0, 1.0))


def weak_labels(*, mode: str, mode_from_header: bool, mode_confidence: float | None, bpm: float | None,
                tempo_text: str = "", rhythm_text: str = "", onsets_per_quarter: float,
                meter: tuple[int, int] | None, velocities: np.ndarray | None = None,
                dynamics: bool | None = None) -> dict[str, Any]:
    """Valence, arousal and dominance proxies for one piece, with the terms that made them.

    Parameters
    ----------
    mode : str
        Church mode (a key of :data:`MODE_VALENCE`).
    mode_from_header : bool
        True when the mode was read from the piece's header, False when analysed.
    mode_confidence : float in [0, 1] or None
        The analysis's confidence (ignored for a header mode).
    bpm : float or None
        Tempo marking in quarter notes per minute, if the piece has one.
    tempo_text, rhythm_text : str
        Header text searched for a performance word and a tune type.
    onsets_per_quarter : float
        Distinct note onsets per quarter note of music.
    meter : (numerator, denominator) or None
    velocities : np.ndarray [shape=(n,)] or None
        MIDI velocities of the notes.
    dynamics : bool or None
        Whether the velocities carry dynamics. None: when they vary. A score converted by
        music21 says False unless it has dynamic marks (p, mf, f …): music21 also varies
        velocities for accent articulations, which are not loudness of the piece.

    Returns
    -------
    dict
        ``valence`` in [-1, 1], ``arousal`` and ``dominance`` in [0, 1], and ``components``
        (each term, and where the tempo term came from: ``tempo_source`` is one of
        ``"marking"``, ``"word"``, ``"rhythm"``, ``"unknown"``).
    """
    valence = mode_valence(mode, from_header=mode_from_header, confidence=mode_confidence)
    word = tempo_word(tempo_text)
    rhythm = rhythm_type(rhythm_text)
    if bpm:
        tempo, source = float(np.clip((bpm - 50.0) / 130.0, 0.0, 1.0)), "marking"
    elif word:
        tempo, source = TEMPO_WORDS[word], "word"
    elif rhythm:
        tempo, source = RHYTHM_AROUSAL[rhythm], "rhythm"
    else:
        tempo, source = 0.5, "unknown"
    density = density_arousal(onsets_per_quarter, bpm)
    metre = meter_arousal(*(meter or (None, None)))
    arousal = float(np.clip(0.45 * tempo + 0.40 * density + 0.15 * metre, 0.0, 1.0))
    has_velocities = velocities is not None and len(velocities) > 0
    if dynamics is None:
        dynamics = bool(has_velocities and int(np.ptp(velocities)) > 0)
    dynamics = bool(dynamics and has_velocities)
    loud = float(np.clip((float(np.mean(velocities)) - 80.0) / 40.0, -1.0, 1.0)) if dynamics else 0.0
    dominance = float(np.clip(0.5 + 0.35 * loud, 0.0, 1.0))
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {"valence": r(valence), "arousal": r(arousal), "dominance": r(dominance),
            "components": {"mode": mode, "mode_from_header": bool(mode_from_header),
                           "mode_confidence": None if mode_confidence is None else r(mode_confidence),
                           "tempo": r(tempo), "tempo_source": source, "tempo_word": word, "rhythm": rhythm,
                           "density": r(density), "meter": r(metre), "dynamics": dynamics, "loudness": r(loud)}}
