"""The socket and the web app under load at once, while the engine's audio path plays in real time.

The engine runs in this process as ``kelly engine`` runs it: its socket server, its
inference thread, and its run loop, which takes 512-sample blocks of a real recording at
48 kHz paced by the wall clock (as a device would deliver them), analyses each
(:meth:`~kelly.realtime.engine.Engine.process_block`, timed against the 10.67 ms budget)
and plays the music bar by bar into a MIDI file. The load comes from two other processes
(:mod:`soak.clients`), so that, as in real use, this process holds only the engine's own
threads: 32 socket clients asking questions as fast as they are answered, and 16
compositions plus 16 MIDI uploads sent at once to a real uvicorn server (``kelly serve``
in a process of its own, on 127.0.0.1, a free port and a temporary app folder). Measured:
every answer, every block's time, the engine's and the app's memory every second, and the
engine process's threads and descriptors before and after.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from soak.common import BLOCK, SR, Sampler, blocks_of, fd_count, material, rss_mb, thread_count

ROOT = Path(__file__).resolve().parent.parent


def _schedstat() -> tuple[int, int]:
    """This thread's time on a CPU and time waiting in the run queue for one, in ns (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            on_cpu, waiting, _ = f.read().split()
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return 0, 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


class AppServer:
    """``kelly serve`` on 127.0.0.1 in a process of its own, with a temporary app folder."""

    def __init__(self, app_dir: Path) -> None:
        self.app_dir = app_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "AppServer":
        import httpx

        self.log = open(self.app_dir.parent / "serve.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "kelly", "serve", "--port", str(self.port), "--app-dir",
                                      str(self.app_dir)], stdout=self.log, stderr=subprocess.STDOUT, env=_env())
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kelly serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("kelly serve did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _client_process(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soak.clients", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(), cwd=str(ROOT))


def _result(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def _upload_file(tmp: Path) -> Path:
    from kelly.composer import ComposeOptions, get_composer
    from kelly.emotion.thesaurus import state_for

    path = tmp / "upload.mid"
    path.write_bytes(get_composer("rules").compose(state_for("tenderness"), ComposeOptions(bars=16, seed=3)).song.to_bytes())
    return path


def run_services(tmp: Path, *, clients: int = 32, requests: int = 10_000, compositions: int = 16, uploads: int = 16,
                 timeout_s: float = 900.0) -> dict:
    """The socket load and the app load at once, with the audio path playing; everything measured."""
    from kelly.ipc.server import EngineServer
    from kelly.realtime.engine import Engine, EngineConfig
    from kelly.realtime.midi_out import MidiFileSink

    tmp.mkdir(parents=True, exist_ok=True)
    audio, how = material(20.0, tmp)
    blocks = blocks_of(audio)
    upload = _upload_file(tmp)
    app_dir = tmp / "app"
    engine = Engine(EngineConfig(sr=SR, block=BLOCK, out_dir=tmp / "gen"), sink=MidiFileSink(tmp / "live.mid"),
                    clock="audio")
    sock = tmp / "e.sock"
    playing = threading.Event()
    stop_audio = threading.Event()
    lateness: list[float] = []

    def endless():
        """The recording, looped until the load is over; notes how late each block is handed over."""
        k = 0
        t0 = time.monotonic()
        playing.set()
        while not stop_audio.is_set():
            lateness.append(time.monotonic() - (t0 + k * BLOCK / SR))
            yield blocks[k % len(blocks)]
            k += 1

    waits: list[tuple[float, float, float]] = []
    timed = engine.process_block

    def process_block(block):
        """The engine's own, with where the time went: on a CPU, waiting for one, or neither (the GIL)."""
        w0 = time.perf_counter()
        c0, q0 = _schedstat()
        n = timed(block)
        c1, q1 = _schedstat()
        waits.append((time.perf_counter() - w0, (c1 - c0) / 1e9, (q1 - q0) / 1e9))
        return n

    engine.process_block = process_block  # the run loop calls it through the instance
    with engine, EngineServer(engine, sock) as server, AppServer(app_dir) as app:
        player = threading.Thread(target=lambda: engine.run(endless(), realtime=True), name="soak-audio", daemon=True)
        player.start()
        playing.wait(10)
        time.sleep(1.0)
        base_threads, base_fds = thread_count(), fd_count()
        with Sampler(rss_mb) as rss_engine, Sampler(lambda: rss_mb(app.proc.pid)) as rss_app:
            t0 = time.monotonic()
            sock_proc = _client_process(["socket", str(sock), str(clients), str(requests)])
            app_proc = _client_process(["app", app.url, str(compositions), str(uploads), str(upload)])
            app_res = _result(app_proc, timeout_s)
            sock_res = _result(sock_proc, timeout_s)
            load_s = time.monotonic() - t0
        stop_audio.set()
        player.join(10)
        blocks_summary = engine.block_times.summary()
        times = engine.block_times.recorded()
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and (server.clients or thread_count() > base_threads
                                               or fd_count() > base_fds):
            time.sleep(0.05)
        after_threads, after_fds = thread_count(), fd_count()
        import httpx

        listed = httpx.get(app.url + "/api/compositions", params={"limit": 200}, timeout=30.0).json()["items"]
        state = engine.get_state()
    with sqlite3.connect(app_dir / "library.sqlite") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchall()
    late = np.array(lateness[1:], dtype=float)
    w = np.array(waits, dtype=float).reshape(-1, 3)
    over = w[w[:, 0] > BLOCK / SR]
    gil = over[:, 0] - over[:, 1] - over[:, 2]
    return {
        "material": how, "socket": sock_res, "app": app_res, "load_s": load_s,
        "library_ids": sorted(c["id"] for c in listed), "integrity": [r[0] for r in integrity],
        "blocks": blocks_summary, "block_p50_ms": float(np.median(times) * 1e3) if len(times) else None,
        "handover_late_p99_ms": float(np.percentile(late, 99) * 1e3) if len(late) else None,
        "handover_late_max_ms": float(late.max() * 1e3) if len(late) else None,
        "dropped_frames": state.dropped_frames, "inferences": state.inferences, "engine_seq": state.seq,
        "threads_before": base_threads, "threads_after": after_threads, "fds_before": base_fds,
        "fds_after": after_fds, "rss_engine": rss_engine.curve, "rss_app": rss_app.curve,
        "switch_interval_s": sys.getswitchinterval(), "over_blocks": int(len(over)),
        "over_wall_ms": float(over[:, 0].mean() * 1e3) if len(over) else 0.0,
        "over_runqueue_ms": float(over[:, 2].mean() * 1e3) if len(over) else 0.0,
        "over_gil_ms": float(gil.mean() * 1e3) if len(over) else 0.0,
    }
