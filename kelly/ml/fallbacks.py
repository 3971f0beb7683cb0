"""Heuristic stand-ins for each network, used when its file is missing or it is disabled.

The original ``computeFallback`` squashed the input through ``tanh``/``sigmoid`` with no
musical meaning (``σ((i % 12)/12·2 − 1 + …)`` made B the likeliest note in every key).
These fallbacks take the same input vectors as the networks and return outputs with the
documented meaning of :mod:`kelly.ml.schema`, built from music-theory rules, so that
Kelly composes sensibly with no trained model at all:

* **recognizer**: loudness → arousal, spectral centroid → valence (brighter sounds
  pleasanter), low-band weight → dominance, contrast → intensity; the family is the
  nearest prototype in V/A/D; confidence is low (0.25) because it is a guess;
* **melody**: probability = (pitch-class weight) × (register bell). Pitch classes
  come from the embedding's mode weights: tonic-triad tones of each mode highest,
  other scale tones next, chromatic tones low (raised by the dissonance hint). So a
  pleasant embedding favours E over E♭ (major third) and a sad one the reverse. The
  bell is centred at MIDI ``48 + 24·register_hint`` and widens with density;
* **harmony**: for each mode, its diatonic triads weighted by function (I and IV/V
  strongest, then vi/ii, iii, vii°), dominant sevenths on V in major-like modes and the
  borrowed harmonic-minor V/V7 in minor; mixed by the mode weights; then the specials:
  power chord for anger (low V, high A and D), sus2 for calm contentment, sus4 and
  augmented for surprise/anticipation, the diminished seventh for fear;
* **dynamics** and **groove**: closed-form curves of valence, arousal, dominance and
  intensity (for example velocity = 60 + 67·(0.5·A + 0.3·I + 0.2·D), the original
  velocity formula; legato falls with arousal; kick and hat density rise with it;
  swing is highest for calm pleasant moods).

All functions are pure: ``f(input) -> output`` with the networks' shapes (float32).
"""

from __future__ import annotations

import numpy as np

from kelly.ml import schema as S

# Scales of the modes in schema.MODES order (lydian … locrian), as semitone sets.
_MODE_SCALES = {
    "lydian": (0, 2, 4, 6, 7, 9, 11), "ionian": (0, 2, 4, 5, 7, 9, 11), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10), "aeolian": (0, 2, 3, 5, 7, 8, 10), "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
# Functional weight of the triad on each scale degree (I … VII).
_DEGREE_WEIGHT = (1.0, 0.45, 0.3, 0.8, 0.8, 0.6, 0.15)
# Family prototypes (V, A, D) for the recognizer fallback.
_PROTOTYPES = np.array([
    (0.75, 0.6, 0.65), (-0.6, 0.3, 0.3), (-0.6, 0.85, 0.75), (-0.6, 0.75, 0.25),
    (0.3, 0.85, 0.45), (-0.55, 0.5, 0.6), (0.6, 0.4, 0.55), (0.5, 0.65, 0.6),
])


def _u(x):
    return np.clip(x, 0.0, 1.0)


def _core(vec: np.ndarray) -> tuple[float, float, float, float]:
    v = float(np.clip(vec[S.I_VALENCE], -1, 1))
    a = float(np.clip(vec[S.I_AROUSAL], 0, 1))
    d = float(np.clip(vec[S.I_DOMINANCE], 0, 1))
    i = float(np.clip(vec[S.I_INTENSITY], 0, 1))
    return v, a, d, i


def _mode_weights(emb: np.ndarray) -> np.ndarray:
    w = np.clip(np.asarray(emb[S.MODE_SLICE], dtype=np.float64), 0.0, None)
    if w.sum() < 1e-6:  # an embedding without mode weights: derive them from V/D/I
        v, _, d, i = _core(emb)
        w = S.mode_weights(v, d, i)
    return w / w.sum()


def _triad(scale: tuple[int, ...], degree: int) -> tuple[int, str | None]:
    root = scale[degree]
    third = (scale[(degree + 2) % 7] - root) % 12
    fifth = (scale[(degree + 4) % 7] - root) % 12
    quality = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim"}.get((third, fifth))
    return root, quality


