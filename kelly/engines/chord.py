"""ChordGenerator: choose a progression for the emotion and voice it.

The 17 progression families and their (valence, arousal) boxes are the original's
(§6.4), scored the same way (1 − normalised distance from the box centre + noise, +0.3
for families that suit the mode). Unlike the original, numerals are resolved by
:mod:`kelly.theory.roman` in the real key and mode, so the pitches are the chords the
numerals name (the original read semitone offsets as scale degrees and forced C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kelly.engines.context import ChordEvent, Plan
from kelly.engines.tension import CURVE_FOR_PROFILE, colour_chord, curve
from kelly.theory.chords import Chord
from kelly.theory.roman import roman_to_chord
from kelly.theory.voice_leading import voice_chord


@dataclass(frozen=True)
class Family:
    name: str
    category: str
    romans: tuple[str, ...]
    valence: tuple[float, float]
    arousal: tuple[float, float]
    sevenths: bool


FAMILIES: tuple[Family, ...] = (
    Family("I-IV-V-I", "universal", ("I", "IV", "V", "I"), (0.5, 1.0), (0.4, 1.0), False),
    Family("I-V-vi-IV", "universal", ("I", "V", "vi", "IV"), (0.2, 0.8), (0.3, 0.8), True),
    Family("I-vi-IV-V", "universal", ("I", "vi", "IV", "V"), (0.3, 0.7), (0.2, 0.6), False),
    Family("vi-IV-I-V", "universal", ("vi", "IV", "I", "V"), (-0.2, 0.5), (0.3, 0.7), True),
    Family("ii-V-I", "jazz", ("ii", "V", "I", "I"), (0.4, 0.9), (0.4, 0.8), True),
    Family("I-vi-ii-V", "jazz", ("I", "vi", "ii", "V"), (0.3, 0.8), (0.5, 0.9), True),
    Family("iii-vi-ii-V", "jazz", ("iii", "vi", "ii", "V"), (0.5, 0.9), (0.4, 0.7), True),
    Family("i-bVI-bIII-bVII", "minor", ("i", "bVI", "bIII", "bVII"), (-0.8, -0.2), (0.4, 0.9), False),
    Family("i-bVII-bVI-bVII", "minor", ("i", "bVII", "bVI", "bVII"), (-0.7, -0.1), (0.3, 0.7), False),
    Family("i-iv-v-i", "minor", ("i", "iv", "v", "i"), (-0.6, -0.2), (0.2, 0.6), False),
    Family("I-bVII-IV", "rock", ("I", "bVII", "IV", "I"), (0.2, 0.8), (0.6, 1.0), False),
    Family("I-bIII-IV", "rock", ("I", "bIII", "IV", "I"), (-0.3, 0.5), (0.7, 1.0), False),
    Family("12-bar-blues", "blues", ("I", "I", "I", "I", "IV", "IV", "I", "I", "V", "IV", "I", "V"),
           (-0.3, 0.7), (0.4, 0.9), True),
    Family("dorian-vamp", "modal", ("i", "IV", "i", "IV"), (-0.2, 0.6), (0.3, 0.7), False),
    Family("mixolydian-vamp", "modal", ("I", "bVII", "I", "bVII"), (0.1, 0.7), (0.4, 0.8), False),
    # The original listed these two with the same numerals as the families above (its
    # "degrees" were semitone offsets, §6.4). We give them what their names promise: the
    # lament bass (i – v6 – iv6 – V, the bass falling 1–b7–b6–5) and a minor cycle that
    # turns on the dominant, so the minor key is heard, not its relative major.
    Family("grief-descent", "minor", ("i", "v/3", "iv/3", "V"), (-1.0, -0.5), (0.0, 0.4), False),
    Family("melancholy-cycle", "minor", ("i", "iv", "bVI", "V"), (-0.7, -0.2), (0.1, 0.5), False),
)

#: Used when no family's box contains the emotion (the original's legacy templates).
LEGACY: dict[str, tuple[str, ...]] = {
    "grief": ("i", "iv", "i", "V"), "rage": ("i", "bII", "i", "V"), "hope": ("I", "V", "vi", "IV"),
    "peace": ("I", "vi", "IV", "V"), "fear": ("i", "bII", "bVII", "i"), "joy": ("I", "IV", "V", "IV"),
    "longing": ("i", "bVI", "iv", "V"),
}


def _mode_fits(family: Family, minor: bool) -> bool:
    """Whether a family's tonic quality matches the key (so the music stays in its mode)."""
    return ("i" in family.romans) == minor


