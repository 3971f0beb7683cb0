"""Chord progressions as text: find the key, diagnose problems, reharmonise.

``kelly diagnose "F-C-Am-Dm"`` and ``kelly reharm "F-C-Am-Dm" --style jazz`` live here
(original-system §8, rebuilt).

Key finding. The original took the first/last-chord root weights (2.0 / 1.5 / 1.0) and
called the key minor "if any tonic chord is minor". Here every one of the 24 major and
minor keys is scored, and the best wins:

* each chord earns its weight (2.0 first, 1.5 last, 1.0 otherwise) times its *fit* in
  the key: 1.0 when all its tones are diatonic, 0.6 when only the root is, 0.25 when
  its tones fit the parallel mode (a borrowed chord), else 0; in minor the raised
  leading tone of harmonic minor is diatonic, so V and vii° fit fully;
* the tonic chord with the key's own third earns an extra bonus of its weight (so a
  piece that starts or ends on a chord is pulled towards that chord's key);
* a dominant (V or V7) moving to the tonic earns 1.0, and the dominant's presence 0.3;
* a key whose tonic chord never appears loses 0.5.

Ties go to the key of the first chord. This makes "F-C-Am-Dm" F major (not C major or
D minor), "Am-F-C-G" A minor, and keeps "F-C-Bbm-F" in F major with Bbm flagged as the
borrowed iv.

Reharmonisation. Each style has a list of named techniques
(:data:`REHARM_TECHNIQUES`). A technique is a function that rewrites a progression and
uses the random generator for its choices (which chord to alter, which substitute);
:func:`reharmonize` draws techniques — one, then pairs — until it has ``count`` distinct
results, so the output is deterministic for a seed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from kelly.errors import InputError
from kelly.theory.chords import Chord, parse_progression
from kelly.theory.pitch import parse_note, pc_name, spell
from kelly.theory.roman import chord_to_roman, roman_to_chord
from kelly.theory.scales import Key, key_from_pc

_DOMINANT_QUALITIES = ("maj", "7", "9", "7sus4", "aug7")
_MAJORISH = ("maj", "7", "maj7", "6", "add9", "9", "maj9", "aug", "aug7", "11")
_MINORISH = ("min", "min7", "min6", "minmaj7", "madd9", "min9", "min11")


# ---------------------------------------------------------------------------- key finding
def _as_chords(progression) -> list[Chord]:
    if isinstance(progression, str):
        return parse_progression(progression)
    chords = list(progression)
    if not chords:
        raise InputError("the progression is empty; write chords like 'F-C-Am-Dm'")
    return chords


def _weights(n: int) -> list[float]:
    """Root weights of §8: 2.0 for the first chord, 1.5 for the last, 1.0 otherwise."""
    w = [1.0] * n
    if n > 1:
        w[-1] = 1.5
    w[0] = 2.0
    return w


def _diatonic(key: Key) -> set[int]:
    pcs = set(key.scale_pcs())
    if key.mode == "aeolian":
        pcs.add((key.tonic_pc + 11) % 12)  # harmonic minor's leading tone: V and vii° are at home
    return pcs


def _tones(chord: Chord) -> set[int]:
    """Tones that decide whether a chord belongs to a key: the triad and seventh (not colour tones)."""
    pcs = chord.pitch_classes()
    core = [pc for pc, iv in zip(pcs, chord.intervals) if iv < 12][:4]
    return set(core)


def _is_tonic(chord: Chord, key: Key) -> bool:
    if chord.root_pc != key.tonic_pc:
        return False
    return chord.quality in (_MINORISH if key.is_minor else _MAJORISH)


def _is_dominant(chord: Chord, key: Key) -> bool:
    return (chord.root_pc - key.tonic_pc) % 12 == 7 and chord.quality in _DOMINANT_QUALITIES


def key_score(chords: Sequence[Chord], key: Key) -> float:
    """How well ``chords`` sit in ``key`` (the scoring in the module docstring)."""
    diatonic = _diatonic(key)
    parallel = set(Key(key.tonic, "ionian" if key.is_minor else "aeolian").scale_pcs())
    score = 0.0
    weights = _weights(len(chords))
    for w, chord in zip(weights, chords):
        tones = _tones(chord)
        if tones <= diatonic:
            fit = 1.0
        elif tones <= parallel:
            fit = 0.25
        elif chord.root_pc in diatonic:
            fit = 0.6
        else:
            fit = 0.0
        score += w * fit
        if _is_tonic(chord, key):
            score += w
    for a, b in zip(chords, chords[1:]):
        if _is_dominant(a, key) and _is_tonic(b, key):
            score += 1.0
    if any(_is_dominant(c, key) for c in chords):
        score += 0.3
    if not any(_is_tonic(c, key) for c in chords):
        score -= 0.5
    return score


def detect_key(progression) -> tuple[Key, list[tuple[Key, float]]]:
    """The best key for a progression, and all 24 keys ranked by score (best first)."""
    chords = _as_chords(progression)
    first = chords[0]
    candidates = []
    for pc in range(12):
        for mode in ("major", "minor"):
            key = key_from_pc(pc, mode)
            if pc == first.root_pc:  # spell the tonic as the user spelled the first chord
                key = Key(first.root, key.mode)
            s = key_score(chords, key)
            # tie-break: the first chord's key, then major
            tie = (pc == first.root_pc and _is_tonic(first, key), mode == "major")
            candidates.append((s, tie, key))
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return candidates[0][2], [(k, round(s, 3)) for s, _, k in candidates]


# ---------------------------------------------------------------------------- diagnosis
@dataclass(frozen=True)
class ChordReport:
    """One chord of a diagnosed progression."""

    chord: Chord
    roman: str
    function: str  # "diatonic", "borrowed", "secondary dominant", "chromatic"
    note: str = ""


@dataclass
class Diagnosis:
    """What ``kelly diagnose`` reports."""

    key: Key
    chords: list[ChordReport]
    issues: list[str]
    suggestions: list[str]
    cadence: str
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "minor" if self.key.is_minor else "major"

    def to_dict(self) -> dict:
        return {"key": self.key.tonic, "mode": self.mode, "key_name": self.key.name,
                "chords": [{"chord": r.chord.name, "roman": r.roman, "function": r.function, "note": r.note}
                           for r in self.chords],
                "issues": self.issues, "suggestions": self.suggestions, "cadence": self.cadence,
                "alternatives": [{"key": k, "score": s} for k, s in self.alternatives]}


_BORROWED_NAMES = {  # offset above the tonic → name, in a major key
    3: "bIII", 8: "bVI", 10: "bVII", 1: "bII", 5: "iv", 7: "v", 2: "ii°",
}


def _function(chord: Chord, key: Key, nxt: Chord | None) -> tuple[str, str]:
    tones = _tones(chord)
    if tones <= _diatonic(key):
        return "diatonic", ""
    if chord.quality in _DOMINANT_QUALITIES and nxt is not None and (chord.root_pc - nxt.root_pc) % 12 == 7:
        target = chord_to_roman(Chord(nxt.root, nxt.quality), key)
        return "secondary dominant", f"V/{target}: the dominant of {nxt.name}, pulling to it"
    parallel = Key(key.tonic, "ionian" if key.is_minor else "aeolian")
    if tones <= set(parallel.scale_pcs()) or (key.is_minor and tones <= set(Key(key.tonic, "dorian").scale_pcs())):
        source = parallel.name if tones <= set(parallel.scale_pcs()) else Key(key.tonic, "dorian").name
        return "borrowed", f"borrowed from {source} (modal interchange)"
    if (chord.root_pc - key.tonic_pc) % 12 == 1 and chord.quality in ("maj", "maj7"):
        return "borrowed", f"Neapolitan (bII), borrowed from {Key(key.tonic, 'phrygian').name}"
    return "chromatic", "outside the key and its parallel mode"


def diagnose(progression) -> Diagnosis:
    """Find the key of a progression and what might be improved.

    Parameters
    ----------
    progression : str or sequence of Chord
        e.g. ``"F-C-Am-Dm"``.

    Returns
    -------
    Diagnosis
        Key, roman numerals, each chord's function, issues and suggestions:
        non-diatonic chords (bIII / bVI / bVII / iv named as borrowed), tritone root
        motion, an ending on neither I nor V, no dominant at all, the same chord twice
        in a row, a dominant that never resolves, and the cadence type at the end.

    Raises
    ------
    InputError
        If a chord cannot be read.
    """
    chords = _as_chords(progression)
    key, ranking = detect_key(chords)
    reports = []
    issues: list[str] = []
    suggestions: list[str] = []
    tonic = _tonic_chord(key)
    dominant = roman_to_chord("V", key).chord
    dominant7 = roman_to_chord("V7", key).chord

    for i, chord in enumerate(chords):
        nxt = chords[i + 1] if i + 1 < len(chords) else None
        roman = chord_to_roman(chord, key)
        func, note = _function(chord, key, nxt)
        reports.append(ChordReport(chord, roman, func, note))
        if func == "borrowed":
            offset = (chord.root_pc - key.tonic_pc) % 12
            label = roman if key.is_minor else _BORROWED_NAMES.get(offset, roman)
            issues.append(f"{chord.name} ({roman}) is not diatonic to {key.name}: {label} is {note}")
            if not key.is_minor and chord.is_minor and offset == 5:
                suggestions.append(f"{chord.name} (iv) gives a bittersweet colour; let it fall to "
                                   f"{tonic.name} (plagal iv–I) or use {roman_to_chord('IV', key).chord.name} "
                                   "for a brighter sound")
            elif not key.is_minor and offset in (3, 8, 10):
                suggestions.append(f"{chord.name} ({roman}) is a rock/film colour borrowed from the parallel minor; "
                                   f"it resolves well to {tonic.name} or to {dominant.name}")
        elif func == "chromatic":
            issues.append(f"{chord.name} ({roman}) is outside {key.name} and its parallel mode")
            suggestions.append(f"make {chord.name} lead somewhere by half step or as a dominant (its root a fifth "
                               "above the next chord), or replace it with a diatonic chord on the same root")

    for a, b in zip(chords, chords[1:]):
        if (a.root_pc - b.root_pc) % 12 == 6:
            issues.append(f"tritone root motion {a.name} → {b.name}: the most distant move, it sounds abrupt")
            if a.quality in _DOMINANT_QUALITIES:
                suggestions.append(f"{a.name} → {b.name} works as a tritone substitution only if {b.name} then "
                                   "moves down a half step; otherwise put a chord a fifth apart between them")
            else:
                suggestions.append(f"bridge {a.name} → {b.name} with a chord a fifth from both roots, "
                                   f"e.g. {pc_name((a.root_pc + 5) % 12)} or {pc_name((b.root_pc + 7) % 12)}")
        if a.root_pc == b.root_pc and a.quality == b.quality and a.bass_pc == b.bass_pc:
            issues.append(f"{a.name} repeats: two identical chords in a row add no motion")
            suggestions.append(f"hold {a.name} for longer, or change its bass ({a.name}/{_third_name(a)}) "
                               "or add a seventh for movement")

    last = chords[-1]
    last_offset = (last.root_pc - key.tonic_pc) % 12
    if last_offset not in (0, 7):
        issues.append(f"ends on {last.name} ({reports[-1].roman}), neither I nor V: the progression sounds "
                      "unfinished")
        suggestions.append(f"end on {tonic.name} for closure, or on {dominant.name} for a half cadence that "
                           "asks to repeat (fine for a loop)")
    if not any((c.root_pc - key.tonic_pc) % 12 == 7 and c.quality in _DOMINANT_QUALITIES for c in chords):
        issues.append(f"no V chord: nothing pulls strongly back to {tonic.name}")
        suggestions.append(f"add {dominant.name} or {dominant7.name} before {tonic.name} for a stronger "
                           "sense of home")
    for i, chord in enumerate(chords[:-1]):
        if _is_dominant(chord, key) and chord.quality == "7" and not _is_tonic(chords[i + 1], key) \
                and (chords[i + 1].root_pc - key.tonic_pc) % 12 not in (9, 8):
            issues.append(f"{chord.name} (V7) moves to {chords[i + 1].name} instead of resolving")
    if not any(_is_tonic(c, key) for c in chords):
        issues.append(f"the tonic chord {tonic.name} never sounds; the key is implied, not stated")
    if len(chords) == 1:
        issues.append("a single chord is a drone, not a progression")
        suggestions.append(f"alternate {tonic.name} with {roman_to_chord('IV', key).chord.name} or "
                           f"{dominant.name}")

    cadence = _cadence(chords, key)
    if not issues:
        suggestions.append("the progression is diatonic and resolves; colour it with sevenths or a borrowed "
                           "chord if you want more feeling")
    seen = set()
    suggestions = [s for s in suggestions if not (s in seen or seen.add(s))]
    return Diagnosis(key=key, chords=reports, issues=issues, suggestions=suggestions, cadence=cadence,
                     alternatives=[(k.name, s) for k, s in ranking[1:4]])


def _third_name(chord: Chord) -> str:
    third = next((i for i in chord.intervals if i in (3, 4)), chord.intervals[1])
    letter = parse_note(chord.root)[0] + 2
    return spell(letter, (chord.root_pc + third) % 12)


def _tonic_chord(key: Key) -> Chord:
    return roman_to_chord("i" if key.is_minor else "I", key).chord


def _cadence(chords: Sequence[Chord], key: Key) -> str:
    """Name of the cadence formed by the last two chords."""
    if len(chords) < 2:
        return "none"
    a, b = chords[-2], chords[-1]
    a_off = (a.root_pc - key.tonic_pc) % 12
    b_off = (b.root_pc - key.tonic_pc) % 12
    if b_off == 0 and a_off == 7:
        return "authentic (V–I)"
    if b_off == 0 and a_off == 5:
        return "plagal (IV–I)" if not a.is_minor else "minor plagal (iv–I)"
    if b_off == 0 and a_off == 11 and a.quality in ("dim", "dim7", "hdim7"):
        return "leading-tone (vii°–I)"
    if b_off == 0 and a_off == 10:
        return "backdoor / Aeolian (bVII–I)"
    if b_off == 7:
        return "half (ends on V)"
    if a_off == 7 and b_off in (8, 9):
        return "deceptive (V–vi)"
    return "none"


# ---------------------------------------------------------------------------- reharmonisation
@dataclass(frozen=True)
class Reharmonization:
    """One reharmonisation: the techniques used, the new chords and their numerals in the key."""

    techniques: tuple[str, ...]
    chords: tuple[Chord, ...]
    romans: tuple[str, ...]

    @property
    def symbols(self) -> list[str]:
        return [c.name for c in self.chords]

    def to_dict(self) -> dict:
        return {"techniques": list(self.techniques), "chords": self.symbols, "romans": list(self.romans)}


Technique = Callable[[list[Chord], Key, np.random.Generator], "list[Chord] | None"]


def spell_root(root_pc: int, quality: str, key: Key) -> str:
    """Spell a chord root the way the key suggests, but never with more accidentals than needed.

    The roman-numeral spelling comes first (Bb, not A#, as iv of F; G#, not Ab, as the
    root of V/vi in C), unless a plain sharp or flat name is simpler: the tritone
    dominant in F is B7, not Cb7.
    """
    candidates = []
    try:
        numeral = chord_to_roman(Chord(pc_name(root_pc), quality), key)
        candidates.append(roman_to_chord(numeral, key).chord.root)
    except InputError:
        pass
    candidates += [pc_name(root_pc), pc_name(root_pc, flats=False)]
    return min(candidates, key=lambda name: len(name))  # min keeps the first of equal length


def _chord(root_pc: int, quality: str, key: Key, bass_pc: int | None = None) -> Chord:
    """A chord on ``root_pc`` spelled as the key would spell it (Bb in F, F# in D)."""
    root = spell_root(root_pc, quality, key)
    bass = None
    if bass_pc is not None and bass_pc % 12 != root_pc % 12:
        bass = spell_root(bass_pc, "maj", key)
    return Chord(root, quality, bass)


def _degree_chord(key: Key, degree: int, seventh: bool = False) -> Chord:
    """The diatonic triad (or seventh chord) on a scale degree (1-based), harmonic minor V in minor."""
    pcs = key.scale_pcs()
    if key.mode == "aeolian" and degree == 5:
        pcs = tuple(pcs[:6]) + ((key.tonic_pc + 11) % 12,)
    root = pcs[(degree - 1) % 7]
    third = (pcs[(degree + 1) % 7] - root) % 12
    fifth = (pcs[(degree + 3) % 7] - root) % 12
    sev = (pcs[(degree + 5) % 7] - root) % 12
    triad = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}.get((third, fifth), "maj")
    if seventh:
        quality = {("maj", 11): "maj7", ("maj", 10): "7", ("min", 10): "min7", ("min", 11): "minmaj7",
                   ("dim", 10): "hdim7", ("dim", 9): "dim7"}.get((triad, sev), triad)
    else:
        quality = triad
    return _chord(root, quality, key)