def recognizer(mel: np.ndarray) -> np.ndarray:
    """128 normalised log-mel bins → 64-d embedding (a rough acoustic guess)."""
    m = np.clip(np.asarray(mel, dtype=np.float64), 0.0, 1.0)
    total = float(m.sum())
    loud = float(m.mean())
    centroid = float((np.arange(S.MEL_BINS) * m).sum() / total / (S.MEL_BINS - 1)) if total > 1e-9 else 0.3
    low_share = float(m[:32].sum() / total) if total > 1e-9 else 0.25
    arousal = float(_u((loud - 0.2) / 0.55))
    valence = float(np.clip(2.5 * (centroid - 0.35), -1.0, 1.0))
    dominance = float(_u(0.25 + 0.5 * arousal * 0.6 + 0.8 * (low_share - 0.25)))
    intensity = float(_u((m.max() - m.min()) * 0.6 + 0.4 * arousal)) if total > 1e-9 else 0.0
    dist = np.linalg.norm(_PROTOTYPES - np.array([valence, arousal, dominance]), axis=1)
    family = S.FAMILIES[int(np.argmin(dist))]
    return S.embed_vad(valence, arousal, dominance, intensity=intensity, confidence=0.25, family=family,
                       source="audio")


def pitch_class_weights(emb: np.ndarray) -> np.ndarray:
    """Weight (max 1) of each pitch class 0–11 in the key of C for this embedding."""
    modes = _mode_weights(emb)
    dissonance = float(np.clip(emb[S.I_DISSONANCE_HINT], 0, 1))
    pcw = np.zeros(12)
    for w, name in zip(modes, S.MODES):
        scale = _MODE_SCALES[name]
        triad = {scale[0], scale[2], scale[4]}
        for pc in scale:
            pcw[pc] += w * (1.0 if pc in triad else 0.6)
    chromatic = pcw < 0.15
    pcw[chromatic] = np.maximum(pcw[chromatic], 0.06 + 0.2 * dissonance)
    return pcw / pcw.max()


def melody(emb: np.ndarray) -> np.ndarray:
    """64-d embedding → 128 note probabilities (MIDI pitch, key of C)."""
    emb = np.asarray(emb, dtype=np.float64)
    _, _, _, i = _core(emb)
    centre = 48.0 + 24.0 * float(np.clip(emb[S.I_REGISTER_HINT], 0, 1))
    sigma = 5.0 + 7.0 * float(np.clip(emb[S.I_DENSITY_HINT], 0, 1))
    pitches = np.arange(S.N_NOTES)
    bell = np.exp(-0.5 * ((pitches - centre) / sigma) ** 2)
    pcw = pitch_class_weights(emb)
    probs = 0.01 + (0.6 + 0.35 * i) * pcw[pitches % 12] * bell
    return probs.astype(np.float32)


def harmony(context: np.ndarray) -> np.ndarray:
    """128-d harmony context → 64 chord-class probabilities (sums to 1)."""
    emb = np.asarray(context, dtype=np.float64)[: S.EMBED_DIM]
    v, a, d, i = _core(emb)
    fam = np.clip(emb[S.FAMILY_SLICE], 0, 1)
    vp = (1.0 + v) / 2.0
    score = np.zeros(S.N_CHORDS)
    for w, name in zip(_mode_weights(emb), S.MODES):
        scale = _MODE_SCALES[name]
        for degree in range(7):
            root, quality = _triad(scale, degree)
            if quality is None:
                continue
            weight = w * _DEGREE_WEIGHT[degree]
            if degree == 4 and quality == "maj":  # V: share some weight with V7
                score[S.chord_class_index(root, "7")] += 0.35 * weight
                weight *= 0.65
            score[S.chord_class_index(root, quality)] += weight
        if name in ("aeolian", "dorian", "phrygian"):  # borrowed harmonic-minor dominant
            score[S.chord_class_index(7, "maj")] += 0.25 * w
            score[S.chord_class_index(7, "7")] += 0.15 * w
    dissonance = float(np.clip(emb[S.I_DISSONANCE_HINT], 0, 1))
    for root, quality in ((8, "maj"), (10, "maj"), (1, "maj")):  # bVI, bVII, bII colour
        score[S.chord_class_index(root, quality)] += 0.12 * dissonance
    surprise, anticipation, fear = fam[S.FAMILIES.index("surprise")], fam[S.FAMILIES.index("anticipation")], \
        fam[S.FAMILIES.index("fear")]
    score[S.chord_class_index(0, "sus4")] += 0.1 + 0.3 * max(surprise, anticipation)
    score[S.chord_class_index(7, "sus4")] += 0.05 + 0.2 * anticipation
    score[60] += 1.2 * a * (1 - vp) * d  # power chord: anger, defiance
    score[61] += 0.5 * vp * (1 - a)  # sus2: calm, open
    score[62] += 0.02 + 0.3 * surprise * a  # augmented: surprise, unease
    score[63] += 0.6 * (1 - d) * a * (1 - vp) + 0.2 * fear  # vii°7: fear
    sharp = 1.0 + 1.5 * i  # stronger feelings commit to fewer chords
    score = (score + 1e-3) ** sharp
    return (score / score.sum()).astype(np.float32)


