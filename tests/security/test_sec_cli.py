"""The command line's files: names taken from file contents, links, devices, and a size cap on every reader.

On the command line the person names their own paths, so a path argument is theirs to
choose; the threat is a *file they were handed*: an intent whose title is a path, a
model folder whose files link elsewhere, an input that is a link to a device, a file far
larger than any real one. Every reader checks the size with ``stat`` before reading, so
an oversized (here: sparse) file is refused at once, without the memory it would take.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path

import pytest

from kelly.errors import KellyError

SHIPPED = Path(__file__).resolve().parents[2] / "kelly" / "assets" / "models"


def _cli(argv, capsys) -> tuple[int, str, str]:
    from kelly.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- names from contents
@pytest.mark.parametrize("title", ["../../../escaped", "/tmp/kelly-sec-abs", "..\\..\\escaped", "a/../../b",
                                   "%2e%2e%2fescaped", "\x00nul", "." * 200, "x" * 5000])
def test_an_intent_title_never_becomes_a_path(tmp_path, monkeypatch, capsys, title):
    """kelly intent process names its output after the intent's title: always one safe name in kelly-out/."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, doc, _ = _cli(["intent", "new", "-t", "x"], capsys)
    intent = json.loads(doc)
    intent["title"] = title
    (work / "intent.json").write_text(json.dumps(intent))
    code, _, err = _cli(["intent", "process", "intent.json", "--bars", "2"], capsys)
    assert code in (0, 2), err
    made = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != work]
    assert all(p.parent == work / "kelly-out" for p in made), made
    assert all(len(p.name) < 80 and "." not in p.stem for p in made), made
    assert not Path("/tmp/kelly-sec-abs.mid").exists()


def test_compose_text_never_becomes_a_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["compose", "../../../../tmp/kelly-sec-escape/ grief", "--bars", "2"], capsys)
    assert code == 0, err
    made = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert made and all(p.parent == tmp_path / "kelly-out" for p in made), made
    assert not Path("/tmp/kelly-sec-escape").exists()


# --------------------------------------------------------------------------- links and devices
def test_an_output_that_is_a_link_is_refused_and_its_target_kept(tmp_path, capsys):
    target = tmp_path / "precious.mid"
    target.write_bytes(b"keep")
    link = tmp_path / "out.mid"
    link.symlink_to(target)
    code, _, err = _cli(["compose", "calm", "--bars", "2", "--out", str(link), "--force"], capsys)
    assert code == 2 and "link" in err
    assert target.read_bytes() == b"keep"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_input_linking_to_a_device_is_refused_at_once(tmp_path, capsys, device):
    link = tmp_path / "song.mid"
    link.symlink_to(device)
    t0 = time.monotonic()
    for argv in (["analyze", str(link)], ["intent", "validate", str(link)], ["runtime", str(link)]):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and err.startswith("kelly: error: "), (argv, err)
    assert time.monotonic() - t0 < 10


def test_a_models_dir_link_out_of_the_folder_is_refused_or_falls_back(tmp_path, capsys, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(SHIPPED / "harmonypredictor.npz", outside / "harmonypredictor.npz")
    models = tmp_path / "models"
    models.mkdir()
    (models / "harmonypredictor.npz").symlink_to(outside / "harmonypredictor.npz")
    code, _, err = _cli(["compose", "calm", "--bars", "2", "--models-dir", str(models),
                         "--out", str(tmp_path / "a.mid")], capsys)
    assert code == 2 and "outside" in err, err
    monkeypatch.setenv("KELLY_MODELS", str(models))
    code, out, err = _cli(["compose", "calm", "--bars", "2", "--out", str(tmp_path / "b.mid"), "--json"], capsys)
    assert code == 0, err
    status = json.loads(out)["models"]["status"]["harmonypredictor"]
    assert "outside" in status, status


# --------------------------------------------------------------------------- sizes
def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no disk, no memory: only stat sees the size
    return path


def _readers():
    """(what, cap in bytes, call) for every reader of a file a person may be handed."""
    from kelly.emotion import bio, evaluation
    from kelly.fileio import DEFAULT_MAX_JSON_BYTES, read_json
    from kelly.ml import runtime
    from kelly.ml.specs import SPECS
    from kelly.ml.train import checkpoint, sections
    from kelly.song import MAX_FILE_BYTES, read_midi

    out = [
        ("MIDI", MAX_FILE_BYTES, read_midi),
        ("JSON (intents, templates, sidecars)", DEFAULT_MAX_JSON_BYTES, lambda p: read_json(p)),
        ("RTNeural/packed model", runtime.MAX_MODEL_BYTES, lambda p: runtime.load_model(p, spec=SPECS["dynamicsengine"])),
        ("training checkpoint", checkpoint.MAX_CHECKPOINT_BYTES, lambda p: checkpoint.load_checkpoint(p)),
        ("TOML config", sections.MAX_CONFIG_BYTES,
         lambda p: sections.load_section(dict, "small", p, what="test")),
        ("biometrics CSV", bio.MAX_CSV_BYTES, bio.read_bio_csv),
        ("feel --evaluate sentences", evaluation.MAX_EVAL_BYTES, evaluation.load_sentences),
    ]
    from kelly.transformer.composer import MAX_WEIGHTS_BYTES, load_weights  # needs only numpy: never skipped

    out.append(("transformer weights", MAX_WEIGHTS_BYTES, load_weights))
    return out


@pytest.mark.parametrize("what", [r[0] for r in _readers()])
def test_every_reader_refuses_an_oversized_file_before_reading_it(tmp_path, what):
    _, cap, call = next(r for r in _readers() if r[0] == what)
    path = _sparse(tmp_path / "big.bin", cap + 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(KellyError) as info:
        call(path)
    assert time.monotonic() - t0 < 2.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 32, f"{what}: {grown_mb:.0f} MB used to refuse a {cap + 1}-byte file"
    message = str(info.value)
    assert "\n" not in message and ("at most" in message or "larger than" in message), message


def test_standard_input_is_capped_while_reading(tmp_path):
    """kelly feel reads standard input with a cap: /dev/zero fails at 64 MB, not at the end of memory."""
    import subprocess
    import sys

    t0 = time.monotonic()
    with open("/dev/zero", "rb") as zero:
        r = subprocess.run([sys.executable, "-m", "kelly", "feel"], stdin=zero, capture_output=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert r.returncode == 2 and b"64 MB" in r.stderr, r.stderr[-300:]
    assert time.monotonic() - t0 < 60
