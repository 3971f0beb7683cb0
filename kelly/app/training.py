"""Training runs started from the web app: ``kelly train`` in a child process, watched line by line.

Why a child process: training is long, uses every core and imports torch; the server
stays responsive, a cancel is a signal to the child's process group, and what the run
leaves behind is exactly what ``kelly train`` leaves: checkpoints written atomically, so
a cancelled (or killed) run resumes from its last epoch with ``kelly train --resume``,
which is what :meth:`Trainer.resume` runs.

The progress comes from the lines ``kelly train`` prints (``epoch 3/5  loss 0.036  val
0.023 … ETA 0:04``, and its baseline and best lines), parsed into :class:`Run` records
that the server streams to the page as server-sent events. One run at a time: the
machine's cores are the limit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kelly.errors import InputError

EPOCH_LINE = re.compile(r"^epoch\s+(\d+)/(\d+)\s+loss\s+([-\d.e+naif]+)\s+val\s+([-\d.e+naif]+).*?"
                        r"(?:\s+([\d.]+)\s+s)?(?:\s+ETA\s+([\d:]+))?\s*$")
BASELINE = re.compile(r"baseline \(training mean\): val ([-\d.e+]+)")
BEST = re.compile(r"best val ([-\d.e+]+) at epoch (\d+)")
MAX_LINES = 400


class Busy(InputError):
    """Another training run is going (the server answers 409)."""


@dataclass
class Run:
    """One training run as the page sees it."""

    id: str
    model: str
    data: str
    epochs: int
    out: str
    status: str = "running"           # running, finished, failed, cancelled
    started: float = field(default_factory=time.time)
    finished: float | None = None
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    eta: str | None = None
    message: str = ""
    best_val: float | None = None
    baseline_val: float | None = None
    lines: list[str] = field(default_factory=list)
    version: int = 0                  # bumped on every change (the event stream sends changes only)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("lines")
        return d


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_line(run: Run, line: str) -> None:
    """Fold one line of ``kelly train``'s output into ``run``."""
    line = line.rstrip()
    if not line:
        return
    run.lines = (run.lines + [line])[-MAX_LINES:]
    run.message = line[:300]
    m = EPOCH_LINE.match(line.strip())
    if m:
        run.epoch = int(m.group(1))
        run.history.append({"epoch": run.epoch, "loss": _float(m.group(3)), "val": _float(m.group(4)),
                            "seconds": _float(m.group(5) or "")})
        run.eta = m.group(6)
    if (b := BASELINE.search(line)) is not None:
        run.baseline_val = _float(b.group(1))
    if (b := BEST.search(line)) is not None:
        run.best_val = _float(b.group(1))
    run.version += 1


class Trainer:
    """The app's training runs: at most one at a time, each in ``folder/training/<id>``."""

    def __init__(self, folder: Path, *, python: str = sys.executable) -> None:
        self.folder = Path(folder) / "training"
        self.python = python
        self.runs: dict[str, Run] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def running(self) -> Run | None:
        with self._lock:
            return next((r for r in self.runs.values() if r.status == "running"), None)

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self.runs.get(run_id)

    def start(self, model: str, data: str, epochs: int) -> Run:
        from kelly.ml.specs import get_spec

        key = get_spec(model).key  # an unknown name is an InputError naming the five
        if data == "corpus":
            from kelly.ml.data.store import data_dir

            corpus = data_dir(None)
            if not (corpus / "manifest.jsonl").exists():
                raise InputError(f"the corpus is not built yet ({corpus}): build it with `python -m kelly.ml.data` "
                                 "(docs/data.md), or train on synthetic data to try the machinery")
        run = Run(id=uuid.uuid4().hex, model=key, data=data, epochs=int(epochs),
                  out=str(self.folder / uuid.uuid4().hex[:8]))
        self._launch(run, resume=False)
        return run

    def resume(self, run_id: str, epochs: int | None = None) -> Run:
        with self._lock:
            run = self.runs.get(run_id)
        if run is None:
            raise KeyError(run_id)
        if run.status == "running":
            raise Busy("that run is still going")
        old = self._procs.get(run_id)
        if old is not None:  # a cancelled child may still be writing its last checkpoint
            try:
                old.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise Busy("the cancelled run has not stopped yet; try again in a moment") from None
        run.epochs = int(epochs or run.epochs)
        run.status, run.finished, run.eta = "running", None, None
        self._launch(run, resume=True)
        return run

    def _launch(self, run: Run, *, resume: bool) -> None:
        with self._lock:
            other = next((r for r in self.runs.values() if r.status == "running" and r.id != run.id), None)
            if other is not None:
                raise Busy(f"a training run of {other.model} is going; wait for it or cancel it first")
            from kelly.app.paths import make_private_dirs

            make_private_dirs(Path(run.out))  # 0700, like the app folder it lives in
            cmd = [self.python, "-m", "kelly", "train", "--models", run.model, "--data", run.data,
                   "--epochs", str(run.epochs), "--out", run.out, "--resume" if resume else "--force"]
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self._procs.pop(run.id, None)
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, text=True, errors="replace")
            run.status = "running"
            run.version += 1
            self.runs[run.id] = run
            self._procs[run.id] = proc
            self.changed.notify_all()
        threading.Thread(target=self._watch, args=(run, proc), daemon=True, name=f"kelly-train-{run.id[:8]}").start()

    def _watch(self, run: Run, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                read_line(run, line)
                self.changed.notify_all()
        code = proc.wait()
        with self._lock:
            if self._procs.get(run.id) is not proc:
                return  # a resumed process has taken over this run
            if run.status == "running":
                run.status = "finished" if code == 0 else "failed"
                if code != 0 and run.lines:
                    run.message = run.lines[-1][:300]
            run.finished = time.time()
            run.eta = None
            run.version += 1
            self._procs.pop(run.id, None)
            self.changed.notify_all()

    def cancel(self, run_id: str) -> Run:
        with self._lock:
            run = self.runs.get(run_id)
            proc = self._procs.get(run_id)
            if run is None:
                raise KeyError(run_id)
            if run.status != "running" or proc is None:
                return run
            run.status = "cancelled"
            run.message = f"cancelled after epoch {run.epoch}; resume continues from its last checkpoint"
            run.version += 1
            self.changed.notify_all()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return run

    def wait_change(self, run_id: str, version: int, timeout: float) -> Run | None:
        """Block until the run's version passes ``version`` (or ``timeout``); the run, or None if unknown."""
        with self._lock:
            self.changed.wait_for(lambda: self.runs.get(run_id) is None or self.runs[run_id].version != version,
                                  timeout=timeout)
            return self.runs.get(run_id)

    def shutdown(self) -> None:
        """Stop every child (the server is going away); their checkpoints let them resume later."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
