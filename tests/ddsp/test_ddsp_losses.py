"""The multi-scale spectral loss."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kelly.ddsp.losses import MultiScaleSpectralLoss, multiscale_spectral_loss, spectral_loss_numpy  # noqa: E402

from _ddsp_helpers import sine  # noqa: E402


def _t(y):
    return torch.from_numpy(np.asarray(y, np.float32))[None]


def test_zero_for_identical_signals():
    x = _t(sine(440.0, 0.5, 16000, 0.5) + 0.01 * np.random.default_rng(0).normal(size=8000))
    assert float(multiscale_spectral_loss(x, x)) == 0.0
    assert float(MultiScaleSpectralLoss()(x, x)) == 0.0


def test_positive_and_ordered_by_closeness():
    a = sine(440.0, 0.5, 16000, 0.5)
    near = sine(445.0, 0.5, 16000, 0.5)
    far = sine(880.0, 0.5, 16000, 0.5)
    l_near = float(multiscale_spectral_loss(_t(near), _t(a)))
    l_far = float(multiscale_spectral_loss(_t(far), _t(a)))
    assert l_near > 0.0
    assert l_near < l_far
    assert spectral_loss_numpy(near, a) == pytest.approx(l_near, rel=1e-5)


def test_symmetric_and_batched():
    a, b = sine(300.0, 0.25, 16000), sine(600.0, 0.25, 16000, 0.3)
    ab = float(multiscale_spectral_loss(_t(a), _t(b)))
    assert ab == pytest.approx(float(multiscale_spectral_loss(_t(b), _t(a))), rel=1e-6)
    batch = multiscale_spectral_loss(torch.cat([_t(a), _t(a)]), torch.cat([_t(b), _t(b)]))
    assert float(batch) == pytest.approx(ab, rel=1e-5)
