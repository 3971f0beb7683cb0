"""ONNX graphs for the five networks and for the whole pipeline (needs ``onnx``, not torch).

Why hand-built
--------------
The graphs are written node by node from the same numpy weights that go into the
RTNeural JSON, instead of being traced from torch. That gives full control over the
interface the real-time code needs, and it keeps export independent of torch's
changing ONNX exporters:

* one time step per run, batch 1: ``x`` [shape=(1, in)];
* **recurrent state as explicit inputs and outputs**: for an LSTM, inputs ``h_in`` and
  ``c_in`` and outputs ``h_out`` and ``c_out``, each [shape=(1, 1, H)] (ONNX's
  ``num_directions × batch × hidden``); feed the outputs back next step, zeros to reset;
* a dense layer is ``MatMul`` + ``Add`` (which onnxruntime fuses, and which its dynamic
  int8 quantizer understands), an LSTM is one ONNX ``LSTM`` node (gate order i, o, f, c;
  the torch i, f, g, o blocks are reordered; its bias is ``[W_b ‖ R_b]``).

The pipeline graph ``pipeline.onnx`` takes ``mel`` [shape=(1, 128)] plus the two LSTM
states (``er_h``, ``er_c`` [1, 1, 128]; ``mt_h``, ``mt_c`` [1, 1, 256]) and returns
``embedding``, ``notes``, ``chords``, ``groove``, ``expression`` and the four new states
(``er_h_out`` …), wiring the models exactly as the processor does: harmony input
``[embedding ‖ mel[:, :64]]``, dynamics input ``embedding[:, :32]``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from kelly.ml.specs import SPECS, ModelSpec

OPSET = 17
PIPELINE_STATE = (("er_h", 128), ("er_c", 128), ("mt_h", 256), ("mt_c", 256))
PIPELINE_OUTPUTS = ("embedding", "notes", "chords", "groove", "expression")


class _Builder:
    """Collects nodes and initializers with unique names."""

    def __init__(self) -> None:
        import onnx  # noqa: F401 - fail early with ImportError if missing

        self.nodes: list = []
        self.inits: list = []
        self._n = 0
        #: Prefix of node names ("er/", "hp/" …) so that tools can select a model's nodes.
        self.scope = ""

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{self.scope}{stem}_{self._n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, n_out: int = 1, **attrs) -> list[str]:
        from onnx import helper

        outputs = outputs or [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.name(op), **attrs))
        return outputs


def _activation(b: _Builder, x: str, name: str, out: str | None = None) -> str:
    ops = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax"}
    if not name:
        if out is None:
            return x
        return b.node("Identity", [x], [out])[0]
    attrs = {"axis": -1} if name == "softmax" else {}
    return b.node(ops[name], [x], [out] if out else None, **attrs)[0]


def _reorder_ifgo_to_iofc(arr: np.ndarray, hidden: int) -> np.ndarray:
    """torch gate blocks (i, f, g, o) along axis 0 → ONNX (i, o, f, c)."""
    i, f, g, o = (arr[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, o, f, g], axis=0)


def _add_model(b: _Builder, spec: ModelSpec, state: Mapping[str, np.ndarray], x: str, prefix: str,
               states_in: list[tuple[str, str]], states_out: list[tuple[str, str]], out: str | None) -> str:
    """Append one model's nodes (named ``{prefix}/…``); returns the name of its output tensor."""
    outer, b.scope = b.scope, f"{prefix}/"
    try:
        return _add_layers(b, spec, state, x, states_in, states_out, out)
    finally:
        b.scope = outer


