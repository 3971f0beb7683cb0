"""``kelly runtime``, ``kelly export`` and ``kelly validate`` through the real CLI entry point."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rtneural"


def test_runtime_reproduces_rtneural_vectors(cli, tmp_path, capsys):
    x = np.loadtxt(FIXTURES / "lstm_x_python.csv")
    y = np.loadtxt(FIXTURES / "lstm_y_python.csv")
    csv = tmp_path / "in.csv"
    csv.write_text("\n".join(repr(float(v)) for v in x) + "\n")
    assert cli(["runtime", str(FIXTURES / "lstm.json"), "--input", str(csv)]) == 0
    out = np.array([float(line) for line in capsys.readouterr().out.splitlines()])
    assert out.shape == y.shape and np.abs(out - y).max() < 1e-6


def test_runtime_reads_standard_input(cli, monkeypatch, capsys):
    x = np.loadtxt(FIXTURES / "dense_x_python.csv")[:5]
    y = np.loadtxt(FIXTURES / "dense_y_python.csv")[:5]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{float(v)!r}\n" for v in x)))
    assert cli(["runtime", str(FIXTURES / "dense.json")]) == 0
    out = [float(line) for line in capsys.readouterr().out.splitlines()]
    assert np.abs(np.array(out) - y).max() < 1e-6


@pytest.mark.parametrize("text, message", [
    ("1.0\n2.0,3.0\n", "line 2: expected 1 comma-separated values, got 2"),
    ("1.0\nabc\n", "line 2, value 1: 'abc' is not a number"),
    ("nan\n", "line 1, value 1: 'nan' is not a finite number"),
])
def test_runtime_bad_csv_exits_2_with_line(cli, tmp_path, capsys, text, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    assert cli(["runtime", str(FIXTURES / "dense.json"), "--input", str(csv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kelly: error:") and message in err


def test_runtime_bad_model_exits_2(cli, tmp_path, capsys):
    bad = tmp_path / "m.json"
    bad.write_text('{"in_shape": [null, 2], "layers": [{"type": "dense", "shape": [null, 3], '
                   '"weights": [[[1, 2], [3, 4]]]}]}')
    assert cli(["runtime", str(bad), "--input", str(bad)]) == 2
    assert "m.json: layer 1 (dense): weights W has shape 2x2, expected 2x3" in capsys.readouterr().err


def test_export_and_validate_commands(cli, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "models"
    assert cli(["export", "--format", "rtneural", "--out", str(out), "--seed", "3"]) == 0
    keys = ["emotionrecognizer", "melodytransformer", "harmonypredictor", "dynamicsengine", "groovepredictor"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{k}.json" for k in keys] + [f"{k}.meta.json" for k in keys] + ["manifest.json"])
    import hashlib
    import json

    meta = json.loads((out / "harmonypredictor.meta.json").read_text())
    assert meta["sha256"] == hashlib.sha256((out / "harmonypredictor.json").read_bytes()).hexdigest()
    assert len(meta["outputs"]["names"]) == 64 and meta["float_digits"] == 9 and meta["trained"] is False
    text = (out / "groovepredictor.json").read_text()
    import re

    digits = [len(m.replace(".", "").replace("-", "").lstrip("0")) for m in re.findall(r"-?\d+\.\d+", text)]
    assert max(digits) <= 9  # nine significant digits: every float32 given back exactly, a third smaller
    assert not list(out.glob("*.tmp"))
    capsys.readouterr()
    assert cli(["validate", str(out), "--check-specs"]) == 0
    report = capsys.readouterr().out
    assert "all" in report and "FAIL" not in report
    (out / "dynamicsengine.json").write_text("[]")
    assert cli(["validate", str(out)]) == 2
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "validation failed" in captured.err
    assert cli(["export", "--format", "tflite", "--out", str(out)]) == 2
