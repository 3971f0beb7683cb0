"""Note, Track and Song; MIDI writing through mido and one hardened MIDI reader.

Times are integer ticks at :data:`PPQ` = 480 per quarter note; pitches are MIDI
numbers; velocities 1–127. A :class:`Song` is what the engines produce and what the
groove and analysis tools read back: type-1 Standard MIDI Files with a conductor track
(tempo map, time and key signature) and one named track per part, each with its program
change. Drums are on MIDI channel 10 (index 9) with General MIDI drum numbers.

Every MIDI file Kelly reads goes through :func:`read_midi` (a path) or
:func:`read_midi_bytes` (bytes; the fuzzing entry point): only regular files, a size cap,
caps on events, notes and length, values repaired or refused with the reason, and one
:class:`~kelly.errors.FileFormatError` line for anything malformed.

Why the reader is ours and not mido's (writing still goes through mido): mido builds
every message object of a file before anything can be checked, so caps on events,
notes and length cannot be applied as the file is read; it raises a dozen exception
types from deep inside (``KeySignatureError`` for a key with 15 sharps, ``EOFError``,
``IndexError`` …); and it drops the delta time of unknown meta events. A small bounded
parser of the Standard MIDI File chunks checks each cap as it is reached.
"""

from __future__ import annotations

import io
import operator
import os
import struct
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum

import mido

from kelly.errors import FileFormatError
from kelly.fileio import read_regular_file, write_bytes_atomic

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


class Role(str, Enum):
    """What a part does in the arrangement; engines and measurements look parts up by role, not by name."""

    MELODY = "melody"
    HARMONY = "harmony"
    BASS = "bass"
    PAD = "pad"
    STRINGS = "strings"
    COUNTER = "counter"
    DRUMS = "drums"
    PERCUSSION = "percussion"
    FX = "fx"


#: The role of a track from its name, for files read back (Kelly's own track names, then common DAW names).
_ROLE_WORDS = (("counter", Role.COUNTER), ("melody", Role.MELODY), ("lead", Role.MELODY), ("vocal", Role.MELODY),
               ("chord", Role.HARMONY), ("keys", Role.HARMONY), ("piano", Role.HARMONY), ("bass", Role.BASS),
               ("pad", Role.PAD), ("string", Role.STRINGS), ("drum", Role.DRUMS), ("kit", Role.DRUMS),
               ("perc", Role.PERCUSSION), ("transition", Role.FX), ("fx", Role.FX), ("polychord", Role.HARMONY))


def role_from_name(name: str, channel: int = 0) -> Role | None:
    """Best guess of a track's role from its name (drums on channel 10 without a telling name are drums)."""
    low = name.lower()
    for word, role in _ROLE_WORDS:
        if word in low:
            return role
    return Role.DRUMS if channel == DRUM_CHANNEL else None


