"""Losses and measures for the DDSP voice.

* :class:`MultiScaleSpectralLoss` (torch, for training and evaluation): for each FFT size
  in 2048, 1024, 512, 256, 128, 64 (hop a quarter of it, Hann window), the mean
  absolute difference of the magnitude spectrograms plus that of their logarithms
  (``log(|X| + 1e-7)``), summed over the sizes: the DDSP paper's reconstruction loss.
* :func:`paper_measures` (numpy): the paper's resynthesis measures on held-out audio,
  loudness L1 (dB) and f0 L1 (cents, on frames voiced in both), both through
  :func:`kelly.ddsp.features.features`, the one feature function.
"""

from __future__ import annotations

import numpy as np

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def multiscale_spectral_loss(pred, target, fft_sizes=FFT_SIZES, *, log_weight: float = 1.0):
    """``pred`` and ``target`` ``[B, n]`` (torch) → a scalar tensor."""
    import torch

    loss = pred.new_zeros(())
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, dtype=pred.dtype, device=pred.device)
        kw = dict(n_fft=n_fft, hop_length=n_fft // 4, window=window, center=True, return_complex=True)
        p = torch.stft(pred, **kw).abs()
        t = torch.stft(target, **kw).abs()
        loss = loss + torch.mean(torch.abs(p - t))
        if log_weight:
            loss = loss + log_weight * torch.mean(torch.abs(torch.log(p + 1e-7) - torch.log(t + 1e-7)))
    return loss


class MultiScaleSpectralLoss:
    """A callable module-like wrapper of :func:`multiscale_spectral_loss` (magenta/ddsp's ``SpectralLoss`` shape)."""

    def __init__(self, fft_sizes=FFT_SIZES, log_weight: float = 1.0) -> None:
        self.fft_sizes = tuple(fft_sizes)
        self.log_weight = log_weight

    def __call__(self, pred, target):
        return multiscale_spectral_loss(pred, target, self.fft_sizes, log_weight=self.log_weight)


def spectral_loss_numpy(pred: np.ndarray, target: np.ndarray) -> float:
    """:func:`multiscale_spectral_loss` of two 1-D numpy signals (through torch)."""
    import torch

    n = min(len(pred), len(target))
    with torch.no_grad():
        return float(multiscale_spectral_loss(torch.from_numpy(np.asarray(pred[:n], np.float32))[None],
                                              torch.from_numpy(np.asarray(target[:n], np.float32))[None]))


def paper_measures(pred: np.ndarray, target: np.ndarray, *, target_features=None) -> dict:
    """Loudness L1 (dB) and f0 L1 (cents, frames voiced in both) of a resynthesis against its target (16 kHz)."""
    from kelly.ddsp.core import SAMPLE_RATE
    from kelly.ddsp.features import features

    tf = target_features if target_features is not None else features(target, SAMPLE_RATE)
    pf = features(pred, SAMPLE_RATE)
    n = min(len(tf.loudness_db), len(pf.loudness_db))
    loud = float(np.mean(np.abs(tf.loudness_db[:n] - pf.loudness_db[:n])))
    both = tf.voiced[:n] & pf.voiced[:n]
    cents = 1200.0 * np.abs(np.log2(np.maximum(pf.f0_hz[:n][both], 1e-3) / np.maximum(tf.f0_hz[:n][both], 1e-3)))
    return {"loudness_l1_db": loud, "f0_l1_cents": float(np.mean(cents)) if both.any() else float("nan"),
            "voiced_frames": int(both.sum()),
            "voicing_agreement": float(np.mean(tf.voiced[:n] == pf.voiced[:n]))}
