"""A torch-free, RTNeural-compatible inference runtime in numpy.

Why this exists
---------------
Composing and real-time use must not need torch. The original plugin ran its models
with RTNeural (C++), one time step per ``forward()`` call with state kept between calls
until ``reset()``. This module follows the same design and the same file format:

* a model is an ordered list of layers, one small class per layer type
  (:class:`Dense`, :class:`LSTM`, :class:`GRU`, :class:`Activation`,
  :class:`BatchNorm`, :class:`PReLU`), loaded from RTNeural's Keras-style JSON
  (``in_shape``, ``layers[].type/shape/weights/activation``; see
  ``docs/ml.md`` and the reference notes §12);
* inference is stateful and single-step; :meth:`Model.reset` clears the recurrent state;
* the semantics are RTNeural's: dense ``W`` is (in × out); LSTM gates i, f, c, o with one
  summed bias; GRU gates z, r, n with separate input and recurrent biases
  (``n = tanh(Wn·x + b0n + r ⊙ (Un·h + b1n))``, ``h = (1 − z) ⊙ n + z ⊙ h_prev``).
  RTNeural's own test vectors are reproduced to better than 1e-6 (``tests/ml``).

How it is made fast
-------------------
A batch-1 step of a small network is dominated by per-call overhead, not arithmetic,
so :class:`Model` compiles its layers once into a flat list of numpy calls on
preallocated float32 buffers:

* every vector lives in a buffer with a constant ``1.0`` after it, and every weight
  matrix carries its bias as an extra row, so a dense layer is **one** ``np.dot(x1, W,
  out=y)`` with no separate bias add;
* an LSTM keeps ``[x, h, 1]`` in one buffer, so all four gates come from **one** matrix
  product; its gate columns are reordered to i, f, o, c and the sigmoid gates are
  pre-scaled by ½ so that one ``tanh`` over all gates followed by ``·½ + ½`` gives
  ``σ(z) = ½·tanh(z/2) + ½`` (the same identity turns a dense layer's sigmoid into three
  in-place ops);
* a dense layer after an LSTM reads the LSTM's ``[h, 1]`` in place (no copy) and a dense
  layer before an LSTM writes straight into the LSTM's input slot;
* activations run in place with ``out=``.

The original (unscaled, unfused) weights stay available on each layer for inspection
and export.
"""

from __future__ import annotations

import json
import math
import os
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from kelly import fileio
from kelly.errors import FileFormatError, KellyError, ModelError

#: Layer types this runtime reads (RTNeural's dynamic parser also knows conv1d/conv2d
#: and batchnorm2d, which the five Kelly networks do not use).
LAYER_TYPES = ("dense", "time-distributed-dense", "lstm", "gru", "activation", "batchnorm", "prelu")
#: Activation names RTNeural's ``createActivation`` understands; "" (or no ``activation``
#: key) means none. Any other name, ``null`` or a non-string is refused, as RTNeural's
#: ``parseJson`` does (a name it does not know gives it a null layer; ``null`` throws).
ACTIVATION_NAMES = ("", "tanh", "relu", "sigmoid", "softmax", "elu")

Step = Callable[[], Any]

#: Byte alignment of fused weight matrices and buffers. numpy only guarantees 16 bytes;
#: matrix-vector products here stream ~4.6 MB of weights per pipeline step, and with
#: 64-byte (cache-line) aligned rows they measured ~6% faster than with 16-byte alignment.
ALIGN = 64

#: Largest model file (RTNeural JSON, ONNX or checkpoint) any loader reads. The biggest
#: of the five networks (melodytransformer.json) is about 13.5 MB.
MAX_MODEL_BYTES = 32 * 1024 * 1024
#: Largest vector a model may declare (input size, any layer's output size).
MAX_WIDTH = 16_384
#: Most layers in one RTNeural JSON file.
MAX_LAYERS = 256
#: Most numbers one RTNeural JSON file may declare (the five networks hold 1.15 M in all).
MAX_PARAMS = 4_000_000
#: Longest integer literal accepted in a model file (larger values are not usable weights).
MAX_INT_CHARS = 32
#: Deepest nesting of arrays and objects in an RTNeural JSON file, checked on the bytes
#: before parsing. A file needs 6 levels (object, layers, layer, weights, matrix, row;
#: RTNeural's 4-D conv2d kernels would need 8).
MAX_JSON_DEPTH = 32
#: The largest float32; a weight beyond it would become infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: :meth:`Model.check_bounded` refuses a model whose values could exceed this.
BOUND_LIMIT = 1e30

#: ``kelly runtime`` input limits: bytes, non-blank rows and characters per line.
MAX_CSV_BYTES = 32 * 1024 * 1024
MAX_CSV_ROWS = 1_000_000
MAX_CSV_LINE = 1024 * 1024


def aligned_empty(shape: int | tuple[int, ...], dtype=np.float32, align: int = ALIGN) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``align``-byte boundary."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    offset = (-raw.__array_interface__["data"][0]) % align
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


def aligned_copy(arr: np.ndarray, dtype=np.float32) -> np.ndarray:
    out = aligned_empty(arr.shape, dtype)
    out[...] = arr
    return out


class Layer:
    """Base class: a layer knows its sizes, its JSON position and how to reset its state."""

    kind = "layer"
    #: True for recurrent layers, which own their input and state buffers.
    recurrent = False

    def __init__(self, in_size: int, out_size: int, index: int) -> None:
        self.in_size = int(in_size)
        self.out_size = int(out_size)
        #: 1-based position in the JSON ``layers`` array (for error messages).
        self.index = int(index)

    def reset(self) -> None:
        """Clear the recurrent state (a no-op for stateless layers)."""

    def param_count(self) -> int:
        """Numbers stored in the JSON for this layer."""
        return 0

    def bounds(self, input_bound: float) -> tuple[float, float]:
        """``(peak, out)``: bounds on ``|v|`` for every value computed inside this layer and
        for its output, given ``|x| <= input_bound`` (inf when unbounded)."""
        return input_bound, input_bound

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_size}→{self.out_size})"


class Dense(Layer):
    """``y = x·W + b`` with ``W`` of shape (in, out), as RTNeural and Keras store it."""

    kind = "dense"

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, index: int, dtype=np.float32) -> None:
        super().__init__(weight.shape[0], weight.shape[1], index)
        self.weight = np.asarray(weight, dtype=dtype)
        self.bias = None if bias is None else np.asarray(bias, dtype=dtype)
        # Bias folded in as the last row: the input buffer always ends with a constant 1.
        self._w1 = aligned_empty((self.in_size + 1, self.out_size), dtype)
        self._w1[:-1] = self.weight
        self._w1[-1] = 0.0 if bias is None else self.bias
        self._prescaled = False

    def param_count(self) -> int:
        return self.weight.size + (0 if self.bias is None else self.bias.size)

    def prescale_half(self) -> None:
        """Halve the fused weights so a following sigmoid can be computed through tanh."""
        if not self._prescaled:
            self._w1 *= 0.5
            self._prescaled = True

    def output_bound(self, input_bound: float) -> float:
        """A bound on ``|y|`` given ``|x| <= input_bound`` (inf when the input is unbounded)."""
        if not math.isfinite(input_bound):
            return math.inf
        with np.errstate(over="ignore", invalid="ignore"):  # huge weights: the bound is inf, quietly
            col = np.abs(self.weight.astype(np.float64)).sum(axis=0) * input_bound
            if self.bias is not None:
                col = col + np.abs(self.bias.astype(np.float64))
            return float(col.max())

    def bounds(self, input_bound: float) -> tuple[float, float]:
        out = self.output_bound(input_bound)
        return out, out

    def step(self, src1: np.ndarray, dst: np.ndarray) -> Step:
        """The one call that computes this layer from ``[x, 1]`` into ``dst``."""
        return partial(np.dot, src1, self._w1, dst)


