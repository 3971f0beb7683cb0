"""Where the engine's socket lives, and the checks that keep it private to its user.

Why these rules: whoever can connect to the socket can steer the engine (load a model,
write MIDI files), so only the user who started it may. The socket is created ``0600``
inside a folder only its owner can enter (``0700``); a folder or file someone else owns
is refused rather than trusted, and nothing that is not a socket is ever removed.

Default location: ``$XDG_RUNTIME_DIR/kelly/engine.sock`` when ``XDG_RUNTIME_DIR`` names a
folder the user owns (the per-user runtime folder systemd provides, emptied at logout),
else ``/tmp/kelly-<uid>/engine.sock``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from pathlib import Path

from kelly.errors import KellyError
from kelly.fileio import show_path

#: The file name of the socket inside its folder.
SOCKET_NAME = "engine.sock"
#: Longest socket path (bytes) ``bind``/``connect`` take: ``sun_path`` less its NUL byte.
MAX_SOCKET_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103


def _owned_dir(path: str | None) -> bool:
    """Whether ``path`` is a real directory owned by this user."""
    if not path:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def runtime_dir() -> Path:
    """The folder that holds the default socket (not created here)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if _owned_dir(xdg):
        return Path(xdg) / "kelly"
    return Path("/tmp") / f"kelly-{os.getuid()}"


def default_socket_path() -> Path:
    """``runtime_dir() / "engine.sock"``: where ``kelly engine`` listens and ``kelly ctl`` connects by default."""
    return runtime_dir() / SOCKET_NAME


def check_length(path: str | os.PathLike) -> None:
    """Refuse a path longer than a Unix socket address can hold, before ``bind`` or ``connect`` fails obscurely."""
    n = len(os.fsencode(path))
    if n > MAX_SOCKET_PATH_BYTES:
        raise KellyError(f"socket path {show_path(path)} is {n} bytes, over the {MAX_SOCKET_PATH_BYTES}-byte "
                         "limit of Unix socket addresses; choose a shorter --socket path")


def prepare_dir(folder: Path, *, dedicated: bool) -> None:
    """Make sure ``folder`` exists, is this user's, and lets nobody else in.

    Parameters
    ----------
    folder : Path
        The folder the socket goes in.
    dedicated : bool
        True for Kelly's own runtime folder (the default location): a symbolic link is
        refused and wider permissions are tightened to ``0700``. False for a folder the
        user chose with ``--socket``: it is never chmod-ed, but one that other users can
        write to (where they could replace the socket) is refused.

    Raises
    ------
    KellyError
        The folder cannot be made, is not a folder, belongs to another user, or is open to others.
    """
    shown = show_path(folder)
    try:
        folder.mkdir(mode=0o700, parents=not dedicated)
    except FileExistsError:
        pass
    except OSError as exc:
        raise KellyError(f"cannot create the socket folder {shown}: {exc.strerror or exc}") from None
    try:
        st = os.lstat(folder) if dedicated else os.stat(folder)
    except OSError as exc:
        raise KellyError(f"cannot use the socket folder {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
        raise KellyError(f"socket folder {shown} is {what}; remove it or choose another --socket path")
    if st.st_uid != os.getuid():
        raise KellyError(f"socket folder {shown} belongs to another user (uid {st.st_uid}); "
                         "choose a --socket path in a folder of your own")
    if dedicated and stat.S_IMODE(st.st_mode) != 0o700:
        try:
            os.chmod(folder, 0o700)
        except OSError as exc:
            raise KellyError(f"cannot make the socket folder {shown} private: {exc.strerror or exc}") from None
    elif not dedicated and st.st_mode & 0o022:
        raise KellyError(f"socket folder {shown} can be written by other users, who could replace the socket; "
                         "choose a --socket path in a folder only you can write to")


def is_listening(path: Path, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on the socket ``path`` (False for a stale socket file)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        # a full backlog (EAGAIN) or a slow accept (timeout) still means a listener
        return True
    finally:
        probe.close()
    return True


def clear_stale(path: Path) -> None:
    """Remove a socket file nobody listens on at ``path``; refuse anything else that is there.

    Call it only while holding the engine's lock file, so no other engine binds meanwhile.

    Raises
    ------
    KellyError
        ``path`` is not a socket, belongs to another user, or an engine answers on it.
    """
    shown = show_path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KellyError(f"cannot use socket path {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise KellyError(f"{shown} exists and is not a socket; remove it or choose another --socket path")
    if st.st_uid != os.getuid():
        raise KellyError(f"socket {shown} belongs to another user (uid {st.st_uid}); choose another --socket path")
    if is_listening(path):
        raise KellyError(f"another kelly engine is listening at {shown}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KellyError(f"cannot remove the stale socket {shown}: {exc.strerror or exc}") from None
