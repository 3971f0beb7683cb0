"""The audio path in a process of its own: the shared ring, the engine with it, its failures and its clean-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kelly.cli import main
from kelly.errors import FileFormatError, InputError, KellyError
from kelly.realtime.audio_in import WavBlockSource
from kelly.realtime.audio_process import AudioProcess, AudioSourceSpec
from kelly.realtime.engine import Engine, EngineConfig
from kelly.realtime.frontend import MelFrontEnd
from kelly.realtime.midi_out import MidiFileSink
from kelly.realtime.ringbuffer import SharedSpscRing, SpscRing

SR = 48000
BLOCK = 512
ROOT = Path(__file__).resolve().parents[2]


def _tones(path: Path, seconds: float, sr: int = SR, nan_at: float | None = None) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) / 2).astype(np.float32)
    if nan_at is not None:
        x[int(nan_at * sr):] = np.nan
    sf.write(path, x, sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    return _tones(tmp_path_factory.mktemp("ap") / "tones.wav", 2.0)


def _engine(tmp: Path, source_path: Path, **spec_kw) -> tuple[Engine, AudioProcess]:
    proc = AudioProcess(AudioSourceSpec.of(WavBlockSource(source_path, BLOCK), **spec_kw))
    engine = Engine(EngineConfig(sr=SR, block=BLOCK, out_dir=tmp / "gen"), sink=MidiFileSink(tmp / "live.mid"),
                    clock="audio", audio_process=proc)
    return engine, proc


# ------------------------------------------------------------------ the shared ring
@pytest.mark.parametrize("fenced", [False, True])
def test_a_shared_ring_hands_rows_from_one_view_to_another_as_the_threaded_ring_does(fenced):
    """Two ring objects over one buffer (as the two processes have) behave as one SpscRing, wrap-around included."""
    lock = threading.Lock() if fenced else None
    size = SharedSpscRing.nbytes(8, 3)
    buf = bytearray(size + 64)
    producer = SharedSpscRing(memoryview(buf), 64, 8, 3, lock=lock, clear=True)
    consumer = SharedSpscRing(memoryview(buf), 64, 8, 3, lock=lock)
    plain = SpscRing(8, 3)
    rng = np.random.default_rng(0)
    out_a, out_b = np.zeros((5, 3), np.float32), np.zeros((5, 3), np.float32)
    st_a, st_b = np.zeros(5, np.int64), np.zeros(5, np.int64)
    stamp = 0
    for _ in range(40):
        for _ in range(int(rng.integers(0, 13))):
            row = rng.standard_normal(3).astype(np.float32)
            assert producer.push(row, stamp) == plain.push(row, stamp)
            stamp += 1
        n = consumer.pop_many(out_a, st_a)
        assert n == plain.pop_many(out_b, st_b)
        np.testing.assert_array_equal(out_a[:n], out_b[:n])
        np.testing.assert_array_equal(st_a[:n], st_b[:n])
    assert (producer.pushed, consumer.popped, consumer.dropped) == (plain.pushed, plain.popped, plain.dropped)
    assert plain.dropped > 0  # the test did fill the ring


def test_a_released_ring_keeps_its_figures_without_the_buffer():
    buf = bytearray(SharedSpscRing.nbytes(4, 2))
    ring = SharedSpscRing(memoryview(buf), 0, 4, 2, clear=True)
    ring.push(np.array([1.0, 2.0], np.float32), 7)
    ring.release()
    buf[:] = b"\x00" * len(buf)  # the other process's memory is gone: the ring still reads what it held
    out = np.zeros(2, np.float32)
    assert ring.pushed == 1 and ring.pop(out) == 7 and out.tolist() == [1.0, 2.0]


def test_a_buffer_too_small_or_misaligned_is_refused():
    with pytest.raises(InputError, match="too small or misaligned"):
        SharedSpscRing(memoryview(bytearray(100)), 0, 8, 3)
    with pytest.raises(InputError, match="too small or misaligned"):
        SharedSpscRing(memoryview(bytearray(SharedSpscRing.nbytes(8, 3) + 64)), 8, 8, 3)


# ------------------------------------------------------------------ the engine with an audio process
def test_an_engine_plays_a_file_through_its_audio_process_and_hears_every_frame(wav, tmp_path):
    """The child's clock, blocks and frames are the in-process path's for the same file; nothing is left behind."""
    engine, proc = _engine(tmp_path, wav)
    fe = MelFrontEnd(SR, BLOCK)
    blocks = list(WavBlockSource(wav, BLOCK))
    expected_frames = sum(fe.process(b) for b in blocks)
    assert os.stat(proc._path).st_mode & 0o777 == 0o600  # the shared memory is this user's only
    shared_file = proc._path
    with engine:
        assert proc.pid and proc.pid != os.getpid()
        assert not os.path.exists(shared_file)  # unlinked once both processes mapped it
        t0 = time.monotonic()
        engine.run()  # until the file ends, in real time
        took = time.monotonic() - t0
        engine.wait_idle()
        state = engine.get_state()
    assert 1.5 < took < 6.0  # paced by the wall clock, not as fast as possible
    assert engine.samples == len(blocks) * BLOCK and engine.now_s == pytest.approx(len(blocks) * BLOCK / SR)
    assert engine.block_times.count == len(blocks) == state.blocks
    assert engine.ring.pushed == expected_frames == engine.frames_done == state.inferences
    assert state.dropped_frames == 0 and engine.bad_blocks == 0
    # the engine's own process builds no front-end; the child's latency is the one reported
    assert engine.frontend is None and state.latency_samples == engine.latency_samples == fe.latency_samples > 0
    assert engine.scheduler.stats.bars >= 1  # the music ran on the audio process's clock
    assert "process of its own" in proc.describe()
    assert proc._proc.returncode == 0
    lates = proc.late_times()
    assert len(lates) == len(blocks) and np.all(lates > -0.001)


def test_an_audio_process_follows_a_daws_clock_too(wav, tmp_path):
    """--audio-in with --clock-in: the analysis in its own process, the music on the DAW's clock."""
    from kelly.realtime.clock import ClockFollower

    proc = AudioProcess(AudioSourceSpec.of(WavBlockSource(wav, BLOCK)))
    follower = ClockFollower()
    engine = Engine(EngineConfig(sr=SR, block=BLOCK, out_dir=tmp_path / "gen"), sink=MidiFileSink(tmp_path / "x.mid"),
                    clock="external", follower=follower, audio_process=proc)
    with engine:
        engine.run()
        engine.wait_idle()
    assert engine.block_times.count == len(list(WavBlockSource(wav, BLOCK))) and engine.frames_done > 0


