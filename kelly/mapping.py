"""Emotion → musical parameters: every formula in one place, each naming its source.

Sources are sections of ``shared/reference/original-system.md`` (the original C++ and
Python code). Where we deliberately differ from the original, the docstring says so and
why. Tempo and velocity *truncate*, as the C++ ``static_cast<int>`` did (§3.9):
tempo(0.5) = 120, velocity(0.25) = 76.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kelly.emotion.state import EmotionState
from kelly.theory.scales import MINOR_MODES, Key, parse_key

# --------------------------------------------------------------------------- §3.1


def tempo_bpm(arousal: float) -> int:
    """Tempo = 60 + 120·arousal, truncated; 60–180 BPM. Source: EmotionMusicMapper::calculateTempo (§3.1)."""
    a = min(1.0, max(0.0, arousal))
    return int(60.0 + 120.0 * a + 1e-9)


def base_velocity(dominance: float) -> int:
    """Velocity = 60 + 67·dominance, truncated; 60–127. Source: EmotionMusicMapper::calculateVelocity (§3.1).

    The original computed this and never used it (§0); Kelly uses it as the base
    velocity every engine's dynamics are centred on.
    """
    d = min(1.0, max(0.0, dominance))
    return int(60.0 + 67.0 * d + 1e-9)


def loudness(arousal: float, intensity: float, dominance: float) -> float:
    """How loud the feeling is, in [0, 1]: 0.8·arousal + 0.15·intensity + 0.15·(dominance − 0.5).

    Deliberate change (issue 8): the original's velocity followed dominance alone, so
    tender and calm feelings (high dominance in the thesaurus) came out louder than
    anxious ones. Loudness follows arousal and intensity; dominance is an offset of at
    most ±0.075. :func:`velocity_for` feeds it to the seed's formula.
    """
    a, i, d = (min(1.0, max(0.0, x)) for x in (arousal, intensity, dominance))
    return min(1.0, max(0.0, 0.8 * a + 0.15 * i + 0.15 * (d - 0.5)))


def velocity_for(arousal: float, intensity: float, dominance: float) -> int:
    """Base velocity = 60 + 67·loudness (the seed's formula, :func:`base_velocity`, centred on loudness)."""
    return base_velocity(loudness(arousal, intensity, dominance))


def melody_centre(valence: float, arousal: float) -> int:
    """Centre pitch of the melody: 69 + 6·valence + 4·(arousal − 0.5), clamped to 60..78.

    The seed's register octave (:func:`register_octave`) is 4 for every valence below
    +1, so the melody's register never moved with the feeling. The centre rises by a
    whole tone per 0.33 of valence and a little with arousal: dark feelings sit around
    E4, bright ones around A5.
    """
    v = min(1.0, max(-1.0, valence))
    a = min(1.0, max(0.0, arousal))
    return int(min(78, max(60, round(69 + 6 * v + 4 * (a - 0.5)))))


#: Feelings that sway rather than march: lullabies and tenderness rock in 6/8, nostalgia waltzes in 3/4.
METER_WORDS = {
    (6, 8): ("tenderness", "tender", "affection", "affectionate", "fondness", "lullaby", "cradle", "gentleness",
             "caring", "devotion", "adoration", "soothed", "cozy"),
    (3, 4): ("nostalgia", "nostalgic", "wistful", "wistfulness", "longing", "yearning", "reminiscence",
             "bittersweet", "sentimental", "homesick", "homesickness", "reverie"),
}


def meter_for(state: EmotionState) -> tuple[int, int]:
    """The time signature for a feeling: 6/8 for tenderness and lullabies, 3/4 for nostalgia, else 4/4.

    Kelly's own choice (the seeds compose everything in 4/4): a metre that sways carries
    these feelings the way a cradle song or a waltz does. ``--meter`` overrides it.
    """
    label = state.label.lower().strip()
    for meter, words in METER_WORDS.items():
        if label in words:
            return meter
    return (4, 4)


def parse_meter(text: str) -> tuple[int, int]:
    """``"3/4"`` → (3, 4). Kelly writes 4/4, 3/4 and 6/8."""
    from kelly.errors import InputError

    cleaned = (text or "").strip().replace(" ", "")
    table = {"4/4": (4, 4), "3/4": (3, 4), "6/8": (6, 8)}
    if cleaned not in table:
        raise InputError(f"unknown metre {text!r}; choose 4/4, 3/4 or 6/8")
    return table[cleaned]


def simple_mode(valence: float) -> str:
    """"major" if valence > 0 else "minor" (0 counts as minor). Source: calculateMode (§3.1)."""
    return "major" if valence > 0 else "minor"


def detailed_mode(valence: float, arousal: float) -> str:
    """Church mode from valence and arousal. Source: calculateDetailedMode (§3.1).

    v > 0.5: lydian if a > 0.7, ionian if a > 0.4, else mixolydian; v > 0: mixolydian if
    a > 0.5 else dorian; v > −0.5: dorian if a > 0.5 else aeolian; else phrygian if
    a > 0.7 else aeolian.
    """
    v, a = valence, arousal
    if v > 0.5:
        return "lydian" if a > 0.7 else "ionian" if a > 0.4 else "mixolydian"
    if v > 0.0:
        return "mixolydian" if a > 0.5 else "dorian"
    if v > -0.5:
        return "dorian" if a > 0.5 else "aeolian"
    return "phrygian" if a > 0.7 else "aeolian"


def composition_mode(valence: float, arousal: float) -> str:
    """The mode Kelly composes in: :func:`detailed_mode`, kept on the side of :func:`simple_mode`.

    Deliberate change: for 0 < v ≤ 0.5 and a ≤ 0.5 the original's detailed mode is dorian,
    a minor-third mode, while its own ``calculateMode`` says major. A listener (and a key
    finder) hears dorian as minor, so positive valence would sound sad. We keep the
    detailed mode's colour but move it to the nearest mode with the right third:
    dorian → mixolydian (they differ only in the third).
    """
    mode = detailed_mode(valence, arousal)
    if simple_mode(valence) == "major" and mode in MINOR_MODES:
        return "mixolydian"
    return mode


def key_tonic(valence: float, intensity: float) -> str:
    """Tonic from valence and intensity. Source: EmotionMapper key rule (§3.4).

    v < −0.5 → Eb if i > 0.7 else F; v < 0 → D ("Dm"); v < 0.5 → C; else A if i > 0.7 else G.
    """
    if valence < -0.5:
        return "Eb" if intensity > 0.7 else "F"
    if valence < 0:
        return "D"
    if valence < 0.5:
        return "C"
    return "A" if intensity > 0.7 else "G"


# --------------------------------------------------------------------------- §3.4 / §3.6


def quadrant(valence: float, arousal: float) -> str:
    """EmotionMapper quadrant (§3.4): (v ≥ 0) × (a ≥ 0.5)."""
    return ("v+" if valence >= 0 else "v-") + ("a+" if arousal >= 0.5 else "a-")


_QUADRANT_DISSONANCE = {"v+a+": 0.1, "v+a-": 0.0, "v-a+": 0.7, "v-a-": 0.3}


def dissonance(valence: float, arousal: float, intensity: float) -> float:
    """Quadrant dissonance + (v < 0 ? |v|·0.3·i : 0), clamped to [0, 1]. Source: §3.4."""
    value = _QUADRANT_DISSONANCE[quadrant(valence, arousal)]
    if valence < 0:
        value += abs(valence) * 0.3 * intensity
    return min(1.0, max(0.0, value))


def density(arousal: float) -> float:
    """Note density = 0.3 + 0.5·arousal (space probability = 1 − density). Source: §3.4."""
    return 0.3 + 0.5 * min(1.0, max(0.0, arousal))


def register_octave(valence: float) -> int:
    """Melody octave = clamp(4 + int((v + 1)·0.5), 3, 6). Source: _calculate_musical_attributes (§3.6)."""
    return min(6, max(3, 4 + int((valence + 1.0) * 0.5)))


def dynamics_range(intensity: float) -> tuple[float, int, int]:
    """(range, velocity min, velocity max): range = 0.3 + 0.7i; min = int(40 + (1 − range)·40);
    max = int(80 + 47·range). Source: EmotionMapper dynamics (§3.4)."""
    rng = 0.3 + 0.7 * min(1.0, max(0.0, intensity))
    return rng, int(40 + (1 - rng) * 40), int(80 + 47 * rng)


def timing_feel(valence: float, arousal: float) -> tuple[str, float]:
    """(feel, swing): v < −0.3 ∧ a < 0.4 → laid-back; a > 0.7 ∧ v > 0.3 → pushed;
    v > 0.2 ∧ 0.4 < a < 0.7 → swung with swing 0.66; else straight. Source: §3.4."""
    if valence < -0.3 and arousal < 0.4:
        return "laid_back", 0.0
    if arousal > 0.7 and valence > 0.3:
        return "pushed", 0.0
    if valence > 0.2 and 0.4 < arousal < 0.7:
        return "swung", 0.66
    return "straight", 0.0


def groove_type(valence: float, arousal: float) -> str:
    """Syncopated if a > 0.7, shuffle if a < 0.3, swing if v > 0.5, else straight. Source: GrooveEngine (§6.3)."""
    if arousal > 0.7:
        return "syncopated"
    if arousal < 0.3:
        return "shuffle"
    if valence > 0.5:
        return "swing"
    return "straight"


def humanization(intensity: float) -> tuple[float, float]:
    """(timing variation in beats, velocity variation as a fraction): 0.01 + 0.03i and
    0.05 + 0.15i. Source: EmotionMapper humanization (§3.4)."""
    i = min(1.0, max(0.0, intensity))
    return 0.01 + 0.03 * i, 0.05 + 0.15 * i


def emotion_timing_bias(state: EmotionState) -> float:
    """Drag or rush in beats for strongly negative emotions. Source: applyEmotionTiming (§3.8).

    Sadness-like (grief, sorrow, lonely…) drags by 0.01·i beats, anger-like rushes by
    0.01·i. The original compared capitalised names case-sensitively, so "Grief" never
    matched; here the family decides.
    """
    if state.valence >= -0.5:
        return 0.0
    if state.family in ("sadness",):
        return -0.01 * state.intensity
    if state.family in ("anger",):
        return 0.01 * state.intensity
    return 0.0


# --------------------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class MusicalParameters:
    """Everything the engines need from an emotion, with the reason for each value."""

    tempo: int
    velocity: int
    mode: str  # simple: "major" | "minor"
    detailed_mode: str
    key: Key
    register_octave: int
    density: float
    dissonance: float
    dynamics_range: float
    velocity_min: int
    velocity_max: int
    timing_feel: str
    swing: float
    groove: str
    timing_variation: float  # beats
    velocity_variation: float  # fraction
    timing_bias: float  # beats, negative = behind the beat
    reasons: dict = field(default_factory=dict, compare=False)
    register_centre: int = 69  # the melody's centre pitch (see melody_centre)
    meter: tuple[int, int] = (4, 4)  # time signature (see meter_for)

    def to_dict(self) -> dict:
        return {
            "tempo_bpm": self.tempo,
            "base_velocity": self.velocity,
            "mode": self.mode,
            "detailed_mode": self.detailed_mode,
            "key": self.key.name,
            "register_octave": self.register_octave,
            "melody_centre": self.register_centre,
            "meter": f"{self.meter[0]}/{self.meter[1]}",
            "density": round(self.density, 4),
            "dissonance": round(self.dissonance, 4),
            "dynamics_range": round(self.dynamics_range, 4),
            "velocity_min": self.velocity_min,
            "velocity_max": self.velocity_max,
            "timing_feel": self.timing_feel,
            "swing": round(self.swing, 4),
            "groove": self.groove,
            "timing_variation_beats": round(self.timing_variation, 4),
            "velocity_variation": round(self.velocity_variation, 4),
            "timing_bias_beats": round(self.timing_bias, 4),
            "why": dict(self.reasons),
        }


def map_emotion(state: EmotionState, *, key: str | None = None, humanize: float | None = None,
                meter: str | None = None) -> MusicalParameters:
    """Turn an :class:`EmotionState` into :class:`MusicalParameters`.

    Parameters
    ----------
    state : EmotionState
    key : str, optional
        A key chosen by the user (``"F"``, ``"Am"``, ``"D dorian"``). A bare tonic keeps
        the emotion's mode; a key with a mode overrides it.
    humanize : float in [0, 1], optional
        Scales the humanization amounts (0 = quantized, 1 = twice the emotion's default).
    """
    v, a, d, i = state.valence, state.arousal, state.dominance, state.intensity
    mode = composition_mode(v, a)
    reasons = {
        "tempo_bpm": f"60 + 120 x arousal {a:.2f} (EmotionMusicMapper, truncated)",
        "base_velocity": f"60 + 67 x loudness {loudness(a, state.intensity, d):.2f}, loudness = 0.8 x arousal "
                         f"{a:.2f} + 0.15 x intensity {state.intensity:.2f} + 0.15 x (dominance {d:.2f} - 0.5) "
                         "(EmotionMusicMapper's formula, centred on loudness rather than dominance alone)",
        "mode": f"valence {v:+.2f} {'> 0: major' if v > 0 else '<= 0: minor'} (calculateMode)",
        "detailed_mode": f"valence {v:+.2f}, arousal {a:.2f} -> {detailed_mode(v, a)} (calculateDetailedMode)"
        + ("" if mode == detailed_mode(v, a) else f"; composed in {mode} to keep the major third of positive valence"),
    }
    tonic = key_tonic(v, i)
    reasons["key"] = f"valence {v:+.2f}, intensity {i:.2f} -> tonic {tonic} (EmotionMapper key rule)"
    if key:
        user_key = parse_key(key)
        has_mode = any(ch.isalpha() for ch in key.strip()[1:].lstrip("#b♯♭")) or key.strip()[:1].islower()
        chosen = user_key if has_mode else Key(user_key.tonic, mode)
        mode = chosen.mode
        reasons["key"] = f"chosen by the user ({key})"
    else:
        chosen = Key(tonic, mode)
    dr, vmin, vmax = dynamics_range(i)
    feel, swing = timing_feel(v, a)
    tvar, vvar = humanization(i)
    scale = 1.0 if humanize is None else 2.0 * min(1.0, max(0.0, humanize))
    reasons.update({
        "register_octave": "4 + int((valence + 1) / 2), clamped 3..6 (emotion_thesaurus register)",
        "melody_centre": f"69 + 6 x valence {v:+.2f} + 4 x (arousal {a:.2f} - 0.5), clamped 60..78",
        "meter": "chosen by the user" if meter else
        ("a swaying metre for this feeling (6/8 lullaby, 3/4 waltz)" if meter_for(state) != (4, 4) else "common time"),
        "density": "0.3 + 0.5 x arousal (EmotionMapper)",
        "dissonance": f"quadrant {quadrant(v, a)} base + |v| x 0.3 x intensity for negative valence (EmotionMapper)",
        "dynamics_range": f"0.3 + 0.7 x intensity {i:.2f}; velocities {vmin}..{vmax} (EmotionMapper)",
        "timing_feel": f"{feel} from valence/arousal (EmotionMapper timing feel)",
        "groove": f"{groove_type(v, a)} (GrooveEngine: syncopated a>0.7, shuffle a<0.3, swing v>0.5)",
        "humanization": "timing 0.01 + 0.03i beats, velocity 0.05 + 0.15i (EmotionMapper)"
        + ("" if humanize is None else f", scaled x{scale:.2f} by --humanize {humanize}"),
    })
    return MusicalParameters(
        tempo=tempo_bpm(a),
        velocity=velocity_for(a, i, d),
        mode="minor" if chosen.is_minor else "major",
        detailed_mode=detailed_mode(v, a),
        key=chosen,
        register_octave=register_octave(v),
        density=density(a),
        dissonance=dissonance(v, a, i),
        dynamics_range=dr,
        velocity_min=vmin,
        velocity_max=vmax,
        timing_feel=feel,
        swing=swing,
        groove=groove_type(v, a),
        timing_variation=tvar * scale,
        velocity_variation=vvar * scale,
        timing_bias=emotion_timing_bias(state),
        reasons=reasons,
        register_centre=melody_centre(v, a),
        meter=parse_meter(meter) if meter else meter_for(state),
    )
