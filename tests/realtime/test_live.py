"""The live scheduler (kelly.realtime.live) with a fake composer: pairing, bar lines, phrases, metres, a DAW's clock."""

from __future__ import annotations

from collections import defaultdict

import mido
import pytest

from kelly.emotion.state import EmotionState
from kelly.errors import InputError
from kelly.realtime.clock import CLOCK, CONTINUE, SONG_POSITION, START, STOP, ClockFollower
from kelly.realtime.live import (BarScheduler, ExternalTransport, InternalTransport, LiveComposer, Phrase,
                                 emotion_distance)
from kelly.realtime.midi_out import MidiFileSink, NoteTracker
from kelly.song import PPQ, Note, Song, Track
from tests.realtime._sinks import RecordingSink

LEAD, BASS, DRUMS = 0, 1, 9


def emo(v: float, a: float, d: float = 0.5, label: str = "test") -> EmotionState:
    return EmotionState(label=label, family="test", valence=v, arousal=a, dominance=d, source="live")


class FakeComposer:
    """``compose(emotion, bars, seed) -> Song`` with notes a test can find again.

    Lead (channel 0): one short note on every quarter-note beat of every bar, pitch 60 + beat index,
    so a note of pitch 60 marks a bar line. Bass (channel 1): one note per bar that starts half a beat
    before the bar line and lasts a beat (it crosses into the next bar, and into the next phrase).
    Drums (channel 9): a kick on each bar line. Tempo from the arousal (``bpm_of``), the lead's
    program from the valence (``program_of``).
    """

    def __init__(self, *, time_signature=(4, 4), bpm_of=lambda e: 120.0, program_of=lambda e: 0) -> None:
        self.time_signature = time_signature
        self.bpm_of = bpm_of
        self.program_of = program_of
        self.calls: list[tuple[EmotionState, int, int]] = []

    def __call__(self, emotion: EmotionState, bars: int, seed: int) -> Song:
        self.calls.append((emotion, bars, seed))
        song = Song(tempos=[(0, self.bpm_of(emotion))], time_signature=self.time_signature)
        bar_ticks = song.bar_ticks
        beats = bar_ticks // PPQ
        lead = [Note(b * bar_ticks + k * PPQ, 60 + k, PPQ // 2, 90) for b in range(bars) for k in range(beats)]
        bass = [Note(b * bar_ticks + bar_ticks - PPQ // 2, 36, PPQ, 80) for b in range(bars)]
        kick = [Note(b * bar_ticks, 36, PPQ // 4, 100) for b in range(bars)]
        song.tracks = [Track("lead", program=self.program_of(emotion), channel=LEAD, notes=lead),
                       Track("bass", program=33, channel=BASS, notes=bass),
                       Track("drums", program=0, channel=DRUMS, notes=kick)]
        return song


class Script:
    """The scheduler's emotion callback: per bar, what the emotion is (and a force reason)."""

    def __init__(self, plan) -> None:
        self.plan = plan        # bar -> (EmotionState, force) ; the last entry holds afterwards
        self.bar = 0

    def __call__(self):
        keys = [b for b in self.plan if b <= self.bar]
        emotion, force = self.plan[max(keys)] if keys else self.plan[min(self.plan)]
        if keys and max(keys) != self.bar:
            force = None  # a force happens once, on its own bar
        self.bar += 1
        return emotion, force


def play(scheduler: BarScheduler, until_s: float, step_s: float = 0.01) -> None:
    n = int(round(until_s / step_s))
    for i in range(1, n + 1):
        scheduler.advance(i * step_s)


def make(plan, *, composer=None, sink=None, phrase_bars=8, threshold=0.2, seed=0, transport=None):
    composer = composer or FakeComposer()
    sink = sink if sink is not None else RecordingSink()
    tracker = NoteTracker(sink)
    live = LiveComposer(composer, seed=seed, phrase_bars=phrase_bars, threshold=threshold)
    sch = BarScheduler(tracker, live, Script(plan), transport or InternalTransport(120.0))
    return sch, tracker, sink, composer


def assert_paired(messages) -> None:
    """Each (channel, pitch): on, off, on, off … and nothing left sounding."""
    state: dict[tuple[int, int], bool] = defaultdict(bool)
    for msg in messages:
        if msg.type == "note_on" and msg.velocity > 0:
            assert not state[(msg.channel, msg.note)], f"second note-on without a note-off: {msg}"
            state[(msg.channel, msg.note)] = True
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            assert state[(msg.channel, msg.note)], f"note-off for a note not sounding: {msg}"
            state[(msg.channel, msg.note)] = False
    assert not any(state.values()), "notes left sounding"


def file_events(path):
    """(absolute tick, message) of every channel message in a MIDI file, in time order."""
    mid = mido.MidiFile(path)
    out = []
    for track in mid.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if not msg.is_meta:
                out.append((now, msg))
    out.sort(key=lambda x: x[0])
    return mid, out


def bar_lines(sink: RecordingSink) -> list[float]:
    """Times of the lead's downbeat notes (pitch 60)."""
    return [t for m, t in sink.of("note_on", LEAD) if m.note == 60]


# ------------------------------------------------------------------ pairing and stop
def test_every_note_on_has_one_note_off_in_the_written_file(tmp_path):
    path = tmp_path / "live.mid"
    calm, wild = emo(0.3, 0.2), emo(-0.5, 0.9)
    plan = {0: (calm, None), 3: (wild, None), 5: (calm, "asked (test)")}
    comp = FakeComposer(bpm_of=lambda e: 60 + 120 * e.arousal, program_of=lambda e: 0 if e.valence > 0 else 30)
    sch, tracker, _, _ = make(plan, composer=comp, sink=MidiFileSink(path), phrase_bars=4)
    play(sch, 15.3, 0.0137)           # stops mid-bar, with notes sounding
    assert tracker.sounding > 0 or sch._heap
    sch.stop(15.3)
    tracker.close(15.3)
    assert tracker.sounding == 0
    mid, events = file_events(path)
    msgs = [m for _, m in events]
    ons = sum(1 for m in msgs if m.type == "note_on" and m.velocity > 0)
    offs = sum(1 for m in msgs if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
    assert ons == offs == tracker.note_ons > 20
    for ch in (LEAD, BASS, DRUMS):
        assert_paired([m for m in msgs if getattr(m, "channel", None) == ch])
    # the file ends with all-notes-off on every channel it used
    last = events[-1][0]
    for ch in (LEAD, BASS, DRUMS):
        assert any(t == last and m.type == "control_change" and m.control == 123 and m.channel == ch
                   for t, m in events)


def test_stop_leaves_nothing_sounding_and_sends_cc123_on_each_used_channel():
    sch, tracker, sink, _ = make({0: (emo(0.0, 0.5), None)}, phrase_bars=2)
    play(sch, 2.6)                    # bar 2, beat 1: lead, bass and kick notes sound or are due
    assert tracker.sounding > 0
    before = len(sink.sent)
    sch.stop(2.6)
    assert tracker.sounding == 0
    after = sink.sent[before:]
    cc123 = {m.channel for m, t in after if m.type == "control_change" and m.control == 123}
    assert cc123 == set(tracker.channels_used()) == {LEAD, BASS, DRUMS}
    assert all(t == pytest.approx(2.6) for _, t in after)
    sch.advance(2.7)                  # the scheduler forgot what was pending: offs of stopped notes are not sent
    assert tracker.ignored_note_offs == 0
    assert_paired([m for m, _ in sink.sent])


# ------------------------------------------------------------------ tempo at bar lines
@pytest.mark.parametrize("step", [0.01, 0.25, 0.6])
def test_tempo_changes_only_at_bar_lines_and_notes_follow_the_new_tempo(step):
    fast, slow = emo(0.0, 1.0), emo(0.0, 0.0)
    bpm = {fast.arousal: 180.0, slow.arousal: 60.0}
    comp = FakeComposer(bpm_of=lambda e: bpm[e.arousal])
    # the emotion changes mid-bar in the world; the scheduler only asks at bar lines
    sch, tracker, sink, _ = make({0: (fast, None), 2: (slow, None), 4: (fast, None)}, composer=comp, phrase_bars=8)
    sch.advance(0.0)                  # then coarse steps: up to 1.2 beats a step at 180 BPM
    play(sch, 14.0, step)
    lines = bar_lines(sink)
    # bar b's length is 4 beats at the tempo of the phrase playing it: 180, 180, 60, 60, 180, ...
    expect = [0.0]
    for b in range(7):
        expect.append(expect[-1] + 4 * 60 / (180.0 if b in (0, 1, 4, 5, 6) else 60.0))
    expect = [t for t in expect if t <= 14.0]
    assert lines == pytest.approx(expect, abs=1e-6)
    # tempo messages: only at those bar lines
    for bpm_, t in sink.tempos:
        assert any(abs(t - x) < 1e-6 for x in expect), (bpm_, t)
    assert [round(b) for b, _ in sink.tempos] == [180, 60, 180]
    # every lead note starts on its beat and ends half a beat later, at the tempo of its bar
    # (not early when the tempo has just dropped at the bar line)
    lead = [(m.type, m.note, t) for m, t in sink.sent if getattr(m, "channel", None) == LEAD
            and m.type in ("note_on", "note_off")]
    checked = 0
    for i, (kind, pitch, t) in enumerate(lead):
        if kind != "note_on":
            continue
        bar = max(i for i, x in enumerate(expect) if x <= t + 1e-9)
        beat_s = (expect[bar + 1] - expect[bar]) / 4 if bar + 1 < len(expect) else 60 / 180
        assert t == pytest.approx(expect[bar] + (pitch - 60) * beat_s, abs=1e-6)
        off = next((x for x in lead[i + 1:] if x[0] == "note_off" and x[1] == pitch), None)
        if off is not None and off[2] < 14.0 - step:
            assert off[2] == pytest.approx(t + 0.5 * beat_s, abs=1e-6), (pitch, t, off)
            checked += 1
    assert checked > 20


def test_the_first_bar_starts_at_time_zero_even_when_the_first_tick_is_late():
    sch, tracker, sink, _ = make({0: (emo(0.0, 0.5), None)})
    sch.advance(0.3)                   # e.g. the first audio block, or a slow start
    first = [t for m, t in sink.sent if m.type == "note_on"]
    assert first and first[0] == 0.0  # the downbeat stays on the grid (bar 1, tick 0 of a file)
    assert sink.tempos[0] == (120.0, 0.0)


# ------------------------------------------------------------------ phrases
def test_a_new_phrase_starts_only_when_the_emotion_moves_more_than_the_threshold():
    base = emo(0.0, 0.5, 0.5)
    near = emo(0.1, 0.55, 0.5)        # 0.11 away
    far = emo(0.3, 0.75, 0.5)         # 0.39 from base, 0.28 from near
    assert emotion_distance(base, near) < 0.2 < emotion_distance(base, far)
    sch, _, _, comp = make({0: (base, None), 2: (near, None), 4: (far, None)}, phrase_bars=8, threshold=0.2)
    play(sch, 13.9)                   # 7 bars at 120 BPM
    starts = sch.stats.phrase_starts
    assert [(b, why) for b, _, _, why in starts] == [(0, "start"), (4, "emotion moved to test")]
    assert len(comp.calls) == 2 and comp.calls[1][0] is far
    assert sch.stats.bars == 7


def test_the_threshold_is_a_distance_in_vad():
    sch, _, _, comp = make({0: (emo(0.0, 0.5), None), 1: (emo(0.0, 0.5, 0.8), None)}, threshold=0.25)
    play(sch, 3.9)
    assert len(sch.stats.phrase_starts) == 2  # dominance alone moved by 0.3 > 0.25


def test_force_starts_a_new_phrase_whatever_the_distance():
    same = emo(0.2, 0.4)
    sch, _, _, comp = make({0: (same, None), 2: (same, "asked (SetEmotion)")}, phrase_bars=8)
    play(sch, 7.9)
    assert [(b, why) for b, _, _, why in sch.stats.phrase_starts] == [(0, "start"), (2, "asked (SetEmotion)")]
    assert sch.stats.phrase_starts[1][1] == pytest.approx(4.0)  # at the bar line, 2 bars of 2 s in


def test_phrases_run_out_after_phrase_bars_with_the_next_seed():
    sch, _, _, comp = make({0: (emo(0.0, 0.5), None)}, phrase_bars=3, seed=40)
    play(sch, 13.9)                   # bars 0..6
    assert [(b, why) for b, _, _, why in sch.stats.phrase_starts] == [
        (0, "start"), (3, "phrase ended"), (6, "phrase ended")]
    assert [(bars, seed) for _, bars, seed in comp.calls] == [(3, 40), (3, 41), (3, 42)]


def test_programs_are_sent_once_per_change():
    happy, sad = emo(0.6, 0.5), emo(-0.6, 0.5)
    comp = FakeComposer(program_of=lambda e: 0 if e.valence > 0 else 42)
    sch, _, sink, _ = make({0: (happy, None), 4: (sad, None), 8: (happy, None)}, composer=comp, phrase_bars=2)
    play(sch, 23.9)                   # 12 bars: phrases at 0, 2 (same), 4 (sad), 6 (same), 8 (happy), 10
    assert len(sch.stats.phrase_starts) == 6
    lead = [(m.program, t) for m, t in sink.of("program_change", LEAD)]
    assert lead == [(0, 0.0), (42, 8.0), (0, 16.0)]
    assert [m.program for m, _ in sink.of("program_change", BASS)] == [33]
    assert sink.of("program_change", DRUMS) == []  # a drum channel gets no program


def test_a_program_change_comes_before_the_notes_of_its_bar():
    comp = FakeComposer(program_of=lambda e: 0 if e.valence > 0 else 42)
    sch, _, sink, _ = make({0: (emo(0.6, 0.5), None), 1: (emo(-0.6, 0.5), None)}, composer=comp)
    play(sch, 2.5)
    lead = [(m.type, t) for m, t in sink.sent if getattr(m, "channel", None) == LEAD]
    i = lead.index(("program_change", 2.0))
    assert all(t < 2.0 for kind, t in lead[:i] if kind == "note_on")
    assert any(kind == "note_on" and t == 2.0 for kind, t in lead[i + 1:])


# ------------------------------------------------------------------ metre
@pytest.mark.parametrize("ts, beats", [((3, 4), 3.0), ((6, 8), 3.0), ((4, 4), 4.0), ((7, 8), 3.5)])
def test_bar_lengths_follow_the_time_signature(tmp_path, ts, beats):
    path = tmp_path / "m.mid"
    comp = FakeComposer(time_signature=ts)
    sch, tracker, _, _ = make({0: (emo(0.0, 0.5), None)}, composer=comp, sink=MidiFileSink(path), phrase_bars=2)
    play(sch, 6 * beats * 0.5 + 0.2)  # six bars at 120 BPM (0.5 s a quarter note)
    assert sch.time_signature == ts
    assert sch.stats.bars == 7
    assert sch.composer.phrase.beats_per_bar == beats
    sch.stop(sch.transport.time_at(sch.bar_beat))
    tracker.close(sch.transport.time_at(sch.bar_beat))
    _, events = file_events(path)
    kicks = [t for t, m in events if m.type == "note_on" and m.channel == DRUMS and m.velocity > 0]
    assert kicks == [round(b * beats * PPQ) for b in range(7)]


def test_phrase_from_song_cuts_notes_into_bars_and_drops_the_rest():
    song = FakeComposer(time_signature=(3, 4))(emo(0, 0.5), 3, 0)
    ph = Phrase.from_song(song, emo(0, 0.5), start_bar=5, seed=1, n_bars=2, reason="start")
    assert ph.n_bars == 2 and ph.beats_per_bar == 3.0 and ph.time_signature == (3, 4)
    assert ph.note_count == 2 * (3 + 1 + 1)
    for b, events in enumerate(ph.bars):
        ons = [e for e in events if e[2] == "on"]
        assert all(b * 3 <= e[0] < (b + 1) * 3 for e in ons)
    # the bass note that would run past the phrase is cut at its end
    assert max(e[0] for e in ph.bars[1] if e[2] == "off") == 6.0


def test_live_composer_refuses_bad_settings():
    with pytest.raises(InputError):
        LiveComposer(FakeComposer(), phrase_bars=0)
    with pytest.raises(InputError):
        LiveComposer(FakeComposer(), threshold=-1)


# ------------------------------------------------------------------ a DAW's clock
class Daw:
    """A DAW sending 24-ppqn MIDI clock at ``bpm`` to a ClockFollower, and a scheduler following it."""

    def __init__(self, bpm: float = 120.0) -> None:
        self.t = 0.0
        self.step = 60.0 / bpm / 24
        self.follower = ClockFollower()
        comp = FakeComposer()
        self.sch, self.tracker, self.sink, _ = make({0: (emo(0.0, 0.5), None)}, composer=comp, phrase_bars=4,
                                                    transport=ExternalTransport(self.follower, lambda: self.t))

    def send(self, status, *data) -> None:
        self.follower.feed([status, *data], self.t)
        self.sch.advance(self.t)

    def clocks(self, n: int) -> None:
        for _ in range(n):
            self.t += self.step
            self.send(CLOCK)

    def notes_since(self, i: int):
        return [(m, t) for m, t in self.sink.sent[i:] if m.type == "note_on"]


def test_external_clock_plays_only_while_the_daw_plays():
    daw = Daw(120)
    daw.clocks(48)                    # clock running, transport stopped: silence
    assert daw.sink.sent == []
    assert not daw.sch.transport.playing()
    daw.send(START)
    t_start = daw.t
    daw.clocks(24 * 6 + 1)            # a bar and a half
    ons = daw.notes_since(0)
    assert ons and ons[0][1] >= t_start
    assert daw.sch.stats.bars == 2
    downbeats = [t for m, t in ons if m.channel == LEAD and m.note == 60]
    assert downbeats == pytest.approx([t_start + daw.step, t_start + daw.step * 97], abs=1e-9)
    assert daw.tracker.sounding > 0   # the bass note across the bar line
    daw.send(STOP)
    assert daw.tracker.sounding == 0
    stop_msgs = [m for m, t in daw.sink.sent if t == daw.t and m.type == "control_change" and m.control == 123]
    assert {m.channel for m in stop_msgs} == {LEAD, BASS, DRUMS}
    n = len(daw.sink.sent)
    daw.clocks(96)                    # the clock keeps running while stopped: nothing plays
    assert daw.notes_since(n) == []
    assert_paired([m for m, _ in daw.sink.sent])


def test_song_position_pointer_re_places_the_bar():
    daw = Daw(120)
    daw.send(START)
    daw.clocks(24 * 5)                # into bar 2
    daw.send(STOP)
    # move to quarter note 6 (24 MIDI beats = sixteenths): the middle of bar 2
    daw.send(SONG_POSITION, 24, 0)
    n = len(daw.sink.sent)
    bars_before = daw.sch.stats.bars
    daw.send(CONTINUE)
    t0 = daw.t
    daw.clocks(47)                    # quarter notes 6 .. 8 (not yet at the bar line)
    assert daw.notes_since(n) == []   # nothing from the middle of a bar
    daw.clocks(2)
    ons = daw.notes_since(n)
    assert ons, "the next bar line (quarter note 8) starts a bar"
    assert daw.sch.bar == 2 and daw.sch.stats.bars == bars_before + 1
    assert ons[0][1] == pytest.approx(t0 + 49 * daw.step, abs=daw.step)
    assert daw.sch.stats.phrase_starts[-1][0] == 2


def test_a_jump_while_playing_silences_and_restarts_at_a_bar_line():
    daw = Daw(100)
    daw.send(START)
    daw.clocks(24 * 4 + 12)           # bar 1 and a half beat of bar 2: notes sound
    assert daw.tracker.sounding > 0
    daw.send(SONG_POSITION, 0, 1)     # 128 sixteenths = quarter note 32 = bar 9's line
    assert daw.tracker.sounding == 0
    n = len(daw.sink.sent)
    daw.clocks(1)                     # the first clock lands on the new position: a bar line
    ons = daw.notes_since(n)
    assert [m.note for m, _ in ons if m.channel == LEAD] == [60]
    assert daw.sch.bar == 8
    daw.sch.stop(daw.t)
    assert_paired([m for m, _ in daw.sink.sent])


class HeldNoteComposer:
    """Every phrase: one lead note of pitch 60 from its first bar line, held for two bars."""

    def __call__(self, emotion: EmotionState, bars: int, seed: int) -> Song:
        song = Song(tempos=[(0, 120.0)])
        song.tracks = [Track("lead", program=0, channel=LEAD, notes=[Note(0, 60, 2 * song.bar_ticks, 90)])]
        return song


def test_a_key_struck_again_by_the_next_phrase_is_not_cut_short_by_the_old_note_off():
    # phrase 1 holds C4 over bars 1-2; a forced phrase at bar 2 strikes C4 again and holds it over bars 2-3.
    # The tracker ends the old note when the new one starts; the old note's own note-off (due at the end of
    # bar 2) must then not end the new note, which sounds to the end of bar 3.
    sch, tracker, sink, _ = make({0: (emo(0.0, 0.5), None), 1: (emo(0.0, 0.5), "asked")},
                                 composer=HeldNoteComposer(), phrase_bars=4)
    play(sch, 7.0)  # 3.5 bars at 120 bpm (2 s a bar)
    sch.stop(7.0)
    ons = [t for m, t in sink.of("note_on", LEAD) if m.velocity > 0]
    offs = [t for m, t in sink.sent if m.channel == LEAD and
            (m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))]
    assert ons == pytest.approx([0.0, 2.0])
    assert offs == pytest.approx([2.0, 6.0])  # the retrigger at 2 s, then the new note's own end at 6 s
