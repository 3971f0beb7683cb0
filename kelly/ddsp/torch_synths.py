"""The DDSP processors in torch: differentiable, batched, the same functions as :mod:`kelly.ddsp.core`.

Shapes: controls are ``[B, F, …]`` (batch, frames), audio ``[B, n_samples]``. The harmonic
synth sums its sines sample by sample (the numpy twin reads wavetables; they agree to
about −60 dB, tested). Imported only for training and export.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kelly.ddsp.core import HOP, N_HARMONICS, NOISE_BIAS, NOISE_TAPS, SAMPLE_RATE


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> torch.Tensor:
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def upsample(frames: torch.Tensor, n_samples: int) -> torch.Tensor:
    """``[B, F, C]`` → ``[B, n_samples, C]``, linear, sample ``n`` at frame position ``n / HOP``."""
    n_frames = frames.shape[1]
    pos = torch.arange(n_samples, dtype=torch.float64, device=frames.device) / HOP
    i0 = torch.clamp(pos.long(), max=n_frames - 1)
    i1 = torch.clamp(i0 + 1, max=n_frames - 1)
    w = (pos - i0).to(frames.dtype)[None, :, None]
    return frames[:, i0] * (1.0 - w) + frames[:, i1] * w


def nyquist_mask(f0_hz: torch.Tensor, n_harmonics: int, sample_rate: int) -> torch.Tensor:
    k = torch.arange(1, n_harmonics + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    return (f0_hz[..., None] * k < sample_rate / 2.0).to(f0_hz.dtype)


class Harmonic(nn.Module):
    """Additive synthesizer (torch); see :class:`kelly.ddsp.core.Harmonic`."""

    def __init__(self, n_harmonics: int = N_HARMONICS, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.n_harmonics = n_harmonics
        self.sample_rate = sample_rate

    def get_controls(self, amplitude: torch.Tensor, harmonic_distribution: torch.Tensor,
                     f0_hz: torch.Tensor) -> dict:
        amp = exp_sigmoid(amplitude)
        dist = exp_sigmoid(harmonic_distribution) * nyquist_mask(f0_hz, self.n_harmonics, self.sample_rate)
        dist = dist / torch.clamp(dist.sum(dim=-1, keepdim=True), min=1e-12)
        return {"amplitudes": amp * dist, "f0_hz": f0_hz}

    def get_signal(self, amplitudes: torch.Tensor, f0_hz: torch.Tensor, n_samples: int) -> torch.Tensor:
        amplitudes = amplitudes * nyquist_mask(f0_hz, amplitudes.shape[-1], self.sample_rate)
        f0 = upsample(f0_hz[..., None].double(), n_samples)[..., 0]
        phase = torch.remainder(torch.cumsum(f0 / self.sample_rate, dim=1), 1.0)  # cycles, in float64
        amps = upsample(amplitudes, n_samples)
        k = torch.arange(1, amplitudes.shape[-1] + 1, dtype=torch.float64, device=amplitudes.device)
        sines = torch.sin(2.0 * math.pi * phase[..., None] * k).to(amplitudes.dtype)
        return torch.sum(amps * sines, dim=-1)

    def forward(self, amplitude, harmonic_distribution, f0_hz, n_samples: int) -> torch.Tensor:
        return self.get_signal(**self.get_controls(amplitude, harmonic_distribution, f0_hz), n_samples=n_samples)


def noise_filters(magnitudes: torch.Tensor) -> torch.Tensor:
    ir = torch.fft.irfft(magnitudes, n=NOISE_TAPS, dim=-1)
    ir = torch.roll(ir, NOISE_TAPS // 2, dims=-1)
    window = torch.hann_window(NOISE_TAPS, periodic=True, dtype=ir.dtype, device=ir.device)
    return ir * window


def filter_noise_frames(noise: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """``noise`` ``[B, F, HOP]`` through ``ir`` ``[B, F, TAPS]`` → ``[B, F·HOP]`` (see the numpy twin)."""
    n_fft = 320
    y = torch.fft.irfft(torch.fft.rfft(noise, n_fft, dim=-1) * torch.fft.rfft(ir, n_fft, dim=-1), n_fft, dim=-1)
    head = y[..., :HOP]
    tail = torch.nn.functional.pad(y[:, :-1, HOP:2 * HOP], (0, 0, 1, 0))
    out = (head + tail).reshape(y.shape[0], -1)
    delay = NOISE_TAPS // 2
    spill = y[:, -1, HOP:HOP + delay]
    return torch.cat([out, spill], dim=1)[:, delay:delay + y.shape[1] * HOP]


class FilteredNoise(nn.Module):
    """Filtered white noise (torch); see :class:`kelly.ddsp.core.FilteredNoise`."""

    def get_controls(self, magnitudes: torch.Tensor) -> dict:
        return {"magnitudes": exp_sigmoid(magnitudes + NOISE_BIAS)}

    def get_signal(self, magnitudes: torch.Tensor, n_samples: int, *, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        b, n_frames, _ = magnitudes.shape
        if noise is None:
            noise = torch.rand((b, n_frames, HOP), generator=generator, dtype=magnitudes.dtype) * 2.0 - 1.0
            noise = noise.to(magnitudes.device)
        out = filter_noise_frames(noise, noise_filters(magnitudes))
        if out.shape[1] < n_samples:
            out = torch.nn.functional.pad(out, (0, n_samples - out.shape[1]))
        return out[:, :n_samples]

    def forward(self, magnitudes, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.get_signal(**self.get_controls(magnitudes), n_samples=n_samples, generator=generator)


class Reverb(nn.Module):
    """A learnable room: an impulse response of ``seconds`` whose first tap is the dry path.

    Starts as decaying noise (as :class:`kelly.ddsp.core.Reverb`); training may move every
    tap. Convolution by FFT; output length = input length (the tail past it is cut).
    """

    def __init__(self, seconds: float = 0.5, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> None:
        super().__init__()
        n = int(seconds * sample_rate)
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(n) / sample_rate
        tail = torch.randn(n, generator=g) * torch.exp(-6.9 * t / seconds) * 0.01
        tail[0] = 0.0
        self.ir = nn.Parameter(tail)

    def get_controls(self) -> dict:
        ir = self.ir.clone()
        ir = torch.cat([torch.ones(1, dtype=ir.dtype, device=ir.device), ir[1:]])
        return {"ir": ir}

    def get_signal(self, audio: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        n = audio.shape[-1]
        n_fft = 1 << (n + ir.shape[-1] - 1).bit_length()
        y = torch.fft.irfft(torch.fft.rfft(audio, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)
        return y[..., :n]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.get_signal(audio, **self.get_controls())
