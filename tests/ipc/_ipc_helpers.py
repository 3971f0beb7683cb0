"""The in-memory engine and raw-socket helpers the ipc tests share."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

from kelly.contracts import EngineState, LiveEmotion, LiveModel
from kelly.errors import KellyError

MODELS = ("emotionrecognizer", "melodytransformer", "harmonypredictor", "dynamicsengine", "groovepredictor")


class FakeEngine:
    """Keeps what it is told and reports it back; thread-safe like the real engine must be."""

    def __init__(self, out_dir: Path, *, generate_seconds: float = 0.0) -> None:
        self.out_dir = out_dir
        self.generate_seconds = generate_seconds
        self.lock = threading.Lock()
        self.seq = 0
        self.emotion = (0.0, 0.5, 0.5)
        self.text: str | None = None
        self.enabled = {m: True for m in MODELS}
        self.loaded: list[str] = []
        self.shutdowns = 0
        self.started = time.monotonic()

    def _bump(self) -> None:
        self.seq += 1

    def load_model(self, path: str) -> str:
        if ".." in Path(path).parts or os.path.isabs(path):
            raise KellyError(f"model path {path} is outside the models folder")
        key = Path(path).stem
        if key not in MODELS:
            raise KellyError(f"{path}: no network is called {key!r}")
        with self.lock:
            self.loaded.append(key)
            self._bump()
        return key

    def set_emotion(self, valence: float, arousal: float, dominance: float) -> None:
        with self.lock:
            self.emotion = (valence, arousal, dominance)
            self._bump()

    def set_text(self, text: str) -> str | None:
        if text == "boom":
            raise RuntimeError("the text reader fell over\nsecond line")
        with self.lock:
            self.text = text
            self._bump()
        return "read as grief" if "miss" in text else None

    def generate_midi(self, bars: int) -> str:
        if self.generate_seconds:
            time.sleep(self.generate_seconds)
        path = self.out_dir / f"live-{bars}.mid"
        path.write_bytes(b"MThd")
        return str(path)

    def get_state(self) -> EngineState:
        with self.lock:
            v, a, d = self.emotion
            return EngineState(
                running=True, seq=self.seq, time_s=time.monotonic() - self.started, clock="internal",
                playing=True, bar=3, tempo_bpm=96.0, time_signature="4/4",
                emotion=LiveEmotion(valence=v, arousal=a, dominance=d, confidence=0.9, label="calm"),
                sources={"explicit": LiveEmotion(valence=v, arousal=a, dominance=d, confidence=1.0, age_s=0.5)},
                models={m: LiveModel(enabled=on, live=on, status="ok" if on else "off") for m, on in
                        self.enabled.items()},
                sample_rate=48000, block=256, latency_samples=512, blocks=100, overruns=0, dropped_frames=0,
                inferences=10, notes_sounding=2, midi_out=None)

    def set_model_enabled(self, model: str, enabled: bool) -> None:
        with self.lock:
            if model not in self.enabled:
                raise KellyError(f"unknown network {model!r}; networks are: {', '.join(MODELS)}")
            self.enabled[model] = enabled
            self._bump()

    def shutdown(self) -> None:
        with self.lock:
            self.shutdowns += 1


def raw_connect(path: Path, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def frame(body: bytes) -> bytes:
    return struct.pack("<I", len(body)) + body


def read_frame(s: socket.socket) -> bytes | None:
    """One frame's body, or None at end of stream."""
    def exact(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exact(4)
    if head is None:
        return None
    (n,) = struct.unpack("<I", head)
    return exact(n)
