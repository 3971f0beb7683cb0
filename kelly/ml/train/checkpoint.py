"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a dict of tensors and plain Python values (no pickled classes), so it
loads with ``torch.load(path, weights_only=True)``:

=================  =====================================================================
key                value
=================  =====================================================================
format, version    ``"kelly-train-checkpoint"``, 1
model_key          the network (``"dynamicsengine"``)
model              its ``state_dict`` (unwrapped from DistributedDataParallel)
best_model         the ``state_dict`` of the best epoch (so resuming needs no other file)
optimizer          the AdamW ``state_dict``
rng                the random states: ``torch`` (CPU), ``cuda`` (list, one per device),
                   ``numpy`` (MT19937 state as a tensor and numbers), ``python`` (list),
                   ``generator`` (the DataLoader's ``torch.Generator``)
epoch              epochs completed
best_val_loss      the lowest validation loss so far; ``best_epoch`` the epoch it was reached
stop_ref_loss      the loss that last reset the patience counter (a fall of ``min_delta``)
bad_epochs         epochs since then (the patience counter)
stopped_early      whether early stopping ended the run
history            the per-epoch metrics rows so far
baseline           the mean-target baseline's loss and metrics
config             the :class:`~kelly.ml.train.config.TrainConfig` as a dict; ``config_sha256``
world_size         processes that trained it
=================  =====================================================================

``last.pt`` is written after every epoch, ``best.pt`` whenever the validation loss
improves; each through :func:`kelly.fileio.write_files_atomic` (a temporary file, fsync,
rename), so a kill leaves either the previous checkpoint or the new one, never half.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kelly.errors import FileFormatError

FORMAT = "kelly-train-checkpoint"
VERSION = 1
#: The largest checkpoint read back (a MelodyTransformer with its AdamW state is about 8 MB).
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a training run touches, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [int(version), [int(v) for v in internal], gauss_next],
        "generator": generator.get_state(),
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Put back the states :func:`capture_rng` took."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    generator.set_state(state["generator"])


def checkpoint_bytes(checkpoint: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    return buf.getvalue()


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint read with ``weights_only=True``.

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable, too large or not a Kelly training checkpoint.
    """
    from kelly.fileio import read_regular_file, show_path

    data = read_regular_file(path, what="training checkpoint", max_bytes=MAX_CHECKPOINT_BYTES)
    try:
        ckpt = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise FileFormatError(f"{show_path(path)}: not a readable training checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") \
            from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FileFormatError(f"{show_path(path)}: not a Kelly training checkpoint")
    if ckpt.get("version") != VERSION:
        raise FileFormatError(f"{show_path(path)}: checkpoint version {ckpt.get('version')!r}, this Kelly reads "
                              f"version {VERSION}")
    return ckpt


__all__ = ["FORMAT", "VERSION", "capture_rng", "restore_rng", "checkpoint_bytes", "load_checkpoint"]
