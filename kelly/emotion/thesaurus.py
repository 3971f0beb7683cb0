"""The PAD emotion thesaurus: named emotions as points in valence/arousal/dominance space.

Why this module exists
----------------------
Every door into Kelly (text, audio, biometrics, explicit numbers) ends in a point in
PAD space, but people and explanations talk in names ("grief", "anxious hope"). The
thesaurus is the one place that ties the two together: it turns a name (or one of our
own synonyms) into numbers, and numbers back into the nearest name.

The data lives in ``kelly/emotion/data/thesaurus.json`` and is validated once when it
is loaded, so the rest of the code can trust it. Where every number came from is
written next to it (each entry's ``source`` object and the file's ``provenance``
note): Appendix A's 68-node table where a name is there (it is the only table with
dominance), Appendix B's 72-name list otherwise, with dominance estimated by the
original ``estimateDominance(family, intensity)`` rule.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from dataclasses import dataclass
from importlib import resources

from kelly.emotion.state import EmotionState
from kelly.errors import FileFormatError, InputError

#: The eight Plutchik families, in the order the 72-name list gives them.
FAMILIES = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "trust", "anticipation")

#: Intensity used by :func:`state_for` when the caller gives none (the "moderate" tier).
DEFAULT_INTENSITY = 0.6

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def normalize_phrase(text: str) -> str:
    """Reduce a name or phrase to lowercase words joined by single spaces.

    The same normalisation is used for thesaurus keys and for text reading, so
    "Heavy-Hearted", "heavy hearted" and "heavy  hearted" are one key.
    """
    return " ".join(_WORD.findall(text.lower().replace("\u2019", "'")))


@dataclass(frozen=True)
class Tier:
    """One intensity level of an emotion with the words people use for it."""

    tier: str
    intensity: float
    synonyms: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"tier": self.tier, "intensity": self.intensity, "synonyms": list(self.synonyms)}


@dataclass(frozen=True)
class EmotionEntry:
    """One named emotion: where it sits in PAD space, what it means, and its words.

    Attributes
    ----------
    name : str
        Lowercase key, e.g. ``"melancholic hope"``.
    family : str
        One of :data:`FAMILIES`.
    valence : float in [-1, 1]
    arousal : float in [0, 1]
    dominance : float in [0, 1]
    description : str
        One line that says what the feeling is.
    related : tuple of str
        Names of nearby emotions (all present in the thesaurus).
    tiers : tuple of Tier
        At least three intensity levels, each with its own synonyms.
    source : dict
        Where each number came from (``valence``, ``arousal``, ``dominance``, ...).
    kind : str
        ``"base"`` (one of the 72), ``"node"`` (Appendix A only) or ``"compound"``
        (Appendix A's blended nodes 200-209).
    """

    name: str
    family: str
    valence: float
    arousal: float
    dominance: float
    description: str
    related: tuple[str, ...]
    tiers: tuple[Tier, ...]
    source: dict
    kind: str = "base"

    @property
    def display_name(self) -> str:
        """The name in Title Case, for people: ``"Melancholic Hope"``."""
        return " ".join(word.capitalize() for word in self.name.split())

    @property
    def pad(self) -> tuple[float, float, float]:
        """(valence, arousal, dominance)."""
        return (self.valence, self.arousal, self.dominance)

    def tier_for(self, intensity: float) -> Tier:
        """The tier whose intensity is closest to ``intensity`` (ties: the lower tier)."""
        return min(self.tiers, key=lambda t: abs(t.intensity - intensity))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "family": self.family,
            "kind": self.kind,
            "valence": self.valence,
            "arousal": self.arousal,
            "dominance": self.dominance,
            "description": self.description,
            "related": list(self.related),
            "tiers": [t.to_dict() for t in self.tiers],
            "source": dict(self.source),
        }


class Thesaurus:
    """A validated, read-only collection of :class:`EmotionEntry` with lookups.

    Build one with :func:`load_thesaurus` (cached) or from a parsed JSON document
    with :meth:`from_document`.
    """

    def __init__(self, entries: tuple[EmotionEntry, ...], *, provenance: str = "") -> None:
        self.entries = tuple(entries)
        self.provenance = provenance
        self._by_name = {e.name: e for e in self.entries}
        self._synonyms: dict[str, tuple[EmotionEntry, float]] = {}
        for entry in self.entries:
            for tier in entry.tiers:
                for word in tier.synonyms:
                    self._synonyms.setdefault(normalize_phrase(word), (entry, tier.intensity))

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_document(cls, doc: object, *, origin: str = "thesaurus") -> "Thesaurus":
        """Validate a parsed thesaurus JSON document and build a :class:`Thesaurus`.

        Raises
        ------
        FileFormatError
            Naming the broken entry and field, if anything is missing or out of range.
        """
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list) or not doc["entries"]:
            raise FileFormatError(f"{origin}: expected an object with a non-empty 'entries' list")
        entries = []
        seen: set[str] = set()
        for index, raw in enumerate(doc["entries"]):
            entry = _parse_entry(raw, index, origin)
            if entry.name in seen:
                raise FileFormatError(f"{origin}: entry '{entry.name}' appears twice")
            seen.add(entry.name)
            entries.append(entry)
        for entry in entries:
            for rel in entry.related:
                if rel not in seen:
                    raise FileFormatError(f"{origin}: entry '{entry.name}' lists unknown related emotion '{rel}'")
        owner: dict[str, str] = {e.name: e.name for e in entries}
        for entry in entries:
            for tier in entry.tiers:
                for word in tier.synonyms:
                    key = normalize_phrase(word)
                    if owner.setdefault(key, entry.name) != entry.name:
                        raise FileFormatError(
                            f"{origin}: entry '{entry.name}' synonym '{word}' already belongs to '{owner[key]}'")
        return cls(tuple(entries), provenance=str(doc.get("provenance", "")))

    # -- lookups ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> EmotionEntry | None:
        """The entry for a name or synonym (any case, any spacing), or ``None``."""
        if not isinstance(name, str):
            return None
        key = normalize_phrase(name)
        entry = self._by_name.get(key)
        if entry is None and key in self._synonyms:
            entry = self._synonyms[key][0]
        return entry

    def get(self, name: str) -> EmotionEntry:
        """Like :meth:`find`, but an unknown name is an error with suggestions.

        Raises
        ------
        InputError
            ``unknown emotion 'xyz'; did you mean: grief, greed?`` (suggestions by
            :func:`difflib.get_close_matches` over names and synonyms).
        """
        entry = self.find(name)
        if entry is not None:
            return entry
        if not isinstance(name, str):
            raise InputError(f"emotion name must be a string, got {type(name).__name__}")
        if not name.strip():
            raise InputError("emotion name is empty; try one of: " + ", ".join(e.name for e in self.entries[:5]))
        key = normalize_phrase(name) or name.strip().lower()
        pool = list(self._by_name) + list(self._synonyms)
        close = difflib.get_close_matches(key, pool, n=3, cutoff=0.6)
        if close:
            hint = "did you mean: " + ", ".join(close) + "?"
        else:
            hint = "run 'kelly emotions' to list them"
        raise InputError(f"unknown emotion {name.strip()!r}; {hint}")

    def nearest(self, valence: float, arousal: float, dominance: float | None = None,
                *, exclude: tuple[str, ...] = ()) -> EmotionEntry:
        """The entry closest to a PAD point (Euclidean; dominance only if given).

        Ties go to the entry listed first, so the answer is deterministic.
        """
        best, best_d = None, math.inf
        for entry in self.entries:
            if entry.name in exclude:
                continue
            d = (entry.valence - valence) ** 2 + (entry.arousal - arousal) ** 2
            if dominance is not None:
                d += (entry.dominance - dominance) ** 2
            if d < best_d:
                best, best_d = entry, d
        if best is None:
            raise InputError("no emotion left to choose from")
        return best

    def families(self) -> tuple[str, ...]:
        """Family names in first-appearance order."""
        return tuple(dict.fromkeys(e.family for e in self.entries))

    def in_family(self, family: str) -> tuple[EmotionEntry, ...]:
        """Entries of one family, in thesaurus order (unknown family → InputError)."""
        key = family.strip().lower() if isinstance(family, str) else ""
        found = tuple(e for e in self.entries if e.family == key)
        if not found:
            raise InputError(f"unknown family {family!r}; choose from: {', '.join(self.families())}")
        return found

    def synonym_index(self) -> dict[str, tuple[EmotionEntry, float]]:
        """Normalised synonym phrase → (entry, tier intensity). A fresh copy."""
        return dict(self._synonyms)


def _parse_entry(raw: object, index: int, origin: str) -> EmotionEntry:
    where = f"{origin}: entry #{index}"
    if not isinstance(raw, dict):
        raise FileFormatError(f"{where} is not an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or normalize_phrase(name) != name:
        raise FileFormatError(f"{where}: 'name' must be lowercase words, got {name!r}")
    where = f"{origin}: entry '{name}'"
    family = raw.get("family")
    if family not in FAMILIES:
        raise FileFormatError(f"{where}: family {family!r} is not one of {', '.join(FAMILIES)}")
    numbers = {}
    for key, lo, hi in (("valence", -1.0, 1.0), ("arousal", 0.0, 1.0), ("dominance", 0.0, 1.0)):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise FileFormatError(f"{where}: {key} must be a number in [{lo:g}, {hi:g}], got {value!r}")
        numbers[key] = float(value)
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise FileFormatError(f"{where}: 'description' must be a non-empty string")
    related = raw.get("related", [])
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        raise FileFormatError(f"{where}: 'related' must be a list of names")
    tiers_raw = raw.get("tiers")
    if not isinstance(tiers_raw, list) or len(tiers_raw) < 3:
        raise FileFormatError(f"{where}: needs at least three intensity tiers")
    tiers = []
    for t in tiers_raw:
        ok = (isinstance(t, dict) and isinstance(t.get("tier"), str)
              and isinstance(t.get("intensity"), (int, float)) and 0.0 <= t["intensity"] <= 1.0
              and isinstance(t.get("synonyms"), list) and t["synonyms"]
              and all(isinstance(s, str) and normalize_phrase(s) for s in t["synonyms"]))
        if not ok:
            raise FileFormatError(f"{where}: bad tier {t!r} (needs tier, intensity in [0, 1], synonyms)")
        tiers.append(Tier(t["tier"], float(t["intensity"]), tuple(t["synonyms"])))
    source = raw.get("source")
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) and source[k]
                                               for k in ("valence", "arousal", "dominance")):
        raise FileFormatError(f"{where}: 'source' must say where valence, arousal and dominance came from")
    kind = raw.get("kind", "base")
    if kind not in ("base", "node", "compound"):
        raise FileFormatError(f"{where}: kind {kind!r} is not base, node or compound")
    return EmotionEntry(name=name, family=family, description=description.strip(), related=tuple(related),
                        tiers=tuple(tiers), source=dict(source), kind=kind, **numbers)


@functools.lru_cache(maxsize=1)
def load_thesaurus() -> Thesaurus:
    """Load and validate the shipped thesaurus once (cached for the process).

    Uses :mod:`importlib.resources`, so it works from a wheel or zip as well as
    from a source checkout.

    Raises
    ------
    FileFormatError
        If the shipped file is missing, not JSON, or fails validation.
    """
    try:
        text = resources.files("kelly.emotion").joinpath("data/thesaurus.json").read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read the emotion thesaurus (kelly/emotion/data/thesaurus.json): {exc}") from None
    return Thesaurus.from_document(doc, origin="thesaurus.json")


def state_for(name: str, intensity: float | None = None) -> EmotionState:
    """An :class:`EmotionState` for a named emotion, exactly at its thesaurus point.

    Parameters
    ----------
    name : str
        Name or synonym (case-insensitive). Unknown names raise ``InputError``.
    intensity : float in [0, 1], optional
        Defaults to the tier of the synonym used, or :data:`DEFAULT_INTENSITY` for a
        plain name.
    """
    thesaurus = load_thesaurus()
    entry = thesaurus.get(name)
    if intensity is None:
        hit = thesaurus.synonym_index().get(normalize_phrase(name))
        intensity = hit[1] if hit and normalize_phrase(name) != entry.name else DEFAULT_INTENSITY
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not 0.0 <= intensity <= 1.0:
        raise InputError(f"intensity must be a number in [0, 1], got {intensity!r}")
    return EmotionState(label=entry.name, family=entry.family, valence=entry.valence, arousal=entry.arousal,
                        dominance=entry.dominance, intensity=float(intensity), confidence=1.0,
                        source="thesaurus")
