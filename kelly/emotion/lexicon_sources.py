"""Where the lexicon's labelled words come from, and which words it covers.

Why this module exists
----------------------
The shipped V/A/D lexicon (``data/lexicon.bin.gz``) is built offline by
:mod:`kelly.emotion.lexicon_build`. This module holds the part of that build that
needs no model: reading each shippable source into labelled words, listing the
vocabulary to cover, and the deterministic held-out split the builder never sees.
Tests and the benchmark use the split too, to measure the shipped table on words
whose source values it was not built from.

Sources (each recorded with its licence in the table's header):

* Kelly's thesaurus, clue words, small valence lexicon, idioms and arousal seed words
  (ours, MIT): V, A, D;
* the VADER lexicon (``vadersentiment``, MIT): valence only, −4..4, rescaled by 1/4;
* the word lists of Debian's ``wamerican``/``wbritish`` (SCOWL, permissive) and the
  verb/adjective/adverb lemmas of WordNet 3.0 (``wordnet-base``, WordNet licence):
  words to cover, no labels.

Research-only affect norms (NRC, ANEW, Warriner et al.) are deliberately absent.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: Word lists searched for the vocabulary (Debian packages wamerican, wbritish).
WORD_LISTS = ("/usr/share/dict/american-english", "/usr/share/dict/british-english")
#: WordNet index files (Debian package wordnet-base); nouns add mostly taxonomy, so
#: only their single-word lemmas are taken.
WORDNET_DIR = "/usr/share/wordnet"

#: One in HOLDOUT_MOD labelled words (by CRC-32 of the word) is held out of the build.
HOLDOUT_MOD = 10

#: Where a valence-only source's word sits on the axes it does not give.
NEUTRAL_AROUSAL = 0.45
NEUTRAL_DOMINANCE = 0.5

_CLEAN = re.compile(r"^[a-z][a-z0-9']*(?: [a-z][a-z0-9']*)*$")


@dataclass(frozen=True)
class Label:
    """A source's value for a word; ``None`` where the source says nothing about an axis."""

    valence: float | None
    arousal: float | None
    dominance: float | None
    source: str


def is_held_out(word: str) -> bool:
    """True for the fixed tenth of labelled words the builder must never see."""
    return zlib.crc32(word.encode("utf-8")) % HOLDOUT_MOD == 0


def clean_word(word: str) -> str | None:
    """Lowercase a list entry; None for possessives, digits-first or odd characters."""
    w = word.strip().lower().replace("\u2019", "'")
    if w.endswith("'s") or not _CLEAN.match(w):
        return None
    return w


def _data(name: str) -> dict:
    return json.loads(resources.files("kelly.emotion").joinpath(f"data/{name}").read_text(encoding="utf-8"))


def kelly_labels() -> dict[str, Label]:
    """Our own words with V/A/D: thesaurus names and synonyms, clue words, idioms, small lexicon.

    A synonym from a mild tier sits nearer neutral than its emotion's prototype:
    each axis moves ``0.6 + 0.4 · tier intensity`` of the way from neutral.
    """
    from kelly.emotion.thesaurus import normalize_phrase

    thesaurus = _data("thesaurus.json")
    clues = _data("clues.json")
    idioms = _data("idioms.json")
    points = {e["name"]: (e["valence"], e["arousal"], e["dominance"]) for e in thesaurus["entries"]}
    out: dict[str, Label] = {}

    def add(phrase: str, v, a, d, source: str) -> None:
        key = normalize_phrase(phrase)
        if key and key not in out:
            out[key] = Label(v, a, d, source)

    for item in idioms["idioms"]:
        for phrase in item["phrases"]:
            add(phrase, item["valence"], item["arousal"], item["dominance"], "kelly-idioms")
    for e in thesaurus["entries"]:
        add(e["name"], *points[e["name"]], "kelly-thesaurus")
    for e in thesaurus["entries"]:
        v, a, d = points[e["name"]]
        for tier in e["tiers"]:
            k = 0.6 + 0.4 * float(tier["intensity"])
            for word in tier["synonyms"]:
                add(word, v * k, NEUTRAL_AROUSAL + (a - NEUTRAL_AROUSAL) * k,
                    NEUTRAL_DOMINANCE + (d - NEUTRAL_DOMINANCE) * k, "kelly-thesaurus")
    for clue in clues["clues"]:
        v, a, d = points[clue["emotion"]]
        for word in [*clue.get("keywords", []), *clue.get("phrases", [])]:
            add(word, v, a, d, "kelly-clues")
    for word, (v, a) in clues["lexicon"].items():
        add(word, float(v), float(a), None, "kelly-clues")
    for word, (v, a, d) in _data("seed_words.json")["words"].items():
        key = normalize_phrase(word) or word.strip()  # emoji keep their own character
        if key not in out:
            out[key] = Label(float(v), float(a), float(d), "kelly-seeds")
    return out


def vader_path() -> Path:
    """The VADER lexicon file inside the installed ``vadersentiment`` package."""
    import vaderSentiment  # noqa: PLC0415 - build-time only

    return Path(vaderSentiment.__file__).resolve().parent / "vader_lexicon.txt"


def vader_labels() -> dict[str, Label]:
    """VADER's word entries (emoticons skipped): valence = mean rating / 4."""
    out: dict[str, Label] = {}
    for line in vader_path().read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        word = clean_word(parts[0])
        if word is None:
            continue
        out[word] = Label(max(-1.0, min(1.0, float(parts[1]) / 4.0)), None, None, "vader")
    return out


def vader_emoji() -> dict[str, str]:
    """VADER's emoji → description (the descriptions are scored by the builder)."""
    import vaderSentiment  # noqa: PLC0415 - build-time only

    path = Path(vaderSentiment.__file__).resolve().parent / "emoji_utf8_lexicon.txt"
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].strip():
            out[parts[0].strip()] = parts[1].strip()
    return out


def vocabulary() -> list[str]:
    """Every word and expression to cover, sorted: word lists, WordNet lemmas."""
    words: set[str] = set()
    for path in WORD_LISTS:
        p = Path(path)
        if p.exists():
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                w = clean_word(line)
                if w is not None:
                    words.add(w)
    wn = Path(WORDNET_DIR)
    for pos in ("noun", "verb", "adj", "adv"):
        index = wn / f"index.{pos}"
        if not index.exists():
            continue
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" "):
                continue
            lemma = line.split(" ", 1)[0].replace("_", " ")
            if " " in lemma and (pos == "noun" or len(lemma.split()) > 4):
                continue
            w = clean_word(lemma)
            if w is not None:
                words.add(w)
    return sorted(words)


def pearson(xs: list[float], ys: list[float]) -> float:
    """Pearson correlation of two equal-length sequences (nan when undefined)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return math.nan
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan
