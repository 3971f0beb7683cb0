"""The music of the live engine: phrases composed for the current emotion, played bar by bar.

Why phrases and bars
--------------------
The rule composer writes a whole piece at once (motifs stated and brought back, phrases
that cadence), which is what makes its music worth keeping; composing one bar at a time
would lose all of that. So the engine composes a *phrase* (:data:`PHRASE_BARS` bars,
10–30 ms with the rule engines) for the emotion of the moment and plays it bar by bar.
At every bar boundary it looks at the emotion again: while the emotion stays near the
one the phrase was written for, the phrase goes on; when it has moved by more than
:data:`CHANGE_THRESHOLD` (Euclidean distance in V/A/D), or the phrase has run out, a new
phrase is composed from that bar on. Parameters (tempo, metre, key, instruments, the
networks' hints) therefore change only at bar boundaries, and the response to a change
is at most one bar plus the composition time.

Time
----
Positions are in quarter notes ("beats"). A :class:`Transport` turns beats into seconds
on the engine clock: :class:`InternalTransport` runs at the tempo of the playing phrase
(changed only at bar lines) on the engine's own clock or the audio's sample clock;
:class:`ExternalTransport` follows a MIDI clock (:class:`kelly.realtime.clock.ClockFollower`)
so a DAW sets tempo, start, stop and song position.

Every event goes out through a :class:`kelly.realtime.midi_out.NoteTracker`, which pairs
every note-on with its note-off; :meth:`BarScheduler.stop` sends all-notes-off.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

from kelly.emotion.state import EmotionState
from kelly.errors import InputError
from kelly.song import Song

#: Bars composed at once: long enough for a motif, its answer and a cadence.
PHRASE_BARS = 8
#: Phrases a LiveComposer keeps in :attr:`LiveComposer.phrases` (the most recent; older ones are let go).
PHRASES_KEPT = 32
#: Distance in (V, A, D) from the phrase's emotion beyond which the next bar starts a new phrase:
#: about the distance between neighbouring thesaurus emotions of one family, so that the jitter of
#: an audio reading between, say, aversion and repugnance does not restart the music every bar.
CHANGE_THRESHOLD = 0.2
#: Smallest change of an external clock's tempo (BPM) written to the tracker at a bar line: the estimate
#: jitters by a few tenths of a BPM, which would otherwise add a tempo change to every bar of a file.
TEMPO_STEP = 0.5
#: Event order within one instant: note-offs first, then programs and controllers, then note-ons.
_OFF, _PROGRAM, _CONTROL, _PITCH, _ON = range(5)


def emotion_distance(a: EmotionState, b: EmotionState) -> float:
    """Euclidean distance of two emotions in (valence, arousal, dominance)."""
    return math.sqrt((a.valence - b.valence) ** 2 + (a.arousal - b.arousal) ** 2 + (a.dominance - b.dominance) ** 2)


@dataclass(frozen=True)
class Phrase:
    """A composed phrase as timed events: what the scheduler plays from one bar line on.

    ``bars[b]`` holds bar ``b``'s events as ``(beat, order, kind, channel, a, b, note)`` with
    ``beat`` in quarter notes from the phrase's start; a note-on and its note-off are both
    listed in the bar where the note starts (the off may lie beyond the bar) and share
    ``note``, the note's number in the phrase (-1 for controllers).
    """

    emotion: EmotionState
    start_bar: int
    seed: int
    tempo_bpm: float
    time_signature: tuple[int, int]
    beats_per_bar: float
    programs: tuple[tuple[int, int], ...]
    bars: tuple[tuple[tuple[float, int, str, int, int, int], ...], ...]
    reason: str
    note_count: int

    @property
    def n_bars(self) -> int:
        return len(self.bars)

    @classmethod
    def from_song(cls, song: Song, emotion: EmotionState, *, start_bar: int, seed: int, n_bars: int,
                  reason: str) -> "Phrase":
        """Cut ``song`` into ``n_bars`` bars of timed events (notes past the last bar are dropped)."""
        ppq = song.ppq
        bar_ticks = song.bar_ticks
        end_tick = n_bars * bar_ticks
        bars: list[list[tuple[float, int, str, int, int, int]]] = [[] for _ in range(n_bars)]
        programs: dict[int, int] = {}
        count = 0
        for track in song.tracks:
            ch = track.channel
            if not track.is_drum:
                programs.setdefault(ch, track.program)
            for note in track.notes:
                if not 0 <= note.start < end_tick or note.duration <= 0:
                    continue
                bar = note.start // bar_ticks
                off = min(note.end, end_tick)
                bars[bar].append((note.start / ppq, _ON, "on", ch, note.pitch, note.velocity, count))
                bars[bar].append((off / ppq, _OFF, "off", ch, note.pitch, 0, count))
                count += 1
            for tick, kind, number, value in track.controls:
                if 0 <= tick < end_tick:
                    if kind == "cc":
                        bars[tick // bar_ticks].append((tick / ppq, _CONTROL, "cc", ch, number, value, -1))
                    elif kind == "pitch":
                        bars[tick // bar_ticks].append((tick / ppq, _PITCH, "pitch", ch, value, 0, -1))
        num, den = song.time_signature
        return cls(emotion=emotion, start_bar=start_bar, seed=seed, tempo_bpm=float(song.tempos[0][1]),
                   time_signature=(num, den), beats_per_bar=bar_ticks / ppq,
                   programs=tuple(sorted(programs.items())), bars=tuple(tuple(sorted(b)) for b in bars),
                   reason=reason, note_count=count)


#: ``compose(emotion, bars, seed) -> Song``: the engine's composer behind the Composer seam.
ComposeFn = Callable[[EmotionState, int, int], Song]


class LiveComposer:
    """Decides, bar by bar, whether the playing phrase goes on or a new one is composed.

    Parameters
    ----------
    compose : callable
        ``compose(emotion, bars, seed) -> Song``.
    seed : int
        The first phrase's seed; phrase ``k`` uses ``seed + k``, so a run is reproducible.
    phrase_bars : int in [1, 64]
    threshold : float ≥ 0
        Emotion distance that starts a new phrase at the next bar line.
    """

    def __init__(self, compose: ComposeFn, *, seed: int = 0, phrase_bars: int = PHRASE_BARS,
                 threshold: float = CHANGE_THRESHOLD) -> None:
        if not isinstance(phrase_bars, int) or not 1 <= phrase_bars <= 64:
            raise InputError(f"phrase_bars must be a whole number from 1 to 64, got {phrase_bars!r}")
        if not isinstance(threshold, (int, float)) or not threshold >= 0:
            raise InputError(f"threshold must be a number >= 0, got {threshold!r}")
        self._compose = compose
        self.seed = int(seed)
        self.phrase_bars = phrase_bars
        self.threshold = float(threshold)
        self.phrase: Phrase | None = None
        # the last PHRASES_KEPT phrases started, for the record (bar, emotion, reason): a running engine composes
        # one each time the emotion moves or is set (every bar under steady SetEmotion traffic), and keeping all
        # of them grew the engine by ~1 MiB a minute under make soak's socket load
        self.phrases: list[Phrase] = []
        self.started = 0  # phrases started in all (each one's seed offset)

    def bar(self, bar: int, emotion: EmotionState, force: str | None = None) -> tuple[Phrase, int]:
        """The phrase playing bar ``bar`` for ``emotion``, and the bar's index within it.

        ``force``: a reason to start a new phrase whatever the distance (a deliberate change).
        """
        phrase = self.phrase
        reason = force
        if reason is not None:
            pass
        elif phrase is None:
            reason = "start"
        elif bar - phrase.start_bar >= phrase.n_bars:
            reason = "phrase ended"
        elif bar < phrase.start_bar:
            reason = "position moved"
        elif emotion_distance(emotion, phrase.emotion) > self.threshold:
            reason = f"emotion moved to {emotion.label}"
        if reason is not None:
            k = self.started
            song = self._compose(emotion, self.phrase_bars, self.seed + k)
            phrase = Phrase.from_song(song, emotion, start_bar=bar, seed=self.seed + k, n_bars=self.phrase_bars,
                                      reason=reason)
            self.phrase = phrase
            self.started += 1
            self.phrases.append(phrase)
            del self.phrases[:-PHRASES_KEPT]
        return phrase, bar - phrase.start_bar

    def reset(self) -> None:
        """Forget the playing phrase (the next bar composes a new one)."""
        self.phrase = None


class Transport(Protocol):
    """Beats (quarter notes) ↔ engine seconds."""

    def playing(self) -> bool: ...

    def beat_at(self, time_s: float) -> float: ...

    def time_at(self, beat: float) -> float: ...

    def set_tempo(self, bpm: float, beat: float) -> bool: ...

    def version(self) -> int: ...


class InternalTransport:
    """Kelly's own clock: a tempo that changes only at bar lines, from beat 0 at ``start_s``."""

    def __init__(self, bpm: float = 120.0, start_s: float = 0.0) -> None:
        self._t0, self._b0, self.bpm = float(start_s), 0.0, float(bpm)

    def playing(self) -> bool:
        return True

    def version(self) -> int:
        return 0

    def beat_at(self, time_s: float) -> float:
        return self._b0 + (time_s - self._t0) * self.bpm / 60.0

    def time_at(self, beat: float) -> float:
        return self._t0 + (beat - self._b0) * 60.0 / self.bpm

    def set_tempo(self, bpm: float, beat: float) -> bool:
        """From ``beat`` on, run at ``bpm``; True when the tempo changed."""
        if bpm == self.bpm:
            return False
        self._t0, self._b0, self.bpm = self.time_at(beat), float(beat), float(bpm)
        return True


