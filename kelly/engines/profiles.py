"""Per-emotion engine profiles, chosen by name or by nearest point in valence/arousal.

The original engines each had a ``profiles_`` map keyed by a dozen lowercase emotion
names and fell back to "neutral" for everything else (§6.2), so most emotions got the
neutral profile. Here every emotion gets the profile whose anchor is nearest in
(valence, arousal), unless its own name or family has one.
"""

from __future__ import annotations

import math

from kelly.emotion.state import EmotionState

#: Anchor (valence, arousal) of each profile.
ANCHORS: dict[str, tuple[float, float]] = {
    "grief": (-0.9, 0.3),
    "sadness": (-0.6, 0.35),
    "nostalgia": (0.15, 0.3),
    "peace": (0.4, 0.15),
    "love": (0.8, 0.55),
    "hope": (0.6, 0.6),
    "joy": (0.8, 0.8),
    "anger": (-0.8, 0.95),
    "fear": (-0.8, 0.85),
    "anxiety": (-0.5, 0.7),
    "tension": (-0.2, 0.75),
    "neutral": (0.0, 0.5),
}
_NAME_ALIASES = {"rage": "anger", "fury": "anger", "terror": "fear", "panic": "fear", "sorrow": "sadness",
                 "melancholy": "sadness", "calm": "peace", "serenity": "peace", "happiness": "joy",
                 "ecstasy": "joy", "elation": "joy", "worry": "anxiety", "despair": "grief"}


def profile_for(state: EmotionState) -> str:
    """The profile name for an emotion: its own name, an alias, or the nearest anchor."""
    name = state.label.lower()
    if name in ANCHORS:
        return name
    if name in _NAME_ALIASES:
        return _NAME_ALIASES[name]
    return min(ANCHORS, key=lambda p: (math.dist(ANCHORS[p], (state.valence, state.arousal)), p))
