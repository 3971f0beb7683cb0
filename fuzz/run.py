"""`make fuzz`: coverage-guided fuzzing (atheris/libFuzzer) of every format Kelly reads.

Each target in :mod:`fuzz.targets` takes raw bytes and feeds them to one reader. A
target passes when every input either succeeds or raises a :class:`kelly.errors.KellyError`
(a clear, one-line user error); anything else (a traceback), an input slower than
``--timeout`` seconds, or memory beyond ``--rss-mb`` is a finding, and libFuzzer saves the
input under ``fuzz/_findings/TARGET/``.

Each target runs in its own process (libFuzzer exits when it is done), seeded with a
small corpus of valid and known-bad files that :mod:`fuzz.corpus` writes.

Usage::

    python -m fuzz.run                     # every target, 100,000 inputs each (make fuzz)
    python -m fuzz.run --runs 3000 text    # one target, a short run (what CI does)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "fuzz" / "_work"
#: Process memory allowed per target where the default would stop a clean run. Under atheris the
#: numpy-heavy analysis chain's RSS grows by about 13 KB per input (41,000 inputs reach 1 GB), while
#: the same inputs replayed without atheris keep RSS flat (50 → 59 MB over 6,000 mutated files) and
#: the input it stopped on peaks at 47 MB alone: growth of the harness, not of an input. A single
#: allocation above ``--rss-mb`` still fails the run (``-malloc_limit_mb``).
RSS_OVERRIDES_MB = {"midi_chain": 3072}
FINDINGS = ROOT / "fuzz" / "_findings"


def run_target(name: str, runs: int, timeout: int, rss_mb: int, seed: int) -> tuple[bool, str]:
    """Fuzz one target in a subprocess; returns (clean, last lines of libFuzzer's report).

    The report's first line is ``NAME: clean|FINDING (seconds)``; libFuzzer's final
    ``stat::`` lines (inputs run, peak memory, slowest input) follow.
    """
    corpus = WORK / "corpus" / name
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    # The corpus is written by its own process: a child inherits its parent's peak RSS, so
    # building seeds here (torch for the ONNX ones) would inflate every later target's figure.
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from fuzz.corpus import "
                    "write_corpus; write_corpus(sys.argv[1], Path(sys.argv[2]))", name, str(corpus)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    out = FINDINGS / name
    out.mkdir(parents=True, exist_ok=True)
    # libFuzzer reads its peak RSS from getrusage, and on Linux a child starts with its parent's
    # peak (kept across fork and exec): from inside a test runner that has grown, the child
    # would be "out of memory" before its first input. The limit is the target's own budget
    # on top of what it inherits.
    import resource

    inherited = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024) if sys.platform == "linux" else 0
    limit = max(rss_mb, RSS_OVERRIDES_MB.get(name, 0)) + inherited
    args = [sys.executable, "-m", "fuzz.targets", name, str(corpus), f"-runs={runs}", f"-timeout={timeout}",
            f"-rss_limit_mb={limit}", f"-malloc_limit_mb={rss_mb}",
            f"-seed={seed}", f"-artifact_prefix={out}/", "-max_len=65536",
            "-print_final_stats=1"]
    import shutil
    import tempfile

    # The target's files (its inputs as files, the app's library and WAVs) go in a folder of this run's own,
    # removed when it ends: libFuzzer exits without running the target's atexit handlers.
    scratch = tempfile.mkdtemp(prefix=f"kelly-fuzz-{name}-")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={**env, "TMPDIR": scratch})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    tail = "\n".join(lines[-12:])
    if proc.returncode != 0:  # atheris prints the Python traceback to stdout, far above libFuzzer's last lines
        start = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), None)
        if start is not None:
            tail = "\n".join(lines[start:start + 40]) + "\n" + tail
    return proc.returncode == 0, f"{name}: {'clean' if proc.returncode == 0 else 'FINDING'} ({elapsed:.0f} s)\n{tail}"


def main(argv: list[str] | None = None) -> int:
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target (default 100,000)")
    parser.add_argument("--timeout", type=int, default=5, help="seconds one input may take (default 5)")
    parser.add_argument("--rss-mb", type=int, default=1024, help="memory limit in MB (default 1024)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer seed (default 1)")
    parser.add_argument("--results", metavar="FILE", help="also write a Markdown table of the run to FILE")
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    ok = True
    rows = []
    for name in names:
        clean, report = run_target(name, args.runs, args.timeout, args.rss_mb, args.seed)
        print(report, flush=True)
        ok &= clean
        rows.append(_row(name, clean, report))
    if args.results:
        _write_results(Path(args.results), rows, args)
    print("all clean" if ok else f"findings saved under {FINDINGS}")
    return 0 if ok else 1


def _row(name: str, clean: bool, report: str) -> dict:
    stats = {}
    for line in report.splitlines():
        if line.startswith("stat::"):
            key, _, value = line[len("stat::"):].partition(":")
            stats[key.strip()] = value.strip()
    seconds = report.splitlines()[0].rsplit("(", 1)[-1].rstrip(" s)") if report else "?"
    return {"name": name, "clean": clean, "runs": stats.get("number_of_executed_units", "?"),
            "rss": stats.get("peak_rss_mb", "?"), "slowest": stats.get("slowest_unit_time_sec", "?"),
            "seconds": seconds}


_HEADER = ("| target | inputs | result | peak RSS (MB) | slowest input (s) | wall time (s) | date | machine "
           "| command |")


def _write_results(path: Path, rows: list[dict], args) -> None:
    """Merge this run's rows into the Markdown table in ``path`` (``--results FILE``), by target name.

    Why a merge: a run of some targets (``python -m fuzz.run app``) must not drop the figures of the
    others, and the notes under the table (the kill test's) are kept. Each row carries its own date,
    machine and command. A table in the older layout (one command for every row, in the line above
    it) is read too, its rows given that command and date.
    """
    import platform
    import re

    from kelly.fileio import write_text_atomic

    command = f"python -m fuzz.run --runs {args.runs} --timeout {args.timeout} --rss-mb {args.rss_mb} --seed {args.seed}"
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    when = time.strftime("%Y-%m-%d %H:%M")
    table: dict[str, list[str]] = {}
    notes: list[str] = []
    if path.exists():
        old_command = old_machine = old_when = ""
        lines = path.read_text(encoding="utf-8").splitlines()
        in_table = seen_table = False
        for line in lines:
            m = re.match(r"^`(python -m fuzz\.run[^`]*)` on (.+), (\d{4}-\d\d-\d\d \d\d:\d\d)\.$", line)
            if m and not seen_table:
                old_command, old_machine, old_when = m.groups()
                continue
            if line.startswith("|"):
                in_table = seen_table = True
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if cells[0] in ("target", "") or set(cells[0]) <= set("-:"):
                    continue
                if len(cells) == 6:  # the older layout
                    cells += [old_when, old_machine, f"`{old_command}`" if old_command else ""]
                table[cells[0]] = cells[:9]
            elif seen_table and (not in_table or line.strip()):
                notes.append(line)
            elif in_table:
                in_table = False
    for r in rows:
        table[r["name"]] = [r["name"], str(r["runs"]), "clean" if r["clean"] else "FINDING", str(r["rss"]),
                            str(r["slowest"]), str(r["seconds"]), when, machine, f"`{command} {r['name']}`"]
    from fuzz.targets import TARGETS

    order = [n for n in TARGETS if n in table] + sorted(n for n in table if n not in TARGETS)
    out = ["# Fuzzing results", "",
           "Each row is the latest run of that target; `python -m fuzz.run --results fuzz/results.md` merges its "
           "rows in by target name.", "", _HEADER, "|---|---:|---|---:|---:|---:|---|---|---|"]
    out += ["| " + " | ".join(table[n]) + " |" for n in order]
    while notes and not notes[0].strip():
        notes.pop(0)
    if notes:
        out += [""] + notes
    write_text_atomic(path, "\n".join(out) + "\n")

if __name__ == "__main__":
    sys.exit(main())