class LSTM(Layer):
    """Stateful LSTM with RTNeural's layout: ``W`` (in × 4H), ``U`` (H × 4H), ``b`` (4H), gates i, f, c, o."""

    kind = "lstm"
    recurrent = True

    def __init__(self, W: np.ndarray, U: np.ndarray, b: np.ndarray, index: int, dtype=np.float32) -> None:
        hidden = U.shape[0]
        super().__init__(W.shape[0], hidden, index)
        self.W = np.asarray(W, dtype=dtype)
        self.U = np.asarray(U, dtype=dtype)
        self.b = np.asarray(b, dtype=dtype)
        n, h = self.in_size, hidden
        # Columns reordered i, f, c, o → i, f, o, c so the three sigmoid gates are contiguous.
        order = np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]
        w1 = np.concatenate([self.W, self.U, self.b[None, :]], axis=0)[:, order]
        w1[:, :3 * h] *= 0.5  # σ(z) = ½·tanh(z/2) + ½
        self._w1 = aligned_copy(w1, dtype)
        self._xh1 = np.zeros(n + h + 1, dtype=dtype)  # [x, h, 1]
        self._xh1[-1] = 1.0
        # [i, f, o, c̃ | c]: the cell state sits right after the candidate so that
        # [i, f] ⊙ [c̃, c] gives both products of the cell update in one call.
        self._gates_c = np.zeros(5 * h, dtype=dtype)
        self._gates = self._gates_c[: 4 * h]
        self._c = self._gates_c[4 * h:]
        self._prod = np.zeros(2 * h, dtype=dtype)
        self._tmp = np.zeros(h, dtype=dtype)

    def param_count(self) -> int:
        return self.W.size + self.U.size + self.b.size

    def bounds(self, input_bound: float) -> tuple[float, float]:
        # Gate pre-activations from |x| <= input_bound and |h| <= 1; h = o·tanh(c) stays in [-1, 1].
        if not math.isfinite(input_bound):
            return math.inf, 1.0
        pre = (np.abs(self.W.astype(np.float64)).sum(axis=0) * input_bound
               + np.abs(self.U.astype(np.float64)).sum(axis=0) + np.abs(self.b.astype(np.float64)))
        return float(pre.max()), 1.0

    @property
    def input_slot(self) -> np.ndarray:
        return self._xh1[: self.in_size]

    def _slot_view1(self) -> np.ndarray:
        """``input_slot`` plus one element, shaped like a ``[v, 1]`` buffer for the compiler."""
        return self._xh1[: self.in_size + 1]

    @property
    def output1(self) -> np.ndarray:
        """``[h, 1]``: the hidden state followed by the constant 1 (read by the next dense layer)."""
        return self._xh1[self.in_size:]

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the hidden and cell state ``(h, c)``."""
        return self.output1[:-1].copy(), self._c.copy()

    def set_state(self, h: np.ndarray, c: np.ndarray) -> None:
        self.output1[:-1] = h
        self._c[:] = c

    def reset(self) -> None:
        self._xh1[self.in_size:-1] = 0.0
        self._c[:] = 0.0

    def steps(self) -> list[Step]:
        h = self.out_size
        g, gc, prod = self._gates, self._gates_c, self._prod
        ifo, i_f, o, cand_c = g[:3 * h], g[:2 * h], g[2 * h:3 * h], gc[3 * h:]
        c, tmp, hid = self._c, self._tmp, self._xh1[self.in_size:-1]
        half = np.array(0.5, dtype=g.dtype)  # 0-d array constants: the cheapest ufunc operand
        return [
            partial(np.dot, self._xh1, self._w1, g),  # all four gates, bias included
            partial(np.tanh, g, g),
            partial(np.multiply, ifo, half, ifo),  # σ(z) = ½·tanh(z/2) + ½ (weights pre-halved)
            partial(np.add, ifo, half, ifo),
            partial(np.multiply, i_f, cand_c, prod),  # [i·c̃, f·c]
            partial(np.add, prod[:h], prod[h:], c),  # c = f·c + i·c̃
            partial(np.tanh, c, tmp),
            partial(np.multiply, o, tmp, hid),  # h = o·tanh(c)
        ]


class GRU(Layer):
    """Stateful GRU with RTNeural's layout: ``W`` (in × 3H), ``U`` (H × 3H), ``b`` (2 × 3H), gates z, r, n.

    ``b[0]`` is the input bias and ``b[1]`` the recurrent bias (Keras ``reset_after=True``,
    which is also PyTorch's formulation):
    ``n = tanh(Wn·x + b0n + r ⊙ (Un·h + b1n))``, ``h = (1 − z) ⊙ n + z ⊙ h_prev``.
    """

    kind = "gru"
    recurrent = True

    def __init__(self, W: np.ndarray, U: np.ndarray, b: np.ndarray, index: int, dtype=np.float32) -> None:
        hidden = U.shape[0]
        super().__init__(W.shape[0], hidden, index)
        self.W = np.asarray(W, dtype=dtype)
        self.U = np.asarray(U, dtype=dtype)
        self.b = np.asarray(b, dtype=dtype)
        h = hidden
        wx = np.concatenate([self.W, self.b[0][None, :]], axis=0)
        wh = np.concatenate([self.U, self.b[1][None, :]], axis=0)
        wx[:, :2 * h] *= 0.5
        wh[:, :2 * h] *= 0.5
        self._wx1 = aligned_copy(wx, dtype)
        self._wh1 = aligned_copy(wh, dtype)
        self._x1 = np.zeros(self.in_size + 1, dtype=dtype)
        self._x1[-1] = 1.0
        self._h1 = np.zeros(h + 1, dtype=dtype)
        self._h1[-1] = 1.0
        self._gx = np.zeros(3 * h, dtype=dtype)
        self._gh = np.zeros(3 * h, dtype=dtype)
        self._n = np.zeros(h, dtype=dtype)

    def param_count(self) -> int:
        return self.W.size + self.U.size + self.b.size

    def bounds(self, input_bound: float) -> tuple[float, float]:
        if not math.isfinite(input_bound):
            return math.inf, 1.0
        b = np.abs(self.b.astype(np.float64))
        gx = np.abs(self.W.astype(np.float64)).sum(axis=0) * input_bound + b[0]
        gh = np.abs(self.U.astype(np.float64)).sum(axis=0) + b[1]
        return float((gx + gh).max()), 1.0

    @property
    def input_slot(self) -> np.ndarray:
        return self._x1[:-1]

    def _slot_view1(self) -> np.ndarray:
        return self._x1

    @property
    def output1(self) -> np.ndarray:
        return self._h1

    def reset(self) -> None:
        self._h1[:-1] = 0.0

    def steps(self) -> list[Step]:
        h = self.out_size
        gx, gh, n, hid = self._gx, self._gh, self._n, self._h1[:-1]
        zr, z, r = gx[:2 * h], gx[:h], gx[h:2 * h]
        half = np.array(0.5, dtype=gx.dtype)
        return [
            partial(np.dot, self._x1, self._wx1, gx),
            partial(np.dot, self._h1, self._wh1, gh),
            partial(np.add, zr, gh[:2 * h], zr),
            partial(np.tanh, zr, zr),
            partial(np.multiply, zr, half, zr),
            partial(np.add, zr, half, zr),
            partial(np.multiply, r, gh[2 * h:], n),
            partial(np.add, n, gx[2 * h:], n),
            partial(np.tanh, n, n),
            partial(np.subtract, hid, n, hid),
            partial(np.multiply, hid, z, hid),
            partial(np.add, hid, n, hid),
        ]


class Activation(Layer):
    """An element-wise activation applied in place: tanh, relu, sigmoid, softmax, elu or linear."""

    kind = "activation"

    def __init__(self, name: str, size: int, index: int) -> None:
        super().__init__(size, size, index)
        self.name = name

    def bounds(self, input_bound: float) -> tuple[float, float]:
        if self.name in ("tanh", "sigmoid", "softmax"):
            return input_bound, 1.0
        if self.name == "elu":
            return input_bound, max(input_bound, 1.0)
        return input_bound, input_bound

    def steps(self, x: np.ndarray, *, prescaled: bool = False, bound: float = math.inf) -> list[Step]:
        """In-place steps on ``x``.

        ``prescaled`` means the producing dense layer already halved its output (for a
        sigmoid); ``bound`` is a proven bound on ``|x|`` (used by softmax).
        """
        name = self.name
        half, zeros = np.array(0.5, dtype=x.dtype), np.zeros_like(x)
        if name in ("", "linear"):
            return []
        if name == "tanh":
            return [partial(np.tanh, x, x)]
        if name == "relu":
            # fmax against a zero vector: np.maximum takes a slow NaN-aware path (4x slower here).
            return [partial(np.fmax, x, zeros, x)]
        if name == "sigmoid":
            head = [] if prescaled else [partial(np.multiply, x, half, x)]
            return head + [partial(np.tanh, x, x), partial(np.multiply, x, half, x),
                           partial(np.add, x, half, x)]
        if name == "softmax":
            ones = np.ones_like(x)
            if bound + math.log(x.size) < 80.0:
                # |logits| < 80 − ln(n) is guaranteed by the weights, so neither exp nor the
                # sum of n exps can overflow float32 (e^88.7) and the usual max subtraction
                # (a slow reduction) is unnecessary.
                def softmax() -> None:
                    np.exp(x, x)
                    np.divide(x, np.dot(x, ones), x)
            else:
                def softmax() -> None:
                    np.subtract(x, x.max(), x)
                    np.exp(x, x)
                    np.divide(x, np.dot(x, ones), x)
            return [softmax]
        if name == "elu":
            neg = np.zeros_like(x)
            return [partial(np.fmin, x, zeros, neg), partial(np.expm1, neg, neg),
                    partial(np.fmax, x, zeros, x), partial(np.add, x, neg, x)]
        raise ModelError(f"unknown activation {name!r}")  # guarded at parse time

    def __repr__(self) -> str:
        return f"Activation({self.name}, {self.in_size})"


class BatchNorm(Layer):
    """Inference-time batch normalisation folded to ``x·scale + shift``."""

    kind = "batchnorm"

    def __init__(self, gamma, beta, mean, var, epsilon: float, index: int, dtype=np.float32) -> None:
        super().__init__(len(mean), len(mean), index)
        self.gamma, self.beta, self.mean, self.var, self.epsilon = gamma, beta, mean, var, float(epsilon)
        scale = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + self.epsilon)
        self._scale = scale.astype(dtype)
        self._shift = (np.asarray(beta, dtype=np.float64) - np.asarray(mean, dtype=np.float64) * scale).astype(dtype)

    def param_count(self) -> int:
        return 4 * self.in_size

    def bounds(self, input_bound: float) -> tuple[float, float]:
        out = float(np.abs(self._scale.astype(np.float64)).max()) * input_bound \
            + float(np.abs(self._shift.astype(np.float64)).max())
        return out, out

    def steps(self, x: np.ndarray) -> list[Step]:
        return [partial(np.multiply, x, self._scale, x), partial(np.add, x, self._shift, x)]


class PReLU(Layer):
    """``max(x, 0) + α ⊙ min(x, 0)`` with one α per channel (or one shared)."""

    kind = "prelu"

    def __init__(self, alpha: np.ndarray, size: int, index: int, dtype=np.float32) -> None:
        super().__init__(size, size, index)
        self.alpha = np.broadcast_to(np.asarray(alpha, dtype=dtype), (size,)).copy()

    def param_count(self) -> int:
        return self.alpha.size

    def bounds(self, input_bound: float) -> tuple[float, float]:
        out = max(1.0, float(np.abs(self.alpha.astype(np.float64)).max())) * input_bound
        return out, out

    def steps(self, x: np.ndarray) -> list[Step]:
        neg, zeros = np.zeros_like(x), np.zeros_like(x)
        return [partial(np.fmin, x, zeros, neg), partial(np.multiply, neg, self.alpha, neg),
                partial(np.fmax, x, zeros, x), partial(np.add, x, neg, x)]


class Model:
    """A sequential model: layers run in order, one time step per :meth:`forward` call.

    Parameters
    ----------
    in_size : int > 0
        Input vector length.
    layers : sequence of Layer
        Each layer's ``in_size`` must equal the previous layer's ``out_size``.
    name : str
        Used in error messages (usually the file name).
    dtype : numpy float dtype
        ``float32`` (default, what RTNeural uses) or ``float64``.
    """

    def __init__(self, in_size: int, layers: Sequence[Layer], *, name: str = "model", dtype=np.float32) -> None:
        if not layers:
            raise ModelError(f"{name}: the model has no layers")
        self.in_size = int(in_size)
        self.layers = list(layers)
        self.name = name
        self.dtype = np.dtype(dtype)
        self.out_size = self.layers[-1].out_size
        self._steps: list[Step] = []
        self._compile()
        self._run_steps = _straight_line(self._steps)

    # -- compilation ------------------------------------------------------------------

    def _new1(self, n: int) -> np.ndarray:
        buf = aligned_empty(n + 1, self.dtype)
        buf[:] = 0.0
        buf[-1] = 1.0
        return buf

    def _compile(self) -> None:
        """Wire the layers onto shared buffers and flatten them into one list of calls.

        Walks the layers once, keeping track of where the current vector lives:

        * ``cur1``: a buffer ``[v, 1]`` holding it (None before the first layer: the
          model input), and whether that buffer is a recurrent layer's state (then it
          must not be modified in place);
        * ``pending``: a dense layer whose output location is not chosen yet. It is
          chosen by what comes next: a recurrent layer's input slot, a fresh buffer for
          in-place activations, or the model output.

        It also tracks a bound on ``|v|`` (after tanh, sigmoid, softmax or a recurrent
        layer the values lie in [-1, 1]) so that a softmax can skip its max subtraction
        when the weights prove that ``exp`` cannot overflow.
        """
        steps = self._steps
        layers = self.layers
        n = self.in_size
        cur1: np.ndarray | None = None
        cur_is_state = False
        pending: Dense | None = None
        pending_src: np.ndarray | None = None
        fresh_dense: Dense | None = None  # dense that produced cur1, with nothing run since
        bound = math.inf
        self._input_slot: np.ndarray | None = None
        self._input1: np.ndarray | None = None  # the [x, 1] input buffer, when the model owns one

        def land(dst: np.ndarray) -> None:
            """Make the current vector arrive in ``dst`` (length n)."""
            nonlocal pending
            if pending is not None:
                steps.append(pending.step(pending_src, dst))
                pending = None
            elif cur1 is None:
                self._input_slot = dst
            elif not (cur1[:-1].__array_interface__["data"][0] == dst.__array_interface__["data"][0]):
                steps.append(partial(np.copyto, dst, cur1[:-1]))

        def next_recurrent(pos: int) -> Layer | None:
            """The recurrent layer that follows only in-place layers after ``pos``, if any."""
            for later in layers[pos + 1:]:
                if later.recurrent:
                    return later
                if isinstance(later, Dense):
                    return None
            return None

        def own_buffer(pos: int) -> np.ndarray:
            """A buffer whose ``[:-1]`` holds the current vector and may be changed in place."""
            nonlocal cur1, cur_is_state, fresh_dense
            if pending is not None or cur1 is None or cur_is_state:
                producer = pending
                is_model_input = cur1 is None and pending is None
                target = next_recurrent(pos)
                # Write straight into the next recurrent layer's input slot when possible;
                # the slot's following element is not a constant 1, but only dense layers
                # read that 1 and none comes before the recurrent layer.
                buf = self._new1(n) if target is None else target._slot_view1()
                land(buf[:-1])
                if is_model_input and target is None:
                    self._input1 = buf
                cur1, cur_is_state, fresh_dense = buf, False, producer
            return cur1

        for pos, layer in enumerate(layers):
            if layer.in_size != n:
                raise ModelError(f"{self.name}: layer {layer.index} ({layer.kind}): input size {layer.in_size}, "
                                 f"but the previous layer gives {n}")
            if layer.recurrent:
                land(layer.input_slot)
                steps.extend(layer.steps())
                cur1, cur_is_state, fresh_dense = layer.output1, True, None
                bound = 1.0
            elif isinstance(layer, Dense):
                if pending is not None or cur1 is None:
                    own_buffer(pos - 1)
                pending, pending_src = layer, cur1
                fresh_dense = None
                bound = layer.output_bound(bound)
            else:
                buf = own_buffer(pos - 1)
                if isinstance(layer, Activation):
                    prescaled = False
                    if layer.name == "sigmoid" and fresh_dense is not None:
                        fresh_dense.prescale_half()
                        prescaled = True
                    steps.extend(layer.steps(buf[:-1], prescaled=prescaled, bound=bound))
                    bound = 1.0 if layer.name in ("tanh", "sigmoid", "softmax") else math.inf
                else:
                    steps.extend(layer.steps(buf[:-1]))
                    bound = math.inf
                fresh_dense = None
            n = layer.out_size
        if pending is None and cur1 is not None and not cur_is_state and cur1[-1] == 1.0 and cur1.size == n + 1:
            self._out1 = cur1  # the last in-place layer's buffer already is the output
        else:
            self._out1 = self._new1(n)
            land(self._out1[:-1])
        if self._input_slot is None:
            raise ModelError(f"{self.name}: internal error: no input slot")  # pragma: no cover
        self._out = self._out1[:-1].view()
        self._out.flags.writeable = False

    # -- running ----------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run one time step and return the output vector.

        The returned array is a read-only view of an internal buffer, overwritten by the
        next call: copy it if you keep it.
        """
        self._input_slot[:] = x
        self._run_steps()
        return self._out

    def step_in_place(self) -> np.ndarray:
        """Run one step on whatever :attr:`input_buffer` holds (no input copy)."""
        self._run_steps()
        return self._out

    @property
    def input_buffer(self) -> np.ndarray:
        """The writable input slot that :meth:`forward` copies into."""
        return self._input_slot

    @property
    def output1(self) -> np.ndarray:
        """The output buffer ``[y, 1]`` (writable base of :meth:`forward`'s result)."""
        return self._out1

    def program(self, *, read_from: np.ndarray | None = None) -> list[Step]:
        """This model's compiled steps, for chaining several models into one function.

        With ``read_from`` (a ``[x, 1]`` buffer, for example another model's
        :attr:`output1`) the first dense layer reads its input there instead of from
        :attr:`input_buffer`, which saves a copy between chained models.

        Raises
        ------
        ModelError
            If the model does not start with a dense layer reading its own input buffer.
        """
        steps = list(self._steps)
        if read_from is None:
            return steps
        first = steps[0] if steps else None
        if self._input1 is None or not (isinstance(first, partial) and first.func is np.dot
                                        and first.args[0] is self._input1):
            raise ModelError(f"{self.name}: only a model that starts with a dense layer can read another "
                             "model's output in place")
        if read_from.shape != self._input1.shape or read_from.dtype != self.dtype:
            raise ModelError(f"{self.name}: read_from must be a {self.dtype} buffer of {self._input1.size} values")
        steps[0] = partial(np.dot, read_from, *first.args[1:])
        return steps

    def run(self, xs: Iterable[np.ndarray]) -> np.ndarray:
        """Run a sequence (T × in) from the current state; returns a new (T × out) array."""
        rows = [self.forward(x).copy() for x in xs]
        return np.array(rows, dtype=self.dtype).reshape(len(rows), self.out_size)

    def reset(self) -> None:
        """Clear every recurrent state, as RTNeural's ``Model::reset()``."""
        for layer in self.layers:
            layer.reset()

    # -- inspection -------------------------------------------------------------------

    def param_count(self) -> int:
        return sum(layer.param_count() for layer in self.layers)

    def signature(self) -> list[tuple[str, int, int, str, int]]:
        """Canonical layer list: (kind, in, out, activation, json index), an activation merged into its dense."""
        sig: list[tuple[str, int, int, str, int]] = []
        for layer in self.layers:
            if isinstance(layer, Activation) and sig and sig[-1][0] == "dense" and not sig[-1][3]:
                kind, n_in, n_out, _, idx = sig[-1]
                sig[-1] = (kind, n_in, n_out, "" if layer.name == "linear" else layer.name, idx)
            else:
                kind = "dense" if isinstance(layer, Dense) else layer.kind
                name = layer.name if isinstance(layer, Activation) else ""
                sig.append((kind, layer.in_size, layer.out_size, name, layer.index))
        return sig

    def check_spec(self, spec: Any) -> None:
        """Raise :class:`ModelError` naming the layer if this model does not match ``spec``.

        ``spec`` is a :class:`kelly.ml.specs.ModelSpec`.
        """
        _check_signature(self.signature(), self.in_size, spec, self.name)

    def _layer_bounds(self, input_bound: float) -> list[tuple[float, Layer]]:
        """Per layer, a bound on ``|v|`` for every value it computes (inf when unbounded or NaN)."""
        b, out = float(input_bound), []
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in self.layers:
                inner, b = layer.bounds(b)
                top = max(inner, b)
                if top != top:  # NaN from inf·0
                    top = b = math.inf
                out.append((top, layer))
        return out

    def value_bound(self, input_bound: float = 1.0) -> tuple[float, Layer]:
        """The largest ``|v|`` any value computed in a step can reach when ``|x| <= input_bound``.

        An interval bound from the weights (sums of absolute values), valid for every
        step whatever the recurrent state. Returns ``(bound, the first layer reaching it)``.
        """
        peak, where = float(input_bound), self.layers[0]
        for top, layer in self._layer_bounds(input_bound):
            if top > peak:
                peak, where = top, layer
        return peak, where

    def check_bounded(self, input_bound: float = 1.0, limit: float = BOUND_LIMIT) -> None:
        """Refuse weights that could overflow float32 for inputs with ``|x| <= input_bound``.

        The processor calls this at load, so a step on in-range inputs can never produce
        an infinite or NaN value (nor numpy's overflow warnings); the hot path stays
        unchecked.

        Raises
        ------
        ModelFileError
            Naming the file and the first layer where the values could grow too large.
        """
        for top, layer in self._layer_bounds(input_bound):
            if not top <= limit:
                raise ModelFileError(f"{self.name}: layer {layer.index} ({layer.kind}): weights too large: values "
                                     f"could reach {top:.3g} for inputs in [-{input_bound:g}, {input_bound:g}] "
                                     f"(at most {limit:g} allowed; float32 overflows at {FLOAT32_MAX:.3g})")

    def recurrent_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.recurrent]

    def __repr__(self) -> str:
        return f"Model({self.name!r}, in={self.in_size}, layers={self.layers})"


