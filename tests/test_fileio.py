"""kelly.fileio: atomic writes that never replace what they should not, and JSON reads that hold (issue 9)."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kelly import fileio
from kelly.errors import FileFormatError, KellyError, OutputError
from kelly.fileio import (DestinationExists, OutputIsInput, json_depth, read_json, write_bytes_atomic,
                          write_files_atomic, write_json_atomic)

ROOT = Path(__file__).resolve().parents[1]


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


@pytest.fixture(params=[True, False], ids=["anonymous-temp", "named-temp"])
def both_temp_kinds(request, monkeypatch):
    """Run a test with O_TMPFILE temporary files (Linux) and with the named mkstemp fallback."""
    if request.param and not fileio._ANON_OK:
        pytest.skip("no O_TMPFILE here")
    monkeypatch.setattr(fileio, "_ANON_OK", request.param)
    return request.param


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- modes
def test_new_file_gets_0644_less_umask(tmp_path, both_temp_kinds):
    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(write_bytes_atomic(tmp_path / "a", b"x").stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(write_bytes_atomic(tmp_path / "b", b"x").stat().st_mode) == 0o600
        os.umask(0o002)
        assert stat.S_IMODE(write_bytes_atomic(tmp_path / "c", b"x").stat().st_mode) == 0o644
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode", [0o600, 0o664, 0o640, 0o444])
def test_replaced_file_keeps_its_permission_bits(tmp_path, mode, both_temp_kinds):
    path = tmp_path / "keep.json"
    path.write_text("old")
    os.chmod(path, mode)
    write_json_atomic(path, {"new": True})
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert json.loads(path.read_text()) == {"new": True}
    assert hidden(tmp_path) == []


# ---------------------------------------------------------------------------- what may be replaced
def test_existing_file_is_refused_without_overwrite(tmp_path, both_temp_kinds):
    path = tmp_path / "mine.mid"
    path.write_bytes(b"user data")
    with pytest.raises(DestinationExists) as info:
        write_bytes_atomic(path, b"kelly", overwrite=False)
    assert one_line(info.value) == f"{path} already exists; use --force to replace it"
    assert path.read_bytes() == b"user data" and hidden(tmp_path) == []
    write_bytes_atomic(path, b"kelly", overwrite=True)
    assert path.read_bytes() == b"kelly"


def test_no_clobber_create_is_atomic_against_a_file_that_appears_meanwhile(tmp_path, monkeypatch, both_temp_kinds):
    path = tmp_path / "race.mid"

    def sneak(event):
        if event == "temps-synced":
            path.write_bytes(b"someone else")

    monkeypatch.setattr(fileio, "_phase", sneak)
    with pytest.raises(DestinationExists):
        write_bytes_atomic(path, b"kelly", overwrite=False)
    assert path.read_bytes() == b"someone else" and hidden(tmp_path) == []


def test_symlink_destination_is_refused_even_with_overwrite(tmp_path):
    target = tmp_path / "real.mid"
    target.write_bytes(b"precious")
    link = tmp_path / "link.mid"
    link.symlink_to(target)
    with pytest.raises(OutputError) as info:
        write_bytes_atomic(link, b"kelly", overwrite=True)
    assert one_line(info.value) == (f"{link} is a symbolic link; Kelly writes only regular files, "
                                    f"so give another file name")
    assert link.is_symlink() and target.read_bytes() == b"precious"
    dangling = tmp_path / "dangling.mid"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="symbolic link"):
        write_bytes_atomic(dangling, b"kelly")
    assert not (tmp_path / "nowhere").exists()


def test_folder_fifo_and_socket_destinations_are_refused(tmp_path):
    (tmp_path / "dir.mid").mkdir()
    with pytest.raises(OutputError, match=r"dir\.mid is a folder"):
        write_bytes_atomic(tmp_path / "dir.mid", b"x")
    os.mkfifo(tmp_path / "pipe.mid")
    with pytest.raises(OutputError, match=r"pipe\.mid is a named pipe \(FIFO\)"):
        write_bytes_atomic(tmp_path / "pipe.mid", b"x")  # must not block either
    short = Path(tempfile.mkdtemp(prefix="k"))  # socket paths must be short
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(short / "s.mid"))
        with pytest.raises(OutputError, match=r"s\.mid is a socket"):
            write_bytes_atomic(short / "s.mid", b"x")
        sock.close()
    finally:
        for p in short.iterdir():
            p.unlink()
        short.rmdir()
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe.mid").st_mode)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_device_destination_is_refused():
    # check_destination only: it never writes, so nothing can happen to /dev/null whatever it answers.
    with pytest.raises(OutputError) as info:
        fileio.check_destination("/dev/null", overwrite=True)
    assert one_line(info.value).startswith("/dev/null is a character device")


def test_an_input_is_never_an_output(tmp_path):
    src = tmp_path / "in.json"
    src.write_text('{"mine": 1}')
    alias = tmp_path / "alias.json"
    alias.symlink_to(src)
    hard = tmp_path / "hard.json"
    os.link(src, hard)
    for dest, given in ((src, src), (tmp_path / "." / "in.json", src), (src, alias), (hard, src)):
        with pytest.raises(OutputIsInput) as info:
            write_bytes_atomic(dest, b"{}", overwrite=True, inputs=[given])
        assert "even with --force" in one_line(info.value)
    assert src.read_text() == '{"mine": 1}'
    write_bytes_atomic(tmp_path / "other.json", b"{}", inputs=[src])  # a different file is fine


def test_two_outputs_with_one_name_are_refused(tmp_path):
    with pytest.raises(OutputError, match="same name"):
        write_files_atomic({tmp_path / "a": b"1", f"{tmp_path}/./a": b"2"})
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------- names and errors
def test_a_300_character_name_is_one_line(tmp_path):
    path = tmp_path / ("x" * 300 + ".mid")
    with pytest.raises(OutputError) as info:
        write_bytes_atomic(path, b"x")
    line = one_line(info.value)
    assert line.startswith("cannot write ") and line.endswith(": File name too long") and "…" in line


def test_a_long_but_legal_name_still_gets_a_temporary_file(tmp_path, both_temp_kinds):
    path = tmp_path / ("y" * 250 + ".mid")  # 254 bytes: .NAME.XXXXXXXX.tmp would be too long uncut
    write_bytes_atomic(path, b"one")
    write_bytes_atomic(path, b"two")
    assert path.read_bytes() == b"two" and hidden(tmp_path) == []


def test_a_file_where_a_folder_should_be(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*: Not a directory"):
        write_bytes_atomic(tmp_path / "file" / "sub" / "x.mid", b"x")


def test_write_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch, both_temp_kinds):
    path = tmp_path / "full.mid"
    path.write_bytes(b"old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "write", full)
    with pytest.raises(OutputError) as info:
        write_bytes_atomic(path, b"new")
    assert one_line(info.value) == (f"cannot write {path}: no space left: the disk is full or the file is too "
                                    "large for it (No space left on device); nothing was replaced: free some space "
                                    "and run again")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and hidden(tmp_path) == []


def test_unwritable_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            write_bytes_atomic(folder / "x.mid", b"x")
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------------------- stale temporary files
def test_stale_temp_files_of_ours_are_swept(tmp_path, both_temp_kinds):
    old = time.time() - 2 * 3600
    stale = tmp_path / ".song.mid.abcd1234.tmp"
    fresh = tmp_path / ".song.mid.efgh5678.tmp"
    other = tmp_path / ".other.mid.abcd1234.tmp"
    user = tmp_path / ".song.mid.notes.tmp"
    for p in (stale, fresh, other, user):
        p.write_text("x")
    for p in (stale, other, user):
        os.utime(p, (old, old))
    write_bytes_atomic(tmp_path / "song.mid", b"MThd")
    assert not stale.exists()
    assert fresh.exists() and other.exists() and user.exists()


# ---------------------------------------------------------------------------- pairs
def test_pair_is_written_completely_before_either_is_renamed(tmp_path, monkeypatch, both_temp_kinds):
    js, mid = tmp_path / "song.json", tmp_path / "song.mid"
    js.write_text("old json")
    mid.write_bytes(b"old midi")
    seen = []

    def watch(event):
        seen.append((event, js.read_text(), mid.read_bytes()))

    monkeypatch.setattr(fileio, "_phase", watch)
    write_files_atomic({js: b"new json", mid: b"new midi"})
    events = [e for e, _, _ in seen]
    assert events == ["begin", "temp-written:song.json", "temp-written:song.mid", "temps-synced", "temps-named",
                      "committed:song.json", "committed:song.mid", "done"]
    states = {e: (j, m) for e, j, m in seen}
    for early in events[:5]:
        assert states[early] == ("old json", b"old midi")
    assert states["committed:song.json"] == ("new json", b"old midi")  # the JSON first, never the MIDI first
    assert states["committed:song.mid"] == ("new json", b"new midi")
    assert hidden(tmp_path) == []


def test_pair_without_overwrite_checks_every_name_first(tmp_path, both_temp_kinds):
    js, mid = tmp_path / "song.json", tmp_path / "song.mid"
    mid.write_bytes(b"user midi")
    with pytest.raises(DestinationExists, match="song.mid already exists"):
        write_files_atomic({js: b"{}", mid: b"MThd"}, overwrite=False)
    assert not js.exists() and mid.read_bytes() == b"user midi" and hidden(tmp_path) == []


def test_pair_race_rolls_back_the_first_file(tmp_path, monkeypatch, both_temp_kinds):
    js, mid = tmp_path / "song.json", tmp_path / "song.mid"

    def sneak(event):
        if event == "committed:song.json":
            mid.write_bytes(b"appeared")

    monkeypatch.setattr(fileio, "_phase", sneak)
    with pytest.raises(DestinationExists):
        write_files_atomic({js: b"{}", mid: b"MThd"}, overwrite=False)
    assert not js.exists() and mid.read_bytes() == b"appeared" and hidden(tmp_path) == []


@pytest.mark.skipif(not fileio._ANON_OK, reason="needs O_TMPFILE")
def test_a_kill_while_writing_leaves_no_file_at_all(tmp_path):
    """Anonymous temporary files: a process killed before the commit leaves nothing behind."""
    code = ("import os, kelly.fileio as f\n"
            "f._phase = lambda e: os._exit(9) if e == 'temps-synced' else None\n"
            f"f.write_files_atomic({{{str(tmp_path / 'a.json')!r}: b'1', {str(tmp_path / 'a.mid')!r}: b'2'}})\n")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 9
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- reading JSON
def run_read_json(path, timeout=20):
    """read_json in a child process (so a regression that blocks fails the test instead of hanging it)."""
    code = ("import sys\nfrom kelly.fileio import read_json\nfrom kelly.errors import KellyError\n"
            f"try:\n    read_json({str(path)!r}, what='intent file')\nexcept KellyError as e:\n"
            "    print(e); sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_fifo_without_writer_does_not_block(tmp_path):
    fifo = tmp_path / "intent.json"
    os.mkfifo(fifo)
    result = run_read_json(fifo)
    assert result.returncode == 2
    assert result.stdout.strip() == (f"{fifo}: is a named pipe (FIFO), not an intent file "
                                     f"(Kelly reads only regular files)")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_fails_fast():
    start = time.monotonic()
    with pytest.raises(FileFormatError) as info:
        read_json("/dev/zero", what="groove template")
    assert time.monotonic() - start < 1
    assert one_line(info.value) == ("/dev/zero: is a character device, not a groove template "
                                    "(Kelly reads only regular files)")


def test_missing_and_folder(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(FileFormatError, match="is a folder, not an intent file"):
        read_json(tmp_path, what="intent file")


def test_size_cap_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 600 + "0]")
    assert len(read_json(path, max_bytes=2000)) == 601
    with pytest.raises(FileFormatError) as info:
        read_json(path, max_bytes=1000, what="intent file")
    assert one_line(info.value) == f"{path}: is 1.2 KiB; an intent file may be at most 1000 bytes"
    with open(path, "r+b") as handle:  # sparse: 17 MiB on paper, nothing read
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(FileFormatError, match="is 17 MiB; a JSON file may be at most 16 MiB"):
        read_json(path)


@pytest.mark.parametrize("depth,ok", [(1, True), (64, True), (65, False), (1000, False), (100_000, False)])
def test_nesting_depth(tmp_path, depth, ok):
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    if ok:
        read_json(path)
    else:
        with pytest.raises(FileFormatError) as info:
            read_json(path)
        assert one_line(info.value) == f"{path}: not a usable JSON file: nested more than 64 levels deep"


def test_depth_scan_ignores_brackets_in_strings_and_counts_objects():
    assert json_depth('{"a": "[[[[[[", "b": [{"c": "]]]\\"["}]}') == 3
    assert json_depth("42") == 0
    assert json_depth("[" * 300_000 + "]" * 300_000) == 300_000  # the large-input path
    assert fileio.parse_json_text('["' + "[" * 500 + '"]') == ["[" * 500]
    with pytest.raises(FileFormatError, match="nested more than 3"):
        fileio.parse_json_text('{"a": [{"b": [1]}]}', max_depth=3)


def test_deep_nesting_in_a_large_file_is_quick(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 4_000_000 + "]" * 4_000_000)
    start = time.monotonic()
    with pytest.raises(FileFormatError, match="nested more than"):
        read_json(path)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("text,needle", [
    ("1" * 4301, "an integer with 4301 digits (at most 4300)"),
    ("[-" + "9" * 5000 + "]", "an integer with 5000 digits"),
    ("1e999", "the number 1e999 is out of range"),
    ("[-1.5e400]", "the number -1.5e400 is out of range"),
    ("1" + "0" * 400 + ".0", "is out of range"),
    ("1" + "0" * 299 + "e99", "is out of range"),
    ("[NaN]", "NaN is not a number Kelly accepts"),
    ('{"x": Infinity}', "Infinity is not a number Kelly accepts"),
    ("-Infinity", "-Infinity is not a number Kelly accepts"),
])
def test_numbers_kelly_will_not_take(tmp_path, text, needle):
    path = tmp_path / "n.json"
    path.write_text(text)
    with pytest.raises(FileFormatError) as info:
        read_json(path)
    assert needle in one_line(info.value)


@pytest.mark.parametrize("text,value", [
    ("1" * 4300, int("1" * 4300)), ("1e308", 1e308), ("1e-999", 0.0), ("[1.5, -2, 3e10]", [1.5, -2, 3e10]),
    ('"1e999"', "1e999"), ("\ufeff{\"bom\": true}", {"bom": True}),
])
def test_numbers_and_text_kelly_takes(tmp_path, text, value):
    path = tmp_path / "n.json"
    path.write_text(text, encoding="utf-8")
    assert read_json(path) == value


def test_not_json_and_not_utf8(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        read_json(path, hint="; try again")
    assert one_line(info.value).endswith("; try again")
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(FileFormatError, match="not UTF-8"):
        read_json(path)


def test_every_failure_is_a_kelly_error(tmp_path):
    for text in ["", "[", "]", "{]", "[" * 70, "\x00", '"\\u12"', "[1,]", "1" * 10000]:
        path = tmp_path / "x.json"
        path.write_text(text)
        with pytest.raises(KellyError):
            read_json(path)


def test_anonymous_files_that_cannot_be_linked_fall_back_to_named_ones(tmp_path, monkeypatch):
    if not fileio._ANON_OK:
        pytest.skip("no O_TMPFILE here")

    def no_proc(self, dest):
        raise OSError(errno.ENOENT, "no /proc")

    monkeypatch.setattr(fileio, "_ANON_OK", True)  # restored afterwards (the fallback switches it off)
    monkeypatch.setattr(fileio._Temp, "_link", no_proc)
    (tmp_path / "b.mid").write_bytes(b"old")
    write_files_atomic({tmp_path / "a.json": b"1", tmp_path / "a.mid": b"2"}, overwrite=False)
    write_bytes_atomic(tmp_path / "b.mid", b"new")
    assert (tmp_path / "a.json").read_bytes() == b"1" and (tmp_path / "a.mid").read_bytes() == b"2"
    assert (tmp_path / "b.mid").read_bytes() == b"new" and hidden(tmp_path) == []
    assert fileio._ANON_OK is False  # and later writes go straight to named files
