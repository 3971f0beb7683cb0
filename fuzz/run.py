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
FINDINGS = ROOT / "fuzz" / "_findings"


def run_target(name: str, runs: int, timeout: int, rss_mb: int, seed: int) -> tuple[bool, str]:
    """Fuzz one target in a subprocess; returns (clean, last lines of libFuzzer's report)."""
    from fuzz.corpus import write_corpus

    corpus = WORK / "corpus" / name
    write_corpus(name, corpus)
    out = FINDINGS / name
    out.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "fuzz.targets", name, str(corpus), f"-runs={runs}", f"-timeout={timeout}",
            f"-rss_limit_mb={rss_mb}", f"-seed={seed}", f"-artifact_prefix={out}/", "-max_len=65536",
            "-print_final_stats=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
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
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    ok = True
    for name in names:
        clean, report = run_target(name, args.runs, args.timeout, args.rss_mb, args.seed)
        print(report, flush=True)
        ok &= clean
    print("all clean" if ok else f"findings saved under {FINDINGS}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
