"""Fusion of the emotion doors (audio, text, biometrics, explicit V/A/D) into one live emotion.

Why this module exists
----------------------
The real-time engine hears several sources at once: the audio recogniser every half
second, the body through :mod:`kelly.emotion.bio`, a sentence the user typed a minute
ago, and V/A/D sliders the therapist set by hand. Each says how sure it is
(``confidence``) and how old it is (``age_s``). This module

* weighs them (:func:`fuse`): a confidence-weighted mean of valence, arousal and
  dominance, where a source's confidence fades with its age at its own half-life
  (:data:`HALF_LIFE_S`: audio and biometrics within seconds, typed text over minutes,
  explicit settings not at all), and names the result with the nearest thesaurus emotion;
* steadies the result over time (:class:`EmotionSmoother`): the original plugin's
  exponential smoothing ``x ← α·new + (1 − α)·x``, so the music glides instead of jumping.

All values follow DESIGN.md: valence in [-1, 1], arousal, dominance, intensity and
confidence in [0, 1]. Out-of-range numbers are clipped; NaN is refused with
:class:`~kelly.errors.InputError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

from kelly.errors import InputError

#: The sources the engine knows.
SOURCES = ("audio", "text", "biometrics", "explicit")

#: Seconds after which a source's confidence has halved: ``c_eff = c · 0.5 ** (age_s / half_life)``.
#:
#: * ``explicit`` (V/A/D the user set): ``inf``, it holds until the user changes it;
#: * ``text`` (a sentence typed): 300 s, a stated feeling colours the next several minutes;
#: * ``biometrics``: 5 s (the biometric reader already fades and expires lost channels;
#:   this covers a reading that is itself stale, e.g. a stalled listener);
#: * ``audio`` (the recogniser on live sound): 2 s, it speaks every fraction of a second
#:   and a silent input should stop steering quickly.
HALF_LIFE_S: dict[str, float] = {"audio": 2.0, "text": 300.0, "biometrics": 5.0, "explicit": math.inf}

#: Effective confidences below this count as 0 (the source is skipped): an exponential
#: fade never reaches 0 by itself. With it audio drops out ~13 s after it last spoke,
#: biometrics ~33 s, text ~33 min.
MIN_CONFIDENCE = 0.01

NEUTRAL = (0.0, 0.5, 0.5)
NEUTRAL_INTENSITY = 0.5


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise InputError(f"{what} is NaN (not a number)")
    return value


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _pad(valence: object, arousal: object, dominance: object) -> tuple[float, float, float]:
    """(V, A, D) checked for NaN and clipped to V∈[-1, 1], A, D∈[0, 1]."""
    return (_clip(_finite(valence, "valence"), -1.0, 1.0), _clip(_finite(arousal, "arousal"), 0.0, 1.0),
            _clip(_finite(dominance, "dominance"), 0.0, 1.0))


def nearest_label(valence: float, arousal: float, dominance: float | None = None) -> str:
    """The name of the thesaurus emotion nearest a PAD point (:meth:`Thesaurus.nearest`)."""
    from kelly.emotion.thesaurus import load_thesaurus

    return load_thesaurus().nearest(valence, arousal, dominance).name


@dataclass(frozen=True)
class SourceReading:
    """One source's latest reading.

    Parameters
    ----------
    valence : float, clipped to [-1, 1]
    arousal : float, clipped to [0, 1]
    dominance : float, clipped to [0, 1]
    confidence : float, clipped to [0, 1]
        How sure the source is, before ageing.
    age_s : float ≥ 0 (may be ``inf``)
        Seconds since the source produced this reading. Negative ages are taken as 0.
    intensity : float in [0, 1] or None
        If the source knows it (text, biometrics).

    Raises
    ------
    InputError
        If any number is NaN or not a number.
    """

    valence: float
    arousal: float
    dominance: float
    confidence: float = 1.0
    age_s: float = 0.0
    intensity: float | None = None

    def __post_init__(self) -> None:
        v, a, d = _pad(self.valence, self.arousal, self.dominance)
        object.__setattr__(self, "valence", v)
        object.__setattr__(self, "arousal", a)
        object.__setattr__(self, "dominance", d)
        object.__setattr__(self, "confidence", _clip(_finite(self.confidence, "confidence"), 0.0, 1.0))
        object.__setattr__(self, "age_s", max(0.0, _finite(self.age_s, "age_s")))
        if self.intensity is not None:
            object.__setattr__(self, "intensity", _clip(_finite(self.intensity, "intensity"), 0.0, 1.0))

    def effective_confidence(self, half_life_s: float) -> float:
        """``confidence · 0.5 ** (age_s / half_life_s)``; 0 below :data:`MIN_CONFIDENCE`."""
        if self.age_s == 0.0 or math.isinf(half_life_s):
            c = self.confidence
        elif math.isinf(self.age_s):
            c = 0.0
        else:
            c = self.confidence * 0.5 ** (self.age_s / half_life_s)
        return c if c >= MIN_CONFIDENCE else 0.0

    def to_dict(self) -> dict:
        """Fields of :class:`kelly.contracts.LiveEmotion` (label: the nearest thesaurus emotion)."""
        return {"valence": self.valence, "arousal": self.arousal, "dominance": self.dominance,
                "confidence": self.confidence,
                "label": nearest_label(self.valence, self.arousal, self.dominance), "age_s": self.age_s}


@dataclass(frozen=True)
class FusedEmotion:
    """The emotion the music follows, blended from the sources.

    Attributes
    ----------
    valence : float in [-1, 1]
    arousal, dominance : float in [0, 1]
    intensity : float in [0, 1]
        Weighted mean of the intensities the sources gave (0.5 if none gave one).
    confidence : float in [0, 1]
        ``1 − Π(1 − c_eff)`` over the sources used: the chance that at least one of them
        is right, if each is right with its effective confidence. 0 when nothing is heard.
    label : str or None
        The nearest thesaurus emotion; ``None`` when ``confidence`` is 0 (nothing to name).
    weights : dict of str → float
        Each used source's share of the mean (the shares sum to 1).
    effective : dict of str → float
        Each used source's effective (aged, weighted) confidence.
    """

    valence: float = NEUTRAL[0]
    arousal: float = NEUTRAL[1]
    dominance: float = NEUTRAL[2]
    intensity: float = NEUTRAL_INTENSITY
    confidence: float = 0.0
    label: str | None = None
    weights: dict[str, float] = field(default_factory=dict, hash=False)
    effective: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def pad(self) -> tuple[float, float, float]:
        """(valence, arousal, dominance)."""
        return (self.valence, self.arousal, self.dominance)

    def to_dict(self) -> dict:
        """Fields of :class:`kelly.contracts.LiveEmotion`: ``LiveEmotion(**fused.to_dict())``."""
        return {"valence": self.valence, "arousal": self.arousal, "dominance": self.dominance,
                "confidence": self.confidence, "label": self.label}

    def to_state(self):
        """An :class:`~kelly.emotion.state.EmotionState` (``source="fusion"``) for the mapping stage.

        With nothing heard (label ``None``) the state is named after the emotion nearest
        the neutral point and keeps confidence 0.
        """
        from kelly.emotion.state import EmotionState
        from kelly.emotion.thesaurus import load_thesaurus

        entry = load_thesaurus().nearest(self.valence, self.arousal, self.dominance)
        return EmotionState(label=entry.name, family=entry.family, valence=self.valence, arousal=self.arousal,
                            dominance=self.dominance, intensity=self.intensity, confidence=self.confidence,
                            source="fusion")


def fuse(readings: Mapping[str, object], *, half_lives: Mapping[str, float] | None = None,
         weights: Mapping[str, float] | None = None) -> FusedEmotion:
    """Blend the sources' readings into one emotion.

    For each source ``s`` with reading ``r``::

        c_eff(s) = w(s) · r.confidence · 0.5 ** (r.age_s / half_life(s))   (0 if < MIN_CONFIDENCE)
        V        = Σ c_eff(s) · r.valence / Σ c_eff(s)                      (the same for A, D, intensity)
        confidence = 1 − Π (1 − min(c_eff(s), 1))

    Parameters
    ----------
    readings : mapping of str → SourceReading (or a BioReading, or None)
        Keys from :data:`SOURCES` (``"audio"``, ``"text"``, ``"biometrics"``,
        ``"explicit"``) or any name given a half-life in ``half_lives``. ``None`` values
        (a source not heard yet) are skipped. A :class:`~kelly.emotion.bio.BioReading` is
        converted with its ``to_source()``.
    half_lives : mapping of str → float > 0, optional
        Replaces entries of :data:`HALF_LIFE_S` (``inf``: never fades).
    weights : mapping of str → float ≥ 0, optional
        Extra trust per source (default 1 each), e.g. ``{"explicit": 2.0}`` to let the
        therapist's sliders outweigh the sensors. 0 switches a source off.

    Returns
    -------
    FusedEmotion
        Neutral (V 0, A 0.5, D 0.5) with confidence 0 and label ``None`` when no source
        has an effective confidence above 0.

    Raises
    ------
    InputError
        For an unknown source name, a reading of the wrong type, NaN, or a bad half-life
        or weight.
    """
    lives = dict(HALF_LIFE_S)
    for name, value in (half_lives or {}).items():
        value = _finite(value, f"half-life of {name!r}")
        if value <= 0:
            raise InputError(f"half-life of {name!r} must be > 0 seconds, got {value!r}")
        lives[name] = value
    trust: dict[str, float] = {}
    for name, value in (weights or {}).items():
        value = _finite(value, f"weight of {name!r}")
        if value < 0 or math.isinf(value):
            raise InputError(f"weight of {name!r} must be a finite number ≥ 0, got {value!r}")
        trust[name] = value
    if not isinstance(readings, Mapping):
        raise InputError(f"fuse() takes a mapping of source name → SourceReading, got {type(readings).__name__}")
    used: list[tuple[str, SourceReading, float]] = []
    for name, reading in readings.items():
        if name not in lives:
            raise InputError(f"unknown emotion source {name!r}; known sources: {', '.join(lives)}")
        if reading is None:
            continue
        if not isinstance(reading, SourceReading) and hasattr(reading, "to_source"):
            reading = reading.to_source()
        if not isinstance(reading, SourceReading):
            raise InputError(f"source {name!r}: expected a SourceReading, got {type(reading).__name__}")
        c = reading.effective_confidence(lives[name]) * trust.get(name, 1.0)
        if c >= MIN_CONFIDENCE:
            used.append((name, reading, c))
    if not used:
        return FusedEmotion()
    total = sum(c for _, _, c in used)
    v = sum(c * r.valence for _, r, c in used) / total
    a = sum(c * r.arousal for _, r, c in used) / total
    d = sum(c * r.dominance for _, r, c in used) / total
    with_intensity = [(r.intensity, c) for _, r, c in used if r.intensity is not None]
    if with_intensity:
        intensity = sum(i * c for i, c in with_intensity) / sum(c for _, c in with_intensity)
    else:
        intensity = NEUTRAL_INTENSITY
    miss = 1.0
    for _, _, c in used:
        miss *= 1.0 - min(c, 1.0)
    v, a, d = _pad(v, a, d)
    return FusedEmotion(valence=v, arousal=a, dominance=d, intensity=_clip(intensity, 0.0, 1.0),
                        confidence=_clip(1.0 - miss, 0.0, 1.0), label=nearest_label(v, a, d),
                        weights={n: c / total for n, _, c in used}, effective={n: c for n, _, c in used})


class EmotionSmoother:
    """Exponential smoothing of (V, A, D), as in the original plugin.

    ``x ← alpha · new + (1 − alpha) · x`` per update; the first update takes the value
    as it is. Call it at a steady rate (e.g. every engine tick): with updates every
    ``dt`` seconds the time constant is about ``dt / alpha`` (see :meth:`alpha_for`).

    Parameters
    ----------
    alpha : float in (0, 1]
        Weight of the new value. 1 follows at once; 0.1 (default) glides over about ten
        updates.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        alpha = _finite(alpha, "alpha")
        if not 0.0 < alpha <= 1.0:
            raise InputError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = alpha
        self._value: tuple[float, float, float] | None = None

    @staticmethod
    def alpha_for(time_constant_s: float, interval_s: float) -> float:
        """The alpha that gives a time constant ``τ`` at one update every ``interval_s``: ``1 − e^(−dt/τ)``."""
        tau = _finite(time_constant_s, "time_constant_s")
        dt = _finite(interval_s, "interval_s")
        if tau <= 0 or dt <= 0 or math.isinf(dt):
            raise InputError("time_constant_s and interval_s must be finite numbers > 0")
        return 1.0 - math.exp(-dt / tau)

    @property
    def value(self) -> tuple[float, float, float] | None:
        """The smoothed (V, A, D), or ``None`` before the first update."""
        return self._value

    def reset(self) -> None:
        """Forget the smoothed value (the next update is taken as it is)."""
        self._value = None

    def update(self, valence: float, arousal: float, dominance: float) -> tuple[float, float, float]:
        """Take one (V, A, D) (clipped; NaN refused) and return the smoothed (V, A, D)."""
        new = _pad(valence, arousal, dominance)
        if self._value is None:
            self._value = new
        else:
            k = self.alpha
            self._value = tuple(k * n + (1.0 - k) * x for n, x in zip(new, self._value))  # type: ignore[assignment]
        return self._value

    def smooth(self, fused: FusedEmotion) -> FusedEmotion:
        """Smooth a :class:`FusedEmotion`'s V/A/D and name the result.

        A reading with confidence 0 (nothing heard) does not move the smoothed value: the
        music holds where it was, reported with confidence 0.
        """
        if not isinstance(fused, FusedEmotion):
            raise InputError(f"smooth() takes a FusedEmotion, got {type(fused).__name__}")
        if fused.confidence <= 0.0:
            if self._value is None:
                return fused
            v, a, d = self._value
        else:
            v, a, d = self.update(*fused.pad)
        return replace(fused, valence=v, arousal=a, dominance=d, label=nearest_label(v, a, d))


__all__ = ["HALF_LIFE_S", "MIN_CONFIDENCE", "SOURCES", "EmotionSmoother", "FusedEmotion", "SourceReading", "fuse",
           "nearest_label"]
