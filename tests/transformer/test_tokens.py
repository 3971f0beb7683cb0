"""Compound-word tokens: round trips of composed pieces, edge cases, and repair of garbage."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kelly.composer import ComposeOptions, get_composer
from kelly.emotion.thesaurus import state_for
from kelly.errors import InputError
from kelly.song import DRUM_CHANNEL, Note, Role, Song, Track, read_midi_bytes
from kelly.transformer.tokens import (BAR, BOS, EOS, F_DURATION, F_METER, F_PITCH, F_POSITION, F_PROGRAM, F_ROLE,
                                      F_TEMPO, F_VELOCITY, FAMILIES, METERS, NOTE, PAD, POSITION, CompoundTokenizer,
                                      role_for_program)

TK = CompoundTokenizer()
F = len(FAMILIES)

#: (emotion, meter, seed): 4/4, 3/4 and 6/8, calm to furious
PIECES = [("hope", None, 0), ("grief", "3/4", 1), ("joyful", "6/8", 2), ("calm", None, 3), ("fury", "6/8", 4),
          ("terrified", "3/4", 5), ("anxious", None, 6)]


@pytest.fixture(scope="module")
def composed():
    composer = get_composer("rules")
    return [composer.compose(state_for(name), ComposeOptions(bars=8, seed=seed, meter=meter))
            for name, meter, seed in PIECES]


def _key(track: Track) -> tuple[int, Role]:
    """(program, role) as the tokenizer keys a part."""
    if track.is_drum:
        return -1, track.role if track.role in (Role.DRUMS, Role.PERCUSSION) else Role.DRUMS
    return track.program, track.role or role_for_program(track.program)


def _check_round_trip(song: Song, back: Song) -> int:
    """Every note of ``song`` back within the documented quantization; returns the notes compared."""
    assert back.warnings == []
    assert back.ppq == 480
    assert back.time_signature == tuple(song.time_signature)
    scale = 480 / song.ppq
    want: dict = {}
    for t in song.tracks:
        want.setdefault(_key(t), []).extend(n for n in t.notes if n.duration > 0)
    got = {}
    for t in back.tracks:
        key = (-1 if t.channel == DRUM_CHANNEL else t.program, t.role)
        assert key not in got, f"two tracks for {key}"
        got[key] = t.notes
    assert set(got) == {k for k, v in want.items() if v}
    compared = 0
    for key, notes in want.items():
        if not notes:
            continue
        q = sorted(((int(np.floor(n.start * scale / 40 + 0.5)) * 40, n.pitch, -n.duration, n) for n in notes),
                   key=lambda x: x[:3])
        # encode keeps one note per onset and pitch in a part (the longest)
        q = [x for i, x in enumerate(q) if i == 0 or x[:2] != q[i - 1][:2]]
        d = sorted(got[key], key=lambda n: (n.start, n.pitch, -n.duration))
        assert len(q) == len(d), key
        for (qstart, pitch, _, orig), dec in zip(q, d):
            assert dec.start == qstart and abs(dec.start - orig.start * scale) <= 20
            assert dec.pitch == orig.pitch
            dur = orig.duration * scale
            if dur <= 32 * 480:
                assert abs(dec.duration - dur) <= max(20, 0.032 * dur), (orig, dec)
            else:
                assert dec.duration == 32 * 480
            assert dec.velocity in TK.velocities and abs(dec.velocity - orig.velocity) <= 2
            compared += 1
    # tempo: the bin of the tempo in force at each bar line
    bar = back.bar_ticks
    last = max(n.start for t in back.tracks for n in t.notes)
    for b in range(last // bar + 1):
        src = [bpm for tick, bpm in sorted(song.tempos) if tick * scale <= b * bar + 20][-1]
        dec = [bpm for tick, bpm in back.tempos if tick <= b * bar][-1]
        assert abs(dec - src) <= 0.015 * src + 0.5
    return compared


def test_families_and_sizes():
    assert FAMILIES[0] == "type"
    assert len(TK.sizes) == F
    assert TK.sizes == (6, 97, 130, 10, 129, 97, 33, 65, 24)
    assert (TK.PAD, TK.BOS, TK.EOS, TK.BAR, TK.POSITION, TK.NOTE, TK.NONE) == (0, 1, 2, 3, 4, 5, 0)
    assert CompoundTokenizer().sizes == TK.sizes  # deterministic vocabulary
    assert list(TK.velocities[:3]) == [3, 7, 11] and TK.velocities[-1] == 127 and len(TK.velocities) == 32
    assert TK.tempos[0] == 40 and TK.tempos[-1] == 250
    assert max(TK.steps_per_bar) == TK.sizes[F_POSITION] - 1
    assert TK.duration_steps[-1] * TK.ticks_per_step == 32 * 480


@pytest.mark.parametrize("k", range(len(PIECES)))
def test_round_trip_composed(composed, k):
    song = composed[k].song
    tokens = TK.encode(song)
    assert tokens.dtype == np.int64 and tokens.ndim == 2 and tokens.shape[1] == F
    assert tokens[0, 0] == BOS and tokens[-1, 0] == EOS
    assert not tokens[0, 1:].any() and not tokens[-1, 1:].any()
    fixed, repairs = TK.repair(tokens)
    assert repairs == [] and np.array_equal(fixed, tokens)
    assert TK.bars(tokens) == 8
    total = sum(len(t.notes) for t in song.tracks)
    distinct = len({(_key(t), (n.start + 20) // 40, n.pitch) for t in song.tracks for n in t.notes})
    assert _check_round_trip(song, TK.decode(tokens)) == distinct >= 0.99 * total
    # the quantized score too (it can hold exact duplicates, which encode drops), and the decoded song
    # encodes to the same tokens
    score = composed[k].score
    assert _check_round_trip(score, TK.decode(TK.encode(score))) > 0
    assert np.array_equal(TK.encode(TK.decode(tokens)), tokens)


def test_decoded_parts_are_recognisable(composed):
    back = TK.decode(TK.encode(composed[2].song))  # joyful: drums and percussion both on channel 10
    names = [t.name for t in back.tracks]
    assert names[0] == "Melody" and back.tracks[0].role is Role.MELODY
    assert {"Drums", "Percussion"} <= set(names)
    channels = [t.channel for t in back.tracks if t.channel != DRUM_CHANNEL]
    assert len(set(channels)) == len(channels) and DRUM_CHANNEL not in channels
    assert all(t.program == 0 for t in back.tracks if t.channel == DRUM_CHANNEL)
    again = read_midi_bytes(back.to_bytes())  # roles survive a MIDI file through the names
    assert [t.role for t in again.tracks] == [t.role for t in back.tracks]


def test_shared_program_keeps_parts_apart():
    # "neutral": Kelly's melody and chords are both piano (program 0)
    song = Song([Track("Chords", 0, 1, [Note(0, 60, 480, 80), Note(0, 64, 480, 80)], Role.HARMONY),
                 Track("Melody", 0, 0, [Note(0, 72, 240, 100), Note(240, 74, 240, 100)], Role.MELODY),
                 Track("Flute", 73, 2, [Note(0, 79, 480, 90)]),            # no role: from the program
                 Track("Lead", 80, 3, [Note(480, 81, 480, 90)], Role.MELODY)])
    back = TK.decode(TK.encode(song))
    assert [(t.name, t.program, t.role) for t in back.tracks] == [
        ("Melody (Acoustic Grand Piano)", 0, Role.MELODY), ("Melody (Flute)", 73, Role.MELODY),
        ("Melody (Lead 1 (square))", 80, Role.MELODY), ("Chords", 0, Role.HARMONY)]
    again = read_midi_bytes(back.to_bytes())
    assert [t.role for t in again.tracks] == [t.role for t in back.tracks]


def test_program_roles():
    assert role_for_program(-1) is Role.DRUMS
    assert role_for_program(0) is Role.HARMONY and role_for_program(7) is Role.HARMONY
    assert role_for_program(33) is Role.BASS and role_for_program(48) is Role.STRINGS
    assert role_for_program(89) is Role.PAD and role_for_program(73) is Role.MELODY
    assert role_for_program(81) is Role.MELODY and role_for_program(115) is Role.PERCUSSION


def test_edges_of_encoding():
    # empty song: one empty bar
    tokens = TK.encode(Song())
    assert tokens[:, 0].tolist() == [BOS, BAR, EOS]
    assert TK.decode(tokens).tracks == [] and TK.decode(tokens).warnings == []
    # other PPQ, negative start, zero-length note, very long note, tempo change mid-bar, duplicate after rounding
    song = Song([Track("Bass", 33, 2, [Note(-30, 40, 960, 64), Note(1920, 43, 0, 90), Note(3840, 43, 40 * 960, 127),
                                       Note(3845, 43, 100, 1), Note(9130, 45, 960, 64)], Role.BASS)],
                tempos=[(0, 90.0), (2000, 100.0), (6000, 300.0)], time_signature=(3, 4), ppq=960)
    tokens = TK.encode(song)
    back = TK.decode(tokens)
    assert back.warnings == [] and back.time_signature == (3, 4)
    notes = back.tracks[0].notes
    assert [(n.start, n.pitch, n.duration) for n in notes] == [(0, 40, 480), (1920, 43, 32 * 480), (4560, 45, 480)]
    assert notes[1].velocity == 127
    # tempo of each bar = tempo in force at its bar line; 300 BPM clamps to 250; moves to bar lines
    bar = back.bar_ticks
    assert [t for t, _ in back.tempos] == [0, bar, 3 * bar]
    assert [abs(b - want) <= 0.015 * want + 0.5 for (_, b), want in zip(back.tempos, (90, 100, 250))] == [True] * 3
    assert back.tempos[-1][1] == 250
    # unknown meter, not a song
    with pytest.raises(InputError, match="5/16"):
        TK.encode(Song(time_signature=(5, 16)))
    with pytest.raises(InputError):
        TK.encode("not a song")
    for meter in METERS:
        assert TK.steps_per_bar[TK.meter_index(meter) - 1] == 12 * 4 * meter[0] // meter[1]


def test_triplets_and_sixteenths_are_exact():
    notes = [Note(k * 160, 60 + k % 5, 160, 79) for k in range(12)] + [Note(k * 120, 50, 120, 95) for k in range(16)]
    song = Song([Track("Melody", 73, 0, notes[:12], Role.MELODY), Track("Bass", 33, 1, notes[12:], Role.BASS)])
    back = TK.decode(TK.encode(song))
    assert sorted(back.tracks[0].notes) == sorted(notes[:12])
    assert sorted(back.tracks[1].notes) == sorted(notes[12:])


def test_encode_speed(composed, capsys):
    song = get_composer("rules").compose(state_for("hope"), ComposeOptions(bars=32, seed=7)).song
    TK.encode(song)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        tokens = TK.encode(song)
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    TK.decode(tokens)
    dec = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n  encode of a 32-bar, {len(song.tracks)}-track piece ({song.note_count()} notes, {len(tokens)} "
              f"tokens): {1000 * min(runs):.2f} ms (best of 5); decode {1000 * dec:.2f} ms")


# ---------------------------------------------------------------------- repair

def _row(t, **values):
    row = [0] * F
    row[0] = t
    for name, v in values.items():
        row[FAMILIES.index(name)] = v
    return row


def test_repair_reports_each_kind():
    note = dict(program=TK.program_index(0), role=TK.role_index("harmony"), pitch=61, duration=12, velocity=20)
    seq = np.array([
        _row(POSITION, position=1),                  # no BOS, no BAR yet
        _row(NOTE, **note),
        _row(NOTE, **note),                          # duplicate
        _row(POSITION, position=1),                  # not after the previous: joins it
        _row(NOTE, **{**note, "pitch": 65}),
        _row(POSITION, position=60),                 # outside a 4/4 bar: dropped with its note
        _row(NOTE, **{**note, "pitch": 67}),
        _row(BAR, tempo=99, meter=2),                # invalid tempo cleared, meter on a later bar cleared
        _row(POSITION, position=5),                  # empty position
        _row(POSITION, position=6),
        _row(NOTE, **{**note, "role": TK.role_index("drums")}),  # a pitched part cannot be Drums
        _row(NOTE, **{**note, "pitch": 0}),          # pitch NONE
        _row(PAD),                                   # padding inside
        _row(9),                                     # unknown type
        _row(BOS),
    ])
    fixed, repairs = TK.repair(seq)
    text = "\n".join(repairs)
    for word in ("BOS was added", "no BAR before", "duplicate", "not after the previous", "outside their bar",
                 "meters on bars after", "tempo values out of range", "without notes", "set from the program",
                 "out of range were dropped", "PAD rows", "unknown type", "BOS rows after", "EOS was added"):
        assert word in text, word
    again, more = TK.repair(fixed)
    assert more == [] and np.array_equal(again, fixed)
    song = TK.decode(seq)
    assert song.warnings == repairs
    assert [(n.start, n.pitch) for n in song.tracks[0].notes] == [(0, 60), (0, 64), (1920 + 5 * 40, 60)]
    assert song.tracks[0].role is Role.HARMONY


def test_padding_at_the_ends_is_not_a_repair():
    tokens = TK.encode(Song([Track("Melody", 73, 0, [Note(0, 72, 480, 90)], Role.MELODY)]))
    pad = np.zeros((5, F), dtype=np.int64)
    fixed, repairs = TK.repair(np.concatenate([pad, tokens, pad]))
    assert repairs == [] and np.array_equal(fixed, tokens)
    fixed, repairs = TK.repair(np.concatenate([tokens, tokens]))
    assert np.array_equal(fixed, tokens) and repairs == [f"{len(tokens)} row(s) after EOS were dropped"]


def test_repair_input_shapes():
    assert TK.repair(np.zeros((0, F), dtype=np.int64))[0][:, 0].tolist() == [BOS, BAR, EOS]
    assert TK.repair([])[0][:, 0].tolist() == [BOS, BAR, EOS]
    assert TK.repair(np.array([BOS] + [0] * (F - 1)))[0][:, 0].tolist() == [BOS, BAR, EOS]
    assert len(TK.decode(np.full((3, F), np.nan)).warnings) >= 1
    TK.decode(np.full((4, F), 2**64 - 1, dtype=np.uint64))
    TK.decode(np.ones((4, F), dtype=bool))
    with pytest.raises(InputError):
        TK.repair(np.zeros((3, F + 1), dtype=np.int64))
    with pytest.raises(InputError):
        TK.repair(np.zeros((2, 3, F), dtype=np.int64))
    with pytest.raises(InputError):
        TK.repair(np.array([["a"] * F]))


def test_repair_caps_bars_and_notes():
    tk = CompoundTokenizer(max_notes_per_position=3)
    rows = [_row(BOS), _row(BAR, tempo=10, meter=1), _row(POSITION, position=1)]
    rows += [_row(NOTE, program=2, role=2, pitch=40 + k, duration=3, velocity=5) for k in range(6)]
    fixed, repairs = tk.repair(np.array(rows))
    assert int((fixed[:, 0] == NOTE).sum()) == 3 and any("beyond 3" in r for r in repairs)
    many = np.zeros((TK.max_bars + 5, F), dtype=np.int64)
    many[:, 0] = BAR
    fixed, repairs = TK.repair(many)
    assert TK.bars(fixed) == TK.max_bars and any("bars after" in r for r in repairs)


def test_decode_never_raises_on_garbage():
    """10,000 random arrays (fixed seed) of random lengths, in and out of range, huge and negative values."""
    rng = np.random.default_rng(12)
    sizes = np.array(TK.sizes)
    extremes = np.array([-1, -7, -(2**63), 2**63 - 1, 2**31, 10**12, 255, 128])
    notes = 0
    t0 = time.perf_counter()
    for k in range(10_000):
        n = int(rng.choice([0, int(rng.integers(1, 8)), int(rng.integers(1, 60)), int(rng.integers(60, 600))],
                           p=[0.02, 0.3, 0.6, 0.08]))
        mode = k % 3
        if mode == 0:
            a = rng.integers(0, sizes, size=(n, F))
        elif mode == 1:
            a = rng.integers(-2, 12, size=(n, F))
        else:
            a = rng.integers(0, sizes, size=(n, F))
            hit = rng.random((n, F)) < 0.1
            a[hit] = rng.choice(extremes, size=int(hit.sum()))
        if n and rng.random() < 0.5:  # mostly structural types, so that repair has music to keep
            a[:, 0] = rng.choice([BAR, POSITION, NOTE, NOTE, NOTE], size=n)
        song = TK.decode(a)
        assert isinstance(song, Song)
        assert song.to_bytes()[:4] == b"MThd"
        notes += song.note_count()
    assert notes > 1000  # the fuzz reached real notes, not only empty songs
    print(f"\n  10,000 garbage arrays decoded in {time.perf_counter() - t0:.1f} s ({notes:,} notes kept)")


def test_repaired_garbage_is_stable():
    rng = np.random.default_rng(5)
    sizes = np.array(TK.sizes)
    for _ in range(300):
        a = rng.integers(0, sizes, size=(int(rng.integers(0, 120)), F))
        a[:, 0] = rng.choice([BAR, POSITION, NOTE, NOTE, EOS, PAD], size=len(a))
        fixed, _ = TK.repair(a)
        again, repairs = TK.repair(fixed)
        assert repairs == [] and np.array_equal(again, fixed)
        assert fixed[0, 0] == BOS and fixed[-1, 0] == EOS and fixed[1, 0] == BAR
        assert fixed[1, F_METER] > 0 and fixed[1, F_TEMPO] > 0
        notes = fixed[fixed[:, 0] == NOTE]
        assert (notes[:, [F_PROGRAM, F_ROLE, F_PITCH, F_DURATION, F_VELOCITY]] > 0).all()
