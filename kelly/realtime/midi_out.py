"""Live MIDI output: a file recorder, a python-rtmidi port, and the note bookkeeping in front of both.

The real-time engine talks only to a :class:`NoteTracker`. The tracker checks every value,
remembers which notes sound, and passes plain :class:`mido.Message` objects with the engine's
clock time (seconds since the engine started, never decreasing) to a :class:`MidiSink`:

* :class:`MidiFileSink` records the session and writes a type-1 Standard MIDI File when it is
  closed (``--midi-out take.mid``);
* :class:`RtMidiSink` sends each message at once to a MIDI port, or to a virtual port named
  "Kelly" that a DAW or synth can connect to (``--midi-out virtual``, or a port name/number).

:func:`open_midi_out` turns the command-line spec into one of them.

Why a tracker: a live stream that is stopped, retriggered or interrupted by an error must never
leave a note hanging on a synth. The tracker guarantees one note-off for every note-on, and its
:meth:`NoteTracker.close` silences everything it started before the sink closes.

python-rtmidi (the ``live`` extra) is imported only when a port is opened, so recording to a
file, and everything else in Kelly, works without it.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import re
import struct
import sys
import tempfile
import threading
from array import array
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import mido

from kelly.errors import InputError, KellyError, OutputError
from kelly.fileio import check_destination, show_path, write_bytes_atomic

PPQ = 480
DRUM_CHANNEL = 9
#: Tempo of a recording until the first :meth:`MidiSink.set_tempo` (the Standard MIDI File default).
DEFAULT_BPM = 120.0
#: Slowest and fastest tempo accepted: a MIDI tempo is 1..2**24-1 microseconds per quarter note.
MIN_BPM = 60e6 / 0xFFFFFF  # about 3.58
MAX_BPM = 1000.0
#: Most events one recording keeps (about 11 bytes each in memory, so ~22 MB at the cap).
MAX_EVENTS = 2_000_000
#: Room past the cap for the messages that end notes, so a full recording still closes cleanly:
#: at most 16 x 128 note-offs plus three controllers per channel.
_CLOSING_ROOM = 16 * 128 + 16 * 3
#: Last tick a recording may reach: what :func:`kelly.song.read_midi` reads back (4-byte delta times).
MAX_TICK = 2**27
#: What the virtual output port is called when none is named.
VIRTUAL_NAME = "Kelly"

_HINT_FILE = "use --midi-out FILE.mid"
_INSTALL = "live MIDI ports need python-rtmidi: pip install 'kelly[live]'"


@runtime_checkable
class MidiSink(Protocol):
    """Where live MIDI goes. ``time_s`` is the engine clock in seconds and never decreases.

    A sink does no bookkeeping of its own: :class:`NoteTracker` validates values and pairs
    notes before anything reaches it.
    """

    name: str

    def send(self, msg: mido.Message, time_s: float) -> None:
        """Deliver (or record) one channel message at ``time_s``."""

    def set_tempo(self, bpm: float, time_s: float) -> None:
        """The tempo from ``time_s`` on (recorded in a file; a live port has no tempo)."""

    def close(self, time_s: float) -> None:
        """End the session at ``time_s``: a file is written, a port released. Idempotent."""


# ============================================================================ file sink
def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (7 bits a byte, high bit set on all but the last)."""
    out = bytearray([value & 0x7F])
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(payload)) + payload


