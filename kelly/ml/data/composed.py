"""Pieces Kelly composes for known emotions: training data whose labels are exact.

The thesaurus (:mod:`kelly.emotion.thesaurus`) places 95 named emotions at known
points of valence/arousal/dominance. :func:`compose_dataset` composes each of them
with several seeds (:func:`kelly.generator.compose`) and caches the MIDI with a
manifest, the same way as the converted corpus:

``<data_dir>/composed/<emotion>__s<seed>.mid`` and ``<data_dir>/composed.jsonl``

Each record carries the emotion's exact V/A/D and intensity (the labels *are* the
composer's input, not a proxy), its family, the key, mode, tempo and metre Kelly chose,
and the chord progression as HarmonyPredictor classes relative to the tonic (from the
explanation, so exact as well). What this data teaches is Kelly's own mapping from
emotion to music: useful to train the networks to reproduce or to recognise it (the
EmotionRecognizer on renders of these pieces, ``render.py``), not evidence of how
people hear emotion in music.

Split: ``group`` is the emotion's name, so every seed of one emotion lands in the same
split and the test set holds emotions the networks never saw in training.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable

from kelly.errors import InputError
from kelly.ml.data.split import split_of
from kelly.ml.data.store import DATA_VERSION, Manifest, data_dir as resolve_data_dir, progress, safe_name, write_file

MANIFEST_NAME = "composed.jsonl"
FOLDER = "composed"
#: Seeds composed per emotion unless told otherwise.
DEFAULT_SEEDS = (0, 1, 2, 3)
DEFAULT_BARS = 8


def emotion_names(kinds: Iterable[str] = ("base", "node", "compound")) -> list[str]:
    """Names of the thesaurus emotions of the given kinds, in the thesaurus's order."""
    from kelly.emotion.thesaurus import load_thesaurus

    wanted = set(kinds)
    return [e.name for e in load_thesaurus().entries if e.kind in wanted]


def piece_id(emotion: str, seed: int) -> str:
    return f"composed/{safe_name(emotion.replace(' ', '-'))}/s{int(seed)}"


