"""The engine's socket server: answers framed JSON requests by calling the engine.

Concurrency: one thread per connection, not asyncio
---------------------------------------------------
The engine's calls are ordinary blocking Python (``generate_midi`` composes for about a
second), and the engine is threaded already (audio callback, inference thread). With a
thread per connection a slow call holds only the connection that asked for it, answers
on a connection stay in the order asked without any bookkeeping, and a subscription is a
plain loop. The number of threads is bounded by ``max_clients`` (64 by default), far
below what the OS handles with ease; asyncio would add an event loop plus a thread pool
for the same calls and gain nothing at this scale. Consequence for the engine: its
:class:`EngineControl` methods are called from several threads at once and must be
thread-safe.

Each connection thread waits with ``poll`` and reads whatever has arrived into a buffer
(it never blocks inside a half-received frame), so a subscription keeps its pace while a
client is slow to finish a frame, and :meth:`EngineServer.stop` wakes every idle
connection at once by shutting its socket down.

What a client can do wrong and what it costs
--------------------------------------------
* a frame that is not a valid request (not UTF-8, not JSON, not an object, no or an
  unknown ``type``, an invalid field, too deep): an ``Error`` answer; the connection stays;
* a length prefix over 1 MiB: an ``Error`` answer, then the connection is closed without
  reading (or allocating) the body;
* vanishing mid-frame, or never reading its answers: its thread ends (a stalled send
  times out after ``send_timeout`` seconds); nothing escapes, nothing leaks;
* more than ``max_clients`` connections: ``Error "too many clients"`` and closed.

An engine error the user can act on (a :class:`~kelly.errors.KellyError`) is answered
with its message; anything else with ``internal error in <Request>: ...`` and a logged
traceback, and the server keeps serving.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from pydantic import BaseModel

from kelly.contracts import (EngineState, Error, GenerateMIDI, GetState, LoadModel, MIDIGenerated, ModelLoaded, Ok,
                             SetEmotion, SetModelEnabled, SetText, Shutdown, State, Subscribe)
from kelly.errors import KellyError
from kelly.fileio import show_path
from kelly.ipc import framing, paths
from kelly.logsafe import redacted_traceback

log = logging.getLogger("kelly.ipc")

#: Bytes asked of ``recv`` at a time (a 1 MiB frame arrives in four reads).
RECV_BYTES = 256 * 1024
#: Longest message an ``Error`` answer carries.
MAX_ERROR_CHARS = 2000


@runtime_checkable
class EngineControl(Protocol):
    """What the server asks of the engine. Called from several threads at once: be thread-safe.

    Raise a :class:`~kelly.errors.KellyError` with a message a user can act on when a
    request cannot be done (a model file outside the models folder, an unknown network);
    the client receives that message as an ``Error``.
    """

    def load_model(self, path: str) -> str:
        """Load a network from ``path`` inside the engine's models folder (confined there); return its key."""

    def set_emotion(self, valence: float, arousal: float, dominance: float) -> None:
        """Set the explicit emotion (V in [-1, 1], A and D in [0, 1])."""

    def set_text(self, text: str) -> str | None:
        """Read ``text`` as an emotion; return a short note for the user (e.g. "read as grief") or None."""

    def generate_midi(self, bars: int) -> str:
        """Compose ``bars`` bars for the current emotion into a MIDI file; return its path."""

    def get_state(self) -> EngineState:
        """A snapshot of what the engine is doing."""

    def set_model_enabled(self, model: str, enabled: bool) -> None:
        """Switch a network on or off (off: its fallback heuristic runs)."""

    def shutdown(self) -> None:
        """Stop the engine (called once, after the server has stopped, when a client asks for it)."""


def _one_line(text: str) -> str:
    line = " ".join(str(text).split()) or "unknown error"
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 1] + "…"


def _error(message: str, rid: int | str | None = None) -> bytes:
    return framing.encode(Error(id=rid, message=_one_line(message)))


