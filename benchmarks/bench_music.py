"""The music report (issue 8, item 11): the musical bar of DESIGN.md measured from the MIDI.

A fixed grid of pieces is composed in-process with :func:`kelly.generator.compose` (rule
engines, no network hints), written to MIDI bytes and read back with Kelly's reader, and
measured with :mod:`kelly.quality`: semitone clashes of the melody with the accompaniment,
whether the melody is the top voice, restated bars, duplicate and out-of-range notes, the
key a key finder hears against the declared key, velocities, melody register and leaps,
tempo steps, and (when FluidSynth is here) each track's rendered level.

"Before" numbers come from ``benchmarks/music_before.json``: the same grid composed by the
engines at commit ``0cda242`` (before the issue 8 rewrite) and measured by this same code.
It was made with::

    git worktree add /tmp/kelly-before 0cda242
    PYTHONPATH=/tmp/kelly-before .venv/bin/python benchmarks/bench_music.py --compose-to /tmp/before
    .venv/bin/python -m benchmarks.bench_music --save-before /tmp/before
    git worktree remove /tmp/kelly-before

``KELLY_BENCH_RENDER=all|subset|none`` chooses which pieces are rendered (default
``all``: every piece, about 2.5 minutes of wall time with two workers; ``subset``: the
:data:`RENDER_SUBSET` pieces, for a quicker look). ``python -m benchmarks.run
bench_music`` runs only this section.

This file must stay importable by the engines of commit 0cda242 for ``--compose-to``: the
grid and the composing code use only ``kelly.generator`` and ``kelly.emotion``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.headline import figure, met

BEFORE_FILE = Path(__file__).with_name("music_before.json")
BEFORE_COMMIT = "0cda242"
WORKERS = 2


@dataclass(frozen=True)
class Piece:
    """One grid entry: a path of emotions (names, or (valence, arousal, dominance) points), bars, seed, key."""

    name: str
    path: tuple
    bars: int = 32
    seed: int = 1
    key: str | None = None

    @property
    def journey(self) -> bool:
        return len(self.path) > 1


def _grid() -> tuple[Piece, ...]:
    singles = ("grief", "sorrow", "despair", "melancholy", "loneliness", "nostalgia", "peace", "calm", "serenity",
               "contentment", "tenderness", "love", "hope", "happiness", "excitement", "elation", "euphoria",
               "fury", "rage", "frustration", "anxiety", "dread", "terror")
    grid = [Piece(n, (n,), 32, 1) for n in singles]
    grid += [Piece(f"{n} 16b", (n,), 16, 2) for n in
             ("grief", "calm", "tenderness", "hope", "happiness", "fury", "anxiety", "terror")]
    grid += [Piece(f"{n} s3", (n,), 32, 3) for n in ("calm", "tenderness", "fury", "anxiety", "happiness")]
    grid += [Piece(f"V{v:+g} A{a:g}", ((v, a, 0.5),), 32, 1) for v, a in
             ((-1.0, 0.0), (-1.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.5))]
    grid += [Piece("nostalgia D dorian", ("nostalgia",), 32, 1, "D dorian"),
             Piece("hope G lydian", ("hope",), 32, 1, "G lydian"),
             Piece("anxiety E phrygian", ("anxiety",), 32, 1, "E phrygian")]
    grid += [Piece("anxiety>calm 48b", ("anxiety", "calm"), 48, 1),
             Piece("grief>hope 32b", ("grief", "hope"), 32, 1),
             Piece("rage>peace 48b", ("rage", "peace"), 48, 2),
             Piece("sorrow>calm>hope 48b", ("sorrow", "calm", "hope"), 48, 1),
             Piece("despair>happiness 32b", ("despair", "happiness"), 32, 3)]
    return tuple(grid)


GRID = _grid()
#: Pieces rendered by default: every emotion family, both lengths, the modal keys and two journeys.
RENDER_SUBSET = ("grief", "sorrow", "nostalgia", "calm", "tenderness", "love", "hope", "happiness", "euphoria",
                 "fury", "anxiety", "terror", "calm 16b", "V+1 A1", "nostalgia D dorian", "anxiety>calm 48b")
#: Emotions whose pieces must be softer (mean velocity) than the LOUD ones.
SOFT, LOUD = ("calm", "tenderness"), ("fury", "rage", "anxiety")


# ------------------------------------------------------------------ composing
def _state(item):
    from kelly.emotion.state import EmotionState
    from kelly.emotion.thesaurus import load_thesaurus, state_for

    if isinstance(item, str):
        return state_for(item)
    v, a, d = item
    entry = load_thesaurus().nearest(v, a, d)  # as `kelly compose --valence/--arousal/--dominance` does
    return EmotionState(entry.name, entry.family, v, a, d, 0.6, 1.0, source="explicit")


def compose_piece(piece: Piece):
    """The :class:`kelly.generator.Composition` of one grid entry."""
    from kelly.generator import ComposeOptions, compose

    path = [_state(x) for x in piece.path]
    return compose(path if piece.journey else path[0],
                   ComposeOptions(bars=piece.bars, seed=piece.seed, key=piece.key))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9+-]+", "_", name).strip("_")


def compose_to(folder: Path) -> None:
    """Write every grid piece as ``<slug>.mid`` and ``<slug>.json`` (the explanation) into ``folder``."""
    import kelly.generator

    print(f"composing {len(GRID)} pieces with {kelly.generator.__file__}")
    folder.mkdir(parents=True, exist_ok=True)
    for piece in GRID:
        comp = compose_piece(piece)
        (folder / f"{_slug(piece.name)}.mid").write_bytes(comp.song.to_bytes())
        (folder / f"{_slug(piece.name)}.json").write_text(json.dumps(comp.explanation.to_json()))


# ------------------------------------------------------------------ measuring
def _valence(piece: Piece) -> float:
    return _state(piece.path[0]).valence


def _row(piece: Piece, song, explanation: dict, render: bool) -> dict:
    """The flat numbers of one piece (what the tables and music_before.json hold)."""
    from kelly import quality

    t0 = time.perf_counter()
    rep = quality.report(song, explanation, render=False)
    t_metrics = time.perf_counter() - t0
    levels = quality.rendered_levels(song) if render else None
    vel, reg, leaps = rep["velocity"], rep["melody_register"] or {}, rep["melody_leaps"] or {}
    mel_vel = (vel["by_role"].get("melody") or {}).get("mean")
    return {
        "bars": piece.bars, "journey": piece.journey, "emotion": str(piece.path[0]), "valence": _valence(piece),
        "clash": rep["clash_rate"], "on_top": rep["melody_on_top_rate"], "restated": rep["restated_bar_fraction"],
        "duplicates": rep["duplicate_total"], "out_of_range": rep["out_of_range_total"],
        "out_of_range_tracks": rep["out_of_range_notes"],
        "key_declared": rep["key"]["declared"], "key_heard": rep["key"]["heard"], "key_ok": rep["key"]["ok"],
        "key_sections": rep["key"]["sections"],
        "velocity_mean": vel["mean"], "velocity_melody": mel_vel, "velocity_max": vel["max"],
        "velocity_foreground": vel.get("foreground_mean"),
        "at_127": vel["at_127"],
        "melody_pitch_mean": reg.get("mean"), "melody_pitch_median": reg.get("median"),
        "leaps_over_fifth": leaps.get("over_fifth"), "leaps_over_octave": leaps.get("over_octave"),
        "largest_leap": leaps.get("largest"), "tempo_step": rep["max_tempo_step"],
        "melody_minus_loudest_db": levels["melody_minus_loudest_db"] if levels else None,
        "loudest_accompaniment": levels["loudest_accompaniment"] if levels else None,
        "renderer": levels["renderer"] if levels else None,
        "seconds_metrics": round(t_metrics, 3), "seconds_render": levels["seconds"] if levels else None,
    }


def _measure_now(args) -> tuple[str, dict]:
    piece, render = args
    from kelly.song import read_midi_bytes

    t0 = time.perf_counter()
    try:
        comp = compose_piece(piece)
    except Exception as exc:  # noqa: BLE001 - one broken piece must not hide the others' numbers
        return piece.name, {"error": f"{type(exc).__name__}: {exc}"}
    t_compose = time.perf_counter() - t0
    song = read_midi_bytes(comp.song.to_bytes(), name=f"{_slug(piece.name)}.mid")  # what a DAW gets
    row = _row(piece, song, comp.explanation, render)
    row["seconds_compose"] = round(t_compose, 3)
    return piece.name, row


def _measure_file(args) -> tuple[str, dict]:
    piece, folder, render = args
    from kelly.song import read_midi

    song = read_midi(Path(folder) / f"{_slug(piece.name)}.mid")
    explanation = json.loads((Path(folder) / f"{_slug(piece.name)}.json").read_text())
    return piece.name, _row(piece, song, explanation, render)


def _render_set(mode: str) -> set[str]:
    if mode == "none":
        return set()
    if mode == "all":
        return {p.name for p in GRID}
    return set(RENDER_SUBSET)


def _map(fn, jobs) -> dict[str, dict]:
    if WORKERS > 1 and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor(max_workers=min(WORKERS, os.cpu_count() or 1)) as pool:
            return dict(pool.map(fn, jobs))
    return dict(map(fn, jobs))


# -------------------------------------------------------------------- summary
def _med(rows: dict, key: str, only=None):
    vals = [r[key] for name, r in rows.items() if r.get(key) is not None and (only is None or only(name, r))]
    return statistics.median(vals) if vals else None


def _share(rows: dict, test, key: str):
    vals = [r[key] for r in rows.values() if r.get(key) is not None]
    return (sum(1 for v in vals if test(v)) / len(vals), len(vals)) if vals else (None, 0)


def _by_emotion_velocity(rows: dict, names) -> dict[str, float]:
    out = {}
    for n in names:
        vals = [r.get("velocity_foreground") for r in rows.values()
                if not r["journey"] and r["emotion"] == n and r.get("velocity_foreground") is not None]
        if vals:
            out[n] = statistics.fmean(vals)
    return out


def _spearman(rows: dict):
    pairs = [(r["valence"], r["melody_pitch_mean"]) for r in rows.values()
             if not r["journey"] and r["melody_pitch_mean"] is not None]
    if len(pairs) < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return None if rho != rho else float(rho)


def summarize(rows: dict) -> dict:
    """Medians and the issue's "done when" checks over one set of rows (pieces that failed to compose left out)."""
    rows = {k: r for k, r in rows.items() if "error" not in r}
    long = lambda name, r: r["bars"] >= 16  # noqa: E731
    key_share, key_n = _share(rows, bool, "key_ok")
    level_share, level_n = _share(rows, lambda v: v >= -3.0, "melody_minus_loudest_db")
    soft, loud = _by_emotion_velocity(rows, SOFT), _by_emotion_velocity(rows, LOUD)
    steps48 = [r["tempo_step"] for r in rows.values() if r["journey"] and r["bars"] == 48]
    med = {k: _med(rows, k) for k in ("clash", "on_top", "velocity_mean", "velocity_melody", "velocity_foreground",
                                      "at_127",
                                      "melody_pitch_mean", "leaps_over_fifth", "leaps_over_octave", "largest_leap",
                                      "melody_minus_loudest_db")}
    med["restated"] = _med(rows, "restated", long)
    med["tempo_step"] = _med(rows, "tempo_step", lambda name, r: r["journey"])
    return {
        "medians": med,
        "key_ok_share": key_share, "key_n": key_n,
        "level_ok_share": level_share, "level_n": level_n,
        "soft_velocity": soft, "loud_velocity": loud,
        "spearman_valence_pitch": _spearman(rows),
        "journey48_max_tempo_step": max(steps48) if steps48 else None,
        "duplicates": sum(r["duplicates"] for r in rows.values()),
        "out_of_range": sum(r["out_of_range"] for r in rows.values()),
    }


