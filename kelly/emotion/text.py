"""Text → emotion: read how someone says they feel and place it in PAD space.

Why this module exists
----------------------
This is the original WoundProcessor, rebuilt so that its known faults are gone:

* every clue, intensifier, weakener and negator is matched on **word boundaries**
  over a single tokenisation ("so" never fires inside "sorrow");
* **negation** ("not happy", "never felt calm", "no longer afraid", "hardly hopeful")
  turns an emotion into a sensible opposite instead of reading it as itself;
* **several emotions** in one text are kept: the primary one plus weighted
  secondaries, blended into one V/A/D point by weight; what follows "but" weighs more;
* every decision leaves **evidence** (which words led to which emotion) and the result
  has an honest **confidence** (phrase hits high, a small fallback lexicon low, nothing
  found lowest);
* it is **deterministic** (ties go to what appeared first) and **linear** in the length
  of the text: one regex pass to tokenise, then dictionary look-ups of token n-grams.

The words live in ``data/clues.json`` (clues from the original Appendix C, corrected and
extended, plus modifiers, negation targets and a small valence lexicon) and in the
thesaurus (every entry name and every tier synonym is a clue too).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from kelly.emotion.state import EmotionState, Evidence, SecondaryEmotion
from kelly.emotion.thesaurus import EmotionEntry, Thesaurus, load_thesaurus, normalize_phrase
from kelly.errors import FileFormatError, InputError

#: Example shown when the text is empty.
EXAMPLE = "I feel grief, but I'm starting to hope"

#: Words between a negator or modifier and the emotion word it applies to (at most).
WINDOW = 2

#: How much more a clue counts after each "but" / "however" in the same sentence (capped).
CONTRAST_GAIN = 1.5
MAX_CONTRAST_GAIN = CONTRAST_GAIN ** 2

#: Most evidence items and secondary emotions reported (the strongest are kept).
MAX_EVIDENCE = 24
MAX_SECONDARY = 5

#: Confidence and intensity given to kinds of match that have no clue-specific value.
NAME_CONFIDENCE = 0.9
SYNONYM_CONFIDENCE = 0.75
PHRASE_SYNONYM_CONFIDENCE = 0.85
LEXICON_CONFIDENCE = 0.35
LEXICON_WEIGHT = 0.5
STEM_FACTOR = 0.85
NEGATION_CONFIDENCE = 0.75
NEGATION_INTENSITY = 0.7
FALLBACK_CONFIDENCE = 0.1
FALLBACK_POINT = (0.0, 0.4, 0.5)
FALLBACK_INTENSITY = 0.3

# Words (letters/digits, inner apostrophes) or single boundary punctuation marks.
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*|[.!?;:,()\[\]{}\"\n\u2014\u2013]")
_BOUNDARY = frozenset(".!?;:,()[]{}\"\n\u2014\u2013")
_SENTENCE_END = frozenset(".!?\n")


@dataclass(frozen=True)
class _Item:
    """What a token n-gram means: an emotion clue, a modifier, a negator, ..."""

    type: str  # "emotion", "lexicon", "intensifier", "negator", "contrast"
    emotion: str = ""
    kind: str = ""
    confidence: float = 0.0
    intensity: float = 0.0
    delta: float = 0.0
    valence: float = 0.0
    arousal: float = 0.0


@dataclass
class _Hit:
    entry: EmotionEntry
    kind: str
    words: str
    confidence: float
    intensity: float
    weight: float
    start: int
    modifier: tuple[str, float] | None = None
    pad: tuple[float, float, float] | None = None  # own point (lexicon words), else the entry's

    @property
    def point(self) -> tuple[float, float, float]:
        return self.pad if self.pad is not None else self.entry.pad


class _Lexicon:
    """Everything ``read_text`` looks up, compiled once into dictionaries."""

    def __init__(self, doc: dict, thesaurus: Thesaurus) -> None:
        self.thesaurus = thesaurus
        self.table: dict[tuple[str, ...], _Item] = {}
        for clue in doc["clues"]:
            conf, boost = float(clue["confidence"]), float(clue["boost"])
            for word in clue.get("keywords", []):
                self._add(word, _Item("emotion", clue["emotion"], "keyword", conf, 0.5 + boost))
            for phrase in clue.get("phrases", []):
                self._add(phrase, _Item("emotion", clue["emotion"], "phrase", min(1.0, conf + 0.1), 0.5 + boost))
        for entry in thesaurus.entries:
            self._add(entry.name, _Item("emotion", entry.name, "name", NAME_CONFIDENCE, 0.6))
        for entry in thesaurus.entries:
            for tier in entry.tiers:
                for word in tier.synonyms:
                    conf = PHRASE_SYNONYM_CONFIDENCE if " " in normalize_phrase(word) else SYNONYM_CONFIDENCE
                    self._add(word, _Item("emotion", entry.name, "synonym", conf, tier.intensity))
        for word, delta in {**doc["intensifiers"], **doc["weakeners"]}.items():
            self._add(word, _Item("intensifier", delta=float(delta)))
        for word in doc["negators"]:
            self._add(word, _Item("negator"))
        for word in doc["contrasts"]:
            self._add(word, _Item("contrast"))
        for word, (valence, arousal) in doc["lexicon"].items():
            self._add(word, _Item("lexicon", kind="lexicon", confidence=LEXICON_CONFIDENCE,
                                  intensity=0.4 + 0.3 * abs(float(valence)),
                                  valence=float(valence), arousal=float(arousal)))
        self.max_len = max(len(k) for k in self.table)
        self.starts = frozenset(k[0] for k in self.table if len(k) > 1)
        self.lexicon_targets = tuple(thesaurus.get(name) for name in doc["lexicon_targets"])
        if not self.lexicon_targets:
            raise FileFormatError("clues.json: 'lexicon_targets' is empty")
        self.negation_targets = dict(doc["negation_targets"])
        self.negation_overrides = dict(doc["negation_overrides"])
        for name in (*self.negation_targets.values(), *self.negation_overrides, *self.negation_overrides.values()):
            if thesaurus.find(name) is None:
                raise FileFormatError(f"clues.json: negation names unknown emotion '{name}'")
        for item in self.table.values():
            if item.type == "emotion" and thesaurus.find(item.emotion) is None:
                raise FileFormatError(f"clues.json: a clue points at unknown emotion '{item.emotion}'")
        self._nearest: dict[tuple[float, float], EmotionEntry] = {}

    def _add(self, phrase: str, item: _Item) -> None:
        key = tuple(normalize_phrase(phrase).split())
        if not key:
            raise FileFormatError(f"clues.json: empty clue for {item.emotion or item.type}")
        self.table.setdefault(key, item)  # first source wins: clues, names, synonyms, modifiers, lexicon

    def entry(self, name: str) -> EmotionEntry:
        return self.thesaurus.get(name)

    def near(self, valence: float, arousal: float) -> EmotionEntry:
        """The broad emotion (one of ``lexicon_targets``) nearest a lexicon word's (V, A)."""
        key = (valence, arousal)
        if key not in self._nearest:
            self._nearest[key] = min(self.lexicon_targets, key=lambda e: (e.valence - valence) ** 2
                                     + (e.arousal - arousal) ** 2)
        return self._nearest[key]

    def opposite(self, entry: EmotionEntry) -> EmotionEntry:
        """The emotion a negated ``entry`` most plausibly means ("not happy" → disappointment)."""
        name = self.negation_overrides.get(entry.name) or self.negation_targets.get(entry.family)
        return self.thesaurus.get(name) if name else entry

    def stem(self, token: str) -> _Item | None:
        """Look up a simple inflection of an unknown word ("hated" → "hate")."""
        if len(token) < 5 or not token.isalpha():
            return None
        candidates = []
        for suffix, repl in (("iest", "y"), ("ier", "y"), ("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"),
                             ("es", ""), ("s", ""), ("ly", ""), ("ness", ""), ("ful", "")):
            if token.endswith(suffix):
                candidates.append(token[: -len(suffix)] + repl)
        for cand in candidates:
            item = self.table.get((cand,))
            if item is not None and item.type == "emotion":
                return item
        return None


