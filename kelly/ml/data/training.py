"""The trainer's entry point: per-network train and validation sets from the cached data.

``kelly train --data corpus`` calls :func:`training_datasets` (the interface is in
:mod:`kelly.ml.train.data`). It reads what :mod:`kelly.ml.data.corpus` converted
(``manifest.jsonl``, weak labels) and what :mod:`kelly.ml.data.composed` composed
(``composed.jsonl``, exact labels) in the data folder, and turns each piece into items:

==================  ===================================  =============================================
network             input                                target (mask)
==================  ===================================  =============================================
EmotionRecognizer   (seq, 128) log-mel frames of the     (seq, 64) the piece's embedding; reserved
                    piece's render (``render.py``; a     dims 43–62, padding and the first
                    training piece also re-orchestrated  RECOGNIZER_BURN_IN frames of each
                    when rendered with ``--remap``);     window masked
                    training windows get a random
                    level and tilt (:func:`colour`)
MelodyTransformer   (seq, 64) the embedding, repeated    (seq, 128) pitches sounding in each bar, key
                                                         of C (:func:`~kelly.ml.data.targets.note_steps`);
                                                         padding rows masked
HarmonyPredictor    (128,) harmony context, no audio     (64,) chord-class distribution of the piece
DynamicsEngine      (32,) embedding[0:32]                (16,) expression, masked where unsupervised
GroovePredictor     (64,) the embedding                  (32,) groove, masked where unsupervised
==================  ===================================  =============================================

The embedding is :func:`kelly.ml.schema.embed_vad` of the piece's labels: for Kelly's own
pieces the exact V/A/D, intensity and family with confidence 1; for corpus pieces the
weak labels, intensity 0.5, no family, confidence 0.5. A piece whose target the data
cannot supervise at all (expression of a notated chorale) gives no item.

The split is the fixed one of :mod:`kelly.ml.data.split` (by piece, hashed): training
items come from ``train`` pieces, validation items from ``validation`` pieces, and the
``test`` pieces are never returned. ``val_fraction`` and ``seed`` are accepted for the
trainer's interface and do not move pieces between sets (that is what keeps windows of
one piece out of both).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from kelly.errors import InputError
from kelly.ml import schema as S

#: Confidence written into the embedding of a piece with weak labels.
WEAK_CONFIDENCE = 0.5
#: Intensity given to a piece with weak labels (they say nothing about it).
WEAK_INTENSITY = 0.5


def record_embedding(record: dict[str, Any]) -> np.ndarray:
    """The 64-d embedding of a manifest record's labels (exact for composed pieces, weak otherwise)."""
    lab = record["labels"]
    v = float(np.clip(lab["valence"], -1, 1))
    a = float(np.clip(lab["arousal"], 0, 1))
    d = float(np.clip(lab.get("dominance", 0.5), 0, 1))
    if record.get("collection") == "composed":
        return S.embed_vad(v, a, d, intensity=float(lab.get("intensity", 0.6)), confidence=1.0,
                           family=record.get("family", ""), source="explicit")
    return S.embed_vad(v, a, d, intensity=WEAK_INTENSITY, confidence=WEAK_CONFIDENCE, source="explicit")


#: Training renders' loudness moves by up to this much (normalised mel units: 0.1 = 8 dB) …
COLOUR_GAIN = 0.1
#: … and their spectral tilt, lowest to highest band, by up to this much (0.08 = 6.4 dB).
COLOUR_TILT = 0.08


def colour(rows: np.ndarray, rng: np.random.Generator, n_real: int) -> np.ndarray:
    """One training window heard through a different level and EQ (normalised mel frames).

    Every training render comes from one soundfont at one level; without this the
    recognizer learns that soundfont's balance. A random gain and a random linear tilt
    across the 128 bands (seeded by the piece, so the data set is the same every run)
    stand in for other instruments, mixes and rooms. Padding rows (from ``n_real`` on) stay zero.
    """
    gain = rng.uniform(-COLOUR_GAIN, COLOUR_GAIN)
    tilt = rng.uniform(-COLOUR_TILT, COLOUR_TILT) * np.linspace(-1.0, 1.0, rows.shape[1], dtype=np.float32)
    out = rows.copy()
    out[:n_real] = np.clip(rows[:n_real] + gain + tilt[None, :], 0.0, 1.0)
    return out


