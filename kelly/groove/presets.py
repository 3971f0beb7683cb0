"""Humanizer settings: the 10 emotional presets, the 4 quick styles, and intent mapping.

The humanizer has two axes, as in the original "Drunken Drummer":

* **complexity** (0–1): how far notes drift off the grid and how many drop out;
* **vulnerability** (0–1): how wide and how soft the dynamics are, and whether quiet
  ghost notes appear (only above 0.6).

The numbers are the original's (reference §7). Where a preset file held more than
complexity and vulnerability we know only two details (defiant_punk plays at velocity
60–127; mechanical_dissociation has no ghost notes); every other field keeps the
defaults below, which are the original engine's constants.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from kelly.errors import InputError

#: Probability that a snare or hi-hat hit gets a ghost note (when vulnerability > 0.6).
GHOST_NOTE_PROBABILITY = 0.15
#: Velocity bounds for humanized hits (the original avoids 127 blasts).
VELOCITY_MIN = 20
VELOCITY_MAX = 120


@dataclass(frozen=True)
class HumanizeSettings:
    """Everything :func:`kelly.groove.humanize.humanize` needs.

    Attributes
    ----------
    complexity : float in [0, 1]
        Timing looseness and dropout probability.
    vulnerability : float in [0, 1]
        Dynamic spread and softness; enables ghost notes above 0.6.
    ghost_notes : bool
        Allow ghost notes at all.
    ghost_probability : float in [0, 1]
        Chance per snare/hi-hat hit of a ghost note a 16th before it.
    ghost_velocity_mult : float in (0, 1]
        Ghost velocity as a fraction of the hit's (then capped at 45).
    velocity_min, velocity_max : int in 1..127
        Bounds for humanized (non-ghost) velocities.
    kick_timing_mult, snare_timing_mult, hihat_timing_mult : float >= 0
        Timing spread per drum relative to other drums (kick tightest: it anchors the
        groove; hats loosest: their drift is felt as "feel", not as error).
    non_drum_scale : float in [0, 1]
        Non-drum parts get timing and velocity changes scaled by this (no dropouts, no
        ghosts), because a melody that wanders as far as a hi-hat sounds sloppy.
    drum_timing : float >= 0
        Scales every drum's timing spread (1 leaves it; the networks' ``microtiming_ms``).
    part_timing : float >= 0
        Scales the pitched parts' timing spread (1 leaves it; ``timing_humanize``).
    track_timing : tuple of (track name, float >= 0)
        Further timing scale for named pitched tracks (the melody's ``timing_spread``).
    velocity_spread : float >= 0
        Scales the velocity spread of drums and parts (1 leaves it; ``velocity_humanize``).
    name : str
        Where the settings came from (preset or style name), for reports.
    """

    complexity: float = 0.4
    vulnerability: float = 0.5
    ghost_notes: bool = True
    ghost_probability: float = GHOST_NOTE_PROBABILITY
    ghost_velocity_mult: float = 0.4
    velocity_min: int = VELOCITY_MIN
    velocity_max: int = VELOCITY_MAX
    kick_timing_mult: float = 0.5
    snare_timing_mult: float = 0.7
    hihat_timing_mult: float = 1.2
    non_drum_scale: float = 0.5
    drum_timing: float = 1.0
    part_timing: float = 1.0
    track_timing: tuple = ()
    velocity_spread: float = 1.0
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("complexity", "vulnerability", "ghost_probability", "non_drum_scale"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InputError(f"humanize {key} must be between 0 and 1, got {value!r}")
        if not 0.0 < self.ghost_velocity_mult <= 1.0:
            raise InputError(f"ghost_velocity_mult must be in (0, 1], got {self.ghost_velocity_mult!r}")
        if not 1 <= self.velocity_min <= self.velocity_max <= 127:
            raise InputError(
                f"velocity range must satisfy 1 <= min <= max <= 127, got {self.velocity_min}..{self.velocity_max}"
            )
        for key in ("kick_timing_mult", "snare_timing_mult", "hihat_timing_mult", "drum_timing", "part_timing",
                    "velocity_spread"):
            if getattr(self, key) < 0:
                raise InputError(f"{key} must be >= 0")
        for item in self.track_timing:
            if len(item) != 2 or not isinstance(item[0], str) or not item[1] >= 0:
                raise InputError(f"track_timing entries must be (track name, scale >= 0), got {item!r}")

    def timing_for(self, track_name: str) -> float:
        """The pitched part ``track_name``'s timing scale: :attr:`part_timing` times its :attr:`track_timing` entry."""
        return self.part_timing * dict(self.track_timing).get(track_name, 1.0)

    def with_overrides(self, *, complexity: float | None = None, vulnerability: float | None = None,
                       ghost_notes: bool | None = None) -> "HumanizeSettings":
        """Copy with the user's explicit overrides applied (``None`` keeps a value)."""
        changes = {}
        if complexity is not None:
            changes["complexity"] = float(complexity)
        if vulnerability is not None:
            changes["vulnerability"] = float(vulnerability)
        if ghost_notes is not None:
            changes["ghost_notes"] = bool(ghost_notes)
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """A named setting with a line saying what it is for."""

    name: str
    description: str
    settings: HumanizeSettings


def _preset(name: str, complexity: float, vulnerability: float, description: str, **extra) -> Preset:
    return Preset(name, description, HumanizeSettings(complexity=complexity, vulnerability=vulnerability,
                                                      name=name, **extra))


#: The 10 humanize presets of the original (complexity, vulnerability from §7).
PRESETS: dict[str, Preset] = {p.name: p for p in (
    _preset("lofi_depression", 0.4, 0.8, "heavy, behind the beat, soft and uneven: lo-fi sadness"),
    _preset("anxious_driving", 0.25, 0.4, "pushing and tight, small nervous variations"),
    _preset("defiant_punk", 0.7, 0.2, "loose but loud: every hit 60-127", velocity_min=60, velocity_max=127),
    _preset("intimate_vulnerability", 0.5, 0.9, "fragile, quiet, wide dynamics and ghost notes"),
    _preset("nostalgic_swing", 0.45, 0.55, "relaxed, warm drift"),
    _preset("hiphop_pocket", 0.55, 0.3, "laid-back pocket with confident hits"),
    _preset("mechanical_dissociation", 0.08, 0.15, "near-quantized and numb, no ghost notes", ghost_notes=False),
    _preset("chaotic_breakdown", 0.95, 0.85, "falling apart: big drift, dropouts, ghosts"),
    _preset("tight_controlled", 0.15, 0.2, "studio-tight, confident"),
    _preset("funk_pocket", 0.35, 0.25, "in the pocket, punchy"),
)}

#: The 4 quick styles of the original ``quick_humanize``: (complexity, vulnerability).
STYLES: dict[str, tuple[float, float]] = {
    "tight": (0.1, 0.2),
    "natural": (0.4, 0.5),
    "loose": (0.6, 0.6),
    "drunk": (0.9, 0.8),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> HumanizeSettings:
    """Settings of the preset called ``name``.

    Raises
    ------
    InputError
        If there is no such preset; the message lists the names there are.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return PRESETS[key].settings
    except KeyError:
        raise InputError(f"unknown humanize preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def get_style(name: str) -> HumanizeSettings:
    """Settings of a quick style: tight, natural, loose or drunk.

    Raises
    ------
    InputError
        If the style is unknown.
    """
    key = str(name).strip().lower()
    try:
        complexity, vulnerability = STYLES[key]
    except KeyError:
        raise InputError(f"unknown humanize style {name!r}; choose one of: {', '.join(STYLES)}") from None
    return HumanizeSettings(complexity=complexity, vulnerability=vulnerability, name=key)


#: Intent vulnerability scale → number.
VULNERABILITY_SCALE = {"low": 0.2, "medium": 0.5, "high": 0.8}
#: Intent groove feel → complexity.
FEEL_COMPLEXITY = {
    "straight/driving": 0.2, "mechanical": 0.0, "laid back": 0.6, "swung": 0.4, "syncopated": 0.5,
    "rubato/free": 0.9, "organic/breathing": 0.7, "push-pull": 0.5,
}


def settings_from_intent(vulnerability_scale: str, groove_feel: str, mood_tension: float = 0.5) -> HumanizeSettings:
    """Map song-intent words to settings, as the original ``settings_from_intent`` did.

    Vulnerability Low/Medium/High → 0.2/0.5/0.8; the groove feel sets complexity, which
    tension scales by ``0.8 + 0.4·tension`` (tense songs play looser). Unknown words fall
    back to the medium values (0.5) because intent text is free-form. "Mechanical" also
    turns off ghost notes and tightens every drum; "Laid Back" loosens the snare against
    a tight kick; "Rubato/Free" makes ghosts likelier.
    """
    vulnerability = VULNERABILITY_SCALE.get(str(vulnerability_scale).strip().lower(), 0.5)
    feel = str(groove_feel).strip().lower()
    tension = min(1.0, max(0.0, float(mood_tension)))
    complexity = min(1.0, FEEL_COMPLEXITY.get(feel, 0.5) * (0.8 + 0.4 * tension))
    settings = HumanizeSettings(complexity=complexity, vulnerability=vulnerability, name=f"intent:{feel}")
    if feel == "mechanical":
        settings = replace(settings, ghost_notes=False, kick_timing_mult=0.1, snare_timing_mult=0.1,
                           hihat_timing_mult=0.1)
    elif feel == "laid back":
        settings = replace(settings, kick_timing_mult=0.3, snare_timing_mult=0.8, hihat_timing_mult=1.0)
    elif feel == "rubato/free":
        settings = replace(settings, ghost_probability=0.25)
    return settings
