"""Machinery for the kill -9 and full-disk tests (``tests/faults/``) and their long form, ``tests/kill_faults.py``.

A *child* is the real ``kelly`` command line (``kelly.cli.main``, as ``python -m kelly`` runs
it) in its own process, with :func:`kelly.fileio._phase` replaced by a hook that appends
each step of every atomic write to a trace file and can stop the process (``SIGSTOP``) at
chosen steps, named ``EVENT#N`` (the N-th time that step happens: ``temp-written:last.pt#3``
is the third checkpoint's temporary file, complete but not yet renamed). The parent can
also stop it at any moment (a random one). A stopped child's folder is exactly what a
``kill -9`` at that moment leaves (a kill runs no code of ours; the open, anonymous
temporary files vanish with the process and were never visible), so the tests *snapshot*
the folder at each stop, let the child go on, and end it with a real ``SIGKILL``; each
snapshot is then checked and resumed like a folder left by a kill. The long script kills
for real at every trial.

The child can also run under a file-size limit (``RLIMIT_FSIZE`` with ``SIGXFSZ``
ignored: a write past it fails with ``EFBIG``, as a full disk fails with ``ENOSPC``), and
with the anonymous temporary files turned off (``kelly.fileio._ANON_OK``), to exercise
the named ``.NAME.XXXXXXXX.tmp`` fallback other systems use.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

_CHILD = r"""
import os, signal, sys, time
trace = os.open(os.environ["KELLY_FAULT_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
stops = set(filter(None, os.environ.get("KELLY_FAULT_STOPS", "").split("|")))
if os.environ.get("KELLY_FAULT_FSIZE"):
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(os.environ["KELLY_FAULT_FSIZE"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
import kelly.fileio
if os.environ.get("KELLY_FAULT_NAMED"):
    kelly.fileio._ANON_OK = False
counts = {}
def phase(event):
    n = counts[event] = counts.get(event, 0) + 1
    os.write(trace, f"{event}#{n} {time.monotonic():.6f}\n".encode())
    if f"{event}#{n}" in stops:
        os.kill(os.getpid(), signal.SIGSTOP)
kelly.fileio._phase = phase
from kelly.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Child:
    """``kelly ARGV…`` in a child process that can be stopped, inspected, continued and killed."""

    def __init__(self, argv: list[str], workdir: Path, *, stops=(), fsize: int | None = None, named: bool = False,
                 env: dict | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.trace = workdir / f"trace-{time.monotonic_ns()}"
        self.out = open(workdir / f"out-{time.monotonic_ns()}", "w+b")  # noqa: SIM115 - closed in finish()
        e = dict(os.environ, KELLY_FAULT_TRACE=str(self.trace), KELLY_FAULT_STOPS="|".join(stops),
                 PYTHONDONTWRITEBYTECODE="1", **(env or {}))
        if fsize is not None:
            e["KELLY_FAULT_FSIZE"] = str(fsize)
        if named:
            e["KELLY_FAULT_NAMED"] = "1"
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([PY, "-c", _CHILD, *map(str, argv)], cwd=ROOT, env=e, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        self.returncode: int | None = None

    # -- waiting ----------------------------------------------------------------------------
    def _reap(self, flags: int) -> str | None:
        pid, status = os.waitpid(self.proc.pid, flags)
        if not pid:
            return None
        if os.WIFSTOPPED(status):
            return "stopped"
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        return f"exited {self.returncode}"

    def wait_stopped(self, timeout: float = 300.0) -> str:
        """Wait until the child stops itself at a step (``"stopped"``) or exits (``"exited N"``)."""
        if self.returncode is not None:
            return f"exited {self.returncode}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self._reap(os.WNOHANG | os.WUNTRACED)
            if got:
                return got
            time.sleep(0.002)
        self.kill()
        raise TimeoutError(f"the child did not stop or exit within {timeout:.0f} s: {self.output()[-800:]}")

    def stop_now(self) -> str:
        """Stop the child at this very moment (a random moment of its run); ``"stopped"`` or ``"exited N"``."""
        if self.returncode is not None:
            return f"exited {self.returncode}"
        got = self._reap(os.WNOHANG)
        if got:
            return got
        os.kill(self.proc.pid, signal.SIGSTOP)
        got = self._reap(os.WUNTRACED)
        return got or "stopped"

    def cont(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> str:
        """``kill -9`` (stopped or running) and reap; ``"killed"`` or ``"exited N"`` when it ended first."""
        if self.returncode is not None:
            return f"exited {self.returncode}"
        got = self._reap(os.WNOHANG)
        if got and got != "stopped":
            return got
        os.kill(self.proc.pid, signal.SIGKILL)
        _, status = os.waitpid(self.proc.pid, 0)
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        return "killed"

    def finish(self, timeout: float = 300.0) -> int:
        """Let the child run to its end; its exit code."""
        while True:
            got = self.wait_stopped(timeout)
            if got != "stopped":
                return self.returncode
            self.cont()

    # -- what it did -----------------------------------------------------------------------
    def events(self) -> list[str]:
        if not self.trace.exists():
            return []
        return [line.rpartition(" ")[0] for line in self.trace.read_text().splitlines()]

    def output(self) -> str:
        self.out.flush()
        self.out.seek(0)
        return self.out.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self.returncode is None:
            self.kill()
        self.out.close()


def snapshot(folder: Path, dest: Path) -> Path:
    """A copy of ``folder`` as it is now (hidden temporary files included): what a kill now would leave."""
    shutil.copytree(folder, dest, symlinks=True)
    return dest


# ------------------------------------------------------------------------------------------ checks
#: Our temporary names (kelly.fileio): ``.NAME.`` + 8 of [a-z0-9_] + ``.tmp``.
TEMP_NAME = re.compile(r"\A\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp\Z")


def whole(path: Path, kind: str | None = None) -> str | None:
    """None when ``path`` is a complete file of its kind (by ``kind`` or its suffix), else why not."""
    kind = kind or path.name
    data = path.read_bytes()
    try:
        if kind.endswith(".pt"):
            import torch

            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        elif kind.endswith(".json"):
            json.loads(data)
        elif kind.endswith(".csv"):
            rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
            if not data.endswith(b"\n") or len({len(r) for r in rows}) > 1:
                return "a CSV cut short"
        elif kind.endswith(".npz"):
            import numpy as np

            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                for name in npz.files:
                    npz[name]
        elif kind.endswith(".onnx"):
            import onnx

            onnx.checker.check_model(onnx.load_from_string(data))
        elif kind.endswith(".wav"):
            return wav_problem(data)
        elif kind.endswith(".mid"):
            import mido

            mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"does not read ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def wav_problem(data: bytes) -> str | None:
    """None when ``data`` is a whole RIFF/WAVE file (the sizes its header gives are all there) that soundfile reads."""
    import soundfile

    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return f"not a WAV header ({len(data)} bytes)"
    if int.from_bytes(data[4:8], "little") + 8 != len(data):
        return f"RIFF size {int.from_bytes(data[4:8], 'little') + 8} but {len(data)} bytes: cut short"
    frames, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    if len(frames) == 0 or rate <= 0:
        return "no frames"
    return None


def folder_problems(folder: Path, *, recursive: bool = True) -> tuple[list[str], list[str]]:
    """(problems, leftovers) for every file under ``folder``: each named file must be whole; a hidden file
    must be one of our temporary files (``.NAME.XXXXXXXX.tmp``), and is listed in ``leftovers`` (with
    whether it is whole: a named temporary file is whole unless the run was killed while writing it)."""
    problems, leftovers = [], []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        if not path.is_file() or path.name.startswith(("trace-", "out-")):
            continue
        m = TEMP_NAME.match(path.name)
        if path.name.startswith("."):
            if not m:
                problems.append(f"{path.relative_to(folder)}: a hidden file that is not a temporary file of ours")
                continue
            why = whole(path, m["name"])
            leftovers.append(f"{path.relative_to(folder)}" + (f" (partial: {why})" if why else " (whole)"))
            continue
        why = whole(path)
        if why:
            problems.append(f"{path.relative_to(folder)}: {why}")
    return problems, leftovers


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_of(folder: Path) -> dict[str, bytes]:
    """The named (not hidden) files directly in ``folder``: name → bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``kelly ARGV…`` in this process; (exit code, standard output + error)."""
    import contextlib

    from kelly.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main([str(a) for a in argv])
    return code, buf.getvalue()


def run_child(argv: list[str], workdir: Path, **kw) -> tuple[int, str]:
    """``kelly ARGV…`` in a child process to its end; (exit code, output)."""
    child = Child(argv, workdir, **kw)
    try:
        code = child.finish()
        return code, child.output()
    finally:
        child.close()


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old (the temporary-file sweep goes by modification time)."""
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)
