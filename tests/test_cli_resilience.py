"""The command line's last resort: whatever goes wrong is one stderr line and exit 2 (issue 9)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kelly import cli
from kelly.commands import feel

ROOT = Path(__file__).resolve().parents[1]


def run(args, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "kelly", *args], cwd=ROOT, stderr=subprocess.PIPE, **kw)


def one_line_exit_2(result):
    assert result.returncode == 2, result
    lines = result.stderr.decode("utf-8").strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kelly: error: "), result.stderr
    assert b"Traceback" not in result.stderr
    return lines[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("args", [["feel", "I'm ok"], ["emotions"], ["rules"]])
def test_full_disk_under_stdout_is_one_line(args):
    with open("/dev/full", "wb") as full:
        line = one_line_exit_2(run(args, stdout=full))
    assert "cannot write to standard output" in line


def test_closed_stdout_still_works(tmp_path):
    out = tmp_path / "x.mid"
    result = subprocess.run([sys.executable, "-c", "import os, sys; os.close(1); from kelly.cli import main; "
                             f"sys.exit(main(['compose', 'grief', '--bars', '2', '--out', {str(out)!r}]))"],
                            cwd=ROOT, capture_output=False, stderr=subprocess.PIPE)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and out.exists()


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen([sys.executable, "-m", "kelly", "emotions"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0 and b"Traceback" not in err and b"Exception ignored" not in err


def test_unexpected_errors_are_one_line_and_debug_shows_them(monkeypatch, capsys):
    def boom(args):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(feel, "handler", boom)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():  # noqa: SLF001 - test hook
        if action.prog.endswith(" feel"):
            action.set_defaults(func=boom)
    assert cli.main(["feel", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unexpected internal error (TypeError: a bug of ours)" in err[0]
    with pytest.raises(TypeError):
        cli.main(["--debug", "feel", "x"])


@pytest.mark.parametrize("exc,needle", [(MemoryError(), "out of memory"), (RecursionError(), "nested too deeply")])
def test_memory_and_recursion_errors(monkeypatch, capsys, exc, needle):
    def boom(args):
        raise exc

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():  # noqa: SLF001 - test hook
        if action.prog.endswith(" emotions"):
            action.set_defaults(func=boom)
    assert cli.main(["emotions"]) == 2
    assert needle in capsys.readouterr().err


def test_feel_output_is_valid_utf8_for_bad_bytes():
    result = run(["feel"], input=b"I feel \xff\xfe awful\n")
    assert result.returncode == 0
    result.stdout.decode("utf-8")  # raises if invalid
    assert "\ufffd" in result.stdout.decode("utf-8")
    arg = run(["feel", os.fsdecode(b"bad \xff text")])
    assert arg.returncode == 0
    arg.stdout.decode("utf-8")


def test_feel_from_dev_zero_fails_fast():
    with open("/dev/zero", "rb") as zero:
        line = one_line_exit_2(run(["feel"], stdin=zero, timeout=20))
    assert "standard input is larger than" in line


def test_argparse_errors_are_one_line():
    one_line_exit_2(run(["compose", "--bars", "many"]))


def test_a_negative_vad_triple_is_taken_as_the_options_value(capsys):
    """``--emotion -0.6,0.8,0.4`` (as the README writes it) reaches the option, not argparse's "expected one argument"."""
    assert cli._attach_negative_lists(["render", "a.mid", "--emotion", "-0.6,0.8,0.4", "--seed", "-1"]) == \
        ["render", "a.mid", "--emotion=-0.6,0.8,0.4", "--seed", "-1"]
    assert cli._attach_negative_lists(["--emotion=-1,0,0", "-0.5,1"]) == ["--emotion=-1,0,0", "-0.5,1"]
    assert cli.main(["render", "missing.mid", "--voice", "ddsp", "--emotion", "-0.6,0.8"]) == 2
    err = capsys.readouterr().err
    assert "--emotion takes V,A,D" in err and "expected one argument" not in err
