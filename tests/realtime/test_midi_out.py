"""Live MIDI out: the file recorder's tempo map and tracks, the note tracker's promises, port selection."""

from __future__ import annotations

import os
import random
import sys
import types
from pathlib import Path

import mido
import pytest

from kelly.errors import InputError, KellyError, OutputError
from kelly.fileio import DestinationExists
from kelly.realtime import midi_out
from kelly.realtime.midi_out import MidiFileSink, MidiSink, NoteTracker, RtMidiSink, open_midi_out
from tests.realtime._sinks import RecordingSink


def _abs_ticks(track):
    now = 0
    for msg in track:
        now += msg.time
        yield now, msg


# ------------------------------------------------------------------ file sink
def test_sinks_satisfy_the_protocol(tmp_path):
    assert isinstance(MidiFileSink(tmp_path / "a.mid"), MidiSink)
    assert isinstance(RecordingSink(), MidiSink)


def test_seconds_land_on_the_right_ticks_through_tempo_changes(tmp_path):
    path = tmp_path / "take.mid"
    sink = MidiFileSink(path)
    with NoteTracker(sink) as out:
        out.note_on(0, 60, 100, 0.0)        # 120 BPM: 960 ticks a second
        out.note_off(0, 60, 1.0)            # 960
        out.set_tempo(60, 2.0)              # tick 1920; now 480 a second
        out.note_on(0, 62, 100, 3.0)        # 2400
        out.note_off(0, 62, 3.5)            # 2640
        out.set_tempo(90, 5.0)              # 1920 + 3 * 480 = 3360; now 720 a second
        out.note_on(0, 64, 100, 5.0 + 2 / 3)  # 3840 (one beat at 90)
        out.note_off(0, 64, 7.0)            # 3360 + 1440 = 4800
        out.set_tempo(90, 7.5)              # the same tempo: no event
        out.close(8.0)                      # 4800 + 720 = 5520
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == 480
    tempos = [(t, m.tempo) for t, m in _abs_ticks(mid.tracks[0]) if m.type == "set_tempo"]
    assert tempos == [(0, 500000), (1920, 1000000), (3360, 666667)]
    notes = [(t, m.type, m.note) for t, m in _abs_ticks(mid.tracks[1]) if m.type.startswith("note")]
    assert notes == [(0, "note_on", 60), (960, "note_off", 60), (2400, "note_on", 62), (2640, "note_off", 62),
                     (3840, "note_on", 64), (4800, "note_off", 64)]
    assert max(t for t, _ in _abs_ticks(mid.tracks[0])) == 5520  # the file lasts as long as the session


def test_a_ten_minute_session_does_not_drift(tmp_path):
    """Awkward tempos changing every 7.3 s for ten minutes: every note is read back within half a tick."""
    import pretty_midi

    path = tmp_path / "long.mid"
    sink = MidiFileSink(path)
    out = NoteTracker(sink)
    tempos = [120.0, 97.3, 133.7, 61.0, 174.9]
    sent, t, k, next_change = [], 0.0, 0, 0.0
    while t < 600.0:
        if t >= next_change:
            out.set_tempo(tempos[k % len(tempos)], t)
            k += 1
            next_change += 7.3
        pitch = 40 + int(t * 7) % 40
        out.note_on(1, pitch, 90, t)
        out.note_off(1, pitch, t + 0.2)
        sent.append((t, pitch))
        t = round(t + 0.2513, 6)
    out.close(t)
    pm = pretty_midi.PrettyMIDI(str(path))
    starts = sorted((n.start, n.pitch) for inst in pm.instruments for n in inst.notes)
    assert len(starts) == len(sent)
    # half a tick at the slowest tempo (61 BPM: 2.05 ms a tick) plus float slack
    worst = max(abs(a[0] - b[0]) for a, b in zip(starts, sent))
    assert worst <= 0.5 * 60 / 61 / 480 + 1e-6
    assert abs(starts[-1][0] - sent[-1][0]) <= 0.0011  # no growth at the end


