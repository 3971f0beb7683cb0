"""ONNX export of the compound-word transformer, and generation on onnxruntime (no torch).

Like :mod:`kelly.ml.onnx_graphs`, the graph is written node by node from the model's
weights (numpy arrays) rather than traced from torch: the interface is ours, export does
not depend on torch's changing ONNX exporters, and nothing here imports torch
(:func:`export_onnx` reads a model's ``config`` and ``state_dict()`` by duck typing).
An export is a folder of two files.

``step.onnx``: the trunk with the key/value cache as explicit inputs and outputs
-------------------------------------------------------------------------------
Opset 17, float32; every dimension named below is dynamic.

======================  =====================================  ==================================
input                   shape                                  meaning
======================  =====================================  ==================================
``tokens`` (int64)      (batch, new, F)                        compound tokens to add, new ≥ 1
``emotion``             (batch, 3)                             valence, arousal, dominance
``past_key_i``          (batch, n_head, past, head_dim)        layer ``i``'s cached keys (past ≥ 0)
``past_value_i``        (batch, n_head, past, head_dim)        its cached values
======================  =====================================  ==================================

======================  =====================================  ==================================
output                  shape
======================  =====================================  ==================================
``hidden``              (batch, new, n_embd)                   after the final LayerNorm
``type_logits``         (batch, new, sizes[0])                 the next token's type
``family_base``         (batch, new, sizes[1] + … + sizes[F-1])  each family head's hidden-state part
``present_key_i``       (batch, n_head, past+new, head_dim)    feed back as ``past_key_i``
``present_value_i``     (batch, n_head, past+new, head_dim)
======================  =====================================  ==================================

Positions run ``past … past+new-1`` (``past + new`` must not exceed ``block_size``: the
graph does not check, the stepper does); the new steps attend causally to the cache and
to each other, so one call can also encode a whole prefix (``past`` = 0). The file's
metadata entry ``kelly.transformer`` holds the model's configuration as JSON (sizes,
n_layer, n_head, n_embd, block_size, emb_sizes, n_emotion, row_heads), and the entry
``kelly.transformer.heads_sha256`` the SHA-256 of the ``heads.npz`` exported with it:
:class:`OnnxStepper` refuses tables from another export (a folder left half-replaced by a
killed export, or files mixed by hand).

``heads.npz``: the rest of the family heads, as lookup tables
-------------------------------------------------------------
A family head is linear in ``[h ‖ E_0(v_0) ‖ … ‖ E_{c-1}(v_{c-1})]``, so its logits are
``family_base`` (``W_h h + b``, computed in the graph) plus one row of a table per
condition: ``T_{f,j} = E_j W_{f,j}ᵀ`` [shape=(sizes[j], sizes[f])], indexed by the value
``v_j`` already chosen. Key ``f{f}_{j}`` holds ``T_{f,j}`` (``j < n_conditions(f)``: the
type only, or with ``row_heads`` families ``0 … f-1``). With row-conditioned heads a
family's logits depend on the family sampled just before it; as lookups that costs a few
microseconds in numpy, where a session run per family cost about 45 µs (a third of a
SMALL step).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from kelly.errors import ModelError

OPSET = 17
FORMAT = 1
META_KEY = "kelly.transformer"
#: Metadata entry of ``step.onnx``: the SHA-256 of the ``heads.npz`` exported with it.
HEADS_SHA_KEY = "kelly.transformer.heads_sha256"
#: Largest ``heads.npz`` read (the shipped SMALL model's is 0.6 MB).
MAX_HEADS_BYTES = 256 * 1024 * 1024
STEP_FILE = "step.onnx"
HEADS_FILE = "heads.npz"
LN_EPS = 1e-5
_MASKED = -1e9  # added to masked attention scores: exp() underflows to exactly 0, as torch's −∞


# ---------------------------------------------------------------------------------------
# Building the graphs (needs ``onnx``)
# ---------------------------------------------------------------------------------------

class _Graph:
    """Nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))  # keeps 0-d arrays 0-d
        return name

    def op(self, op_type: str, inputs: list[str], out: str | list[str] | None = None, n_out: int = 1,
           **attrs) -> str | list[str]:
        from onnx import helper

        outs = [out] if isinstance(out, str) else (out or [self.name(op_type.lower()) for _ in range(n_out)])
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, stem: str, out: str | None = None) -> str:
        """``x @ weight.T + bias`` (torch's ``nn.Linear`` layout)."""
        w = self.const(f"{stem}.weight", np.asarray(weight, np.float32).T)
        if bias is None:
            return self.op("MatMul", [x, w], out)
        y = self.op("MatMul", [x, w])
        return self.op("Add", [y, self.const(f"{stem}.bias", np.asarray(bias, np.float32))], out)

    def layer_norm(self, x: str, state: Mapping[str, np.ndarray], stem: str, out: str | None = None) -> str:
        scale = self.const(f"{stem}.weight", np.asarray(state[f"{stem}.weight"], np.float32))
        bias = self.const(f"{stem}.bias", np.asarray(state[f"{stem}.bias"], np.float32))
        return self.op("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=LN_EPS)


def _check_config(cfg: Mapping[str, Any]) -> dict:
    try:
        out = {"sizes": [int(s) for s in cfg["sizes"]], "n_layer": int(cfg["n_layer"]), "n_head": int(cfg["n_head"]),
               "n_embd": int(cfg["n_embd"]), "block_size": int(cfg["block_size"]),
               "emb_sizes": [int(e) for e in cfg["emb_sizes"]], "n_emotion": int(cfg.get("n_emotion", 3)),
               "row_heads": bool(cfg.get("row_heads", False))}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"transformer configuration is incomplete or malformed ({exc!r})") from None
    if (len(out["sizes"]) < 2 or len(out["emb_sizes"]) != len(out["sizes"]) or out["n_head"] < 1
            or out["n_embd"] % out["n_head"] or min(out["n_layer"], out["block_size"], min(out["sizes"])) < 1):
        raise ModelError(f"transformer configuration is inconsistent: {out}")
    return out


