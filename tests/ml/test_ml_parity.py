"""torch ⇄ numpy runtime ⇄ onnxruntime agree; parameter counts match issue #4; export/validate work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kelly.ml.export import PARITY_STEPS, parity_inputs, validate_dir
from kelly.ml.runtime import load_model
from kelly.ml.specs import MODEL_KEYS, SPECS, TOTAL_PARAMS

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

EXPECTED = {"emotionrecognizer": 403_264, "melodytransformer": 641_664, "harmonypredictor": 74_176,
            "dynamicsengine": 13_520, "groovepredictor": 18_656}


def test_parameter_counts(torch_models):
    from kelly.ml.torch_models import param_count

    counts = {key: param_count(m) for key, m in torch_models.items()}
    assert counts == EXPECTED
    assert sum(counts.values()) == TOTAL_PARAMS == 1_151_280
    assert all(SPECS[k].torch_param_count() == v for k, v in EXPECTED.items())


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_torch_numpy_onnx_agree_over_50_steps(key, torch_models, exported):
    from kelly.ml.onnx_graphs import OnnxStepper, session

    xs = parity_inputs(key, PARITY_STEPS)
    with torch.no_grad():
        ref = torch_models[key](torch.from_numpy(xs)[None])[0][0].numpy()
    runtime = load_model(exported / f"{key}.json", spec=SPECS[key])
    assert np.abs(runtime.run(xs) - ref).max() < 1e-5
    stepper = OnnxStepper(session(str(exported / f"{key}.onnx")))
    onnx_out = np.stack([stepper.step(x)["y"][0] for x in xs])
    assert np.abs(onnx_out - ref).max() < 1e-5


def test_whole_pipeline_agrees(torch_models, exported):
    from kelly.ml.onnx_graphs import PIPELINE_OUTPUTS, OnnxStepper, session
    from kelly.ml.processor import MultiModelProcessor
    from kelly.ml.torch_models import KellyPipeline

    proc = MultiModelProcessor(exported, search_path=[exported])
    assert proc.status()["live"] == list(MODEL_KEYS)
    pipe = KellyPipeline(torch_models)
    state = pipe.initial_state()
    stepper = OnnxStepper(session(str(exported / "pipeline.onnx")))
    worst = {"numpy": 0.0, "onnx": 0.0}
    for mel in parity_inputs("pipeline", PARITY_STEPS):
        with torch.no_grad():
            outs, state = pipe(torch.from_numpy(mel)[None], state)
        hints = proc.run_audio_features(mel)
        mine = (hints.embedding, hints.note_probs, hints.chord_probs, hints.groove, hints.expression)
        got = stepper.step(mel)
        for name, ref, ours in zip(PIPELINE_OUTPUTS, outs, mine):
            worst["numpy"] = max(worst["numpy"], float(np.abs(ours - ref.numpy()[0]).max()))
            worst["onnx"] = max(worst["onnx"], float(np.abs(got[name][0] - ref.numpy()[0]).max()))
    assert worst["numpy"] < 1e-5 and worst["onnx"] < 1e-5
    assert all(proc.run_audio_features(np.zeros(128)).live.values())
    proc.reset()  # a reset processor replays the same sequence
    first = proc.run_audio_features(parity_inputs("pipeline", 1)[0]).note_probs
    proc.reset()
    assert np.array_equal(first, proc.run_audio_features(parity_inputs("pipeline", 1)[0]).note_probs)


def test_rtneural_export_schema(exported):
    obj = json.loads((exported / "melodytransformer.json").read_text())
    assert obj["in_shape"] == [None, None, 64]
    types = [(layer["type"], layer["activation"], layer["shape"][-1]) for layer in obj["layers"]]
    assert types == [("dense", "relu", 256), ("lstm", "", 256), ("dense", "relu", 256), ("dense", "sigmoid", 128)]
    w, u, b = obj["layers"][1]["weights"]
    assert (len(w), len(w[0]), len(u), len(u[0]), len(b)) == (256, 1024, 256, 1024, 1024)
    state = torch.load(exported / "melodytransformer.pt", weights_only=True)
    summed = (state["layers.1.bias_ih_l0"] + state["layers.1.bias_hh_l0"]).numpy()
    assert np.array_equal(np.asarray(b, np.float32), summed)  # LSTM biases summed, bit-exact
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["total_params"] == TOTAL_PARAMS


def test_validate_passes_and_catches_tampering(exported, tmp_path):
    checks = validate_dir(exported, check_specs=True)
    assert checks and all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert any(c.model == "pipeline" and c.check == "parity" and c.ok for c in checks)
    # A JSON file whose numbers differ from its checkpoint fails parity.
    for path in exported.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    obj = json.loads((tmp_path / "groovepredictor.json").read_text())
    obj["layers"][0]["weights"][1][0] += 0.5
    (tmp_path / "groovepredictor.json").write_text(json.dumps(obj))
    bad = {(c.model, c.check): c.detail for c in validate_dir(tmp_path, check_specs=True) if not c.ok}
    # parity, and the hashes: its sidecar and the manifest no longer describe it
    assert set(bad) == {("groovepredictor", "parity"), ("groovepredictor", "sidecar"), ("manifest", "files")}
    assert "numpy vs torch" in bad["groovepredictor", "parity"]


def test_validate_json_only_reexports_to_torch(exported, tmp_path):
    (tmp_path / "harmonypredictor.json").write_bytes((exported / "harmonypredictor.json").read_bytes())
    checks = validate_dir(tmp_path)
    assert all(c.ok for c in checks)
    assert any(c.check == "parity" and "numpy vs torch" in c.detail for c in checks)
    failing = validate_dir(tmp_path, check_specs=True)
    assert {c.model for c in failing if not c.ok} == set(MODEL_KEYS) - {"harmonypredictor"}


def test_quantized_pipeline_agrees_on_top1(exported):
    from kelly.ml.onnx_graphs import OnnxStepper, quantize_int8, session

    float_run = OnnxStepper(session(str(exported / "pipeline.onnx")))
    int8_run = OnnxStepper(session(quantize_int8((exported / "pipeline.onnx").read_bytes())))
    agree = {"notes": 0, "chords": 0}
    xs = parity_inputs("pipeline", 40)
    for mel in xs:
        a, b = float_run.step(mel), int8_run.step(mel)
        for name in agree:
            agree[name] += int(np.argmax(a[name]) == np.argmax(b[name]))
    assert min(agree.values()) / len(xs) >= 0.9