def _seventh_of(chord: Chord, key: Key) -> Chord:
    """The chord with a seventh: diatonic seventh when its root is in the key, else by quality."""
    offset = (chord.root_pc - key.tonic_pc) % 12
    if offset in key.intervals and _tones(chord) <= _diatonic(key):
        d = _degree_chord(key, key.intervals.index(offset) + 1, seventh=True)
        if d.quality in ("maj7", "7", "min7", "hdim7", "dim7", "minmaj7") and d.root_pc == chord.root_pc:
            return Chord(d.root, d.quality, chord.bass)
    upgrade = {"maj": "maj7", "min": "min7", "dim": "hdim7", "aug": "aug7", "sus4": "7sus4"}
    return Chord(chord.root, upgrade.get(chord.quality, chord.quality), chord.bass)


def _pick(rng: np.random.Generator, options: Sequence[int], k: int = 1) -> list[int]:
    options = list(options)
    if not options:
        return []
    k = max(1, min(k, len(options)))
    return sorted(int(i) for i in rng.choice(options, size=k, replace=False))


def _n_changes(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(1, max(1, n) + 1))


# --- jazz
def tritone_substitution(chords, key, rng):
    """Replace a dominant-function chord with the dominant seventh a tritone away (G7 → Db7).

    Dominant function: a major or dominant chord whose root falls a fifth to the next
    chord. Where there is none, the chord before a chosen target becomes the target's
    tritone-substitute dominant (a half step above the target), which slides into it.
    """
    spots = [i for i in range(len(chords) - 1)
             if chords[i].quality in _DOMINANT_QUALITIES and (chords[i].root_pc - chords[i + 1].root_pc) % 12 == 7]
    out = list(chords)
    if spots:
        for i in _pick(rng, spots, _n_changes(rng, len(spots))):
            out[i] = _chord((chords[i].root_pc + 6) % 12, "7", key)
        return out
    targets = list(range(1, len(chords)))
    if not targets:
        return None
    for i in _pick(rng, targets, _n_changes(rng, min(2, len(targets)))):
        out[i - 1] = _chord((chords[i].root_pc + 1) % 12, "7", key)
    return out


