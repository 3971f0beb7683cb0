"""Safe file writing and reading: nothing the user made is half-written, replaced unasked or read forever.

Writing
-------
Everything Kelly saves (MIDI, JSON explanations, intents, grooves, models) goes through
:func:`write_files_atomic` (or its one-file forms :func:`write_bytes_atomic`,
:func:`write_text_atomic`, :func:`write_json_atomic`):

* each file is first written completely to a temporary file in its destination folder,
  flushed and ``fsync``-ed, then moved into place with one ``rename``; a crash or a full
  disk never leaves a truncated file under a user's name. On Linux the temporary file is
  anonymous (``O_TMPFILE``) until it is complete, so a process killed while writing leaves
  nothing behind; elsewhere it is ``.NAME.XXXXXXXX.tmp``, and such leftovers older than an
  hour are swept away the next time Kelly writes NAME;
* a destination that is a symbolic link, a folder, a device, a named pipe or a socket is
  refused (one line naming the path and what it is): Kelly only ever replaces regular files;
* ``overwrite=False`` (the commands' default, ``--force`` turns it on) refuses an existing
  destination, atomically: the finished file is hard-linked to its name, which fails if the
  name exists, so a file that appears meanwhile is never replaced either;
* ``inputs`` names the files a command reads; a destination that is one of them (same
  resolved path, or the same file through another link) is refused even when overwriting;
* a replaced file keeps its permission bits; a new one gets ``0o644`` less the umask
  (``mkstemp`` alone would leave ``0o600``);
* every ``OSError`` (a full disk, a missing permission, a 300-character name) becomes one
  :class:`~kelly.errors.OutputError` line.

Pairs: :func:`write_files_atomic` writes several files as a group. See its docstring for
the order and what a kill at any moment can leave.

Streams: :func:`atomic_output` gives a file object to write a file too large for memory
(a WAV) with the same guarantees.

Scratch: :func:`scratch_dir` is a private temporary folder for intermediate files (a
render's MIDI and raw samples) that a later run removes if a kill left it behind.

A full disk: ``ENOSPC``, ``EDQUOT`` and ``EFBIG`` (a file-size limit) become one line that
says the disk is full and that nothing was replaced (:func:`write_error`).

Reading
-------
:func:`read_json` (and :func:`read_regular_file` under it) reads only regular files,
checks the size before reading (so ``/dev/zero`` or a named pipe fails at once, never
blocks), limits nesting depth, and rejects integers over 4,300 digits and numbers that
overflow to infinity or are NaN: one :class:`~kelly.errors.FileFormatError` line each.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
import time
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Mapping

from kelly.errors import FileFormatError, OutputError

#: Temporary files of ours older than this (seconds) are swept when writing beside them.
STALE_TEMP_SECONDS = 3600
#: Largest JSON input :func:`read_json` reads unless told otherwise.
DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024
#: Deepest nesting of arrays and objects :func:`read_json` accepts unless told otherwise.
DEFAULT_MAX_JSON_DEPTH = 64
#: Longest integer (in digits) a JSON input may hold; Python's own int-parsing limit.
MAX_INT_DIGITS = 4300
#: Mode of a new file before the umask.
NEW_FILE_MODE = 0o644

_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = 8  # characters of randomness in a temporary name, as tempfile.mkstemp uses
_TMP_NAME_BYTES = 200  # the NAME part of .NAME.XXXXXXXX.tmp is cut to this, so it fits in 255 bytes


class DestinationExists(OutputError):
    """A destination exists and replacing it was not asked for (no ``--force``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        super().__init__(f"{show_path(path)} already exists; use --force to replace it")


class OutputIsInput(OutputError):
    """A destination is a file the command reads (refused even with ``--force``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        super().__init__(f"{show_path(path)} is also an input of this command; Kelly never writes over its input, "
                         f"even with --force: choose another output name")


def _phase(event: str) -> None:
    """Progress hook: called at each step of :func:`write_files_atomic`; a no-op.

    The kill tests (``tests/kill_pair.py``, ``tests/kill_faults.py``) replace it to see, and
    to stop at, the step a kill lands in. Events: ``begin``, ``temp-written:NAME``,
    ``temps-synced``, ``temps-named``, ``committed:NAME``, ``done`` (:func:`atomic_output`:
    ``begin`` once its temporary file is open, then ``temp-written:NAME``,
    ``committed:NAME``, ``done``).
    """


# --------------------------------------------------------------------------- helpers
def show_path(path: str | os.PathLike, limit: int = 160) -> str:
    """A path for a one-line message: as given, or shortened in the middle when very long."""
    text = os.fspath(path)
    if isinstance(text, bytes):  # pragma: no cover - we never build bytes paths
        text = os.fsdecode(text)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _a(what: str) -> str:
    """``what`` with its indefinite article ("an intent file", "a groove template")."""
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def _strerror(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


#: Errors that mean "no room": a full disk, a full quota, or a file-size limit (``EFBIG``, from
#: ``ulimit -f`` or a filesystem's largest file). They get one message that says so.
NO_SPACE_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None)


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` for a full disk, a full quota or a file-size limit."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def write_error(path: str | os.PathLike, exc: BaseException) -> OutputError:
    """The one-line :class:`OutputError` for a write to ``path`` that failed with ``exc``.

    A full disk (``ENOSPC``, ``EDQUOT``) or a file-size limit (``EFBIG``) says so in words a
    user can act on, and that the old file is untouched (every write is to a temporary
    file first); any other error gives the system's reason.
    """
    if is_no_space(exc):
        return OutputError(f"cannot write {show_path(path)}: no space left: the disk is full or the file is too "
                           f"large for it ({_strerror(exc)}); nothing was replaced: free some space and run again")
    return OutputError(f"cannot write {show_path(path)}: {_strerror(exc)}")


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (same resolved path, or same inode)."""
    try:
        if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
            return True
    except (OSError, ValueError):
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _tmp_prefix(name: str) -> str:
    """``.NAME.`` for temporary files, NAME cut so the whole temporary name stays short."""
    raw = os.fsencode(name)[:_TMP_NAME_BYTES]
    return "." + raw.decode("utf-8", "ignore") if len(raw) == _TMP_NAME_BYTES else "." + name


def _tmp_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """Our temporary names for ``names``: ``.NAME.`` + 8 characters of ``[a-z0-9_]`` + ``.tmp``."""
    alternatives = "|".join(re.escape(_tmp_prefix(n)) for n in names)
    return re.compile(r"(?:%s)\.[a-z0-9_]{%d}%s\Z" % (alternatives, _TMP_RANDOM, re.escape(_TMP_SUFFIX)))


def _sweep_stale(folder: Path, names: Iterable[str], now: float) -> None:
    """Remove our temporary files for ``names`` in ``folder`` older than :data:`STALE_TEMP_SECONDS`.

    Only names of the exact shape we make are touched, and only regular files; a temporary
    file is alive for milliseconds, so one an hour old was left by a killed process.
    """
    pattern = _tmp_pattern(names)
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not pattern.match(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TEMP_SECONDS:
                        os.unlink(entry.path)
                except OSError:
                    continue
    except OSError:
        pass


#: The file in a scratch folder naming the process that made it.
_SCRATCH_OWNER = ".kelly-owner"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone's process: not ours to judge
    return True


def _sweep_scratch(parent: Path, prefix: str) -> int:
    """Remove scratch folders ``prefix*`` in ``parent`` whose maker is gone (killed mid-work); returns how many.

    Only folders that are this user's own, are not links, and hold an owner file naming a
    process that no longer exists are removed (a folder without one is still being made, or
    is not ours).
    """
    import shutil

    removed = 0
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
                continue
            owner = Path(entry.path, _SCRATCH_OWNER)
            ost = owner.lstat()
            if not stat.S_ISREG(ost.st_mode) or ost.st_size > 64:
                continue
            pid = int(owner.read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder (``0700``) for intermediate files, removed afterwards, even after a kill.

    As :class:`tempfile.TemporaryDirectory`, with one difference: a process killed while
    the folder exists (``kill -9``, a crash, the machine's power) cannot remove it, and a
    render's scratch files can be hundreds of megabytes. So the folder names the process
    that made it, and making a new one first removes those whose process is gone
    (:func:`_sweep_scratch`).
    """
    parent = Path(tempfile.gettempdir())
    _sweep_scratch(parent, prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (folder / _SCRATCH_OWNER).write_text(f"{os.getpid()}\n", encoding="ascii")
        yield folder
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def check_destination(path: str | os.PathLike, *, overwrite: bool = True,
                      inputs: Iterable[str | os.PathLike] = ()) -> os.stat_result | None:
    """Check that ``path`` may be written; returns its ``lstat`` (``None`` if it does not exist).

    Raises
    ------
    OutputError
        If ``path`` is a symbolic link, folder, device, FIFO or socket; if it is one of
        ``inputs`` (even with ``overwrite``); if its name cannot be looked up (too long, a
        file where a folder should be, no permission).
    OutputIsInput
        If it is one of ``inputs``.
    DestinationExists
        If it exists and ``overwrite`` is false.
    """
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"cannot write {show_path(target)}: {_strerror(exc)}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{show_path(target)} is {_kind(st.st_mode)}; Kelly writes only regular files, "
                          f"so give another file name")
    for item in inputs:
        if item is not None and _same_file(target, Path(item)):
            raise OutputIsInput(target)
    if st is not None and not overwrite:
        raise DestinationExists(target)
    return st


def check_destinations(paths: Iterable[str | os.PathLike], *, overwrite: bool = True,
                       inputs: Iterable[str | os.PathLike] = ()) -> None:
    """:func:`check_destination` for each path (commands call it before doing slow work)."""
    inputs = tuple(inputs)
    for path in paths:
        check_destination(path, overwrite=overwrite, inputs=inputs)


# --------------------------------------------------------------------------- writing
_ANON_OK = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


class _Temp:
    """One file on its way to ``target``: an open descriptor, and a temporary name once it has one."""

    def __init__(self, target: Path, data: bytes | None, mode: int) -> None:
        self.target = target
        self.data = data  # None for a stream (:func:`atomic_output`): the caller writes to ``fd``
        self.mode = mode
        self.fd: int | None = None
        self.dir_fd: int | None = None
        self.tmp: Path | None = None  # named temporary file (removed on failure)
        self.anonymous = False

    def open(self) -> None:
        """Open the temporary file: anonymous (``O_TMPFILE``) where the system can, else ``.NAME.XXXXXXXX.tmp``.

        Opened for reading too, so that a stream can be copied to a named file if the
        anonymous one cannot be linked after all (:meth:`_degrade`).
        """
        if _ANON_OK:
            folder = self.target.parent
            try:
                self.fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
                self.dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                self.anonymous = True
            except OSError:  # a filesystem without O_TMPFILE
                self._drop_fds()
        if not self.anonymous:
            fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(self.target.name) + ".", suffix=_TMP_SUFFIX,
                                       dir=self.target.parent)
            self.fd, self.tmp = fd, Path(tmp)

    def finish(self) -> None:
        """Set the mode and ``fsync``: the temporary file is complete."""
        os.fchmod(self.fd, self.mode)
        os.fsync(self.fd)

    def write(self) -> None:
        """Open, write ``data``, set the mode and ``fsync``."""
        self.open()
        view = memoryview(self.data)
        while view:
            view = view[os.write(self.fd, view):]
        self.finish()

    def _drop_fds(self) -> None:
        for fd in (self.fd, self.dir_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self.dir_fd = None

    def _link(self, dest: Path) -> None:
        """Give the anonymous file the name ``dest`` (``FileExistsError`` if it exists)."""
        os.link(f"/proc/self/fd/{self.fd}", dest, src_dir_fd=self.dir_fd, follow_symlinks=True)

    def _degrade(self) -> None:
        """The anonymous file cannot be linked here (a sandbox, an odd /proc): write a named one instead."""
        global _ANON_OK
        _ANON_OK = False
        old = self.fd
        self.fd = None  # keep the anonymous file open: a stream is copied from it
        self._drop_fds()
        self.anonymous = False
        try:
            if self.data is not None:
                self.write()
                return
            self.open()
            at = 0
            while chunk := os.pread(old, 1 << 20, at):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view):]
                at += len(chunk)
            self.finish()
        finally:
            os.close(old)

    def name(self) -> None:
        """Make sure the finished file has a temporary name (for a rename over the target)."""
        prefix = _tmp_prefix(self.target.name) + "."
        for _ in range(100):
            if not self.anonymous:
                return
            candidate = self.target.parent / (prefix + os.urandom(_TMP_RANDOM // 2).hex() + _TMP_SUFFIX)
            try:
                self._link(candidate)
            except FileExistsError:
                continue
            except OSError:
                self._degrade()
                return
            self.tmp = candidate
            return
        raise OutputError(f"cannot write {show_path(self.target)}: no free temporary name")  # pragma: no cover

    def replace(self) -> None:
        os.replace(self.tmp, self.target)
        self.tmp = None

    def create(self) -> bool:
        """Give the finished file its final name only if that name is free; ``False`` if it is taken."""
        if self.anonymous:
            try:
                self._link(self.target)
                return True
            except FileExistsError:
                return False
            except OSError:
                self._degrade()
        try:
            os.link(self.tmp, self.target, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError as exc:  # a filesystem without hard links: check, then rename
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS,
                                 errno.EXDEV):
                raise
            if os.path.lexists(self.target):
                return False
            self.replace()
            return True
        os.unlink(self.tmp)
        self.tmp = None
        return True

    def close(self) -> None:
        self._drop_fds()
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_files_atomic(files: Mapping[str | os.PathLike, bytes], *, overwrite: bool = True,
                       inputs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Write several files as a group, each atomically; returns their paths in order.

    Parameters
    ----------
    files : mapping path → bytes
        In commit order: the first file gets its name first. Put the file that describes
        the others first (the explanation JSON before its MIDI).
    overwrite : bool
        Replace existing regular files (``--force``); otherwise an existing destination
        raises :class:`DestinationExists` and nothing is written.
    inputs : paths
        Files the command reads; writing over one is refused even with ``overwrite``.

    Order, and what a kill leaves
    -----------------------------
    1. Every destination is checked (kind, input, existence) before anything is written.
    2. Every file is written completely to its own temporary file, flushed and
       ``fsync``-ed: nothing visible has changed yet (on Linux the temporary files have
       no name at all until step 3).
    3. Only then are they committed, in order, back to back: each is renamed over its
       destination (``overwrite``) or hard-linked to a free name (otherwise).
    4. The folders are ``fsync``-ed.

    So a kill before step 3 leaves the old files untouched (and at most whole temporary
    files, swept after an hour); a kill after step 3 leaves the new files. POSIX cannot
    rename two names at once, so a kill between the commits of step 3 (a few
    microseconds) leaves the first files new and the later ones old: for a composition,
    a new explanation beside the old MIDI, never a new MIDI beside an old explanation,
    and the explanation records the SHA-256 of the MIDI it explains
    (``files.midi_sha256``), so that state is detectable. No destination ever holds a
    partial file.

    Raises
    ------
    OutputError
        See :func:`check_destination`; also when a folder cannot be created or a file
        cannot be written (full disk, no permission), with the system's reason.
    DestinationExists
        If a destination exists and ``overwrite`` is false.
    """
    items = [(Path(p), bytes(d)) for p, d in files.items()]
    inputs = tuple(inputs)
    targets = [t for t, _ in items]
    if len({os.path.normcase(os.path.realpath(t)) for t in targets}) != len(targets):
        raise OutputError("two outputs of this command have the same name: " + ", ".join(map(show_path, targets)))
    _phase("begin")
    stats = [check_destination(t, overwrite=overwrite, inputs=inputs) for t in targets]
    new_mode = NEW_FILE_MODE & ~_umask()
    temps: list[_Temp] = []
    current = targets[0] if targets else None
    try:
        now = time.time()
        folders: dict[Path, list[str]] = {}
        for target in targets:
            current = target
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.setdefault(target.parent, []).append(target.name)
        for folder, names in folders.items():
            _sweep_stale(folder, names, now)
        for (target, data), st in zip(items, stats):
            current = target
            temp = _Temp(target, data, stat.S_IMODE(st.st_mode) if st is not None else new_mode)
            temps.append(temp)
            temp.write()
            _phase(f"temp-written:{target.name}")
        _phase("temps-synced")
        if overwrite:
            for temp in temps:
                current = temp.target
                temp.name()
            _phase("temps-named")
            for temp in temps:
                current = temp.target
                temp.replace()
                _phase(f"committed:{temp.target.name}")
        else:
            created: list[Path] = []
            for temp in temps:
                current = temp.target
                if not temp.create():
                    for path in created:  # ours, made a moment ago: take them back
                        try:
                            os.unlink(path)
                        except OSError:
                            pass
                    raise DestinationExists(temp.target)
                created.append(temp.target)
                _phase(f"committed:{temp.target.name}")
        for folder in folders:
            _fsync_folder(folder)
        _phase("done")
    except OSError as exc:
        raise write_error(current, exc) from None
    finally:
        for temp in temps:
            temp.close()
    return targets


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True,
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[BinaryIO]:
    """A binary file to stream into, that becomes ``path`` only once the block ends without an error.

    For files too large to hold in memory (a WAV of an hour of music): the same
    guarantees as :func:`write_files_atomic` (checks first; a temporary file in the
    destination folder, anonymous on Linux, so a kill leaves nothing; ``fsync``; one
    ``rename``, or a hard link without ``overwrite``; permission bits kept). The file
    object is seekable (``wave`` rewrites its header). Any ``OSError`` in the block or
    while committing becomes one :class:`OutputError` line naming ``path`` (a full
    disk says so, see :func:`write_error`); any exception leaves the old file as it was.

    Raises
    ------
    OutputError, DestinationExists
        As :func:`write_files_atomic`.
    """
    target = Path(path)
    st = check_destination(target, overwrite=overwrite, inputs=tuple(inputs))
    temp = _Temp(target, None, stat.S_IMODE(st.st_mode) if st is not None else NEW_FILE_MODE & ~_umask())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(target.parent, [target.name], time.time())
        temp.open()
        with os.fdopen(os.dup(temp.fd), "w+b") as handle:
            _phase("begin")
            yield handle
            handle.flush()
        temp.finish()
        _phase(f"temp-written:{target.name}")
        if overwrite:
            temp.name()
            temp.replace()
        elif not temp.create():
            raise DestinationExists(target)
        _phase(f"committed:{target.name}")
        _fsync_folder(target.parent)
        _phase("done")
    except OSError as exc:
        raise write_error(target, exc) from None
    finally:
        temp.close()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = True,
                       inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders (see :func:`write_files_atomic`).

    Raises
    ------
    OutputError
        If the destination is not a regular file, is an input, or cannot be written.
    DestinationExists
        If it exists and ``overwrite`` is false.
    """
    return write_files_atomic({path: data}, overwrite=overwrite, inputs=inputs)[0]


def write_text_atomic(path: str | os.PathLike, text: str, **kw: Any) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (keywords as :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), **kw)


def json_bytes(obj: Any) -> bytes:
    """``obj`` as the indented UTF-8 JSON Kelly writes (a newline at the end)."""
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any, **kw: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (keywords as :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, json_bytes(obj), **kw)


# --------------------------------------------------------------------------- reading
def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB".replace(".0 MiB", " MiB")
    if n >= 1024:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{n} bytes"


def open_regular_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None,
                      error: type[Exception] = FileFormatError, allow_empty: bool = True) -> int:
    """A read-only descriptor of a regular file; never opens a device, FIFO or socket.

    The kind (and, when ``max_bytes`` is given, the size) is checked with ``stat`` before
    opening (a FIFO without a writer would block ``open``; ``/dev/zero`` never ends) and
    again on the open descriptor. The caller closes the descriptor.

    Raises
    ------
    FileFormatError (or ``error``)
        If the file is missing, not a regular file, empty (with ``allow_empty=False``),
        larger than ``max_bytes`` or cannot be opened.
    """
    p = Path(path)
    shown = show_path(p)

    def check(st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{shown}: is a folder, not {_a(what)}")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{shown}: is {_kind(st.st_mode)}, not {_a(what)} (Kelly reads only regular files)")
        if not allow_empty and st.st_size == 0:
            raise error(f"{shown}: is empty (0 bytes), not {_a(what)}")
        if max_bytes is not None and st.st_size > max_bytes:
            raise error(f"{shown}: is {_size(st.st_size)}; {_a(what)} may be at most {_size(max_bytes)}")

    try:
        check(os.stat(p))
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise error(f"{shown}: cannot read {what} ({_strerror(exc) if isinstance(exc, OSError) else exc})") \
            from None
    try:
        check(os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int = DEFAULT_MAX_JSON_BYTES,
                      error: type[Exception] = FileFormatError) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (opened by :func:`open_regular_file`).

    Raises
    ------
    FileFormatError (or ``error``)
        If the file is missing, not a regular file, larger than ``max_bytes`` or unreadable.
    """
    shown = show_path(Path(path))
    fd = open_regular_file(path, what=what, max_bytes=max_bytes, error=error)
    try:
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{shown}: is larger than {_size(max_bytes)}, the most {_a(what)} may be")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{shown}: cannot read {what} ({_strerror(exc)})") from None
    finally:
        os.close(fd)


class _NumberError(ValueError):
    """A JSON number Kelly will not take (too long, infinite, NaN)."""


def _parse_int(token: str) -> int:
    digits = len(token) - token.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _NumberError(f"an integer with {digits} digits (at most {MAX_INT_DIGITS})")
    return int(token)


def _parse_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NumberError(f"the number {token[:24]}{'…' if len(token) > 24 else ''} is out of range")
    return value


def _parse_constant(token: str) -> float:
    raise _NumberError(f"{token} is not a number Kelly accepts")


# A JSON string (escapes included), blanked out before looking at structure and numbers. The scans
# work on UTF-8 bytes: bytes.translate and bytes.replace run in C, even over 16 MiB of brackets.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = 1
_DEPTH_STEP[ord("]")] = -1
# Numbers that might overflow: an exponent of three or more digits, or a run of 200 or more digits
# (anything shorter is below 10**298, so finite). Only then are numbers parsed one by one.
_SUSPECT_EXPONENT = re.compile(rb"[eE][+-]?[0-9]{3}")
_SUSPECT_DIGITS = re.compile(rb"(?<![0-9])[0-9]{200}")


def _skeleton(raw: bytes) -> bytes:
    return _STRING.sub(b'""', raw)


def _bracket_levels_max(brackets: bytes) -> int:
    """The deepest level of a string of ``[`` and ``]`` (running sum of +1/-1)."""
    if len(brackets) < 200_000:
        return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)
    import numpy as np  # only for very large inputs; every command that reads such files has it loaded

    steps = np.where(np.frombuffer(brackets, dtype=np.uint8) == ord("["), 1, -1)
    return int(np.cumsum(steps).max())


def _deeper_than(skeleton: bytes, limit: int) -> bool:
    """Whether arrays/objects in a string-free JSON skeleton nest more than ``limit`` deep.

    Linear and in C: ``bytes.translate`` keeps the brackets, then a running sum over them.
    """
    brackets = skeleton.translate(_SAME_BRACKETS, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    return _bracket_levels_max(brackets) > limit


def json_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (0 for a scalar), without parsing it."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return _bracket_levels_max(_skeleton(raw).translate(_SAME_BRACKETS, _NOT_BRACKETS))


def parse_json_text(text: str, *, source: str = "JSON", what: str = "JSON file", hint: str = "",
                    max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``text`` with :func:`read_json`'s limits; ``source`` names it in messages."""
    skeleton = _skeleton(text.encode("utf-8", "surrogatepass"))
    if _deeper_than(skeleton, max_depth):
        raise FileFormatError(f"{source}: not a usable {what}: nested more than {max_depth} levels deep")
    careful = bool(_SUSPECT_EXPONENT.search(skeleton) or _SUSPECT_DIGITS.search(skeleton))
    try:
        if careful:
            return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
        return json.loads(text, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}){hint}") from None
    except _NumberError as exc:
        raise FileFormatError(f"{source}: not a usable {what}: {exc}") from None
    except RecursionError:
        raise FileFormatError(f"{source}: not a usable {what}: nested too deeply") from None
    except ValueError as exc:  # Python's own integer-length limit, and anything like it
        raise FileFormatError(f"{source}: not a usable {what}: {str(exc).splitlines()[0] if str(exc) else exc!r}") \
            from None


def read_json(path: str | os.PathLike, *, what: str = "JSON file", hint: str = "",
              max_bytes: int = DEFAULT_MAX_JSON_BYTES, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """Read and parse a UTF-8 JSON file, turning every failure into one clear error.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, for messages ("groove template", "intent file").
    hint : str
        Appended to the "not JSON" message, e.g. how to make a valid file.
    max_bytes : int
        Largest file accepted, checked before reading (default 16 MiB).
    max_depth : int
        Deepest nesting of arrays and objects accepted (default 64).

    Raises
    ------
    FileFormatError
        If the file is missing, a folder, a device, FIFO or socket, too large, unreadable,
        not UTF-8, not JSON, nested too deeply, or holds an integer of more than 4,300
        digits, a number that overflows to infinity, or NaN/Infinity.
    """
    data = read_regular_file(path, what=what, max_bytes=max_bytes)
    shown = show_path(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{shown}: cannot read {what} (not UTF-8 text: byte {exc.start})") from None
    return parse_json_text(text, source=shown, what=what, hint=hint, max_depth=max_depth)
