"""The hardened MIDI reader (issue 9, "hold under bad input"): :func:`kelly.song.read_midi`.

Every bad file here is made from raw bytes by the helpers below. Each must end in one
:class:`~kelly.errors.FileFormatError` line naming the file and the reason (or, for bad
values with a safe default, read with a warning), quickly and in little memory; good
files must read exactly as mido read them before. ``python tests/test_midi_reading.py``
rewrites ``tests/fixtures/midi_bad/`` (tiny seeds for the fuzzer) from :data:`BAD_FILES`.
"""

from __future__ import annotations

import io
import os
import random
import struct
import sys
import threading
import time
from pathlib import Path

import mido
import pytest

import kelly.song as song_module
import kelly.theory.analysis as analysis_module
from kelly.errors import FileFormatError, InputError
from kelly.groove import apply_template, extract_groove, get_preset, humanize, swing
from kelly.groove.templates import GrooveTemplate, get_template, load_template
from kelly.song import (MAX_BARS, MAX_FILE_BYTES, Note, Song, Track, read_midi, read_midi_bytes,
                        song_from_midi)
from kelly.theory.analysis import analyze_file, analyze_song, summary_lines

FIXTURES = Path(__file__).parent / "fixtures" / "midi_bad"


# ----------------------------------------------------------------------------- making files
def vlq(n: int) -> bytes:
    """A MIDI variable-length number."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(*tracks: bytes, ppq: int = 480, fmt: int = 1, ntracks: int | None = None, division: int | None = None) -> bytes:
    """A Standard MIDI File from raw track bodies."""
    head = struct.pack(">IHHH", 6, fmt, len(tracks) if ntracks is None else ntracks,
                       ppq if division is None else division)
    return b"MThd" + head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


EOT = b"\x00\xff\x2f\x00"
NOTES = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00\x00\x90\x40\x40\x83\x60\x80\x40\x00"  # C then E, a beat each
LONG_NOTE = b"\x00\x90\x3c\x40\x00\x90\x40\x40"  # two notes, released after the delta that follows


def meta(kind: int, payload: bytes, delta: int = 0) -> bytes:
    return vlq(delta) + bytes([0xFF, kind]) + vlq(len(payload)) + payload


#: name → (bytes, what the error message must say). Every one is refused.
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty"),
    "text": (b"this is not music\n", "not a MIDI file"),
    "riff": (b"RIFF\x00\x00\x00\x04RMID", "not a MIDI file"),
    "short_magic": (b"MTh", "truncated"),
    "short_header": (b"MThd\x00\x00\x00\x06\x00\x01", "truncated"),
    "header_length_2": (b"MThd\x00\x00\x00\x02\x00\x01", "at least 6"),
    "header_past_end": (b"MThd\x00\x00\x01\x00\x00\x01\x00\x01\x01\xe0", "header chunk says 256 bytes"),
    "type_2": (smf(NOTES + EOT, fmt=2), "type 2"),
    "type_7": (smf(NOTES + EOT, fmt=7), "unknown MIDI file type 7"),
    "smpte": (smf(NOTES + EOT, division=0xE728), "SMPTE"),
    "missing_track": (smf(NOTES + EOT, ntracks=3), "announces 3 tracks"),
    "not_mtrk": (smf(NOTES + EOT).replace(b"MTrk", b"MTrX"), "does not start with 'MTrk'"),
    "truncated_track": (smf(NOTES + EOT)[:30], "truncated"),
    "huge_chunk": (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff\xff\xff\x00\x90\x3c", "truncated"),
    "event_past_end": (smf(b"\x00\x90\x3c"), "runs past the end of the track"),
    "ends_after_delta": (smf(b"\x00\x90\x3c\x40\x83"), "ends inside a delta time"),
    "ends_before_event": (smf(b"\x00\x90\x3c\x40\x60"), "before its event"),
    "running_status_first": (smf(b"\x00\x3c\x40" + EOT), "running status"),
    "running_status_after_clock": (smf(b"\x00\xf8\x00\x3c" + EOT), "repeats the one-byte message 0xF8"),
    "undefined_status": (smf(b"\x00\xf4\x00" + EOT), "undefined status byte 0xF4"),
    "long_delta": (smf(b"\xff\xff\xff\xff\x7f\x90\x3c\x40" + EOT), "longer than 4 bytes"),
    "meta_past_end": (smf(b"\x00\xff\x01\x81\x48hello" + EOT), "meta event of 200 bytes"),
    "meta_long_length": (smf(b"\x00\xff\x01\xff\xff\xff\xff\x01"), "longer than 4 bytes"),
    "sysex_past_end": (smf(b"\x00\xf0\x7f\x01\x02" + EOT), "sysex event of 127 bytes"),
    # a 2**28-tick delta: the old `analyze` asked for 24 GiB at 1 PPQ, 20 s at 480 PPQ
    "delta_2_28_ppq1": (smf(b"\x00\x90\x3c\x40" + vlq(2**28 - 1) + b"\x80\x3c\x00" + EOT, ppq=1), "too long"),
    "delta_2_28_ppq480": (smf(b"\x00\x90\x3c\x40" + vlq(2**28 - 1) + b"\x80\x3c\x00" + EOT), "too long"),
    # 2**24 ticks: 39 s and 600 MB before at small PPQ
    "delta_2_24_ppq1": (smf(LONG_NOTE + vlq(2**24) + b"\x80\x3c\x00\x00\x80\x40\x00" + EOT, ppq=1), "too long"),
    "delta_2_24_ppq96": (smf(LONG_NOTE + vlq(2**24) + b"\x80\x3c\x00\x00\x80\x40\x00" + EOT, ppq=96), "too long"),
    # 1/64 at 16 PPQ: one tick a bar, so a 150,000-tick file is 150,000 bars
    "bar_of_one_tick": (smf(meta(0x58, b"\x01\x06\x18\x08") + LONG_NOTE + meta(0x01, b"", 150_000) + EOT, ppq=16),
                        "too long"),
}

#: name → (bytes, what a warning must say). Read, with the value repaired or ignored.
REPAIRED_FILES: dict[str, tuple[bytes, str]] = {
    "tempo_0": (smf(meta(0x51, b"\x00\x00\x00") + NOTES + EOT), "tempo 0"),
    "tempo_1us": (smf(meta(0x51, b"\x00\x00\x01") + NOTES + EOT), "faster than 10000 BPM"),
    "tempo_2_bytes": (smf(meta(0x51, b"\x07\xa1") + NOTES + EOT), "set_tempo event with 2 data bytes"),
    "ppq_0": (smf(NOTES + EOT, ppq=0), "0 ticks per quarter note"),
    "time_signature_0_4": (smf(meta(0x58, b"\x00\x02\x18\x08") + NOTES + EOT), "time signature 0/4"),
    "time_signature_4_128": (smf(meta(0x58, b"\x04\x07\x18\x08") + NOTES + EOT), "time signature 4/128"),
    "time_signature_4_2_255": (smf(meta(0x58, b"\x04\xff\x18\x08") + NOTES + EOT), "time signature 4/2^255"),
    "time_signature_1_byte": (smf(meta(0x58, b"\x03") + NOTES + EOT), "time signature with 1 data bytes"),
    "key_15_sharps": (smf(meta(0x59, b"\x0f\x00") + NOTES + EOT), "15 sharps"),
    "key_8_flats": (smf(meta(0x59, b"\xf8\x01") + NOTES + EOT), "8 flats"),
    "key_mode_2": (smf(meta(0x59, b"\x01\x02") + NOTES + EOT), "mode 2"),
    "key_1_byte": (smf(meta(0x59, b"\x01") + NOTES + EOT), "key signature with 1 data bytes"),
}


def read_bad(data: bytes, name: str = "bad.mid") -> str:
    with pytest.raises(FileFormatError) as info:
        read_midi_bytes(data, name=name)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}: "), message
    return message


# ----------------------------------------------------------------------------- 1. parse errors
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_is_one_clear_file_format_error(name):
    data, reason = BAD_FILES[name]
    t0 = time.perf_counter()
    message = read_bad(data, name=f"{name}.mid")
    assert time.perf_counter() - t0 < 1.0
    assert reason in message, message


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_analyze_and_groove_commands_fail_in_one_line(name, tmp_path, capsys):
    import kelly.cli

    path = tmp_path / f"{name}.mid"
    path.write_bytes(BAD_FILES[name][0])
    for argv in (["analyze", str(path)], ["groove", "extract", str(path)],
                 ["groove", "humanize", str(path), "--seed", "1", "-o", str(tmp_path / "out.mid")]):
        t0 = time.perf_counter()
        code = kelly.cli.main(argv)
        out, err = capsys.readouterr()
        assert time.perf_counter() - t0 < 5.0
        assert code == 2, (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kelly: error: ") and str(path) in lines[0], err
        assert "Traceback" not in err


def test_mido_errors_on_metas_we_do_not_use_are_not_fatal():
    """mido raised KeyError/ValueError/IndexError on these; Kelly does not use them, so they are skipped."""
    for payload in (meta(0x54, b"\xe0\x00\x00\x00\x00"),  # SMPTE offset with frame-rate code 7 (KeyError)
                    meta(0x54, b"\x00\x00\x63\x00\x00"),  # 99 minutes (ValueError)
                    meta(0x00, b"\x01"),  # sequence number of one byte (IndexError)
                    meta(0x20, b""),  # empty channel prefix (IndexError)
                    meta(0x7E, b"\x01\x02\x03"),  # unknown meta types
                    meta(0x4B, b"")):
        song = read_midi_bytes(smf(payload + NOTES + EOT))
        assert [n.pitch for n in song.tracks[0].notes] == [60, 64]


def test_unknown_meta_keeps_its_delta_time():
    """mido 1.3 dropped the delta time of unknown meta events; the SMF spec keeps it."""
    song = read_midi_bytes(smf(meta(0x4B, b"x", delta=480) + NOTES + EOT))
    assert song.tracks[0].notes[0].start == 480


def test_message_names_the_file_on_one_line(tmp_path):
    path = tmp_path / "odd\nname.mid"
    path.write_bytes(b"garbage")
    with pytest.raises(FileFormatError) as info:
        read_midi(path)
    assert "\n" not in str(info.value) and "not a MIDI file" in str(info.value)


# ----------------------------------------------------------------------------- 2. repaired values
@pytest.mark.parametrize("name", list(REPAIRED_FILES))
def test_bad_value_is_repaired_with_a_warning(name):
    data, warning = REPAIRED_FILES[name]
    song = read_midi_bytes(data, name=f"{name}.mid")
    assert any(warning in w for w in song.warnings), song.warnings
    assert song.ppq > 0 and all(0 < bpm <= 10_000 for _, bpm in song.tempos)
    num, den = song.time_signature
    assert num >= 1 and den in (1, 2, 4, 8, 16, 32, 64)
    assert song.key_signature is None
    analysis = analyze_song(song)
    assert any(warning in w for w in analysis.warnings)
    assert any(line.startswith("Warning: ") for line in summary_lines(analysis))
    assert analysis.to_dict()["warnings"] == analysis.warnings
    for result in (apply_template(song, get_template("jazz")), humanize(song, get_preset("lofi_depression"), 1),
                   swing(song, 0.6)):
        assert result.to_bytes()
    template = extract_groove(song)
    GrooveTemplate.from_dict(template.to_dict())  # what `groove apply` would load


def test_repairs_and_defaults():
    assert read_midi_bytes(REPAIRED_FILES["tempo_0"][0]).tempos == [(0, 120.0)]
    assert read_midi_bytes(REPAIRED_FILES["tempo_1us"][0]).tempos == [(0, 10_000.0)]
    assert read_midi_bytes(REPAIRED_FILES["tempo_2_bytes"][0]).tempos == [(0, 120.0)]
    assert read_midi_bytes(REPAIRED_FILES["ppq_0"][0]).ppq == 480
    assert read_midi_bytes(REPAIRED_FILES["time_signature_0_4"][0]).time_signature == (4, 4)
    # a bad time signature leaves the earlier good one; a bad key lets a later good one in
    data = smf(meta(0x58, b"\x03\x02\x18\x08") + meta(0x58, b"\x00\x02\x18\x08") + meta(0x59, b"\x0f\x00")
               + meta(0x59, b"\xfd\x01") + NOTES + EOT)
    song = read_midi_bytes(data)
    assert song.time_signature == (3, 4) and song.key_signature == "Cm" and len(song.warnings) == 2


def test_repeated_repairs_are_one_line_with_a_count():
    data = smf(b"".join(meta(0x51, b"\x00\x00\x00", delta=10) for _ in range(1000)) + NOTES + EOT)
    song = read_midi_bytes(data)
    assert song.warnings == ["tempo 0 (microseconds per quarter note) at tick 10 was read as 120 BPM "
                             "(and 999 more like it)"]


def test_tempo_zero_no_longer_divides_by_zero(tmp_path, capsys):
    import kelly.cli

    path = tmp_path / "tempo0.mid"
    path.write_bytes(REPAIRED_FILES["tempo_0"][0])
    for argv in (["analyze", str(path)], ["analyze", "--json", str(path)],
                 ["groove", "extract", str(path), "-o", str(tmp_path / "g.json")],
                 ["groove", "apply", str(path), "--template", "jazz", "-o", str(tmp_path / "a.mid")],
                 ["groove", "humanize", str(path), "--seed", "1", "-o", str(tmp_path / "h.mid")],
                 ["groove", "swing", str(path), "--amount", "0.5", "-o", str(tmp_path / "s.mid")]):
        assert kelly.cli.main(argv) == 0, capsys.readouterr()
    assert "tempo 0" in capsys.readouterr().out


def test_extract_from_zero_over_four_gives_a_template_apply_accepts(tmp_path, capsys):
    import kelly.cli

    path = tmp_path / "ts0.mid"
    path.write_bytes(REPAIRED_FILES["time_signature_0_4"][0])
    assert kelly.cli.main(["groove", "extract", str(path), "-o", str(tmp_path / "g.json")]) == 0
    assert load_template(tmp_path / "g.json").time_signature == (4, 4)
    assert kelly.cli.main(["groove", "apply", str(path), "--template", str(tmp_path / "g.json"),
                           "-o", str(tmp_path / "out.mid")]) == 0, capsys.readouterr()


def test_templates_never_carry_an_impossible_metre_or_tempo():
    with pytest.raises(InputError):
        GrooveTemplate("x", (0.0,) * 16, (64.0,) * 16, time_signature=(0, 4))
    with pytest.raises(InputError):
        GrooveTemplate("x", (0.0,) * 16, (64.0,) * 16, tempo_bpm=60_000_000.0)
    song = Song(tracks=[Track("t", 0, 0, [Note(0, 60, 120, 90)])], time_signature=(0, 4))
    with pytest.raises(InputError):
        extract_groove(song)


# ----------------------------------------------------------------------------- 3. only regular files
def _read_in_thread(path) -> tuple[bool, str]:
    result: list[str] = []

    def go():
        try:
            read_midi(path)
            result.append("read")
        except FileFormatError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(5.0)
    return not thread.is_alive(), result[0] if result else ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_fifo_without_a_writer_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    finished, message = _read_in_thread(fifo)
    assert finished, "read_midi blocked on a FIFO"
    assert "named pipe" in message and "regular file" in message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_fails_fast():
    t0 = time.perf_counter()
    finished, message = _read_in_thread("/dev/zero")
    assert finished and time.perf_counter() - t0 < 1.0
    assert message == "/dev/zero: is a character device, not a MIDI file (Kelly reads only regular files)"


def test_missing_folder_and_oversized_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_midi(tmp_path / "nope.mid")
    with pytest.raises(FileFormatError, match="no such file"):
        read_midi(tmp_path / "nope" / "x.mid")
    with pytest.raises(FileFormatError, match="is a folder"):
        read_midi(tmp_path)
    big = tmp_path / "big.mid"
    with open(big, "wb") as handle:  # sparse: the size is refused from stat, nothing is read
        handle.truncate(MAX_FILE_BYTES + 1)
    t0 = time.perf_counter()
    with pytest.raises(FileFormatError, match="a MIDI file may be at most"):
        read_midi(big)
    assert time.perf_counter() - t0 < 0.5


def test_size_cap_applies_to_bytes_too(monkeypatch):
    monkeypatch.setattr(song_module, "MAX_FILE_BYTES", 40)
    assert "too large" in read_bad(smf(NOTES + EOT))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_link_to_a_regular_file_reads(tmp_path):
    (tmp_path / "real.mid").write_bytes(smf(NOTES + EOT))
    os.symlink(tmp_path / "real.mid", tmp_path / "link.mid")
    assert read_midi(tmp_path / "link.mid").note_count() == 2


# ----------------------------------------------------------------------------- 4. bounded cost
def _everything(data: bytes) -> None:
    """Read, analyse (two window sizes), extract, apply, humanize and swing, writing each result."""
    try:
        song = read_midi_bytes(data)
    except FileFormatError:
        return
    for segment in ("beat", "bar"):
        analyze_song(song, segment=segment).to_dict()
    extract_groove(song)
    for result in (apply_template(song, get_template("jazz")), humanize(song, get_preset("lofi_depression"), 1),
                   swing(song, 0.6)):
        read_midi_bytes(result.to_bytes())  # what Kelly writes, Kelly reads back


LONG_BUT_ALLOWED = {
    # 2**24 ticks at 480 PPQ: 8,739 bars, under the cap; two notes held all the way
    "delta_2_24_ppq480": smf(LONG_NOTE + vlq(2**24) + b"\x80\x3c\x00\x00\x80\x40\x00" + EOT),
    # 255/64 time: 255 beats a bar, so 2.5 million beat windows over 9,800 bars (read in wider
    # windows); 60 notes never released
    "bars_of_255_beats": smf(meta(0x58, b"\xff\x06\x18\x08")
                             + b"".join(b"\x00\x90" + bytes([30 + i, 64]) for i in range(60))
                             + meta(0x01, b"", 37_500_000) * 2 + EOT),
    # the latest tick read, at the largest PPQ
    "latest_tick": smf(b"\x00\x90\x3c\x40" + meta(0x01, b"", 2**26) * 2 + b"\x00\x80\x3c\x00" + EOT,
                       ppq=32767),
    # 1/64 at 480 PPQ: 10,000 bars of 30 ticks, a new note every tenth bar
    "ten_thousand_tiny_bars": smf(meta(0x58, b"\x01\x06\x18\x08")
                                  + b"".join(b"\x00\x90" + bytes([40 + i % 30, 64]) + vlq(300) + b"\x80"
                                             + bytes([40 + i % 30, 0]) for i in range(1_000)) + EOT),
    # 2,500 one-note tracks spread over 10,000 bars (the old per-bar, per-track array)
    "many_tracks": smf(*(vlq(i * 4 * 1920) + b"\x90\x3c\x40\x60\x80\x3c\x00" + EOT for i in range(2_500))),
}
TIMELINE_CASES = list(LONG_BUT_ALLOWED) + [n for n in BAD_FILES if "delta" in n or "bar" in n]

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a regression fails fast instead of swapping
import test_midi_reading as T
times = {}
for name in T.TIMELINE_CASES:
    data = T.LONG_BUT_ALLOWED.get(name) or T.BAD_FILES[name][0]
    t0 = time.perf_counter()
    T._everything(data)
    times[name] = time.perf_counter() - t0
# VmHWM is this process's own peak; getrusage's ru_maxrss starts at the parent's peak on Linux
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"times": times, "max_rss_mb": hwm / 1024}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="measures memory with Linux's /proc/self/status VmHWM")
def test_cost_is_bounded_by_the_notes_not_the_timeline():
    """Each reproduction (read → analyse → every groove tool) within 5 s, all within 1 GB.

    Run in a child process so that its peak memory is measured (and capped) apart from
    the test runner's.
    """
    import json
    import subprocess

    result = subprocess.run([sys.executable, "-c", _CHILD, str(Path(__file__).parent)], capture_output=True,
                            text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    slow = {name: round(t, 2) for name, t in report["times"].items() if t > 5.0}
    assert not slow, slow
    assert report["max_rss_mb"] < 1024, report


def test_the_longest_piece_read_is_ten_thousand_bars():
    bar = 4 * 480
    ok = smf(b"\x00\x90\x3c\x40" + meta(0x01, b"", MAX_BARS * bar // 16) * 16 + b"\x00\x80\x3c\x00" + EOT)
    assert read_midi_bytes(ok).end_tick() == MAX_BARS * bar
    too_long = smf(b"\x00\x90\x3c\x40" + meta(0x01, b"", MAX_BARS * bar // 16) * 16 + b"\x01\x80\x3c\x00" + EOT)
    assert read_bad(too_long) == ("bad.mid: too long: a note ends in bar 10,001 (tick 19,200,001 at PPQ 480, 4/4); "
                                  "Kelly reads at most 10,000 bars")


def test_no_note_after_tick_2_to_the_27():
    """So that every delta time written back, even after the groove tools move notes, fits 4 bytes."""
    late = smf(b"\x00\x90\x3c\x40" + meta(0x01, b"", 2**26) * 2 + b"\x01\x80\x3c\x00" + EOT, ppq=32767)
    assert read_bad(late) == "bad.mid: too long: a note ends at tick 134,217,729; Kelly reads notes up to tick 134,217,728"
    song = read_midi_bytes(smf(NOTES + meta(0x51, b"\x07\xa1\x20", 2**27) + meta(0x06, b"x", 1) + EOT, ppq=32767))
    assert song.tempos == [(0, 120.0)] and song.markers == []
    assert song.warnings == ["2 tempo change(s) and marker(s) after tick 134,217,728, beyond what Kelly reads, "
                             "were dropped"]


def test_grooved_songs_stay_readable_at_the_limits():
    """A note in the last bar Kelly reads, moved later by a groove tool, is cut back so the result reads again."""
    bar = 4 * 480
    song = Song(tracks=[Track("d", 0, 9, [Note(MAX_BARS * bar - 130, 38, 120, 100)]),
                        Track("p", 0, 0, [Note(MAX_BARS * bar - 121, 60, 121, 90)])])
    for result in (apply_template(song, get_template("hiphop")), humanize(song, get_preset("lofi_depression"), 3),
                   swing(song, 1.0)):
        again = read_midi_bytes(result.to_bytes())
        assert again.end_tick() <= song_module.read_limit(again) == MAX_BARS * bar


def test_event_note_and_tempo_caps(monkeypatch):
    monkeypatch.setattr(song_module, "MAX_EVENTS", 100)
    assert read_bad(smf(b"\x00\xb0\x07\x64" * 101 + EOT)).endswith("too many events: more than 100; "
                                                                    "Kelly reads at most 100")
    monkeypatch.setattr(song_module, "MAX_NOTES", 10)
    assert "too many notes: more than 10" in read_bad(smf(b"\x00\x90\x3c\x40" * 11 + EOT))
    monkeypatch.setattr(song_module, "MAX_CONDUCTOR_EVENTS", 5)
    assert "too many tempo changes and markers" in read_bad(smf(meta(0x51, b"\x07\xa1\x20") * 3
                                                                + meta(0x06, b"A") * 3 + EOT))


def test_analysis_widens_its_chord_windows_rather_than_growing(monkeypatch):
    monkeypatch.setattr(analysis_module, "MAX_CHORD_SEGMENTS", 10)
    song = read_midi_bytes(smf(b"".join(b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00" for _ in range(40)) + EOT))
    result = analyze_song(song)
    assert any("windows of 4 beats" in w for w in result.warnings), result.warnings
    assert result.chords and result.chords[0].end - result.chords[0].start >= 4 * 480


def test_listed_tempo_changes_are_capped(monkeypatch):
    monkeypatch.setattr(analysis_module, "MAX_LISTED_TEMPO_CHANGES", 3)
    song = read_midi_bytes(smf(b"".join(meta(0x51, struct.pack(">I", 500_000 + i)[1:], delta=10) for i in range(6))
                               + NOTES + meta(0x01, b"", 3000) + EOT))
    result = analyze_song(song)
    assert len(result.tempo_changes) == 3 and any("tempo changes" in w for w in result.warnings)


def test_analysis_refuses_a_song_longer_than_the_reader_allows():
    song = Song(tracks=[Track("t", 0, 0, [Note(0, 60, 1920 * (MAX_BARS + 1), 90)])])
    with pytest.raises(InputError, match="10,001 bars"):
        analyze_song(song)


# ----------------------------------------------------------------------------- 5. good files read as before
def _reference_song(data: bytes) -> Song:
    """How ``read_midi`` read a file before (mido with clip=True), for comparison."""
    mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    ppq = mid.ticks_per_beat or 480
    song = Song(tracks=[], tempos=[], ppq=ppq, key_signature=None)
    for index, mtrack in enumerate(mid.tracks):
        now, name, programs, open_notes, by_channel = 0, None, {}, {}, {}
        for msg in mtrack:
            now += msg.time
            if msg.type == "track_name" and name is None:
                name = msg.name
            elif msg.type == "set_tempo":
                song.tempos.append((now, round(mido.tempo2bpm(msg.tempo), 6)))
            elif msg.type == "time_signature" and now == 0:
                song.time_signature = (msg.numerator, msg.denominator)
            elif msg.type == "key_signature" and song.key_signature is None:
                song.key_signature = msg.key
            elif msg.type == "marker":
                song.markers.append((now, msg.text))
            elif msg.type == "program_change":
                programs.setdefault(msg.channel, msg.program)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = open_notes.get((msg.channel, msg.note))
                if stack:
                    start, vel = stack.pop(0)
                    by_channel.setdefault(msg.channel, []).append(Note(start, msg.note, max(1, now - start), vel))
        for (ch, pitch), stack in open_notes.items():
            for start, vel in stack:
                by_channel.setdefault(ch, []).append(Note(start, pitch, max(1, now - start), vel))
        for ch in sorted(by_channel):
            label = name or f"Track {index}"
            if len(by_channel) > 1:
                label = f"{label} (ch {ch + 1})"
            song.tracks.append(Track(label, programs.get(ch, 0), ch, sorted(by_channel[ch])))
    song.tempos = sorted(song.tempos) or [(0, 120.0)]
    return song


def _same(a: Song, b: Song) -> bool:
    return (a.ppq, a.time_signature, a.key_signature, a.tempos, a.markers, a.tracks) == \
        (b.ppq, b.time_signature, b.key_signature, b.tempos, b.markers, b.tracks)


def _rich_file() -> bytes:
    """Type 0, one track with several channels, running status, sysex, pitch bend, metas, held notes."""
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.extend([
        mido.MetaMessage("track_name", name="Größe"), mido.MetaMessage("time_signature", numerator=6, denominator=8),
        mido.MetaMessage("key_signature", key="F#m"), mido.MetaMessage("set_tempo", tempo=700_000),
        mido.Message("sysex", data=[1, 2, 3]), mido.Message("program_change", channel=3, program=40),
        mido.Message("note_on", channel=3, note=60, velocity=90),
        mido.Message("note_on", channel=3, note=64, velocity=90),
        mido.Message("note_on", channel=3, note=60, velocity=70, time=3),
        mido.Message("pitchwheel", channel=3, pitch=100, time=5),
        mido.Message("control_change", channel=3, control=64, value=127),
        mido.Message("note_off", channel=3, note=60, velocity=0, time=40),
        mido.Message("note_on", channel=3, note=64, velocity=0),
        mido.Message("aftertouch", channel=3, value=3), mido.Message("polytouch", channel=3, note=3, value=3),
        mido.MetaMessage("marker", text="B"), mido.Message("note_on", channel=9, note=36, velocity=100, time=10),
        mido.MetaMessage("lyrics", text="la"), mido.MetaMessage("sequencer_specific", data=[1, 2]),
        mido.MetaMessage("smpte_offset"), mido.MetaMessage("set_tempo", tempo=400_000, time=30),
        mido.Message("note_on", channel=9, note=36, velocity=0, time=10),
        mido.Message("note_on", channel=2, note=70, velocity=1),  # never released
    ])
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _composed() -> list[bytes]:
    from kelly.emotion.text import read_text
    from kelly.generator import ComposeOptions, compose

    return [compose(read_text(text), ComposeOptions(seed=3, bars=8)).song.to_bytes()
            for text in ("I feel grief, but I'm starting to hope", "I am so angry at them")]


def test_well_formed_files_read_exactly_as_before():
    for data in [_rich_file(), *_composed()]:
        song = read_midi_bytes(data)
        assert _same(song, _reference_song(data)) and song.warnings == []
    song = read_midi_bytes(_rich_file())
    assert song.tracks[0].name == "Größe (ch 3)" and song.key_signature == "F#m" and song.time_signature == (6, 8)


def test_a_song_round_trips():
    from kelly.emotion.text import read_text
    from kelly.generator import ComposeOptions, compose

    song = compose(read_text("I feel hopeful"), ComposeOptions(seed=5, bars=4)).song
    again = read_midi_bytes(song.to_bytes())
    assert again.to_bytes() == read_midi_bytes(again.to_bytes()).to_bytes()
    assert [len(t.notes) for t in again.tracks] == [len([n for n in t.notes if n.duration > 0]) for t in song.tracks]


def test_song_from_midi_still_takes_a_mido_file():
    data = _rich_file()
    assert _same(song_from_midi(mido.MidiFile(file=io.BytesIO(data))), read_midi_bytes(data))


def test_mutated_files_read_or_fail_cleanly_and_agree_with_mido():
    """Seeded byte mutations of good files: a Song or one FileFormatError line, never anything else;
    where mido read the file too and nothing was repaired, the same Song."""
    rnd = random.Random(9)
    seeds = [_rich_file(), *_composed()]
    agreed = 0
    for _ in range(800):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.choice((1, 2, 4))):
            op = rnd.random()
            if op < 0.6 and data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op < 0.8:
                at = rnd.randrange(len(data) + 1)
                data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4)))
            else:
                data = data[:rnd.randrange(len(data) + 1)]
        data = bytes(data)
        t0 = time.perf_counter()
        try:
            song = read_midi_bytes(data, name="m.mid")
        except FileFormatError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("m.mid: ")
            continue
        finally:
            assert time.perf_counter() - t0 < 1.0
        try:
            mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
            reference = _reference_song(data)
        except Exception:  # noqa: BLE001 - mido refusing is fine; only agreement is checked
            continue
        if song.warnings or mid.type not in (0, 1) or any(m.type == "unknown_meta" for t in mid.tracks for m in t):
            continue  # repaired values; or mido's lost delta time of unknown metas
        assert _same(song, reference)
        agreed += 1
    assert agreed > 30


# ----------------------------------------------------------------------------- the seed corpus
def corpus() -> dict[str, bytes]:
    """Tiny bad files (< 1 KB) for the fuzzer's seed corpus: name.mid → bytes."""
    files = {f"{name}.mid": data for name, (data, _) in {**BAD_FILES, **REPAIRED_FILES}.items()}
    return {name: data for name, data in files.items() if len(data) < 1024}


def test_fixture_corpus_is_current():
    """tests/fixtures/midi_bad/ holds exactly :func:`corpus` (``python tests/test_midi_reading.py`` rewrites it)."""
    expected = corpus()
    found = {p.name: p.read_bytes() for p in FIXTURES.glob("*.mid")}
    assert found == expected
    for name, data in found.items():
        try:
            read_midi_bytes(data, name=name)
        except FileFormatError:
            pass


def test_analyze_file_reads_through_the_hardened_reader(tmp_path):
    path = tmp_path / "k.mid"
    path.write_bytes(REPAIRED_FILES["key_15_sharps"][0])
    assert any("15 sharps" in w for w in analyze_file(path).warnings)


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for old in FIXTURES.glob("*.mid"):
        old.unlink()
    for name, data in corpus().items():
        (FIXTURES / name).write_bytes(data)
    print(f"wrote {len(corpus())} files to {FIXTURES}", file=sys.stderr)
