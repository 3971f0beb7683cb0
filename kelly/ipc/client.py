"""A client of the engine socket: what ``kelly ctl`` (and a Python script) uses to steer a running engine.

:meth:`KellyClient.request` sends any request model and returns the answer model as it
came (an ``Error`` included); the convenience methods (:meth:`~KellyClient.state`,
:meth:`~KellyClient.set_emotion` ...) build the request, check the answer and raise
:class:`EngineError` with the engine's message when it refused.

Every request gets an ``id`` (counting up) unless it has one, and the answer must repeat
it: a client never mistakes a late answer for the one it waits for. A request that gets
no answer within the timeout closes the connection (a late answer would otherwise be
read as the next one's).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from pathlib import Path
from typing import Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from kelly.contracts import (EngineState, Error, GenerateMIDI, GetState, LoadModel, MIDIGenerated, ModelLoaded, Ok,
                             SetEmotion, SetModelEnabled, SetText, Shutdown, State, Subscribe)
from kelly.errors import InputError, KellyError
from kelly.fileio import show_path
from kelly.ipc import framing, paths

M = TypeVar("M", bound=BaseModel)

#: Seconds ``generate`` waits at least: composing many bars takes a while.
GENERATE_TIMEOUT = 120.0


class EngineError(KellyError):
    """The engine answered a request with an ``Error``; the message is the engine's."""


