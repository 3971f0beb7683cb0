"""Issue 9, "Hold under bad input": hostile model files and CSV input for the numpy runtime,
the processor and ``kelly runtime``.

Every file is built here in ``tmp_path``. Each reproduction must end with one
``kelly: error:`` line and exit code 2 quickly, without allocating what the file declares
and without numpy warnings on standard error.
"""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from kelly.errors import FileFormatError, InputError, KellyError, ModelError
from kelly.ml import runtime
from kelly.ml.processor import MultiModelProcessor
from kelly.ml.runtime import (ModelFileError, load_model, load_rtneural_bytes, model_from_dict, read_csv_file,
                              read_csv_rows, run_rows)
from kelly.ml.specs import SPECS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rtneural"
DENSE = FIXTURES / "dense.json"


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kelly: error: "), captured.err
    assert "Traceback" not in captured.err and "Warning" not in captured.err
    return lines[0]


def _fails_fast(cli, capsys, args, *, seconds: float = 5.0, peak_mb: float = 200.0) -> str:
    """Run ``kelly ARGS``: exit 2 with one stderr line, within ``seconds`` and ``peak_mb`` of new allocations."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy RuntimeWarning would fail the test
            code = cli(args)
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert code == 2
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < peak_mb * 2**20, f"peak {peak / 2**20:.0f} MB"
    return _one_line_error(capsys)


def _dense(n_in: int, n_out: int, *, act: str = "", w: float = 0.1) -> dict:
    return {"type": "dense", "activation": act, "shape": [None, None, n_out],
            "weights": [np.full((n_in, n_out), w).tolist(), np.zeros(n_out).tolist()]}


@pytest.fixture
def empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    return path


# ---------------------------------------------------------------------------------------
# Model files through `kelly runtime`
# ---------------------------------------------------------------------------------------

DEEP = '{"in_shape": [null, 1], "layers": ' + "[" * 100_000 + "]" * 100_000 + "}"
W1 = '{"in_shape": [null, 1], "layers": [{"type": "dense", "shape": [null, 1], "weights": [[[%s]], [0]]}]}'


@pytest.mark.parametrize("text, message", [
    (DEEP, "m.json: not a usable model file: the JSON is nested too deeply"),
    ('{"in_shape": [null, ' + "1" * 5000 + '], "layers": []}',
     "m.json: not a usable model file: an integer with 5000 digits is too large"),
    (W1 % ("9" * 400), "m.json: not a usable model file: an integer with 400 digits is too large"),
    (W1 % "NaN", "m.json: not a usable model file: NaN is not allowed"),
    (W1 % "-Infinity", "m.json: not a usable model file: -Infinity is not allowed"),
    (W1 % "1e999", "m.json: layer 1 (dense): weights W contains NaN, infinite or out-of-range values"),
    (W1 % "1e39", "m.json: layer 1 (dense): weights W contains NaN, infinite or out-of-range values"),
    (W1 % '"1.5"', "m.json: layer 1 (dense): weights W is not a rectangular array of numbers"),
    ('{"in_shape": [null, 1], "layers": [{"type": "dense", "shape": [null, 1], "weights": [[[1]], [0], [0]]}]}',
     "m.json: layer 1 (dense): expected weights [W, b] or [W], got 3 arrays"),
    ("\xff\xfe{", "m.json: not valid JSON"),
    ("", "m.json: not valid JSON (line 1, column 1)"),
])
def test_malformed_model_file_is_one_line(cli, capsys, tmp_path, empty_csv, text, message):
    model = tmp_path / "m.json"
    model.write_text(text, encoding="latin-1")
    line = _fails_fast(cli, capsys, ["runtime", str(model), "--input", str(empty_csv)])
    assert message in line


@pytest.mark.parametrize("size", [268_435_456, 10**12])
@pytest.mark.parametrize("layer", ["activation", "dense", "lstm", "batchnorm"])
def test_declared_sizes_are_capped_before_allocation(cli, capsys, tmp_path, empty_csv, size, layer):
    # A ~130-byte file declaring a huge vector: it used to allocate GBs (or fail with a TiB
    # allocation error) before being rejected.
    raw = {"type": layer, "activation": "tanh", "shape": [None, None, size], "weights": []}
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"in_shape": [None, None, size], "layers": [raw]}))
    line = _fails_fast(cli, capsys, ["runtime", str(model), "--input", str(empty_csv)], seconds=2, peak_mb=20)
    assert f"m.json: input size {size:,} is larger than this runtime allows ({runtime.MAX_WIDTH:,})" in line
    # The same size on a layer output.
    model.write_text(json.dumps({"in_shape": [None, 4], "layers": [dict(raw, shape=[None, size])]}))
    line = _fails_fast(cli, capsys, ["runtime", str(model), "--input", str(empty_csv)], seconds=2, peak_mb=20)
    assert f"m.json: layer 1 ({layer}): output size {size:,} is larger than this runtime allows" in line


def test_declared_parameter_count_and_layer_count_are_capped(tmp_path):
    big = {"in_shape": [None, 16_384], "layers": [{"type": "dense", "shape": [None, 16_384], "weights": [[]]}]}
    with pytest.raises(ModelFileError, match=r"x\.json: layer 1 \(dense\): the layers declared so far need "
                                             r"268,451,840 numbers, more than this runtime allows \(4,000,000\)"):
        model_from_dict(big, name="x.json")
    many = {"in_shape": [None, 1], "layers": [{"type": "activation", "activation": "tanh", "shape": [None, 1],
                                                "weights": []}] * (runtime.MAX_LAYERS + 1)}
    with pytest.raises(ModelFileError, match="257 layers, more than this runtime allows"):
        model_from_dict(many, name="x.json")


def test_weight_lengths_are_checked_before_conversion():
    tracemalloc.start()
    try:
        # Declared 2x3, but the rows hold a million numbers each: refused by length, not converted.
        obj = {"in_shape": [None, 2], "layers": [{"type": "dense", "shape": [None, 3],
                                                  "weights": [[[0.0] * 1_000_000] * 2, [0.0] * 3]}]}
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        with pytest.raises(ModelFileError, match=r"weights W has shape 2x1000000, expected 2x3"):
            model_from_dict(obj, name="x.json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 2**20
    ragged = {"in_shape": [None, 2], "layers": [{"type": "dense", "shape": [None, 2],
                                                 "weights": [[[1.0, 2.0], [3.0]], [0.0, 0.0]]}]}
    with pytest.raises(ModelFileError, match=r"weights W has shape 2x2 with 1 in row 2, expected 2x2"):
        model_from_dict(ragged, name="x.json")
    nested = {"in_shape": [None, 1], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[[1.0]]]]}]}
    with pytest.raises(ModelFileError, match=r"weights W has shape 1x1x1, expected 1x1"):
        model_from_dict(nested, name="x.json")
    as_dict = {"in_shape": [None, 1], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[10**400]]]}]}
    with pytest.raises(ModelFileError, match="not a rectangular array|out-of-range"):
        model_from_dict(as_dict, name="x.json")  # a Python int too large for a float: no OverflowError


def test_spec_sizes_are_checked_before_weights(tmp_path):
    spec = SPECS["dynamicsengine"]
    obj = {"in_shape": [None, 32], "layers": [{"type": "dense", "activation": "relu", "shape": [None, 4096],
                                               "weights": [[]]}]}
    with pytest.raises(ModelFileError, match=r"layer 1 \(dense\): output size 4096, expected 128"):
        model_from_dict(obj, name="dynamicsengine.json", spec=spec)
    obj = {"in_shape": [None, 9000], "layers": [_dense(2, 2)]}
    with pytest.raises(ModelFileError, match="input size is 9000, expected 32"):
        model_from_dict(obj, name="dynamicsengine.json", spec=spec)
    with pytest.raises(ModelFileError, match=r"maps 2→2, expected 32→16"):
        model_from_dict({"in_shape": [None, 2], "layers": [_dense(2, 2)]}, name="d.json", sizes=(32, 16))


def test_model_file_must_be_a_small_regular_file(cli, capsys, tmp_path, empty_csv):
    line = _fails_fast(cli, capsys, ["runtime", "/dev/zero", "--input", str(empty_csv)], seconds=1)
    assert "/dev/zero: is a character device" in line and "only regular files" in line
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    line = _fails_fast(cli, capsys, ["runtime", str(fifo), "--input", str(empty_csv)], seconds=1)
    assert "fifo.json: is a named pipe (FIFO)" in line
    line = _fails_fast(cli, capsys, ["runtime", str(tmp_path), "--input", str(empty_csv)], seconds=1)
    assert "is a folder, not a model file" in line
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(runtime.MAX_MODEL_BYTES + 1)  # sparse: costs nothing on disk
    line = _fails_fast(cli, capsys, ["runtime", str(big), "--input", str(empty_csv)], seconds=1, peak_mb=5)
    assert "big.json: is " in line and "a model file may be at most" in line
    line = _fails_fast(cli, capsys, ["runtime", str(tmp_path / "nope.json"), "--input", str(empty_csv)])
    assert "nope.json: no such file" in line


def test_model_errors_are_both_model_and_file_format_errors(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{")
    with pytest.raises(ModelError) as info:
        load_model(bad)
    assert isinstance(info.value, FileFormatError)


def test_batchnorm_and_prelu_checks():
    def bn(var, eps=1e-3):
        return {"in_shape": [None, 2], "layers": [{"type": "batchnorm", "shape": [None, 2], "epsilon": eps,
                                                   "weights": [[0.0, 0.0], var]}]}
    with pytest.raises(ModelFileError, match="var \\+ epsilon must be positive"):
        model_from_dict(bn([-1.0, 1.0]), name="x.json")
    with pytest.raises(ModelFileError, match="overflows float32"):
        model_from_dict(bn([1e-80, 1.0], eps=0), name="x.json")
    with pytest.raises(ModelFileError, match="'epsilon' must be a non-negative number"):
        model_from_dict(bn([1.0, 1.0], eps=True), name="x.json")
    prelu = {"in_shape": [None, 3], "layers": [{"type": "prelu", "shape": [None, 3], "weights": [[0.1, 0.2]]}]}
    with pytest.raises(ModelFileError, match="weights alpha has 2 values, expected 1 or 3"):
        model_from_dict(prelu, name="x.json")
    prelu["layers"][0]["weights"] = [[[0.1, 0.2, 0.3]]]
    assert model_from_dict(prelu).forward(np.array([-1.0, -1.0, 1.0])).tolist() == pytest.approx([-0.1, -0.2, 1])


def test_check_bounded_refuses_weights_that_could_overflow():
    ok = model_from_dict({"in_shape": [None, 4], "layers": [_dense(4, 8, act="relu", w=1.0), _dense(8, 2, w=1.0)]})
    ok.check_bounded(1.0)
    assert ok.value_bound(1.0)[0] == pytest.approx(4 * 8)
    assert ok.value_bound(2.0)[0] == pytest.approx(2 * 4 * 8)
    huge = model_from_dict({"in_shape": [None, 4], "layers": [_dense(4, 8, act="relu", w=1e20),
                                                               _dense(8, 2, w=1e20)]}, name="h.json")
    with pytest.raises(ModelFileError, match=r"h\.json: layer 2 \(dense\): weights too large: values could reach "
                                             r"3\.2e\+41 for inputs in \[-1, 1\]"):
        huge.check_bounded(1.0)
    lstm = {"type": "lstm", "shape": [None, 2], "weights": [np.full((4, 8), 1e31).tolist(),
                                                             np.zeros((2, 8)).tolist(), np.zeros(8).tolist()]}
    with pytest.raises(ModelFileError, match=r"layer 1 \(lstm\): weights too large"):
        model_from_dict({"in_shape": [None, 4], "layers": [lstm]}, name="l.json").check_bounded(1.0)


def test_softmax_skips_max_subtraction_only_when_the_sum_cannot_overflow():
    # 8192 logits of up to 79: each exp fits float32, but their sum would not.
    n = 8192
    obj = {"in_shape": [None, 1], "layers": [
        {"type": "dense", "activation": "tanh", "shape": [None, 1], "weights": [[[1.0]], [0.0]]},
        {"type": "dense", "activation": "softmax", "shape": [None, n], "weights": [[[79.0] * n], [0.0] * n]}]}
    model = model_from_dict(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = model.forward(np.array([20.0]))
    assert np.isfinite(y).all() and y.sum() == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------------------------
# The processor: bad files on the search path fall back instead of stopping compose
# ---------------------------------------------------------------------------------------


def _write_bad_models(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "melodytransformer.json").write_text(DEEP)
    (folder / "dynamicsengine.json").write_text(json.dumps(
        {"in_shape": [None, None, 268_435_456], "layers": [
            {"type": "activation", "activation": "tanh", "shape": [None, None, 268_435_456], "weights": []}]}))
    (folder / "harmonypredictor.json").symlink_to("/dev/zero")
    os.mkfifo(folder / "emotionrecognizer.json")
    huge = [_dense(64, 128, act="tanh", w=1e35), _dense(128, 64, act="tanh"), _dense(64, 32, act="tanh")]
    (folder / "groovepredictor.json").write_text(json.dumps({"in_shape": [None, None, 64], "layers": huge}))


def test_bad_files_on_the_search_path_fall_back_and_say_why(tmp_path, monkeypatch):
    _write_bad_models(tmp_path / "data" / "kelly" / "models")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("KELLY_MODELS", raising=False)
    t0 = time.perf_counter()
    proc = MultiModelProcessor()
    assert time.perf_counter() - t0 < 2
    status = proc.status()
    assert status["live"] == []
    errors = {key: entry["error"] for key, entry in status["models"].items()}
    assert "melodytransformer.json: not a usable model file: the JSON is nested too deeply" in errors[
        "melodytransformer"]
    assert "dynamicsengine.json: input size 268,435,456 is larger than this runtime allows" in errors["dynamicsengine"]
    assert "resolves to /dev/zero, outside its folder" in errors["harmonypredictor"]
    assert "emotionrecognizer.json: is " in errors["emotionrecognizer"]
    assert "groovepredictor.json: layer 1 (dense): weights too large" in errors["groovepredictor"]
    assert status["models"]["melodytransformer"]["status"].startswith("fallback: melodytransformer.json")
    note = proc.note()
    assert note.startswith("no network live: running on the fallback heuristics; ")
    assert "melodytransformer falls back because melodytransformer.json: not a usable model file" in note
    hints = proc.hints_for_emotion(_state())
    assert not any(hints.live.values()) and np.isfinite(hints.note_probs).all()
    # The same files named explicitly (models_dir, --models-dir) stop with one error.
    with pytest.raises(ModelError):
        MultiModelProcessor(tmp_path / "data" / "kelly" / "models")
    # strict=True raises for the search path too; strict=False never raises.
    with pytest.raises(ModelError):
        MultiModelProcessor(strict=True)
    assert MultiModelProcessor(tmp_path / "data" / "kelly" / "models", strict=False).status()["live"] == []


def test_compose_survives_bad_models_on_the_search_path(cli, capsys, tmp_path, monkeypatch):
    _write_bad_models(tmp_path / "env-models")
    monkeypatch.setenv("KELLY_MODELS", str(tmp_path / "env-models"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    out = tmp_path / "song.mid"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli(["compose", "I feel hopeful", "--bars", "2", "--out", str(out)]) == 0
    assert "Warning" not in capsys.readouterr().err
    explanation = json.loads(out.with_suffix(".json").read_text())
    assert explanation["models"]["live"] == []
    assert "nested too deeply" in explanation["models"]["status"]["melodytransformer"]
    # With --models-dir naming that folder the user asked for those files: one error line.
    assert cli(["compose", "I feel hopeful", "--bars", "2", "--out", str(tmp_path / "other.mid"), "--models-dir",
                str(tmp_path / "env-models")]) == 2
    assert "emotionrecognizer.json: is " in _one_line_error(capsys)


def test_odd_search_path_entries_are_harmless(tmp_path, monkeypatch, no_shipped_models):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("KELLY_MODELS", os.pathsep.join(["~no-such-user-kelly/models", str(a_file),
                                                        str(tmp_path / "missing"), "   "]))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    proc = MultiModelProcessor()
    assert proc.status()["live"] == [] and proc.note() == "no model files found: running on the fallback heuristics"


def _state():
    from kelly.emotion.state import EmotionState

    return EmotionState(label="hope", family="anticipation", valence=0.5, arousal=0.5, dominance=0.5, intensity=0.5)


def test_checked_entry_points_refuse_out_of_range_vectors():
    proc = MultiModelProcessor(search_path=[])
    with pytest.raises(InputError, match=r"mel frame values must lie in \[-1, 1\], got one of 1e\+30"):
        proc.run_audio_features(np.full(128, 1e30))
    with pytest.raises(InputError, match="NaN"):
        proc.hints_for_embedding(np.full(64, np.inf))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="must lie in"):
            proc.run_model("groovepredictor", np.full(64, 1e300))  # float32 cast overflow stays quiet


# ---------------------------------------------------------------------------------------
# CSV input of `kelly runtime`
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("1.0\nabc\n", "line 2, value 1: 'abc' is not a number"),
    ("1.0\n# c\n\nnan\n", "line 4, value 1: 'nan' is not a finite number"),
    ("inf\n", "line 1, value 1: 'inf' is not a finite number"),
    ("1e999\n", "line 1, value 1: '1e999' is not a finite number"),
    ("1e39\n", "line 1, value 1: '1e39' is too large (at most ±3.403e+38)"),
    ("1," * 100 + "1\n", "line 1: expected 1 comma-separated values, got 101"),
    ("x" * 5000 + "\n", "line 1, value 1: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is not a number"),
    ("\x00" * 10 + "\n", "is not a number"),
])
def test_bad_csv_values_name_the_line(cli, capsys, tmp_path, text, message):
    csv = tmp_path / "in.csv"
    csv.write_text(text)
    line = _fails_fast(cli, capsys, ["runtime", str(DENSE), "--input", str(csv)])
    assert message in line


def test_csv_limits(tmp_path, monkeypatch):
    with pytest.raises(FileFormatError, match="input line 2: longer than 1,048,576 characters"):
        read_csv_rows(["1", "1" * (runtime.MAX_CSV_LINE + 1)], 1)
    monkeypatch.setattr(runtime, "MAX_CSV_ROWS", 3)
    with pytest.raises(FileFormatError, match="input line 5: more than 3 rows"):
        read_csv_rows(["1", "# skipped", "2", "3", "4"], 1)
    monkeypatch.undo()
    big = tmp_path / "big.csv"
    with open(big, "wb") as handle:
        handle.truncate(runtime.MAX_CSV_BYTES + 1)
    with pytest.raises(FileFormatError, match=r"big\.csv: is .* may be at most"):
        read_csv_file(big, 1)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"1\n2\n\xff\n")
    with pytest.raises(FileFormatError, match=r"bad\.csv line 3: not UTF-8 text"):
        read_csv_file(bad, 1)
    with pytest.raises(InputError, match="not found"):
        read_csv_file(tmp_path / "missing.csv", 1)
    good = tmp_path / "good.csv"
    good.write_text("# x\n1,2\n\n3,4\n")
    rows, lines = read_csv_file(good, 2, with_lines=True)
    assert rows.tolist() == [[1, 2], [3, 4]] and lines == [2, 4]


def test_csv_devices_and_fifos_fail_fast(tmp_path):
    fifo = tmp_path / "steps.csv"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(FileFormatError, match=r"steps\.csv: is a named pipe"):
        read_csv_file(fifo, 1)
    with pytest.raises(FileFormatError, match="/dev/zero: is a character device"):
        read_csv_file("/dev/zero", 1)
    assert time.perf_counter() - t0 < 1


def test_dev_zero_as_input_fails_fast_through_the_cli(cli, capsys, monkeypatch):
    line = _fails_fast(cli, capsys, ["runtime", str(DENSE), "--input", "/dev/zero"], seconds=2, peak_mb=50)
    assert "/dev/zero" in line
    with open("/dev/zero", encoding="utf-8") as zero:
        monkeypatch.setattr("sys.stdin", zero)
        line = _fails_fast(cli, capsys, ["runtime", str(DENSE)], seconds=2, peak_mb=50)
    assert "standard input line 1: longer than 1,048,576 characters" in line


def test_stdin_stream_limits(monkeypatch):
    monkeypatch.setattr(runtime, "MAX_CSV_BYTES", 100)
    with pytest.raises(FileFormatError, match=r"standard input: more than 100 bytes of input \(line 51\)"):
        read_csv_rows(io.StringIO("1\n" * 1000), 1, source="standard input")
    monkeypatch.undo()
    rows = read_csv_rows(io.StringIO("1\n2\n"), 1)
    assert rows.tolist() == [[1.0], [2.0]]


def test_run_rows_reports_overflow_without_numpy_warnings():
    model = load_rtneural_bytes(W1 % "3e38", name="big.json")
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_rows(model, np.array([[0.5]]), out) == 1
        with pytest.raises(ModelError, match=r"in\.csv line 7: big\.json's output is not finite"):
            run_rows(model, np.array([[0.5], [10.0]]), out, lines=[3, 7], source="in.csv")
    assert out.getvalue().splitlines()[0] == "1.5e+38"


def _runtime_command_is_hardened() -> bool:
    import inspect

    from kelly.commands import ml as commands_ml

    return "read_csv_file" in inspect.getsource(commands_ml.cmd_runtime)


@pytest.mark.skipif(not _runtime_command_is_hardened(),
                    reason="needs kelly/commands/ml.py cmd_runtime to use read_csv_file and run_rows")
def test_runtime_command_fifo_and_overflow(cli, capsys, tmp_path):
    fifo = tmp_path / "steps.csv"
    os.mkfifo(fifo)
    line = _fails_fast(cli, capsys, ["runtime", str(DENSE), "--input", str(fifo)], seconds=1)
    assert "steps.csv: is a named pipe" in line
    model = tmp_path / "big.json"
    model.write_text(W1 % "3e38")
    csv = tmp_path / "in.csv"
    csv.write_text("0.5\n# note\n10\n")
    line = _fails_fast(cli, capsys, ["runtime", str(model), "--input", str(csv)])
    assert "in.csv line 3: big.json's output is not finite" in line


# ---------------------------------------------------------------------------------------
# Fuzzing entry point: bytes in, a Model or a KellyError out
# ---------------------------------------------------------------------------------------


def test_load_rtneural_bytes_mutations_only_raise_kelly_errors():
    seed = DENSE.read_bytes()
    rng = np.random.default_rng(9)
    assert load_rtneural_bytes(seed).in_size == 1
    alphabet = b'[]{},:"0123456789.eE-+ aelnrtuNIfy\\\x00\xff'
    for _ in range(300):
        data = bytearray(seed[: int(rng.integers(0, len(seed) + 1))] if rng.random() < 0.2 else seed)
        for _ in range(int(rng.integers(1, 8))):
            pos = int(rng.integers(0, len(data) + 1))
            op = rng.integers(0, 3)
            if op == 0:
                data[pos:pos] = bytes([alphabet[int(rng.integers(0, len(alphabet)))]]) * int(rng.integers(1, 50))
            elif op == 1:
                del data[pos:pos + int(rng.integers(1, 20))]
            else:
                data[pos:pos] = b"9" * int(rng.integers(300, 5000))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model = load_rtneural_bytes(bytes(data))
                model.forward(np.zeros(model.in_size))
        except KellyError as exc:
            assert "\n" not in str(exc)
