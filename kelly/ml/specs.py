"""The five networks, described as data (no torch needed).

Every other part of :mod:`kelly.ml` reads these specifications: the torch modules are
built from them, exported files are checked against them, the processor knows which
file to look for and what shape to expect, and ``kelly validate --check-specs``
compares parameter counts with them.

The layer reading below is the one that reproduces the parameter counts stated in
GitHub issue #4 (and in the original ``ML models architecture`` document) exactly,
counting PyTorch parameters (an ``nn.LSTM`` has two bias vectors, ``bias_ih`` and
``bias_hh``):

==================  ==========================================================  =======
model               layers                                                      params
==================  ==========================================================  =======
EmotionRecognizer   Linear 128→512, tanh; Linear 512→256, tanh; LSTM 256→128;    403,264
                    Linear 128→64, tanh
MelodyTransformer   Linear 64→256, ReLU; LSTM 256→256; Linear 256→256, ReLU;     641,664
                    Linear 256→128, sigmoid
HarmonyPredictor    Linear 128→256, tanh; Linear 256→128, tanh;                  74,176
                    Linear 128→64, softmax
DynamicsEngine      Linear 32→128, ReLU; Linear 128→64, ReLU;                    13,520
                    Linear 64→16, sigmoid
GroovePredictor     Linear 64→128, tanh; Linear 128→64, tanh;                    18,656
                    Linear 64→32, tanh
total                                                                          1,151,280
==================  ==========================================================  =======

RTNeural stores an LSTM with one summed bias, so an RTNeural JSON file holds 4·H fewer
numbers per LSTM than the torch count (ER: 512 fewer, MT: 1,024 fewer); see
:meth:`ModelSpec.rtneural_param_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Activations the specs use; "" means none.
ACTIVATIONS = ("", "tanh", "relu", "sigmoid", "softmax")


@dataclass(frozen=True)
class LayerSpec:
    """One trainable layer: ``kind`` is "dense" or "lstm"; ``activation`` follows a dense layer."""

    kind: str
    in_size: int
    out_size: int
    activation: str = ""

    def torch_param_count(self) -> int:
        """Parameters as PyTorch counts them (LSTM: two bias vectors)."""
        if self.kind == "dense":
            return self.in_size * self.out_size + self.out_size
        hidden = self.out_size
        return 4 * hidden * (self.in_size + hidden) + 8 * hidden

    def rtneural_param_count(self) -> int:
        """Numbers stored in RTNeural JSON (LSTM: one summed bias)."""
        if self.kind == "dense":
            return self.torch_param_count()
        return self.torch_param_count() - 4 * self.out_size

    def describe(self) -> str:
        act = f" + {self.activation}" if self.activation else ""
        return f"{self.kind} {self.in_size}→{self.out_size}{act}"


@dataclass(frozen=True)
class ModelSpec:
    """One of the five networks: its name, file name, sizes and layers."""

    name: str
    key: str
    in_size: int
    out_size: int
    layers: tuple[LayerSpec, ...]
    params: int
    role: str

    @property
    def file_name(self) -> str:
        """RTNeural JSON file name the processor looks for (``emotionrecognizer.json``)."""
        return f"{self.key}.json"

    @property
    def lstm_sizes(self) -> tuple[int, ...]:
        """Hidden sizes of the recurrent layers, in order (their state must be kept)."""
        return tuple(layer.out_size for layer in self.layers if layer.kind == "lstm")

    def torch_param_count(self) -> int:
        return sum(layer.torch_param_count() for layer in self.layers)

    def rtneural_param_count(self) -> int:
        return sum(layer.rtneural_param_count() for layer in self.layers)


def _dense(n_in: int, n_out: int, activation: str = "") -> LayerSpec:
    return LayerSpec("dense", n_in, n_out, activation)


def _lstm(n_in: int, hidden: int) -> LayerSpec:
    return LayerSpec("lstm", n_in, hidden)


EMOTION_RECOGNIZER = ModelSpec(
    name="EmotionRecognizer", key="emotionrecognizer", in_size=128, out_size=64,
    layers=(_dense(128, 512, "tanh"), _dense(512, 256, "tanh"), _lstm(256, 128), _dense(128, 64, "tanh")),
    params=403_264,
    role="one 128-bin log-mel frame → the 64-d emotion embedding",
)
MELODY_TRANSFORMER = ModelSpec(
    name="MelodyTransformer", key="melodytransformer", in_size=64, out_size=128,
    layers=(_dense(64, 256, "relu"), _lstm(256, 256), _dense(256, 256, "relu"), _dense(256, 128, "sigmoid")),
    params=641_664,
    role="emotion embedding → 128 note probabilities (MIDI pitch, key of C)",
)
HARMONY_PREDICTOR = ModelSpec(
    name="HarmonyPredictor", key="harmonypredictor", in_size=128, out_size=64,
    layers=(_dense(128, 256, "tanh"), _dense(256, 128, "tanh"), _dense(128, 64, "softmax")),
    params=74_176,
    role="harmony context [embedding ‖ mel[0:64]] → 64 chord-class probabilities",
)
DYNAMICS_ENGINE = ModelSpec(
    name="DynamicsEngine", key="dynamicsengine", in_size=32, out_size=16,
    layers=(_dense(32, 128, "relu"), _dense(128, 64, "relu"), _dense(64, 16, "sigmoid")),
    params=13_520,
    role="dynamics context embedding[0:32] → 16 expression parameters in [0, 1]",
)
GROOVE_PREDICTOR = ModelSpec(
    name="GroovePredictor", key="groovepredictor", in_size=64, out_size=32,
    layers=(_dense(64, 128, "tanh"), _dense(128, 64, "tanh"), _dense(64, 32, "tanh")),
    params=18_656,
    role="emotion embedding → 32 groove parameters in [-1, 1]",
)

#: The five models in the order ``runFullPipeline`` runs them is ER, MT, GP, HP, DE;
#: this tuple keeps the original index order (0..4) of ``MultiModelProcessor.h``.
SPECS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (EMOTION_RECOGNIZER, MELODY_TRANSFORMER, HARMONY_PREDICTOR, DYNAMICS_ENGINE, GROOVE_PREDICTOR)
}
MODEL_KEYS: tuple[str, ...] = tuple(SPECS)
TOTAL_PARAMS = 1_151_280


#: Short names a person may type for each network (``--disable melody``, ``kelly ctl disable groove``).
ALIASES = {"recognizer": "emotionrecognizer", "melody": "melodytransformer", "harmony": "harmonypredictor",
           "dynamics": "dynamicsengine", "groove": "groovepredictor"}


def get_spec(name: str) -> ModelSpec:
    """Look a spec up by key (``melodytransformer``), class name (``MelodyTransformer``) or short name (``melody``).

    Raises
    ------
    kelly.errors.InputError
        For an unknown name; the message lists the known ones.
    """
    from kelly.errors import InputError

    key = name.strip().lower().removesuffix(".json")
    key = ALIASES.get(key, key)
    if key in SPECS:
        return SPECS[key]
    raise InputError(f"unknown model {name!r}; known models: {', '.join(MODEL_KEYS)} (or {', '.join(ALIASES)})")