def test_one_named_track_per_channel_with_programs(tmp_path):
    path = tmp_path / "parts.mid"
    sink = MidiFileSink(path)
    sink.name_track(2, "Kelly bass")
    out = NoteTracker(sink)
    out.program_change(2, 33, 0.0)
    out.program_change(0, 4, 0.0)
    out.control_change(0, 11, 90, 0.0)
    out.pitchwheel(0, -4096, 0.1)
    out.note_on(9, 36, 120, 0.0)
    out.note_on(2, 40, 100, 0.0)
    out.note_on(0, 72, 80, 0.25)
    out.close(2.0)
    mid = mido.MidiFile(path)
    assert [tr.name for tr in mid.tracks] == ["Kelly live", "Kelly channel 1", "Kelly bass", "Kelly drums"]
    for tr, ch in zip(mid.tracks[1:], (0, 2, 9)):
        assert {m.channel for m in tr if not m.is_meta} == {ch}
    assert [m.program for m in mid.tracks[1] if m.type == "program_change"] == [4]
    assert [m.program for m in mid.tracks[2] if m.type == "program_change"] == [33]
    assert [m.pitch for m in mid.tracks[1] if m.type == "pitchwheel"] == [-4096]

    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    by_name = {i.name: i for i in pm.instruments}
    assert by_name["Kelly bass"].program == 33 and [n.pitch for n in by_name["Kelly bass"].notes] == [40]
    assert by_name["Kelly drums"].is_drum
    assert by_name["Kelly channel 1"].notes[0].start == pytest.approx(0.25, abs=1e-3)
    assert by_name["Kelly channel 1"].notes[0].end == pytest.approx(2.0, abs=1e-3)  # ended by close


def test_kelly_reads_the_recording_back(tmp_path):
    from kelly.song import read_midi

    path = tmp_path / "back.mid"
    out = NoteTracker(MidiFileSink(path))
    out.set_tempo(100, 0.0)
    out.note_on(0, 60, 100, 0.0)
    out.note_off(0, 60, 0.6)  # one beat at 100 BPM
    out.close(1.2)
    song = read_midi(path)
    assert song.tempos == [(0, 100.0)]
    assert [(n.start, n.pitch, n.duration) for n in song.tracks[0].notes] == [(0, 60, 480)]


def test_nothing_is_written_until_close_and_a_failed_session_leaves_no_file(tmp_path):
    path = tmp_path / "crash.mid"
    out = NoteTracker(MidiFileSink(path))
    with pytest.raises(RuntimeError):
        out.note_on(0, 60, 100, 0.0)
        raise RuntimeError("the engine fell over mid-session")
    assert not path.exists()
    assert os.listdir(tmp_path) == []  # no temporary file either


def test_an_old_file_stays_whole_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "keep.mid"
    path.write_bytes(b"old take")
    sink = MidiFileSink(path, overwrite=True)
    NoteTracker(sink).note_on(0, 60, 100, 0.0)
    assert path.read_bytes() == b"old take"
    sink.close(1.0)
    assert mido.MidiFile(path).type == 1


def test_an_existing_file_is_refused_before_the_session_without_overwrite(tmp_path):
    path = tmp_path / "exists.mid"
    path.write_bytes(b"x")
    with pytest.raises(DestinationExists):
        MidiFileSink(path, overwrite=False)
    with pytest.raises(OutputError):
        MidiFileSink(tmp_path)  # a folder


def test_the_event_cap_fails_clearly_and_still_closes_every_note(tmp_path):
    path = tmp_path / "full.mid"
    sink = MidiFileSink(path, max_events=10)
    out = NoteTracker(sink)
    for i in range(5):
        out.note_on(0, 60 + i, 100, i * 0.1)
    for i in range(5):
        out.note_on(1, 60 + i, 100, 0.5)
    with pytest.raises(OutputError, match="10 MIDI events"):
        out.note_on(2, 60, 100, 0.6)
    with pytest.raises(OutputError, match="10 MIDI events"):
        out.program_change(2, 1, 0.6)
    assert sink.full and out.sounding == 10
    out.close(1.0)  # the ten notes' note-offs and the closing controllers still go in
    mid = mido.MidiFile(path)
    ons = sum(m.type == "note_on" and m.velocity > 0 for tr in mid.tracks for m in tr)
    offs = sum(m.type == "note_off" for tr in mid.tracks for m in tr)
    assert ons == offs == 10


