"""The explanation of a composition, built so that every musical claim in it is true of the MIDI.

:func:`build_explanation` turns what the composer decided (the plan, the chord events,
the rule breaks, the engines' own notes) and the finished song into a typed
:class:`~kelly.contracts.Explanation`. Where a statement can be read from the song it is
measured there, not copied from what an engine meant to do:

* parts, note counts, pitch and velocity ranges, the bars each part plays in, and the
  whole file's velocity range are measured from the song's tracks;
* the layers are the ones heard in the file (a layer whose notes all fell away is not
  listed);
* the tempo map is the song's, and a section's tempo is the one sounding at its start;
* each chord's cadence is named from the chord that actually closes the phrase (a phrase
  that a rule break or a journey's pivot ends on ♭VI is not "authentic");
* a borrowed chord "darkens" only when it lowers scale degrees (♭3, ♭6, ♭7 ...) and
  "brightens" only when it raises them, read from the scale it bends;
* the ending ("the piece comes home") is read from the last chord and the last notes of
  the bass and the melody;
* the bass engine's "pedal: tonic" stays only where the bass sounds the tonic in those
  bars; a pattern for a section in which the bass is silent is marked ``silent``;
* the mapping's velocity range is labelled a target (the played range is ``velocity``).

``tests/compose/test_explanation_claims.py`` checks these claims against the MIDI.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from enum import Enum

from kelly import __version__
from kelly.contracts import (SCHEMA_VERSION, Arrangement, BorrowedEffect, ChordValue, Emotion, Ending, Explanation,
                             Models, Parameters, Part, Pivot, ProductionNote, Progression, Range, RuleBreak,
                             SectionInfo, TempoPoint)
from kelly.song import Role, Song

#: Semitones above the tonic → the degree's name as it sounds in a major-scale frame.
DEGREE_NAMES = ("1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7")
_NATURAL = (0, 2, 4, 5, 7, 9, 11)

#: The layer a plan lists → the role of the track that carries it.
LAYER_ROLES = {"chords": Role.HARMONY, "melody": Role.MELODY, "bass": Role.BASS, "pad": Role.PAD,
               "strings": Role.STRINGS, "counter_melody": Role.COUNTER, "drums": Role.DRUMS,
               "rhythm": Role.PERCUSSION, "transitions": Role.FX}


# --------------------------------------------------------------------------- measuring the song
def _beat_ticks(song: Song) -> int:
    return max(1, song.ppq * 4 // song.time_signature[1])


def measure_parts(song: Song) -> list[Part]:
    """Every track of ``song`` as a :class:`Part`: role, program, channel, notes and the ranges played."""
    bar = song.bar_ticks
    parts = []
    for t in song.tracks:
        notes = t.notes
        parts.append(Part(
            role=t.role, name=t.name, program=t.program, channel=t.channel + 1, drums=t.is_drum, notes=len(notes),
            pitch=Range(low=min(n.pitch for n in notes), high=max(n.pitch for n in notes)) if notes else None,
            velocity=Range(low=min(n.velocity for n in notes), high=max(n.velocity for n in notes)) if notes else None,
            first_bar=min(n.start for n in notes) // bar + 1 if notes else None,
            last_bar=max(n.start for n in notes) // bar + 1 if notes else None))
    return parts


def played_velocity(song: Song) -> Range | None:
    """The softest and loudest velocity of any note in ``song`` (None for a song without notes)."""
    velocities = [n.velocity for t in song.tracks for n in t.notes]
    return Range(low=min(velocities), high=max(velocities)) if velocities else None


def tempo_at(tempos, tick: int) -> float:
    """The tempo (BPM) sounding at ``tick`` in a ``[(tick, bpm)]`` tempo map."""
    bpm = float(tempos[0][1]) if tempos else 120.0
    for t, b in tempos:
        if t <= tick:
            bpm = float(b)
    return bpm


def tempo_map(song: Song) -> list[TempoPoint]:
    return [TempoPoint(tick=int(t), bar=round(t / song.bar_ticks + 1, 4), bpm=float(b)) for t, b in song.tempos]


def remeasure(explanation: Explanation, song: Song) -> Explanation:
    """The explanation with everything measured from the song measured again (after ``song`` was edited).

    Parts, the played velocity range, the tempo map and the sections' tempos; the
    musical decisions (chords, ending, rule breaks) are kept.
    """
    ex = explanation.model_copy(deep=True)
    ex.parts = measure_parts(song)
    ex.velocity = played_velocity(song)
    ex.tempo_map = tempo_map(song)
    for section in ex.arrangement.sections:
        section.tempo_bpm = tempo_at(song.tempos, (section.start_bar - 1) * song.bar_ticks)
    return ex


def _first(song: Song, role: Role):
    return next((t for t in song.tracks if t.role == role and t.notes), None)


def _note_name(pitch: int, flats: bool) -> str:
    from kelly.theory.pitch import pc_name

    return f"{pc_name(pitch % 12, flats=flats)}{pitch // 12 - 1}"


# --------------------------------------------------------------------------- harmony
def degree_name(semitones: int) -> str:
    return DEGREE_NAMES[semitones % 12]


def borrowed_effect(key, scale) -> BorrowedEffect:
    """How the scale of a borrowed chord's moment bends ``key``'s own scale: lowered and raised degrees."""
    own, world = set(key.scale_pcs()), set(scale)
    added, removed = world - own, own - world
    lowered, raised, other = [], [], []
    for pc in sorted(added, key=lambda p: (p - key.tonic_pc) % 12):
        off = (pc - key.tonic_pc) % 12
        if (pc + 1) % 12 in removed:
            lowered.append(DEGREE_NAMES[off] if off != 6 else "b5")
        elif (pc - 1) % 12 in removed:
            raised.append(DEGREE_NAMES[off] if off in _NATURAL else "#" + DEGREE_NAMES[off - 1])
        else:  # a chromatic tone beside its own scale neighbours: neither lowered nor raised
            other.append(pc)
    direction = ("darkens" if lowered and not raised and not other else
                 "brightens" if raised and not lowered and not other else "colours")
    return BorrowedEffect(direction=direction, lowered=lowered, raised=raised)


def _cadence_roots(key) -> set[int]:
    """Roots of the chords a half cadence may pause on in ``key``: the dominant and the mode's cadence chord."""
    from kelly.theory.modal import CADENCE_CHORD
    from kelly.theory.roman import roman_to_chord

    roots = {(key.tonic_pc + 7) % 12}
    roots.add(roman_to_chord(CADENCE_CHORD.get(key.mode, "V"), key).chord.root_pc)
    return roots


