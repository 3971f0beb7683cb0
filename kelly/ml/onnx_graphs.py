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


def model_io(spec: ModelSpec) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """The (name, shape) inputs and outputs of one network's graph: ``x``/``y`` and LSTM states."""
    inputs = [("x", [1, spec.in_size])]
    outputs = [("y", [1, spec.out_size])]
    for k, hidden in enumerate(spec.lstm_sizes):
        suffix = "" if k == 0 else str(k)
        inputs += [(f"h_in{suffix}", [1, 1, hidden]), (f"c_in{suffix}", [1, 1, hidden])]
        outputs += [(f"h_out{suffix}", [1, 1, hidden]), (f"c_out{suffix}", [1, 1, hidden])]
    return inputs, outputs


def pipeline_io() -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """The (name, shape) inputs and outputs of ``pipeline.onnx``."""
    inputs = [("mel", [1, 128])] + [(n, [1, 1, h]) for n, h in PIPELINE_STATE]
    outputs = [("embedding", [1, 64]), ("notes", [1, 128]), ("chords", [1, 64]), ("groove", [1, 32]),
               ("expression", [1, 16])] + [(f"{n}_out", [1, 1, h]) for n, h in PIPELINE_STATE]
    return inputs, outputs


def model_graph(spec: ModelSpec, state: Mapping[str, np.ndarray]):
    """ONNX ``ModelProto`` for one network from its torch-layout ``state_dict`` (numpy arrays).

    Inputs ``x`` (1, in) and, if the model has an LSTM, ``h_in``/``c_in`` (1, 1, H);
    outputs ``y`` (1, out) and ``h_out``/``c_out``.
    """
    b = _Builder()
    inputs, outputs = model_io(spec)
    states_in = [(inputs[1 + 2 * k][0], inputs[2 + 2 * k][0]) for k in range(len(spec.lstm_sizes))]
    states_out = [(outputs[1 + 2 * k][0], outputs[2 + 2 * k][0]) for k in range(len(spec.lstm_sizes))]
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
    inputs, outputs = pipeline_io()
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
    from kelly.fileio import scratch_dir

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = [n.name for n in onnx.load_from_string(model_bytes).graph.node if n.name.startswith(keep_float)] \
        if keep_float else []
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing suggestion on every call
    try:
        with scratch_dir("kelly-quant-") as tmp:
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


# ---------------------------------------------------------------------------------------
# Reading ONNX files without trusting them (``kelly validate``)
# ---------------------------------------------------------------------------------------

#: The operators this exporter writes; a graph with any other is refused before it runs.
ALLOWED_OPS = frozenset({"MatMul", "Add", "Tanh", "Relu", "Sigmoid", "Softmax", "Identity", "LSTM", "Unsqueeze",
                         "Squeeze", "Slice", "Concat"})
#: Largest tensor (elements) a checked graph may hold or compute; the largest the five
#: networks use is the melody LSTM's recurrent weight, 1 × 1024 × 256.
MAX_TENSOR_ELEMENTS = 4_000_000
#: Most nodes in a checked graph (pipeline.onnx has 54).
MAX_NODES = 10_000


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def expected_io(key: str) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """Inputs and outputs a graph for ``key`` (a model key or ``"pipeline"``) must have."""
    return pipeline_io() if key == "pipeline" else model_io(SPECS[key])


