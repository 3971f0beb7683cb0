"""Issue 10, item 9: hardening of the RTNeural JSON loader (``kelly.ml.runtime``).

Declared sizes are capped before anything is allocated; nesting depth is checked on the
bytes before parsing; whatever fails while parsing or building becomes one
``ModelFileError`` naming the file (and the layer); what RTNeural's ``parseJson`` refuses
(non-number weights, ``"activation": null``, activation names it cannot create) is
refused; weights must be finite after the float32 cast. With ``strict=False`` (and on the
implicit search path) nothing raises: the network falls back and says why in one line.

Every hostile file is a few bytes built here (the deep one is ~200 KB).
"""

from __future__ import annotations

import json
import random
import time
import tracemalloc
import warnings

import numpy as np
import pytest

from kelly.errors import KellyError
from kelly.ml import runtime
from kelly.ml.processor import MultiModelProcessor
from kelly.ml.runtime import (ModelFileError, json_nesting_depth, load_model, load_rtneural_bytes, model_from_dict,
                              parse_model_json)
from kelly.ml.specs import SPECS

NAME = "emotionrecognizer.json"


def _dense(n_out, *, act='""', w="0.5", n_in=2, b="0.5", bias=True) -> dict:
    """One dense layer as JSON text pieces (so values such as ``1e39`` stay literal)."""
    rows = ", ".join(f"[{', '.join([w] + ['0.5'] * (n_out - 1))}]" if i == 0 else
                     f"[{', '.join(['0.5'] * n_out)}]" for i in range(n_in))
    weights = f"[{rows}]" + (f", [{', '.join([b] + ['0.5'] * (n_out - 1))}]" if bias else "")
    return f'{{"type": "dense", "activation": {act}, "shape": [null, null, {n_out}], "weights": [{weights}]}}'


def _model(*layers: str, n_in: int = 2) -> bytes:
    return f'{{"in_shape": [null, null, {n_in}], "layers": [{", ".join(layers)}]}}'.encode()


