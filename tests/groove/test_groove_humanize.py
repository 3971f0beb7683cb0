"""The seeded "Drunken Drummer": protection, ghosts, determinism, styles and presets."""

from __future__ import annotations

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.groove import HumanizeSettings, get_preset, get_style, humanize, preset_names, settings_from_intent
from kelly.song import Note, Track

from _groove_helpers import HAT, KICK, SNARE, kit_song, straight_song

GRID = 240


def _offsets(notes, pitch):
    """Distance of each note of ``pitch`` from the nearest 8th-note grid line."""
    starts = np.array([n.start for n in notes if n.pitch == pitch])
    return starts - np.rint(starts / GRID) * GRID


def _main_hits(notes, pitch):
    """Hits that are humanized originals (within ±60 ticks of the grid), not ghosts."""
    off = _offsets(notes, pitch)
    return off[np.abs(off) <= 60]


def test_kick_and_snare_move_less_and_drop_less_than_hats():
    song = kit_song(bars=64)
    n_each = len(song.tracks[0].notes) // 3
    out = humanize(song, HumanizeSettings(complexity=1.0, vulnerability=0.5), np.random.default_rng(7))
    notes = out.tracks[0].notes
    spread = {p: np.mean(np.abs(_main_hits(notes, p) - 5)) for p in (KICK, SNARE, HAT)}
    kept = {p: len(_main_hits(notes, p)) / n_each for p in (KICK, SNARE, HAT)}
    assert spread[KICK] < spread[SNARE] < spread[HAT]
    assert spread[HAT] > 1.5 * spread[KICK]
    assert kept[KICK] > kept[HAT] and kept[SNARE] > kept[HAT]
    assert 1 - kept[HAT] == pytest.approx(0.2 * 0.8, abs=0.04)   # 0.2 · c · (1 − 0.2)
    assert 1 - kept[KICK] == pytest.approx(0.2 * 0.2, abs=0.025)  # 0.2 · c · (1 − 0.8)


def test_ghost_notes_are_quiet_and_off_the_hits():
    song = kit_song(bars=16, velocity=127)
    settings = HumanizeSettings(complexity=0.5, vulnerability=0.9, ghost_probability=1.0)
    notes = humanize(song, settings, np.random.default_rng(1)).tracks[0].notes
    starts = np.array([n.start for n in notes])
    off = starts - np.rint(starts / GRID) * GRID
    ghosts = [n for n, o in zip(notes, off) if abs(o) > 60]
    assert len(ghosts) > 100
    assert all(n.pitch in (SNARE, HAT) for n in ghosts)
    assert max(n.velocity for n in ghosts) <= 45
    none = humanize(song, HumanizeSettings(complexity=0.5, vulnerability=0.9, ghost_notes=False),
                    np.random.default_rng(1)).tracks[0].notes
    assert all(abs(o) <= 60 for o in _offsets(none, SNARE))
    low = humanize(song, HumanizeSettings(complexity=0.5, vulnerability=0.5, ghost_probability=1.0),
                   np.random.default_rng(1)).tracks[0].notes
    assert all(abs(o) <= 60 for o in _offsets(low, SNARE))  # ghosts need vulnerability > 0.6


