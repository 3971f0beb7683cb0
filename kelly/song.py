"""Note, Track and Song, and MIDI reading/writing through mido.

Times are integer ticks at :data:`PPQ` = 480 per quarter note; pitches are MIDI
numbers; velocities 1–127. A :class:`Song` is what the engines produce and what the
groove and analysis tools read back: type-1 Standard MIDI Files with a conductor track
(tempo map, time and key signature) and one named track per part, each with its program
change. Drums are on MIDI channel 10 (index 9) with General MIDI drum numbers.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace

import mido

from kelly.errors import FileFormatError
from kelly.fileio import write_bytes_atomic

PPQ = 480
DRUM_CHANNEL = 9  # channel 10 to a musician


@dataclass(frozen=True, order=True)
class Note:
    """One note: ``start`` and ``duration`` in ticks, ``pitch`` 0–127, ``velocity`` 1–127."""

    start: int
    pitch: int
    duration: int
    velocity: int

    @property
    def end(self) -> int:
        return self.start + self.duration

    def moved(self, **changes) -> "Note":
        return replace(self, **changes)

    def __repr__(self) -> str:
        return f"Note(start={self.start}, pitch={self.pitch}, duration={self.duration}, velocity={self.velocity})"


@dataclass
class Track:
    """A part: a name, a General MIDI program (0–127), a channel and its notes."""

    name: str
    program: int = 0
    channel: int = 0
    notes: list[Note] = field(default_factory=list)

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL

    def __repr__(self) -> str:
        return f"Track({self.name!r}, program={self.program}, channel={self.channel + 1}, notes={len(self.notes)})"


@dataclass
class Song:
    """A piece: tracks plus the conductor information a DAW needs."""

    tracks: list[Track] = field(default_factory=list)
    tempos: list[tuple[int, float]] = field(default_factory=lambda: [(0, 120.0)])  # (tick, bpm)
    time_signature: tuple[int, int] = (4, 4)
    key_signature: str | None = "C"  # mido name such as "C" or "Am"
    title: str = "Kelly"
    ppq: int = PPQ
    markers: list[tuple[int, str]] = field(default_factory=list)  # (tick, section name)

    @property
    def bar_ticks(self) -> int:
        num, den = self.time_signature
        return self.ppq * 4 * num // den

    def track(self, name: str) -> Track | None:
        return next((t for t in self.tracks if t.name == name), None)

    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def end_tick(self) -> int:
        return max((n.end for t in self.tracks for n in t.notes), default=0)

    # ------------------------------------------------------------------ writing
    def to_midi(self) -> mido.MidiFile:
        """Build a type-1 :class:`mido.MidiFile` (deterministic: the same Song gives the same bytes)."""
        mid = mido.MidiFile(type=1, ticks_per_beat=self.ppq)
        conductor = mido.MidiTrack()
        events: list[tuple[int, int, mido.MetaMessage]] = [
            (0, 0, mido.MetaMessage("track_name", name=self.title[:120])),
            (0, 1, mido.MetaMessage("time_signature", numerator=self.time_signature[0],
                                    denominator=self.time_signature[1])),
        ]
        if self.key_signature:
            events.append((0, 2, mido.MetaMessage("key_signature", key=self.key_signature)))
        for tick, bpm in self.tempos:
            events.append((int(tick), 3, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
        for tick, text in self.markers:
            events.append((int(tick), 4, mido.MetaMessage("marker", text=text[:120])))
        _append_events(conductor, events)
        mid.tracks.append(conductor)
        for track in self.tracks:
            mid.tracks.append(_track_to_midi(track))
        return mid

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.to_midi().save(file=buf)
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        """Write the Standard MIDI File atomically."""
        write_bytes_atomic(path, self.to_bytes())


def _append_events(track: mido.MidiTrack, events) -> None:
    events = sorted(events, key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _order, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))


def _track_to_midi(track: Track) -> mido.MidiTrack:
    ch = track.channel
    events: list[tuple[int, int, mido.Message]] = [(0, 0, mido.MetaMessage("track_name", name=track.name[:120]))]
    if not track.is_drum:
        events.append((0, 1, mido.Message("program_change", channel=ch, program=int(track.program) & 127)))
    for note in track.notes:
        if note.duration <= 0:
            continue
        pitch = min(127, max(0, int(note.pitch)))
        vel = min(127, max(1, int(note.velocity)))
        start = max(0, int(note.start))
        # note-offs sort before note-ons at the same tick so repeated pitches re-strike cleanly
        events.append((start, 3 + pitch, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        events.append((start + int(note.duration), 2, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    out = mido.MidiTrack()
    _append_events(out, events)
    return out


# ---------------------------------------------------------------------- reading
def read_midi(path: str | os.PathLike) -> Song:
    """Read a Standard MIDI File into a :class:`Song` (all tracks, notes paired per channel and pitch).

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable or not MIDI.
    """
    try:
        mid = mido.MidiFile(os.fspath(path), clip=True)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a folder, not a MIDI file") from None
    except PermissionError:
        raise FileFormatError(f"{path}: permission denied") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise FileFormatError(f"{path}: not a readable MIDI file ({detail})") from None
    return song_from_midi(mid, title=os.path.basename(os.fspath(path)))


def song_from_midi(mid: mido.MidiFile, *, title: str = "") -> Song:
    """Convert a parsed :class:`mido.MidiFile` into a :class:`Song`."""
    if mid.type == 2:
        raise FileFormatError("MIDI type 2 (independent patterns) is not supported")
    ppq = mid.ticks_per_beat or PPQ
    song = Song(tracks=[], tempos=[], title=title, ppq=ppq, key_signature=None)
    for index, mtrack in enumerate(mid.tracks):
        now = 0
        name = None
        programs: dict[int, int] = {}
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        by_channel: dict[int, list[Note]] = {}
        for msg in mtrack:
            now += msg.time
            if msg.type == "track_name" and name is None:
                name = msg.name
            elif msg.type == "set_tempo":
                song.tempos.append((now, round(mido.tempo2bpm(msg.tempo), 6)))
            elif msg.type == "time_signature" and now == 0:
                song.time_signature = (msg.numerator, msg.denominator)
            elif msg.type == "key_signature" and song.key_signature is None:
                song.key_signature = msg.key
            elif msg.type == "marker":
                song.markers.append((now, msg.text))
            elif msg.type == "program_change":
                programs.setdefault(msg.channel, msg.program)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = open_notes.get((msg.channel, msg.note))
                if stack:
                    start, vel = stack.pop(0)
                    by_channel.setdefault(msg.channel, []).append(Note(start, msg.note, max(1, now - start), vel))
        for (ch, pitch), stack in open_notes.items():  # notes never released end at the track's end
            for start, vel in stack:
                by_channel.setdefault(ch, []).append(Note(start, pitch, max(1, now - start), vel))
        for ch in sorted(by_channel):
            label = name or f"Track {index}"
            if len(by_channel) > 1:
                label = f"{label} (ch {ch + 1})"
            song.tracks.append(Track(label, programs.get(ch, 0), ch, sorted(by_channel[ch])))
    if not song.tempos:
        song.tempos = [(0, 120.0)]
    song.tempos.sort()
    return song