def _add_layers(b: _Builder, spec: ModelSpec, state: Mapping[str, np.ndarray], x: str,
                states_in: list[tuple[str, str]], states_out: list[tuple[str, str]], out: str | None) -> str:
    prefix = b.scope.rstrip("/")
    lstm_k = 0
    last = len(spec.layers) - 1
    for i, layer in enumerate(spec.layers):
        p = f"layers.{i}"
        if layer.kind == "dense":
            w = b.const(f"{prefix}_w{i}", np.asarray(state[f"{p}.weight"], np.float32).T)
            bias = b.const(f"{prefix}_b{i}", np.asarray(state[f"{p}.bias"], np.float32))
            y = b.node("MatMul", [x, w])[0]
            final = out if (i == last and not layer.activation) else None
            y = b.node("Add", [y, bias], [final] if final else None)[0]
            x = _activation(b, y, layer.activation, out if i == last else None)
        else:
            hidden = layer.out_size
            w_ih = _reorder_ifgo_to_iofc(np.asarray(state[f"{p}.weight_ih_l0"], np.float32), hidden)
            w_hh = _reorder_ifgo_to_iofc(np.asarray(state[f"{p}.weight_hh_l0"], np.float32), hidden)
            b_ih = _reorder_ifgo_to_iofc(np.asarray(state[f"{p}.bias_ih_l0"], np.float32), hidden)
            b_hh = _reorder_ifgo_to_iofc(np.asarray(state[f"{p}.bias_hh_l0"], np.float32), hidden)
            W = b.const(f"{prefix}_W{i}", w_ih[None])
            R = b.const(f"{prefix}_R{i}", w_hh[None])
            B = b.const(f"{prefix}_B{i}", np.concatenate([b_ih, b_hh])[None])
            axes0 = b.const(f"{prefix}_axes", np.array([0], dtype=np.int64))
            seq = b.node("Unsqueeze", [x, axes0])[0]  # (1, 1, in): seq, batch, features
            h_in, c_in = states_in[lstm_k]
            h_out, c_out = states_out[lstm_k]
            _, yh, _ = b.node("LSTM", [seq, W, R, B, "", h_in, c_in], [b.name("y"), h_out, c_out],
                              hidden_size=hidden)
            x = b.node("Squeeze", [yh, axes0])[0]  # (1, H)
            if i == last and out:
                x = b.node("Identity", [x], [out])[0]
            lstm_k += 1
    return x


