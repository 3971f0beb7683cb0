"""The melody network stepped once per bar, its LSTM state carried through the piece.

The MelodyTransformer learns how notes move from one bar to the next (one LSTM step = one
bar). These tests use a small hand-made MelodyTransformer whose output depends on its state:
one LSTM unit counts the bars (so every bar's row differs from the last) and another
remembers the valence of the bars before (so a journey's second section sounds different
after grief than after a fresh start). They check that

* ``MultiModelProcessor.melody_bars`` steps it once per bar with its state carried, puts the
  processor's own state back (the hot path ``pipeline_step`` goes on undisturbed, fused or
  not), and that the fallback gives one row per bar too;
* ``compose()`` asks once for the whole piece, each bar with its section's own emotion, the
  state running on across the seam, and the melody engine reads each bar's own row;
* the same seed gives the same MIDI, and a compose call leaks no state into the next;
* the explanation and ``kelly compose`` say how the network was stepped.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kelly.emotion.thesaurus import state_for
from kelly.engines import melody
from kelly.errors import InputError
from kelly.generator import ComposeOptions, compose
from kelly.ml import fallbacks, schema
from kelly.ml.convert import spec_state_dict_to_rtneural
from kelly.ml.processor import MelodySteps, MultiModelProcessor, MusicHints
from kelly.ml.specs import MELODY_TRANSFORMER, SPECS
from kelly.song import Role


def _zero_state(spec) -> dict[str, np.ndarray]:
    """A torch-shaped state_dict of zeros for one of the five networks."""
    state = {}
    for i, layer in enumerate(spec.layers):
        if layer.kind == "dense":
            state[f"layers.{i}.weight"] = np.zeros((layer.out_size, layer.in_size), np.float32)
            state[f"layers.{i}.bias"] = np.zeros(layer.out_size, np.float32)
        else:
            h = layer.out_size
            state[f"layers.{i}.weight_ih_l0"] = np.zeros((4 * h, layer.in_size), np.float32)
            state[f"layers.{i}.weight_hh_l0"] = np.zeros((4 * h, h), np.float32)
            state[f"layers.{i}.bias_ih_l0"] = np.zeros(4 * h, np.float32)
            state[f"layers.{i}.bias_hh_l0"] = np.zeros(4 * h, np.float32)
    return state


def _stateful_melody_state() -> dict[str, np.ndarray]:
    """A MelodyTransformer (spec shapes) whose notes depend on how many bars passed and on past valence.

    Dense 1: unit 0 is the constant 1, units 1 and 2 are relu(±valence). LSTM (torch gate
    order i, f, g, o): unit 0 adds tanh(0.25) to its cell every step (a bar counter); unit 1
    keeps 0.8 of its cell and adds tanh(2·valence) (a memory of the bars before). The
    output leans higher as the counter grows and towards E, A, B (or E♭, A♭, B♭) as the
    remembered valence is positive (or negative).
    """
    state = _zero_state(MELODY_TRANSFORMER)
    hidden = 256
    w1 = state["layers.0.weight"]
    state["layers.0.bias"][0] = 1.0
    w1[1, schema.I_VALENCE], w1[2, schema.I_VALENCE] = 1.0, -1.0
    w_ih, bias = state["layers.1.weight_ih_l0"], state["layers.1.bias_ih_l0"]
    gate_i, gate_f, gate_g, gate_o = 0, hidden, 2 * hidden, 3 * hidden
    bias[[gate_i, gate_f, gate_o]] = 8.0  # the counter: always write, never forget, always show
    w_ih[gate_g, 0] = 0.25
    bias[[gate_i + 1, gate_o + 1]] = 8.0  # the valence memory: forget a fifth each bar
    bias[gate_f + 1] = 1.4
    w_ih[gate_g + 1, 1], w_ih[gate_g + 1, 2] = 2.0, -2.0
    w3 = state["layers.2.weight"]
    w3[0, 0], w3[1, 1], w3[2, 1] = 1.0, 1.0, -1.0
    pitch = np.arange(128)
    bright = np.where(np.isin(pitch % 12, (4, 9, 11)), 2.0, np.where(np.isin(pitch % 12, (3, 8, 10)), -2.0, 0.0))
    w4 = state["layers.3.weight"]
    w4[:, 0] = (pitch - 66) / 6.0
    w4[:, 1], w4[:, 2] = bright, -bright
    state["layers.3.bias"][:] = -1.0
    return state


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """The stateful MelodyTransformer alone (the other four fall back)."""
    folder = tmp_path_factory.mktemp("stateful-melody")
    obj = spec_state_dict_to_rtneural(MELODY_TRANSFORMER, _stateful_melody_state())
    (folder / MELODY_TRANSFORMER.file_name).write_text(json.dumps(obj))
    return folder


@pytest.fixture(scope="module")
def all_live_dir(tmp_path_factory, models_dir):
    """The stateful MelodyTransformer and the other four as zero networks: all five live (the fused hot path)."""
    folder = tmp_path_factory.mktemp("all-live")
    for key, spec in SPECS.items():
        if key == "melodytransformer":
            (folder / spec.file_name).write_text((models_dir / spec.file_name).read_text())
        else:
            (folder / spec.file_name).write_text(json.dumps(spec_state_dict_to_rtneural(spec, _zero_state(spec))))
    return folder


@pytest.fixture
def proc(models_dir):
    p = MultiModelProcessor(search_path=[models_dir])
    assert p.is_live("melodytransformer") and not p.is_live("harmonypredictor")
    return p


GRIEF, HOPE = state_for("grief"), state_for("hope")


def _emb(state) -> np.ndarray:
    return schema.embed_emotion(state)


def _melody_bars_of(comp, bar_ticks: int) -> dict[int, list[int]]:
    bars: dict[int, list[int]] = {}
    for t in comp.song.tracks:
        if t.role is Role.MELODY:
            for n in sorted(t.notes):
                bars.setdefault(n.start // bar_ticks, []).append(n.pitch)
    return bars


# -- the processor -----------------------------------------------------------------------------


def test_each_bar_is_one_step_with_the_state_carried(proc):
    rows = proc.melody_bars(np.tile(_emb(HOPE), (6, 1)))
    assert rows.shape == (6, 128) and rows.dtype == np.float32
    assert all(not np.allclose(rows[b], rows[b + 1]) for b in range(5))  # the same emotion, a new bar
    # exactly the network run as a sequence from a reset state
    model = proc.model("melodytransformer")
    model.reset()
    np.testing.assert_array_equal(rows, model.run(np.tile(_emb(HOPE), (6, 1))))
    # the same embeddings always give the same rows: each call starts from a fresh state
    np.testing.assert_array_equal(proc.melody_bars(np.tile(_emb(HOPE), (6, 1))), rows)


def test_a_second_emotion_follows_the_first_ones_state(proc):
    g, h = _emb(GRIEF), _emb(HOPE)
    journey = proc.melody_bars(np.array([g] * 4 + [h] * 4))
    fresh = proc.melody_bars(np.array([h] * 4))
    hope_only = proc.melody_bars(np.array([h] * 8))
    np.testing.assert_array_equal(journey[:4], proc.melody_bars(np.array([g] * 4)))
    assert not np.allclose(journey[4:], fresh)  # not reset at the seam
    assert not np.allclose(journey[4:], hope_only[4:])  # and what came before matters, not only how much
    # the remembered grief fades bar by bar: the hope section drifts towards hope's own rows
    gaps = [float(np.abs(journey[b] - hope_only[b]).sum()) for b in range(4, 8)]
    assert gaps == sorted(gaps, reverse=True)


@pytest.mark.parametrize("all_live", [False, True])
def test_stepping_bars_leaves_the_hot_path_state_alone(models_dir, all_live_dir, all_live):
    p = MultiModelProcessor(search_path=[all_live_dir if all_live else models_dir])
    assert (len(p.status()["live"]) == 5) == all_live  # all five: the fused chain runs
    e = _emb(HOPE)

    def phrase(interrupt: bool) -> list[np.ndarray]:
        p.reset()
        out = [p.hints_for_embedding(e).note_probs]
        if interrupt:
            p.melody_bars(np.array([_emb(GRIEF)] * 5))
        out += [p.hints_for_embedding(e).note_probs for _ in range(3)]
        return out

    plain, interrupted = phrase(False), phrase(True)
    assert not np.allclose(plain[0], plain[1])  # the phrase runs on
    for a, b in zip(plain, interrupted):
        np.testing.assert_array_equal(a, b)


def test_the_fallback_gives_one_row_per_bar_too():
    bare = MultiModelProcessor(search_path=[])
    g, h = _emb(GRIEF), _emb(HOPE)
    rows = bare.melody_bars(np.array([g, g, h]))
    assert rows.shape == (3, 128)
    np.testing.assert_array_equal(rows[0], rows[1])  # no state: equal emotions, equal rows
    np.testing.assert_array_equal(rows[2], fallbacks.melody(h))
    np.testing.assert_array_equal(rows[0], bare.hints_for_emotion(GRIEF).note_probs)
    assert bare.melody_bars(np.zeros((0, 64))).shape == (0, 128)
    steps = bare.hints_for_emotion(HOPE).melody_steps
    assert isinstance(steps, MelodySteps) and not steps.live
    np.testing.assert_array_equal(steps([GRIEF, HOPE]), rows[1:])


def test_bad_embeddings_are_refused(proc):
    for bad in (np.zeros(64), np.zeros((2, 63)), np.full((2, 64), np.nan), np.full((1, 64), 2.0), "x"):
        with pytest.raises(InputError):
            proc.melody_bars(bad)


# -- the composition ---------------------------------------------------------------------------


class _Recording:
    """Wraps a processor's MelodySteps and records what the composer asked for."""

    def __init__(self, steps):
        self.steps, self.calls = steps, []
        self.live = steps.live

    def __call__(self, emotions):
        rows = self.steps(emotions)
        self.calls.append((list(emotions), rows))
        return rows