def test_system_messages_are_left_out_of_the_file(tmp_path):
    sink = MidiFileSink(tmp_path / "sys.mid")
    sink.send(mido.Message("clock"), 0.0)
    sink.send(mido.Message("sysex", data=[1, 2, 3]), 0.0)
    assert sink.skipped == 2 and sink.events == 0


# ------------------------------------------------------------------ tracker
def test_random_streams_pair_every_note_on_with_one_note_off():
    rng = random.Random(7)
    for _ in range(20):
        sink = RecordingSink()
        out = NoteTracker(sink)
        t = 0.0
        for _ in range(400):
            t += rng.random() * 0.05
            ch, pitch = rng.randrange(3), rng.randrange(58, 64)
            r = rng.random()
            if r < 0.5:
                out.note_on(ch, pitch, rng.randrange(0, 128), t)  # velocity 0 now and then: a note-off
            elif r < 0.95:
                out.note_off(ch, pitch, t)
            else:
                out.all_notes_off(t)
            assert out.sounding == len(out.sounding_notes())
        out.close(t + 1)
        assert out.sounding == 0
        # per (channel, pitch): on, off, on, off … starting with on and ending with off
        state: dict[tuple[int, int], bool] = {}
        ons = offs = 0
        for msg, _ in sink.sent:
            key = (getattr(msg, "channel", None), getattr(msg, "note", None))
            if msg.type == "note_on":
                assert msg.velocity > 0 and not state.get(key), "a note-on while the note sounds"
                state[key] = True
                ons += 1
            elif msg.type == "note_off":
                assert state.get(key), "a note-off for a silent note"
                state[key] = False
                offs += 1
        assert not any(state.values())
        assert ons == offs == out.note_ons == out.note_offs
        times = [t for _, t in sink.sent]
        assert times == sorted(times)


def test_retrigger_sends_the_old_note_off_first():
    sink = RecordingSink()
    out = NoteTracker(sink)
    out.note_on(0, 60, 100, 0.0)
    out.note_on(0, 60, 80, 0.5)
    assert [(m.type, m.velocity if m.type == "note_on" else None) for m, _ in sink.sent] == [
        ("note_on", 100), ("note_off", None), ("note_on", 80)]
    assert out.retriggers == 1 and out.sounding == 1


def test_note_off_of_a_silent_note_is_ignored_and_counted():
    sink = RecordingSink()
    out = NoteTracker(sink)
    out.note_off(0, 60, 0.0)
    out.note_on(0, 60, 0, 0.1)  # velocity 0 = note-off
    assert sink.sent == [] and out.ignored_note_offs == 2
    out.note_on(0, 60, 90, 0.2)
    out.note_on(0, 60, 0, 0.3)
    assert [m.type for m, _ in sink.sent] == ["note_on", "note_off"] and out.sounding == 0


def test_all_notes_off_silences_and_resets_every_channel_used():
    sink = RecordingSink()
    out = NoteTracker(sink)
    out.note_on(0, 60, 100, 0.0)
    out.note_on(0, 64, 100, 0.0)
    out.note_on(9, 36, 100, 0.0)
    out.program_change(4, 10, 0.0)
    sink.sent.clear()
    out.all_notes_off(1.0)
    assert out.sounding == 0
    offs = [(m.channel, m.note) for m, _ in sink.sent if m.type == "note_off"]
    assert sorted(offs) == [(0, 60), (0, 64), (9, 36)]
    ccs = [(m.channel, m.control, m.value) for m, _ in sink.sent if m.type == "control_change"]
    assert ccs == [(ch, cc, 0) for ch in (0, 4, 9) for cc in (64, 123)]
    assert [m.type for m, _ in sink.sent][:3] == ["note_off"] * 3  # note-offs before the controllers
    sink.sent.clear()
    out.all_notes_off(2.0, sound_off=True)
    assert sorted(m.control for m, _ in sink.sent if m.channel == 4) == [64, 120, 123]


def test_close_silences_then_closes_the_sink_once():
    sink = RecordingSink()
    out = NoteTracker(sink)
    out.note_on(3, 50, 100, 0.0)
    out.close(2.0)
    assert sink.closed_at == 2.0 and out.sounding == 0
    assert ("note_off", 3, 50) in [(m.type, m.channel, getattr(m, "note", None)) for m, _ in sink.sent]
    out.close(3.0)
    assert sink.closed_at == 2.0
    with pytest.raises(OutputError, match="closed"):
        out.note_on(0, 60, 100, 3.0)


