"""How the five networks' outputs shape the music: every output is a control the engines read.

The networks (or their fallback heuristics) give note probabilities, chord
probabilities, 32 groove parameters and 16 expression parameters
(:class:`kelly.ml.processor.MusicHints`, named by :data:`kelly.ml.schema.GROOVE_SPEC` and
:data:`~kelly.ml.schema.EXPRESSION_SPEC`). The rule engines stay in charge of structure
and the music brain keeps everything in key:

* **notes** weight the melody's choice among the *scale's* pitches (in
  :mod:`kelly.engines.melody`);
* **chords** re-weight the progression among the key's *diatonic* chords, the engine's
  own choice keeping a strong prior, and never on phrase starts or the cadence
  (:func:`reweight_progression`);
* **groove** (32) is read bar by bar (:func:`controls_by_bar`, a journey section's own
  hints) while the parts are written: the kit's step probabilities, feel, cymbals, toms,
  crashes and accents in :mod:`kelly.engines.drums`, fills in :mod:`kelly.engines.fill`,
  the shaker and tambourine in :mod:`kelly.engines.rhythm`, the bass's space and its lock to
  the kick in :mod:`kelly.engines.bass`, contrast between sections and the downbeat accent
  in :mod:`kelly.engines.dynamics`; swing, push/pull and the humanizer's spreads in the
  groove pass (:func:`swing_spans`, :func:`lean_by_bar`, :func:`humanize_settings`); the
  tempo's drift in the tempo map (:func:`tempo_controls`);
* **expression** (16): velocity base, range, accents, crescendo and phrase arch where
  velocities are written (:mod:`kelly.engines.dynamics`); legato on the lines
  (:func:`apply_expression`); timing spread and humanize in the groove pass; rubato as
  ritardandi at phrase ends in the tempo map; sustain pedal (CC64), vibrato (CC1), pitch
  bend scoops, swell (CC11), brightness (CC74), attack (CC73) and release (CC72) as MIDI
  controllers on the finished parts (:func:`write_controllers`).

Every control is measured from neutral: a unipolar groove output of 0.5 (network value
0), a bipolar one of 0, an expression output of 0.5 changes nothing the engines would not
do anyway, and without hints (``--no-ml``) none of this code draws a random number or
writes a controller. ``docs/network-controls.md`` is the table of all 48 outputs.
"""

from __future__ import annotations

import bisect

import numpy as np

from kelly.engines.context import Plan
from kelly.ml.schema import GROOVE_BIPOLAR, chord_class_index, expression_dict, groove_dict
from kelly.song import Role, Song, Track
from kelly.theory.modal import clashes
from kelly.theory.roman import roman_to_chord

def chord_pool(key) -> tuple[str, ...]:
    """The chords the harmony network may choose from in ``key``: the mode's own major and minor triads.

    Diminished triads are left out, and so is the parent major scale's tonic in a church mode
    (IV in mixolydian, ♭VII in dorian, V in lydian, ♭VI in phrygian): leaning on it makes the
    piece heard in the parent key instead of the mode.
    """
    from kelly.theory.chords import Chord
    from kelly.theory.modal import diatonic_quality
    from kelly.theory.pitch import pc_name
    from kelly.theory.roman import chord_to_roman
    from kelly.theory.scales import MODE_OFFSET

    parent = None if key.mode in ("ionian", "aeolian") else (key.tonic_pc - MODE_OFFSET.get(key.mode, 0)) % 12
    out = []
    for pc in key.scale_pcs():
        quality = diatonic_quality(key, pc)
        if quality not in ("maj", "min") or pc == parent:
            continue
        out.append(chord_to_roman(Chord(pc_name(pc, flats="b" in key.tonic or key.tonic == "F"), quality), key))
    return tuple(out)


def _class_of(roman: str, plan: Plan, bar: int) -> int:
    key = plan.params_at_bar(bar).key
    chord = roman_to_chord(roman, key).chord
    rel = (chord.root_pc - key.tonic_pc) % 12
    quality = {"maj": "maj", "min": "min", "dim": "dim", "7": "7", "sus4": "sus4"}.get(chord.quality)
    if quality is None:
        quality = "min" if chord.is_minor else "maj"
    return chord_class_index(rel, quality)