def chromatic_approach(chords, key, rng):
    """Insert a chord of the target's quality a half step above or below it, sliding in."""
    targets = list(range(1, len(chords))) or [0]
    out = list(chords)
    for i in reversed(_pick(rng, targets, _n_changes(rng, min(2, len(targets))))):
        step = 1 if rng.random() < 0.6 else -1
        target = chords[i]
        out.insert(i, _chord((target.root_pc + step) % 12, target.quality, key))
    return out


def secondary_dominants(chords, key, rng):
    """Precede a non-tonic chord with its own dominant seventh (V7/ii, V7/vi …).

    The dominant is inserted before its target, or (by chance) replaces the chord
    before it when that chord is neither the first chord nor itself a target.
    """
    targets = [i for i in range(1, len(chords)) if chords[i].root_pc != key.tonic_pc
               and chords[i].quality not in ("dim", "dim7", "hdim7")]
    if not targets:
        targets = list(range(1, len(chords)))
    if not targets:
        return None
    chosen = set(_pick(rng, targets, _n_changes(rng, min(2, len(targets)))))
    out: list[Chord] = []
    for i, chord in enumerate(chords):
        if i in chosen:
            dom = _chord((chord.root_pc + 7) % 12, "7", key)
            if out and out[-1].root_pc == dom.root_pc:
                out[-1] = dom
            elif out and i - 1 > 0 and (i - 1) not in chosen and out[-1] == chords[i - 1] and rng.random() < 0.5:
                out[-1] = dom
            else:
                out.append(dom)
        out.append(chord)
    return out if out != list(chords) else None