@dataclass
class Track:
    """A part: a name, a General MIDI program (0–127), a channel, its notes and its role.

    ``role`` defaults to a guess from the name (so files read back keep their roles); the
    engines set it explicitly.

    ``controls`` are the part's performance controllers, each ``(tick, kind, number, value)``:
    kind ``"cc"`` is a control change (``number`` the controller 0–127, ``value`` 0–127:
    64 sustain pedal, 1 modulation, 11 expression, 72/73/74 release, attack, brightness);
    kind ``"pitch"`` is the pitch wheel (``number`` 0, ``value`` −8192…8191, 0 the centre).
    They are written on the part's channel, in sorted order, before the notes that share
    their tick. The engines add them only when the networks' expression hints ask for
    them, so a song composed without hints has none. :func:`read_midi` does not read them
    back (analysis and the groove tools work on notes).
    """

    name: str
    program: int = 0
    channel: int = 0
    notes: list[Note] = field(default_factory=list)
    role: Role | None = None
    controls: list[tuple[int, str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.role is None:
            self.role = role_from_name(self.name, self.channel)

    def with_notes(self, notes: list[Note]) -> "Track":
        """The same part (name, program, channel, role, controllers) with other notes."""
        return Track(self.name, self.program, self.channel, notes, self.role, list(self.controls))

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL

    def __repr__(self) -> str:
        extra = f", controls={len(self.controls)}" if self.controls else ""
        return (f"Track({self.name!r}, program={self.program}, channel={self.channel + 1}, "
                f"notes={len(self.notes)}{extra})")


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
    #: What the reader repaired in the file it came from (one line each); not written to MIDI.
    warnings: list[str] = field(default_factory=list, compare=False)

    @property
    def bar_ticks(self) -> int:
        num, den = self.time_signature
        return max(1, self.ppq * 4 * num // den)  # at least a tick, even at 1 PPQ in 1/64

    def track(self, name: str) -> Track | None:
        return next((t for t in self.tracks if t.name == name), None)

    def by_role(self, role: Role) -> list[Track]:
        """Every track playing ``role``, in file order."""
        return [t for t in self.tracks if t.role == role]

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
        # MuseScore 3 (and some other notation programs) take the key signature only from the track that
        # holds the notes, so every part repeats the conductor's time and key signature at tick 0.
        header = [msg for _tick, order, msg in events if order in (1, 2)]
        for track in self.tracks:
            mid.tracks.append(_track_to_midi(track, header))
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


def _track_to_midi(track: Track, header=()) -> mido.MidiTrack:
    """One part as a MIDI track: its name, then ``header`` (meta events for tick 0), program change, notes."""
    ch = track.channel
    events: list[tuple[int, int, mido.Message]] = [(0, 0, mido.MetaMessage("track_name", name=track.name[:120]))]
    events.extend((0, 0, msg) for msg in header)  # a stable sort keeps them after the name
    if not track.is_drum:
        events.append((0, 1, mido.Message("program_change", channel=ch, program=int(track.program) & 127)))
    # controllers sort with the note-offs (order 2) and, appended first, come before them and before the
    # note-ons of their tick: a pedal or a bend is in place when the note it shapes starts
    for tick, kind, number, value in sorted(track.controls):
        tick = max(0, int(tick))
        if kind == "pitch":
            events.append((tick, 2, mido.Message("pitchwheel", channel=ch, pitch=min(8191, max(-8192, int(value))))))
        elif kind == "cc":
            events.append((tick, 2, mido.Message("control_change", channel=ch, control=min(127, max(0, int(number))),
                                                 value=min(127, max(0, int(value))))))
        else:
            raise ValueError(f"unknown controller kind {kind!r} on track {track.name!r} (use 'cc' or 'pitch')")
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
#
# One hardened reader for every MIDI file Kelly opens (``kelly analyze``, the groove
# tools, tests, the fuzzer). It parses the bytes itself instead of through mido, so that
# a malformed file can only ever end in one FileFormatError naming the file and the
# reason, and so that its cost is bounded by the events in the file: nothing is ever
# allocated per tick or per bar of the timeline here. Well-formed files read exactly as
# mido (clip=True) read them before; see :func:`read_midi_bytes` for the rules.

#: Largest MIDI file read, checked with ``stat`` before a byte is read.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Most events (channel, meta and sysex events together) in one file: bounds the time to read it.
MAX_EVENTS = 2_000_000
#: Most notes in one file: bounds memory. Every tool keeps each note as an object, and
#: writing a song back out (groove apply/humanize/swing) costs about 1.6 KB a note in mido,
#: so 500,000 notes stay under 1 GB.
MAX_NOTES = 500_000
#: Most tempo changes and markers together in one file (written back out like notes).
MAX_CONDUCTOR_EVENTS = 100_000
#: Longest piece: no note may end after this many bars (at the file's PPQ and time signature).
MAX_BARS = 10_000
#: ... nor after this tick (2**27), so that every delta time Kelly writes back, even after
#: the groove tools move notes, fits the 4-byte limit of a MIDI file (2**28 - 1 ticks).
MAX_TICK = 2**27
#: A set_tempo of 0 µs per quarter note is read as this tempo.
DEFAULT_BPM = 120.0
#: Faster tempos are read as this (the fastest a groove template may carry).
MAX_BPM = 10_000.0
#: Largest time-signature denominator read.
MAX_DENOMINATOR = 64

_MAJOR_KEYS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
_MINOR_KEYS = ("Abm", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm", "Am", "Em", "Bm", "F#m", "C#m", "G#m", "D#m", "A#m")
#: Data bytes + 1 of the system common and real-time messages mido accepts in a file.
_SYSTEM_LENGTH = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFE: 1}


#: Sort key giving Note's own order (start, pitch, duration, velocity), compared in C.
_NOTE_ORDER = operator.attrgetter("start", "pitch", "duration", "velocity")


class _Bad(Exception):
    """A reason the bytes cannot be read (internal; becomes FileFormatError with the file name)."""


def read_limit(song: Song) -> int:
    """The last tick a note of ``song`` may end at for :func:`read_midi` to read it back.

    The smaller of :data:`MAX_BARS` bars (at the song's PPQ and time signature) and
    :data:`MAX_TICK`. The groove tools keep their results within it, so that what Kelly
    writes Kelly can read.
    """
    return min(MAX_BARS * song.bar_ticks, MAX_TICK)


def read_midi(path: str | os.PathLike) -> Song:
    """Read a Standard MIDI File into a :class:`Song` (see :func:`read_midi_bytes` for the rules).

    Only regular files are opened (:func:`kelly.fileio.read_regular_file`: a named pipe
    or a device such as ``/dev/zero`` is refused without opening it, and anything above
    :data:`MAX_FILE_BYTES` before it is read).

    Raises
    ------
    FileFormatError
        If the file is missing, not a regular file, too large, unreadable, or not a
        MIDI file Kelly can read; the message is one line naming the file and the reason.
    """
    shown = _shown(path)
    try:
        data = read_regular_file(path, what="MIDI file", max_bytes=MAX_FILE_BYTES)
    except ValueError:  # an embedded NUL byte
        raise FileFormatError(f"{shown}: not a valid file name") from None
    if len(data) > MAX_FILE_BYTES:
        raise FileFormatError(f"{shown}: too large; Kelly reads MIDI files of up to {MAX_FILE_BYTES // 2**20} MiB")
    return _read(data, shown, os.path.basename(os.fsdecode(path)))


def read_midi_bytes(data: bytes | bytearray | memoryview, *, name: str = "<bytes>") -> Song:
    """Read the bytes of a Standard MIDI File into a :class:`Song`. The fuzzing entry point.

    Every failure is a :class:`~kelly.errors.FileFormatError` whose message is one line,
    ``"<name>: <reason>"``; anything else escaping from here is a bug in Kelly.

    What is read: type 0 and type 1 files with a PPQ (ticks per quarter note) time
    base; all tracks, notes paired per track, channel and pitch (first in, first out; a
    note never released ends with its track); the first track name and program change
    per channel; tempo changes, markers, the last time signature at tick 0 and the first
    key signature. Data bytes above 127 are clipped to 127 and events after an
    end-of-track event are still read, as mido does with ``clip=True``.

    **Rejected** (FileFormatError):

    * not a MIDI file (no ``MThd``), a header shorter than 6 bytes, a file or a track
      that ends early, a chunk that is not ``MTrk`` where a track should be;
    * MIDI type 2 or an unknown type; SMPTE time (frames per second instead of PPQ);
    * corrupt events: running status with no status before it, or repeating a one-byte
      system message; an undefined status byte (0xF4, 0xF5, 0xF9, 0xFD); a delta time or
      length longer than 4 bytes; an event or meta/sysex payload running past its track;
    * more than :data:`MAX_EVENTS` events (2,000,000), :data:`MAX_NOTES` notes (500,000)
      or :data:`MAX_CONDUCTOR_EVENTS` tempo changes and markers (100,000); more bytes
      than :data:`MAX_FILE_BYTES` (64 MiB). Each is checked as it is reached, before more
      is stored;
    * a note ending after :data:`MAX_BARS` bars (10,000 bars at the file's PPQ and time
      signature) or after tick :data:`MAX_TICK` (2**27). Analysis and the groove tools
      cost time per note and per bar, so this is what bounds them: a 40-byte file with a
      2**28-tick delta is refused here in microseconds instead of asking for gigabytes.

    **Repaired**, each listed in ``Song.warnings`` (with a count when repeated):

    * PPQ 0 in the header → 480 (as before);
    * a tempo of 0 µs per quarter → :data:`DEFAULT_BPM` (120 BPM); a tempo faster than
      :data:`MAX_BPM` (10,000 BPM, under 6 ms a quarter) → 10,000 BPM, so a groove
      template extracted from the file is one ``groove apply`` accepts;
    * a set_tempo with fewer than 3 data bytes → ignored;
    * a time signature at tick 0 with numerator 0, a denominator above 64 (2**7 and up)
      or fewer than 2 data bytes → ignored (the earlier one, or 4/4, stays);
    * a key signature outside −7…+7 sharps or with a mode other than 0 (major) / 1
      (minor), or with fewer than 2 data bytes → ignored (the song has no key signature
      unless a later one is valid);
    * tempo changes and markers after that limit (so after the last note) → dropped.

    Meta events Kelly does not use (sequence number, SMPTE offset, text, lyrics,
    sequencer-specific, unknown types …) are skipped whatever their contents, and so are
    control changes and pitch bends (``Track.controls`` of a song Kelly wrote, a DAW's
    automation): they are read past and bounded like every event, but analysis and the
    groove tools work on notes, so a file read back has ``controls`` empty.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    name : str
        Used in error messages; its base name becomes the song's title.
    """
    return _read(bytes(data), _shown(name), os.path.basename(name))


def song_from_midi(mid: mido.MidiFile, *, title: str = "") -> Song:
    """Convert a parsed :class:`mido.MidiFile` into a :class:`Song`, through :func:`read_midi_bytes`."""
    buf = io.BytesIO()
    mid.save(file=buf)
    return _read(buf.getvalue(), _shown(title or "<mido.MidiFile>"), title)


def _read(data: bytes, shown: str, title: str) -> Song:
    if len(data) > MAX_FILE_BYTES:
        raise FileFormatError(f"{shown}: too large (more than {MAX_FILE_BYTES // 2**20} MiB); "
                              f"Kelly reads MIDI files of up to {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return _parse(data, title)
    except _Bad as exc:
        raise FileFormatError(f"{shown}: {exc}") from None


def _shown(path) -> str:
    """The path as one printable line."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    return text if text.isprintable() else repr(text)[1:-1]


class _Repairs:
    """Warnings about repaired values, one line per kind with a count."""

    def __init__(self) -> None:
        self.seen: dict[str, list] = {}

    def add(self, kind: str, message: str) -> None:
        entry = self.seen.get(kind)
        if entry is None:
            self.seen[kind] = [1, message]
        else:
            entry[0] += 1

    def lines(self) -> list[str]:
        return [msg if n == 1 else f"{msg} (and {n - 1:,} more like it)" for n, msg in self.seen.values()]


def _parse(data: bytes, title: str) -> Song:
    n = len(data)
    if not data.startswith(b"MThd"):
        if n == 0:
            raise _Bad("the file is empty, not a MIDI file")
        if n < 4 and b"MThd".startswith(data):
            raise _Bad(f"truncated MIDI file: only {n} bytes")
        raise _Bad("not a MIDI file (it does not start with 'MThd')")
    if n < 8:
        raise _Bad(f"truncated MIDI file: only {n} bytes")
    header_size = int.from_bytes(data[4:8], "big")
    if header_size < 6:
        raise _Bad(f"corrupt MIDI header: its chunk is {header_size} bytes long, at least 6 are needed")
    if n < 14:
        raise _Bad(f"truncated MIDI file: the header needs 14 bytes, the file has {n}")
    fmt, ntracks, division = struct.unpack_from(">HHH", data, 8)
    if fmt == 2:
        raise _Bad("MIDI type 2 (independent patterns) is not supported")
    if fmt > 2:
        raise _Bad(f"unknown MIDI file type {fmt} (types 0 and 1 are read)")
    if division & 0x8000:
        raise _Bad(f"unsupported MIDI time base: SMPTE time ({256 - (division >> 8)} frames per second) "
                   "instead of ticks per quarter note; export the file with a PPQ resolution")
    repairs = _Repairs()
    ppq = division
    if ppq == 0:
        repairs.add("ppq", f"the header gives 0 ticks per quarter note; read as {PPQ}")
        ppq = PPQ
    song = Song(tracks=[], tempos=[], title=title, ppq=ppq, key_signature=None)
    pos = 8 + header_size
    if pos > n and ntracks:
        raise _Bad(f"truncated MIDI file: the header chunk says {header_size:,} bytes, the file has {n - 8:,} after it")
    counts = [0, 0]  # events and notes so far
    for index in range(ntracks):
        if pos + 8 > n:
            raise _Bad(f"truncated MIDI file: the header announces {ntracks} tracks, the file ends after {index}")
        if data[pos:pos + 4] != b"MTrk":
            raise _Bad(f"corrupt MIDI file: track {index + 1} does not start with 'MTrk' "
                       f"(found {data[pos:pos + 4]!r} at byte {pos})")
        size = int.from_bytes(data[pos + 4:pos + 8], "big")
        start = pos + 8
        end = start + size
        if end > n:
            raise _Bad(f"truncated MIDI file: track {index + 1} should hold {size:,} bytes, "
                       f"the file ends after {n - start:,}")
        _read_track(data, start, end, index, song, repairs, counts)
        pos = end

    if not song.tempos:
        song.tempos = [(0, DEFAULT_BPM)]
    song.tempos.sort()
    last = max((note.start + note.duration for t in song.tracks for note in t.notes), default=0)
    bar = song.bar_ticks  # read_limit(song) is min(MAX_BARS * bar, MAX_TICK)
    if last > MAX_BARS * bar:
        raise _Bad(f"too long: a note ends in bar {-(-last // bar):,} (tick {last:,} at PPQ {song.ppq}, "
                   f"{song.time_signature[0]}/{song.time_signature[1]}); Kelly reads at most {MAX_BARS:,} bars")
    if last > MAX_TICK:
        raise _Bad(f"too long: a note ends at tick {last:,}; Kelly reads notes up to tick {MAX_TICK:,}")
    limit = read_limit(song)
    if song.tempos[-1][0] > limit or (song.markers and max(t for t, _ in song.markers) > limit):
        dropped = sum(1 for t, _ in song.tempos if t > limit) + sum(1 for t, _ in song.markers if t > limit)
        song.tempos = [e for e in song.tempos if e[0] <= limit] or [(0, DEFAULT_BPM)]
        song.markers = [e for e in song.markers if e[0] <= limit]
        repairs.add("late", f"{dropped:,} tempo change(s) and marker(s) after tick {limit:,}, beyond what Kelly "
                            "reads, were dropped")
    song.warnings = repairs.lines()
    return song


def _vlq(data: bytes, p: int, end: int, index: int, what: str) -> tuple[int, int]:
    """A variable-length number of at most 4 bytes at ``p``; returns (value, next position)."""
    value = 0
    for _ in range(4):
        if p >= end:
            raise _Bad(f"truncated MIDI track {index + 1}: it ends inside {what} at byte {p}")
        b = data[p]
        p += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, p
    raise _Bad(f"corrupt MIDI track {index + 1}: {what} longer than 4 bytes at byte {p - 4}")


def _read_track(data: bytes, p: int, end: int, index: int, song: Song, repairs: _Repairs, counts: list[int]) -> None:
    """Read one MTrk chunk's events (bytes ``p``..``end``) into ``song``; ``counts`` = [events, notes] so far."""
    now = 0
    name = None
    status = None  # running status
    programs: dict[int, int] = {}
    open_notes: dict[tuple[int, int], deque] = {}
    by_channel: dict[int, list[Note]] = {}
    events, notes = counts
    limit, note_limit = MAX_EVENTS, MAX_NOTES
    track_no = index + 1

    def cut(at: int, what: str) -> _Bad:
        return _Bad(f"truncated MIDI track {track_no}: {what} at byte {at} runs past the end of the track")

    while p < end:
        b = data[p]
        if b < 0x80:  # a one-byte delta time, by far the commonest
            p += 1
            now += b
        else:
            delta, p = _vlq(data, p, end, index, "a delta time")
            now += delta
        if p >= end:
            raise _Bad(f"truncated MIDI track {track_no}: it ends after a delta time, before its event (byte {p})")
        events += 1
        if events > limit:
            raise _Bad(f"too many events: more than {limit:,}; Kelly reads at most {limit:,}")
        at = p
        cmd = data[p]
        running = cmd < 0x80
        if running:
            if status is None:
                raise _Bad(f"corrupt MIDI track {track_no}: data byte 0x{cmd:02X} at byte {p} "
                           "with no status byte before it (running status with nothing to repeat)")
            cmd = status
        else:
            p += 1
            if cmd != 0xFF:  # meta events do not set running status
                status = cmd

        if cmd < 0xF0:  # channel message
            kind = cmd & 0xF0
            if kind == 0xC0 or kind == 0xD0:
                if p + 1 > end:
                    raise cut(at, "an event")
                if kind == 0xC0:
                    value = data[p]
                    programs.setdefault(cmd & 0x0F, value if value < 127 else 127)
                p += 1
                continue
            if p + 2 > end:
                raise cut(at, "an event")
            if kind == 0x90 or kind == 0x80:
                ch = cmd & 0x0F
                pitch = data[p]
                if pitch > 127:
                    pitch = 127
                vel = data[p + 1]
                if vel > 127:
                    vel = 127
                if kind == 0x90 and vel > 0:
                    notes += 1
                    if notes > note_limit:
                        raise _Bad(f"too many notes: more than {note_limit:,}; Kelly reads at most {note_limit:,}")
                    stack = open_notes.get((ch, pitch))
                    if stack is None:
                        stack = open_notes[(ch, pitch)] = deque()
                    stack.append((now, vel))
                else:
                    stack = open_notes.get((ch, pitch))
                    if stack:
                        start, velocity = stack.popleft()
                        by_channel.setdefault(ch, []).append(Note(start, pitch, max(1, now - start), velocity))
            p += 2
        elif cmd == 0xFF:  # meta event
            if p >= end:
                raise cut(at, "a meta event")
            mtype = data[p]
            length, p = _vlq(data, p + 1, end, index, "a meta event's length")
            if p + length > end:
                raise cut(at, f"a meta event of {length:,} bytes")
            if mtype == 0x51:
                _tempo(data[p:p + length], now, song, repairs)
                if len(song.tempos) + len(song.markers) > MAX_CONDUCTOR_EVENTS:
                    raise _too_many_conductor_events()
            elif mtype == 0x03:
                if name is None:
                    name = data[p:p + length].decode("latin-1")
            elif mtype == 0x06:
                song.markers.append((now, data[p:p + length].decode("latin-1")))
                if len(song.tempos) + len(song.markers) > MAX_CONDUCTOR_EVENTS:
                    raise _too_many_conductor_events()
            elif mtype == 0x58:
                if now == 0:
                    _time_signature(data[p:p + length], song, repairs)
            elif mtype == 0x59:
                if song.key_signature is None:
                    _key_signature(data[p:p + length], now, song, repairs)
            p += length
        elif cmd == 0xF0 or cmd == 0xF7:  # sysex; under running status mido drops the data byte first
            if running:
                p += 1
            length, p = _vlq(data, p, end, index, "a sysex length")
            if p + length > end:
                raise cut(at, f"a sysex event of {length:,} bytes")
            p += length
        else:  # system common / real-time
            size = _SYSTEM_LENGTH.get(cmd)
            if size is None:
                raise _Bad(f"corrupt MIDI track {track_no}: undefined status byte 0x{cmd:02X} at byte {at}")
            if running and size == 1:
                raise _Bad(f"corrupt MIDI track {track_no}: data byte 0x{data[at]:02X} at byte {at} "
                           f"repeats the one-byte message 0x{cmd:02X}")
            if p + size - 1 > end:
                raise cut(at, "an event")
            p += size - 1

    for (ch, pitch), stack in open_notes.items():  # notes never released end at the track's end
        for start, velocity in stack:
            by_channel.setdefault(ch, []).append(Note(start, pitch, max(1, now - start), velocity))
    for ch in sorted(by_channel):
        label = name or f"Track {index}"
        if len(by_channel) > 1:
            label = f"{label} (ch {ch + 1})"
        song.tracks.append(Track(label, programs.get(ch, 0), ch, sorted(by_channel[ch], key=_NOTE_ORDER)))
    counts[0], counts[1] = events, notes


def _too_many_conductor_events() -> _Bad:
    return _Bad(f"too many tempo changes and markers: more than {MAX_CONDUCTOR_EVENTS:,}; "
                f"Kelly reads at most {MAX_CONDUCTOR_EVENTS:,}")


def _tempo(payload: bytes, now: int, song: Song, repairs: _Repairs) -> None:
    if len(payload) < 3:
        repairs.add("tempo-short", f"a set_tempo event with {len(payload)} data bytes at tick {now:,} "
                                   "was ignored (it needs 3)")
        return
    tempo = (payload[0] << 16) | (payload[1] << 8) | payload[2]
    if tempo == 0:
        repairs.add("tempo-0", f"tempo 0 (microseconds per quarter note) at tick {now:,} was read as "
                               f"{DEFAULT_BPM:g} BPM")
        bpm = DEFAULT_BPM
    else:
        bpm = round(60 * 1e6 / tempo * 4 / 4.0, 6)  # mido.tempo2bpm, rounded as before
        if bpm > MAX_BPM:
            repairs.add("tempo-fast", f"tempo {bpm:g} BPM at tick {now:,} is faster than {MAX_BPM:g} BPM; "
                                      f"read as {MAX_BPM:g} BPM")
            bpm = MAX_BPM
    song.tempos.append((now, bpm))


def _time_signature(payload: bytes, song: Song, repairs: _Repairs) -> None:
    if len(payload) < 2:
        repairs.add("ts-short", f"a time signature with {len(payload)} data bytes at tick 0 was ignored; "
                                f"using {song.time_signature[0]}/{song.time_signature[1]}")
        return
    numerator, power = payload[0], payload[1]
    if numerator == 0 or (1 << power) > MAX_DENOMINATOR:
        shown = f"{numerator}/{2 ** power}" if power <= 16 else f"{numerator}/2^{power}"
        repairs.add("ts-bad", f"time signature {shown} at tick 0 was ignored (the numerator must be 1-255 and the "
                              f"denominator a power of two up to {MAX_DENOMINATOR}); "
                              f"using {song.time_signature[0]}/{song.time_signature[1]}")
        return
    song.time_signature = (numerator, 2 ** power)


def _key_signature(payload: bytes, now: int, song: Song, repairs: _Repairs) -> None:
    if len(payload) < 2:
        repairs.add("key-short", f"a key signature with {len(payload)} data bytes at tick {now:,} was ignored")
        return
    sharps = payload[0] - 256 if payload[0] > 127 else payload[0]
    mode = payload[1]
    if -7 <= sharps <= 7 and mode in (0, 1):
        song.key_signature = (_MINOR_KEYS if mode else _MAJOR_KEYS)[sharps + 7]
        return
    count = f"{sharps} sharps" if sharps >= 0 else f"{-sharps} flats"
    repairs.add("key-bad", f"key signature with {count} and mode {mode} at tick {now:,} was ignored "
                           "(keys have at most 7 sharps or flats; mode 0 is major, 1 minor)")
