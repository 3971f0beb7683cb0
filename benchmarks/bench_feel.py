"""Text → emotion (issue 7): accuracy on our sentence set, held-out lexicon words, coverage,
and speed, each next to the previous reader's figures measured in this same run.

The previous reader is the one that landed before issue 7 (commit ``BASELINE``); it is
taken from git into a temporary folder and run in a subprocess, so both readers are
measured on the same machine at the same time. Without git history it is left out.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.headline import figure, met

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "85f1a30"
EVAL = ROOT / "tests" / "fixtures" / "feel_eval.jsonl"
WORDS = Path("/usr/share/dict/american-english")

_READ_ALL = """
import json, sys
from kelly.emotion.text import read_text
out = []
for text in json.load(sys.stdin):
    s = read_text(text)
    out.append([s.valence, s.arousal, s.family, s.evidence[0].kind if s.evidence else ""])
json.dump(out, sys.stdout)
"""


def _old_reader_dir(tmp: Path) -> Path | None:
    """Extract the baseline's ``kelly`` package; None when git or the commit is unavailable."""
    try:
        archive = subprocess.run(["git", "archive", BASELINE, "kelly"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return tmp


def _read_with(pythonpath: Path, texts: list[str]) -> list[list]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    result = subprocess.run([sys.executable, "-c", _READ_ALL], input=json.dumps(texts), capture_output=True,
                            text=True, env=env, cwd=pythonpath, check=True)
    return json.loads(result.stdout)


class _State:
    def __init__(self, row):
        self.valence, self.arousal, self.family, self.kind = row


AREA = "text → emotion (issue 7)"


def run() -> str:
    from kelly.emotion.evaluation import (coverage, held_out_correlations, load_sentences, sample_word_list,
                                          score_sentences)
    from kelly.emotion.lexicon import DEFAULT_PATH, _shipped, load_lexicon
    from kelly.emotion.text import read_text

    sentences = load_sentences(EVAL)
    texts = [s.text for s in sentences]
    new_rows = {t: r for t, r in zip(texts, _read_with(ROOT, texts))}
    new = score_sentences(sentences, lambda t: _State(new_rows[t]))
    with tempfile.TemporaryDirectory() as tmp:
        old_dir = _old_reader_dir(Path(tmp))
        old = None
        issue_texts = [t for t, _ in _ISSUE]
        sample = sample_word_list(WORDS, 2000, seed=0) if WORDS.exists() else []
        if old_dir is not None:
            old_rows = {t: r for t, r in zip(texts, _read_with(old_dir, texts))}
            old = score_sentences(sentences, lambda t: _State(old_rows[t]))
            old_issue = _read_with(old_dir, issue_texts)
            old_found = _read_with(old_dir, sample) if sample else []
        new_issue = _read_with(ROOT, issue_texts)
        new_found = _read_with(ROOT, sample) if sample else []

    lines = ["## Text → emotion (issue #7)", ""]
    lines += [f"Sentence set: `tests/fixtures/feel_eval.jsonl`, {new.n} sentences we wrote (valence side, arousal side "
              "at 0.5, Plutchik family). Previous reader: commit " + BASELINE + " run in this same session.", ""]
    lines += ["| category | n | valence side (old → new) | arousal side (old → new) | family (old → new) |",
              "|---|---:|---|---|---|"]
    new_d, old_d = new.to_dict(), old.to_dict() if old else None
    for cat in [*new_d["categories"], "all"]:
        nc = new_d if cat == "all" else new_d["categories"][cat]
        oc = (old_d if cat == "all" else old_d["categories"][cat]) if old_d else None

        def cell(key):
            return f"{oc[key]:.1%} → **{nc[key]:.1%}**" if oc else f"**{nc[key]:.1%}**"
        lines.append(f"| {cat} | {nc['n']} | {cell('valence')} | {cell('arousal')} | {cell('family')} |")
    lines += ["", f"Goals: valence side ≥ 90% ({'met' if new.rate('valence') >= 0.9 else 'NOT met'}), "
              f"arousal side ≥ 80% ({'met' if new.rate('arousal') >= 0.8 else 'NOT met'}).", ""]

    lines += ["### The issue's cases", "", "| text | want | old V | new V |", "|---|---|---:|---:|"]
    right = 0
    for k, (text, sign) in enumerate(_ISSUE):
        nv = new_issue[k][0]
        right += nv * sign > 0
        ov = f"{old_issue[k][0]:+.2f}" if old_dir is not None else "n/a"
        lines.append(f"| {text} | {'+' if sign > 0 else '−'} | {ov} | {nv:+.2f} |")
    lines += ["", f"Right sign: {right} of {len(_ISSUE)}.", ""]

    lines += ["### Lexicon", ""]
    lex = load_lexicon()
    header = lex.header
    lines += [f"`{DEFAULT_PATH.relative_to(ROOT)}`: {len(lex):,} entries "
              f"({sum(1 for w in lex.words if ' ' in w):,} multi-word), {DEFAULT_PATH.stat().st_size / 1e6:.2f} MB "
              "(goal ≤ 3 MB).", ""]
    lines += ["Held-out words (never seen by the build), Pearson r of the shipped table against the source:", "",
              "| source.axis | n | r |", "|---|---:|---:|"]
    for key, val in held_out_correlations(lex).items():
        lines.append(f"| {key} | {val['n']} | {val['r']:.3f} |")
    lines += ["", "Regression methods compared by the build on the same held-out words (r):", "",
              "| axis | source | n | kNN (shipped) | ridge | mean of both |", "|---|---|---:|---:|---:|---:|"]
    for axis, per in header.get("held_out_comparison", {}).items():
        for name, v in per.items():
            lines.append(f"| {axis} | {name} | {v['n']} | {v['knn']:.3f} | {v['ridge']:.3f} | {v['mean']:.3f} |")
    lines.append("")

    lines += ["### Coverage", "", "| word list | old reader found an emotion | new: in the lexicon | "
              "new: reading not a fallback |", "|---|---:|---:|---:|"]
    if sample:
        old_rate = (sum(1 for r in old_found if r[3] != "fallback") / len(sample)) if old_dir else None
        new_rate = sum(1 for r in new_found if r[3] != "fallback") / len(sample)
        lines.append(f"| wamerican, 2,000 random words (a build source) | {f'{old_rate:.1%}' if old_rate is not None else 'n/a'} | "
                     f"{coverage(sample, lex):.1%} | {new_rate:.1%} |")
    try:
        from wordfreq import top_n_list

        freq = [w for w in top_n_list("en", 20000) if w.isalpha()]
        cov = coverage(freq, lex)
        lines.append(f"| wordfreq top 20,000 English words (alphabetic: {len(freq):,}; not a build source) | – | "
                     f"{cov:.1%} | – |")
        lines.append(figure(AREA, "lexicon coverage of a general English word list (wordfreq top 20,000)",
                            f"{cov:.1%}", "goal ≥ 95 %", met(cov >= 0.95)))
    except ImportError:
        lines.append("| wordfreq top 20,000 | – | (wordfreq not installed) | – |")
    lines.append("")

    old_v = f"; previous reader {old.rate('valence'):.1%} (same run)" if old else ""
    old_a = f"; previous reader {old.rate('arousal'):.1%} (same run)" if old else ""
    lines += [figure(AREA, f"valence side right, {new.n} sentences we wrote", f"{new.rate('valence'):.1%}",
                     "goal ≥ 90 %" + old_v, met(new.rate("valence") >= 0.9), readme=True),
              figure(AREA, "arousal side right, same sentences", f"{new.rate('arousal'):.1%}", "goal ≥ 80 %" + old_a,
                     met(new.rate("arousal") >= 0.8)),
              figure(AREA, "the issue's cases with the right sign", f"{right} of {len(_ISSUE)}", "goal all",
                     met(right == len(_ISSUE)))]
    correlations = held_out_correlations(lex)
    if correlations:
        worst = min(correlations.items(), key=lambda kv: kv[1]["r"])
        lines.append(figure(AREA, "lexicon against held-out words: lowest Pearson r", f"{worst[1]['r']:.3f} "
                            f"({worst[0]})", "goal r ≥ 0.75", met(worst[1]["r"] >= 0.75)))
    lines += _speed(read_text, _shipped, load_lexicon)
    return "\n".join(lines)


def _speed(read_text, shipped, load_lexicon) -> list[str]:
    loads = []
    for _ in range(7):
        shipped.cache_clear()
        t0 = time.perf_counter()
        load_lexicon()
        loads.append(time.perf_counter() - t0)
    import kelly.emotion.text as text_mod

    text_mod._clues.cache_clear()
    t0 = time.perf_counter()
    read_text("warm up")
    first = time.perf_counter() - t0
    short = [s.text for s in __import__("kelly.emotion.evaluation", fromlist=["x"]).load_sentences(EVAL)
             if len(s.text) < 80] * 40
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for t in short:
            read_text(t)
        rates.append(len(short) / (time.perf_counter() - t0))
    big = ("I feel grief, but I'm starting to hope. The quarterly spreadsheet is so annoying!! "
           "My heart sank when she left 😭 and I have never felt worse. ") * 8000
    big = big[:1_000_000]
    mb = []
    for _ in range(3):
        t0 = time.perf_counter()
        read_text(big)
        mb.append(time.perf_counter() - t0)
    proc = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kelly", "feel", "I feel trapped"], cwd=ROOT, capture_output=True,
                       check=True)
        proc.append(time.perf_counter() - t0)
    torch_check = subprocess.run([sys.executable, "-c", "import sys; from kelly.emotion.text import read_text; "
                                  "read_text('x'); import kelly.generator; print('torch' in sys.modules)"],
                                 cwd=ROOT, capture_output=True, text=True)
    lmed = statistics.median(loads)
    rate = statistics.median(rates)
    mmed = statistics.median(mb)
    return [
        "### Speed (one core)", "",
        "| measure | median | goal | status |", "|---|---:|---|---|",
        f"| lexicon load (decompress + index) | {lmed * 1000:.0f} ms | ≤ 300 ms | {'met' if lmed <= 0.3 else 'NOT met'} |",
        f"| first reading (lexicon + clues + idioms + thesaurus) | {first * 1000:.0f} ms | – | – |",
        f"| short texts per second ({len(short):,} sentences under 80 characters) | {rate:,.0f} | ≥ 5,000 | "
        f"{'met' if rate >= 5000 else 'NOT met'} |",
        f"| 1 MB text | {mmed:.2f} s | ≤ 2 s | {'met' if mmed <= 2 else 'NOT met'} |",
        f"| whole process `kelly feel \"I feel trapped\"` | {statistics.median(proc) * 1000:.0f} ms | – | – |",
        "", f"Reading text or composing imports torch: {torch_check.stdout.strip() or torch_check.stderr[-200:]}.",
        "",
        figure(AREA, "short texts read per second, one core", f"{rate:,.0f}", "goal ≥ 5,000", met(rate >= 5000)),
        figure(AREA, "a 1 MB text", f"{mmed:.2f} s", "goal ≤ 2 s", met(mmed <= 2)),
        figure(AREA, "lexicon load", f"{lmed * 1000:.0f} ms", "goal ≤ 300 ms", met(lmed <= 0.3)),
    ]


_ISSUE = [
    ("I feel trapped", -1), ("I feel victorious", 1), ("I feel cheated", -1), ("I feel ignored", -1),
    ("I got promoted today", 1), ("we were evicted", -1), ("I just got fired", -1), ("I just got the job!", 1),
    ("Everything is falling apart", -1), ("my heart sank", -1), ("on cloud nine", 1),
    ("I have never felt worse", -1), ("I love my kids but I'm exhausted", -1), ("She's furious with me", -1),
    ("people say I should be grateful, but I feel numb and flat", -1),
]
