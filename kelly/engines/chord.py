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
from kelly.theory.modal import CADENCE_CHORD, diatonic_quality, fit_to_mode, world_for
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
    mode: str | None = None  # a modal family belongs to one mode and is preferred there


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
    Family("dorian-vamp", "modal", ("i", "IV", "i", "IV"), (-0.5, 0.6), (0.3, 1.0), False, "dorian"),
    Family("dorian-climb", "modal", ("i", "IV", "bVII", "i"), (-0.5, 0.6), (0.3, 1.0), False, "dorian"),
    # Modal families keep the tonic on at least half the bars and the colour chord on one: a mode
    # is heard against its tonic (I-bVII-I-bVII is heard as the parent major's V-I).
    Family("mixolydian-vamp", "modal", ("I", "I", "bVII", "I"), (0.0, 1.0), (0.0, 1.0), False, "mixolydian"),
    Family("mixolydian-turn", "modal", ("I", "vi", "bVII", "I"), (0.0, 1.0), (0.0, 1.0), False, "mixolydian"),
    # Modes the mapping chooses for the brightest and the darkest high-arousal feelings get
    # families that carry their colour: lydian's major II (the raised fourth), phrygian's bII.
    Family("lydian-lift", "modal", ("I", "II", "I", "I"), (0.3, 1.0), (0.5, 1.0), False, "lydian"),
    Family("lydian-float", "modal", ("I", "iii", "II", "I"), (0.3, 1.0), (0.5, 1.0), False, "lydian"),
    Family("phrygian-vamp", "modal", ("i", "bII", "i", "i"), (-1.0, -0.2), (0.5, 1.0), False, "phrygian"),
    Family("phrygian-drive", "modal", ("i", "bII", "i", "bvii"), (-1.0, -0.2), (0.5, 1.0), False, "phrygian"),
    # The original listed these two with the same numerals as the families above (its
    # "degrees" were semitone offsets, §6.4). We give them what their names promise: the
    # lament bass (i – bVII – bVI – V, the bass falling 1–b7–b6–5: the Andalusian form, which
    # keeps the minor tonic heard; i – v6 – iv6 – V put a C-rooted chord on every other bar of
    # F minor and was heard as C major) and a minor cycle that
    # turns on the dominant, so the minor key is heard, not its relative major.
    Family("grief-descent", "minor", ("i", "bVII", "bVI", "V"), (-1.0, -0.5), (0.0, 0.4), False),
    Family("melancholy-cycle", "minor", ("i", "iv", "bVI", "V"), (-0.7, -0.2), (0.1, 0.5), False),
)

#: Used when no family's box contains the emotion (the original's legacy templates).
LEGACY: dict[str, tuple[str, ...]] = {
    "grief": ("i", "iv", "i", "V"), "rage": ("i", "bII", "i", "V"), "hope": ("I", "V", "vi", "IV"),
    "peace": ("I", "vi", "IV", "V"), "fear": ("i", "bII", "bVII", "i"), "joy": ("I", "IV", "V", "IV"),
    "longing": ("i", "bVI", "iv", "V"),
}


def _mode_fits(family: Family, key) -> bool:
    """Whether a family belongs in ``key``'s mode.

    Its tonic quality must match the key; a modal family only plays in its own mode; and
    no numeral may turn into a diminished chord once fitted to the mode (``IV`` in
    lydian is ♯iv°: that family is not for lydian).
    """
    minor = key.is_minor
    if ("i" in family.romans) != minor:
        return False
    if family.mode is not None:
        return family.mode == key.mode
    for numeral in set(family.romans):
        chord = fit_to_mode(roman_to_chord(numeral, key).chord, key)
        if chord.quality in ("dim", "hdim7", "dim7"):
            return False
    return True