class ExternalTransport:
    """A DAW's MIDI clock (24 ppqn, start/stop/song position) through a ClockFollower."""

    def __init__(self, follower, now: Callable[[], float]) -> None:
        self.follower = follower
        self._now = now

    def playing(self) -> bool:
        # After Start / Continue / Song Position the first clock marks the position (the MIDI
        # specification): play from that clock on, not from the Start message a clock earlier.
        f = self.follower
        return bool(f.playing) and not f.waiting

    def version(self) -> int:
        return int(self.follower.version)

    def beat_at(self, time_s: float) -> float:
        return float(self.follower.position_at(time_s))

    def time_at(self, beat: float) -> float:
        # The DAW owns time: an event is due when the clock reaches it, which is now.
        return self._now()

    def set_tempo(self, bpm: float, beat: float) -> bool:
        return False

    @property
    def bpm(self) -> float:
        return float(self.follower.tempo_bpm or 120.0)


@dataclass
class SchedulerStats:
    bars: int = 0
    events: int = 0
    phrase_starts: list[tuple[int, float, str, str]] = field(default_factory=list)  # (bar, time_s, emotion, why)


class BarScheduler:
    """Plays phrases bar by bar through a NoteTracker, on a transport's clock.

    Call :meth:`advance` with the engine clock (seconds) as often as convenient (every
    audio block); events due up to then go out stamped with their exact time.
    ``emotion`` is called once per bar line: ``() -> (EmotionState, force)`` with ``force`` a
    reason to start a new phrase (or None: only when the emotion moved enough).
    """

    def __init__(self, tracker, composer: LiveComposer,
                 emotion: Callable[[], tuple[EmotionState, str | None]], transport: Transport) -> None:
        self.tracker = tracker
        self.composer = composer
        self._emotion = emotion
        self.transport = transport
        self._heap: list[tuple[float, int, int, str, int, int, int]] = []
        self._seq = 0
        self.bar = 0                 # the bar now playing (or about to)
        self.bar_beat = 0.0          # where the next bar to start begins
        self._next_bar = 0
        self._programs: dict[int, int] = {}
        self._owner: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> the note holding it
        self._version = transport.version()
        self._was_playing = False
        self.time_signature = (4, 4)
        self.stats = SchedulerStats()
        self._sent_bpm: float | None = None  # the tempo last given to the tracker

    @property
    def tempo_bpm(self) -> float:
        return float(getattr(self.transport, "bpm", 120.0))

    def advance(self, time_s: float) -> None:
        """Send every event due at or before ``time_s`` (engine seconds)."""
        tr = self.transport
        if tr.version() != self._version:     # the DAW jumped (start, song position): stop and re-place
            self._version = tr.version()
            self._relocate(time_s)
        playing = tr.playing()
        if not playing:
            if self._was_playing:
                self.tracker.all_notes_off(time_s)
                self._owner.clear()
                self._heap.clear()
            self._was_playing = False
            return
        if not self._was_playing:
            self._was_playing = True
            self._relocate(time_s)
        beat = tr.beat_at(time_s)
        while self.bar_beat <= beat + 1e-9:
            self._flush_before(self.bar_beat)
            self._start_bar(self._next_bar, self.bar_beat)
            beat = tr.beat_at(time_s)  # the new bar may have changed the tempo: where ``time_s`` falls moved
        self._flush_until(beat, time_s)

    def stop(self, time_s: float) -> None:
        """All notes off and forget what was scheduled."""
        self._heap.clear()
        self._owner.clear()
        self.tracker.all_notes_off(time_s)

    # -- internals --------------------------------------------------------------------

    def _relocate(self, time_s: float) -> None:
        """Start again from the bar line at or after the transport's position."""
        self._heap.clear()
        if self.stats.bars:  # before the first bar nothing sounds; silencing would only move the tracker's
            self.tracker.all_notes_off(time_s)  # clock past time 0 and push the first downbeat off the grid
        self._owner.clear()
        beat = max(0.0, self.transport.beat_at(time_s))
        per_bar = self.composer.phrase.beats_per_bar if self.composer.phrase else 4.0
        # at the very start (within a beat of the top) play from bar 1 rather than waiting a whole bar
        bar = 0 if self.stats.bars == 0 and beat < 1.0 else math.ceil(beat / per_bar - 1e-9)
        self._next_bar = bar
        self.bar_beat = bar * per_bar
        self.composer.reset()

    def _start_bar(self, bar: int, beat: float) -> None:
        emotion, force = self._emotion()
        phrase, local = self.composer.bar(bar, emotion, force)
        tr = self.transport
        changed = tr.set_tempo(phrase.tempo_bpm, beat)
        # a DAW's clock sets its own tempo: tell the tracker (a file's tempo map) when it has moved
        if changed or self._sent_bpm is None or abs(self.tempo_bpm - self._sent_bpm) >= TEMPO_STEP:
            self.tracker.set_tempo(self.tempo_bpm, tr.time_at(beat))
            self._sent_bpm = self.tempo_bpm
        if local == 0:
            at = tr.time_at(beat)
            self.stats.phrase_starts.append((bar, at, emotion.label, phrase.reason))
            for ch, program in phrase.programs:
                if self._programs.get(ch) != program:
                    self.tracker.program_change(ch, program, at)
                    self._programs[ch] = program
        origin = beat - local * phrase.beats_per_bar
        for rel, order, kind, ch, a, b, note in phrase.bars[local]:
            self._seq += 1
            heapq.heappush(self._heap, (origin + rel, order, self._seq, kind, ch, a, b, (phrase.seed, note)))
        self.time_signature = phrase.time_signature
        self.bar = bar
        self._next_bar = bar + 1
        self.bar_beat = beat + phrase.beats_per_bar
        self.stats.bars += 1

    def _flush_before(self, beat: float) -> None:
        heap = self._heap
        while heap and heap[0][0] < beat - 1e-9:
            self._emit(heapq.heappop(heap))
        # note-offs that fall exactly on the bar line go before the new bar's note-ons
        while heap and heap[0][0] <= beat + 1e-9 and heap[0][1] == _OFF:
            self._emit(heapq.heappop(heap))

    def _flush_until(self, beat: float, time_s: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= beat + 1e-9:
            ev = heapq.heappop(heap)
            self._emit(ev, min(time_s, self.transport.time_at(ev[0])))

    def _emit(self, ev, at: float | None = None) -> None:
        beat, _order, _seq, kind, ch, a, b, note = ev
        t = self.transport.time_at(beat) if at is None else at
        tk = self.tracker
        if kind == "on":
            tk.note_on(ch, a, b, t)
            self._owner[(ch, a)] = note
        elif kind == "off":
            # only the note that holds the key may end it: when a later note (of this phrase or
            # the next) struck the same key, the tracker ended this one then, and this note-off
            # would cut the later note short
            if self._owner.get((ch, a)) == note:
                del self._owner[(ch, a)]
                tk.note_off(ch, a, t)
        elif kind == "cc":
            tk.control_change(ch, a, b, t)
        elif kind == "pitch":
            tk.pitchwheel(ch, a, t)
        self.stats.events += 1