def reweight_progression(romans: list[str], plan: Plan, hints, rng: np.random.Generator, *, offset: int = 0,
                         fixed: list[bool] | None = None) -> list[str]:
    """Let the harmony network swap inner chords for chords of the mode it clearly prefers.

    ``romans`` may be one section's numerals starting at bar ``offset``; bars marked in
    ``fixed`` (cadences and the bars that prepare them) and phrase starts stay the rule
    engine's. A chord changes only when the network gives another chord of the mode
    (:func:`chord_pool`) at least :data:`PREFERENCE_MARGIN` times the probability of the
    engine's own chord: the network decides, not the random generator, and a network with
    no preference (uniform probabilities) changes nothing. ``rng`` is kept for the
    signature (other stages draw from it in turn) but no longer used here.

    The probabilities are read as lift over ``hints.chord_baseline`` when the hints carry one
    (the network's mean over every emotion): a trained network puts most weight on the tonic
    for every emotion, because pieces spend most of their time there, and read raw that would
    turn every inner bar into I. The lift says which chords this emotion favours more than
    emotions in general do. A chord read that way must also be at least as probable outright
    as the engine's own, so that a chord the network almost never gives (a iii in major, whose
    lift over a tiny mean is large) cannot pull the piece into another key. And (again with a
    baseline, i.e. a trained network) the new chord must be a diatonic substitute of the engine's (sharing two of its three tones: I for vi,
    ii for IV, iii for V), so the bar keeps its harmonic function: a IV turned into iii
    (I–iii–V–I) loses the subdominant and is heard in the relative minor's key.
    """
    raw = np.asarray(hints.chord_probs, dtype=float)
    baseline = getattr(hints, "chord_baseline", None)
    probs = raw if baseline is None else raw / np.maximum(np.asarray(baseline, dtype=float), 1e-6)
    out = list(romans)
    for k, text in enumerate(romans):
        bar = offset + k
        if k % 4 == 0 or bar >= plan.bars - 2 or (fixed is not None and fixed[k]):
            continue  # phrase starts and the cadences belong to the rule engine
        prefix, _, current = text.rpartition(":")
        prefix = prefix + ":" if prefix else ""
        key = plan.params_at_bar(bar).key
        own_class = _class_of(current, plan, bar)
        own = float(probs[own_class])
        best, best_p = current, own
        for r in chord_pool(key):
            c = _class_of(r, plan, bar)
            p = float(probs[c])
            # with a baseline the chord must also be at least as likely as the engine's outright:
            # a rare chord (a iii in major) on a tiny baseline would otherwise win on lift alone
            # and pull the piece into another key
            if r != current and p > best_p and (baseline is None or (
                    raw[c] >= raw[own_class] and _shares_two_tones(r, current, key))):
                best, best_p = r, p
        if best != current and best_p >= PREFERENCE_MARGIN * own:
            out[k] = prefix + best
    return out


def _shares_two_tones(a: str, b: str, key) -> bool:
    """Whether two numerals' chords share two pitch classes: a diatonic substitute (chords a third
    apart: I for vi, ii for IV, iii for V) keeps the harmonic function of the bar it replaces."""
    pa = set(roman_to_chord(a, key).chord.pitch_classes())
    pb = set(roman_to_chord(b, key).chord.pitch_classes())
    return len(pa & pb) >= 2


#: How much more probable (×) the network must find another chord before the engine's chord gives way.
PREFERENCE_MARGIN = 2.0


# ---------------------------------------------------------------------------------------
# Reading the controls
# ---------------------------------------------------------------------------------------


