"""Atomic file writing: nothing the user made is ever half-written.

Everything Kelly saves (MIDI, JSON explanations, models, checkpoints) goes to a
temporary file in the destination folder and is renamed into place, so a crash or a
full disk never leaves a truncated file where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kelly.errors import OutputError


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    Raises
    ------
    OutputError
        If the folder cannot be created or written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, *, what: str = "JSON file", hint: str = "") -> Any:
    """Read and parse a UTF-8 JSON file, turning every failure into one clear error.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, for messages ("groove template", "intent file").
    hint : str
        Appended to the "not JSON" message, e.g. how to make a valid file.

    Raises
    ------
    FileFormatError
        If the file is missing, a folder, unreadable, not UTF-8 or not JSON.
    """
    from kelly.errors import FileFormatError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{p}: is a folder, not a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{p}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}){hint}") from None