def choose_family(valence: float, arousal: float, minor: bool, rng: np.random.Generator,
                  exclude: tuple[str, ...] = ()) -> tuple[Family | None, float]:
    """Best-scoring family for (valence, arousal), or ``None`` when none fits (use LEGACY)."""
    best, best_score = None, -999.0
    for fam in FAMILIES:
        noise = rng.uniform(-0.1, 0.1)
        if fam.name in exclude or not _mode_fits(fam, minor):
            continue
        (v0, v1), (a0, a1) = fam.valence, fam.arousal
        if not (v0 <= valence <= v1 and a0 <= arousal <= a1):
            continue
        vc, ac = (v0 + v1) / 2, (a0 + a1) / 2
        score = 1 - (abs(valence - vc) / (v1 - v0) + abs(arousal - ac) / (a1 - a0)) / 2 + noise
        if minor and fam.category in ("minor", "blues", "modal"):
            score += 0.3
        if not minor and fam.category in ("universal", "jazz"):
            score += 0.3
        if score > best_score:
            best, best_score = fam, score
    return best, best_score


def _legacy(valence: float, arousal: float, minor: bool) -> tuple[str, tuple[str, ...]]:
    if minor:
        name = "rage" if arousal > 0.8 else "fear" if arousal > 0.65 else "longing" if valence > -0.4 else "grief"
    else:
        name = "joy" if arousal > 0.7 else "hope" if arousal > 0.4 else "peace"
    return name, LEGACY[name]


def _seventh(chord: Chord) -> Chord:
    quality = {"maj": "maj7", "min": "min7", "dim": "hdim7", "aug": "aug7"}.get(chord.quality, chord.quality)
    return Chord(chord.root, quality, chord.bass)


def plan_progression(plan: Plan, rng: np.random.Generator) -> tuple[list[str], dict]:
    """Roman numerals, one per bar, for the whole piece, plus an explanation.

    Each section picks a family for its own emotion (journeys change emotion per section);
    a chorus that follows a verse with the same emotion takes the second-best family so the
    chorus contrasts. The last bar returns to the tonic (a cadence) unless a rule break
    says otherwise (handled by the rule-break generators).
    """
    romans: list[str] = []
    explanation = {"families": []}
    used: dict[str, str] = {}
    for section in plan.sections:
        emo = section.emotion or plan.emotion
        params = section.params or plan.params
        minor = params.key.is_minor
        exclude: tuple[str, ...] = ()
        if section.name == "chorus" and "verse" in used:
            exclude = (used["verse"],)
        if section.name in used and section.emotion is None:
            fam_name = used[section.name]
            fam = next((f for f in FAMILIES if f.name == fam_name), None)
            cycle = fam.romans if fam else LEGACY.get(fam_name, LEGACY["grief"])
        else:
            fam, _ = choose_family(emo.valence, emo.arousal, minor, rng, exclude)
            if fam is None and exclude:
                fam, _ = choose_family(emo.valence, emo.arousal, minor, rng)
            if fam is None:
                fam_name, cycle = _legacy(emo.valence, emo.arousal, minor)
            else:
                fam_name, cycle = fam.name, fam.romans
            used.setdefault(section.name, fam_name)
        sevenths = bool(fam and fam.sevenths) or emo.intensity > 0.6
        explanation["families"].append({"section": section.name, "start_bar": section.start_bar,
                                        "family": fam_name, "romans": list(cycle), "sevenths": sevenths})
        for k in range(section.bars):
            romans.append(("7:" if sevenths else "") + cycle[k % len(cycle)])
    if romans:
        last = romans[-1].split(":")[-1]
        # the last bar's own key: a journey ends in its last emotion's mode, not its first
        tonic = "i" if plan.params_at_bar(len(romans) - 1).key.is_minor else "I"
        if last != tonic:
            romans[-1] = (romans[-1].split(":")[0] + ":" if ":" in romans[-1] else "") + tonic
        if len(romans) >= 4 and romans[-2].split(":")[-1] not in ("V", "V7", "bVII"):
            # an authentic cadence: the dominant (with the minor key's raised leading tone) before home
            romans[-2] = (romans[-2].split(":")[0] + ":" if ":" in romans[-2] else "") + "V"
        explanation["cadence"] = f"V - {tonic}: the piece comes home at the end"
    return romans, explanation


