"""The rule-breaking catalogue: 42 rules in 7 categories, and automatic choice from emotion.

Rule ids, descriptions, effects and example emotions are the original DAiW catalogue's
(reference Appendix D); ``use_when`` and ``midi`` are ours. ``midi`` says how Kelly
expresses a rule: ``"generator"`` rules change the notes, tempo map or arrangement
(see :mod:`kelly.intent.rule_generators`); ``"production"`` rules cannot live in MIDI
and become production notes in the explanation JSON.

Automatic choice follows the original C++ RuleBreakEngine (§5.1): its conditions on
valence, arousal, intensity and family, and its severity formula
``s = base·(0.5 + 0.5·i)`` (×1.3 above i = 0.8, ×1.2 above 0.95, clamped to 1). Its
seven coarse types are mapped onto catalogue rules so each break is audible.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from kelly.emotion.state import EmotionState
from kelly.errors import InputError

CATEGORIES = ("harmony", "rhythm", "arrangement", "production", "melody", "texture", "temporal")


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    description: str
    effect: str
    use_when: str
    example_emotions: tuple[str, ...]
    midi: str  # "generator" | "production"

    @property
    def short(self) -> str:
        return self.id.split("_", 1)[1]

    def to_dict(self) -> dict:
        return {"id": self.id, "category": self.category, "description": self.description, "effect": self.effect,
                "use_when": self.use_when, "example_emotions": list(self.example_emotions), "midi": self.midi}


def _r(rid, desc, effect, use_when, emotions, midi="generator") -> Rule:
    return Rule(rid, rid.split("_", 1)[0].lower(), desc, effect, use_when, tuple(emotions), midi)


RULES: tuple[Rule, ...] = (
    _r("HARMONY_AvoidTonicResolution", "Resolve to IV or VI instead of I", "Unresolved, yearning feeling",
       "the story is not over; the listener should be left leaning forward", ("longing", "grief", "uncertainty")),
    _r("HARMONY_ParallelMotion", "Use forbidden parallel 5ths/octaves", "Vintage, punk, or medieval sound",
       "power and bluntness matter more than polish", ("defiance", "anger", "power")),
    _r("HARMONY_ModalInterchange", "Borrow chord from unrelated key", "Unexpected color, emotional shift",
       "joy with a shadow, or sadness with a light in it", ("bittersweet", "nostalgia", "hope")),
    _r("HARMONY_TritoneSubstitution", "Replace V7 with bII7", "Jazz sophistication, chromatic movement",
       "the dominant should slide rather than push", ("sophistication", "complexity")),
    _r("HARMONY_Polytonality", "Stack chords from different keys", "Tension, complexity, disorientation",
       "two feelings pull in different directions at once", ("confusion", "conflict", "chaos")),
    _r("HARMONY_UnresolvedDissonance", "Leave 7ths, 9ths, tritones unresolved", "Lingering tension, incompleteness",
       "an ache that does not go away", ("grief", "longing", "uncertainty")),
    _r("RHYTHM_ConstantDisplacement", "Shift pattern one 16th note late/early", "Perpetually off-kilter, unsettling",
       "the ground should feel slightly wrong under the feet", ("anxiety", "unease", "anticipation")),
    _r("RHYTHM_TempoFluctuation", "Gradual ±5 BPM drift over phrase", "Organic breathing, tension/release",
       "a human, unsteady pulse — rubato", ("intimacy", "vulnerability")),
    _r("RHYTHM_MetricModulation", "Temporarily change implied time signature", "Disorientation, complexity",
       "a turn in the story needs the floor to tilt", ("confusion", "transformation")),
    _r("RHYTHM_PolyrhythmicLayers", "Layer conflicting rhythmic patterns", "Complexity, tension, richness",
       "several thoughts at once, none giving way", ("complexity", "internal conflict")),
    _r("RHYTHM_DroppedBeats", "Remove expected beats/hits", "Surprise, space, emphasis",
       "a catch in the breath; a missing step", ("shock", "emphasis", "breath")),
    _r("ARRANGEMENT_UnbalancedDynamics", "Keep element too loud/quiet for standard", "Intentional imbalance, focus shift",
       "one thought drowns out everything else", ("obsession", "imbalance")),
    _r("ARRANGEMENT_StructuralMismatch", "Use unexpected structure for genre", "Subverted expectations, uniqueness",
       "the feeling refuses the usual verse–chorus path", ("defiance", "uniqueness")),
    _r("ARRANGEMENT_BuriedVocals", "Place vocals below instruments", "Intimacy, dissociation, texture",
       "the voice should be felt more than heard", ("dissociation", "intimacy", "dreams")),
    _r("ARRANGEMENT_ExtremeDynamicRange", "Exceed normal dynamic limits", "Dramatic impact, contrast",
       "whisper to scream; release after holding back", ("catharsis", "revelation")),
    _r("ARRANGEMENT_PrematureClimax", "Put peak earlier than expected", "Subversion, reflection time",
       "the event has already happened; the rest is aftermath", ("aftermath", "reflection")),
    _r("PRODUCTION_ExcessiveMud", "Leave 200-400Hz buildup", "Weight, claustrophobia, heaviness",
       "the room should feel too small", ("trapped", "heavy", "suffocating"), "production"),
    _r("PRODUCTION_PitchImperfection", "Leave natural pitch drift", "Emotional honesty, vulnerability",
       "truth matters more than tuning", ("vulnerability", "honesty", "rawness"), "production"),
    _r("PRODUCTION_RoomNoise", "Keep ambient room sound", "Authenticity, intimacy, place",
       "the listener should be in the room", ("intimacy", "authenticity"), "production"),
    _r("PRODUCTION_Distortion", "Allow clipping/saturation", "Aggression, urgency, damage",
       "the feeling is too big for the signal", ("anger", "damage", "intensity"), "production"),
    _r("PRODUCTION_MonoCollapse", "Intentionally narrow stereo field", "Claustrophobia, focus, intimacy",
       "the world closes in", ("pressure", "focus", "isolation"), "production"),
    _r("PRODUCTION_LoFiDegradation", "Add tape hiss, bit crush, sample rate reduction",
       "Nostalgia, memory, distance from reality", "a memory seen through worn tape",
       ("nostalgia", "memory", "dissociation"), "production"),
    _r("PRODUCTION_SilenceAsInstrument", "Use dramatic silence/dropouts mid-phrase",
       "Shock, breath, emphasis through absence", "what is not played says the most",
       ("shock", "contemplation", "weight")),
    _r("PRODUCTION_ClippingPeaks", "Allow transients to clip intentionally", "Urgency, damage, rawness",
       "rage that breaks the frame", ("rage", "desperation", "breaking"), "production"),
    _r("MELODY_AvoidResolution", "End phrases on non-tonic tones", "Incompleteness, searching, yearning",
       "the question stays open", ("longing", "uncertainty", "searching")),
    _r("MELODY_ExcessiveRepetition", "Repeat melodic cell obsessively", "Hypnotic, obsessive, ritualistic",
       "a thought that loops and will not let go", ("obsession", "anxiety", "ritual")),
    _r("MELODY_AngularIntervals", "Use wide, awkward interval leaps", "Discomfort, unease, otherness",
       "the voice cannot find a comfortable place", ("alienation", "confusion", "discord")),
    _r("MELODY_AntiClimax", "Build up then resolve downward/weakly", "Disappointment, deflation, anticlimax",
       "the hoped-for moment does not arrive", ("disappointment", "resignation", "deflation")),
    _r("MELODY_MonotoneDrone", "Minimal melodic movement, near-monotone", "Numbness, dissociation, meditation",
       "feeling has gone flat, or the mind is stilled", ("numbness", "dissociation", "meditation")),
    _r("MELODY_FragmentedPhrases", "Break melody into disconnected fragments", "Fractured thought, interrupted speech",
       "words keep breaking off", ("trauma", "confusion", "fragmentation")),
    _r("TEXTURE_FrequencyMasking", "Let elements fight for same frequencies", "Crowded, competitive, overwhelming",
       "too much at once, all in the same space", ("overwhelm", "conflict", "noise")),
    _r("TEXTURE_SparseEmptiness", "Extreme space between elements", "Isolation, exposure, vulnerability",
       "one person alone in a large room", ("isolation", "vulnerability", "exposure")),
    _r("TEXTURE_DenseWall", "Stack elements into undifferentiated mass", "Overwhelming force, loss of self",
       "surrender to something bigger", ("catharsis", "surrender", "power")),
    _r("TEXTURE_ConflictingTimbres", "Combine timbres that traditionally clash", "Dissonance, wrongness, tension",
       "something is out of place", ("conflict", "dissonance", "wrongness")),
    _r("TEXTURE_SingleElementFocus", "Strip away all but one element", "Stark truth, nowhere to hide",
       "the plain truth, nothing around it", ("honesty", "revelation", "nakedness")),
    _r("TEXTURE_TimbralDrift", "Gradually morph timbre over time", "Transformation, unease, evolution",
       "slow change that is felt before it is noticed", ("transformation", "unease", "evolution")),
    _r("TEMPORAL_ExtendedIntro", "Unusually long intro before main content",
       "Anticipation, world-building, patience test", "the listener must wait with you",
       ("anticipation", "dread", "patience")),
    _r("TEMPORAL_AbruptEnding", "End suddenly without resolution", "Shock, incompleteness, cut-off",
       "it ended without warning", ("shock", "loss", "abruptness")),
    _r("TEMPORAL_TimeStretch", "Stretch or compress time perception", "Altered reality, time distortion",
       "time moves wrongly: dream, trauma, dissociation", ("dissociation", "dream", "unreality")),
    _r("TEMPORAL_LoopHypnosis", "Loop beyond comfortable repetition", "Hypnotic, meditative, obsessive",
       "trance; the loop is the point", ("trance", "obsession", "meditation")),
    _r("TEMPORAL_BreathPauses", "Insert pauses like held breath", "Tension, anticipation, human feel",
       "gathering courage before the next line", ("anticipation", "courage", "hesitation")),
    _r("TEMPORAL_AccelerandoDecay", "Speed up then decay/fall apart", "Panic, collapse, exhaustion",
       "running until there is nothing left", ("panic", "exhaustion", "surrender")),
)
RULES_BY_ID = {r.id: r for r in RULES}
_LOWER = {r.id.lower(): r.id for r in RULES} | {r.short.lower(): r.id for r in RULES}


def get_rule(name: str) -> Rule:
    """Look a rule up by id (``HARMONY_ModalInterchange``) or short name (``ModalInterchange``), any case."""
    key = (name or "").strip().replace("-", "").replace(" ", "").lower()
    for cand in (key, key.replace("_", "")):
        if cand in _LOWER:
            return RULES_BY_ID[_LOWER[cand]]
    near = difflib.get_close_matches(key, list(_LOWER), n=3, cutoff=0.5)
    hint = f"; did you mean: {', '.join(_LOWER[n] for n in near)}" if near else "; `kelly rules` lists them"
    raise InputError(f"unknown rule {name!r}{hint}")


def rules_for_emotion(emotion: str) -> list[Rule]:
    """Rules whose example emotions appear in ``emotion`` (DAiW suggest_rule_break: 'grief' →
    AvoidTonicResolution, UnresolvedDissonance)."""
    text = (emotion or "").lower()
    return [r for r in RULES if any(e in text for e in r.example_emotions)]


def severity(base: float, intensity: float) -> float:
    """RuleBreakEngine severity (§5.1): base·(0.5 + 0.5i), ×1.3 if i > 0.8, ×1.2 if i > 0.95, clamped."""
    s = base * (0.5 + 0.5 * intensity)
    if intensity > 0.8:
        s = min(1.0, s * 1.3)
    if intensity > 0.95:
        s = min(1.0, s * 1.2)
    return min(1.0, max(0.0, s))


def automatic_rule_breaks(state: EmotionState) -> dict[str, dict]:
    """Rule breaks the emotion calls for, with severity and the reason (§5.1 conditions).

    The C++ types map to catalogue rules: ModalMixture → HARMONY_ModalInterchange (and
    HARMONY_UnresolvedDissonance for the strongest grief), CrossRhythm →
    RHYTHM_ConstantDisplacement, DynamicContrast → ARRANGEMENT_ExtremeDynamicRange,
    HarmonicAmbiguity → HARMONY_UnresolvedDissonance or TEXTURE_SparseEmptiness (silence
    and fragmentation), RegisterShift → MELODY_AngularIntervals. The strongest severity
    wins when several conditions name the same rule.
    """
    v, a, i, fam = state.valence, state.arousal, state.intensity, state.family.lower()
    found: dict[str, dict] = {}

    def add(rule: str, base: float, why: str) -> None:
        s = severity(base, i)
        if s <= 0:
            return
        if rule not in found or found[rule]["severity"] < s:
            found[rule] = {"severity": round(s, 4), "why": why}

    if v < -0.3:
        add("HARMONY_ModalInterchange", abs(v), f"valence {v:+.2f} < -0.3: borrowed chords darken the harmony")
    if v < -0.7 and i > 0.7:
        add("HARMONY_UnresolvedDissonance", 0.9, "very negative and intense: dissonance left hanging")
    if a > 0.7 and v < 0:
        # never for positive feelings: euphoria wants its downbeats where they belong
        add("RHYTHM_ConstantDisplacement", a, f"arousal {a:.2f} > 0.7 with negative valence: displaced accents")
    if a > 0.85 and i > 0.8:
        add("RHYTHM_PolyrhythmicLayers", 0.95, "very high arousal and intensity: conflicting rhythmic layers")
    if a < 0.4 and i > 0.7:
        add("RHYTHM_TempoFluctuation", 0.4, "low arousal, high intensity: rubato")
    if i > 0.7:
        add("ARRANGEMENT_ExtremeDynamicRange", i, f"intensity {i:.2f} > 0.7: dynamic contrast")
    if fam == "sadness" and i > 0.7:
        add("HARMONY_AvoidTonicResolution", 0.8 * i, "intense sadness: the harmony does not come home")
    if fam == "anger":
        add("HARMONY_ParallelMotion", i, "anger: blunt parallel power chords")
    if a > 0.75 and i > 0.7:
        add("TEXTURE_DenseWall", 0.8 * a, "high arousal and intensity: layers collide")
    if a < 0.3 and v < -0.3:
        add("TEXTURE_SparseEmptiness", abs(v), "low arousal, negative valence: silence and fragmentation")
    if i > 0.8:
        add("MELODY_AngularIntervals", i, f"intensity {i:.2f} > 0.8: wide leaps")
    if fam == "fear" and a > 0.7 and v < 0:
        add("RHYTHM_ConstantDisplacement", a, "fear: the ground shifts")
    return found