def _chunk(events: Iterator[tuple[int, bytes]], end_tick: int) -> bytes:
    """An ``MTrk`` chunk from (absolute tick, event bytes) pairs in time order, ended at ``end_tick``."""
    body = bytearray()
    now = 0
    for tick, data in events:
        body += _vlq(tick - now)
        body += data
        now = tick
    body += _vlq(max(0, end_tick - now)) + _meta(0x2F, b"")
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _finite(value: float, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, not {value}")
    return value


def _tempo_us(bpm: float) -> int:
    """Microseconds per quarter note for ``bpm`` (the integer a MIDI file stores)."""
    bpm = _finite(bpm, "tempo (BPM)")
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise InputError(f"tempo {bpm:g} BPM is out of range ({MIN_BPM:.2f} to {MAX_BPM:g} BPM)")
    return min(0xFFFFFF, max(1, round(60e6 / bpm)))


class _Channel:
    """One channel's recorded events, packed: a tick (8 bytes) and 3 status/data bytes each.

    mido keeps about 1.6 KB per message object; packing lets a session reach the event cap
    in ~22 MB instead of gigabytes.
    """

    __slots__ = ("ticks", "data")

    def __init__(self) -> None:
        self.ticks = array("q")
        self.data = bytearray()

    def events(self) -> Iterator[tuple[int, bytes]]:
        data = self.data
        for i, tick in enumerate(self.ticks):
            status = data[3 * i]
            size = 2 if status & 0xE0 == 0xC0 else 3  # program change and channel pressure have one data byte
            yield tick, bytes(data[3 * i:3 * i + size])


class MidiFileSink:
    """Record a live session and write it as a type-1 Standard MIDI File on :meth:`close`.

    The file has a conductor track (its name and the tempo map) and one named track per MIDI
    channel used, in channel order, holding that channel's messages (program changes, controllers,
    notes) as they were sent. Nothing is written before :meth:`close`; then the whole file is
    written atomically (:func:`kelly.fileio.write_bytes_atomic`), so a crash never leaves half a
    file. The destination is checked when the sink is made, so a bad path fails before a session
    rather than after it.

    Seconds become ticks through the tempo map exactly: each tempo change is placed on the
    nearest tick, and the time at which that tick falls is kept as an exact integer
    (microseconds x PPQ), so every event is rounded once, on its own, and no error accumulates
    however long the session runs. A reader of the file (mido, pretty_midi, a DAW) finds each
    event within half a tick of the second it was sent.

    Parameters
    ----------
    path : path
        The ``.mid`` file to write.
    ppq : int
        Ticks per quarter note (Kelly's 480).
    overwrite : bool
        Replace an existing file (the commands' ``--force``); otherwise an existing file is
        refused now, before the session.
    origin_s : float
        Engine time of tick 0 (the engine clock starts at 0, so bar 1 of the file is the
        engine's bar 1). Earlier times are recorded at tick 0.
    max_events : int
        Most messages kept. Each one past it raises :class:`~kelly.errors.OutputError` (memory
        stays bounded); what was recorded is still written on :meth:`close` (note-offs and the
        closing controllers are still taken, so no note is left hanging).
    title : str
        Name of the conductor track.
    """

    def __init__(self, path: str | os.PathLike, *, ppq: int = PPQ, overwrite: bool = True, origin_s: float = 0.0,
                 max_events: int = MAX_EVENTS, title: str = "Kelly live") -> None:
        if isinstance(ppq, bool) or not isinstance(ppq, int) or not 1 <= ppq <= 0x7FFF:
            raise InputError(f"PPQ must be a whole number from 1 to 32767, not {ppq!r}")
        self.path = Path(path)
        self.overwrite = overwrite
        check_destination(self.path, overwrite=overwrite)
        self.name = f"MIDI file {show_path(self.path)}"
        self.ppq = ppq
        self.origin_s = _finite(origin_s, "origin_s")
        self.max_events = int(max_events)
        self.title = title
        self.events = 0  # messages recorded (tempo changes included)
        self.skipped = 0  # system messages (clock, sysex …) sent to the file and left out
        self.closed = False
        self.full = False
        self._channels: dict[int, _Channel] = {}
        self._names: dict[int, str] = {}
        # Tempo map: (tick, microseconds per quarter note); the segment now running starts at
        # _anchor_tick, which falls at _anchor_num / (1e6 * ppq) seconds (an exact integer).
        self._tempos: list[tuple[int, int]] = [(0, _tempo_us(DEFAULT_BPM))]
        self._anchor_tick = 0
        self._anchor_num = 0
        self._last_tick = 0

    # ---------------------------------------------------------------- time
    def tick_at(self, time_s: float) -> int:
        """The tick for engine time ``time_s`` under the tempo map so far (never before the last event)."""
        seconds = max(0.0, _finite(time_s, "time_s") - self.origin_s)
        tempo = self._tempos[-1][1]
        exact = self._anchor_tick + (seconds * 1e6 * self.ppq - self._anchor_num) / tempo
        tick = max(self._last_tick, round(exact))
        if tick > MAX_TICK:
            raise OutputError(f"{show_path(self.path)}: the session is too long for one MIDI file "
                              f"(past tick {MAX_TICK:,}); stop and start a new recording")
        return tick

    # ---------------------------------------------------------------- MidiSink
    def name_track(self, channel: int, name: str) -> None:
        """Name the track of ``channel`` (default "Kelly channel N", "Kelly drums" on channel 10)."""
        self._names[_number(channel, "channel", 0, 15)] = str(name)[:120]

    def send(self, msg: mido.Message, time_s: float) -> None:
        """Record a channel message; system messages (clock, sysex) are counted in :attr:`skipped`."""
        self._check_open()
        data = msg.bytes()
        status = data[0]
        if status >= 0xF0:
            self.skipped += 1
            return
        if self.events >= self.max_events and not (self._closes_notes(data)
                                                   and self.events < self.max_events + _CLOSING_ROOM):
            self.full = True
            raise OutputError(f"{show_path(self.path)}: the recording holds {self.max_events:,} MIDI events, "
                              "the most Kelly keeps in one file; it is written as it is when the session "
                              "closes: stop and start a new recording")
        tick = self.tick_at(time_s)
        channel = self._channels.get(status & 0x0F)
        if channel is None:
            channel = self._channels[status & 0x0F] = _Channel()
        channel.ticks.append(tick)
        channel.data += bytes(data[:3]).ljust(3, b"\0")
        self._last_tick = tick
        self.events += 1

    @staticmethod
    def _closes_notes(data: list[int]) -> bool:
        kind = data[0] & 0xF0
        return kind == 0x80 or (kind == 0x90 and data[2] == 0) or (kind == 0xB0 and data[1] in (64, 120, 123))

    def set_tempo(self, bpm: float, time_s: float) -> None:
        """Change the tempo at ``time_s`` (placed on the nearest tick; the same tempo again is a no-op)."""
        self._check_open()
        tempo = _tempo_us(bpm)
        tick = self.tick_at(time_s)
        last_tick, last_tempo = self._tempos[-1]
        if tempo == last_tempo:
            return
        if tick == last_tick:  # two changes on one tick: the later wins; the segment start does not move
            self._tempos[-1] = (tick, tempo)
            return
        self._anchor_num += (tick - self._anchor_tick) * last_tempo
        self._anchor_tick = tick
        self._last_tick = tick
        self._tempos.append((tick, tempo))
        self.events += 1

    def close(self, time_s: float) -> None:
        """Write the file (the conductor track ends at ``time_s``); later calls do nothing."""
        if self.closed:
            return
        try:
            end = self.tick_at(time_s)
        except OutputError:  # past the longest file: end at the last event rather than lose the take
            end = self._last_tick
        write_bytes_atomic(self.path, self.to_bytes(end), overwrite=self.overwrite)
        self.closed = True  # only now: after a failed write (a full disk) close may be tried again

    def to_bytes(self, end_tick: int | None = None) -> bytes:
        """The Standard MIDI File as recorded so far, its tracks ending at ``end_tick`` (default: the last event)."""
        end = max(self._last_tick, end_tick or 0)
        conductor = [(0, _meta(0x03, self.title.encode("latin-1", "replace")[:120]))]
        conductor += [(tick, _meta(0x51, tempo.to_bytes(3, "big"))) for tick, tempo in self._tempos]
        chunks = [_chunk(iter(conductor), end)]
        for ch in sorted(self._channels):
            default = "Kelly drums" if ch == DRUM_CHANNEL else f"Kelly channel {ch + 1}"
            name = self._names.get(ch, default).encode("latin-1", "replace")
            events = self._channels[ch].events()
            chunks.append(_chunk(_prepend((0, _meta(0x03, name)), events), end))
        header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), self.ppq)
        return header + b"".join(chunks)

    def _check_open(self) -> None:
        if self.closed:
            raise OutputError(f"{self.name} is closed")

    def __repr__(self) -> str:
        return f"MidiFileSink({show_path(self.path)!r}, events={self.events}, channels={sorted(self._channels)})"


