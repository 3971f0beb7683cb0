"""kelly.realtime.ringbuffer: the lock-free single-producer, single-consumer ring."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.realtime.ringbuffer import SpscRing


def test_capacity_rounds_up_to_a_power_of_two():
    assert SpscRing(1000, 4).capacity == 1024
    assert SpscRing(1024, 4).capacity == 1024
    assert SpscRing(1, 4).capacity == 1
    for bad in (0, -1, 2.0, True, "8"):
        with pytest.raises(InputError):
            SpscRing(bad, 4)
    with pytest.raises(InputError):
        SpscRing(4, 0)
    with pytest.raises(InputError):
        SpscRing(4, 4, dtype=object)


def test_fifo_full_empty_and_counters():
    ring = SpscRing(4, 3)
    out = np.full(3, -1.0, np.float32)
    assert ring.pop(out) is None and (out == -1).all() and len(ring) == 0
    for k in range(4):
        assert ring.push(np.full(3, k, np.float32), stamp=100 + k)
    assert not ring.push(np.zeros(3, np.float32), stamp=9)
    assert ring.dropped == 1 and len(ring) == 4 and ring.pushed == 4
    for k in range(4):
        assert ring.pop(out) == 100 + k and (out == k).all()
    assert ring.pop(out) is None and ring.popped == 4 and len(ring) == 0
    assert "dropped=1" in repr(ring)


def test_pop_many_wraps_around():
    ring = SpscRing(8, 2, dtype=np.int64)
    out = np.zeros((8, 2), np.int64)
    stamps = np.zeros(8, np.int64)
    for k in range(6):
        ring.push(np.array([k, -k]), k)
    assert ring.pop_many(out[:4], stamps[:4]) == 4
    for k in range(6, 12):  # wraps past the end of storage
        ring.push(np.array([k, -k]), k)
    n = ring.pop_many(out, stamps)
    assert n == 8
    assert stamps[:n].tolist() == list(range(4, 12))
    assert out[:n, 0].tolist() == list(range(4, 12)) and out[:n, 1].tolist() == [-k for k in range(4, 12)]
    assert ring.pop_many(out) == 0


def _transfer(n: int, capacity: int, fence: bool | None) -> None:
    """Producer and consumer threads move n rows; each row holds its counter, stamp = counter."""
    width = 4
    ring = SpscRing(capacity, width, dtype=np.int64, fence=fence)
    failures: list[str] = []

    def produce():
        row = np.zeros(width, np.int64)
        for k in range(n):
            row[0] = k
            row[1:] = k * 7
            while not ring.push(row, k):
                time.sleep(0)

    def consume():
        out = np.zeros(width, np.int64)
        expect = 0
        while expect < n:
            stamp = ring.pop(out)
            if stamp is None:
                time.sleep(0)
                continue
            if stamp != expect or out[0] != expect or (out[1:] != expect * 7).any():
                failures.append(f"expected {expect}, got stamp {stamp}, row {out.tolist()}")
                return
            expect += 1

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often: more interleavings
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads), "transfer hung"
    assert not failures, failures[0]
    assert ring.pushed == ring.popped == n and len(ring) == 0
    assert ring.dropped > 0  # the small ring filled up (and the producer retried)


def test_two_threads_move_a_million_rows_without_loss_duplication_or_reordering():
    _transfer(1_000_000, 1024, fence=None)


def test_fenced_ring_is_correct_too():
    """The lock-fenced mode (what a free-threaded interpreter uses) under the same load."""
    _transfer(100_000, 256, fence=True)


@pytest.mark.parametrize("fence", [False, True])
def test_push_and_pop_allocate_nothing(fence):
    ring = SpscRing(1024, 512, fence=fence)
    row = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    out = np.empty(512, np.float32)
    for k in range(2000):  # warm up caches (int objects, numpy's internal buffers)
        ring.push(row, k)
        ring.pop(out)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for k in range(100_000):
            ring.push(row, k)
            ring.pop(out)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024, f"memory grew by {after - before} bytes over 100k push/pop pairs"
    assert peak - before < 4096, f"a push/pop pair held {peak - before} bytes at its peak"
    assert np.array_equal(out, row)
