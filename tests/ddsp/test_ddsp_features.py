"""f0 and A-weighted loudness frames (kelly.ddsp.features)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("librosa")

from kelly.ddsp import features as feat  # noqa: E402
from kelly.ddsp.core import HOP, SAMPLE_RATE  # noqa: E402
from kelly.errors import InputError  # noqa: E402

from _ddsp_helpers import sine  # noqa: E402


@pytest.mark.parametrize("amp,expected_db", [(1.0, 0.0), (0.1, -20.0), (0.01, -40.0)])
def test_loudness_of_a_1khz_sine(amp, expected_db):
    y = sine(1000.0, 0.6, SAMPLE_RATE, amp)
    ld = feat.loudness_db(y)
    assert len(ld) == 1 + len(y) // HOP
    middle = ld[15:-15]
    assert np.all(np.abs(middle - expected_db) <= 0.5)


def test_loudness_is_a_weighted_and_floored():
    low = feat.loudness_db(sine(100.0, 0.6, SAMPLE_RATE))[15:-15]
    assert np.all(low < -15.0)  # A-weighting takes about 19 dB off 100 Hz
    silent = feat.loudness_db(np.zeros(8000))
    assert np.all(silent == -80.0)


def test_f0_of_a_220hz_sine_at_44k1():
    sr = 44100
    y = sine(220.0, 0.6, sr, 0.5)
    f = feat.features(y, sr)
    n16 = len(f.audio)
    assert abs(n16 - int(0.6 * SAMPLE_RATE)) <= 2
    assert len(f.f0_hz) == len(f.voiced) == len(f.loudness_db) == 1 + n16 // HOP
    middle = slice(10, -10)
    assert f.voiced[middle].mean() > 0.9
    cents = 1200.0 * np.abs(np.log2(f.f0_hz[middle][f.voiced[middle]] / 220.0))
    assert np.all(cents <= 20.0)
    assert np.all(np.isfinite(f.f0_hz)) and np.all(f.f0_hz > 0)  # unvoiced frames filled


def test_stereo_is_averaged():
    y = sine(440.0, 0.3, SAMPLE_RATE, 0.5)
    mono = feat.to_model_rate(y, SAMPLE_RATE)
    stereo = feat.to_model_rate(np.stack([y, y], axis=1), SAMPLE_RATE)
    assert np.allclose(mono, stereo)


@pytest.mark.parametrize("y,sr", [
    (np.array([0.0, np.nan, 0.1] * 1000), 16000),
    (np.array([0.0, np.inf] * 1000), 16000),
    (np.zeros(0), 16000),
    (np.zeros(1000), 0),
    (np.zeros(1000), -16000),
    (np.zeros(1000), float("nan")),
    (np.zeros(1000), True),
])
def test_bad_audio_is_an_input_error(y, sr):
    with pytest.raises(InputError):
        feat.features(y, sr)
