"""The DDSP voice's files: RTNeural JSON, ONNX, the metadata sidecar, and their validation.

A voice folder holds:

==================  =====================================================================
``ddsp.json``       the decoder as RTNeural JSON (dense, relu, dense, relu, gru, dense,
                    relu, dense): what :mod:`kelly.ddsp.voice` renders with (numpy)
``ddsp.meta.json``  the sidecar: the contract (rate, hop, sizes, input scalings), the
                    velocity → loudness map and the emotion-label reference from the
                    training data, the training metrics, and the JSON's SHA-256
``ddsp.onnx``       the same decoder for onnxruntime (inputs ``x [B, T, 5]`` and
                    ``h0 [1, B, H]``; outputs ``y [B, T, 130]`` and ``h [1, B, H]``)
==================  =====================================================================

:func:`validate` runs the same random inputs through torch (when a checkpoint is beside
the files), the numpy decoder and onnxruntime, and checks the sidecar's hash and
contract, as ``kelly validate`` does for the five networks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kelly.ddsp.core import HOP, LOUDNESS_MAX_DB, LOUDNESS_MIN_DB, N_HARMONICS, N_INPUTS, N_NOISE_BANDS, \
    N_OUTPUTS, SAMPLE_RATE
from kelly.errors import ModelError

JSON_NAME = "ddsp.json"
META_NAME = "ddsp.meta.json"
ONNX_NAME = "ddsp.onnx"
FORMAT = "kelly-ddsp-voice"
SCHEMA_VERSION = 1
MAX_META_BYTES = 1 << 20
MAX_ONNX_BYTES = 64 << 20
PARITY_TOLERANCE = 1e-4


def contract() -> dict:
    """What the files assume; a voice whose sidecar says otherwise is refused."""
    return {"sample_rate": SAMPLE_RATE, "hop": HOP, "n_harmonics": N_HARMONICS, "n_noise_bands": N_NOISE_BANDS,
            "in_size": N_INPUTS, "out_size": N_OUTPUTS, "loudness_min_db": LOUDNESS_MIN_DB,
            "loudness_max_db": LOUDNESS_MAX_DB,
            "inputs": ["f0 as MIDI pitch / 127", "loudness (dB + 80) / 80", "valence -1..1", "arousal 0..1",
                       "dominance 0..1"],
            "outputs": ["amplitude (exp_sigmoid)", "64 harmonic distribution (exp_sigmoid, normalised)",
                        "65 noise magnitudes (exp_sigmoid after -5)"]}


def _torch_state(weights_pt: str | os.PathLike) -> tuple[dict, dict]:
    from kelly.ml.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(weights_pt)
    if ckpt.get("kind") not in ("ddsp-weights", "ddsp") or "model" not in ckpt:
        raise ModelError(f"{weights_pt}: not a DDSP voice checkpoint")
    return ckpt["model"], ckpt["config"]


def rtneural_json(state: dict) -> dict:
    from kelly.ddsp.decoder import plan
    from kelly.ml.convert import state_dict_to_rtneural

    arrays = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in state.items()}
    obj = state_dict_to_rtneural(arrays, plan(), N_INPUTS)
    obj["name"] = "ddsp"
    return obj


def onnx_model(state: dict):
    """The decoder as an ONNX graph (built node by node like the five networks', :mod:`kelly.ml.onnx_graphs`)."""
    from onnx import TensorProto, checker, helper

    from kelly.ml.onnx_graphs import OPSET, _Builder

    s = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)).astype(np.float32)
         for k, v in state.items()}
    hidden = s["gru.weight_hh_l0"].shape[1]
    b = _Builder()

    def dense(x: str, name: str, relu: bool, out: str | None = None) -> str:
        y = b.node("MatMul", [x, b.const(f"{name}_w", s[f"{name}.weight"].T)])[0]
        y = b.node("Add", [y, b.const(f"{name}_b", s[f"{name}.bias"])], None if relu else [out] if out else None)[0]
        return b.node("Relu", [y])[0] if relu else y

    def rzn_to_zrn(arr: np.ndarray) -> np.ndarray:  # torch's gate blocks r, z, n → ONNX's z, r, h
        r, z, n = (arr[k * hidden:(k + 1) * hidden] for k in range(3))
        return np.concatenate([z, r, n], axis=0)

    z = dense(dense("x", "inp1", True), "inp2", True)
    seq = b.node("Transpose", [z], perm=[1, 0, 2])[0]  # [T, B, H]
    W = b.const("gru_W", rzn_to_zrn(s["gru.weight_ih_l0"])[None])
    R = b.const("gru_R", rzn_to_zrn(s["gru.weight_hh_l0"])[None])
    B = b.const("gru_B", np.concatenate([rzn_to_zrn(s["gru.bias_ih_l0"]), rzn_to_zrn(s["gru.bias_hh_l0"])])[None])
    y, _ = b.node("GRU", [seq, W, R, B, "", "h0"], [b.name("y"), "h"], hidden_size=hidden, linear_before_reset=1)
    axes1 = b.const("axes1", np.array([1], dtype=np.int64))
    y = b.node("Squeeze", [y, axes1])[0]  # [T, B, H]
    y = b.node("Transpose", [y], perm=[1, 0, 2])[0]
    dense(dense(y, "out1", True), "out2", False, out="y")
    graph = helper.make_graph(
        b.nodes, "kelly-ddsp-decoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", N_INPUTS]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "batch", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", N_OUTPUTS]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, "batch", hidden])],
        initializer=b.inits)
    model = helper.make_model(graph, producer_name="kelly", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    checker.check_model(model)
    return model


def sidecar(text: str, *, metrics: dict | None, hidden: int, params: int, provenance: str) -> dict:
    from kelly import __version__

    m = metrics or {}
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "kelly_version": __version__, "model": "ddsp",
            "file": JSON_NAME, "sha256": hashlib.sha256(text.encode()).hexdigest(), "hidden": hidden,
            "params": params, "contract": contract(), "loudness_map": m.get("loudness_map"),
            "emotion_labels": m.get("emotion_labels"), "trained": bool(m),
            "training": {k: m[k] for k in ("settings", "steps", "minutes", "best", "data") if k in m},
            "evaluation": m.get("evaluation"), "provenance": provenance}


