"""`make bench`: run every benchmark section and write ``benchmarks/results.md``.

Each module listed in ``SECTIONS`` exposes ``run() -> str`` returning a Markdown
section (a heading, a table of medians/ratios measured in that same run, notes).
Timings are wall-clock on whatever machine runs this; compare only numbers that come
from the same run.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path

SECTIONS = (
    "benchmarks.bench_compose",
    "benchmarks.bench_ml",
    "benchmarks.bench_feel",
    "benchmarks.bench_music",
    "benchmarks.bench_modes",
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = set(argv)
    parts = [
        "# Kelly benchmark results\n",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')}. Medians unless said otherwise; "
        "ratios compare numbers from this same run.\n",
    ]
    for name in SECTIONS:
        short = name.rsplit(".", 1)[-1]
        if only and short not in only:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        print(f"running {short} ...", flush=True)
        parts.append(module.run().rstrip() + "\n")
    out = Path(__file__).with_name("results.md")
    out.write_text("\n".join(parts))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