@functools.lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    try:
        text = resources.files("kelly.emotion").joinpath("data/clues.json").read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read kelly/emotion/data/clues.json: {exc}") from None
    keys = ("clues", "intensifiers", "weakeners", "negators", "contrasts", "negation_targets",
            "negation_overrides", "lexicon", "lexicon_targets")
    if not isinstance(doc, dict) or any(k not in doc for k in keys):
        raise FileFormatError("clues.json: needs the keys " + ", ".join(keys))
    try:
        return _Lexicon(doc, load_thesaurus())
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"clues.json: malformed entry ({exc})") from None


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens and boundary punctuation, in order (apostrophes kept)."""
    return [m.group(0).lower().replace("\u2019", "'") for m in _TOKEN.finditer(text)]


def _is_negator(token: str, item: _Item | None) -> bool:
    """A listed negator, or any unlisted word ending in "n't" (isn't, wouldn't, ...)."""
    return item.type == "negator" if item is not None else token.endswith("n't")


def read_text(text: str) -> EmotionState:
    """Read how someone feels from what they wrote.

    Parameters
    ----------
    text : str
        Any length; analysis is linear in the number of words.

    Returns
    -------
    EmotionState
        ``label``/``family`` of the strongest emotion, V/A/D blended over every emotion
        found (weighted), ``intensity`` from clue strength, modifiers, "!" and CAPITALS,
        ``confidence`` from how the emotions were found, ``secondary`` emotions with their
        share of the weight, and ``evidence`` (which words led to which emotion).

    Raises
    ------
    InputError
        If ``text`` is not a string or holds no words.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f'text is empty; tell Kelly how you feel, e.g. "{EXAMPLE}"')
    lex = _lexicon()
    raw_tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    tokens = [t.lower().replace("\u2019", "'") for t in raw_tokens]
    if not any(t not in _BOUNDARY for t in tokens):
        raise InputError(f'text has no words; tell Kelly how you feel, e.g. "{EXAMPLE}"')

    hits: list[_Hit] = []
    clause = 0
    gain = 1.0
    last_negator: tuple[int, int, int] | None = None  # (start, end, clause)
    pending_mods: list[tuple[int, int, float, str]] = []  # (end, clause, delta, words)
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        if tok in _BOUNDARY:
            clause += 1
            if tok in _SENTENCE_END:
                gain = 1.0  # "but" re-weights its own sentence only
            i += 1
            continue
        item, length = None, 1
        if tok in lex.starts:
            for size in range(min(lex.max_len, n - i), 1, -1):
                found = lex.table.get(tuple(tokens[i:i + size]))
                if found is not None:
                    item, length = found, size
                    break
        if item is None:
            item = lex.table.get((tok,))
            if item is None and not tok.endswith("n't"):
                stemmed = lex.stem(tok)
                if stemmed is not None:
                    item = _Item("emotion", stemmed.emotion, "stem", stemmed.confidence * STEM_FACTOR,
                                 stemmed.intensity)
        end = i + length
        if _is_negator(tok, item):
            last_negator = (i, end, clause)
        elif item is None:
            pass
        elif item.type == "contrast":
            clause += 1
            gain = min(gain * CONTRAST_GAIN, MAX_CONTRAST_GAIN)
        elif item.type == "intensifier":
            pending_mods[:] = [m for m in pending_mods if i - m[0] <= WINDOW]  # only the window can apply
            pending_mods.append((end, clause, item.delta, " ".join(tokens[i:end])))
        else:
            hits.append(_make_hit(lex, item, tokens, raw_tokens, i, end, clause, gain, last_negator, pending_mods))
        i = end

    if not hits:
        return _fallback(lex, text)
    return _combine(lex, hits, text, raw_tokens)


