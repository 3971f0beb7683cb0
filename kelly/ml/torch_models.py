"""The five networks in PyTorch (imported only by export, validation, training and benchmarks).

Each model is built from its :class:`~kelly.ml.specs.ModelSpec`: a ``ModuleList``
named ``layers`` holding ``nn.Linear`` and ``nn.LSTM`` (``batch_first=True``) modules,
with the activation named in the spec after each linear layer. Keeping the module
names uniform (``layers.0.weight``, ``layers.2.weight_ih_l0``) lets one converter
(:mod:`kelly.ml.convert`) turn any of them into RTNeural JSON.

Like RTNeural, the models are stateful sequence models: ``forward(x, state)`` takes a
batch of sequences ``x`` [shape=(batch, time, in)] and a list of ``(h, c)`` pairs (one per
LSTM, each [shape=(1, batch, H)], or ``None`` for zeros) and returns the outputs
[shape=(batch, time, out)] and the new state.

Weights are initialised explicitly with a seeded generator (PyTorch's default
uniform(±1/√fan_in) scheme, drawn in a fixed order) so that ``kelly export --seed S``
gives the same files on every machine until trained weights exist.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kelly.ml.specs import EMOTION_RECOGNIZER, MELODY_TRANSFORMER, HARMONY_PREDICTOR, DYNAMICS_ENGINE, \
    GROOVE_PREDICTOR, MODEL_KEYS, SPECS, ModelSpec

State = list[tuple[torch.Tensor, torch.Tensor]]

_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
        "softmax": lambda x: torch.softmax(x, dim=-1), "": lambda x: x}


class SpecNet(nn.Module):
    """A sequential network described by a :class:`ModelSpec` (subclasses set ``spec``)."""

    spec: ModelSpec

    def __init__(self) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for layer in self.spec.layers:
            if layer.kind == "dense":
                modules.append(nn.Linear(layer.in_size, layer.out_size))
            else:
                modules.append(nn.LSTM(layer.in_size, layer.out_size, batch_first=True))
        self.layers = nn.ModuleList(modules)

    def initial_state(self, batch: int = 1) -> State:
        return [(torch.zeros(1, batch, h), torch.zeros(1, batch, h)) for h in self.spec.lstm_sizes]

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run ``x`` [shape=(batch, time, in)] from ``state`` (zeros when None)."""
        if state is None:
            state = self.initial_state(x.shape[0])
        new_state: State = []
        k = 0
        for module, layer in zip(self.layers, self.spec.layers):
            if layer.kind == "dense":
                x = _ACT[layer.activation](module(x))
            else:
                x, (h, c) = module(x, state[k])
                new_state.append((h, c))
                k += 1
        return x, new_state

    def init_weights(self, generator: torch.Generator) -> None:
        """PyTorch's default uniform(±1/√fan_in) initialisation, drawn from ``generator``."""
        with torch.no_grad():
            for module in self.layers:
                if isinstance(module, nn.Linear):
                    bound = 1.0 / math.sqrt(module.in_features)
                else:
                    bound = 1.0 / math.sqrt(module.hidden_size)
                for param in module.parameters():
                    param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)


class EmotionRecognizer(SpecNet):
    """128-bin mel frame → 64-d emotion embedding (403,264 parameters)."""

    spec = EMOTION_RECOGNIZER


class MelodyTransformer(SpecNet):
    """Emotion embedding → 128 note probabilities (641,664 parameters)."""

    spec = MELODY_TRANSFORMER


class HarmonyPredictor(SpecNet):
    """Harmony context (128) → 64 chord-class probabilities (74,176 parameters)."""

    spec = HARMONY_PREDICTOR


class DynamicsEngine(SpecNet):
    """Dynamics context (32) → 16 expression parameters (13,520 parameters)."""

    spec = DYNAMICS_ENGINE


class GroovePredictor(SpecNet):
    """Emotion embedding → 32 groove parameters (18,656 parameters)."""

    spec = GROOVE_PREDICTOR


MODEL_CLASSES: dict[str, type[SpecNet]] = {
    cls.spec.key: cls
    for cls in (EmotionRecognizer, MelodyTransformer, HarmonyPredictor, DynamicsEngine, GroovePredictor)
}


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_models(seed: int = 0) -> dict[str, SpecNet]:
    """All five models, initialised from one seeded generator in a fixed order."""
    generator = torch.Generator().manual_seed(int(seed))
    models: dict[str, SpecNet] = {}
    for key in MODEL_KEYS:
        model = MODEL_CLASSES[key]()
        model.init_weights(generator)
        model.eval()
        models[key] = model
    return models


def model_from_state_dict(key: str, state: dict) -> SpecNet:
    """Build a model and load ``state`` (tensors or numpy arrays) strictly."""
    model = MODEL_CLASSES[key]()
    tensors = {name: torch.as_tensor(value, dtype=torch.float32) for name, value in state.items()}
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model


def numpy_state_dict(model: nn.Module) -> dict:
    return {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}


class KellyPipeline(nn.Module):
    """The whole pipeline as one module, the torch twin of the one-graph ONNX export.

    ``forward(mel, state)`` runs recognizer → melody and groove → harmony
    ([embedding ‖ mel[:, :64]]) → dynamics (embedding[:, :32]) for one time step:
    ``mel`` [shape=(batch, 128)], ``state`` = (ER h, ER c, MT h, MT c), each
    [shape=(1, batch, H)]. Returns (embedding, notes, chords, groove, expression) and the
    new state.
    """

    def __init__(self, models: dict[str, SpecNet]) -> None:
        super().__init__()
        self.er, self.mt, self.hp = models["emotionrecognizer"], models["melodytransformer"], models["harmonypredictor"]
        self.de, self.gp = models["dynamicsengine"], models["groovepredictor"]

    def initial_state(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        (erh, erc), = self.er.initial_state(batch)
        (mth, mtc), = self.mt.initial_state(batch)
        return erh, erc, mth, mtc

    def forward(self, mel: torch.Tensor, state: tuple[torch.Tensor, ...]):
        erh, erc, mth, mtc = state
        emb, [(erh, erc)] = self.er(mel[:, None, :], [(erh, erc)])
        notes, [(mth, mtc)] = self.mt(emb, [(mth, mtc)])
        groove, _ = self.gp(emb)
        chords, _ = self.hp(torch.cat([emb, mel[:, None, :64]], dim=-1))
        expression, _ = self.de(emb[..., :32])
        outs = tuple(t[:, 0, :] for t in (emb, notes, chords, groove, expression))
        return outs, (erh, erc, mth, mtc)


__all__ = ["SpecNet", "EmotionRecognizer", "MelodyTransformer", "HarmonyPredictor", "DynamicsEngine",
           "GroovePredictor", "MODEL_CLASSES", "KellyPipeline", "build_models", "model_from_state_dict",
           "numpy_state_dict", "param_count", "SPECS"]
