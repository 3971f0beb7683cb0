"""The recognizer's training windows match how it listens: 256-frame windows from a reset,
the first 32 frames unsupervised, training renders coloured by a random level and tilt."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.emotion.audio import RECOGNIZER_BURN_IN, RECOGNIZER_WINDOW, TARGET_SR
from kelly.ml.data.training import COLOUR_GAIN, COLOUR_TILT, colour, piece_items


def test_colour_moves_level_and_tilt_within_bounds_and_keeps_padding():
    rows = np.full((10, 128), 0.5, dtype=np.float32)
    rows[7:] = 0.0  # padding
    a = colour(rows, np.random.default_rng(3), 7)
    b = colour(rows, np.random.default_rng(3), 7)
    assert np.array_equal(a, b)  # seeded: the same data set every run
    assert np.array_equal(a[7:], rows[7:])
    delta = a[:7] - rows[:7]
    assert np.abs(delta).max() <= COLOUR_GAIN + COLOUR_TILT + 1e-6
    assert not np.allclose(delta[:, 0], delta[:, -1])  # a tilt, not only a gain
    assert np.allclose(delta, delta[0])  # the same colour on every frame of a window


def test_recognizer_items_mask_the_burn_in_and_colour_only_training_pieces(tmp_path):
    sf = pytest.importorskip("soundfile")
    t = np.arange(int(TARGET_SR * 8)) / TARGET_SR
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    (tmp_path / "audio" / "composed").mkdir(parents=True)
    sf.write(tmp_path / "audio" / "composed" / "x.wav", y.astype(np.float32), TARGET_SR)
    (tmp_path / "composed" / "x.mid").parent.mkdir(parents=True)
    rec = {"id": "composed/x/s0", "collection": "composed", "midi": "composed/x.mid", "family": "joy",
           "labels": {"valence": 0.5, "arousal": 0.7, "dominance": 0.5, "intensity": 0.6},
           "key": {"tonic_pc": 0}, "split": "validation"}
    plain = piece_items("emotionrecognizer", rec, tmp_path, seq_len=RECOGNIZER_WINDOW)
    assert len(plain) == 2  # 8 s = 345 frames: one full window and one padded
    x, target, mask = plain[0]
    assert x.shape == (RECOGNIZER_WINDOW, 128)
    assert not mask[:RECOGNIZER_BURN_IN].any() and mask[RECOGNIZER_BURN_IN:, 0].all()
    trained = piece_items("emotionrecognizer", {**rec, "split": "train"}, tmp_path, seq_len=RECOGNIZER_WINDOW)
    assert not np.array_equal(trained[0][0], x)  # coloured
    assert np.array_equal(trained[0][2], mask)  # same supervision


def test_remapped_song_reorchestrates_pitched_parts_only_and_is_seeded(tmp_path):
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import ComposeOptions, compose
    from kelly.ml.data.render import REMAP_PROGRAMS, remapped_song

    song = compose(state_for("excitement"), ComposeOptions(bars=2, seed=1)).song
    song.save(tmp_path / "x.mid")
    rec = {"id": "composed/excitement/s1", "midi": "x.mid"}
    a, b = remapped_song(rec, tmp_path), remapped_song(rec, tmp_path)
    assert [t.program for t in a.tracks] == [t.program for t in b.tracks]
    drums = [(t.program, t2.program) for t, t2 in zip(song.tracks, a.tracks) if t.is_drum]
    assert drums and all(x == y for x, y in drums)
    pitched = [(t.program, t2.program) for t, t2 in zip(song.tracks, a.tracks) if not t.is_drum]
    assert all(y in REMAP_PROGRAMS for _, y in pitched) and any(x != y for x, y in pitched)
    assert [len(t.notes) for t in a.tracks] == [len(t.notes) for t in song.tracks]
