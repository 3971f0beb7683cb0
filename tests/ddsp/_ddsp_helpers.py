"""Helpers shared by the DDSP tests: synthetic notes and the tiny training settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000
NOTE_SECONDS = 1.2
PITCHES = (48, 52, 55, 57, 60, 64, 67, 72)
# threads=1: two torch threads fighting a busy CPU make a 6-step run ten times slower
TINY = {"standard": False, "steps": 6, "eval_every": 3, "eval_windows": 4, "threads": 1}


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def saw_note(pitch: float, *, seconds: float = NOTE_SECONDS, sr: int = SR, level: float = 0.5) -> np.ndarray:
    """A decaying sawtooth of this MIDI pitch (10 ms linear attack)."""
    t = np.arange(int(seconds * sr)) / sr
    phase = (hz(pitch) * t) % 1.0
    return (2.0 * phase - 1.0) * np.exp(-2.5 * t) * np.minimum(1.0, t / 0.01) * level


def write_notes(folder: Path) -> Path:
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    for p in PITCHES:
        soundfile.write(folder / f"note{p}.wav", saw_note(p).astype(np.float32), SR)
    return folder


def tiny_settings(**overrides):
    from kelly.ddsp.train import load_settings

    return load_settings("tiny", overrides={**TINY, **overrides})


def sine(freq: float, seconds: float, sr: int, amp: float = 1.0) -> np.ndarray:
    return amp * np.sin(2.0 * np.pi * freq * np.arange(int(seconds * sr)) / sr)
