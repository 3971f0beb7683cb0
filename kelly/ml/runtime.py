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
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from kelly.errors import FileFormatError, ModelError

#: Layer types this runtime reads (RTNeural's dynamic parser also knows conv1d/conv2d
#: and batchnorm2d, which the five Kelly networks do not use).
LAYER_TYPES = ("dense", "time-distributed-dense", "lstm", "gru", "activation", "batchnorm", "prelu")
#: Activation names RTNeural understands; "" means none.
ACTIVATION_NAMES = ("", "linear", "tanh", "relu", "sigmoid", "softmax", "elu")

Step = Callable[[], Any]

#: Byte alignment of fused weight matrices and buffers. numpy only guarantees 16 bytes;
#: matrix-vector products here stream ~4.6 MB of weights per pipeline step, and with
#: 64-byte (cache-line) aligned rows they measured ~6% faster than with 16-byte alignment.
ALIGN = 64


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
        col = np.abs(self.weight.astype(np.float64)).sum(axis=0) * input_bound
        if self.bias is not None:
            col = col + np.abs(self.bias.astype(np.float64))
        return float(col.max())

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
            if bound < 80.0:
                # |logits| < 80 is guaranteed by the weights, so exp cannot overflow and the
                # usual max subtraction (a slow reduction) is unnecessary.
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
        if self.in_size != spec.in_size:
            raise ModelError(f"{self.name}: input size is {self.in_size}, expected {spec.in_size} for {spec.name}")
        sig = self.signature()
        for pos, want in enumerate(spec.layers):
            if pos >= len(sig):
                raise ModelError(f"{self.name}: has {len(sig)} layers, expected {len(spec.layers)} for {spec.name} "
                                 f"(missing {want.describe()})")
            kind, n_in, n_out, act, idx = sig[pos]
            where = f"{self.name}: layer {idx} ({kind})"
            if kind != want.kind:
                raise ModelError(f"{where}: expected a {want.kind} layer ({want.describe()})")
            if n_out != want.out_size:
                raise ModelError(f"{where}: output size {n_out}, expected {want.out_size}")
            if act != want.activation:
                raise ModelError(f"{where}: activation {act or 'none'!r}, expected {want.activation or 'none'!r}")
        if len(sig) > len(spec.layers):
            kind, _, _, _, idx = sig[len(spec.layers)]
            raise ModelError(f"{self.name}: layer {idx} ({kind}): unexpected extra layer; {spec.name} has "
                             f"{len(spec.layers)} layers")

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
# JSON loading
# ---------------------------------------------------------------------------------------


