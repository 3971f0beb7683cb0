"""What every number flowing into and out of the five networks means.

The original plugin passed bare float arrays between its models and only ever read
three of them by position (``emotionEmbedding[0]`` as valence, ``dynamicsOutput[0]``
as velocity, ``argmax(melodyProbabilities)`` as a note). This module gives every
index a documented meaning, so that

* an :class:`~kelly.emotion.state.EmotionState` from text or biometrics can enter the
  pipeline directly as an embedding ("Option 2"), skipping the EmotionRecognizer;
* the recognizer's output can be read back as V/A/D, family and confidence;
* the composer can turn the outputs into notes, chords, groove and expression.

Emotion embedding (64 floats)
-----------------------------
Indices 0–2 and 63 are fixed by the original plugin code; the rest are ours.

=======  =====================  ========  ==================================================
index    name                   range     meaning
=======  =====================  ========  ==================================================
0        valence                [-1, 1]   unpleasant … pleasant
1        arousal                [0, 1]    calm … activated
2        dominance              [0, 1]    overwhelmed … in control
3        intensity              [0, 1]    how strongly it is felt
4–11     family weights         [0, 1]    joy, sadness, anger, fear, surprise, disgust, trust,
                                          anticipation (1 for the primary family, a secondary
                                          emotion's weight for its family, else 0)
12–15    quadrant memberships   [0, 1]    excited (V+A+), tense (V−A+), depressed (V−A−),
                                          calm (V+A−); bilinear in V and A, they sum to 1
16       mode_hint              [-1, 1]   +1 major/bright … −1 minor/dark: tanh(2.5·V)
17       tempo_hint             [0, 1]    tempo = 60 + 120·hint BPM
18       register_hint          [0, 1]    melodic centre = MIDI 48 + 24·hint
19       dissonance_hint        [0, 1]    share of tense/non-diatonic colour
20       density_hint           [0, 1]    notes per beat, sparse … busy
21       velocity_hint          [0, 1]    base velocity = 60 + 67·hint (original formula)
22       swing_hint             [0, 1]    straight … full triplet swing
23       tension_hint           [0, 1]    harmonic/rhythmic tension
24, 25   circumplex cos, sin    [-1, 1]   direction of (V, 2A−1) in the circumplex plane
26       circumplex radius      [0, 1]    |(V, 2A−1)| / √2: how far from neutral
27       control                [-1, 1]   2·D − 1
28–30    V·I, A·I, D·I          ranges    valence, arousal, dominance scaled by intensity
31       brightness_hint        [0, 1]    timbre: dark … bright
32–38    mode weights           [0, 1]    lydian, ionian, mixolydian, dorian, aeolian,
                                          phrygian, locrian (bright → dark); sum to 1
39–42    source one-hot         {0, 1}    text, audio, bio, explicit
43–62    reserved               0         free for the recognizer's learned features;
                                          :func:`embed_emotion` writes zeros
63       confidence             [0, 1]    how sure the reading is
=======  =====================  ========  ==================================================

Contexts
--------
* **Harmony context (128)**: ``[embedding(64) ‖ mel[0:64]]``, as the original
  ``runFullPipeline`` built it: the embedding, then the lower 64 bins of the current
  normalised log-mel frame (the bass and low-mid register where chords live). Without
  audio (Option 2) the second half is zeros.
* **Dynamics context (32)**: ``embedding[0:32]``, the affective core above (V, A, D,
  intensity, family, quadrant, the musical hints and circumplex features).
* **Mel frame (128)**: the recognizer's input: 128 log-mel bins normalised to [0, 1]
  by ``(dB + 80) / 80`` clipped, see :func:`normalize_mel_db`.

Outputs
-------
* **Note probabilities (128)**: index = MIDI pitch 0–127 **in the key of C** (tonic
  pitch class 0); each is an independent probability (sigmoid) that the pitch suits the
  moment. Transpose with :func:`transpose_note_probs`.
* **Chord classes (64)**: a distribution (softmax) over chords relative to the key
  tonic: index ``5·root + q`` for roots 0–11 (semitones above the tonic) and qualities
  ``maj, min, 7, dim, sus4``; then four specials on the tonic: 60 power chord (I5),
  61 sus2, 62 augmented, and 63 the leading-tone diminished seventh (vii°7). See
  :func:`chord_class_to_root_quality` and :data:`CHORD_INTERVALS`.
* **Groove (32)**: tanh outputs in [-1, 1], named in :data:`GROOVE_PARAMS`. Unipolar
  parameters map to [0, 1] by ``(x + 1) / 2`` (:func:`groove_dict` does it); bipolar
  ones keep their sign (for example ``push_pull``: −1 laid back, +1 pushing).
* **Expression (16)**: sigmoid outputs in [0, 1], named in :data:`EXPRESSION_PARAMS`;
  ``velocity_base·127`` is the MIDI velocity (as the original plugin read it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kelly.errors import InputError

EMBED_DIM = 64
HARMONY_CONTEXT_DIM = 128
DYNAMICS_CONTEXT_DIM = 32
MEL_BINS = 128
N_NOTES = 128
N_CHORDS = 64
N_GROOVE = 32
N_EXPRESSION = 16

#: Plutchik's eight families, in embedding order (indices 4–11).
FAMILIES = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "trust", "anticipation")
_FAMILY_ALIASES = {
    "happy": "joy", "happiness": "joy", "sad": "sadness", "grief": "sadness", "angry": "anger",
    "afraid": "fear", "scared": "fear", "surprised": "surprise", "disgusted": "disgust",
}
#: Quadrant names (indices 12–15).
QUADRANTS = ("excited", "tense", "depressed", "calm")
#: Modes from brightest to darkest (indices 32–38) with their brightness rank.
MODES = ("lydian", "ionian", "mixolydian", "dorian", "aeolian", "phrygian", "locrian")
_MODE_BRIGHTNESS = np.array([3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0])
#: Where the emotion came from (indices 39–42).
SOURCES = ("text", "audio", "bio", "explicit")

# Named embedding indices.
I_VALENCE, I_AROUSAL, I_DOMINANCE, I_INTENSITY = 0, 1, 2, 3
FAMILY_SLICE = slice(4, 12)
QUADRANT_SLICE = slice(12, 16)
I_MODE_HINT, I_TEMPO_HINT, I_REGISTER_HINT, I_DISSONANCE_HINT = 16, 17, 18, 19
I_DENSITY_HINT, I_VELOCITY_HINT, I_SWING_HINT, I_TENSION_HINT = 20, 21, 22, 23
I_CIRC_COS, I_CIRC_SIN, I_CIRC_RADIUS, I_CONTROL = 24, 25, 26, 27
I_VI, I_AI, I_DI, I_BRIGHTNESS = 28, 29, 30, 31
MODE_SLICE = slice(32, 39)
SOURCE_SLICE = slice(39, 43)
RESERVED_SLICE = slice(43, 63)
I_CONFIDENCE = 63

#: Names of all 64 embedding dimensions (reserved ones are ``reserved_43`` …).
EMBEDDING_NAMES: tuple[str, ...] = (
    ("valence", "arousal", "dominance", "intensity")
    + tuple(f"family_{f}" for f in FAMILIES)
    + tuple(f"quadrant_{q}" for q in QUADRANTS)
    + ("mode_hint", "tempo_hint", "register_hint", "dissonance_hint", "density_hint", "velocity_hint",
       "swing_hint", "tension_hint", "circumplex_cos", "circumplex_sin", "circumplex_radius", "control",
       "valence_x_intensity", "arousal_x_intensity", "dominance_x_intensity", "brightness_hint")
    + tuple(f"mode_{m}" for m in MODES)
    + tuple(f"source_{s}" for s in SOURCES)
    + tuple(f"reserved_{i}" for i in range(43, 63))
    + ("confidence",)
)

# ---------------------------------------------------------------------------------------
# Chord classes
# ---------------------------------------------------------------------------------------

#: The five qualities of the 60 rooted classes, in index order within a root.
CHORD_QUALITIES = ("maj", "min", "7", "dim", "sus4")
#: Semitone intervals above the root for every quality a chord class can have.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "dim": (0, 3, 6), "sus4": (0, 5, 7),
    "power": (0, 7), "sus2": (0, 2, 7), "aug": (0, 4, 8), "dim7": (0, 3, 6, 9),
}
#: The four special classes 60–63 as (root relative to the tonic, quality).
CHORD_SPECIALS = ((0, "power"), (0, "sus2"), (0, "aug"), (11, "dim7"))
_ROMAN = ("I", "bII", "II", "bIII", "III", "IV", "bV", "V", "bVI", "VI", "bVII", "VII")


def chord_class_to_root_quality(index: int) -> tuple[int, str]:
    """Return ``(root pitch class relative to the key tonic, quality)`` for a chord class.

    Parameters
    ----------
    index : int in [0, 64)

    Examples
    --------
    >>> chord_class_to_root_quality(0), chord_class_to_root_quality(36), chord_class_to_root_quality(60)
    ((0, 'maj'), (7, 'maj'), (0, 'power'))
    """
    index = _check_index(index, N_CHORDS, "chord class")
    if index < 60:
        return index // 5, CHORD_QUALITIES[index % 5]
    return CHORD_SPECIALS[index - 60]


def chord_class_index(root: int, quality: str) -> int:
    """Inverse of :func:`chord_class_to_root_quality` (root taken modulo 12).

    Raises
    ------
    InputError
        If the (root, quality) pair is not one of the 64 classes.
    """
    root = int(root) % 12
    if quality in CHORD_QUALITIES:
        return 5 * root + CHORD_QUALITIES.index(quality)
    if (root, quality) in CHORD_SPECIALS:
        return 60 + CHORD_SPECIALS.index((root, quality))
    raise InputError(f"no chord class for root {root} with quality {quality!r}; qualities: "
                     f"{', '.join(CHORD_QUALITIES)} (any root) or {CHORD_SPECIALS} (specials)")


def chord_class_name(index: int) -> str:
    """Roman-numeral name of a chord class relative to the tonic (``I``, ``vi``, ``V7``, ``vii°``).

    Upper case is a major third, lower case a minor third; ``°`` diminished, ``+``
    augmented, ``5`` a power chord (no third).
    """
    root, quality = chord_class_to_root_quality(index)
    numeral = _ROMAN[root]
    accidental, letters = (numeral[0], numeral[1:]) if numeral[0] == "b" else ("", numeral)
    suffix = {"maj": "", "min": "", "7": "7", "dim": "°", "sus4": "sus4", "power": "5", "sus2": "sus2",
              "aug": "+", "dim7": "°7"}[quality]
    if quality in ("min", "dim", "dim7"):
        letters = letters.lower()
    return f"{accidental}{letters}{suffix}"


def chord_class_pitch_classes(index: int, tonic: int = 0) -> tuple[int, ...]:
    """Pitch classes (0–11, absolute) of a chord class in the key whose tonic is ``tonic``."""
    root, quality = chord_class_to_root_quality(index)
    return tuple((tonic + root + step) % 12 for step in CHORD_INTERVALS[quality])


# ---------------------------------------------------------------------------------------
# Groove and expression parameters
# ---------------------------------------------------------------------------------------

#: (name, bipolar, meaning) for the 32 groove outputs (tanh, [-1, 1]). A unipolar
#: parameter's musical value is ``(x + 1) / 2`` in [0, 1]; a bipolar one keeps its sign.
#: Every one is a control the engines read while they write (neutral, network value 0,
#: changes nothing); where and how is in ``docs/network-controls.md`` and
#: :mod:`kelly.engines.ml_hints`.
GROOVE_SPEC: tuple[tuple[str, bool, str], ...] = (
    ("swing", False, "swing of the off-beat eighths: 0 half the feeling's … 0.5 the feeling's … 1 triplet (2:1)"),
    ("push_pull", True, "-1 the band laid back behind the kit … +1 pushing ahead of it (±0.03 beat)"),
    ("microtiming_ms", False, "the kit's humanised timing spread: 0 on the grid … 1 twice the feeling's"),
    ("ghost_prob", False, "ghost snares on free sixteenths: 0 none … 1 up to 35 % of them"),
    ("kick_density", False, "kicks per bar: 0 only the downbeat's … 1 kicks on the free eighths"),
    ("snare_density", False, "snare hits beyond the backbeat: 0 none, fewer ghosts … 1 on a quarter of off-beats"),
    ("hat_density", False, "hi-hat eighths: 0 quarters only … 1 every eighth"),
    ("ride_vs_hat", True, "-1 closed hi-hat … +1 ride cymbal (the most energetic phrases first)"),
    ("tom_density", False, "toms: floor toms on the last beat, tom-run fills (low: snare rolls instead)"),
    ("crash_prob", False, "crash on a phrase or section start: 0.5 none … 1 every one"),
    ("fill_prob", False, "fills: 0 section fills skipped … 1 a fill at the end of every phrase"),
    ("syncopation", False, "kicks an eighth before the beat and hat accents on the 'and's (low: straightened)"),
    ("backbeat_strength", False, "accent on the backbeat, ±14 velocity"),
    ("four_on_floor", True, "-1 no kick on the weak beats … +1 kick on every beat"),
    ("half_time", True, "-1 normal backbeat … +1 half-time feel (snare on 3), per phrase"),
    ("double_time", True, "-1 normal … +1 double-time (pattern twice as fast, sixteenth hats), per phrase"),
    ("hat_open_prob", False, "open hi-hat on the off-beats (0 none)"),
    ("downbeat_accent", False, "velocity accent on beat one, ±12 on the kit, ±6 on the parts"),
    ("velocity_humanize", False, "humanised velocity spread: 0 none … 1 twice the feeling's"),
    ("timing_humanize", False, "the pitched parts' humanised timing spread: 0 on the grid … 1 twice the feeling's"),
    ("subdivision", True, "-1 eighth-note grid (hats, shaker) … +1 sixteenth-note grid"),
    ("triplet_feel", False, "triplet hats on some beats, triplet fills (simple metres)"),
    ("kick_anticipation", False, "kick on the last 'and' before a downbeat"),
    ("shuffle_hat", False, "shuffle figure on the hat, per phrase (low: a shuffle straightens)"),
    ("percussion_density", False, "shaker/tambourine layer: 0 thinned shaker … 1 tambourine on the off-beats"),
    ("bass_lock", False, "the bass on the kick's onsets (low: held through them)"),
    ("space", False, "air: 0 legato bass, fuller hats … 1 short bass notes, thinned hats and ghosts"),
    ("complexity", False, "odd-sixteenth hits: 0 removed … 1 added"),
    ("variation", False, "bar-to-bar variation: 0 bars repeat the phrase's first … 1 an extra hit in many bars"),
    ("energy_build", True, "-1 thinning and softening across each phrase … +1 building"),
    ("tempo_drift", True, "-1 dragging … +1 rushing, ±8 % by the end of the piece (dead zone ±0.25)"),
    ("dynamic_contrast", False, "loud/soft contrast between sections: 0 flat … 1 twice the arrangement's"),
)
GROOVE_PARAMS: tuple[str, ...] = tuple(name for name, _, _ in GROOVE_SPEC)
GROOVE_BIPOLAR: frozenset[str] = frozenset(name for name, bipolar, _ in GROOVE_SPEC if bipolar)

#: (name, meaning) for the 16 expression outputs (sigmoid, [0, 1]); 0.5 is neutral.
EXPRESSION_SPEC: tuple[tuple[str, str], ...] = (
    ("velocity_base", "base MIDI velocity / 127 (the feeling's base moves half-way to it)"),
    ("velocity_range", "spread of velocities around the base: 0.5× … 1.5× the dynamics' own"),
    ("accent", "extra velocity on the beats, ±6"),
    ("legato", "note length of the lines as a share of their slot: 0 detached (0.6×) … 1 joined to the next"),
    ("timing_spread", "the lead lines' humanised timing spread: 0 on the band's … 1 twice it"),
    ("crescendo", "0 diminuendo … 0.5 flat … 1 crescendo over each four-bar phrase (±10 velocity)"),
    ("rubato", "ritardando at phrase ends: up to 0.625 none … 1 the last beat 15 % slower, a tempo after"),
    ("sustain_pedal", "sustain pedal (CC64) on piano and pad accompaniment: 0.5 none … 1 on every chord"),
    ("attack", "attack sharpness (CC73, attack time 64 − 63·d)"),
    ("release", "release length after note-off (CC72, 64 + 63·d)"),
    ("vibrato", "vibrato depth (CC1) on sustained lines and strings, up to 90"),
    ("pitch_bend", "pitch-wheel scoops into long melody notes, up to half a semitone, back to centre"),
    ("phrase_arch", "dynamic arch over each phrase (rise then fall; low: a dip), ±10 velocity"),
    ("swell", "per-chord swell of the beds (CC11), down to 127 − 60·d at the attack"),
    ("brightness", "timbre brightness (CC74, 64 + 63·d)"),
    ("humanize", "overall human imperfection: the humanizer's complexity, 0 quantized … 1 twice the feeling's"),
)
EXPRESSION_PARAMS: tuple[str, ...] = tuple(name for name, _ in EXPRESSION_SPEC)


def groove_dict(vec: np.ndarray) -> dict[str, float]:
    """Name the 32 groove outputs; unipolar ones mapped from [-1, 1] to [0, 1]."""
    vec = _as_vector(vec, N_GROOVE, "groove")
    return {name: float(v if bipolar else (v + 1.0) / 2.0)
            for (name, bipolar, _), v in zip(GROOVE_SPEC, np.clip(vec, -1.0, 1.0))}


def expression_dict(vec: np.ndarray) -> dict[str, float]:
    """Name the 16 expression outputs (each in [0, 1])."""
    vec = _as_vector(vec, N_EXPRESSION, "expression")
    return {name: float(v) for name, v in zip(EXPRESSION_PARAMS, np.clip(vec, 0.0, 1.0))}


# ---------------------------------------------------------------------------------------
# The embedding
# ---------------------------------------------------------------------------------------


def family_index(family: str) -> int | None:
    """Index (0–7) of an emotion family in :data:`FAMILIES`, or None if it is not one of them."""
    key = (family or "").strip().lower()
    key = _FAMILY_ALIASES.get(key, key)
    return FAMILIES.index(key) if key in FAMILIES else None


def mode_weights(valence: float, dominance: float, intensity: float) -> np.ndarray:
    """Soft choice among the seven modes: brighter modes for pleasant, in-control feelings.

    The target brightness is ``k·V·(0.6 + 0.4·I) + (D − 0.5)`` on the scale lydian +3 …
    locrian −3, with ``k = 2.6`` for pleasant and ``1.5`` for unpleasant valence (minor
    is one step below major, phrygian and locrian are rarer colours); each mode gets
    ``exp(−(b − target)² / 1.5)``, normalised. Joy lands on ionian, contentment between
    ionian and mixolydian, sadness on aeolian, and only strongly negative, powerless
    feelings reach phrygian/locrian.
    """
    k = 2.6 if valence >= 0 else 1.5
    target = k * valence * (0.6 + 0.4 * intensity) + (dominance - 0.5)
    weights = np.exp(-((_MODE_BRIGHTNESS - target) ** 2) / 1.5)
    return weights / weights.sum()


def embed_vad(valence: float, arousal: float, dominance: float, *, intensity: float = 0.5,
              confidence: float = 1.0, family: str = "", secondary: dict[str, float] | None = None,
              source: str = "explicit") -> np.ndarray:
    """Build the 64-d embedding from explicit numbers (see the module docstring for the layout).

    Returns
    -------
    np.ndarray [shape=(64,), dtype=float32]

    Raises
    ------
    InputError
        If a value is outside its range or not a finite number.
    """
    for name, value, lo, hi in (("valence", valence, -1.0, 1.0), ("arousal", arousal, 0.0, 1.0),
                                ("dominance", dominance, 0.0, 1.0), ("intensity", intensity, 0.0, 1.0),
                                ("confidence", confidence, 0.0, 1.0)):
        if not isinstance(value, (int, float, np.floating)) or not math.isfinite(value) or not lo <= value <= hi:
            raise InputError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    v, a, d, i = float(valence), float(arousal), float(dominance), float(intensity)
    e = np.zeros(EMBED_DIM, dtype=np.float64)
    e[I_VALENCE], e[I_AROUSAL], e[I_DOMINANCE], e[I_INTENSITY] = v, a, d, i
    fam = family_index(family)
    if fam is not None:
        e[FAMILY_SLICE.start + fam] = 1.0
    for name, weight in (secondary or {}).items():
        idx = family_index(name)
        if idx is not None:
            slot = FAMILY_SLICE.start + idx
            e[slot] = max(e[slot], min(1.0, max(0.0, float(weight))))
    vp = (1.0 + v) / 2.0
    e[QUADRANT_SLICE] = (vp * a, (1 - vp) * a, (1 - vp) * (1 - a), vp * (1 - a))
    e[I_MODE_HINT] = math.tanh(2.5 * v)
    e[I_TEMPO_HINT] = _unit(0.85 * a + 0.15 * i)
    e[I_REGISTER_HINT] = _unit(0.5 + 0.3 * (a - 0.5) + 0.2 * v)
    e[I_DISSONANCE_HINT] = _unit((1 - vp) * (0.5 + 0.5 * i) + 0.3 * (a - 0.5))
    e[I_DENSITY_HINT] = _unit(0.15 + 0.65 * a + 0.2 * i)
    e[I_VELOCITY_HINT] = _unit(0.5 * a + 0.3 * i + 0.2 * d)
    e[I_SWING_HINT] = _unit(0.6 * vp * (1 - a) * (0.5 + 0.5 * d))
    e[I_TENSION_HINT] = _unit(0.6 * a * (1 - vp) + 0.4 * a * (1 - d))
    y = 2 * a - 1
    radius = math.hypot(v, y)
    e[I_CIRC_COS], e[I_CIRC_SIN] = (v / radius, y / radius) if radius > 1e-9 else (0.0, 0.0)
    e[I_CIRC_RADIUS] = min(1.0, radius / math.sqrt(2.0))
    e[I_CONTROL] = 2 * d - 1
    e[I_VI], e[I_AI], e[I_DI] = v * i, a * i, d * i
    e[I_BRIGHTNESS] = _unit(0.5 + 0.3 * v + 0.2 * (a - 0.5))
    e[MODE_SLICE] = mode_weights(v, d, i)
    src = source if source in SOURCES else ("explicit" if source in ("vad", "manual") else "text")
    e[SOURCE_SLICE.start + SOURCES.index(src)] = 1.0
    e[I_CONFIDENCE] = float(confidence)
    return e.astype(np.float32)


def embed_emotion(state: Any) -> np.ndarray:
    """Embed an :class:`~kelly.emotion.state.EmotionState` (Option 2: text or biometrics in).

    The state's family and secondary emotions fill the family weights; its ``source``
    ("text", "audio", "bio"/"biometric", "explicit") fills the source one-hot.

    Returns
    -------
    np.ndarray [shape=(64,), dtype=float32]
    """
    secondary = {}
    for item in getattr(state, "secondary", ()) or ():
        fam = getattr(item, "family", None) or getattr(item, "emotion", "")
        secondary[fam] = max(secondary.get(fam, 0.0), float(getattr(item, "weight", 0.0)))
    source = str(getattr(state, "source", "text") or "text").lower()
    source = {"biometric": "bio", "biometrics": "bio", "fusion": "text", "vad": "explicit"}.get(source, source)
    return embed_vad(state.valence, state.arousal, state.dominance, intensity=state.intensity,
                     confidence=state.confidence, family=getattr(state, "family", "") or getattr(state, "label", ""),
                     secondary=secondary, source=source)


def decode_embedding(vec: np.ndarray) -> dict[str, Any]:
    """Read an embedding back (from :func:`embed_emotion` or the EmotionRecognizer).

    Values are clipped into their documented ranges, since a network's tanh output can
    stray; the family is the largest family weight (``None`` when all are ≤ 0.1).

    Returns
    -------
    dict
        valence, arousal, dominance, intensity, confidence, family, family_weights,
        quadrant, mode, mode_weights, mode_hint, tempo_bpm, register_midi,
        velocity, dissonance, density, swing, tension, brightness.
    """
    e = _as_vector(vec, EMBED_DIM, "embedding").astype(np.float64)
    fam = e[FAMILY_SLICE]
    modes = np.clip(e[MODE_SLICE], 0.0, None)
    quad = e[QUADRANT_SLICE]
    return {
        "valence": _clip(e[I_VALENCE], -1, 1),
        "arousal": _clip(e[I_AROUSAL], 0, 1),
        "dominance": _clip(e[I_DOMINANCE], 0, 1),
        "intensity": _clip(e[I_INTENSITY], 0, 1),
        "confidence": _clip(e[I_CONFIDENCE], 0, 1),
        "family": FAMILIES[int(np.argmax(fam))] if fam.max() > 0.1 else None,
        "family_weights": {f: _clip(w, 0, 1) for f, w in zip(FAMILIES, fam)},
        "quadrant": QUADRANTS[int(np.argmax(quad))],
        "mode": MODES[int(np.argmax(modes))] if modes.sum() > 0 else ("ionian" if e[I_MODE_HINT] >= 0 else "aeolian"),
        "mode_weights": {m: _clip(w, 0, 1) for m, w in zip(MODES, modes)},
        "mode_hint": _clip(e[I_MODE_HINT], -1, 1),
        "tempo_bpm": round(60.0 + 120.0 * _clip(e[I_TEMPO_HINT], 0, 1), 2),
        "register_midi": round(48.0 + 24.0 * _clip(e[I_REGISTER_HINT], 0, 1), 2),
        "velocity": int(round(60 + 67 * _clip(e[I_VELOCITY_HINT], 0, 1))),
        "dissonance": _clip(e[I_DISSONANCE_HINT], 0, 1),
        "density": _clip(e[I_DENSITY_HINT], 0, 1),
        "swing": _clip(e[I_SWING_HINT], 0, 1),
        "tension": _clip(e[I_TENSION_HINT], 0, 1),
        "brightness": _clip(e[I_BRIGHTNESS], 0, 1),
    }


def state_from_embedding(vec: np.ndarray, *, source: str = "audio") -> Any:
    """Turn an embedding (for example the recognizer's output) into an EmotionState."""
    from kelly.emotion.state import EmotionState

    d = decode_embedding(vec)
    family = d["family"] or "neutral"
    return EmotionState(label=family, family=family, valence=d["valence"], arousal=d["arousal"],
                        dominance=d["dominance"], intensity=d["intensity"], confidence=d["confidence"],
                        source=source)


def harmony_context(embedding: np.ndarray, mel: np.ndarray | None = None) -> np.ndarray:
    """The HarmonyPredictor's 128-d input: ``[embedding ‖ mel[0:64]]`` (zeros without audio)."""
    out = np.zeros(HARMONY_CONTEXT_DIM, dtype=np.float32)
    out[:EMBED_DIM] = _as_vector(embedding, EMBED_DIM, "embedding")
    if mel is not None:
        out[EMBED_DIM:] = _as_vector(mel, MEL_BINS, "mel frame")[:64]
    return out


def dynamics_context(embedding: np.ndarray) -> np.ndarray:
    """The DynamicsEngine's 32-d input: ``embedding[0:32]``."""
    return _as_vector(embedding, EMBED_DIM, "embedding")[:DYNAMICS_CONTEXT_DIM].astype(np.float32)


def normalize_mel_db(mel_db: np.ndarray) -> np.ndarray:
    """Map log-mel energies in dB (0 dBFS full scale) to the recognizer's [0, 1] input."""
    return np.clip((np.asarray(mel_db, dtype=np.float32) + 80.0) / 80.0, 0.0, 1.0)


def transpose_note_probs(probs: np.ndarray, tonic: int) -> np.ndarray:
    """Shift note probabilities from the key of C to the key whose tonic pitch class is ``tonic``.

    Pitches shifted past 127 are dropped; the bottom is filled with zeros.
    """
    probs = _as_vector(probs, N_NOTES, "note probabilities")
    shift = int(tonic) % 12
    out = np.zeros_like(probs)
    out[shift:] = probs[: N_NOTES - shift]
    return out


# ---------------------------------------------------------------------------------------


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(hi, max(lo, float(x))))


def _check_index(index: int, size: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < size:
        raise InputError(f"{what} index must be an integer in [0, {size}), got {index!r}")
    return int(index)


def _as_vector(vec: Any, size: int, what: str) -> np.ndarray:
    arr = np.asarray(vec)
    if arr.shape != (size,):
        raise InputError(f"{what} must have shape ({size},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise InputError(f"{what} must hold finite numbers")
    return arr


#: Names of all 64 chord classes, index order.
CHORD_CLASS_NAMES: tuple[str, ...] = tuple(chord_class_name(i) for i in range(N_CHORDS))
