"""Text → emotion: read how someone says they feel and place it in PAD space.

Why this module exists
----------------------
This is the original WoundProcessor, rebuilt so that it reads the words people actually
use. One tokenisation, then dictionary look-ups of token n-grams, in this order:

1. **clues** (``data/clues.json``, the thesaurus names and tier synonyms) and **idioms
   and life events** (``data/idioms.json``: "my heart sank", "got fired"), longest first;
   simple inflections of clue words ("hated" → "hate");
2. the **lexicon** (:mod:`kelly.emotion.lexicon`, ~120,000 words, expressions and emoji
   with V/A/D) for everything else; function words never count, and a word counts by
   how much feeling it carries.

Around each hit the reader settles what the words mean in context:

* **negation** by the parity of negators within three words in the same clause
  ("can't say I'm not worried" stays worried); a negated comparative keeps its sign and
  grows ("never felt worse", "couldn't be happier"); a negated word of little feeling
  becomes a mild opposite ("not bad");
* **contrast**: after "but", "however", "now", "still" … the clause weighs twice as much;
  a clause under "although", "even though", "while" weighs half;
* **whose feeling**: a clause whose subject is someone else ("she's furious") counts
  0.4 as much as the speaker's own, and someone's anger or disgust aimed at the speaker
  ("… with me") reads as the speaker's apprehension; what the speaker "should",
  "used to" or "wishes" to feel reads as its opposite at half weight ("people say I
  should be grateful");
* **long texts**: every sentence counts, later ones more (the last counts 1.7× the first),
  and strong words more than weak ones.

Intensity comes from the strength of the evidence (the clue's tier, the word's distance
from neutral, modifiers, "!" and CAPITALS), confidence from its kind, amount and agreement.
Every hit leaves **evidence**: the words, the emotion they led to, how, and their weight.
The reader is **deterministic** and **linear** in the length of the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

from kelly.emotion.lexicon import Lexicon, LexiconEntry, computed_once, load_lexicon
from kelly.emotion.state import EmotionState, Evidence, SecondaryEmotion
from kelly.emotion.thesaurus import EmotionEntry, Thesaurus, load_thesaurus, normalize_phrase
from kelly.errors import FileFormatError, InputError

#: Example shown when the text is empty.
EXAMPLE = "I feel grief, but I'm starting to hope"
#: Longest text read at once (characters, about 6 s here); checked before anything else is done.
MAX_TEXT_CHARS = 5_000_000

#: Words between a modifier and the emotion word it applies to (at most).
WINDOW = 2
#: Words between a negator and the word it negates (at most).
NEGATION_WINDOW = 3
#: Words between a past/irrealis marker ("used to be", "should be") and the word it governs.
MARKER_WINDOW = 4

#: How much more a clue counts after each contrast word in the same sentence (capped).
CONTRAST_GAIN = 2.0
MAX_CONTRAST_GAIN = CONTRAST_GAIN ** 2
#: What came before a contrast word in the same sentence is multiplied by this.
BEFORE_CONTRAST_FACTOR = 0.5
#: Weight of a clause under "although", "even though", "while" ...
SUBORDINATE_FACTOR = 0.5
#: Weight of someone else's feeling, and of a feeling the speaker should/used to/wishes to have.
THIRD_PERSON_FACTOR = 0.4
COUNTERFACTUAL_FACTOR = 0.5
#: Weight of the speaker's inferred feeling when someone's anger is aimed at them.
DIRECTED_FACTOR = 0.8
#: The last sentence of a text counts (1 + RECENCY) times the first.
RECENCY = 0.7

#: Most evidence items and secondary emotions reported (the strongest are kept).
MAX_EVIDENCE = 48
MAX_SECONDARY = 5

#: Confidence and intensity given to kinds of match that have no clue-specific value.
NAME_CONFIDENCE = 0.9
SYNONYM_CONFIDENCE = 0.75
PHRASE_SYNONYM_CONFIDENCE = 0.85
IDIOM_CONFIDENCE = 0.8
EVENT_CONFIDENCE = 0.7
STEM_FACTOR = 0.85
NEGATION_CONFIDENCE = 0.75
NEGATION_INTENSITY = 0.7
#: A denied feeling says less about the present one than a stated feeling ("I'm not angry").
NEGATION_WEIGHT = 0.6
#: Lexicon words: confidence by source of the value, weight relative to a clue.
LEXICON_CONFIDENCE = {"kelly-thesaurus": 0.6, "kelly-clues": 0.55, "kelly-idioms": 0.6, "kelly-seeds": 0.55,
                      "vader": 0.45,
                      "vader-emoji": 0.55, "predicted": 0.3}
LEXICON_WEIGHT = {"kelly-thesaurus": 1.0, "kelly-clues": 1.0, "kelly-idioms": 1.0, "kelly-seeds": 0.6, "vader": 0.7,
                  "vader-emoji": 1.0, "predicted": 0.5}
#: A feeling stated as one's own ("I feel …", "I'm …", "it makes me …") weighs this much more.
SELF_REPORT_FACTOR = 1.5
#: A lexicon word counts only with at least this much feeling (LexiconEntry.strength).
MIN_STRENGTH = 0.25
#: ... and a predicted value (no source gave it) needs this much.
MIN_PREDICTED_STRENGTH = 0.3
#: Where "no feeling" sits, for mild opposites of weak negated words.
NEUTRAL_AROUSAL = 0.45
FALLBACK_CONFIDENCE = 0.1
WEAK_CONFIDENCE = 0.15
FALLBACK_POINT = (0.0, 0.4, 0.5)
FALLBACK_INTENSITY = 0.3

_EMOJI = "[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2190-\u21FF\u2300-\u23FF\u3030\u303D\u3297\u3299]"
# Words (letters/digits, inner apostrophes), single emoji, or single boundary punctuation marks.
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*|" + _EMOJI + r"|[.!?;:,()\[\]{}\"\n\u2014\u2013]")
_BOUNDARY = frozenset(".!?;:,()[]{}\"\n\u2014\u2013")
_SENTENCE_END = frozenset(".!?\n")
_PERSON_FIRST, _PERSON_OTHER = 1, 2


@dataclass(frozen=True)
class _Item:
    """What a token n-gram means: an emotion clue, an idiom, a modifier, a negator, a scope word ..."""

    type: str  # "emotion", "intensifier", "negator", "contrast", "subordinator", "past", "irrealis", "neutral"
    emotion: str = ""
    kind: str = ""
    confidence: float = 0.0
    intensity: float = 0.0
    delta: float = 0.0
    pad: tuple[float, float, float] | None = None  # idioms carry their own point


@dataclass
class _Hit:
    entry: EmotionEntry
    kind: str
    words: str
    confidence: float
    intensity: float
    weight: float
    start: int
    point: tuple[float, float, float]
    sentence: int = 0
    modifier: tuple[str, float] | None = None


class _Clues:
    """Everything ``read_text`` looks up besides the lexicon, compiled once into dictionaries."""

    def __init__(self, doc: dict, idioms: dict, thesaurus: Thesaurus, lexicon: Lexicon) -> None:
        self.thesaurus = thesaurus
        self.lexicon = lexicon
        self.table: dict[tuple[str, ...], _Item] = {}
        for idiom in idioms["idioms"]:
            pad = (float(idiom["valence"]), float(idiom["arousal"]), float(idiom["dominance"]))
            kind = "event" if idiom.get("kind") == "event" else "idiom"
            conf = EVENT_CONFIDENCE if kind == "event" else IDIOM_CONFIDENCE
            strength = min(1.0, (pad[0] ** 2 + (pad[1] - NEUTRAL_AROUSAL) ** 2) ** 0.5)
            for phrase in idiom["phrases"]:
                self._add(phrase, _Item("emotion", idiom["emotion"], kind, conf, 0.4 + 0.5 * strength, pad=pad))
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
        for key, kind in (("negators", "negator"), ("contrasts", "contrast"), ("subordinators", "subordinator"),
                          ("past_markers", "past"), ("irrealis", "irrealis"), ("neutral_expressions", "neutral")):
            for word in doc[key]:
                self._add(word, _Item(kind))
        self.max_len = max(len(k) for k in self.table)
        self.starts = frozenset(k[0] for k in self.table if len(k) > 1)
        self.first_person = frozenset(doc["first_person"])
        self.third_person = frozenset(doc["third_person"])
        self.directed = frozenset(tuple(p.split()) for p in doc["directed_at_speaker"])
        self.comparatives = frozenset(doc["comparatives"])
        self.stopwords = frozenset(doc["stopwords"])
        self.self_report = frozenset(tuple(p.split()) for p in doc["self_report"])
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
                raise FileFormatError(f"clues.json/idioms.json: a clue points at unknown emotion '{item.emotion}'")
        self.apprehension = thesaurus.get("apprehension")
        self._nearest: dict[tuple[float, float, float], EmotionEntry] = {}

    def _add(self, phrase: str, item: _Item) -> None:
        key = tuple(normalize_phrase(phrase).split())
        if not key:
            raise FileFormatError(f"clues.json: empty clue for {item.emotion or item.type}")
        self.table.setdefault(key, item)  # first source wins: idioms, clues, names, synonyms, modifiers, scope

    def entry(self, name: str) -> EmotionEntry:
        return self.thesaurus.get(name)

    def near(self, valence: float, arousal: float, dominance: float) -> EmotionEntry:
        """The broad emotion (one of ``lexicon_targets``) nearest a lexicon word's point."""
        key = (round(valence, 2), round(arousal, 2), round(dominance, 2))
        found = self._nearest.get(key)
        if found is None:
            found = min(self.lexicon_targets, key=lambda e: (e.valence - valence) ** 2 + (e.arousal - arousal) ** 2
                        + 0.25 * (e.dominance - dominance) ** 2)
            if len(self._nearest) < 100_000:
                self._nearest[key] = found
        return found

    def opposite(self, entry: EmotionEntry) -> EmotionEntry:
        """The emotion a negated ``entry`` most plausibly means ("not happy" → disappointment)."""
        name = self.negation_overrides.get(entry.name) or self.negation_targets.get(entry.family)
        return self.thesaurus.get(name) if name else entry

    def stem(self, token: str) -> _Item | None:
        """Look up a simple inflection of an unknown word ("hated" → "hate")."""
        if len(token) < 5 or not token.isalpha():
            return None
        for suffix, repl in (("iest", "y"), ("ier", "y"), ("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"),
                             ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ly", ""), ("ness", ""), ("ful", "")):
            if token.endswith(suffix):
                item = self.table.get((token[: -len(suffix)] + repl,))
                if item is not None and item.type == "emotion":
                    return item
        return None


def _read_data(name: str) -> dict:
    try:
        return json.loads(resources.files("kelly.emotion").joinpath(f"data/{name}").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read kelly/emotion/data/{name}: {exc}") from None


@computed_once
def _clues() -> _Clues:
    doc, idioms = _read_data("clues.json"), _read_data("idioms.json")
    keys = ("clues", "intensifiers", "weakeners", "negators", "contrasts", "subordinators", "past_markers",
            "irrealis", "first_person", "third_person", "directed_at_speaker", "comparatives", "stopwords", "self_report",
            "negation_targets", "negation_overrides", "lexicon_targets", "neutral_expressions")
    if not isinstance(doc, dict) or any(k not in doc for k in keys):
        raise FileFormatError("clues.json: needs the keys " + ", ".join(keys))
    if not isinstance(idioms, dict) or not isinstance(idioms.get("idioms"), list):
        raise FileFormatError("idioms.json: needs a list under 'idioms'")
    try:
        return _Clues(doc, idioms, load_thesaurus(), load_lexicon())
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"clues.json/idioms.json: malformed entry ({exc})") from None


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens, emoji and boundary punctuation, in order (apostrophes kept)."""
    return [m.group(0).lower().replace("\u2019", "'") for m in _TOKEN.finditer(text)]


def _is_negator(token: str, item: _Item | None) -> bool:
    """A listed negator, or any unlisted word ending in "n't" (isn't, wouldn't, ...)."""
    return item.type == "negator" if item is not None else token.endswith("n't")


@dataclass
class _Scope:
    """What the reader knows about the clause it is in while it walks the tokens."""

    clause: int = 0
    sentence: int = 0
    gain: float = 1.0
    subordinate: bool = False
    clause_start: int = 0
    person: int = 0  # 0 unknown (the speaker), _PERSON_FIRST, _PERSON_OTHER
    marker: tuple[int, str] | None = None  # (end, "past" | "irrealis")


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
        found (weighted), ``intensity`` from the strength of the evidence, ``confidence``
        from its kind, amount and agreement, ``secondary`` emotions with their share of
        the weight, and ``evidence`` (which words led to which emotion, how, and by how much).

    Raises
    ------
    InputError
        If ``text`` is not a string or holds no words.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text is {len(text):,} characters; Kelly reads at most {MAX_TEXT_CHARS:,} at a time, "
                         "so split it into parts")
    if not text.strip():
        raise InputError(f'text is empty; tell Kelly how you feel, e.g. "{EXAMPLE}"')
    clues = _clues()
    lex = clues.lexicon
    raw_tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    tokens = [t.lower().replace("\u2019", "'") for t in raw_tokens]
    if not any(t not in _BOUNDARY for t in tokens):
        raise InputError(f'text has no words; tell Kelly how you feel, e.g. "{EXAMPLE}"')
    n_sentences = 1 + sum(1 for i, t in enumerate(tokens) if t in _SENTENCE_END and i < len(tokens) - 1)

    hits: list[_Hit] = []
    weak: list[tuple[str, LexiconEntry]] = []
    sc = _Scope()
    sentence_first_hit = 0
    negators: list[tuple[int, int, int]] = []  # (start, end, clause), the recent ones
    pending_mods: list[tuple[int, int, float, str]] = []  # (end, clause, delta, words)
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        if tok in _BOUNDARY:
            sc.clause += 1
            sc.subordinate = False
            sc.marker = None
            sc.clause_start = i + 1
            if tok in _SENTENCE_END:
                sc.gain = 1.0  # a contrast re-weights its own sentence only
                sc.person = 0
                sc.sentence += 1
                sentence_first_hit = len(hits)
            i += 1
            continue
        item, length = None, 1
        if tok in clues.starts:
            for size in range(min(clues.max_len, n - i), 1, -1):
                found = clues.table.get(tuple(tokens[i:i + size]))
                if found is not None:
                    item, length = found, size
                    break
        if item is None:
            item = clues.table.get((tok,))
        end = i + length
        if _is_negator(tok, item):
            negators.append((i, end, sc.clause))
            if len(negators) > 4:
                del negators[0]
        elif item is not None and item.type != "emotion":
            if item.type == "contrast":
                for hit in hits[sentence_first_hit:]:
                    hit.weight *= BEFORE_CONTRAST_FACTOR
            _scope_word(item, tokens, i, end, sc, pending_mods)
        else:
            if item is None and not tok.endswith("n't"):
                if tok in clues.first_person:
                    sc.person = _PERSON_FIRST
                elif tok in clues.third_person:
                    sc.person = _PERSON_OTHER
                known = lex.get(tok)
                # An inflected clue word ("hated" → hate) names its emotion more precisely than a
                # valence-only or predicted lexicon value; our own V/A/D for the word wins over both.
                stemmed = clues.stem(tok) if known is None or not known.source.startswith("kelly") else None
                if stemmed is not None:
                    item = _Item("emotion", stemmed.emotion, "stem", stemmed.confidence * STEM_FACTOR,
                                 stemmed.intensity, pad=stemmed.pad)
            if item is not None:
                hits.append(_make_hit(clues, item, tokens, raw_tokens, i, end, sc, negators, pending_mods,
                                      n_sentences))
            else:
                end = _lexicon_hit(clues, lex, tokens, raw_tokens, i, sc, negators, pending_mods, n_sentences,
                                   hits, weak)
        i = end

    if not hits:
        return _weak_reading(clues, weak) if weak else _fallback(clues)
    return _combine(clues, hits, text, raw_tokens)


def _scope_word(item: _Item, tokens, start: int, end: int, sc: _Scope, pending_mods: list) -> None:
    """Update the clause state for a contrast, subordinator, marker or modifier."""
    if item.type == "contrast":
        sc.clause += 1
        sc.subordinate = False
        sc.marker = None
        sc.clause_start = end
        sc.gain = min(sc.gain * CONTRAST_GAIN, MAX_CONTRAST_GAIN)
    elif item.type == "subordinator":
        if start <= sc.clause_start + 1 or tokens[start] != "though":  # "though" mid-clause is an afterthought
            sc.subordinate = True
    elif item.type in ("past", "irrealis"):
        sc.marker = (end, item.type)
    # "neutral" expressions ("best friend", "at least") are matched only so that their words are not read
    elif item.type == "intensifier":
        pending_mods[:] = [m for m in pending_mods if start - m[0] <= WINDOW]  # only the window can apply
        pending_mods.append((end, sc.clause, item.delta, " ".join(tokens[start:end])))


def _lexicon_hit(clues: _Clues, lex: Lexicon, tokens, raw_tokens, i: int, sc: _Scope, negators, pending_mods,
                 n_sentences: int, hits: list, weak: list) -> int:
    """Look the words at ``i`` up in the lexicon (longest expression first); return the next index."""
    tok = tokens[i]
    entry, length = None, 1
    if tok in lex.starts:
        for size in range(min(lex.max_words, len(tokens) - i), 1, -1):
            entry = lex.get(" ".join(tokens[i:i + size]))
            if entry is not None:
                length = size
                break
    if entry is None:
        if tok in clues.stopwords:
            return i + 1
        entry = lex.get(tok)
        if entry is None:
            return i + 1
    end = i + length
    strength = entry.strength
    if strength < (MIN_PREDICTED_STRENGTH if entry.source == "predicted" else MIN_STRENGTH):
        if len(weak) < 64:
            weak.append((" ".join(tokens[i:end]), entry))
        return end
    emoji = not tok[0].isalnum()
    item = _Item("emotion", "", "emoji" if emoji else "lexicon", LEXICON_CONFIDENCE[entry.source],
                 0.3 + 0.6 * min(1.0, strength), pad=(entry.valence, entry.arousal, entry.dominance))
    scale = LEXICON_WEIGHT[entry.source] * min(1.0, strength / 0.5)
    hits.append(_make_hit(clues, item, tokens, raw_tokens, i, end, sc, negators, pending_mods, n_sentences,
                          scale=scale, source=entry.source))
    return end


def _make_hit(clues: _Clues, item: _Item, tokens: list[str], raw_tokens: list[str], start: int, end: int,
              sc: _Scope, negators: list, pending_mods: list, n_sentences: int, *, scale: float = 1.0,
              source: str = "") -> _Hit:
    """Turn one matched clue, idiom or lexicon word into a weighted hit, in its clause's context."""
    if item.emotion:
        entry = clues.entry(item.emotion)
        point = item.pad if item.pad is not None else entry.pad
    else:
        point = item.pad
        entry = clues.near(*point)
    kind, words = item.kind, " ".join(tokens[start:end])
    if source:
        kind = f"{kind}:{source}"
    confidence, intensity = item.confidence, item.intensity
    weight = scale * sc.gain
    n_neg = sum(1 for s, e, c in negators if c == sc.clause and 0 <= start - e <= NEGATION_WINDOW)
    negated = n_neg % 2 == 1
    first_neg = min((s for s, e, c in negators if c == sc.clause and 0 <= start - e <= NEGATION_WINDOW), default=start)
    before = tokens[start - 1] if start > 0 else ""
    comparative = (tokens[start] in clues.comparatives or before in ("more", "any")
                   # "never been so excited", "never felt this calm": a superlative, not a denial
                   or (before in ("so", "this", "as", "such") and any(tokens[s] in ("never", "nothing", "nobody")
                                                                     for s, e, c in negators if c == sc.clause)))
    modifier = None
    mods = [m for m in pending_mods if m[1] == sc.clause and start - m[0] <= WINDOW]
    pending_mods.clear()
    if negated and comparative:
        # "never felt worse", "couldn't be happier": the comparison is the point, not its denial.
        kind, words = "negated-comparative", " ".join(tokens[first_neg:end])
        intensity += 0.2
        point = (point[0] * 1.15, point[1], point[2])
    elif negated:
        entry, point = _negate(clues, entry, point, item)
        kind, words = "negated", " ".join(tokens[first_neg:end])
        weight *= NEGATION_WEIGHT
        confidence *= NEGATION_CONFIDENCE
        intensity *= NEGATION_INTENSITY
        mods = [m for m in mods if m[2] < 0]  # "not very happy" is mild, not strong
    elif n_neg and n_neg % 2 == 0:
        kind, words = "double-negative", " ".join(tokens[first_neg:end])
        confidence *= NEGATION_CONFIDENCE
    if sc.marker is not None and 0 <= start - sc.marker[0] <= MARKER_WINDOW and not negated:
        # What the speaker used to feel, should feel or wishes to feel is what they do not feel now.
        entry, point = _negate(clues, entry, point, item)
        kind = "used-to" if sc.marker[1] == "past" else "counterfactual"
        weight *= COUNTERFACTUAL_FACTOR
    elif sc.person == _PERSON_OTHER:
        directed = any(tuple(tokens[j:j + 2]) in clues.directed for j in range(end, min(end + 3, len(tokens) - 1)))
        if directed and entry.family in ("anger", "disgust"):
            entry, point = clues.apprehension, clues.apprehension.pad
            kind, weight = "aimed-at-me", weight * DIRECTED_FACTOR
        else:
            kind, weight = f"{kind} (someone else's)", weight * THIRD_PERSON_FACTOR
    if sc.subordinate:
        weight *= SUBORDINATE_FACTOR
    if sc.person != _PERSON_OTHER and any(tuple(tokens[j:start]) in clues.self_report
                                          for j in range(max(0, start - 3), start)):
        weight *= SELF_REPORT_FACTOR
    if n_sentences > 1:
        weight *= 1.0 + RECENCY * sc.sentence / (n_sentences - 1)
    if mods:
        weakest = min(mods, key=lambda m: m[2])
        chosen = weakest if weakest[2] < 0 else max(mods, key=lambda m: m[2])
        intensity += chosen[2]
        modifier = (chosen[3], chosen[2])
    if any(len(t) > 1 and t.isupper() for t in raw_tokens[start:end]):
        intensity += 0.1
    intensity = min(1.0, max(0.0, intensity))
    return _Hit(entry, kind, words, confidence, intensity, confidence * weight, start, _clip_point(point),
                sc.sentence, modifier)


def _negate(clues: _Clues, entry: EmotionEntry, point, item: _Item):
    """The emotion and point a negated clue or word means.

    Emotion words go to their listed opposite ("not happy" → disappointment); a lexicon
    word or idiom becomes a mild opposite of itself ("not bad" is mildly good).
    """
    if item.emotion and item.pad is None:
        opposite = clues.opposite(entry)
        return opposite, opposite.pad
    v, a, d = point
    mild = (-0.5 * v, NEUTRAL_AROUSAL + 0.4 * (a - NEUTRAL_AROUSAL), 1.0 - d)
    return clues.near(*mild), mild


def _clip_point(point) -> tuple[float, float, float]:
    return (_clamp(point[0], -1.0, 1.0), _clamp(point[1], 0.0, 1.0), _clamp(point[2], 0.0, 1.0))


def _emphasis(text: str, raw_tokens: list[str]) -> tuple[int, bool]:
    """Number of "!" and whether the text is mostly shouted in CAPITALS."""
    words = [t for t in raw_tokens if len(t) > 1 and t[0].isalpha()]
    shouted = sum(1 for t in words if t.isupper())
    return text.count("!"), shouted >= 2 and shouted >= 0.6 * len(words)


def _combine(clues: _Clues, hits: list[_Hit], text: str, raw_tokens: list[str]) -> EmotionState:
    """Blend hits into one state: primary by weight, V/A/D by weighted mean."""
    totals: dict[str, float] = {}
    for hit in hits:  # insertion order = first appearance, used to break ties
        totals[hit.entry.name] = totals.get(hit.entry.name, 0.0) + hit.weight
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])  # stable: ties keep first appearance
    primary = clues.entry(ranked[0][0])

    v = sum(h.weight * h.point[0] for h in hits) / total
    # Arousal: a word whose arousal sits at neutral says little about it, so each hit's pull
    # on arousal grows with its own distance from neutral.
    a_weights = [h.weight * (0.1 + abs(h.point[1] - NEUTRAL_AROUSAL)) for h in hits]
    a = sum(w * h.point[1] for w, h in zip(a_weights, hits)) / sum(a_weights)
    d = sum(h.weight * h.point[2] for h in hits) / total
    intensity = sum(h.weight * h.intensity for h in hits) / total
    kind_confidence = sum(h.weight * h.confidence for h in hits) / total
    # Agreement: 1 when every hit pulls valence the same way, 0 when they cancel out.
    spread = sum(h.weight * abs(h.point[0]) for h in hits)
    agreement = abs(sum(h.weight * h.point[0] for h in hits)) / spread if spread > 0 else 1.0
    amount = 1.0 - 2.718281828 ** (-total / 0.8)
    confidence = kind_confidence * (0.6 + 0.4 * agreement) * (0.75 + 0.25 * amount)

    evidence: dict[tuple[str, str, str], float] = {}

    def note(words: str, emotion: str, kind: str, weight: float) -> None:
        key = (words, emotion, kind)
        if key in evidence or len(evidence) < 4096:
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
    arousal = _clamp(NEUTRAL_AROUSAL + (a - NEUTRAL_AROUSAL) * scale + arousal_boost, 0.0, 1.0)

    secondary = tuple(SecondaryEmotion(name, weight / total) for name, weight in ranked[1:1 + MAX_SECONDARY])
    ordered = sorted(evidence.items(), key=lambda kv: -abs(kv[1]))
    items = [Evidence(words, emotion, kind, weight) for (words, emotion, kind), weight in ordered[:MAX_EVIDENCE]]
    if len(ordered) > MAX_EVIDENCE:
        rest = sum(w for _, w in ordered[MAX_EVIDENCE:])
        items[-1] = Evidence(f"(and {len(ordered) - MAX_EVIDENCE + 1} more)", primary.name, "more", rest)
    return EmotionState(
        label=primary.name, family=primary.family, valence=valence, arousal=arousal,
        dominance=_clamp(d, 0.0, 1.0), intensity=intensity, confidence=_clamp(confidence, 0.0, 1.0),
        secondary=secondary, evidence=tuple(items), source="text")


