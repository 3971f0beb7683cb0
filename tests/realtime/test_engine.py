"""The real-time engine end to end: a WAV in, MIDI out; the control methods; biometrics; models; the socket."""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from kelly.contracts import EngineState
from kelly.emotion.bio import BioSample
from kelly.errors import InputError, KellyError
from kelly.realtime.audio_in import WavBlockSource
from kelly.realtime.engine import Engine, EngineConfig
from kelly.realtime.midi_out import MidiFileSink
from kelly.song import read_midi

SR = 48000
SHIPPED = Path(__file__).resolve().parents[2] / "kelly" / "assets" / "models"


# ------------------------------------------------------------------ fixtures
def calm_then_agitated(path: Path, half_s: float = 6.0, sr: int = SR) -> Path:
    """Soft low sine tones, then loud broadband noise bursts with drum-like clicks (mono float WAV)."""
    rng = np.random.default_rng(7)
    n = int(half_s * sr)
    t = np.arange(n) / sr
    calm = 0.05 * np.sin(2 * np.pi * 110 * t) + 0.03 * np.sin(2 * np.pi * 165 * t)
    env = np.zeros(n)
    for k in range(0, n, sr // 8):          # a hit every 125 ms
        env[k:k + sr // 40] = 1.0
    loud = np.clip(rng.standard_normal(n) * 0.5 * (0.3 + env), -1, 1)
    sf.write(path, np.concatenate([calm, loud]).astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    return calm_then_agitated(tmp_path_factory.mktemp("wav") / "calm_agitated.wav")


def note_pairs_ok(path: Path) -> tuple[int, int]:
    """(note-ons, note-offs) of a MIDI file, asserting each (channel, pitch) alternates on/off and ends off."""
    sounding: dict[tuple[int, int], bool] = defaultdict(bool)
    ons = offs = 0
    for track in mido.MidiFile(path).tracks:
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0:
                assert not sounding[(msg.channel, msg.note)], f"{path.name}: note-on twice without an off: {msg}"
                sounding[(msg.channel, msg.note)] = True
                ons += 1
            elif msg.type in ("note_on", "note_off"):
                assert sounding[(msg.channel, msg.note)], f"{path.name}: note-off of a silent note: {msg}"
                sounding[(msg.channel, msg.note)] = False
                offs += 1
    assert not any(sounding.values()), f"{path.name}: notes left hanging"
    return ons, offs


def run_wav(wav: Path, out: Path, **config) -> Engine:
    cfg = EngineConfig(sr=SR, sync=True, phrase_bars=2, **config)
    engine = Engine(cfg, sink=MidiFileSink(out), clock="audio")
    with engine:
        engine.run(WavBlockSource(wav, cfg.block), realtime=False)
    return engine


def virtual_engine(tmp_path: Path, **config) -> Engine:
    cfg = EngineConfig(phrase_bars=config.pop("phrase_bars", 4), out_dir=tmp_path / "out", **config)
    return Engine(cfg, sink=MidiFileSink(tmp_path / "live.mid"), clock="internal")


# ------------------------------------------------------------------ a WAV through the engine
def test_calm_then_agitated_audio_moves_the_emotion_then_the_music(wav, tmp_path):
    from kelly.emotion.audio import log_mel_frames

    out = tmp_path / "take.mid"
    engine = run_wav(wav, out)
    y, sr = sf.read(wav, dtype="float32")
    offline = log_mel_frames(y, sr).shape[0]
    latency_frames = math.ceil(engine.latency_samples / SR * 22050 / 512)
    # every frame the file holds is analysed (the last few wait in the lookahead), none dropped
    assert offline - latency_frames - 2 <= engine.frames_done <= offline
    assert engine.ring.dropped == 0
    assert engine.block_times.count == math.ceil(len(y) / 512)
    assert engine.frames_heard > 0.8 * engine.frames_done
    # the fused emotion: arousal clearly higher in the agitated half
    first = [a for t, v, a, d, c, lab in engine.trace if 1.0 <= t <= 5.5]
    second = [a for t, v, a, d, c, lab in engine.trace if t >= 7.5]
    assert len(first) > 20 and len(second) > 20
    assert np.median(second) > np.median(first) + 0.3
    # the music follows: a phrase composed after the change, for an emotion unlike the calm half's
    phrases = engine.live.phrases
    before = [p for p in phrases[1:] if engine.scheduler.stats.phrase_starts[phrases.index(p)][1] < 6.0]
    after = [p for p, (_, t, _, _) in zip(phrases, engine.scheduler.stats.phrase_starts) if t > 6.0]
    assert before and after
    assert max(p.emotion.arousal for p in after) > max(p.emotion.arousal for p in before) + 0.25
    assert {p.emotion.label for p in after} - {p.emotion.label for p in before}
    assert max(p.tempo_bpm for p in after) > max(p.tempo_bpm for p in before)
    # and every note in the file is paired
    ons, offs = note_pairs_ok(out)
    assert ons == offs > 50


def test_the_same_wav_and_seed_give_the_same_midi_byte_for_byte(wav, tmp_path):
    run_wav(wav, tmp_path / "a.mid", seed=3)
    run_wav(wav, tmp_path / "b.mid", seed=3)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()


def test_nan_blocks_are_counted_and_never_reach_the_analysis(tmp_path):
    engine = virtual_engine(tmp_path)
    rng = np.random.default_rng(1)
    with engine:
        for i in range(200):
            block = (rng.standard_normal(512) * 0.3).astype(np.float32)
            if i % 10 == 3:
                block[100:140] = np.nan
            if i % 10 == 7:
                block[5] = np.inf
            engine.process_block(block)
            engine.tick(engine.samples / SR)
        engine.wait_idle()
        state = engine.get_state()
    assert engine.frontend.bad_blocks == 40
    assert engine.frames_done > 80  # 2.1 s of audio at 43 frames a second
    assert all(math.isfinite(x) for row in engine.trace for x in row[1:5])
    assert state.blocks == 200 and state.inferences == engine.frames_done
    assert math.isfinite(state.emotion.arousal)


# ------------------------------------------------------------------ explicit emotion and words
def test_set_emotion_between_runs_starts_a_phrase_at_the_next_bar(tmp_path):
    engine = virtual_engine(tmp_path, phrase_bars=8)
    with engine:
        engine.run(realtime=False, seconds=2.5)
        assert engine.now_s == pytest.approx(2.5, abs=0.02)
        bar_s = 4 * 60.0 / engine.scheduler.tempo_bpm
        engine.set_emotion(0.8, 0.9, 0.7)
        engine.run(realtime=False, seconds=2.5 + 2 * bar_s)
        starts = engine.scheduler.stats.phrase_starts
        assert len(starts) == 2
        bar, at, label, why = starts[-1]
        assert why.startswith("asked")
        assert 2.5 <= at < 2.5 + bar_s + 1e-6        # the next bar line
        state = engine.get_state()
        assert label == state.emotion.label == engine.live.phrase.emotion.label
        assert engine.live.phrase.emotion.valence == pytest.approx(0.8)
        # with nothing else asked, the phrase goes on
        engine.run(realtime=False, seconds=engine.now_s + bar_s)
        assert len(engine.scheduler.stats.phrase_starts) == 2
        engine.set_text("I am furious, I could scream with rage")
        t_text = engine.now_s
        engine.run(realtime=False, seconds=engine.now_s + 2 * 4 * 60.0 / engine.scheduler.tempo_bpm)
        bar, at, label, why = engine.scheduler.stats.phrase_starts[-1]
        assert why.startswith("asked (text:")
        assert at >= t_text
    assert note_pairs_ok(tmp_path / "live.mid")[0] > 0


def test_fusion_weights_explicit_and_text_by_confidence(tmp_path):
    engine = virtual_engine(tmp_path)
    message = engine.set_text("I feel so sad and lonely, I miss her")
    assert message.startswith("read as")
    text = engine.get_state().sources["text"]
    assert 0 < text.confidence < 1
    assert engine.get_state().emotion.valence == pytest.approx(text.valence, abs=1e-6)  # text alone
    engine.set_emotion(0.9, 0.8, 0.6)
    state = engine.get_state()
    ex = state.sources["explicit"]
    assert ex.confidence == 1.0
    w = text.confidence
    for field in ("valence", "arousal", "dominance"):
        want = (getattr(ex, field) + w * getattr(text, field)) / (1 + w)
        # the text reading fades with its half-life between the two calls: a busy machine sees ~1e-5 of it
        assert getattr(state.emotion, field) == pytest.approx(want, abs=1e-4)
    assert state.emotion.confidence == pytest.approx(1.0)
    with pytest.raises(InputError):
        engine.set_emotion(1.5, 0.5, 0.5)
    with pytest.raises(InputError):
        engine.set_emotion(0.0, float("nan"), 0.5)
    with pytest.raises(InputError):
        engine.set_emotion(0.0, True, 0.5)
    engine.stop()


# ------------------------------------------------------------------ biometrics
def test_a_rising_heart_rate_raises_the_arousal_and_a_dropout_is_reported(tmp_path):
    samples = [BioSample(t=0.5 * i, heart_rate=60 + 80 * i / 40) for i in range(41)]  # 60 -> 140 bpm over 20 s
    cfg = EngineConfig(phrase_bars=2, out_dir=tmp_path / "out")
    engine = Engine(cfg, sink=MidiFileSink(tmp_path / "bio.mid"), clock="internal", biometrics=samples)
    with engine:
        engine.run(realtime=False, seconds=20.0)
        assert engine.get_state().warnings == []
        assert "biometrics" in engine.get_state().sources
        early = [a for t, v, a, *_ in engine.trace if t <= 3.0]
        late = [a for t, v, a, *_ in engine.trace if t >= 17.0]
        assert np.mean(late) > np.mean(early) + 0.2
        assert engine.fused_state().arousal > 0.6
        phrases = engine.live.phrases
        assert phrases[-1].emotion.arousal > phrases[1].emotion.arousal
        engine.run(realtime=False, seconds=27.0)    # the sensor went quiet at 20 s
        state = engine.get_state()
    assert any("heart rate" in w and "no signal" in w for w in state.warnings), state.warnings
    assert "biometrics" not in state.sources


def test_implausible_biometric_values_are_warned_about_not_followed(tmp_path):
    samples = [BioSample(t=float(i), heart_rate=70.0) for i in range(6)] + [BioSample(t=6.0, heart_rate=400.0)]
    engine = Engine(EngineConfig(out_dir=tmp_path), sink=None, clock="internal", biometrics=samples)
    engine.run(realtime=False, seconds=6.5)
    state = engine.get_state()
    assert any("implausible" in w for w in state.warnings), state.warnings
    assert state.sources["biometrics"].arousal < 0.6
    engine.stop()


# ------------------------------------------------------------------ models
@pytest.fixture
def models_dir(tmp_path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    return d


def test_load_model_reads_a_copy_inside_the_models_folder(tmp_path, models_dir):
    shutil.copy(SHIPPED / "harmonypredictor.npz", models_dir / "harmonypredictor-v2.npz")
    engine = Engine(EngineConfig(models_dir=str(models_dir), out_dir=tmp_path), clock="internal")
    with engine:
        seq = engine.get_state().seq
        assert engine.load_model("harmonypredictor-v2.npz") == "harmonypredictor"
        state = engine.get_state()
        assert state.models["harmonypredictor"].path == str(models_dir / "harmonypredictor-v2.npz")
        assert state.models["harmonypredictor"].live and state.seq > seq
        # the absolute path of a file in the folder is accepted too
        assert engine.load_model(str(models_dir / "harmonypredictor-v2.npz")) == "harmonypredictor"
        assert engine._infer_proc.status()["models"]["harmonypredictor"]["path"].endswith("harmonypredictor-v2.npz")


def test_load_model_reads_an_rtneural_json_file(tmp_path, models_dir):
    from kelly.ml.convert import spec_state_dict_to_rtneural
    from kelly.ml.export import load_weights, rtneural_text
    from kelly.ml.specs import SPECS

    state = load_weights().states["groovepredictor"]
    (models_dir / "groovepredictor.json").write_text(rtneural_text(spec_state_dict_to_rtneural(
        SPECS["groovepredictor"], state)))
    engine = Engine(EngineConfig(models_dir=str(models_dir), out_dir=tmp_path), clock="internal")
    assert engine.load_model("groovepredictor.json") == "groovepredictor"
    assert engine.get_state().models["groovepredictor"].path.endswith("groovepredictor.json")
    engine.stop()


def test_load_model_refuses_anything_outside_the_folder_or_broken(tmp_path, models_dir):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(SHIPPED / "harmonypredictor.npz", outside / "harmonypredictor.npz")
    (models_dir / "harmonypredictor-link.npz").symlink_to(outside / "harmonypredictor.npz")
    shutil.copy(SHIPPED / "harmonypredictor.npz", models_dir / "mystery.npz")
    (models_dir / "harmonypredictor-bad.npz").write_bytes(b"PK\x03\x04 this is not a model" * 20)
    (models_dir / "dynamicsengine-bad.json").write_text('{"layers": [')
    engine = Engine(EngineConfig(models_dir=str(models_dir), out_dir=tmp_path, sync=True),
                    sink=MidiFileSink(tmp_path / "m.mid"), clock="internal")
    bad = {
        "../x.npz": "models folder",
        "../elsewhere/harmonypredictor.npz": "models folder",
        str(outside / "harmonypredictor.npz"): "models folder",
        "/etc/passwd": "models folder",
        "harmonypredictor-link.npz": "outside",
        "mystery.npz": "must start with one of",
        "harmonypredictor-missing.npz": "no model file",
        "harmonypredictor-bad.npz": "harmonypredictor-bad.npz",
        "dynamicsengine-bad.json": "dynamicsengine-bad.json",
        "..": "",
        "": "models folder",
    }
    with engine:
        before = engine.get_state().models
        for name, words in bad.items():
            with pytest.raises(KellyError) as info:
                engine.load_model(name)
            message = str(info.value)
            assert "\n" not in message and len(message) < 400
            assert words in message, (name, message)
        # nothing changed, and the engine still answers and plays
        assert engine.get_state().models == before
        engine.run(realtime=False, seconds=3.0)
        assert engine.scheduler.stats.bars >= 1
        assert engine.get_state().running


def test_set_model_enabled_switches_a_network_and_its_fallback(tmp_path):
    engine = Engine(EngineConfig(out_dir=tmp_path), clock="internal")
    with engine:
        assert engine.get_state().models["harmonypredictor"].live
        engine.set_model_enabled("harmonypredictor", False)
        m = engine.get_state().models["harmonypredictor"]
        assert not m.live and not m.enabled and "disabled" in m.status
        assert not engine._infer_proc.is_live("harmonypredictor")  # the inference thread's copy too
        engine.set_model_enabled("harmonypredictor", True)
        assert engine.get_state().models["harmonypredictor"].live
        with pytest.raises(KellyError, match="nope"):
            engine.set_model_enabled("nope", False)


# ------------------------------------------------------------------ GenerateMIDI, state, stop
def test_generate_midi_writes_the_bars_asked_for(tmp_path):
    engine = virtual_engine(tmp_path)
    engine.set_emotion(-0.5, 0.3, 0.3)
    path = Path(engine.generate_midi(4))
    assert path.parent == tmp_path / "out" and path.suffix == ".mid"
    song = read_midi(path)
    bars = [n.start // song.bar_ticks for t in song.tracks for n in t.notes]
    assert song.note_count() > 0 and max(bars) == 3
    second = Path(engine.generate_midi(4))
    assert second != path and path.exists()          # never overwrites an earlier take
    for bars_ in (0, -1, 10**6, True, 2.5, "4"):
        with pytest.raises(InputError):
            engine.generate_midi(bars_)
    engine.stop()


def test_state_validates_and_stop_is_idempotent(wav, tmp_path):
    out = tmp_path / "s.mid"
    cfg = EngineConfig(sr=SR, sync=True, phrase_bars=2)
    engine = Engine(cfg, sink=MidiFileSink(out), clock="audio")
    engine.set_text("calm and content")
    with engine:
        engine.run(WavBlockSource(wav, cfg.block), realtime=False, seconds=4.0)
        state = engine.get_state()
        EngineState.model_validate(state.model_dump())
        EngineState.model_validate_json(state.model_dump_json())
        assert state.running and state.clock == "audio" and state.playing
        assert state.time_s == pytest.approx(4.0, abs=0.02) and state.bar >= 1
        assert state.blocks == engine.block_times.count > 0 and state.latency_samples > 0
        assert set(state.sources) == {"audio", "text"}
        assert state.midi_out and "s.mid" in state.midi_out
    engine.stop()
    engine.stop()
    after = engine.get_state()
    assert not after.running and after.notes_sounding == 0
    EngineState.model_validate(after.model_dump())
    ons, offs = note_pairs_ok(out)
    assert ons == offs > 0


def test_stop_without_start_still_writes_the_file(tmp_path):
    engine = virtual_engine(tmp_path)
    engine.tick(0.5)
    engine.tick(1.0)
    engine.stop()
    assert (tmp_path / "live.mid").exists()
    note_pairs_ok(tmp_path / "live.mid")


def test_bad_config_is_refused():
    for kwargs in ({"block": 0}, {"sr": 1}, {"alpha": 0.0}, {"alpha": float("nan")}, {"seed": -1},
                   {"complexity": 2.0}, {"lookahead": -5}):
        with pytest.raises(InputError):
            Engine(EngineConfig(**kwargs))
    with pytest.raises(InputError):
        Engine(EngineConfig(), clock="external")
    with pytest.raises(InputError):
        Engine(EngineConfig(), clock="sundial")


# ------------------------------------------------------------------ through the socket
def test_the_socket_drives_a_running_engine_until_shutdown(tmp_path):
    from kelly.ipc.client import KellyClient
    from kelly.ipc.server import EngineServer

    out = tmp_path / "sock.mid"
    engine = Engine(EngineConfig(phrase_bars=2, out_dir=tmp_path / "gen"), sink=MidiFileSink(out), clock="internal")
    with tempfile.TemporaryDirectory(prefix="keng-") as d:
        server = EngineServer(engine, Path(d) / "engine.sock").start()
        errors: list[BaseException] = []

        def drive():
            try:
                with engine:
                    engine.run(realtime=True, seconds=60.0)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        runner = threading.Thread(target=drive)
        runner.start()
        try:
            with KellyClient(server.path, timeout=5.0) as client:
                deadline = time.monotonic() + 10.0
                while not (client.state().running and engine.scheduler.stats.bars) and time.monotonic() < deadline:
                    time.sleep(0.02)
                client.set_emotion(0.7, 0.9, 0.6)
                state = client.state()
                assert state.running and state.clock == "internal"
                assert state.sources["explicit"].valence == pytest.approx(0.7)
                assert state.emotion.label == engine.fused_state().label
                stream = client.subscribe(interval_ms=50)
                first, second = next(stream), next(stream)
                stream.close()
                assert second.time_s > first.time_s and second.emotion.valence == pytest.approx(
                    state.emotion.valence)
                path = Path(client.generate(2))
                assert path.exists() and path.parent == tmp_path / "gen"
                assert read_midi(path).note_count() > 0
                client.shutdown()
            runner.join(timeout=5.0)
            assert not runner.is_alive(), "shutdown did not end run()"
            assert engine.now_s < 55.0                  # shutdown ended it, not its 60 seconds
        finally:
            engine.shutdown()
            runner.join(timeout=5.0)
            server.stop()
    assert errors == []
    assert out.exists()
    note_pairs_ok(out)
    assert not engine.running


def test_the_internal_clock_starts_when_the_engine_starts(tmp_path):
    """Time spent between building the engine and running it (loading, opening the socket) is not music time."""
    engine = virtual_engine(tmp_path)
    time.sleep(0.4)
    with engine:
        t0 = time.monotonic()
        engine.run(realtime=True, seconds=0.5)
        wall = time.monotonic() - t0
    assert 0.45 <= wall < 3.0
    assert engine.now_s == pytest.approx(0.5, abs=0.1)
    events = []
    for track in mido.MidiFile(tmp_path / "live.mid").tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "note_on":
                events.append(now)
    assert min(events) == 0                               # bar 1 on the grid, not a burst of late notes


def test_a_shutdown_while_starting_is_not_lost(tmp_path):
    """Ctrl-C or kelly ctl shutdown between building the engine and its run ends the run at once."""
    engine = virtual_engine(tmp_path)
    with engine:
        engine.shutdown()
        t0 = time.monotonic()
        engine.run(realtime=True, seconds=30.0)
        assert time.monotonic() - t0 < 10.0 and engine.now_s < 1.0
    assert (tmp_path / "live.mid").exists()


def test_an_external_clock_sets_play_stop_and_tempo(tmp_path):
    from kelly.realtime.clock import CLOCK, START, STOP, ClockFollower

    follower = ClockFollower()
    out = tmp_path / "daw.mid"
    engine = Engine(EngineConfig(phrase_bars=2, out_dir=tmp_path), sink=MidiFileSink(out), clock="external",
                    follower=follower)
    engine._virtual = True                         # engine time is what tick() is given, as the clock's stamps
    step = 60.0 / 100.0 / 24                       # the DAW plays at 100 BPM
    t = 0.0
    with engine:
        for _ in range(24):                        # clock running, transport stopped
            t += step
            follower.feed([CLOCK], t)
            engine.tick(t)
        assert not engine.get_state().playing and engine.tracker.note_ons == 0
        follower.feed([START], t)
        for i in range(24 * 4 * 5 + 12):           # five bars and a half beat; from bar 3 on at 130 BPM
            t += step if i < 24 * 8 else 60.0 / 130.0 / 24
            follower.feed([CLOCK], t)
            engine.tick(t)
        state = engine.get_state()
        assert state.playing and state.bar == 6 and state.notes_sounding > 0
        assert state.tempo_bpm == pytest.approx(130.0, abs=0.5)
        follower.feed([STOP], t)
        engine.tick(t)
        assert not engine.get_state().playing and engine.get_state().notes_sounding == 0
        played = engine.tracker.note_ons
        for _ in range(48):
            t += step
            follower.feed([CLOCK], t)
            engine.tick(t)
        assert engine.tracker.note_ons == played
    note_pairs_ok(out)
    # the file's tempo map follows the DAW, so its bars line up with the music's
    mid = mido.MidiFile(out)
    tempos = [(now, round(mido.tempo2bpm(m.tempo), 1)) for now, m in _timed(mid.tracks[0]) if m.type == "set_tempo"]
    assert [bpm for _, bpm in tempos[-2:]] == pytest.approx([100.0, 130.0], abs=0.5), tempos
    assert tempos[-2][0] == 600                   # bar 1 begins with the first clock after Start (0.625 s)


def _timed(track):
    now = 0
    for msg in track:
        now += msg.time
        yield now, msg


# ------------------------------------------------------------------ the int8 path
def test_the_int8_path_reads_the_same_audio_as_the_numpy_path(wav, tmp_path):
    numpy_run = run_wav(wav, tmp_path / "numpy.mid")
    int8_run = run_wav(wav, tmp_path / "int8.mid", runtime="int8")
    assert numpy_run.runtime_note == "numpy"
    assert int8_run.runtime_note.startswith("int8")
    assert int8_run.frames_done == numpy_run.frames_done
    a = np.array([row[1:4] for row in numpy_run.trace])
    b = np.array([row[1:4] for row in int8_run.trace])
    n = min(len(a), len(b))
    # int8 weights move the smoothed V/A/D by hundredths, not by a quadrant
    assert np.median(np.abs(a[:n] - b[:n])) < 0.05
    note_pairs_ok(tmp_path / "int8.mid")


def test_the_int8_path_steps_back_to_numpy_while_a_network_is_off(tmp_path):
    engine = virtual_engine(tmp_path, runtime="int8")
    with engine:
        assert engine.runtime_note.startswith("int8")
        engine.set_model_enabled("harmonypredictor", False)
        assert engine.runtime_note.startswith("numpy: the int8 path is off because")
        assert "HarmonyPredictor" in engine.runtime_note
        engine.set_model_enabled("harmonypredictor", True)
        assert engine.runtime_note.startswith("int8")