def _prepend(first, rest):
    yield first
    yield from rest


# ============================================================================ rtmidi ports
def _rtmidi():
    """The python-rtmidi module, or a KellyError saying how to install it."""
    try:
        import rtmidi
    except (ImportError, OSError):  # OSError: the package is there but its shared library is not
        raise KellyError(f"{_INSTALL}, or write the MIDI to a file: {_HINT_FILE}") from None
    return rtmidi


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Catch what C libraries write to file descriptor 2 inside the block; yields a list that gets its lines.

    ALSA prints "ALSA lib seq_hw.c:… open /dev/snd/seq failed" straight to fd 2 when it has no
    sequencer, before rtmidi raises. A user should see one clear line from Kelly, so the noise is
    caught here and its gist put into that line. The swap lasts only the few milliseconds of an
    rtmidi call; whatever another thread writes to fd 2 meanwhile lands in the same temporary file
    (and is lost). Where fd 2 cannot be duplicated, nothing is caught.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    try:
        with tempfile.TemporaryFile() as tmp:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                lines.extend(tmp.read(16384).decode("utf-8", "replace").splitlines())
    finally:
        os.close(saved)


def _gist(exc: BaseException, noise: list[str]) -> str:
    """Why rtmidi failed, in a few words: ALSA's own line if it printed one, else rtmidi's message."""
    for line in reversed(noise):
        if line.startswith("ALSA lib"):
            return re.sub(r"^ALSA lib \S+\s*", "ALSA: ", line).strip()
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _rtmidi_api_name(rtmidi, midi) -> str:
    try:
        return rtmidi.get_api_display_name(midi.get_current_api())
    except Exception:  # noqa: BLE001 - only for a message
        return "this system's MIDI"