def _make_hit(lex: _Lexicon, item: _Item, tokens: list[str], raw_tokens: list[str], start: int, end: int,
              clause: int, gain: float, last_negator, pending_mods: list) -> _Hit:
    """Turn one matched clue into a weighted hit, applying negation and modifiers."""
    if item.type == "lexicon":
        entry = lex.near(item.valence, item.arousal)
    else:
        entry = lex.entry(item.emotion)
    kind, words = item.kind, " ".join(tokens[start:end])
    confidence, intensity = item.confidence, item.intensity
    weight_factor = LEXICON_WEIGHT if item.type == "lexicon" else 1.0
    negated = (last_negator is not None and last_negator[2] == clause and start - last_negator[1] <= WINDOW)
    modifier = None
    mods = [m for m in pending_mods if m[1] == clause and start - m[0] <= WINDOW]
    pending_mods.clear()
    if negated:
        entry = lex.opposite(entry)
        kind = "negated"
        words = " ".join(tokens[last_negator[0]:end])
        confidence *= NEGATION_CONFIDENCE
        intensity *= NEGATION_INTENSITY
        mods = [m for m in mods if m[2] < 0]  # "not very happy" is mild, not strong
    if mods:
        weakest = min(mods, key=lambda m: m[2])
        chosen = weakest if weakest[2] < 0 else max(mods, key=lambda m: m[2])
        intensity += chosen[2]
        modifier = (chosen[3], chosen[2])
    if any(len(t) > 1 and t.isupper() for t in raw_tokens[start:end]):
        intensity += 0.1
    intensity = min(1.0, max(0.0, intensity))
    pad = (item.valence, item.arousal, entry.dominance) if item.type == "lexicon" and not negated else None
    return _Hit(entry, kind, words, confidence, intensity, confidence * gain * weight_factor, start, modifier, pad)