class Controls:
    """The 48 named groove and expression outputs of one set of hints.

    ``groove`` and ``expression`` hold the musical values (:func:`kelly.ml.schema.groove_dict`,
    :func:`~kelly.ml.schema.expression_dict`); :meth:`g` and :meth:`e` give each as a signed
    deviation from neutral in [-1, 1] (0 = the network has no preference), which is how
    every engine reads them.
    """

    __slots__ = ("groove", "expression")

    def __init__(self, hints) -> None:
        groove = np.asarray(hints.groove, dtype=np.float64)
        expression = np.asarray(hints.expression, dtype=np.float64)
        # A trained network learned absolute measurements (kicks per bar, note length, …) while the
        # engines read each control relative to how they already write for the emotion. So its
        # output is read as the deviation from its own mean over every emotion: what this emotion
        # asks for beyond what emotions in general get. velocity_base is the one absolute control
        # (a MIDI level) and is read as it is.
        g_base = getattr(hints, "groove_baseline", None)
        if g_base is not None:
            groove = np.clip(groove - np.asarray(g_base, dtype=np.float64), -1.0, 1.0)
        e_base = getattr(hints, "expression_baseline", None)
        if e_base is not None:
            centred = np.clip(expression - np.asarray(e_base, dtype=np.float64) + 0.5, 0.0, 1.0)
            centred[0] = expression[0]  # velocity_base
            expression = centred
        self.groove = groove_dict(groove)
        self.expression = expression_dict(expression)

    def g(self, name: str) -> float:
        """Groove output ``name`` from neutral: a bipolar one as it is, a unipolar one as ``2·u − 1``."""
        value = self.groove[name]
        return value if name in GROOVE_BIPOLAR else 2.0 * value - 1.0

    def e(self, name: str) -> float:
        """Expression output ``name`` from neutral: ``2·u − 1``."""
        return 2.0 * self.expression[name] - 1.0


def controls_by_bar(plan: Plan) -> list[Controls | None]:
    """The controls shaping each bar (a journey section's own hints), or ``None`` for every bar without hints."""
    if plan.hints is None:
        return [None] * plan.bars
    made: dict[int, Controls] = {}
    out: list[Controls | None] = []
    for bar in range(plan.bars):
        hints = plan.hints_at_bar(bar)
        if hints is None:
            out.append(None)
            continue
        if id(hints) not in made:
            made[id(hints)] = Controls(hints)
        out.append(made[id(hints)])
    return out


def share(index: int, amount: float) -> bool:
    """Whether item ``index`` (a phrase, a beat) is among a share ``amount`` of items, spread evenly.

    A golden-ratio sequence: no random draw, the same items every time, and a larger
    share always keeps the items a smaller one chose.
    """
    return amount > 0 and ((index + 1) * 0.6180339887498949) % 1.0 < amount


class Sounding:
    """Notes queryable by time span: which of them sound a minor second or ninth against a pitch.

    The controls that lengthen or re-strike notes after the accompaniment was fitted under
    the melody (:func:`kelly.engines.arrange.fit_under_melody`) ask it first, so that they
    never add a clash the fitting had taken away.
    """

    def __init__(self, notes, min_overlap: int) -> None:
        self.notes = sorted(notes)
        self.starts = [n.start for n in self.notes]
        self.longest = max((n.duration for n in self.notes), default=0)
        self.min_overlap = min_overlap

    def against(self, pitch: int, start: int, end: int) -> int:
        """How many of these a note of ``pitch`` over ``[start, end)`` sounds a minor second/ninth against."""
        lo = bisect.bisect_left(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, end)
        return sum(min(m.end, end) - max(m.start, start) >= self.min_overlap and clashes(m.pitch, pitch)
                   for m in self.notes[lo:hi])

    def clashes(self, pitch: int, start: int, end: int) -> bool:
        """Whether a note of ``pitch`` over ``[start, end)`` sounds a minor second/ninth against one of these."""
        return self.against(pitch, start, end) > 0

    def count(self, notes) -> int:
        """How many (note, one of these) pairs clash."""
        return sum(self.against(n.pitch, n.start, n.end) for n in notes)


def signed(value: float) -> float:
    """A rounded number for the explanation."""
    return round(float(value), 3)


def _summary(plan: Plan, names_g=(), names_e=()) -> dict:
    """The raw outputs (groove in its own range, expression in [0, 1]) of the piece's hints, for the explanation."""
    c = Controls(plan.hints)
    out = {name: signed(c.groove[name]) for name in names_g}
    out.update({name: signed(c.expression[name]) for name in names_e})
    if plan.section_hints:
        out["per_section"] = True
    return out