def _value_info(name: str, elem: int, shape: list):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def _model(g: _Graph, name: str, inputs: list, outputs: list, cfg: dict):
    from onnx import checker, helper

    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, producer_name="kelly", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    helper.set_model_props(model, {META_KEY: json.dumps({"format": FORMAT, **cfg})})
    checker.check_model(model)
    return model


def step_graph(config: Mapping[str, Any], state: Mapping[str, np.ndarray]):
    """``step.onnx`` (see the module docstring) as an ``onnx.ModelProto``.

    ``config`` is :meth:`TransformerConfig.to_dict`'s dictionary, ``state`` the model's
    ``state_dict`` as numpy arrays.
    """
    from onnx import TensorProto

    cfg = _check_config(config)
    L, H, E = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    D = E // H
    n_fam = len(cfg["sizes"])
    g = _Graph()
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731

    # positions past … past+new-1 and the causal mask [new, past+new]
    past_len = g.op("Squeeze", [g.op("Shape", ["past_key_0"], start=2, end=3), g.const("axes0", i64(0))])
    new_len = g.op("Squeeze", [g.op("Shape", ["tokens"], start=1, end=2), g.const("axes0", i64(0))])
    total = g.op("Add", [past_len, new_len])
    one, zero = g.const("one", np.array(1, np.int64)), g.const("zero", np.array(0, np.int64))
    q_pos = g.op("Range", [past_len, total, one])
    k_pos = g.op("Range", [zero, total, one])
    allowed = g.op("LessOrEqual", [g.op("Unsqueeze", [k_pos, g.const("axes0", i64(0))]),
                                   g.op("Unsqueeze", [q_pos, g.const("axes1", i64(1))])])
    mask = g.op("Where", [allowed, g.const("zero_f", np.array(0.0, np.float32)),
                          g.const("masked", np.array(_MASKED, np.float32))])

    # embeddings: families concatenated and projected, + position, + emotion
    parts = []
    for f in range(n_fam):
        idx = g.op("Gather", ["tokens", g.const(f"family{f}", np.array(f, np.int64))], axis=2)
        table = g.const(f"wte.{f}.weight", np.asarray(state[f"wte.{f}.weight"], np.float32))
        parts.append(g.op("Gather", [table, idx], axis=0))
    x = g.linear(g.op("Concat", parts, axis=-1), state["w_in.weight"], state["w_in.bias"], "w_in")
    x = g.op("Add", [x, g.op("Gather", [g.const("wpe.weight", np.asarray(state["wpe.weight"], np.float32)), q_pos],
                             axis=0)])
    emo = g.linear("emotion", state["w_emo.weight"], state["w_emo.bias"], "w_emo")
    x = g.op("Add", [x, g.op("Unsqueeze", [emo, g.const("axes1", i64(1))])])

    heads_shape = g.const("heads_shape", i64(0, 0, H, D))
    merge_shape = g.const("merge_shape", i64(0, 0, E))
    split = g.const("split", i64(E, E, E))
    scale = g.const("scale", np.array(1.0 / math.sqrt(D), np.float32))
    for i in range(L):
        p = f"h.{i}"
        a = g.layer_norm(x, state, f"{p}.ln_1")
        qkv = g.linear(a, state[f"{p}.attn.c_attn.weight"], state[f"{p}.attn.c_attn.bias"], f"{p}.attn.c_attn")
        q, k, v = g.op("Split", [qkv, split], n_out=3, axis=2)
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3]) for t in (q, k, v))
        k_all = g.op("Concat", [f"past_key_{i}", k], f"present_key_{i}", axis=2)
        v_all = g.op("Concat", [f"past_value_{i}", v], f"present_value_{i}", axis=2)
        s = g.op("MatMul", [q, g.op("Transpose", [k_all], perm=[0, 1, 3, 2])])
        s = g.op("Add", [g.op("Mul", [s, scale]), mask])
        y = g.op("MatMul", [g.op("Softmax", [s], axis=-1), v_all])
        y = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), merge_shape])
        y = g.linear(y, state[f"{p}.attn.c_proj.weight"], state[f"{p}.attn.c_proj.bias"], f"{p}.attn.c_proj")
        x = g.op("Add", [x, y])
        m = g.layer_norm(x, state, f"{p}.ln_2")
        m = g.linear(m, state[f"{p}.mlp.c_fc.weight"], state[f"{p}.mlp.c_fc.bias"], f"{p}.mlp.c_fc")
        erf = g.op("Erf", [g.op("Div", [m, g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))])])
        m = g.op("Mul", [g.op("Mul", [m, g.const("half", np.array(0.5, np.float32))]),
                         g.op("Add", [erf, g.const("one_f", np.array(1.0, np.float32))])])
        m = g.linear(m, state[f"{p}.mlp.c_proj.weight"], state[f"{p}.mlp.c_proj.bias"], f"{p}.mlp.c_proj")
        x = g.op("Add", [x, m])
    hidden = g.layer_norm(x, state, "ln_f", "hidden")
    g.linear(hidden, state["type_head.weight"], state["type_head.bias"], "type_head", "type_logits")
    heads = [(np.asarray(state[f"family_heads.{f}.weight"], np.float32)[:, :E],
              np.asarray(state[f"family_heads.{f}.bias"], np.float32)) for f in range(n_fam - 1)]
    g.linear(hidden, np.concatenate([w for w, _ in heads]), np.concatenate([b for _, b in heads]), "family_heads",
             "family_base")

    F32, I64 = TensorProto.FLOAT, TensorProto.INT64
    kv = ["batch", H, "past", D]
    inputs = [_value_info("tokens", I64, ["batch", "new", n_fam]),
              _value_info("emotion", F32, ["batch", cfg["n_emotion"]])]
    outputs = [_value_info("hidden", F32, ["batch", "new", E]),
               _value_info("type_logits", F32, ["batch", "new", cfg["sizes"][0]]),
               _value_info("family_base", F32, ["batch", "new", sum(cfg["sizes"][1:])])]
    for i in range(L):
        inputs += [_value_info(f"past_key_{i}", F32, kv), _value_info(f"past_value_{i}", F32, kv)]
        outputs += [_value_info(f"present_key_{i}", F32, ["batch", H, "total", D]),
                    _value_info(f"present_value_{i}", F32, ["batch", H, "total", D])]
    return _model(g, "CompoundTransformerStep", inputs, outputs, cfg)


