"""How the five networks' outputs shape the music (issue #4, item 6).

The networks (or their fallback heuristics) give note probabilities, chord
probabilities, 32 groove parameters and 16 expression parameters
(:class:`kelly.ml.processor.MusicHints`). The rule engines stay in charge of structure
and the music brain keeps everything in key:

* **notes** weight the melody's choice among the *scale's* pitches (in
  :mod:`kelly.engines.melody`);
* **chords** re-weight the progression among the key's *diatonic* chords, the engine's
  own choice keeping a strong prior, and never on phrase starts or the cadence;
* **groove** leans the parts ahead of or behind the beat, adds ghost notes and opens
  hi-hats on the drum track;
* **expression** moves the base velocity towards the network's, scales the velocity
  spread and strong-beat accents, and sets melody articulation (legato).
"""

from __future__ import annotations

import numpy as np

from kelly.engines.context import Plan
from kelly.ml.schema import chord_class_index, expression_dict, groove_dict
from kelly.song import Note, Song, Track
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
    """
    probs = np.asarray(hints.chord_probs, dtype=float)
    out = list(romans)
    for k, text in enumerate(romans):
        bar = offset + k
        if k % 4 == 0 or bar >= plan.bars - 2 or (fixed is not None and fixed[k]):
            continue  # phrase starts and the cadences belong to the rule engine
        prefix, _, current = text.rpartition(":")
        prefix = prefix + ":" if prefix else ""
        key = plan.params_at_bar(bar).key
        own = float(probs[_class_of(current, plan, bar)])
        best, best_p = current, own
        for r in chord_pool(key):
            p = float(probs[_class_of(r, plan, bar)])
            if r != current and p > best_p:
                best, best_p = r, p
        if best != current and best_p >= PREFERENCE_MARGIN * own:
            out[k] = prefix + best
    return out


#: How much more probable (×) the network must find another chord before the engine's chord gives way.
PREFERENCE_MARGIN = 2.0


def apply_expression(tracks: list[Track], plan: Plan, hints) -> dict:
    """Velocity base/range/accent and melody legato from the dynamics network."""
    ex = expression_dict(np.asarray(hints.expression))
    target = ex["velocity_base"] * 127.0
    shift = 0.5 * (target - plan.params.velocity)
    spread = 0.75 + 0.5 * ex["velocity_range"]
    accent = 8.0 * ex["accent"]
    legato = 0.7 + 0.5 * ex["legato"]
    for t in tracks:
        if t.is_drum or not t.notes:
            continue
        mean = float(np.mean([n.velocity for n in t.notes]))
        notes = []
        for n in t.notes:
            v = mean + (n.velocity - mean) * spread + shift + (accent if n.start % plan.ppq == 0 else 0.0)
            dur = n.duration
            if t.name == "Melody":
                dur = max(30, int(n.duration * legato))
            notes.append(n.moved(velocity=int(min(127, max(1, round(v)))), duration=dur))
        t.notes = notes
    return {"velocity_shift": round(shift, 2), "velocity_spread": round(spread, 3), "accent": round(accent, 2),
            "melody_legato": round(legato, 3)}


def apply_groove(song: Song, plan: Plan, hints, rng: np.random.Generator) -> dict:
    """Push/pull lean, ghost snares and open hats from the groove network."""
    g = groove_dict(np.asarray(hints.groove))
    lean = int(round(g["push_pull"] * -0.02 * plan.ppq))  # +1 pushes ahead (earlier)
    ghosts = opened = 0
    for t in song.tracks:
        if lean:
            t.notes = [n.moved(start=max(0, n.start + lean)) for n in t.notes]
        if t.name != "Drums" or not t.notes:
            continue
        taken = {n.start for n in t.notes}
        extra: list[Note] = []
        notes = []
        for n in t.notes:
            # off-beat eighths, found where they were written (before the lean moved them)
            if n.pitch == 42 and (n.start - lean) % plan.ppq == plan.ppq // 2 and \
                    rng.random() < 0.5 * g["hat_open_prob"]:
                n = n.moved(pitch=46)
                opened += 1
            notes.append(n)
        for bar in range(plan.bars):
            if not plan.layer_on("drums", bar):
                continue
            for step in range(plan.steps):
                tick = bar * plan.bar_ticks + step * plan.step_ticks + lean
                on_beat = (step * plan.step_ticks) % plan.beat_ticks == 0
                if tick not in taken and not on_beat and rng.random() < 0.25 * g["ghost_prob"]:
                    extra.append(Note(max(0, tick), 38, 60, int(22 + 16 * rng.random())))
                    ghosts += 1
        t.notes = sorted(notes + extra)
    return {"lean_ticks": lean, "ghost_notes_added": ghosts, "hats_opened": opened,
            "swing_hint": round(g["swing"], 3)}