def cadence_of(event, previous) -> str | None:
    """The cadence a phrase-closing chord really makes, from the chord itself (not from what was planned).

    On the tonic: authentic. On the dominant or the mode's cadence chord: half. A phrase
    that was to close on the tonic but ends elsewhere after a dominant: deceptive.
    Anything else, and any chord that does not close a phrase: None.
    """
    if event.cadence is None:
        return None
    key, root = event.key, event.chord.root_pc
    if root == key.tonic_pc:
        return "authentic"
    leading = _cadence_roots(key)
    if root in leading:
        return "half"
    if event.cadence == "authentic" and previous is not None and previous.chord.root_pc in leading:
        return "deceptive"
    return None


def numeral_of(event) -> str:
    """The event's roman numeral when it names the chord's root in its key, else one read from the chord."""
    from kelly.errors import InputError
    from kelly.theory.roman import chord_to_roman, roman_to_chord

    try:
        if roman_to_chord(event.roman, event.key).chord.root_pc == event.chord.root_pc:
            return event.roman
    except InputError:  # not a numeral (an engine's label such as "passing")
        pass
    return chord_to_roman(event.chord, event.key)


def chord_values(events, song: Song) -> list[ChordValue]:
    bar, beat = song.bar_ticks, _beat_ticks(song)
    out = []
    previous = None
    for e in events:
        pcs = list(e.chord.pitch_classes())
        if e.chord.bass_pc not in pcs:
            pcs.append(e.chord.bass_pc)
        out.append(ChordValue(
            start_bar=e.start // bar + 1, beat=round(1 + (e.start % bar) / beat, 4), bars=round(e.duration / bar, 4),
            symbol=e.chord.name, root=e.chord.root, quality=e.chord.quality, bass=e.chord.bass, pitch_classes=pcs,
            numeral=numeral_of(e), key=e.key.name, borrowed_from=e.borrowed_from,
            borrowed_effect=borrowed_effect(e.key, e.scale) if e.borrowed_from and e.scale else None,
            cadence=cadence_of(e, previous), tension=round(float(e.tension), 3)))
        previous = e
    return out


