"""The DDSP decoder: (f0, loudness, V, A, D) per frame → 130 synth controls per frame.

A straight stack, so that it is exactly an RTNeural model (RTNeural has no skip
connections or layer norms, and Kelly's numpy runtime reads the same JSON)::

    dense 5→H, relu → dense H→H, relu → GRU H → dense H→H, relu → dense H→130

The magenta/ddsp decoder (an MLP per input, a GRU, an MLP, with the inputs concatenated
again after the GRU) was simplified to this; the GRU's hidden state carries the note's
history (attack, decay), the dense layers shape each frame.

:class:`Decoder` is the torch model for training; :class:`NumpyDecoder` runs the
exported RTNeural JSON (read and checked by :func:`kelly.ml.runtime.load_rtneural_bytes`)
over many voices at once, time-major, which the streaming runtime (one step of one
stream per call, built for the audio thread) does not do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kelly.ddsp.core import N_INPUTS, N_OUTPUTS
from kelly.errors import ModelError


@dataclass(frozen=True)
class DecoderConfig:
    hidden: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


def plan() -> list[tuple]:
    """The RTNeural conversion plan (:func:`kelly.ml.convert.state_dict_to_rtneural`) of :class:`Decoder`."""
    return [("dense", "inp1", "relu"), ("dense", "inp2", "relu"), ("gru", "gru", 1),
            ("dense", "out1", "relu"), ("dense", "out2", "")]


def torch_decoder(config: DecoderConfig = DecoderConfig()):
    """A fresh :class:`Decoder` (imports torch)."""
    import torch
    from torch import nn

    class Decoder(nn.Module):
        """The torch decoder; ``forward(x [B, T, 5], h0 [1, B, H] | None)`` → ``(raw [B, T, 130], h [1, B, H])``."""

        def __init__(self, cfg: DecoderConfig) -> None:
            super().__init__()
            h = cfg.hidden
            self.config = cfg
            self.inp1 = nn.Linear(N_INPUTS, h)
            self.inp2 = nn.Linear(h, h)
            self.gru = nn.GRU(h, h, batch_first=True)
            self.out1 = nn.Linear(h, h)
            self.out2 = nn.Linear(h, N_OUTPUTS)

        def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
            z = torch.relu(self.inp2(torch.relu(self.inp1(x))))
            z, h = self.gru(z, h0)
            return self.out2(torch.relu(self.out1(z))), h

    return Decoder(config)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class NumpyDecoder:
    """The decoder from its RTNeural JSON, run over ``[B, T, 5]`` with numpy (float32).

    Parameters
    ----------
    data : bytes
        The JSON file's bytes; checked by the runtime's loader (sizes capped before any
        allocation, every weight finite and of the declared shape).
    name : str
        For error messages.
    """

    def __init__(self, data: bytes | str, *, name: str = "ddsp.json") -> None:
        from kelly.ml.runtime import Dense, GRU, load_rtneural_bytes

        model = load_rtneural_bytes(data, name=name, sizes=(N_INPUTS, N_OUTPUTS))
        kinds = [(type(layer).__name__, getattr(layer, "name", "")) for layer in model.layers]
        want = [("Dense", ""), ("Activation", "relu"), ("Dense", ""), ("Activation", "relu"), ("GRU", ""),
                ("Dense", ""), ("Activation", "relu"), ("Dense", "")]
        if kinds != want:
            raise ModelError(f"{name}: not a DDSP decoder (dense, relu, dense, relu, gru, dense, relu, dense); "
                             f"got {', '.join(k + (':' + a if a else '') for k, a in kinds)}")
        d = [layer for layer in model.layers if isinstance(layer, Dense)]
        g = next(layer for layer in model.layers if isinstance(layer, GRU))
        self.dense = [(layer.weight, np.zeros(layer.out_size, np.float32) if layer.bias is None else layer.bias)
                      for layer in d]
        self.hidden = g.out_size
        self.W, self.U, self.b = g.W, g.U, g.b  # RTNeural: gates z, r, n; b[0] input bias, b[1] recurrent
        self.param_count = model.param_count()

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights in torch's layout (:func:`torch_decoder`'s ``load_state_dict``): the JSON's inverse."""
        from kelly.ml.convert import swap_rz

        out = {}
        for name, (w, b) in zip(("inp1", "inp2", "out1", "out2"), self.dense):
            out[f"{name}.weight"] = np.ascontiguousarray(w.T)
            out[f"{name}.bias"] = np.asarray(b)
        h = self.hidden
        out["gru.weight_ih_l0"] = np.ascontiguousarray(swap_rz(self.W, h).T)
        out["gru.weight_hh_l0"] = np.ascontiguousarray(swap_rz(self.U, h).T)
        bias = swap_rz(self.b, h)
        out["gru.bias_ih_l0"], out["gru.bias_hh_l0"] = bias[0], bias[1]
        return out

    def __call__(self, x: np.ndarray, h0: np.ndarray | None = None, *,
                 lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``x`` ``[B, T, 5]`` → (raw controls ``[B, T, 130]``, final hidden state ``[B, H]``).

        ``lengths`` (optional, ascending): each row's real length; the padding after it is
        not computed (its outputs are zero), which saves that work when voices of different
        lengths run together.
        """
        x = np.asarray(x, dtype=np.float32)
        b, t, _ = x.shape
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = self.dense
        n_h = self.hidden
        if lengths is not None and (len(lengths) != b or np.any(np.diff(lengths) < 0) or np.max(lengths) > t):
            raise ValueError("lengths must give each row's length, ascending, at most the padded length")
        if not hasattr(self, "_half"):
            # sigmoid(v) = 0.5·tanh(v/2) + 0.5: the z and r columns are halved once, here
            half = np.ones(3 * n_h, np.float32)
            half[:2 * n_h] = 0.5
            self._half = (self.W * half, self.U * half, self.b[0] * half, self.b[1] * half)
        W, U, bx, bh = self._half
        ends = np.asarray(lengths) if lengths is not None else np.full(b, t)
        live = np.arange(t)[None, :] < ends[:, None]  # [B, T]: the frames that are not padding
        z = np.maximum(x[live] @ w1 + b1, 0.0)
        z = np.maximum(z @ w2 + b2, 0.0)
        gx = np.zeros((b, t, 3 * n_h), np.float32)
        gx[live] = z @ W + bx  # every real step's input projection at once
        gx = np.ascontiguousarray(gx.transpose(1, 0, 2))  # [T, B, 3H]
        h = np.zeros((b, n_h), np.float32) if h0 is None else np.asarray(h0, np.float32).copy()
        hs = np.zeros((t, b, n_h), np.float32)
        first = 0
        for step in range(t):
            while first < b and ends[first] <= step:
                first += 1  # rows are in ascending length: the ones before `first` have ended
            hh = h[first:]
            gh = hh @ U + bh
            g = gx[step, first:]
            zr = np.tanh(g[:, :2 * n_h] + gh[:, :2 * n_h])
            zr *= 0.5
            zr += 0.5
            zg, rg = zr[:, :n_h], zr[:, n_h:]
            n = np.tanh(g[:, 2 * n_h:] + rg * gh[:, 2 * n_h:])
            hh += (1.0 - zg) * (n - hh)  # h = (1 − z)·n + z·h
            hs[step, first:] = hh
        y = np.zeros((b, t, w4.shape[1]), np.float32)
        y[live] = np.maximum(hs.transpose(1, 0, 2)[live] @ w3 + b3, 0.0) @ w4 + b4
        return y, h
