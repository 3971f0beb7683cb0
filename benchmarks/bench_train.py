"""Training (issue 10): how long ``kelly train`` takes here, and what a second process buys.

Two measurements, each in subprocesses exactly as a user runs them (``OMP_NUM_THREADS=1``,
``MKL_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1`` in each process):

1. **All five with the default config**: ``kelly train --models all --data corpus --out
   <temporary folder>``, nothing else given, one process. The wall time of the whole
   command against the goal (under 15 minutes on the 2-core machine), and per network:
   the time to load its data and score the baseline (read from when its lines appear on
   standard output), the epochs' seconds, epochs run and the best epoch (from its
   ``runs/<key>/metrics.json``). ``KELLY_BENCH_TRAIN=0`` skips this part (it takes many
   minutes). A network whose data the data folder lacks is named, with what the trainer
   said (the command that builds it), and the others are trained without it.
2. **One process against two**: :data:`THROUGHPUT_KEY` for :data:`THROUGHPUT_EPOCHS`
   epochs (no early stopping) with one process and under ``torchrun --nproc_per_node 2``
   (gloo), alternated :data:`THROUGHPUT_ROUNDS` times; training items a second (the
   training set's size over each epoch's seconds, median over the epochs), the ratio, and
   how far the two runs' final weights and validation losses are apart. Corpus data when
   the data folder has it, else ``--data synthetic`` (the section says which).

``python -m benchmarks.run bench_train`` runs only this section.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import headline

AREA = "training (issue 10)"
ROOT = Path(__file__).resolve().parent.parent

#: The goal of issue 10: all five networks trained with the default config, on this machine.
GOAL_SECONDS = 15 * 60
#: Longest the all-five run may take before it is stopped (``KELLY_BENCH_TRAIN_TIMEOUT``, seconds).
DEFAULT_TIMEOUT = 3 * 3600
#: The network, epochs and alternations of the one-against-two-processes measurement.
THROUGHPUT_KEY = "harmonypredictor"
THROUGHPUT_EPOCHS = 12
THROUGHPUT_ROUNDS = 2
#: Synthetic examples when the corpus cannot supply THROUGHPUT_KEY (about the corpus's size).
THROUGHPUT_SYNTHETIC = 5888
#: Weights of a 2-process run agree with a 1-process run to float rounding (docs/training.md).
MATCH_TOLERANCE = 1e-5

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
              "TORCHELASTIC_RUN_ID")
_START = re.compile(r"^(\w+): [\d,]+ parameters, ([\d,]+) train / ([\d,]+) val items")
_FINISH = re.compile(r"^(\w+): best val ")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DIST_VARS}
    env.update({k: "1" for k in _THREAD_VARS})
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _kelly(*args: str, procs: int = 1) -> list[str]:
    if procs == 1:
        return [sys.executable, "-m", "kelly", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
            "-m", "kelly", *args]


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("kelly: error"):
            return ln
    return lines[-1] if lines else "no message"


def _load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt_s(seconds: float) -> str:
    if seconds >= 120:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m} min {s:02d} s"
    return f"{seconds:.1f} s"


# --------------------------------------------------------------------------- 1. all five
def _child_cpu() -> float:
    """User + system CPU seconds of this process's finished children so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(cmd: list[str], timeout: float) -> tuple[int | None, float, list[tuple[float, str]], str]:
    """Run ``cmd``; (exit code or None on timeout, wall seconds, stdout lines with their times, stderr)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=err, text=True,
                                bufsize=1)
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            proc.kill()

        watchdog = threading.Timer(max(1.0, timeout), stop)
        watchdog.start()
        lines: list[tuple[float, str]] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # each line as it comes, so its time says when that phase ended
                lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            rc: int | None = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            watchdog.cancel()
        if fired.is_set():
            rc = None
        wall = time.perf_counter() - t0
        err.seek(0)
        return rc, wall, lines, err.read()


def _data_folder() -> Path:
    from kelly.ml.data.store import data_dir

    old = os.getcwd()
    os.chdir(ROOT)  # the default folder is ./build/corpus of the directory kelly train runs in
    try:
        return data_dir()
    finally:
        os.chdir(old)


def _all_five(lines: list[str]) -> None:
    from kelly.ml.specs import MODEL_KEYS, SPECS
    from kelly.ml.train.objectives import OBJECTIVES

    lines += ["### All five networks, default config, one process", ""]
    if os.environ.get("KELLY_BENCH_TRAIN", "1").strip() == "0":
        lines += ["Skipped (`KELLY_BENCH_TRAIN=0`).", ""]
        return
    folder = _data_folder()
    if not ((folder / "manifest.jsonl").is_file() or (folder / "composed.jsonl").is_file()):
        lines += [f"Not measured: the data folder `{folder}` holds no converted or composed pieces. Build it "
                  "with `python -m kelly.ml.data convert`, `python -m kelly.ml.data compose` and "
                  "`python -m kelly.ml.data render --what composed` (docs/data.md), then rerun.", ""]
        return
    timeout = float(os.environ.get("KELLY_BENCH_TRAIN_TIMEOUT", DEFAULT_TIMEOUT))
    load_before = os.getloadavg()[0]
    cpu_before = _child_cpu()
    missing: dict[str, str] = {}
    per: dict[str, dict] = {}
    attempts: list[tuple[list[str], int | None, float]] = []
    with tempfile.TemporaryDirectory(prefix="kelly-bench-train-") as tmp:
        out = Path(tmp) / "models"
        todo = list(MODEL_KEYS)
        while todo:
            rc, wall, stamped, stderr = _timed_run(
                _kelly("train", "--models", "all" if todo == list(MODEL_KEYS) else ",".join(todo),
                       "--data", "corpus", "--out", str(out)), timeout - sum(a[2] for a in attempts))
            attempts.append((list(todo), rc, wall))
            prev_end = 0.0
            for t, text in stamped:
                if (m := _START.match(text)) and m.group(1) in todo:
                    per[m.group(1)] = {"load": t - prev_end, "start": t}
                elif (m := _FINISH.match(text)) and m.group(1) in per:
                    per[m.group(1)]["wall"] = t - per[m.group(1)]["start"]
                    prev_end = t
            done = [k for k in todo if k in per and "wall" in per[k]]
            if rc == 0 or rc is None:
                if rc is None:
                    failed = next((k for k in todo if k not in done), None)
                    if failed:
                        missing[failed] = f"stopped after {_fmt_s(timeout)} (KELLY_BENCH_TRAIN_TIMEOUT)"
                break
            failed = next((k for k in todo if k not in done), todo[0])
            message = _error_line(stderr)
            missing[failed] = message
            if failed not in message:  # not this network's data: nothing else will train either
                for k in todo:
                    missing.setdefault(k, message)
                break
            todo = [k for k in todo if k not in done and k != failed]
        for key in MODEL_KEYS:
            if key in per and "wall" in per[key]:
                per[key]["metrics"] = _load_json(out / "runs" / key / "metrics.json")
                per[key]["meta"] = _load_json(out / f"{key}.meta.json")
    load_after = os.getloadavg()[0]
    cpu = _child_cpu() - cpu_before
    total = sum(a[2] for a in attempts)
    trained = [k for k in MODEL_KEYS if per.get(k, {}).get("metrics")]

    rows = []
    for key in trained:
        doc, meta, info = per[key]["metrics"], per[key]["meta"] or {}, per[key]
        epochs = doc["epochs"]
        secs = [float(e["seconds"]) for e in epochs]
        metric = OBJECTIVES[key].metrics[0]
        best = epochs[doc["best_epoch"] - 1] if doc["best_epoch"] else {}
        max_epochs = (meta.get("config") or {}).get("epochs", "?")  # what the run was given
        rows.append(
            f"| {SPECS[key].name} | {int(meta.get('n_train', 0)):,} | {info['load']:.1f} | {sum(secs):.1f} | "
            f"{statistics.median(secs):.2f} | {len(epochs)} / {max_epochs}"
            f"{' (stopped early)' if doc['stopped_early'] else ''} | {doc['best_epoch']} | "
            f"{metric} {best.get(metric, float('nan')):.3g} (baseline {doc['baseline'][metric]:.3g}) |")
    complete = len(trained) == len(MODEL_KEYS) and len(attempts) == 1
    met = complete and total < GOAL_SECONDS
    if complete:
        status = "met" if met else "not met"
    else:
        status = "not measured (not all five trained in one run)"
    cmd = "kelly train --models all --data corpus --out <temporary folder>"
    lines += [
        f"`{cmd}` in one process, the shipped default config (`kelly/ml/train/default.toml`), data folder "
        f"`{folder}`, OMP/MKL/OPENBLAS_NUM_THREADS=1; load average {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end on {os.cpu_count()} cores.",
        "",
        "| measure | value | goal | status |",
        "|---|---:|---|---|",
        f"| wall time, {len(trained)} of {len(MODEL_KEYS)} networks | {_fmt_s(total)} ({total:,.0f} s) | "
        f"< 15 min on the 2-core machine | {status} |",
        f"| CPU time of the training process (user + system) | {_fmt_s(cpu)} ({cpu:,.0f} s) | | |",
        "",
        f"The CPU time is what the command itself used ({cpu / total:.0%} of its wall time): near what the wall "
        "time would be with a core to itself, since it runs one thread.",
        "",
        "| network | train items | data + baseline s | epochs s | s / epoch (median) | epochs run / most | "
        "best epoch | headline metric at best (baseline) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
    ]
    if missing:
        lines.append("Not trained here:")
        lines += [f"- {SPECS[k].name}: {msg.removeprefix('kelly: error: ')}" for k, msg in missing.items()]
        lines += ["", "Build what is missing with `python -m kelly.ml.data convert`, `python -m kelly.ml.data "
                  "compose` or `python -m kelly.ml.data render --what composed` (docs/data.md; the message says "
                  "which), then rerun.", ""]
    if len(attempts) > 1:
        lines += [f"The command ran {len(attempts)} times, each time without the network that had stopped it; "
                  "the wall time is their sum.", ""]
    epoch_total = sum(sum(float(e["seconds"]) for e in per[k]["metrics"]["epochs"]) for k in trained)
    lines += [f"Of the wall time, {epoch_total:,.0f} s are epochs (training, validation and checkpoints); the "
              "rest is start-up, reading each network's data from the data folder (every network reads the "
              "pieces again), the baseline and writing the model files.", ""]
    if trained:
        lines += [headline.figure(AREA, f"train all five networks, default config, one process ({len(trained)} of "
                                  f"{len(MODEL_KEYS)})", f"{_fmt_s(total)}", "goal < 15 min on the 2-core machine",
                                  status if complete else "", readme=True)]
        for key in trained:
            doc = per[key]["metrics"]
            metric = OBJECTIVES[key].metrics[0]
            best = doc["epochs"][doc["best_epoch"] - 1] if doc["best_epoch"] else {}
            value = best.get(metric, float("nan"))
            base = doc["baseline"][metric]
            lines.append(headline.figure(AREA, f"{SPECS[key].name}: held-out {metric}", f"{value:.3g}",
                                         f"baseline {base:.3g} (same run)", headline.met(value > base)))
        lines.append("")


# --------------------------------------------------------------------------- 2. one vs two processes
def _throughput_run(procs: int, out: Path, config: Path, data: str) -> tuple[int, str]:
    cmd = _kelly("train", "--models", THROUGHPUT_KEY, "--data", data, "--config", str(config), "--out", str(out),
                 "--quiet", procs=procs)
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    return proc.returncode, _error_line(proc.stderr)


def _throughput(lines: list[str]) -> None:
    import torch

    from kelly.ml.specs import SPECS
    from kelly.ml.train.checkpoint import load_checkpoint
    from kelly.ml.train.config import load_config

    name = SPECS[THROUGHPUT_KEY].name
    lines += [f"### One process against two (torchrun, gloo): {name}", ""]
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        lines += ["Not measured: this torch has no gloo backend.", ""]
        return
    load_before = os.getloadavg()[0]
    speeds: dict[int, list[float]] = {1: [], 2: []}
    last: dict[int, Path] = {}
    val: dict[int, list[float]] = {}
    n_train = 0
    data, note = "corpus", ""
    with tempfile.TemporaryDirectory(prefix="kelly-bench-ddp-") as tmp:
        config = Path(tmp) / "bench.toml"
        # a fixed number of epochs: patience beyond them, so early stopping never ends a run
        config.write_text(f"[defaults]\nepochs = {THROUGHPUT_EPOCHS}\npatience = {THROUGHPUT_EPOCHS + 1}\n"
                          f"synthetic_samples = {THROUGHPUT_SYNTHETIC}\n")
        for r in range(THROUGHPUT_ROUNDS):
            for procs in (1, 2):
                out = Path(tmp) / f"p{procs}r{r}"
                rc, message = _throughput_run(procs, out, config, data)
                if rc != 0 and data == "corpus" and r == 0 and procs == 1:
                    note = f"The corpus could not supply it ({message}), so the data are synthetic. "
                    data = "synthetic"
                    rc, message = _throughput_run(procs, out, config, data)
                if rc != 0:
                    if "gloo" in message.lower() or procs == 2:
                        lines += [f"Not measured: the {procs}-process run failed: {message}", ""]
                        return
                    lines += [f"Not measured: the run failed: {message}", ""]
                    return
                doc = _load_json(out / "runs" / THROUGHPUT_KEY / "metrics.json") or {"epochs": []}
                meta = _load_json(out / f"{THROUGHPUT_KEY}.meta.json") or {}
                n_train = int(meta.get("n_train", 0))
                speeds[procs] += [n_train / float(e["seconds"]) for e in doc["epochs"] if float(e["seconds"]) > 0]
                last[procs] = out / "runs" / THROUGHPUT_KEY / "last.pt"
                val[procs] = [float(e["val_loss"]) for e in doc["epochs"]]
        one = load_checkpoint(last[1])["model"]
        two = load_checkpoint(last[2])["model"]
        dw = max(float((one[k] - two[k]).abs().max()) for k in one)
    load_after = os.getloadavg()[0]
    dval = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(val[1], val[2]))
    m1, m2 = statistics.median(speeds[1]), statistics.median(speeds[2])
    batch = load_config(THROUGHPUT_KEY).batch_size
    steps = -(-n_train // batch)
    data_text = "the corpus (default collections)" if data == "corpus" else \
        f"synthetic data ({THROUGHPUT_SYNTHETIC:,} examples; `--data synthetic`)"
    lines += [
        f"{name} on {data_text}: {n_train:,} training items an epoch, global batch {batch} ({batch // 2} a process "
        f"with two), {THROUGHPUT_EPOCHS} epochs each (early stopping off), one-process and two-process runs "
        f"alternated {THROUGHPUT_ROUNDS} times in this run; OMP_NUM_THREADS=1 in every process. {note}"
        "Items a second = training items / the epoch's seconds (which include validating the whole "
        "validation set and, on rank 0, writing the checkpoint), median over all epochs of that setting.",
        "",
        "| processes | items / s (median) | epochs measured | vs one process |",
        "|---:|---:|---:|---:|",
        f"| 1 | {m1:,.0f} | {len(speeds[1])} | 1.00× |",
        f"| 2 (`torchrun --nproc_per_node 2`, gloo) | {m2:,.0f} | {len(speeds[2])} | {m2 / m1:.2f}× |",
        "",
        (f"Two processes are slower here: each of the {steps} steps an epoch waits on a gloo all-reduce of all "
         f"{SPECS[THROUGHPUT_KEY].params:,} gradients, which costs more than halving a batch of a network this "
         "small saves, and with other work on the cores the two processes also wait on each other."
         if m2 < m1 else
         f"Two processes are faster here by {m2 / m1:.2f}× (the ideal on 2 free cores would be 2×; each of "
         f"the {steps} steps an epoch waits on a gloo all-reduce of the gradients)."),
        "",
        f"Two processes match one: after {THROUGHPUT_EPOCHS} epochs the final weights differ by at most "
        f"{dw:.2g} (|Δ|, tolerance {MATCH_TOLERANCE:g}: {'within' if dw <= MATCH_TOLERANCE else 'OUTSIDE'}) "
        f"and the per-epoch validation losses by at most {dval:.2g} relative (the last round's runs; float "
        "rounding of the all-reduce, docs/training.md; `tests/ml/test_ml_train.py` checks 1e-5 after 3 "
        f"epochs). Load average {load_before:.1f} before, {load_after:.1f} after.",
        "",
        headline.figure(AREA, f"{name}: two processes (torchrun, gloo) against one", f"{m2 / m1:.2f}× items/s",
                        f"one process {m1:,.0f} items/s (same run); weights agree within {dw:.2g}",
                        headline.met(dw <= MATCH_TOLERANCE)),
        "",
    ]


def run() -> str:
    lines = [
        "## Training (issue 10)",
        "",
        f"Measured on {os.cpu_count()} cores while other work may share them: wall times and throughput here "
        "move with the machine's load (the load averages are given); compare only ratios from this same run.",
        "",
    ]
    _all_five(lines)
    _throughput(lines)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(run())
