"""PyTorch ``state_dict`` ⇄ RTNeural JSON, with numpy only.

The conversion rules are RTNeural's own (``torch_helpers.h`` and the JSON loader; see
the reference notes §12.4), written once here and used by the exporter, by
``kelly validate`` and by the tests that replay RTNeural's ``lstm_torch`` vectors:

* ``nn.Linear``: ``weights = [weight.T (in × out), bias]`` (PyTorch stores out × in);
* ``nn.LSTM`` layer k: ``[weight_ih_lk.T, weight_hh_lk.T, bias_ih_lk + bias_hh_lk]``;
  the gate order i, f, g, o is the same in both, and the two biases are **summed**;
  ``num_layers > 1`` becomes one JSON "lstm" layer per ``_l{k}``;
* ``nn.GRU`` layer k: ``[swap_rz(weight_ih.T), swap_rz(weight_hh.T),
  swap_rz([bias_ih, bias_hh])]``: PyTorch's r, z, n becomes RTNeural's z, r, n and the
  two biases stay separate (2 × 3H);
* an activation is written on the dense layer it follows (``"activation": "tanh"``).

Nothing here imports torch: a ``state_dict`` is any mapping from names to arrays (torch
tensors work through ``np.asarray`` after ``.detach().cpu()``, done by the caller).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from kelly.errors import ModelError


def _np(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _list(arr: np.ndarray) -> list:
    # float32 values become the doubles that represent them exactly: no rounding on the way.
    return np.asarray(arr, dtype=np.float32).astype(np.float64).tolist()


def dense_json(weight: np.ndarray, bias: np.ndarray | None, activation: str = "") -> dict:
    """RTNeural "dense" layer from a PyTorch ``nn.Linear`` weight (out × in) and bias."""
    weight = _np(weight)
    weights = [_list(weight.T)]
    if bias is not None:
        weights.append(_list(_np(bias)))
    return {"type": "dense", "activation": activation, "shape": [None, None, int(weight.shape[0])],
            "weights": weights}


def lstm_json(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None) -> dict:
    """RTNeural "lstm" layer from one PyTorch LSTM layer (biases summed, no gate reordering)."""
    w_ih, w_hh = _np(w_ih), _np(w_hh)
    hidden = w_hh.shape[1]
    bias = np.zeros(4 * hidden, dtype=np.float32)
    if b_ih is not None:
        bias = bias + _np(b_ih)
    if b_hh is not None:
        bias = bias + _np(b_hh)
    return {"type": "lstm", "activation": "", "shape": [None, None, int(hidden)],
            "weights": [_list(w_ih.T), _list(w_hh.T), _list(bias)]}


def swap_rz(arr: np.ndarray, hidden: int) -> np.ndarray:
    """Swap the first two ``hidden``-wide blocks of the last axis (PyTorch r, z ↔ RTNeural z, r)."""
    arr = np.array(arr, dtype=np.float32, copy=True)
    first = arr[..., :hidden].copy()
    arr[..., :hidden] = arr[..., hidden:2 * hidden]
    arr[..., hidden:2 * hidden] = first
    return arr


def gru_json(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None) -> dict:
    """RTNeural "gru" layer from one PyTorch GRU layer (r/z swapped, biases kept separate)."""
    w_ih, w_hh = _np(w_ih), _np(w_hh)
    hidden = w_hh.shape[1]
    zeros = np.zeros(3 * hidden, dtype=np.float32)
    bias = np.stack([zeros if b_ih is None else _np(b_ih), zeros if b_hh is None else _np(b_hh)])
    return {"type": "gru", "activation": "", "shape": [None, None, int(hidden)],
            "weights": [_list(swap_rz(w_ih.T, hidden)), _list(swap_rz(w_hh.T, hidden)),
                        _list(swap_rz(bias, hidden))]}


def activation_json(name: str, size: int) -> dict:
    return {"type": "activation", "activation": name, "shape": [None, None, int(size)], "weights": []}


def _get(state: Mapping[str, Any], key: str, *, optional: bool = False) -> np.ndarray | None:
    if key in state:
        return _np(state[key])
    if optional:
        return None
    raise ModelError(f"state_dict has no entry {key!r} (has: {', '.join(sorted(state)[:12])}…)")


def state_dict_to_rtneural(state: Mapping[str, Any], plan: Sequence[tuple], in_size: int) -> dict:
    """Convert a PyTorch ``state_dict`` to RTNeural JSON following ``plan``.

    Parameters
    ----------
    state : mapping of str → array
    plan : sequence of tuples
        ``("dense", prefix, activation)``, ``("lstm", prefix, num_layers)``,
        ``("gru", prefix, num_layers)`` or ``("activation", name)``, in model order;
        ``prefix`` is the module name in the state_dict (``"layers.0"``).
    in_size : int
        The model's input size (written as ``in_shape``).
    """
    layers: list[dict] = []
    size = int(in_size)
    for item in plan:
        kind = item[0]
        if kind == "dense":
            _, prefix, activation = item
            layer = dense_json(_get(state, f"{prefix}.weight"), _get(state, f"{prefix}.bias", optional=True),
                               activation)
            layers.append(layer)
        elif kind in ("lstm", "gru"):
            _, prefix, num_layers = item
            maker = lstm_json if kind == "lstm" else gru_json
            for k in range(num_layers):
                layers.append(maker(_get(state, f"{prefix}.weight_ih_l{k}"), _get(state, f"{prefix}.weight_hh_l{k}"),
                                    _get(state, f"{prefix}.bias_ih_l{k}", optional=True),
                                    _get(state, f"{prefix}.bias_hh_l{k}", optional=True)))
        elif kind == "activation":
            layers.append(activation_json(item[1], size))
        else:
            raise ModelError(f"unknown plan entry {item!r}")
        size = layers[-1]["shape"][-1]
    return {"in_shape": [None, None, int(in_size)], "layers": layers}


def spec_plan(spec: Any) -> list[tuple]:
    """The conversion plan for one of Kelly's networks (module names ``layers.{i}``)."""
    return [("dense", f"layers.{i}", layer.activation) if layer.kind == "dense" else ("lstm", f"layers.{i}", 1)
            for i, layer in enumerate(spec.layers)]


