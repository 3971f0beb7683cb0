"""The values that flow between engines: sections, chord events and the Plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from kelly.emotion.state import EmotionState
from kelly.mapping import MusicalParameters
from kelly.song import PPQ
from kelly.theory.chords import Chord
from kelly.theory.scales import Key


@dataclass(frozen=True)
class Section:
    """A stretch of bars with a role and an energy in [0, 1]."""

    name: str
    start_bar: int
    bars: int
    energy: float
    emotion: EmotionState | None = None  # journeys give each section its own emotion
    params: MusicalParameters | None = None

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


@dataclass(frozen=True)
class ChordEvent:
    """One chord in time: where it starts, how long, what it is and how it is voiced.

    ``scale`` is the harmonic world of the moment (pitch classes every part uses while
    the chord sounds: the key's scale, bent by a borrowed chord; see
    :mod:`kelly.theory.modal`), and ``borrowed_from`` the parallel mode a borrowed chord
    comes from (``None`` for a chord of the key's own mode).
    """

    start: int
    duration: int
    roman: str
    chord: Chord
    voicing: tuple[int, ...]
    key: Key
    tension: float = 0.0
    scale: tuple[int, ...] = ()
    borrowed_from: str | None = None
    cadence: str | None = None  # "half" or "authentic" on the chord that closes a phrase

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def tones(self) -> frozenset[int]:
        """Pitch classes the chord sounds (its bass included)."""
        return frozenset(self.chord.pitch_classes()) | {self.chord.bass_pc}


@dataclass(frozen=True)
class Plan:
    """Everything decided before the parts are written."""

    emotion: EmotionState
    params: MusicalParameters
    bars: int
    complexity: float
    sections: tuple[Section, ...]
    layers: frozenset
    chords: tuple[ChordEvent, ...] = ()
    rule_breaks: dict = field(default_factory=dict)  # rule id -> severity
    hints: object | None = None  # kelly.ml.processor.MusicHints when the networks run
    ppq: int = PPQ
    profile: str = "neutral"
    #: Journeys: the emotion, parameters and energy of every bar (they move gradually); empty otherwise.
    bar_emotions: tuple[EmotionState, ...] = ()
    bar_params: tuple[MusicalParameters, ...] = ()
    bar_energy: tuple[float, ...] = ()
    #: A journey's networks' hints, one per section (each section shaped by its own emotion); empty otherwise.
    section_hints: tuple = ()
    #: The melody network's note probabilities (128 per bar, MIDI pitch, key of C), one row per bar: the
    #: network stepped once per bar with its state carried (see :meth:`note_probs_at_bar`); empty when the
    #: hints cannot be stepped per bar (or there are none).
    bar_note_probs: tuple = ()
    #: The time signature (numerator, denominator): 4/4, 3/4 or 6/8. Bar, beat and step lengths come from it.
    meter: tuple[int, int] = (4, 4)

    @property
    def key(self) -> Key:
        return self.params.key

    @property
    def bar_ticks(self) -> int:
        num, den = self.meter
        return self.ppq * 4 * num // den

    @property
    def step_ticks(self) -> int:
        """One grid step: a sixteenth note."""
        return self.ppq // 4

    @property
    def steps(self) -> int:
        """Sixteenths per bar: 16 in 4/4, 12 in 3/4 and 6/8."""
        return self.bar_ticks // self.step_ticks

    @property
    def compound(self) -> bool:
        """Whether the beat divides in three (6/8, 9/8, 12/8)."""
        num, den = self.meter
        return den == 8 and num % 3 == 0

    @property
    def beat_ticks(self) -> int:
        """The felt beat: a quarter in simple time, a dotted quarter in compound time (6/8)."""
        return self.ppq * 3 // 2 if self.compound else self.ppq * 4 // self.meter[1]

    @property
    def beats(self) -> int:
        return self.bar_ticks // self.beat_ticks

    @property
    def strong_steps(self) -> tuple[int, ...]:
        """Steps that carry the metre: the downbeat and the bar's secondary accent (beat 3 of 4/4,
        beat 2 of 6/8); 3/4 has only its downbeat."""
        if self.compound:
            return tuple(range(0, self.steps, self.beat_ticks // self.step_ticks))[:2]
        if self.meter[0] == 3:
            return (0,)
        return (0, self.steps // 2)

    @property
    def half_step(self) -> int:
        """Where a cadence's long final note may begin: the middle of the bar (beat 3 in 4/4, beat 2 in 3/4)."""
        return self.steps // 2 if not self.meter[0] == 3 else self.steps // 3

    @property
    def total_ticks(self) -> int:
        return self.bars * self.bar_ticks

    def section_at_bar(self, bar: int) -> Section:
        for section in self.sections:
            if section.start_bar <= bar < section.end_bar:
                return section
        return self.sections[-1]

    def params_at_bar(self, bar: int) -> MusicalParameters:
        if self.bar_params:
            return self.bar_params[max(0, min(bar, len(self.bar_params) - 1))]
        return self.section_at_bar(bar).params or self.params

    def emotion_at_bar(self, bar: int) -> EmotionState:
        if self.bar_emotions:
            return self.bar_emotions[max(0, min(bar, len(self.bar_emotions) - 1))]
        return self.section_at_bar(bar).emotion or self.emotion

    def hints_at_bar(self, bar: int):
        """The networks' hints that shape ``bar``: its journey section's own, else the piece's."""
        if self.section_hints:
            section = self.section_at_bar(bar)
            for k, s in enumerate(self.sections):
                if s is section and k < len(self.section_hints):
                    return self.section_hints[k]
        return self.hints

    def note_probs_at_bar(self, bar: int):
        """The melody network's note probabilities (key of C) for ``bar``, or None without networks.

        The bar's own row when the network was stepped bar by bar (:attr:`bar_note_probs`),
        else the ``note_probs`` of the hints shaping the bar (:meth:`hints_at_bar`).
        """
        if self.bar_note_probs:
            return self.bar_note_probs[max(0, min(bar, len(self.bar_note_probs) - 1))]
        hints = self.hints_at_bar(bar)
        return None if hints is None else hints.note_probs

    def energy_at_bar(self, bar: int) -> float:
        """The energy of ``bar``: its section's, or in a journey the bar's own (it moves gradually)."""
        if self.bar_energy:
            return self.bar_energy[max(0, min(bar, len(self.bar_energy) - 1))]
        return self.section_at_bar(bar).energy

    def chord_at(self, tick: int) -> ChordEvent:
        """The chord sounding at ``tick`` (binary search: chords are in time order and contiguous)."""
        import bisect

        starts = self._chord_starts()
        k = bisect.bisect_right(starts, tick) - 1
        if 0 <= k < len(self.chords) and tick < self.chords[k].end:
            return self.chords[k]
        return self.chords[-1] if tick >= 0 else self.chords[0]

    def chords_in(self, start: int, end: int) -> list[ChordEvent]:
        """Every chord that sounds somewhere in ``[start, end)``."""
        return [e for e in self.chords if e.start < end and e.end > start]

    def _chord_starts(self) -> list[int]:
        cache = self.__dict__.get("_starts_cache")
        if cache is None or cache[0] is not self.chords:
            cache = (self.chords, [e.start for e in self.chords])
            object.__setattr__(self, "_starts_cache", cache)
        return cache[1]

    def rule(self, rule_id: str) -> float:
        """Severity of an active rule break (0 when inactive)."""
        return float(self.rule_breaks.get(rule_id, 0.0))

    def layer_on(self, layer: str, bar: int) -> bool:
        """Whether ``layer`` plays in ``bar``, from the global layer set and the section's energy."""
        if layer not in self.layers:
            return False
        section = self.section_at_bar(bar)
        if self.bar_energy:
            # a journey's parts enter and leave on phrase boundaries, as its energy passes their threshold
            return self.energy_at_bar(bar - bar % 4) + 1e-9 >= LAYER_ENERGY.get(layer, 0.0)
        return section_allows(layer, section, len(self.sections))


#: Minimum section energy for a layer to play (the arrangement's "instruments enter" rule).
LAYER_ENERGY = {"chords": 0.0, "melody": 0.0, "pad": 0.0, "bass": 0.3, "strings": 0.45, "counter_melody": 0.6,
                "drums": 0.4, "rhythm": 0.55}


def section_allows(layer: str, section: Section, n_sections: int) -> bool:
    if n_sections <= 1:
        return True
    return section.energy + 1e-9 >= LAYER_ENERGY.get(layer, 0.0)