def write_voice(weights_pt: str | os.PathLike, out_dir: str | os.PathLike, *, metrics: dict | None = None,
                onnx: bool = True, provenance: str = "") -> list[Path]:
    """Write ``ddsp.json``, ``ddsp.meta.json`` (and ``ddsp.onnx``) for a trained checkpoint, atomically together.

    The sidecar records the SHA-256 of the JSON (``sha256``) and of the ONNX file
    (``onnx_sha256``) and is committed first, so a folder that mixes two exports is
    detected (:func:`read_voice`, :func:`validate`), never used as one voice.
    """
    from kelly.ml.export import rtneural_text
    from kelly.fileio import json_bytes, write_files_atomic

    state, config = _torch_state(weights_pt)
    text = rtneural_text(rtneural_json(state))
    params = int(sum(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v).size for v in state.values()))
    meta = sidecar(text, metrics=metrics, hidden=int(config["hidden"]), params=params,
                   provenance=provenance or f"trained by kelly ddsp train ({Path(weights_pt).name})")
    out = Path(out_dir)
    files = {out / JSON_NAME: text.encode()}
    if onnx:
        files[out / ONNX_NAME] = onnx_model(state).SerializeToString()
        meta["onnx_sha256"] = hashlib.sha256(files[out / ONNX_NAME]).hexdigest()
    # The sidecar, which holds the others' SHA-256, is renamed into place first: a kill between two
    # renames leaves a new sidecar beside an old file, which read_voice and validate refuse by hash.
    write_files_atomic({out / META_NAME: json_bytes(meta), **files})
    return [out / JSON_NAME, out / META_NAME, *([out / ONNX_NAME] if onnx else [])]


@dataclass(frozen=True)
class VoiceFiles:
    """A voice folder read and checked: the decoder's JSON bytes and the sidecar."""

    folder: Path
    json_bytes: bytes
    meta: dict


