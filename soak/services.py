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
                 timeout_s: float = 900.0, audio_process: bool = True, priority: bool = True) -> dict:
    """The socket load and the app load at once, with the audio path playing; everything measured.

    ``audio_process``: the audio path runs in a process of its own
    (:mod:`kelly.realtime.audio_process`, as ``kelly engine --audio-in`` runs it), reading
    the recording from a WAV file in real time; False: in the engine's process, on the run
    loop (as before, and as ``--no-audio-process``), for the comparison. ``priority``: the
    audio process asks to be scheduled ahead of normal processes, as it does by default
    (False: it runs at normal priority, to see what the process alone does).
    """
    if audio_process:
        return _run(tmp, clients, requests, compositions, uploads, timeout_s, _ProcessAudio(tmp, priority))
    return _run(tmp, clients, requests, compositions, uploads, timeout_s, _ThreadAudio())


class _ProcessAudio:
    """The audio path in a process of its own, reading the recording from a WAV file, looped, in real time."""

    def __init__(self, tmp: Path, priority: bool = True) -> None:
        self.tmp = tmp
        self.priority = priority
        self.name = "a process of its own" + ("" if priority else " at normal priority")

    def engine(self, config, sink, audio: np.ndarray):
        import soundfile as sf

        from kelly.realtime.audio_in import WavBlockSource
        from kelly.realtime.audio_process import AudioProcess, AudioSourceSpec
        from kelly.realtime.engine import Engine

        wav = self.tmp / "material.wav"
        sf.write(wav, audio, SR, subtype="FLOAT")
        self.proc = AudioProcess(AudioSourceSpec.of(WavBlockSource(wav, BLOCK), loop=True, schedstat=True,
                                                    priority=self.priority))
        self.engine_ = Engine(config, sink=sink, clock="audio", audio_process=self.proc)
        return self.engine_

    def play(self) -> None:
        self.engine_.run(realtime=True)

    def stop(self) -> None:
        self.engine_.shutdown()

    def figures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block: processing time, time waiting for a CPU meanwhile; and how late each block was taken."""
        return self.engine_.block_times.recorded(), self.proc.cpu_waits(), self.proc.late_times()[1:]

    def describe(self) -> str:
        return self.proc.note


class _ThreadAudio:
    """The audio path in the engine's process: its run loop takes the blocks and analyses them."""

    name = "the engine's process (its run loop)"

    def describe(self) -> str:
        return "in the engine's process"

    def engine(self, config, sink, audio: np.ndarray):
        from kelly.realtime.engine import Engine

        self.blocks = blocks_of(audio)
        self.engine_ = engine = Engine(config, sink=sink, clock="audio")
        self.stop_audio = threading.Event()
        self.lateness: list[float] = []
        self.waits: list[tuple[float, float]] = []
        timed = engine.process_block

        def process_block(block):
            """The engine's own, with the time spent waiting for a CPU meanwhile."""
            w0 = time.perf_counter()
            q0 = _schedstat()[1]
            n = timed(block)
            self.waits.append((time.perf_counter() - w0, (_schedstat()[1] - q0) / 1e9))
            return n

        engine.process_block = process_block  # the run loop calls it through the instance
        return engine

    def _endless(self):
        """The recording, looped until the load is over; notes how late each block is handed over."""
        k = 0
        t0 = time.monotonic()
        while not self.stop_audio.is_set():
            self.lateness.append(time.monotonic() - (t0 + k * BLOCK / SR))
            yield self.blocks[k % len(self.blocks)]
            k += 1

    def play(self) -> None:
        self.engine_.run(self._endless(), realtime=True)

    def stop(self) -> None:
        self.stop_audio.set()

    def figures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = np.array(self.waits, dtype=float).reshape(-1, 2)
        return w[:, 0], w[:, 1], np.array(self.lateness[1:], dtype=float)


def _run(tmp: Path, clients: int, requests: int, compositions: int, uploads: int, timeout_s: float, audio_path) -> dict:
    from kelly.ipc.server import EngineServer
    from kelly.realtime.engine import EngineConfig
    from kelly.realtime.midi_out import MidiFileSink

    tmp.mkdir(parents=True, exist_ok=True)
    audio, how = material(20.0, tmp)
    upload = _upload_file(tmp)
    app_dir = tmp / "app"
    engine = audio_path.engine(EngineConfig(sr=SR, block=BLOCK, out_dir=tmp / "gen"), MidiFileSink(tmp / "live.mid"),
                               audio)
    sock = tmp / "e.sock"

    with engine, EngineServer(engine, sock) as server, AppServer(app_dir) as app:
        player = threading.Thread(target=audio_path.play, name="soak-audio", daemon=True)
        player.start()
        time.sleep(1.0)
        base_threads, base_fds = thread_count(), fd_count()
        with Sampler(rss_mb) as rss_engine, Sampler(lambda: rss_mb(app.proc.pid)) as rss_app:
            t0 = time.monotonic()
            sock_proc = _client_process(["socket", str(sock), str(clients), str(requests)])
            app_proc = _client_process(["app", app.url, str(compositions), str(uploads), str(upload)])
            app_res = _result(app_proc, timeout_s)
            sock_res = _result(sock_proc, timeout_s)
            load_s = time.monotonic() - t0
        audio_path.stop()
        player.join(10)
        blocks_summary = engine.block_times.summary()
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
    times, cpu_waits, late = audio_path.figures()
    over = times > BLOCK / SR
    return {
        "material": how, "socket": sock_res, "app": app_res, "load_s": load_s,
        "library_ids": sorted(c["id"] for c in listed), "integrity": [r[0] for r in integrity],
        "blocks": blocks_summary,
        "handover_late_p99_ms": float(np.percentile(late, 99) * 1e3) if len(late) else None,
        "handover_late_max_ms": float(late.max() * 1e3) if len(late) else None,
        "dropped_frames": state.dropped_frames, "inferences": state.inferences, "engine_seq": state.seq,
        "threads_before": base_threads, "threads_after": after_threads, "fds_before": base_fds,
        "fds_after": after_fds, "rss_engine": rss_engine.curve, "rss_app": rss_app.curve,
        "switch_interval_s": sys.getswitchinterval(), "audio_path": audio_path.name,
        "audio_note": audio_path.describe(), "over_blocks": int(over.sum()),
        "over_wall_ms": float(times[over].mean() * 1e3) if over.any() else 0.0,
        "over_runqueue_ms": float(cpu_waits[over].mean() * 1e3) if over.any() else 0.0,
    }