def _weak_reading(clues: _Clues, weak: list[tuple[str, LexiconEntry]]) -> EmotionState:
    """Only words of little feeling: their mean point, near neutral, with low confidence."""
    n = len(weak)
    v = sum(e.valence for _, e in weak) / n
    a = sum(e.arousal for _, e in weak) / n
    d = sum(e.dominance for _, e in weak) / n
    entry = clues.thesaurus.nearest(v, a, d)
    evidence = tuple(Evidence(words, entry.name, f"lexicon:{e.source}", round(e.strength, 4))
                     for words, e in weak[:MAX_EVIDENCE])
    return EmotionState(label=entry.name, family=entry.family, valence=_clamp(v, -1.0, 1.0),
                        arousal=_clamp(a, 0.0, 1.0), dominance=_clamp(d, 0.0, 1.0), intensity=FALLBACK_INTENSITY,
                        confidence=WEAK_CONFIDENCE, evidence=evidence, source="text")


def _fallback(clues: _Clues) -> EmotionState:
    """No word the reader knows at all: a near-neutral reading with the lowest confidence."""
    v, a, d = FALLBACK_POINT
    entry = clues.thesaurus.nearest(v, a, d)
    return EmotionState(label=entry.name, family=entry.family, valence=v, arousal=a, dominance=d,
                        intensity=FALLBACK_INTENSITY, confidence=FALLBACK_CONFIDENCE,
                        evidence=(Evidence("(no words Kelly knows)", entry.name, "fallback", 0.0),),
                        source="text")


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else float(x)
