"""Genre templates (Appendix E numbers), the template JSON form, and swing's definition."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kelly.errors import FileFormatError, InputError
from kelly.groove import GENRE_TEMPLATES, GrooveTemplate, get_template, load_template, resolve_template, swing
from kelly.groove.swing import unwarp, warp

from _groove_helpers import straight_song


def test_eight_genres_with_the_original_numbers():
    assert list(GENRE_TEMPLATES) == ["funk", "jazz", "rock", "hiphop", "edm", "latin", "blues", "bedroom_lofi"]
    jazz = get_template("jazz")
    assert jazz.name == "Jazz Swing" and jazz.swing_factor == 0.67
    assert jazz.timing_deviations == (0, 20, 0, 25, -5, 22, 0, 28, 0, 18, -3, 24, -8, 20, 0, 26)
    funk = get_template("funk")
    assert funk.velocity_curve == (110, 60, 85, 55, 95, 55, 75, 50, 85, 50, 70, 45, 100, 60, 80, 55)
    assert get_template("rock").swing_factor == 0.0
    assert get_template("hiphop").tempo_bpm == 87.5  # middle of 75–100
    for t in GENRE_TEMPLATES.values():
        assert len(t.timing_deviations) == 16 and len(t.velocity_curve) == 16


def test_lofi_alias_and_case():
    assert get_template("lofi") is get_template("bedroom_lofi") is get_template("Bedroom_LoFi")


def test_unknown_template_lists_the_names():
    with pytest.raises(InputError) as err:
        get_template("polka")
    message = str(err.value)
    assert "polka" in message and all(name in message for name in GENRE_TEMPLATES)


def test_json_round_trip(tmp_path):
    path = get_template("latin").save(tmp_path / "latin.json")
    data = json.loads(path.read_text())
    for key in ("name", "source_file", "ppq", "tempo_bpm", "time_signature", "timing_deviations",
                "swing_factor", "velocity_curve", "velocity_stats", "timing_stats"):
        assert key in data
    assert "mean_deviation_ms" in data["timing_stats"]
    back = load_template(path)
    assert back == get_template("latin")
    assert resolve_template(str(path)) == back


def test_template_at_other_ppq_rescales():
    data = get_template("jazz").to_dict()
    data["ppq"] = 960
    t = GrooveTemplate.from_dict(data)
    assert t.deviations_at(480)[1] == pytest.approx(10.0)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"timing_deviations": [1, 2], "velocity_curve": []}',
                                  json.dumps({**get_template("rock").to_dict(), "swing_factor": 3})])
def test_bad_template_files(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FileFormatError):
        load_template(path)


def test_missing_template_file(tmp_path):
    with pytest.raises(FileFormatError):
        load_template(tmp_path / "nope.json")


def test_swing_definition_positions():
    # s = 0 straight, s = 0.67 ≈ triplet (2/3 of the beat), s = 1 dotted (3/4)
    assert warp([240], 0.0, 480)[0] == 240
    assert warp([240], 2 / 3, 480)[0] == pytest.approx(320)
    assert warp([240], 1.0, 480)[0] == pytest.approx(360)
    t = np.arange(0, 1920, 7.0)
    for s in (0.0, 0.3, 0.67, 1.0):
        assert np.allclose(unwarp(warp(t, s, 480), s, 480), t)
        assert np.all(np.diff(warp(t, s, 480)) > 0)  # order inside a beat never changes


def test_swing_function_moves_only_and_keeps_order():
    song = straight_song(step=120)
    out = swing(song, 0.5)
    starts = [n.start for n in out.tracks[0].notes]
    assert starts == sorted(starts)
    assert starts[:4] == [0, 150, 300, 390]  # & +60, e/a +30
    assert swing(song, 0).tracks[0].notes == song.tracks[0].notes
    with pytest.raises(InputError):
        swing(song, 1.5)
