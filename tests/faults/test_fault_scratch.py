"""Scratch folders (a render's MIDI and raw samples) left by a killed process are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kelly.fileio import scratch_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    """Point the temporary folder (here and in children) at a folder of this test's own."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _killed_with_a_scratch_folder(prefix: str, tmp: Path) -> Path:
    """A process that makes a scratch folder, writes into it and is killed with SIGKILL inside it."""
    script = ("import sys, time\nfrom kelly.fileio import scratch_dir\n"
              f"with scratch_dir({prefix!r}) as d:\n"
              "    (d / 'raw.f32').write_bytes(b'x' * 100000)\n"
              "    print(d, flush=True)\n"
              "    time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    folder = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return folder


def test_a_killed_render_leaves_its_folder_and_the_next_one_removes_it(tmpdir_env):
    left = _killed_with_a_scratch_folder("kelly-render-", tmpdir_env)
    assert left.is_dir() and (left / "raw.f32").stat().st_size == 100000  # kill -9: nothing could clean up
    with scratch_dir("kelly-render-") as d:
        assert d.is_dir() and oct(d.stat().st_mode & 0o777) == oct(0o700)
        assert not left.exists()
    assert not d.exists()


def test_only_dead_owners_own_folders_of_the_same_prefix_are_removed(tmpdir_env):
    """A live process's folder, another prefix, a folder without an owner file and a link are left alone."""
    dead = _killed_with_a_scratch_folder("kelly-render-", tmpdir_env)
    other_prefix = _killed_with_a_scratch_folder("kelly-app-", tmpdir_env)
    no_owner = tmpdir_env / "kelly-render-making"
    no_owner.mkdir()
    target = tmpdir_env / "precious"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (target / ".kelly-owner").write_text("999999999\n")
    link = tmpdir_env / "kelly-render-link"
    link.symlink_to(target)
    with scratch_dir("kelly-render-") as mine:
        with scratch_dir("kelly-render-") as nested:  # a live owner (this process): its folder stays
            assert mine.is_dir() and nested.is_dir()
    assert not dead.exists()
    assert other_prefix.is_dir() and no_owner.is_dir() and link.is_symlink() and (target / "keep.txt").is_file()


def test_the_app_and_the_renderer_use_scratch_folders():
    """The places that write large intermediate files go through scratch_dir, not a bare TemporaryDirectory."""
    for rel in ("kelly/render/audio.py", "kelly/app/server.py", "kelly/ml/data/render.py", "kelly/ml/onnx_graphs.py"):
        text = (ROOT / rel).read_text()
        assert "scratch_dir(" in text and "TemporaryDirectory" not in text, rel
