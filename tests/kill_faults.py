"""kill -9 during training, model exports and WAV writes: nothing half-written, the next run resumes or starts clean.

Issue 15's fault list, beyond the compose pair (``tests/kill_pair.py``) and the app library
(``tests/app/test_library_kill.py``). Each *scenario* is one command of the real command
line, run in a child process (:mod:`tests.faults._fault_helpers`) over a folder holding
an older result, killed with ``SIGKILL``:

==================  ====================================================================
scenario            command, and what a kill must leave
==================  ====================================================================
train               ``kelly train --models dynamicsengine --data synthetic --resume``
                    (6 epochs): every file whole; ``last.pt``/``best.pt`` load with
                    ``weights_only=True``; the next run resumes after the checkpoint's
                    epoch (or starts clean) and ends with the same weights, bit for bit,
                    as an unbroken run
ddsp-train          ``kelly ddsp train`` (8 steps): the same, resumed at the checkpoint's
                    step, the same voice as an unbroken run
transformer-train   ``kelly transformer train --data composed`` (8 steps): the same,
                    resumed at the checkpoint's step, the same weights as an unbroken
                    run (the checkpoint keeps the training windows' random stream)
export              ``kelly export --format rtneural,onnx,checkpoint --seed 2 --force``
                    over a seed-1 export: the old set, the new set, or a mix that
                    ``kelly validate`` refuses (the manifest's and sidecars' SHA-256)
ddsp-export         ``kelly ddsp export --force`` over another voice: old, new, or refused
                    by the sidecar's hashes (``read_voice``, ``validate``)
transformer-export  ``kelly transformer export`` over another model: old, new, or refused
                    (``step.onnx`` names ``heads.npz``'s SHA-256)
render-wav          ``kelly render B.mid --out song.wav --force`` over A's WAV: the old
                    complete WAV or the new complete WAV
compose-wav         ``kelly compose … --wav --force`` over an old MIDI, JSON and WAV: each
                    file whole, the pair consistent or in its documented rename window
==================  ====================================================================

After each kill the same command runs again (for exports and WAVs too) and must succeed
with the new result. Kills are at a random moment of the run (``time``) or exactly at one
step of an atomic write (``stop``: the child stops itself there, then is killed), which
places kills inside the few microseconds between two renames that random timing would
almost never hit.

``python tests/kill_faults.py [--trials N] [--scenarios a,b] [--seed S] [--named]``
prints one line per trial and a summary table; exit 1 on any violation. ``--named``
turns off the anonymous (O_TMPFILE) temporary files, as on systems without them: a kill
may then leave a ``.NAME.XXXXXXXX.tmp`` of ours, swept by a later write after an hour.
``tests/faults/test_fault_kill.py`` runs a short form of every scenario in the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "faults"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fault_helpers import Child, files_of, folder_problems, run_child, run_cli  # noqa: E402


class Scenario:
    """One command under kill: ``prepare`` a folder with the old result, ``argv`` to run, ``check`` what a kill
    left (a state name and problems), ``recover`` by running it again (problems)."""

    name = ""
    stops: tuple[str, ...] = ()   # steps of interest for ``stop`` kills
    target = ""                    # the folder (inside a trial folder) the command writes
    env: dict = {}                 # the child's environment additions

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)

    def prepare(self, trial: Path) -> Path:
        folder = trial / self.target
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def argv(self, folder: Path) -> list:
        raise NotImplementedError

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        raise NotImplementedError

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        raise NotImplementedError

    def reference(self) -> Path:
        """The command run once unbroken, into ``base/reference``: what a run recovered after a kill must end with."""
        ref = self.base / "reference"
        code, out = run_cli(self.argv(ref))
        if code:
            raise RuntimeError(f"the unbroken {self.name} run failed: {out[-500:]}")
        return ref


# ------------------------------------------------------------------------------------- trainers
def _tensors_equal(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _step_resume_problems(state: str, out: str) -> list[str]:
    """A step-counted trainer's next run (DDSP, transformer): resumed at the killed run's checkpoint, or afresh."""
    if state.startswith("checkpoint at step"):
        step = int(state.split()[3].rstrip(","))
        if f"at step {step}\n" not in out:
            return [f"did not resume at step {step}: {out.strip()[:200]}"]
    elif "resumed from" in out:
        return ["resumed without a checkpoint?"]
    return []


class TrainNetworks(Scenario):
    name = "train"
    target = "run"
    epochs = 6
    # the 2nd epoch's checkpoint written but not renamed; the 3rd's named; the 4th's renamed (metrics not yet);
    # the published sidecar renamed before its model
    stops = ("temp-written:last.pt#2", "temps-named#3", "committed:last.pt#4",
             "committed:dynamicsengine.meta.json#1")

    #: One torch thread here and in the children: bit-exact comparisons need the same thread count
    #: (other tests in the same process set it to 1).
    env = {"OMP_NUM_THREADS": "1"}

    def __init__(self, base: Path) -> None:
        import torch

        super().__init__(base)
        torch.set_num_threads(1)
        self.config = base / "tiny.toml"
        self.config.write_text(f"[defaults]\nepochs = {self.epochs}\nbatch_size = 16\nlr = 0.003\ndevice = \"cpu\"\n"
                               "synthetic_samples = 160\nseq_len = 4\npatience = 50\n")
        ref = self.reference()
        from kelly.ml.train.checkpoint import load_checkpoint

        self.ref_json = (ref / "dynamicsengine.json").read_bytes()
        self.ref_ckpt = load_checkpoint(ref / "runs" / "dynamicsengine" / "last.pt")

    def argv(self, folder: Path) -> list:
        return ["train", "--models", "dynamicsengine", "--data", "synthetic", "--config", self.config, "--out", folder,
                "--resume"]

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        from kelly.errors import KellyError
        from kelly.ml.export import load_state
        from kelly.ml.train.checkpoint import load_checkpoint

        problems, _ = folder_problems(folder)
        last = folder / "runs" / "dynamicsengine" / "last.pt"
        if problems:
            return "broken", problems
        state = "no checkpoint"
        if last.exists():
            state = f"checkpoint after epoch {load_checkpoint(last)['epoch']}"
        model, meta = folder / "dynamicsengine.json", folder / "dynamicsengine.meta.json"
        if meta.exists():
            try:
                load_state(folder, "dynamicsengine")
                state += ", published"
            except KellyError as exc:
                if "does not match its sidecar" not in str(exc) and "no dynamicsengine weights" not in str(exc) \
                        and "has no DynamicsEngine" not in str(exc):
                    problems.append(f"a half-published pair refused for another reason: {exc}")
                state += ", sidecar without its model (refused)"
        elif model.exists():
            problems.append("a published model without its sidecar")
        return state, problems

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        from kelly.ml.train.checkpoint import load_checkpoint

        code, out = runner(self.argv(folder))
        if code:
            return [f"the next run failed ({code}): {out.strip()[-300:]}"]
        problems = []
        if state.startswith("checkpoint after epoch"):
            epoch = int(state.split()[3].rstrip(","))
            if f"resuming after epoch {epoch} " not in out:
                problems.append(f"did not resume after epoch {epoch}: {out.strip()[:200]}")
        elif "starting afresh" not in out:
            problems.append("did not start afresh without a checkpoint")
        ckpt = load_checkpoint(folder / "runs" / "dynamicsengine" / "last.pt")
        if ckpt["epoch"] != self.epochs or not _tensors_equal(ckpt["model"], self.ref_ckpt["model"]):
            problems.append(f"the resumed run did not end where an unbroken one does (epoch {ckpt['epoch']})")
        if (folder / "dynamicsengine.json").read_bytes() != self.ref_json:
            problems.append("the published weights differ from an unbroken run's")
        return problems


class TrainDdsp(Scenario):
    name = "ddsp-train"
    target = "voice"
    steps = 8
    stops = ("temp-written:checkpoint.pt#2", "temps-named#3", "committed:checkpoint.pt#3",
             "committed:ddsp.meta.json#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        import numpy as np
        import soundfile

        self.notes = base / "notes"
        self.notes.mkdir(exist_ok=True)
        sr = 16000
        t = np.arange(int(1.0 * sr)) / sr
        for pitch in (48, 60, 67):  # decaying sawtooth notes (tests/ddsp's kind), 1 s each
            phase = (440.0 * 2 ** ((pitch - 69) / 12) * t) % 1.0
            y = (2 * phase - 1) * np.exp(-2.5 * t) * np.minimum(1, t / 0.01) * 0.5
            soundfile.write(self.notes / f"note{pitch}.wav", y.astype(np.float32), sr)
        ref = self.reference()
        self.ref_json = (ref / "ddsp.json").read_bytes()
        self.cache = {n: (ref / n).read_bytes() for n in ("data.npz", "data.json")}

    def prepare(self, trial: Path) -> Path:
        folder = super().prepare(trial)
        for name, data in self.cache.items():  # the features, as a first run made them (9 s saved per trial)
            (folder / name).write_bytes(data)
        return folder

    def argv(self, folder: Path) -> list:
        return ["ddsp", "train", "--no-standard", "--audio", self.notes, "--config", "tiny", "--set",
                f"steps={self.steps}", "--set", "eval_every=2", "--set", "eval_windows=4", "--set", "threads=1",
                "--out", folder]

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        from kelly.ddsp.export import read_voice, validate
        from kelly.errors import KellyError
        from kelly.ml.train.checkpoint import load_checkpoint

        problems, _ = folder_problems(folder)
        if problems:
            return "broken", problems
        ckpt = folder / "checkpoint.pt"
        state = f"checkpoint at step {load_checkpoint(ckpt)['step']}" if ckpt.exists() else "no checkpoint"
        if (folder / "ddsp.meta.json").exists():
            try:
                read_voice(folder)
                bad = [c.line() for c in validate(folder, steps=20) if not c.ok]
                state += ", voice written" if not bad else ", voice mixed (refused by validate)"
            except KellyError as exc:
                if "does not match its sidecar" not in str(exc) and "ddsp.json" not in str(exc):
                    problems.append(f"a half-written voice refused for another reason: {exc}")
                state += ", voice mixed (refused)"
        return state, problems

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        from kelly.ml.train.checkpoint import load_checkpoint

        code, out = runner(self.argv(folder))
        if code:
            return [f"the next run failed ({code}): {out.strip()[-300:]}"]
        problems = _step_resume_problems(state, out)
        if load_checkpoint(folder / "checkpoint.pt")["step"] != self.steps:
            problems.append("the resumed run did not reach the last step")
        if (folder / "ddsp.json").read_bytes() != self.ref_json:
            problems.append("the voice differs from an unbroken run's")
        return problems


class TrainTransformer(Scenario):
    name = "transformer-train"
    target = "model"
    steps = 8
    stops = ("committed:transformer.pt#1", "temp-written:checkpoint.pt#2", "temps-named#3",
             "committed:metrics.json#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        from kelly.ml.train.checkpoint import load_checkpoint

        self.ref_model = load_checkpoint(self.reference() / "checkpoint.pt")["model"]

    def argv(self, folder: Path) -> list:
        return ["transformer", "train", "--config", "tiny", "--data", "composed", "--set", f"steps={self.steps}",
                "--set", "eval_every=2", "--set", "eval_windows=4", "--set", "threads=1", "--out", folder]

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        from kelly.ml.train.checkpoint import load_checkpoint
        from kelly.transformer.composer import load_weights

        problems, _ = folder_problems(folder)
        if problems:
            return "broken", problems
        ckpt = folder / "checkpoint.pt"
        state = f"checkpoint at step {load_checkpoint(ckpt)['step']}" if ckpt.exists() else "no checkpoint"
        if (folder / "transformer.pt").exists():
            load_weights(folder / "transformer.pt")
        return state, problems

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        import json

        code, out = runner(self.argv(folder))
        if code:
            return [f"the next run failed ({code}): {out.strip()[-300:]}"]
        problems = _step_resume_problems(state, out)
        metrics = json.loads((folder / "metrics.json").read_text())
        if [r["step"] for r in metrics["history"]] != list(range(2, self.steps + 1, 2)):
            problems.append(f"the history does not continue: {[r['step'] for r in metrics['history']]}")
        from kelly.ml.train.checkpoint import load_checkpoint

        if not _tensors_equal(load_checkpoint(folder / "checkpoint.pt")["model"], self.ref_model):
            problems.append("the weights differ from an unbroken run's")
        return problems


# ------------------------------------------------------------------------------------- exports
class _SetScenario(Scenario):
    """An export over an older one: the folder must hold the old set, the new set, or a mix ``refused`` says no to."""

    def prepare(self, trial: Path) -> Path:
        folder = trial / self.target
        shutil.copytree(self.base / "old", folder)
        return folder

    def refused(self, folder: Path) -> str | None:
        raise NotImplementedError

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        problems, _ = folder_problems(folder)
        if problems:
            return "broken", problems
        files = files_of(folder)
        if files == self.old:
            return "old set", []
        if files == self.new:
            return "new set", []
        why = self.refused(folder)
        if why is None:
            return "mixed", ["a mixed set that loads as if whole: " + ", ".join(
                n for n in files if files[n] != self.new.get(n))]
        return "mixed, refused", []

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        code, out = runner(self.argv(folder))
        if code:
            return [f"the next export failed ({code}): {out.strip()[-300:]}"]
        return [] if files_of(folder) == self.new else ["the next export did not leave the new set"]


class ExportNetworks(_SetScenario):
    name = "export"
    target = "models"
    stops = ("temps-named#1", "committed:manifest.json#1", "committed:harmonypredictor.meta.json#1",
             "committed:emotionrecognizer.onnx#1", "committed:pipeline.onnx#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        from kelly.ml.export import FORMATS, export_models

        export_models(base / "old", FORMATS, seed=1)
        export_models(base / "new", FORMATS, seed=2)
        self.old, self.new = files_of(base / "old"), files_of(base / "new")

    def argv(self, folder: Path) -> list:
        return ["export", "--format", "rtneural,onnx,checkpoint", "--seed", "2", "--out", folder, "--force"]

    def refused(self, folder: Path) -> str | None:
        from kelly.ml.export import integrity_checks

        bad = [c.line() for c in integrity_checks(folder) if not c.ok]
        return "; ".join(bad) or None


class ExportDdsp(_SetScenario):
    name = "ddsp-export"
    target = "voice"
    stops = ("temps-named#1", "committed:ddsp.meta.json#1", "committed:ddsp.json#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        import torch

        from kelly.ddsp.decoder import DecoderConfig, torch_decoder
        from kelly.ddsp.export import write_voice
        from kelly.fileio import json_bytes
        from kelly.ml.train.checkpoint import checkpoint_bytes

        for seed in (1, 2):
            run = base / f"run{seed}"
            run.mkdir()
            torch.manual_seed(seed)
            cfg = DecoderConfig(hidden=16)
            (run / "ddsp.pt").write_bytes(checkpoint_bytes({
                "format": "kelly-train-checkpoint", "version": 1, "kind": "ddsp-weights", "config": cfg.to_dict(),
                "model": torch_decoder(cfg).state_dict()}))
            (run / "metrics.json").write_bytes(json_bytes({"loudness_map": {"c0": -40.0, "c1": 0.3, "c2": 0.0}}))
        self.metrics = {"loudness_map": {"c0": -40.0, "c1": 0.3, "c2": 0.0}}
        write_voice(base / "run1" / "ddsp.pt", base / "old", metrics=self.metrics)
        write_voice(base / "run2" / "ddsp.pt", base / "new", metrics=self.metrics)
        self.old, self.new = files_of(base / "old"), files_of(base / "new")

    def argv(self, folder: Path) -> list:
        return ["ddsp", "export", "--model", self.base / "run2", "--out", folder, "--force"]

    def refused(self, folder: Path) -> str | None:
        from kelly.ddsp.export import validate
        from kelly.errors import KellyError

        try:
            bad = [c.line() for c in validate(folder, steps=20) if not c.ok]
        except KellyError as exc:
            return str(exc)
        return "; ".join(bad) or None


class ExportTransformer(_SetScenario):
    name = "transformer-export"
    target = "onnx"
    stops = ("temps-named#1", "committed:step.onnx#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        import torch

        from kelly.transformer.composer import load_weights
        from kelly.transformer.model import CompoundTransformer, config_for
        from kelly.transformer.onnx import export_onnx
        from kelly.transformer.tokens import CompoundTokenizer
        from kelly.transformer.train import _weights_bytes

        conf = config_for("tiny", CompoundTokenizer().sizes, block_size=32)
        for seed in (1, 2):
            torch.manual_seed(seed)
            (base / f"run{seed}").mkdir()
            (base / f"run{seed}" / "transformer.pt").write_bytes(_weights_bytes(CompoundTransformer(conf), conf))
        export_onnx(load_weights(base / "run1" / "transformer.pt"), base / "old")
        export_onnx(load_weights(base / "run2" / "transformer.pt"), base / "new")
        self.old, self.new = files_of(base / "old"), files_of(base / "new")

    def argv(self, folder: Path) -> list:
        return ["transformer", "export", "--model", self.base / "run2", "--out", folder]

    def refused(self, folder: Path) -> str | None:
        from kelly.errors import ModelError
        from kelly.transformer.onnx import OnnxStepper

        try:
            OnnxStepper(folder)
        except ModelError as exc:
            return str(exc)
        return None


# ------------------------------------------------------------------------------------- WAV files
class RenderWav(_SetScenario):
    name = "render-wav"
    target = "audio"
    stops = ("begin#1", "temp-written:song.wav#1", "committed:song.wav#1")

    def __init__(self, base: Path) -> None:
        Scenario.__init__(self, base)
        for seed in (1, 2):
            code, out = run_cli(["compose", "grief", "--bars", "4", "--seed", seed, "--out", base / f"s{seed}.mid"])
            if code:
                raise RuntimeError(out)
        (base / "old").mkdir()
        for seed, where in ((1, "old"), (2, "new")):
            code, out = run_cli(["render", base / f"s{seed}.mid", "--out", base / where / "song.wav"])
            if code:
                raise RuntimeError(f"rendering failed: {out[-400:]}")
        self.old, self.new = files_of(base / "old"), files_of(base / "new")

    def argv(self, folder: Path) -> list:
        return ["render", self.base / "s2.mid", "--out", folder / "song.wav", "--force"]

    def refused(self, folder: Path) -> str | None:
        return None  # one file: it is the old one or the new one, never anything else


class ComposeWav(Scenario):
    name = "compose-wav"
    target = "song"
    stops = ("committed:song.json#1", "begin#2", "temp-written:song.wav#1")

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        code, out = run_cli(self.argv(base / "old", seed=1))
        if code:
            raise RuntimeError(out)
        code, out = run_cli(self.argv(base / "new", seed=2))
        if code:
            raise RuntimeError(out)
        self.old, self.new = files_of(base / "old"), files_of(base / "new")

    def prepare(self, trial: Path) -> Path:
        folder = trial / self.target
        shutil.copytree(self.base / "old", folder)
        return folder

    def argv(self, folder: Path, seed: int = 2) -> list:
        return ["compose", "grief", "--bars", "4", "--seed", seed, "--out", folder / "song.mid", "--wav", "--force"]

    def check(self, folder: Path, events: list[str]) -> tuple[str, list[str]]:
        problems, _ = folder_problems(folder)
        if problems:
            return "broken", problems
        files = files_of(folder)
        which = self._json_age(files) + "".join(
            "N" if files.get(n) == self.new[n] else "O" if files.get(n) == self.old[n] else "?"
            for n in ("song.mid", "song.wav"))
        allowed = {"OOO": "old files", "NNN": "new files", "NOO": "new JSON, old MIDI and WAV (between renames)",
                   "NNO": "new pair, old WAV (rendering)"}
        if which not in allowed:
            return which, [f"an unexpected mix (json, mid, wav) = {which}"]
        return allowed[which], []

    @staticmethod
    def _json_age(files: dict) -> str:
        """``N`` for the new explanation (seed 2), ``O`` for the old (seed 1): it names its own path, so it is
        told by its seed rather than compared byte for byte."""
        import json

        try:
            seed = json.loads(files["song.json"]).get("seed")
        except (KeyError, ValueError):
            return "?"
        return {2: "N", 1: "O"}.get(seed, "?")

    def recover(self, folder: Path, state: str, runner) -> list[str]:
        import hashlib
        import json

        code, out = runner(self.argv(folder))
        if code:
            return [f"the next compose failed ({code}): {out.strip()[-300:]}"]
        files = files_of(folder)
        doc = json.loads(files["song.json"])
        if self._json_age(files) != "N" or doc["files"]["midi_sha256"] != hashlib.sha256(files["song.mid"]).hexdigest() \
                or files["song.mid"] != self.new["song.mid"] or files["song.wav"] != self.new["song.wav"]:
            return ["the next compose did not leave the new files"]
        return []


SCENARIOS = {cls.name: cls for cls in (TrainNetworks, TrainDdsp, TrainTransformer, ExportNetworks, ExportDdsp,
                                       ExportTransformer, RenderWav, ComposeWav)}


# ------------------------------------------------------------------------------------- the long run
def run_trials(scenario: Scenario, trials: int, rng: random.Random, work: Path, *, named: bool = False,
               log=print) -> dict:
    """``trials`` real kills of ``scenario``'s command, each checked and recovered by a child run."""
    # the length of an unkilled run, for the random moments
    probe = scenario.prepare(work / "probe")
    child = Child(scenario.argv(probe), work / "probe-io", env=scenario.env)
    code = child.finish()
    total = time.monotonic() - child.t0
    if code:
        raise RuntimeError(f"{scenario.name}: an unkilled run failed: {child.output()[-500:]}")
    child.close()
    states: Counter = Counter()
    outcomes: Counter = Counter()
    violations, leftovers = [], 0
    stops = list(scenario.stops)
    for i in range(trials):
        trial = work / f"trial-{i:03d}"
        folder = scenario.prepare(trial)
        mode = "stop" if i % 2 else "time"
        stop = stops[(i // 2) % len(stops)] if mode == "stop" else ""
        child = Child(scenario.argv(folder), trial / "io", stops=[stop] if stop else [], named=named,
                      env=scenario.env)
        if mode == "stop":
            got = child.wait_stopped()
            moment = f"at {stop}"
        else:
            delay = rng.uniform(0.0, total * 1.05)
            time.sleep(max(0.0, child.t0 + delay - time.monotonic()))
            got = "running"
            moment = f"{delay:.2f} s"
        outcome = child.kill() if got in ("stopped", "running") else got
        events = child.events()
        last = events[-1] if events else "(before any write)"
        output = child.output()
        child.close()
        outcomes[outcome] += 1
        if outcome.startswith("exited") and outcome != "exited 0":
            violations.append(f"{scenario.name} trial {i}: the run failed by itself: {output[-300:]}")
        state, problems = scenario.check(folder, events)
        _, left = folder_problems(folder)
        leftovers += len(left)
        if not problems:
            problems = scenario.recover(folder, state, lambda argv: run_child(argv, trial / "io2", named=named,
                                                                              env=scenario.env))
            again, _ = folder_problems(folder)
            problems += [f"after the next run: {p}" for p in again]
        states[state] += 1
        if problems:
            violations.append(f"{scenario.name} trial {i} ({mode} {moment}, last step {last}): {state}: "
                              + "; ".join(problems))
        log(f"{scenario.name:<19} {i:3d} {mode:<4} {moment:>38}  {outcome:<9} {last[:40]:<40} -> {state}"
            + (f" ({len(left)} temp file(s) left)" if left else "") + (" !!" if problems else ""))
        shutil.rmtree(trial, ignore_errors=True)
    return {"trials": trials, "kills": outcomes["killed"], "outcomes": outcomes, "states": states,
            "leftovers": leftovers, "violations": violations, "seconds_per_run": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="kills per scenario (default 10)")
    parser.add_argument("--scenarios", default="all", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--named", action="store_true", help="named temporary files (no O_TMPFILE), as elsewhere")
    parser.add_argument("--results", metavar="FILE.md", help="also write the summary as Markdown (atomically)")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenarios == "all" else [n.strip() for n in args.scenarios.split(",")]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    rng = random.Random(args.seed)
    results = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kelly-kill-faults-") as tmp:
        for name in names:
            base = Path(tmp) / name
            scenario = SCENARIOS[name](base / "setup")
            results[name] = run_trials(scenario, args.trials, rng, base, named=args.named)
    print(f"\n{'scenario':<19} {'trials':>6} {'kills':>5} {'viol.':>5} {'run s':>6}  states after the kill "
          "(each then recovered by the next run)")
    for name, r in results.items():
        states = ", ".join(f"{n} {s}" for s, n in sorted(r["states"].items(), key=lambda kv: -kv[1]))
        print(f"{name:<19} {r['trials']:>6} {r['kills']:>5} {len(r['violations']):>5} {r['seconds_per_run']:>6.1f}"
              f"  {states}")
    total_trials = sum(r["trials"] for r in results.values())
    total_kills = sum(r["kills"] for r in results.values())
    violations = [v for r in results.values() for v in r["violations"]]
    left = sum(r["leftovers"] for r in results.values())
    print(f"\n{total_trials} trials, {total_kills} kills (the rest ended before the kill), {len(violations)} "
          f"violation(s), {left} temporary file(s) of ours left; {time.monotonic() - started:.0f} s")
    if args.results:
        _write_results(Path(args.results), args, results, violations, left, time.monotonic() - started)
    if violations:
        print("\nFAILED:")
        for v in violations:
            print("  " + v)
        return 1
    print("OK: every kill left whole files (the old result, the new one, or a mix refused by hash), and the next "
          "run resumed or started clean and finished")
    return 0


def _write_results(path: Path, args, results: dict, violations: list[str], left: int, seconds: float) -> None:
    """The summary as a Markdown page: the command, the machine, one row per scenario, and any violation."""
    import platform

    from kelly.fileio import write_text_atomic

    cmd = f"python tests/kill_faults.py --trials {args.trials} --seed {args.seed}" + \
        (f" --scenarios {args.scenarios}" if args.scenarios != "all" else "") + (" --named" if args.named else "")
    lines = ["# kill -9 during training, model exports and WAV writes", "",
             f"`{cmd}` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"written {time.strftime('%Y-%m-%d %H:%M')} in {seconds:.0f} s (load average at the end "
             f"{os.getloadavg()[0]:.1f}). Half the trials kill at a random moment, half at a chosen step of an atomic "
             "write; after each kill the folder is checked (every file whole; a mixed set must be refused by its "
             "hashes) and the same command is run again, which must resume or start clean and finish.", "",
             "| scenario | trials | kills | violations | one run (s) | states after the kill (each then recovered) |",
             "|---|---:|---:|---:|---:|---|"]
    for name, r in results.items():
        states = ", ".join(f"{n} {s}" for s, n in sorted(r["states"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {name} | {r['trials']} | {r['kills']} | {len(r['violations'])} | "
                     f"{r['seconds_per_run']:.1f} | {states} |")
    lines += ["", f"{sum(r['trials'] for r in results.values())} trials, {sum(r['kills'] for r in results.values())} "
              f"kills (the rest ended before the kill), **{len(violations)} violations**; {left} whole temporary "
              "files of ours left by kills between the writes and the renames (swept by the next write of the "
              "same name after an hour)."]
    if violations:
        lines += ["", "Violations:", ""] + [f"- {v}" for v in violations]
    write_text_atomic(path, "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
