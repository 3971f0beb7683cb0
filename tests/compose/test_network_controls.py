"""The networks' outputs shape the music as controls (issue 10, item 4: the parts done so far).

* a harmony network with no preference (uniform chord probabilities) changes no chord;
  one that clearly prefers a chord of the mode changes inner bars to it;
* hi-hats open on off-beat eighths even when the groove leans the parts ahead or behind;
* in a journey each section is shaped by its own emotion's hints.
"""

from __future__ import annotations

import numpy as np

from kelly.emotion.thesaurus import state_for
from kelly.generator import ComposeOptions, compose
from kelly.ml import schema
from kelly.ml.processor import MusicHints


def _hints(chords=None, notes=None, groove=None, expression=None) -> MusicHints:
    return MusicHints(note_probs=np.full(128, 1 / 128) if notes is None else notes,
                      chord_probs=np.full(64, 1 / 64) if chords is None else chords,
                      groove=np.zeros(32) if groove is None else groove,
                      expression=np.full(16, 0.5) if expression is None else expression)


def test_a_network_with_no_preference_changes_no_chord():
    state = state_for("hope")
    for seed in range(4):
        opts = ComposeOptions(bars=16, seed=seed)
        plain = compose(state, opts)
        uniform = compose(state, opts, hints=_hints())
        assert [c.symbol for c in uniform.explanation.progression.chords] == \
            [c.symbol for c in plain.explanation.progression.chords]


def test_a_clear_preference_changes_inner_bars_to_the_preferred_chord():
    state = state_for("hope")  # G major
    probs = np.full(64, 0.001)
    probs[schema.chord_class_index(9, "min")] = 1.0  # vi (E minor in G): strongly preferred
    probs /= probs.sum()
    comp = compose(state, ComposeOptions(bars=16, seed=1), hints=_hints(chords=probs))
    plain = compose(state, ComposeOptions(bars=16, seed=1))
    changed = [(a.symbol, b.symbol) for a, b in zip(plain.explanation.progression.chords,
                                                    comp.explanation.progression.chords) if a.symbol != b.symbol]
    assert changed and all(b.startswith("Em") for _, b in changed), changed


def test_hats_open_on_off_beats_even_when_the_groove_leans():
    state = state_for("anxiety")  # a straight kit with closed hats on the eighths
    groove = np.zeros(32)
    names = list(schema.groove_dict(np.zeros(32)))
    groove[names.index("push_pull")] = 1.0  # lean ahead
    groove[names.index("hat_open_prob")] = 1.0
    comp = compose(state, ComposeOptions(bars=8, seed=2, humanize=0.0), hints=_hints(groove=groove))
    info = comp.explanation.engines["groove_hints"]
    assert info["lean_ticks"] != 0
    assert info["hats_opened"] > 0
    closed = groove.copy()
    closed[names.index("hat_open_prob")] = -1.0  # the same lean, no opening
    plain = compose(state, ComposeOptions(bars=8, seed=2, humanize=0.0), hints=_hints(groove=closed))
    assert plain.explanation.engines["groove_hints"]["hats_opened"] == 0
    opened = sum(n.pitch == 46 for t in comp.song.tracks if t.is_drum for n in t.notes)
    before = sum(n.pitch == 46 for t in plain.song.tracks if t.is_drum for n in t.notes)
    assert opened == before + info["hats_opened"]


def test_each_journey_section_takes_its_own_emotions_hints():
    grief, hope = state_for("grief"), state_for("hope")
    low = np.zeros(128)
    low[48:60] = 1.0  # a network that wants low notes
    high = np.zeros(128)
    high[72:84] = 1.0  # and one that wants high notes
    opts = ComposeOptions(bars=16, seed=3)
    both_low = compose([grief, hope], opts, hints=[_hints(notes=low), _hints(notes=low)])
    split = compose([grief, hope], opts, hints=[_hints(notes=low), _hints(notes=high)])
    second = split.explanation.arrangement.sections[-1].start_bar - 1
    bar = split.song.bar_ticks

    def mean_pitch(c, lo, hi):
        mel = [n.pitch for t in c.song.tracks if t.role.value == "melody" for n in t.notes if lo <= n.start < hi]
        return sum(mel) / len(mel)

    first_half = (0, second * bar)
    second_half = (second * bar, 16 * bar)
    assert mean_pitch(split, *first_half) == mean_pitch(both_low, *first_half)
    assert mean_pitch(split, *second_half) > mean_pitch(both_low, *second_half)
