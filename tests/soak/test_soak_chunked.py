"""The inference thread's chunked path gives the frame-by-frame path's numbers (float32 rounding apart)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kelly.emotion.audio import RECOGNIZER_BURN_IN, RECOGNIZER_WINDOW
from kelly.ml.processor import MultiModelProcessor
from kelly.realtime.chunked import MAX_CHUNK, ChunkedPipeline
from kelly.realtime.engine import SILENT_FRAME, Engine, EngineConfig

N = 1100  # four recognizer windows and a bit: three resets inside, each followed by its burn-in


def _frames(n: int = N) -> np.ndarray:
    """Mel-like frames in [0, 0.95], with stretches of silence (below SILENT_FRAME) that the reading skips."""
    rng = np.random.default_rng(7)
    walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, (n, 128)), axis=0) * 0.2, 0.0, 0.95)
    walk[300:340] *= SILENT_FRAME * 0.5
    walk[700:705] = 0.0
    return walk.astype(np.float32)


def _by_frame(proc: MultiModelProcessor, frames: np.ndarray) -> list[np.ndarray]:
    outs = [[] for _ in range(5)]
    for i, f in enumerate(frames):
        if i % RECOGNIZER_WINDOW == 0:
            proc.reset()
        for k, part in enumerate(proc.pipeline_step(f)):
            outs[k].append(np.array(part, copy=True))
    return [np.array(o) for o in outs]


def _by_chunk(proc: MultiModelProcessor, frames: np.ndarray, sizes) -> list[np.ndarray]:
    pipe = ChunkedPipeline(proc)
    outs = [[] for _ in range(5)]
    i, s = 0, 0
    while i < len(frames):
        if i % RECOGNIZER_WINDOW == 0:
            proc.reset()
        m = min(sizes[s % len(sizes)], RECOGNIZER_WINDOW - i % RECOGNIZER_WINDOW, len(frames) - i)
        s += 1
        parts = pipe.run(frames[i:i + m]) if m > 1 else [p[None, :] for p in proc.pipeline_step(frames[i])]
        for k, part in enumerate(parts):
            outs[k].append(np.array(part, copy=True))
        i += m
    return [np.concatenate(o) for o in outs]


@pytest.mark.parametrize("sizes", [(MAX_CHUNK,), (1, 7, 100, 3, 128, 2)])
def test_chunks_equal_frames_for_all_five_networks(sizes):
    frames = _frames()
    ref = _by_frame(MultiModelProcessor(), frames)
    got = _by_chunk(MultiModelProcessor(), frames, sizes)
    for name, a, b in zip(("embedding", "notes", "chords", "groove", "expression"), ref, got):
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() < 1e-4, (name, float(np.abs(a - b).max()))
    # and the networks really were live and moving (not a constant the two paths would share anyway)
    assert np.ptp(ref[0], axis=0).max() > 0.05


def test_chunks_equal_frames_with_networks_on_their_fallbacks():
    frames = _frames(300)
    a = MultiModelProcessor(enabled={"harmonypredictor": False, "melodytransformer": False})
    b = MultiModelProcessor(enabled={"harmonypredictor": False, "melodytransformer": False})
    ref, got = _by_frame(a, frames), _by_chunk(b, frames, (50,))
    for x, y in zip(ref, got):
        assert np.abs(x - y).max() < 1e-4


def test_chunks_leave_the_lstm_state_where_frames_would():
    """A chunk then single steps continues the phrase exactly as single steps all along."""
    frames = _frames(80)
    a, b = MultiModelProcessor(), MultiModelProcessor()
    ref = _by_frame(a, frames)[0]
    ChunkedPipeline(b).run(frames[:60])
    tail = np.array([np.array(b.pipeline_step(f)[0]) for f in frames[60:]])
    assert np.abs(tail - ref[60:]).max() < 1e-4


def test_the_engine_reads_the_same_emotion_from_chunks_as_from_single_frames(tmp_path):
    """Across three recognizer resets, burn-in and silence: same frames heard, same smoothed reading."""
    frames = _frames()
    one = Engine(EngineConfig(out_dir=tmp_path / "a"))
    many = Engine(EngineConfig(out_dir=tmp_path / "b", ring_frames=2048))
    with one:
        for i, f in enumerate(frames):
            assert one.ring.push(f, i)
            one.wait_idle()  # one frame in the ring at a time: the frame-by-frame path
    with many:
        for i, f in enumerate(frames):
            assert many.ring.push(f, i)  # all at once: the inference thread takes chunks
        many.wait_idle()
    assert one.frames_done == many.frames_done == N
    windows = [range(w, min(N, w + RECOGNIZER_WINDOW)) for w in range(0, N, RECOGNIZER_WINDOW)]
    settled = sum(1 for w in windows for i in w if i - w.start >= RECOGNIZER_BURN_IN
                  and frames[i].max() >= SILENT_FRAME)
    assert one.frames_heard == many.frames_heard == settled
    a, b = one._audio, many._audio
    assert a.time_s == b.time_s
    assert np.allclose([a.valence, a.arousal, a.dominance, a.confidence, a.intensity],
                       [b.valence, b.arousal, b.dominance, b.confidence, b.intensity], atol=1e-4)


def test_the_chunked_path_outruns_the_frame_by_frame_path():
    """The reason it exists: more frames a second than one step at a time (same process, same moment)."""
    frames = _frames(512)
    proc = MultiModelProcessor()
    pipe = ChunkedPipeline(proc)
    best_frame = best_chunk = 0.0
    for _ in range(3):  # best of three: a shared machine may pause either
        t0 = time.perf_counter()
        for f in frames:
            proc.pipeline_step(f)
        best_frame = max(best_frame, len(frames) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for i in range(0, len(frames), 128):
            pipe.run(frames[i:i + 128])
        best_chunk = max(best_chunk, len(frames) / (time.perf_counter() - t0))
    assert best_chunk > 1.3 * best_frame, (best_chunk, best_frame)
