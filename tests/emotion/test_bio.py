"""The biometric door: ``kelly.emotion.bio`` (formulas of §3.8, the reader, CSV replay, OSC input).

Every CSV is written by the tests into ``tmp_path``; OSC runs on 127.0.0.1 with a port
the system picks.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time

import pytest

from kelly.emotion import bio as B
from kelly.emotion.bio import BioSample, BiometricReader
from kelly.errors import FileFormatError, InputError, KellyError

approx = pytest.approx


# --------------------------------------------------------------------------- formulas

@pytest.mark.parametrize("bpm, arousal", [
    (30, 0.2), (59, 0.2), (59.99, 0.2),
    (60, 0.3), (70, 0.4), (79, 0.49),
    (80, 0.5), (90, 0.65), (99, 0.785),
    (100, 0.8), (110, 0.8 + 10 / 60), (112, 1.0), (160, 1.0), (200, 1.0),
])
def test_heart_rate_arousal_boundaries(bpm, arousal):
    assert B.heart_rate_arousal(bpm) == approx(arousal)


def test_heart_rate_arousal_is_monotonic_from_60():
    values = [B.heart_rate_arousal(b) for b in range(60, 241)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert max(values) == approx(1.0)


@pytest.mark.parametrize("hrv, factor", [(0, 1.2), (19, 1.2), (19.99, 1.2), (20, 1.0), (30, 1.0), (40, 1.0),
                                         (40.01, 0.8), (41, 0.8), (150, 0.8)])
def test_hrv_arousal_factor_boundaries(hrv, factor):
    assert B.hrv_arousal_factor(hrv) == factor


@pytest.mark.parametrize("hrv, dominance", [
    (0, 0.2), (10, 0.3), (19, 0.39), (20, 0.4), (30, 0.5), (39, 0.59),
    (40, 0.6), (41, 0.6 + 1 / 60), (55, 0.85), (64, 1.0), (70, 1.0), (200, 1.0),
])
def test_hrv_dominance_boundaries(hrv, dominance):
    assert B.hrv_dominance(hrv) == approx(dominance)


@pytest.mark.parametrize("temp, valence", [(25, -1.0), (34, -1.0), (35, -0.5), (36, 0.0), (37, 0.5), (38, 1.0),
                                           (42, 1.0)])
def test_temp_valence_boundaries(temp, valence):
    assert B.temp_valence(temp) == approx(valence)


@pytest.mark.parametrize("eda, expected", [(0, 0.0), (10, 0.5), (20, 1.0), (80, 1.0)])
def test_eda_intensity(eda, expected):
    assert B.eda_intensity(eda) == approx(expected)


@pytest.mark.parametrize("hrv, expected", [(0, 1.0), (30, 0.5), (60, 0.0), (120, 0.0)])
def test_hrv_intensity(hrv, expected):
    assert B.hrv_intensity(hrv) == approx(expected)


def test_bio_intensity_combinations():
    assert B.bio_intensity(eda=10, hrv=30) == approx(0.5)      # mean(0.5, 0.5)
    assert B.bio_intensity(eda=20, hrv=60) == approx(0.5)      # mean(1, 0)
    assert B.bio_intensity(hrv=15) == approx(0.75)             # HRV alone
    assert B.bio_intensity(eda=4) == approx(0.2)               # EDA alone
    assert B.bio_intensity() == 0.5                            # neither


def test_arousal_order_hr_then_hrv_then_movement():
    assert B.bio_arousal(90, 50) == approx(0.65 * 0.8)
    assert B.bio_arousal(110, 10) == 1.0                        # ×1.2 clamped
    assert B.bio_arousal(None, 10) == approx(0.6)               # neutral 0.5 × 1.2
    assert B.bio_arousal(70, None, 1.0) == approx(0.7)          # (0.4 + 1) / 2
    assert B.bio_arousal(70, 50, 0.0) == approx(0.16)           # (0.4·0.8 + 0) / 2
    assert B.bio_arousal(None, None, 0.2) == approx(0.35)       # (0.5 + 0.2) / 2
    assert B.bio_arousal() == 0.5
    assert B.movement_arousal(0.4, 1.0) == approx(0.7)


@pytest.mark.parametrize("fn", [B.heart_rate_arousal, B.hrv_arousal_factor, B.hrv_dominance, B.temp_valence,
                                B.eda_intensity, B.hrv_intensity])
def test_formulas_refuse_nan_and_text(fn):
    for bad in (math.nan, math.inf, "70", True, None):
        with pytest.raises(InputError):
            fn(bad)


# --------------------------------------------------------------------------- samples and readings

def test_sample_validation():
    s = BioSample(1, heart_rate=70, movement=0)
    assert s.t == 1.0 and s.heart_rate == 70.0 and isinstance(s.heart_rate, float)
    assert s.values() == {"heart_rate": 70.0, "movement": 0.0}
    with pytest.raises(InputError):
        BioSample(math.nan)
    with pytest.raises(InputError):
        BioSample(0, heart_rate="70")
    with pytest.raises(InputError):
        BioSample(0, hrv=True)
    BioSample(0, heart_rate=math.nan)  # the reader, not the sample, drops NaN


def test_reader_validation():
    for bad in (0, -1, math.nan, "5"):
        with pytest.raises(InputError):
            BiometricReader(bad)
    with pytest.raises(InputError):
        BiometricReader(hr_smooth_s=-1)
    with pytest.raises(InputError):
        BiometricReader().update({"t": 0, "heart_rate": 70})


def test_no_channels_means_no_reading():
    r = BiometricReader().read()
    assert r.confidence == 0 and not r.live and r.channels_used == ()
    assert (r.valence, r.arousal, r.dominance, r.intensity) == (0.0, 0.5, 0.5, 0.5)
    assert any("no biometric signal" in w for w in r.warnings)
    r = BiometricReader().update(BioSample(0.0))  # a sample with nothing in it
    assert r.confidence == 0 and r.age_s is None


def test_all_channels_follow_the_formulas():
    r = BiometricReader().update(BioSample(0, heart_rate=90, hrv=50, eda=10, skin_temp=37, movement=0.3))
    assert r.channels_used == B.CHANNELS
    assert r.confidence == approx(1.0)
    assert r.valence == approx(0.5)
    assert r.arousal == approx((0.65 * 0.8 + 0.3) / 2)
    assert r.dominance == approx(B.hrv_dominance(50))
    assert r.intensity == approx((0.5 + (1 - 50 / 60)) / 2)
    assert r.warnings == () and r.age_s == 0.0 and r.heart_rate == 90


def test_confidence_weights_heart_rate_most():
    only = {name: BiometricReader().update(BioSample(0, **{name: value})).confidence
            for name, value in (("heart_rate", 70), ("hrv", 40), ("eda", 5), ("skin_temp", 36), ("movement", 0.5))}
    assert only["heart_rate"] == max(only.values()) == approx(0.4)
    assert sum(only.values()) == approx(1.0)
    r = BiometricReader().update(BioSample(0, heart_rate=70))
    assert (r.valence, r.dominance, r.intensity) == (0.0, 0.5, 0.5)
    assert r.to_source().intensity is None
    assert BiometricReader().update(BioSample(0, eda=10)).to_source().intensity == approx(0.5)


def test_dropout_holds_then_expires():
    reader = BiometricReader(hold_s=5.0)
    reader.update(BioSample(0, heart_rate=100, skin_temp=37))
    r = reader.update(BioSample(2, skin_temp=37))  # heart rate silent: held
    assert "heart_rate" in r.channels_used and r.arousal == approx(0.8)
    held = reader.read(5.0)                          # exactly hold_s: still held
    assert "heart_rate" in held.channels_used
    assert held.confidence < r.confidence            # an older value counts less
    r = reader.read(6.0)
    assert "heart_rate" not in r.channels_used and "skin_temp" in r.channels_used
    assert r.arousal == 0.5
    assert "heart rate: no signal for 6.0 s" in r.warnings
    r = reader.read(7.5)
    assert r.confidence == 0 and "skin temperature: no signal for 5.5 s" in r.warnings
    # the signal comes back: live again, no warning
    r = reader.update(BioSample(8, heart_rate=60))
    assert r.channels_used == ("heart_rate",) and r.heart_rate == 60
    assert not any(w.startswith("heart rate") for w in r.warnings)


def test_freshness_halves_confidence_over_the_hold():
    reader = BiometricReader(hold_s=4.0)
    reader.update(BioSample(10, heart_rate=70))
    assert reader.read(10).confidence == approx(0.4)
    assert reader.read(12).confidence == approx(0.4 * 0.75)
    assert reader.read(14).confidence == approx(0.2)
    assert reader.read(14.01).confidence == 0
    assert reader.read(3).t == 10  # a query in the past is the last sample's time


def test_implausible_values_are_dropped_and_counted():
    reader = BiometricReader()
    reader.update(BioSample(0, heart_rate=70, eda=5))
    r = reader.update(BioSample(0.5, heart_rate=400, eda=-1))
    assert r.heart_rate == 70 and "heart_rate" in r.channels_used
    assert "heart rate 400 bpm is implausible (25–240 bpm); ignored" in r.warnings
    assert any(w.startswith("EDA -1 µS is implausible (0–100 µS)") for w in r.warnings)
    reader.update(BioSample(1.0, heart_rate=300))
    r = reader.update(BioSample(1.5, heart_rate=12))
    assert "heart rate 12 bpm is implausible (25–240 bpm); ignored (3 times in the last 5 s)" in r.warnings
    assert reader.dropped["heart_rate"] == 3 and reader.dropped["eda"] == 1
    # warnings about drops fade after hold_s; the channel keeps working meanwhile
    r = reader.update(BioSample(7.0, heart_rate=72, eda=5))
    assert r.warnings == ()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_dropped(bad):
    reader = BiometricReader()
    reader.update(BioSample(0, hrv=40))
    r = reader.update(BioSample(1, hrv=bad, movement=bad))
    assert r.dominance == approx(0.6) and "movement" not in r.channels_used
    assert any(w.startswith("HRV:") and "is not a number" in w for w in r.warnings)
    assert any(w.startswith("movement:") for w in r.warnings)


def test_artifact_jumps():
    reader = BiometricReader(hr_smooth_s=0)
    reader.update(BioSample(0, heart_rate=70, skin_temp=34.0))
    r = reader.update(BioSample(1, heart_rate=115, skin_temp=36.5))     # +45 bpm, +2.5 °C in 1 s
    assert r.heart_rate == 70 and r.valence == approx(-1.0)
    assert "heart rate jumped 70 → 115 bpm in 1.0 s (more than 40 bpm/s); ignored as an artifact" in r.warnings
    assert any(w.startswith("skin temperature jumped 34 → 36.5 °C") for w in r.warnings)
    r = reader.update(BioSample(1.5, heart_rate=108))                   # +38 within a second: believable
    assert r.heart_rate == 108
    r = reader.update(BioSample(1.75, heart_rate=70))                   # -38 in 0.25 s: allowance is one second's
    assert r.heart_rate == 70


def test_a_real_step_is_accepted_once_time_allows_it():
    reader = BiometricReader(hr_smooth_s=0)
    reader.update(BioSample(0, heart_rate=70))
    assert reader.update(BioSample(1.0, heart_rate=150)).heart_rate == 70   # 80 bpm in 1 s: artifact
    assert reader.update(BioSample(1.5, heart_rate=150)).heart_rate == 70   # 80 in 1.5 s (allow 60)
    assert reader.update(BioSample(2.0, heart_rate=150)).heart_rate == 150  # 80 in 2 s (allow 80)
    # after an expiry there is nothing to compare with: any plausible value is a fresh start
    reader.update(BioSample(10.0, heart_rate=50))
    assert reader.read(10.0).heart_rate == 50
    assert reader.dropped["heart_rate"] == 2


def test_time_must_not_go_backwards():
    reader = BiometricReader()
    reader.update(BioSample(5, heart_rate=70))
    r = reader.update(BioSample(4, heart_rate=80))
    assert r.heart_rate == 70 and r.t == 5
    assert any("time went backwards" in w for w in r.warnings)
    assert reader.dropped["time"] == 1 and reader.samples == 1
    r = reader.update(BioSample(5, heart_rate=75))  # the same moment again is fine
    assert reader.samples == 2 and r.heart_rate == approx(72.5)


def test_heart_rate_smoothing():
    reader = BiometricReader(hr_smooth_s=3.0)
    for t, bpm in ((0, 60), (1, 80), (2, 64), (3, 76)):
        r = reader.update(BioSample(t, heart_rate=bpm))
    assert r.heart_rate == approx(70)                       # mean of the four (window 0..3 s)
    r = reader.update(BioSample(4, heart_rate=70))
    assert r.heart_rate == approx((80 + 64 + 76 + 70) / 4)  # the 0 s value left the window
    assert r.arousal == approx(B.heart_rate_arousal(r.heart_rate))
    raw = BiometricReader(hr_smooth_s=0)
    raw.update(BioSample(0, heart_rate=60))
    assert raw.update(BioSample(1, heart_rate=80)).heart_rate == 80


def test_reset_and_to_dict():
    reader = BiometricReader()
    reader.update(BioSample(3, heart_rate=70))
    d = reader.read().to_dict()
    assert d["channels_used"] == ["heart_rate"] and d["confidence"] == 0.4
    reader.reset()
    assert reader.read().confidence == 0 and reader.samples == 0
    reader.update(BioSample(0, heart_rate=70))  # time may start again after a reset


# --------------------------------------------------------------------------- CSV

def write(tmp_path, text, name="bio.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def test_csv_good_file_with_aliases(tmp_path):
    path = write(tmp_path, "\ufeff# recorded with a chest strap\r\n"
                           "Time, HR, RMSSD, GSR, Temp, Activity\r\n"
                           "0.0, 72, 45, 4.2, 36.1, 0.1\r\n"
                           "\r\n"
                           "0.5, 74, , 4.3, NaN, 0.2\r\n"
                           "1.0,,,,,\r\n")
    samples = B.read_bio_csv(path)
    assert samples == [BioSample(0.0, 72, 45, 4.2, 36.1, 0.1), BioSample(0.5, 74, None, 4.3, None, 0.2),
                       BioSample(1.0)]


def test_csv_column_order_is_free_and_subsets_are_fine(tmp_path):
    path = write(tmp_path, "heart-rate,time_s\n70,1\n71,2e0\n")
    assert B.read_bio_csv(path) == [BioSample(1, heart_rate=70), BioSample(2, heart_rate=71)]


@pytest.mark.parametrize("text, message", [
    ("time_s,heart_rate\n0,70\n1,abc\n", "bio.csv line 3, column heart_rate: 'abc' is not a number"),
    ("time_s,heart_rate\n0,70\n1,0x50\n", "line 3, column heart_rate: '0x50' is not a number"),
    ("time_s,heart_rate\n0,70\n1,1e999\n", "line 3, column heart_rate: '1e999' is too large"),
    ("time_s,heart_rate\n0,70\n0,71\n", "line 3, column time_s: time 0 s does not increase"),
    ("time_s,heart_rate\n1,70\n0.5,71\n", "line 3, column time_s: time 0.5 s does not increase"),
    ("time_s,heart_rate\n0,70\n,71\n", "line 3, column time_s: the time is missing"),
    ("time_s,heart_rate\n0,70,3\n", "line 2: has 3 cells but the header has 2"),
    ("time_s,heart_rate,pulse_ox\n0,70,98\n", "unknown column 'pulse_ox'; accepted names: time_s"),
    ("time_s,hr,bpm\n0,70,70\n", "'bpm' repeats column heart_rate"),
    ("heart_rate,hrv\n70,40\n", "no time column"),
    ("time_s\n0\n", "only a time column"),
    ("time_s,heart_rate\n", "has a header but no data rows"),
    ("# only a comment\n", "has no header row"),
    ("", "is empty"),
    ("  \n\n", "is empty"),
    ('time_s,heart_rate\n0,"70\n', "not valid CSV"),
])
def test_csv_bad_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(FileFormatError) as err:
        B.read_bio_csv(path)
    assert message in str(err.value)
    assert "bio.csv" in str(err.value)


def test_csv_unknown_column_lists_aliases(tmp_path):
    with pytest.raises(FileFormatError) as err:
        B.read_bio_csv(write(tmp_path, "t,heartbeat\n0,1\n"))
    text = str(err.value)
    for name in ("heart_rate", "hr", "bpm", "rmssd", "gsr", "temp", "movement"):
        assert name in text


def test_csv_binary_garbage(tmp_path):
    garbage = bytes(range(256)) * 8
    with pytest.raises(FileFormatError, match="binary"):
        B.read_bio_csv(write(tmp_path, garbage))
    with pytest.raises(FileFormatError, match="not UTF-8"):
        B.read_bio_csv(write(tmp_path, "time_s,heart_rate\n0,7\xe9\n".encode("latin-1")))


def test_csv_size_and_row_limits(tmp_path):
    path = write(tmp_path, "time_s,heart_rate\n" + "".join(f"{i},70\n" for i in range(200)))
    with pytest.raises(FileFormatError, match="at most 100 bytes"):
        B.read_bio_csv(path, max_bytes=100)
    with pytest.raises(FileFormatError, match="more than 50 data rows"):
        B.read_bio_csv(path, max_rows=50)
    assert len(B.read_bio_csv(path, max_rows=200)) == 200
    with pytest.raises(InputError):
        B.read_bio_csv(path, max_rows=0)


def test_csv_refuses_what_is_not_a_regular_file(tmp_path):
    with pytest.raises(FileFormatError, match="folder"):
        B.read_bio_csv(tmp_path)
    with pytest.raises(FileFormatError, match="no such file"):
        B.read_bio_csv(tmp_path / "missing.csv")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.csv"
        os.mkfifo(fifo)
        with pytest.raises(FileFormatError, match="named pipe"):
            B.read_bio_csv(fifo)  # refused at once, never blocks waiting for a writer


def test_csv_replay_through_the_reader(tmp_path):
    rows = ["time_s,heart_rate,skin_temp"] + [f"{t / 2},{70 + t},{36 + t / 10}" for t in range(10)] \
        + ["20,300,"]
    samples = B.read_bio_csv(write(tmp_path, "\n".join(rows) + "\n"))
    replay = B.BioReplay(samples, hold_s=5.0)
    r = replay.reading_at(0)
    assert r.heart_rate == 70 and r.confidence == approx(0.5)
    r = replay.reading_at(4.5)
    assert r.channels_used == ("heart_rate", "skin_temp") and r.valence == approx(0.45)
    r = replay.reading_at(11)                         # 6.5 s after the last row: expired
    assert r.confidence == 0 and "heart rate: no signal for 6.5 s" in r.warnings
    r = replay.reading_at(20)                         # the 300 bpm row is dropped
    assert replay.finished and any("implausible" in w for w in r.warnings)
    looped = B.BioReplay(samples, loop=True)
    looped.reading_at(19)
    assert looped.reading_at(22.0).heart_rate == 70 and not looped.finished  # period: 20 s + one mean step
    with pytest.raises(InputError):
        B.BioReplay([])


# --------------------------------------------------------------------------- OSC

@pytest.mark.parametrize("url, expected", [
    ("osc://127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("osc://localhost:0", ("localhost", 0)),
    ("OSC://[::1]:9001", ("::1", 9001)),
    ("osc.udp://127.0.0.1:57120/", ("127.0.0.1", 57120)),
    (" osc://10.0.0.2:8000 ", ("10.0.0.2", 8000)),
])
def test_parse_osc_url(url, expected):
    assert B.parse_osc_url(url) == expected


@pytest.mark.parametrize("url", ["", "127.0.0.1:9000", "http://127.0.0.1:9000", "osc://127.0.0.1",
                                 "osc://:9000", "osc://127.0.0.1:99999", "osc://127.0.0.1:abc",
                                 "osc://127.0.0.1:9000/kelly", "osc://u@127.0.0.1:9000", None])
def test_parse_osc_url_refuses(url):
    with pytest.raises(InputError, match="osc://"):
        B.parse_osc_url(url)


@pytest.mark.parametrize("url", ["osc://0.0.0.0:0", "osc://192.168.1.20:9000", "osc://sensor.local:9000",
                                 "osc://[::]:0"])
def test_non_loopback_refused_by_default(url):
    with pytest.raises(InputError, match="allow_remote=True"):
        B.OscBioListener(url)


def test_remote_binding_warns():
    pytest.importorskip("pythonosc")
    listener = B.OscBioListener("osc://0.0.0.0:0", allow_remote=True)
    with pytest.warns(RuntimeWarning, match="other computers"):
        listener.start()
    try:
        assert listener.port > 0 and listener.warnings
    finally:
        listener.stop()


def test_missing_python_osc_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythonosc", None)
    with pytest.raises(KellyError, match=r"pip install 'kelly\[live\]'"):
        B.OscBioListener("osc://127.0.0.1:0").start()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def test_osc_end_to_end():
    udp = pytest.importorskip("pythonosc.udp_client")
    with B.OscBioListener("osc://127.0.0.1:0") as listener:
        assert listener.running and listener.port > 0
        assert listener.url == f"osc://127.0.0.1:{listener.port}"
        assert listener.latest().confidence == 0
        client = udp.SimpleUDPClient("127.0.0.1", listener.port)
        client.send_message("/kelly/bio/heart_rate", 90.0)
        assert wait_for(lambda: listener.messages == 1)
        r = listener.latest()
        assert r.channels_used == ("heart_rate",) and r.arousal == approx(0.65)
        client.send_message("/kelly/bio/hrv", 50)           # an int is fine
        client.send_message("/kelly/bio", [90.0, 50.0, 10.0, 37.0, float("nan")])
        assert wait_for(lambda: listener.messages == 3)
        r = listener.latest()
        assert r.channels_used == ("heart_rate", "hrv", "eda", "skin_temp")
        assert r.valence == approx(0.5) and r.dominance == approx(B.hrv_dominance(50))
        assert r.arousal == approx(0.65 * 0.8)
        # mistakes are counted, never fatal
        client.send_message("/kelly/bio/heart_rate", "fast")
        client.send_message("/kelly/bio/heart_rate", [70.0, 71.0])
        client.send_message("/kelly/bio/eda", True)
        client.send_message("/kelly/bio", [1.0, 2.0])
        client.send_message("/kelly/other", 1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"\x00\xffnot osc at all", ("127.0.0.1", listener.port))
        assert wait_for(lambda: listener.bad_messages == 5 and listener.unknown_messages == 1)
        assert listener.messages == 3 and "not an OSC message" in listener.last_error
        client.send_message("/kelly/bio/heart_rate", 400.0)  # implausible: the reader's warning
        client.send_message("/kelly/bio/movement", 0.5)
        assert wait_for(lambda: listener.messages == 5)
        r = listener.latest()
        assert "movement" in r.channels_used
        assert any("400 bpm is implausible" in w for w in r.warnings)
        # a sensor that goes quiet expires even though no message arrives
        later = listener.latest(now=time.monotonic() + 10.0)
        assert later.confidence == 0 and any("no signal" in w for w in later.warnings)
        port = listener.port
    assert not listener.running
    listener.stop()  # twice is fine
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # the port was freed


def test_osc_port_in_use_is_a_kelly_error():
    pytest.importorskip("pythonosc")
    with B.OscBioListener("osc://127.0.0.1:0") as first:
        with pytest.raises(KellyError, match="cannot listen"):
            B.OscBioListener(f"osc://127.0.0.1:{first.port}").start()
