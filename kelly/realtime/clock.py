"""Following an external MIDI clock: tempo, transport and song position from a DAW or drum machine.

A clock master sends 24 Timing Clock messages (0xF8) per quarter note, Start (0xFA),
Continue (0xFB) and Stop (0xFC), and, while stopped, Song Position Pointer (0xF2: where the
next Continue begins, in MIDI beats = sixteenth notes). :class:`ClockFollower` turns that
stream into what the engine's scheduler asks: is the master playing, how fast, and where
are we now, in quarter notes. :class:`RtMidiClockIn` feeds it from a MIDI input port.

Position convention (the MIDI specification's): after Start the *first* clock marks
position 0, the next 1/24 of a quarter note later, and so on; after Song Position
Pointer ``n`` and Continue, the first clock marks ``6 n`` clocks. Until that first clock
the position stays where playback will begin.

Tempo is estimated from the intervals between clocks (see :class:`ClockFollower`), and
the follower's position is interpolated between clocks from the time it is asked about.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable

import mido

from kelly.errors import KellyError

CLOCKS_PER_QUARTER = 24
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
#: Intervals the tempo is estimated over: 1.5 beats, so a new tempo is followed within 2 beats.
WINDOW = 36
#: Intervals needed before a tempo is given (half a beat).
MIN_INTERVALS = 12
#: An interval further than this fraction from the window's median is an outlier (a lost or
#: doubled clock, a scheduling hiccup) and left out of the estimate. Wide enough that ±2 ms of
#: jitter at 300 BPM (8.3 ms between clocks) stays in.
OUTLIER = 0.35
#: A gap longer than this (seconds; 2.5 BPM) means the clock paused: intervals start afresh.
MAX_GAP = 1.0

_KINDS = {"clock": CLOCK, "start": START, "continue": CONTINUE, "stop": STOP, "songpos": SONG_POSITION}


class ClockFollower:
    """Tempo, transport and song position from a stream of MIDI real-time messages.

    Feed every message with its arrival time (:meth:`feed`); read :attr:`playing`,
    :attr:`tempo_bpm`, :attr:`ticks`, :attr:`quarter_notes`, :meth:`position_at` and
    :attr:`version` from any thread (one lock guards the state; callbacks run outside it).

    Tempo: from the last :data:`WINDOW` clock intervals. Those further than :data:`OUTLIER`
    from their median are thrown out (a lost clock makes an interval twice as long; a stray
    late clock one long and one short). When none is, the seconds per clock are the
    least-squares slope through the clocks' arrival times, so arrival jitter does not add up
    (±1 ms of jitter at 120 BPM moves the estimate by about 0.2 BPM at worst); otherwise the
    mean of the intervals kept. A new tempo fills the window after 1.5 beats.

    Lost clocks: an interval close to k whole intervals (k = 2..4) while the tempo holds is
    taken as k - 1 clocks lost, and the position moves on by them once the next interval
    confirms that the tempo did not simply drop.

    Parameters
    ----------
    on_start, on_stop : callable(follower) or None
        Called after Start / Continue, and after Stop (from the feeding thread).
    window : int
        Intervals in the tempo estimate (24-48 are sensible).
    """

    def __init__(self, *, on_start: Callable[["ClockFollower"], None] | None = None,
                 on_stop: Callable[["ClockFollower"], None] | None = None, window: int = WINDOW) -> None:
        if not 4 <= int(window) <= 1000:
            raise KellyError(f"the clock window must be 4 to 1000 intervals, not {window}")
        self.on_start = on_start
        self.on_stop = on_stop
        self._lock = threading.Lock()
        self._intervals: deque[float] = deque(maxlen=int(window))
        self._times: deque[float] = deque(maxlen=int(window) + 1)  # arrival times of the same clocks
        self._last_clock: float | None = None  # arrival time of the last clock (playing or not)
        self._playing = False
        self._pos = 0  # song position, in clocks, of the last clock (or where the next one lands)
        self._waiting = True  # no clock yet since Start / Song Position: the next one lands on _pos
        self._anchor: float | None = None  # arrival time of the clock that marked _pos
        self._pending_gap: float | None = None  # a gap that looks like lost clocks, judged at the next one
        self._version = 0
        self.clocks = 0  # timing clocks received
        self.lost = 0  # clocks judged lost and made up
        self.ignored = 0  # other messages and garbage

    # ------------------------------------------------------------------ reading
    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def waiting(self) -> bool:
        """True between Start/Continue/Song Position and the next clock, which is where playing begins."""
        return self._waiting

    @property
    def version(self) -> int:
        """Changes at every Start, Continue, Stop and Song Position Pointer (a jump the scheduler must see)."""
        return self._version

    @property
    def ticks(self) -> int:
        """Song position in clocks (24 per quarter note) of the last clock; before the first, where play begins."""
        return self._pos

    @property
    def quarter_notes(self) -> float:
        """Song position in quarter notes at the last clock."""
        return self._pos / CLOCKS_PER_QUARTER

    @property
    def tempo_bpm(self) -> float | None:
        """Estimated tempo, or None until :data:`MIN_INTERVALS` steady intervals have arrived."""
        with self._lock:
            interval = self._interval()
        return None if interval is None else 60.0 / (interval * CLOCKS_PER_QUARTER)

    def position_at(self, time_s: float) -> float:
        """Song position in quarter notes at ``time_s`` (the clock the messages were fed with).

        While playing, interpolated from the last clock at the estimated tempo, but never past the
        next clock's position (so position never goes back when that clock comes late). Stopped, or
        before the first clock, the position stands still.
        """
        with self._lock:
            pos = float(self._pos)
            if self._playing and not self._waiting and self._anchor is not None:
                interval = self._interval()
                if interval is not None and time_s > self._anchor:
                    pos += min(1.0, (time_s - self._anchor) / interval)
        return pos / CLOCKS_PER_QUARTER

    def _interval(self) -> float | None:
        """Seconds per clock from the window (see the class docstring), or None too early (lock held)."""
        if len(self._intervals) < MIN_INTERVALS:
            return None
        ordered = sorted(self._intervals)
        median = ordered[len(ordered) // 2]
        inliers = [x for x in ordered if abs(x - median) <= OUTLIER * median]
        if len(inliers) == len(ordered) and len(self._times) == len(ordered) + 1:
            return _slope(self._times)
        return sum(inliers) / len(inliers)

    # ------------------------------------------------------------------ feeding
    def feed(self, msg, time_s: float) -> None:
        """Take one message that arrived at ``time_s`` (seconds, any steady clock).

        ``msg`` is a :class:`mido.Message` or its raw bytes (a list, tuple, bytes or bytearray,
        as python-rtmidi delivers them). Anything that is not clock, Start, Continue, Stop or a
        well-formed Song Position Pointer is counted in :attr:`ignored` and otherwise ignored.
        """
        parsed = _parse(msg)
        try:
            t = float(time_s)
        except (TypeError, ValueError):
            t = math.nan
        if parsed is None or not math.isfinite(t):
            self.ignored += 1
            return
        status, beats = parsed
        callback = None
        with self._lock:
            if status == CLOCK:
                self._clock(t)
            elif status == START:
                self._playing, self._pos, self._waiting, self._anchor = True, 0, True, None
                self._pending_gap = None
                self._version += 1
                callback = self.on_start
            elif status == CONTINUE:
                self._playing = True
                self._version += 1
                callback = self.on_start
            elif status == STOP:
                self._playing = False
                self._pending_gap = None
                self._version += 1
                callback = self.on_stop
            else:  # Song Position Pointer: the spec sends it while stopped; a jump while playing is taken too
                self._pos, self._waiting, self._anchor = beats * CLOCKS_PER_QUARTER // 4, True, None
                self._pending_gap = None
                self._version += 1
        if callback is not None:
            callback(self)

    def _clock(self, t: float) -> None:
        """One timing clock at ``t`` (lock held)."""
        self.clocks += 1
        last, self._last_clock = self._last_clock, t
        lost = 0
        if last is not None:
            gap = t - last
            if not 0.0 < gap <= MAX_GAP:  # a pause, or time went back: start the estimate afresh
                self._intervals.clear()
                self._times.clear()
                self._pending_gap = None
            else:
                lost = self._lost_before(gap)
                self._intervals.append(gap)
        self._times.append(t)
        if not self._playing:
            return
        if self._waiting:  # the first clock after Start/Continue/SPP lands on the position; a gap before it is no loss
            self._waiting = False
            self._pending_gap = None
        else:
            self._pos += 1 + lost
        self._anchor = t

    def _lost_before(self, gap: float) -> int:
        """Clocks to make up now (lock held).

        A gap of about k intervals (k = 2..4) is remembered; when the next gap is a normal one,
        and the remembered gap is still about k intervals by the estimate of that moment, k - 1
        clocks were lost. A tempo that really dropped keeps giving long gaps until the estimate
        follows it, and then the remembered gap no longer looks long: nothing is made up.
        """
        interval = self._interval()
        confirmed = 0
        if interval is not None:
            if abs(gap / interval - 1.0) <= OUTLIER:
                if self._pending_gap is not None:
                    confirmed = self._whole_intervals(self._pending_gap / interval) - 1
                    confirmed = max(0, confirmed)
                    self.lost += confirmed
                self._pending_gap = None
            else:
                self._pending_gap = gap if self._whole_intervals(gap / interval) >= 2 else None
        return confirmed

    @staticmethod
    def _whole_intervals(ratio: float) -> int:
        """``ratio`` rounded if it is near a whole number of intervals 2..4, else 0."""
        k = round(ratio)
        return k if 2 <= k <= 4 and abs(ratio - k) <= OUTLIER else 0


def _slope(times) -> float:
    """Least-squares seconds per clock through evenly spaced arrival ``times``.

    Every time's jitter counts once, where the mean interval (last - first) / n rests on the
    two end points alone: about 2.5 times less error over a 36-clock window.
    """
    n = len(times)
    first = times[0]
    mid = (n - 1) / 2
    num = sum((i - mid) * (t - first) for i, t in enumerate(times))
    return num / (n * (n * n - 1) / 12)


def _parse(msg) -> tuple[int, int] | None:
    """(status, song position in MIDI beats) of a clock/transport message, or None for anything else."""
    if isinstance(msg, mido.Message):
        status = _KINDS.get(msg.type)
        if status is None:
            return None
        return status, (msg.pos if status == SONG_POSITION else 0)
    if not isinstance(msg, (list, tuple, bytes, bytearray, memoryview)) or len(msg) == 0:
        return None
    try:
        data = [int(b) for b in msg[:3]]
    except (TypeError, ValueError):
        return None
    status = data[0]
    if status in (CLOCK, START, CONTINUE, STOP):
        return status, 0
    if status == SONG_POSITION and len(data) == 3 and all(0 <= b < 0x80 for b in data[1:]):
        return status, data[1] | (data[2] << 7)  # 14 bits, least significant 7 first
    return None


def list_midi_inputs() -> list[str]:
    """Names of the MIDI input ports (for ``--clock-in NAME``)."""
    from kelly.realtime.midi_out import list_ports

    return list_ports("input")


class RtMidiClockIn:
    """Feed a :class:`ClockFollower` from a MIDI input port through python-rtmidi.

    Timing messages are switched on (rtmidi filters them out by default); every message goes to
    :meth:`ClockFollower.feed` from rtmidi's thread, stamped with ``clock()`` at arrival.

    Parameters
    ----------
    port : str, int or None
        A string: the first input whose name contains it (ignoring case); an int: that index;
        None: a virtual input called ``virtual_name`` that a DAW sends its clock to.
    follower : ClockFollower
    clock : callable -> float
        The time stamp; pass the engine's own clock (seconds since its start) so that
        :meth:`ClockFollower.position_at` can be asked in engine time. Default ``time.monotonic``.

    Raises
    ------
    KellyError
        python-rtmidi missing; no MIDI system here; the port not found (the ports are listed).
    """

    def __init__(self, port: str | int | None, follower: ClockFollower, *,
                 clock: Callable[[], float] = time.monotonic, virtual_name: str = "Kelly clock in") -> None:
        from kelly.realtime.midi_out import open_rtmidi

        self.follower = follower
        self._clock = clock
        self.errors = 0
        self.last_error: BaseException | None = None
        self._midi, self.name = open_rtmidi("input", port, virtual_name,
                                            "Kelly keeps its own tempo without an external clock")
        self.closed = False
        self._midi.ignore_types(sysex=True, timing=False, active_sense=True)
        self._midi.set_callback(self._on_message)

    def _on_message(self, event, data=None) -> None:
        # rtmidi calls this on its own thread; an exception here would only be printed there,
        # so it is kept for the engine to look at instead.
        try:
            message, _delta = event
            self.follower.feed(message, self._clock())
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.last_error = exc

    def close(self) -> None:
        """Stop listening and release the port; later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        from kelly.realtime.midi_out import _release

        try:
            self._midi.cancel_callback()
        except Exception:  # noqa: BLE001 - closing regardless
            pass
        _release(self._midi)

    def __enter__(self) -> "RtMidiClockIn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RtMidiClockIn({self.name!r}, clocks={self.follower.clocks})"
