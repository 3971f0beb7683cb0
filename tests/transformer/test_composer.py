"""Training, export, generation and the two composers, end to end with a tiny model trained here."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest

from kelly.cli import main
from kelly.composer import ComposeOptions, get_composer
from kelly.emotion.thesaurus import state_for
from kelly.quality import melody_on_top_rate
from kelly.song import Role, read_midi

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny transformer trained on a few composed pieces (seconds), and its ONNX export."""
    out = tmp_path_factory.mktemp("tiny")
    assert main(["transformer", "train", "--config", "tiny", "--data", "composed", "--out", str(out)]) == 0
    assert main(["transformer", "export", "--model", str(out), "--out", str(out / "onnx")]) == 0
    return out


def test_training_beats_the_unigram_baseline_and_writes_its_files(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["val_loss"] < metrics["unigram_loss"]
    for name in ("pitch", "duration", "role"):
        fam = metrics["families"][name]
        assert fam["model_ppl"] < fam["unigram_ppl"], name
    for f in ("checkpoint.pt", "transformer.pt", "transformer.meta.json", "metrics.csv", "onnx/step.onnx",
              "onnx/heads.npz"):
        assert (trained / f).exists(), f


def test_training_resumes_from_its_checkpoint_and_refuses_other_settings(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("onnx"))
    capsys.readouterr()
    assert main(["transformer", "train", "--config", "tiny", "--data", "composed", "--out", str(run),
                 "--set", "steps=70"]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "at step 60" in err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 70
    assert main(["transformer", "train", "--config", "tiny", "--data", "composed", "--out", str(run),
                 "--set", "lr=0.01"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_generate_writes_exactly_the_bars_asked_for_and_the_same_seed_gives_the_same_file(trained, tmp_path):
    onnx = str(trained / "onnx")
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    for out in (a, b):
        assert main(["transformer", "generate", "--valence", "-0.6", "--arousal", "0.8", "--bars", "3", "--seed", "5",
                     "--model", onnx, "--out", str(out)]) == 0
    assert a.read_bytes() == b.read_bytes()
    song = read_midi(a)
    assert song.note_count() > 0
    assert song.end_tick() <= 3 * song.bar_ticks
    ex = json.loads(a.with_suffix(".json").read_text())
    assert ex["engines"]["composer"]["name"] == "transformer" and ex["engines"]["composer"]["finished"]
    mido.MidiFile(a)  # a standard file


def test_onnx_and_torch_weights_generate_the_same_piece_greedily(trained):
    s = state_for("calm")
    opts = ComposeOptions(bars=2, seed=3)
    torch_song = get_composer("transformer", model=str(trained), temperature=0.0).compose(s, opts).song
    onnx_song = get_composer("transformer", model=str(trained / "onnx"), temperature=0.0).compose(s, opts).song
    assert torch_song.to_bytes() == onnx_song.to_bytes()


def test_the_transformer_plays_the_rule_engines_orchestration(trained):
    s = state_for("furious")
    rules = get_composer("rules").compose(s, ComposeOptions(bars=4, seed=1)).song
    song = get_composer("transformer", model=str(trained / "onnx")).compose(s, ComposeOptions(bars=4, seed=1)).song
    allowed = {(-1 if t.is_drum else t.program, t.role) for t in rules.tracks if t.notes}
    assert {(-1 if t.is_drum else t.program, t.role) for t in song.tracks if t.notes} <= allowed


def test_hybrid_keeps_the_rules_parts_and_puts_a_transformer_melody_on_top(trained):
    s = state_for("hope")
    opts = ComposeOptions(bars=8, seed=2)
    rules = get_composer("rules").compose(s, opts)
    hybrid = get_composer("hybrid", model=str(trained / "onnx")).compose(s, opts)
    old = {t.name: t.notes for t in rules.song.tracks}
    for t in hybrid.song.tracks:
        if t.role != Role.MELODY:
            assert t.notes == old[t.name], t.name   # the rule engines' parts, untouched
    melody = next(t for t in hybrid.song.tracks if t.role == Role.MELODY)
    assert melody.notes and melody.notes != old[melody.name]
    assert melody_on_top_rate(hybrid.song) >= 0.9
    wrote = hybrid.explanation.engines["composer"]["wrote"]
    assert wrote["melody"] == "transformer" and wrote["bass"] == "rules" and wrote["harmony"] == "rules"
    assert "melody" not in hybrid.explanation.engines          # the rule melody's details are gone with it
    # the melody keeps the bar's harmonic world: chord tones on each chord's first beat
    ex = hybrid.explanation
    bar_ticks = hybrid.score.bar_ticks
    beat = hybrid.score.ppq * 4 // hybrid.score.time_signature[1]
    hits = total = 0
    for c in ex.progression.chords:
        at = c.start_tick(bar_ticks, beat)
        for n in melody.notes:
            if n.start == at:
                total += 1
                hits += n.pitch % 12 in set(c.pitch_classes)
    assert total == 0 or hits == total


def test_compose_command_runs_every_composer(trained, tmp_path):
    for name in ("transformer", "hybrid"):
        out = tmp_path / f"{name}.mid"
        assert main(["compose", "I feel hopeful", "--composer", name, "--transformer-model", str(trained / "onnx"),
                     "--bars", "4", "--out", str(out)]) == 0
        assert json.loads(out.with_suffix(".json").read_text())["engines"]["composer"]["name"] == name


@pytest.mark.parametrize("argv, words", [
    (["transformer", "generate", "--bars", "2", "--out", "x.mid"], "give --valence and --arousal"),
    (["transformer", "generate", "--valence", "3", "--arousal", "0.5", "--out", "x.mid"], "--valence must be"),
    (["transformer", "generate", "--valence", "0", "--arousal", "0.5", "--bars", "0", "--out", "x.mid"], "--bars"),
    (["transformer", "generate", "--valence", "0", "--arousal", "0.5", "--model", "/nonexistent",
      "--out", "x.mid"], "does not exist"),
    (["transformer", "generate", "--valence", "0", "--arousal", "0.5", "--temperature", "pitch=hot",
      "--out", "x.mid"], "--temperature"),
    (["compose", "calm", "--transformer-model", "/tmp"], "is for --composer transformer or hybrid"),
    (["transformer", "train", "--config", "nope", "--data", "composed", "--out", "o"], "no section [nope]"),
    (["transformer", "train", "--config", "tiny", "--set", "steps", "--data", "composed", "--out", "o"], "KEY=VALUE"),
    (["transformer", "train", "--config", "tiny", "--set", "wings=2", "--data", "composed", "--out", "o"],
     "unknown transformer setting"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_broken_model_folder_is_refused_clearly(tmp_path, capsys):
    (tmp_path / "transformer.pt").write_bytes(b"not a checkpoint")
    assert main(["transformer", "generate", "--valence", "0", "--arousal", "0.5", "--model", str(tmp_path),
                 "--out", str(tmp_path / "x.mid")]) == 2
    assert "not a usable transformer" in capsys.readouterr().err
    (tmp_path / "step.onnx").write_bytes(b"\x00" * 10)
    assert main(["transformer", "generate", "--valence", "0", "--arousal", "0.5", "--model", str(tmp_path),
                 "--out", str(tmp_path / "x.mid")]) == 2


def test_token_sets_round_trip_through_their_file(tmp_path):
    from kelly.transformer.data import TokenSet, composed_pieces
    from kelly.transformer.tokens import CompoundTokenizer

    tk = CompoundTokenizer()
    sets = composed_pieces(tk, emotions=("calm", "fury"), seeds=(0,), bars=2)
    sets["train"].save(tmp_path / "t.npz")
    back = TokenSet.load(tmp_path / "t.npz", len(tk.sizes))
    assert np.array_equal(back.tokens, sets["train"].tokens) and back.ids == sets["train"].ids
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(Exception, match="not a transformer token set"):
        TokenSet.load(tmp_path / "bad.npz", len(tk.sizes))


def test_the_hybrid_restates_its_bars_where_the_rules_melody_does():
    from kelly.song import Note, Song, Track
    from kelly.transformer.hybrid import _restate

    score = Song()
    bar = score.bar_ticks
    motif = [Note(0, 72, 480, 90), Note(480, 74, 480, 90)]
    rule = Track("Melody", 0, 0, motif + [Note(bar, 60, 480, 90)] + [n.moved(start=n.start + 2 * bar) for n in motif],
                 role=Role.MELODY)
    mine = [Note(0, 76, 960, 80), Note(bar, 77, 480, 80), Note(2 * bar + 240, 79, 240, 80)]
    anything = lambda b, beat: np.ones(128, dtype=bool)  # noqa: E731
    out = _restate(mine, rule, score, anything)
    assert [n for n in out if n.start >= 2 * bar] == [Note(2 * bar, 76, 960, 80)]   # bar 1 came back in bar 3
    assert Note(bar, 77, 480, 80) in out                                           # bar 2 is its own
    no_e = lambda b, beat: np.array([p % 12 != 4 for p in range(128)]) if b == 2 else np.ones(128, bool)  # noqa: E731
    kept = _restate(mine, rule, score, no_e)
    assert [n for n in kept if n.start >= 2 * bar] == [Note(2 * bar + 240, 79, 240, 80)]  # would not fit: own bar


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_weights_bit_for_bit(tmp_path, monkeypatch):
    """Stopped right after its first checkpoint and resumed, a run ends with the uninterrupted run's weights."""
    import torch

    import kelly.fileio

    args = ["transformer", "train", "--config", "tiny", "--data", "composed", "--set", "steps=40",
            "--set", "eval_every=20", "--set", "max_minutes=60"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0

    real, calls = kelly.fileio.write_files_atomic, []

    def then_die(files, **kw):
        real(files, **kw)
        calls.append(sorted(p.name for p in map(Path, files)))
        if len(calls) == 1:
            raise KeyboardInterrupt  # as a kill right after the checkpoint was written
    monkeypatch.setattr(kelly.fileio, "write_files_atomic", then_die)
    broken = tmp_path / "broken"
    assert main([*args, "--out", str(broken)]) == 130
    assert "checkpoint.pt" in calls[0]
    monkeypatch.setattr(kelly.fileio, "write_files_atomic", real)
    assert main([*args, "--out", str(broken)]) == 0

    def weights(run: Path) -> dict:
        return torch.load(run / "checkpoint.pt", weights_only=True)["model"]

    whole, resumed = weights(tmp_path / "whole"), weights(broken)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    hist = [json.loads((r / "metrics.json").read_text())["history"] for r in (tmp_path / "whole", broken)]
    assert [h["val_loss"] for h in hist[0]] == [h["val_loss"] for h in hist[1]]
