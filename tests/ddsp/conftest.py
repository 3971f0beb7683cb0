"""Fixtures for the DDSP voice tests: synthetic notes and one tiny voice trained once per session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from _ddsp_helpers import tiny_settings, write_notes


@dataclass(frozen=True)
class TrainedVoice:
    folder: Path      # the --out folder: checkpoint, weights, the voice's files, the data cache
    audio: Path       # the --audio folder it learned from
    metrics: dict
    log: tuple


@pytest.fixture(scope="session")
def note_dir(tmp_path_factory) -> Path:
    """Eight decaying sawtooth notes of known pitch, 1.2 s at 16 kHz."""
    return write_notes(tmp_path_factory.mktemp("ddsp-notes"))


@pytest.fixture(scope="session")
def trained_voice(tmp_path_factory, note_dir) -> TrainedVoice:
    """A tiny voice (6 steps) trained on :func:`note_dir`, once for the whole session."""
    pytest.importorskip("torch")
    from kelly.ddsp.train import train

    out = tmp_path_factory.mktemp("ddsp-voice")
    lines: list[str] = []
    metrics = train(tiny_settings(), out, audio_dirs=[str(note_dir)], log=lines.append)
    return TrainedVoice(folder=out, audio=note_dir, metrics=metrics, log=tuple(lines))


@pytest.fixture
def voice_copy(trained_voice, tmp_path) -> Path:
    """A private copy of the trained folder, free to change."""
    dest = tmp_path / "voice"
    shutil.copytree(trained_voice.folder, dest)
    return dest


@pytest.fixture
def cli():
    """The real ``kelly`` command line (``kelly.cli.main``), every command registered."""
    import kelly.cli

    return kelly.cli.main
