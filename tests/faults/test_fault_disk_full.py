"""A full disk: one clear line naming the file and saying so (exit 2), the previous file untouched, no temporary
file left, and a training run that keeps its last good checkpoint and resumes from it later.

Three ways to fill a disk:

* for real, in a child process under a file-size limit (``RLIMIT_FSIZE`` with ``SIGXFSZ``
  ignored, so a write past the limit fails with ``EFBIG``, which Kelly reports as it does
  ``ENOSPC``): the compose pair, a WAV written by Kelly, a WAV rendered by FluidSynth;
* in this process, by making the write of one chosen file fail with ``ENOSPC``
  (:func:`kelly.fileio._Temp.write` or the WAV stream): a training checkpoint, a model
  export, the web app's library;
* on a real, small tmpfs (needs root; skipped where mounting is not allowed): a training
  run that fills it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fault_helpers import files_of, folder_problems, run_child, run_cli  # noqa: E402

import kelly.fileio as fileio  # noqa: E402

FULL = "no space left: the disk is full or the file is too large for it"


def one_error_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("kelly: error:")]
    assert len(lines) == 1, out
    assert "Traceback" not in out, out
    return lines[0]


def hidden(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def fail_writing(monkeypatch, name: str, nth: int = 1, err: int = errno.ENOSPC) -> list:
    """Make the ``nth`` temporary-file write for a file called ``name`` fail as a full disk does."""
    seen = []
    real = fileio._Temp.write

    def write(self):
        if self.target.name == name:
            seen.append(name)
            if len(seen) == nth:
                # a partial write first, as a disk that fills up mid-file gives
                self.open()
                os.write(self.fd, self.data[: len(self.data) // 2])
                raise OSError(err, os.strerror(err))
        return real(self)

    monkeypatch.setattr(fileio._Temp, "write", write)
    return seen


# ------------------------------------------------------------------------------- real limits, in a child
def test_compose_pair_on_a_full_disk(tmp_path):
    out = tmp_path / "song.mid"
    code, text = run_cli(["compose", "grief", "--bars", "8", "--seed", "1", "--out", out])
    assert code == 0, text
    old = files_of(tmp_path)
    code, text = run_child(["compose", "grief", "--bars", "32", "--seed", "2", "--out", out, "--force"],
                           tmp_path / "io", fsize=8192)
    line = one_error_line(text)
    assert code == 2 and FULL in line and "song.json" in line and "File too large" in line, text
    assert files_of(tmp_path) == old and hidden(tmp_path) == []


def test_wav_written_by_kelly_on_a_full_disk(tmp_path):
    """The DDSP voice's WAV is written by Kelly (:func:`kelly.render.audio.write_samples`)."""
    midi, wav = tmp_path / "s.mid", tmp_path / "out" / "song.wav"
    assert run_cli(["compose", "calm", "--bars", "2", "--seed", "1", "--out", midi])[0] == 0
    wav.parent.mkdir()
    wav.write_bytes(b"RIFF-old")  # the previous file: a WAV in name only, kept byte for byte
    code, text = run_child(["render", midi, "--out", wav, "--voice", "ddsp", "--force"], tmp_path / "io",
                           fsize=64 * 1024)
    line = one_error_line(text)
    assert code == 2 and FULL in line and str(wav) in line, text
    assert wav.read_bytes() == b"RIFF-old" and hidden(wav.parent) == []


def test_wav_rendered_by_fluidsynth_on_a_full_disk(tmp_path):
    """FluidSynth's own render (in the temporary folder) dies of the limit: reported as a full disk, not as
    "FluidSynth failed: no message"."""
    from kelly.render.audio import synth_available

    if not synth_available():
        pytest.skip("no FluidSynth")
    midi, wav = tmp_path / "s.mid", tmp_path / "out" / "song.wav"
    assert run_cli(["compose", "calm", "--bars", "2", "--seed", "1", "--out", midi])[0] == 0
    wav.parent.mkdir()
    wav.write_bytes(b"RIFF-old")
    code, text = run_child(["render", midi, "--out", wav, "--force"], tmp_path / "io", fsize=64 * 1024)
    line = one_error_line(text)
    assert code == 2 and FULL in line and "FluidSynth" in line, text
    assert wav.read_bytes() == b"RIFF-old" and hidden(wav.parent) == []


# ------------------------------------------------------------------------------- injected, in this process
def test_training_stops_on_a_full_disk_keeping_its_last_checkpoint_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from kelly.ml.train.checkpoint import load_checkpoint

    config = tmp_path / "tiny.toml"
    config.write_text('[defaults]\nepochs = 4\nbatch_size = 16\ndevice = "cpu"\nsynthetic_samples = 96\n'
                      "seq_len = 4\n")
    argv = ["train", "--models", "dynamicsengine", "--data", "synthetic", "--config", config,
            "--out", tmp_path / "out", "--resume"]
    fail_writing(monkeypatch, "last.pt", nth=3)
    code, text = run_cli(argv)
    line = one_error_line(text)
    assert code == 2 and FULL in line and "last.pt" in line and "nothing was replaced" in line, text
    run = tmp_path / "out" / "runs" / "dynamicsengine"
    assert load_checkpoint(run / "last.pt")["epoch"] == 2  # the last good checkpoint
    problems, left = folder_problems(tmp_path / "out")
    assert not problems and not left and hidden(tmp_path / "out") == []
    monkeypatch.undo()  # space again
    code, text = run_cli(argv)
    assert code == 0 and "resuming after epoch 2 " in text, text
    assert load_checkpoint(run / "last.pt")["epoch"] == 4