def _emphasis(text: str, raw_tokens: list[str]) -> tuple[int, bool]:
    """Number of "!" and whether the text is mostly shouted in CAPITALS."""
    words = [t for t in raw_tokens if len(t) > 1 and t[0].isalpha()]
    shouted = sum(1 for t in words if t.isupper())
    return text.count("!"), shouted >= 2 and shouted >= 0.6 * len(words)


def _combine(lex: _Lexicon, hits: list[_Hit], text: str, raw_tokens: list[str]) -> EmotionState:
    """Blend hits into one state: primary by weight, V/A/D by weighted mean."""
    totals: dict[str, float] = {}
    for hit in hits:  # insertion order = first appearance, used to break ties
        totals[hit.entry.name] = totals.get(hit.entry.name, 0.0) + hit.weight
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])  # stable: ties keep first appearance
    primary = lex.entry(ranked[0][0])

    v = sum(h.weight * h.point[0] for h in hits) / total
    a = sum(h.weight * h.point[1] for h in hits) / total
    d = sum(h.weight * h.point[2] for h in hits) / total
    intensity = sum(h.weight * h.intensity for h in hits) / total
    confidence = sum(h.weight * h.confidence for h in hits) / total

    evidence: dict[tuple[str, str, str], float] = {}

    def note(words: str, emotion: str, kind: str, weight: float) -> None:
        key = (words, emotion, kind)
        evidence[key] = evidence.get(key, 0.0) + weight

    for hit in hits:
        note(hit.words, hit.entry.name, hit.kind, hit.weight)
        if hit.modifier is not None:
            note(hit.modifier[0], hit.entry.name, "modifier", hit.modifier[1])
    if len(totals) > 1:
        intensity += 0.05
    bangs, shouted = _emphasis(text, raw_tokens)
    arousal_boost = 0.0
    if bangs:
        boost = min(0.15, 0.05 * bangs)
        intensity += boost
        arousal_boost += boost
        note("!" * min(bangs, 3), primary.name, "emphasis", boost)
    if shouted:
        intensity += 0.1
        arousal_boost += 0.1
        note("CAPITALS", primary.name, "emphasis", 0.1)
    intensity = _clamp(intensity, 0.0, 1.0)
    # A mild reading sits a little closer to neutral than the prototype; a strong one at it.
    scale = 0.75 + 0.25 * intensity
    valence = _clamp(v * scale, -1.0, 1.0)
    arousal = _clamp(a * scale + arousal_boost, 0.0, 1.0)

    secondary = tuple(SecondaryEmotion(name, weight / total) for name, weight in ranked[1:1 + MAX_SECONDARY])
    ordered = sorted(evidence.items(), key=lambda kv: -abs(kv[1]))[:MAX_EVIDENCE]
    return EmotionState(
        label=primary.name, family=primary.family, valence=valence, arousal=arousal,
        dominance=_clamp(d, 0.0, 1.0), intensity=intensity, confidence=_clamp(confidence, 0.0, 1.0),
        secondary=secondary,
        evidence=tuple(Evidence(words, emotion, kind, weight) for (words, emotion, kind), weight in ordered),
        source="text")


def _fallback(lex: _Lexicon, text: str) -> EmotionState:
    """No emotion words at all: a near-neutral reading with low confidence."""
    v, a, d = FALLBACK_POINT
    entry = lex.thesaurus.nearest(v, a, d)
    return EmotionState(label=entry.name, family=entry.family, valence=v, arousal=a, dominance=d,
                        intensity=FALLBACK_INTENSITY, confidence=FALLBACK_CONFIDENCE,
                        evidence=(Evidence("(no emotion words found)", entry.name, "fallback", 0.0),),
                        source="text")


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else float(x)
