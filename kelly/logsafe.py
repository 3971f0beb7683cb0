"""Logging an unexpected error without what the person wrote.

Kelly is used in music therapy: the words people type about how they feel, the files they
upload and their library are private. An exception's message can quote any of them
(a parser's "unexpected character 'x' in ...", a value error echoing its input), and a
server's log outlives the session, lands in journald and in bug reports. So the web app
and the engine's socket server log an unexpected error as its type and where it happened
(file, line and function of each frame), never its message or its locals. That is enough
to find the bug; ``kelly --debug`` shows everything when the person runs a command
themselves.
"""

from __future__ import annotations

import traceback
from pathlib import Path

#: Frames kept, innermost first.
MAX_FRAMES = 12


def redacted_traceback(exc: BaseException) -> str:
    """``"TypeError at server.py:120 _compose <- routing.py:300 run <- ..."``: the type and frames, no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-MAX_FRAMES:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__