def _checks(s: dict) -> list[tuple[str, str, object]]:
    """(goal, measured text, passed: True/False/None) for each "done when" line of the issue."""
    m = s["medians"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f} %"

    soft, loud = s["soft_velocity"], s["loud_velocity"]
    softer = (max(soft.values()) < min(loud.values())) if soft and loud else None
    return [
        ("median clash rate ≤ 5 %", pct(m["clash"]), None if m["clash"] is None else m["clash"] <= 0.05),
        ("median melody on top ≥ 80 %", pct(m["on_top"]), None if m["on_top"] is None else m["on_top"] >= 0.80),
        ("mode family and tonic heard as declared in ≥ 95 % of pieces",
         f"{pct(s['key_ok_share'])} of {s['key_n']}",
         None if s["key_ok_share"] is None else s["key_ok_share"] >= 0.95),
        ("median restated bars ≥ 25 % (pieces of ≥ 16 bars)", pct(m["restated"]),
         None if m["restated"] is None else m["restated"] >= 0.25),
        ("rendered melody ≥ loudest accompaniment − 3 dB in ≥ 90 % of pieces",
         f"{pct(s['level_ok_share'])} of {s['level_n']}" if s["level_n"] else "n/a (no render)",
         None if s["level_ok_share"] is None else s["level_ok_share"] >= 0.90),
        ("calm and tender softer than angry and anxious (mean foreground velocity: melody, harmony, bass)",
         ", ".join(f"{k} {v:.0f}" for k, v in {**soft, **loud}.items()) or "n/a", softer),
        ("Spearman(valence, melody mean pitch) ≥ 0.5",
         "n/a" if s["spearman_valence_pitch"] is None else f"{s['spearman_valence_pitch']:.2f}",
         None if s["spearman_valence_pitch"] is None else s["spearman_valence_pitch"] >= 0.5),
        ("48-bar journeys: max bar-to-bar tempo step ≤ 12 %", pct(s["journey48_max_tempo_step"]),
         None if s["journey48_max_tempo_step"] is None else s["journey48_max_tempo_step"] <= 0.12),
        ("zero duplicate notes", str(s["duplicates"]), s["duplicates"] == 0),
        ("zero out-of-range notes", str(s["out_of_range"]), s["out_of_range"] == 0),
    ]


