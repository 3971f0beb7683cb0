"""The shipped V/A/D lexicon: size, coverage, held-out accuracy, file format and its errors."""

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pytest

from kelly import cli
from kelly.emotion import lexicon_sources as src
from kelly.emotion.evaluation import coverage, held_out_correlations, sample_word_list
from kelly.emotion.lexicon import DEFAULT_PATH, SOURCES, decode_table, encode_table, load_lexicon
from kelly.errors import FileFormatError

WORDS = Path("/usr/share/dict/american-english")


def test_table_is_small_and_covers_the_language():
    assert DEFAULT_PATH.stat().st_size <= 3 * 1024 * 1024
    lex = load_lexicon()
    assert len(lex) >= 60_000
    assert sum(1 for w in lex.words if " " in w) >= 1_000  # multi-word expressions
    header = lex.header
    names = {s["name"] for s in header["sources"]}
    assert names == set(SOURCES)
    assert all(s["licence"] for s in header["sources"])


def test_sources_win_over_predictions():
    lex = load_lexicon()
    vader, ours = src.vader_labels(), src.kelly_labels()
    seen = 0
    for word, label in list(vader.items())[:3000]:
        if src.is_held_out(word) or word in ours:
            continue
        entry = lex.get(word)
        assert entry is not None and entry.source == "vader"
        assert abs(entry.valence - label.valence) <= 0.01
        seen += 1
    assert seen > 1000


def test_held_out_words_are_predicted_not_copied():
    lex = load_lexicon()
    ours = src.kelly_labels()
    held = [w for w in src.vader_labels() if src.is_held_out(w) and w not in ours]
    assert len(held) > 300
    assert all(lex.get(w).source == "predicted" for w in held if w in lex)


def test_held_out_valence_correlation():
    r = held_out_correlations()
    assert r["vader.valence"]["r"] >= 0.75, r
    assert r["vader.valence"]["n"] >= 300
    assert r["kelly.valence"]["r"] >= 0.75, r


@pytest.mark.skipif(not WORDS.exists(), reason="Debian wamerican not installed (make setup installs it as root)")
def test_coverage_of_a_general_word_list():
    assert coverage(sample_word_list(WORDS, 2000, seed=1)) >= 0.95


def test_common_words_have_the_expected_sign():
    lex = load_lexicon()
    for word, sign in [("trapped", -1), ("victorious", 1), ("cheated", -1), ("ignored", -1), ("evicted", -1),
                       ("promoted", 1), ("sunshine", 1), ("funeral", -1), ("\U0001F62D", -1), ("\U0001F389", 1)]:
        assert lex.get(word).valence * sign > 0, word


def test_neutral_words_stay_near_neutral():
    lex = load_lexicon()
    # (about 2% of words with no source value inherit a spurious valence from a close labelled
    # word, e.g. "spreadsheet" from VADER's "excel"; docs/lexicon.md lists it as a known limit)
    for word in ["table", "carburetor", "report", "homework", "the", "seventeen"]:
        e = lex.get(word)
        assert e is not None and abs(e.valence) < 0.25, (word, e)


def test_load_is_fast():
    from kelly.emotion.lexicon import _shipped  # noqa: PLC2701 - the cached loader

    _shipped.cache_clear()
    t0 = time.perf_counter()
    load_lexicon()
    assert time.perf_counter() - t0 < 3.0  # the real target (0.3 s) is checked by make bench


def test_many_threads_asking_at_once_decode_the_lexicon_once(monkeypatch):
    import threading

    from kelly.emotion import lexicon as lexmod

    calls = []
    real = lexmod.decode_table

    def counted(*args, **kw):
        calls.append(1)
        time.sleep(0.05)  # widen the window in which the other threads arrive
        return real(*args, **kw)

    monkeypatch.setattr(lexmod, "decode_table", counted)
    lexmod._shipped.cache_clear()
    got = []
    threads = [threading.Thread(target=lambda: got.append(lexmod._shipped())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lexmod._shipped.cache_clear()
    assert len(calls) == 1
    assert len(got) == 16 and all(g is got[0] for g in got)


def test_encode_is_deterministic_and_round_trips():
    words = ["calm", "fall apart", "\U0001F600"]
    values = np.array([[0.3, 0.2, 0.6], [-0.7, 0.6, 0.2], [0.8, 0.7, 0.6]])
    blob = encode_table({"format": "kelly-lexicon", "version": 1}, words, values, np.array([1, 0, 5]))
    assert blob == encode_table({"format": "kelly-lexicon", "version": 1}, words, values, np.array([1, 0, 5]))
    lex = decode_table(blob)
    e = lex.get("fall apart")
    assert abs(e.valence + 0.7) < 0.01 and abs(e.arousal - 0.6) < 0.01 and e.source == "predicted"
    assert lex.get("\U0001F600").source == "vader-emoji"


@pytest.mark.parametrize("mangle,match", [
    (lambda b: b[:-10], "gzip"),
    (lambda b: b"not gzip at all", "gzip"),
    (lambda b: gzip.compress(b"NOTMAGIC\n1 1 1\n"), "magic"),
    (lambda b: gzip.compress(gzip.decompress(b)[:-3]), "truncated"),
    (lambda b: gzip.compress(b"KELLYLEX1\n99999999999 1 1\n"), "out of range"),
])
def test_corrupt_tables_are_clear_errors(mangle, match):
    blob = encode_table({"format": "kelly-lexicon", "version": 1}, ["a"], np.zeros((1, 3)), np.array([0]))
    with pytest.raises(FileFormatError, match=match):
        decode_table(mangle(blob))


def test_lexicon_cli(capsys):
    assert cli.main(["lexicon", "trapped", "Falling Apart", "qqqzzz"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["word"] == "trapped" and rows[0]["valence"] < 0 and rows[0]["source"]
    assert rows[1]["word"] == "falling apart"
    assert rows[2] == {"word": "qqqzzz", "found": False}
    assert cli.main(["lexicon", "--info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] >= 60_000 and info["sources"]


def test_lexicon_cli_without_words_is_one_line_exit_2(capsys):
    assert cli.main(["lexicon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kelly lexicon" in err[0]


def test_feel_evaluate_cli(tmp_path, capsys):
    f = tmp_path / "mine.jsonl"
    f.write_text('{"text": "I am so happy", "valence": "+", "arousal": "high", "family": "joy"}\n'
                 '{"text": "I feel hopeless", "valence": "-", "arousal": "low", "family": "sadness"}\n')
    assert cli.main(["feel", "--evaluate", str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 2 and out["valence"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "valence": "maybe", "arousal": "high", "family": "joy"}\n')
    assert cli.main(["feel", "--evaluate", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
