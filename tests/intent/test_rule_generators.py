"""Every rule MIDI can express has a generator whose effect is measured in the written MIDI.

For each generator rule we compose the same emotion and seed twice with automatic rule
breaks off — once with ``breaks=(rule,)`` and once without — write both to Standard MIDI
bytes, read them back with mido (through :func:`kelly.song.song_from_midi`) and apply a
per-rule measurement. The measurement must say "present" for the first and "absent" for
the second, so a generator that silently does nothing (or a measurement that would pass
anyway) fails the test.
"""

from __future__ import annotations

import io
from collections import Counter
from functools import lru_cache

import mido
import numpy as np
import pytest

from kelly.emotion.thesaurus import state_for
from kelly.generator import ComposeOptions, compose
from kelly.intent.rule_generators import GENERATORS
from kelly.intent.rules import RULES, RULES_BY_ID
from kelly.song import song_from_midi
from kelly.theory.roman import roman_to_chord
from kelly.theory.scales import parse_key

BARS = 8
BAR = 1920
SEED = 1


@lru_cache(maxsize=None)
def _compose(emotion: str, rule: str | None):
    opts = ComposeOptions(bars=BARS, seed=SEED, auto_breaks=False, breaks=(rule,) if rule else ())
    comp = compose(state_for(emotion), opts)
    data = comp.song.to_bytes()
    song = song_from_midi(mido.MidiFile(file=io.BytesIO(data)))
    return song, comp.explanation.to_json(), data


class Piece:
    """A composed piece as read back from its MIDI bytes, plus its explanation."""

    def __init__(self, emotion: str, rule: str | None):
        self.song, self.ex, self.data = _compose(emotion, rule)
        self.key = parse_key(self.ex["progression"]["key"])
        self.tonic = self.key.tonic_pc

    def track(self, name: str):
        return next((t for t in self.song.tracks if t.name == name), None)

    def notes(self, name: str):
        t = self.track(name)
        return sorted(t.notes) if t else []

    def pitched(self):
        return [t for t in self.song.tracks if not t.is_drum and t.notes]

    def all_notes(self):
        return [n for t in self.song.tracks for n in t.notes]

    def bar_pcs(self, name: str, bar: int) -> set[int]:
        return {n.pitch % 12 for n in self.notes(name) if bar * BAR - 30 <= n.start < (bar + 1) * BAR - 30}

    def tempos(self):
        return [b for _, b in self.song.tempos]


def q16(tick: int) -> int:
    """Round a (humanized) onset to the nearest 16th."""
    return int(round(tick / 120.0)) * 120


# ------------------------------------------------------------------ measurements
def m_avoid_tonic(p: Piece) -> bool:
    last_roman = p.ex["progression"]["chords"][-1]["numeral"]
    last_chord = roman_to_chord(last_roman, p.key).chord
    bass = p.notes("Bass")
    last_bass = max(bass, key=lambda n: n.start).pitch % 12
    return last_chord.root_pc != p.tonic and last_bass != p.tonic


def m_modal_interchange(p: Piece) -> bool:
    """Borrowed colour chords: a chord whose root or third lies outside the mode, read from the
    explanation's numerals and heard in the keys part. A minor key's dominant (major V, whose
    third is the raised leading tone) is ordinary harmonic minor, not a borrowing, so it does not count."""
    scale = set(p.key.scale_pcs())
    leading = (p.tonic - 1) % 12
    dominant_root = (p.tonic + 7) % 12
    colour = []
    for bar, r in enumerate(c["numeral"] for c in p.ex["progression"]["chords"]):
        chord = roman_to_chord(r, p.key).chord
        if p.key.is_minor and chord.root_pc == dominant_root:
            continue
        triad = set(chord.pitch_classes()[:3])
        if triad - scale and (triad - scale) != {leading}:
            colour.append(bar)
    heard = [b for b in colour if (p.bar_pcs("Chords", b) - scale) - {leading}]
    return len(heard) >= 1


