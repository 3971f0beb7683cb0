"""The emotion value that every door in (text, audio, biometrics, explicit V/A/D) produces.

Conventions (DESIGN.md): valence in [-1, 1], arousal and dominance in [0, 1],
intensity and confidence in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from kelly.errors import InputError


@dataclass(frozen=True)
class Evidence:
    """One piece of text that pointed at an emotion: ``words`` led to ``emotion``."""

    words: str
    emotion: str
    kind: str  # "phrase", "keyword", "synonym", "lexicon", "negated", "modifier", "fallback", ...
    weight: float

    def to_dict(self) -> dict:
        return {"words": self.words, "emotion": self.emotion, "kind": self.kind, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class SecondaryEmotion:
    emotion: str
    weight: float

    def to_dict(self) -> dict:
        return {"emotion": self.emotion, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class EmotionState:
    """A reading of how someone feels, blended into one point in PAD space."""

    label: str
    family: str
    valence: float
    arousal: float
    dominance: float
    intensity: float = 0.5
    confidence: float = 1.0
    secondary: tuple[SecondaryEmotion, ...] = field(default_factory=tuple)
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    source: str = "text"

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("valence", -1.0, 1.0),
            ("arousal", 0.0, 1.0),
            ("dominance", 0.0, 1.0),
            ("intensity", 0.0, 1.0),
            ("confidence", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or not lo <= value <= hi:
                raise InputError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")

    def with_overrides(self, *, valence=None, arousal=None, dominance=None, intensity=None) -> "EmotionState":
        """Return a copy with explicit V/A/D/intensity values replacing the read ones."""
        changes = {k: float(v) for k, v in (("valence", valence), ("arousal", arousal),
                                            ("dominance", dominance), ("intensity", intensity)) if v is not None}
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict:
        return {
            "emotion": self.label,
            "family": self.family,
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "dominance": round(self.dominance, 4),
            "intensity": round(self.intensity, 4),
            "confidence": round(self.confidence, 4),
            "secondary": [s.to_dict() for s in self.secondary],
            "evidence": [e.to_dict() for e in self.evidence],
            "source": self.source,
        }
