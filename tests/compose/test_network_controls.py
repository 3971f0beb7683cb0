"""The networks' outputs shape the music as controls (issue 10, item 4).

* a harmony network with no preference (uniform chord probabilities) changes no chord;
  one that clearly prefers a chord of the mode changes inner bars to it;
* hi-hats open on off-beat eighths while the band leans ahead of the kit;
* in a journey each section is shaped by its own emotion's hints;
* every one of the 32 groove and 16 expression outputs changes the written MIDI when it
  moves from its minimum to its maximum, the others neutral (the proof that each is used;
  what each does is measured in ``test_groove_expression_controls.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_hats_open_on_off_beats_while_the_band_leans_ahead():
    state = state_for("anxiety")  # a straight kit with closed hats on the eighths
    groove = np.zeros(32)
    names = list(schema.GROOVE_PARAMS)
    groove[names.index("push_pull")] = 1.0  # the band pushes ahead of the kit
    groove[names.index("hat_open_prob")] = 1.0
    comp = compose(state, ComposeOptions(bars=8, seed=2, humanize=0.0), hints=_hints(groove=groove))
    assert comp.explanation.engines["groove"]["push_pull_ticks"] == [-14]  # 0.03 beat earlier
    drums = [n for t in comp.song.tracks if t.is_drum for n in t.notes]
    opened = [n for n in drums if n.pitch == 46]
    assert opened and all(n.start % 480 == 240 for n in opened)  # the kit stays on the grid, on the "and"s
    assert comp.explanation.engines["drums"]["controls"]["open_hats"] >= len(opened)  # fills may replace some
    closed = groove.copy()
    closed[names.index("hat_open_prob")] = -1.0  # the same lean, no opening
    plain = compose(state, ComposeOptions(bars=8, seed=2, humanize=0.0), hints=_hints(groove=closed))
    assert plain.explanation.engines["drums"]["controls"]["open_hats"] == 0
    assert not any(n.pitch == 46 for t in plain.song.tracks if t.is_drum for n in t.notes)
    melody = {n.start % 120 for t in comp.song.tracks if t.role.value == "melody" for n in t.notes if n.start}
    assert melody == {120 - 14}  # every melody note pushed 14 ticks ahead of its grid line


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


def _extreme(name: str, value: float) -> MusicHints:
    """Neutral hints with one named groove or expression output at ``value`` (network units)."""
    groove, expression = np.zeros(32), np.full(16, 0.5)
    if name in schema.GROOVE_PARAMS:
        groove[schema.GROOVE_PARAMS.index(name)] = value
    else:
        expression[schema.EXPRESSION_PARAMS.index(name)] = value
    return _hints(groove=groove, expression=expression)


@pytest.mark.parametrize("name", schema.GROOVE_PARAMS + schema.EXPRESSION_PARAMS)
def test_every_output_changes_the_music_from_its_minimum_to_its_maximum(name):
    """Eight bars of happiness with every part (kit, percussion, fills, strings, counter-melody, pad),
    four sections: each output alone, at its two ends, writes different MIDI."""
    lo, hi = (-1.0, 1.0) if name in schema.GROOVE_PARAMS else (0.0, 1.0)
    opts = ComposeOptions(bars=8, seed=1, complexity=1.0)
    state = state_for("happiness")
    low = compose(state, opts, hints=_extreme(name, lo)).song.to_bytes()
    high = compose(state, opts, hints=_extreme(name, hi)).song.to_bytes()
    assert low != high, f"{name} changes nothing"


def test_every_output_has_a_control_and_no_other_outputs_exist():
    assert len(schema.GROOVE_PARAMS) == 32 and len(schema.EXPRESSION_PARAMS) == 16
    doc = (Path(__file__).parents[2] / "docs" / "network-controls.md").read_text()
    for name in schema.GROOVE_PARAMS + schema.EXPRESSION_PARAMS:
        assert f"`{name}`" in doc, f"{name} missing from docs/network-controls.md"


def test_chord_preference_is_read_as_lift_over_the_networks_own_average():
    """A trained harmony network puts most weight on the tonic for every emotion (pieces live there);
    read raw, every inner bar would become I. Read as lift over its mean, equal lift changes nothing."""
    import dataclasses

    state = state_for("hope")
    probs = np.full(64, 0.01)
    probs[schema.chord_class_index(0, "maj")] = 0.6  # the tonic, as every piece has it
    probs /= probs.sum()
    raw = compose(state, ComposeOptions(bars=16, seed=1), hints=_hints(chords=probs))
    lifted = compose(state, ComposeOptions(bars=16, seed=1),
                     hints=dataclasses.replace(_hints(chords=probs), chord_baseline=probs))
    plain = compose(state, ComposeOptions(bars=16, seed=1))
    symbols = [[c.symbol for c in comp.explanation.progression.chords] for comp in (raw, lifted, plain)]
    assert _tonic_bars(raw) > _tonic_bars(plain)  # raw: the tonic takes inner bars
    assert symbols[1] == symbols[2]  # lift 1 everywhere: the engine's own chords


def _tonic_bars(comp) -> int:
    """Bars whose chord is rooted on the home key's tonic."""
    tonic = comp.explanation.parameters.key.split()[0]
    return sum(c.symbol.startswith(tonic) and c.symbol[len(tonic):len(tonic) + 1] not in ("#", "b")
               for c in comp.explanation.progression.chords)


def test_shipped_harmony_network_does_not_flood_pieces_with_the_tonic():
    from kelly.ml.processor import MultiModelProcessor

    proc = MultiModelProcessor()
    if not proc.is_live("harmonypredictor"):
        import pytest

        pytest.skip("no trained harmony network on the search path")
    more = 0
    for name in ("hope", "grief", "happiness", "rage", "serenity", "anxiety"):
        state = state_for(name)
        for seed in (0, 1):
            opts = ComposeOptions(bars=16, seed=seed)
            more += _tonic_bars(compose(state, opts, hints=proc.hints_for_emotion(state))) \
                - _tonic_bars(compose(state, opts))
    assert more <= 6, more  # at most about one extra tonic bar in two of the twelve pieces


def test_trained_groove_and_expression_are_read_from_their_own_mean():
    """A network's output equal to its mean over all emotions is neutral (d = 0) for every control
    but velocity_base, an absolute level; without a baseline (fallbacks, hand-made hints) as it is."""
    import dataclasses

    from kelly.engines.ml_hints import Controls

    rng = np.random.default_rng(5)
    groove = rng.uniform(-0.9, 0.9, 32)
    expression = rng.uniform(0.1, 0.9, 16)
    hints = _hints(groove=groove, expression=expression)
    raw = Controls(hints)
    centred = Controls(dataclasses.replace(hints, groove_baseline=groove, expression_baseline=expression))
    names = list(schema.groove_dict(np.zeros(32)))
    assert all(abs(centred.g(n)) < 1e-9 for n in names)
    assert all(abs(centred.e(n)) < 1e-9 for n in list(schema.expression_dict(np.full(16, 0.5)))[1:])
    assert centred.expression["velocity_base"] == raw.expression["velocity_base"]
    assert any(abs(raw.g(n)) > 0.3 for n in names)
    shifted = Controls(dataclasses.replace(hints, groove_baseline=groove - 0.4, expression_baseline=expression))
    assert shifted.g("push_pull") == pytest.approx(0.4) and shifted.g("swing") == pytest.approx(0.4)