def test_same_seed_same_bytes_different_seed_different():
    song = kit_song(bars=8)
    song.tracks.append(Track("keys", 0, 0, [Note(t, 60 + (t // 240) % 5, 200, 80) for t in range(0, 8 * 1920, 240)]))
    settings = get_preset("chaotic_breakdown")
    a = humanize(song, settings, np.random.default_rng(42)).to_bytes()
    b = humanize(song, settings, np.random.default_rng(42)).to_bytes()
    c = humanize(song, settings, np.random.default_rng(43)).to_bytes()
    assert a == b and a != c
    assert humanize(song, settings, 42).to_bytes() == a  # an int seed works too


def test_tight_moves_less_than_drunk():
    song = kit_song(bars=32)

    def spread(style):
        notes = humanize(song, get_style(style), np.random.default_rng(3)).tracks[0].notes
        return np.mean(np.abs(np.concatenate([_main_hits(notes, p) for p in (KICK, SNARE, HAT)]) - 5))

    assert spread("tight") < spread("natural") < spread("drunk")
    assert spread("tight") < 0.3 * spread("drunk")


def test_bounds_zero_and_velocity():
    song = kit_song(bars=4, velocity=127)
    out = humanize(song, get_style("drunk"), np.random.default_rng(0))
    notes = out.tracks[0].notes
    assert min(n.start for n in notes) >= 0
    assert all(1 <= n.velocity <= 127 for n in notes)
    assert [n.start for n in notes] == sorted(n.start for n in notes)
    assert song.tracks[0].notes == kit_song(bars=4, velocity=127).tracks[0].notes  # input untouched


def test_complexity_zero_keeps_timing():
    song = kit_song(bars=4)
    out = humanize(song, HumanizeSettings(complexity=0.0, vulnerability=0.5), np.random.default_rng(0))
    assert [(n.start, n.pitch) for n in out.tracks[0].notes] == [(n.start, n.pitch) for n in song.tracks[0].notes]


def test_non_drum_tracks_are_humanized_gently_and_chords_stay_together():
    chords = [Note(t, p, 400, 80) for t in range(0, 32 * 1920, 480) for p in (60, 64, 67)]
    song = kit_song(bars=32)
    song.tracks.append(Track("keys", 0, 0, chords))
    out = humanize(song, HumanizeSettings(complexity=1.0, vulnerability=0.5), np.random.default_rng(5))
    keys = out.tracks[1].notes
    assert len(keys) == len(chords)  # no dropouts, no ghosts
    by_pitch = {p: [n.start for n in keys if n.pitch == p] for p in (60, 64, 67)}
    assert by_pitch[60] == by_pitch[64] == by_pitch[67]
    key_spread = np.mean(np.abs(np.array(by_pitch[60]) - np.arange(0, 32 * 1920, 480) - 5))
    hat_spread = np.mean(np.abs(_main_hits(out.tracks[0].notes, HAT) - 5))
    assert 0 < key_spread < hat_spread
    assert [n.velocity for n in keys] != [80] * len(keys)
    drums_only = humanize(song, HumanizeSettings(complexity=1.0), np.random.default_rng(5), tracks=["drums"])
    assert drums_only.tracks[1].notes == sorted(chords)


def test_presets_and_styles():
    assert preset_names() == ["lofi_depression", "anxious_driving", "defiant_punk", "intimate_vulnerability",
                              "nostalgic_swing", "hiphop_pocket", "mechanical_dissociation", "chaotic_breakdown",
                              "tight_controlled", "funk_pocket"]
    lofi = get_preset("lofi_depression")
    assert (lofi.complexity, lofi.vulnerability) == (0.4, 0.8)
    mech = get_preset("mechanical_dissociation")
    assert mech.complexity < 0.15 and not mech.ghost_notes
    punk = get_preset("defiant_punk")
    assert punk.velocity_max - punk.velocity_min >= 60
    notes = humanize(kit_song(bars=4, velocity=30), punk, np.random.default_rng(0)).tracks[0].notes
    assert min(n.velocity for n in notes) >= 60
    assert (get_style("drunk").complexity, get_style("drunk").vulnerability) == (0.9, 0.8)
    with pytest.raises(InputError, match="lofi_depression"):
        get_preset("sad_banjo")
    with pytest.raises(InputError, match="tight"):
        get_style("wobbly")
    with pytest.raises(InputError):
        HumanizeSettings(complexity=1.5)


def test_settings_from_intent():
    assert settings_from_intent("Low", "Straight/Driving").vulnerability == 0.2
    assert settings_from_intent("High", "Rubato/Free").complexity > 0.8
    assert not settings_from_intent("Medium", "Mechanical").ghost_notes


def test_ppq_scaling_keeps_drift_in_time():
    song = straight_song(bars=32, step=960, ppq=960, pitch=HAT)
    notes = humanize(song, HumanizeSettings(complexity=1.0, vulnerability=0.5), np.random.default_rng(2)).tracks[0].notes
    starts = np.array([n.start for n in notes])
    off = starts - np.rint(starts / 960) * 960
    assert np.max(np.abs(off)) <= 80 and np.mean(np.abs(off)) > 20
