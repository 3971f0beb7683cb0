"""Writing a trained network where the composer finds it: RTNeural JSON plus a metadata sidecar.

``publish(result, out_dir, data=…)`` writes, atomically and as one group:

* ``<key>.meta.json``: what the weights are (model, data source, epochs, best epoch,
  validation loss and metrics beside the mean-target baseline's, loss, the config and
  its SHA-256, seed, process count, versions) and the SHA-256 of the model file;
* ``<key>.json``: the best weights in RTNeural's JSON schema, converted by
  :func:`kelly.ml.convert.spec_state_dict_to_rtneural` exactly as ``kelly export`` does.

The sidecar is committed first (so a kill between the two renames leaves a new sidecar
beside an old model, detectable by its ``model_sha256``, never the reverse). The folder
can then be given to ``kelly compose --models-dir`` or listed in ``$KELLY_MODELS``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kelly.fileio import json_bytes, write_files_atomic
from kelly.ml.convert import spec_state_dict_to_rtneural
from kelly.ml.export import rtneural_text
from kelly.ml.specs import SPECS
from kelly.ml.torch_models import numpy_state_dict

SYNTHETIC_NOTE = ("trained on synthetic data (a random function of random inputs): for testing the training "
                  "machinery only; these weights know nothing about music, do not ship them")


def published_names(key: str) -> list[str]:
    """The files :func:`publish` writes for ``key``, in commit order."""
    return [f"{key}.meta.json", SPECS[key].file_name]


def metadata(result, *, data: str, data_dir: str | Path | None, model_sha256: str) -> dict[str, Any]:
    """The sidecar's contents for a :class:`~kelly.ml.train.loop.TrainResult`."""
    import torch

    from kelly import __version__

    spec = SPECS[result.key]
    doc: dict[str, Any] = {
        "model": spec.name, "key": result.key, "file": spec.file_name, "model_sha256": model_sha256,
        "trained": True, "data": data, "data_dir": None if data_dir is None else str(data_dir),
    }
    if data == "synthetic":
        doc["note"] = SYNTHETIC_NOTE
    doc.update({
        "params": spec.params,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "loss": result.loss_name,
        "metrics": {"val_loss": result.best_val_loss, **result.best_metrics},
        "baseline": {"what": "predict the training set's mean target", **result.baseline},
        "n_train": result.n_train, "n_val": result.n_val, "world_size": result.world_size,
        "seed": result.config.seed, "config": result.config.to_dict(), "config_sha256": result.config.sha256(),
        "kelly_version": __version__, "torch_version": torch.__version__,
    })
    return doc


def publish(result, out_dir: str | Path, *, data: str, data_dir: str | Path | None = None,
            overwrite: bool = True) -> list[Path]:
    """Write ``result``'s best weights as RTNeural JSON with its sidecar into ``out_dir``.

    Raises
    ------
    kelly.errors.OutputError
        If a file cannot be written (or exists and ``overwrite`` is false).
    """
    out = Path(out_dir)
    spec = SPECS[result.key]
    text = rtneural_text(spec_state_dict_to_rtneural(spec, numpy_state_dict(result.model))).encode("utf-8")
    meta = metadata(result, data=data, data_dir=data_dir, model_sha256=hashlib.sha256(text).hexdigest())
    meta_name, model_name = published_names(result.key)
    return write_files_atomic({out / meta_name: json_bytes(meta), out / model_name: text}, overwrite=overwrite)


__all__ = ["publish", "published_names", "metadata", "SYNTHETIC_NOTE"]
