"""A MIDI sink for tests that keeps what it is given (shared by the midi_out and live scheduler tests)."""

from __future__ import annotations

import mido


class RecordingSink:
    """Keeps every message with its time, and the tempo changes."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[tuple[mido.Message, float]] = []
        self.tempos: list[tuple[float, float]] = []
        self.closed_at: float | None = None

    def send(self, msg, time_s):
        self.sent.append((msg, time_s))

    def set_tempo(self, bpm, time_s):
        self.tempos.append((bpm, time_s))

    def close(self, time_s):
        self.closed_at = time_s

    def of(self, kind: str, channel: int | None = None) -> list[tuple[mido.Message, float]]:
        """The messages of one type (on one channel), with their times."""
        return [(m, t) for m, t in self.sent if m.type == kind and (channel is None or m.channel == channel)]