def test_a_file_that_turns_bad_mid_stream_stops_the_run_with_its_own_error(tmp_path):
    bad = _tones(tmp_path / "nan.wav", 2.0, nan_at=0.5)
    engine, proc = _engine(tmp_path, bad)
    with engine:
        with pytest.raises(FileFormatError, match="nan.wav"):
            engine.run()
    assert proc._proc.returncode == 2


def test_an_audio_process_killed_stops_the_engine_with_a_clear_error(wav, tmp_path):
    engine, proc = _engine(tmp_path, wav, loop=True)
    with engine:
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(KellyError, match="audio process stopped unexpectedly"):
            engine.run()


def test_the_audio_process_goes_when_the_engine_is_killed(wav, tmp_path):
    """A kill -9 of the engine leaves neither the child recording nor its shared memory behind."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from kelly.realtime.audio_in import WavBlockSource
        from kelly.realtime.audio_process import AudioProcess, AudioSourceSpec
        from kelly.realtime.engine import Engine, EngineConfig
        proc = AudioProcess(AudioSourceSpec.of(WavBlockSource({str(wav)!r}, 512), loop=True))
        engine = Engine(EngineConfig(out_dir={str(tmp_path / 'gen')!r}), clock="audio", audio_process=proc)
        shared_file = proc._path
        engine.start()
        print(proc.pid, shared_file, flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        pid, shared_file = parent.stdout.readline().split()
        child = int(pid)
        os.kill(child, 0)  # alive while its engine is
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
        assert not os.path.exists(shared_file)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_what_an_audio_process_cannot_be_used_with_is_refused(wav, tmp_path):
    def proc():
        return AudioProcess(AudioSourceSpec.of(WavBlockSource(wav, BLOCK)))

    with pytest.raises(InputError, match="use the audio clock"):
        Engine(EngineConfig(out_dir=tmp_path), clock="internal", audio_process=proc())
    with pytest.raises(InputError, match="--fast"):
        Engine(EngineConfig(out_dir=tmp_path, sync=True), clock="audio", audio_process=proc())
    with pytest.raises(InputError, match="44100 Hz in blocks of 512"):
        Engine(EngineConfig(sr=44100, out_dir=tmp_path), clock="audio", audio_process=proc())
    engine = Engine(EngineConfig(out_dir=tmp_path), clock="audio", audio_process=proc())
    with pytest.raises(KellyError, match="its own process"):
        engine.process_block(np.zeros(BLOCK, np.float32))
    with pytest.raises(InputError, match="takes no blocks"):
        engine.run([np.zeros(BLOCK, np.float32)])
    engine.audio_process.stop()
    with pytest.raises(InputError, match="sound file or a sound card"):
        AudioSourceSpec.of([np.zeros(BLOCK)])


# ------------------------------------------------------------------ kelly engine
def test_kelly_engine_runs_a_file_in_real_time_through_an_audio_process(wav, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["engine", "--audio-in", str(wav), "--midi-out", str(tmp_path / "o.mid"), "--no-socket",
                 "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["audio_path"].startswith("a process of its own")
    assert r["block_times"]["blocks"] == len(list(WavBlockSource(wav, BLOCK))) and r["dropped_frames"] == 0
    assert 0 <= r["blocks_late_ms"]["p99"] <= r["blocks_late_ms"]["max"] < 1000
    out = capsys.readouterr().out
    assert "in a process of its own" in out and "ms after they were due" in out
    assert main(["engine", "--audio-in", str(wav), "--midi-out", str(tmp_path / "p.mid"), "--no-socket",
                 "--no-audio-process", "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["audio_path"] == "the engine's run loop" and r["blocks_late_ms"] is None


def test_kelly_engine_refuses_an_audio_process_it_cannot_have(wav, tmp_path, capsys):
    assert main(["engine", "--audio-in", str(wav), "--midi-out", str(tmp_path / "o.mid"), "--no-socket", "--fast",
                 "--audio-process"]) == 2
    assert "--audio-process plays --audio-in in real time" in capsys.readouterr().err