def _straight_line(steps: Sequence[Step]) -> Callable[[], None]:
    """Turn a list of calls into one function with the calls written out one per line.

    Each ``partial(f, a, b, out)`` becomes the line ``f3(a3_0, a3_1, a3_2)`` of a
    generated function whose callables and arrays are bound as default arguments (fast
    local lookups), so a step costs only the numpy call itself: no loop, no
    ``partial.__call__``. This is the same technique ``collections.namedtuple`` and
    ``dataclasses`` use; the generated source only ever contains these generated names.
    """
    env: dict[str, Any] = {}
    lines: list[str] = []
    for k, step in enumerate(steps):
        if isinstance(step, partial) and not step.keywords:
            func, args = step.func, step.args
        else:
            func, args = step, ()
        env[f"f{k}"] = func
        names = []
        for j, arg in enumerate(args):
            env[f"a{k}_{j}"] = arg
            names.append(f"a{k}_{j}")
        lines.append(f"    f{k}({', '.join(names)})")
    params = ", ".join(f"{name}={name}" for name in env)
    source = f"def run_steps({params}):\n" + ("\n".join(lines) or "    pass") + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<kelly.ml.runtime steps>", "exec"), dict(env), namespace)  # noqa: S102
    return namespace["run_steps"]

# ---------------------------------------------------------------------------------------
# Limits and safe reading
# ---------------------------------------------------------------------------------------