def m_parallel_motion(p: Piece) -> bool:
    fifths = []
    for b in range(BARS):
        pcs = p.bar_pcs("Chords", b)
        roots = [r for r in pcs if (r + 7) % 12 in pcs]
        fifths.append(roots[0] if len(pcs) == 2 and len(roots) == 1 else None)
    power = sum(f is not None for f in fifths)
    moving = sum(1 for a, b in zip(fifths, fifths[1:]) if a is not None and b is not None and a != b)
    return power >= BARS - 1 and moving >= 2


def m_unresolved_dissonance(p: Piece) -> bool:
    rich = [len(p.bar_pcs("Chords", b)) >= 4 for b in range(BARS)]
    return rich[-1] and sum(rich) >= BARS - 1


def m_tritone_sub(p: Piece) -> bool:
    # a dominant-seventh chord whose root is a half step above the tonic (bII7)
    for b in range(BARS):
        pcs = p.bar_pcs("Chords", b)
        root = (p.tonic + 1) % 12
        if {root, (root + 4) % 12, (root + 10) % 12} <= pcs:
            return True
    return False


def m_polytonality(p: Piece) -> bool:
    hits = 0
    for b in range(BARS):
        base = p.bar_pcs("Chords", b)
        if not base:
            continue
        for t in p.pitched():
            if t.name == "Chords":
                continue
            pcs = p.bar_pcs(t.name, b)
            if pcs and any(pcs == {(x + s) % 12 for x in base} for s in (2, 6)):
                hits += 1
                break
    return hits >= BARS // 2


def _leaps(p: Piece) -> int:
    mel = p.notes("Melody")
    return sum(1 for a, b in zip(mel, mel[1:]) if abs(a.pitch - b.pitch) >= 7)


def m_angular(p: Piece) -> bool:
    return _leaps(p) >= 2 * max(1, _leaps(Piece(_EMO["MELODY_AngularIntervals"], None))) and _leaps(p) >= 4


def _cells(p: Piece):
    cells = []
    for b in range(BARS):
        notes = [n for n in p.notes("Melody") if b * BAR - 60 <= n.start < (b + 1) * BAR - 60]
        if notes:
            cells.append(tuple((q16(n.start - b * BAR), n.pitch) for n in notes))
    return cells


def m_repetition(p: Piece) -> bool:
    cells = _cells(p)
    return bool(cells) and Counter(cells).most_common(1)[0][1] >= 0.75 * BARS


def m_monotone(p: Piece) -> bool:
    return len({n.pitch % 12 for n in p.notes("Melody")}) <= 2


