"""Golden values of the emotion → music formulas (reference §3.1, §3.4, §3.6, §3.9)."""

import pytest

from kelly.emotion.state import EmotionState
from kelly.mapping import (base_velocity, composition_mode, density, detailed_mode, dissonance, dynamics_range,
                           groove_type, humanization, key_tonic, map_emotion, register_octave, simple_mode,
                           tempo_bpm, timing_feel)


@pytest.mark.parametrize("a,bpm", [(0, 60), (0.2, 84), (0.3, 96), (0.5, 120), (0.7, 144), (0.75, 150),
                                   (0.95, 174), (1, 180), (-1, 60), (2, 180)])
def test_tempo_truncates(a, bpm):
    assert tempo_bpm(a) == bpm


@pytest.mark.parametrize("d,vel", [(0, 60), (0.15, 70), (0.18, 72), (0.25, 76), (0.5, 93), (0.85, 116),
                                   (0.9, 120), (1, 127)])
def test_velocity_truncates(d, vel):
    assert base_velocity(d) == vel


def test_modes():
    assert simple_mode(0.0) == "minor" and simple_mode(0.01) == "major"
    assert detailed_mode(0.9, 0.9) == "lydian" and detailed_mode(0.9, 0.5) == "ionian"
    assert detailed_mode(0.9, 0.2) == "mixolydian" and detailed_mode(0.3, 0.6) == "mixolydian"
    assert detailed_mode(0.3, 0.3) == "dorian" and detailed_mode(-0.3, 0.6) == "dorian"
    assert detailed_mode(-0.3, 0.3) == "aeolian" and detailed_mode(-0.9, 0.8) == "phrygian"
    assert detailed_mode(-0.9, 0.3) == "aeolian"
    # composed mode keeps positive valence major: dorian -> mixolydian
    assert composition_mode(0.3, 0.3) == "mixolydian"


def test_other_formulas():
    assert key_tonic(-0.9, 0.9) == "Eb" and key_tonic(-0.9, 0.5) == "F" and key_tonic(-0.2, 0.5) == "D"
    assert key_tonic(0.2, 0.5) == "C" and key_tonic(0.8, 0.9) == "A" and key_tonic(0.8, 0.5) == "G"
    assert density(0) == pytest.approx(0.3) and density(1) == pytest.approx(0.8)
    assert dissonance(-0.8, 0.9, 1.0) == pytest.approx(0.7 + 0.8 * 0.3)
    assert dissonance(0.5, 0.2, 1.0) == 0.0
    assert register_octave(-1) == 4 and register_octave(1) == 5
    assert dynamics_range(1.0) == (pytest.approx(1.0), 40, 127)
    assert dynamics_range(0.0)[1:] == (68, 94)
    assert timing_feel(-0.5, 0.2) == ("laid_back", 0.0) and timing_feel(0.5, 0.9) == ("pushed", 0.0)
    assert timing_feel(0.5, 0.5) == ("swung", 0.66)
    assert groove_type(0, 0.8) == "syncopated" and groove_type(0, 0.2) == "shuffle"
    assert groove_type(0.6, 0.5) == "swing" and groove_type(0, 0.5) == "straight"
    assert humanization(1.0) == (pytest.approx(0.04), pytest.approx(0.2))


def test_map_emotion_uses_formulas_and_user_key():
    grief = EmotionState("grief", "sadness", -0.9, 0.3, 0.25, 0.65)
    p = map_emotion(grief)
    # velocity: the seed's 60 + 67x on loudness = 0.8 x 0.3 + 0.15 x 0.65 + 0.15 x (0.25 - 0.5) = 0.3 -> 80
    assert p.tempo == 96 and p.velocity == 80 and p.mode == "minor" and p.key.name == "F minor"
    assert "loudness" in p.reasons["base_velocity"]
    assert "tempo_bpm" in p.reasons and "60 + 120" in p.reasons["tempo_bpm"]
    assert map_emotion(grief, key="A").key.name == "A minor"  # bare tonic keeps the emotion's mode
    assert map_emotion(grief, key="D dorian").key.name == "D dorian"


def test_loudness_follows_arousal_with_dominance_as_offset():
    from kelly.mapping import loudness, melody_centre, velocity_for

    tender = velocity_for(0.4, 0.6, 0.68)
    anxious = velocity_for(0.7, 0.6, 0.22)
    assert tender < anxious  # dominance alone used to make tender louder than anxious
    assert abs(loudness(0.5, 0.5, 1.0) - loudness(0.5, 0.5, 0.0)) == pytest.approx(0.15)
    assert velocity_for(0, 0, 0.5) == 60 and velocity_for(1, 1, 1) == 127  # loudness peaks at 1.0
    assert melody_centre(-1, 0.3) < melody_centre(0, 0.3) < melody_centre(1, 0.3)
    assert 60 <= melody_centre(-1, 0) and melody_centre(1, 1) <= 78

