"""Extraction and application agree on swing and per-slot offsets."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.groove import GrooveTemplate, apply_template, extract_groove, get_template, swing
from kelly.groove.swing import warp
from kelly.song import Note, Song, Track, read_midi

from _groove_helpers import straight_song


@pytest.mark.parametrize("step", [120, 240])
def test_straight_file_has_no_swing(step):
    assert extract_groove(straight_song(step=step)).swing_factor == 0.0


@pytest.mark.parametrize("step", [120, 240])
def test_jazz_swing_comes_back(tmp_path, step):
    grooved = apply_template(straight_song(step=step), get_template("jazz"), 1.0)
    path = tmp_path / "jazz.mid"
    grooved.save(path)
    extracted = extract_groove(read_midi(path))
    assert extracted.swing_factor == pytest.approx(0.67, abs=0.05)
    assert extracted.swing_factor > 0.5  # not trivially true: far from the straight value


@pytest.mark.parametrize("step", [120, 240])
def test_rock_has_no_swing(step):
    grooved = apply_template(straight_song(step=step), get_template("rock"), 1.0)
    assert extract_groove(grooved).swing_factor == pytest.approx(0.0, abs=0.05)


def test_blues_and_latin_swing_come_back():
    assert extract_groove(apply_template(straight_song(), get_template("blues"), 1.0)).swing_factor == \
        pytest.approx(0.6, abs=0.05)
    assert extract_groove(apply_template(straight_song(), get_template("latin"), 1.0)).swing_factor == \
        pytest.approx(0.1, abs=0.05)


@pytest.mark.parametrize("amount", [0.2, 0.5, 0.67, 0.9])
def test_swing_function_and_extraction_agree(amount):
    assert extract_groove(swing(straight_song(step=240), amount)).swing_factor == pytest.approx(amount, abs=0.01)


def test_extraction_at_other_ppq_reports_480_ticks():
    grooved = apply_template(straight_song(ppq=960, step=240), get_template("rock"), 1.0)
    t = extract_groove(grooved)
    assert t.ppq == 480 and t.swing_factor == 0.0
    assert t.timing_deviations == pytest.approx(get_template("rock").timing_deviations, abs=0.6)
    jazz = apply_template(straight_song(ppq=960, step=480), get_template("jazz"), 1.0)
    assert extract_groove(jazz).swing_factor == pytest.approx(0.67, abs=0.05)


def test_extracted_template_reproduces_the_groove():
    source = straight_song(step=120)
    grooved = apply_template(source, get_template("hiphop"), 1.0)
    again = apply_template(source, extract_groove(grooved), 1.0)
    a = np.array([n.start for n in grooved.tracks[0].notes])
    b = np.array([n.start for n in again.tracks[0].notes])
    assert np.max(np.abs(a - b)) <= 1
    assert [n.velocity for n in again.tracks[0].notes] == [n.velocity for n in grooved.tracks[0].notes]


def test_intensity_zero_changes_nothing():
    song = straight_song(step=120)
    song.tracks[0].notes[3] = song.tracks[0].notes[3].moved(start=367, velocity=77)  # a human note
    song.tracks[0].notes.sort()
    out = apply_template(song, get_template("jazz"), 0.0)
    assert out.tracks[0].notes == song.tracks[0].notes
    assert out is not song and out.tracks[0] is not song.tracks[0]


@pytest.mark.parametrize("name", ["rock", "jazz", "bedroom_lofi"])
def test_intensity_one_lands_on_template_offsets(name):
    template = get_template(name)
    out = apply_template(straight_song(step=120), template, 1.0)
    by_start = sorted(out.tracks[0].notes)
    grid = np.arange(0, 4 * 1920, 120)
    slot = (grid % 1920) // 120
    expected = np.maximum(0, np.rint(warp(grid, template.swing_factor, 480) + np.array(template.timing_deviations)[slot]))
    assert sorted(n.start for n in by_start) == sorted(expected.astype(int).tolist())
    vel_by_grid = {int(e): template.velocity_curve[s] for e, s in zip(expected, slot)}
    assert all(n.velocity == vel_by_grid[n.start] for n in by_start)


def test_half_intensity_is_half_way():
    out = apply_template(straight_song(step=120), get_template("rock"), 0.5)
    assert out.tracks[0].notes[3].start == 360 - 4  # rock slot 3 = −8 ticks, half of it
    assert out.tracks[0].notes[0].velocity == round(100 * 0.5 + 115 * 0.5)


def test_never_before_zero_and_velocity_clamped():
    devs = [-60.0] + [0.0] * 15
    t = GrooveTemplate(name="early", timing_deviations=tuple(devs), velocity_curve=tuple([127.0] * 16))
    out = apply_template(straight_song(step=480), t, 1.0)
    starts = [n.start for n in out.tracks[0].notes]
    assert min(starts) == 0 and starts == sorted(starts)
    assert all(1 <= n.velocity <= 127 for n in out.tracks[0].notes)


def test_tracks_option_and_unknown_track():
    song = straight_song(step=240)
    song.tracks.append(Track("bass", 33, 1, [Note(t, 40, 100, 90) for t in range(0, 7680, 240)]))
    out = apply_template(song, get_template("jazz"), 1.0, tracks=["bass"])
    assert out.tracks[0].notes == song.tracks[0].notes
    assert out.tracks[1].notes != song.tracks[1].notes
    with pytest.raises(InputError):
        apply_template(song, get_template("jazz"), 1.0, tracks=["vocals"])
    with pytest.raises(InputError):
        apply_template(song, get_template("jazz"), 1.5)


def test_extract_needs_notes():
    with pytest.raises(InputError):
        extract_groove(Song(tracks=[Track("empty")]))


def test_extract_stats_are_sane():
    t = extract_groove(apply_template(straight_song(step=120), get_template("funk"), 1.0), name="x")
    assert t.name == "x" and len(t.velocity_curve) == 16
    assert t.velocity_stats["min"] >= 45 and t.velocity_stats["max"] <= 110
    assert t.timing_stats["mean_deviation_ms"] > 0
    assert t.velocity_curve == pytest.approx(get_template("funk").velocity_curve)


def test_uniformly_late_playing_is_not_swing():
    song = straight_song(step=120)
    song.tracks[0].notes = [n.moved(start=n.start + 20) for n in song.tracks[0].notes]
    t = extract_groove(song)
    assert t.swing_factor == 0.0
    assert t.timing_deviations == pytest.approx([20.0] * 16)


def test_humanized_straight_playing_reads_as_nearly_straight():
    from kelly.groove import get_style, humanize

    for seed in range(3):
        played = humanize(straight_song(bars=16, step=120), get_style("natural"), seed)
        assert extract_groove(played).swing_factor < 0.05