def diminished_passing(chords, key, rng):
    """A diminished seventh between two chords: chromatic passing (I–#i°7–ii) or leading-tone (vii°7/x)."""
    spots = list(range(1, len(chords)))
    if not spots:
        return None
    out = list(chords)
    for i in reversed(_pick(rng, spots, _n_changes(rng, min(2, len(spots))))):
        a, b = chords[i - 1], chords[i]
        if (b.root_pc - a.root_pc) % 12 == 2:
            dim = _chord((a.root_pc + 1) % 12, "dim7", key)  # passing: C – C#°7 – Dm
        else:
            dim = _chord((b.root_pc - 1) % 12, "dim7", key)  # leading-tone diminished of the target
        out.insert(i, dim)
    return out


def coltrane_changes(chords, key, rng):
    """Giant-steps cycle into a major target: bIII7 → bVImaj7 → VII7 → IIImaj7 → V7 → I (relative to it).

    The target is a tonic (or other major) chord after the first; the chord before it is
    replaced by the cycle through the three keys a major third apart.
    """
    targets = [i for i in range(1, len(chords)) if chords[i].quality in ("maj", "maj7", "6", "add9", "maj9")]
    if not targets:
        targets = list(range(1, len(chords)))
    if not targets:
        return None
    i = _pick(rng, targets)[0]
    t = chords[i].root_pc
    cycle = [_chord((t + 3) % 12, "7", key), _chord((t + 8) % 12, "maj7", key), _chord((t + 11) % 12, "7", key),
             _chord((t + 4) % 12, "maj7", key), _chord((t + 7) % 12, "7", key)]
    target = Chord(chords[i].root, "maj7", chords[i].bass)
    keep = i if i - 1 == 0 else i - 1  # the first chord stays: it states the key
    return list(chords[:keep]) + cycle + [target] + list(chords[i + 1:])