def _ending(events, chords: list[ChordValue], song: Song) -> Ending | None:
    """How the piece ends: the last chord, its cadence, and the last notes of the bass and the melody."""
    if not events:
        return None
    last, value = events[-1], chords[-1]
    key = last.key
    flats = "#" not in key.tonic
    from kelly.theory.pitch import pc_name

    def final(role: Role, pick):
        track = _first(song, role)
        if track is None:
            return None
        start = max(n.start for n in track.notes)
        note = pick([n for n in track.notes if n.start == start])
        # only a note that still sounds under the last chord speaks for the ending
        return note if note.end > last.start else None

    bass = final(Role.BASS, lambda ns: min(ns, key=lambda n: n.pitch))
    melody = final(Role.MELODY, lambda ns: max(ns, key=lambda n: n.pitch))
    on_tonic = last.chord.root_pc == key.tonic_pc
    bass_home = bass is None or bass.pitch % 12 == key.tonic_pc
    melody_home = melody is None or melody.pitch % 12 in last.tones
    home = on_tonic and bass_home and melody_home
    text = f"ends on {value.numeral} ({value.symbol})"
    if value.cadence:
        text += f", {'an' if value.cadence == 'authentic' else 'a'} {value.cadence} cadence"
    if bass is not None and not on_tonic and bass.pitch % 12 == key.tonic_pc:
        text += f", over the tonic {pc_name(key.tonic_pc, flats=flats)} in the bass"
    elif bass is not None and on_tonic and not bass_home:
        text += f", with {pc_name(bass.pitch % 12, flats=flats)} in the bass"
    if melody is not None:
        text += f"; the melody ends on {_note_name(melody.pitch, flats)} ({degree_name(melody.pitch - key.tonic_pc)})"
    if home:
        text += ": the piece comes home"
    elif on_tonic:
        text += ": the tonic chord, but not fully at rest"
    else:
        text += ": the piece does not come home"
    return Ending(chord=len(chords) - 1, symbol=value.symbol, numeral=value.numeral, cadence=value.cadence,
                  on_tonic=on_tonic, bass=pc_name(bass.pitch % 12, flats=flats) if bass is not None else None,
                  melody=_note_name(melody.pitch, flats) if melody is not None else None,
                  melody_degree=degree_name(melody.pitch - key.tonic_pc) if melody is not None else None,
                  home=home, statement=text)


def _borrowed_summary(chords: list[ChordValue]) -> tuple[str, str] | None:
    """(verb, detail) for the borrowed chords heard: "darken"/"brighten"/"colour" and "bVI: b6; V: 7"."""
    seen: dict[str, BorrowedEffect] = {}
    for c in chords:
        if c.borrowed_effect is not None and c.numeral not in seen:
            seen[c.numeral] = c.borrowed_effect
    if not seen:
        return None
    directions = {e.direction for e in seen.values()}
    verb = ("darken" if directions == {"darkens"} else "brighten" if directions == {"brightens"}
            else "darken and brighten" if {"darkens", "brightens"} <= directions else "colour")
    detail = "; ".join(f"{n}: " + ", ".join([f"lowers {d}" for d in e.lowered] + [f"raises {d}" for d in e.raised])
                       for n, e in seen.items())
    return verb, detail


def _true_why(rule: str, why: str, chords: list[ChordValue], ending: Ending | None) -> str:
    """A rule break's reason with its musical claim replaced by what the chords do (when it was not so)."""
    if rule == "HARMONY_ModalInterchange" and "borrowed chords darken the harmony" in why:
        summary = _borrowed_summary(chords)
        claim = ("no chord is borrowed in the end" if summary is None
                 else f"borrowed chords {summary[0]} the harmony ({summary[1]})")
        return why.replace("borrowed chords darken the harmony", claim)
    if rule == "HARMONY_AvoidTonicResolution" and "does not come home" in why and ending is not None \
            and ending.on_tonic:
        return why.replace("the harmony does not come home", f"yet it ends on {ending.numeral}")
    return why


