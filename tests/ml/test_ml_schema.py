"""The documented meaning of the 64-d embedding, chord classes and parameter names."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.emotion.state import EmotionState, SecondaryEmotion
from kelly.errors import InputError
from kelly.ml import schema as S


def test_layout_sizes_and_names():
    assert len(S.EMBEDDING_NAMES) == 64
    assert S.EMBEDDING_NAMES[:3] == ("valence", "arousal", "dominance")
    assert S.EMBEDDING_NAMES[63] == "confidence"
    assert len(S.GROOVE_PARAMS) == 32 and len(set(S.GROOVE_PARAMS)) == 32
    assert len(S.EXPRESSION_PARAMS) == 16 and len(set(S.EXPRESSION_PARAMS)) == 16
    assert S.EXPRESSION_PARAMS[0] == "velocity_base"
    assert {"swing", "push_pull", "ghost_prob", "hat_density", "kick_density", "microtiming_ms"} <= set(S.GROOVE_PARAMS)


def test_embed_emotion_reads_state_and_decodes_back():
    state = EmotionState(label="grief", family="sadness", valence=-0.7, arousal=0.3, dominance=0.25,
                         intensity=0.8, confidence=0.9, secondary=(SecondaryEmotion("fear", 0.4),))
    e = S.embed_emotion(state)
    assert e.shape == (64,) and e.dtype == np.float32
    assert e[0] == pytest.approx(-0.7) and e[1] == pytest.approx(0.3) and e[2] == pytest.approx(0.25)
    assert e[63] == pytest.approx(0.9)
    assert e[S.FAMILY_SLICE.start + S.FAMILIES.index("sadness")] == 1.0
    assert e[S.FAMILY_SLICE.start + S.FAMILIES.index("fear")] == pytest.approx(0.4)
    assert e[S.QUADRANT_SLICE].sum() == pytest.approx(1.0)
    assert e[S.MODE_SLICE].sum() == pytest.approx(1.0, abs=1e-6)
    assert np.all(e[S.RESERVED_SLICE] == 0)
    d = S.decode_embedding(e)
    assert d["family"] == "sadness" and d["quadrant"] == "depressed" and d["mode"] == "aeolian"
    assert d["valence"] == pytest.approx(-0.7, abs=1e-6) and d["confidence"] == pytest.approx(0.9)
    back = S.state_from_embedding(e)
    assert back.family == "sadness" and back.arousal == pytest.approx(0.3, abs=1e-6)


def test_modes_follow_valence():
    assert S.decode_embedding(S.embed_vad(0.8, 0.6, 0.6, intensity=0.7))["mode"] == "ionian"
    assert S.decode_embedding(S.embed_vad(-0.7, 0.3, 0.3, intensity=0.7))["mode"] == "aeolian"
    assert S.embed_vad(0.5, 0.5, 0.5)[S.I_MODE_HINT] > 0 > S.embed_vad(-0.5, 0.5, 0.5)[S.I_MODE_HINT]


def test_embed_rejects_out_of_range():
    with pytest.raises(InputError, match="arousal"):
        S.embed_vad(0.0, 1.5, 0.5)
    with pytest.raises(InputError, match="valence"):
        S.embed_vad(float("nan"), 0.5, 0.5)
    with pytest.raises(InputError, match="shape"):
        S.decode_embedding(np.zeros(10))


def test_chord_classes():
    assert S.chord_class_to_root_quality(0) == (0, "maj")
    assert S.chord_class_to_root_quality(S.chord_class_index(9, "min")) == (9, "min")
    assert [S.chord_class_name(S.chord_class_index(r, q)) for r, q in
            ((0, "maj"), (2, "min"), (7, "7"), (11, "dim"), (10, "maj"), (5, "sus4"))] == \
        ["I", "ii", "V7", "vii°", "bVII", "IVsus4"]
    assert [S.chord_class_name(i) for i in range(60, 64)] == ["I5", "Isus2", "I+", "vii°7"]
    assert len(set(S.CHORD_CLASS_NAMES)) == 64
    for i in range(64):
        root, quality = S.chord_class_to_root_quality(i)
        assert 0 <= root < 12 and quality in S.CHORD_INTERVALS
        assert S.chord_class_index(root, quality) == i
    assert S.chord_class_pitch_classes(S.chord_class_index(7, "7"), tonic=2) == (9, 1, 4, 7)  # A7 in D
    with pytest.raises(InputError):
        S.chord_class_to_root_quality(64)
    with pytest.raises(InputError):
        S.chord_class_index(3, "power")


def test_param_dicts_and_contexts():
    g = S.groove_dict(np.zeros(32))
    assert g["swing"] == 0.5 and g["push_pull"] == 0.0
    assert set(S.expression_dict(np.full(16, 0.3))) == set(S.EXPRESSION_PARAMS)
    e = S.embed_vad(0.2, 0.4, 0.6)
    mel = np.linspace(0, 1, 128)
    ctx = S.harmony_context(e, mel)
    assert np.array_equal(ctx[:64], e) and np.allclose(ctx[64:], mel[:64])
    assert np.all(S.harmony_context(e)[64:] == 0)
    assert np.array_equal(S.dynamics_context(e), e[:32])
    assert S.normalize_mel_db(np.array([-100.0, -40.0, 0.0, 5.0])).tolist() == [0.0, 0.5, 1.0, 1.0]
    probs = np.zeros(128)
    probs[60] = 1
    assert np.argmax(S.transpose_note_probs(probs, 7)) == 67