def spec_state_dict_to_rtneural(spec: Any, state: Mapping[str, Any]) -> dict:
    """RTNeural JSON for a Kelly network from its torch ``state_dict``."""
    obj = state_dict_to_rtneural(state, spec_plan(spec), spec.in_size)
    obj["name"] = spec.name  # extra top-level keys are ignored by RTNeural
    return obj


def rtneural_to_spec_state_dict(spec: Any, obj: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Back from RTNeural JSON to a torch-shaped ``state_dict`` of numpy arrays.

    The LSTM's summed bias goes to ``bias_ih`` and ``bias_hh`` is zero, which computes
    the same function. Used by ``kelly validate`` to compare a JSON file with torch when
    no checkpoint is present. Activation layers written separately are accepted.
    """
    entries = [layer for layer in obj["layers"] if layer.get("type") != "activation"]
    if len(entries) != len(spec.layers):
        raise ModelError(f"{spec.file_name}: has {len(entries)} weight layers, expected {len(spec.layers)}")
    state: dict[str, np.ndarray] = {}
    for i, (layer, want) in enumerate(zip(entries, spec.layers)):
        w = layer["weights"]
        if want.kind == "dense":
            state[f"layers.{i}.weight"] = _np(w[0]).T.copy()
            state[f"layers.{i}.bias"] = _np(w[1]) if len(w) > 1 else np.zeros(want.out_size, np.float32)
        else:
            state[f"layers.{i}.weight_ih_l0"] = _np(w[0]).T.copy()
            state[f"layers.{i}.weight_hh_l0"] = _np(w[1]).T.copy()
            state[f"layers.{i}.bias_ih_l0"] = _np(w[2])
            state[f"layers.{i}.bias_hh_l0"] = np.zeros_like(_np(w[2]))
    return state