class ModelFileError(ModelError, FileFormatError):
    """A model file that cannot be read or understood.

    Both a :class:`~kelly.errors.ModelError` and a :class:`~kelly.errors.FileFormatError`;
    the message starts with the file name.
    """


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def read_regular_file(path: str | os.PathLike, *, max_bytes: int, what: str = "model file",
                      error: type[Exception] = ModelFileError) -> bytes:
    """:func:`kelly.fileio.read_regular_file` raising ``error`` (ModelFileError by default)."""
    try:
        return fileio.read_regular_file(path, what=what, max_bytes=max_bytes, error=error)
    except ValueError:  # an embedded NUL byte in the name
        raise error(f"{path!r}: not a valid file name") from None


def read_model_file(path: str | os.PathLike, *, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a model file (regular file, at most :data:`MAX_MODEL_BYTES`)."""
    return read_regular_file(path, max_bytes=max_bytes, what="model file")


class _Refused(Exception):
    """Raised by the JSON parse hooks; becomes a ModelFileError naming the file."""


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_CHARS:
        raise _Refused(f"an integer with {len(text.lstrip('-'))} digits is too large to be a size or a weight")
    return int(text)


def _parse_constant(text: str) -> Any:
    raise _Refused(f"{text} is not allowed (every weight must be a finite number)")


# Bytes that matter for nesting: quotes and brackets (everything else is deleted by translate).
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}')
_DEPTH_CHUNK = 1 << 20


def json_nesting_depth(data: bytes, limit: int | None = None) -> int:
    """How deeply arrays and objects nest in JSON ``data``, found without parsing it.

    Linear and in C/numpy, with bounded memory: escaped backslashes and quotes are dropped
    (``bytes.replace``), everything but quotes and brackets is deleted
    (``bytes.translate``), then brackets between a quote and its partner (inside strings)
    are ignored and the running sum of the others is taken chunk by chunk. On a prefix
    of valid JSON this agrees with the parser, so a file that parses never nests deeper
    than the result. With ``limit`` the result only tells whether the depth exceeds it:
    the scan stops at the first level deeper than ``limit`` (and returns it), and a file
    with no more opening brackets than ``limit`` is not scanned (0 is returned).
    """
    if data.count(b"[") + data.count(b"{") <= (limit if limit is not None else -1):
        return 0  # cannot nest deeper than it has opening brackets (not exact, but <= limit)
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _NOT_STRUCTURE)
    deepest, depth, inside = 0, 0, 0
    for start in range(0, len(structure), _DEPTH_CHUNK):
        arr = np.frombuffer(structure, dtype=np.uint8, count=min(_DEPTH_CHUNK, len(structure) - start),
                            offset=start)
        quote = (arr == ord('"')).view(np.uint8)
        parity = np.bitwise_xor.accumulate(quote) ^ inside  # 1 inside a string (and on its opening quote)
        steps = ((arr == ord("[")) | (arr == ord("{"))).astype(np.int32) - ((arr == ord("]")) | (arr == ord("}")))
        steps[parity.view(bool)] = 0
        levels = np.cumsum(steps, dtype=np.int64)
        if levels.size:
            deepest = max(deepest, depth + int(levels.max()))
            depth += int(levels[-1])
            inside = int(parity[-1])
        if limit is not None and deepest > limit:
            break
    return deepest


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    text = text[0] if text else ""
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_model_json(data: bytes | str, *, name: str = "model") -> Any:
    """Parse the text of an RTNeural JSON file without trusting it.

    The text must be UTF-8 (as for RTNeural's parser; a UTF-8 byte order mark is
    skipped). Nesting deeper than :data:`MAX_JSON_DEPTH` is refused from a scan of the
    bytes before parsing (:func:`json_nesting_depth`), NaN/Infinity literals and
    integers longer than :data:`MAX_INT_CHARS` are refused while parsing, and any other
    failure of the parser becomes the same one-line error.

    Raises
    ------
    ModelFileError
        ``"<name>: not valid JSON (line L, column C): …"`` and similar one-line messages.
    """
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"{name}: more than {_mb(MAX_MODEL_BYTES)}, too large for a model file")
    try:
        if isinstance(data, str):
            text, raw = data, data.encode("utf-8", "surrogatepass")
        else:
            raw = bytes(data)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ModelFileError(f"{name}: not valid JSON (not UTF-8 text: byte {exc.start})") from None
        depth = json_nesting_depth(raw, MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise ModelFileError(f"{name}: not a usable model file: the JSON is nested too deeply (more than "
                                 f"{MAX_JSON_DEPTH} levels of arrays and objects)")
        return json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except KellyError:
        raise
    except _Refused as exc:
        raise ModelFileError(f"{name}: not a usable model file: {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{name}: not a usable model file: the JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except MemoryError:
        raise ModelFileError(f"{name}: not a usable model file: not enough memory to parse it") from None
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the caller gets one line
        raise ModelFileError(f"{name}: not valid JSON ({_first_line(exc)})") from None


# ---------------------------------------------------------------------------------------
# JSON loading
# ---------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number (or a numpy one, for dicts built in Python); never a boolean."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _big(n: int) -> str:
    """An integer for a message, with thousands separators (and without str() of a huge one)."""
    if n.bit_length() <= 96:
        return f"{n:,}"
    return f"{'-' if n < 0 else ''}2^{abs(n).bit_length() - 1} (or more)"


def _brief(value: Any, limit: int = 60) -> str:
    """A short JSON-style description of a parsed value for error messages.

    Never recurses into nested values or formats a long list (either could be slow, or
    too deep for ``repr``).
    """
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return _big(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value) if len(value) <= 40 else json.dumps(value[:40])[:-1] + '..."'
    if isinstance(value, list):
        if len(value) <= 8 and all(v is None or isinstance(v, (int, float, bool, str)) for v in value):
            text = "[" + ", ".join(_brief(v) for v in value) + "]"
            if len(text) <= limit:
                return text
        return f"an array of {len(value):,} value{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _not_number(value: Any) -> str:
    """What a non-number is, for "row 1, column 2 is …"."""
    if isinstance(value, str):
        return "the string " + _brief(value)
    if isinstance(value, (bool, np.bool_)) or value is None:
        return _brief(value)
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return f"a {type(value).__name__}"


def _first_non_number(value: list, two_d: bool) -> tuple[str, Any]:
    """``("row R, column C" or "value V", item)`` of the first item that is not a number."""
    if two_d:
        for r, row in enumerate(value, start=1):
            for c, item in enumerate(row, start=1):
                if not _is_number(item):
                    return f"row {r}, column {c}", item
    else:
        for k, item in enumerate(value, start=1):
            if not _is_number(item):
                return f"value {k}", item
    return "", None  # pragma: no cover - only called when there is one


def _array(value: Any, shape: tuple[int, ...], where: str, what: str) -> np.ndarray:
    """``value`` as a float64 array of exactly ``shape``, checked before numpy sees it.

    Lengths are compared with the declared shape level by level first (a nested list of
    the wrong size is reported without converting it); every item must be a JSON number
    (a string such as ``"0.5"``, ``true``/``false`` or ``null`` is refused, as RTNeural's
    ``get<T>()`` refuses them); and every value must still be finite once cast to
    float32, the precision RTNeural runs at (``1e39`` would become infinite).
    """
    want = "x".join(map(str, shape))

    def wrong(got: str) -> ModelFileError:
        return ModelFileError(f"{where}: weights {what} has shape {got}, expected {want}")

    if isinstance(value, np.ndarray):  # a packed file's array (kelly.ml.packed); JSON never gives one
        if value.dtype.kind != "f":
            raise ModelFileError(f"{where}: weights {what} are {value.dtype}, not floating point")
        if value.shape != shape:
            raise wrong("x".join(map(str, value.shape)) or "scalar")
        return _finite32(value.astype(np.float64), where, what)
    if not isinstance(value, list):
        raise ModelFileError(f"{where}: weights {what} is not a rectangular array of numbers "
                             f"(got {_brief(value)})")
    if len(value) != shape[0]:
        first = value[0] if value and len(shape) > 1 and isinstance(value[0], list) else None
        raise wrong(f"{len(value)}x{len(first)}" if first is not None else str(len(value)))
    two_d = len(shape) == 2
    if two_d:
        cols = shape[1]
        for i, row in enumerate(value, start=1):
            if not isinstance(row, list):
                raise ModelFileError(f"{where}: weights {what} is not a rectangular array of numbers "
                                     f"(row {i} is {_not_number(row)})")
            if len(row) != cols:
                raise wrong(f"{len(value)}x{len(row)}" if i == 1 else f"{len(value)}x{cols} with {len(row)} in row {i}")
    # Item types in one C-level pass (about 13 ms for the largest network); lists are left
    # to the shape check below, which names the extra dimension.
    kinds = set(map(type, chain.from_iterable(value) if two_d else value))
    if not kinds <= {float, int}:
        odd = [k for k in kinds if k is not list and not issubclass(k, (int, float, np.integer, np.floating))
               or issubclass(k, (bool, np.bool_))]
        if odd:
            at, item = _first_non_number(value, two_d)
            raise ModelFileError(f"{where}: weights {what} is not a rectangular array of numbers: {at} is "
                                 f"{_not_number(item)} (every weight must be a JSON number)")
    try:
        arr = np.array(value)
        if arr.dtype.kind == "O" and all(_is_number(v) for v in arr.flat):
            arr = arr.astype(np.float64)
    except OverflowError:  # an integer too large for a double (only from a dict built in Python)
        raise ModelFileError(f"{where}: weights {what} contains NaN, infinite or out-of-range values: a number "
                             f"too large for float32 (which holds at most ±{FLOAT32_MAX:.4g})") from None
    except (TypeError, ValueError, MemoryError, RecursionError):
        raise ModelFileError(f"{where}: weights {what} is not a rectangular array of numbers") from None
    if arr.dtype.kind not in "fiu":
        raise ModelFileError(f"{where}: weights {what} is not a rectangular array of numbers")
    if arr.shape != shape:
        raise wrong("x".join(map(str, arr.shape)) or "scalar")
    return _finite32(arr.astype(np.float64, copy=False), where, what)


def _finite32(arr: np.ndarray, where: str, what: str) -> np.ndarray:
    """``arr`` if every value is finite once cast to float32, else a ModelFileError naming the first."""
    two_d = arr.ndim == 2
    # Finite after the float32 cast, not before: 1e39 is a finite double but float32 inf.
    with np.errstate(over="ignore", invalid="ignore"):
        finite32 = np.isfinite(arr.astype(np.float32))
    if not finite32.all():
        pos = tuple(int(i) for i in np.argwhere(~finite32)[0])
        at = f"row {pos[0] + 1}, column {pos[1] + 1}" if two_d else f"value {pos[0] + 1}"
        raise ModelFileError(f"{where}: weights {what} contains NaN, infinite or out-of-range values: {at} is "
                             f"{float(arr[pos]):.6g}, not finite in float32 (which holds at most "
                             f"±{FLOAT32_MAX:.4g})")
    return arr


def _size(value: Any, where: str, field: str) -> int:
    """The last entry of a shape list: a positive integer no larger than :data:`MAX_WIDTH`.

    Checked on the Python integer, before anything is allocated (so ``10**12`` or
    ``2**70`` is refused here, not by numpy).
    """
    if not isinstance(value, list) or not value or not _is_int(value[-1]) or value[-1] <= 0:
        shown = _brief(value)
        if field == "in_shape":
            raise ModelFileError(f"{where}: 'in_shape' must be a list ending with the input size, got {shown}")
        raise ModelFileError(f"{where}: 'shape' must be a list ending with a positive integer, got {shown}")
    size = value[-1]
    if size > MAX_WIDTH:
        what = "input size" if field == "in_shape" else "output size"
        raise ModelFileError(f"{where}: {what} {_big(size)} is larger than this runtime allows ({MAX_WIDTH:,})")
    return size


def _plan(obj: Any, name: str) -> tuple[int, list[tuple[int, str, int, int, str, dict]]]:
    """First pass over parsed JSON: types, sizes and activations, no weights touched.

    Returns ``(in_size, [(pos, kind, n_in, n_out, activation, raw), ...])`` after
    checking every declared size against :data:`MAX_WIDTH`, the layer count against
    :data:`MAX_LAYERS` and the numbers the file declares against :data:`MAX_PARAMS`.
    """
    if not isinstance(obj, dict):
        raise ModelFileError(f"{name}: expected a JSON object with 'in_shape' and 'layers'")
    n = _size(obj.get("in_shape"), name, "in_shape")
    in_size = n
    raw_layers = obj.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelFileError(f"{name}: 'layers' must be a non-empty list")
    if len(raw_layers) > MAX_LAYERS:
        raise ModelFileError(f"{name}: {len(raw_layers):,} layers, more than this runtime allows ({MAX_LAYERS})")
    plan = []
    declared = 0
    for pos, raw in enumerate(raw_layers, start=1):
        if not isinstance(raw, dict):
            raise ModelFileError(f"{name}: layer {pos}: expected an object")
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in LAYER_TYPES:
            shown = _brief(kind) if not isinstance(kind, str) else repr(kind) if len(kind) <= 40 \
                else repr(kind[:40]) + "..."
            raise ModelFileError(f"{name}: layer {pos}: unsupported type {shown}; supported: "
                                 f"{', '.join(LAYER_TYPES)}")
        where = f"{name}: layer {pos} ({kind})"
        if not isinstance(raw.get("weights"), list):
            raise ModelFileError(f"{where}: 'weights' must be a list ([] for an activation layer)")
        # As RTNeural's parseJson: no "activation" key means none; recurrent layers never
        # read it; otherwise it must be a string naming an activation RTNeural creates.
        act = raw.get("activation", "")
        supported = ", ".join(a for a in ACTIVATION_NAMES if a)
        if kind in ("lstm", "gru"):
            act = ""
        elif not isinstance(act, str):
            raise ModelFileError(f"{where}: 'activation' must be a string (\"\" for none), got {_brief(act)}; "
                                 f"supported: {supported}")
        elif act not in ACTIVATION_NAMES:
            shown = repr(act) if len(act) <= 40 else repr(act[:40]) + "..."
            raise ModelFileError(f"{where}: unknown activation {shown}; supported: {supported} "
                                 f"(\"\" for none)")
        out = _size(raw.get("shape"), where, "shape")
        if kind in ("dense", "time-distributed-dense"):
            declared += n * out + out
        elif kind == "lstm":
            declared += 4 * out * (n + out + 1)
        elif kind == "gru":
            declared += 3 * out * (n + out + 2)
        else:
            if out != n:
                raise ModelFileError(f"{where}: output size {out} must equal its input size {n}")
            declared += 4 * n
        if declared > MAX_PARAMS:
            raise ModelFileError(f"{where}: the layers declared so far need {declared:,} numbers, more than "
                                 f"this runtime allows ({MAX_PARAMS:,})")
        plan.append((pos, kind, n, out, act, raw))
        n = out
    return in_size, plan


def _plan_signature(plan) -> list[tuple[str, int, int, str, int]]:
    """The canonical layer list of :meth:`Model.signature`, from the declared plan."""
    sig: list[tuple[str, int, int, str, int]] = []
    for pos, kind, n_in, n_out, act, _ in plan:
        act = "" if act == "linear" else act
        if kind == "activation":
            if sig and sig[-1][0] == "dense" and not sig[-1][3]:
                k, a, b, _, idx = sig[-1]
                sig[-1] = (k, a, b, act, idx)
            else:
                sig.append(("activation", n_in, n_out, act, pos))
        else:
            sig.append(("dense" if kind == "time-distributed-dense" else kind, n_in, n_out,
                        act if kind in ("dense", "time-distributed-dense") else "", pos))
    return sig


def _check_signature(sig, in_size: int, spec: Any, name: str, *, allow_missing: bool = False) -> None:
    """Raise :class:`ModelFileError` naming the layer if ``sig`` does not match ``spec``.

    With ``allow_missing`` a signature shorter than the spec passes (the layers it has
    must match): used before the weights are read, so that a weight error in a
    truncated file is reported first, as before.
    """
    if in_size != spec.in_size:
        raise ModelFileError(f"{name}: input size is {in_size}, expected {spec.in_size} for {spec.name}")
    for pos, want in enumerate(spec.layers):
        if pos >= len(sig):
            if allow_missing:
                return
            raise ModelFileError(f"{name}: has {len(sig)} layers, expected {len(spec.layers)} for {spec.name} "
                                 f"(missing {want.describe()})")
        kind, n_in, n_out, act, idx = sig[pos]
        where = f"{name}: layer {idx} ({kind})"
        if kind != want.kind:
            raise ModelFileError(f"{where}: expected a {want.kind} layer ({want.describe()})")
        if n_out != want.out_size:
            raise ModelFileError(f"{where}: output size {n_out}, expected {want.out_size}")
        if act != want.activation:
            raise ModelFileError(f"{where}: activation {act or 'none'!r}, expected {want.activation or 'none'!r}")
    if len(sig) > len(spec.layers):
        kind, _, _, _, idx = sig[len(spec.layers)]
        raise ModelFileError(f"{name}: layer {idx} ({kind}): unexpected extra layer; {spec.name} has "
                             f"{len(spec.layers)} layers")


def model_from_dict(obj: Any, *, name: str = "model", spec: Any = None, sizes: tuple[int, int] | None = None,
                    dtype=np.float32) -> Model:
    """Build a :class:`Model` from parsed RTNeural JSON.

    Whatever goes wrong while building (a ``MemoryError``, a ``RecursionError`` from a
    deeply nested value, an ``OverflowError``, ``ValueError`` or ``TypeError`` from an
    odd value that slipped past the checks) ends as one :class:`ModelFileError` naming
    the file and, once known, the layer.

    Every declared size is checked (against ``spec`` or ``sizes`` when given, and against
    :data:`MAX_WIDTH`, :data:`MAX_LAYERS`, :data:`MAX_PARAMS`) before any weight is
    converted or any buffer allocated, and every weight list must have exactly the
    declared shape before numpy sees it.

    Parameters
    ----------
    obj : dict
        ``{"in_shape": [..., N], "layers": [...]}``.
    name : str
        Prefix of every error message (the file name).
    spec : kelly.ml.specs.ModelSpec, optional
        When given, the architecture must match it exactly.
    sizes : (int, int), optional
        Required input and output sizes (when the architecture is free but must fit).

    Raises
    ------
    ModelFileError
        With ``name``, the 1-based layer number and type, and what is wrong.
    """
    context = [name]  # where the build is, for an unexpected failure's message
    try:
        return _build(obj, name, spec, sizes, dtype, context)
    except KellyError:
        raise
    except RecursionError:
        raise ModelFileError(f"{context[0]}: not a usable model file: a value is nested too deeply") from None
    except MemoryError:
        raise ModelFileError(f"{context[0]}: not enough memory to build this model") from None
    except Exception as exc:  # noqa: BLE001 - a hostile file gets one line, never a traceback
        raise ModelFileError(f"{context[0]}: not a usable model file ({_first_line(exc)})") from None


def _build(obj: Any, name: str, spec: Any, sizes: tuple[int, int] | None, dtype, context: list[str]) -> Model:
    """:func:`model_from_dict`'s work; ``context[0]`` is kept at the layer being built."""
    in_size, plan = _plan(obj, name)
    if spec is not None:
        _check_signature(_plan_signature(plan), in_size, spec, name, allow_missing=True)
    if sizes is not None and (in_size, plan[-1][3]) != tuple(sizes):
        raise ModelFileError(f"{name}: maps {in_size}→{plan[-1][3]}, expected {sizes[0]}→{sizes[1]}")
    layers: list[Layer] = []
    for pos, kind, n, out, act, raw in plan:
        where = f"{name}: layer {pos} ({kind})"
        context[0] = where
        weights = raw["weights"]
        if kind in ("dense", "time-distributed-dense"):
            if len(weights) not in (1, 2):
                raise ModelFileError(f"{where}: expected weights [W, b] or [W], got {len(weights)} arrays")
            W = _array(weights[0], (n, out), where, "W")
            b = _array(weights[1], (out,), where, "b") if len(weights) == 2 else None
            layers.append(Dense(W, b, pos, dtype))
            if act:
                layers.append(Activation(act, out, pos))
        elif kind in ("lstm", "gru"):
            gates = 4 if kind == "lstm" else 3
            if len(weights) != 3:
                raise ModelFileError(f"{where}: expected weights [W, U, b], got {len(weights)} arrays")
            W = _array(weights[0], (n, gates * out), where, "W")
            U = _array(weights[1], (out, gates * out), where, "U")
            if kind == "lstm":
                layers.append(LSTM(W, U, _array(weights[2], (gates * out,), where, "b"), pos, dtype))
            else:
                layers.append(GRU(W, U, _array(weights[2], (2, gates * out), where, "b"), pos, dtype))
        elif kind == "activation":
            if not act:
                raise ModelFileError(f"{where}: an activation layer needs a non-empty 'activation'")
            layers.append(Activation(act, n, pos))
        elif kind == "batchnorm":
            if len(weights) not in (2, 4):
                raise ModelFileError(f"{where}: expected weights [gamma, beta, mean, var] or [mean, var]")
            labels = ("gamma", "beta", "mean", "var") if len(weights) == 4 else ("mean", "var")
            arrays = [_array(w, (n,), where, label) for w, label in zip(weights, labels)]
            if len(arrays) == 2:
                arrays = [np.ones(n), np.zeros(n)] + arrays
            eps = raw.get("epsilon", 1e-3)
            if not (_is_int(eps) or isinstance(eps, float)) or not 0 <= eps <= FLOAT32_MAX:
                raise ModelFileError(f"{where}: 'epsilon' must be a non-negative number")
            if not bool((arrays[3] + eps > 0).all()):
                raise ModelFileError(f"{where}: var + epsilon must be positive")
            with np.errstate(all="ignore"):
                scale = arrays[0] / np.sqrt(arrays[3] + eps)
                shift = arrays[1] - arrays[2] * scale
                fits = bool((np.abs(scale) <= FLOAT32_MAX).all() and (np.abs(shift) <= FLOAT32_MAX).all())
            if not fits:
                raise ModelFileError(f"{where}: the normalisation overflows float32 (var + epsilon too small)")
            layers.append(BatchNorm(*arrays, eps, pos, dtype))
        elif kind == "prelu":
            alpha_raw = weights[0] if weights else None
            if isinstance(alpha_raw, list) and len(alpha_raw) == 1 and isinstance(alpha_raw[0], list):
                alpha_raw = alpha_raw[0]
            if not isinstance(alpha_raw, list):
                raise ModelFileError(f"{where}: expected weights [alpha] and output size equal to input size {n}")
            if len(alpha_raw) not in (1, n):
                raise ModelFileError(f"{where}: weights alpha has {len(alpha_raw)} values, expected 1 or {n}")
            alpha = _array(alpha_raw, (len(alpha_raw),), where, "alpha")
            layers.append(PReLU(alpha, n, pos, dtype))
    context[0] = name
    model = Model(in_size, layers, name=name, dtype=dtype)
    if spec is not None:
        model.check_spec(spec)
    return model


def load_rtneural_bytes(data: bytes | str, *, name: str = "model.json", spec: Any = None,
                        sizes: tuple[int, int] | None = None, dtype=np.float32) -> Model:
    """Build a :class:`Model` from the bytes of an RTNeural JSON file (the fuzzing entry point).

    Either returns a working model or raises :class:`ModelFileError` (a
    :class:`~kelly.errors.KellyError`) with a one-line message starting with ``name``;
    never any other exception.
    """
    return model_from_dict(parse_model_json(data, name=name), name=name, spec=spec, sizes=sizes, dtype=dtype)


def load_model(path: str | os.PathLike, *, spec: Any = None, sizes: tuple[int, int] | None = None,
               dtype=np.float32) -> Model:
    """Load an RTNeural JSON file (or its packed form, :mod:`kelly.ml.packed`).

    Only a regular file of at most :data:`MAX_MODEL_BYTES` is read (see
    :func:`read_regular_file`); its content goes through :func:`load_rtneural_bytes`.

    Raises
    ------
    ModelFileError
        If the file is missing, is not a regular file, is too large, is not JSON, or does
        not describe a valid model (or does not match ``spec``/``sizes``); the message
        names the file and the layer.
    """
    path = Path(path)
    data = read_model_file(path)
    from kelly.ml import packed

    if packed.is_packed(data):  # Kelly's binary form of the same model (kelly/ml/packed.py)
        return model_from_dict(packed.unpack(data, name=path.name), name=path.name, spec=spec, sizes=sizes,
                               dtype=dtype)
    try:
        return load_rtneural_bytes(data, name=path.name, spec=spec, sizes=sizes, dtype=dtype)
    except KellyError:
        raise
    except Exception as exc:  # noqa: BLE001 - belt and braces: both steps already turn failures into one line
        raise ModelFileError(f"{path.name}: not a usable model file ({_first_line(exc)})") from None


# ---------------------------------------------------------------------------------------
# ``kelly runtime``: CSV in, CSV out
# ---------------------------------------------------------------------------------------


def _shown(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _bounded_lines(stream: Any, source: str) -> Iterable[str]:
    """Lines of a text stream, refusing one longer than :data:`MAX_CSV_LINE` or a total over
    :data:`MAX_CSV_BYTES` characters (so ``/dev/zero`` on standard input fails fast)."""
    total = 0
    lineno = 0
    while True:
        try:
            line = stream.readline(MAX_CSV_LINE + 1)
        except UnicodeDecodeError:
            raise FileFormatError(f"{source} line {lineno + 1}: not UTF-8 text") from None
        except OSError as exc:
            raise FileFormatError(f"cannot read {source}: {exc.strerror or exc}") from None
        if not line:
            return
        lineno += 1
        total += len(line)
        if len(line) > MAX_CSV_LINE:
            raise FileFormatError(f"{source} line {lineno}: longer than {MAX_CSV_LINE:,} characters")
        if total > MAX_CSV_BYTES:
            raise FileFormatError(f"{source}: more than {_mb(MAX_CSV_BYTES)} of input (line {lineno})")
        yield line


def read_csv_rows(lines: Iterable[str], width: int, *, source: str = "input", with_lines: bool = False):
    """Parse comma-separated input rows for ``kelly runtime``: one time step per line.

    Blank lines and lines starting with ``#`` are skipped. ``lines`` is an iterable of
    strings or a text stream (read with bounded ``readline`` calls). At most
    :data:`MAX_CSV_ROWS` rows of :data:`MAX_CSV_LINE` characters each.

    Returns
    -------
    np.ndarray [shape=(rows, width), dtype=float64]
        With ``with_lines=True``, ``(rows, line_numbers)``.

    Raises
    ------
    FileFormatError
        Naming the line for a wrong number of values, a non-number, NaN, infinity, a
        value beyond float32's range, a line too long, or too many rows.
    """
    from array import array

    width = int(width)
    if hasattr(lines, "readline"):
        lines = _bounded_lines(lines, source)
    values = array("d")
    numbers: list[int] = []
    try:
        for lineno, line in enumerate(lines, start=1):
            if len(line) > MAX_CSV_LINE:
                raise FileFormatError(f"{source} line {lineno}: longer than {MAX_CSV_LINE:,} characters")
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if len(numbers) >= MAX_CSV_ROWS:
                raise FileFormatError(f"{source} line {lineno}: more than {MAX_CSV_ROWS:,} rows")
            parts = text.split(",", width)
            if len(parts) != width:
                got = text.count(",") + 1
                raise FileFormatError(f"{source} line {lineno}: expected {width} comma-separated values, got {got}")
            for col, part in enumerate(parts, start=1):
                part = part.strip()
                try:
                    value = float(part)
                except ValueError:
                    raise FileFormatError(f"{source} line {lineno}, value {col}: {_shown(part)} is not a number") \
                        from None
                if not math.isfinite(value):
                    raise FileFormatError(f"{source} line {lineno}, value {col}: {_shown(part)} is not a finite "
                                          "number")
                if abs(value) > FLOAT32_MAX:
                    raise FileFormatError(f"{source} line {lineno}, value {col}: {_shown(part)} is too large "
                                          f"(at most ±{FLOAT32_MAX:.4g})")
                values.append(value)
            numbers.append(lineno)
    except UnicodeDecodeError:
        raise FileFormatError(f"{source}: not UTF-8 text") from None
    rows = np.frombuffer(values, dtype=np.float64).reshape(len(numbers), width).copy() if numbers \
        else np.zeros((0, width), dtype=np.float64)
    return (rows, numbers) if with_lines else rows


def read_csv_file(path: str | os.PathLike, width: int, *, with_lines: bool = False):
    """:func:`read_csv_rows` for a file: a regular file of at most :data:`MAX_CSV_BYTES`.

    A FIFO, device or folder is refused at once (nothing waits or reads forever).

    Raises
    ------
    FileFormatError
        Naming the file (and the line for a bad value).
    InputError
        If the file does not exist.
    """
    from kelly.errors import InputError

    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise InputError(f"input file {p} not found")
    data = read_regular_file(p, max_bytes=MAX_CSV_BYTES, what="CSV input file", error=FileFormatError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileFormatError(f"{p} line {line}: not UTF-8 text") from None
    return read_csv_rows(text.splitlines(), width, source=str(p), with_lines=with_lines)


def run_rows(model: Model, rows: np.ndarray, out: Any, *, lines: Sequence[int] | None = None,
             source: str = "input") -> int:
    """Run ``model`` from a reset state over ``rows``, writing one :func:`format_row` line each.

    numpy's overflow and invalid-value warnings are silenced for the run and every output
    is checked instead: a non-finite output stops with an error naming the input line.

    Raises
    ------
    ModelError
        ``"<source> line N: the model's output is not finite (…)"``.
    """
    model.reset()
    write = out.write
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k, row in enumerate(rows):
            y = model.forward(row)
            if not np.isfinite(y).all():
                where = f"line {lines[k]}" if lines is not None else f"row {k + 1}"
                raise ModelError(f"{source} {where}: {model.name}'s output is not finite (it overflowed float32; "
                                 "check the input values and the model's weights)")
            write(format_row(y) + "\n")
    return len(rows)


def format_row(values: np.ndarray) -> str:
    """One output line: comma-separated floats with 9 significant digits (exact for float32)."""
    return ",".join(format(float(v), ".9g") for v in values)
