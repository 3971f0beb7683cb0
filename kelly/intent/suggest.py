"""A full palette for an emotion: modes, tempo range, density, textures and rules to break.

This is DAiW's ``suggest_full_palette`` (reference §5.2, §3.7): the AFFECT_MODE_MAP table of
14 affects (modes, tempo range, density), the emotion → texture suggestions, and the
rule-breaking catalogue's matches. An emotion that is not one of the 14 affects is placed
by its valence and arousal (thesaurus name, or the text reader for free text) next to the
nearest affect, so every word gets an answer, and the answer says how it was found.
"""

from __future__ import annotations

#: affect → (modes, (tempo lo, hi), density, valence, arousal). Modes/tempo/density are §3.7's;
#: the (valence, arousal) anchors are Kelly's, used only to place other emotions.
AFFECT_MODE_MAP: dict[str, tuple[tuple[str, ...], tuple[int, int], str, float, float]] = {
    "grief": (("Aeolian", "Phrygian"), (50, 80), "Sparse", -0.8, 0.25),
    "longing": (("Dorian", "Mixolydian"), (60, 90), "Sparse", -0.3, 0.35),
    "defiance": (("Phrygian", "Locrian"), (100, 140), "Full", -0.2, 0.75),
    "hope": (("Ionian", "Lydian"), (90, 120), "Moderate", 0.6, 0.55),
    "rage": (("Phrygian", "Locrian"), (120, 180), "Dense", -0.8, 0.95),
    "tenderness": (("Ionian", "Lydian"), (60, 85), "Sparse", 0.6, 0.25),
    "anxiety": (("Locrian", "Phrygian"), (90, 130), "Moderate", -0.5, 0.75),
    "euphoria": (("Ionian", "Lydian"), (120, 150), "Full", 0.9, 0.9),
    "melancholy": (("Aeolian", "Dorian"), (60, 90), "Sparse", -0.5, 0.3),
    "nostalgia": (("Mixolydian", "Dorian"), (70, 100), "Moderate", 0.1, 0.4),
    "catharsis": (("Aeolian", "Phrygian"), (80, 130), "Dense", -0.1, 0.85),
    "dissociation": (("Lydian", "Locrian"), (60, 90), "Sparse", -0.3, 0.15),
    "determination": (("Ionian", "Mixolydian"), (100, 130), "Full", 0.5, 0.7),
    "surrender": (("Aeolian", "Dorian"), (50, 75), "Sparse", -0.4, 0.15),
}

#: affect → imagery textures that suit it (DAiW's emotion→texture, e.g. grief → Murky, Skeletal, Ethereal).
AFFECT_TEXTURES: dict[str, tuple[str, ...]] = {
    "grief": ("Murky", "Skeletal", "Ethereal"), "longing": ("Ethereal", "Intimate"),
    "defiance": ("Harsh", "Massive"), "hope": ("Crystalline", "Lush"), "rage": ("Harsh", "Massive"),
    "tenderness": ("Intimate", "Lush"), "anxiety": ("Skeletal", "Harsh"), "euphoria": ("Massive", "Crystalline"),
    "melancholy": ("Murky", "Intimate"), "nostalgia": ("Lush", "Murky"), "catharsis": ("Massive", "Harsh"),
    "dissociation": ("Ethereal", "Skeletal"), "determination": ("Massive", "Crystalline"),
    "surrender": ("Ethereal", "Murky"),
}


def nearest_affect(text: str) -> tuple[str, str]:
    """(affect, how it was found) for any emotion word or phrase."""
    from kelly.emotion.text import read_text
    from kelly.emotion.thesaurus import state_for
    from kelly.errors import InputError

    low = (text or "").strip().lower()
    for affect in AFFECT_MODE_MAP:
        if affect in low:
            return affect, f"{affect!r} is one of the 14 affects"
    try:
        state = state_for(low)
        how = "thesaurus"
    except InputError:
        state = read_text(text)
        how = "text reader"
    affect = min(AFFECT_MODE_MAP, key=lambda a: (AFFECT_MODE_MAP[a][3] - state.valence) ** 2
                 + (AFFECT_MODE_MAP[a][4] - state.arousal) ** 2)
    return affect, (f"{how}: {state.label} (valence {state.valence:+.2f}, arousal {state.arousal:.2f}) "
                    f"is nearest to {affect!r}")


def suggest_palette(emotion: str) -> dict:
    """Everything the intent's Phase 1–2 could use for ``emotion``.

    Returns
    -------
    dict
        ``affect``, ``how``, ``modes``, ``tempo_range``, ``density``, ``textures``,
        ``rules`` (catalogue matches: example emotions inside the text, as DAiW's
        ``suggest_rule_break``) and ``automatic_rules`` (what Kelly breaks by itself for
        this emotion, with severities).
    """
    from kelly.emotion.text import read_text
    from kelly.emotion.thesaurus import state_for
    from kelly.errors import InputError
    from kelly.intent.rules import automatic_rule_breaks, rules_for_emotion

    if not (emotion or "").strip():
        raise InputError("give an emotion, e.g. `kelly intent suggest grief`")
    affect, how = nearest_affect(emotion)
    modes, tempo, density, _, _ = AFFECT_MODE_MAP[affect]
    try:
        state = state_for(emotion)
    except InputError:
        state = read_text(emotion)
    return {
        "emotion": emotion,
        "affect": affect,
        "how": how,
        "modes": list(modes),
        "tempo_range": list(tempo),
        "density": density,
        "textures": list(AFFECT_TEXTURES[affect]),
        "rules": [r.to_dict() for r in rules_for_emotion(emotion)],
        "automatic_rules": [{"rule": rid, **info} for rid, info in automatic_rule_breaks(state).items()],
    }
