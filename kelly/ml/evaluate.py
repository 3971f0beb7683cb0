"""How well trained networks do on data they never saw: the numbers in the model card.

Two checks, both on the ``test`` split of :mod:`kelly.ml.data.split` (by piece; for
Kelly's composed pieces by emotion, so the test emotions were never trained on):

* :func:`test_metrics`: each network's loss and headline metrics on the test items
  (:func:`kelly.ml.data.training.training_arrays`), beside the trivial baseline that
  predicts the *training* set's mean target, computed by the same code
  (:mod:`kelly.ml.train.objectives`).
* :func:`recognizer_quadrants`: the EmotionRecognizer listening to the test pieces'
  renders through :func:`kelly.emotion.audio.recognize_audio` (the same path as
  ``kelly feel --audio``), its overall valence/arousal read as a quadrant and compared
  with the piece's label: accuracy and a confusion matrix. Run it on renders made with a
  soundfont the recognizer never heard (``python -m kelly.ml.data render --split test
  --soundfont TimGM6mb.sf2 --folder audio-timgm``) for the held-out figure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kelly.errors import InputError

#: Quadrants in the order the confusion matrix lists them (rows: label, columns: heard).
QUADRANTS = ("V+A+", "V-A+", "V-A-", "V+A-")
#: Arousal at or above this is "activated" (the middle of Kelly's [0, 1] arousal).
AROUSAL_SPLIT = 0.5
#: A label closer than this to an axis (valence 0 or arousal 0.5) has no quadrant to get right:
#: "worry" sits at arousal 0.5 exactly. Such pieces are counted apart (``on_axis``).
AXIS_MARGIN = 0.05


def on_axis(valence: float, arousal: float, margin: float = AXIS_MARGIN) -> bool:
    """Whether a label lies on (within ``margin`` of) the valence or arousal axis."""
    return abs(valence) < margin or abs(arousal - AROUSAL_SPLIT) < margin


def quadrant(valence: float, arousal: float) -> str:
    """``"V+A+"`` … for a valence in [-1, 1] and an arousal in [0, 1] (0 valence counts as +)."""
    return ("V+" if valence >= 0 else "V-") + ("A+" if arousal >= AROUSAL_SPLIT else "A-")


def recognizer_quadrants(models_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                         folder: str = "audio", split: str = "test") -> dict[str, Any]:
    """Quadrant accuracy of the recognizer in ``models_dir`` on the renders in ``folder``.

    Returns ``{"n", "correct", "accuracy", "labels", "confusion", "on_axis", "pieces", "model"}``
    where ``confusion[i][j]`` counts pieces labelled ``QUADRANTS[i]`` heard as ``QUADRANTS[j]``
    over the pieces whose label has a quadrant (:func:`on_axis` false), and ``on_axis``
    reports the others apart (``n``, ``correct`` by the ≥ rule, their emotions).

    Raises
    ------
    InputError
        When no composed piece of ``split`` has a render in ``folder`` (render them first).
    """
    from kelly.emotion.audio import recognize_audio
    from kelly.ml.data.composed import load_composed
    from kelly.ml.data.render import audio_path
    from kelly.ml.data.store import data_dir as resolve

    root = resolve(data_dir)
    recs = [r for r in load_composed(root) if r.get("split") == split]
    confusion = np.zeros((len(QUADRANTS), len(QUADRANTS)), dtype=int)
    axis = {"n": 0, "correct": 0, "emotions": []}
    pieces = []
    model = ""
    for rec in recs:
        wav = audio_path(rec, root, folder=folder)
        if not wav.is_file():
            continue
        reading = recognize_audio(wav, models_dir=models_dir)
        model = reading.model
        v, a = rec["labels"]["valence"], rec["labels"]["arousal"]
        want = quadrant(v, a)
        got = quadrant(reading.overall.valence, reading.overall.arousal)
        if on_axis(v, a):
            axis["n"] += 1
            axis["correct"] += int(want == got)
            if rec.get("emotion") not in axis["emotions"]:
                axis["emotions"].append(rec.get("emotion"))
        else:
            confusion[QUADRANTS.index(want), QUADRANTS.index(got)] += 1
        pieces.append({"id": rec["id"], "emotion": rec.get("emotion"), "label": want, "heard": got,
                       "on_axis": on_axis(v, a),
                       "valence": round(reading.overall.valence, 3), "arousal": round(reading.overall.arousal, 3)})
    if not pieces:
        raise InputError(f"no {split} piece has a render in {root / folder}: render them first "
                         f"(python -m kelly.ml.data render --split {split} --folder {folder})")
    n = int(confusion.sum())
    correct = int(np.trace(confusion))
    return {"n": n, "correct": correct, "accuracy": correct / n if n else float("nan"), "labels": list(QUADRANTS),
            "confusion": confusion.tolist(), "on_axis": axis, "pieces": pieces, "model": model, "folder": folder}


def _torch_model(key: str, path: Path):
    """A torch module holding the weights of a model file (JSON or packed), checked against its sidecar."""
    from kelly.ml.export import load_state
    from kelly.ml.torch_models import model_from_state_dict

    state, *_ = load_state(path.parent, key)
    return model_from_state_dict(key, state)


def test_metrics(key: str, models_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                 seq_len: int = 32, collections=None, batch: int = 256) -> dict[str, Any]:
    """Loss and metrics of network ``key`` on the test split, beside the training-mean baseline.

    Returns ``{"n_test", "model": {...}, "baseline": {...}}``; the dicts hold ``loss`` and
    the network's metrics (:data:`kelly.ml.train.objectives.OBJECTIVES`).
    """
    import torch

    from kelly.ml.data.training import training_arrays
    from kelly.ml.processor import MultiModelProcessor
    from kelly.ml.specs import get_spec
    from kelly.ml.train.objectives import Evaluation, evaluate_constant, mean_target

    spec = get_spec(key)
    path = MultiModelProcessor(search_path=[Path(models_dir)], load=False).find_model_file(spec.key)
    if path is None:
        raise InputError(f"no {spec.key} model in {models_dir}")
    arrays = training_arrays(spec.key, data_dir=data_dir, seq_len=seq_len, collections=collections)
    x, y, m = (torch.from_numpy(a) for a in arrays["test"])
    if len(x) == 0:
        raise InputError(f"the test split has no items for {spec.key}")
    tx, ty, tm = (torch.from_numpy(a) for a in arrays["train"])
    constant = mean_target([(tx, ty, tm)], spec.out_size)
    batches = [(x[i:i + batch], y[i:i + batch], m[i:i + batch]) for i in range(0, len(x), batch)]
    net = _torch_model(spec.key, path).eval()
    ev = Evaluation(spec.key, spec.out_size)
    with torch.no_grad():
        for bx, by, bm in batches:
            pred, _ = net(bx)
            ev.update(pred, by, bm)
    return {"n_test": int(len(x)), "model": ev.result(), "baseline": evaluate_constant(spec.key, constant, batches)}


__all__ = ["QUADRANTS", "quadrant", "recognizer_quadrants", "test_metrics"]
