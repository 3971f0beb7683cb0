"""The five networks over a chunk of mel frames at once: what lets the inference thread keep up.

Why
---
The numpy hot path (:meth:`kelly.ml.processor.MultiModelProcessor.pipeline_step`) runs one
frame at a time: every layer is a matrix-*vector* product, so each frame streams all
4.6 MB of weights through the cache and pays ~60 numpy calls of overhead. That tops out
near 9,000–11,000 frames/s on one core here, short of a sustained 10,000 submissions per
second. When frames queue up in the ring, the inference thread can take them as a chunk
(``[T, 128]``) instead:

* a **dense** layer over the chunk is one matrix-*matrix* product (``X·W + b``), so its
  weights are read once per chunk, not once per frame;
* an **LSTM**'s input projection for every frame of the chunk is one matrix product too
  (``X·W + b``, ``[T, 4H]``); only the recurrence ``h·U`` runs frame by frame, with the
  gates computed in place on preallocated rows (the same σ(z) = ½·tanh(z/2) + ½ identity
  and i, f, o, c̃ gate order as :class:`kelly.ml.runtime.LSTM`);
* the LSTM state is read from and written back to the processor's own layers, so chunks
  and single :meth:`~kelly.ml.processor.MultiModelProcessor.pipeline_step` calls can be
  mixed freely and :meth:`~kelly.ml.processor.MultiModelProcessor.reset` resets both.

The results equal the frame-by-frame path's within float32 rounding (the sums are taken
in another order): ``tests/soak/test_soak_chunked.py`` checks 1,100 frames, across the
recognizer's reset window, to 1e-4. A model with a layer type other than dense,
activation or LSTM (none of the five shipped networks has one) and a network on its
fallback heuristic run row by row through their own one-step function, so the outputs
are the same whatever the processor holds.
"""

from __future__ import annotations

import numpy as np

from kelly.errors import InputError
from kelly.ml import fallbacks, schema
from kelly.ml.runtime import LSTM, Activation, Dense, Model
from kelly.ml.specs import MODEL_KEYS, SPECS

#: Most frames one call takes (buffers are preallocated for this many rows).
MAX_CHUNK = 256


