"""The engine's audio path in a process of its own, so that its deadline holds whatever the engine's other threads do.

Why a process
-------------
The audio path (lookahead delay, mel front-end, a push into the ring) needs about 0.3 ms
of a 10.67 ms block (512 samples at 48 kHz). In the engine's process it shares one GIL
with the socket server's threads, the inference thread and the music: with 32 socket
clients asking at once, ``make soak`` saw a few blocks in ten thousand wait 10–30 ms,
most of it for the GIL (a lower switch interval, fewer busy threads and a second answer
thread were tried: each moved the count, none brought it to zero). And the run loop that
handed blocks to it also composes the next phrase, so blocks reached it up to 2 s late
(a sound card's 64-block queue holds 0.68 s). Here the audio path runs alone in a child
process: its own interpreter and GIL, one busy thread, nothing else to wait for. It reads
the source itself (a sound card through PortAudio, or a sound file paced by the wall
clock as a card would deliver it), and hands the mel frames to the engine's inference
thread through a :class:`~kelly.realtime.ringbuffer.SharedSpscRing` in shared memory.
The engine's clock (the samples processed), the per-block processing times and how late
each block was taken live in the same shared memory, so ``kelly ctl state`` and the run's
report read them as before.

The processes
-------------
:class:`AudioProcess` (the engine's side) makes the shared memory (a ``0600`` file in
``/dev/shm``, unlinked as soon as the child has mapped it) and starts the child, ``python
-m kelly.realtime.audio_process``: a fresh interpreter (forking a process that already
runs threads is unsafe, and :mod:`multiprocessing`'s spawn would run the caller's main
script again). The child (:func:`_child_main`) builds the front-end, opens the source,
asks to be scheduled ahead of normal processes (:func:`raise_priority`), says it is ready
(one JSON line on its stdout) and plays until the source ends, the engine asks it to
stop, or the engine's process is gone (it checks its parent once a block, so a ``kill
-9`` of the engine does not leave it recording). A source that fails (a corrupt file, a
device that stops) ends the child with the error's message, which the engine raises as
the same kind of error.

What stays in the engine's process: ``kelly engine --fast`` (a file processed as fast as
possible, each block waiting for inference, for byte-identical MIDI) runs the audio path
in-process, as do :meth:`~kelly.realtime.engine.Engine.process_block` callers.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import os
import time
from dataclasses import dataclass

import numpy as np

from kelly.errors import FileFormatError, InputError, KellyError
from kelly.realtime.engine import TIMING_WINDOW, BlockTimes
from kelly.realtime.ringbuffer import SharedSpscRing, stores_ordered

#: Seconds the child may take to start (a fresh interpreter importing numpy, librosa's filters, soxr).
START_TIMEOUT_S = 60.0
#: Seconds the child is given to stop when asked, before it is terminated.
STOP_TIMEOUT_S = 5.0
#: The real-time (SCHED_FIFO) priority the child asks for: low among real-time tasks (JACK asks
#: for 70 to 95, the kernel's interrupt threads run at 50), above every normal process.
RT_PRIORITY = 10
#: The nice value it asks for where real-time scheduling is not allowed.
NICE = -10

# slots of the shared int64 header
_SAMPLES, _BLOCKS, _OVERRUNS, _BAD, _STATE, _STOP, _PID, _LATE_N, _LATENCY = range(9)
_HEADER = 16
# slots of the shared float64 header
_WORST, _LATE_WORST = range(2)
_FHEADER = 8
# the child's states
STARTING, PLAYING, ENDED, FAILED = range(4)
_STATE_NAMES = {STARTING: "starting", PLAYING: "playing", ENDED: "ended", FAILED: "failed"}
# errors the child reports by name, raised again as themselves in the engine
_ERRORS = {"FileFormatError": FileFormatError, "InputError": InputError}


@dataclass(frozen=True)
class AudioSourceSpec:
    """What the child opens: a sound file or a sound card (picklable; the child makes the source).

    ``kind``: ``"file"`` (``path``, played in real time, ``loop`` to start again at the
    end) or ``"device"`` (``device`` as :class:`~kelly.realtime.audio_in.DeviceBlockSource`
    takes it). ``schedstat``: also record, per block, the time the child waited for a CPU
    (Linux ``/proc/thread-self/schedstat``; ``make soak`` uses it to say where late
    blocks' time went). ``priority``: ask the system to schedule the child ahead of
    normal processes (:func:`raise_priority`).
    """

    kind: str
    sr: int
    block: int
    path: str | None = None
    device: int | str | None = None
    channels: int = 1
    max_seconds: float | None = None
    loop: bool = False
    schedstat: bool = False
    priority: bool = True

    @classmethod
    def of(cls, source, *, loop: bool = False, schedstat: bool = False, priority: bool = True) -> "AudioSourceSpec":
        """The spec of an opened :class:`~kelly.realtime.audio_in.WavBlockSource` or ``DeviceBlockSource``."""
        from kelly.realtime.audio_in import DeviceBlockSource, WavBlockSource

        if isinstance(source, WavBlockSource):
            return cls("file", sr=int(source.sr), block=int(source.block), path=str(source.path),
                       max_seconds=float(source.max_seconds), loop=loop, schedstat=schedstat, priority=priority)
        if isinstance(source, DeviceBlockSource):
            return cls("device", sr=int(source.sr), block=int(source.block), device=source.device,
                       channels=int(source.channels), schedstat=schedstat, priority=priority)
        raise InputError(f"the audio process plays a sound file or a sound card, not {type(source).__name__}")

    def open(self):
        """The block source itself (in the child)."""
        from kelly.realtime.audio_in import DeviceBlockSource, WavBlockSource

        if self.kind == "file":
            kw = {} if self.max_seconds is None else {"max_seconds": self.max_seconds}
            return WavBlockSource(self.path, self.block, **kw)
        if self.kind == "device":
            return DeviceBlockSource(self.device, self.sr, self.block, channels=self.channels)
        raise InputError(f"an audio source is a file or a device, not {self.kind!r}")


class _Layout:
    """Where everything lives in the shared memory: headers, timing arrays, the ring."""

    def __init__(self, ring_frames: int, width: int) -> None:
        self.ring_frames = 1 << (int(ring_frames) - 1).bit_length()
        self.width = int(width)
        self.header = 0
        self.fheader = 8 * _HEADER
        self.times = self.fheader + 8 * _FHEADER
        self.lates = self.times + 8 * TIMING_WINDOW
        self.waits = self.lates + 8 * TIMING_WINDOW
        self.ring = -(-(self.waits + 8 * TIMING_WINDOW) // 64) * 64
        self.size = self.ring + SharedSpscRing.nbytes(self.ring_frames, self.width)


class SharedBlockTimes(BlockTimes):
    """:class:`~kelly.realtime.engine.BlockTimes` written by the audio process, read by the engine."""

    def __init__(self, budget_s: float, times: np.ndarray, header: np.ndarray, fheader: np.ndarray) -> None:
        self.budget_s = budget_s
        self.times = times
        self._h = header
        self._f = fheader

    # one writer (the child) each; the engine reads
    count = property(lambda s: int(s._h[_BLOCKS]), lambda s, v: s._h.__setitem__(_BLOCKS, v))
    overruns = property(lambda s: int(s._h[_OVERRUNS]), lambda s, v: s._h.__setitem__(_OVERRUNS, v))
    worst_s = property(lambda s: float(s._f[_WORST]), lambda s, v: s._f.__setitem__(_WORST, v))

    def release(self) -> None:
        """Keep the figures in this process's own memory (see :meth:`SharedSpscRing.release`)."""
        self.times, self._h, self._f = self.times.copy(), self._h.copy(), self._f.copy()


class _Shared:
    """The views of the shared memory both processes make the same way."""

    def __init__(self, buf, layout: _Layout, budget_s: float, lock, *, clear: bool) -> None:
        self.header = np.ndarray((_HEADER,), dtype=np.int64, buffer=buf, offset=layout.header)
        self.fheader = np.ndarray((_FHEADER,), dtype=np.float64, buffer=buf, offset=layout.fheader)
        self.lates = np.ndarray((TIMING_WINDOW,), dtype=np.float64, buffer=buf, offset=layout.lates)
        self.waits = np.ndarray((TIMING_WINDOW,), dtype=np.float64, buffer=buf, offset=layout.waits)
        times = np.ndarray((TIMING_WINDOW,), dtype=np.float64, buffer=buf, offset=layout.times)
        if clear:
            self.header[:] = 0
            self.fheader[:] = 0.0
        self.block_times = SharedBlockTimes(budget_s, times, self.header, self.fheader)
        self.ring = SharedSpscRing(buf, layout.ring, layout.ring_frames, layout.width, lock=lock, clear=clear)

    def release(self) -> None:
        self.ring.release()
        self.block_times.release()
        self.header, self.fheader = self.header.copy(), self.fheader.copy()
        self.lates, self.waits = self.lates.copy(), self.waits.copy()


class _FileLock:
    """A lock two processes share through one file (``flock``): the ring's fence where stores are not ordered."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)


def _shared_folder() -> str | None:
    """Where the shared file is made: memory-backed ``/dev/shm`` where there is one, else the temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _map(fd: int, size: int):
    """The file mapped shared and writable (``ACCESS_WRITE``: ``MAP_SHARED`` on Unix; the same call on Windows)."""
    import mmap

    return mmap.mmap(fd, size, access=mmap.ACCESS_WRITE)


class AudioProcess:
    """The audio path of an :class:`~kelly.realtime.engine.Engine` in a child process.

    Made with the source's spec; the engine calls :meth:`prepare` (shared memory sized
    for its front-end), :meth:`start` when it starts and :meth:`stop` when it stops.

    The shared memory is a file made ``0600`` in ``/dev/shm`` (memory, not disk) and
    mapped by both processes; it is unlinked as soon as the child has mapped it, so
    nothing is left behind whatever happens to either process afterwards. The child is
    ``python -m kelly.realtime.audio_process`` (not :mod:`multiprocessing`, whose spawn
    would run the caller's main script again in the child).

    Parameters
    ----------
    spec : AudioSourceSpec
        What to play (:meth:`AudioSourceSpec.of` an opened source).

    Attributes
    ----------
    ring : SharedSpscRing
        The mel frames and their frame indices, for the inference thread.
    block_times : SharedBlockTimes
        Processing time of each block against its budget.
    pid : int or None
        The child's process id once started.
    note : str
        What the child said when it started (how its BLAS runs).
    """

    def __init__(self, spec: AudioSourceSpec) -> None:
        if not isinstance(spec, AudioSourceSpec):
            raise InputError(f"AudioProcess needs an AudioSourceSpec, got {type(spec).__name__}")
        self.spec = spec
        self.pid: int | None = None
        self.note = ""
        self._path: str | None = None
        self._fd: int | None = None
        self._mem = None
        self._shared: _Shared | None = None
        self._released: _Shared | None = None
        self._proc = None
        self._said = None  # a queue of the child's lines, filled by a reader thread
        self._reader = None
        self._error: KellyError | None = None

    # ------------------------------------------------------------------ engine side
    def prepare(self, *, sr: int, block: int, lookahead: int | None, ring_frames: int, width: int) -> None:
        """Make the shared memory for an engine at ``sr``/``block`` whose frames are ``width`` wide.

        ``lookahead``: samples of delay; None for the front-end's own latency, which the child
        measures (only it builds a front-end) and reports in :attr:`latency_samples`.
        """
        import tempfile

        if (sr, block) != (self.spec.sr, self.spec.block):
            raise InputError(f"the audio source runs at {self.spec.sr} Hz in blocks of {self.spec.block}, the engine "
                             f"at {sr} Hz in blocks of {block}")
        if self._mem is not None or self._released is not None:
            raise KellyError("this audio process was already used; make a new one for another engine")
        self._layout = _Layout(ring_frames, width)
        self._lookahead = None if lookahead is None else int(lookahead)
        fd, self._path = tempfile.mkstemp(prefix="kelly-audio-", dir=_shared_folder())  # 0600
        self._fd = fd
        try:
            os.ftruncate(fd, self._layout.size)
            self._mem = _map(fd, self._layout.size)
        except OSError as exc:
            self._discard_file()
            raise KellyError(f"cannot make the audio process's shared memory ({exc.strerror or exc})") from None
        self._lock = None if stores_ordered() else _FileLock(fd)
        self._shared = _Shared(self._mem, self._layout, block / sr, self._lock, clear=True)
        self.ring = self._shared.ring
        self.block_times = self._shared.block_times

    def _discard_file(self) -> None:
        """Unlink the shared file's name. Where an open file cannot be unlinked (Windows) the name stays until
        :meth:`stop` has closed the mapping and tries again."""
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            except OSError:
                return
            self._path = None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the child and wait until it plays; a source that cannot be opened raises its error here."""
        import json
        import subprocess
        import sys

        if self._shared is None:
            raise KellyError("prepare() the audio process before starting it")
        if self._proc is not None:
            return
        args = {"path": self._path, "ring_frames": self._layout.ring_frames, "width": self._layout.width,
                "lookahead": self._lookahead, "spec": dataclasses.asdict(self.spec), "parent": os.getpid()}
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self._proc = subprocess.Popen([sys.executable, "-m", "kelly.realtime.audio_process", json.dumps(args)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        self.pid = self._proc.pid
        import queue
        import threading

        self._said = queue.SimpleQueue()
        # a thread reads the child's lines (select() does not take pipes everywhere); it ends with the pipe
        self._reader = threading.Thread(target=_read_lines, args=(self._proc.stdout, self._said),
                                        name="kelly-audio-said", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        try:
            while self.state == STARTING and self._error is None:
                self._receive(0.05)
                if self._proc.poll() is not None:
                    self._last_words()
                    if self._error is None and self.state == STARTING:
                        raise KellyError(f"the audio process ended while starting (exit code {self._proc.returncode})")
                if time.monotonic() > deadline:
                    raise KellyError(f"the audio process did not start within {timeout:g} s")
            if self._error is not None:
                raise self._error
        except BaseException:
            self.stop()
            raise
        finally:
            self._discard_file()  # both have it mapped (or the child is gone): the name is not needed any more

    def _receive(self, wait: float) -> None:
        """Take what the child said (one JSON line per message), waiting at most ``wait`` for the first line."""
        import json
        import queue

        if self._said is None:
            return
        while True:
            try:
                line = self._said.get(timeout=wait) if wait > 0 else self._said.get_nowait()
            except queue.Empty:
                return
            wait = 0.0
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "ready" in msg:
                self.note = str(msg["ready"])
            elif "error" in msg:
                name, message = msg["error"]
                self._error = _ERRORS.get(name, KellyError)(str(message))

    def _last_words(self, timeout: float = 5.0) -> None:
        """Wait for the child's last lines (its error) to come through the reader thread: until it has read to the
        end of the pipe, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._error is None and time.monotonic() < deadline:
            done = not self._reader.is_alive()
            self._receive(0.05)
            if done and self._said.empty():
                return

    def check(self) -> None:
        """Raise the child's error if it failed, or say so if it died without one (the engine's run loop calls this)."""
        if self._proc is None:
            return
        self._receive(0.0)
        dead = self._proc.poll() is not None
        if self._error is None and (self.state == FAILED or (dead and self.state != ENDED)):
            self._last_words()
        if self._error is not None:
            raise self._error
        if self.state == FAILED or (dead and self.state != ENDED):
            raise KellyError(f"the audio process stopped unexpectedly (exit code {self._proc.poll()}); "
                             "the engine stops with it")

    def stop(self) -> None:
        """Ask the child to stop, wait for it (terminate it after :data:`STOP_TIMEOUT_S`) and free the shared memory.

        The figures (samples, block times, the ring's counters) stay readable afterwards.
        Safe to call twice.
        """
        import subprocess

        if self._shared is None:
            return
        shared = self._shared
        shared.header[_STOP] = 1
        if self._proc is not None:
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._receive(0.0)
        shared.release()
        self._shared, self._released = None, shared
        self.ring, self.block_times = shared.ring, shared.block_times
        self._mem.close()
        self._mem = None
        os.close(self._fd)
        self._fd = None
        self._discard_file()

    # ------------------------------------------------------------------ figures
    @property
    def _views(self) -> _Shared:
        return self._shared if self._shared is not None else self._released

    @property
    def samples(self) -> int:
        """Samples the child has processed: the engine's audio clock."""
        return int(self._views.header[_SAMPLES])

    @property
    def latency_samples(self) -> int:
        """The lookahead the child's delay line adds (known once it has started; 0 before)."""
        return int(self._views.header[_LATENCY])

    @property
    def bad_blocks(self) -> int:
        """Blocks whose NaN/infinite samples the front-end replaced by silence."""
        return int(self._views.header[_BAD])

    @property
    def state(self) -> int:
        return int(self._views.header[_STATE])

    @property
    def ended(self) -> bool:
        """The source ended (a file played to its end) or failed."""
        return self.state in (ENDED, FAILED)

    def late_times(self) -> np.ndarray:
        """How late the child took each block after it was due (seconds; files only, the last blocks)."""
        v = self._views
        return v.lates[:min(int(v.header[_LATE_N]), TIMING_WINDOW)].copy()

    def cpu_waits(self) -> np.ndarray:
        """Per block, the time the child waited for a CPU while processing it (seconds; with ``schedstat``)."""
        v = self._views
        return v.waits[:min(self.block_times.count, TIMING_WINDOW)].copy()

    def describe(self) -> str:
        where = f"pid {self.pid}" if self.pid else "not started"
        note = f"; {self.note}" if self.note else ""
        return f"a process of its own ({where}; {_STATE_NAMES.get(self.state, '?')}{note})"


def _read_lines(pipe, said) -> None:
    """The engine's reader of the child's stdout: each line into ``said``, until the child closes it."""
    try:
        with pipe:
            for line in pipe:
                said.put(line)
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------- the child
def _schedstat_wait_ns() -> int:
    """This thread's time spent waiting for a CPU so far (ns), from Linux's schedstat; 0 where there is none."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _child_main(args: dict) -> int:
    """The audio process: map the shared file, build the front-end, open the source, play; say how it ended."""
    import signal

    # Ctrl-C reaches every process of the terminal's group: the engine handles it (all notes off, the file
    # written) and stops this process itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shared = mem = source = None
    code = 0
    try:
        from kelly.realtime.engine import limit_blas_threads
        from kelly.realtime.frontend import MelFrontEnd
        from kelly.realtime.lookahead import LookaheadBuffer

        spec = AudioSourceSpec(**args["spec"])
        layout = _Layout(args["ring_frames"], args["width"])
        fd = os.open(args["path"], os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        try:
            mem = _map(fd, layout.size)
            lock = None if stores_ordered() else _FileLock(os.dup(fd))
        finally:
            os.close(fd)
        shared = _Shared(mem, layout, spec.block / spec.sr, lock, clear=False)
        shared.header[_PID] = os.getpid()
        blas = limit_blas_threads()
        frontend = MelFrontEnd(spec.sr, spec.block)
        if frontend.frames.shape[1] != layout.width:
            raise KellyError(f"the audio process's frames are {frontend.frames.shape[1]} wide, the engine's "
                             f"{layout.width}")
        lookahead = args["lookahead"]
        delay = LookaheadBuffer(frontend.latency_samples if lookahead is None else int(lookahead), spec.block)
        shared.header[_LATENCY] = delay.latency_samples
        source = spec.open()
        gc.collect()
        gc.freeze()  # what was loaded is not walked by the collector while playing
        # last, so that the start-up above runs as any other process; the threads made from here on (PortAudio's
        # callback thread) inherit it
        priority = raise_priority() if spec.priority else "normal priority (not asked)"
        shared.header[_STATE] = PLAYING
        _say({"ready": f"{priority}; {blas}"})
        _play(shared, frontend, delay, source, spec, int(args["parent"]))
        shared.header[_STATE] = ENDED
    except KellyError as exc:
        code = 2
        _fail(shared, type(exc).__name__, str(exc))
    except BaseException as exc:  # noqa: BLE001 - said to the engine in one line, never a traceback
        code = 1
        from kelly.logsafe import redacted_traceback

        _fail(shared, "KellyError", f"the audio process failed: {redacted_traceback(exc)}")
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing must not hide how it ended
                pass
        if shared is not None:
            shared.release()
        if mem is not None:
            mem.close()
    return code


def raise_priority() -> str:
    """Ask for real-time scheduling (SCHED_FIFO at :data:`RT_PRIORITY`), else a lower nice value; say what was got.

    What every audio program does for its audio thread (JACK and PipeWire through
    RTKit): on a busy machine a normal process waits its turn for a CPU, and ``make
    soak`` measured the audio process's one late block under full load waiting 11.5 of
    its 12.6 ms for one. A real-time process runs as soon as it is ready, ahead of every
    normal one; it sleeps between blocks (0.2 ms of work in 10.67 ms), and Linux keeps 5%
    of each second for normal processes whatever real-time ones do. Allowed to root and
    to users with an ``rtprio`` limit (``/etc/security/limits.d``, the ``audio`` group on
    most distributions); elsewhere the process runs at normal priority and the note says
    so.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        return f"real-time priority (SCHED_FIFO {RT_PRIORITY})"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
        return f"nice {NICE} (real-time scheduling is not allowed to this user)"
    except (AttributeError, OSError):
        return "normal priority (real-time scheduling and a lower nice value are not allowed to this user)"


def _say(msg: dict) -> None:
    import json
    import sys

    try:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # the engine is gone
        pass


def _fail(shared, name: str, message: str) -> None:
    _say({"error": [name, message]})
    if shared is not None:
        shared.header[_STATE] = FAILED


def _play(shared: _Shared, frontend, delay, source, spec: AudioSourceSpec, parent_pid: int) -> None:
    """The loop: take a block when it is due, analyse it, push its frames; timed, as the engine's own path."""
    header, lates, waits = shared.header, shared.lates, shared.waits
    ring, times = shared.ring, shared.block_times
    paced = spec.kind == "file"  # a card delivers blocks in real time itself; a file is paced here
    period = spec.block / spec.sr
    blocks = itertools.chain.from_iterable(itertools.repeat(source)) if spec.loop else iter(source)
    schedstat = spec.schedstat
    t_start = time.monotonic()
    for k in itertools.count():
        if header[_STOP] or os.getppid() != parent_pid:
            return
        if paced:
            due = t_start + k * period
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            block = next(blocks)
        except StopIteration:
            return
        if paced:
            late = time.monotonic() - due
            lates[k % TIMING_WINDOW] = late
            header[_LATE_N] = k + 1
        q0 = _schedstat_wait_ns() if schedstat else 0
        t0 = time.perf_counter()
        delay.process(block)
        n = frontend.process(block)
        frames, first = frontend.frames, frontend.frame_index
        for i in range(n):
            ring.push(frames[i], first + i)
        header[_SAMPLES] += len(block)
        header[_BAD] = frontend.bad_blocks
        if schedstat:
            waits[times.count % TIMING_WINDOW] = (_schedstat_wait_ns() - q0) / 1e9
        times.add(time.perf_counter() - t0)


if __name__ == "__main__":
    import json
    import sys

    sys.exit(_child_main(json.loads(sys.argv[1])))