def _windows(steps: np.ndarray, seq_len: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut (n, k) rows into windows of ``seq_len`` rows; the last is padded, with a row mask."""
    out = []
    for start in range(0, len(steps), seq_len):
        chunk = steps[start:start + seq_len]
        rows = np.zeros((seq_len, steps.shape[1]), dtype=np.float32)
        rows[:len(chunk)] = chunk
        mask = np.zeros(seq_len, dtype=np.float32)
        mask[:len(chunk)] = 1.0
        out.append((rows, mask))
    return out


def piece_items(key: str, record: dict[str, Any], root: Path, *, seq_len: int) -> list[tuple[np.ndarray, ...]]:
    """The ``(input, target, mask)`` items of one piece for network ``key`` (may be empty)."""
    from kelly.ml.data import targets as T
    from kelly.ml.data.midi import read_notes

    emb = record_embedding(record)
    tonic = int(record["key"]["tonic_pc"])
    if key == "emotionrecognizer":
        from kelly.emotion.audio import RECOGNIZER_BURN_IN, load_audio, log_mel_frames
        from kelly.ml.data.render import REMAP_FOLDER, audio_path

        train = record.get("split") == "train"
        # training pieces are also heard re-orchestrated (render.py --remap), when that render exists
        wavs = [audio_path(record, root)] + ([audio_path(record, root, folder=REMAP_FOLDER)] if train else [])
        wavs = [w for w in wavs if w.is_file()]
        target_mask = np.ones(S.EMBED_DIM, dtype=np.float32)
        target_mask[S.RESERVED_SLICE] = 0.0
        rng = np.random.default_rng(zlib.crc32(str(record.get("id", "")).encode("utf-8")))
        items = []
        for wav in wavs:
            y, sr = load_audio(wav)
            mel = log_mel_frames(y, sr).astype(np.float32)
            for rows, row_mask in _windows(mel, seq_len):
                if train:
                    rows = colour(rows, rng, int(row_mask.sum()))
                row_mask[:min(RECOGNIZER_BURN_IN, seq_len - 1)] = 0.0  # the LSTM is still gathering context
                items.append((rows, np.tile(emb, (seq_len, 1)), row_mask[:, None] * target_mask[None, :]))
        return items
    if key == "harmonypredictor" and record.get("collection") == "composed":
        from kelly.ml.data.composed import chord_steps

        dist = T.chord_distribution(np.array(chord_steps(record), dtype=np.int64))
        if dist.sum() <= 0:
            return []
        return [(S.harmony_context(emb), dist, np.ones(S.N_CHORDS, dtype=np.float32))]
    notes = read_notes(root / record["midi"])
    # a converted score's velocities vary only for accent marks unless it had dynamic marks
    dynamics = None if record.get("collection") == "composed" else bool(
        (record.get("label_terms") or {}).get("dynamics", False))
    if key == "melodytransformer":
        steps = T.note_steps(notes, tonic, segment="bar")
        return [(np.tile(emb, (seq_len, 1)), rows, np.repeat(m[:, None], S.N_NOTES, axis=1))
                for rows, m in _windows(steps, seq_len)]
    if key == "harmonypredictor":
        dist = T.chord_distribution(T.chord_sequence(notes, tonic, segment=_chord_segment(notes)))
        if dist.sum() <= 0:
            return []
        return [(S.harmony_context(emb), dist, np.ones(S.N_CHORDS, dtype=np.float32))]
    if key == "dynamicsengine":
        values, mask = T.expression_target(notes, dynamics=dynamics)
        return [(S.dynamics_context(emb), values, mask.astype(np.float32))] if mask.any() else []
    if key == "groovepredictor":
        values, mask = T.groove_target(notes, dynamics=dynamics)
        return [(emb, values, mask.astype(np.float32))] if mask.any() else []
    raise InputError(f"unknown network {key!r}")


def _chord_segment(notes) -> str:
    p = notes.pitched()
    poly = len(np.unique(p.onset)) < len(p) or len(np.unique(p.track)) > 1
    return "beat" if poly else "bar"


def load_records(data_dir: str | os.PathLike | None = None, *, collections=None) -> list[dict[str, Any]]:
    """Every usable record (status ok, MIDI present) of the corpus and composed manifests
    (only those of ``collections`` when given: a set of collection names)."""
    from kelly.ml.data.composed import load_composed
    from kelly.ml.data.corpus import load_manifest
    from kelly.ml.data.store import data_dir as resolve

    root = resolve(data_dir)
    recs = load_manifest(root) + load_composed(root)
    if collections is not None:
        recs = [r for r in recs if r.get("collection") in collections]
    return [r for r in recs if r.get("midi") and r.get("labels") and (r.get("key") or {}).get("tonic_pc") is not None
            and (root / r["midi"]).is_file()]


def training_arrays(key: str, *, data_dir: str | os.PathLike | None = None, seq_len: int = 32,
                    collections=None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stacked ``(inputs, targets, masks)`` per split (``train``, ``validation``, ``test``) for ``key``.

    Raises
    ------
    InputError
        An unknown network, a data folder with no converted or composed pieces, or none that
        supervises this network (with what to run to get some).
    """
    from kelly.ml.data.split import SPLITS, split_of
    from kelly.ml.data.store import data_dir as resolve
    from kelly.ml.specs import get_spec

    key = get_spec(key).key
    if not isinstance(seq_len, int) or seq_len < 1:
        raise InputError(f"seq_len must be a whole number ≥ 1, got {seq_len!r}")
    root = resolve(data_dir)
    recs = load_records(root, collections=collections)
    if not recs:
        raise InputError(f"no training data in {root}: build it first (python -m kelly.ml.data convert, "
                         "python -m kelly.ml.data compose; see docs/data.md)")
    per: dict[str, list] = {s: [] for s in SPLITS}
    for rec in recs:
        per[split_of(rec)].extend(piece_items(key, rec, root, seq_len=seq_len))
    if not per["train"] and not per["validation"]:
        hint = {"emotionrecognizer": "render the pieces first (python -m kelly.ml.data render)",
                "dynamicsengine": "notated music has no dynamics or timing: compose Kelly's set "
                                  "(python -m kelly.ml.data compose) or use performed MIDI",
                }.get(key, "convert or compose more pieces")
        raise InputError(f"no piece in {root} supervises the {key}: {hint}; see docs/data.md")
    out = {}
    for s, items in per.items():
        if items:
            out[s] = tuple(np.stack([it[i] for it in items]).astype(np.float32) for i in range(3))
        else:
            spec = get_spec(key)
            shape_x = (0, seq_len, spec.in_size) if spec.lstm_sizes else (0, spec.in_size)
            shape_y = (0, seq_len, spec.out_size) if spec.lstm_sizes else (0, spec.out_size)
            out[s] = (np.zeros(shape_x, np.float32), np.zeros(shape_y, np.float32), np.zeros(shape_y, np.float32))
    return out


def training_datasets(key: str, *, data_dir: str | os.PathLike | None = None, seq_len: int = 32,
                      val_fraction: float = 0.1, seed: int = 0, collections=None):
    """Train and validation ``TensorDataset``s of ``(input, target, mask)`` for network ``key``.

    The interface :mod:`kelly.ml.train.data` expects (``kelly train --data corpus``). See
    the module docstring for what the items hold; ``val_fraction`` and ``seed`` do not
    change the split (it is by piece). ``collections`` (a set of names) keeps only those
    collections' pieces: the shipped weights leave Essen out (non-commercial licence).

    Raises
    ------
    InputError
        As :func:`training_arrays`, or when the training or validation set comes out empty
        (too few pieces converted: convert more).
    """
    import torch
    from torch.utils.data import TensorDataset

    arrays = training_arrays(key, data_dir=data_dir, seq_len=seq_len, collections=collections)
    sets = []
    for name in ("train", "validation"):
        x, y, m = arrays[name]
        if len(x) == 0:
            raise InputError(f"the {name} set for {key} is empty: too few pieces in the data folder "
                             "(convert or compose more; the split is 80/10/10 by piece)")
        sets.append(TensorDataset(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)))
    return sets[0], sets[1]