def _refused(data: bytes | dict, *, name: str = NAME, **kw) -> str:
    """The one-line ModelFileError message for ``data`` (bytes or a parsed dict)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warnings either
        with pytest.raises(ModelFileError) as info:
            if isinstance(data, dict):
                model_from_dict(data, name=name, **kw)
            else:
                load_rtneural_bytes(data, name=name, **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith(name), message
    return message


def _no_allocation(fn, *, peak_bytes: int = 1 << 20, seconds: float = 1.0):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < seconds
    assert peak < peak_bytes, f"peak {peak} bytes"
    return result


# ---------------------------------------------------------------------------------------
# 1. Declared sizes are capped before anything is allocated
# ---------------------------------------------------------------------------------------

HUGE = [10**12, 2**70]


@pytest.mark.parametrize("size", HUGE)
@pytest.mark.parametrize("kind", ["dense", "lstm", "gru", "activation", "batchnorm", "prelu"])
def test_huge_layer_sizes_are_refused_without_allocating(size, kind):
    layer = {"type": kind, "activation": "tanh", "shape": [None, None, size], "weights": []}
    data = json.dumps({"in_shape": [None, None, 4],
                       "layers": [json.loads(_dense(4, n_in=4)), layer]}).encode()
    message = _no_allocation(lambda: _refused(data))
    assert message == (f"{NAME}: layer 2 ({kind}): output size {size:,} is larger than this runtime allows "
                       f"({runtime.MAX_WIDTH:,})")


@pytest.mark.parametrize("size", HUGE)
def test_huge_input_size_is_refused_without_allocating(size):
    data = json.dumps({"in_shape": [None, None, size], "layers": [json.loads(_dense(2))]}).encode()
    message = _no_allocation(lambda: _refused(data))
    assert message == f"{NAME}: input size {size:,} is larger than this runtime allows ({runtime.MAX_WIDTH:,})"


def test_weight_matrix_products_share_one_budget():
    # Every width within the cap, but 16,384 x 16,384 weights: refused by the declared count.
    wide = runtime.MAX_WIDTH
    obj = {"in_shape": [None, wide], "layers": [{"type": "lstm", "shape": [None, wide], "weights": []}]}
    message = _no_allocation(lambda: _refused(obj))
    assert message.startswith(f"{NAME}: layer 1 (lstm): the layers declared so far need ")
    assert f"more than this runtime allows ({runtime.MAX_PARAMS:,})" in message
    # The five real networks fit easily (largest: 641,664 numbers; widest layer: 512).
    assert sum(spec.params for spec in SPECS.values()) < runtime.MAX_PARAMS / 3
    # The budget follows the file size cap: 4,000,000 numbers need at least ~8 bytes each.
    assert runtime.MAX_PARAMS * 8 <= runtime.MAX_MODEL_BYTES + runtime.MAX_MODEL_BYTES // 4


def test_python_integers_beyond_str_limits_are_reported():
    # A dict built in Python can hold sizes JSON parsing would have refused (10**5000
    # cannot even be turned into a decimal string by default).
    message = _refused({"in_shape": [None, 10**5000], "layers": [json.loads(_dense(2))]})
    assert "input size 2^16609 (or more) is larger than this runtime allows" in message
    obj = {"in_shape": [None, 2], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[10**400], [1]]]}]}
    assert "too large for float32" in _refused(obj)


# ---------------------------------------------------------------------------------------
# 2. Depth is checked before parsing; every failure becomes one ModelFileError
# ---------------------------------------------------------------------------------------

DEEP = b'{"in_shape": [null, 1], "layers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_deep_nesting_is_refused_before_parsing(monkeypatch):
    assert 190_000 < len(DEEP) < 210_000

    def never(*args, **kwargs):
        raise AssertionError("json.loads must not see a file that nests too deeply")

    monkeypatch.setattr(runtime.json, "loads", never)
    for data in (DEEP, DEEP[:100_040], b'{"a": ' * 50_000 + b"1" + b"}" * 50_000):
        message = _refused(data)
        assert message.startswith(f"{NAME}: not a usable model file: the JSON is nested too deeply (more than "
                                  f"{runtime.MAX_JSON_DEPTH} levels")


def test_deep_nesting_through_the_file_loader(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(DEEP)
    with pytest.raises(ModelFileError, match=r"^emotionrecognizer\.json: not a usable model file: the JSON is "
                                             r"nested too deeply"):
        load_model(path)


def test_brackets_inside_strings_do_not_count():
    layer = json.loads(_dense(1))
    layer["note"] = "[" * 5000 + '\\"{' * 100 + "\\\\"
    data = json.dumps({"in_shape": [None, 2], "layers": [layer], "doc": "]]]" * 1000}).encode()
    assert json_nesting_depth(data) == 6  # object, layers, layer, weights, W, row
    assert load_rtneural_bytes(data, name=NAME).out_size == 1


def _random_json(rng: random.Random, depth: int):
    pick = rng.random()
    if depth <= 0 or pick < 0.3:
        return rng.choice([1, 2.5, None, True, "x[", '"]}', "\\", "{[\\\"", ""])
    if pick < 0.65:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", "[b", "c}\\", '"']): _random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def _true_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_true_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_true_depth, value.values()), default=0)
    return 0


def test_nesting_scan_agrees_with_the_parser():
    rng = random.Random(10)
    for _ in range(300):
        value = _random_json(rng, rng.randint(0, 9))
        data = json.dumps(value).encode()
        assert json_nesting_depth(data) == _true_depth(value), data
    # Chunked scan: the running depth and the open string carry across chunk boundaries.
    data = b'["' + b"[" * (runtime._DEPTH_CHUNK + 5) + b'", ' + b"[" * 40 + b"]" * 40 + b"]"
    assert json_nesting_depth(data) == 41
    assert json_nesting_depth(data, limit=32) > 32


@pytest.mark.parametrize("exc", [MemoryError(), OverflowError("int too large"), ValueError("odd"),
                                 TypeError("odd"), RecursionError(), ZeroDivisionError()])
def test_any_failure_while_parsing_is_one_line(monkeypatch, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(runtime.json, "loads", boom)
    message = _refused(_model(_dense(1)))
    assert message.startswith(f"{NAME}: not ")


@pytest.mark.parametrize("exc", [MemoryError(), OverflowError("int too large"), ValueError("odd"),
                                 TypeError("odd"), RecursionError(), KeyError("x")])
def test_any_failure_while_building_names_the_file_and_layer(monkeypatch, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(runtime, "Dense", boom)
    message = _refused(_model(_dense(2), _dense(1), n_in=2))
    assert message.startswith(f"{NAME}: layer 1 (dense): ")
    # While the layers are wired together: the file is named.
    monkeypatch.undo()
    monkeypatch.setattr(runtime, "aligned_empty", boom)
    assert _refused(_model(_dense(1))).startswith(f"{NAME}: ")


def test_deeply_nested_python_values_are_refused_without_recursion_errors():
    deep = 1.0
    for _ in range(50_000):
        deep = [deep]
    base = {"type": "dense", "shape": [None, 1], "weights": [[[1.0]]]}
    cases = {"weights": dict(base, weights=[[deep]]), "activation": dict(base, activation=deep),
             "shape": dict(base, shape=deep), "type": dict(base, type=deep)}
    for field, layer in cases.items():
        message = _refused({"in_shape": [None, 1], "layers": [layer]})
        assert message.startswith(f"{NAME}: layer 1"), (field, message)


# ---------------------------------------------------------------------------------------
# 3. What RTNeural's parseJson refuses
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("literal, shown", [('"0.5"', 'the string "0.5"'), ("true", "true"), ("false", "false"),
                                            ("null", "null"), ("[]", None), ("{}", "an object")])
def test_weights_must_be_json_numbers(literal, shown):
    message = _refused(_model(_dense(1, w=literal)))
    if shown is None:  # a list where a number belongs: an extra dimension
        assert message.startswith(f"{NAME}: layer 1 (dense): weights W ")
        return
    assert message == (f"{NAME}: layer 1 (dense): weights W is not a rectangular array of numbers: row 1, column 1 "
                       f"is {shown} (every weight must be a JSON number)")
    message = _refused(_model(_dense(2), _dense(1, b=literal), n_in=2))
    assert message.startswith(f"{NAME}: layer 2 (dense): weights b is not a rectangular array of numbers: value 1 "
                              f"is {shown}")


def test_booleans_mixed_with_numbers_are_not_coerced():
    # numpy would turn [0.5, true] into [0.5, 1.0] without a word.
    message = _refused(_model(_dense(2, w="0.25").replace("[0.25, 0.5]", "[0.25, true]")))
    assert "weights W is not a rectangular array of numbers: row 1, column 2 is true" in message
    lstm = {"type": "lstm", "activation": "", "shape": [None, 1],
            "weights": [[[0.1] * 4], [[0.1, 0.1, False, 0.1]], [0.0] * 4]}
    message = _refused({"in_shape": [None, 1], "layers": [lstm]})
    assert message.startswith(f"{NAME}: layer 1 (lstm): weights U is not a rectangular array of numbers: row 1, "
                              "column 3 is false")
    bn = {"type": "batchnorm", "shape": [None, 2], "epsilon": 1e-3, "weights": [[0.0, None], [1.0, 1.0]]}
    assert "weights mean is not a rectangular array of numbers: value 2 is null" in _refused(
        {"in_shape": [None, 2], "layers": [bn]})
    prelu = {"type": "prelu", "shape": [None, 2], "weights": [["0.2", 0.2]]}
    assert "weights alpha is not a rectangular array of numbers: value 1 is the string" in _refused(
        {"in_shape": [None, 2], "layers": [prelu]})
    assert "weights alpha" in _refused({"in_shape": [None, 2], "layers": [dict(prelu, weights=[[np.bool_(1)]])]})


@pytest.mark.parametrize("act, message", [
    ("null", "'activation' must be a string (\"\" for none), got null"),
    ("0", "'activation' must be a string (\"\" for none), got 0"),
    ("[\"tanh\"]", "'activation' must be a string (\"\" for none), got [\"tanh\"]"),
    ('"linear"', "unknown activation 'linear'"),
    ('"swish"', "unknown activation 'swish'"),
    ('"prelu"', "unknown activation 'prelu'"),
    ('"Tanh"', "unknown activation 'Tanh'"),
])
def test_activation_must_be_one_rtneural_creates(act, message):
    got = _refused(_model(_dense(1, act=act)))
    assert got.startswith(f"{NAME}: layer 1 (dense): {message}")
    assert "supported: tanh, relu, sigmoid, softmax, elu" in got
    standalone = '{"type": "activation", "activation": %s, "shape": [null, null, 2], "weights": []}' % act
    assert _refused(_model(standalone)).startswith(f"{NAME}: layer 1 (activation): {message}")


def test_activations_rtneural_accepts():
    for act in runtime.ACTIVATION_NAMES:
        assert load_rtneural_bytes(_model(_dense(1, act=json.dumps(act))), name=NAME).out_size == 1
    # No "activation" key: none, as in RTNeural (its add_activation checks contains()).
    layer = json.loads(_dense(1))
    del layer["activation"]
    assert len(model_from_dict({"in_shape": [None, 2], "layers": [layer]}, name=NAME).layers) == 1
    # Recurrent layers: RTNeural never reads "activation", so null is harmless there.
    lstm = {"type": "lstm", "activation": None, "shape": [None, 1],
            "weights": [[[0.1] * 4], [[0.1] * 4], [0.0] * 4]}
    assert model_from_dict({"in_shape": [None, 1], "layers": [lstm]}, name=NAME).out_size == 1


@pytest.mark.parametrize("kind", ["conv1d", "conv2d", "batchnorm2d", "Dense", "", None, 3])
def test_unknown_layer_types_are_refused(kind):
    layer = dict(json.loads(_dense(1)), type=kind)
    message = _refused({"in_shape": [None, 2], "layers": [layer]})
    assert message.startswith(f"{NAME}: layer 1: unsupported type ")
    assert "supported: dense, time-distributed-dense, lstm, gru, activation, batchnorm, prelu" in message


# ---------------------------------------------------------------------------------------
# 4. Finite after the float32 cast
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("literal", ["1e39", "-1e39", "3.5e38", "1.7976931348623157e308"])
def test_weights_must_be_finite_in_float32(literal):
    message = _refused(_model(_dense(2), _dense(1, w=literal), n_in=2))
    assert message.startswith(f"{NAME}: layer 2 (dense): weights W contains NaN, infinite or out-of-range values: "
                              "row 1, column 1 is ")
    assert "not finite in float32" in message
    message = _refused(_model(_dense(1, b=literal)))
    assert message.startswith(f"{NAME}: layer 1 (dense): weights b contains NaN, infinite or out-of-range values: "
                              "value 1 is ")


def test_largest_float32_is_accepted():
    top = f"{np.finfo(np.float32).max:.9g}"  # 3.40282347e+38, finite in float32
    model = load_rtneural_bytes(_model(_dense(1, w=top)), name=NAME)
    assert np.isfinite(model.layers[0].weight).all()
    nan = {"in_shape": [None, 1], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[float("nan")]]]}]}
    assert "row 1, column 1 is nan" in _refused(nan)


# ---------------------------------------------------------------------------------------
# 5. Falling back: the processor, compose, runtime and validate
# ---------------------------------------------------------------------------------------

HOSTILE = {
    "emotionrecognizer": ("size", json.dumps({"in_shape": [None, None, 128], "layers": [
        {"type": "dense", "activation": "tanh", "shape": [None, None, 10**12], "weights": [[], []]}]}).encode(),
        "emotionrecognizer.json: layer 1 (dense): output size 1,000,000,000,000 is larger than this runtime allows"),
    "melodytransformer": ("deep", DEEP, "melodytransformer.json: not a usable model file: the JSON is nested too "
                                        "deeply"),
    "harmonypredictor": ("overflow", json.dumps({"in_shape": [None, None, 2**70], "layers": []}).encode(),
                         "harmonypredictor.json: input size 1,180,591,620,717,411,303,424 is larger"),
    "dynamicsengine": ("null activation", _model(_dense(128, act="null", n_in=32), n_in=32),
                       "dynamicsengine.json: layer 1 (dense): 'activation' must be a string"),
    "groovepredictor": ("string weight", _model(_dense(128, act='"tanh"', w='"0.5"', n_in=64),
                                                _dense(64, act='"tanh"', n_in=128), _dense(32, act='"tanh"', n_in=64),
                                                n_in=64),
                        "groovepredictor.json: layer 1 (dense): weights W is not a rectangular array of numbers: "
                        'row 1, column 1 is the string "0.5"'),
}


@pytest.fixture
def hostile_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for key, (_, data, _) in HOSTILE.items():
        (folder / SPECS[key].file_name).write_bytes(data)
    return folder


def test_processor_with_strict_false_falls_back_and_says_why(hostile_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proc = _no_allocation(lambda: MultiModelProcessor(hostile_dir, strict=False), peak_bytes=64 << 20,
                              seconds=5)
    status = proc.status()
    assert status["live"] == []
    note = proc.note()
    for key, (_, _, reason) in HOSTILE.items():
        error = status["models"][key]["error"]
        assert reason in error and "\n" not in error
        assert f"{key} falls back because {reason}" in note
    hints = proc.hints_for_emotion(_state())
    assert not any(hints.live.values()) and np.isfinite(hints.note_probs).all()


def test_compose_falls_back_for_hostile_files_on_the_search_path(cli, capsys, hostile_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KELLY_MODELS", str(hostile_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    out = tmp_path / "song.mid"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli(["compose", "hi", "--bars", "4", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Warning" not in captured.err
    models = json.loads(out.with_suffix(".json").read_text())["models"]
    assert models["live"] == []
    assert "\n" not in models["note"]
    for key, (_, _, reason) in HOSTILE.items():
        assert f"{key} falls back because {reason}" in models["note"]


def test_compose_with_models_dir_stops_with_one_line(cli, capsys, hostile_dir, tmp_path):
    # --models-dir names the files the user asked for: as documented (docs/ml.md, issue 9),
    # a bad one there stops with one error line (exit 2) instead of silently falling back.
    code = cli(["compose", "hi", "--bars", "4", "--models-dir", str(hostile_dir), "--out", str(tmp_path / "s.mid")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kelly: error: ") and "Traceback" not in err[0]
    assert any(reason in err[0] for _, _, reason in HOSTILE.values())


@pytest.mark.parametrize("key", list(HOSTILE))
def test_runtime_and_validate_give_one_line(cli, capsys, tmp_path, key):
    _, data, reason = HOSTILE[key]
    folder = tmp_path / "one"
    folder.mkdir()
    path = folder / SPECS[key].file_name
    path.write_bytes(data)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert cli(["runtime", str(path), "--input", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kelly: error: {err[0][len('kelly: error: '):]}"] and reason in err[0]
    assert cli(["validate", str(folder)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kelly: error: validation failed") and reason in err[0]
    assert "Traceback" not in captured.err


def test_the_loader_raises_only_kelly_errors_for_hostile_bytes():
    rng = random.Random(9)
    pieces = [b"[" * 40, b"]" * 40, b"null", b"true", b'"0.5"', b"1e39", b"-0", b"2e308", b"10000000000000",
              b'"activation": null', b'"shape": [null, 4096]', b"{", b"}", b",", b":", b'"\\"', b"\xff"]
    seed = _model(_dense(2, act='"tanh"'), _dense(1))
    for _ in range(300):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(0, len(data))
            data[pos:pos + rng.randint(0, 6)] = rng.choice(pieces)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                load_rtneural_bytes(bytes(data), name=NAME)
        except KellyError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(NAME)


def test_parse_refuses_non_utf8_and_keeps_a_utf8_bom():
    assert "not UTF-8 text" in _refused(b'\xff\xfe{"in_shape": 1}')
    assert parse_model_json(b"\xef\xbb\xbf" + _model(_dense(1)), name=NAME)["in_shape"][-1] == 2


def _state():
    from kelly.emotion.state import EmotionState

    return EmotionState(label="hope", family="anticipation", valence=0.5, arousal=0.5, dominance=0.5, intensity=0.5)