def build(kind: type[M], /, **fields) -> M:
    """A request model from keyword fields; an invalid value is one :class:`InputError` line."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        raise InputError(framing.summarise(exc, kind)) from None


def connect(path: str | os.PathLike, timeout: float) -> socket.socket:
    """A connected socket to the engine at ``path``, or a KellyError that says how to start one."""
    paths.check_length(path)
    shown = show_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise KellyError(f"no kelly engine is listening at {shown}; start one with `kelly engine`") from None
    except PermissionError:
        sock.close()
        raise KellyError(f"cannot connect to the kelly engine at {shown}: permission denied "
                         "(the socket belongs to another user)") from None
    except TimeoutError:
        sock.close()
        raise KellyError(f"the kelly engine at {shown} did not accept a connection within {timeout:g} s") from None
    except OSError as exc:
        sock.close()
        raise KellyError(f"cannot connect to the kelly engine at {shown}: {exc.strerror or exc}") from None
    return sock


class KellyClient:
    """One connection to a running engine.

    Parameters
    ----------
    path : path, optional
        The engine's socket; default :func:`kelly.ipc.paths.default_socket_path`.
    timeout : float
        Seconds to wait for each answer (``generate`` waits at least :data:`GENERATE_TIMEOUT`).

    Raises
    ------
    KellyError
        No engine listens at ``path`` ("start one with `kelly engine`").
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 5.0) -> None:
        self.path = Path(path) if path is not None else paths.default_socket_path()
        self.timeout = timeout
        self._sock: socket.socket | None = connect(self.path, timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------- plumbing
    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> "KellyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KellyClient({str(self.path)!r}, {'open' if self._sock else 'closed'})"

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise KellyError(f"the kelly engine at {show_path(self.path)} closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read(self, sock: socket.socket, timeout: float) -> BaseModel:
        """One answer frame from ``sock``, decoded; any failure closes nothing (the caller does)."""
        sock.settimeout(timeout)
        try:
            n = framing.frame_length(self._recv_exact(sock, framing.HEADER_BYTES))
            body = self._recv_exact(sock, n)
        except TimeoutError:
            raise KellyError(f"the kelly engine at {show_path(self.path)} did not answer within {timeout:g} s") \
                from None
        except framing.FrameError as exc:
            raise KellyError(f"the kelly engine sent a bad answer: {exc}") from None
        except OSError as exc:
            raise KellyError(f"lost the connection to the kelly engine at {show_path(self.path)}: "
                             f"{exc.strerror or exc}") from None
        try:
            return framing.decode_response(body)
        except framing.FrameError as exc:
            raise KellyError(f"the kelly engine sent a bad answer: {exc}") from None

    def _send(self, sock: socket.socket, message: BaseModel) -> None:
        frame = framing.encode(message)
        try:
            sock.sendall(frame)
        except OSError as exc:
            # the engine may have said why before it closed ("too many clients"): read that first
            try:
                said = self._read(sock, 0.2)
            except KellyError:
                said = None
            if isinstance(said, Error):
                raise EngineError(said.message) from None
            raise KellyError(f"lost the connection to the kelly engine at {show_path(self.path)}: "
                             f"{exc.strerror or exc}") from None

    def request(self, message: BaseModel, *, timeout: float | None = None) -> BaseModel:
        """Send one request and return its answer model (``Error`` included, not raised).

        An ``id`` is given to a request without one; the answer must repeat it.

        Raises
        ------
        KellyError
            The connection is closed or lost, no answer came within the timeout, or the
            answer was not a valid message for this request (the connection is then closed).
        """
        if self._sock is None:
            raise KellyError("this connection to the kelly engine is closed")
        if message.id is None:
            message = message.model_copy(update={"id": next(self._ids)})
        with self._lock:
            try:
                self._send(self._sock, message)
                answer = self._read(self._sock, self.timeout if timeout is None else timeout)
            except KellyError:
                self.close()  # a late answer must not be read as the next request's
                raise
        if answer.id != message.id and not (isinstance(answer, Error) and answer.id is None):
            self.close()
            raise KellyError(f"the kelly engine answered request {message.id!r} with the answer to {answer.id!r}")
        return answer

    def ask(self, message: BaseModel, kind: type[M], *, timeout: float | None = None) -> M:
        """Send ``message`` and return its answer as a ``kind``; an ``Error`` answer raises :class:`EngineError`."""
        answer = self.request(message, timeout=timeout)
        if isinstance(answer, Error):
            raise EngineError(answer.message)
        if not isinstance(answer, kind):
            raise KellyError(f"the kelly engine answered {message.type} with {answer.type}, not {kind.__name__}")
        return answer

    # ----------------------------------------------------------------------- requests
    def state(self) -> EngineState:
        """What the engine is doing now."""
        return self.ask(GetState(), State).state

    def set_emotion(self, valence: float, arousal: float, dominance: float = 0.5) -> None:
        """Set the explicit emotion: V in [-1, 1], A and D in [0, 1]."""
        self.ask(build(SetEmotion, valence=valence, arousal=arousal, dominance=dominance), Ok)

    def set_text(self, text: str) -> str | None:
        """Tell the engine how you feel in words; returns its note on the reading, if any."""
        return self.ask(build(SetText, text=text), Ok).message

    def generate(self, bars: int = 8, *, timeout: float | None = None) -> str:
        """Compose ``bars`` bars into a MIDI file in the engine's output folder; returns its path."""
        wait = timeout if timeout is not None else max(self.timeout, GENERATE_TIMEOUT)
        return self.ask(build(GenerateMIDI, bars=bars), MIDIGenerated, timeout=wait).path

    def load_model(self, path: str) -> str:
        """Load a network from ``path`` inside the engine's models folder; returns its key."""
        return self.ask(build(LoadModel, path=path), ModelLoaded).name

    def set_model_enabled(self, model: str, enabled: bool = True) -> None:
        """Switch a network on or off (off: its fallback heuristic runs)."""
        self.ask(build(SetModelEnabled, model=model, enabled=enabled), Ok)

    def shutdown(self) -> None:
        """Ask the engine to stop; returns once it has said it will."""
        self.ask(Shutdown(), Ok)

    def subscribe(self, interval_ms: int = 100) -> Iterator[EngineState]:
        """The engine's state every ``interval_ms``, on a connection of its own, until the iterator is closed.

        The subscription has its own connection so that this client can still make
        requests meanwhile. Errors: :class:`EngineError` if the engine refuses a frame,
        :class:`KellyError` if the connection is lost or goes quiet for longer than the
        timeout plus two intervals.
        """
        request = build(Subscribe, interval_ms=interval_ms, id="subscribe")
        sock = connect(self.path, self.timeout)
        return self._stream(sock, request)

    def _stream(self, sock: socket.socket, request: Subscribe) -> Iterator[EngineState]:
        try:
            self._send(sock, request)
            first = self._read(sock, self.timeout)
            if isinstance(first, Error):
                raise EngineError(first.message)
            if not isinstance(first, Ok):
                raise KellyError(f"the kelly engine answered Subscribe with {first.type}, not Ok")
            patience = self.timeout + 2 * request.interval_ms / 1000.0
            while True:
                frame = self._read(sock, patience)
                if isinstance(frame, Error):
                    raise EngineError(frame.message)
                if isinstance(frame, State):
                    yield frame.state
        finally:
            sock.close()
