"""The decoding grammar: random walks end after exactly the requested bars and decode with no repairs."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.composer import ComposeOptions, get_composer
from kelly.emotion.thesaurus import state_for
from kelly.errors import InputError
from kelly.song import DRUM_CHANNEL, Role
from kelly.transformer.tokens import (BAR, BOS, EOS, F_METER, F_PITCH, F_POSITION, F_PROGRAM, F_ROLE, F_TEMPO,
                                      FAMILIES, NONE, NOTE, POSITION, CompoundTokenizer)

TK = CompoundTokenizer()
F = len(FAMILIES)


def walk(grammar, rng, *, pass_partial=True, max_rows=100_000):
    """Sample uniformly from the masks until the grammar is done; every mask must be non-empty."""
    rows = []
    while not grammar.done:
        tm = grammar.type_mask()
        assert tm.dtype == bool and tm.shape == (TK.sizes[0],) and tm.any()
        row = np.zeros(F, dtype=np.int64)
        row[0] = rng.choice(np.flatnonzero(tm))
        for f in range(1, F):
            fm = grammar.family_mask(int(row[0]), f, row if pass_partial else None)
            assert fm.dtype == bool and fm.shape == (TK.sizes[f],) and fm.any(), (FAMILIES[f], row)
            row[f] = rng.choice(np.flatnonzero(fm))
        grammar.advance(row)
        rows.append(row)
        assert len(rows) < max_rows
    return np.stack(rows)


def test_random_walks_end_after_the_requested_bars():
    rng = np.random.default_rng(2024)
    meters = [None, "4/4", "3/4", "6/8"]
    notes = 0
    for k in range(200):
        bars = int(rng.integers(1, 9))
        g = TK.grammar(bars=bars, meter=meters[k % 4], tempo_bpm=None if k % 3 else float(rng.uniform(50, 200)))
        seq = walk(g, rng)
        assert g.done and g.bar == bars
        assert seq[0, 0] == BOS and seq[-1, 0] == EOS and int((seq[:, 0] == EOS).sum()) == 1
        assert int((seq[:, 0] == BAR).sum()) == bars == TK.bars(seq)
        fixed, repairs = TK.repair(seq)
        assert repairs == [] and np.array_equal(fixed, seq)
        song = TK.decode(seq)
        assert song.warnings == []
        song.to_bytes()
        assert g.type_mask().tolist() == [True] + [False] * (TK.sizes[0] - 1)  # only PAD after EOS
        notes += song.note_count()
    assert notes > 500


def test_dense_walks_stop_and_respect_the_cap():
    """A sampler that always prefers NOTE, then POSITION, still ends: capped notes, rising positions."""
    tk = CompoundTokenizer(max_notes_per_position=5)
    rng = np.random.default_rng(3)
    for bars in (1, 3):
        g = tk.grammar(bars=bars, meter="3/4")
        rows = []
        while not g.done:
            tm = g.type_mask()
            t = next(t for t in (BOS, NOTE, POSITION, BAR, EOS) if tm[t])
            row = np.zeros(F, dtype=np.int64)
            row[0] = t
            for f in range(1, F):
                fm = g.family_mask(t, f, row)
                allowed = np.flatnonzero(fm)
                row[f] = allowed[0] if f == F_POSITION else rng.choice(allowed)
            g.advance(row)
            rows.append(row)
        seq = np.stack(rows)
        per_onset = np.diff(np.flatnonzero(np.isin(seq[:, 0], (POSITION, BAR, EOS))))
        assert per_onset.max() <= 6  # POSITION + at most 5 notes
        assert int((seq[:, 0] == POSITION).sum()) == bars * 36  # every step of every 3/4 bar
        assert tk.decode(seq).warnings == []


def test_bar_tokens_fix_meter_and_tempo():
    rng = np.random.default_rng(7)
    g = TK.grammar(bars=4, meter="6/8", tempo_bpm=132)
    seq = walk(g, rng)
    bars = seq[seq[:, 0] == BAR]
    assert bars[0, F_METER] == TK.meter_index("6/8") and (bars[1:, F_METER] == NONE).all()
    assert bars[0, F_TEMPO] == TK.tempo_index(132) and (bars[1:, F_TEMPO] == NONE).all()
    song = TK.decode(seq)
    assert song.time_signature == (6, 8) and song.tempos == [(0, 132.0)]
    assert g.meter == (6, 8)
    # without a fixed tempo, later bars may change it (NONE = unchanged) and the first must set it
    g = TK.grammar(bars=2)
    g.advance(np.array([BOS] + [0] * (F - 1)))
    first = g.family_mask(BAR, F_TEMPO)
    assert not first[NONE] and first[1:].all()
    g.advance(np.array([BAR, 0, 0, 0, 0, 0, 0, 10, 1]))
    later = g.family_mask(BAR, F_TEMPO)
    assert later.all()
    assert g.family_mask(BAR, F_METER).tolist() == [True] + [False] * (TK.sizes[F_METER] - 1)


def test_programs_roles_and_pitch_filter_are_honoured():
    scale = np.zeros(128, dtype=bool)
    scale[[p for p in range(48, 85) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]] = True  # C major, C3-C6
    triad = np.zeros(128, dtype=bool)
    triad[[60, 64, 67, 72]] = True

    def pitch_filter(bar, beat):
        assert 0 <= bar < 6 and 0 <= beat < 4
        return triad if beat == int(beat) else scale  # chord tones on the beats, scale tones between

    rng = np.random.default_rng(11)
    drum_lo, drum_hi = TK.drum_pitch_range
    checked = 0
    for _ in range(20):
        g = TK.grammar(bars=int(rng.integers(1, 6)), meter="4/4", programs=[73, -1], pitch_filter=pitch_filter)
        seq = walk(g, rng)
        song = TK.decode(seq)
        assert song.warnings == []
        for t in song.tracks:
            if t.channel == DRUM_CHANNEL:
                assert t.role in (Role.DRUMS, Role.PERCUSSION)
                assert all(drum_lo <= n.pitch <= drum_hi for n in t.notes)
            else:
                assert t.program == 73 and t.role is not Role.DRUMS
                for n in t.notes:
                    bar, tick = divmod(n.start, song.bar_ticks)
                    assert pitch_filter(bar, tick / 480)[n.pitch]
                    checked += 1
    assert checked > 20
    # melody only, one program: every note a melody note of that program
    g = TK.grammar(bars=3, programs=[40], roles=["melody"], pitch_filter=lambda bar, beat: scale)
    song = TK.decode(walk(g, rng))
    assert [(t.name, t.program, t.role) for t in song.tracks] in ([], [("Melody", 40, Role.MELODY)])
    assert all(scale[n.pitch] for t in song.tracks for n in t.notes)


def test_onsets_where_the_filter_allows_nothing_get_no_position():
    only_downbeats = np.ones(128, dtype=bool)
    nothing = np.zeros(128, dtype=bool)
    g = TK.grammar(bars=2, meter="3/4", programs=[0], pitch_filter=lambda bar, beat: only_downbeats
                   if beat in (0, 1, 2) else nothing)
    seq = walk(g, np.random.default_rng(1))
    positions = seq[seq[:, 0] == POSITION, F_POSITION] - 1
    assert set(positions.tolist()) <= {0, 12, 24}
    g = TK.grammar(bars=1, programs=[0], pitch_filter=lambda bar, beat: nothing)
    seq = walk(g, np.random.default_rng(1))  # an empty bar is still a bar
    assert seq[:, 0].tolist() == [BOS, BAR, EOS]


def test_within_a_row_masks_depend_on_program_and_role():
    g = TK.grammar(bars=1)
    for row in ([BOS] + [0] * (F - 1), [BAR, 0, 0, 0, 0, 0, 0, 20, 1], [POSITION, 1] + [0] * (F - 2)):
        g.advance(np.array(row))
    row = np.zeros(F, dtype=np.int64)
    row[0], row[F_PROGRAM] = NOTE, 1  # drums
    roles = g.family_mask(NOTE, F_ROLE, row)
    assert set(np.flatnonzero(roles)) == {TK.role_index("drums"), TK.role_index("percussion")}
    row[F_ROLE] = TK.role_index("drums")
    pitches = g.family_mask(NOTE, F_PITCH, row)
    lo, hi = TK.drum_pitch_range
    assert np.flatnonzero(pitches).tolist() == list(range(lo + 1, hi + 2))
    union = g.family_mask(NOTE, F_PITCH)  # without the row: the union of every choice
    assert union[1:].all() and not union[NONE]
    bad = row.copy()
    bad[F_PITCH], bad[5], bad[6] = 100, 1, 1  # a drum note outside the kit
    with pytest.raises(InputError, match="pitch"):
        g.advance(bad)
    good = row.copy()
    good[F_PITCH], good[5], good[6] = 37, 1, 1
    g.advance(good)
    again = g.family_mask(NOTE, F_PITCH, row)
    assert not again[37] and again[38]  # no duplicate note at one onset


def test_advance_refuses_invalid_rows():
    def fresh(bars=1):
        g = TK.grammar(bars=bars)
        g.advance(np.array([BOS] + [0] * (F - 1)))
        g.advance(np.array([BAR, 0, 0, 0, 0, 0, 0, 20, 1]))
        return g

    with pytest.raises(InputError, match="BAR"):
        TK.grammar(bars=1).advance(np.array([BAR, 0, 0, 0, 0, 0, 0, 20, 1]))  # BOS first
    with pytest.raises(InputError, match="EOS"):
        fresh(bars=2).advance(np.array([EOS] + [0] * (F - 1)))  # one bar too early
    with pytest.raises(InputError):
        fresh(bars=1).advance(np.array([BAR, 0, 0, 0, 0, 0, 0, 0, 0]))  # beyond the requested bars
    g = fresh()
    g.advance(np.array([POSITION, 10] + [0] * (F - 2)))
    with pytest.raises(InputError):
        g.advance(np.array([POSITION, 20] + [0] * (F - 2)))  # a position needs a note first
    g.advance(np.array([NOTE, 0, 2, 2, 61, 12, 20, 0, 0]))
    with pytest.raises(InputError, match="position"):
        g.advance(np.array([POSITION, 5] + [0] * (F - 2)))  # backwards
    with pytest.raises(InputError, match="position"):
        g.advance(np.array([POSITION, 49] + [0] * (F - 2)))  # outside a 4/4 bar
    with pytest.raises(InputError, match="tempo"):
        g.advance(np.array([NOTE, 0, 2, 2, 62, 12, 20, 5, 0]))  # tempo does not apply to a note
    with pytest.raises(InputError):
        g.advance(np.array([NOTE, 0, 2, 2, 61, 12, 20, 0, 0]))  # duplicate
    with pytest.raises(InputError):
        g.advance(np.zeros(F - 1, dtype=np.int64))  # wrong width
    g.advance(np.array([EOS] + [0] * (F - 1)))
    assert g.done
    g.advance(np.zeros(F, dtype=np.int64))  # PAD after the end is fine


def test_grammar_arguments_are_checked():
    for kwargs in (dict(bars=0), dict(bars=1.5), dict(bars=TK.max_bars + 1), dict(bars=1, meter="5/16"),
                   dict(bars=1, tempo_bpm=0), dict(bars=1, tempo_bpm=float("nan")), dict(bars=1, programs=[]),
                   dict(bars=1, programs=[128]), dict(bars=1, roles=["singer"]),
                   dict(bars=1, programs=[40], roles=["drums"])):
        with pytest.raises(InputError):
            TK.grammar(**kwargs)
    g = TK.grammar(bars=1, pitch_filter=lambda bar, beat: np.ones(12, dtype=bool))
    g.advance(np.array([BOS] + [0] * (F - 1)))
    with pytest.raises(InputError, match="128"):
        g.advance(np.array([BAR, 0, 0, 0, 0, 0, 0, 20, 1]))


def test_encoded_pieces_are_sentences_of_the_grammar():
    composer = get_composer("rules")
    for name, meter, seed in (("hope", None, 0), ("grief", "3/4", 1), ("fury", "6/8", 2)):
        song = composer.compose(state_for(name), ComposeOptions(bars=8, seed=seed, meter=meter)).song
        tokens = TK.encode(song)
        g = TK.grammar(bars=TK.bars(tokens), meter=meter)
        for row in tokens:
            g.advance(row)
        assert g.done