def read_voice(folder: str | os.PathLike) -> VoiceFiles:
    """Read a voice folder; a missing, oversized, mismatched or foreign file is one ModelError line."""
    from kelly.fileio import read_json
    from kelly.ml.runtime import MAX_MODEL_BYTES, read_model_file

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such DDSP voice folder (train one with kelly ddsp train)")
    data = read_model_file(folder / JSON_NAME, max_bytes=MAX_MODEL_BYTES)
    meta = read_json(folder / META_NAME, what="DDSP voice sidecar", max_bytes=MAX_META_BYTES)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{folder / META_NAME}: not a Kelly DDSP voice sidecar")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ModelError(f"{folder / META_NAME}: schema version {meta.get('schema_version')!r}; this Kelly reads "
                         f"{SCHEMA_VERSION}")
    if meta.get("sha256") != hashlib.sha256(data).hexdigest():
        raise ModelError(f"{folder / JSON_NAME}: does not match its sidecar (SHA-256 differs); the files were "
                         "changed or mixed from two voices")
    want = contract()
    got = meta.get("contract") or {}
    diff = [k for k in want if k not in ("inputs", "outputs") and got.get(k) != want[k]]
    if diff:
        raise ModelError(f"{folder / META_NAME}: made for another synth ({', '.join(diff)} differ)")
    lm = meta.get("loudness_map")
    if not isinstance(lm, dict) or not all(isinstance(lm.get(k), (int, float)) and np.isfinite(lm[k])
                                           for k in ("c0", "c1", "c2")):
        raise ModelError(f"{folder / META_NAME}: its loudness_map (velocity → loudness) is missing or not numbers")
    return VoiceFiles(folder=folder, json_bytes=data, meta=meta)


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


def validate(folder: str | os.PathLike, *, steps: int = 200, seed: int = 1234) -> list[Check]:
    """Parity of the voice's formats on random inputs, plus its sidecar (see the module docstring)."""
    from kelly.ddsp.decoder import NumpyDecoder

    checks: list[Check] = []
    vf = read_voice(folder)
    checks.append(Check("sidecar", True, f"format {FORMAT} v{SCHEMA_VERSION}, hash matches {JSON_NAME}"))
    dec = NumpyDecoder(vf.json_bytes, name=str(Path(folder) / JSON_NAME))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(3, steps, N_INPUTS)).astype(np.float32)
    x[..., 2] = x[..., 2] * 2 - 1
    ref, _ = dec(x)
    if not np.all(np.isfinite(ref)):
        checks.append(Check("numpy", False, "non-finite outputs"))
        return checks
    checks.append(Check("numpy", True, f"{dec.param_count:,} parameters, {steps} steps × 3 voices finite"))
    pt = Path(folder) / "ddsp.pt"
    if pt.is_file():
        import torch

        from kelly.ddsp.decoder import DecoderConfig, torch_decoder

        state, config = _torch_state(pt)
        model = torch_decoder(DecoderConfig(**config))
        model.load_state_dict(state)
        with torch.no_grad():
            tout = model(torch.from_numpy(x))[0].numpy()
        err = float(np.abs(tout - ref).max())
        checks.append(Check("torch vs numpy", err <= PARITY_TOLERANCE, f"max |Δ| {err:.2e}"))
    onnx_path = Path(folder) / ONNX_NAME
    if onnx_path.is_file():
        from kelly.ml.onnx_graphs import session
        from kelly.ml.runtime import read_regular_file

        onnx_bytes = read_regular_file(onnx_path, max_bytes=MAX_ONNX_BYTES, what="ONNX file")
        want = vf.meta.get("onnx_sha256")
        if want is not None:  # sidecars written before it was recorded have none
            ok = want == hashlib.sha256(onnx_bytes).hexdigest()
            checks.append(Check("onnx sidecar", ok, f"hash matches {ONNX_NAME}" if ok else
                                f"{ONNX_NAME} does not match its sidecar (SHA-256 differs): the files come from "
                                "two exports (an interrupted one?); export the voice again"))
        try:
            sess = session(onnx_bytes)
            out = sess.run(["y"], {"x": x, "h0": np.zeros((1, 3, dec.hidden), np.float32)})[0]
            err = float(np.abs(out - ref).max())
            checks.append(Check("onnx vs numpy", err <= PARITY_TOLERANCE, f"max |Δ| {err:.2e}"))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors: one line
            if isinstance(exc, ModelError):
                raise
            checks.append(Check("onnx", False, f"onnxruntime cannot run it: {str(exc).splitlines()[0][:160]}"))
    return checks

