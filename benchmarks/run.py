"""`make bench`: run every benchmark section and write ``benchmarks/results.md``.

Each module listed in ``SECTIONS`` exposes ``run() -> str`` returning a Markdown
section (a heading, a table of medians/ratios measured in that same run, notes).
Timings are wall-clock on whatever machine runs this; compare only numbers that come
from the same run.

``python -m benchmarks.run bench_ml bench_train`` runs only the sections named and
replaces just those in ``results.md``, keeping the others as an earlier run wrote them
(each section is preceded by a ``<!-- bench: NAME, written TIME -->`` marker saying
when). The file is rewritten after every section, so a long run that is stopped keeps
what it had measured.
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
import time
from pathlib import Path

SECTIONS = (
    "benchmarks.bench_compose",
    "benchmarks.bench_ml",
    "benchmarks.bench_train",
    "benchmarks.bench_trained",
    "benchmarks.bench_feel",
    "benchmarks.bench_music",
    "benchmarks.bench_modes",
    "benchmarks.bench_realtime",
    "benchmarks.bench_transformer",
    "benchmarks.bench_ddsp",
)
RESULTS = Path(__file__).with_name("results.md")
_MARKER = re.compile(r"^<!-- bench: (\w+)(?:, written ([^>]*?))? -->$", re.M)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def read_sections(text: str) -> dict[str, tuple[str, str]]:
    """The sections of a results file: short name → (when written, Markdown), by their markers."""
    found = list(_MARKER.finditer(text))
    out = {}
    for k, m in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(text)
        out[m.group(1)] = (m.group(2) or "", text[m.end():end].strip("\n"))
    return out


def render(sections: dict[str, tuple[str, str]], now: str, fresh: set[str]) -> str:
    """The whole results file: the header, then each section (in ``SECTIONS`` order) after its marker.

    ``fresh``: the sections this run wrote; the header says when others are kept from earlier runs.
    """
    header = (f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
              f"written {now}. Medians unless said otherwise; ratios compare numbers from this same run")
    kept = [_short(n) for n in SECTIONS if _short(n) in sections and _short(n) not in fresh]
    if kept:
        header += (f" (this time {', '.join(_short(n) for n in SECTIONS if _short(n) in fresh) or 'nothing'} ran; "
                   f"{', '.join(kept)} are kept from earlier runs, each with the time it was written in its marker).")
    else:
        header += "."
    parts = ["# Kelly benchmark results\n", header + "\n"]
    for name in SECTIONS:
        short = _short(name)
        if short in sections:
            when, body = sections[short]
            parts.append(f"<!-- bench: {short}, written {when} -->\n{body.rstrip()}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = [_short(n) for n in SECTIONS]
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    only = set(argv)
    sections: dict[str, tuple[str, str]] = {}
    if RESULTS.is_file():
        old = RESULTS.read_text()
        sections = read_sections(old)  # kept until replaced, so a stopped run loses nothing
        if only and not sections and "\n## " in old:
            print(f"{RESULTS} has no section markers, so its other sections cannot be kept: run every section "
                  "once (make bench)", file=sys.stderr)
            return 2
    fresh: set[str] = set()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    for name in SECTIONS:
        short = _short(name)
        if only and short not in only:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        print(f"running {short} ...", flush=True)
        body = module.run().rstrip() + "\n"
        sections[short] = (time.strftime("%Y-%m-%d %H:%M:%S"), body)
        fresh.add(short)
        RESULTS.write_text(render(sections, now, fresh))
    RESULTS.write_text(render(sections, now, fresh))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
