"""Following a MIDI clock: tempo from jittery clocks, transport, song position, lost clocks, garbage."""

from __future__ import annotations

import os
import random
import sys
import types

import mido
import pytest

from kelly.errors import KellyError
from kelly.realtime.clock import CLOCK, CONTINUE, START, STOP, ClockFollower, RtMidiClockIn, list_midi_inputs


def clocks(follower, bpm, count, start_s=0.0, jitter_s=0.0, rng=None, drop=lambda i: False):
    """Feed ``count`` clocks at ``bpm`` from ``start_s`` (each moved by up to ±jitter); returns the next time."""
    rng = rng or random.Random(1)
    step = 60.0 / bpm / 24
    for i in range(count):
        if not drop(i):
            follower.feed([CLOCK], start_s + i * step + rng.uniform(-jitter_s, jitter_s))
    return start_s + count * step


def test_tempo_from_a_jittery_120_bpm_clock():
    f = ClockFollower()
    assert f.tempo_bpm is None
    clocks(f, 120, 10, jitter_s=0.001)
    assert f.tempo_bpm is None  # not enough clocks yet
    rng = random.Random(3)
    t = clocks(f, 120, 14, start_s=10 * 60 / 120 / 24, jitter_s=0.001, rng=rng)
    assert f.tempo_bpm == pytest.approx(120, abs=3)  # a first estimate after half a beat
    for _ in range(20):  # then, for every clock, within half a BPM
        t = clocks(f, 120, 12, start_s=t, jitter_s=0.001, rng=rng)
        assert f.tempo_bpm == pytest.approx(120, abs=0.5)


def test_a_tempo_change_is_followed_within_two_beats():
    f = ClockFollower()
    rng = random.Random(5)
    t = clocks(f, 120, 96, jitter_s=0.001, rng=rng)
    t = clocks(f, 90, 48, start_s=t, jitter_s=0.001, rng=rng)  # two beats at the new tempo
    assert f.tempo_bpm == pytest.approx(90, abs=0.5)
    clocks(f, 140, 48, start_s=t, jitter_s=0.001, rng=rng)
    assert f.tempo_bpm == pytest.approx(140, abs=0.5)


def test_start_stop_continue_and_position():
    events = []
    f = ClockFollower(on_start=lambda fl: events.append(("start", fl.playing)),
                      on_stop=lambda fl: events.append(("stop", fl.playing)))
    step = 60 / 120 / 24
    t = clocks(f, 120, 30)  # the master's clock runs while stopped: tempo, but no position
    assert not f.playing and f.ticks == 0 and f.tempo_bpm == pytest.approx(120)
    v0 = f.version
    f.feed([START], t - step / 2)
    assert f.playing and f.version == v0 + 1 and f.quarter_notes == 0
    t = clocks(f, 120, 48, start_s=t)  # the first clock after Start is position 0
    assert f.ticks == 47 and f.quarter_notes == pytest.approx(47 / 24)
    f.feed(mido.Message("stop"), t)
    assert not f.playing and f.version == v0 + 2
    t = clocks(f, 120, 10, start_s=t)
    assert f.ticks == 47  # stopped: the position stands
    assert f.position_at(t + 1.0) == pytest.approx(47 / 24)
    f.feed(bytes([CONTINUE]), t - step / 2)
    assert f.playing and f.version == v0 + 3
    clocks(f, 120, 1, start_s=t)
    assert f.ticks == 48  # Continue goes on from where it stopped
    f.feed([START], t + 1)
    assert f.ticks == 0 and f.version == v0 + 4
    assert events == [("start", True), ("stop", False), ("start", True), ("start", True)]


def test_song_position_pointer_sets_where_continue_begins():
    f = ClockFollower()
    v = f.version
    f.feed([0xF2, 16, 0], 0.0)  # 16 sixteenths = 4 quarter notes = bar 2 in 4/4
    assert f.quarter_notes == 4.0 and f.ticks == 96 and f.version == v + 1 and not f.playing
    f.feed([CONTINUE], 0.01)
    clocks(f, 120, 1, start_s=0.02)
    assert f.ticks == 96  # the first clock after Continue lands on the pointer
    clocks(f, 120, 2, start_s=0.04)
    assert f.ticks == 98
    f.feed([STOP], 0.2)
    f.feed([0xF2, 0x00, 0x01], 0.3)  # 14 bits, least significant first: 128 sixteenths
    assert f.quarter_notes == 32.0
    f.feed(mido.Message("songpos", pos=0x3FFF), 0.4)
    assert f.quarter_notes == 0x3FFF / 4


def test_position_between_clocks_is_interpolated_and_never_runs_ahead():
    f = ClockFollower()
    step = 60 / 120 / 24
    f.feed([START], 0.0)
    t = clocks(f, 120, 25)  # clocks 0..24: at t - step the position is exactly one quarter note
    last = t - step
    assert f.position_at(last) == pytest.approx(1.0)
    assert f.position_at(last + step / 2) == pytest.approx(1.0 + 0.5 / 24, abs=1e-6)
    assert f.position_at(last + 10 * step) == pytest.approx(1.0 + 1 / 24)  # a late clock: wait at the next one
    assert f.position_at(last - 1.0) == pytest.approx(1.0)