def test_model_export_on_a_full_disk_keeps_the_old_set(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    out = tmp_path / "models"
    assert run_cli(["export", "--seed", "1", "--out", out])[0] == 0
    old = files_of(out)
    fail_writing(monkeypatch, "groovepredictor.json")
    code, text = run_cli(["export", "--seed", "2", "--out", out, "--force"])
    line = one_error_line(text)
    assert code == 2 and FULL in line and "groovepredictor.json" in line, text
    assert files_of(out) == old and hidden(out) == []


def test_wav_stream_on_a_full_disk(tmp_path, monkeypatch):
    """The disk fills while the WAV streams out (after a partial write): the old WAV stays, nothing is left."""
    import numpy as np

    from kelly.errors import OutputError
    from kelly.render import audio

    wav = tmp_path / "song.wav"
    audio.write_samples(np.full((1000, 2), 0.25, np.float32), wav, sample_rate=8000)
    old = wav.read_bytes()
    real = audio._write_pcm

    def filling(samples, peak, out, sample_rate, **kw):
        out.write(b"RIFF" + b"\0" * 5000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(audio, "_write_pcm", filling)
    with pytest.raises(OutputError) as info:
        audio.write_samples(np.full((4000, 2), 0.5, np.float32), wav, sample_rate=8000, force=True)
    assert FULL in str(info.value) and str(wav) in str(info.value) and "\n" not in str(info.value)
    assert wav.read_bytes() == old and hidden(tmp_path) == []
    monkeypatch.setattr(audio, "_write_pcm", real)


def test_library_on_a_full_disk(tmp_path, monkeypatch):
    """The web app's library (kelly/app/library.py): a composition whose files cannot be written is not kept
    (no folder, no row); a file that cannot be replaced keeps its old contents."""
    from kelly.app.library import Library
    from kelly.errors import OutputError

    lib = Library(tmp_path / "lib")
    kept = lib.add(text="calm", label="calm", valence=0.2, arousal=0.2, dominance=0.5, parameters={},
                   files={"song.mid": b"MThd-old", "song.json": b"{}"})
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "lib").rglob("*") if "library" not in p.name)
    fail_writing(monkeypatch, "song.mid")
    with pytest.raises(OutputError) as info:
        lib.add(text="x", label="calm", valence=0.2, arousal=0.2, dominance=0.5, parameters={},
                files={"song.mid": b"MThd-new" * 100, "song.json": b"{}"})
    assert FULL in str(info.value) and "song.mid" in str(info.value)
    assert lib.count() == 1
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "lib").rglob("*") if "library" not in p.name)
    assert after == before
    monkeypatch.undo()
    lib.add_file(kept.id, "song.wav", b"RIFF-old")
    fail_writing(monkeypatch, "song.wav")
    with pytest.raises(OutputError, match="no space left"):
        lib.add_file(kept.id, "song.wav", b"RIFF-new" * 100)
    assert lib.file_path(kept.id, "song.wav").read_bytes() == b"RIFF-old"
    assert not [p for p in (tmp_path / "lib").rglob(".*") if p.name.endswith(".tmp")]
    lib.close()


# ------------------------------------------------------------------------------- a real small disk
@pytest.fixture
def small_disk(tmp_path):
    """A 600 KiB tmpfs, where mounting is allowed (root, no container restriction); skipped elsewhere."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "kelly-test", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_training_fills_a_real_disk(small_disk, tmp_path):
    """Checkpoints of ~250 KB on a 600 KiB disk: the run fills it, stops with the line, and what is there loads."""
    pytest.importorskip("torch")
    from kelly.ml.train.checkpoint import load_checkpoint

    config = tmp_path / "tiny.toml"
    config.write_text('[defaults]\nepochs = 6\nbatch_size = 16\ndevice = "cpu"\nsynthetic_samples = 96\n'
                      "seq_len = 4\n")
    code, text = run_child(["train", "--models", "dynamicsengine", "--data", "synthetic", "--config", config,
                            "--out", small_disk / "out", "--resume"], tmp_path / "io")
    line = one_error_line(text)
    assert code == 2 and FULL in line and "No space left on device" in line, text
    problems, left = folder_problems(small_disk)
    assert not problems and not left, (problems, left)
    last = small_disk / "out" / "runs" / "dynamicsengine" / "last.pt"
    if last.exists():
        assert load_checkpoint(last)["epoch"] >= 1
