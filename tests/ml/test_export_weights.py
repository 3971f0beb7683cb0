"""``kelly export --weights shipped|untrained|DIR``: exporting weights read from files.

The shipped weights may not exist yet, so a folder of packed files is made here from an
untrained export (with sidecars that say "trained", as :mod:`kelly.ml.ship` writes them),
and the shipped folder is pointed at such a folder where the shipped path is tested.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kelly.ml.specs import MODEL_KEYS, SPECS

PROVENANCE = "trained by kelly train on bach,composed (docs/data.md)"


def _pack_folder(src: Path, dst: Path, *, provenance: str = PROVENANCE) -> Path:
    """``dst`` with ``<key>.npz`` + a shipped-style ``<key>.meta.json`` for every JSON in ``src``."""
    from kelly.ml import packed
    from kelly.ml.export import sidecar
    from kelly.ml.runtime import parse_model_json

    dst.mkdir()
    for key in MODEL_KEYS:
        obj = parse_model_json((src / SPECS[key].file_name).read_bytes(), name=SPECS[key].file_name)
        blob = packed.pack(obj)
        meta = sidecar(key, "", seed=11, trained=True, provenance=provenance)
        meta.update(file=f"{key}.npz", format="kelly-packed-npz", sha256=hashlib.sha256(blob).hexdigest())
        (dst / f"{key}.npz").write_bytes(blob)
        (dst / f"{key}.meta.json").write_text(json.dumps(meta))
    return dst


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained RTNeural export (seed 7): the source of the packed files."""
    pytest.importorskip("torch")
    from kelly.ml.export import export_models

    out = tmp_path_factory.mktemp("untrained")
    export_models(out, ("rtneural",), seed=7)
    return out


@pytest.fixture
def packed_dir(untrained, tmp_path):
    return _pack_folder(untrained, tmp_path / "packed")


def _inputs(key: str, steps: int = 6) -> np.ndarray:
    return np.random.default_rng(5).uniform(-1.0, 1.0, (steps, SPECS[key].in_size)).astype(np.float32)


def _assert_same_models(a: Path, b: Path, key: str) -> None:
    from kelly.ml.runtime import load_model

    x = _inputs(key)
    ya = load_model(a, spec=SPECS[key]).run(x)
    yb = load_model(b, spec=SPECS[key]).run(x)
    assert np.array_equal(ya, yb), key


