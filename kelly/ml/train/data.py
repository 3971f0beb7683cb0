"""The data the trainer takes, and where it comes from.

The interface
-------------
The trainer takes, per network, two map-style torch datasets (train and validation)
whose items are ``(input, target)`` or ``(input, target, mask)`` float tensors, with sizes
from :mod:`kelly.ml.specs`:

==================  ==========  ================  ================
network             kind        input             target
==================  ==========  ================  ================
EmotionRecognizer   sequence    (seq, 128) mel    (seq, 64)
MelodyTransformer   sequence    (seq, 64)         (seq, 128) in [0, 1]
HarmonyPredictor    frame       (128,)            (64,) a distribution
DynamicsEngine      frame       (32,)             (16,) in [0, 1]
GroovePredictor     frame       (64,)             (32,) in [-1, 1]
==================  ==========  ================  ================

The optional ``mask`` has the target's shape: 1 (or True) where the target is supervised,
0 where the data cannot tell (the loss and metrics skip those entries; for the
HarmonyPredictor a row counts if any of its entries is 1). Without it everything counts.

A *sequence* network (one with an LSTM) takes windows of ``seq`` consecutive time steps;
each window starts from a zero LSTM state, as ``processor.reset()`` does. Every window of
one data set must have the same length (the default collate stacks them); the config's
``seq_len`` is the length asked for. A *frame* network takes one vector per item.
:func:`check_datasets` checks the first item of each set against this table.

Sources
-------
``corpus`` (the real data): :mod:`kelly.ml.data` must provide::

    training_datasets(key, *, data_dir, seq_len, val_fraction, seed) -> (train, val)

returning two datasets as above for the network ``key`` (``data_dir`` is a folder or None
for its default). Until that module exists ``--data corpus`` stops with "the corpus
datasets are not built yet".

``synthetic`` (a last resort, and the tests' fixture): inputs drawn uniformly in each
network's input range, targets a fixed random function of them (a random linear map,
through a smoothing recurrence for the sequence networks, then the network's own output
activation). A trained network measurably beats the mean baseline on it, which is what
the tests check, but the weights learn nothing about music: never ship them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from kelly.errors import InputError
from kelly.ml.specs import MODEL_KEYS, SPECS

#: Where the data comes from (``kelly train --data``).
SOURCES = ("corpus", "synthetic")
#: The function :mod:`kelly.ml.data` must provide for ``--data corpus``.
CORPUS_ENTRY_POINT = "training_datasets"


@runtime_checkable
class TrainingDataset(Protocol):
    """What the trainer needs of a data set: a length and ``(input, target[, mask])`` tensors by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]: ...


def is_sequence_model(key: str) -> bool:
    """Whether the network has an LSTM and so takes (seq, features) windows."""
    return bool(SPECS[key].lstm_sizes)


def expected_shapes(key: str, seq_len: int | None = None) -> tuple[tuple, tuple]:
    """Item shapes for ``key``: ((in,), (out,)) or ((seq, in), (seq, out)); ``None`` for seq means any."""
    spec = SPECS[key]
    if is_sequence_model(key):
        return (seq_len, spec.in_size), (seq_len, spec.out_size)
    return (spec.in_size,), (spec.out_size,)


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("seq" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_datasets(key: str, train: Dataset, val: Dataset, *, source: str = "dataset") -> None:
    """Check two data sets against the interface (sizes, first item's types and shapes).

    Raises
    ------
    InputError
        Naming ``source``, the set and what is wrong (an empty set, an item that is not a
        pair of float tensors, a wrong shape).
    """
    want_x, want_y = expected_shapes(key)
    seq = None
    for name, ds in (("training", train), ("validation", val)):
        try:
            n = len(ds)
        except TypeError:
            raise InputError(f"{source} for {key}: the {name} set has no length (need a map-style dataset)") \
                from None
        if n == 0:
            raise InputError(f"{source} for {key}: the {name} set is empty")
        item = ds[0]
        if not (isinstance(item, (tuple, list)) and len(item) in (2, 3)
                and all(isinstance(t, torch.Tensor) for t in item)):
            raise InputError(f"{source} for {key}: {name} item 0 is not a tuple of tensors (input, target[, mask])")
        if len(item) == 3 and tuple(item[2].shape) != tuple(item[1].shape):
            raise InputError(f"{source} for {key}: {name} item 0 mask has shape {tuple(item[2].shape)}, the target "
                             f"{tuple(item[1].shape)}")
        for what, t, want in (("input", item[0], want_x), ("target", item[1], want_y)):
            if not t.is_floating_point():
                raise InputError(f"{source} for {key}: {name} item 0 {what} is {t.dtype}, expected a float tensor")
            got = tuple(t.shape)
            ok = len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))
            if ok and len(want) == 2:
                seq = got[0] if seq is None else seq
                ok = got[0] == seq and got[0] > 0
            if not ok:
                raise InputError(f"{source} for {key}: {name} item 0 {what} has shape {tuple(got)}, expected "
                                 f"{_shape_text(want)}" + (f" with seq = {seq}" if seq is not None else ""))


# --------------------------------------------------------------------------- synthetic data
#: Gain of the random teacher's linear map (pre-activations of standard deviation ≈ 1).
SYNTHETIC_GAIN = 1.7
#: The teacher (the random function) is fixed per network; only the inputs follow the seed.
SYNTHETIC_TEACHER_SEED = 20_240_601


