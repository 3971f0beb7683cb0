"""The torch twins (kelly.ddsp.torch_synths) hold to the numpy processors, and are differentiable."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kelly.ddsp import core, torch_synths  # noqa: E402
from kelly.ddsp.core import HOP, N_HARMONICS, N_NOISE_BANDS  # noqa: E402


def _controls(f0: float, n_frames: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    f0_hz = np.full(n_frames, f0) * (1.0 + 0.03 * np.sin(np.linspace(0, 4, n_frames)))
    amp = rng.normal(size=(n_frames, 1))
    dist = rng.normal(size=(n_frames, N_HARMONICS)) * 2.0
    return f0_hz, amp, dist


@pytest.mark.parametrize("f0", [65.0, 220.0, 880.0])
def test_harmonic_matches_numpy(f0):
    f0_hz, amp, dist = _controls(f0, seed=int(f0))
    n = (len(f0_hz) - 1) * HOP
    h = core.Harmonic()
    ctrl = h.get_controls(amp, dist, f0_hz)
    additive = h.get_signal_additive(ctrl["amplitudes"], ctrl["f0_hz"], n)
    table = h.get_signal(ctrl["amplitudes"], ctrl["f0_hz"], n)
    th = torch_synths.Harmonic()
    with torch.no_grad():
        out = th(torch.from_numpy(amp)[None], torch.from_numpy(dist)[None], torch.from_numpy(f0_hz)[None], n)
    assert out.shape == (1, n) and out.dtype == torch.float64
    y = out[0].numpy()
    assert np.abs(y - additive).max() <= 1e-6
    assert np.abs(y - table).max() <= 1e-2 * np.abs(additive).max()


def test_controls_match_numpy():
    f0_hz, amp, dist = _controls(500.0)  # harmonics 16 and up are above Nyquist
    ctrl = core.Harmonic().get_controls(amp, dist, f0_hz)
    tctrl = torch_synths.Harmonic().get_controls(torch.from_numpy(amp), torch.from_numpy(dist),
                                                 torch.from_numpy(f0_hz))
    assert np.allclose(tctrl["amplitudes"].numpy(), ctrl["amplitudes"], atol=1e-12)
    assert np.all(ctrl["amplitudes"][:, 16:] == 0.0)
    noise = np.random.default_rng(3).normal(size=(len(f0_hz), N_NOISE_BANDS))
    assert np.allclose(torch_synths.FilteredNoise().get_controls(torch.from_numpy(noise))["magnitudes"].numpy(),
                       core.FilteredNoise().get_controls(noise)["magnitudes"], atol=1e-12)


def test_filter_noise_frames_matches_numpy():
    rng = np.random.default_rng(5)
    n_frames = 25
    noise = rng.uniform(-1.0, 1.0, size=(n_frames, HOP))
    mags = core.exp_sigmoid(rng.normal(size=(n_frames, N_NOISE_BANDS)))
    ref = core.filter_noise_frames(noise, core.noise_filters(mags))
    ir = torch_synths.noise_filters(torch.from_numpy(mags)[None])
    assert np.abs(ir[0].numpy() - core.noise_filters(mags)).max() <= 1e-12  # the same window and centring
    out = torch_synths.filter_noise_frames(torch.from_numpy(noise)[None], ir)
    assert out.shape == (1, n_frames * HOP)
    assert np.abs(out[0].numpy() - ref).max() <= 1e-9
    # and through the processors, with the noise given
    sig = torch_synths.FilteredNoise().get_signal(torch.from_numpy(mags)[None], n_frames * HOP,
                                                  noise=torch.from_numpy(noise)[None])
    assert np.abs(sig[0].numpy() - ref).max() <= 1e-9


def test_gradients_reach_every_control():
    torch.manual_seed(0)
    n_frames = 20
    n = (n_frames - 1) * HOP
    amp = torch.randn(1, n_frames, 1, dtype=torch.float64, requires_grad=True)
    dist = torch.randn(1, n_frames, N_HARMONICS, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(1, n_frames, N_NOISE_BANDS, dtype=torch.float64, requires_grad=True)
    f0 = torch.full((1, n_frames), 220.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = torch_synths.Harmonic()(amp, dist, f0, n) + torch_synths.FilteredNoise()(noise, n, generator=g)
    target = torch.zeros_like(y)
    loss = torch.mean((y - target) ** 2)
    loss.backward()
    for name, t in (("amplitude", amp), ("distribution", dist), ("noise", noise)):
        assert t.grad is not None, name
        assert torch.all(torch.isfinite(t.grad)), name
        assert float(t.grad.abs().sum()) > 0.0, name


def test_torch_noise_is_reproducible_from_its_generator():
    mags = torch.zeros(2, 10, N_NOISE_BANDS, dtype=torch.float64)
    fn = torch_synths.FilteredNoise()
    a = fn(mags, 10 * HOP, generator=torch.Generator().manual_seed(4))
    b = fn(mags, 10 * HOP, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # each item of the batch has its own noise
