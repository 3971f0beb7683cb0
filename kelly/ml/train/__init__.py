"""Training Kelly's five networks (``kelly train``; needs torch). See docs/training.md.

==========================  ==============================================================
module                      what it holds
==========================  ==============================================================
``config``                  ``TrainConfig`` and the TOML loader (no torch)
``data``                    the dataset interface, the synthetic fixture, ``--data`` sources
``objectives``              the loss and metrics per network (one table), the mean baseline
``loop``                    ``train_model`` (reads top to bottom), ``TrainResult``
``checkpoint``              checkpoint contents, random states, ``weights_only`` loading
``distributed``             torchrun / DistributedDataParallel set-up
``artifacts``               trained weights → RTNeural JSON and a metadata sidecar
==========================  ==============================================================

Importing this package does not import torch; ``train_model``, ``TrainResult``,
``publish`` and ``load_datasets`` are loaded on first use.
"""

from __future__ import annotations

from kelly.ml.train.config import TrainConfig, load_config, load_configs

_LAZY = {
    "train_model": "kelly.ml.train.loop",
    "TrainResult": "kelly.ml.train.loop",
    "publish": "kelly.ml.train.artifacts",
    "load_datasets": "kelly.ml.train.data",
    "synthetic_datasets": "kelly.ml.train.data",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kelly.ml.train' has no attribute {name!r}")


__all__ = ["TrainConfig", "load_config", "load_configs", *_LAZY]