def diatonic_sevenths(chords, key, rng):
    """Every triad becomes its diatonic seventh chord (the jazz baseline)."""
    return [_seventh_of(c, key) if c.quality in ("maj", "min", "dim", "aug") else c for c in chords]


# --- pop
def borrowed_from_parallel(chords, key, rng):
    """Swap diatonic chords for their parallel-mode versions: IV→iv, vi→bVI, V→bVII, ii→iv (major);
    iv→IV, v→V, final i→I (Picardy third) in minor."""
    out = list(chords)
    swaps: dict[int, Chord] = {}
    for i, c in enumerate(chords):
        off = (c.root_pc - key.tonic_pc) % 12
        if not key.is_minor:
            if off == 5 and not c.is_minor:
                swaps[i] = _chord(c.root_pc, "min", key)
            elif off == 9 and c.is_minor:
                swaps[i] = _chord((key.tonic_pc + 8) % 12, "maj", key)
            elif off == 7 and not c.is_minor and i not in (0,):
                swaps[i] = _chord((key.tonic_pc + 10) % 12, "maj", key)
            elif off == 2 and c.is_minor:
                swaps[i] = _chord((key.tonic_pc + 5) % 12, "min", key)
            elif off == 4 and c.is_minor:
                swaps[i] = _chord((key.tonic_pc + 3) % 12, "maj", key)
        else:
            if off == 5 and c.is_minor:
                swaps[i] = _chord(c.root_pc, "maj", key)
            elif off == 7 and c.is_minor:
                swaps[i] = _chord(c.root_pc, "maj", key)
            elif off == 0 and i == len(chords) - 1 and c.is_minor:
                swaps[i] = _chord(c.root_pc, "maj", key)
    if not swaps:  # nothing to swap: colour the last non-tonic chord with iv / IV
        idx = [i for i, c in enumerate(chords) if c.root_pc != key.tonic_pc] or [len(chords) - 1]
        i = _pick(rng, idx)[0]
        swaps[i] = _chord((key.tonic_pc + 5) % 12, "maj" if key.is_minor else "min", key)
    for i in _pick(rng, list(swaps), _n_changes(rng, len(swaps))):
        out[i] = swaps[i]
    return out


