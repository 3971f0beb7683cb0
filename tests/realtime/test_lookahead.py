"""kelly.realtime.lookahead: the delay line."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.realtime.lookahead import LookaheadBuffer


def run(buf: LookaheadBuffer, x: np.ndarray, sizes) -> np.ndarray:
    """Feed x through buf in blocks of the given sizes (cycled), returning the output joined."""
    parts, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        parts.append(buf.process(x[i:i + n]).copy())
        i += n
        k += 1
    return np.concatenate(parts)


def delayed(x: np.ndarray, d: int) -> np.ndarray:
    y = np.zeros_like(x)
    y[d:] = x[:len(x) - d]
    return y


@pytest.mark.parametrize("lookahead", [0, 1, 100, 511, 512, 513, 4000])
def test_impulses_come_out_exactly_lookahead_samples_later(lookahead):
    x = np.zeros(10_000, np.float32)
    x[[0, 1, 777, 5000, 9999]] = [1, 2, 3, 4, 5]
    buf = LookaheadBuffer(lookahead, 512)
    assert buf.latency_samples == lookahead
    y = run(buf, x, [512])
    assert np.array_equal(y, delayed(x, lookahead))
    if lookahead < len(x):
        assert y[lookahead] == 1


@pytest.mark.parametrize("lookahead", [0, 3, 333, 1024, 2500])
def test_random_signal_in_blocks_of_varying_size(lookahead):
    rng = np.random.default_rng(lookahead)
    x = rng.standard_normal(30_000).astype(np.float32)
    sizes = list(rng.integers(0, 513, size=97))  # 0 .. block, zero-length blocks included
    buf = LookaheadBuffer(lookahead, 512)
    y = run(buf, x, sizes)
    assert np.array_equal(y, delayed(x, lookahead))


def test_several_channels_and_out_argument():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5000, 3)).astype(np.float32)
    buf = LookaheadBuffer(700, 256, channels=3)
    out = np.empty((256, 3), np.float32)
    parts = []
    for i in range(0, len(x), 256):
        blk = x[i:i + 256]
        res = buf.process(blk, out=out[:len(blk)])
        assert res.base is out or res is out
        parts.append(res.copy())
    assert np.array_equal(np.concatenate(parts), delayed(x, 700))


def test_reset_and_float64_input_cast():
    buf = LookaheadBuffer(2, 4)
    buf.process(np.ones(4))
    buf.reset()
    assert buf.process(np.array([7.0, 8.0, 9.0])).tolist() == [0.0, 0.0, 7.0]
    assert buf.process(np.array([1.0])).dtype == np.float32


def test_bad_blocks_and_arguments():
    buf = LookaheadBuffer(10, 64)
    with pytest.raises(InputError, match="at most 64"):
        buf.process(np.zeros(65, np.float32))
    with pytest.raises(InputError, match="shape"):
        buf.process(np.zeros((64, 2), np.float32))
    with pytest.raises(InputError, match="floating"):
        buf.process(np.zeros(64, np.int16))
    with pytest.raises(InputError, match="numpy array"):
        buf.process([0.0] * 8)
    with pytest.raises(InputError, match="out must"):
        buf.process(np.zeros(8, np.float32), out=np.zeros(9, np.float32))
    for args in [(-1, 64), (10, 0), (10, 64, 0), (1.5, 64)]:
        with pytest.raises(InputError):
            LookaheadBuffer(*args)
    with pytest.raises(InputError):
        LookaheadBuffer(1, 4, dtype=np.int32)