def choose_family(valence: float, arousal: float, key, rng: np.random.Generator,
                  exclude: tuple[str, ...] = ()) -> tuple[Family | None, float]:
    """Best-scoring family for (valence, arousal) in ``key``'s mode, or ``None`` when none fits (use LEGACY).

    ``key`` may be a :class:`~kelly.theory.scales.Key` or, as before, a bool (minor).
    A modal family in its own mode scores +0.6, which puts modal pieces on progressions
    that carry their mode's colour.
    """
    if isinstance(key, bool):
        from kelly.theory.scales import Key

        key = Key("C", "aeolian" if key else "ionian")
    minor = key.is_minor
    best, best_score = None, -999.0
    for fam in FAMILIES:
        noise = rng.uniform(-0.1, 0.1)
        if fam.name in exclude or not _mode_fits(fam, key):
            continue
        (v0, v1), (a0, a1) = fam.valence, fam.arousal
        if not (v0 <= valence <= v1 and a0 <= arousal <= a1) and fam.mode is None:
            continue  # a modal family plays wherever its mode is chosen (a --key can ask for any mode)
        vc, ac = (v0 + v1) / 2, (a0 + a1) / 2
        score = 1 - (abs(valence - vc) / (v1 - v0) + abs(arousal - ac) / (a1 - a0)) / 2 + noise
        if minor and fam.category in ("minor", "blues", "modal"):
            score += 0.3
        if not minor and fam.category in ("universal", "jazz"):
            score += 0.3
        if fam.mode is not None and fam.mode == key.mode:
            score += 0.6
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