def compose_piece(emotion: str, seed: int, root: str | os.PathLike, *, bars: int = DEFAULT_BARS,
                  intensity: float | None = None) -> dict[str, Any]:
    """Compose one piece into ``root`` and return its manifest record."""
    from kelly.composer import ComposeOptions
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import compose
    from kelly.ml.data.targets import chord_class_of
    from kelly.theory.pitch import parse_note

    t0 = time.perf_counter()
    state = state_for(emotion, intensity)
    comp = compose(state, ComposeOptions(bars=bars, seed=int(seed)))
    pid = piece_id(emotion, seed)
    rel = Path(FOLDER) / f"{safe_name(emotion.replace(' ', '-'))}__s{int(seed)}.mid"
    write_file(Path(root) / rel, comp.song.to_bytes())
    ex = comp.explanation.model_dump()
    params = ex.get("parameters", {})
    key_name = str(params.get("key", "")) or (comp.song.key_signature or "C")
    tonic_name = key_name.split()[0].rstrip("m") if " " in key_name else key_name.rstrip("m")
    tonic_pc = parse_note(tonic_name)[1]
    num, den = comp.song.time_signature
    beats_per_bar = num if den == 4 else (num // 3 if den == 8 and num % 3 == 0 else num)
    chords = []
    for ch in (ex.get("progression") or {}).get("chords", []):
        try:
            root_pc = parse_note(ch["root"])[1]
            cls = chord_class_of(root_pc, ch["quality"], tonic_pc)
        except (InputError, KeyError, TypeError):
            cls = -1
        start = (int(ch.get("start_bar", 1)) - 1) * beats_per_bar + float(ch.get("beat", 1.0)) - 1.0
        chords.append([round(start, 3), round(float(ch.get("bars", 1.0)) * beats_per_bar, 3), int(cls)])
    record = {
        "id": pid, "collection": "composed", "emotion": state.label, "family": state.family, "seed": int(seed),
        "group": f"composed:{state.label}", "status": "ok", "midi": rel.as_posix(), "version": DATA_VERSION,
        "labels": {"valence": state.valence, "arousal": state.arousal, "dominance": state.dominance,
                   "intensity": state.intensity},
        "key": {"name": key_name, "tonic_pc": int(tonic_pc), "mode": params.get("detailed_mode"),
                "family": params.get("mode")},
        "tempo_bpm": params.get("tempo_bpm"), "meter": f"{num}/{den}", "bars": bars,
        "notes": comp.song.note_count(), "chords": chords,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    record["split"] = split_of(record)
    return record


def _work(args: tuple[str, int, str, int, float | None]) -> dict[str, Any]:
    emotion, seed, root, bars, intensity = args
    try:
        return compose_piece(emotion, seed, root, bars=bars, intensity=intensity)
    except Exception as exc:  # recorded; the grid goes on
        return {"id": piece_id(emotion, seed), "collection": "composed", "emotion": emotion, "seed": int(seed),
                "status": "error", "error": f"{type(exc).__name__}: {str(exc)[:200]}", "version": DATA_VERSION}


def compose_dataset(*, data_dir: str | os.PathLike | None = None, emotions: Iterable[str] | None = None,
                    seeds: Iterable[int] = DEFAULT_SEEDS, bars: int = DEFAULT_BARS, intensity: float | None = None,
                    limit: int | None = None, workers: int = 1, show_progress: bool = True) -> dict[str, Any]:
    """Compose the grid emotions × seeds (resumable, parallel, bounded) and list it in ``composed.jsonl``.

    Parameters
    ----------
    emotions : iterable of str or None
        Thesaurus names; default all 95 (:func:`emotion_names`).
    seeds : iterable of int
    bars : int
        Length of each piece.
    intensity : float in [0, 1] or None
        Default: the thesaurus's default intensity (0.6).
    limit : int or None
        At most this many pieces in total (grid order: emotion by emotion, seeds inside).
    workers : int
        Processes composing in parallel.

    Returns
    -------
    dict
        ``{"data_dir", "manifest", "composed", "skipped", "errors", "seconds", "total"}``.
    """
    from kelly.emotion.thesaurus import load_thesaurus

    names = list(emotions) if emotions is not None else emotion_names()
    th = load_thesaurus()
    names = [th.get(n).name for n in names]  # unknown names: InputError with suggestions
    seeds = [int(s) for s in seeds]
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number ≥ 1, got {workers!r}")
    root = resolve_data_dir(data_dir, create=True)
    manifest = Manifest(root / MANIFEST_NAME)
    grid = [(n, s) for n in names for s in seeds]
    if limit is not None:
        grid = grid[:max(0, int(limit))]
    have = {r["id"]: r for r in manifest.records()}
    todo = [(n, s, str(root), int(bars), intensity) for n, s in grid
            if piece_id(n, s) not in have or not (root / have[piece_id(n, s)].get("midi", "")).is_file()]
    t0 = time.perf_counter()
    done = errors = 0
    if workers == 1 or len(todo) <= 1:
        results = (_work(a) for a in todo)
    else:
        import multiprocessing

        pool = multiprocessing.get_context().Pool(processes=min(workers, len(todo)))
        results = pool.imap_unordered(_work, todo, chunksize=4)
    try:
        for rec in progress(results, total=len(todo), desc="composed", enabled=show_progress):
            manifest.append([rec])
            done += 1
            errors += rec.get("status") != "ok"
    finally:
        if workers > 1 and len(todo) > 1:
            pool.close()
            pool.join()
    return {"data_dir": str(root), "manifest": str(manifest.path), "composed": done, "skipped": len(grid) - len(todo),
            "errors": errors, "seconds": round(time.perf_counter() - t0, 2), "total": len(grid)}


def load_composed(data_dir: str | os.PathLike | None = None, *, status: str | None = "ok") -> list[dict[str, Any]]:
    """The records of the composed dataset."""
    from kelly.ml.data.store import read_manifest

    recs = read_manifest(resolve_data_dir(data_dir) / MANIFEST_NAME)
    return [r for r in recs if status is None or r.get("status") == status]


def chord_steps(record: dict[str, Any], n_beats: int | None = None) -> list[int]:
    """The record's chord classes, one per beat (−1 where no chord is listed)."""
    chords = record.get("chords") or []
    end = max((int(round(s + d)) for s, d, _ in chords), default=0)
    n = end if n_beats is None else int(n_beats)
    out = [-1] * n
    for start, length, cls in chords:
        for b in range(int(round(start)), min(n, int(round(start + length)))):
            out[b] = int(cls)
    return out