def _teacher(key: str) -> tuple[np.ndarray, np.ndarray]:
    spec = SPECS[key]
    rng = np.random.default_rng([SYNTHETIC_TEACHER_SEED, MODEL_KEYS.index(key)])
    w = rng.standard_normal((spec.in_size, spec.out_size)) * SYNTHETIC_GAIN * np.sqrt(3.0 / spec.in_size)
    b = rng.standard_normal(spec.out_size) * 0.3
    return w, b


def synthetic_arrays(key: str, n: int, *, seq_len: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic (input, target) items for ``key`` as float32 arrays (shapes as the interface).

    Inputs: uniform in [0, 1] (mel, recognizer) or [-1, 1] (embeddings and contexts),
    centred to u ∈ [-1, 1]. Frame networks: z = u·W + b. Sequence networks: a smoothed
    input h_t = ½·h_{t−1} + ½·u_t (h_0 = 0, so the target depends on the window's past),
    z_t = h_t·W + b. Targets: tanh(z) (recognizer, groove), sigmoid(z) (melody,
    dynamics), softmax(z) (harmony). W and b are fixed per network
    (:data:`SYNTHETIC_TEACHER_SEED`); inputs follow ``seed``.
    """
    spec = SPECS[key]
    rng = np.random.default_rng([int(seed), MODEL_KEYS.index(key)])
    shape = (n, seq_len, spec.in_size) if is_sequence_model(key) else (n, spec.in_size)
    if key == "emotionrecognizer":
        x = rng.uniform(0.0, 1.0, shape)
        u = 2.0 * x - 1.0
    else:
        x = rng.uniform(-1.0, 1.0, shape)
        u = x
    if is_sequence_model(key):
        h = np.zeros_like(u)
        prev = np.zeros((n, spec.in_size))
        for t in range(seq_len):
            prev = 0.5 * prev + 0.5 * u[:, t]
            h[:, t] = prev
        u = h * 2.0  # the smoothed input has about half the spread; restore it
    w, b = _teacher(key)
    z = u @ w + b
    activation = spec.layers[-1].activation
    if activation == "tanh":
        y = np.tanh(z)
    elif activation == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-z))
    else:  # softmax
        e = np.exp(z - z.max(-1, keepdims=True))
        y = e / e.sum(-1, keepdims=True)
    return x.astype(np.float32), y.astype(np.float32)


def synthetic_datasets(key: str, *, n: int = 4096, seq_len: int = 32, val_fraction: float = 0.1,
                       seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Train and validation sets of synthetic data for ``key`` (see :func:`synthetic_arrays`).

    For tests and as a last resort only: the targets are a random function, not music.
    """
    x, y = synthetic_arrays(key, n, seq_len=seq_len, seed=seed)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return TensorDataset(xt[n_val:], yt[n_val:]), TensorDataset(xt[:n_val], yt[:n_val])


# --------------------------------------------------------------------------- choosing a source
def load_datasets(key: str, source: str, *, config, data_dir: str | Path | None = None) -> tuple[Dataset, Dataset]:
    """Train and validation sets for ``key`` from ``source`` ("corpus" or "synthetic"), checked.

    Raises
    ------
    InputError
        For an unknown source, a missing ``data_dir``, the corpus module not being there
        yet ("the corpus datasets are not built yet: …"), or data that does not fit the
        interface (:func:`check_datasets`).
    """
    if source == "synthetic":
        train, val = synthetic_datasets(key, n=config.synthetic_samples, seq_len=config.seq_len,
                                        val_fraction=config.val_fraction, seed=config.seed)
    elif source == "corpus":
        if data_dir is not None and not Path(data_dir).is_dir():
            raise InputError(f"--data-dir {data_dir}: no such folder")
        from kelly.ml.train.config import collection_set

        build = corpus_entry_point()
        extra = {}
        wanted = collection_set(getattr(config, "collections", "all"))
        if wanted is not None:
            extra["collections"] = wanted
        train, val = build(key, data_dir=None if data_dir is None else Path(data_dir), seq_len=config.seq_len,
                           val_fraction=config.val_fraction, seed=config.seed, **extra)
    else:
        raise InputError(f"unknown data source {source!r}; choose from {', '.join(SOURCES)}")
    check_datasets(key, train, val, source=f"{source} data")
    return train, val


def corpus_entry_point():
    """``kelly.ml.data.training_datasets``, or an InputError saying what is missing."""
    import importlib

    try:
        module = importlib.import_module("kelly.ml.data")
    except ModuleNotFoundError as exc:
        if exc.name in ("kelly.ml.data",):
            raise InputError("the corpus datasets are not built yet: kelly.ml.data does not exist in this "
                             "installation (use --data synthetic only to test the training machinery)") from None
        raise InputError(f"the corpus datasets cannot be loaded: kelly.ml.data needs {exc.name!r}, which is "
                         "not installed") from None
    build = getattr(module, CORPUS_ENTRY_POINT, None)
    if not callable(build):
        raise InputError(f"the corpus datasets are not built yet: kelly.ml.data has no {CORPUS_ENTRY_POINT}() "
                         "(see docs/training.md for the interface the trainer expects)")
    return build


__all__ = ["SOURCES", "TrainingDataset", "is_sequence_model", "expected_shapes", "check_datasets",
           "synthetic_arrays", "synthetic_datasets", "load_datasets", "corpus_entry_point", "CORPUS_ENTRY_POINT"]