def test_close_closes_the_sink_even_when_silencing_fails():
    class Broken(RecordingSink):
        def send(self, msg, time_s):
            if msg.type == "note_off":
                raise OutputError("device unplugged")
            super().send(msg, time_s)

    sink = Broken()
    out = NoteTracker(sink)
    out.note_on(0, 60, 100, 0.0)
    with pytest.raises(OutputError, match="unplugged"):
        out.close(1.0)
    assert sink.closed_at == 1.0 and out.closed


def test_time_never_goes_back_for_the_sink():
    sink = RecordingSink()
    out = NoteTracker(sink)
    out.note_on(0, 60, 100, 2.0)
    out.note_off(0, 60, 1.0)
    assert [t for _, t in sink.sent] == [2.0, 2.0]


@pytest.mark.parametrize("call", [
    lambda o: o.note_on(16, 60, 100, 0.0),
    lambda o: o.note_on(-1, 60, 100, 0.0),
    lambda o: o.note_on(0, 128, 100, 0.0),
    lambda o: o.note_on(0, 60, 128, 0.0),
    lambda o: o.note_on(0, 60.5, 100, 0.0),
    lambda o: o.note_on(0, True, 100, 0.0),
    lambda o: o.note_on(0, "60", 100, 0.0),
    lambda o: o.note_on(0, 60, 100, float("nan")),
    lambda o: o.note_off(0, -1, 0.0),
    lambda o: o.program_change(0, 128, 0.0),
    lambda o: o.control_change(0, 128, 0, 0.0),
    lambda o: o.control_change(0, 7, -1, 0.0),
    lambda o: o.pitchwheel(0, 8192, 0.0),
    lambda o: o.set_tempo(0, 0.0),
    lambda o: o.set_tempo(float("inf"), 0.0),
    lambda o: o.set_tempo(5000, 0.0),
])
def test_bad_values_are_refused_with_a_kelly_error(call):
    sink = RecordingSink()
    out = NoteTracker(sink)
    with pytest.raises(InputError):
        call(out)
    assert sink.sent == [] and sink.tempos == []


def test_numpy_integers_are_fine():
    np = pytest.importorskip("numpy")
    sink = RecordingSink()
    NoteTracker(sink).note_on(np.int64(1), np.uint8(60), np.int32(100), np.float64(0.5))
    assert sink.sent[0][0].bytes() == [0x91, 60, 100]


# ------------------------------------------------------------------ ports
class FakeMidi:
    """Stands in for rtmidi.MidiOut / MidiIn."""

    ports = ["Midi Through:Midi Through Port-0 14:0", "FluidSynth:Synth input port 128:0", "USB Keys 20:0"]
    api = 2
    instances: list["FakeMidi"] = []

    def __init__(self, *args, **kwargs):
        self.opened = None
        self.sent = []
        self.deleted = False
        FakeMidi.instances.append(self)

    def get_current_api(self):
        return self.api

    def get_ports(self):
        return list(self.ports)

    def open_port(self, index, name=None):
        self.opened = ("port", index, name)

    def open_virtual_port(self, name=None):
        if self.api == 7:
            raise FakeRtmidi.UnsupportedOperationError("Virtual ports are not supported by the Windows MultiMedia API.")
        self.opened = ("virtual", name)

    def send_message(self, data):
        self.sent.append(list(data))

    def close_port(self):
        self.opened = None

    def delete(self):
        self.deleted = True


class FakeRtmidi(types.ModuleType):
    class RtMidiError(Exception):
        pass

    class UnsupportedOperationError(RtMidiError):
        pass

    API_RTMIDI_DUMMY = 9

    def __init__(self):
        super().__init__("rtmidi")
        self.MidiOut = FakeMidi
        self.MidiIn = FakeMidi

    @staticmethod
    def get_api_display_name(api):
        return {7: "Windows MultiMedia"}.get(api, "ALSA")


@pytest.fixture
def fake_rtmidi(monkeypatch):
    FakeMidi.instances.clear()
    monkeypatch.setattr(FakeMidi, "api", 2)
    monkeypatch.setitem(sys.modules, "rtmidi", FakeRtmidi())
    return FakeMidi