def build_chords(plan: Plan, romans: list[str], rng: np.random.Generator) -> tuple[list[ChordEvent], list[float]]:
    """Resolve numerals in each bar's key, colour them by the tension curve and voice-lead them."""
    tension = curve(CURVE_FOR_PROFILE.get(plan.profile, "wave"), plan.bars,
                    min(1.0, plan.params.dissonance + 0.4 * plan.emotion.intensity))
    free = plan.rule("HARMONY_ParallelMotion") > 0 or plan.params.dissonance > 0.7
    low = 48 if plan.emotion.valence > -0.5 else 45
    events: list[ChordEvent] = []
    previous = None
    for bar, text in enumerate(romans):
        key = plan.params_at_bar(bar).key
        seventh = text.startswith("7:")
        numeral = text.split(":")[-1]
        chord = roman_to_chord(numeral, key).chord
        if seventh and chord.quality in ("maj", "min", "dim") and not numeral.partition("/")[0].endswith("5"):
            # V and its relatives become dominant sevenths; others take the diatonic seventh
            chord = Chord(chord.root, "7", chord.bass) if numeral in ("V", "bVII") and chord.quality == "maj" \
                else _seventh(chord)
        if bar < len(romans) - 1:
            chord = colour_chord(chord, float(tension[bar]), plan.params.dissonance, rng)
        voicing = voice_chord(chord, previous, low=low, high=low + 28, free=free)
        previous = voicing
        events.append(ChordEvent(bar * plan.bar_ticks, plan.bar_ticks, numeral, chord, voicing, key,
                                 float(tension[bar])))
    return events, [float(t) for t in tension]


#: GM program for the chord (keys) part by profile.
KEYS_PROGRAM = {"grief": 0, "sadness": 0, "nostalgia": 4, "peace": 0, "love": 4, "hope": 0, "joy": 4,
                "anger": 29, "fear": 0, "anxiety": 5, "tension": 5, "neutral": 0}


def comp_track(plan: Plan, rng: np.random.Generator) -> tuple[object, dict]:
    """The keys part: block chords whose rhythm follows arousal (held, halves, quarters, eighths)."""
    from kelly.song import Role, Track
    from kelly.engines.common import note

    arousal = plan.emotion.arousal
    if arousal < 0.35:
        hits = [(0, 1920)]
        style = "held"
    elif arousal < 0.55:
        hits = [(0, 900), (960, 900)]
        style = "halves"
    elif arousal < 0.8:
        hits = [(0, 420), (480, 420), (960, 420), (1440, 420)]
        style = "quarters"
    else:
        hits = [(0, 200), (360, 200), (720, 200), (960, 200), (1320, 200), (1680, 200)]
        style = "syncopated eighths"
    notes = []
    for event in plan.chords:
        bar = event.start // plan.bar_ticks
        if not plan.layer_on("chords", bar):
            continue
        velocity = plan.params_at_bar(bar).velocity
        pattern = hits if plan.section_at_bar(bar).energy >= 0.35 or len(plan.sections) == 1 else [(0, 1920)]
        for offset, length in pattern:
            if offset >= event.duration:
                break
            for p in event.voicing:
                notes.append(note(event.start + offset, p, min(length, event.duration - offset), velocity))
    notes.sort()
    return Track("Chords", KEYS_PROGRAM.get(plan.profile, 0), 1, notes, Role.HARMONY), {"style": style}