def pedal_point(chords, key, rng):
    """Hold the tonic (or the dominant) in the bass under every chord: slash chords over a pedal."""
    pedal = key.tonic_pc if rng.random() < 0.7 else (key.tonic_pc + 7) % 12
    bass = spell_root(pedal, "maj", key)
    return [c if c.root_pc == pedal else Chord(c.root, c.quality, bass) for c in chords]


def sus_chords(chords, key, rng):
    """Suspend major chords (sus4, or sus2), and let a suspended V resolve: Vsus4 → V."""
    majors = [i for i, c in enumerate(chords) if c.quality in ("maj", "7")]
    if not majors:
        majors = list(range(len(chords)))
    out = list(chords)
    for i in reversed(_pick(rng, majors, _n_changes(rng, min(2, len(majors))))):
        c = chords[i]
        if (c.root_pc - key.tonic_pc) % 12 == 7 and rng.random() < 0.6:
            out.insert(i, Chord(c.root, "sus4" if c.quality == "maj" else "7sus4", c.bass))
        else:
            out[i] = Chord(c.root, "sus2" if rng.random() < 0.4 else "sus4", c.bass)
    return out


def add9_extensions(chords, key, rng):
    """Add ninths: major → add9, minor → m(add9), on some or all chords."""
    cands = [i for i, c in enumerate(chords) if c.quality in ("maj", "min")]
    if not cands:
        return None
    out = list(chords)
    for i in _pick(rng, cands, _n_changes(rng, len(cands))):
        c = chords[i]
        out[i] = Chord(c.root, "add9" if c.quality == "maj" else "madd9", c.bass)
    return out


# --- r&b / neo-soul
def extended_chords(chords, key, rng):
    """Ninths and elevenths: maj → maj9, minor → m9 or m11, dominant → 9 (the R&B palette)."""
    out = []
    for c in chords:
        if c.quality in ("maj", "maj7", "add9", "6"):
            dominantish = (c.root_pc - key.tonic_pc) % 12 == 7
            out.append(Chord(c.root, "9" if dominantish else "maj9", c.bass))
        elif c.quality in ("min", "min7", "madd9"):
            out.append(Chord(c.root, "min11" if rng.random() < 0.4 else "min9", c.bass))
        elif c.quality == "7":
            out.append(Chord(c.root, "9" if rng.random() < 0.7 else "11", c.bass))
        else:
            out.append(c)
    return out


def ii_v_approach(chords, key, rng):
    """Approach a target chord through its own ii7–V7 (the R&B and gospel lift)."""
    targets = list(range(1, len(chords))) or [0]
    out = list(chords)
    for i in reversed(_pick(rng, targets, _n_changes(rng, min(2, len(targets))))):
        t = chords[i]
        two = _chord((t.root_pc + 2) % 12, "hdim7" if t.is_minor else "min7", key)
        five = _chord((t.root_pc + 7) % 12, "7", key)
        out[i:i] = [two, five]
    return out


