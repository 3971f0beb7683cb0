"""Helpers shared by the render tests."""

from __future__ import annotations

import struct
from pathlib import Path


def one_line_error(code: int, err: str) -> str:
    """The single error line of a failed command (exit 2, one line, no traceback)."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("kelly: error: "), err
    assert "Traceback" not in err
    return err.strip()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    data = Path(path).read_bytes()[:32]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])