# --------------------------------------------------------------------------- engine notes
def _plain(obj):
    """JSON-ready copy of an engine's notes: numpy scalars, tuples, sets and enums become plain values."""
    if isinstance(obj, dict):
        return {str(k.value if isinstance(k, Enum) else k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_plain(v) for v in obj)
    if isinstance(obj, Enum):
        return obj.value
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def _bars_of(track, section, bar_ticks: int, tolerance: int) -> dict[int, list]:
    """The track's notes in ``section``, by bar (onsets; a note up to ``tolerance`` ticks early counts)."""
    by_bar: dict[int, list] = defaultdict(list)
    if track is None:
        return by_bar
    lo, hi = section.start_bar * bar_ticks, section.end_bar * bar_ticks
    for n in track.notes:
        if lo - tolerance <= n.start < hi - tolerance:
            by_bar[(n.start + tolerance) // bar_ticks].append(n)
    return by_bar


def sounds_tonic_pedal(by_bar: dict[int, list], tonic_of_bar) -> bool:
    """Whether the tonic is the bass's main pitch class (longest total duration) in every bar it plays."""
    if not by_bar:
        return False
    for bar, notes in by_bar.items():
        weight: dict[int, int] = defaultdict(int)
        for n in notes:
            weight[n.pitch % 12] += n.duration
        if max(weight, key=lambda pc: (weight[pc], pc == tonic_of_bar(bar))) != tonic_of_bar(bar):
            return False
    return True


def _true_bass(notes: dict, plan, song: Song) -> dict:
    """The bass engine's section patterns, with "pedal" kept only where the bass sounds the tonic."""
    patterns = notes.get("patterns")
    if not isinstance(patterns, list) or len(patterns) != len(plan.sections):
        return notes
    bass = _first(song, Role.BASS)
    fixed = []
    for item, section in zip(patterns, plan.sections):
        item = dict(item)
        by_bar = _bars_of(bass, section, plan.bar_ticks, plan.ppq // 8)
        if not by_bar:
            item.pop("pedal", None)
            item["silent"] = True
        elif item.get("pedal") == "tonic" and not sounds_tonic_pedal(
                by_bar, lambda bar: plan.params_at_bar(bar).key.tonic_pc):
            item.pop("pedal")
        fixed.append(item)
    return {**notes, "patterns": fixed}


def heard_layers(plan, song: Song, why: dict) -> list[str]:
    """The plan's layers that are heard in the file."""
    roles = {t.role for t in song.tracks if t.notes}
    out = []
    for layer in sorted(plan.layers):
        if layer in LAYER_ROLES:
            heard = LAYER_ROLES[layer] in roles
        elif layer == "fills":
            heard = Role.DRUMS in roles and bool((why.get("fills") or {}).get("fills"))
        elif layer == "variations":
            heard = Role.MELODY in roles and bool((why.get("variations") or {}).get("variations"))
        else:
            heard = False
        if heard:
            out.append(layer)
    return out


# --------------------------------------------------------------------------- the explanation
def _parameters(params) -> Parameters:
    """The mapping's settings; the mode is the one composed in (the key's), the velocity range a target."""
    d = params.to_dict()
    why = {str(k): str(v) for k, v in (d.get("why") or {}).items()}
    for name, text in why.items():
        # the mapping's range is what it aims for; the played range is measured (Explanation.velocity)
        why[name] = re.sub(r"(?<!target )\bvelocities (\d+)\.\.(\d+)", r"target velocities \1..\2", text)
    key = params.key
    if d["detailed_mode"] != key.mode:
        # the emotion suggested one mode, the piece is in another (a --key, or a mode that keeps the third)
        why["detailed_mode"] = (why.get("detailed_mode", f"suggested {d['detailed_mode']}")
                                + f"; the piece is in {key.name}")
    return Parameters(
        tempo_bpm=d["tempo_bpm"], base_velocity=d["base_velocity"], mode="minor" if key.is_minor else "major",
        detailed_mode=key.mode,
        key=d["key"], register_octave=d["register_octave"], melody_centre=d["melody_centre"], density=d["density"],
        dissonance=d["dissonance"], dynamics_range=d["dynamics_range"], target_velocity_min=d["velocity_min"],
        target_velocity_max=d["velocity_max"], timing_feel=d["timing_feel"], swing=d["swing"], groove=d["groove"],
        timing_variation_beats=d["timing_variation_beats"], velocity_variation=d["velocity_variation"],
        timing_bias_beats=d["timing_bias_beats"], why=why)


def _models(models: dict | None) -> Models:
    if not models:
        return Models(note="networks off (--no-ml)")
    return Models(live=list(models.get("live") or []), fallback=list(models.get("fallback") or []),
                  note=str(models.get("note") or ""),
                  status={str(k): str(v) for k, v in (models.get("status") or {}).items()},
                  hints=_plain(models["hints"]) if models.get("hints") is not None else None)


def build_explanation(plan, template, song, romans, events, tension_curve, breaks, why, opts, path,
                      models) -> Explanation:
    """The typed explanation of a finished composition (see the module docstring for how claims are made true).

    Parameters are those the composer's ``_explain`` received: the plan, the arrangement
    template, the finished song, the numerals, the chord events, the tension curve, the
    rule breaks (``{rule id: {severity, why, source}}``), the engines' notes (``why``),
    the options, the emotion path and the networks' status.
    """
    from kelly.intent.rule_generators import production_note
    from kelly.intent.rules import RULES_BY_ID

    why = copy.deepcopy(why)
    progression_notes = why.pop("progression", {}) or {}
    pivots = [Pivot(bar=int(p["bar"]), from_key=str(p["from"]), to_key=str(p["to"]), numeral=str(p["pivot"]),
                    deliberate=bool(p.get("deliberate", False)))
              for p in progression_notes.pop("pivots", None) or []]
    chords = chord_values(events, song)
    ending = _ending(events, chords, song)

    sections = []
    for s in plan.sections:
        p = s.params or plan.params
        lo, hi = s.start_bar * plan.bar_ticks, s.end_bar * plan.bar_ticks
        sections.append(SectionInfo(
            name=s.name, start_bar=s.start_bar + 1, bars=s.bars, energy=round(float(s.energy), 3),
            emotion=(s.emotion or plan.emotion).label, tempo_bpm=tempo_at(song.tempos, lo), key=p.key.name,
            mode=p.mode, base_velocity=p.velocity, density=round(p.density, 3), register_octave=p.register_octave,
            melody_centre=p.register_centre,
            chords=[k for k, e in enumerate(events) if lo <= e.start < hi]))

    engines = {name: _plain(notes) for name, notes in why.items()}
    if isinstance(engines.get("bass"), dict):
        engines["bass"] = _true_bass(engines["bass"], plan, song)
    if progression_notes:
        engines["progression"] = _plain(progression_notes)

    rule_breaks = []
    for rid, b in breaks.items():
        rule = RULES_BY_ID[rid]
        rule_breaks.append(RuleBreak(
            rule=rid, category=rule.category, severity=float(b["severity"]),
            why=_true_why(rid, str(b["why"]), chords, ending), source=b["source"], effect=rule.effect,
            expressed_as="production note" if rule.midi == "production" else "MIDI"))

    return Explanation(
        schema_version=SCHEMA_VERSION, kelly_version=__version__, seed=opts.seed, bars=opts.bars,
        time_signature=f"{song.time_signature[0]}/{song.time_signature[1]}", complexity=opts.complexity, emotion=Emotion.model_validate(plan.emotion.to_dict()),
        journey=[e.label for e in path] if len(path) > 1 else None, parameters=_parameters(plan.params),
        profile=plan.profile,
        arrangement=Arrangement(template=template, sections=sections, layers=heard_layers(plan, song, why)),
        progression=Progression(key=plan.key.name, chords=chords,
                                tension_curve=[round(float(t), 3) for t in tension_curve], pivots=pivots),
        ending=ending, parts=measure_parts(song), velocity=played_velocity(song),
        rule_breaks=rule_breaks,
        production_notes=[ProductionNote(rule=rid, note=production_note(rid)) for rid in breaks
                          if RULES_BY_ID[rid].midi == "production"],
        tempo_map=tempo_map(song), models=_models(models), engines=engines)