def neo_soul_minor_sevenths(chords, key, rng):
    """Minor sevenths in place of major chords: I → iii7 or vi7 (tonic substitutes), IV → iv7 or ii7, V → v7."""
    out = list(chords)
    subs: dict[int, list[Chord]] = {}
    for i, c in enumerate(chords):
        off = (c.root_pc - key.tonic_pc) % 12
        if c.is_minor and c.quality != "min7":
            subs[i] = [Chord(c.root, "min7", c.bass)]
        elif off == 0 and not c.is_minor and 0 < i < len(chords) - 1:
            subs[i] = [_chord((c.root_pc + 4) % 12, "min7", key), _chord((c.root_pc + 9) % 12, "min7", key)]
        elif off == 5 and not c.is_minor:
            subs[i] = [_chord(c.root_pc, "min7", key), _chord((key.tonic_pc + 2) % 12, "min7", key)]
        elif off == 7 and not c.is_minor:
            subs[i] = [_chord(c.root_pc, "min7", key)]
    if not subs:
        return None
    for i in _pick(rng, list(subs), _n_changes(rng, len(subs))):
        options = subs[i]
        out[i] = options[int(rng.integers(len(options)))]
    return out


def backdoor_dominant(chords, key, rng):
    """Reach the tonic from bVII7 (the 'backdoor' iv7–bVII7–I of soul and gospel)."""
    tonics = [i for i in range(1, len(chords)) if chords[i].root_pc == key.tonic_pc]
    if not tonics:
        return None
    i = _pick(rng, tonics)[0]
    four = _chord((key.tonic_pc + 5) % 12, "min7", key)
    seven = _chord((key.tonic_pc + 10) % 12, "7", key)
    prev = chords[i - 1]
    if (prev.root_pc - key.tonic_pc) % 12 in (5, 7):
        return list(chords[:i - 1]) + [four, seven] + list(chords[i:])
    return list(chords[:i]) + [seven] + list(chords[i:])


# --- classical
def cadential_six_four(chords, key, rng):
    """The cadential 6/4: I in second inversion (I/5) before V, then V–I."""
    tonic = _tonic_chord(key)
    dom = roman_to_chord("V", key).chord
    six_four = Chord(tonic.root, tonic.quality, dom.root)
    out = list(chords)
    vs = [i for i in range(1, len(chords)) if _is_dominant(chords[i], key)]
    if vs:
        i = vs[-1]
        if out[i - 1] == six_four:
            return None
        out.insert(i, six_four)
        return out
    if _is_tonic(chords[-1], key) and len(chords) > 1:
        return out[:-1] + [six_four, dom, out[-1]]
    return out + [six_four, dom, tonic]


def circle_of_fifths(chords, key, rng):
    """Replace the middle with diatonic chords whose roots fall by fifths into the last chord (vi–ii–V–I)."""
    last = chords[-1]
    off = (last.root_pc - key.tonic_pc) % 12
    if off not in key.intervals:
        return None
    degree = key.intervals.index(off) + 1
    length = int(rng.integers(2, 5))
    chain = []
    d = degree
    for _ in range(length):
        d = (d + 3) % 7 + 1  # a fifth above, as a scale degree
        chain.append(_degree_chord(key, d, seventh=bool(rng.random() < 0.5)))
    chain.reverse()
    head = [chords[0]] if len(chords) > 1 else []
    if head and chain and head[0].root_pc == chain[0].root_pc:
        chain = chain[1:]
    return head + chain + [last]


def deceptive_cadence(chords, key, rng):
    """V–vi instead of V–I, then cadence again: … V – vi – IV – V – I (or VI in minor)."""
    tonic = _tonic_chord(key)
    dom = roman_to_chord("V", key).chord
    sub = roman_to_chord("VI" if key.is_minor else "vi", key).chord
    pre = roman_to_chord("iv" if key.is_minor else "IV", key).chord
    out = list(chords)
    if len(out) >= 2 and _is_dominant(out[-2], key) and _is_tonic(out[-1], key):
        return out[:-1] + [sub, pre, dom, tonic]
    if _is_tonic(out[-1], key):
        return out[:-1] + [dom, sub, pre, dom, tonic]
    return out + [dom, sub, pre, dom, tonic]


# --- experimental
def chromatic_mediants(chords, key, rng):
    """Swap chords for chromatic mediants: same quality, root a major or minor third away (C → E, Ab, A, Eb)."""
    idx = list(range(1, len(chords))) or [0]
    out = list(chords)
    for i in _pick(rng, idx, _n_changes(rng, min(2, len(idx)))):
        c = chords[i]
        shift = int(rng.choice([3, 4, 8, 9]))
        quality = "maj" if c.quality in ("maj", "7", "maj7", "add9") else ("min" if c.is_minor else c.quality)
        out[i] = _chord((c.root_pc + shift) % 12, quality, key)
    return out


def planing(chords, key, rng):
    """Parallel harmony (Debussy, house pianos): every chord takes the same shape, roots unchanged."""
    shape = str(rng.choice(["maj7", "min7", "add9", "sus2", "min9", "maj9"]))
    return [Chord(c.root, shape, None) for c in chords]