def _finish(b: _Builder, name: str, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]]):
    from onnx import TensorProto, checker, helper

    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        initializer=b.inits,
    )
    model = helper.make_model(graph, producer_name="kelly", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    checker.check_model(model)
    return model


def model_graph(spec: ModelSpec, state: Mapping[str, np.ndarray]):
    """ONNX ``ModelProto`` for one network from its torch-layout ``state_dict`` (numpy arrays).

    Inputs ``x`` (1, in) and, if the model has an LSTM, ``h_in``/``c_in`` (1, 1, H);
    outputs ``y`` (1, out) and ``h_out``/``c_out``.
    """
    b = _Builder()
    inputs = [("x", [1, spec.in_size])]
    outputs = [("y", [1, spec.out_size])]
    states_in, states_out = [], []
    for k, hidden in enumerate(spec.lstm_sizes):
        suffix = "" if k == 0 else str(k)
        states_in.append((f"h_in{suffix}", f"c_in{suffix}"))
        states_out.append((f"h_out{suffix}", f"c_out{suffix}"))
        inputs += [(f"h_in{suffix}", [1, 1, hidden]), (f"c_in{suffix}", [1, 1, hidden])]
        outputs += [(f"h_out{suffix}", [1, 1, hidden]), (f"c_out{suffix}", [1, 1, hidden])]
    _add_model(b, spec, state, "x", spec.key, states_in, states_out, "y")
    return _finish(b, spec.name, inputs, outputs)


def pipeline_graph(states: Mapping[str, Mapping[str, np.ndarray]]):
    """One ONNX graph for the whole pipeline (see the module docstring for its interface)."""
    b = _Builder()
    er = _add_model(b, SPECS["emotionrecognizer"], states["emotionrecognizer"], "mel", "er",
                    [("er_h", "er_c")], [("er_h_out", "er_c_out")], "embedding")
    _add_model(b, SPECS["melodytransformer"], states["melodytransformer"], er, "mt",
               [("mt_h", "mt_c")], [("mt_h_out", "mt_c_out")], "notes")
    _add_model(b, SPECS["groovepredictor"], states["groovepredictor"], er, "gp", [], [], "groove")
    starts = b.const("slice_start", np.array([0], np.int64))
    end64 = b.const("slice_end64", np.array([64], np.int64))
    end32 = b.const("slice_end32", np.array([32], np.int64))
    axis1 = b.const("slice_axis", np.array([1], np.int64))
    mel_low = b.node("Slice", ["mel", starts, end64, axis1])[0]
    context = b.node("Concat", [er, mel_low], axis=1)[0]
    _add_model(b, SPECS["harmonypredictor"], states["harmonypredictor"], context, "hp", [], [], "chords")
    dyn = b.node("Slice", [er, starts, end32, axis1])[0]
    _add_model(b, SPECS["dynamicsengine"], states["dynamicsengine"], dyn, "de", [], [], "expression")
    inputs = [("mel", [1, 128])] + [(n, [1, 1, h]) for n, h in PIPELINE_STATE]
    outputs = [("embedding", [1, 64]), ("notes", [1, 128]), ("chords", [1, 64]), ("groove", [1, 32]),
               ("expression", [1, 16])] + [(f"{n}_out", [1, 1, h]) for n, h in PIPELINE_STATE]
    return _finish(b, "KellyPipeline", inputs, outputs)


#: Node-name prefixes kept in float32 by default: the HarmonyPredictor is small (74k
#: parameters, ~6% of the weights) but ends in a softmax over 64 chord classes whose top
#: two are often close, so quantizing it costs top-1 agreement for almost no speed.
FLOAT_SCOPES = ("hp/",)


def quantize_int8(model_bytes: bytes, *, per_channel: bool = False,
                  keep_float: tuple[str, ...] = FLOAT_SCOPES) -> bytes:
    """onnxruntime dynamic int8 quantization (weights int8, activations quantized per call).

    ``MatMul`` becomes ``MatMulInteger``-style kernels and ``LSTM`` becomes
    ``DynamicQuantizeLSTM``; the graph interface is unchanged. Nodes whose names start
    with a prefix in ``keep_float`` stay float32.
    """
    import logging
    import os
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = [n.name for n in onnx.load_from_string(model_bytes).graph.node if n.name.startswith(keep_float)] \
        if keep_float else []
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing suggestion on every call
    try:
        with tempfile.TemporaryDirectory(prefix="kelly-quant-") as tmp:
            src, dst = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "int8.onnx")
            with open(src, "wb") as handle:
                handle.write(model_bytes)
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel,
                             nodes_to_exclude=exclude)
            with open(dst, "rb") as handle:
                return handle.read()
    finally:
        root.setLevel(level)


def session(model_bytes_or_path, *, threads: int = 1):
    """An onnxruntime ``InferenceSession`` on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes_or_path, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxStepper:
    """Runs a per-model or pipeline ONNX session one step at a time, feeding state back."""

    def __init__(self, sess) -> None:
        self.session = sess
        self._state_names = [i.name for i in sess.get_inputs() if i.name not in ("x", "mel")]
        self._state_shapes = {i.name: i.shape for i in sess.get_inputs()}
        self._x_name = "mel" if "mel" in self._state_shapes else "x"
        self._out_names = [o.name for o in sess.get_outputs()]
        self.reset()

    def reset(self) -> None:
        self.state = {n: np.zeros(self._state_shapes[n], dtype=np.float32) for n in self._state_names}

    def step(self, x: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {self._x_name: np.asarray(x, np.float32).reshape(1, -1), **self.state}
        outs = dict(zip(self._out_names, self.session.run(None, feeds)))
        for n in self._state_names:
            key = n.replace("_in", "_out") if n.startswith(("h_in", "c_in")) else f"{n}_out"
            self.state[n] = outs[key]
        return outs