def open_rtmidi(direction: str, port: str | int | None, virtual_name: str, hint: str):
    """Open a python-rtmidi ``MidiOut`` (``direction="output"``) or ``MidiIn`` (``"input"``).

    ``port`` None opens a virtual port named ``virtual_name``; a string opens the first port whose
    name contains it (case-insensitive); an int opens that index. Returns ``(midi, description)``.
    Every failure is a KellyError; ``hint`` ends the "no MIDI system" message.
    """
    rtmidi = _rtmidi()
    factory = rtmidi.MidiOut if direction == "output" else rtmidi.MidiIn
    failure = None
    with _captured_stderr() as noise:
        try:
            midi = factory()
        except Exception as exc:  # noqa: BLE001 - rtmidi.SystemError and friends: no usable MIDI system
            failure = exc
    if failure is not None:
        raise KellyError(f"no MIDI system available here ({_gist(failure, noise)}): {hint}") from None
    try:
        if midi.get_current_api() == getattr(rtmidi, "API_RTMIDI_DUMMY", object()):
            raise KellyError(f"no MIDI system available here (python-rtmidi was built without one): {hint}")
        with _captured_stderr():
            names = list(midi.get_ports())
        if port is None:
            unsupported = tuple(c for c in (getattr(rtmidi, "UnsupportedOperationError", None), NotImplementedError)
                                if c is not None)
            try:
                midi.open_virtual_port(virtual_name)
            except unsupported:
                raise KellyError(f"{_rtmidi_api_name(rtmidi, midi)} cannot make virtual MIDI ports (Windows cannot); "
                                 f"name a port instead ({_listing(direction, names)}), or install a loopback "
                                 "driver such as loopMIDI") from None
            return midi, f"virtual MIDI {direction} {virtual_name!r}"
        index = _choose_port(direction, port, names)
        try:
            midi.open_port(index, virtual_name)
        except Exception as exc:  # noqa: BLE001 - rtmidi errors become one line
            raise KellyError(f"cannot open MIDI {direction} {names[index]!r}: {_gist(exc, [])}") from None
        return midi, f"MIDI {direction} {names[index]!r}"
    except BaseException:
        _release(midi)
        raise


