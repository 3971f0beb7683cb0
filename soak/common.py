"""What every soak measures: memory, descriptors, threads, and a curve's shape; and its sound."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SR = 48000
BLOCK = 512


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB (``VmRSS`` of ``/proc/<pid>/status``; psutil is not needed)."""
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def fd_count(pid: int | str = "self") -> int:
    """Open file descriptors of a process (entries of ``/proc/<pid>/fd``)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int | str = "self") -> int:
    """Threads of a process, as the kernel counts them (``/proc/<pid>/task``)."""
    return len(os.listdir(f"/proc/{pid}/task"))


@dataclass
class Curve:
    """A quantity sampled over time: (seconds since start, value) pairs."""

    unit: str
    points: list[tuple[float, float]] = field(default_factory=list)

    def summary(self, settle_s: float = 10.0) -> dict[str, float]:
        """start, min, max, end, the least-squares slope per minute, and the growth after ``settle_s``.

        ``growth`` is the highest value after the first ``settle_s`` seconds (allocators and
        caches warm up at the start) less the value at ``settle_s``: what a leak would make
        grow.
        """
        t = np.array([p[0] for p in self.points], dtype=float)
        v = np.array([p[1] for p in self.points], dtype=float)
        if not len(v):
            return {"samples": 0}
        slope = float(np.polyfit(t, v, 1)[0] * 60.0) if len(v) > 1 and np.ptp(t) > 0 else 0.0
        late = v[t >= min(settle_s, float(t.max()))]
        return {"samples": int(len(v)), "start": float(v[0]), "min": float(v.min()), "max": float(v.max()),
                "end": float(v[-1]), "slope_per_min": slope,
                "growth": float(late.max() - late[0]) if len(late) else 0.0}

    def table(self, every_s: float = 5.0) -> list[str]:
        """The curve as a small markdown table, one row about every ``every_s`` seconds."""
        rows, next_t = [], -1.0
        for t, v in self.points:
            if t >= next_t or (t, v) == self.points[-1]:
                rows.append(f"| {t:.0f} | {v:.1f} |")
                next_t = t + every_s
        return [f"| s | {self.unit} |", "|---:|---:|"] + rows


class Sampler:
    """Samples ``fn()`` every ``interval_s`` seconds on a thread of its own until stopped."""

    def __init__(self, fn, unit: str = "MiB", interval_s: float = 1.0) -> None:
        self.fn = fn
        self.interval_s = interval_s
        self.curve = Curve(unit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)
        self._t0 = 0.0

    def _loop(self) -> None:
        k = 0
        while True:
            self.curve.points.append((time.monotonic() - self._t0, float(self.fn())))
            k += 1
            if self._stop.wait(max(0.0, self._t0 + k * self.interval_s - time.monotonic())):
                break

    def __enter__(self) -> "Sampler":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.curve.points.append((time.monotonic() - self._t0, float(self.fn())))


def material(seconds: float, tmp: Path) -> tuple[np.ndarray, str]:
    """``seconds`` of real music at 48 kHz mono float32, and how it was made.

    A Kelly piece rendered through FluidSynth (as ``benchmarks/bench_realtime.py`` does),
    looped to length; where no synthesizer is installed, a stand-in of tones and noise
    bursts, and the description says so.
    """
    n = int(seconds * SR)
    try:
        import soxr

        from kelly.composer import ComposeOptions, get_composer
        from kelly.emotion.thesaurus import state_for
        from kelly.render.audio import render_song

        song = get_composer("rules").compose(state_for("furious"), ComposeOptions(bars=8, seed=1)).song
        audio = render_song(song, sample_rate=44100)
        mono = audio.mean(axis=1) if audio.ndim == 2 else audio
        mono = soxr.resample(mono.astype(np.float64), 44100, SR)
        how = "a Kelly piece (furious, 8 bars, seed 1) rendered with FluidSynth, looped"
    except Exception as exc:  # noqa: BLE001 - no synthesizer here: say so
        rng = np.random.default_rng(0)
        t = np.arange(n) / SR
        mono = 0.05 * np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(n) * (np.sin(2 * np.pi * 3 * t) > 0)
        how = f"synthetic tones and noise bursts (FluidSynth unavailable: {str(exc)[:80]})"
    if len(mono) < n:
        mono = np.tile(mono, int(np.ceil(n / len(mono))))
    return mono[:n].astype(np.float32), how


def blocks_of(audio: np.ndarray, block: int = BLOCK) -> list[np.ndarray]:
    """``audio`` cut into ``block``-sample blocks (the last zero-padded), as a device delivers it."""
    n = int(np.ceil(len(audio) / block))
    padded = np.zeros(n * block, dtype=np.float32)
    padded[:len(audio)] = audio
    return [padded[i * block:(i + 1) * block].copy() for i in range(n)]


def mel_frames(audio: np.ndarray, sr: int = SR, block: int = BLOCK) -> np.ndarray:
    """The engine's own mel frames [shape=(n, 128)] of ``audio`` (its streaming front-end)."""
    from kelly.realtime.frontend import MelFrontEnd

    fe = MelFrontEnd(sr, block)
    out = []
    for b in blocks_of(audio, block):
        k = fe.process(b)
        out.extend(fe.frames[:k].copy())
    return np.array(out, dtype=np.float32)