# ---------------------------------------------------------------------------------------
# Expression on the lines: legato
# ---------------------------------------------------------------------------------------

#: Parts whose articulation the legato control sets (lines, not chords or beds).
LINE_ROLES = (Role.MELODY, Role.COUNTER)
#: The most a legato note may overlap the next one (ticks at 480 PPQ).
LEGATO_OVERLAP = 20
#: How far apart the humanizer may move two notes (twice its ±35-tick clamp): a lengthened note keeps
#: this far from any note of another part it would clash with.
DRIFT_MARGIN = 70


def apply_expression(tracks: list[Track], plan: Plan, hints) -> dict:
    """Articulation of the melodic lines from the ``legato`` output.

    Each note of the melody and counter-melody takes ``0.6 + 0.8·legato`` of its written
    length (neutral 0.5 keeps it): 0 is detached, 1 joins each note to the next, touching
    it (at most :data:`LEGATO_OVERLAP` ticks of overlap); a note is lengthened only where
    it adds no minor second against the other parts (within :data:`DRIFT_MARGIN`). The
    velocity outputs (base, range, accent, crescendo, phrase arch) are read where
    velocities are written, in :func:`kelly.engines.dynamics.apply`.
    """
    ctl = controls_by_bar(plan)
    changed = kept = 0
    factors = set()
    for t in tracks:
        if t.role not in LINE_ROLES or not t.notes:
            continue
        others = Sounding([n for o in tracks if o is not t and not o.is_drum for n in o.notes], plan.ppq // 8)
        notes = sorted(t.notes)
        onsets = sorted({n.start for n in notes})
        out = []
        for n in notes:
            c = ctl[min(plan.bars - 1, max(0, n.start // plan.bar_ticks))]
            if c is None:
                out.append(n)
                continue
            factor = 0.6 + 0.8 * c.expression["legato"]
            factors.add(round(factor, 3))
            dur = max(30, int(round(n.duration * factor)))
            if factor > 1.0:
                k = np.searchsorted(onsets, n.start, side="right")
                if k < len(onsets):
                    dur = min(dur, max(n.duration, onsets[k] - n.start + LEGATO_OVERLAP))
                if dur > n.duration and others.clashes(n.pitch, n.start, n.start + dur + DRIFT_MARGIN) and \
                        not others.clashes(n.pitch, n.start, n.end):
                    dur = n.duration  # held on, it would rub against the next chord
                    kept += 1
            if dur != n.duration:
                changed += 1
                n = n.moved(duration=dur)
            out.append(n)
        t.notes = out
    return {**_summary(plan, names_e=("legato",)), "length_factor": sorted(factors), "notes_changed": changed,
            "kept_short_for_harmony": kept}


# ---------------------------------------------------------------------------------------
# Groove on the finished parts: the bass locks to the kick
# ---------------------------------------------------------------------------------------


def apply_groove(song: Song, plan: Plan, hints, rng: np.random.Generator) -> dict:
    """What needs the whole band written: the bass's legato (``space`` below neutral) and its lock to the kick.

    The kit is written after the bass, so the bass reads the kick it really plays here,
    before the groove pass swings and humanizes both together
    (:func:`kelly.engines.bass.lock_to_kick`); and the melody is fitted by now, so a bass
    held on never rubs against it (:func:`kelly.engines.bass.fill_space`). Everything else
    the groove outputs do happens while the parts are written, or in the groove pass.
    """
    from kelly.engines.bass import fill_space, lock_to_kick

    info: dict = _summary(plan, names_g=("bass_lock", "space"))
    bass = next((t for t in song.tracks if t.role == Role.BASS and t.notes), None)
    drums = next((t for t in song.tracks if t.role == Role.DRUMS and t.notes), None)
    if bass is None:
        return info
    melody = Sounding([n for t in song.tracks if t.role == Role.MELODY for n in t.notes], plan.ppq // 8)
    info["bass_notes_held_on"] = fill_space(plan, bass, [None if c is None else c.g("space")
                                                         for c in controls_by_bar(plan)], avoid=melody,
                                            margin=DRIFT_MARGIN)
    if drums is None:
        info["bass_lock"] = "no kit: nothing to lock to"
        return info
    kicks = sorted({n.start for n in drums.notes if n.pitch == 36})
    info.update(lock_to_kick(plan, bass, kicks, [None if c is None else c.g("bass_lock")
                                                  for c in controls_by_bar(plan)], rng, avoid=melody))
    return info


# ---------------------------------------------------------------------------------------
# The groove pass: swing, push/pull, the humanizer's spreads
# ---------------------------------------------------------------------------------------

#: Triplet swing (kelly.groove's scale): where a swing output of 1 takes a straight piece.
SWING_TRIPLET = 0.67


def swing_amount(base: float, c: Controls | None) -> float:
    """The swing of a stretch: the feeling's own ``base`` moved by the ``swing`` output.

    Above neutral towards triplet swing (0.67: ``base + (0.67 − base)·d``), below it down to
    half the feeling's own (``base·(1 + d/2)``): the network may straighten a swung feeling
    but not erase it.
    """
    if c is None:
        return base
    d = c.g("swing")
    if d > 0 and base < SWING_TRIPLET:
        return base + (SWING_TRIPLET - base) * d
    if d < 0:
        return base * (1.0 + 0.5 * d)
    return base


def swing_spans(plan: Plan) -> list[tuple[int, int, float]]:
    """``(start tick, end tick, swing)`` for each run of bars with the same swing (a journey's sections)."""
    ctl = controls_by_bar(plan)
    spans: list[tuple[int, int, float]] = []
    for bar in range(plan.bars):
        amount = round(swing_amount(plan.params.swing, ctl[bar]), 4)
        start = bar * plan.bar_ticks
        end = (bar + 1) * plan.bar_ticks if bar < plan.bars - 1 else plan.total_ticks + 4 * plan.bar_ticks
        if spans and spans[-1][2] == amount:
            spans[-1] = (spans[-1][0], end, amount)
        else:
            spans.append((start, end, amount))
    return spans


#: The most push/pull leans the pitched parts against the kit, in beats (±0.03 beat, ±14 ticks at 480 PPQ).
PUSH_PULL_BEATS = 0.03


def lean_by_bar(plan: Plan) -> list[int]:
    """Ticks each bar's pitched parts lean against the kit: +1 ``push_pull`` earlier (pushing), −1 later."""
    return [0 if c is None else int(round(-c.g("push_pull") * PUSH_PULL_BEATS * plan.ppq))
            for c in controls_by_bar(plan)]


def humanize_settings(plan: Plan, settings):
    """The humanizer's settings scaled by the hints; returns ``(settings, what changed)``.

    ``humanize`` scales the humanizer's complexity (drift and dropouts) by ``2·u`` (0: quantized),
    ``microtiming_ms`` the kit's timing spread by ``2·u``, ``timing_humanize`` the pitched
    parts' by ``2·u``, ``timing_spread`` the melody's and counter-melody's on top of that by
    ``2·u``, and ``velocity_humanize`` the velocity spread by ``2·u`` (1 at neutral each).
    A journey takes the mean of its bars' values (the humanizer runs once over the piece).
    """
    from dataclasses import replace

    ctl = [c for c in controls_by_bar(plan) if c is not None]
    if not ctl:
        return settings, {}

    def mean(get) -> float:
        return float(np.mean([get(c) for c in ctl]))

    scale = {
        "complexity": mean(lambda c: 2 * c.expression["humanize"]),
        "drum_timing": mean(lambda c: 2 * c.groove["microtiming_ms"]),
        "part_timing": mean(lambda c: 2 * c.groove["timing_humanize"]),
        "line_timing": mean(lambda c: 2 * c.expression["timing_spread"]),
        "velocity_spread": mean(lambda c: 2 * c.groove["velocity_humanize"]),
    }
    out = replace(settings, complexity=min(1.0, settings.complexity * scale["complexity"]),
                  drum_timing=scale["drum_timing"], part_timing=scale["part_timing"],
                  velocity_spread=scale["velocity_spread"],
                  track_timing=(("Melody", scale["line_timing"]), ("Counter-melody", scale["line_timing"])))
    return out, {k: signed(v) for k, v in scale.items()}


# ---------------------------------------------------------------------------------------
# The tempo map: drift and rubato
# ---------------------------------------------------------------------------------------

#: How far ``tempo_drift`` moves the tempo over the whole piece (±8 % by the last bar).
TEMPO_DRIFT = 0.08
#: The tempo is a global, visible thing (a DAW shows every change): ``tempo_drift`` and ``rubato`` act only
#: when the network clearly asks, beyond this deviation from neutral, and grow from there.
TEMPO_DEAD_ZONE = 0.25


def _beyond(d: float, zone: float = TEMPO_DEAD_ZONE) -> float:
    """``d`` with a dead zone: 0 inside ``±zone``, rescaled so that ±1 stays ±1."""
    return 0.0 if abs(d) <= zone else (abs(d) - zone) / (1.0 - zone) * (1.0 if d > 0 else -1.0)
#: How far ``rubato`` slows the last beat of a phrase (−15 % at 1), returning a tempo on the next downbeat.
RUBATO = 0.15


def tempo_controls(tempos: list[tuple[int, float]], plan: Plan) -> tuple[list[tuple[int, float]], dict]:
    """The tempo map with the hints' drift and rubato; returns ``(tempos, what was done)``.

    ``tempo_drift`` bends the tempo gradually over the piece (+1 rushes to +8 % by the last
    bar, −1 drags to −8 %; the opening tempo stays the feeling's); ``rubato`` above neutral
    broadens the end of every four-bar phrase (and of the piece): from the middle of the
    phrase's last bar the tempo falls, to ``1 − 0.15·d`` on its last beat, and comes back on
    the next downbeat. Both act beyond a dead zone (:data:`TEMPO_DEAD_ZONE`, ``d`` rescaled
    from there), so values near neutral return ``tempos`` unchanged.
    """
    ctl = controls_by_bar(plan)
    drift = [0.0 if c is None else _beyond(c.g("tempo_drift")) for c in ctl]
    rubato = [0.0 if c is None else max(0.0, _beyond(c.e("rubato"))) for c in ctl]
    info = {**_summary(plan, names_g=("tempo_drift",), names_e=("rubato",))}
    if not any(drift) and not any(rubato):
        info.update(ritardandi=0, end_factor=1.0)
        return tempos, info

    def at(tick: int) -> float:
        bpm = tempos[0][1]
        for t, b in tempos:
            if t > tick:
                break
            bpm = b
        return float(bpm)

    out: list[tuple[int, float]] = []
    factor = 1.0
    rits = 0
    for bar in range(plan.bars):
        if bar:
            factor *= 1.0 + TEMPO_DRIFT * drift[bar] / max(1, plan.bars - 1)
        start = bar * plan.bar_ticks
        # the map's own changes inside the bar (a journey's are on downbeats; a rule break may add more)
        inside = [t for t, _ in tempos if start <= t < start + plan.bar_ticks]
        for t in sorted({start, *inside}):
            out.append((t, round(at(t) * factor, 2)))
        if rubato[bar] > 0 and (bar % 4 == 3 or bar == plan.bars - 1):
            depth = RUBATO * rubato[bar]
            half, last = start + plan.bar_ticks // 2, start + plan.bar_ticks - plan.beat_ticks
            for t, slow in ((half, 0.4 * depth), (last, depth)) if last > half else ((last, depth),):
                out.append((t, round(at(t) * factor * (1.0 - slow), 2)))
            rits += 1
    out.sort(key=lambda e: e[0])  # stable: at one tick the later decision wins
    merged: list[tuple[int, float]] = []
    for t, b in out:
        if merged and merged[-1][0] == t:
            merged[-1] = (t, b)
        elif not merged or merged[-1][1] != b:
            merged.append((t, b))
    info.update(ritardandi=rits, end_factor=signed(factor))
    return merged, info


# ---------------------------------------------------------------------------------------
# Expression as MIDI controllers
# ---------------------------------------------------------------------------------------

#: General MIDI programs that are played with a sustain pedal: pianos, celesta, vibraphone, harp, pads.
PEDAL_PROGRAMS = frozenset(range(0, 9)) | {11, 46} | frozenset(range(88, 96))
#: Roles that take the pedal (when their program does): the accompaniment, never a line.
PEDAL_ROLES = (Role.HARMONY, Role.PAD)
#: Ticks after a change of harmony that the pedal goes down again (legato pedalling: the old chord is cleared).
PEDAL_LAG = 30
#: Deepest vibrato (CC1) at ``vibrato`` 1, deepest pitch-bend scoop (wheel units; 8192 = 2 semitones).
VIBRATO_MAX, SCOOP_MAX = 90, 2048
#: Roles with sustained voices: vibrato and swell.
VIBRATO_ROLES = (Role.MELODY, Role.COUNTER, Role.STRINGS)
SWELL_ROLES = (Role.PAD, Role.STRINGS)


def _onset_groups(notes, window: int = 20) -> list[tuple[int, int]]:
    """(onset, longest end) of each group of notes starting within ``window`` ticks of the group's first."""
    groups: list[list[int]] = []
    for n in sorted(notes):
        if groups and n.start - groups[-1][0] <= window:
            groups[-1][1] = max(groups[-1][1], n.end)
        else:
            groups.append([n.start, n.end])
    return [(a, b) for a, b in groups]


def _bar(plan: Plan, tick: int) -> int:
    return min(plan.bars - 1, max(0, tick // plan.bar_ticks))


def _pedal(plan: Plan, track: Track, ctl) -> list[tuple[int, str, int, int]]:
    """CC64 on each change of harmony: up at the change, down :data:`PEDAL_LAG` ticks later.

    ``sustain_pedal`` above neutral pedals chords a bar or longer, above 2/3 of the way
    half-bar chords too, above 1/3 every chord; below neutral there is no pedal.
    """
    events: list[tuple[int, str, int, int]] = []
    down = False
    last_chord = None
    groups = _onset_groups(track.notes)
    for onset, _end in groups:
        event = plan.chord_at(onset + plan.ppq // 8)
        if event is last_chord:
            continue
        last_chord = event
        c = ctl[_bar(plan, onset)]
        d = 0.0 if c is None else c.e("sustain_pedal")
        need = plan.bar_ticks if d < 1 / 3 else plan.bar_ticks // 2 if d < 2 / 3 else 0
        use = d > 0 and event.duration >= need
        if down:
            events.append((onset, "cc", 64, 0))
            down = False
        if use:
            events.append((onset + PEDAL_LAG, "cc", 64, 127))
            down = True
    if down:
        events.append((max(n.end for n in track.notes), "cc", 64, 0))
    return events


def _vibrato(plan: Plan, track: Track, ctl) -> list[tuple[int, str, int, int]]:
    """CC1 on notes of a beat or longer: none at the attack, growing to ``90·d`` and gone by the note's end."""
    events = []
    for onset, end in _onset_groups(track.notes):
        c = ctl[_bar(plan, onset)]
        d = 0.0 if c is None else c.e("vibrato")
        if d <= 0 or end - onset < plan.beat_ticks:
            continue
        depth = max(1, int(round(VIBRATO_MAX * d)))
        length = end - onset
        events += [(onset, "cc", 1, 0), (onset + int(0.35 * length), "cc", 1, depth // 2),
                   (onset + int(0.6 * length), "cc", 1, depth), (end, "cc", 1, 0)]
    return events


def _scoops(plan: Plan, track: Track, ctl) -> list[tuple[int, str, int, int]]:
    """Pitch-wheel scoops into the melody's long notes: from ``−2048·d`` up to the centre over 90 ticks.

    Only notes of a beat or longer that start after the note before has ended (the wheel
    bends the whole channel), each returning to the centre well inside the note.
    """
    events = []
    prev_end = -1
    for n in sorted(track.notes):
        c = ctl[_bar(plan, n.start)]
        d = 0.0 if c is None else c.e("pitch_bend")
        if d > 0 and n.duration >= max(plan.beat_ticks, 160) and n.start >= prev_end:
            depth = int(round(SCOOP_MAX * d))
            events += [(n.start, "pitch", 0, -depth), (n.start + 30, "pitch", 0, -depth * 55 // 100),
                       (n.start + 60, "pitch", 0, -depth // 4), (n.start + 90, "pitch", 0, 0)]
        prev_end = max(prev_end, n.end)
    return events


def _swell(plan: Plan, track: Track, ctl) -> list[tuple[int, str, int, int]]:
    """CC11 on each held chord of a bed: from ``127 − 60·d`` at the attack to full at 40 %, easing at 90 %."""
    events = []
    for onset, end in _onset_groups(track.notes):
        c = ctl[_bar(plan, onset)]
        d = 0.0 if c is None else c.e("swell")
        if d <= 0 or end - onset < plan.beat_ticks:
            continue
        length = end - onset
        events += [(onset, "cc", 11, 127 - int(round(60 * d))), (onset + int(0.4 * length), "cc", 11, 127),
                   (onset + int(0.9 * length), "cc", 11, 127 - int(round(25 * d)))]
    if events:
        events.append((max(n.end for n in track.notes), "cc", 11, 127))
    return events


#: Sound controllers set once per stretch (centre 64 = the instrument's own): output name, CC number, sign.
SOUND_CONTROLLERS = (("brightness", 74, 1), ("attack", 73, -1), ("release", 72, 1))


def _sound(plan: Plan, track: Track, ctl) -> list[tuple[int, str, int, int]]:
    """CC74 brightness, CC73 attack time (a sharp attack is a short one) and CC72 release, where they change.

    ``64 ± 63·d``, sent at the start of each bar whose value differs from the one in force
    (the instrument's own, 64, at first): neutral sends nothing.
    """
    events = []
    for name, number, sign in SOUND_CONTROLLERS:
        current = 64
        for bar in range(plan.bars):
            c = ctl[bar]
            value = 64 if c is None else min(127, max(0, 64 + sign * int(round(63 * c.e(name)))))
            if value != current:
                events.append((bar * plan.bar_ticks, "cc", number, value))
                current = value
    return events


def write_controllers(song: Song, plan: Plan) -> dict:
    """The expression outputs that are MIDI controllers, written on the finished parts (after the groove pass).

    Sustain pedal on piano- and pad-like accompaniment (:func:`_pedal`), vibrato on
    sustained lines (:func:`_vibrato`), pitch-bend scoops on the melody (:func:`_scoops`),
    swell on the beds (:func:`_swell`), and brightness, attack and release on every
    pitched part (:func:`_sound`). Each part's ``controls`` are kept sorted; drums get
    none. Returns the count of events written per controller.
    """
    ctl = controls_by_bar(plan)
    counts = {"cc64_sustain": 0, "cc1_vibrato": 0, "pitch_bend": 0, "cc11_swell": 0, "cc74_brightness": 0,
              "cc73_attack": 0, "cc72_release": 0}
    key = {64: "cc64_sustain", 1: "cc1_vibrato", 11: "cc11_swell", 74: "cc74_brightness", 73: "cc73_attack",
           72: "cc72_release"}
    parts = []
    for t in song.tracks:
        if t.is_drum or not t.notes:
            continue
        events: list[tuple[int, str, int, int]] = list(_sound(plan, t, ctl))
        if t.role in PEDAL_ROLES and t.program in PEDAL_PROGRAMS:
            events += _pedal(plan, t, ctl)
        if t.role in VIBRATO_ROLES:
            events += _vibrato(plan, t, ctl)
        if t.role == Role.MELODY and t.name == "Melody":
            events += _scoops(plan, t, ctl)
        if t.role in SWELL_ROLES:
            events += _swell(plan, t, ctl)
        if not events:
            continue
        # one value per controller and tick (the later decision wins), in order
        last: dict[tuple[int, str, int], int] = {}
        for tick, kind, number, value in events:
            last[(max(0, int(tick)), kind, number)] = int(value)
        t.controls = sorted(t.controls + [(tick, kind, number, value) for (tick, kind, number), value in last.items()])
        for _tick, kind, number, _value in t.controls:
            name = "pitch_bend" if kind == "pitch" else key.get(number, f"cc{number}")
            counts[name] = counts.get(name, 0) + 1
        parts.append(t.name)
    return {**_summary(plan, names_e=("sustain_pedal", "vibrato", "pitch_bend", "swell", "brightness", "attack",
                                      "release")), "events": counts, "parts": parts}
