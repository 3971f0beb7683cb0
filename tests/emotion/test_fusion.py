"""Fusion of the emotion doors: ``kelly.emotion.fusion`` (fuse, SourceReading, EmotionSmoother)."""

from __future__ import annotations

import math

import pytest

from kelly.emotion import fusion as F
from kelly.emotion.bio import BiometricReader, BioSample
from kelly.emotion.fusion import EmotionSmoother, FusedEmotion, SourceReading, fuse
from kelly.emotion.thesaurus import load_thesaurus
from kelly.errors import InputError

approx = pytest.approx


# --------------------------------------------------------------------------- SourceReading

def test_source_reading_clips_and_refuses_nan():
    r = SourceReading(1.5, -0.2, 1.2, confidence=3.0, age_s=-1.0, intensity=2.0)
    assert (r.valence, r.arousal, r.dominance, r.confidence, r.age_s, r.intensity) == (1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    for kwargs in ({"valence": math.nan}, {"arousal": math.nan}, {"dominance": math.nan},
                   {"confidence": math.nan}, {"age_s": math.nan}, {"intensity": math.nan},
                   {"valence": "0.5"}, {"arousal": True}):
        base = {"valence": 0.0, "arousal": 0.5, "dominance": 0.5}
        with pytest.raises(InputError):
            SourceReading(**{**base, **kwargs})
    assert SourceReading(0, 0.5, 0.5, age_s=math.inf).effective_confidence(2.0) == 0.0


def test_effective_confidence_halves_per_half_life():
    r = SourceReading(0, 0.5, 0.5, confidence=0.8, age_s=4.0)
    assert r.effective_confidence(2.0) == approx(0.2)
    assert r.effective_confidence(4.0) == approx(0.4)
    assert r.effective_confidence(math.inf) == 0.8
    assert SourceReading(0, 0.5, 0.5, age_s=100).effective_confidence(2.0) == 0.0  # below MIN_CONFIDENCE


# --------------------------------------------------------------------------- fuse

def test_nothing_heard_is_neutral_with_zero_confidence():
    for readings in ({}, {"audio": None}, {"audio": SourceReading(0.9, 0.9, 0.9, confidence=0.0)},
                     {"audio": SourceReading(0.9, 0.9, 0.9, age_s=60.0)}):
        f = fuse(readings)
        assert (f.valence, f.arousal, f.dominance, f.intensity, f.confidence) == (0.0, 0.5, 0.5, 0.5, 0.0)
        assert f.label is None and f.weights == {} and f.effective == {}


def test_confidence_weighted_mean():
    f = fuse({"explicit": SourceReading(-0.6, 0.2, 0.3, confidence=1.0),
              "text": SourceReading(0.6, 0.8, 0.9, confidence=0.5)})
    assert f.valence == approx((-0.6 * 1.0 + 0.6 * 0.5) / 1.5)
    assert f.arousal == approx((0.2 + 0.4) / 1.5)
    assert f.dominance == approx((0.3 + 0.45) / 1.5)
    assert f.weights == approx({"explicit": 2 / 3, "text": 1 / 3})
    assert f.confidence == approx(1.0)
    f = fuse({"audio": SourceReading(0, 0.5, 0.5, confidence=0.5),
              "text": SourceReading(0, 0.5, 0.5, confidence=0.5)})
    assert f.confidence == approx(0.75)  # 1 − (1 − 0.5)(1 − 0.5)


def test_single_source_passes_through_with_its_label():
    r = SourceReading(-0.7, 0.25, 0.2, confidence=0.6)
    f = fuse({"text": r})
    assert f.pad == approx((-0.7, 0.25, 0.2)) and f.confidence == approx(0.6)
    assert f.label == load_thesaurus().nearest(-0.7, 0.25, 0.2).name


def test_decay_per_source():
    old_audio = SourceReading(1.0, 1.0, 1.0, confidence=1.0, age_s=2.0)      # one audio half-life
    fresh_text = SourceReading(-1.0, 0.0, 0.0, confidence=0.5, age_s=0.0)
    f = fuse({"audio": old_audio, "text": fresh_text})
    assert f.effective == approx({"audio": 0.5, "text": 0.5})
    assert f.valence == approx(0.0)
    # the same age means almost nothing to typed text, and nothing at all to explicit settings
    assert fuse({"text": SourceReading(0, 0.5, 0.5, age_s=2.0)}).confidence == approx(0.5 ** (2 / 300))
    assert fuse({"explicit": SourceReading(0, 0.5, 0.5, age_s=1e6)}).confidence == 1.0
    # stale audio is skipped altogether
    f = fuse({"audio": SourceReading(1, 1, 1, age_s=30.0), "text": fresh_text})
    assert "audio" not in f.weights and f.valence == -1.0
    assert F.HALF_LIFE_S["audio"] < F.HALF_LIFE_S["biometrics"] < F.HALF_LIFE_S["text"] < F.HALF_LIFE_S["explicit"]


def test_half_lives_and_weights_can_be_tuned():
    a = SourceReading(1.0, 1.0, 1.0, age_s=10.0)
    assert fuse({"audio": a}, half_lives={"audio": 10.0}).confidence == approx(0.5)
    f = fuse({"explicit": SourceReading(1.0, 1.0, 1.0), "text": SourceReading(-1.0, 0.0, 0.0)},
             weights={"explicit": 3.0})
    assert f.valence == approx(0.5) and f.confidence == 1.0
    f = fuse({"explicit": SourceReading(1.0, 1.0, 1.0), "text": SourceReading(-1.0, 0.0, 0.0)},
             weights={"text": 0})
    assert f.weights == {"explicit": 1.0}
    assert "glove" in fuse({"glove": SourceReading(0, 0.5, 0.5)}, half_lives={"glove": 1.0}).weights
    for bad in ({"audio": 0}, {"audio": -1}, {"audio": math.nan}):
        with pytest.raises(InputError):
            fuse({}, half_lives=bad)
    for bad in ({"audio": -1}, {"audio": math.inf}, {"audio": math.nan}):
        with pytest.raises(InputError):
            fuse({}, weights=bad)


def test_unknown_source_and_wrong_types():
    with pytest.raises(InputError, match="known sources: audio, text, biometrics, explicit"):
        fuse({"face": SourceReading(0, 0.5, 0.5)})
    with pytest.raises(InputError):
        fuse({"audio": (0, 0.5, 0.5)})
    with pytest.raises(InputError):
        fuse([SourceReading(0, 0.5, 0.5)])


def test_intensity_is_weighted_over_the_sources_that_know_it():
    f = fuse({"explicit": SourceReading(0, 0.5, 0.5, confidence=1.0),
              "text": SourceReading(0, 0.5, 0.5, confidence=0.5, intensity=0.9),
              "biometrics": SourceReading(0, 0.5, 0.5, confidence=0.25, intensity=0.3)})
    assert f.intensity == approx((0.9 * 0.5 + 0.3 * 0.25) / 0.75)
    assert fuse({"explicit": SourceReading(0, 0.5, 0.5)}).intensity == 0.5


def test_biometric_reading_plugs_in():
    reader = BiometricReader()
    bio = reader.update(BioSample(0, heart_rate=110, hrv=15, skin_temp=35))
    f = fuse({"biometrics": bio})
    assert f.pad == approx((bio.valence, bio.arousal, bio.dominance))
    assert f.confidence == approx(bio.confidence) and f.intensity == approx(bio.intensity)
    silent = BiometricReader().read()
    assert fuse({"biometrics": silent, "text": SourceReading(0.5, 0.5, 0.5)}).weights == {"text": 1.0}


def test_contract_shapes():
    from kelly.contracts import LiveEmotion

    f = fuse({"text": SourceReading(0.4, 0.6, 0.7, intensity=0.8)})
    live = LiveEmotion(**f.to_dict())
    assert live.label == f.label and live.confidence == f.confidence
    src = LiveEmotion(**SourceReading(0.4, 0.6, 0.7, age_s=3.0).to_dict())
    assert src.age_s == 3.0 and src.label
    assert LiveEmotion(**fuse({}).to_dict()).label is None
    state = f.to_state()
    assert state.source == "fusion" and state.label == f.label and state.intensity == approx(0.8)
    assert fuse({}).to_state().confidence == 0.0


# --------------------------------------------------------------------------- smoother

def test_smoother_follows_the_original_formula():
    s = EmotionSmoother(alpha=0.1)
    assert s.value is None
    assert s.update(-1.0, 0.0, 0.0) == (-1.0, 0.0, 0.0)            # the first value is taken as it is
    assert s.update(1.0, 1.0, 1.0) == approx((-0.8, 0.1, 0.1))     # 0.1·new + 0.9·old
    assert s.update(1.0, 1.0, 1.0) == approx((-0.62, 0.19, 0.19))
    for _ in range(200):
        s.update(1.0, 1.0, 1.0)
    assert s.value == approx((1.0, 1.0, 1.0))
    s.reset()
    assert s.update(0.3, 0.3, 0.3) == approx((0.3, 0.3, 0.3))
    one = EmotionSmoother(alpha=1.0)
    one.update(0, 0, 0)
    assert one.update(0.5, 0.5, 0.5) == (0.5, 0.5, 0.5)


def test_smoother_validates():
    for bad in (0, -0.1, 1.01, math.nan, True, "0.1"):
        with pytest.raises(InputError):
            EmotionSmoother(bad)
    s = EmotionSmoother()
    with pytest.raises(InputError):
        s.update(math.nan, 0.5, 0.5)
    assert s.update(2.0, -1.0, 5.0) == (1.0, 0.0, 1.0)  # clipped
    with pytest.raises(InputError):
        s.smooth(SourceReading(0, 0.5, 0.5))


def test_smooth_fused_holds_when_nothing_is_heard():
    s = EmotionSmoother(alpha=0.5)
    assert s.smooth(fuse({})) == FusedEmotion()                      # nothing yet, nothing invented
    a = s.smooth(fuse({"text": SourceReading(-0.8, 0.2, 0.2)}))
    assert a.pad == approx((-0.8, 0.2, 0.2)) and a.label
    b = s.smooth(fuse({"text": SourceReading(0.8, 0.8, 0.8)}))
    assert b.pad == approx((0.0, 0.5, 0.5))
    assert b.label == load_thesaurus().nearest(0.0, 0.5, 0.5).name
    held = s.smooth(fuse({}))
    assert held.pad == approx(b.pad) and held.confidence == 0.0


def test_alpha_for_time_constant():
    assert EmotionSmoother.alpha_for(1.0, 1.0) == approx(1 - math.exp(-1))
    assert EmotionSmoother.alpha_for(10.0, 0.1) == approx(1 - math.exp(-0.01))
    with pytest.raises(InputError):
        EmotionSmoother.alpha_for(0, 0.1)