def _phrase_lengths(bars: int) -> list[int]:
    """A section's phrases: fours; a remainder of one or two bars lengthens the last phrase, three is a phrase."""
    if bars <= 4:
        return [bars]
    out = [4] * (bars // 4)
    rest = bars % 4
    if rest == 1 or rest == 2 and len(out) >= 1:
        out[-1] += rest  # a five- or six-bar phrase rather than a fragment
    elif rest:
        out.append(rest)
    return out


def _cadence_numerals(key) -> tuple[str, str]:
    """(pre-final, final) numerals of the cadence that keeps ``key``'s mode (see :data:`CADENCE_CHORD`)."""
    return CADENCE_CHORD.get(key.mode, "V"), ("i" if key.is_minor else "I")


def _section_romans(section, cycle: tuple[str, ...], sevenths: bool, plan: Plan) -> tuple[list[str], list]:
    """One section's numerals, bar by bar, with half and authentic cadences at its phrase ends.

    Phrases are four bars (:func:`_phrase_lengths`). The first phrase of each pair ends
    on the mode's cadence chord (a half cadence: the music pauses on the dominant, or
    on the chord that carries a modal piece's colour); the second, and the section's
    last phrase, close with that chord and the tonic (an authentic cadence). Families
    longer than four bars (the twelve-bar blues) carry their own turnaround and keep it.
    """
    romans = [cycle[k % len(cycle)] for k in range(section.bars)]
    cadences: list = [None] * section.bars
    if len(cycle) <= 4:
        k0 = 0
        lengths = _phrase_lengths(section.bars)
        for j, n in enumerate(lengths):
            key = plan.params_at_bar(section.start_bar + k0 + n - 1).key
            pre, tonic = _cadence_numerals(key)
            authentic = j % 2 == 1 or j == len(lengths) - 1
            own_close = romans[k0 + n - 1].partition("/")[0] in ("V", "v", "bVII", "bII", "II", "IV")
            if n >= 3 and authentic or n == 2 and authentic and section.end_bar == plan.bars:
                phrase = romans[k0:k0 + n]
                held = 0
                while held < n - 1 and phrase[n - 1 - held] == tonic:
                    held += 1
                if not (held >= 1 and phrase[n - 1 - held].partition("/")[0] == pre):
                    # the family does not already close pre -> tonic (ii-V-I-I does): write the cadence
                    romans[k0 + n - 2], romans[k0 + n - 1] = pre, tonic
                cadences[k0 + n - 1] = "authentic"
            elif n >= 3 and key.mode in ("ionian", "aeolian"):
                # a half cadence, unless the family already pauses on a dominant-like chord (too many
                # dominants and a minor key is heard as its dominant's major); modal vamps have none
                if not own_close:
                    romans[k0 + n - 1] = pre
                cadences[k0 + n - 1] = "half"
            k0 += n
    return [("7:" if sevenths else "") + r for r in romans], cadences


def plan_progression(plan: Plan, rng: np.random.Generator) -> tuple[list[str], dict]:
    """Roman numerals, one per bar, for the whole piece, plus an explanation.

    Each section picks a family for its own emotion (journeys change emotion per section);
    a chorus that follows a verse with the same emotion takes the second-best family so the
    chorus contrasts. A section that comes back (the second verse, every chorus) restates
    its first statement's numerals exactly, so the listener recognises it. Phrases end in
    half and authentic cadences in the bar's mode (:func:`_section_romans`); the piece
    ends on the tonic unless a rule break says otherwise (the rule-break generators).
    The bar-by-bar cadence marks are in ``explanation["cadences"]``.
    """
    romans: list[str] = []
    cadences: list = []
    explanation: dict = {"families": []}
    used: dict[str, str] = {}
    statements: dict[str, tuple[list[str], list, list[bool]]] = {}
    jazz: list[bool] = []
    for section in plan.sections:
        emo = section.emotion or plan.emotion
        params = section.params or plan.params
        key = params.key
        if section.emotion is None and section.name in statements and \
                len(statements[section.name][0]) == section.bars:
            sec_romans, sec_cad, _ = statements[section.name]
            explanation["families"].append({"section": section.name, "start_bar": section.start_bar,
                                            "family": used[section.name], "restates": True})
            romans.extend(sec_romans)
            cadences.extend(sec_cad)
            jazz.extend(statements[section.name][2])
            continue
        exclude: tuple[str, ...] = ()
        if section.name == "chorus" and "verse" in used:
            exclude = (used["verse"],)
        if section.name in used and section.emotion is None:
            fam_name = used[section.name]
            fam = next((f for f in FAMILIES if f.name == fam_name), None)
            cycle = fam.romans if fam else LEGACY.get(fam_name, LEGACY["grief"])
        else:
            fam, _ = choose_family(emo.valence, emo.arousal, key, rng, exclude)
            if fam is None and exclude:
                fam, _ = choose_family(emo.valence, emo.arousal, key, rng)
            if fam is None:
                fam_name, cycle = _legacy(emo.valence, emo.arousal, key.is_minor)
            else:
                fam_name, cycle = fam.name, fam.romans
            used.setdefault(section.name, fam_name)
        sevenths = bool(fam and fam.sevenths) or emo.intensity > 0.8 or plan.complexity >= 0.75
        if plan.complexity < 0.3:
            sevenths = False
        sec_romans, sec_cad = _section_romans(section, cycle, sevenths, plan)
        if plan.hints_at_bar(section.start_bar) is not None:
            from kelly.engines.ml_hints import reweight_progression

            sec_romans = reweight_progression(sec_romans, plan, plan.hints_at_bar(section.start_bar), rng,
                                              offset=section.start_bar,
                                              fixed=[c is not None or (k + 1 < len(sec_cad) and sec_cad[k + 1])
                                                     for k, c in enumerate(sec_cad)])
        statements.setdefault(section.name, (sec_romans, sec_cad, [bool(fam and fam.category == "jazz")] *
                                             section.bars))
        explanation["families"].append({"section": section.name, "start_bar": section.start_bar,
                                        "family": fam_name, "romans": list(cycle), "sevenths": sevenths})
        romans.extend(sec_romans)
        cadences.extend(sec_cad)
        jazz.extend([bool(fam and fam.category == "jazz")] * section.bars)
    if romans:
        # the last bar's own key: a journey ends in its last emotion's mode, not its first
        pre, tonic = _cadence_numerals(plan.params_at_bar(len(romans) - 1).key)
        prefix = romans[-1].split(":")[0] + ":" if ":" in romans[-1] else ""
        romans[-1] = prefix + tonic
        if len(romans) >= 2:
            romans[-2] = (romans[-2].split(":")[0] + ":" if ":" in romans[-2] else "") + pre
        cadences[-1] = "authentic"
        if len(romans) >= 2 and cadences[-2] == "half":
            cadences[-2] = None
    explanation["cadences"] = cadences
    explanation["jazz_bars"] = jazz
    return romans, explanation


def confirm_cadences(romans: list[str], cadences: list, plan: Plan) -> list:
    """The cadence marks that still hold once rule breaks and a journey's pivots have rewritten numerals.

    An authentic cadence must end on the bar's tonic after its cadence chord (or the
    dominant); a half cadence must rest on the cadence chord or the dominant. A mark whose
    chords were rewritten (a final bVI from HARMONY_AvoidTonicResolution, a pivot V) is dropped.
    """
    out = list(cadences)
    for bar, mark in enumerate(cadences):
        if mark is None:
            continue
        key = plan.params_at_bar(bar).key
        pre, tonic = _cadence_numerals(key)
        head = romans[bar].split(":")[-1].partition("/")[0]
        before = romans[bar - 1].split(":")[-1].partition("/")[0] if bar else ""
        if mark == "authentic" and not (head == tonic and before in (pre, "V", "V7", tonic)):
            out[bar] = None
        elif mark == "half" and head not in (pre, "V", "V7", "v"):
            out[bar] = None
    return out


def _fit(numeral: str, key, *, deliberate: bool) -> Chord:
    """The chord a numeral names in ``key``: the mode's own quality unless the chord is borrowed on purpose."""
    chord = roman_to_chord(numeral, key).chord
    if not deliberate:
        chord = fit_to_mode(chord, key)
    return chord


#: Tonics whose keys are written with flats (a passing chord's root is spelled to match).
_FLAT_TONICS = ("F", "Bb", "Eb", "Ab", "Db", "Gb", "Cb")


def _split_point(plan: Plan) -> int:
    """Where a bar with two chords changes: half way in duple metres, after two beats in 3/4."""
    return 2 * plan.beat_ticks if plan.meter == (3, 4) else plan.bar_ticks // 2


def _predominant(key) -> str:
    """The chord before a cadence chord in a split bar: ii (major modes) or iv (minor modes), fitted to the mode."""
    return "iv" if key.is_minor else "ii"


def build_chords(plan: Plan, romans: list[str], rng: np.random.Generator, *,
                 deliberate: set[int] = frozenset(), cadences: list | None = None,
                 ceiling=None, jazz_bars: list[bool] | None = None) -> tuple[list[ChordEvent], list[float]]:
    """Resolve numerals in each bar's key and mode, colour them by the tension curve, voice-lead them.

    ``deliberate`` holds the bars whose numerals a rule break chose (a borrowing the
    listener should hear, kept as written); every other chord takes its quality from the
    bar's mode (:func:`kelly.theory.modal.fit_to_mode`). The minor dominant of an
    aeolian cadence is kept (harmonic minor's leading tone). Each event carries the
    harmonic world of its moment (:func:`kelly.theory.modal.world_for`). With
    complexity above 0.6 the bar before an authentic cadence splits into a predominant
    and the cadence chord (faster harmonic rhythm); above 0.8 half cadences split too.
    ``ceiling(bar)`` gives the highest pitch a voicing may reach (below the melody).
    """
    cadences = confirm_cadences(romans, cadences or [None] * len(romans), plan)
    tension = curve(CURVE_FOR_PROFILE.get(plan.profile, "wave"), plan.bars,
                    min(1.0, plan.params.dissonance + 0.4 * plan.emotion.intensity))
    free = plan.rule("HARMONY_ParallelMotion") > 0 or plan.params.dissonance > 0.7
    colour_p = 0.0 if plan.complexity < 0.3 else min(1.0, 0.25 + 0.85 * plan.complexity)
    events: list[ChordEvent] = []
    previous = None
    colours: dict[tuple, Chord] = {}
    jazz_bars = jazz_bars or [False] * len(romans)
    for bar, text in enumerate(romans):
        key = plan.params_at_bar(bar).key
        numeral = text.split(":")[-1]
        # the tonic stays a triad outside jazz: a mixolydian I7 or lydian Imaj7 pulls the ear to another key
        seventh = text.startswith("7:") and (numeral not in ("I", "i") or jazz_bars[bar])
        keep = bar in deliberate or (numeral == "V" and key.mode == "aeolian")
        chord = _fit(numeral, key, deliberate=keep)
        if seventh and chord.quality in ("maj", "min", "dim") and not numeral.partition("/")[0].endswith("5"):
            # V and its relatives become dominant sevenths; others take the diatonic seventh
            chord = Chord(chord.root, "7", chord.bass) if numeral in ("V", "bVII") and chord.quality == "maj" \
                else _seventh(chord)
            if not keep:
                chord = fit_to_mode(chord, key)
        if bar < len(romans) - 1 and cadences[bar] is None and rng.random() < colour_p:
            # the same numeral in the same key takes the same colour, so restated sections sound the same
            ck = (numeral, seventh, key, plan.section_at_bar(bar).name)
            if ck not in colours:
                colours[ck] = colour_chord(chord, float(tension[bar]), plan.params.dissonance, rng)
            coloured = colours[ck]
            chord = coloured if keep else fit_to_mode(coloured, key)
        top = ceiling(bar) if ceiling else 76
        low = max(40, min(48 if plan.emotion.valence > -0.5 else 45, top - 16))
        start = bar * plan.bar_ticks
        split = (cadences[bar + 1] if bar + 1 < len(cadences) else None) if bar + 1 < len(romans) else None
        halves = []
        if cadences[bar] is None and (split == "authentic" and plan.complexity > 0.6
                                      or split == "half" and plan.complexity > 0.8):
            pre_chord = fit_to_mode(roman_to_chord(_predominant(key), key).chord, key)
            if pre_chord.root_pc != chord.root_pc:
                first = _split_point(plan)
                halves = [(_predominant(key), pre_chord, first), (numeral, chord, plan.bar_ticks - first)]
        if not halves and plan.complexity > 0.8 and cadences[bar] is None and bar + 1 < len(romans):
            # faster harmonic rhythm: the bar's second half approaches the next chord from a fifth above
            # (the same decision for the same bar of a restated section)
            sk = ("passing", plan.section_at_bar(bar).name, bar - plan.section_at_bar(bar).start_bar)
            if sk not in colours:
                colours[sk] = rng.random() < (plan.complexity - 0.7) * 2.5
            nxt_key = plan.params_at_bar(bar + 1).key
            nxt_root = roman_to_chord(romans[bar + 1].split(":")[-1], nxt_key).chord.root_pc
            approach = (nxt_root + 7) % 12
            quality = diatonic_quality(key, approach)
            if colours[sk] and quality in ("maj", "min") and approach not in (chord.root_pc, nxt_root):
                from kelly.theory.pitch import pc_name

                passing = Chord(pc_name(approach, flats=key.tonic in _FLAT_TONICS or "b" in key.tonic), quality)
                first = _split_point(plan)
                halves = [(numeral, chord, first), ("passing", passing, plan.bar_ticks - first)]
        if not halves:
            halves = [(numeral, chord, plan.bar_ticks)]
        offset = 0
        for num, ch, dur in halves:
            # a dorian tonic doubles its third: against dorian's major IV, the minor third is what tells
            # the mode from major (in aeolian a doubled third pulls the ear to the relative major)
            third = (ch.root_pc + 3) % 12 if ch.root_pc == key.tonic_pc and ch.quality in ("min", "5") \
                and key.mode == "dorian" else None
            voicing = voice_chord(ch, previous, low=low, high=max(low + 12, top), free=free,
                                  double=third if ch.quality == "min" else None)
            previous = voicing
            scale, borrowed = world_for(key, ch)
            events.append(ChordEvent(start + offset, dur, num, ch, voicing, key, float(tension[bar]),
                                     scale=scale, borrowed_from=borrowed,
                                     cadence=cadences[bar] if offset + dur == plan.bar_ticks else None))
            offset += dur
    return events, [float(t) for t in tension]


#: GM program for the chord (keys) part by profile.
KEYS_PROGRAM = {"grief": 0, "sadness": 0, "nostalgia": 4, "peace": 0, "love": 4, "hope": 0, "joy": 4,
                "anger": 29, "fear": 0, "anxiety": 5, "tension": 5, "neutral": 0}


def comp_track(plan: Plan, rng: np.random.Generator) -> tuple[object, dict]:
    """The keys part: block chords whose rhythm follows arousal (held, halves, quarters, eighths)."""
    from kelly.song import Role, Track
    from kelly.engines.common import note

    arousal = plan.emotion.arousal
    bar, q = plan.bar_ticks, plan.ppq
    if plan.meter == (3, 4):
        # the waltz: the bass takes beat one, the keys answer on two and three (held when calm)
        hits, style = ([(0, bar)], "held") if arousal < 0.35 else ([(q, q - 60), (2 * q, q - 60)], "waltz")
    elif plan.compound:
        # 6/8: a lilt of dotted quarters, or the rocking eighths of a lullaby
        beat = plan.beat_ticks
        hits, style = ([(0, beat - 40), (beat, beat - 40)], "dotted quarters") if arousal < 0.5 else \
            ([(k * q // 2, q // 2 - 30) for k in range(plan.steps // 2) if k % 3], "rocking eighths")
    elif arousal < 0.35:
        hits = [(0, bar)]
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
        pattern = hits if plan.section_at_bar(bar).energy >= 0.35 or len(plan.sections) == 1 \
            else [(0, plan.bar_ticks)]
        for offset, length in pattern:
            if offset >= event.duration:
                break
            for p in event.voicing:
                notes.append(note(event.start + offset, p, min(length, event.duration - offset), velocity))
    notes.sort()
    return Track("Chords", KEYS_PROGRAM.get(plan.profile, 0), 1, notes, Role.HARMONY), {"style": style}