def _listing(direction: str, names: list[str]) -> str:
    if not names:
        return f"this system has no MIDI {direction}s"
    return f"available MIDI {direction}s: " + ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))


def _choose_port(direction: str, port: str | int, names: list[str]) -> int:
    """The index of ``port`` (an index, or part of a name, case-insensitive) among ``names``."""
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        raise InputError(f"a MIDI {direction} is a name or a number, not {port!r}")
    if isinstance(port, int):
        if 0 <= port < len(names):
            return port
        raise KellyError(f"there is no MIDI {direction} number {port}; {_listing(direction, names)}")
    needle = port.strip().casefold()
    for i, name in enumerate(names):
        if needle and needle in name.casefold():
            return i
    raise KellyError(f"no MIDI {direction} is called {port!r}; {_listing(direction, names)}")


def _release(midi) -> None:
    """Close an rtmidi port and free its client (a virtual port disappears only when deleted)."""
    with contextlib.suppress(Exception):
        midi.close_port()
    with contextlib.suppress(Exception):
        midi.delete()


def list_ports(direction: str) -> list[str]:
    """Names of this system's MIDI ``"output"`` or ``"input"`` ports (KellyError if there is no MIDI system)."""
    rtmidi = _rtmidi()
    failure = None
    with _captured_stderr() as noise:
        try:
            midi = rtmidi.MidiOut() if direction == "output" else rtmidi.MidiIn()
            names = list(midi.get_ports())
            _release(midi)
        except Exception as exc:  # noqa: BLE001
            failure = exc
    if failure is not None:
        raise KellyError(f"no MIDI system available here ({_gist(failure, noise)})") from None
    return names


def list_midi_outputs() -> list[str]:
    """Names of the MIDI output ports (for ``--midi-out NAME``)."""
    return list_ports("output")


class RtMidiSink:
    """Send messages at once to a MIDI port through python-rtmidi.

    Parameters
    ----------
    port : str, int or None
        None: open a virtual output port called ``virtual_name`` that other programs connect to
        (ALSA, JACK and CoreMIDI; Windows cannot make virtual ports: name a loopMIDI port there).
        A string: the first output whose name contains it, ignoring case. An int: that index.
    virtual_name : str
        Name of the virtual port, and of Kelly's side of a named connection.

    Raises
    ------
    KellyError
        python-rtmidi missing ("pip install 'kelly[live]'"); no MIDI system (no ALSA sequencer,
        as in containers: the message says to record to a file instead); the port not found (the
        message lists the ports there are).
    """

    def __init__(self, port: str | int | None = None, *, virtual_name: str = VIRTUAL_NAME) -> None:
        self._midi, self.name = open_rtmidi("output", port, virtual_name, _HINT_FILE)
        self.sent = 0
        self.closed = False

    def send(self, msg: mido.Message, time_s: float) -> None:
        """Send ``msg`` now (the engine calls at the time it means; ``time_s`` is not waited for)."""
        if self.closed:
            raise OutputError(f"{self.name} is closed")
        try:
            self._midi.send_message(msg.bytes())
        except Exception as exc:  # noqa: BLE001 - a vanished device: one clear line
            raise OutputError(f"cannot send to {self.name}: {_gist(exc, [])}") from None
        self.sent += 1

    def set_tempo(self, bpm: float, time_s: float) -> None:
        """Nothing to do: a port carries notes, not a tempo (the receiver follows the timing of the notes)."""

    def close(self, time_s: float = 0.0) -> None:
        """Close the port (a virtual one disappears); later calls do nothing."""
        if not self.closed:
            self.closed = True
            _release(self._midi)

    def __repr__(self) -> str:
        return f"RtMidiSink({self.name!r}, sent={self.sent})"


