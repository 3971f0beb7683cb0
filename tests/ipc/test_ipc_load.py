"""Load: 32 clients each asking 1,000 questions at once, every answer in order with its id."""

from __future__ import annotations

import threading
import time

import pytest

from kelly.contracts import GetState, Ok, SetEmotion, SetText, State
from kelly.ipc.client import KellyClient

CLIENTS = 32
REQUESTS = 1000


@pytest.mark.slow
def test_32_clients_by_1000_requests_all_answered_in_order(server, engine, sock_path):
    barrier = threading.Barrier(CLIENTS)
    results: dict[int, list] = {}
    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with KellyClient(sock_path, timeout=30.0) as c:
                barrier.wait(10)  # every connection open before anyone asks
                got = []
                for i in range(REQUESTS):
                    rid = f"{n}-{i}"
                    kind = i % 3
                    if kind == 0:
                        answer = c.request(GetState(id=rid))
                        ok = isinstance(answer, State)
                    elif kind == 1:
                        answer = c.request(SetEmotion(valence=(n % 10) / 10, arousal=0.5, id=rid))
                        ok = answer == Ok(id=rid)
                    else:
                        answer = c.request(SetText(text=f"client {n} says {i}", id=rid))
                        ok = isinstance(answer, Ok)
                    got.append((answer.id, ok))
                results[n] = got
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - start
    assert not failures, failures[:3]
    assert len(results) == CLIENTS
    for n, got in results.items():
        assert [rid for rid, _ in got] == [f"{n}-{i}" for i in range(REQUESTS)]
        assert all(ok for _, ok in got)
    changes = sum(1 for i in range(REQUESTS) if i % 3)  # SetEmotion and SetText each count one change
    assert engine.seq == CLIENTS * changes
    print(f"\n{CLIENTS * REQUESTS} requests from {CLIENTS} clients in {elapsed:.1f} s "
          f"({CLIENTS * REQUESTS / elapsed:,.0f}/s)")
