"""Measure a text reader: our labelled sentences, held-out lexicon words, word-list coverage.

Why this module exists
----------------------
"It reads well" has to be a number that can fail. The same functions serve the tests
(which hold the reader to its targets), ``make bench`` (which prints the figures next
to the previous reader's) and ``kelly feel --evaluate FILE`` (so a therapist or
producer can score the reader on sentences of their own).

Sentence files are JSON Lines with ``text``, ``valence`` ("+" or "-"), ``arousal``
("high" or "low"), ``family`` and an optional ``category``.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kelly.errors import FileFormatError, InputError

#: Arousal at or above this reads as the "high" side.
AROUSAL_SPLIT = 0.5
FAMILIES = ("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation")
#: Largest sentence file read (bytes), checked before reading.
MAX_EVAL_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class LabelledSentence:
    text: str
    valence: str
    arousal: str
    family: str
    category: str = ""
    id: str = ""


@dataclass
class SentenceScore:
    """Hits per category for the valence side, arousal side and family."""

    n: int = 0
    valence: int = 0
    arousal: int = 0
    family: int = 0
    by_category: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    misses: list[dict] = field(default_factory=list)

    def rate(self, what: str) -> float:
        return getattr(self, what) / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        cats = {c: {"n": v[0], "valence": round(v[1] / v[0], 4), "arousal": round(v[2] / v[0], 4),
                    "family": round(v[3] / v[0], 4)} for c, v in sorted(self.by_category.items())}
        return {"n": self.n, "valence": round(self.rate("valence"), 4), "arousal": round(self.rate("arousal"), 4),
                "family": round(self.rate("family"), 4), "categories": cats}


def load_sentences(path: str | Path) -> list[LabelledSentence]:
    """Read a labelled sentence file; any defect names the line."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_EVAL_BYTES:
            raise InputError(f"{p}: larger than {MAX_EVAL_BYTES // (1024 * 1024)} MB; split it")
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{p}: not UTF-8 text") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = LabelledSentence(text=str(row["text"]), valence=row["valence"], arousal=row["arousal"],
                                    family=row["family"], category=str(row.get("category", "")),
                                    id=str(row.get("id", number)))
        except (ValueError, KeyError, TypeError) as exc:
            raise FileFormatError(f"{p}:{number}: not a labelled sentence ({exc}); need text, valence, "
                                  "arousal, family") from None
        if item.valence not in ("+", "-") or item.arousal not in ("high", "low") or item.family not in FAMILIES:
            raise FileFormatError(f"{p}:{number}: valence must be + or -, arousal high or low, family one of "
                                  + ", ".join(FAMILIES))
        out.append(item)
    if not out:
        raise InputError(f"{p}: no labelled sentences")
    return out


def score_sentences(sentences: list[LabelledSentence], read: Callable[[str], object]) -> SentenceScore:
    """Score ``read`` (text → an object with valence, arousal, family) on ``sentences``."""
    score = SentenceScore()
    for s in sentences:
        state = read(s.text)
        v_ok = (state.valence > 0) == (s.valence == "+")
        a_ok = (state.arousal >= AROUSAL_SPLIT) == (s.arousal == "high")
        f_ok = state.family == s.family
        score.n += 1
        score.valence += v_ok
        score.arousal += a_ok
        score.family += f_ok
        cat = score.by_category[s.category or "all"]
        cat[0] += 1
        cat[1] += v_ok
        cat[2] += a_ok
        cat[3] += f_ok
        if not (v_ok and a_ok):
            score.misses.append({"id": s.id, "text": s.text[:120], "want": f"{s.valence}/{s.arousal}/{s.family}",
                                 "got": f"{state.valence:+.2f}/{state.arousal:.2f}/{state.family}"})
    return score


def held_out_correlations(lexicon=None) -> dict:
    """Pearson r between the shipped table and the sources on words the build never saw.

    Needs ``vadersentiment`` for VADER's values; our own words are always available.
    """
    from kelly.emotion import lexicon_sources as src
    from kelly.emotion.lexicon import AXES, load_lexicon

    lex = lexicon or load_lexicon()
    tables = {"kelly": src.kelly_labels()}
    try:
        tables["vader"] = src.vader_labels()
    except ImportError:
        pass
    result = {}
    for name, table in tables.items():
        for axis in AXES:
            truth, got = [], []
            for word, label in table.items():
                value = getattr(label, axis)
                if value is None or not src.is_held_out(word) or (name == "vader" and word in tables["kelly"]):
                    continue
                entry = lex.get(word)
                if entry is not None:
                    truth.append(value)
                    got.append(getattr(entry, axis))
            if len(truth) >= 10:
                result[f"{name}.{axis}"] = {"n": len(truth), "r": round(src.pearson(got, truth), 4)}
    return result


def coverage(words: list[str], lexicon=None) -> float:
    """Share of ``words`` (lowercased, cleaned) that the table holds."""
    from kelly.emotion.lexicon import load_lexicon
    from kelly.emotion.lexicon_sources import clean_word

    lex = lexicon or load_lexicon()
    cleaned = [w for w in (clean_word(x) for x in words) if w]
    return sum(1 for w in cleaned if w in lex) / len(cleaned) if cleaned else 0.0


def sample_word_list(path: str | Path, n: int = 2000, seed: int = 0) -> list[str]:
    """A seeded random sample of a word list (possessives dropped), as the issue measured it."""
    from kelly.emotion.lexicon_sources import clean_word

    words = sorted({w for w in (clean_word(x) for x in Path(path).read_text(encoding="utf-8",
                                                                               errors="replace").splitlines()) if w})
    return random.Random(seed).sample(words, min(n, len(words)))
