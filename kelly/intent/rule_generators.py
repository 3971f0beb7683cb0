"""Generators that make rule breaks audible in the MIDI.

Each generator is registered for one rule id and one stage of the composition:

* ``progression`` — ``fn(romans, plan, rng, s) -> romans``: edits the roman numerals
  (one per bar) before chords are voiced;
* ``parts`` — ``fn(tracks, plan, rng, s) -> None``: edits the written parts in place
  (after variation, before dynamics);
* ``dynamics`` — like ``parts`` but after the dynamics engine (velocity rules);
* ``tempo`` — ``fn(tempos, plan, rng, s) -> tempos``: edits the tempo map.

``s`` is the severity in (0, 1]. Production rules have no generator: they become notes
in the explanation (``production_note``).
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from kelly.engines.context import Plan
from kelly.song import Role, Track

GENERATORS: dict[str, tuple[str, Callable]] = {}


def generator(rule_id: str, stage: str):
    def register(fn: Callable) -> Callable:
        GENERATORS[rule_id] = (stage, fn)
        return fn
    return register


def _track(tracks: list[Track], name: str) -> Track | None:
    return next((t for t in tracks if t.name == name), None)


def _bar_of(tick: int, plan: Plan) -> int:
    return tick // plan.bar_ticks


def _with_suffix(roman: str, suffix: str) -> str:
    """Add a quality suffix to a numeral, before any slash ("v/3" + "7" → "v7/3")."""
    head, sep, tail = roman.partition("/")
    return head + suffix + sep + tail


def _strip_prefix(roman: str) -> tuple[str, str]:
    return (roman.split(":")[0] + ":", roman.split(":")[1]) if ":" in roman else ("", roman)


# ----------------------------------------------------------------------------- harmony
@generator("HARMONY_AvoidTonicResolution", "progression")
def avoid_tonic_resolution(romans, plan, rng, s):
    """The piece ends on IV or VI (never the tonic); with high severity phrase ends avoid it too."""
    out = list(romans)
    minor = plan.params_at_bar(len(out) - 1).key.is_minor  # a journey ends in its last section's mode
    final = "bVI" if minor else ("IV" if rng.random() < 0.5 else "vi")
    pre, _ = _strip_prefix(out[-1])
    out[-1] = pre + final
    if s > 0.5:
        for k in range(3, len(out) - 1, 4):
            pre, r = _strip_prefix(out[k])
            if r in ("i", "I"):
                out[k] = pre + ("iv" if plan.params_at_bar(k).key.is_minor else "IV")
    return out


@generator("HARMONY_ModalInterchange", "progression")
def modal_interchange(romans, plan, rng, s):
    """Borrow chords from the parallel mode.

    In major: iv, bVI, bVII, bIII (from the parallel minor: the "shadow" over joy). In
    minor: the parallel major's dominant V (the raised leading tone) and IV (the dorian
    "light in the sadness"). A minor key's V is so common (harmonic minor, and every
    cadence ends V–i) that it alone is not heard as a borrowing, so the generator makes
    sure at least one *colour* chord — bVI in major, IV in minor — sounds, on the third bar
    of a four-bar phrase, away from the final cadence. Numerals with a slash (``iv/3``)
    are matched on their head and replaced by the plain borrowed chord.
    """
    out = list(romans)
    # in minor the parallel major lends its dominant (the raised leading tone) and, rarely, IV
    major_swaps = {"IV": "iv", "vi": "bVI", "V": "bVII", "iii": "bIII", "ii": "iv"}
    # not bVII -> V in minor: a dominant on every other bar makes a minor key heard as its dominant's major
    minor_swaps = {"v": "V", "iv": "IV" if s > 0.8 else "iv"}
    p = 0.15 + 0.35 * s
    coloured = 0
    for k, roman in enumerate(out):
        minor = plan.params_at_bar(k).key.is_minor  # journeys change mode section by section
        swaps, colour = (minor_swaps, {"IV"}) if minor else (major_swaps, {"iv", "bVI", "bVII", "bIII"})
        pre, r = _strip_prefix(roman)
        head = r.partition("/")[0]
        if k == len(out) - 1:
            continue
        if head in swaps and swaps[head] != head and rng.random() < p:
            out[k] = pre + swaps[head]
            coloured += swaps[head] in colour
    if coloured == 0:  # guarantee the colour is present at least once
        last_allowed = len(out) - 3 if len(out) >= 4 else len(out) - 2
        spots = [k for k in range(len(out)) if k % 4 == 2 and k <= last_allowed] or [max(0, last_allowed)]
        pre, _ = _strip_prefix(out[spots[0]])
        out[spots[0]] = pre + ("IV" if plan.params_at_bar(spots[0]).key.is_minor else "bVI")
    return out


@generator("HARMONY_ParallelMotion", "progression")
def parallel_motion(romans, plan, rng, s):
    """Power chords (root + fifth) moving in parallel: I5–bVII5–IV5 style."""
    out = []
    for roman in romans:
        _, r = _strip_prefix(roman)
        match = re.match(r"^([b#]*)([ivIV]+)", r)
        out.append(match.group(1) + match.group(2).upper() + "5" if match else r)
    return out


@generator("HARMONY_UnresolvedDissonance", "progression")
def unresolved_dissonance(romans, plan, rng, s):
    """Sevenths and ninths everywhere, and the last chord keeps its seventh (no clean triad at the end)."""
    out = []
    for roman in romans:
        pre, r = _strip_prefix(roman)
        head = r.partition("/")[0]
        if head.endswith(("7", "9", "5", "add9", "°", "ø", "+")):
            out.append(r)
        elif head.lstrip("b#")[0].islower():
            out.append(_with_suffix(r, "7" if rng.random() < 0.6 else "9"))
        elif head in ("V", "bVII", "bII"):
            out.append(_with_suffix(r, "7"))
        else:
            out.append(_with_suffix(r, "maj7" if rng.random() < 0.6 else "add9"))
    return out


@generator("HARMONY_TritoneSubstitution", "progression")
def tritone_substitution(romans, plan, rng, s):
    """Every V (dominant) becomes bII7, the dominant a tritone away.

    bII7 shares V7's tritone (its 3rd and 7th are V7's 7th and 3rd), so it still pulls
    home, but its root slides down a half step to the tonic instead of leaping a fifth.
    A progression with no V at all would leave the rule silent, so the chord before the
    final one becomes bII7 (a bII7 → I cadence) when nothing was substituted.
    """
    out = []
    changed = 0
    for roman in romans:
        pre, r = _strip_prefix(roman)
        if r.partition("/")[0] in ("V", "V7"):
            out.append("bII7")
            changed += 1
        else:
            out.append(roman)
    if not changed and len(out) >= 2:
        out[-2] = "bII7"
    return out


@generator("HARMONY_Polytonality", "parts")
def polytonality(tracks, plan, rng, s):
    """A second harmony layer plays every chord a whole tone up (a tritone up above severity 0.7): two keys at once."""
    src = _track(tracks, "Pad") or _track(tracks, "Chords")
    if not src or not src.notes:
        return
    shift = 6 if s > 0.7 else 2
    tracks.append(Track("Polychord", 48, 8, [n.moved(pitch=min(108, n.pitch + 12 + shift)) for n in src.notes], Role.HARMONY))


# ----------------------------------------------------------------------------- melody
@generator("MELODY_AngularIntervals", "parts")
def angular_intervals(tracks, plan, rng, s):
    """Wide, awkward leaps that colour the line without wrecking it.

    About one note in eight at severity 1 (proportionally fewer below) leaps away from the
    note before it, by a sixth to an octave (the size grows with severity, never more than
    an octave), to a tone of the chord of that moment; the next note steps back against the
    leap by a second, and the line then carries on. At most a quarter of the intervals are
    leaps (the excursion's leap and its return).
    """
    mel = _track(tracks, "Melody")
    if not mel or len(mel.notes) < 4:
        return
    notes = sorted(mel.notes)
    most = 7 + int(round(5 * s))  # widest leap: a fifth+ at low severity, an octave at 1
    k = 1
    while k < len(notes) - 2:
        prev, cur, nxt = notes[k - 1], notes[k], notes[k + 1]
        if rng.random() >= 0.125 * s * 2 or nxt.start - cur.end > plan.ppq:
            k += 1
            continue
        event = plan.chord_at(cur.start)
        sign = 1 if rng.random() < 0.5 else -1
        tones = [p for p in range(prev.pitch + sign * 8, prev.pitch + sign * (most + 1), sign)
                 if p % 12 in event.tones and 40 <= p <= 100]
        if not tones:
            k += 1
            continue
        leap = tones[0] if abs(tones[0] - prev.pitch) >= 8 else tones[-1]
        avoid = {(t + 1) % 12 for t in plan.chord_at(nxt.start).tones}
        after = notes[k + 2].pitch
        back = [leap - sign * d for d in (1, 2) if (leap - sign * d) % 12 not in avoid
                and (leap - sign * d) % 12 in set(plan.chord_at(nxt.start).scale or plan.key.scale_pcs())
                and abs(after - (leap - sign * d)) <= 12]  # the line's return is no wider than an octave
        if not back:
            k += 1
            continue
        notes[k] = cur.moved(pitch=leap)
        notes[k + 1] = nxt.moved(pitch=back[0])
        k += 4  # leave the line alone for a while: at most a quarter of the intervals leap
    mel.notes = notes


@generator("MELODY_ExcessiveRepetition", "parts")
def excessive_repetition(tracks, plan, rng, s):
    """The first bar's melodic cell repeats bar after bar, unchanged, to the end.

    The cell is not transposed to follow the chords: the obsession is in refusing to
    adapt, and the clashes against the changing harmony are part of the effect.
    """
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    first_bar = _bar_of(mel.notes[0].start, plan)
    cell = [n for n in mel.notes if _bar_of(n.start, plan) == first_bar]
    out = []
    for bar in range(first_bar, plan.bars):
        shift = (bar - first_bar) * plan.bar_ticks
        out.extend(n.moved(start=n.start + shift) for n in cell)
    mel.notes = out


@generator("MELODY_MonotoneDrone", "parts")
def monotone_drone(tracks, plan, rng, s):
    """The melody collapses onto the tonic (and its fifth now and then): near-monotone."""
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    centre = int(np.median([n.pitch for n in mel.notes]))
    tonic = centre - ((centre - plan.key.tonic_pc) % 12)
    mel.notes = [n.moved(pitch=tonic + (7 if rng.random() < 0.15 * (1 - s) else 0)) for n in mel.notes]


@generator("MELODY_FragmentedPhrases", "parts")
def fragmented_phrases(tracks, plan, rng, s):
    """Each bar's second half falls silent: phrases break off mid-thought."""
    mel = _track(tracks, "Melody")
    if not mel:
        return
    half = plan.bar_ticks // 2
    mel.notes = [n.moved(duration=min(n.duration, half - (n.start % plan.bar_ticks)))
                 for n in mel.notes if n.start % plan.bar_ticks < half]


@generator("MELODY_AvoidResolution", "parts")
def avoid_resolution(tracks, plan, rng, s):
    """Phrase-final melody notes move off the tonic up to the second degree of the bar's key.

    The second degree is the most "open" non-tonic ending (it wants to fall back to the
    tonic and is not allowed to); using the key's own second keeps the note in the mode
    (a phrygian second is a half step, not a whole step).
    """
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    phrase = 4 * plan.bar_ticks
    out = sorted(mel.notes)
    for k, n in enumerate(out):
        last_in_phrase = k == len(out) - 1 or out[k + 1].start // phrase != n.start // phrase
        key = plan.params_at_bar(min(plan.bars - 1, _bar_of(n.start, plan))).key
        if last_in_phrase and n.pitch % 12 == key.tonic_pc:
            out[k] = n.moved(pitch=n.pitch + (key.degree_pc(2) - key.tonic_pc) % 12)
    mel.notes = out


@generator("MELODY_AntiClimax", "parts")
def anti_climax(tracks, plan, rng, s):
    """The last four-bar phrase of the melody drops an octave and 15 velocity steps.

    The line is allowed to build as the melody engine wrote it; where a climax should
    come, it sinks instead: the hoped-for moment does not arrive.
    """
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    last_phrase = max(0, plan.bars - 4) * plan.bar_ticks
    mel.notes = [n.moved(pitch=n.pitch - 12, velocity=max(1, n.velocity - 15)) if n.start >= last_phrase else n
                 for n in mel.notes]


# ----------------------------------------------------------------------------- rhythm
@generator("RHYTHM_ConstantDisplacement", "parts")
def constant_displacement(tracks, plan, rng, s):
    """The kit and bass play late all the time, against the un-shifted chords: a full 16th
    (120 ticks) at severity 1, proportionally less below.

    Beat one stays where it is: the kick and the bass land on every downbeat, so the
    listener keeps the bar while everything between leans late (the ground shifts, it
    does not disappear).
    """
    shift = int(round(120 * s))
    for t in tracks:
        if t.role in (Role.DRUMS, Role.BASS, Role.PERCUSSION):
            t.notes = [n if n.start % plan.bar_ticks == 0 else n.moved(start=n.start + shift) for n in t.notes]


@generator("RHYTHM_DroppedBeats", "parts")
def dropped_beats(tracks, plan, rng, s):
    """Beat three of every other bar (every bar above severity 0.7) is dropped from every part.

    Every onset from beat three up to beat four (two quarters in) is removed, so the
    strong beat a listener expects is a hole.
    """
    every = 1 if s > 0.7 else 2
    lo, hi = 2 * plan.ppq, 3 * plan.ppq
    for t in tracks:
        t.notes = [n for n in t.notes
                   if not ((_bar_of(n.start, plan) % every == every - 1) and lo <= n.start % plan.bar_ticks < hi)]


@generator("RHYTHM_PolyrhythmicLayers", "parts")
def polyrhythmic_layers(tracks, plan, rng, s):
    """A percussion layer in three against the bar's four (dotted-quarter pulse, 720 ticks)."""
    drums = _track(tracks, "Drums") or _track(tracks, "Percussion")
    if drums is None:
        drums = Track("Percussion", 0, 9, [])
        tracks.append(drums)
    from kelly.engines.common import note
    for tick in range(0, plan.total_ticks, 720):
        drums.notes.append(note(tick, 76, 100, plan.params.velocity - 10))  # hi wood block
    drums.notes.sort()


@generator("RHYTHM_MetricModulation", "parts")
def metric_modulation(tracks, plan, rng, s):
    """In the last section the kit and bass group their hits in threes of eighths (3+3+2 feel)."""
    last = plan.sections[-1]
    lo = last.start_bar * plan.bar_ticks
    accents = (0, 720, 1440)
    for t in tracks:
        if t.name in ("Drums", "Bass"):
            keep = [n for n in t.notes if n.start < lo]
            moved = [n for n in t.notes if n.start >= lo and (n.start % plan.bar_ticks) in accents]
            if not moved:
                moved = [n.moved(start=(n.start // plan.bar_ticks) * plan.bar_ticks + a)
                         for n in t.notes if n.start >= lo and n.start % plan.bar_ticks == 0 for a in accents]
            t.notes = sorted(keep + moved)


# ----------------------------------------------------------------------------- arrangement / texture / temporal
@generator("TEXTURE_SparseEmptiness", "parts")
def sparse_emptiness(tracks, plan, rng, s):
    """Space around the melody: from severity 0.85 only melody, bass and pad remain and the melody
    thins; below that the busiest parts (strings, counter-melody, percussion, transitions) drop out
    and the chords play only on the downbeat."""
    keep = {"Melody", "Bass", "Pad"} if s >= 0.85 else {"Melody", "Bass", "Pad", "Chords", "Drums"}
    for t in tracks:
        if t.name == "Chords" and s < 0.85:
            t.notes = [n for n in t.notes if n.start % plan.bar_ticks == 0]
        elif t.name not in keep:
            t.notes = []
        elif t.name == "Melody" and s >= 0.85:
            t.notes = [n for k, n in enumerate(t.notes) if k % 2 == 0 or n.start % plan.bar_ticks == 0]


@generator("TEXTURE_SingleElementFocus", "parts")
def single_element_focus(tracks, plan, rng, s):
    """Everything but the melody is stripped away."""
    for t in tracks:
        if t.name != "Melody":
            t.notes = []


@generator("TEXTURE_DenseWall", "parts")
def dense_wall(tracks, plan, rng, s):
    """The chords hammer every eighth (every sixteenth above severity 0.7) with the lowest voice doubled
    an octave below: one undifferentiated mass under the melody.

    The wall grows downwards, so the melody stays on top and a voicing never passes five
    distinct pitches (the instrument's range permitting).
    """
    from kelly.theory.instruments import playable_range

    chords = _track(tracks, "Chords")
    if not chords or not chords.notes:
        return
    lo, _ = playable_range(chords.program)
    eighth = plan.ppq // 2 if s <= 0.7 else plan.ppq // 4
    by_start: dict[int, list] = {}
    for n in chords.notes:
        by_start.setdefault(n.start, []).append(n)
    out = []
    for start, group in sorted(by_start.items()):
        root = min(group, key=lambda n: n.pitch)
        pitches = sorted({n.pitch for n in group})[-4:]
        pitches = sorted(set(pitches) | ({root.pitch - 12} if root.pitch - 12 >= lo else set()))
        length = max(n.duration for n in group)
        for t in range(start, start + max(length, eighth), eighth):
            out.extend(root.moved(start=t, pitch=p, duration=max(30, eighth - 20)) for p in pitches)
    chords.notes = sorted(out)


@generator("TEXTURE_FrequencyMasking", "parts")
def frequency_masking(tracks, plan, rng, s):
    """Pad and strings move into the melody's register so they fight for the same frequencies."""
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    centre = int(np.median([n.pitch for n in mel.notes]))
    for t in tracks:
        if t.name in ("Pad", "Strings", "Chords") and t.notes:
            c = int(np.median([n.pitch for n in t.notes]))
            shift = 12 * round((centre - c) / 12)
            t.notes = [n.moved(pitch=min(110, max(20, n.pitch + shift))) for n in t.notes]


@generator("TEXTURE_ConflictingTimbres", "parts")
def conflicting_timbres(tracks, plan, rng, s):
    """Clashing GM instruments: distorted guitar chords under a music-box melody."""
    for t in tracks:
        if t.name == "Chords":
            t.program = 30
        elif t.name == "Melody":
            t.program = 10


@generator("TEXTURE_TimbralDrift", "parts")
def timbral_drift(tracks, plan, rng, s):
    """The melody hands over from one instrument to another halfway (a second track takes the line)."""
    mel = _track(tracks, "Melody")
    if not mel or not mel.notes:
        return
    half = plan.total_ticks // 2
    second = [n for n in mel.notes if n.start >= half]
    mel.notes = [n for n in mel.notes if n.start < half]
    tracks.append(Track("Melody (drift)", 89 if mel.program != 89 else 52, 7, second))


@generator("ARRANGEMENT_ExtremeDynamicRange", "dynamics")
def extreme_dynamic_range(tracks, plan, rng, s):
    """Quiet sections drop to a whisper (×0.45) and the loudest to near-maximum: whisper to scream."""
    energies = [sec.energy for sec in plan.sections]
    lo, hi = min(energies), max(energies)
    for t in tracks:
        out = []
        for n in t.notes:
            sec = plan.section_at_bar(min(plan.bars - 1, _bar_of(n.start, plan)))
            x = 0.5 if hi == lo else (sec.energy - lo) / (hi - lo)
            factor = 0.45 + (1.35 - 0.45) * x if len(plan.sections) > 1 else (0.45 if n.start < plan.total_ticks / 2
                                                                                else 1.35)
            # the scream stops short of saturation: 124 is the loudest any part is written (see dynamics)
            out.append(n.moved(velocity=int(min(124, max(1, n.velocity * (1 + (factor - 1) * s))))))
        t.notes = out


@generator("ARRANGEMENT_UnbalancedDynamics", "dynamics")
def unbalanced_dynamics(tracks, plan, rng, s):
    """The bass is pushed far too loud and the melody pulled far too quiet."""
    for t in tracks:
        if t.name == "Bass":
            t.notes = [n.moved(velocity=min(127, n.velocity + int(35 * s))) for n in t.notes]
        elif t.name == "Melody":
            t.notes = [n.moved(velocity=max(1, n.velocity - int(35 * s))) for n in t.notes]


@generator("ARRANGEMENT_BuriedVocals", "dynamics")
def buried_vocals(tracks, plan, rng, s):
    """The lead line sits below the accompaniment: melody velocities under the chords'."""
    chords = _track(tracks, "Chords")
    mel = _track(tracks, "Melody")
    if not mel or not chords or not chords.notes:
        return
    ceiling = int(np.median([n.velocity for n in chords.notes])) - 12
    mel.notes = [n.moved(velocity=max(1, min(n.velocity, ceiling))) for n in mel.notes]


@generator("ARRANGEMENT_PrematureClimax", "dynamics")
def premature_climax(tracks, plan, rng, s):
    """The loudest, fullest moment comes in the first third; everything after it recedes."""
    peak_end = plan.total_ticks // 3
    for t in tracks:
        t.notes = [n.moved(velocity=min(127, n.velocity + 20)) if n.start < peak_end
                   else n.moved(velocity=max(1, n.velocity - 15)) for n in t.notes]


@generator("ARRANGEMENT_StructuralMismatch", "parts")
def structural_mismatch(tracks, plan, rng, s):
    """The piece opens with its last section's material (the ending first)."""
    last = plan.sections[-1]
    lo = last.start_bar * plan.bar_ticks
    span = last.bars * plan.bar_ticks
    for t in tracks:
        head = [n.moved(start=n.start - lo) for n in t.notes if n.start >= lo]
        rest = [n.moved(start=n.start + span) for n in t.notes if n.start < lo]
        t.notes = sorted(head + rest)


@generator("PRODUCTION_SilenceAsInstrument", "parts")
def silence_as_instrument(tracks, plan, rng, s):
    """A full bar of silence in every part at the middle of the piece (and before the last section).

    Notes that start in a silent bar are removed; notes that start earlier and would ring
    into it are cut at its first beat, so the bar is truly empty.
    """
    bars = {plan.bars // 2}
    if len(plan.sections) > 1:
        bars.add(plan.sections[-1].start_bar - 1)
    starts = sorted(b * plan.bar_ticks for b in bars)
    for t in tracks:
        kept = []
        for n in t.notes:
            if _bar_of(n.start, plan) in bars:
                continue
            cut = next((b for b in starts if n.start < b < n.end), None)
            kept.append(n.moved(duration=max(1, cut - n.start)) if cut is not None else n)
        t.notes = kept


@generator("TEMPORAL_BreathPauses", "parts")
def breath_pauses(tracks, plan, rng, s):
    """Every phrase (four bars) ends with a beat of held breath: nothing sounds on its last beat."""
    last_beat = plan.bar_ticks - plan.beat_ticks
    for t in tracks:
        t.notes = [n for n in t.notes
                   if not (_bar_of(n.start, plan) % 4 == 3 and n.start % plan.bar_ticks >= last_beat)]
        t.notes = [n.moved(duration=max(1, min(n.duration, (n.start // plan.bar_ticks) * plan.bar_ticks + last_beat
                                               - n.start)))
                   if _bar_of(n.start, plan) % 4 == 3 and n.start % plan.bar_ticks < last_beat else n
                   for n in t.notes]


@generator("TEMPORAL_AbruptEnding", "parts")
def abrupt_ending(tracks, plan, rng, s):
    """The music stops dead on the last bar's second beat, mid-chord: no ring-out, no release."""
    cut = plan.total_ticks - plan.bar_ticks + plan.beat_ticks
    for t in tracks:
        t.notes = [n.moved(duration=max(1, min(n.duration, cut - n.start))) for n in t.notes if n.start < cut]


@generator("TEMPORAL_ExtendedIntro", "parts")
def extended_intro(tracks, plan, rng, s):
    """The first third is intro: only pad and chords play until then."""
    end = max(plan.bar_ticks, (plan.bars // 3) * plan.bar_ticks)
    for t in tracks:
        if t.name not in ("Pad", "Chords"):
            t.notes = [n for n in t.notes if n.start >= end]


@generator("TEMPORAL_LoopHypnosis", "parts")
def loop_hypnosis(tracks, plan, rng, s):
    """Every part repeats its first two bars for the whole piece."""
    span = 2 * plan.bar_ticks
    for t in tracks:
        cell = [n for n in t.notes if n.start < span]
        t.notes = [n.moved(start=n.start + k * span) for k in range(max(1, plan.total_ticks // span)) for n in cell]


@generator("RHYTHM_TempoFluctuation", "tempo")
def tempo_fluctuation(tempos, plan, rng, s):
    """±5 BPM (× severity) sine drift over each four-bar phrase, one tempo event per beat."""
    base = dict(tempos)
    out = []
    for beat in range(plan.bars * 4):
        tick = beat * plan.ppq
        bpm = _tempo_at(tempos, tick) + 5 * s * np.sin(2 * np.pi * beat / 16)
        out.append((tick, round(float(bpm), 3)))
    return out if base else tempos


@generator("TEMPORAL_AccelerandoDecay", "tempo")
def accelerando_decay(tempos, plan, rng, s):
    """The tempo rises by up to 30% × severity over two thirds of the piece, then sinks below the start."""
    out = []
    n = plan.bars * 4
    for beat in range(n):
        x = beat / max(1, n - 1)
        factor = 1 + 0.3 * s * (x / 0.66) if x < 0.66 else 1 + 0.3 * s - 0.5 * s * (x - 0.66) / 0.34
        out.append((beat * plan.ppq, round(_tempo_at(tempos, beat * plan.ppq) * factor, 3)))
    return out


@generator("TEMPORAL_TimeStretch", "tempo")
def time_stretch(tempos, plan, rng, s):
    """The middle third runs at half to two-thirds speed, as if time slowed down."""
    lo, hi = plan.total_ticks // 3, 2 * plan.total_ticks // 3
    out = [(t, b) for t, b in tempos if t < lo]
    out.append((lo, round(_tempo_at(tempos, lo) * (1 - 0.5 * s), 3)))
    out += [(t, round(b * (1 - 0.5 * s), 3)) for t, b in tempos if lo < t < hi]
    out.append((hi, _tempo_at(tempos, hi)))
    out += [(t, b) for t, b in tempos if t > hi]
    return out


def _tempo_at(tempos, tick: int) -> float:
    current = tempos[0][1]
    for t, b in tempos:
        if t <= tick:
            current = b
    return current


def production_note(rule_id: str) -> str:
    """What a producer should do for a rule MIDI cannot carry."""
    from kelly.intent.rules import RULES_BY_ID
    rule = RULES_BY_ID[rule_id]
    return f"{rule.description} — {rule.effect.lower()}. Do this at mix/production time; MIDI cannot carry it."
