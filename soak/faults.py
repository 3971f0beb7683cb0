"""Live faults: model files deleted or replaced under a running engine; socket clients that vanish mid-frame."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from soak.common import fd_count, thread_count

SHIPPED = Path(__file__).resolve().parent.parent / "kelly" / "assets" / "models"
KEYS = ("emotionrecognizer", "melodytransformer", "harmonypredictor", "dynamicsengine", "groovepredictor")
#: The ways a loaded model file changes under the engine, and what the engine should then do.
MODEL_FAULTS = {"deleted": "fallback", "truncated": "fallback", "garbage": "fallback",
                "symlink-out": "fallback", "valid-other": "reloaded", "restored": "reloaded"}


def models_folder(tmp: Path) -> Path:
    """A models folder holding copies of the five shipped networks."""
    folder = tmp / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for key in KEYS:
        shutil.copy(SHIPPED / f"{key}.npz", folder / f"{key}.npz")
    return folder


def other_valid_model(src: Path, dst: Path, factor: float = 0.8) -> None:
    """A valid model of the same network with other weights (every weight × ``factor``), written at ``dst``."""
    from kelly.ml import packed

    obj = packed.unpack(src.read_bytes(), name=src.name)
    for layer in obj["layers"]:
        layer["weights"] = [np.asarray(w, dtype=np.float32) * np.float32(factor) for w in layer["weights"]]
    dst.write_bytes(packed.pack(obj))


def break_model_file(kind: str, path: Path, tmp: Path) -> None:
    """Do fault ``kind`` (a key of :data:`MODEL_FAULTS`) to the model file at ``path``, as a person or program would."""
    outside = tmp / "elsewhere"
    outside.mkdir(exist_ok=True)
    if kind == "deleted":
        path.unlink()
    elif kind == "truncated":  # a copy cut short, written in place (same inode)
        with open(path, "r+b") as f:
            f.truncate(max(1, path.stat().st_size // 3))
    elif kind == "garbage":  # another file moved over it
        junk = outside / "junk.npz"
        junk.write_bytes(np.random.default_rng(0).bytes(50_000))
        os.replace(junk, path)
    elif kind == "symlink-out":  # a link to a perfectly good model, but outside the models folder
        target = outside / path.name
        other_valid_model(SHIPPED / path.name, target)
        link = path.with_name(path.name + ".tmp")
        os.symlink(target, link)
        os.replace(link, path)
    elif kind == "valid-other":  # a retrained network moved into place
        staged = outside / ("staged-" + path.name)
        other_valid_model(SHIPPED / path.name, staged)
        os.replace(staged, path)
    elif kind == "restored":  # deleted, then put back (another file, same name)
        path.unlink()
        time.sleep(0.05)
        staged = outside / ("staged-" + path.name)
        other_valid_model(SHIPPED / path.name, staged, 0.9)
        os.replace(staged, path)
    else:
        raise ValueError(f"unknown fault {kind!r}")


def model_fault(kind: str, tmp: Path, key: str = "emotionrecognizer", wait_s: float = 6.0) -> dict:
    """Fault ``kind`` on a running engine's ``key`` file, seen by its own watcher; what the engine said and did.

    The engine runs its inference thread on a steady stream of frames throughout; the
    result says how long the watcher took to notice, the warning it gave, the network's
    status, whether frames kept flowing and whether any was dropped.
    """
    from kelly.realtime.engine import Engine, EngineConfig

    tmp.mkdir(parents=True, exist_ok=True)
    folder = models_folder(tmp)
    path = folder / f"{key}.npz"
    engine = Engine(EngineConfig(models_dir=str(folder), out_dir=tmp / "gen"))
    rng = np.random.default_rng(1)
    frames = rng.uniform(0.3, 0.9, (64, 128)).astype(np.float32)
    with engine:
        pushed = 0
        stop = threading.Event()

        def feed() -> None:  # an audio path's worth of frames, and more, all along
            nonlocal pushed
            while not stop.is_set():
                engine.ring.push(frames[pushed % 64], pushed)
                pushed += 1
                time.sleep(0.002)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        time.sleep(0.3)
        old = engine._infer_proc.model(key)
        old_w = None if old is None else np.array(old.layers[0].weight)
        before = engine.get_state().warnings
        t0 = time.monotonic()
        break_model_file(kind, path, tmp)
        seen_s = None
        while time.monotonic() - t0 < wait_s:
            if engine.get_state().warnings != before:
                seen_s = time.monotonic() - t0
                break
            time.sleep(0.02)
        done_at_fault = engine.frames_done
        time.sleep(0.3)
        stop.set()
        feeder.join()
        engine.wait_idle()
        state = engine.get_state()
        new = engine._infer_proc.model(key)
        composer_model = engine._compose_proc.model(key)
        changed = new is not None and old_w is not None and not np.allclose(np.array(new.layers[0].weight), old_w)
        result = {
            "fault": kind, "key": key, "expected": MODEL_FAULTS[kind], "seen_after_s": seen_s,
            "warnings": [w for w in state.warnings if w.startswith(key)], "live": state.models[key].live,
            "composer_live": composer_model is not None and engine._compose_proc.is_live(key),
            "status": state.models[key].status, "weights_changed": changed, "pushed": pushed,
            "processed": engine.frames_done, "processed_after_fault": engine.frames_done - done_at_fault,
            "dropped": state.dropped_frames, "running": state.running,
        }
    result["outcome"] = "reloaded" if result["live"] and changed else "fallback" if not result["live"] else "unchanged"
    return result


# ------------------------------------------------------------------------------------------ vanishing clients
#: How a client vanishes: mid-way through the 4-byte length, after the length but inside the body, after a
#: whole request without reading the answer, and by a reset (SO_LINGER 0 with the answer unread).
VANISH_KINDS = ("half-header", "mid-body", "unread-answer", "reset")


def _vanish(path: Path, kind: str) -> None:
    from kelly.contracts import GetState
    from kelly.ipc import framing

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(5.0)
        s.connect(os.fspath(path))
        frame = framing.encode(GetState(id="gone"))
        if kind == "half-header":
            s.sendall(frame[:2])
        elif kind == "mid-body":
            s.sendall(frame[:4 + (len(frame) - 4) // 2])
        elif kind == "unread-answer":
            s.sendall(frame)
        elif kind == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(frame)
            import select

            select.select([s], [], [], 2.0)  # the answer has arrived, unread: the close resets the connection
        else:
            raise ValueError(kind)
    finally:
        s.close()


def vanishing_clients(n: int, tmp: Path, *, engine=None, workers: int = 8, settle_s: float = 15.0) -> dict:
    """``n`` clients vanish (the four ways by turns, ``workers`` at a time) while one well-behaved client asks on.

    Returns the well-behaved client's answers and errors, and the server process's threads
    and open descriptors before, at the worst moment, and after the server has let go of
    every vanished connection.
    """
    from kelly.contracts import GetState, State
    from kelly.ipc.client import KellyClient
    from kelly.ipc.server import EngineServer
    from kelly.realtime.engine import Engine, EngineConfig

    own = engine is None
    if own:
        engine = Engine(EngineConfig(out_dir=tmp / "gen")).start()
    sock = tmp / "v.sock"
    try:
        with EngineServer(engine, sock) as server:
            with KellyClient(sock, timeout=10.0) as warm:
                warm.state()
            time.sleep(0.2)
            base_threads, base_fds = thread_count(), fd_count()
            stop = threading.Event()
            good = {"answers": 0, "errors": 0, "slowest_s": 0.0}

            def well_behaved() -> None:
                with KellyClient(sock, timeout=10.0) as c:
                    i = 0
                    while not stop.is_set():
                        t = time.monotonic()
                        answer = c.request(GetState(id=f"good-{i}"))
                        good["slowest_s"] = max(good["slowest_s"], time.monotonic() - t)
                        if isinstance(answer, State) and answer.id == f"good-{i}":
                            good["answers"] += 1
                        else:
                            good["errors"] += 1
                        i += 1
                        time.sleep(0.005)

            peak = {"threads": 0, "fds": 0}

            def watch() -> None:
                while not stop.is_set():
                    peak["threads"] = max(peak["threads"], thread_count())
                    peak["fds"] = max(peak["fds"], fd_count())
                    time.sleep(0.05)

            helpers = [threading.Thread(target=well_behaved, daemon=True), threading.Thread(target=watch, daemon=True)]
            for h in helpers:
                h.start()
            t0 = time.monotonic()
            failures = []
            with ThreadPoolExecutor(workers) as pool:
                for fut in [pool.submit(_vanish, sock, VANISH_KINDS[i % len(VANISH_KINDS)]) for i in range(n)]:
                    try:
                        fut.result()
                    except OSError as exc:
                        failures.append(repr(exc))
            vanish_s = time.monotonic() - t0
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline and server.clients > 1:
                time.sleep(0.05)
            time.sleep(0.3)
            stop.set()
            for h in helpers:
                h.join(15)
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline and (thread_count() > base_threads or fd_count() > base_fds):
                time.sleep(0.05)
            after_threads, after_fds, clients_left = thread_count(), fd_count(), server.clients
    finally:
        if own:
            engine.stop()
    return {"clients": n, "vanish_s": vanish_s, "client_failures": failures[:5], "good_answers": good["answers"],
            "good_errors": good["errors"], "good_slowest_s": good["slowest_s"], "threads_before": base_threads,
            "threads_peak": peak["threads"], "threads_after": after_threads, "fds_before": base_fds,
            "fds_peak": peak["fds"], "fds_after": after_fds, "server_clients_left": clients_left}
