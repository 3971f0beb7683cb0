"""Where the training data lives, and the manifest that lists it.

Every dataset Kelly builds (the music21 corpus converted to MIDI, the pieces Kelly
composes for known emotions) is a folder of MIDI files plus a *manifest*: a JSON-lines
file with one object per piece. The manifest is append-only, so a conversion that is
stopped (Ctrl-C, a crash, a full disk) resumes where it was: pieces already listed are
skipped. A line cut short by a crash is ignored when reading.

The data folder is, first match wins:

1. the ``data_dir`` argument of the function you call;
2. the ``KELLY_DATA_DIR`` environment variable;
3. ``build/corpus`` under the current directory (git-ignored in Kelly's checkout).

Paths inside a manifest are relative to the data folder, so the folder can be moved.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from kelly.errors import FileFormatError, InputError, OutputError

#: Environment variable naming the data folder.
ENV_DATA_DIR = "KELLY_DATA_DIR"
#: Default data folder, relative to the current directory.
DEFAULT_DATA_DIR = Path("build") / "corpus"
#: Bumped when the meaning of a manifest field changes; written into every record.
DATA_VERSION = 1


def data_dir(path: str | os.PathLike | None = None, *, create: bool = False) -> Path:
    """The data folder: ``path``, else ``$KELLY_DATA_DIR``, else ``./build/corpus``.

    Parameters
    ----------
    path : path-like or None
    create : bool
        Make the folder (and its parents) if it does not exist.

    Raises
    ------
    InputError
        If the path exists and is not a folder.
    OutputError
        If ``create`` and the folder cannot be made.
    """
    chosen = Path(path) if path is not None else Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR)
    chosen = chosen.expanduser()
    if chosen.exists() and not chosen.is_dir():
        raise InputError(f"data folder {chosen}: exists and is not a folder; give a folder "
                         f"(data_dir=... or ${ENV_DATA_DIR})")
    if create:
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"data folder {chosen}: cannot create it ({exc.strerror or exc})") from None
    return chosen


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The cache is rebuilt from its sources, so there is no ``fsync`` (thousands of small
    files); a rename still means a reader never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{path}: cannot write it ({exc.strerror or exc})") from None


def read_manifest(path: str | os.PathLike, *, missing_ok: bool = True) -> list[dict[str, Any]]:
    """Every record of a JSON-lines manifest, in file order.

    Blank lines and lines that are not a JSON object (a line cut short by a crash) are
    skipped. When an id occurs twice, the later record wins (it is the newer one) and
    keeps the earlier one's position.

    Raises
    ------
    FileFormatError
        If the manifest is missing (unless ``missing_ok``) or unreadable.
    """
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise FileFormatError(f"{p}: no such manifest; convert the data first (see docs/data.md)")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    by_id: dict[str, dict] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            by_id[rec["id"]] = rec
    return list(by_id.values())


class Manifest:
    """An append-only JSON-lines manifest; the process that converts is its only writer.

    Appends take an advisory lock (``fcntl.flock``) where the platform has one, so two
    conversions into the same folder interleave whole lines, never halves.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        return read_manifest(self.path)

    def ids(self, *, statuses: Iterable[str] | None = None) -> set[str]:
        """Ids already listed (only those whose ``status`` is in ``statuses``, when given)."""
        wanted = None if statuses is None else set(statuses)
        return {r["id"] for r in self.records() if wanted is None or r.get("status") in wanted}

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (one line each, flushed); returns how many were written."""
        lines = [json.dumps(r, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n" for r in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "a+b") as fh:
                with _locked(fh):
                    fh.seek(0, os.SEEK_END)
                    if fh.tell() > 0:  # a line cut short by a crash: start on a fresh line
                        fh.seek(-1, os.SEEK_END)
                        if fh.read(1) != b"\n":
                            fh.write(b"\n")
                    fh.write("".join(lines).encode("utf-8"))
                    fh.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot append to the manifest ({exc.strerror or exc})") from None
        return len(lines)


@contextlib.contextmanager
def _locked(fh) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: one writer is the rule
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool = True):
    """Wrap ``iterable`` in a progress bar on standard error: tqdm if installed, else rich, else none."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit="piece", file=sys.stderr, dynamic_ncols=True)
    except ImportError:
        pass
    try:
        from rich.progress import track

        return track(iterable, total=total, description=desc or "working")
    except ImportError:
        return iterable


def safe_name(text: str) -> str:
    """A file name made of ``text``: letters, digits, ``-``, ``_`` and ``.``; anything else becomes ``_``."""
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in text)
    out = out.strip(".") or "_"
    return out[:150]
