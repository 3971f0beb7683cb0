"""The one benchmark table: figure rows survive the results file, the summary and the README block."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import headline, run

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str, *rows: str) -> str:
    return "\n".join([f"## {title}", "", "| a | b |", "|---|---|", "| 1 | 2 |", "", *rows])


def test_a_figure_round_trips_through_its_comment_even_with_awkward_text():
    line = headline.figure("area | x", "a -- b", "1.0 ms", "goal < 2 ms -->", "met", readme=True)
    assert line.startswith("<!-- figure: ") and line.endswith(" -->")
    assert line.count("-->") == 1  # the comment cannot be closed early by the text inside it
    (row,) = headline.rows_of("text\n" + line + "\nmore")
    assert row["area"] == "area | x" and row["value"] == "1.0 ms" and row["status"] == "met" and row["readme"]
    assert row["measure"] == "a - - b"


def test_a_figure_needs_a_value():
    with pytest.raises(ValueError, match="value"):
        headline.figure("area", "measure", " ", "anchor")


def test_summary_collects_rows_in_section_order_and_names_sections_without_rows():
    sections = {
        "bench_b": ("2026-01-02 10:00:00", _section("B", headline.figure("B", "speed", "5×", "goal ≥ 4×", "met"))),
        "bench_a": ("2026-01-01 09:00:00", _section("A", headline.figure("A", "size", "9 MB", "goal ≤ 8 MB",
                                                                         "not met", readme=True))),
        "bench_c": ("2026-01-03 11:00:00", _section("C")),
    }
    text = headline.summary(sections, ["bench_a", "bench_b", "bench_c", "bench_d"])
    lines = text.splitlines()
    a = next(i for i, ln in enumerate(lines) if ln.startswith("| A |"))
    b = next(i for i, ln in enumerate(lines) if ln.startswith("| B |"))
    assert a < b
    assert "2026-01-01 09:00:00" in lines[a] and "2026-01-02 10:00:00" in lines[b]
    assert "Goals met: 1 of 2." in text
    assert "bench_c, bench_d" in text
    block = headline.readme_block(sections, ["bench_a", "bench_b"], "test machine")
    assert "| A | size | 9 MB |" in block and "| B |" not in block
    assert "test machine" in block and "2026-01-01" in block


def test_rows_of_other_results_files_follow_the_sections():
    sections = {"bench_a": ("2026-01-01 09:00:00", _section("A", headline.figure("A", "x", "1", "goal", "met")))}
    soak = ("2026-01-02 10:00:00 (`make soak`)",
            "# Soak\n" + headline.figure("load", "socket", "all", "goal all", "met", readme=True))
    text = headline.summary(sections, ["bench_a"], [soak])
    assert text.index("| A | x |") < text.index("| load | socket |")
    assert "2026-01-02 10:00:00 (`make soak`)" in text and "Goals met: 2 of 2." in text
    assert "| load | socket | all |" in headline.readme_block(sections, ["bench_a"], "m", [soak])


def test_the_readme_block_is_replaced_between_its_markers_only():
    text = f"intro\n{headline.README_START}\nold rows\n{headline.README_END}\nafter\n"
    new = headline.replace_block(text, f"{headline.README_START}\nnew\n{headline.README_END}")
    assert new == f"intro\n{headline.README_START}\nnew\n{headline.README_END}\nafter\n"
    assert headline.replace_block("no markers here", "x") is None


def test_the_readme_has_the_markers_the_benchmark_writes_between():
    text = (ROOT / "README.md").read_text()
    assert text.count(headline.README_START) == 1 and text.count(headline.README_END) == 1
    assert text.index(headline.README_START) < text.index(headline.README_END)


def test_results_file_keeps_its_sections_after_the_summary_is_added():
    sections = {"bench_compose": ("2026-01-01 00:00:00",
                                  _section("Compose", headline.figure("compose", "x", "1 ms", "goal", "met")))}
    text = run.render(sections, "2026-01-01 00:00:00", {"bench_compose"})
    assert text.index("## Summary") < text.index("<!-- bench: bench_compose")
    again = run.read_sections(text)
    assert again == sections
    assert "| compose | x | 1 ms |" in text


def test_every_benchmark_section_states_figures_for_the_summary():
    for name in run.SECTIONS:
        source = (ROOT / (name.replace(".", "/") + ".py")).read_text()
        assert "figure(" in source, f"{name} gives the summary table no figures"