def polychords(chords, key, rng):
    """Upper-structure polychords: a triad a whole step (lydian) or a fifth above, over the old root as bass."""
    idx = list(range(len(chords)))
    out = list(chords)
    for i in _pick(rng, idx, _n_changes(rng, len(idx))):
        c = chords[i]
        up = 2 if rng.random() < 0.6 else 7
        out[i] = _chord((c.root_pc + up) % 12, "maj", key, bass_pc=c.root_pc)
    return out


def quartal_voicings(chords, key, rng):
    """Chords in fourths, written as 7sus4 / sus4 (stacked fourths over the root): open and unresolved."""
    idx = list(range(len(chords)))
    out = list(chords)
    for i in _pick(rng, idx, max(2, _n_changes(rng, len(idx)))):
        c = chords[i]
        out[i] = Chord(c.root, "7sus4" if rng.random() < 0.6 else "sus4", c.bass)
    return out


#: Techniques per style, in the order they are tried.
REHARM_TECHNIQUES: dict[str, dict[str, Technique]] = {
    "jazz": {"tritone_substitution": tritone_substitution, "chromatic_approach": chromatic_approach,
             "secondary_dominants": secondary_dominants, "diminished_passing": diminished_passing,
             "coltrane_changes": coltrane_changes},
    "pop": {"borrowed_from_parallel": borrowed_from_parallel, "pedal_point": pedal_point,
            "sus_chords": sus_chords, "add9_extensions": add9_extensions},
    "rnb": {"extended_chords": extended_chords, "ii_v_approach": ii_v_approach,
            "neo_soul_minor_sevenths": neo_soul_minor_sevenths, "backdoor_dominant": backdoor_dominant},
    "classical": {"secondary_dominants": secondary_dominants, "cadential_six_four": cadential_six_four,
                  "circle_of_fifths": circle_of_fifths, "deceptive_cadence": deceptive_cadence},
    "experimental": {"chromatic_mediants": chromatic_mediants, "planing": planing, "polychords": polychords,
                     "quartal_voicings": quartal_voicings},
}
STYLES = tuple(REHARM_TECHNIQUES)
MAX_COUNT = 20


def reharmonize(progression, style: str, *, count: int = 3, seed: int | None = 0) -> list[Reharmonization]:
    """``count`` distinct reharmonisations of ``progression`` in ``style``.

    Single techniques are tried first (in a seeded random order), then pairs and
    triples, each applied with fresh random choices, until ``count`` distinct chord
    sequences (different from the original and from each other) are found. Jazz
    results also turn the remaining triads into diatonic sevenths, the idiom's
    baseline (listed as ``diatonic_sevenths``).

    Raises
    ------
    InputError
        Unknown style (the message lists the styles), ``count`` outside 1–20, or an
        unreadable chord.
    """
    style_key = (style or "").strip().lower().replace("&", "n").replace("-", "").replace(" ", "")
    style_key = {"randb": "rnb", "r&b": "rnb"}.get(style_key, style_key)
    if style_key not in REHARM_TECHNIQUES:
        raise InputError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
    if not 1 <= int(count) <= MAX_COUNT:
        raise InputError(f"count must be between 1 and {MAX_COUNT}, not {count}")
    chords = _as_chords(progression)
    key, _ = detect_key(chords)
    rng = np.random.default_rng(seed)
    techniques = REHARM_TECHNIQUES[style_key]
    names = list(techniques)
    combos: list[tuple[str, ...]] = []
    for r in range(1, min(3, len(names)) + 1):
        group = list(itertools.combinations(names, r))
        order = rng.permutation(len(group))
        combos.extend(group[int(j)] for j in order)

    seen = {tuple(c.name for c in chords)}
    results: list[Reharmonization] = []
    for attempt in range(12):
        for combo in combos:
            if len(results) >= count:
                break
            current = list(chords)
            applied = []
            for name in combo:
                new = techniques[name](current, key, rng)
                if new and new != current:
                    current = list(new)
                    applied.append(name)
            if not applied:
                continue
            if style_key == "jazz":
                sevenths = diatonic_sevenths(current, key, rng)
                if sevenths != current:
                    current = sevenths
                    applied.append("diatonic_sevenths")
            sig = tuple(c.name for c in current)
            if sig in seen:
                continue
            seen.add(sig)
            results.append(Reharmonization(tuple(applied), tuple(current),
                                           tuple(chord_to_roman(c, key) for c in current)))
        if len(results) >= count:
            break
    if len(results) < count:
        raise InputError(f"only {len(results)} distinct {style_key} reharmonisations of this progression "
                         f"were found; ask for fewer (-n {max(1, len(results))})")
    return results


__all__ = ["detect_key", "key_score", "diagnose", "Diagnosis", "ChordReport", "Reharmonization",
           "reharmonize", "spell_root", "REHARM_TECHNIQUES", "STYLES"]
