"""The one table: every figure the issues asked for, next to its anchor, from the sections that measured it.

Each benchmark section states its headline figures with :func:`figure`, which embeds a row in
the section's Markdown as an HTML comment (invisible when rendered, and kept with the section
when a later partial run keeps that section). :func:`summary` collects the rows of every
section into one table at the top of ``benchmarks/results.md``, each with the time its section
was measured, so a figure and its comparison always come from the same run of their section.
:func:`readme_block` writes the rows marked ``readme=True`` into the README between
``<!-- bench-headline:start -->`` and ``<!-- bench-headline:end -->``.

Why by hand: the rows are our own small format inside our own results file; no library does it.
"""

from __future__ import annotations

import json
import math
import re

_ROW = re.compile(r"^<!-- figure: (\{.*\}) -->$", re.M)
README_START = "<!-- bench-headline:start -->"
README_END = "<!-- bench-headline:end -->"


def figure(area: str, measure: str, value: str, anchor: str, status: str = "", *, readme: bool = False) -> str:
    """One row of the summary table, as a comment line to append to a section.

    ``area``: the issue or part it answers to ("compose (issue 2)"); ``value``: our figure as it
    should be read ("34.5 ms"); ``anchor``: the comparison measured in the same run or the goal
    or claim it answers ("goal < 100 ms; seed claim …"); ``status``: "met", "not met" or "" when
    the row is a comparison without a goal.
    """
    for name, text in (("area", area), ("measure", measure), ("value", value)):
        if not text or not text.strip():
            raise ValueError(f"a headline figure needs a {name}")
    row = {"area": area, "measure": measure, "value": value, "anchor": anchor, "status": status,
           "readme": bool(readme)}
    return "<!-- figure: " + json.dumps(row, ensure_ascii=False).replace("--", "- -") + " -->"


def met(ok: bool) -> str:
    """The status word for a goal."""
    return "met" if ok else "not met"


def rows_of(body: str) -> list[dict]:
    """The figure rows a section's Markdown holds, in order."""
    out = []
    for m in _ROW.finditer(body):
        try:
            row = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and {"area", "measure", "value", "anchor"} <= row.keys():
            out.append(row)
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[tuple[str, dict]], *, with_when: bool) -> list[str]:
    head = "| area | measure | Kelly | anchor / comparison (same run) | status |"
    rule = "|---|---|---:|---|---|"
    if with_when:
        head += " measured |"
        rule += "---|"
    lines = [head, rule]
    for when, row in rows:
        line = (f"| {_cell(row['area'])} | {_cell(row['measure'])} | {_cell(row['value'])} | "
                f"{_cell(row['anchor'])} | {_cell(row.get('status', ''))} |")
        if with_when:
            line += f" {_cell(when)} |"
        lines.append(line)
    return lines


def summary(sections: dict[str, tuple[str, str]], order: list[str],
            extra: list[tuple[str, str]] = ()) -> str:
    """The summary section: every section's figure rows, in ``order``; sections without rows are named.

    ``extra``: (when, Markdown) of other results files whose rows follow the sections' (``make soak``).
    """
    rows: list[tuple[str, dict]] = []
    missing = []
    for short in order:
        if short not in sections:
            missing.append(short)
            continue
        when, body = sections[short]
        found = rows_of(body)
        if not found:
            missing.append(short)
        rows.extend((when, r) for r in found)
    for when, body in extra:
        rows.extend((when, r) for r in rows_of(body))
    lines = ["## Summary: every figure against its anchor", "",
             "Each row comes from the section below that measured it; its comparison was measured in that same "
             "run of the section (the *measured* column). Anchors: the issues' goals, the seeds' claims, torch "
             "eager, onnxruntime, compiled RTNeural, FluidSynth's real-time factor and the compound word "
             "transformer paper."]
    if rows:
        lines += [""] + _table(rows, with_when=True)
        n_goal = sum(1 for _, r in rows if r.get("status") in ("met", "not met"))
        n_met = sum(1 for _, r in rows if r.get("status") == "met")
        lines += ["", f"Goals met: {n_met} of {n_goal}."]
    if missing:
        lines += ["", "Sections without figures in this file yet (run `make bench`): " + ", ".join(missing) + "."]
    return "\n".join(lines)


def readme_block(sections: dict[str, tuple[str, str]], order: list[str], machine: str,
                 extra: list[tuple[str, str]] = ()) -> str:
    """The README's headline rows (those marked ``readme``), between the two markers."""
    rows = []
    dates = set()
    sources = [sections[short] for short in order if short in sections] + list(extra)
    for when, body in sources:
        for r in rows_of(body):
            if r.get("readme"):
                rows.append((when, r))
                dates.add(when.split(" ")[0])
    lines = [README_START, ""]
    if rows:
        span = ", ".join(sorted(dates)) if dates else "unknown"
        lines += [f"From `make bench` on {machine}, measured {span} (`benchmarks/results.md` has every figure "
                  "and how it is made):", ""]
        lines += _table(rows, with_when=False)
    else:
        lines.append("Run `make bench` to measure the headline figures on your machine.")
    lines += ["", README_END]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str | None:
    """``text`` with its marked block replaced by ``block``; None when the markers are missing."""
    a, b = text.find(README_START), text.find(README_END)
    if a < 0 or b < a:
        return None
    return text[:a] + block + text[b + len(README_END):]


def ratio(a: float, b: float) -> str:
    """``a / b`` as "N.N×", or "–" when it cannot be formed."""
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or not b or math.isnan(a / b):
        return "–"
    return f"{a / b:.1f}×"