def test_compose_steps_every_bar_of_a_journey_once_with_its_sections_emotion(proc, monkeypatch):
    plans = []
    generate = melody.generate
    monkeypatch.setattr(melody, "generate", lambda plan, rng: (plans.append(plan), generate(plan, rng))[1])
    first, second = proc.hints_for_emotion(GRIEF), proc.hints_for_emotion(HOPE)
    recorder = _Recording(first.melody_steps)
    hints = [MusicHints(**{**vars(first), "melody_steps": recorder}), second]
    comp = compose([GRIEF, HOPE], ComposeOptions(bars=16, seed=3), hints=hints)

    assert len(recorder.calls) == 1  # once, for the whole piece
    emotions, rows = recorder.calls[0]
    plan = plans[0]
    seam = plan.sections[1].start_bar
    assert 0 < seam < 16 and comp.explanation.arrangement.sections[1].start_bar == seam + 1  # (bars from 1 there)
    assert emotions == [GRIEF] * seam + [HOPE] * (16 - seam)  # each section's own emotion, not the blend
    np.testing.assert_array_equal(np.array(plan.bar_note_probs), rows)
    np.testing.assert_array_equal(rows, proc.melody_bars(np.array([_emb(e) for e in emotions])))
    fresh = proc.melody_bars(np.array([_emb(HOPE)] * (16 - seam)))
    assert not np.allclose(rows[seam:], fresh)  # the state ran on across the seam
    for bar in (0, seam - 1, seam, 15):
        assert plan.note_probs_at_bar(bar) is plan.bar_note_probs[bar]

    info = comp.explanation.engines["melody"]["network"]
    assert info["bars_stepped"] == 16 and info["sections"] == 2 and info["live"] and info["state_carried"]
    assert "stepped 16 times" in info["statement"] and "2 sections" in info["statement"]


