"""Compose latency: `kelly compose` for 32 bars, as a whole process and in-process.

Goal on the 2-core development machine (issue #2): under 1 s whole-process, under
100 ms in-process. Whole-process includes interpreter start-up and imports.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.headline import figure, met

TEXT = "I feel grief, but I'm starting to hope"


def _in_process(n: int) -> list[float]:
    from kelly.emotion.text import read_text
    from kelly.generator import ComposeOptions, compose

    out = []
    for k in range(n):
        t0 = time.perf_counter()
        song = compose(read_text(TEXT), ComposeOptions(bars=32, seed=k)).song
        song.to_bytes()
        out.append(time.perf_counter() - t0)
    return out


def _whole_process(n: int) -> list[float]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "kelly", "compose", TEXT, "--bars", "32", "--seed", str(k),
                            "--out", str(Path(tmp) / "b.mid"), "--force"], check=True, capture_output=True)
            out.append(time.perf_counter() - t0)
    return out


def _imports_torch() -> bool:
    code = ("import sys, kelly.cli as c; c.main(['compose','hi','--bars','4','--out','/tmp/_kb.mid','--force']); "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.strip().endswith("True")


def run() -> str:
    _in_process(3)  # warm caches (thesaurus, imports)
    inproc = _in_process(30)
    whole = _whole_process(10)
    med_in, med_whole = statistics.median(inproc), statistics.median(whole)
    rows = [
        "## Compose (issue #2)\n",
        f"`kelly compose \"{TEXT}\" --bars 32`, median of 30 in-process and 10 whole-process runs.\n",
        "| measure | median | p90 | goal | status |",
        "|---|---|---|---|---|",
        f"| in-process (read text + compose + MIDI bytes) | {med_in * 1000:.1f} ms | "
        f"{sorted(inproc)[int(0.9 * len(inproc)) - 1] * 1000:.1f} ms | < 100 ms | {'met' if med_in < 0.1 else 'missed'} |",
        f"| whole process (`python -m kelly compose`) | {med_whole * 1000:.0f} ms | "
        f"{sorted(whole)[int(0.9 * len(whole)) - 1] * 1000:.0f} ms | < 1000 ms | {'met' if med_whole < 1 else 'missed'} |",
        "",
        f"Whole process / in-process ratio: {med_whole / med_in:.1f}x (start-up and imports dominate). "
        f"Composing imports torch: {'yes' if _imports_torch() else 'no'}.",
        figure("compose (issue 2)", "`kelly compose`, 32 bars, in-process", f"{med_in * 1000:.1f} ms", "goal < 100 ms",
               met(med_in < 0.1), readme=True),
        figure("compose (issue 2)", "`kelly compose`, 32 bars, whole process", f"{med_whole * 1000:.0f} ms",
               "goal < 1 s", met(med_whole < 1)),
    ]
    return "\n".join(rows)
