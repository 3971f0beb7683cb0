"""The trained weights Kelly ships (kelly/assets/models): present, intact, small, used by default,
and they hear and shape music the way their model card says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kelly.ml.specs import MODEL_KEYS

ASSETS = Path(__file__).resolve().parents[2] / "kelly" / "assets"
MODELS = ASSETS / "models"


def test_all_five_ship_packed_with_matching_sidecars_within_six_megabytes():
    total = 0
    for key in MODEL_KEYS:
        blob = (MODELS / f"{key}.npz").read_bytes()
        meta = json.loads((MODELS / f"{key}.meta.json").read_text())
        assert meta["sha256"] == hashlib.sha256(blob).hexdigest(), key
        assert meta["trained"] and meta["training"]["data"] == "corpus"
        assert "essen" not in meta["training"]["config"]["collections"]  # non-commercial licence
        total += len(blob) + len((MODELS / f"{key}.meta.json").read_bytes())
    assert total <= 6 * 1024 * 1024


def test_every_shipped_network_beats_its_baseline_on_held_out_data():
    for key in MODEL_KEYS:
        meta = json.loads((MODELS / f"{key}.meta.json").read_text())
        test = meta["test"]
        assert test["n_test"] > 0
        assert test["model"]["loss"] < test["baseline"]["loss"], key
    card = (ASSETS / "MODEL_CARD.md").read_text()
    assert all(f"(`{key}`" in card for key in MODEL_KEYS) and "| label \\ heard |" in card


def test_the_shipped_weights_are_what_kelly_uses_by_default(monkeypatch, tmp_path):
    from kelly.ml.processor import MultiModelProcessor

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("KELLY_MODELS", raising=False)
    proc = MultiModelProcessor()
    assert proc.status()["live"] == list(MODEL_KEYS)
    assert all(Path(proc.status()["models"][k]["path"]).parent == MODELS for k in MODEL_KEYS)


def test_the_recognizer_hears_euphoria_as_brighter_and_more_aroused_than_grief(tmp_path):
    from kelly.render.audio import synth_available

    if not synth_available():
        pytest.skip("no FluidSynth here")
    from kelly.emotion.audio import recognize_audio
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import ComposeOptions, compose
    from kelly.render.audio import render_midi_file

    readings = {}
    for name in ("euphoria", "grief"):
        song = compose(state_for(name), ComposeOptions(bars=8, seed=11)).song
        song.save(tmp_path / f"{name}.mid")
        wav = render_midi_file(tmp_path / f"{name}.mid", tmp_path / f"{name}.wav")
        readings[name] = recognize_audio(wav)
        assert readings[name].live and "trained" in readings[name].model
    e, g = readings["euphoria"].overall, readings["grief"].overall
    assert e.valence > g.valence + 0.3 and e.arousal > g.arousal + 0.1


def test_the_trained_melody_network_sounds_like_the_corpus_per_mode():
    """Its per-bar note probabilities put major-key weight on the major third and minor-key weight
    on the minor third, as the corpus does (the fallback does this by rule; the network learned it)."""
    from kelly.emotion.thesaurus import state_for
    from kelly.ml import schema
    from kelly.ml.processor import MultiModelProcessor

    proc = MultiModelProcessor(search_path=[MODELS])
    for name, third, other in (("happiness", 4, 3), ("grief", 3, 4)):
        rows = proc.melody_bars(np.tile(schema.embed_emotion(state_for(name)), (8, 1)))
        pcs = np.bincount(np.arange(128) % 12, weights=rows.sum(0).astype(float), minlength=12)
        assert pcs[third] > 1.5 * pcs[other], (name, pcs.round(2))
