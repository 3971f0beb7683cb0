"""Load generators, run in a process of their own so that the engine's process holds only its own threads.

``python -m soak.clients socket PATH CLIENTS REQUESTS`` and
``python -m soak.clients app URL COMPOSITIONS UPLOADS MIDI_FILE`` print one JSON object:
what was sent, what came back, and how long each answer took.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np


def _latencies(xs: list[float]) -> dict:
    a = np.array(xs, dtype=float) * 1e3
    if not len(a):
        return {}
    return {"p50_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def socket_load(path: str, clients: int, requests: int) -> dict:
    """``clients`` connections each asking ``requests`` questions (GetState, SetEmotion, SetText by turns).

    An answer counts as right when it has the request's id, comes in order, and is the
    right kind (State for GetState, Ok otherwise).
    """
    from kelly.contracts import GetState, Ok, SetEmotion, SetText, State
    from kelly.ipc.client import KellyClient

    barrier = threading.Barrier(clients)
    right = [0] * clients
    wrong: list[str] = []
    lat: list[list[float]] = [[] for _ in range(clients)]

    def one(n: int) -> None:
        try:
            with KellyClient(path, timeout=60.0) as c:
                barrier.wait(30)
                for i in range(requests):
                    rid = f"{n}-{i}"
                    kind = i % 3
                    msg = GetState(id=rid) if kind == 0 else SetEmotion(valence=((n + i) % 21 - 10) / 10,
                                                                      arousal=0.5, id=rid) \
                        if kind == 1 else SetText(text=f"client {n} feels hopeful, request {i}", id=rid)
                    t = time.perf_counter()
                    answer = c.request(msg)
                    lat[n].append(time.perf_counter() - t)
                    ok = answer.id == rid and (isinstance(answer, State) if kind == 0 else isinstance(answer, Ok))
                    if ok:
                        right[n] += 1
                    elif len(wrong) < 10:
                        wrong.append(f"{rid}: {answer.type} {getattr(answer, 'message', '')}"[:200])
        except BaseException as exc:  # noqa: BLE001 - reported
            wrong.append(f"client {n}: {type(exc).__name__}: {exc}"[:200])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"sent": clients * requests, "answered_right": sum(right), "wrong": wrong, "wall_s": wall,
            "per_s": clients * requests / wall, **_latencies([x for xs in lat for x in xs])}


def app_load(url: str, compositions: int, uploads: int, midi_file: str) -> dict:
    """``compositions`` compose requests and ``uploads`` MIDI analyses, all at once, each in its own connection."""
    import httpx

    data = open(midi_file, "rb").read()
    results: list[dict] = []
    lock = threading.Lock()

    def compose(i: int) -> None:
        t = time.perf_counter()
        try:
            with httpx.Client(base_url=url, timeout=600.0) as c:
                r = c.post("/api/compose", json={"text": f"soak {i}: restless but hopeful", "bars": 8, "seed": i})
                body = r.json()
                ok = r.status_code == 200 and isinstance(body.get("id"), str) and body["composition"]["id"] == body["id"]
                out = {"kind": "compose", "ok": ok, "status": r.status_code, "id": body.get("id")}
        except Exception as exc:  # noqa: BLE001 - reported
            out = {"kind": "compose", "ok": False, "status": None, "error": f"{type(exc).__name__}: {exc}"[:200]}
        out["s"] = time.perf_counter() - t
        with lock:
            results.append(out)

    def upload(i: int) -> None:
        t = time.perf_counter()
        try:
            with httpx.Client(base_url=url, timeout=600.0) as c:
                r = c.post("/api/analyze", files={"file": (f"soak-{i}.mid", data, "audio/midi")})
                body = r.json()
                ok = r.status_code == 200 and body.get("filename") == f"soak-{i}.mid" and bool(body.get("report")) \
                    and isinstance(body.get("analysis"), dict)
                out = {"kind": "upload", "ok": ok, "status": r.status_code}
        except Exception as exc:  # noqa: BLE001 - reported
            out = {"kind": "upload", "ok": False, "status": None, "error": f"{type(exc).__name__}: {exc}"[:200]}
        out["s"] = time.perf_counter() - t
        with lock:
            results.append(out)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=compose, args=(i,)) for i in range(compositions)]
    threads += [threading.Thread(target=upload, args=(i,)) for i in range(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    comp = [r for r in results if r["kind"] == "compose"]
    upl = [r for r in results if r["kind"] == "upload"]
    return {"compositions": compositions, "uploads": uploads, "compose_ok": sum(r["ok"] for r in comp),
            "upload_ok": sum(r["ok"] for r in upl), "ids": sorted(r["id"] for r in comp if r.get("id")),
            "failures": [r for r in results if not r["ok"]][:5], "wall_s": wall,
            "compose_max_s": max((r["s"] for r in comp), default=0.0),
            "upload_max_s": max((r["s"] for r in upl), default=0.0)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["socket"] and len(argv) == 4:
        print(json.dumps(socket_load(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    if argv[:1] == ["app"] and len(argv) == 5:
        print(json.dumps(app_load(argv[1], int(argv[2]), int(argv[3]), argv[4])))
        return 0
    print("usage: python -m soak.clients socket PATH CLIENTS REQUESTS | app URL COMPOSITIONS UPLOADS MIDI_FILE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