def _mark(ok) -> str:
    return "n/a" if ok is None else ("pass" if ok else "FAIL")


# ----------------------------------------------------------------------- tables
def _fmt(v, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "pct":
        return f"{100 * v:.0f}"
    if kind == "db":
        return f"{v:+.1f}"
    if kind == "f0":
        return f"{v:.0f}"
    return str(v)


def _pair(now: dict, before: dict | None, key: str, kind: str) -> str:
    a = _fmt(now.get(key), kind)
    if before is None:
        return a
    return f"{a} ({_fmt(before.get(key), kind)})"


def _key_cell(r: dict | None) -> str:
    if r is None:
        return "–"
    mark = {True: "✓", False: "✗", None: "?"}[r["key_ok"]]
    if r.get("key_sections"):
        return " / ".join(f"{c['declared']}→{c['heard'] or '–'}" for c in r["key_sections"]) + f" {mark}"
    return f"{r['key_declared']}→{r['key_heard'] or '–'} {mark}"


def _piece_table(rows: dict, before: dict) -> list[str]:
    cols = (("clash %", "clash", "pct"), ("on top %", "on_top", "pct"), ("restated %", "restated", "pct"),
            ("vel", "velocity_mean", "f0"), ("mel pitch", "melody_pitch_mean", "f0"),
            ("leaps >5th %", "leaps_over_fifth", "pct"), ("max leap", "largest_leap", "str"),
            ("tempo step %", "tempo_step", "pct"), ("dup", "duplicates", "str"),
            ("out of range", "out_of_range", "str"),
            ("melody − loudest acc. dB", "melody_minus_loudest_db", "db"))
    out = ["| piece | bars | " + " | ".join(c[0] for c in cols) + " | key declared→heard, now | before |",
           "|---|---|" + "---|" * len(cols) + "---|---|"]
    for piece in GRID:
        r, b = rows[piece.name], before.get(piece.name)
        if "error" in r:
            out.append(f"| {piece.name} | {piece.bars} | could not compose: {r['error'][:200]} |")
            continue
        cells = [_pair(r, b, key, kind) for _, key, kind in cols]
        out.append(f"| {piece.name} | {piece.bars} | " + " | ".join(cells) + f" | {_key_cell(r)} | {_key_cell(b)} |")
    return out


def _median_table(now: dict, before: dict | None) -> list[str]:
    rows = (("clash rate", "clash", "pct", "≤ 5 %"), ("melody on top", "on_top", "pct", "≥ 80 %"),
            ("restated bars (≥ 16 bars)", "restated", "pct", "≥ 25 %"),
            ("pitched velocity, mean", "velocity_mean", "f1", ""),
            ("melody velocity, mean", "velocity_melody", "f1", ""),
            ("foreground velocity, mean", "velocity_foreground", "f1", ""),
            ("notes at velocity 127", "at_127", "pct1", ""), ("melody mean pitch", "melody_pitch_mean", "f1", ""),
            ("melody leaps > 5th", "leaps_over_fifth", "pct1", ""),
            ("melody leaps > octave", "leaps_over_octave", "pct1", ""),
            ("largest melody leap (semitones)", "largest_leap", "f1", ""),
            ("max bar-to-bar tempo step (journeys)", "tempo_step", "pct1", ""),
            ("melody − loudest accompaniment (dB)", "melody_minus_loudest_db", "db", "≥ −3 dB"))

    def f(v, kind):
        if v is None:
            return "n/a"
        return {"pct": f"{100 * v:.1f} %", "pct1": f"{100 * v:.1f} %", "f1": f"{v:.1f}", "db": f"{v:+.1f}"}[kind]

    out = ["| median over the grid | before (0cda242) | now | goal |", "|---|---|---|---|"]
    for label, key, kind, goal in rows:
        b = f(before["medians"].get(key), kind) if before else "n/a"
        out.append(f"| {label} | {b} | {f(now['medians'].get(key), kind)} | {goal} |")
    return out


def _check_table(now: dict, before: dict | None) -> list[str]:
    out = ["| done when | before (0cda242) | now | status |", "|---|---|---|---|"]
    old = {goal: (text, ok) for goal, text, ok in _checks(before)} if before else {}
    for goal, text, ok in _checks(now):
        b = old.get(goal)
        out.append(f"| {goal} | {f'{b[0]} ({_mark(b[1])})' if b else 'n/a'} | {text} | {_mark(ok)} |")
    return out


# ------------------------------------------------------------------------ entry
def measure_grid(render_mode: str | None = None) -> tuple[dict, float, int]:
    """Compose and measure every grid piece now: (rows by piece name, seconds, pieces rendered)."""
    mode = render_mode or os.environ.get("KELLY_BENCH_RENDER", "all")
    to_render = _render_set(mode)
    from kelly import quality

    if to_render and quality._renderer() is None:
        to_render = set()
    t0 = time.perf_counter()
    rows = _map(_measure_now, [(p, p.name in to_render) for p in GRID])
    return rows, time.perf_counter() - t0, sum(1 for r in rows.values() if r.get("renderer"))


def load_before() -> dict | None:
    try:
        return json.loads(BEFORE_FILE.read_text())
    except (OSError, ValueError):
        return None


def run() -> str:
    rows, seconds, rendered = measure_grid()
    before = load_before()
    brows = (before or {}).get("pieces", {})
    now_sum = summarize(rows)
    # before's rendered levels only for the pieces rendered now, so the two level checks count the same pieces
    brows_same = {k: {**r, "melody_minus_loudest_db": r.get("melody_minus_loudest_db")
                      if rows.get(k, {}).get("renderer") else None} for k, r in brows.items()}
    bsum = summarize(brows_same) if brows else None
    ok = [r for r in rows.values() if "error" not in r]
    t_compose = sum(r["seconds_compose"] for r in ok)
    t_metrics = sum(r["seconds_metrics"] for r in ok)
    t_render = sum(r["seconds_render"] or 0.0 for r in ok)
    renderer = next((r["renderer"] for r in ok if r["renderer"]), None)
    failed = [name for name, r in rows.items() if "error" in r]
    lines = [
        "## Music report (issue 8, item 11)\n",
        f"{len(GRID)} pieces composed in-process (rule engines, no network hints; 16, 32 and 48 bars, single "
        "emotions, V/A corners, modal keys, journeys), written to MIDI and read back, measured with "
        "`kelly.quality` (see docs/music-report.md). \"Before\" is the same grid composed by the engines of "
        f"commit {BEFORE_COMMIT} and measured by the same code (benchmarks/music_before.json"
        + ("" if before else ": missing") + ").\n",
        f"Wall time {seconds:.0f} s with {WORKERS} worker processes; summed over pieces: compose {t_compose:.1f} s, "
        f"measures {t_metrics:.1f} s, render {t_render:.0f} s. "
        + (f"Rendered levels: {rendered} pieces ({renderer}); "
           + ("every piece." if rendered == len(GRID) else
              f"a fixed subset, because rendering all {len(GRID)} would take about "
              f"{t_render / rendered * len(GRID) / 60:.0f} min of render time here, more than the 3 minutes this "
              "section allows itself (KELLY_BENCH_RENDER=all renders them all).")
           if rendered else "Rendered levels: n/a (no kelly.render.audio, FluidSynth or soundfont here)."),
        "",
        *([f"**Could not compose** (left out of every summary): {', '.join(failed)}.", ""] if failed else []),
        "### Done when\n",
        *_check_table(now_sum, bsum),
        "",
        "### Medians\n",
        *_median_table(now_sum, bsum),
        "",
        "### Per piece\n",
        "Each cell: now (before). Clash: melody notes a minor 2nd/9th against sounding accompaniment; on top: melody "
        "notes at or above every accompaniment note sounding with them; restated: melody bars repeating an earlier "
        "bar's rhythm and intervals (≥ 16 bars); vel: mean velocity of pitched notes; tempo step: largest "
        "downbeat-to-downbeat change; last columns: declared key → key heard (Krumhansl-Schmuckler), per section "
        "for journeys.\n",
        *_piece_table(rows, brows),
        "",
    ]
    old = {goal: (text, ok) for goal, text, ok in _checks(bsum)} if bsum else {}
    for goal, text, ok in _checks(now_sum):
        before_text = f"; before ({BEFORE_COMMIT}) {old[goal][0]}" if goal in old else ""
        lines.append(figure("music report (issue 8)", goal, text, f"{len(ok_rows(rows))} pieces{before_text}",
                            "" if ok is None else met(bool(ok)), readme=goal.startswith(("median clash", "mode family"))))
    return "\n".join(lines)


def ok_rows(rows: dict) -> list[dict]:
    """The grid's pieces that composed."""
    return [r for r in rows.values() if "error" not in r]


def _rounded(x):
    """Floats to 4 decimals, through lists and dicts (keeps music_before.json small and readable)."""
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def save_before(folder: Path) -> None:
    """Measure the MIDI + explanation files of ``--compose-to`` and write :data:`BEFORE_FILE`."""
    mode = os.environ.get("KELLY_BENCH_RENDER", "all")
    to_render = _render_set(mode)
    rows = _map(_measure_file, [(p, str(folder), p.name in to_render) for p in GRID])
    rows = {p.name: rows[p.name] for p in GRID}
    for r in rows.values():
        for k in ("seconds_metrics", "seconds_render"):
            r.pop(k, None)
    data = {"commit": BEFORE_COMMIT, "measured": time.strftime("%Y-%m-%d"),
            "note": "grid composed by the engines of this commit, measured by kelly.quality of issue 8 item 11",
            "summary": summarize(rows), "pieces": rows}
    data = _rounded(data)
    BEFORE_FILE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {BEFORE_FILE}")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--compose-to":
        compose_to(Path(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "--save-before":
        save_before(Path(argv[1]))
        return 0
    print(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
