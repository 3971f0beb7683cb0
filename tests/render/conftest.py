"""Fixtures for the render tests: one small composition (D minor), written once, and a fake soundfont."""

from __future__ import annotations

import pytest

from kelly.emotion.thesaurus import state_for
from kelly.generator import ComposeOptions, compose


@pytest.fixture(scope="session")
def composition():
    """A 4-bar D-minor composition with drums (performed ``.song`` and quantized ``.score``)."""
    return compose(state_for("grief"), ComposeOptions(bars=4, seed=7, key="Dm", complexity=0.8))


@pytest.fixture
def midi_file(tmp_path, composition):
    path = tmp_path / "song.mid"
    path.write_bytes(composition.song.to_bytes())
    return path


def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + len(body).to_bytes(4, "little") + body + (b"\0" if len(body) % 2 else b"")


@pytest.fixture
def fake_soundfont(tmp_path):
    """A soundfont's skeleton (RIFF sfbk with INFO, sdta and pdta lists) without instruments.

    It passes Kelly's header check, so the tests of what comes after run without a real
    soundfont; FluidSynth cannot load it.
    """
    path = tmp_path / "fake.sf2"
    body = b"sfbk" + _chunk(b"LIST", b"INFO" + _chunk(b"ifil", bytes(4))) + _chunk(b"LIST", b"sdta") + \
        _chunk(b"LIST", b"pdta")
    path.write_bytes(_chunk(b"RIFF", body))
    return path


FAKE_SYNTH = r'''
import os, sys, time
args = sys.argv[1:]
out, rate = args[args.index("-F") + 1], int(args[args.index("-r") + 1])
mode = os.environ.get("FAKE_SYNTH_MODE", "tone")
if mode == "exit1":
    sys.stderr.write("fluidsynth: error: something went wrong\nsecond line\n"); sys.exit(1)
if mode == "sleep":
    time.sleep(30)
if mode == "nothing":
    sys.exit(0)
if mode == "fail-load":
    sys.stderr.write('fluidsynth: error: Failed to load SoundFont "x.sf2"\n')
if mode == "wrong-rate":
    rate = rate // 2
import struct, math
n = rate // 2
level = 0.0 if mode == "silent" else (4.0 if mode == "loud" else 0.3)
frames = b"".join(struct.pack("<ff", level * math.sin(i / 10), level * math.sin(i / 10)) for i in range(n))
fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)
with open(out, "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(frames)) + b"WAVE")
    f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames)
'''


@pytest.fixture
def fake_synth(tmp_path, monkeypatch):
    """A stand-in ``fluidsynth`` program (mode by ``FAKE_SYNTH_MODE``): tests FluidSynth's failure modes anywhere."""
    import sys

    import kelly.render.audio as audio

    script = tmp_path / "fluidsynth"
    script.write_text(f"#!{sys.executable}\n{FAKE_SYNTH}")
    script.chmod(0o755)
    monkeypatch.setattr(audio.shutil, "which", lambda name: str(script))

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_SYNTH_MODE", name)

    return mode


@pytest.fixture
def cli(capsys):
    """Run ``kelly.cli.main`` and return ``(exit code, stdout, stderr)``."""
    from kelly.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run

