"""kelly.realtime.frontend: the streaming mel front-end gives the frames of log_mel_frames."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("librosa")
soxr = pytest.importorskip("soxr")

from kelly.emotion.audio import HOP_LENGTH, N_FFT, TARGET_SR, log_mel_frames, resample  # noqa: E402
from kelly.errors import InputError  # noqa: E402
from kelly.realtime.frontend import MelFrontEnd, budget_s  # noqa: E402


def signal(sr: int, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Tones, a chirp, a noise band sweeping upwards, a silence and a click."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 1318.5 * t)
    y += 0.2 * np.sin(2 * np.pi * (80.0 * t + 400.0 * t ** 2))  # chirp 80 Hz -> 4.9 kHz over 6 s
    # noise low-passed by a moving average (about sr / 16 wide), ring-modulated by a rising carrier:
    # a band of noise sweeping from 200 Hz to about 8 kHz
    width = 16
    c = np.cumsum(rng.standard_normal(n + width))
    band = (c[width:] - c[:-width]) / np.sqrt(width)
    f0, f1 = 200.0, min(8000.0, 0.35 * sr)
    carrier = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds)))
    y += 0.15 * band * carrier * (0.5 + 0.5 * np.sin(2 * np.pi * 0.4 * t))
    y[int(2.0 * sr):int(2.4 * sr)] = 0.0
    y[int(4.0 * sr):int(4.0 * sr) + sr // 100] += 0.8  # a 10 ms step: a broadband click
    return y.astype(np.float32)


_SIGNALS: dict[int, np.ndarray] = {}


def sig(sr: int) -> np.ndarray:
    if sr not in _SIGNALS:
        _SIGNALS[sr] = signal(sr)
    return _SIGNALS[sr]


def stream(fe: MelFrontEnd, y: np.ndarray, sizes) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """All frames of y fed in blocks of the given sizes (cycled), flushed; and per call
    (samples in so far, frame_index, n)."""
    out, calls, i, k = [], [], 0, 0
    while i < len(y):
        m = sizes[k % len(sizes)]
        n = fe.process(y[i:i + m])
        i += m
        k += 1
        calls.append((fe.samples_in, fe.frame_index, n))
        out.append(fe.frames[:n].copy())
    while n := fe.flush():
        out.append(fe.frames[:n].copy())
    return np.concatenate(out), calls


def inside(n_frames: int, length22: int) -> slice:
    """Frames whose whole window lies inside the signal (no centring zeros)."""
    first = math.ceil((N_FFT // 2) / HOP_LENGTH)
    last = (length22 - N_FFT // 2) // HOP_LENGTH  # frame k ends at k*hop + n_fft/2 <= length22
    return slice(first, min(n_frames, last + 1))


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize("block", [512, 333])
def test_streamed_frames_equal_the_whole_signal_frames(sr, block):
    y = sig(sr)
    want = log_mel_frames(y, sr)
    fe = MelFrontEnd(sr, block)
    got, calls = stream(fe, y, [block])
    assert got.shape == want.shape and got.dtype == np.float32
    diff = np.abs(got - want).max(axis=1)
    length22 = math.ceil(len(y) * TARGET_SR / sr)
    # the brief asks for 1e-3 on frames whose windows lie inside the signal; we get float32 rounding (~1e-7)
    assert diff[inside(len(want), length22)].max() < 1e-5
    assert diff.max() < 1e-5  # the edge frames agree too: flush ends the stream as the whole signal ends
    # frame indices run on without gaps
    expect = 0
    for _, index, n in calls:
        assert index == expect
        expect += n
    assert fe.frames_done == len(want)


def test_blocks_of_varying_size_and_empty_blocks():
    y = sig(48000)
    rng = np.random.default_rng(3)
    sizes = [int(s) for s in rng.integers(0, 513, size=101)]
    got, _ = stream(MelFrontEnd(48000, 512), y, sizes)
    np.testing.assert_allclose(got, log_mel_frames(y, 48000), atol=1e-5, rtol=0)


def test_float64_blocks_are_cast():
    y = sig(22050)[:22050 * 2]
    got, _ = stream(MelFrontEnd(22050, 512), y.astype(np.float64), [512])
    np.testing.assert_allclose(got, log_mel_frames(y, 22050), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sr", [44100, 48000, 8000])
def test_soxr_stream_equals_whole_signal_resampling(sr):
    """The contract resamples the whole signal (librosa soxr_hq); the stream gives the same samples."""
    y = sig(sr)[: sr * 3]
    whole = resample(y, sr, TARGET_SR)
    rs = soxr.ResampleStream(sr, TARGET_SR, 1, dtype="float32", quality="HQ")
    parts = [rs.resample_chunk(y[i:i + 333]) for i in range(0, len(y), 333)]
    parts.append(rs.resample_chunk(np.zeros(0, np.float32), last=True))
    streamed = np.concatenate(parts)[: len(whole)]
    assert abs(len(np.concatenate(parts)) - len(whole)) <= 1
    edge = 64
    np.testing.assert_allclose(streamed[edge:-edge], whole[edge:-edge], atol=1e-6, rtol=0)


@pytest.mark.parametrize("sr, block", [(22050, 512), (48000, 512), (44100, 333), (96000, 1024)])
def test_latency_samples_bounds_the_age_of_every_frame(sr, block):
    y = sig(sr)
    fe = MelFrontEnd(sr, block)
    _, calls = stream(fe, y, [block])
    ages = [n_in - k * HOP_LENGTH * sr / TARGET_SR
            for n_in, index, n in calls for k in range(index, index + n)]
    assert max(ages) <= fe.latency_samples
    assert max(ages) > fe.latency_samples - block  # the bound is tight to a block
    assert fe.latency_samples >= N_FFT // 2 * sr / TARGET_SR  # at least the right half of a window
    assert fe.latency_median_samples <= fe.latency_samples
    if sr == TARGET_SR and block == HOP_LENGTH:
        assert fe.latency_samples == N_FFT // 2


def test_bad_samples_are_zeroed_and_counted():
    sr = 22050
    y = sig(sr)[: sr * 2].copy()
    broken = y.copy()
    broken[5000] = np.nan
    broken[5001] = np.inf
    broken[9000] = -np.inf
    broken[20000] = 3e7  # absurd: far beyond full scale
    clean = y.copy()
    clean[[5000, 5001, 9000, 20000]] = 0.0
    fe = MelFrontEnd(sr, 512)
    kept = broken.copy()
    got, _ = stream(fe, broken, [512])
    assert np.array_equal(broken, kept, equal_nan=True)  # the caller's blocks are not modified
    assert np.isfinite(got).all()
    assert fe.bad_samples == 4 and fe.bad_blocks == 3
    np.testing.assert_allclose(got, log_mel_frames(clean, sr), atol=1e-5, rtol=0)
    fe.reset()
    assert fe.bad_samples == 0 and fe.frames_done == 0


def test_wrong_blocks_raise_input_error():
    fe = MelFrontEnd(48000, 512)
    with pytest.raises(InputError, match="at most 512"):
        fe.process(np.zeros(513, np.float32))
    with pytest.raises(InputError, match="mono"):
        fe.process(np.zeros((512, 2), np.float32))
    with pytest.raises(InputError, match="floating-point"):
        fe.process(np.zeros(512, np.int16))
    with pytest.raises(InputError, match="numpy array"):
        fe.process([0.0] * 512)
    assert fe.samples_in == 0  # nothing was taken
    fe.process(np.zeros(512, np.float32)[::2])  # a strided view is fine
    fe.flush()
    with pytest.raises(InputError, match="reset"):
        fe.process(np.zeros(512, np.float32))
    fe.reset()
    assert fe.process(np.zeros(512, np.float32)) == 0


@pytest.mark.parametrize("args", [(3999, 512), (384001, 512), (48000, 0), (48000, 1 << 20), ("48000", 512),
                                  (48000, 512.0)])
def test_bad_construction(args):
    with pytest.raises(InputError):
        MelFrontEnd(*args)


def test_reset_starts_a_new_identical_stream():
    y = sig(44100)[:44100 * 2]
    fe = MelFrontEnd(44100, 512)
    first, _ = stream(fe, y, [512])
    fe.reset()
    second, _ = stream(fe, y, [512])
    assert np.array_equal(first, second)


def test_frames_waiting_beyond_max_frames_come_with_the_next_calls():
    y = sig(22050)[:22050 * 3]
    fe = MelFrontEnd(22050, 4096)  # 4096-sample blocks complete 8 frames each
    fe.max_frames = 3  # fewer rows than a block completes: the rest wait
    got, calls = stream(fe, y, [4096])
    assert any(n == 3 for _, _, n in calls)
    np.testing.assert_allclose(got, log_mel_frames(y, 22050), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sr", [4000, 384000])
def test_extreme_rates(sr):
    y = signal(sr, seconds=1.0)
    got, _ = stream(MelFrontEnd(sr, 512), y, [512])
    np.testing.assert_allclose(got, log_mel_frames(y, sr), atol=1e-5, rtol=0)


def test_process_allocates_little():
    sr, block = 48000, 512
    y = sig(sr)
    fe = MelFrontEnd(sr, block)
    blocks = [y[i:i + block] for i in range(0, len(y) - block, block)]
    for b in blocks[:100]:
        fe.process(b)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for b in blocks[100:]:
            fe.process(b)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2048, f"grew by {after - before} bytes over {len(blocks) - 100} blocks"
    # the resampler's output (< 4 kB) and numpy's FFT scratch are all a block holds at once
    assert peak - before < 96 * 1024


def test_window_and_bank_are_the_contract():
    scipy_signal = pytest.importorskip("scipy.signal")
    import librosa

    fe = MelFrontEnd(22050, 512)
    np.testing.assert_allclose(fe._window, scipy_signal.get_window("hann", N_FFT, fftbins=True), atol=1e-15, rtol=0)
    bank = librosa.filters.mel(sr=22050, n_fft=N_FFT, n_mels=128, fmin=30.0, fmax=11025.0, htk=False, norm=None)
    assert np.array_equal(fe._bank_t.T, bank)
    assert fe._scale == np.float32((2.0 / 1024.0) ** 2)
    assert fe.frames.shape == (fe.max_frames, 128) and fe.frames.dtype == np.float32


def test_budget_s():
    assert budget_s(48000, 512) == pytest.approx(0.0106667, rel=1e-4)
    assert budget_s(22050, 512) == 512 / 22050
    with pytest.raises(InputError):
        budget_s(1000, 512)
    with pytest.raises(InputError):
        budget_s(48000, 0)
