"""Grammar-constrained sampling (kelly.transformer.sample): masks, temperature, top-k/top-p, seeds.

``ToyGrammar`` stands in for the tokenizer's grammar (same interface): types PAD, BOS,
EOS, BAR, NOTE; families position (8 per bar, strictly rising within a bar), pitch (12) and
duration (4), index 0 meaning "not applicable". It raises on any row it would not allow,
so every generated sequence below is also checked against it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.transformer.sample import (SamplingConfig, UnconstrainedGrammar, generate, generate_nocache,
                                      sample_logits)

PAD, BOS, EOS, BAR, NOTE = range(5)
TOY_SIZES = (5, 9, 13, 5)
TOY_FAMILIES = ("type", "position", "pitch", "duration")


class ToyGrammar:
    def __init__(self, bars: int = 2, notes_per_bar: int = 8) -> None:
        self.bars, self.notes_per_bar = bars, notes_per_bar
        self.bar = 0
        self.started = False
        self.done = False
        self.last_pos = -1
        self.notes = 0

    def type_mask(self) -> np.ndarray:
        m = np.zeros(TOY_SIZES[0], bool)
        if not self.started:
            m[BOS] = True
        elif self.bar == 0:
            m[BAR] = True
        else:
            m[NOTE] = self.last_pos < 7 and self.notes < self.notes_per_bar
            m[BAR] = self.bar < self.bars
            m[EOS] = self.bar == self.bars
        return m

    def family_mask(self, type_id: int, family: int, partial=None) -> np.ndarray:
        m = np.zeros(TOY_SIZES[family], bool)
        if type_id != NOTE:
            m[0] = True
        elif family == 1:
            m[1 + self.last_pos + 1:] = True
        elif family == 3 and partial is not None and partial[2] > 6:
            m[1:3] = True  # high pitches are short (a mask that reads the partial row)
        else:
            m[1:] = True
        return m

    def advance(self, row) -> None:
        row = np.asarray(row)
        t = int(row[0])
        assert not self.done and self.type_mask()[t], f"type {t} not allowed"
        for f in range(1, len(TOY_SIZES)):
            assert self.family_mask(t, f)[row[f]], f"family {f} value {row[f]} not allowed after type {t}"
        if t == BOS:
            self.started = True
        elif t == BAR:
            self.bar += 1
            self.last_pos, self.notes = -1, 0
        elif t == NOTE:
            self.last_pos = int(row[1]) - 1
            self.notes += 1
        elif t == EOS:
            self.done = True


class FakeStepper:
    """Fixed logits per family (no model): what sampling does with known distributions."""

    block_size = 1000

    def __init__(self, logits: list[np.ndarray]) -> None:
        self.logits = [np.asarray(x, np.float64) for x in logits]
        self.sizes = tuple(len(x) for x in logits)
        self.steps = 0

    def reset(self, emotion) -> None:
        self.steps = 0

    def step(self, row):
        self.steps += 1
        return self.steps

    def full(self, rows):
        self.steps += 1
        return len(rows)

    def type_logits(self, hidden):
        return self.logits[0]

    def family_logits(self, hidden, row, family):
        assert (np.asarray(row)[family:] == 0).all(), "later families are not filled in yet"
        return self.logits[family]


def _toy_logits(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2, n) for n in TOY_SIZES]


def _draws(logits, mask, n=1000, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return np.array([sample_logits(logits, mask, rng=rng, **kw) for _ in range(n)])


# ---------------------------------------------------------------------------------------- sample_logits
def test_masked_values_are_never_drawn():
    logits = np.array([5.0, 0.0, 4.0, -1.0, 9.0, 0.5])  # the masked ones are the most likely
    mask = np.array([False, True, False, True, False, True])
    for kw in ({"temperature": 1.0}, {"temperature": 3.0}, {"temperature": 1.0, "top_k": 2},
               {"temperature": 2.0, "top_p": 0.9}, {"temperature": 0.0}):
        draws = _draws(logits, mask, **kw)
        assert set(draws) <= {1, 3, 5}, kw


def test_forced_value_needs_no_logits_or_draw():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sample_logits(np.full(4, np.nan), np.array([0, 0, 1, 0], bool), temperature=1.0, rng=rng) == 2
    assert rng.bit_generator.state == state


def test_empty_mask_and_bad_logits_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="no value"):
        sample_logits(np.zeros(3), np.zeros(3, bool), temperature=1.0, rng=rng)
    with pytest.raises(FloatingPointError):
        sample_logits(np.array([0.0, np.nan, 1.0]), np.ones(3, bool), temperature=1.0, rng=rng)
    with pytest.raises(ValueError):
        sample_logits(np.zeros(4), np.ones(3, bool), temperature=1.0, rng=rng)


def test_greedy_takes_the_allowed_maximum():
    logits = np.array([1.0, 3.0, 2.0, 3.0, 10.0])
    mask = np.array([True, True, True, True, False])
    assert set(_draws(logits, mask, n=20, temperature=0.0)) == {1}  # ties → the lowest index


def test_temperature_sharpens_and_flattens():
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    mask = np.ones(3, bool)
    freq = lambda t: np.bincount(_draws(logits, mask, n=4000, temperature=t), minlength=3) / 4000  # noqa: E731
    assert np.allclose(freq(1.0), [0.5, 0.3, 0.2], atol=0.03)
    assert freq(0.3)[0] > 0.8
    assert np.all(np.abs(freq(50.0) - 1 / 3) < 0.04)


def test_top_k_keeps_the_k_most_likely_allowed():
    logits = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    mask = np.array([True, True, True, True, True, False])
    draws = _draws(logits, mask, temperature=5.0, top_k=2)
    assert set(draws) == {3, 4}
    assert set(_draws(logits, mask, temperature=5.0, top_k=1)) == {4}
    assert set(_draws(logits, mask, temperature=5.0, top_k=50)) == {0, 1, 2, 3, 4}


def test_top_p_keeps_the_nucleus():
    p = np.array([0.45, 0.3, 0.15, 0.07, 0.03])
    logits = np.log(p)
    mask = np.ones(5, bool)
    assert set(_draws(logits, mask, temperature=1.0, top_p=0.7)) == {0, 1}       # 0.75 ≥ 0.7
    assert set(_draws(logits, mask, temperature=1.0, top_p=0.74)) == {0, 1}
    assert set(_draws(logits, mask, temperature=1.0, top_p=0.8)) == {0, 1, 2}
    assert set(_draws(logits, mask, temperature=1.0, top_p=0.01)) == {0}
    assert set(_draws(logits, mask, n=3000, temperature=1.0, top_p=1.0)) == {0, 1, 2, 3, 4}
    # the nucleus is taken among allowed values only, after the mask
    mask2 = np.array([False, True, True, True, True])
    assert set(_draws(logits, mask2, temperature=1.0, top_p=0.5)) == {1}     # 0.3/0.55 = 0.545 ≥ 0.5
    assert set(_draws(logits, mask2, temperature=1.0, top_p=0.6)) == {1, 2}


# ---------------------------------------------------------------------------------------- config
def test_sampling_config_validates():
    for bad in ({"temperature": -1}, {"temperature": float("nan")}, {"temperature": {"pitch": -0.5}},
                {"top_k": 0}, {"top_k": 2.5}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(InputError):
            SamplingConfig(**bad)


def test_per_family_temperatures_resolve():
    cfg = SamplingConfig(temperature={"pitch": 0.0, 3: 2.0, "default": 0.7})
    assert cfg.temperatures(4, TOY_FAMILIES) == (0.7, 0.7, 0.0, 2.0)
    assert SamplingConfig(temperature={"pitch": 0.5}).temperatures(4, TOY_FAMILIES) == (1.0, 1.0, 0.5, 1.0)
    assert SamplingConfig(temperature=0.9).temperatures(3) == (0.9, 0.9, 0.9)
    with pytest.raises(InputError, match="no token family 'pich'"):
        SamplingConfig(temperature={"pich": 0.5}).temperatures(4, TOY_FAMILIES)
    with pytest.raises(InputError):
        SamplingConfig(temperature={"pitch": 0.5}).temperatures(4)  # names unknown


# ---------------------------------------------------------------------------------------- generate
def test_generate_follows_the_grammar_and_stops_by_itself():
    stepper = FakeStepper(_toy_logits())
    for seed in range(20):
        g = ToyGrammar(bars=3)
        rows = generate(stepper, g, (0.1, 0.5, 0.5), SamplingConfig(temperature=1.5, seed=seed), max_tokens=200)
        assert g.done and rows[0, 0] == BOS and rows[-1, 0] == EOS
        assert (rows[:, 0] == BAR).sum() == 3
        notes = rows[rows[:, 0] == NOTE]
        assert (notes[notes[:, 2] > 6, 3] <= 2).all()  # the partial row reached the grammar
        assert rows.dtype == np.int64 and rows.shape[1] == 4
        # ToyGrammar.advance asserts every row; replay it to be sure
        replay = ToyGrammar(bars=3)
        for r in rows:
            replay.advance(r)
        assert replay.done


def test_final_eos_is_not_fed_and_forced_rows_are_fed_once():
    stepper = FakeStepper(_toy_logits())
    rows = generate(stepper, ToyGrammar(bars=2), (0, 0.5, 0.5), SamplingConfig(seed=1), max_tokens=200)
    assert stepper.steps == len(rows) - 1


def test_same_seed_same_tokens_and_rng_override():
    stepper = FakeStepper(_toy_logits())
    run = lambda seed, **kw: generate(stepper, ToyGrammar(bars=4), (0, 0.5, 0.5),  # noqa: E731
                                      SamplingConfig(temperature=1.2, top_p=0.95, seed=seed), max_tokens=500, **kw)
    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))
    assert np.array_equal(run(99, rng=np.random.default_rng(7)), run(7))


def test_per_family_temperature_in_generation():
    logits = _toy_logits(3)
    logits[0] = np.array([0.0, 0.0, 0.0, 0.0, 2.0])  # mostly notes
    stepper = FakeStepper(logits)
    cfg = SamplingConfig(temperature={"pitch": 0.0, "default": 2.0}, seed=0)
    rows = generate(stepper, ToyGrammar(bars=6), (0, 0.5, 0.5), cfg, max_tokens=500, families=TOY_FAMILIES)
    notes = rows[rows[:, 0] == NOTE]
    assert len(notes) > 10
    assert set(notes[:, 2]) == {1 + int(np.argmax(logits[2][1:]))}  # greedy pitch among allowed
    assert len(set(notes[:, 3])) > 1                                 # durations still vary


def test_max_tokens_cuts_short_and_prompt_is_kept():
    stepper = FakeStepper(_toy_logits())
    g = ToyGrammar(bars=50)
    rows = generate(stepper, g, (0, 0.5, 0.5), SamplingConfig(seed=0), max_tokens=17)
    assert len(rows) == 17 and not g.done
    prompt = np.array([[BOS, 0, 0, 0], [BAR, 0, 0, 0], [NOTE, 3, 5, 2]])
    rows = generate(stepper, ToyGrammar(bars=1), (0, 0.5, 0.5), SamplingConfig(seed=0), max_tokens=100,
                    prompt=prompt)
    assert np.array_equal(rows[:3], prompt) and rows[-1, 0] == EOS
    with pytest.raises(InputError):
        generate(stepper, ToyGrammar(), (0, 0.5, 0.5), max_tokens=0)


def test_unforced_first_token_needs_a_prompt():
    stepper = FakeStepper(_toy_logits())
    with pytest.raises(InputError, match="prompt"):
        generate(stepper, UnconstrainedGrammar(TOY_SIZES), (0, 0.5, 0.5), max_tokens=10)
    rows = generate(stepper, UnconstrainedGrammar(TOY_SIZES), (0, 0.5, 0.5), max_tokens=10,
                    prompt=[[BOS, 0, 0, 0]])
    assert len(rows) == 10 and (rows[1:, 0] != PAD).all()


def test_nocache_matches_cache_on_a_torch_model():
    torch = pytest.importorskip("torch")
    from kelly.transformer.model import CompoundTransformer, TorchStepper, TransformerConfig

    torch.manual_seed(0)
    cfg = TransformerConfig(sizes=TOY_SIZES, n_layer=2, n_head=2, n_embd=32, block_size=128, dropout=0.0)
    stepper = TorchStepper(CompoundTransformer(cfg, seed=3))
    for sampling in (SamplingConfig(temperature=0.0), SamplingConfig(temperature=1.0, top_k=5, seed=4)):
        a = generate(stepper, ToyGrammar(bars=12), (0.8, 0.2, 0.4), sampling, max_tokens=128)
        b = generate_nocache(stepper, ToyGrammar(bars=12), (0.8, 0.2, 0.4), sampling, max_tokens=128)
        assert np.array_equal(a, b) and len(a) > 20


def test_sample_module_does_not_import_torch():
    code = ("import sys, numpy as np\n"
            "from kelly.transformer.sample import generate, UnconstrainedGrammar, SamplingConfig\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