def dynamics(context: np.ndarray) -> np.ndarray:
    """32-d dynamics context (embedding[0:32]) → 16 expression parameters in [0, 1]."""
    ctx = np.asarray(context, dtype=np.float64)
    v, a, d, i = _core(ctx)
    vp = (1.0 + v) / 2.0
    velocity = (60.0 + 67.0 * _u(0.5 * a + 0.3 * i + 0.2 * d)) / 127.0
    values = (
        velocity,
        0.15 + 0.5 * i * (0.5 + 0.5 * a),  # velocity_range
        0.2 + 0.5 * d * a + 0.2 * i,  # accent
        0.85 - 0.55 * a + 0.15 * (1 - d),  # legato
        0.1 + 0.4 * (1 - d) * (0.5 + 0.5 * i),  # timing_spread
        0.5 + 0.45 * (2 * d - 1) * i,  # crescendo
        0.1 + 0.5 * (1 - a) * i + 0.2 * (1 - vp),  # rubato
        0.7 * (1 - a) + 0.2 * vp,  # sustain_pedal
        0.2 + 0.6 * a * d + 0.2 * i,  # attack
        0.8 - 0.6 * a,  # release
        0.15 + 0.5 * i * (1 - 0.5 * d),  # vibrato
        0.1 + 0.4 * i * (1 - vp),  # pitch_bend
        0.3 + 0.5 * i,  # phrase_arch
        0.2 + 0.5 * (1 - a) * i,  # swell
        0.5 + 0.3 * v + 0.2 * (a - 0.5),  # brightness
        0.25 + 0.35 * (1 - a) + 0.2 * i,  # humanize
    )
    return _u(np.array(values)).astype(np.float32)


def groove(emb: np.ndarray) -> np.ndarray:
    """64-d embedding → 32 groove parameters in [-1, 1] (unipolar ones as 2·u − 1)."""
    emb = np.asarray(emb, dtype=np.float64)
    v, a, d, i = _core(emb)
    vp = (1.0 + v) / 2.0
    swing = 0.6 * vp * (1 - a) * (0.5 + 0.5 * d)
    unit = {
        "swing": swing,
        "microtiming_ms": 0.15 + 0.35 * (1 - d) * (0.5 + 0.5 * (1 - a)),
        "ghost_prob": 0.05 + 0.5 * a * vp,
        "kick_density": 0.15 + 0.75 * a,
        "snare_density": 0.1 + 0.6 * a * i,
        "hat_density": 0.1 + 0.85 * a,
        "tom_density": 0.05 + 0.5 * a * (1 - vp),
        "crash_prob": 0.1 + 0.6 * a * i,
        "fill_prob": 0.1 + 0.5 * a,
        "syncopation": 0.15 + 0.4 * a * vp + 0.2 * i,
        "backbeat_strength": 0.3 + 0.6 * a * d,
        "hat_open_prob": 0.05 + 0.4 * a * vp,
        "downbeat_accent": 0.2 + 0.6 * d * i,
        "velocity_humanize": 0.2 + 0.4 * (1 - d),
        "timing_humanize": 0.2 + 0.4 * (1 - a),
        "triplet_feel": 0.8 * swing,
        "kick_anticipation": 0.1 + 0.4 * a * (1 - abs(v)),
        "shuffle_hat": 0.7 * swing,
        "percussion_density": 0.1 + 0.5 * a * vp,
        "bass_lock": 0.5 + 0.4 * d,
        "space": 0.1 + 0.6 * (1 - a),
        "complexity": 0.2 + 0.4 * a + 0.2 * i,
        "variation": 0.2 + 0.4 * i,
        "dynamic_contrast": 0.2 + 0.6 * i,
    }
    bipolar = {
        "push_pull": 0.8 * (a - 0.5) + 0.4 * (d - 0.5),
        "ride_vs_hat": 1.2 * vp * (1 - a) - 0.5,
        "four_on_floor": 2.0 * a * vp - 1.0,
        "half_time": 1.5 * (1 - a) * (1 - vp) - 0.5,
        "double_time": 2.2 * a * a - 1.5,
        "subdivision": 2.0 * a - 1.0,
        "energy_build": 1.2 * (a - 0.5) + 0.5 * (d - 0.5),
        "tempo_drift": 0.3 * (a - 0.5) - 0.2 * (1 - d),
    }
    out = np.array([bipolar[name] if name in bipolar else 2.0 * float(_u(unit[name])) - 1.0
                    for name in S.GROOVE_PARAMS])
    return np.clip(out, -1.0, 1.0).astype(np.float32)


#: Fallback function per model key.
FALLBACKS = {
    "emotionrecognizer": recognizer,
    "melodytransformer": melody,
    "harmonypredictor": harmony,
    "dynamicsengine": dynamics,
    "groovepredictor": groove,
}
