"""Small MIDI songs built in code, so the groove tests need no files on disk."""

from __future__ import annotations

from kelly.song import DRUM_CHANNEL, Note, Song, Track

KICK, SNARE, HAT = 36, 38, 42


def straight_song(*, bars: int = 4, step: int = 120, ppq: int = 480, drums: bool = True,
                  pitch: int = HAT, velocity: int = 100) -> Song:
    """One track of notes on every ``step`` ticks (120 = 16ths, 240 = 8ths at 480 PPQ)."""
    bar = ppq * 4
    notes = [Note(t, pitch, max(1, step // 2), velocity) for t in range(0, bars * bar, step)]
    channel = DRUM_CHANNEL if drums else 0
    return Song(tracks=[Track("drums" if drums else "keys", 0, channel, notes)], ppq=ppq)


def kit_song(*, bars: int = 64, velocity: int = 100) -> Song:
    """Kick, snare and closed hat all on every 8th note: equal counts, so rates compare fairly."""
    notes = []
    for t in range(0, bars * 1920, 240):
        for pitch in (KICK, SNARE, HAT):
            notes.append(Note(t, pitch, 60, velocity))
    return Song(tracks=[Track("drums", 0, DRUM_CHANNEL, sorted(notes))])