class _DenseOp:
    """``y = x·W + b`` over rows, into a preallocated ``[MAX_CHUNK, out]`` buffer."""

    def __init__(self, layer: Dense, rows: int) -> None:
        self.w = np.ascontiguousarray(layer.weight, dtype=np.float32)
        self.b = None if layer.bias is None else np.ascontiguousarray(layer.bias, dtype=np.float32)
        self.out = np.zeros((rows, layer.out_size), dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.out[:len(x)]
        np.dot(x, self.w, out=y)
        if self.b is not None:
            np.add(y, self.b, out=y)
        return y


class _ActivationOp:
    """An activation applied in place to the rows (softmax per row)."""

    def __init__(self, layer: Activation) -> None:
        self.name = layer.name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        name = self.name
        if name == "tanh":
            np.tanh(x, out=x)
        elif name == "relu":
            np.maximum(x, 0.0, out=x)
        elif name == "sigmoid":  # ½·tanh(x/2) + ½, as the one-step path computes it
            np.multiply(x, 0.5, out=x)
            np.tanh(x, out=x)
            np.multiply(x, 0.5, out=x)
            np.add(x, 0.5, out=x)
        elif name == "softmax":
            np.subtract(x, x.max(axis=1, keepdims=True), out=x)
            np.exp(x, out=x)
            np.divide(x, x.sum(axis=1, keepdims=True), out=x)
        elif name == "elu":
            neg = np.minimum(x, 0.0)
            np.expm1(neg, out=neg)
            np.maximum(x, 0.0, out=x)
            np.add(x, neg, out=x)
        elif name not in ("", "linear"):  # pragma: no cover - the parser refuses other names
            raise InputError(f"unknown activation {name!r}")
        return x


class _LstmOp:
    """An LSTM over rows: the input projection as one product, the recurrence step by step.

    The state lives in the processor's :class:`~kelly.ml.runtime.LSTM` layer; it is read at
    the start of a call and written back at the end.
    """

    def __init__(self, layer: LSTM, rows: int) -> None:
        h = layer.out_size
        self.layer = layer
        self.h = h
        order = np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]  # i, f, c, o -> i, f, o, c
        scale = np.ones(4 * h, dtype=np.float32)
        scale[:3 * h] = 0.5  # σ(z) = ½·tanh(z/2) + ½: the sigmoid gates' weights halved
        self.wx = np.ascontiguousarray(np.asarray(layer.W, dtype=np.float32)[:, order] * scale)
        self.u = np.ascontiguousarray(np.asarray(layer.U, dtype=np.float32)[:, order] * scale)
        self.b = np.asarray(layer.b, dtype=np.float32)[order] * scale
        self.gx = np.zeros((rows, 4 * h), dtype=np.float32)
        self.out = np.zeros((rows, h), dtype=np.float32)
        self.h0 = np.zeros(h, dtype=np.float32)
        # [i, f, o, c̃ | c]: [i, f] ⊙ [c̃, c] gives both products of the cell update in one call
        self.gates_c = np.zeros(5 * h, dtype=np.float32)
        self.prod = np.zeros(2 * h, dtype=np.float32)
        self.tmp = np.zeros(h, dtype=np.float32)
        self.half = np.array(0.5, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, h = len(x), self.h
        gx = self.gx[:n]
        np.dot(x, self.wx, out=gx)
        np.add(gx, self.b, out=gx)
        out = self.out[:n]
        h_prev, c0 = self.layer.state
        self.h0[:] = h_prev
        gc, prod, tmp, half, u = self.gates_c, self.prod, self.tmp, self.half, self.u
        g = gc[:4 * h]
        ifo, i_f, o, cand_c, c = g[:3 * h], g[:2 * h], g[2 * h:3 * h], gc[3 * h:], gc[4 * h:]
        c[:] = c0
        p0, p1 = prod[:h], prod[h:]
        dot, add, tanh, mul = np.dot, np.add, np.tanh, np.multiply
        prev = self.h0
        for t in range(n):
            dot(prev, u, g)
            add(g, gx[t], g)
            tanh(g, g)
            mul(ifo, half, ifo)
            add(ifo, half, ifo)
            mul(i_f, cand_c, prod)  # [i·c̃, f·c]
            add(p0, p1, c)          # c = f·c + i·c̃
            tanh(c, tmp)
            prev = out[t]
            mul(o, tmp, prev)       # h = o·tanh(c)
        if n:
            self.layer.set_state(out[n - 1], c)
        return out


class _ChunkedModel:
    """One loaded network over rows: its layers as chunk operations."""

    def __init__(self, model: Model, rows: int) -> None:
        self.ops = []
        for layer in model.layers:
            if isinstance(layer, Dense):
                self.ops.append(_DenseOp(layer, rows))
            elif isinstance(layer, Activation):
                self.ops.append(_ActivationOp(layer))
            elif isinstance(layer, LSTM):
                self.ops.append(_LstmOp(layer, rows))
            else:
                raise TypeError(layer.kind)  # the caller runs this model row by row instead

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for op in self.ops:
            x = op(x)
        return x


class _RowByRow:
    """A network's one-step function (a fallback heuristic, or a model with other layer types) over rows."""

    def __init__(self, step, out_size: int, rows: int) -> None:
        self.step = step
        self.out = np.zeros((rows, out_size), dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.out[:len(x)]
        step = self.step
        for t in range(len(x)):
            out[t] = step(x[t])
        return out


class ChunkedPipeline:
    """The processor's pipeline (recognizer, melody, groove, harmony, dynamics) over a chunk of frames.

    Built from what the processor holds now (each network live or on its fallback);
    build a new one after the processor loads or switches a model.

    Parameters
    ----------
    processor : kelly.ml.processor.MultiModelProcessor
        Its live networks' weights are read (not copied into new state: the LSTM state stays
        in the processor's layers).
    max_rows : int in [1, MAX_CHUNK]
        The largest chunk :meth:`run` takes.
    """

    def __init__(self, processor, max_rows: int = MAX_CHUNK) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_CHUNK:
            raise InputError(f"max_rows must be a whole number from 1 to {MAX_CHUNK}, got {max_rows!r}")
        self.max_rows = max_rows
        self.live: dict[str, bool] = {}
        self._nets = {}
        for key in MODEL_KEYS:
            model = processor.model(key) if processor.is_live(key) else None
            self.live[key] = model is not None
            net = None
            if model is not None:
                try:
                    net = _ChunkedModel(model, max_rows)
                except TypeError:
                    net = _RowByRow(model.forward, SPECS[key].out_size, max_rows)
            self._nets[key] = net or _RowByRow(fallbacks.FALLBACKS[key], SPECS[key].out_size, max_rows)
        self._hp_in = np.zeros((max_rows, schema.HARMONY_CONTEXT_DIM), dtype=np.float32)
        self._de_in = np.zeros((max_rows, schema.DYNAMICS_CONTEXT_DIM), dtype=np.float32)

    def run(self, mels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The pipeline over ``mels`` [shape=(T, 128), float32, T ≤ max_rows], frame after frame.

        Returns ``(embedding [T, 64], notes [T, 128], chords [T, 64], groove [T, 32],
        expression [T, 16])``: views of internal buffers, valid until the next call. Row
        ``t`` equals what :meth:`~kelly.ml.processor.MultiModelProcessor.pipeline_step`
        returns for frame ``t`` after the frames before it; the recurrent networks' state
        is left as that path would leave it.
        """
        n = len(mels)
        if not 1 <= n <= self.max_rows:
            raise InputError(f"a chunk holds 1 to {self.max_rows} frames, got {n}")
        nets = self._nets
        emb = nets["emotionrecognizer"](mels)
        notes = nets["melodytransformer"](emb)
        groove = nets["groovepredictor"](emb)
        hp_in = self._hp_in[:n]
        hp_in[:, :schema.EMBED_DIM] = emb
        hp_in[:, schema.EMBED_DIM:] = mels[:, :schema.HARMONY_CONTEXT_DIM - schema.EMBED_DIM]
        chords = nets["harmonypredictor"](hp_in)
        de_in = self._de_in[:n]
        de_in[:] = emb[:, :schema.DYNAMICS_CONTEXT_DIM]
        expression = nets["dynamicsengine"](de_in)
        return emb, notes, chords, groove, expression
