"""kill -9 during training (three trainers), model exports (three exporters) and WAV writes: the short form.

Each test runs one command of the real command line in a child process over a folder
holding an older result (the scenarios of ``tests/kill_faults.py``), stops it at chosen
steps of its atomic writes (a checkpoint's temporary file complete but not renamed; the
temporary files named; the first of a group's renames done) and at random moments
between them, and snapshots the folder at each stop: what a ``kill -9`` at that moment
leaves (a kill runs no code of ours, and the anonymous temporary files of a live process
are invisible anyway). The child is then killed for real. Every snapshot and the killed
folder must hold whole files only (checkpoints load with ``weights_only=True``) and the
old result, the new one, or a mix that loading refuses by hash; the killed folder and
the first snapshot are then run again with the same command, which must resume (same
step or epoch, same final weights as an unbroken run where the trainer is deterministic)
or start clean, and finish. ``python tests/kill_faults.py --trials N`` is the long form
with a real kill per trial.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

pytest.importorskip("torch")

import kill_faults  # noqa: E402
from _fault_helpers import Child, folder_problems, run_cli, snapshot  # noqa: E402


def drive(scenario, tmp: Path, rng: random.Random, *, randoms: int = 2) -> list[tuple[str, Path]]:
    """Run ``scenario``'s command once, stopping at each of its steps (and ``randoms`` random moments after the
    first ones); returns (label, folder) for every snapshot and, last, the folder of the real kill."""
    folder = scenario.prepare(tmp / "live")
    pending = list(scenario.stops)
    child = Child(scenario.argv(folder), tmp / "io", stops=pending, env=scenario.env)
    taken: list[tuple[str, Path]] = []
    done: set[str] = set()
    try:
        while pending:
            got = child.wait_stopped()
            if got != "stopped":
                pytest.fail(f"{scenario.name}: the run ended ({got}) before {pending[0]}: {child.output()[-600:]}")
            last = child.events()[-1]
            if last in done:  # a random stop landed on a step's own stop, which then happened again: go on
                child.cont()
                continue
            assert last == pending[0], f"stopped at {last}, expected {pending[0]}"
            done.add(pending.pop(0))
            if not pending:
                break  # the real kill, right here
            taken.append((f"at {last}", snapshot(folder, tmp / f"snap-{len(taken)}")))
            child.cont()
            if randoms:
                randoms -= 1
                time.sleep(rng.uniform(0.0, 0.25))
                if child.stop_now() != "stopped":
                    continue
                events = child.events()
                label = f"random, after {events[-1] if events else 'nothing'}"
                if events and events[-1] == pending[0]:  # it had reached the next step: that is the stop there
                    done.add(pending.pop(0))
                    label = f"at {events[-1]}"
                    if not pending:
                        break
                taken.append((label, snapshot(folder, tmp / f"snap-{len(taken)}")))
                child.cont()
        assert child.kill() == "killed"
    finally:
        child.close()
    taken.append((f"killed at {scenario.stops[-1]}", folder))
    return taken


def check_all(scenario, taken) -> list[str]:
    states = []
    for label, folder in taken:
        state, problems = scenario.check(folder, [])
        assert not problems, f"{scenario.name} {label}: {state}: {problems}"
        states.append(f"{label}: {state}")
    return states


def recover(scenario, folder: Path, state: str) -> None:
    problems = scenario.recover(folder, state, run_cli)
    assert not problems, f"{scenario.name}: after the kill ({state}): {problems}"
    again, left = folder_problems(folder)
    assert not again, again


@pytest.mark.parametrize("name", list(kill_faults.SCENARIOS))
def test_kill_leaves_whole_files_and_the_next_run_recovers(name, tmp_path):
    scenario = kill_faults.SCENARIOS[name](tmp_path / "setup")
    rng = random.Random(sum(map(ord, name)))
    taken = drive(scenario, tmp_path, rng, randoms=1 if "export" in name or "wav" in name else 2)
    states = check_all(scenario, taken)
    # mixed sets must have been met where a group has several renames (the reason for the stops)
    if name.endswith("export"):
        assert any("mixed, refused" in s for s in states), states
        assert any("old set" in s for s in states), states
    if name.endswith("train"):
        assert any("checkpoint" in s for s in states[:2]), states
    # the real kill (and for a trainer the first snapshot, an earlier checkpoint) recovered by the same command
    for label, folder in (taken[-1], taken[0]) if name.endswith("train") else (taken[-1],):
        state, _ = scenario.check(folder, [])
        recover(scenario, folder, state)


def test_a_named_temporary_file_left_by_a_kill_is_swept_later(tmp_path):
    """Without O_TMPFILE (other systems) a kill mid-write leaves ``.song.wav.XXXXXXXX.tmp``: ours, ignored by
    readers, swept by a later write of that name once it is an hour old; the WAV itself stays whole."""
    from _fault_helpers import TEMP_NAME, age

    scenario = kill_faults.RenderWav(tmp_path / "setup")
    folder = scenario.prepare(tmp_path / "live")
    child = Child(scenario.argv(folder), tmp_path / "io", stops=["temp-written:song.wav#1"], named=True)
    try:
        assert child.wait_stopped() == "stopped"
        assert child.kill() == "killed"
    finally:
        child.close()
    left = [p for p in folder.iterdir() if TEMP_NAME.match(p.name)]
    assert len(left) == 1 and (folder / "song.wav").read_bytes() == scenario.old["song.wav"]
    state, problems = scenario.check(folder, [])
    assert state == "old set" and not problems
    code, out = run_cli(scenario.argv(folder))  # an hour has not passed: the leftover stays
    assert code == 0 and left[0].exists(), out
    age(left[0], 2 * 3600)
    code, out = run_cli(scenario.argv(folder))
    assert code == 0 and not left[0].exists(), out
    assert (folder / "song.wav").read_bytes() == scenario.new["song.wav"]
