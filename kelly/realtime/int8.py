"""The engine's int8 path: the five networks as one onnxruntime graph with int8 weights.

``kelly engine --runtime int8`` runs the inference thread on this instead of the numpy hot
path. The graph is built from the very files the processor loaded (so a model loaded over
the socket is what runs), by :func:`kelly.ml.onnx_graphs.pipeline_graph`, and quantized with
onnxruntime's dynamic int8 quantizer, the harmony network kept in float32 (its near-tied
chord softmax is where int8 costs agreement: ``benchmarks/results.md``, bench_ml). It needs
the ``ml`` extra (onnx, onnxruntime) and all five networks live; otherwise the engine stays
on the numpy path and says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kelly.errors import KellyError, ModelError


class Int8Pipeline:
    """One recognizer step (and the four networks after it) per mel frame, int8 weights.

    Parameters
    ----------
    processor : kelly.ml.processor.MultiModelProcessor
        Its five live networks' files are read again and turned into the graph.
    """

    def __init__(self, processor) -> None:
        try:
            from kelly.ml import onnx_graphs as og
        except ImportError as exc:  # pragma: no cover - the ml extra is installed by make setup
            raise KellyError(f"--runtime int8 needs onnx and onnxruntime (pip install 'kelly[ml]'): {exc}") from None
        states = _states(processor)
        try:
            graph = og.pipeline_graph(states).SerializeToString()
            self._stepper = og.OnnxStepper(og.session(og.quantize_int8(graph)))
        except ImportError as exc:
            raise KellyError(f"--runtime int8 needs onnx and onnxruntime (pip install 'kelly[ml]'): {exc}") from None
        self._mel = np.zeros((1, 128), dtype=np.float32)

    def reset(self) -> None:
        """Clear both LSTM states (the recognizer's window starts again)."""
        self._stepper.reset()

    def step(self, mel: np.ndarray) -> np.ndarray:
        """One frame [shape=(128,)] in; the recognizer's 64-d embedding out [shape=(64,)]."""
        self._mel[0] = mel
        return self._stepper.step(self._mel)["embedding"][0]


def _states(processor) -> dict[str, dict[str, np.ndarray]]:
    """Torch-layout weights of the five networks, from the files the processor loaded."""
    from kelly.ml import packed
    from kelly.ml.export import rtneural_to_spec_state_dict
    from kelly.ml.runtime import parse_model_json, read_model_file
    from kelly.ml.specs import MODEL_KEYS, SPECS

    status = processor.status()["models"]
    states = {}
    for key in MODEL_KEYS:
        info = status[key]
        if not info["live"] or not info["path"]:
            raise ModelError(f"the int8 path needs all five networks live; {SPECS[key].name} is on its fallback "
                             f"({info['status']})")
        path = Path(info["path"])
        data = read_model_file(path)
        obj = packed.unpack(data, name=path.name) if packed.is_packed(data) or path.name.endswith(packed.SUFFIX) \
            else parse_model_json(data, name=path.name)
        states[key] = rtneural_to_spec_state_dict(SPECS[key], obj)
    return states
