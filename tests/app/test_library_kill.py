"""kill -9 during library writes: the library is never corrupted and no row lacks its files (issue 15's faults)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

WRITER = r"""
import sys
from pathlib import Path
from kelly.app.library import Library
lib = Library(Path(sys.argv[1]))
i = 0
while True:
    c = lib.add(text=f"take {i}", label="hope", valence=0.1, arousal=0.5, dominance=0.5, parameters={"i": i},
                files={"song.mid": b"MThd" + bytes(2000), "song.json": b"{}"})
    lib.update(c.id, rating=1 + i % 5, notes="n" * (i % 50))
    if i % 3 == 0:
        lib.add_file(c.id, "song.wav", b"RIFF" + bytes(50_000))
    if i % 7 == 0:
        lib.delete(c.id)
    i += 1
    print(i, flush=True)
"""


@pytest.mark.parametrize("trial", range(8))
def test_kill_9_mid_write_leaves_a_consistent_library(tmp_path, trial):
    from kelly.app.library import Library

    folder = tmp_path / "lib"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=root, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout is not None
    proc.stdout.readline()  # at least one composition is in
    time.sleep(0.05 + 0.037 * trial)  # a different moment each trial
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(folder / "library.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Library(folder) as lib:
        items = lib.search(limit=500)
        assert items, "the compositions written before the kill are kept"
        for c in items:
            for name in c.files:
                assert lib.file_path(c.id, name).is_file(), f"{c.id} lists {name}, which is missing"
        lib.add(text="after", label="calm", valence=0.0, arousal=0.3, dominance=0.5, parameters={},
                files={"song.mid": b"MThd"})  # and it keeps working
