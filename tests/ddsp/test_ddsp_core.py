"""The numpy synthesizers of kelly.ddsp.core: wavetable vs additive, Nyquist, filtered noise."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.ddsp import core
from kelly.ddsp.core import HOP, N_HARMONICS, N_NOISE_BANDS, SAMPLE_RATE, FilteredNoise, Harmonic


def _random_controls(f0: float, n_frames: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    h = Harmonic()
    f0_hz = np.full(n_frames, f0) * (1.0 + 0.02 * np.sin(np.linspace(0, 3, n_frames)))  # a little vibrato
    ctrl = h.get_controls(rng.normal(size=(n_frames, 1)), rng.normal(size=(n_frames, N_HARMONICS)) * 2.0, f0_hz)
    return h, ctrl, (n_frames - 1) * HOP


@pytest.mark.parametrize("f0", [65.0, 220.0, 880.0])
def test_wavetable_matches_additive(f0):
    h, ctrl, n = _random_controls(f0, seed=int(f0))
    table = h.get_signal(ctrl["amplitudes"], ctrl["f0_hz"], n)
    additive = h.get_signal_additive(ctrl["amplitudes"], ctrl["f0_hz"], n)
    assert table.shape == additive.shape == (n,)
    peak = np.abs(additive).max()
    assert peak > 1e-3
    assert np.abs(table - additive).max() <= 1e-2 * peak


def test_harmonics_at_or_above_nyquist_are_silenced():
    h = Harmonic()
    n_frames = 30
    f0 = np.full(n_frames, 300.0)  # harmonic 40 = 12 kHz, above the 8 kHz Nyquist
    amps = np.zeros((n_frames, N_HARMONICS))
    amps[:, 39] = 1.0
    n = (n_frames - 1) * HOP
    assert np.abs(h.get_signal(amps, f0, n)).max() < 1e-6
    assert np.abs(h.get_signal_additive(amps, f0, n)).max() < 1e-6
    # the same harmonic below Nyquist does sound (the mask is per frame, not a blanket silence)
    low = np.full(n_frames, 150.0)  # harmonic 40 = 6 kHz
    assert np.abs(h.get_signal(amps, low, n)).max() > 0.5


def test_nyquist_mask_boundary():
    mask = core.nyquist_mask(np.array([4000.0, 3999.0]), 3)
    assert mask.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]  # exactly at Nyquist (2 x 4 kHz) is silenced


def test_flat_noise_is_white_uniform_noise():
    n_frames = 200
    mags = np.ones((n_frames, N_NOISE_BANDS))
    y = FilteredNoise().get_signal(mags, n_frames * HOP, np.random.default_rng(1))
    assert y.shape == (n_frames * HOP,)
    rms = float(np.sqrt(np.mean(y ** 2)))
    assert abs(rms - 1.0 / np.sqrt(3.0)) <= 0.1 / np.sqrt(3.0)


def test_low_band_filter_keeps_energy_low():
    n_frames = 200
    mags = np.zeros((n_frames, N_NOISE_BANDS))
    mags[:, :8] = 1.0  # 0 to 875 Hz (bands every 125 Hz)
    y = FilteredNoise().get_signal(mags, n_frames * HOP, np.random.default_rng(2))
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1.0 / SAMPLE_RATE)
    assert power[freqs < 2000].sum() / power.sum() > 0.95
    assert power.sum() > 0


def test_noise_is_reproducible_from_its_seed():
    n_frames = 50
    mags = FilteredNoise().get_controls(np.random.default_rng(0).normal(size=(n_frames, N_NOISE_BANDS)))["magnitudes"]
    fn = FilteredNoise()
    a = fn.get_signal(mags, n_frames * HOP, np.random.default_rng(7))
    b = fn.get_signal(mags, n_frames * HOP, np.random.default_rng(7))
    c = fn.get_signal(mags, n_frames * HOP, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_noise_pads_to_the_requested_length():
    y = FilteredNoise().get_signal(np.ones((3, N_NOISE_BANDS)), 3 * HOP + 100, np.random.default_rng(0))
    assert y.shape == (3 * HOP + 100,)
    assert np.all(y[3 * HOP:] == 0.0)


def test_frames_and_upsample_contract():
    assert core.frames_for(16000) == 101
    assert core.frames_for(159) == 1
    up = core.upsample(np.array([0.0, 1.0, 3.0]), 3 * HOP)
    assert up[0] == 0.0 and up[HOP] == 1.0 and up[HOP // 2] == pytest.approx(0.5)
    assert up[-1] == 3.0  # past the last frame the last value holds


def test_decoder_inputs_scalings():
    x = core.decoder_inputs(np.array([440.0, 8.1758]), np.array([-80.0, 0.0]), (0.5, 0.2, 0.9))
    assert x.shape == (2, 5) and x.dtype == np.float32
    assert x[0, 0] == pytest.approx(69 / 127, abs=1e-6) and x[1, 0] == pytest.approx(0.0, abs=1e-4)
    assert x[0, 1] == 0.0 and x[1, 1] == 1.0
    assert np.allclose(x[:, 2:], [[0.5, 0.2, 0.9]] * 2)