def test_virtual_port_by_default(fake_rtmidi):
    sink = RtMidiSink()
    assert fake_rtmidi.instances[-1].opened == ("virtual", "Kelly")
    assert "Kelly" in sink.name
    out = NoteTracker(sink)
    out.note_on(0, 60, 100, 0.0)
    out.close(1.0)
    midi = fake_rtmidi.instances[-1]
    assert midi.sent[0] == [0x90, 60, 100] and [0x80, 60, 0] in midi.sent and [0xB0, 123, 0] in midi.sent
    assert midi.deleted and midi.opened is None


def test_port_by_part_of_its_name_or_by_number(fake_rtmidi):
    assert "FluidSynth" in RtMidiSink("synth").name
    assert fake_rtmidi.instances[-1].opened == ("port", 1, "Kelly")
    RtMidiSink(2)
    assert fake_rtmidi.instances[-1].opened[:2] == ("port", 2)
    open_midi_out("0")
    assert fake_rtmidi.instances[-1].opened[:2] == ("port", 0)
    open_midi_out("virtual")
    assert fake_rtmidi.instances[-1].opened == ("virtual", "Kelly")
    open_midi_out("usb keys")
    assert fake_rtmidi.instances[-1].opened[:2] == ("port", 2)


@pytest.mark.parametrize("port", ["Moog", 3, -1])
def test_a_missing_port_lists_the_ports_there_are(fake_rtmidi, port):
    with pytest.raises(KellyError) as info:
        RtMidiSink(port)
    assert "0: 'Midi Through" in str(info.value) and "2: 'USB Keys" in str(info.value)
    assert fake_rtmidi.instances[-1].deleted  # the half-opened client is released


def test_windows_cannot_make_a_virtual_port(fake_rtmidi, monkeypatch):
    monkeypatch.setattr(FakeMidi, "api", 7)
    with pytest.raises(KellyError, match="Windows MultiMedia cannot make virtual MIDI ports.*loopMIDI"):
        RtMidiSink(None)


def test_rtmidi_without_a_backend_is_no_midi_system(fake_rtmidi, monkeypatch):
    monkeypatch.setattr(FakeMidi, "api", FakeRtmidi.API_RTMIDI_DUMMY)
    with pytest.raises(KellyError, match="no MIDI system available here.*--midi-out FILE.mid"):
        RtMidiSink("x")


def test_missing_python_rtmidi_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # import rtmidi now raises ImportError
    with pytest.raises(KellyError, match=r"pip install 'kelly\[live\]'"):
        open_midi_out("virtual")
    assert isinstance(open_midi_out("still-works.mid"), MidiFileSink)


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_no_alsa_sequencer_is_one_clear_error_without_alsa_noise(capfd):
    pytest.importorskip("rtmidi")
    with pytest.raises(KellyError, match="no MIDI system available here.*use --midi-out FILE.mid") as info:
        open_midi_out("virtual")
    assert "\n" not in str(info.value)
    captured = capfd.readouterr()
    assert "ALSA lib" not in captured.err and "ALSA lib" not in captured.out
    with pytest.raises(KellyError, match="no MIDI system"):
        midi_out.list_midi_outputs()


def test_c_level_noise_is_caught_and_stderr_restored(capfd):
    with midi_out._captured_stderr() as noise:
        os.write(2, b"ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed: No such file\n")
    os.write(2, b"after\n")
    assert noise == ["ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed: No such file"]
    assert capfd.readouterr().err == "after\n"
    assert midi_out._gist(RuntimeError("x"), noise) == "ALSA: open /dev/snd/seq failed: No such file"


def test_open_midi_out_dispatch(tmp_path):
    assert isinstance(open_midi_out(str(tmp_path / "a.mid")), MidiFileSink)
    assert isinstance(open_midi_out(str(tmp_path / "b.MIDI")), MidiFileSink)
    (tmp_path / "c.mid").write_bytes(b"x")
    with pytest.raises(DestinationExists):
        open_midi_out(str(tmp_path / "c.mid"), overwrite=False)
    with pytest.raises(InputError):
        open_midi_out("  ")
    assert Path(open_midi_out(str(tmp_path / "d.mid")).path).name == "d.mid"
