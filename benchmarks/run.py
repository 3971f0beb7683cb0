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

Each section also states its headline figures (``benchmarks.headline.figure``): the file starts
with one summary table of them all, each next to its anchor and the time its section ran, and
the rows marked for the README are written between its ``bench-headline`` markers.
``python -m benchmarks.run --summary`` rebuilds both from the sections as they are.
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
import time
from pathlib import Path

from benchmarks import headline

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
README = Path(__file__).resolve().parent.parent / "README.md"
#: Other results whose figure rows join the summary: the load soak (``make soak``), with the time it was written.
EXTRA_RESULTS = (Path(__file__).resolve().parent.parent / "soak" / "results.md",)
_WRITTEN = re.compile(r"^Written (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


def extra_results() -> list[tuple[str, str]]:
    """(when written, Markdown) of each file in ``EXTRA_RESULTS`` that exists."""
    out = []
    for path in EXTRA_RESULTS:
        try:
            text = path.read_text()
        except OSError:
            continue
        m = _WRITTEN.search(text)
        out.append((f"{m.group(1)} (`make soak`)" if m else "`make soak`", text))
    return out
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


def machine() -> str:
    """The machine in words: architecture, CPU model and count, Python."""
    import os

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render(sections: dict[str, tuple[str, str]], now: str, fresh: set[str]) -> str:
    """The whole results file: the header, the summary table, then each section (in ``SECTIONS`` order).

    ``fresh``: the sections this run wrote; the header says when others are kept from earlier runs.
    """
    header = (f"Machine: {machine()}; written {now}. Medians unless said otherwise; ratios compare numbers from this same run")
    kept = [_short(n) for n in SECTIONS if _short(n) in sections and _short(n) not in fresh]
    if kept:
        header += (f" (this time {', '.join(_short(n) for n in SECTIONS if _short(n) in fresh) or 'nothing'} ran; "
                   f"{', '.join(kept)} are kept from earlier runs, each with the time it was written in its marker).")
    else:
        header += "."
    order = [_short(n) for n in SECTIONS]
    parts = ["# Kelly benchmark results\n", header + "\n", headline.summary(sections, order, extra_results()) + "\n"]
    for name in SECTIONS:
        short = _short(name)
        if short in sections:
            when, body = sections[short]
            parts.append(f"<!-- bench: {short}, written {when} -->\n{body.rstrip()}\n")
    return "\n".join(parts)


def write_results(sections: dict[str, tuple[str, str]], now: str, fresh: set[str]) -> None:
    """Write results.md and the README's headline rows (atomically, so a stopped run leaves both whole)."""
    from kelly.fileio import write_text_atomic

    write_text_atomic(RESULTS, render(sections, now, fresh))
    if README.is_file():
        text = README.read_text()
        order = [_short(n) for n in SECTIONS]
        new = headline.replace_block(text, headline.readme_block(sections, order, machine(), extra_results()))
        if new is not None and new != text:
            write_text_atomic(README, new)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = [_short(n) for n in SECTIONS]
    if argv == ["--summary"]:  # rebuild the summary table and the README rows from the sections as they are
        if not RESULTS.is_file():
            print(f"{RESULTS} does not exist yet: run make bench", file=sys.stderr)
            return 2
        old = RESULTS.read_text()
        header = re.search(r"written (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", old)
        write_results(read_sections(old), header.group(1) if header else time.strftime("%Y-%m-%d %H:%M:%S"), set())
        print(f"wrote {RESULTS}")
        return 0
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
        write_results(sections, now, fresh)
    write_results(sections, now, fresh)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
