"""Intent → music: compose MIDI from a :class:`~kelly.intent.schema.CompleteSongIntent`.

How each field is heard, and why this path was chosen (it reuses :func:`kelly.generator.compose`
unchanged and edits only its result, so the composer stays one code path):

* ``mood_primary`` → an emotion: the thesaurus name if it is one (``state_for``), else the
  text reader (``read_text``), so "Triumphant Hope" and "numb but hopeful" both work.
* ``technical_key`` / ``technical_mode`` → ``ComposeOptions(key=...)``. A mode without a key
  keeps the emotion's tonic.
* ``technical_tempo_range`` → the tempo is its middle (integer division, as the original).
  The composed tempo map is *scaled* so its first tempo becomes that value: rule-driven
  tempo shapes (rubato, accelerando) and journey ramps keep their shape.
* ``technical_groove_feel`` (with ``vulnerability_scale`` and ``mood_secondary_tension``) →
  :func:`kelly.groove.settings_from_intent`, applied with :func:`kelly.groove.humanize`
  instead of the emotion's own humanization (the composer is asked for ``humanize=0``
  so the two never stack). "Swung" also swings the off-beat eighths (triplet swing) when the
  emotion did not already swing.
* ``technical_rule_to_break`` → ``ComposeOptions(breaks=(rule,))`` at full severity. When the
  writer chose a rule, the emotion's automatic rule breaks are switched off: the intent
  says which rule is broken and why.
* ``narrative_arc`` → a dynamics envelope over the whole piece (:data:`ARC_ENVELOPES`,
  multiplying every velocity by position) and, for two arcs, a rule break that realises
  the form: Slow Reveal → ``TEMPORAL_ExtendedIntro``, Repetitive Despair →
  ``MELODY_ExcessiveRepetition``.
* ``imagery_texture`` → a production note (:data:`TEXTURE_NOTES`); MIDI cannot carry reverb.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from kelly.errors import InputError
from kelly.intent.schema import (CompleteSongIntent, canonical_arc, canonical_groove, canonical_vulnerability,
                                 resolve_key, validate_intent)

#: Narrative arc → (velocity factor at position x in [0, 1], what it does).
ARC_ENVELOPES = {
    "Climb-to-Climax": (lambda x: 0.7 + 0.5 * x, "dynamics climb steadily to the end (x0.70 -> x1.20)"),
    "Slow Reveal": (lambda x: 0.75 + 0.35 * x, "a long intro (only keys and pad), then a gentle rise"),
    "Repetitive Despair": (lambda x: 0.9, "the melody's first cell repeats to the end at an even, low level"),
    "Static Reflection": (lambda x: 1.0, "even dynamics throughout: nothing is pushed"),
    "Sudden Shift": (lambda x: 0.8 if x < 2 / 3 else 1.25, "held back for two thirds, then a sudden jump (x1.25)"),
    "Descent": (lambda x: 1.2 - 0.5 * x, "dynamics sink from x1.20 to x0.70"),
    "Rise and Fall": (lambda x: 0.75 + 0.45 * math.sin(math.pi * x), "an arch: quiet, loud in the middle, quiet"),
    "Spiral": (lambda x: 0.95 + 0.25 * x * math.sin(6 * math.pi * x), "swells that widen as the piece goes on"),
}
#: Arcs that also need a form-changing rule break.
ARC_RULES = {"Slow Reveal": "TEMPORAL_ExtendedIntro", "Repetitive Despair": "MELODY_ExcessiveRepetition"}

#: Imagery/texture → production note (TEXTURE_PRODUCTION_MAP's eight textures, in words).
TEXTURE_NOTES = {
    "Ethereal": "long hall reverb, ping-pong delay, airy top end, wide stereo, light compression",
    "Intimate": "small dry room, no delay, warm close-mic EQ, narrow stereo, gentle compression",
    "Massive": "large plate reverb, slap delay, full low end, very wide, heavy bus compression",
    "Skeletal": "almost dry, no delay, thin mid-focused EQ, narrow, uncompressed",
    "Lush": "warm chamber reverb, soft delay, rich low-mids, wide, medium compression",
    "Harsh": "short bright room, no delay, boosted upper mids, clipped peaks, hard compression",
    "Murky": "dark long reverb, filtered delay, rolled-off highs and 200-400 Hz kept, medium width",
    "Crystalline": "bright shimmer reverb, dotted delay, clear top, wide, light compression",
}


def emotion_for(mood: str):
    """The emotion a mood names: the thesaurus entry, else what the text reader hears."""
    from kelly.emotion.text import read_text
    from kelly.emotion.thesaurus import state_for

    try:
        return state_for(mood)
    except InputError:
        return read_text(mood)


def _velocity_envelope(song, fn, total_ticks: int) -> None:
    for track in song.tracks:
        track.notes = [n.moved(velocity=int(min(127, max(1, round(n.velocity * fn(min(1.0, n.start / total_ticks)))))))
                       for n in track.notes]


def process_intent(intent: CompleteSongIntent, *, bars: int = 16, seed: int = 0, force: bool = False):
    """Compose a piece from an intent.

    Parameters
    ----------
    intent : CompleteSongIntent
    bars : int
        Length in bars (1–512).
    seed : int
        The same seed gives byte-identical MIDI.
    force : bool
        Compose even when :func:`~kelly.intent.schema.validate_intent` finds problems;
        the parts that cannot be used (an unknown rule, key or groove) are skipped and
        listed in the explanation.

    Returns
    -------
    kelly.generator.Composition
        Song and explanation; ``explanation.intent`` holds the document, its
        validation and what each field did, and everything the explanation measures
        (parts, velocities, the tempo map) is measured again on the edited song.

    Raises
    ------
    InputError
        If the intent has problems and ``force`` is false (the message lists them all).
    """
    from kelly.explain import remeasure
    from kelly.generator import ComposeOptions, compose
    from kelly.groove import humanize, settings_from_intent, swing
    from kelly.intent.rules import get_rule
    from kelly.mapping import map_emotion
    from kelly.theory.scales import Key, normalize_mode

    problems = validate_intent(intent)
    if problems and not force:
        raise InputError(f"the intent has {len(problems)} problem(s): " + "; ".join(problems)
                         + " (fix them, or use --force)")
    mood, tech = intent.song_intent, intent.technical_constraints
    if not mood.mood_primary:
        raise InputError("the intent has no song_intent.mood_primary: nothing to compose from")
    emotion = emotion_for(mood.mood_primary)
    applied: dict = {"emotion": f"{mood.mood_primary!r} -> {emotion.label} ({emotion.family})"}
    skipped: list[str] = []

    # key and mode
    key_text = None
    try:
        key = resolve_key(intent)
        if key is None and tech.technical_mode:
            key = Key(map_emotion(emotion).key.tonic, normalize_mode(tech.technical_mode))
        if key is not None:
            key_text = f"{key.tonic} {key.mode}"
            applied["key"] = f"{key.name} (from technical_key/technical_mode)"
    except InputError as exc:
        skipped.append(f"key: {exc}")

    # the rule to break, and the arc's rule
    breaks: list[str] = []
    why: dict[str, str] = {}
    if tech.technical_rule_to_break:
        try:
            rule = get_rule(tech.technical_rule_to_break)
            breaks.append(rule.id)
            why[rule.id] = tech.rule_breaking_justification or "chosen in the intent"
        except InputError as exc:
            skipped.append(f"rule: {exc}")
    arc = canonical_arc(mood.narrative_arc)
    if arc in ARC_RULES and ARC_RULES[arc] not in breaks:
        breaks.append(ARC_RULES[arc])
        why[ARC_RULES[arc]] = f"narrative arc {arc!r}"
    groove = canonical_groove(tech.technical_groove_feel)
    if tech.technical_groove_feel and groove is None:
        skipped.append(f"groove feel {tech.technical_groove_feel!r} is not known")

    opts = ComposeOptions(bars=bars, seed=seed, key=key_text, breaks=tuple(breaks),
                          auto_breaks=not tech.technical_rule_to_break,
                          humanize=0.0 if groove else None)
    comp = compose(emotion, opts)
    song, ex = comp.song, comp.explanation
    total = bars * song.bar_ticks

    # the rule breaks' reasons come from the intent, not from --break
    for item in ex.rule_breaks:
        if item.rule in why:
            item.why, item.source = why[item.rule], "intent"

    # tempo: the middle of the range, the composed tempo map scaled to it
    lo, hi = tech.technical_tempo_range
    if 20 <= lo <= hi <= 300:
        target = intent.tempo_bpm
        factor = target / song.tempos[0][1]
        song.tempos = [(t, round(b * factor, 3)) for t, b in song.tempos]
        ex.parameters.tempo_bpm = target  # the tempo map and the sections' tempos are measured again below
        applied["tempo"] = f"{target} BPM, the middle of [{lo:g}, {hi:g}] (tempo map scaled x{factor:.3f})"
    else:
        skipped.append(f"tempo range [{lo:g}, {hi:g}] is not usable; the emotion's tempo was kept")

    # groove feel -> humanizer
    if groove:
        vulnerability = canonical_vulnerability(mood.vulnerability_scale) or "Medium"
        tension = min(1.0, max(0.0, mood.mood_secondary_tension))
        settings = settings_from_intent(vulnerability, groove, tension)
        if groove == "Swung" and not ex.parameters.swing:
            song = swing(song, 0.66)
            applied["swing"] = "0.66 (triplet swing) for the Swung feel"
        song = humanize(song, settings, np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x1A7E]))
        applied["groove"] = {"feel": groove, "vulnerability": vulnerability, "tension": tension,
                             "complexity": round(settings.complexity, 4),
                             "vulnerability_amount": settings.vulnerability,
                             "note": "kelly.groove.settings_from_intent, applied with kelly.groove.humanize"}

    # narrative arc -> dynamics envelope
    if arc:
        fn, what = ARC_ENVELOPES[arc]
        _velocity_envelope(song, fn, total)
        applied["narrative_arc"] = {"arc": arc, "effect": what, "rule": ARC_RULES.get(arc)}
    elif mood.narrative_arc:
        skipped.append(f"narrative arc {mood.narrative_arc!r} is not known")

    texture = next((t for t in TEXTURE_NOTES if t.lower() == mood.imagery_texture.strip().lower()), None)
    production = {"texture": texture or mood.imagery_texture or None,
                  "note": TEXTURE_NOTES.get(texture) if texture else
                  ("free imagery; no production preset" if mood.imagery_texture else None)}
    for t in song.tracks:
        t.notes = sorted(t.notes)
    ex = remeasure(ex, song)  # parts, velocities, tempo map and section tempos of the edited song
    song.title = f"Kelly - {intent.title}"[:120]
    ex.intent = {
        "title": intent.title,
        "document": intent.to_dict(),
        "validation": {"valid": not problems, "problems": problems},
        "applied": applied,
        "skipped": skipped,
        "production": production,
    }
    return replace(comp, song=song, explanation=ex)
