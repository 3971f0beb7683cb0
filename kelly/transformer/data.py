"""Token datasets for the transformer: labelled pieces → compound tokens, split by piece.

Where the pieces come from
--------------------------
The corpus the five networks train on (``python -m kelly.ml.data``, ``docs/data.md``):
``build/corpus/manifest.jsonl`` (music21's collections, converted to MIDI, each with weak
valence/arousal/dominance labels from mode, tempo and density) and
``build/corpus/composed.jsonl`` (Kelly's own pieces for 95 emotions × 8 seeds, labelled
exactly). Each record already carries its ``split`` (by piece group, never by window,
:mod:`kelly.ml.data.split`), which is kept. The ``collections`` setting picks which
collections are read; Essen is left out by default (its licence is non-commercial).

Without a corpus (a fresh clone, CI) :func:`composed_pieces` composes a small labelled
set on the spot with the rule engines, so tests and tiny runs need nothing downloaded.

What a dataset holds
--------------------
:class:`TokenSet`: every piece's compound tokens end to end (``tokens`` [N, F] int16),
the row where each piece starts (``starts`` [P + 1]), and each piece's emotion
(``emotion`` [P, 3]: valence, arousal, dominance). Saved as one ``.npz`` per split.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from kelly.errors import FileFormatError, InputError, KellyError

#: Collections read by default (Essen left out: its licence is non-commercial; see docs/data.md).
DEFAULT_COLLECTIONS = ("composed", "bach", "oneills", "ryans", "airds", "palestrina")
SPLITS = ("train", "validation", "test")
#: Longest piece kept, in compound tokens (longer ones are cut at a bar line before this).
MAX_PIECE_TOKENS = 8192


@dataclass
class TokenSet:
    """Pieces as compound tokens, end to end, with their emotions."""

    tokens: np.ndarray        # int16 [N, F]
    starts: np.ndarray        # int64 [P + 1]: piece p is tokens[starts[p]:starts[p + 1]]
    emotion: np.ndarray       # float32 [P, 3]
    ids: list[str]
    skipped: dict | None = None  # pieces left out while building, by reason

    def __len__(self) -> int:
        return len(self.ids)

    def piece(self, p: int) -> np.ndarray:
        return self.tokens[self.starts[p]:self.starts[p + 1]]

    @property
    def n_tokens(self) -> int:
        return int(self.starts[-1])

    def save(self, path: str | os.PathLike) -> None:
        """One ``.npz``, written atomically."""
        import io

        from kelly.fileio import write_bytes_atomic

        buf = io.BytesIO()
        np.savez(buf, tokens=self.tokens, starts=self.starts, emotion=self.emotion,
                 ids=np.array(json.dumps(self.ids)))
        write_bytes_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, width: int) -> "TokenSet":
        """Read a saved set, checking its shapes (``width`` = number of families)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                tokens, starts, emotion = z["tokens"], z["starts"], z["emotion"]
                ids = json.loads(str(z["ids"]))
        except (OSError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{path}: not a transformer token set ({exc})") from None
        if tokens.ndim != 2 or tokens.shape[1] != width or starts.ndim != 1 or len(starts) != len(ids) + 1 \
                or emotion.shape != (len(ids), 3) or starts[-1] != len(tokens):
            raise FileFormatError(f"{path}: token set shapes do not fit a {width}-family tokenizer; rebuild it")
        return cls(tokens, starts, emotion, ids)


def _records(corpus: Path, collections: Sequence[str]) -> list[dict]:
    """The corpus's records of the chosen collections (status ok), in file order."""
    out = []
    for name in ("manifest.jsonl", "composed.jsonl"):
        path = corpus / name
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    if rec.get("status") == "ok" and rec.get("collection") in collections:
                        out.append(rec)
    if not out:
        raise InputError(f"no pieces of {', '.join(collections)} in {corpus} (build the corpus with "
                         "`python -m kelly.ml.data`, see docs/data.md)")
    return out


def _emotion_of(rec: dict) -> np.ndarray:
    lab = rec.get("labels") or {}
    return np.array([float(lab.get("valence", 0.0)), float(lab.get("arousal", 0.5)),
                     float(lab.get("dominance", 0.5))], dtype=np.float32)


def build_from_corpus(corpus: str | os.PathLike, tokenizer, *, collections: Sequence[str] = DEFAULT_COLLECTIONS,
                      limit: int | None = None, progress: Callable[[int, int], None] | None = None
                      ) -> dict[str, TokenSet]:
    """Tokenize the corpus's pieces into one :class:`TokenSet` per split."""
    from kelly.song import read_midi

    corpus = Path(corpus)
    records = _records(corpus, collections)
    if limit is not None:
        records = records[:limit]
    pieces: dict[str, list] = {s: [] for s in SPLITS}
    skipped: dict[str, int] = {}
    for i, rec in enumerate(records):
        try:
            tokens = tokenizer.encode(read_midi(corpus / rec["midi"]))
        except KellyError as exc:  # a metre the tokens cannot hold (4/2 in Palestrina ...): left out, counted
            reason = str(exc).split(";")[0]
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        pieces[rec.get("split", "train")].append((rec["id"], tokens, _emotion_of(rec)))
        if progress is not None:
            progress(i + 1, len(records))
    sets = {s: _pack(p, tokenizer) for s, p in pieces.items()}
    for s in sets.values():
        s.skipped = dict(skipped)
    return sets


def composed_pieces(tokenizer, *, emotions: Iterable[str] = ("calm", "grief", "happiness", "fury", "hope", "terror"),
                    seeds: Iterable[int] = (0, 1), bars: int = 8) -> dict[str, TokenSet]:
    """A small labelled set composed on the spot (no corpus needed): tests and tiny runs.

    The split is by emotion (as the corpus splits Kelly's pieces): the last emotion is the
    validation set, the others train; there is no test set.
    """
    from kelly.composer import ComposeOptions, get_composer
    from kelly.emotion.thesaurus import state_for

    composer = get_composer("rules")
    names = list(emotions)
    pieces: dict[str, list] = {s: [] for s in SPLITS}
    for k, name in enumerate(names):
        state = state_for(name)
        split = "validation" if k == len(names) - 1 else "train"
        for seed in seeds:
            song = composer.compose(state, ComposeOptions(bars=bars, seed=seed)).song
            emo = np.array([state.valence, state.arousal, state.dominance], dtype=np.float32)
            pieces[split].append((f"composed/{name}/s{seed}", tokenizer.encode(song), emo))
    return {s: _pack(p, tokenizer) for s, p in pieces.items()}


def _pack(pieces: list, tokenizer) -> TokenSet:
    width = len(tokenizer.sizes)
    arrays, ids, emotions = [], [], []
    for pid, tokens, emo in pieces:
        tokens = np.asarray(tokens)
        if len(tokens) > MAX_PIECE_TOKENS:
            tokens = tokens[:MAX_PIECE_TOKENS]
        arrays.append(tokens.astype(np.int16))
        ids.append(pid)
        emotions.append(emo)
    starts = np.zeros(len(arrays) + 1, dtype=np.int64)
    if arrays:
        starts[1:] = np.cumsum([len(a) for a in arrays])
    tokens = np.concatenate(arrays) if arrays else np.zeros((0, width), dtype=np.int16)
    emotion = np.stack(emotions) if emotions else np.zeros((0, 3), dtype=np.float32)
    return TokenSet(tokens, starts, emotion, ids)


def windows(ts: TokenSet, block: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training windows of ``block + 1`` rows (inputs and next-token targets), with emotions.

    A window starts at a random row of a random piece (pieces chosen in proportion to
    their length) and is padded with PAD rows (type 0) past the piece's end.
    """
    width = ts.tokens.shape[1]
    lengths = np.diff(ts.starts)
    if len(lengths) == 0 or lengths.sum() < 2:
        raise InputError("the token set is empty")
    prob = lengths / lengths.sum()
    out = np.zeros((n, block + 1, width), dtype=np.int64)
    emo = np.zeros((n, 3), dtype=np.float32)
    pieces = rng.choice(len(lengths), size=n, p=prob)
    for i, p in enumerate(pieces):
        length = int(lengths[p])
        start = int(rng.integers(0, max(1, length - 1)))
        chunk = ts.tokens[ts.starts[p] + start:ts.starts[p] + min(length, start + block + 1)]
        out[i, :len(chunk)] = chunk
        emo[i] = ts.emotion[p]
    return out, emo


def ordered_windows(ts: TokenSet, block: int) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Every piece cut into consecutive windows (for evaluation: each token scored once)."""
    width = ts.tokens.shape[1]
    for p in range(len(ts)):
        piece = ts.piece(p)
        for start in range(0, max(1, len(piece) - 1), block):
            chunk = piece[start:start + block + 1]
            if len(chunk) < 2:
                continue
            win = np.zeros((block + 1, width), dtype=np.int64)
            win[:len(chunk)] = chunk
            yield win, ts.emotion[p]