def head_tables(config: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``heads.npz``'s tables (see the module docstring): key ``f{f}_{j}`` → ``E_j W_{f,j}ᵀ``."""
    cfg = _check_config(config)
    E, emb = cfg["n_embd"], cfg["emb_sizes"]
    tables = {}
    for f in range(1, len(cfg["sizes"])):
        weight = np.asarray(state[f"family_heads.{f - 1}.weight"], np.float64)
        col = E
        for j in range(f if cfg["row_heads"] else 1):
            table = np.asarray(state[f"wte.{j}.weight"], np.float64)
            tables[f"f{f}_{j}"] = (table @ weight[:, col:col + emb[j]].T).astype(np.float32)
            col += emb[j]
        if col != weight.shape[1]:
            raise ModelError(f"family head {f} reads {weight.shape[1]} inputs, the configuration {col}")
    return tables


def export_onnx(model, folder, *, overwrite: bool = True) -> list[Path]:
    """Write ``step.onnx`` and ``heads.npz`` for ``model`` into ``folder`` (atomically).

    Parameters
    ----------
    model : CompoundTransformer
        Anything with ``config.to_dict()`` and ``state_dict()`` (tensors or arrays).
    folder : path
        Created if missing.
    overwrite : bool
        Replace existing files; otherwise an existing one raises ``DestinationExists``.

    Returns
    -------
    list of Path
        The two files.
    """
    from kelly.fileio import write_files_atomic

    import hashlib

    cfg = model.config.to_dict()
    state = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
             for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    np.savez(buf, **head_tables(cfg, state))
    heads = buf.getvalue()
    step = step_graph(cfg, state)
    entry = step.metadata_props.add()  # the tables this graph goes with (checked by OnnxStepper)
    entry.key, entry.value = HEADS_SHA_KEY, hashlib.sha256(heads).hexdigest()
    folder = Path(folder)
    # step.onnx, which names heads.npz's SHA-256, is renamed first: a kill between the two renames leaves a
    # new graph beside old tables, which OnnxStepper refuses, never the reverse unnoticed
    return write_files_atomic({folder / STEP_FILE: step.SerializeToString(), folder / HEADS_FILE: heads},
                              overwrite=overwrite)


# ---------------------------------------------------------------------------------------
# Generation on onnxruntime
# ---------------------------------------------------------------------------------------

def _session(path: Path, threads: int):
    from kelly.ml.onnx_graphs import session

    try:
        return session(str(path), threads=threads)
    except Exception as exc:  # onnxruntime's own exception types
        raise ModelError(f"{path}: onnxruntime cannot load it ({' '.join(str(exc).split())[:200]}); "
                         "export the model again with export_onnx") from None


class _Hidden(NamedTuple):
    """What :meth:`OnnxStepper.step` returns for the newest step."""

    hidden: np.ndarray          # [n_embd]
    type_logits: np.ndarray     # [sizes[0]]
    family_base: np.ndarray     # [sizes[1] + … + sizes[F-1]]


class OnnxStepper:
    """The stepper protocol of :mod:`kelly.transformer.sample` on onnxruntime and numpy (no torch).

    Parameters
    ----------
    folder : path
        Holds ``step.onnx`` and ``heads.npz`` from :func:`export_onnx`.
    threads : int
        onnxruntime intra-op threads.
    keep : int or None
        Steps kept when the window slides (default ``block_size * 3 // 4``, as
        ``TorchStepper``): when the cache holds ``block_size`` steps, the newest ``keep``
        rows are encoded again from position 0 in one call.

    Raises
    ------
    kelly.errors.ModelError
        A file is missing, unreadable, or does not match the configuration.
    """

    def __init__(self, folder, *, threads: int = 1, keep: int | None = None) -> None:
        folder = Path(folder)
        for name in (STEP_FILE, HEADS_FILE):
            if not (folder / name).is_file():
                raise ModelError(f"{folder / name} is missing: export the transformer with export_onnx first")
        self.session = _session(folder / STEP_FILE, threads)
        props = self.session.get_modelmeta().custom_metadata_map
        meta = props.get(META_KEY)
        self._heads_sha256 = props.get(HEADS_SHA_KEY)  # None in exports made before it was recorded
        try:
            cfg = _check_config(json.loads(meta))
        except (TypeError, ValueError):
            raise ModelError(f"{folder / STEP_FILE} carries no transformer configuration: export it again") from None
        self.config = cfg
        self.sizes: tuple[int, ...] = tuple(cfg["sizes"])
        self.block_size: int = cfg["block_size"]
        self.keep = keep if keep is not None else max(1, self.block_size * 3 // 4)
        if not 1 <= self.keep < self.block_size:
            raise ValueError(f"keep {self.keep} must be in 1..block_size-1 ({self.block_size - 1})")
        self._tables = self._load_tables(folder / HEADS_FILE)
        self._n_head, self._head_dim = cfg["n_head"], cfg["n_embd"] // cfg["n_head"]
        self._offsets = np.concatenate([[0], np.cumsum(self.sizes[1:])]).astype(int)
        self._kv_names = [f"{kind}_{i}" for i in range(cfg["n_layer"]) for kind in ("past_key", "past_value")]
        self._out_names = ["hidden", "type_logits", "family_base"] + [n.replace("past", "present")
                                                                       for n in self._kv_names]
        self.reset(np.zeros(cfg["n_emotion"], np.float32))

    def _load_tables(self, path: Path) -> list[list[np.ndarray]]:
        """``tables[f][j]`` = ``T_{f,j}`` [sizes[j], sizes[f]], checked against the configuration."""
        import hashlib

        from kelly.fileio import read_regular_file

        sizes, n_fam = self.sizes, len(self.sizes)
        raw = read_regular_file(path, what="transformer head tables", max_bytes=MAX_HEADS_BYTES, error=ModelError)
        if self._heads_sha256 is not None and hashlib.sha256(raw).hexdigest() != self._heads_sha256:
            raise ModelError(f"{path}: these head tables do not match {STEP_FILE} beside them (SHA-256 differs): "
                             "the two files come from different exports (an interrupted one?); export the model "
                             "again")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ModelError(f"{path}: not a readable .npz ({' '.join(str(exc).split())[:160]}); "
                             "export the model again with export_onnx") from None
        tables: list[list[np.ndarray]] = [[]]
        for f in range(1, n_fam):
            row = []
            for j in range(f if self.config["row_heads"] else 1):
                t = data.get(f"f{f}_{j}")
                if t is None or t.shape != (sizes[j], sizes[f]) or t.dtype != np.float32:
                    raise ModelError(f"{path}: table f{f}_{j} is missing or not float32 "
                                     f"[{sizes[j]}, {sizes[f]}]; export the model again with export_onnx")
                row.append(t)
            tables.append(row)
        return tables

    def _empty_past(self) -> dict[str, np.ndarray]:
        empty = np.zeros((1, self._n_head, 0, self._head_dim), np.float32)
        return {n: empty for n in self._kv_names}

    def reset(self, emotion) -> None:
        self.emotion = np.asarray(emotion, np.float32).reshape(1, -1)
        self.past = self._empty_past()
        self.length = 0
        self.rows: list[np.ndarray] = []

    def _run(self, rows: np.ndarray, past: dict[str, np.ndarray]) -> _Hidden:
        outs = self.session.run(self._out_names, {"tokens": rows[None], "emotion": self.emotion, **past})
        self.past = dict(zip(self._kv_names, outs[3:]))
        return _Hidden(outs[0][0, -1], outs[1][0, -1], outs[2][0, -1])

    def step(self, row) -> _Hidden:
        """Feed one row [shape=(F,)]; returns the newest step's hidden state and head inputs."""
        row = np.asarray(row, np.int64).reshape(-1)
        self.rows.append(row)
        del self.rows[:-self.block_size]
        if self.length >= self.block_size:  # slide the window
            window = np.stack(self.rows[-self.keep:])
            self.length = len(window)
            return self._run(window, self._empty_past())
        self.length += 1
        return self._run(row[None], self.past)

    def full(self, rows) -> _Hidden:
        """The newest step after ``rows`` [n ≤ block_size, F] from scratch (the cache is untouched)."""
        saved = self.past
        try:
            return self._run(np.asarray(rows, np.int64), self._empty_past())
        finally:
            self.past = saved

    def type_logits(self, hidden: _Hidden) -> np.ndarray:
        return hidden.type_logits

    def family_logits(self, hidden: _Hidden, row, family: int) -> np.ndarray:
        """``family_base`` of ``family`` plus one table row per value of ``row`` it reads."""
        if not 1 <= family < len(self.sizes):
            raise ValueError(f"family {family} is not one of 1..{len(self.sizes) - 1}")
        logits = hidden.family_base[self._offsets[family - 1]:self._offsets[family]].copy()
        for j, table in enumerate(self._tables[family]):
            logits += table[int(row[j])]
        return logits


__all__ = ["export_onnx", "step_graph", "head_tables", "OnnxStepper", "STEP_FILE", "HEADS_FILE", "OPSET",
           "META_KEY"]
