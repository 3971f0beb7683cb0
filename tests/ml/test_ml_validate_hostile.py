"""Issue 9: ``kelly validate`` and the checkpoint and ONNX readers under hostile files.

Only regular files inside the folder are read; every bad file becomes one FAIL line in the
report and the command ends with one error line and exit code 2.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
import zipfile

import numpy as np
import pytest

from kelly.errors import KellyError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from kelly.ml.export import checkpoint_shapes, load_checkpoint_bytes, validate_dir  # noqa: E402
from kelly.ml.onnx_graphs import check_onnx_bytes, load_onnx_bytes  # noqa: E402
from kelly.ml.runtime import ModelFileError  # noqa: E402
from kelly.ml.specs import SPECS  # noqa: E402


def _failures(folder, **kw) -> dict[tuple[str, str], str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy RuntimeWarnings must not leak
        checks = validate_dir(folder, **kw)
    return {(c.model, c.check): c.detail for c in checks if not c.ok}


def _pt_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def _good_state(key: str) -> dict:
    return {name: torch.zeros(shape) for name, shape in checkpoint_shapes(SPECS[key]).items()}


def test_checkpoint_shapes_match_the_torch_modules(torch_models):
    for key, model in torch_models.items():
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == checkpoint_shapes(SPECS[key])


def test_validate_refuses_entries_that_leave_the_folder_or_are_not_files(tmp_path, exported, cli, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "groovepredictor.json").write_bytes((exported / "groovepredictor.json").read_bytes())
    models = tmp_path / "models"
    models.mkdir()
    (models / "groovepredictor.json").symlink_to(outside / "groovepredictor.json")
    (models / "pipeline.onnx").symlink_to("/dev/zero")
    os.mkfifo(models / "harmonypredictor.json")
    (models / "dynamicsengine.json").mkdir()
    # A symlink that stays inside the folder is fine.
    (models / "real-de.pt").write_bytes((exported / "dynamicsengine.pt").read_bytes())
    (models / "dynamicsengine.pt").symlink_to("real-de.pt")
    t0 = time.perf_counter()
    bad = _failures(models)
    assert time.perf_counter() - t0 < 5
    assert "refused: model file" in bad[("groovepredictor", "rtneural")]
    assert "outside its folder" in bad[("groovepredictor", "rtneural")]
    assert "resolves to /dev/zero, outside its folder" in bad[("pipeline", "onnx")]
    assert "harmonypredictor.json: is " in bad[("harmonypredictor", "rtneural")]
    assert "dynamicsengine.json: is a folder, not a model file" in bad[("dynamicsengine", "rtneural")]
    assert ("dynamicsengine", "checkpoint") not in bad
    assert cli(["validate", str(models)]) == 2
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "outside its folder" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kelly: error: validation failed")


@pytest.mark.parametrize("make, message", [
    (lambda: _pt_bytes({**_good_state("dynamicsengine"), "layers.0.weight": "abc"}),
     "dynamicsengine.pt: layers.0.weight is a str, not a tensor"),
    (lambda: _pt_bytes({**_good_state("dynamicsengine"), "layers.0.bias": [1, 2, 3]}),
     "dynamicsengine.pt: layers.0.bias is a list, not a tensor"),
    (lambda: _pt_bytes([1, 2, 3]), "dynamicsengine.pt: expected a state_dict (names → tensors), got list"),
    (lambda: _pt_bytes({"x": torch.zeros(2)}), "dynamicsengine.pt: does not match DynamicsEngine: missing"),
    (lambda: _pt_bytes({**_good_state("dynamicsengine"), "layers.1.weight": torch.zeros(3, 3)}),
     "dynamicsengine.pt: layers.1.weight has shape 3x3, expected 64x128"),
    (lambda: _pt_bytes({**_good_state("dynamicsengine"), "layers.2.bias": torch.full((16,), float("nan"))}),
     "dynamicsengine.pt: layers.2.bias contains NaN, infinite or out-of-range values"),
    (lambda: _pt_bytes({**_good_state("dynamicsengine"), "layers.2.bias": torch.zeros(16, dtype=torch.int64)}),
     "dynamicsengine.pt: layers.2.bias is not a dense float tensor"),
    (lambda: _pt_bytes(_good_state("dynamicsengine"), _use_new_zipfile_serialization=False),
     "dynamicsengine.pt: not a torch checkpoint (expected the zip format torch.save writes)"),
    (lambda: b"PK\x03\x04" + b"\x00" * 100, "dynamicsengine.pt: not a torch checkpoint"),
    (lambda: b"", "dynamicsengine.pt: not a torch checkpoint"),
])
def test_bad_checkpoints_are_one_fail_line(tmp_path, make, message):
    (tmp_path / "dynamicsengine.pt").write_bytes(make())
    bad = _failures(tmp_path)
    assert message in bad[("dynamicsengine", "checkpoint")]
    assert "\n" not in bad[("dynamicsengine", "checkpoint")]


def test_compressed_checkpoint_is_refused(tmp_path):
    good = _pt_bytes(_good_state("dynamicsengine"))
    src = zipfile.ZipFile(io.BytesIO(good))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(ModelFileError, match="compressed or oversized entries"):
        load_checkpoint_bytes(buf.getvalue(), "dynamicsengine", name="de.pt")
    assert load_checkpoint_bytes(good, "dynamicsengine", name="de.pt") is not None


def test_bad_json_in_validate(tmp_path, exported):
    (tmp_path / "melodytransformer.json").write_text('{"in_shape": [null, 64], "layers": ' + "[" * 100_000)
    obj = json.loads((exported / "groovepredictor.json").read_text())
    obj["layers"][0]["weights"][0][0][0] = 3e38  # finite float32, but the first tanh's input could overflow
    (tmp_path / "groovepredictor.json").write_text(json.dumps(obj))
    (tmp_path / "dynamicsengine.json").write_text(json.dumps(
        {"in_shape": [None, 268_435_456], "layers": [{"type": "activation", "activation": "tanh",
                                                      "shape": [None, 268_435_456], "weights": []}]}))
    bad = _failures(tmp_path)
    assert "nested too deeply" in bad[("melodytransformer", "rtneural")]
    assert "groovepredictor.json: layer 1 (dense): weights too large" in bad[("groovepredictor", "rtneural")]
    assert "input size 268,435,456 is larger than this runtime allows" in bad[("dynamicsengine", "rtneural")]


def test_huge_checkpoint_weights_fail_parity_without_warnings(tmp_path, exported):
    state = torch.load(exported / "dynamicsengine.pt", weights_only=True)
    state["layers.0.weight"] = torch.full_like(state["layers.0.weight"], 3e38)
    (tmp_path / "dynamicsengine.pt").write_bytes(_pt_bytes(state))
    (tmp_path / "dynamicsengine.onnx").write_bytes((exported / "dynamicsengine.onnx").read_bytes())
    bad = _failures(tmp_path)
    assert "not finite" in bad[("dynamicsengine", "parity")]


def _onnx_model(nodes, inits, inputs, outputs):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_bad_onnx_files_are_refused_before_running():
    from onnx import TensorProto, helper, numpy_helper

    io_de = ([("x", [1, 32])], [("y", [1, 16])])
    w = numpy_helper.from_array(np.zeros((32, 16), np.float32), "w")
    ok = _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], *io_de).SerializeToString()
    assert load_onnx_bytes(ok, key="dynamicsengine", name="de.onnx").step(np.zeros(32))["y"].shape == (1, 16)

    def refused(model_bytes, message):
        with pytest.raises(ModelFileError, match=message):
            check_onnx_bytes(model_bytes, key="dynamicsengine", name="de.onnx")

    refused(b"\x00garbage" * 10, r"de\.onnx: not a valid ONNX model")
    refused(_onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], [("x", [1, 31])], io_de[1])
            .SerializeToString(), r"graph inputs are \[x \[1, 31\]\], expected \[x \[1, 32\]\]")
    shape = numpy_helper.from_array(np.array([1, 16], np.int64), "s")
    refused(_onnx_model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [shape], [], io_de[1])
            .SerializeToString(), r"operator 'ConstantOfShape' is not one this exporter writes")
    external = numpy_helper.from_array(np.zeros((32, 16), np.float32), "w")
    external.ClearField("raw_data")
    external.data_location = TensorProto.EXTERNAL
    external.external_data.add(key="location", value="../../../../dev/zero")
    refused(_onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [external], *io_de).SerializeToString(),
            r"weight 'w' refers to external data")
    # A small file whose broadcast would materialise 200,000 x 32 values.
    big = numpy_helper.from_array(np.zeros((200_000, 1), np.float32), "big")
    starts = numpy_helper.from_array(np.array([0, 0], np.int64), "st")
    ends = numpy_helper.from_array(np.array([1, 16], np.int64), "en")
    nodes = [helper.make_node("Add", ["x", "big"], ["t"]), helper.make_node("Slice", ["t", "st", "en"], ["y"])]
    refused(_onnx_model(nodes, [big, starts, ends], *io_de).SerializeToString(),
            r"tensor 't' would hold 6,400,000 values, more than 4,000,000")
    nan = numpy_helper.from_array(np.full((32, 16), np.nan, np.float32), "w")
    refused(_onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [nan], *io_de).SerializeToString(),
            r"weight 'w' contains NaN or infinite values")
    lstm_in = ([("x", [1, 32])], [("y", [1, 16])])
    refused(_onnx_model([helper.make_node("LSTM", ["x", "w", "w"], ["y"], hidden_size=10**9)], [w], *lstm_in)
            .SerializeToString(), r"de\.onnx: ")


def test_validate_onnx_failures_are_fail_lines(tmp_path, exported):
    (tmp_path / "dynamicsengine.onnx").write_bytes(b"not onnx at all")
    (tmp_path / "groovepredictor.onnx").write_bytes((exported / "dynamicsengine.onnx").read_bytes())
    bad = _failures(tmp_path)
    assert "dynamicsengine.onnx: not a valid ONNX model" in bad[("dynamicsengine", "onnx")]
    assert "groovepredictor.onnx: graph inputs are [x [1, 32]], expected [x [1, 64]]" in bad[("groovepredictor",
                                                                                              "onnx")]


@pytest.mark.parametrize("suffix", ["pt", "onnx"])
def test_binary_loaders_mutations_only_raise_kelly_errors(exported, suffix):
    seed = (exported / f"dynamicsengine.{suffix}").read_bytes()
    rng = np.random.default_rng(4)
    for _ in range(25):
        data = bytearray(seed)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(data)))
            if rng.random() < 0.5:
                data[pos] = int(rng.integers(0, 256))
            else:
                del data[pos:pos + int(rng.integers(1, 64))]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                if suffix == "pt":
                    load_checkpoint_bytes(bytes(data), "dynamicsengine", name="de.pt")
                else:
                    load_onnx_bytes(bytes(data), key="dynamicsengine", name="de.onnx")
        except KellyError as exc:
            assert "\n" not in str(exc)