def m_fragmented(p: Piece) -> bool:
    mel = p.notes("Melody")
    late = [n for n in mel if q16(n.start) % BAR >= BAR // 2]
    sounding = [n for n in mel if n.end % BAR > BAR // 2 + 60 and n.end // BAR == n.start // BAR]
    return bool(mel) and not late and not sounding


def m_avoid_resolution(p: Piece) -> bool:
    mel = p.notes("Melody")
    phrase = 4 * BAR
    finals = [n for k, n in enumerate(mel) if k == len(mel) - 1 or mel[k + 1].start // phrase != n.start // phrase]
    return bool(finals) and all(n.pitch % 12 != p.tonic for n in finals)


def m_anticlimax(p: Piece) -> bool:
    mel = p.notes("Melody")
    cut = (BARS - 4) * BAR
    early = np.mean([n.pitch for n in mel if n.start < cut])
    late = np.mean([n.pitch for n in mel if n.start >= cut])
    return late < early - 6


def m_displacement(p: Piece) -> bool:
    # everything between the downbeats leans late; the kick and the bass keep beat one
    drums = p.notes("Drums")
    inner = [n for n in drums if abs(n.start % BAR) > 60 and abs(n.start % BAR - BAR) > 60]
    off = [n for n in inner if 80 <= n.start % 240 <= 160]
    kick_bars = {round(n.start / BAR) for n in drums if n.pitch == 36 and (n.start % BAR <= 30 or n.start % BAR >= BAR - 30)}
    bass_bars = {round(n.start / BAR) for n in p.notes("Bass") if n.start % BAR <= 30 or n.start % BAR >= BAR - 30}
    bars_with_kick = {n.start // BAR for n in drums if n.pitch == 36}
    bars_with_bass = {n.start // BAR for n in p.notes("Bass")}
    return (len(off) >= 0.7 * len(inner) and kick_bars >= bars_with_kick - {BARS}
            and bass_bars >= bars_with_bass - {BARS} and bool(bass_bars))


def m_dropped(p: Piece) -> bool:
    onsets = [n.start for n in p.all_notes()]
    return not any(abs(t % BAR - 960) <= 20 for t in onsets)


def m_polyrhythm(p: Piece) -> bool:
    wood = sorted(n.start for t in p.song.tracks if t.is_drum for n in t.notes if n.pitch == 76)
    three = [t for t in wood if q16(t) % 480 != 0]
    return len(wood) >= BARS * 2 and len(three) >= BARS


def m_metric(p: Piece) -> bool:
    last = p.ex["arrangement"]["sections"][-1]
    lo = (last["start_bar"] - 1) * BAR
    hits = [n.start for name in ("Drums", "Bass") for n in p.notes(name) if n.start >= lo - 30]
    accents = [t for t in hits if min(abs(t % BAR - a) for a in (0, 720, 1440, 1920)) <= 100]
    at_720 = {t // BAR for t in hits if abs(t % BAR - 720) <= 100}
    return bool(hits) and len(accents) == len(hits) and len(at_720) >= last["bars"] - 1


def m_tempo_fluct(p: Piece) -> bool:
    t = p.tempos()
    return len(t) >= BARS * 2 and 5 <= max(t) - min(t) <= 12


def m_accel_decay(p: Piece) -> bool:
    t = p.tempos()
    peak = int(np.argmax(t))
    return max(t) >= 1.2 * t[0] and 0 < peak < len(t) - 1 and t[-1] < t[0]


def m_time_stretch(p: Piece) -> bool:
    tm = p.song.tempos
    total = BARS * BAR
    mid = [b for tick, b in tm if total // 3 <= tick < 2 * total // 3]
    return bool(mid) and min(mid) <= 0.6 * tm[0][1] and tm[-1][1] == tm[0][1]


def _silent_bars(p: Piece) -> list[int]:
    notes = p.all_notes()
    return [b for b in range(BARS)
            if not any(n.start < (b + 1) * BAR - 40 and n.end > b * BAR + 40 for n in notes)]


def m_silence(p: Piece) -> bool:
    return len(_silent_bars(p)) >= 1


def m_breath(p: Piece) -> bool:
    notes = p.all_notes()
    for b in range(3, BARS, 4):
        lo, hi = b * BAR + 1440 + 40, (b + 1) * BAR - 40
        if any(n.start < hi and n.end > lo for n in notes):
            return False
    return True


def m_abrupt(p: Piece) -> bool:
    return max(n.end for n in p.all_notes()) <= (BARS - 1) * BAR + 480 + 40


def m_extended_intro(p: Piece) -> bool:
    end = (BARS // 3) * BAR
    # an eighth before the verse a humanizer's ghost pickup may lead in; before that only pad and chords
    early = {t.name for t in p.song.tracks for n in t.notes if n.start < end - 240}
    return bool(early) and early <= {"Pad", "Chords"}


def m_loop(p: Piece) -> bool:
    span = 2 * BAR
    for name in ("Chords", "Bass", "Melody"):
        cells = []
        for k in range(BARS // 2):
            cells.append(tuple(sorted((q16(n.start - k * span), n.pitch) for n in p.notes(name)
                                      if k * span - 60 <= n.start < (k + 1) * span - 60)))
        if len(set(cells)) != 1:
            return False
    return True


def m_sparse(p: Piece) -> bool:
    return len([t for t in p.song.tracks if t.notes]) <= 3


def m_single(p: Piece) -> bool:
    names = [t.name for t in p.song.tracks if t.notes]
    return names == ["Melody"]


def _span(p: Piece, name: str) -> int:
    pitches = [n.pitch for n in p.notes(name)]
    return max(pitches) - min(pitches)


def m_dense(p: Piece) -> bool:
    # the wall grows downwards (the melody stays on top): a lower floor and far more notes
    base = Piece(_EMO["TEXTURE_DenseWall"], None)
    low = min(n.pitch for n in p.notes("Chords"))
    return (low <= min(n.pitch for n in base.notes("Chords")) - 12 and _span(p, "Chords") >= _span(base, "Chords") + 12
            and len(p.notes("Chords")) >= 2.5 * len(base.notes("Chords")))


def m_masking(p: Piece) -> bool:
    centre = np.median([n.pitch for n in p.notes("Melody")])
    others = [np.median([n.pitch for n in p.notes(name)]) for name in ("Pad", "Strings", "Chords") if p.notes(name)]
    return bool(others) and all(abs(c - centre) <= 6 for c in others)


def m_timbres(p: Piece) -> bool:
    return p.track("Chords").program == 30 and p.track("Melody").program == 10


def m_drift(p: Piece) -> bool:
    half = BARS * BAR // 2
    lead = p.notes("Melody")
    drift = [t for t in p.pitched() if t.name != "Melody" and t.notes and min(n.start for n in t.notes) >= half - 60
             and t.program != p.track("Melody").program]
    return bool(lead) and max(n.start for n in lead) < half and bool(drift)


def _vels(p: Piece, name: str | None = None):
    return [n.velocity for t in p.pitched() if name is None or t.name == name for n in t.notes]


def m_extreme_dyn(p: Piece) -> bool:
    base = Piece(_EMO["ARRANGEMENT_ExtremeDynamicRange"], None)
    spread = lambda q: np.percentile(_vels(q), 95) - np.percentile(_vels(q), 5)  # noqa: E731
    return spread(p) >= spread(base) + 20


def m_unbalanced(p: Piece) -> bool:
    return np.median(_vels(p, "Bass")) >= np.median(_vels(p, "Melody")) + 40


def m_buried(p: Piece) -> bool:
    return np.median(_vels(p, "Melody")) < np.median(_vels(p, "Chords"))


def m_premature(p: Piece) -> bool:
    cut = BARS * BAR // 3
    notes = [n for t in p.pitched() for n in t.notes]
    early = np.mean([n.velocity for n in notes if n.start < cut])
    late = np.mean([n.velocity for n in notes if n.start >= cut])
    return early >= late + 20


def m_mismatch(p: Piece) -> bool:
    """The piece opens with what (without the rule) is its last section: the keys part's first bar
    sounds like the unbroken piece's last section's first bar, and differs from the unbroken opening."""
    base = Piece(_EMO["ARRANGEMENT_StructuralMismatch"], None)
    last = base.ex["arrangement"]["sections"][-1]
    first_bar_of_last = last["start_bar"] - 1
    opening = p.bar_pcs("Chords", 0) | p.bar_pcs("Bass", 0)
    return (opening == base.bar_pcs("Chords", first_bar_of_last) | base.bar_pcs("Bass", first_bar_of_last)
            and [n.pitch for n in p.notes("Melody")[:4]] == [n.pitch for n in base.notes("Melody")
                                                               if n.start >= first_bar_of_last * BAR - 60][:4]
            and [n.pitch for n in p.notes("Melody")[:4]] != [n.pitch for n in base.notes("Melody")[:4]])


MEASURE = {
    "HARMONY_AvoidTonicResolution": m_avoid_tonic,
    "HARMONY_ModalInterchange": m_modal_interchange,
    "HARMONY_ParallelMotion": m_parallel_motion,
    "HARMONY_UnresolvedDissonance": m_unresolved_dissonance,
    "HARMONY_TritoneSubstitution": m_tritone_sub,
    "HARMONY_Polytonality": m_polytonality,
    "MELODY_AngularIntervals": m_angular,
    "MELODY_ExcessiveRepetition": m_repetition,
    "MELODY_MonotoneDrone": m_monotone,
    "MELODY_FragmentedPhrases": m_fragmented,
    "MELODY_AvoidResolution": m_avoid_resolution,
    "MELODY_AntiClimax": m_anticlimax,
    "RHYTHM_ConstantDisplacement": m_displacement,
    "RHYTHM_DroppedBeats": m_dropped,
    "RHYTHM_PolyrhythmicLayers": m_polyrhythm,
    "RHYTHM_MetricModulation": m_metric,
    "RHYTHM_TempoFluctuation": m_tempo_fluct,
    "TEMPORAL_AccelerandoDecay": m_accel_decay,
    "TEMPORAL_TimeStretch": m_time_stretch,
    "PRODUCTION_SilenceAsInstrument": m_silence,
    "TEMPORAL_BreathPauses": m_breath,
    "TEMPORAL_AbruptEnding": m_abrupt,
    "TEMPORAL_ExtendedIntro": m_extended_intro,
    "TEMPORAL_LoopHypnosis": m_loop,
    "TEXTURE_SparseEmptiness": m_sparse,
    "TEXTURE_SingleElementFocus": m_single,
    "TEXTURE_DenseWall": m_dense,
    "TEXTURE_FrequencyMasking": m_masking,
    "TEXTURE_ConflictingTimbres": m_timbres,
    "TEXTURE_TimbralDrift": m_drift,
    "ARRANGEMENT_ExtremeDynamicRange": m_extreme_dyn,
    "ARRANGEMENT_UnbalancedDynamics": m_unbalanced,
    "ARRANGEMENT_BuriedVocals": m_buried,
    "ARRANGEMENT_PrematureClimax": m_premature,
    "ARRANGEMENT_StructuralMismatch": m_mismatch,
}

#: The emotion each rule is heard against: anxiety (D minor, every layer incl. drums) by
#: default; hope (major, has a V) for the tritone substitution; calm (plain triads) for the
#: unresolved dissonance, so "absent" is a real triad ending.
_EMO = {rid: "anxiety" for rid in MEASURE} | {"HARMONY_TritoneSubstitution": "hope",
                                              "HARMONY_UnresolvedDissonance": "calm"}


def test_every_generator_rule_is_measured_and_every_midi_rule_has_a_generator():
    midi_rules = {r.id for r in RULES if r.midi == "generator"}
    assert midi_rules == set(GENERATORS)
    assert set(MEASURE) == set(GENERATORS)


@pytest.mark.parametrize("rule", sorted(MEASURE))
def test_rule_effect_present_with_and_absent_without(rule):
    emotion = _EMO[rule]
    with_rule = Piece(emotion, rule)
    without = Piece(emotion, None)
    assert [b["rule"] for b in with_rule.ex["rule_breaks"]] == [rule]
    assert without.ex["rule_breaks"] == []
    assert MEASURE[rule](with_rule), f"{rule}: effect not measurable in the MIDI"
    assert not MEASURE[rule](without), f"{rule}: effect present even without the rule"


@pytest.mark.parametrize("rule", sorted(r.id for r in RULES if r.midi == "production"))
def test_production_rules_are_notes_not_notes_changed(rule):
    with_rule = Piece("anxiety", rule)
    without = Piece("anxiety", None)
    assert with_rule.data == without.data  # byte-identical MIDI
    notes = with_rule.ex["production_notes"]
    assert [n["rule"] for n in notes] == [rule]
    assert RULES_BY_ID[rule].description.split()[0] in notes[0]["note"]
