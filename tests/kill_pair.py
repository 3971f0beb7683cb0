"""Kill test for pair writes: SIGKILL ``kelly compose --force`` at random moments, then check the pair.

Each trial puts a valid old pair (``song.mid`` + ``song.json``, seed 1) in a fresh folder,
starts ``python -m kelly compose grief --bars B --seed N --out DIR/song.mid --force`` (N
differs per trial) and kills it with SIGKILL at a moment drawn from a seeded generator,
in one of three ways:

* ``time``: a uniformly random moment of the whole run (start-up, composing, writing);
* ``near``: a random moment of the write itself: once the child reports that it begins
  writing, after a random delay up to 3 times the length of a first, unkilled run's write;
* ``stop``: exactly at one step of :func:`kelly.fileio.write_files_atomic` (the child
  stops itself there with SIGSTOP; the parent then kills it), so every step is covered.

The child is ``python -c`` running ``kelly.cli.main`` exactly as ``python -m kelly`` does,
with :func:`kelly.fileio._phase` replaced by a hook that appends each step to a trace
file (and stops at the chosen one), so each kill can be placed in its phase.

After each kill the folder must hold: a ``song.mid`` that mido reads and a ``song.json``
that json reads; the old pair, or the new pair (the JSON's ``seed`` is N and its
``files.midi_sha256`` is the MIDI's; with ``--verify`` the MIDI is also compared with a
fresh in-process composition of seed N); or, only when the kill fell between the two
renames, the new JSON beside the old MIDI (``write_files_atomic`` renames the
explanation first; the JSON's ``midi_sha256`` then says it does not describe the MIDI).
Never a new MIDI beside an old JSON, never a file that does not parse, and no leftover
temporary file that is not complete.

``python tests/kill_pair.py [--trials 50] [--bars 512] [--seed 0] [--verify]``: prints
the phases the kills landed in and the states they left; exit 1 on any violation.
:func:`run_kills` is the same for tests (``tests/test_outputs.py`` runs a short one) and
for ``make fuzz``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_SEED = 1

#: Steps of kelly.fileio.write_files_atomic for a compose pair (overwrite), in order.
EVENTS = ("begin", "temp-written:song.json", "temp-written:song.mid", "temps-synced", "temps-named",
          "committed:song.json", "committed:song.mid", "done")

_CHILD = r"""
import os, signal, sys, time
trace = os.open(os.environ["KILL_PAIR_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
stop = os.environ.get("KILL_PAIR_STOP", "")
import kelly.fileio
def phase(event):
    os.write(trace, f"{event} {time.monotonic():.6f}\n".encode())
    if event == stop:
        os.kill(os.getpid(), signal.SIGSTOP)
kelly.fileio._phase = phase
from kelly.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _compose_args(out: Path, seed: int, bars: int) -> list[str]:
    return ["compose", "grief", "--bars", str(bars), "--seed", str(seed), "--out", str(out), "--force"]


def _start(out: Path, seed: int, bars: int, trace: Path, stop: str = "") -> tuple[subprocess.Popen, float]:
    env = dict(os.environ, KILL_PAIR_TRACE=str(trace), KILL_PAIR_STOP=stop)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, *_compose_args(out, seed, bars)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, t0


def _wait(proc: subprocess.Popen, *, until_stopped: bool, timeout: float = 120.0) -> str:
    """Wait for the child: ``"stopped"`` (still alive, stopped) or ``"exited N"``."""
    deadline = time.monotonic() + timeout
    flags = os.WNOHANG | (os.WUNTRACED if until_stopped else 0)
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, flags)
        if pid:
            if os.WIFSTOPPED(status):
                return "stopped"
            proc.returncode = os.waitstatus_to_exitcode(status)
            return f"exited {proc.returncode}"
        time.sleep(0.0005)
    proc.kill()
    raise TimeoutError("the child did not stop or exit in time")


def _kill(proc: subprocess.Popen) -> str:
    """SIGKILL the child (if it is still there) and reap it; what happened."""
    if proc.returncode is not None:  # already reaped (by poll)
        return f"exited {proc.returncode} before the kill"
    pid, status = os.waitpid(proc.pid, os.WNOHANG)
    if pid:
        proc.returncode = os.waitstatus_to_exitcode(status)
        return f"exited {proc.returncode} before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return "killed"


def _trace(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        name, _, when = line.rpartition(" ")
        out.append((name, float(when)))
    return out


def _midi_ok(data: bytes) -> bool:
    import mido

    try:
        mido.MidiFile(file=io.BytesIO(data))
        return True
    except Exception:  # noqa: BLE001 - any failure to parse is the finding
        return False


def _json_ok(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def _expected_midi(seed: int, bars: int, cache: dict) -> bytes:
    """The MIDI ``kelly compose grief --bars B --seed N`` makes (composed in this process)."""
    if seed not in cache:
        from kelly.cli import main

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "x.mid"
            with open(os.devnull, "w") as null:
                saved, sys.stdout = sys.stdout, null
                try:
                    code = main(["compose", "grief", "--bars", str(bars), "--seed", str(seed), "--out", str(out)])
                finally:
                    sys.stdout = saved
            assert code == 0
            cache[seed] = out.read_bytes()
    return cache[seed]


def classify(folder: Path, old_mid: bytes, old_json: bytes, new_seed: int) -> tuple[str, list[str]]:
    """The state a kill left in ``folder``, and the violations found (empty when it holds)."""
    problems = []
    mid_path, json_path = folder / "song.mid", folder / "song.json"
    if not mid_path.exists() or not json_path.exists():
        return "missing file", [f"missing: {[p.name for p in (mid_path, json_path) if not p.exists()]}"]
    mid, js = mid_path.read_bytes(), json_path.read_bytes()
    if not _midi_ok(mid):
        problems.append("song.mid does not parse (partial?)")
    doc = _json_ok(js)
    if doc is None:
        problems.append("song.json does not parse (partial?)")
    for leftover in sorted(p for p in folder.iterdir() if p.name.startswith(".")):
        data = leftover.read_bytes()
        whole = _json_ok(data) is not None if ".json." in leftover.name else _midi_ok(data)
        if not whole:
            problems.append(f"partial temporary file {leftover.name}")
    if problems:
        return "broken", problems
    mid_sha = hashlib.sha256(mid).hexdigest()
    if mid == old_mid and js == old_json:
        return "old pair", []
    seed = doc.get("seed")
    described = (doc.get("files") or {}).get("midi_sha256")
    if seed == new_seed and described == mid_sha:
        return "new pair", []
    if seed == new_seed and mid == old_mid:
        return "new JSON + old MIDI (between the renames)", []
    if js == old_json:
        return "new MIDI + old JSON", ["a new MIDI beside the old JSON"]
    return "mismatch", [f"JSON seed {seed}, MIDI sha {mid_sha[:12]}, JSON says {str(described)[:12]}"]


def run_kills(trials: int = 50, *, bars: int = 512, seed: int = 0, modes=("time", "near", "stop"),
              verify: bool = False, workdir: str | os.PathLike | None = None, log=print) -> dict:
    """Run the kill test; returns ``{"phases": Counter, "states": Counter, "leftovers": int, "violations": [...]}``."""
    rng = random.Random(seed)
    own = workdir is None
    base = Path(tempfile.mkdtemp(prefix="kelly-kill-") if own else workdir)
    base.mkdir(parents=True, exist_ok=True)
    cache: dict[int, bytes] = {}
    try:
        # The old pair, and the timing of one unkilled run.
        ref = base / "reference"
        ref.mkdir(exist_ok=True)
        proc, t0 = _start(ref / "song.mid", OLD_SEED, bars, base / "reference.trace")
        status = _wait(proc, until_stopped=False)
        t_end = time.monotonic()
        if status != "exited 0":
            raise RuntimeError(f"reference compose failed ({status}): {proc.stderr.read().decode()[-500:]}")
        proc.stderr.close()
        old_mid, old_json = (ref / "song.mid").read_bytes(), (ref / "song.json").read_bytes()
        steps = dict(_trace(base / "reference.trace"))
        total = t_end - t0
        write_from, write_to = steps["begin"] - t0, steps["done"] - t0
        log(f"reference run: {total:.2f} s; writing the pair from {write_from * 1000:.0f} ms to "
            f"{write_to * 1000:.1f} ms ({(write_to - write_from) * 1000:.2f} ms)")

        plan = [modes[i % len(modes)] for i in range(trials)]
        rng.shuffle(plan)
        stops = [EVENTS[j % len(EVENTS)] for j in range(plan.count("stop"))]  # every step, evenly
        rng.shuffle(stops)
        phases: Counter = Counter()
        states: Counter = Counter()
        by_mode: Counter = Counter()
        leftovers = 0
        violations = []
        for i, mode in enumerate(plan):
            new_seed = 1000 + i
            folder = base / f"trial-{i:03d}"
            folder.mkdir()
            (folder / "song.mid").write_bytes(old_mid)
            (folder / "song.json").write_bytes(old_json)
            trace = base / f"trial-{i:03d}.trace"
            stop = stops.pop() if mode == "stop" else ""
            proc, t0 = _start(folder / "song.mid", new_seed, bars, trace, stop)
            if mode == "stop":
                outcome = _wait(proc, until_stopped=True)
                outcome = _kill(proc) if outcome == "stopped" else outcome
                moment = f"at {stop}"
            elif mode == "near":
                # A random moment in the write: from the child's "begin" step, up to 3x the
                # reference write's length (polling the trace costs well under a millisecond).
                delay = rng.uniform(0, (write_to - write_from) * 3)
                deadline = time.monotonic() + 120
                while not (trace.exists() and trace.stat().st_size) and proc.poll() is None \
                        and time.monotonic() < deadline:
                    time.sleep(0.0002)
                began = time.monotonic()
                while time.monotonic() < began + delay:
                    pass  # spin: sleep() is too coarse for a millisecond window
                outcome = _kill(proc)
                moment = f"begin + {delay * 1000:.2f} ms"
            else:
                delay = rng.uniform(0, total * 1.1)
                time.sleep(max(0.0, t0 + delay - time.monotonic()))
                outcome = _kill(proc)
                moment = f"{delay * 1000:.1f} ms"
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.stderr.close()
            events = [name for name, _ in _trace(trace)]
            if outcome != "killed":
                phase = f"not killed: {outcome}"
            elif not events:
                phase = "start-up or composing (before writing)"
            else:
                phase = f"after {events[-1]}"
            state, problems = classify(folder, old_mid, old_json, new_seed)
            if state == "new pair" and verify and _expected_midi(new_seed, bars, cache) != \
                    (folder / "song.mid").read_bytes():
                problems.append("the new MIDI is not what seed N composes")
            # The trace is appended after each step, so a kill right after the JSON's rename may
            # leave "temps-named" as the last recorded step although the rename happened: that is
            # still the window between the two renames.
            if state.startswith("new JSON + old MIDI") and events[-1:] not in (["committed:song.json"],
                                                                            ["temps-named"]):
                problems.append(f"new JSON beside old MIDI outside the rename window (last step {events[-1:]})")
            if outcome.startswith("exited") and not outcome.startswith("exited 0"):
                problems.append(f"the compose failed: {err[-300:]}")
            n_left = sum(1 for p in folder.iterdir() if p.name.startswith("."))
            leftovers += n_left
            phases[phase] += 1
            states[state] += 1
            by_mode[mode] += 1
            if problems:
                violations.append(f"trial {i} ({mode} {moment}, {phase}): {state}: {'; '.join(problems)}")
            log(f"trial {i:2d} {mode:<4} {moment:>26}  {phase:<40} -> {state}"
                + (f" ({n_left} whole temp file(s) left)" if n_left else "") + (" !!" if problems else ""))
        return {"phases": phases, "states": states, "modes": by_mode, "leftovers": leftovers,
                "violations": violations}
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--bars", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--verify", action="store_true", help="recompose each new pair's seed and compare the MIDI")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    result = run_kills(args.trials, bars=args.bars, seed=args.seed, verify=args.verify)
    print("\nkills by mode:", dict(result["modes"]))
    print("phases the kills landed in:")
    for phase, n in sorted(result["phases"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:3d}  {phase}")
    print("states left:")
    for state, n in sorted(result["states"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:3d}  {state}")
    print(f"whole temporary files left (swept after an hour): {result['leftovers']}")
    if result["violations"]:
        print(f"\nFAILED: {len(result['violations'])} violation(s)")
        for v in result["violations"]:
            print("  " + v)
        return 1
    print("\nOK: every kill left both files readable, as the old pair, the new pair, or (between the renames) "
          "the new JSON beside the old MIDI; never a new MIDI beside an old JSON, never a partial file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
