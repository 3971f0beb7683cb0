"""ArrangementEngine: sections and their energies, and which layers the piece uses.

Templates are the original's (§6.5): pop, ballad (the default), edm, ambient, each a
list of (section, bars, energy); bars are scaled to the requested length. Pieces shorter
than 8 bars are one section. Layer switches follow MidiGenerator::determineLayers (§6.3).
"""

from __future__ import annotations

import numpy as np

from kelly.emotion.state import EmotionState
from kelly.engines.context import Section

TEMPLATES: dict[str, list[tuple[str, int, float]]] = {
    "pop": [("intro", 4, 0.3), ("verse", 8, 0.5), ("pre-chorus", 4, 0.7), ("chorus", 8, 1.0), ("verse", 8, 0.5),
            ("pre-chorus", 4, 0.7), ("chorus", 8, 1.0), ("bridge", 8, 0.6), ("chorus", 8, 1.0), ("outro", 4, 0.4)],
    "ballad": [("intro", 4, 0.2), ("verse", 8, 0.4), ("chorus", 8, 0.7), ("verse", 8, 0.5), ("chorus", 8, 0.8),
               ("bridge", 8, 0.6), ("chorus", 8, 1.0), ("outro", 4, 0.3)],
    "edm": [("intro", 8, 0.4), ("build", 8, 0.8), ("drop", 16, 1.0), ("breakdown", 8, 0.3), ("build", 8, 0.9),
            ("drop", 16, 1.0), ("outro", 8, 0.5)],
    "ambient": [("emergence", 8, 0.2), ("drift", 16, 0.4), ("bloom", 8, 0.6), ("drift", 16, 0.4),
                ("dissolve", 8, 0.2)],
}


def choose_template(state: EmotionState) -> str:
    """Ambient for very low arousal, edm for high-arousal positive, pop for bright mid arousal, else ballad."""
    if state.arousal < 0.25:
        return "ambient"
    if state.arousal > 0.8 and state.valence > 0.2:
        return "edm"
    if state.valence > 0.3 and state.arousal >= 0.5:
        return "pop"
    return "ballad"


#: Sections a shortened form may lose, the first most readily (a build goes last: it prepares the drop).
_OPTIONAL = ("breakdown", "pre-chorus", "bridge", "bloom", "build")


def scale_template(template: list[tuple[str, int, float]], bars: int) -> list[Section]:
    """Fit a template to ``bars`` bars, keeping order and proportions.

    Short pieces keep fewer sections (about one per five bars): later statements of a
    repeated section go first (the quietest first), then optional sections (pre-chorus,
    bridge, build…), then the quietest inner section; the first and last sections always
    stay. Bars are handed out in two-bar units by largest remainder so phrases stay
    two-bar aligned, and a section that comes back gets its first statement's length.
    """
    items = list(template)
    max_sections = max(3, bars // 5) if bars >= 12 else max(1, bars // 2)
    while len(items) > max_sections:
        inner = list(range(1, len(items) - 1)) if len(items) > 2 else list(range(len(items)))
        names = [n for n, _, _ in items]
        # a repeat goes before its first statement does, so a shortened form keeps its order
        # (an EDM build still comes before the drop)
        repeats = [k for k in inner if names[k] in names[:k]]
        optional = [k for k in inner if names[k] in _OPTIONAL]
        pool = repeats or optional or inner
        rank = {name: r for r, name in enumerate(_OPTIONAL)}
        items.pop(min(pool, key=lambda k: (rank.get(names[k], -1) if pool is optional else 0, items[k][2], -k)))
    unit = 2 if bars >= 2 * len(items) else 1
    units = bars // unit
    total = sum(b for _, b, _ in items)
    raw = np.array([b * units / total for _, b, _ in items])
    counts = np.maximum(1, np.floor(raw)).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    k = 0
    while counts.sum() < units:
        counts[order[k % len(order)]] += 1
        k += 1
    while counts.sum() > units:
        counts[int(np.argmax(counts))] -= 1
    counts = counts * unit
    counts[-1] += bars - counts.sum()
    # a section that comes back has the length of its first statement, so it can be restated;
    # the difference goes to the longest section that is not repeated
    names = [n for n, _, _ in items]
    once = [k for k in range(len(items)) if names.count(names[k]) == 1]
    for k in range(len(items)):
        first = names.index(names[k])
        if first != k and counts[k] != counts[first] and once:
            spare = max(once, key=lambda j: (counts[j], -j))
            delta = int(counts[k] - counts[first])
            if counts[spare] + delta >= unit:
                counts[spare] += delta
                counts[k] = counts[first]
    sections, start = [], 0
    for (name, _, energy), n in zip(items, counts):
        sections.append(Section(name, start, int(n), energy))
        start += int(n)
    return sections


def plan_sections(state: EmotionState, bars: int) -> tuple[str, list[Section]]:
    """The arrangement for a piece: (template name, sections)."""
    if bars < 8:
        return "single", [Section("A", 0, bars, 0.5 + 0.3 * state.arousal)]
    name = choose_template(state)
    return name, scale_template(TEMPLATES[name], bars)


def determine_layers(state: EmotionState, complexity: float, sections: list[Section], bars: int) -> frozenset:
    """Which parts the piece has. Source: MidiGenerator::determineLayers (§6.3).

    melody, bass and chords always; pads if complexity > 0.4 or arousal < 0.3; strings if
    complexity > 0.6, intensity > 0.7 or a section's energy > 0.6; counter-melody if
    complexity > 0.7; rhythm and drums if complexity > 0.5, arousal > 0.7 or a section's
    energy > 0.6; fills if complexity > 0.5 (and drums play); transitions with more than
    one section; variations if complexity > 0.7 or a section repeats.
    """
    high_energy = any(s.energy > 0.6 for s in sections)
    layers = {"chords", "melody", "bass"}
    if complexity > 0.4 or state.arousal < 0.3:
        layers.add("pad")
    if complexity > 0.6 or state.intensity > 0.7 or high_energy:
        layers.add("strings")
    if complexity > 0.7:
        layers.add("counter_melody")
    if complexity > 0.5 or state.arousal > 0.7 or high_energy:
        layers.add("drums")
        if complexity > 0.5 or state.arousal > 0.6:
            layers.add("rhythm")
    if "drums" in layers and (complexity > 0.5 or len(sections) > 1):
        layers.add("fills")
    if len(sections) > 1:
        layers.add("transitions")
    names = [s.name for s in sections]
    if complexity > 0.7 or len(set(names)) < len(names):
        layers.add("variations")
    if complexity < 0.2:
        layers &= {"chords", "melody", "bass"}
    return frozenset(layers)
