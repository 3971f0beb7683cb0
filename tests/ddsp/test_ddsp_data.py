"""The training data: splits, emotion labels from timbre, reading recordings, the cache."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("librosa")

from kelly.ddsp import data  # noqa: E402
from kelly.ddsp.core import SAMPLE_RATE, frames_for  # noqa: E402
from kelly.errors import FileFormatError, InputError  # noqa: E402

from _ddsp_helpers import hz  # noqa: E402


def test_split_is_deterministic_and_about_80_10_10():
    names = [f"audio:set:note{i}.wav" for i in range(1000)]
    splits = [data.split_of(n) for n in names]
    assert splits == [data.split_of(n) for n in names]
    counts = {k: splits.count(k) for k in ("train", "validation", "test")}
    assert sum(counts.values()) == 1000
    assert 740 <= counts["train"] <= 860
    assert 60 <= counts["validation"] <= 140 and 60 <= counts["test"] <= 140


def _harmonic_segment(name: str, n_harmonics: int, *, pitch: int = 57, level: float = 0.3) -> data.Segment:
    """A steady tone of ``n_harmonics`` equal harmonics, with its true f0 (no pitch tracking needed)."""
    from kelly.ddsp.features import loudness_db

    n = 16000
    t = np.arange(n) / SAMPLE_RATE
    f0 = hz(pitch)
    y = sum(np.sin(2 * np.pi * k * f0 * t) for k in range(1, n_harmonics + 1)) * level / n_harmonics
    frames = frames_for(n)
    seg = data.Segment(name=name, source="test", audio=y.astype(np.float32), f0_hz=np.full(frames, f0, np.float32),
                       voiced=np.ones(frames, bool), loudness_db=loudness_db(y).astype(np.float32), split="train")
    seg.descriptors = data.descriptors(seg)
    return seg


def test_emotion_labels_in_range_and_brighter_is_happier():
    dull = _harmonic_segment("dull", 1)
    middle = _harmonic_segment("middle", 3, level=0.1)
    bright = _harmonic_segment("bright", 12, level=0.05)
    assert bright.descriptors["tilt_db"] > middle.descriptors["tilt_db"] > dull.descriptors["tilt_db"]
    ref = data.emotion_labels([dull, middle, bright])
    for s in (dull, middle, bright):
        v, a, d = s.emotion
        assert -1.0 <= v <= 1.0 and 0.0 <= a <= 1.0 and 0.0 <= d <= 1.0
    assert bright.emotion[0] > middle.emotion[0] > dull.emotion[0]
    assert dull.emotion[2] > bright.emotion[2]  # the loudest is the most dominant
    assert set(ref) == set(dull.descriptors) and all(len(q) == 11 for q in ref.values())


def test_held_out_segments_are_ranked_against_the_training_ones():
    train = [_harmonic_segment(f"t{k}", k) for k in (1, 4)]
    held = _harmonic_segment("held", 20, level=0.05)
    held.split = "test"
    data.emotion_labels(train + [held])
    assert held.emotion[0] == pytest.approx(1.0)  # brighter than any training segment: clipped to the top


def test_a_corrupt_recording_is_a_file_format_error(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(FileFormatError, match="noise.wav"):
        data.read_recording(bad)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(FileFormatError):
        data.read_recording(empty)


def test_read_recording_reads_short_notes(tmp_path):
    import soundfile

    y = np.sin(np.linspace(0, 100, 2205)) * 0.5
    soundfile.write(tmp_path / "short.wav", np.stack([y, y], axis=1), 22050)
    mono, sr = data.read_recording(tmp_path / "short.wav")
    assert sr == 22050 and mono.shape == (2205,)
    assert np.allclose(mono, y, atol=1e-4)


def test_audio_files_lists_sound_files_only(tmp_path):
    for name in ("b.wav", "a.FLAC", "c.txt", "d.ogg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in data.audio_files(tmp_path)] == ["a.FLAC", "b.wav", "d.ogg"]
    with pytest.raises(InputError, match="no such folder"):
        data.audio_files(tmp_path / "missing")


def test_build_without_audio_is_an_input_error():
    with pytest.raises(InputError, match="no training audio"):
        data.build(standard=False, audio_dirs=[], log=lambda _l: None)


def test_save_and_load_round_trip(tmp_path):
    a = _harmonic_segment("a", 2)
    b = _harmonic_segment("b", 5)
    b.split, b.pitch, b.velocity, b.program, b.emotion = "validation", 57, 90, 4, (0.25, 0.5, 0.75)
    b.audio = b.audio[:12345]  # different lengths
    path = tmp_path / "data.npz"
    data.save([a, b], path)
    back = data.load(path)
    assert [s.name for s in back] == ["a", "b"]
    for orig, got in zip([a, b], back):
        for k in ("audio", "f0_hz", "voiced", "loudness_db"):
            assert np.array_equal(getattr(orig, k), getattr(got, k)), k
            assert getattr(orig, k).dtype == getattr(got, k).dtype, k
        for k in ("source", "split", "pitch", "velocity", "program", "descriptors", "emotion"):
            assert getattr(orig, k) == getattr(got, k), k


def test_training_windows_line_up(trained_voice):
    segments = data.load(trained_voice.folder / "data.npz")
    x, f0, y = data.windows(segments, np.random.default_rng(0), 5)
    n_frames = frames_for(data.WINDOW_SAMPLES)
    assert x.shape == (5, n_frames, 5) and f0.shape == (5, n_frames) and y.shape == (5, data.WINDOW_SAMPLES)
    assert x.dtype == f0.dtype == y.dtype == np.float32
    assert np.all((x[..., :2] >= 0) & (x[..., :2] <= 1))
    # the segments are the synthetic notes: their tracked pitch is one of the notes played
    from _ddsp_helpers import PITCHES

    voiced_f0 = np.concatenate([s.f0_hz[s.voiced] for s in segments])
    nearest = np.min(np.abs(1200 * np.log2(voiced_f0[:, None] / np.array([hz(p) for p in PITCHES])[None])), axis=1)
    assert np.median(nearest) < 20.0
