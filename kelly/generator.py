"""The orchestrator: emotion in, Song and explanation out.

Runs the engines in the original MidiGenerator's order (§6.3) — arrangement, chords,
melody, bass, counter-melody, pads, strings, rhythm, drums, fills, transitions,
variations, rule breaks, dynamics, then the groove and humanize pass — and records why
each choice was made. Every engine draws from its own generator seeded from
``(seed, engine number)``, so the same seed gives byte-identical MIDI and adding an
engine never changes what the others write.

Journeys (the music-therapy iso principle): ``compose([grief, hope])`` meets the
listener in the first emotion and moves section by section to the last; each section
has its own emotion and parameters (tempo, mode, harmony, density, register, dynamics)
over one shared tonic, with transitions at the seams and a tempo ramp between sections.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kelly.composer import MAX_BARS, ComposeOptions, Composition, check_options  # noqa: F401 - re-exported
from kelly.contracts import Explanation
from kelly.emotion.state import EmotionState
from kelly.engines import (arrange, arrangement, bass, chord, counter_melody, drums, dynamics, fill, melody, pad, rhythm,
                           strings, transition, variation)
from kelly.engines.context import Plan, Section
from kelly.engines.ml_hints import apply_expression, apply_groove, tempo_controls, write_controllers
from kelly.engines.profiles import profile_for
from kelly.errors import InputError
from kelly.intent.rule_generators import GENERATORS
from kelly.intent.rules import automatic_rule_breaks, get_rule
from kelly.mapping import map_emotion
from kelly.song import PPQ, Song, Track
from kelly.theory.scales import Key

__all__ = ["MAX_BARS", "ComposeOptions", "Composition", "check_options", "compose", "RuleComposer",
           "journey_anchors", "journey_bars"]

#: Rule breaks whose point is a clash with the melody, or the accompaniment in its register: the
#: arrangement fit leaves those as asked.
DELIBERATE_CLASHES = ("HARMONY_Polytonality", "MELODY_ExcessiveRepetition", "TEXTURE_FrequencyMasking")
DELIBERATE_MASKING = ("TEXTURE_FrequencyMasking", "ARRANGEMENT_BuriedVocals")
ENGINE_IDS = {name: k for k, name in enumerate(
    ("arrangement", "chord", "melody", "bass", "counter_melody", "pad", "strings", "rhythm", "drums", "fill",
     "transition", "variation", "rules", "dynamics", "groove", "tension"))}


def _rng(seed: int, engine: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, ENGINE_IDS[engine]])


def journey_anchors(n: int, bars: int) -> list[float]:
    """Where each emotion of a journey is fully itself, in bars: the first held from the start, the last to the end.

    Two emotions: the first holds the first quarter, the move takes the middle half, the
    last holds the final quarter (the iso principle: meet the listener, then move them
    gradually). More emotions share the middle evenly.
    """
    hold = 0.25 if n == 2 else 0.125
    first, last = hold * bars, (1 - hold) * bars
    return [first + (last - first) * k / (n - 1) for k in range(n)]


def _blend(a: EmotionState, b: EmotionState, t: float) -> EmotionState:
    """The emotion a fraction ``t`` of the way from ``a`` to ``b`` (named after the nearer one)."""
    near = a if t < 0.5 else b

    def mix(x: float, y: float) -> float:
        return x + (y - x) * t

    return EmotionState(near.label, near.family, mix(a.valence, b.valence), mix(a.arousal, b.arousal),
                        mix(a.dominance, b.dominance), mix(a.intensity, b.intensity), near.confidence,
                        source=near.source)


def journey_bars(path: list[EmotionState], bars: int) -> list[EmotionState]:
    """The emotion of every bar of a journey: held at each anchor, smoothstep between anchors."""
    anchors = journey_anchors(len(path), bars)
    out = []
    for bar in range(bars):
        x = bar + 0.5
        if x <= anchors[0]:
            out.append(path[0])
            continue
        if x >= anchors[-1]:
            out.append(path[-1])
            continue
        k = max(i for i in range(len(anchors) - 1) if anchors[i] <= x)
        t = (x - anchors[k]) / (anchors[k + 1] - anchors[k])
        t = t * t * (3 - 2 * t)
        out.append(_blend(path[k], path[k + 1], t))
    return out


def _journey_plan(path: list[EmotionState], bars: int, key: Key, opts: ComposeOptions,
                  meter: tuple[int, int] = (4, 4)):
    """Sections (one per emotion, meeting where the nearer emotion changes), and the bar-by-bar emotions,
    parameters and energies of a journey.

    Parameters move every bar with the blended emotion (tempo, loudness, register,
    density); the mode changes only on four-bar phrase boundaries and keeps the shared
    tonic (:func:`_pivot_chords` prepares each change); from the last anchor on, the
    music is the last emotion's.
    """
    if bars < 2 * len(path):
        raise InputError(f"a journey through {len(path)} emotions needs at least {2 * len(path)} bars, got {bars}")
    per_bar = journey_bars(path, bars)
    anchors = journey_anchors(len(path), bars)
    # seams on phrase boundaries (where the mode may change), midway between the anchors
    bounds = [0] + [int(round((anchors[k] + anchors[k + 1]) / 2 / 4)) * 4 for k in range(len(path) - 1)] + [bars]
    for k in range(1, len(bounds) - 1):  # every section at least two bars, in order
        bounds[k] = min(max(bounds[k], bounds[k - 1] + 2), bars - 2 * (len(bounds) - 1 - k))
    modes = [map_emotion(e, key=opts.key).key.mode for e in path]
    params = []
    for bar, emo in enumerate(per_bar):
        p = replace(map_emotion(emo, key=opts.key, humanize=opts.humanize), meter=meter)
        if not opts.key:
            # each phrase takes the mode of the emotion it is nearest to: the mode changes once per
            # seam, on a phrase boundary, and never wanders through the modes in between
            section = max(k for k in range(len(path)) if bounds[k] <= bar)
            mode = modes[-1] if bar // 4 == (bars - 1) // 4 else modes[section]
            chosen = Key(key.tonic, mode)
            p = replace(p, key=chosen, mode="minor" if chosen.is_minor else "major")
        params.append(p)
    sections = []
    for k, emo in enumerate(path):
        start, end = bounds[k], bounds[k + 1]
        energy = round(0.25 + 0.7 * emo.arousal, 3)
        sections.append(Section(emo.label.lower(), start, end - start, energy, emotion=emo, params=params[start]))
    energy = tuple(round(0.25 + 0.7 * e.arousal, 3) for e in per_bar)
    return sections, tuple(per_bar), tuple(params), energy


def _journey_harmony_breaks(planned: list[str], romans: list[str], plan: Plan, breaks: dict) -> list[str]:
    """In a journey, a harmony rule break an emotion called for sounds only in that emotion's sections.

    Grief's borrowed chords must not darken the hope a journey arrives at: a bar keeps the
    rewritten numeral only when its section's own emotion (or the user, with ``--break``)
    asks for one of the harmony rule breaks that ran; otherwise it keeps the planned one.
    """
    ran = [rid for rid in plan.rule_breaks if GENERATORS.get(rid, (None,))[0] == "progression"]
    if not ran:
        return romans
    out = list(romans)
    for bar, (before, after) in enumerate(zip(planned, romans)):
        if before == after:
            continue
        section = plan.section_at_bar(bar)
        own = automatic_rule_breaks(section.emotion) if section.emotion is not None else {}
        if not any(rid in own or breaks[rid]["source"] == "user" for rid in ran):
            out[bar] = before
    return out


def _pivot_chords(romans: list[str], plan: Plan) -> list[dict]:
    """Before each change of mode, a chord both modes share (a pivot), so the new mode is prepared."""
    from kelly.theory.modal import diatonic_quality
    from kelly.theory.roman import roman_to_chord

    pivots = []
    for bar in range(1, len(romans)):
        old, new = plan.params_at_bar(bar - 1).key, plan.params_at_bar(bar).key
        if old.mode == new.mode:
            continue
        prefix = romans[bar - 1].split(":")[0] + ":" if ":" in romans[bar - 1] else ""
        for numeral in ("V", "IV", "iv", "bVII", "ii", "v", "bVI", "vi", "bIII"):
            chord = roman_to_chord(numeral, old).chord
            q = "maj" if chord.quality == "maj" else "min"
            if diatonic_quality(old, chord.root_pc) == q and diatonic_quality(new, chord.root_pc) == q:
                romans[bar - 1] = prefix + numeral
                pivots.append({"bar": bar, "from": old.name, "to": new.name, "pivot": numeral})
                break
        else:
            # parallel major and minor share no triad: the dominant (with the leading tone) leads into both
            romans[bar - 1] = prefix + "V"
            pivots.append({"bar": bar, "from": old.name, "to": new.name, "pivot": "V", "deliberate": True})
    return pivots


#: The most a journey's tempo may change from one bar to the next (a fraction of the tempo).
MAX_TEMPO_STEP = 0.08


def _tempo_map(plan: Plan) -> list[tuple[int, float]]:
    """One tempo for a single emotion; in a journey one per bar, following the blended emotion,
    each bar at most :data:`MAX_TEMPO_STEP` from the last (so the tempo glides, never jumps)."""
    if not plan.bar_params:
        return [(0, float(plan.params.tempo))]
    tempos: list[tuple[int, float]] = []
    bpm = float(plan.bar_params[0].tempo)
    for bar, p in enumerate(plan.bar_params):
        want = float(p.tempo)
        step = bpm * MAX_TEMPO_STEP
        bpm = round(min(bpm + step, max(bpm - step, want)), 2) if bar else want
        if not tempos or tempos[-1][1] != bpm:
            tempos.append((bar * plan.bar_ticks, bpm))
    return tempos


def _groove_pass(song: Song, plan: Plan, seed: int) -> tuple[Song, dict]:
    """Swing, timing feel and humanization (the original GrooveEngine post-processor, §6.3).

    Uses :mod:`kelly.groove`: ``swing`` on off-beat eighths when the feel is swung (0.66
    is triplet swing in kelly.groove's definition, the §3.4 value), a
    constant lean (laid-back +, pushed −, plus the emotion's drag or rush), then the
    humanizer with complexity from the timing variation (§3.4) and vulnerability from
    1 − dominance.

    With the networks' hints (:mod:`kelly.engines.ml_hints`) the swing follows each bar's
    ``swing`` output, the pitched parts lean against the kit by ``push_pull``, and the
    humanizer's complexity, timing and velocity spreads are scaled by ``humanize``,
    ``microtiming_ms``, ``timing_humanize``, ``timing_spread`` and ``velocity_humanize``.
    """
    from kelly.engines import ml_hints
    from kelly.groove.humanize import humanize
    from kelly.groove.presets import HumanizeSettings
    from kelly.groove.swing import swing, swing_spans

    params = plan.params
    info: dict = {"swing": params.swing, "feel": params.timing_feel}
    if plan.hints is None:
        if params.swing > 0 and not plan.compound:  # 6/8 already divides its beat in three
            song = swing(song, params.swing)
    elif not plan.compound:
        spans = ml_hints.swing_spans(plan)
        song = swing_spans(song, spans)
        info["swing"] = spans[0][2] if len(spans) == 1 else [
            {"bar": start // plan.bar_ticks + 1, "swing": amount} for start, _, amount in spans]
    lean_beats = {"laid_back": 0.02, "pushed": -0.015}.get(params.timing_feel, 0.0) + params.timing_bias * -1.0
    lean = int(round(lean_beats * plan.ppq))
    push = ml_hints.lean_by_bar(plan) if plan.hints is not None else None
    if push and any(push):
        for t in song.tracks:
            own = lean if not t.is_drum or params.timing_feel == "laid_back" else 0
            t.notes = [n.moved(start=max(0, n.start + own + (0 if t.is_drum else
                                                              push[min(plan.bars - 1, n.start // plan.bar_ticks)])))
                       for n in t.notes]
        info["push_pull_ticks"] = sorted(set(push))
    elif lean:
        for t in song.tracks:
            if not t.is_drum or params.timing_feel == "laid_back":
                t.notes = [n.moved(start=max(0, n.start + lean)) for n in t.notes]
    info["lean_ticks"] = lean
    complexity = min(1.0, params.timing_variation * plan.ppq / 35.0)
    vulnerability = 1.0 - plan.emotion.dominance
    settings = HumanizeSettings(complexity=complexity, vulnerability=vulnerability,
                                ghost_notes=plan.emotion.arousal < 0.8, name="emotion")
    if plan.hints is not None:
        settings, info["humanize_scales"] = ml_hints.humanize_settings(plan, settings)
        complexity = settings.complexity
    if complexity > 0:
        downbeats = {t.name: [n for n in t.notes if n.pitch == 36 and n.start % plan.bar_ticks == 0]
                     for t in song.tracks if t.is_drum}
        song = humanize(song, settings, _rng(seed, "groove"))
        for t in song.tracks:  # the humanizer may drop a hit now and then, but never the kick on beat one
            kept = sorted(n.start for n in t.notes if n.pitch == 36)
            lost = [n for n in downbeats.get(t.name, []) if not any(abs(s - n.start) <= plan.ppq // 8 for s in kept)]
            if lost:
                t.notes = sorted(t.notes + lost)
        # the humanizer's velocity drift must not undo the dynamics' ceiling (nothing saturates at 127)
        from kelly.engines.dynamics import CLIMAX_CEILING

        for t in song.tracks:
            if any(n.velocity > CLIMAX_CEILING for n in t.notes):
                t.notes = [n.moved(velocity=CLIMAX_CEILING) if n.velocity > CLIMAX_CEILING else n for n in t.notes]
    info["humanize"] = {"complexity": round(complexity, 4), "vulnerability": round(vulnerability, 4)}
    return song, info


def _apply_rules(stage: str, target, plan: Plan, seed: int):
    """Run every active rule break's generator registered for ``stage`` on ``target``.

    Progression and tempo generators return a new value; parts and dynamics generators
    edit the tracks in place and return None.
    """
    for rid, severity in plan.rule_breaks.items():
        rule_stage, fn = GENERATORS.get(rid, (None, None))
        if rule_stage == stage:
            result = fn(target, plan, _rng(seed, "rules"), severity)
            target = target if result is None else result
    return target


def compose(emotions: EmotionState | list[EmotionState], opts: ComposeOptions = ComposeOptions(),
            *, hints=None, models: dict | None = None) -> Composition:
    """Compose a piece for one emotion, or a journey through several.

    Parameters
    ----------
    emotions : EmotionState or list of EmotionState
        One emotion, or the path of a journey (first → last).
    opts : ComposeOptions
    hints : kelly.ml.processor.MusicHints or list of them, optional
        The networks' controls; for a journey a list (one per emotion) shapes each
        section with its own emotion's hints.
        Network outputs that weight melody, harmony, groove and expression. Hints that
        carry ``melody_steps`` give the melody one row of note probabilities per bar (the
        melody network stepped bar by bar, its state carried through the piece).
    models : dict, optional
        Which networks were live, for the explanation.
    """
    check_options(opts)
    path = [emotions] if isinstance(emotions, EmotionState) else list(emotions)
    if not path:
        raise InputError("nothing to compose: no emotion given")
    first = path[0]
    params = map_emotion(first, key=opts.key, humanize=opts.humanize, meter=opts.meter)
    if len(path) > 1 and not opts.meter and len({map_emotion(e).meter for e in path}) > 1:
        params = replace(params, meter=(4, 4))  # a journey keeps one metre; mixed feelings walk in 4/4
    bar_emotions: tuple = ()
    bar_params: tuple = ()
    bar_energy: tuple = ()
    if len(path) > 1:
        template = "journey"
        sections, bar_emotions, bar_params, bar_energy = _journey_plan(path, opts.bars, params.key, opts,
                                                                       params.meter)
    else:
        template, sections = arrangement.plan_sections(first, opts.bars)
    layers = arrangement.determine_layers(first, opts.complexity, sections, opts.bars)

    # rule breaks: automatic from the (last) emotion, plus the user's
    breaks: dict[str, dict] = {}
    if opts.auto_breaks:
        for emo in path:
            for rid, info in automatic_rule_breaks(emo).items():
                if rid not in breaks or breaks[rid]["severity"] < info["severity"]:
                    breaks[rid] = {**info, "source": "emotion"}
    for name in opts.breaks:
        rule = get_rule(name)
        breaks[rule.id] = {"severity": 1.0, "why": "asked for with --break", "source": "user"}
    if len(path) > 1:
        # a journey must arrive: the ending is resolved unless the user asked otherwise
        for rid in ("HARMONY_AvoidTonicResolution", "TEMPORAL_AbruptEnding"):
            if breaks.get(rid, {}).get("source") == "emotion":
                breaks.pop(rid)
    severities = {rid: b["severity"] for rid, b in breaks.items()}

    plan = Plan(emotion=first, params=params, bars=opts.bars, complexity=opts.complexity,
                sections=tuple(sections), layers=layers, rule_breaks=severities,
                hints=hints[0] if isinstance(hints, (list, tuple)) else hints,
                section_hints=tuple(hints) if isinstance(hints, (list, tuple)) and len(hints) == len(sections)
                else (),
                profile=profile_for(first), bar_emotions=bar_emotions, bar_params=bar_params,
                bar_energy=bar_energy, meter=params.meter)
    plan, melody_network = _step_melody_network(plan, hints, len(path))

    # 1. chords
    rng = _rng(opts.seed, "chord")
    romans, prog_info = chord.plan_progression(plan, rng)
    if bar_params:
        prog_info["pivots"] = _pivot_chords(romans, plan)
    planned = list(romans)
    romans = _apply_rules("progression", romans, plan, opts.seed)
    if len(path) > 1:
        romans = _journey_harmony_breaks(planned, romans, plan, breaks)
    deliberate = {k for k, (a, b) in enumerate(zip(planned, romans)) if a != b}
    deliberate |= {p["bar"] - 1 for p in prog_info.get("pivots", []) if p.get("deliberate")}
    events, tension_curve = chord.build_chords(plan, romans, _rng(opts.seed, "tension"), deliberate=deliberate,
                                               cadences=prog_info.pop("cadences"),
                                               jazz_bars=prog_info.pop("jazz_bars"),
                                               ceiling=lambda bar: melody.accompaniment_ceiling(plan, bar))
    plan = replace(plan, chords=tuple(events))

    # 2. parts
    tracks: list[Track] = []
    why: dict = {"progression": prog_info}
    comp, why["chords_part"] = chord.comp_track(plan, _rng(opts.seed, "chord"))
    tracks.append(comp)
    mel, why["melody"] = melody.generate(plan, _rng(opts.seed, "melody"))
    if melody_network is not None:
        why["melody"]["network"] = melody_network
    tracks.append(mel)
    bas, why["bass"] = bass.generate(plan, _rng(opts.seed, "bass"))
    tracks.append(bas)
    if "counter_melody" in layers:
        cm, why["counter_melody"] = counter_melody.generate(plan, mel, _rng(opts.seed, "counter_melody"))
        tracks.append(cm)
    if "pad" in layers:
        pd, why["pad"] = pad.generate(plan, _rng(opts.seed, "pad"))
        tracks.append(pd)
    if "strings" in layers:
        st, why["strings"] = strings.generate(plan, _rng(opts.seed, "strings"))
        tracks.append(st)
    drum_track = None
    if "drums" in layers:
        drum_track, why["drums"] = drums.generate(plan, _rng(opts.seed, "drums"))
        tracks.append(drum_track)
        if "rhythm" in layers:
            perc, why["rhythm"] = rhythm.percussion(plan, _rng(opts.seed, "rhythm"))
            tracks.append(perc)
        if "fills" in layers:
            why["fills"] = fill.apply(plan, drum_track, _rng(opts.seed, "fill"))
    if "transitions" in layers:
        fx, why["transitions"] = transition.generate(plan, drum_track, _rng(opts.seed, "transition"))
        tracks.append(fx)
    if "variations" in layers:
        why["variations"] = variation.apply(plan, mel, _rng(opts.seed, "variation"))

    # 3. rule breaks on the parts, then the accompaniment voiced under the melody, dynamics, velocity rules
    _apply_rules("parts", tracks, plan, opts.seed)
    why["fit_under_melody"] = arrange.fit_under_melody(
        tracks, plan, keep_clashes=any(plan.rule(r) > 0 for r in DELIBERATE_CLASHES),
        keep_register=any(plan.rule(r) > 0 for r in DELIBERATE_MASKING))
    why["dynamics"] = dynamics.apply(plan, tracks)
    if plan.hints is not None:
        why["expression"] = apply_expression(tracks, plan, plan.hints)
    _apply_rules("dynamics", tracks, plan, opts.seed)

    # 4. tempo map and the song
    tempos = _tempo_map(plan)
    if plan.hints is not None:
        tempos, why["tempo"] = tempo_controls(tempos, plan)
    tempos = _apply_rules("tempo", tempos, plan, opts.seed)
    key_sig = plan.key.signature_name()
    song = Song(tracks=[t for t in tracks if t.notes] or tracks[:1], tempos=tempos, time_signature=plan.meter,
                key_signature=key_sig, title=f"Kelly - {first.label}", ppq=PPQ,
                markers=[(s.start_bar * plan.bar_ticks, s.name) for s in plan.sections] if len(plan.sections) > 1
                else [])
    score = Song(tracks=[t.with_notes(sorted(t.notes)) for t in song.tracks], tempos=list(song.tempos),
                 time_signature=song.time_signature, key_signature=song.key_signature, title=song.title,
                 ppq=song.ppq, markers=list(song.markers))
    if plan.hints is not None:
        why["groove_hints"] = apply_groove(song, plan, plan.hints, _rng(opts.seed, "groove"))
    song, why["groove"] = _groove_pass(song, plan, opts.seed)
    for t in song.tracks:
        t.notes = sorted(n for n in t.notes if n.start < plan.total_ticks + plan.bar_ticks)
        arrange.keep_in_range(t)
        arrange.clean_track(t)
    if plan.hints is not None:
        why["controllers"] = write_controllers(song, plan)

    explanation = _explain(plan, template, song, romans, events, tension_curve, breaks, why, opts, path, models)
    return Composition(song, explanation, score)


def _step_melody_network(plan: Plan, hints, n_emotions: int) -> tuple[Plan, dict | None]:
    """The melody network stepped once per bar of the piece, its state carried from bar to bar.

    When the hints can do it (``hints.melody_steps``, see :class:`kelly.ml.processor.MelodySteps`),
    they are asked once for the whole piece: bar ``b`` is stepped with the emotion shaping it
    (its journey section's own emotion, else the piece's), so the state runs on across section
    seams. Returns the plan with :attr:`Plan.bar_note_probs` filled and what to say about it
    (``None``, and the plan unchanged, when the hints cannot be stepped per bar).
    """
    hint_list = list(hints) if isinstance(hints, (list, tuple)) else [] if hints is None else [hints]
    source = next((h for h in hint_list if getattr(h, "melody_steps", None) is not None), None)
    if source is None:
        return plan, None
    steps = source.melody_steps
    bar_states = [plan.section_at_bar(bar).emotion or plan.emotion for bar in range(plan.bars)]
    rows = np.array(steps(bar_states), dtype=np.float32)
    if rows.shape != (plan.bars, 128) or not np.all(np.isfinite(rows)):
        raise InputError(f"the melody network's per-bar note probabilities must be {plan.bars} rows of 128 finite "
                         f"numbers, got shape {rows.shape}")
    rows.flags.writeable = False
    live = bool(getattr(steps, "live", (getattr(source, "live", None) or {}).get("melodytransformer", False)))
    sections = n_emotions if n_emotions > 1 else 1
    across = f" across the journey's {sections} sections, each bar with its section's own emotion" \
        if sections > 1 else ""
    if live:
        statement = (f"the melody network was stepped {plan.bars} times, once per bar, its LSTM state carried "
                     f"from bar to bar{across}; each bar's melody weighs its own row of note probabilities")
    else:
        statement = (f"the melody network's fallback heuristic gave each of the {plan.bars} bars a row of note "
                     f"probabilities{across}; it keeps no state, so bars of one emotion share a row")
    info = {"bars_stepped": plan.bars, "state_carried": live, "sections": sections, "live": live,
            "statement": statement}
    return replace(plan, bar_note_probs=tuple(rows)), info


def _explain(plan: Plan, template, song, romans, events, tension_curve, breaks, why, opts, path,
             models) -> Explanation:
    """The typed explanation, every musical claim measured from or checked against ``song`` (:mod:`kelly.explain`)."""
    from kelly.explain import build_explanation

    return build_explanation(plan, template, song, romans, events, tension_curve, breaks, why, opts, path, models)


class RuleComposer:
    """The rule engines behind the :class:`kelly.composer.Composer` protocol.

    ``models`` is what the networks' status says (for the explanation); ``controls`` passed
    to :meth:`compose` are the networks' hints.
    """

    name = "rules"

    def __init__(self, models: dict | None = None) -> None:
        self.models = models

    def compose(self, emotions, options: ComposeOptions = ComposeOptions(), controls=None) -> Composition:
        return compose(emotions, options, hints=controls, models=self.models)

