"""The five small networks, their fallbacks, and a torch-free runtime.

Import map (torch is only ever imported by the last group):

* :mod:`kelly.ml.schema`: what every input and output number means (the 64-d emotion
  embedding, harmony/dynamics contexts, 64 chord classes, groove and expression names);
* :mod:`kelly.ml.specs`: the five architectures as data, with parameter counts;
* :mod:`kelly.ml.runtime`: RTNeural-JSON inference in numpy (stateful, single step);
* :mod:`kelly.ml.fallbacks`: music-theory heuristics used when a model is absent;
* :mod:`kelly.ml.processor`: :class:`MultiModelProcessor` and :class:`MusicHints`;
* :mod:`kelly.ml.convert`: PyTorch state_dict ⇄ RTNeural JSON rules (numpy only);
* :mod:`kelly.ml.onnx_graphs` (needs onnx), :mod:`kelly.ml.torch_models` and
  :mod:`kelly.ml.export` (need torch): export, validation and benchmarks.

See ``docs/ml.md``.
"""

from kelly.ml.processor import MultiModelProcessor, MusicHints, default_search_path
from kelly.ml.runtime import Model, load_model
from kelly.ml.schema import (chord_class_name, chord_class_to_root_quality, decode_embedding, embed_emotion,
                             embed_vad)
from kelly.ml.specs import MODEL_KEYS, SPECS

__all__ = [
    "MultiModelProcessor", "MusicHints", "default_search_path", "Model", "load_model", "embed_emotion",
    "embed_vad", "decode_embedding", "chord_class_name", "chord_class_to_root_quality", "MODEL_KEYS", "SPECS",
]
