"""The processor: search path, fallbacks that make musical sense, live models, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kelly.emotion.state import EmotionState
from kelly.errors import InputError, ModelError
from kelly.ml import fallbacks, schema
from kelly.ml.processor import MultiModelProcessor, MusicHints, default_search_path, safe_model_path
from kelly.ml.specs import MODEL_KEYS


def _state(v, a, d, family, intensity=0.7):
    return EmotionState(label=family, family=family, valence=v, arousal=a, dominance=d, intensity=intensity)


@pytest.fixture
def bare():
    return MultiModelProcessor(search_path=[])


def test_no_models_means_fallbacks_and_says_so(bare):
    status = bare.status()
    assert status["live"] == [] and status["fallback"] == list(MODEL_KEYS)
    assert "not found" in status["models"]["melodytransformer"]["status"]
    hints = bare.hints_for_emotion(_state(0.6, 0.5, 0.5, "joy"))
    assert isinstance(hints, MusicHints)
    assert hints.note_probs.shape == (128,) and hints.chord_probs.shape == (64,)
    assert hints.groove.shape == (32,) and hints.expression.shape == (16,)
    assert not any(hints.live.values())
    assert hints.chord_probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all((hints.note_probs >= 0) & (hints.note_probs <= 1))
    assert np.all(np.abs(hints.groove) <= 1) and np.all((hints.expression >= 0) & (hints.expression <= 1))
    with pytest.raises(ValueError):
        hints.note_probs[0] = 1.0  # read-only
    audio = bare.run_audio_features(np.full(128, 0.5))
    assert audio.emotion()["confidence"] == pytest.approx(0.25)
    assert json.dumps(audio.to_dict())


def test_fallback_melody_follows_mode_and_register(bare):
    happy = bare.hints_for_emotion(_state(0.8, 0.6, 0.6, "joy"))
    sad = bare.hints_for_emotion(_state(-0.7, 0.3, 0.3, "sadness"))
    # Major third (E) over minor third (E♭) when pleasant, the reverse when sad.
    assert happy.note_probs[64] > 3 * happy.note_probs[63]
    assert sad.note_probs[63] > 3 * sad.note_probs[64]
    # Scale tones beat chromatic ones: in C major, F♯ (66) is far below F (65) and G (67).
    assert happy.note_probs[66] < 0.3 * min(happy.note_probs[65], happy.note_probs[67])
    calm = bare.hints_for_emotion(_state(0.3, 0.1, 0.5, "trust"))
    excited = bare.hints_for_emotion(_state(0.3, 0.95, 0.5, "anticipation"))
    centre = lambda h: float((np.arange(128) * h.note_probs).sum() / h.note_probs.sum())  # noqa: E731
    assert centre(excited) > centre(calm) + 3


def test_fallback_chords_are_diatonic_to_the_implied_mode(bare):
    happy = bare.hints_for_emotion(_state(0.8, 0.6, 0.6, "joy"))
    top = [name for _, name, _ in happy.top_chords(4)]
    assert top[0] == "I" and set(top) <= {"I", "IV", "V", "vi", "ii", "V7"}
    sad = bare.hints_for_emotion(_state(-0.7, 0.3, 0.3, "sadness"))
    top = [name for _, name, _ in sad.top_chords(4)]
    assert top[0] == "i" and set(top) <= {"i", "iv", "v", "bVI", "bVII", "bIII", "V", "V7", "ii°"}
    angry = bare.hints_for_emotion(_state(-0.7, 0.9, 0.85, "anger"))
    assert angry.chord_probs[60] > happy.chord_probs[60] * 5  # power chord for anger
    afraid = bare.hints_for_emotion(_state(-0.6, 0.85, 0.15, "fear"))
    assert afraid.chord_probs[63] > angry.chord_probs[63]  # vii°7 for fear


def test_fallback_groove_and_expression(bare):
    calm = bare.hints_for_emotion(_state(0.4, 0.1, 0.5, "trust", intensity=0.4))
    wild = bare.hints_for_emotion(_state(-0.6, 0.95, 0.9, "anger", intensity=0.9))
    g_calm, g_wild = calm.groove_params(), wild.groove_params()
    assert g_wild["hat_density"] > g_calm["hat_density"] and g_wild["kick_density"] > g_calm["kick_density"]
    assert g_calm["swing"] > g_wild["swing"]
    e_calm, e_wild = calm.expression_params(), wild.expression_params()
    assert wild.velocity() > calm.velocity() and 60 <= calm.velocity() <= 127
    assert e_calm["legato"] > e_wild["legato"] and e_wild["attack"] > e_calm["attack"]


def test_loaded_models_are_live_and_can_be_disabled(tmp_path, no_shipped_models):
    from kelly.ml.convert import dense_json

    rng = np.random.default_rng(0)
    layers = [dense_json(rng.normal(size=(128, 32)) * 0.1, np.zeros(128), "relu"),
              dense_json(rng.normal(size=(64, 128)) * 0.1, np.zeros(64), "relu"),
              dense_json(rng.normal(size=(16, 64)) * 0.1, np.zeros(16), "sigmoid")]
    (tmp_path / "dynamicsengine.json").write_text(json.dumps({"in_shape": [None, None, 32], "layers": layers}))
    proc = MultiModelProcessor(tmp_path)
    assert proc.status()["live"] == ["dynamicsengine"] and proc.is_live("DynamicsEngine")
    state = _state(0.2, 0.5, 0.5, "joy")
    live = proc.hints_for_emotion(state)
    assert live.live["dynamicsengine"] and not live.live["melodytransformer"]
    expected = proc.model("dynamicsengine").forward(schema.embed_emotion(state)[:32])
    assert np.allclose(live.expression, expected)
    proc.set_enabled("dynamicsengine", False)
    off = proc.hints_for_emotion(state)
    assert not off.live["dynamicsengine"]
    assert proc.status()["models"]["dynamicsengine"]["status"] == "fallback: disabled"
    assert np.allclose(off.expression, fallbacks.dynamics(schema.embed_emotion(state)[:32]))


def test_corrupt_or_mismatched_file_names_file_and_layer(tmp_path):
    from kelly.ml.convert import dense_json, lstm_json

    layers = [dense_json(np.zeros((256, 64)), np.zeros(256), "relu"),
              lstm_json(np.zeros((1024, 64)), np.zeros((1024, 256)), np.zeros(1024), None)]
    (tmp_path / "melodytransformer.json").write_text(json.dumps({"in_shape": [None, None, 64], "layers": layers}))
    with pytest.raises(ModelError, match=r"melodytransformer\.json: layer 2 \(lstm\): weights W has shape "
                                         r"64x1024, expected 256x1024"):
        MultiModelProcessor(tmp_path)
    (tmp_path / "melodytransformer.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"melodytransformer\.json: not valid JSON"):
        MultiModelProcessor(tmp_path)
    lenient = MultiModelProcessor(tmp_path, strict=False)
    entry = lenient.status()["models"]["melodytransformer"]
    assert not entry["live"] and "not valid JSON" in entry["error"]
    assert lenient.hints_for_emotion(_state(0.1, 0.5, 0.5, "joy")).note_probs.shape == (128,)


def test_search_path_order_and_environment(tmp_path):
    env = {"KELLY_MODELS": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    path = default_search_path(tmp_path / "explicit", env)
    assert path[:4] == [tmp_path / "explicit", tmp_path / "a", tmp_path / "b", tmp_path / "data" / "kelly" / "models"]
    assert path[-1].parts[-3:] == ("kelly", "assets", "models")
    with pytest.raises(InputError, match="does not exist"):
        MultiModelProcessor(tmp_path / "nope")


def test_model_paths_cannot_escape(tmp_path):
    for name in ("../evil.json", "sub/x.json", "..", "a\\b.json", ""):
        with pytest.raises(ModelError):
            safe_model_path(tmp_path, name)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    inner = tmp_path / "models"
    inner.mkdir()
    (inner / "groovepredictor.json").symlink_to(outside)
    with pytest.raises(ModelError, match="outside its folder"):
        safe_model_path(inner, "groovepredictor.json")
    with pytest.raises(ModelError):
        MultiModelProcessor(inner, file_names={"groovepredictor": "../outside.json"})
    assert safe_model_path(inner, "ok.json") == inner / "ok.json"


def test_input_validation(bare):
    with pytest.raises(InputError, match=r"mel frame must have shape \(128,\)"):
        bare.run_audio_features(np.zeros(12))
    with pytest.raises(InputError, match="NaN"):
        bare.hints_for_embedding(np.full(64, np.nan))
    with pytest.raises(InputError, match="unknown model"):
        bare.set_enabled("nonsense", False)


def test_composing_path_does_not_import_torch():
    code = ("import sys, numpy as np; import kelly.ml, kelly.ml.processor, kelly.ml.runtime, kelly.commands.ml; "
            "from kelly.ml import MultiModelProcessor; MultiModelProcessor(search_path=[]).run_audio_features("
            "np.zeros(128)); assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'onnx' not in sys.modules, 'onnx imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr


def test_networks_answer_to_their_key_class_name_and_short_name():
    from kelly.ml.specs import ALIASES, get_spec

    for short, key in ALIASES.items():
        assert get_spec(short).key == get_spec(key).key == get_spec(get_spec(key).name).key == key
        assert get_spec(short.upper() + " ").key == key
    with pytest.raises(InputError, match=r"known models: .* \(or recognizer, melody, harmony, dynamics, groove\)"):
        get_spec("melo")