def check_onnx_bytes(data: bytes, *, key: str, name: str = "model.onnx"):
    """Parse and check an ONNX file for ``key`` before anything runs it (a fuzzing entry point).

    Refuses external data, functions and subgraphs, operators this exporter does not
    write, inputs and outputs that differ from the spec's, any tensor whose inferred
    shape is unknown or larger than :data:`MAX_TENSOR_ELEMENTS`, and NaN or infinite
    weights. Returns the ``onnx.ModelProto``.

    Raises
    ------
    kelly.ml.runtime.ModelFileError
        One line starting with ``name``.
    """
    import onnx
    from onnx import AttributeProto, TensorProto, numpy_helper

    from kelly.ml.runtime import MAX_MODEL_BYTES, ModelFileError

    def refuse(why: str) -> ModelFileError:
        return ModelFileError(f"{name}: {why}")

    if len(data) > MAX_MODEL_BYTES:
        raise refuse(f"more than {MAX_MODEL_BYTES // (1024 * 1024)} MB, too large for a model file")
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise refuse(f"not a valid ONNX model ({_short(exc)})") from None
    graph = model.graph
    if model.functions or any(op.domain not in ("", "ai.onnx") for op in model.opset_import):
        raise refuse("uses custom functions or operator domains; only standard ONNX operators are accepted")
    if len(graph.node) > MAX_NODES:
        raise refuse(f"{len(graph.node):,} nodes, more than {MAX_NODES:,}")
    if graph.sparse_initializer:
        raise refuse("sparse initializers are not accepted")
    plain_attrs = {AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT, AttributeProto.FLOATS,
                   AttributeProto.STRING, AttributeProto.STRINGS}
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ALLOWED_OPS:
            raise refuse(f"operator {node.op_type[:40]!r} is not one this exporter writes "
                         f"({', '.join(sorted(ALLOWED_OPS))})")
        for attr in node.attribute:
            if attr.type not in plain_attrs:
                raise refuse(f"node {node.name[:40]!r}: attribute {attr.name[:40]!r} holds a tensor or subgraph")
    init_names = set()
    for init in graph.initializer:
        init_names.add(init.name)
        if init.data_location == TensorProto.EXTERNAL or len(init.external_data):
            raise refuse(f"weight {init.name[:40]!r} refers to external data; only self-contained files are read")
        n = 1
        for d in init.dims:
            if d < 0:
                raise refuse(f"weight {init.name[:40]!r} has a negative dimension")
            n *= d
            if n > MAX_TENSOR_ELEMENTS:
                raise refuse(f"weight {init.name[:40]!r} declares more than {MAX_TENSOR_ELEMENTS:,} values")
        if init.data_type not in (TensorProto.FLOAT, TensorProto.INT64):
            raise refuse(f"weight {init.name[:40]!r} is not float32 or int64")
    want_in, want_out = expected_io(key)

    def dims(value_info) -> list | None:
        t = value_info.type
        if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]

    got_in = [(v.name, dims(v)) for v in graph.input if v.name not in init_names]
    got_out = [(v.name, dims(v)) for v in graph.output]
    for label, got, want in (("inputs", got_in, want_in), ("outputs", got_out, want_out)):
        if got != [(n, list(s)) for n, s in want]:
            shown = ", ".join(f"{n[:20]} {s}" for n, s in got[:8])
            raise refuse(f"graph {label} are [{shown}], expected "
                         f"[{', '.join(f'{n} {s}' for n, s in want)}]")
    try:
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # onnx raises ValidationError, InferenceError and others
        raise refuse(f"not a valid ONNX model ({_short(exc)})") from None
    shapes = {v.name: dims(v) for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for node in graph.node:
        for out in node.output:
            if not out:
                continue
            shape = shapes.get(out)
            if shape is None or any(d is None for d in shape):
                raise refuse(f"cannot check the size of tensor {out[:40]!r} (its shape is not fixed)")
            n = 1
            for d in shape:
                n *= d
            if n > MAX_TENSOR_ELEMENTS:
                raise refuse(f"tensor {out[:40]!r} would hold {n:,} values, more than {MAX_TENSOR_ELEMENTS:,}")
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            try:
                arr = numpy_helper.to_array(init)
            except Exception as exc:
                raise refuse(f"weight {init.name[:40]!r} cannot be read ({_short(exc)})") from None
            if not np.isfinite(arr).all():
                raise refuse(f"weight {init.name[:40]!r} contains NaN or infinite values")
    return model


def load_onnx_bytes(data: bytes, *, key: str, name: str = "model.onnx") -> "OnnxStepper":
    """Check an ONNX file (:func:`check_onnx_bytes`) and open it in onnxruntime (a fuzzing entry point).

    Returns an :class:`OnnxStepper` or raises :class:`~kelly.ml.runtime.ModelFileError`.
    """
    from kelly.ml.runtime import ModelFileError

    check_onnx_bytes(data, key=key, name=name)
    try:
        return OnnxStepper(session(bytes(data)))
    except Exception as exc:  # onnxruntime's own exception types
        raise ModelFileError(f"{name}: onnxruntime cannot load it ({_short(exc)})") from None