class EngineServer:
    """A Unix-socket server in front of an :class:`EngineControl`.

    Parameters
    ----------
    handler : EngineControl
        The engine; its methods are called from connection threads.
    path : path, optional
        The socket; default :func:`kelly.ipc.paths.default_socket_path`.
    max_clients : int
        Connections served at once; one more is answered ``Error`` and closed.
    send_timeout : float
        Seconds a send may stall (a client that never reads) before its connection is dropped.

    Use ``with EngineServer(engine) as server: ...`` or :meth:`start`/:meth:`stop` (both
    return at once; the server runs in background threads), or :meth:`serve_forever`.
    """

    def __init__(self, handler: EngineControl, path: str | os.PathLike | None = None, *, max_clients: int = 64,
                 send_timeout: float = 10.0) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.handler = handler
        self._dedicated = path is None
        self.path = Path(path) if path is not None else paths.default_socket_path()
        self.max_clients = max_clients
        self.send_timeout = send_timeout
        self._lock = threading.Lock()
        self._state = "new"  # new -> starting -> running -> stopping -> stopped (starting -> cancelled -> stopped)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock_fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._serial = 0
        self._shutdown_thread: threading.Thread | None = None
        self._calls: dict[str, Callable[[BaseModel], BaseModel]] = {
            "LoadModel": self._load_model, "SetEmotion": self._set_emotion, "SetText": self._set_text,
            "GenerateMIDI": self._generate, "GetState": self._get_state, "SetModelEnabled": self._set_model_enabled,
        }

    # ----------------------------------------------------------------------- life cycle
    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def clients(self) -> int:
        """Connections being served now."""
        with self._conns_lock:
            return len(self._conns)

    def start(self) -> "EngineServer":
        """Create the socket and serve in background threads; returns at once.

        Raises
        ------
        KellyError
            The path is too long, its folder is unsafe, something that is not a socket is
            there, or another engine is listening there.
        """
        with self._lock:
            if self._state != "new":
                raise KellyError("this engine server was already started; make a new one")
            self._state = "starting"
        try:
            self._bind()
        except BaseException:
            self._release_files()
            self._state = "stopped"
            self._stopped.set()
            raise
        with self._lock:
            if self._state != "starting":  # stop() was called meanwhile
                self._release_files()
                self._state = "stopped"
                self._stopped.set()
                raise KellyError("the engine server was stopped while it started")
            self._state = "running"
        self._accept_thread = threading.Thread(target=self._accept_loop, name="kelly-ipc-accept", daemon=True)
        self._accept_thread.start()
        log.info("kelly engine listening at %s", self.path)
        return self

    def _bind(self) -> None:
        paths.check_length(self.path)
        folder = self.path.parent
        paths.prepare_dir(folder, dedicated=self._dedicated)
        shown = show_path(self.path)
        self._lock_fd = self._take_lock()
        paths.clear_stale(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener = listener
        # The socket is born 0600: no moment when others could connect. (The umask is process-wide: a file
        # another thread creates in these microseconds is born private too, which errs on the safe side.)
        old = os.umask(0o177)
        try:
            listener.bind(os.fspath(self.path))
        except OSError as exc:
            raise KellyError(f"cannot listen at {shown}: {exc.strerror or exc}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = os.lstat(self.path)
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) != 0o600:
            raise KellyError(f"socket {shown} did not come out private (mode {stat.S_IMODE(st.st_mode):o}); "
                             "refusing to serve on it")
        self._inode = (st.st_dev, st.st_ino)
        listener.listen(min(self.max_clients * 2, socket.SOMAXCONN))
        listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()

    def _take_lock(self) -> int:
        """Hold ``PATH.lock`` for the server's life: one engine per path.

        While it is held, checking for a stale socket and binding cannot be raced by a
        second engine; the kernel drops it if we die. The file is removed on stop while
        still locked, so a lock taken on a file that was meanwhile unlinked is retried.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        for _ in range(5):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise KellyError(f"cannot create the lock file {show_path(lock_path)}: "
                                 f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise KellyError(f"another kelly engine is listening at {show_path(self.path)}") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(lock_path))
            except OSError:
                same = False
            if same:
                return fd
            os.close(fd)  # the engine before us removed it as we opened it: take the new one
        raise KellyError(f"cannot take the lock file {show_path(lock_path)}: it keeps changing")

    def _release_files(self) -> None:
        """Close the listener, remove our socket file (only ours) and the lock file."""
        for s in (self._listener, self._wake_r, self._wake_w):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        if self._inode is not None:
            try:
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass
            self._inode = None
        if self._lock_fd is not None:
            try:
                os.unlink(self.path.with_name(self.path.name + ".lock"))
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving: no new connections, idle ones closed, the socket removed. Safe to call twice.

        Connections busy in an engine call are given ``timeout`` seconds in all to finish;
        after that they are left to end on their own (their threads are daemons).
        """
        with self._lock:
            if self._state in ("new", "stopped"):
                self._state = "stopped"
                self._stopped.set()
                return
            if self._state == "starting":  # start() sees this when it has bound, and undoes it
                self._state = "cancelled"
                return
            if self._state == "stopping":
                wait = True
            else:
                wait = False
                self._state = "stopping"
        if wait:
            self._stopped.wait(timeout + 1.0)
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        me = threading.current_thread()
        if self._accept_thread is not None and self._accept_thread is not me:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        self._release_files()  # new clients now see "no engine"
        with self._conns_lock:
            conns = list(self._conns.items())
            for conn, _ in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for _, thread in conns:
            if thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._state = "stopped"
        self._stopped.set()
        log.info("kelly engine socket %s closed", self.path)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (and a requested engine shutdown has run); True if it has."""
        if not self._stopped.wait(timeout):
            return False
        thread = self._shutdown_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def serve_forever(self) -> None:
        """Start (unless started) and block until a ``Shutdown`` request or :meth:`stop`; Ctrl-C stops too."""
        if self._state == "new":
            self.start()
        try:
            while not self.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> "EngineServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EngineServer({str(self.path)!r}, {self._state}, clients={self.clients})"

    # ----------------------------------------------------------------------- accepting
    def _accept_loop(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stopping.is_set():
            try:
                poller.poll()
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                log.warning("accept failed on %s: %s", self.path, exc)  # EMFILE and kin: breathe, go on
                time.sleep(0.05)
                continue
            if self._stopping.is_set():
                conn.close()
                return
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        conn.settimeout(self.send_timeout)
        with self._conns_lock:
            if len(self._conns) >= self.max_clients:
                full = True
            else:
                full = False
                self._serial += 1
                thread = threading.Thread(target=self._serve, args=(conn,), name=f"kelly-ipc-{self._serial}",
                                          daemon=True)
                self._conns[conn] = thread
        if full:
            try:
                conn.settimeout(0.5)
                conn.sendall(_error(f"too many clients: the engine serves at most {self.max_clients} at once; "
                                    "close one and try again"))
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()
            return
        thread.start()

    # ----------------------------------------------------------------------- one connection
    def _serve(self, conn: socket.socket) -> None:
        try:
            self._converse(conn)
        except OSError:
            pass  # the client went away (reset, broken pipe) or stalled past send_timeout
        except Exception as exc:  # noqa: BLE001 - a bug of ours must not kill the server; say so in the log
            log.error("connection to %s failed: %s", self.path, redacted_traceback(exc))  # no message: may quote text
        finally:
            with self._conns_lock:
                self._conns.pop(conn, None)
            try:
                conn.close()
            except OSError:
                pass

    def _converse(self, conn: socket.socket) -> None:
        """Read frames as they arrive, answer each in order, push State frames to a subscriber."""
        poller = select.poll()
        poller.register(conn, select.POLLIN)
        buf = bytearray()
        sub: _Subscription | None = None
        while not self._stopping.is_set():
            wait_ms = None if sub is None else max(0, int((sub.due - time.monotonic()) * 1000) + 1)
            ready = poller.poll(wait_ms)
            if sub is not None and time.monotonic() >= sub.due:
                if not self._push_state(conn, sub):
                    sub = None
            if not ready:
                continue
            chunk = conn.recv(RECV_BYTES)
            if not chunk:
                return  # the client closed (or stop() shut the socket down)
            buf += chunk
            while len(buf) >= framing.HEADER_BYTES:
                try:
                    n = framing.frame_length(bytes(buf[:framing.HEADER_BYTES]))
                except framing.FrameError as exc:
                    conn.sendall(_error(f"{exc}; closing the connection"))
                    return
                if len(buf) < framing.HEADER_BYTES + n:
                    break
                body = bytes(buf[framing.HEADER_BYTES:framing.HEADER_BYTES + n])
                del buf[:framing.HEADER_BYTES + n]
                new_sub = self._handle(conn, body)
                if new_sub is not None:
                    sub = new_sub
                    if not self._push_state(conn, sub):
                        sub = None

    def _handle(self, conn: socket.socket, body: bytes) -> "_Subscription | None":
        """Answer one frame; returns a new subscription when the frame was ``Subscribe``."""
        try:
            req = framing.decode_request(body)
        except framing.FrameError as exc:
            conn.sendall(_error(str(exc), exc.id))
            return None
        if isinstance(req, Subscribe):
            conn.sendall(framing.encode(Ok(id=req.id, message=f"State every {req.interval_ms} ms")))
            return _Subscription(req.id, req.interval_ms / 1000.0)
        if isinstance(req, Shutdown):
            conn.sendall(framing.encode(Ok(id=req.id, message="engine stopping")))
            self._request_shutdown()
            return None
        conn.sendall(self._answer(req)[0])
        return None

    def _answer(self, req: BaseModel) -> tuple[bytes, bool]:
        """The framed answer to ``req`` (the engine's result, or an Error saying why not) and whether it succeeded."""
        kind = req.type
        try:
            return framing.encode(self._calls[kind](req)), True
        except framing.FrameError as exc:  # our answer is too large to send
            log.error("answer to %s not sent: %s", kind, exc)
            return _error(f"internal error in {kind}: the answer is over the 1 MiB frame limit", req.id), False
        except KellyError as exc:
            return _error(str(exc), req.id), False
        except Exception as exc:  # noqa: BLE001 - the engine failed; the server keeps serving
            log.error("internal error in %s: %s", kind, redacted_traceback(exc))  # no message: it may quote text
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            return _error(f"internal error in {kind}: {detail}", req.id), False

    def _push_state(self, conn: socket.socket, sub: "_Subscription") -> bool:
        """Send one State frame of a subscription; False (an Error frame was sent instead) ends the subscription."""
        frame, ok = self._answer(GetState(id=sub.id))
        conn.sendall(frame)
        now = time.monotonic()
        sub.due += sub.interval
        if sub.due <= now:  # fell behind (a slow engine or client): keep the pace, do not burst
            sub.due = now + sub.interval
        return ok

    def _request_shutdown(self) -> None:
        """Stop the server, then the engine, from a thread of their own (stop() joins connection threads)."""
        with self._lock:
            if self._shutdown_thread is not None or self._state != "running":
                return

            def run() -> None:
                self.stop()
                try:
                    self.handler.shutdown()
                except Exception:  # noqa: BLE001 - nobody is left to tell but the log
                    log.exception("the engine failed to shut down")

            self._shutdown_thread = threading.Thread(target=run, name="kelly-ipc-shutdown", daemon=True)
        self._shutdown_thread.start()

    # ----------------------------------------------------------------------- the calls
    def _load_model(self, req: LoadModel) -> ModelLoaded:
        return ModelLoaded(id=req.id, name=self.handler.load_model(req.path))

    def _set_emotion(self, req: SetEmotion) -> Ok:
        self.handler.set_emotion(req.valence, req.arousal, req.dominance)
        return Ok(id=req.id)

    def _set_text(self, req: SetText) -> Ok:
        return Ok(id=req.id, message=self.handler.set_text(req.text))

    def _generate(self, req: GenerateMIDI) -> MIDIGenerated:
        return MIDIGenerated(id=req.id, path=os.fspath(self.handler.generate_midi(req.bars)), bars=req.bars)

    def _get_state(self, req: GetState) -> State:
        return State(id=req.id, state=self.handler.get_state())

    def _set_model_enabled(self, req: SetModelEnabled) -> Ok:
        self.handler.set_model_enabled(req.model, req.enabled)
        return Ok(id=req.id)


class _Subscription:
    """A connection's State stream: which id to repeat, how often, when next."""

    __slots__ = ("id", "interval", "due")

    def __init__(self, rid: int | str | None, interval: float) -> None:
        self.id = rid
        self.interval = interval
        self.due = time.monotonic()

