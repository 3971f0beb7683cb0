"""The numpy runtime against RTNeural's own vectors, reference formulas and bad files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from kelly.errors import ModelError
from kelly.ml.convert import gru_json, state_dict_to_rtneural
from kelly.ml.runtime import load_model, model_from_dict, read_csv_rows
from kelly.ml.specs import SPECS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rtneural"


def _vectors(name):
    return np.loadtxt(FIXTURES / f"{name}_x_python.csv"), np.loadtxt(FIXTURES / f"{name}_y_python.csv")


@pytest.mark.parametrize("name", ["dense", "lstm"])
def test_rtneural_keras_vectors(name):
    model = load_model(FIXTURES / f"{name}.json")
    x, y = _vectors(name)
    out = model.run(x[:, None])[:, 0]
    assert np.abs(out - y).max() < 1e-6
    model.reset()
    assert np.abs(model.run(x[:, None])[:, 0] - y).max() < 1e-6  # reset gives the same sequence again


def test_rtneural_torch_lstm_vectors():
    state = json.loads((FIXTURES / "lstm_torch.json").read_text())
    obj = state_dict_to_rtneural(state, [("lstm", "lstm", 1), ("lstm", "lstm2", 3), ("dense", "dense", "")], 1)
    model = model_from_dict(obj, name="lstm_torch")
    x, y = _vectors("lstm_torch")
    assert np.abs(model.run(x[:, None])[:, 0] - y).max() < 1e-6


def _gru_reference(W, U, b, xs):
    """Keras reset_after GRU, gates z, r, n, in float64: the semantics of RTNeural §12.3."""
    H = U.shape[0]
    h = np.zeros(H)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = []
    for x in xs:
        gx, gh = x @ W + b[0], h @ U + b[1]
        z, r = sig(gx[:H] + gh[:H]), sig(gx[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gx[2 * H:] + r * gh[2 * H:])
        h = (1 - z) * n + z * h
        out.append(h.copy())
    return np.array(out)


def test_gru_semantics():
    rng = np.random.default_rng(3)
    n, H = 3, 5
    W, U, b = rng.normal(size=(n, 3 * H)), rng.normal(size=(H, 3 * H)), rng.normal(size=(2, 3 * H))
    obj = {"in_shape": [None, None, n], "layers": [
        {"type": "gru", "activation": "", "shape": [None, None, H], "weights": [W.tolist(), U.tolist(), b.tolist()]}]}
    xs = rng.normal(size=(20, n))
    model = model_from_dict(obj, name="gru")
    assert np.abs(model.run(xs) - _gru_reference(W, U, b, xs)).max() < 1e-5
    model64 = model_from_dict(obj, name="gru", dtype=np.float64)
    assert np.abs(model64.run(xs) - _gru_reference(W, U, b, xs)).max() < 1e-12


def test_gru_from_torch_swaps_r_and_z():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gru = torch.nn.GRU(4, 6, batch_first=True)
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    obj = {"in_shape": [None, None, 4], "layers": [gru_json(sd["weight_ih_l0"], sd["weight_hh_l0"],
                                                            sd["bias_ih_l0"], sd["bias_hh_l0"])]}
    xs = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    with torch.no_grad():
        ref = gru(torch.from_numpy(xs)[None])[0][0].numpy()
    assert np.abs(model_from_dict(obj).run(xs) - ref).max() < 1e-5


def test_activations_batchnorm_prelu():
    rng = np.random.default_rng(5)
    W = rng.normal(size=(4, 4))
    x = rng.normal(size=4)
    gamma, beta, mean, var = rng.uniform(0.5, 2, (4, 4))
    alpha = rng.uniform(0, 0.5, 4)
    layers = [{"type": "dense", "activation": "sigmoid", "shape": [None, 4], "weights": [W.tolist(), [0.1] * 4]},
              {"type": "batchnorm", "shape": [None, 4], "epsilon": 0.001,
               "weights": [gamma.tolist(), beta.tolist(), mean.tolist(), var.tolist()]},
              {"type": "prelu", "shape": [None, 4], "weights": [alpha.tolist()]},
              {"type": "activation", "activation": "elu", "shape": [None, 4], "weights": []},
              {"type": "activation", "activation": "softmax", "shape": [None, 4], "weights": []}]
    model = model_from_dict({"in_shape": [None, 4], "layers": layers}, dtype=np.float64)
    y = 1 / (1 + np.exp(-(x @ W + 0.1)))
    y = gamma * (y - mean) / np.sqrt(var + 0.001) + beta
    y = np.where(y > 0, y, alpha * y)
    y = np.where(y > 0, y, np.expm1(y))
    y = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
    assert np.abs(model.forward(x) - y).max() < 1e-12
    assert model.param_count() == 16 + 4 + 16 + 4


def test_output_is_read_only_and_state_resets():
    model = load_model(FIXTURES / "lstm.json")
    first = model.forward(np.array([1.0])).copy()
    with pytest.raises(ValueError):
        model.forward(np.array([1.0]))[0] = 5.0
    second = model.forward(np.array([1.0])).copy()
    assert not np.allclose(first, second)  # stateful
    model.reset()
    assert np.allclose(model.forward(np.array([1.0])), first)


def _dense_model(n_in, n_out, *, act=""):
    return {"type": "dense", "activation": act, "shape": [None, None, n_out],
            "weights": [np.zeros((n_in, n_out)).tolist(), np.zeros(n_out).tolist()]}


def test_errors_name_file_and_layer():
    good = {"in_shape": [None, None, 64], "layers": [
        _dense_model(64, 256, act="relu"),
        {"type": "lstm", "activation": "", "shape": [None, None, 256],
         "weights": [np.zeros((64, 1024)).tolist(), np.zeros((256, 1024)).tolist(), np.zeros(1024).tolist()]}]}
    with pytest.raises(ModelError, match=r"melodytransformer\.json: layer 2 \(lstm\): weights W has shape "
                                         r"64x1024, expected 256x1024"):
        model_from_dict(good, name="melodytransformer.json")
    bad = copy.deepcopy(good)
    bad["layers"][0]["weights"][1] = [0.0] * 3
    with pytest.raises(ModelError, match=r"x\.json: layer 1 \(dense\): weights b has shape 3, expected 256"):
        model_from_dict(bad, name="x.json")
    bad = {"in_shape": [None, 2], "layers": [{"type": "conv3d", "shape": [None, 2], "weights": []}]}
    with pytest.raises(ModelError, match=r"layer 1: unsupported type 'conv3d'"):
        model_from_dict(bad, name="x.json")
    bad = {"in_shape": [None, 2], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[1.0], ["a"]]]}]}
    with pytest.raises(ModelError, match=r"layer 1 \(dense\): weights W is not a rectangular array"):
        model_from_dict(bad, name="x.json")
    bad = {"in_shape": [None, 1], "layers": [{"type": "dense", "shape": [None, 1], "weights": [[[float("nan")]]]}]}
    with pytest.raises(ModelError, match="NaN"):
        model_from_dict(bad, name="x.json")
    bad = {"in_shape": [None, 1], "layers": [{"type": "activation", "activation": "swish", "shape": [None, 1],
                                              "weights": []}]}
    with pytest.raises(ModelError, match="unknown activation 'swish'"):
        model_from_dict(bad, name="x.json")
    with pytest.raises(ModelError, match="in_shape"):
        model_from_dict({"layers": []}, name="x.json")


def test_spec_mismatch_messages():
    spec = SPECS["dynamicsengine"]
    layers = [_dense_model(32, 128, act="relu"), _dense_model(128, 64, act="relu"), _dense_model(64, 16, act="tanh")]
    with pytest.raises(ModelError, match=r"dynamicsengine\.json: layer 3 \(dense\): activation 'tanh', "
                                         r"expected 'sigmoid'"):
        model_from_dict({"in_shape": [None, 32], "layers": layers}, name="dynamicsengine.json", spec=spec)
    layers[1] = _dense_model(128, 60, act="relu")
    layers[2] = _dense_model(60, 16, act="sigmoid")
    with pytest.raises(ModelError, match=r"layer 2 \(dense\): output size 60, expected 64"):
        model_from_dict({"in_shape": [None, 32], "layers": layers}, name="dynamicsengine.json", spec=spec)
    with pytest.raises(ModelError, match=r"input size is 16, expected 32"):
        model_from_dict({"in_shape": [None, 16], "layers": [_dense_model(16, 16)]}, name="d.json", spec=spec)
    # A separate activation layer is the same architecture as an activation on the dense layer.
    split = [_dense_model(32, 128), {"type": "activation", "activation": "relu", "shape": [None, 128], "weights": []},
             _dense_model(128, 64, act="relu"), _dense_model(64, 16, act="sigmoid")]
    model = model_from_dict({"in_shape": [None, 32], "layers": split}, name="d.json", spec=spec)
    assert model.signature()[0][:4] == ("dense", 32, 128, "relu")


def test_load_model_file_errors(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "missing.json")
    bad = tmp_path / "groovepredictor.json"
    bad.write_text('{"in_shape": [null, 64], "layers": [')
    with pytest.raises(ModelError, match=r"groovepredictor\.json: not valid JSON \(line 1"):
        load_model(bad)


def test_read_csv_rows():
    rows = read_csv_rows(["1, 2", "", "# comment", "3,4"], 2)
    assert rows.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    from kelly.errors import FileFormatError

    with pytest.raises(FileFormatError, match="line 2: expected 2 comma-separated values, got 3"):
        read_csv_rows(["1,2", "1,2,3"], 2)
    with pytest.raises(FileFormatError, match="line 1, value 2: 'x' is not a number"):
        read_csv_rows(["1,x"], 2)
    with pytest.raises(FileFormatError, match="line 3, value 1: 'nan' is not a finite number"):
        read_csv_rows(["1,2", "", "nan,2"], 2)


def _naive(obj, xs):
    """Layer-by-layer float64 reference, written for clarity, not speed."""
    state = {}
    outs = []
    for x in xs:
        v = np.asarray(x, dtype=np.float64)
        for k, layer in enumerate(obj["layers"]):
            w = [np.asarray(a, dtype=np.float64) for a in layer["weights"]]
            kind, act = layer["type"], layer.get("activation", "")
            if kind == "dense":
                v = v @ w[0] + (w[1] if len(w) > 1 else 0.0)
            elif kind == "lstm":
                H = w[1].shape[0]
                h, c = state.get(k, (np.zeros(H), np.zeros(H)))
                z = v @ w[0] + h @ w[1] + w[2]
                sig = 1 / (1 + np.exp(-z))
                c = sig[H:2 * H] * c + sig[:H] * np.tanh(z[2 * H:3 * H])
                h = sig[3 * H:] * np.tanh(c)
                state[k] = (h, c)
                v, act = h, ""
            if act == "tanh" or kind == "activation" and act == "tanh":
                v = np.tanh(v)
            elif act == "relu":
                v = np.maximum(v, 0)
            elif act == "sigmoid":
                v = 1 / (1 + np.exp(-v))
            elif act == "softmax":
                v = np.exp(v - v.max()) / np.exp(v - v.max()).sum()
        outs.append(v)
    return np.array(outs)


@pytest.mark.parametrize("plan", [
    ["act:tanh", "lstm:5", "act:relu", "dense:3:sigmoid"],  # activation on the input and on LSTM state
    ["dense:6:relu", "act:sigmoid", "lstm:4", "lstm:3", "dense:2:softmax"],  # dense → acts → LSTM slot
    ["lstm:4", "dense:4:tanh", "dense:5:softmax"],  # bounded softmax input (no max subtraction)
    ["dense:7", "dense:3:sigmoid"],  # dense → dense, sigmoid folded into the weights
    ["lstm:3"],  # output straight from the recurrent state
])
def test_compiled_wiring_matches_naive_reference(plan):
    rng = np.random.default_rng(len(plan))
    n_in = n = 4
    layers = []
    for item in plan:
        kind, *rest = item.split(":")
        if kind == "act":
            layers.append({"type": "activation", "activation": rest[0], "shape": [None, n], "weights": []})
        elif kind == "dense":
            out = int(rest[0])
            layers.append({"type": "dense", "activation": rest[1] if len(rest) > 1 else "", "shape": [None, out],
                           "weights": [rng.normal(size=(n, out)).tolist(), rng.normal(size=out).tolist()]})
            n = out
        else:
            H = int(rest[0])
            layers.append({"type": "lstm", "activation": "", "shape": [None, H],
                           "weights": [rng.normal(size=(n, 4 * H)).tolist(), rng.normal(size=(H, 4 * H)).tolist(),
                                       rng.normal(size=4 * H).tolist()]})
            n = H
    obj = {"in_shape": [None, n_in], "layers": layers}
    xs = rng.normal(size=(12, n_in))
    expected = _naive(obj, xs)
    model = model_from_dict(obj, dtype=np.float64)
    assert np.abs(model.run(xs) - expected).max() < 1e-10
    model.reset()
    assert np.abs(model.run(xs) - expected).max() < 1e-10
    assert np.abs(model_from_dict(obj).run(xs) - expected).max() < 1e-5  # float32