def test_the_melody_reads_each_bars_own_row():
    """A row that favours the tonic in one bar draws that bar's melody to the tonic, and no bar before it moves."""
    tonic_pcs = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7,
                 "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}

    class Rows:
        """Flat rows (no preference), except that bar ``bar``'s favours the tonic (pitch class 0, key of C)."""

        live = True

        def __init__(self, bar=None):
            self.bar = bar

        def __call__(self, emotions):
            rows = np.full((len(emotions), 128), 0.05, dtype=np.float32)
            if self.bar is not None:
                rows[self.bar, ::12] = 1.0
            return rows

    def hints(bar=None):
        return MusicHints(note_probs=np.full(128, 0.5), chord_probs=np.full(64, 1 / 64), groove=np.zeros(32),
                          expression=np.full(16, 0.5), melody_steps=Rows(bar))

    on_tonic = {"flat": [0, 0], "bar 0": [0, 0], "bar 2": [0, 0]}  # first notes of bars 0 and 2 on the tonic
    for seed in range(20):
        opts = ComposeOptions(bars=8, seed=seed)
        comps = {"flat": compose(GRIEF, opts, hints=hints()), "bar 0": compose(GRIEF, opts, hints=hints(0)),
                 "bar 2": compose(GRIEF, opts, hints=hints(2))}
        bars = {name: _melody_bars_of(c, c.song.bar_ticks) for name, c in comps.items()}
        tonic = tonic_pcs[comps["flat"].explanation.parameters.key.split()[0]]
        for name, by_bar in bars.items():
            for k, bar in enumerate((0, 2)):
                on_tonic[name][k] += bar in by_bar and (by_bar[bar][0] - tonic) % 12 == 0
        # bar 2's own row changes nothing before bar 2
        assert [bars["bar 2"].get(b) for b in (0, 1)] == [bars["flat"].get(b) for b in (0, 1)]
    assert on_tonic["bar 0"][0] > on_tonic["flat"][0] + 3, on_tonic
    assert on_tonic["bar 2"][1] > on_tonic["flat"][1] + 3, on_tonic