def test_export_from_a_folder_of_packed_files_keeps_every_number(cli, packed_dir, tmp_path, capsys):
    from kelly.ml.packed import unpack
    from kelly.ml.runtime import parse_model_json

    out = tmp_path / "out"
    assert cli(["export", "--out", str(out), "--weights", str(packed_dir)]) == 0
    assert capsys.readouterr().err == ""
    for key in MODEL_KEYS:
        name = SPECS[key].file_name
        _assert_same_models(packed_dir / f"{key}.npz", out / name, key)
        stored = unpack((packed_dir / f"{key}.npz").read_bytes())
        written = parse_model_json((out / name).read_bytes())
        for layer_p, layer_j in zip(stored["layers"], written["layers"]):
            assert layer_p["type"] == layer_j["type"] and layer_p["activation"] == layer_j["activation"]
            for wp, wj in zip(layer_p["weights"], layer_j["weights"]):
                assert np.array_equal(wp, np.asarray(wj, dtype=np.float32))  # number for number
        meta = json.loads((out / f"{key}.meta.json").read_text())
        assert meta["trained"] is True and meta["provenance"] == PROVENANCE and meta["seed"] == 11
        assert meta["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert meta["weights_from"] == {"source": "folder", "file": f"{key}.npz",
                                        "sha256": hashlib.sha256((packed_dir / f"{key}.npz").read_bytes()).hexdigest()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == "folder" and manifest["trained"] is True and manifest["note"] == PROVENANCE
    assert manifest["seed"] is None
    capsys.readouterr()
    assert cli(["validate", str(out), "--check-specs"]) == 0


def test_export_from_a_json_folder_such_as_a_train_run(cli, untrained, tmp_path):
    """A folder of RTNeural JSON with kelly train's sidecars (model_sha256, data, config)."""
    run = tmp_path / "run"
    run.mkdir()
    for key in MODEL_KEYS:
        text = (untrained / SPECS[key].file_name).read_bytes()
        (run / SPECS[key].file_name).write_bytes(text)
        (run / f"{key}.meta.json").write_text(json.dumps({
            "model": SPECS[key].name, "key": key, "file": SPECS[key].file_name, "trained": True, "data": "corpus",
            "model_sha256": hashlib.sha256(text).hexdigest(), "seed": 3, "config": {"collections": "composed"}}))
    out = tmp_path / "out"
    assert cli(["export", "--out", str(out), "--weights", str(run)]) == 0
    for key in MODEL_KEYS:
        assert (out / SPECS[key].file_name).read_bytes() == (run / SPECS[key].file_name).read_bytes()
        meta = json.loads((out / f"{key}.meta.json").read_text())
        assert meta["trained"] is True and meta["seed"] == 3
        assert meta["provenance"] == "trained by kelly train on composed (corpus data)"


def test_default_is_shipped_when_all_five_are_there(cli, packed_dir, tmp_path, monkeypatch, capsys):
    import kelly.ml.export as export

    monkeypatch.setattr(export, "SHIPPED_DIR", packed_dir)
    assert export.shipped_weights_available()
    out = tmp_path / "out"
    assert cli(["export", "--out", str(out), "--format", "rtneural,checkpoint"]) == 0
    assert capsys.readouterr().err == ""
    meta = json.loads((out / "melodytransformer.meta.json").read_text())
    assert meta["trained"] is True and meta["provenance"] == PROVENANCE
    assert meta["weights_from"]["source"] == "shipped"
    assert json.loads((out / "manifest.json").read_text())["weights"] == "shipped"
    for key in MODEL_KEYS:
        _assert_same_models(packed_dir / f"{key}.npz", out / SPECS[key].file_name, key)
    # the checkpoint computes the same function (the LSTM's summed bias in bias_ih, zeros in bias_hh)
    import torch

    from kelly.ml.torch_models import model_from_state_dict

    state = torch.load(out / "melodytransformer.pt", weights_only=True)
    model = model_from_state_dict("melodytransformer", state)
    x = _inputs("melodytransformer")
    with torch.no_grad():
        y, _ = model(torch.from_numpy(x)[None])
    from kelly.ml.runtime import load_model

    ref = load_model(packed_dir / "melodytransformer.npz").run(x)
    assert np.abs(y[0].numpy() - ref).max() < 1e-5


def test_untrained_gives_the_seeds_weights(cli, untrained, packed_dir, tmp_path, monkeypatch, capsys):
    import kelly.ml.export as export

    monkeypatch.setattr(export, "SHIPPED_DIR", packed_dir)
    for args in (["--weights", "untrained", "--seed", "7"], ["--seed", "7"]):  # --seed alone implies untrained
        out = tmp_path / ("out" + str(len(args)))
        assert cli(["export", "--out", str(out), *args]) == 0
        for key in MODEL_KEYS:
            assert (out / SPECS[key].file_name).read_bytes() == (untrained / SPECS[key].file_name).read_bytes()
            meta = json.loads((out / f"{key}.meta.json").read_text())
            assert meta["trained"] is False and meta["seed"] == 7 and "weights_from" not in meta
        assert json.loads((out / "manifest.json").read_text())["weights"] == "untrained"
    assert capsys.readouterr().err == ""


def test_no_shipped_weights_means_untrained_with_a_note(cli, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import kelly.ml.export as export

    monkeypatch.setattr(export, "SHIPPED_DIR", tmp_path / "nothing")
    out = tmp_path / "out"
    assert cli(["export", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("kelly: note:") and "untrained" in err
    assert json.loads((out / "dynamicsengine.meta.json").read_text())["trained"] is False
    assert cli(["export", "--out", str(tmp_path / "o2"), "--weights", "shipped"]) == 2
    assert "no shipped weights" in capsys.readouterr().err


def _error(cli, capsys, args) -> str:
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("kelly: error:") and len(err.strip().splitlines()) == 1, err
    return err


def test_errors_are_one_line_with_exit_code_2(cli, packed_dir, tmp_path, monkeypatch, capsys):
    import kelly.ml.export as export

    out = str(tmp_path / "out")
    assert "not a folder" in _error(cli, capsys, ["export", "--out", out, "--weights", str(tmp_path / "missing")])
    assert "cannot be used" in _error(cli, capsys, ["export", "--out", out, "--weights", str(packed_dir),
                                                    "--seed", "1"])
    # a network missing from the folder
    (packed_dir / "groovepredictor.npz").rename(tmp_path / "gp.npz")
    assert "has no GroovePredictor weights" in _error(cli, capsys, ["export", "--out", out, "--weights",
                                                                    str(packed_dir)])
    (tmp_path / "gp.npz").rename(packed_dir / "groovepredictor.npz")
    # shipped: a file whose sha256 does not match its sidecar
    monkeypatch.setattr(export, "SHIPPED_DIR", packed_dir)
    meta_path = packed_dir / "harmonypredictor.meta.json"
    good_meta = meta_path.read_text()
    meta = json.loads(good_meta)
    meta["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    err = _error(cli, capsys, ["export", "--out", out])
    assert "harmonypredictor.npz does not match its sidecar" in err
    meta_path.write_text(good_meta)
    # shipped: a file without its sidecar
    meta_path.rename(tmp_path / "hp.meta.json")
    assert "has no sidecar" in _error(cli, capsys, ["export", "--out", out, "--weights", "shipped"])
    (tmp_path / "hp.meta.json").rename(meta_path)
    # a corrupt file (its sidecar updated so that only the content is wrong)
    blob = bytearray((packed_dir / "dynamicsengine.npz").read_bytes())
    blob[40:60] = b"\xff" * 20
    (packed_dir / "dynamicsengine.npz").write_bytes(bytes(blob))
    de_meta = json.loads((packed_dir / "dynamicsengine.meta.json").read_text())
    de_meta["sha256"] = hashlib.sha256(bytes(blob)).hexdigest()
    (packed_dir / "dynamicsengine.meta.json").write_text(json.dumps(de_meta))
    assert "dynamicsengine.npz" in _error(cli, capsys, ["export", "--out", out, "--weights", str(packed_dir)])
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_json_that_is_not_the_network_is_refused(cli, untrained, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for key in MODEL_KEYS:
        (folder / SPECS[key].file_name).write_bytes((untrained / SPECS[key].file_name).read_bytes())
    # the groove network's file holds the dynamics network: wrong input size (no sidecar to catch it)
    (folder / "groovepredictor.json").write_bytes((untrained / "dynamicsengine.json").read_bytes())
    err = _error(cli, capsys, ["export", "--out", str(tmp_path / "out"), "--weights", str(folder)])
    assert "groovepredictor.json" in err and "GroovePredictor" in err


def test_the_folder_read_is_never_written_over(cli, packed_dir, untrained, tmp_path, capsys):
    err = _error(cli, capsys, ["export", "--out", str(untrained), "--weights", str(untrained), "--force"])
    assert "is also an input of this command" in err


def test_the_cpp_layer_lists_in_the_docs_match_the_specs():
    """docs/ml.md's RTNeural ``ModelT`` types are the five architectures of kelly.ml.specs."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "ml.md").read_text(encoding="utf-8")
    names = {"tanh": "TanhActivationT", "relu": "ReLuActivationT", "sigmoid": "SigmoidActivationT",
             "softmax": "SoftmaxActivationT"}
    found = {m.group(1): m.group(2) for m in re.finditer(r"using (\w+) = ModelT<(.*?)>;", text, re.S)}
    assert set(found) == {spec.name for spec in SPECS.values()}
    for spec in SPECS.values():
        want = [f"float, {spec.in_size}, {spec.out_size}"]
        for layer in spec.layers:
            if layer.kind == "dense":
                want.append(f"DenseT<float, {layer.in_size}, {layer.out_size}>")
                if layer.activation:
                    want.append(f"{names[layer.activation]}<float, {layer.out_size}>")
            else:
                want.append(f"LSTMLayerT<float, {layer.in_size}, {layer.out_size}>")
        assert " ".join(found[spec.name].split()) == ", ".join(want), spec.name
