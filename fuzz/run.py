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
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
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


def _write_results(path: Path, rows: list[dict], args) -> None:
    """A Markdown table of the run (``--results FILE``), so the figures can be kept in the repo."""
    import platform

    from kelly.fileio import write_text_atomic

    lines = ["# Fuzzing results", "", f"`python -m fuzz.run --runs {args.runs} --timeout {args.timeout} "
             f"--rss-mb {args.rss_mb} --seed {args.seed}` on {platform.machine()}, Python "
             f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "| target | inputs | result | peak RSS (MB) | slowest input (s) | wall time (s) |",
             "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['runs']} | {'clean' if r['clean'] else 'FINDING'} | {r['rss']} | "
                     f"{r['slowest']} | {r['seconds']} |")
    write_text_atomic(path, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