def test_lost_clocks_are_made_up_and_do_not_move_the_tempo():
    f = ClockFollower()
    rng = random.Random(11)
    f.feed([START], 0.0)
    dropped = {i for i in range(30, 480, 37)}
    clocks(f, 120, 480, start_s=0.001, jitter_s=0.0005, rng=rng, drop=lambda i: i in dropped)
    assert f.tempo_bpm == pytest.approx(120, abs=0.5)
    assert f.lost == len(dropped)
    assert f.ticks == 479  # where the master is, not 479 - lost


def test_a_gap_before_the_first_clock_after_start_is_no_loss():
    f = ClockFollower()
    step = 60 / 120 / 24
    t = clocks(f, 120, 30)
    f.feed([START], t)
    t = clocks(f, 120, 10, start_s=t + step)  # one clock's gap around Start (the master's, not a loss)
    assert f.lost == 0 and f.ticks == 9


def test_a_sudden_half_tempo_is_not_taken_for_lost_clocks():
    f = ClockFollower()
    f.feed([START], 0.0)
    t = clocks(f, 120, 96, start_s=0.001)
    clocks(f, 60, 96, start_s=t)
    assert f.lost == 0 and f.ticks == 96 + 96 - 1
    assert f.tempo_bpm == pytest.approx(60, abs=0.5)


def test_a_long_pause_restarts_the_estimate():
    f = ClockFollower()
    t = clocks(f, 120, 48)
    clocks(f, 120, 5, start_s=t + 5.0)
    assert f.tempo_bpm is None
    clocks(f, 120, 20, start_s=t + 5.0 + 5 * 60 / 120 / 24)
    assert f.tempo_bpm == pytest.approx(120)


@pytest.mark.parametrize("garbage", [
    [], b"", [0x00], [0x90, 60, 100], mido.Message("note_on"), mido.Message("sysex", data=[1]),
    [0xF2, 0x80, 0x00], [0xF2, 16], [0xFE], [300], ["x"], "abc", None, 42, [0xF9], mido.Message("reset"),
])
def test_garbage_is_ignored_and_counted(garbage):
    f = ClockFollower()
    f.feed([START], 0.0)
    v, ticks = f.version, f.ticks
    f.feed(garbage, 0.1)
    assert f.ignored == 1 and f.version == v and f.ticks == ticks and f.playing


def test_bad_times_are_ignored():
    f = ClockFollower()
    f.feed([CLOCK], float("nan"))
    f.feed([CLOCK], "soon")
    assert f.ignored == 2 and f.clocks == 0


def test_time_going_back_does_not_poison_the_tempo():
    f = ClockFollower()
    t = clocks(f, 120, 30)
    f.feed([CLOCK], t - 1.0)
    clocks(f, 120, 30, start_s=t)
    assert f.tempo_bpm == pytest.approx(120)


# ------------------------------------------------------------------ the port
class FakeIn:
    ports = ["Midi Through:Midi Through Port-0 14:0", "Digitakt:Digitakt MIDI 1 24:0"]
    last: "FakeIn | None" = None

    def __init__(self, *a, **k):
        self.ignored = None
        self.callback = None
        self.opened = None
        self.deleted = False
        FakeIn.last = self

    def get_current_api(self):
        return 2

    def get_ports(self):
        return list(self.ports)

    def open_port(self, index, name=None):
        self.opened = index

    def open_virtual_port(self, name=None):
        self.opened = name

    def ignore_types(self, sysex=True, timing=True, active_sense=True):
        self.ignored = dict(sysex=sysex, timing=timing, active_sense=active_sense)

    def set_callback(self, func, data=None):
        self.callback = func

    def cancel_callback(self):
        self.callback = None

    def close_port(self):
        self.opened = None

    def delete(self):
        self.deleted = True


@pytest.fixture
def fake_rtmidi(monkeypatch):
    module = types.ModuleType("rtmidi")
    module.MidiIn = module.MidiOut = FakeIn
    module.RtMidiError = RuntimeError
    monkeypatch.setitem(sys.modules, "rtmidi", module)
    return module


def test_clock_in_feeds_the_follower_with_timing_switched_on(fake_rtmidi):
    f = ClockFollower()
    now = iter(i * 60 / 120 / 24 for i in range(100))
    with RtMidiClockIn("digitakt", f, clock=lambda: next(now)) as port:
        midi = FakeIn.last
        assert midi.opened == 1 and midi.ignored["timing"] is False
        assert "Digitakt" in port.name
        midi.callback(([START], 0.0), None)
        for _ in range(30):
            midi.callback(([CLOCK], 0.0208), None)
        midi.callback(([0x90, 60], 0.0), None)
        midi.callback("not an event", None)  # kept, not raised on rtmidi's thread
    assert f.playing and f.ticks == 29 and f.tempo_bpm == pytest.approx(120)
    assert f.ignored == 1 and port.errors == 1
    assert midi.callback is None and midi.deleted
    port.close()


def test_clock_in_port_not_found_lists_inputs(fake_rtmidi):
    with pytest.raises(KellyError, match="no MIDI input is called 'Moog'.*1: 'Digitakt"):
        RtMidiClockIn("Moog", ClockFollower())
    assert list_midi_inputs() == FakeIn.ports


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_clock_in_without_alsa_is_one_clear_error(capfd):
    pytest.importorskip("rtmidi")
    with pytest.raises(KellyError, match="no MIDI system available here"):
        RtMidiClockIn(0, ClockFollower())
    assert "ALSA lib" not in capfd.readouterr().err