def open_midi_out(spec: str, *, overwrite: bool = True) -> MidiSink:
    """The sink a ``--midi-out`` value names.

    ``*.mid`` / ``*.midi`` -> :class:`MidiFileSink` (``overwrite`` as ``--force``); ``virtual`` ->
    a virtual port "Kelly"; digits -> the output port with that index; anything else -> the first
    output port whose name contains it.
    """
    text = str(spec).strip()
    if not text:
        raise InputError("--midi-out needs a file name (*.mid), 'virtual', or a MIDI port name or number")
    if text.lower().endswith((".mid", ".midi")):
        return MidiFileSink(text, overwrite=overwrite)
    if text.lower() == "virtual":
        return RtMidiSink(None)
    return RtMidiSink(int(text) if text.isdigit() else text)


# ============================================================================ tracker
def _number(value, what: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (bools and fractions refused) or an InputError."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"{what} must be a whole number from {low} to {high}, not {value!r}") from None
    if not low <= number <= high:
        raise InputError(f"{what} must be from {low} to {high}, not {number}")
    return number


class NoteTracker:
    """The engine's one door to MIDI out: checks values, pairs every note-on with one note-off.

    Guarantees
    ----------
    * every note-on sent gets exactly one note-off: a note-on for a pitch already sounding on
      its channel first sends that note's note-off (a retrigger, counted in :attr:`retriggers`);
    * a note-off for a note that is not sounding is not sent (counted in :attr:`ignored_note_offs`);
      a note-on with velocity 0 is a note-off;
    * :meth:`all_notes_off` sends a note-off for each sounding note, then on every channel used
      so far CC 64 = 0 (sustain pedal up, or held notes would ring on) and CC 123 (All Notes Off,
      for notes a synth holds that the tracker did not start). CC 120 (All Sound Off) is sent only
      with ``sound_off=True``: it cuts release and reverb tails dead, right for a panic after an
      error, wrong for the end of a piece;
    * :meth:`close` does :meth:`all_notes_off`, then closes the sink (even if silencing failed);
    * channels 0-15, pitches, velocities, programs and controller numbers/values 0-127, pitch
      wheel -8192..8191 and finite times are checked (:class:`~kelly.errors.InputError`); a time
      earlier than the last one is taken as the last one, so the sink sees time never go back.

    All methods hold one lock, so the scheduler thread and a control thread (stop, panic) may
    both call in. This is not an audio callback: a lock is fine here.
    """

    def __init__(self, sink: MidiSink) -> None:
        self.sink = sink
        self._lock = threading.RLock()
        self._sounding: dict[tuple[int, int], None] = {}  # insertion-ordered set of (channel, pitch)
        self._channels: set[int] = set()
        self._time = -math.inf
        self.closed = False
        self.note_ons = 0
        self.note_offs = 0
        self.retriggers = 0
        self.ignored_note_offs = 0

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def sounding(self) -> int:
        """How many notes sound now."""
        with self._lock:
            return len(self._sounding)

    def sounding_notes(self) -> list[tuple[int, int]]:
        """The sounding notes as (channel, pitch), oldest first."""
        with self._lock:
            return list(self._sounding)

    def channels_used(self) -> list[int]:
        with self._lock:
            return sorted(self._channels)

    # ---------------------------------------------------------------- helpers
    def _when(self, time_s: float) -> float:
        if self.closed:
            raise OutputError(f"{self.sink.name} is closed")
        t = _finite(time_s, "time_s")
        if t > self._time:
            self._time = t
        return self._time

    def _send(self, msg: mido.Message, t: float) -> None:
        self.sink.send(msg, t)

    def _off(self, channel: int, pitch: int, t: float) -> None:
        self._send(mido.Message("note_off", channel=channel, note=pitch, velocity=0), t)
        del self._sounding[(channel, pitch)]
        self.note_offs += 1

    # ---------------------------------------------------------------- notes
    def note_on(self, channel: int, pitch: int, velocity: int, time_s: float) -> None:
        """Start ``pitch`` on ``channel`` (0-15) with ``velocity`` 1-127; velocity 0 is a note-off."""
        with self._lock:
            ch = _number(channel, "channel", 0, 15)
            p = _number(pitch, "pitch", 0, 127)
            v = _number(velocity, "velocity", 0, 127)
            t = self._when(time_s)
            if v == 0:
                self._note_off(ch, p, t)
                return
            self._channels.add(ch)
            if (ch, p) in self._sounding:
                self._off(ch, p, t)
                self.retriggers += 1
            self._send(mido.Message("note_on", channel=ch, note=p, velocity=v), t)
            self._sounding[(ch, p)] = None
            self.note_ons += 1

    def note_off(self, channel: int, pitch: int, time_s: float) -> None:
        """End ``pitch`` on ``channel``; ignored (and counted) if it is not sounding."""
        with self._lock:
            ch = _number(channel, "channel", 0, 15)
            p = _number(pitch, "pitch", 0, 127)
            self._note_off(ch, p, self._when(time_s))

    def _note_off(self, ch: int, p: int, t: float) -> None:
        if (ch, p) in self._sounding:
            self._off(ch, p, t)
        else:
            self.ignored_note_offs += 1

    # ---------------------------------------------------------------- other messages
    def program_change(self, channel: int, program: int, time_s: float) -> None:
        """Choose the instrument (General MIDI program 0-127) of ``channel``."""
        with self._lock:
            ch = _number(channel, "channel", 0, 15)
            prog = _number(program, "program", 0, 127)
            t = self._when(time_s)
            self._channels.add(ch)
            self._send(mido.Message("program_change", channel=ch, program=prog), t)

    def control_change(self, channel: int, control: int, value: int, time_s: float) -> None:
        """Set controller ``control`` (0-127; 64 sustain, 1 modulation, 11 expression) to ``value`` 0-127."""
        with self._lock:
            ch = _number(channel, "channel", 0, 15)
            cc = _number(control, "controller", 0, 127)
            val = _number(value, "controller value", 0, 127)
            t = self._when(time_s)
            self._channels.add(ch)
            self._send(mido.Message("control_change", channel=ch, control=cc, value=val), t)

    def pitchwheel(self, channel: int, value: int, time_s: float) -> None:
        """Bend ``channel`` by ``value`` (-8192..8191, 0 the centre)."""
        with self._lock:
            ch = _number(channel, "channel", 0, 15)
            val = _number(value, "pitch wheel", -8192, 8191)
            t = self._when(time_s)
            self._channels.add(ch)
            self._send(mido.Message("pitchwheel", channel=ch, pitch=val), t)

    def set_tempo(self, bpm: float, time_s: float) -> None:
        """Tell the sink the tempo from ``time_s`` on (a file records it; a port ignores it)."""
        with self._lock:
            _tempo_us(bpm)  # the range check
            self.sink.set_tempo(float(bpm), self._when(time_s))

    # ---------------------------------------------------------------- silence
    def all_notes_off(self, time_s: float, *, sound_off: bool = False) -> None:
        """Silence everything: a note-off per sounding note, then per channel used CC 64=0 and CC 123.

        ``sound_off=True`` adds CC 120 (All Sound Off), which also cuts release and reverb tails.
        """
        with self._lock:
            t = self._when(time_s)
            for ch, p in list(self._sounding):
                self._off(ch, p, t)
            for ch in sorted(self._channels):
                self._send(mido.Message("control_change", channel=ch, control=64, value=0), t)
                self._send(mido.Message("control_change", channel=ch, control=123, value=0), t)
                if sound_off:
                    self._send(mido.Message("control_change", channel=ch, control=120, value=0), t)

    def close(self, time_s: float) -> None:
        """Silence everything, then close the sink (a file is written then); later calls do nothing."""
        with self._lock:
            if self.closed:
                return
            t = self._when(time_s)
            try:
                self.all_notes_off(t)
            finally:
                self.closed = True
                self.sink.close(t)

    def __enter__(self) -> "NoteTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close(self._time if math.isfinite(self._time) else 0.0)

    def __repr__(self) -> str:
        return (f"NoteTracker({self.sink.name!r}, sounding={len(self._sounding)}, note_ons={self.note_ons}, "
                f"note_offs={self.note_offs})")
