"""Every command that writes: never over what Kelly did not write, never over an input, pairs that hold,
seeds in range, JSON inputs that fail fast (issue 9)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from kelly.cli import main

ROOT = Path(__file__).resolve().parents[1]


def kelly(*args, cwd=ROOT, timeout=60, **kw):
    return subprocess.run([sys.executable, "-m", "kelly", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_line_exit_2(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kelly: error: "), result.stderr
    return lines[0]


def cli_error(argv, capsys) -> str:
    code = main(list(map(str, argv)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("kelly: error: "), err
    return err.strip()


@pytest.fixture
def song(tmp_path):
    """A small MIDI file made by Kelly, to feed the groove commands."""
    path = tmp_path / "in.mid"
    assert main(["compose", "calm", "--bars", "2", "--out", str(path)]) == 0
    (tmp_path / "in.json").unlink()
    return path


# ---------------------------------------------------------------------------- compose
def test_compose_refuses_an_existing_explanation_and_leaves_it(tmp_path, capsys):
    notes = tmp_path / "song.json"
    notes.write_text('{"my":"notes"}\n')
    err = cli_error(["compose", "grief", "--bars", "2", "-o", tmp_path / "song.mid"], capsys)
    assert err == (f"kelly: error: {notes} already exists (Kelly writes the explanation of {tmp_path / 'song.mid'} "
                   f"there); use --force to replace it")
    assert notes.read_text() == '{"my":"notes"}\n' and not (tmp_path / "song.mid").exists()


def test_compose_refuses_an_existing_midi_until_forced(tmp_path, capsys):
    mid = tmp_path / "song.mid"
    mid.write_bytes(b"my own midi")
    os.chmod(mid, 0o640)
    err = cli_error(["compose", "grief", "--bars", "2", "-o", mid], capsys)
    assert err == f"kelly: error: {mid} already exists; use --force to replace it"
    assert mid.read_bytes() == b"my own midi"
    assert main(["compose", "grief", "--bars", "2", "-o", str(mid), "--force"]) == 0
    mido.MidiFile(str(mid))
    assert stat.S_IMODE(mid.stat().st_mode) == 0o640  # a replaced file keeps its mode
    ex = json.loads(mid.with_suffix(".json").read_text())
    assert ex["files"]["midi_sha256"] == hashlib.sha256(mid.read_bytes()).hexdigest()


def test_compose_fails_before_composing(tmp_path, capsys, monkeypatch):
    from kelly import generator

    (tmp_path / "song.json").write_text("{}")
    monkeypatch.setattr(generator, "compose", lambda *a, **k: pytest.fail("composed before checking the output"))
    cli_error(["compose", "grief", "-o", tmp_path / "song.mid"], capsys)


def test_compose_default_name_moves_on_to_the_next_free_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        assert main(["compose", "I feel grief", "--bars", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "kelly-out").iterdir()) == [
        "i-feel-grief-2.json", "i-feel-grief-2.mid", "i-feel-grief-3.json", "i-feel-grief-3.mid",
        "i-feel-grief.json", "i-feel-grief.mid"]
    assert "kelly-out/i-feel-grief-3.mid" in capsys.readouterr().out
    # a lone .json of someone else's also makes a name taken; it is left as it is
    (tmp_path / "kelly-out" / "i-feel-grief-4.json").write_text("mine")
    assert main(["compose", "I feel grief", "--bars", "1"]) == 0
    assert (tmp_path / "kelly-out" / "i-feel-grief-4.json").read_text() == "mine"
    assert (tmp_path / "kelly-out" / "i-feel-grief-5.mid").exists()
    ex = json.loads((tmp_path / "kelly-out" / "i-feel-grief-5.json").read_text())
    assert ex["files"]["midi"] == "kelly-out/i-feel-grief-5.mid"


def test_compose_new_files_are_0644(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["compose", "calm", "--bars", "1", "-o", str(tmp_path / "a.mid")]) == 0
    finally:
        os.umask(old)
    for name in ("a.mid", "a.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_compose_never_writes_through_a_symlink(tmp_path, capsys):
    target = tmp_path / "elsewhere.mid"
    target.write_bytes(b"precious")
    (tmp_path / "link.mid").symlink_to(target)
    err = cli_error(["compose", "calm", "--bars", "1", "-o", tmp_path / "link.mid", "--force"], capsys)
    assert "is a symbolic link" in err and target.read_bytes() == b"precious"


def test_compose_never_writes_over_a_model_it_reads(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    (models / "dynamicsengine.json").write_text("{}")
    err = cli_error(["compose", "calm", "--bars", "1", "--models-dir", models, "-o", models / "dynamicsengine.mid",
                     "--force"], capsys)
    assert "is this command's input" in err and (models / "dynamicsengine.json").read_text() == "{}"


def test_compose_300_character_name_is_one_line(tmp_path):
    line = one_line_exit_2(kelly("compose", "calm", "--bars", "1", "-o", tmp_path / ("x" * 300 + ".mid")))
    assert line.endswith("File name too long")


def test_demo_runs_twice(tmp_path, monkeypatch, capsys):
    from kelly import demo

    monkeypatch.chdir(tmp_path)
    assert demo.run() == 0
    first = (tmp_path / "kelly-out" / "demo.mid").read_bytes()
    assert demo.run() == 0
    assert (tmp_path / "kelly-out" / "demo.mid").read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "kelly-out").iterdir()) == ["demo.json", "demo.mid"]


# ---------------------------------------------------------------------------- intent
def test_intent_process_never_writes_over_its_intent(tmp_path):
    intent = tmp_path / "my-song.json"
    assert kelly("intent", "new", "-o", intent).returncode == 0
    before = intent.read_bytes()
    for extra in ([], ["--force"]):
        line = one_line_exit_2(kelly("intent", "process", intent, "-o", tmp_path / "my-song.mid", "--bars", 1,
                                     *extra))
        assert line == (f"kelly: error: {intent} is this command's input, and also where the explanation of "
                        f"{tmp_path / 'my-song.mid'} would go; Kelly never writes over its input, even with "
                        f"--force: choose another output name")
    assert intent.read_bytes() == before and not (tmp_path / "my-song.mid").exists()
    # through another spelling of the same path, too
    one_line_exit_2(kelly("intent", "process", "my-song.json", "-o", "./my-song", "--force", cwd=tmp_path))
    assert intent.read_bytes() == before


def test_intent_process_default_name_skips_the_intent(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kelly-out").mkdir()
    intent = tmp_path / "kelly-out" / "untitled.json"
    assert main(["intent", "new", "-o", str(intent)]) == 0
    before = intent.read_bytes()
    assert main(["intent", "process", str(intent), "--bars", "1"]) == 0
    assert intent.read_bytes() == before and (tmp_path / "kelly-out" / "untitled-2.mid").exists()


def test_intent_new_refuses_an_existing_file(tmp_path, capsys):
    out = tmp_path / "t.json"
    out.write_text("mine")
    err = cli_error(["intent", "new", "-o", out], capsys)
    assert err == f"kelly: error: {out} already exists; use --force to replace it"
    assert out.read_text() == "mine"
    assert main(["intent", "new", "-o", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["title"] == "Untitled"


def test_intent_process_refuses_existing_outputs_until_forced(tmp_path, capsys):
    intent = tmp_path / "i.json"
    assert main(["intent", "new", "-o", str(intent)]) == 0
    out = tmp_path / "out" / "s.mid"
    out.parent.mkdir()
    out.write_bytes(b"mine")
    assert "already exists" in cli_error(["intent", "process", intent, "-o", out, "--bars", 1], capsys)
    assert out.read_bytes() == b"mine"
    assert main(["intent", "process", str(intent), "-o", str(out), "--bars", "1", "--force"]) == 0
    mido.MidiFile(str(out))


# ---------------------------------------------------------------------------- groove
@pytest.mark.parametrize("action", [
    ["extract"], ["apply", "--template", "jazz"], ["humanize", "--seed", "1"], ["swing", "--amount", "0.5"]])
def test_groove_outputs_are_refused_until_forced(song, tmp_path, capsys, action):
    out = tmp_path / ("g.json" if action == ["extract"] else "g.mid")
    out.write_bytes(b"mine")
    argv = ["groove", action[0], song, *action[1:], "-o", out]
    assert cli_error(argv, capsys) == f"kelly: error: {out} already exists; use --force to replace it"
    assert out.read_bytes() == b"mine"
    assert main(list(map(str, argv + ["--force"]))) == 0
    assert out.read_bytes() != b"mine"
    # the input is never the output, even with --force
    before = song.read_bytes()
    err = cli_error(["groove", action[0], song, *action[1:], "-o", song, "--force"], capsys)
    assert "is also an input of this command" in err and song.read_bytes() == before


def test_groove_template_file_is_an_input(song, tmp_path, capsys):
    template = tmp_path / "groove.json"
    assert main(["groove", "extract", str(song), "-o", str(template)]) == 0
    before = template.read_bytes()
    err = cli_error(["groove", "apply", song, "--template", template, "-o", template, "--force"], capsys)
    assert "is also an input" in err and template.read_bytes() == before


# ---------------------------------------------------------------------------- ml export
def test_export_refuses_existing_model_files_before_starting(tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    (out / "manifest.json").write_text("mine")
    err = cli_error(["export", "--out", out], capsys)
    assert err == f"kelly: error: {out / 'manifest.json'} already exists; use --force to replace it"
    assert (out / "manifest.json").read_text() == "mine"


def test_export_force_replaces(tmp_path, capsys):
    pytest.importorskip("torch")
    from kelly.commands.ml import export_file_names

    out = tmp_path / "models"
    assert main(["export", "--out", str(out)]) == 0
    capsys.readouterr()  # a note on standard error says which weights were exported
    assert sorted(p.name for p in out.iterdir()) == sorted(export_file_names(["rtneural"]))  # the check knows them
    assert "already exists" in cli_error(["export", "--out", out], capsys)
    assert main(["export", "--out", str(out), "--force"]) == 0


# ---------------------------------------------------------------------------- seeds
SEED_COMMANDS = [
    ["compose", "calm", "--bars", "1"],
    ["intent", "process", "x.json"],
    ["groove", "humanize", "x.mid", "-o", "y.mid"],
    ["export", "--out", "m"],
    ["reharm", "F-C-Am-Dm"],
]


@pytest.mark.parametrize("command", SEED_COMMANDS, ids=lambda c: c[0] + ("-" + c[1] if c[0] in "groove intent" else ""))
@pytest.mark.parametrize("seed", ["-1", "18446744073709551616", "4294967296", "1.5", "seven", ""])
def test_bad_seeds_are_one_argparse_line(command, seed, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--seed", seed])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"kelly: error: argument --seed: must be a whole number from 0 to 4294967295, got {seed!r}\n"


def test_bad_seed_from_the_shell(tmp_path):
    for seed in ("-1", "18446744073709551616"):
        line = one_line_exit_2(kelly("compose", "grief", "--seed", seed, cwd=tmp_path))
        assert line == f"kelly: error: argument --seed: must be a whole number from 0 to 4294967295, got '{seed}'"
    assert not (tmp_path / "kelly-out").exists()


def test_largest_seed_composes(tmp_path):
    assert main(["compose", "calm", "--bars", "1", "--seed", "4294967295", "-o", str(tmp_path / "a.mid")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["seed"] == 4294967295


def test_every_seed_option_uses_seed_arg():
    from kelly.cli import build_parser
    from kelly.commands.options import seed_arg

    found = []

    def walk(parser):
        for action in parser._actions:  # noqa: SLF001 - inspecting the parser
            if "--seed" in action.option_strings:
                found.append((parser.prog, action.type))
            for sub in (getattr(action, "choices", None) or {}).values() if isinstance(action.choices, dict) else ():
                walk(sub)

    walk(build_parser())
    assert len(found) >= 5 and all(t is seed_arg for _, t in found), found


# ---------------------------------------------------------------------------- JSON inputs that fail fast
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize("argv", [
    ["intent", "validate", "/dev/zero"],
    ["intent", "process", "/dev/zero"],
    ["groove", "apply", "{song}", "--template", "/dev/zero", "-o", "{tmp}/o.mid"],
])
def test_dev_zero_as_json_input_fails_fast(argv, song, tmp_path):
    args = [a.format(song=song, tmp=tmp_path) for a in argv]
    start = time.monotonic()
    line = one_line_exit_2(kelly(*args, timeout=30))
    assert time.monotonic() - start < 20
    assert "/dev/zero: is a character device" in line


def test_fifo_as_intent_does_not_block(tmp_path):
    fifo = tmp_path / "intent.json"
    os.mkfifo(fifo)
    line = one_line_exit_2(kelly("intent", "process", fifo, timeout=30))
    assert "is a named pipe (FIFO), not an intent file" in line


def test_deeply_nested_intent_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert "nested more than 64 levels deep" in one_line_exit_2(kelly("intent", "validate", path))


# ---------------------------------------------------------------------------- kill test (short)
def _kill_pair():
    spec = importlib.util.spec_from_file_location("kill_pair", ROOT / "tests" / "kill_pair.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kills_at_every_step_of_a_pair_write(tmp_path):
    """A short run of tests/kill_pair.py: one kill stopped exactly at each step of the write."""
    kp = _kill_pair()
    result = kp.run_kills(len(kp.EVENTS), bars=2, seed=1, modes=("stop",), workdir=tmp_path, log=lambda *_: None)
    assert result["violations"] == []
    assert sum(result["phases"].values()) == len(kp.EVENTS)
    assert {f"after {e}" for e in kp.EVENTS} == set(result["phases"])
    assert set(result["states"]) <= {"old pair", "new pair", "new JSON + old MIDI (between the renames)"}
