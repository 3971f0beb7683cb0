"""Packed weights (kelly.ml.packed): the shipped binary form of an RTNeural model.

Same model as the JSON, number for number; every corrupt or hostile archive is one
ModelFileError naming the file; the processor finds ``<key>.npz`` where it looks for
``<key>.json``.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from kelly.ml import packed, runtime
from kelly.ml.processor import MultiModelProcessor
from kelly.ml.specs import SPECS

SPEC = SPECS["dynamicsengine"]


def _model_obj(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    layers, n = [], SPEC.in_size
    for layer in SPEC.layers:
        w = rng.normal(0, 0.2, (n, layer.out_size)).astype(np.float32)
        b = rng.normal(0, 0.1, layer.out_size).astype(np.float32)
        layers.append({"type": "dense", "activation": layer.activation, "shape": [None, None, layer.out_size],
                       "weights": [w.tolist(), b.tolist()]})
        n = layer.out_size
    return {"in_shape": [None, None, SPEC.in_size], "layers": layers}


def test_a_packed_model_computes_exactly_what_its_json_computes(tmp_path):
    obj = _model_obj()
    (tmp_path / "m.json").write_text(json.dumps(obj))
    (tmp_path / "m.npz").write_bytes(packed.pack(obj))
    x = np.random.default_rng(1).uniform(-1, 1, (7, SPEC.in_size)).astype(np.float32)
    a = runtime.load_model(tmp_path / "m.json", spec=SPEC).run(x)
    b = runtime.load_model(tmp_path / "m.npz", spec=SPEC).run(x)
    assert np.array_equal(a, b)
    back = packed.to_rtneural(tmp_path / "m.npz")
    assert np.array_equal(np.asarray(back["layers"][0]["weights"][0], np.float32),
                          np.asarray(obj["layers"][0]["weights"][0], np.float32))
    assert (tmp_path / "m.npz").stat().st_size < 0.6 * (tmp_path / "m.json").stat().st_size


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


@pytest.mark.parametrize("case, message", [
    ("not a zip", "not a readable .npz"),
    ("truncated", "not a"),
    ("deflated", "is compressed"),
    ("no skeleton", "no skeleton"),
    ("missing array", "lacks"),
    ("int weights", "float32"),
    ("pickled", "not a packed model"),
    ("wrong shape", "shape"),
    ("nan", "not finite"),
    ("bad skeleton", "not JSON"),
])
def test_bad_archives_are_one_clear_error(tmp_path, case, message):
    good = packed.pack(_model_obj())
    members = _members_of(good)
    if case == "not a zip":
        data = b"PK\x03\x04" + b"\0" * 100
    elif case == "truncated":
        data = good[: len(good) // 2]
    elif case == "deflated":
        data = _zip(members, zipfile.ZIP_DEFLATED)
    elif case == "no skeleton":
        data = _zip({k: v for k, v in members.items() if k != "skeleton.npy"})
    elif case == "missing array":
        data = _zip({k: v for k, v in members.items() if k != "l0_w0.npy"})
    elif case == "int weights":
        data = _zip({**members, "l0_w1.npy": _npy(np.zeros(128, np.int32))})
    elif case == "pickled":
        data = _zip({**members, "l0_w1.npy": _npy(np.array([object()] * 3, dtype=object))})
    elif case == "wrong shape":
        data = _zip({**members, "l0_w1.npy": _npy(np.zeros(127, np.float32))})
    elif case == "nan":
        data = _zip({**members, "l0_w1.npy": _npy(np.full(128, np.nan, np.float32))})
    else:
        data = _zip({**members, "skeleton.npy": _npy(np.frombuffer(b"{nope", np.uint8))})
    path = tmp_path / "dynamicsengine.npz"
    path.write_bytes(data)
    with pytest.raises(runtime.ModelFileError) as err:
        runtime.load_model(path, spec=SPEC)
    assert "dynamicsengine.npz" in str(err.value) and message in str(err.value)


def test_the_processor_finds_a_packed_model_where_it_looks_for_json(tmp_path):
    (tmp_path / "dynamicsengine.npz").write_bytes(packed.pack(_model_obj()))
    proc = MultiModelProcessor(search_path=[tmp_path])
    assert proc.is_live("dynamicsengine")
    assert proc.find_model_file("dynamicsengine") == tmp_path / "dynamicsengine.npz"
    # JSON wins when a folder has both
    (tmp_path / "dynamicsengine.json").write_text(json.dumps(_model_obj(seed=3)))
    assert proc.find_model_file("dynamicsengine") == tmp_path / "dynamicsengine.json"