def test_plain_hints_still_shape_every_bar_alike():
    state = state_for("hope")
    low = np.zeros(128)
    low[48:60] = 1.0
    plain = MusicHints(note_probs=low, chord_probs=np.full(64, 1 / 64), groove=np.zeros(32),
                       expression=np.full(16, 0.5))
    same_rows = MusicHints(**{**vars(plain), "melody_steps": lambda emotions: np.tile(low, (len(emotions), 1))})
    opts = ComposeOptions(bars=8, seed=5)
    a, b = compose(state, opts, hints=plain), compose(state, opts, hints=same_rows)
    assert "network" not in a.explanation.engines["melody"]
    assert a.song.to_bytes() == b.song.to_bytes()  # one row per bar, all equal: the same music


def test_same_seed_same_midi_and_no_state_leaks_between_compose_calls(proc):
    opts = ComposeOptions(bars=16, seed=4)
    hints = [proc.hints_for_emotion(GRIEF), proc.hints_for_emotion(HOPE)]
    model = proc.model("melodytransformer")
    before = [s.copy() for s in model.recurrent_layers()[0].state]
    first = compose([GRIEF, HOPE], opts, hints=hints).song.to_bytes()
    after = model.recurrent_layers()[0].state
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)  # the compose call put the state back
    for _ in range(3):  # the processor's phrase moves on between the calls
        proc.hints_for_embedding(_emb(GRIEF))
    assert compose([GRIEF, HOPE], opts, hints=hints).song.to_bytes() == first
    fresh = [proc.hints_for_emotion(GRIEF), proc.hints_for_emotion(HOPE)]  # made later in the phrase
    assert compose([GRIEF, HOPE], opts, hints=fresh).song.to_bytes() == first
    assert compose(GRIEF, opts, hints=hints[0]).song.to_bytes() == compose(GRIEF, opts, hints=hints[0]).song.to_bytes()
    # and the state matters: the live network changes the melody from what the fallback writes
    bare = MultiModelProcessor(search_path=[])
    fallback = compose([GRIEF, HOPE], opts, hints=[bare.hints_for_emotion(GRIEF), bare.hints_for_emotion(HOPE)])
    assert fallback.song.to_bytes() != first


def test_kelly_compose_steps_the_network_and_says_so(models_dir, tmp_path, monkeypatch, capsys):
    import kelly.cli

    monkeypatch.setenv("KELLY_MODELS", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    outs = []
    for k in range(2):
        out = tmp_path / f"j{k}.mid"
        assert kelly.cli.main(["compose", "--journey", "grief,hope", "--seed", "3", "--models-dir", str(models_dir),
                               "-o", str(out)]) == 0
        outs.append(out)
    text = capsys.readouterr().out
    assert "Melody:  the melody network stepped 16 bars, one per bar, its state carried across 2 sections" in text
    assert outs[0].read_bytes() == outs[1].read_bytes()
    info = json.loads(outs[0].with_suffix(".json").read_text())["engines"]["melody"]["network"]
    assert info["bars_stepped"] == 16 and info["sections"] == 2 and info["state_carried"]
    off = tmp_path / "off.mid"
    assert kelly.cli.main(["compose", "--journey", "grief,hope", "--seed", "3", "--no-ml", "-o", str(off)]) == 0
    assert "network" not in json.loads(off.with_suffix(".json").read_text())["engines"]["melody"]
    assert "Melody:" not in capsys.readouterr().out