def _array(value: Any, where: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: weights {what} is not a rectangular array of numbers") from None
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{where}: weights {what} contains NaN or infinite values")
    return arr


def _expect_shape(arr: np.ndarray, shape: tuple[int, ...], where: str, what: str) -> None:
    if arr.shape != shape:
        got = "x".join(map(str, arr.shape)) or "scalar"
        raise ModelError(f"{where}: weights {what} has shape {got}, expected {'x'.join(map(str, shape))}")


def _out_size(layer: dict, where: str) -> int:
    shape = layer.get("shape")
    if not isinstance(shape, list) or not shape or not isinstance(shape[-1], int) or isinstance(shape[-1], bool) \
            or shape[-1] <= 0:
        raise ModelError(f"{where}: 'shape' must be a list ending with a positive integer, got {shape!r}")
    return shape[-1]


def model_from_dict(obj: Any, *, name: str = "model", spec: Any = None, dtype=np.float32) -> Model:
    """Build a :class:`Model` from parsed RTNeural JSON.

    Parameters
    ----------
    obj : dict
        ``{"in_shape": [..., N], "layers": [...]}``.
    name : str
        Prefix of every error message (the file name).
    spec : kelly.ml.specs.ModelSpec, optional
        When given, the architecture must match it exactly.

    Raises
    ------
    ModelError
        With ``name``, the 1-based layer number and type, and what is wrong.
    """
    if not isinstance(obj, dict):
        raise ModelError(f"{name}: expected a JSON object with 'in_shape' and 'layers'")
    in_shape = obj.get("in_shape")
    if not isinstance(in_shape, list) or not in_shape or not isinstance(in_shape[-1], int) \
            or isinstance(in_shape[-1], bool) or in_shape[-1] <= 0:
        raise ModelError(f"{name}: 'in_shape' must be a list ending with the input size, got {in_shape!r}")
    raw_layers = obj.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelError(f"{name}: 'layers' must be a non-empty list")
    n = in_shape[-1]
    layers: list[Layer] = []
    for pos, raw in enumerate(raw_layers, start=1):
        if not isinstance(raw, dict):
            raise ModelError(f"{name}: layer {pos}: expected an object")
        kind = raw.get("type")
        where = f"{name}: layer {pos} ({kind})"
        if kind not in LAYER_TYPES:
            raise ModelError(f"{name}: layer {pos}: unsupported type {kind!r}; supported: {', '.join(LAYER_TYPES)}")
        if "weights" not in raw or not isinstance(raw["weights"], list):
            raise ModelError(f"{where}: 'weights' must be a list ([] for an activation layer)")
        weights = raw["weights"]
        act = raw.get("activation", "")
        if act is None:
            act = ""
        if kind in ("lstm", "gru"):
            act = ""  # RTNeural ignores it for recurrent layers
        elif not isinstance(act, str) or act not in ACTIVATION_NAMES:
            raise ModelError(f"{where}: unknown activation {act!r}; supported: "
                             f"{', '.join(a for a in ACTIVATION_NAMES if a)}")
        out = _out_size(raw, where)
        if kind in ("dense", "time-distributed-dense"):
            if len(weights) not in (1, 2):
                raise ModelError(f"{where}: expected weights [W, b] or [W], got {len(weights)} arrays")
            W = _array(weights[0], where, "W")
            _expect_shape(W, (n, out), where, "W")
            b = None
            if len(weights) == 2:
                b = _array(weights[1], where, "b")
                _expect_shape(b, (out,), where, "b")
            layers.append(Dense(W, b, pos, dtype))
            if act:
                layers.append(Activation(act, out, pos))
        elif kind in ("lstm", "gru"):
            gates = 4 if kind == "lstm" else 3
            if len(weights) != 3:
                raise ModelError(f"{where}: expected weights [W, U, b], got {len(weights)} arrays")
            W = _array(weights[0], where, "W")
            _expect_shape(W, (n, gates * out), where, "W")
            U = _array(weights[1], where, "U")
            _expect_shape(U, (out, gates * out), where, "U")
            b = _array(weights[2], where, "b")
            if kind == "lstm":
                _expect_shape(b, (gates * out,), where, "b")
                layers.append(LSTM(W, U, b, pos, dtype))
            else:
                _expect_shape(b, (2, gates * out), where, "b")
                layers.append(GRU(W, U, b, pos, dtype))
        elif kind == "activation":
            if out != n:
                raise ModelError(f"{where}: output size {out} must equal its input size {n}")
            if not act:
                raise ModelError(f"{where}: an activation layer needs a non-empty 'activation'")
            layers.append(Activation(act, n, pos))
        elif kind == "batchnorm":
            if out != n:
                raise ModelError(f"{where}: output size {out} must equal its input size {n}")
            arrays = [_array(w, where, label) for w, label in zip(weights, ("gamma", "beta", "mean", "var")
                                                                   if len(weights) == 4 else ("mean", "var"))]
            if len(arrays) not in (2, 4):
                raise ModelError(f"{where}: expected weights [gamma, beta, mean, var] or [mean, var]")
            for arr, label in zip(arrays, ("gamma", "beta", "mean", "var") if len(arrays) == 4 else ("mean", "var")):
                _expect_shape(arr, (n,), where, label)
            if len(arrays) == 2:
                arrays = [np.ones(n), np.zeros(n)] + arrays
            eps = raw.get("epsilon", 1e-3)
            if not isinstance(eps, (int, float)) or eps < 0:
                raise ModelError(f"{where}: 'epsilon' must be a non-negative number")
            layers.append(BatchNorm(*arrays, eps, pos, dtype))
        elif kind == "prelu":
            if out != n or len(weights) < 1:
                raise ModelError(f"{where}: expected weights [alpha] and output size equal to input size {n}")
            alpha = _array(weights[0], where, "alpha").reshape(-1)
            if alpha.size not in (1, n):
                raise ModelError(f"{where}: weights alpha has {alpha.size} values, expected 1 or {n}")
            layers.append(PReLU(alpha, n, pos, dtype))
        n = out
    model = Model(in_shape[-1], layers, name=name, dtype=dtype)
    if spec is not None:
        model.check_spec(spec)
    return model


def load_model(path: str | os.PathLike, *, spec: Any = None, dtype=np.float32) -> Model:
    """Load an RTNeural JSON file.

    Raises
    ------
    ModelError
        If the file is missing, is not JSON, or does not describe a valid model (or does
        not match ``spec``); the message names the file and the layer.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            obj = json.load(handle)
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path.name}: cannot read model file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    return model_from_dict(obj, name=path.name, spec=spec, dtype=dtype)


def read_csv_rows(lines: Iterable[str], width: int, *, source: str = "input") -> np.ndarray:
    """Parse comma-separated input rows for ``kelly runtime``: one time step per line.

    Blank lines and lines starting with ``#`` are skipped.

    Raises
    ------
    FileFormatError
        Naming the line for a wrong number of values, a non-number, NaN or infinity.
    """
    rows: list[list[float]] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != width:
            raise FileFormatError(f"{source} line {lineno}: expected {width} comma-separated values, got {len(parts)}")
        row = []
        for col, part in enumerate(parts, start=1):
            try:
                value = float(part)
            except ValueError:
                raise FileFormatError(f"{source} line {lineno}, value {col}: {part!r} is not a number") from None
            if not math.isfinite(value):
                raise FileFormatError(f"{source} line {lineno}, value {col}: {part!r} is not a finite number")
            row.append(value)
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)


def format_row(values: np.ndarray) -> str:
    """One output line: comma-separated floats with 9 significant digits (exact for float32)."""
    return ",".join(format(float(v), ".9g") for v in values)
