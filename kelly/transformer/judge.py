"""A judge of emotion for finished MIDI: does a piece sound like the emotion it was asked for?

Issue 12 asks that the transformer's emotion control be *measured*: a valence/arousal
classifier trained on the labelled corpus judges generated pieces, and its quadrant
accuracy against the requested emotion is set next to the rule engines'. This is that
classifier. It reads only the notes (never how a piece was made), so it can judge any
composer's output the same way.

Features (:func:`features`, 20 numbers per piece): the mode's brightness (the modal key
finder's mode, :func:`kelly.theory.analysis.estimate_mode`, on the brightness scale of
:data:`kelly.ml.schema.MODES`) and its confidence, the share of minor against major
thirds above the found tonic, tempo (BPM / 200), onsets per second, mean and spread of
velocity, mean pitch and its spread, the share of notes on the drum channel, mean note
length in beats, polyphony (notes sounding per onset), and the key-relative pitch-class
profile folded to 8 numbers (tonic, ♭3, 3, 4, 5, ♭6, 6, ♭7 shares).

Model: two logistic regressions (valence > 0; arousal > 0.5) fitted by Newton's method
(a few iterations of iteratively reweighted least squares, L2 0.1) on standardised
features. Written here because it is 30 lines of numpy and Kelly does not depend on
scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kelly.song import Song

MODE_BRIGHTNESS = {"lydian": 3, "ionian": 2, "mixolydian": 1, "dorian": -1, "aeolian": -2, "phrygian": -3,
                   "locrian": -4}
N_FEATURES = 20


def features(song: Song) -> np.ndarray:
    """The 20 judged numbers of a piece (see the module docstring)."""
    from kelly.theory.analysis import estimate_mode, pitch_class_histogram

    ppq = song.ppq
    pitched = [n for t in song.tracks if not t.is_drum for n in t.notes]
    drums = sum(len(t.notes) for t in song.tracks if t.is_drum)
    total = len(pitched) + drums
    out = np.zeros(N_FEATURES)
    if not pitched:
        return out
    hist = pitch_class_histogram(pitched, ppq)
    try:
        est = estimate_mode(hist)
        mode, tonic, conf = est.mode, est.key.tonic_pc, float(est.confidence)
    except Exception:  # a degenerate histogram: no mode to speak of
        mode, tonic, conf = "ionian", int(np.argmax(hist)), 0.0
    bpm = float(song.tempos[0][1]) if song.tempos else 120.0
    end = max(n.end for n in pitched)
    seconds = max(1e-3, end / ppq * 60.0 / bpm)
    onsets = len({n.start for n in pitched})
    vel = np.array([n.velocity for n in pitched], dtype=float)
    pitch = np.array([n.pitch for n in pitched], dtype=float)
    dur = np.array([n.duration for n in pitched], dtype=float) / ppq
    rel = np.roll(hist, -tonic)
    rel = rel / max(1e-9, rel.sum())
    out[0] = MODE_BRIGHTNESS.get(mode, 0) / 4.0
    out[1] = conf
    out[2] = (rel[3] - rel[4]) / max(1e-9, rel[3] + rel[4])
    out[3] = bpm / 200.0
    out[4] = np.log1p(onsets / seconds) / np.log(17.0)
    out[5] = vel.mean() / 127.0
    out[6] = vel.std() / 64.0
    out[7] = (pitch.mean() - 60.0) / 24.0
    out[8] = pitch.std() / 24.0
    out[9] = drums / total
    out[10] = np.log1p(dur.mean())
    out[11] = len(pitched) / max(1, onsets) / 4.0
    out[12:20] = rel[[0, 3, 4, 5, 7, 8, 9, 10]]
    return out


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, iters: int = 25) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.eye(len(w)) * l2
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass
class EmotionJudge:
    """Two logistic regressions over standardised :func:`features`: valence > 0, arousal > 0.5."""

    mean: np.ndarray
    scale: np.ndarray
    w_valence: np.ndarray
    w_arousal: np.ndarray

    @classmethod
    def fit(cls, feats: np.ndarray, valence: np.ndarray, arousal: np.ndarray) -> "EmotionJudge":
        mean = feats.mean(axis=0)
        scale = feats.std(axis=0) + 1e-6
        z = (feats - mean) / scale
        return cls(mean, scale, _fit_logistic(z, (valence > 0).astype(float)),
                   _fit_logistic(z, (arousal > 0.5).astype(float)))

    def predict(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positive valence?, high arousal?) for each row of features."""
        z = (np.atleast_2d(feats) - self.mean) / self.scale
        zb = np.hstack([z, np.ones((len(z), 1))])
        return zb @ self.w_valence > 0, zb @ self.w_arousal > 0

    def quadrant_accuracy(self, feats: np.ndarray, valence: np.ndarray, arousal: np.ndarray) -> float:
        """Share of pieces whose judged quadrant is the asked one."""
        pv, pa = self.predict(feats)
        return float(np.mean((pv == (np.asarray(valence) > 0)) & (pa == (np.asarray(arousal) > 0.5))))
