"""Training the DDSP voice: outputs, resume, settings, and broken checkpoints."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from kelly.ddsp.train import TrainSettings, load_settings, lr_at, train  # noqa: E402
from kelly.errors import FileFormatError, InputError, KellyError  # noqa: E402

from _ddsp_helpers import tiny_settings  # noqa: E402

OUTPUTS = ("checkpoint.pt", "ddsp.pt", "ddsp.json", "ddsp.meta.json", "ddsp.onnx", "metrics.json", "metrics.csv",
           "data.npz")


def test_tiny_run_writes_every_output(trained_voice):
    for name in OUTPUTS:
        assert (trained_voice.folder / name).is_file(), name
    m = trained_voice.metrics
    assert m["steps"] == 6
    assert [r["step"] for r in m["history"]] == [3, 6]
    assert all(r["val_loss"] > 0 for r in m["history"])
    assert m["best"]["step"] in (3, 6)
    assert m["data"]["segments"] == 8 and m["data"]["train"] >= 1
    assert json.loads((trained_voice.folder / "metrics.json").read_text())["steps"] == 6
    csv = (trained_voice.folder / "metrics.csv").read_text().splitlines()
    assert csv[0] == "step,minutes,train_loss,val_loss" and len(csv) == 3


def test_resume_continues_the_run(trained_voice, voice_copy):
    lines = []
    m = train(tiny_settings(steps=9), voice_copy, audio_dirs=[str(trained_voice.audio)], log=lines.append)
    assert any("resumed from" in line and "step 6" in line for line in lines)
    assert not any(line.startswith("data:") for line in lines)  # the data cache was reused
    assert m["steps"] == 9
    assert m["history"][:2] == trained_voice.metrics["history"]
    assert [r["step"] for r in m["history"]] == [3, 6, 9]


def test_resume_with_other_settings_is_refused(trained_voice, voice_copy):
    with pytest.raises(InputError, match="other settings"):
        train(tiny_settings(lr=1e-2), voice_copy, audio_dirs=[str(trained_voice.audio)], log=lambda _l: None)


def test_a_garbage_checkpoint_is_a_clean_error(trained_voice, voice_copy):
    (voice_copy / "checkpoint.pt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(FileFormatError, match="checkpoint.pt"):
        train(tiny_settings(steps=9), voice_copy, audio_dirs=[str(trained_voice.audio)], log=lambda _l: None)


def test_a_foreign_checkpoint_is_refused(trained_voice, voice_copy):
    # the best-weights file is a Kelly checkpoint, but not a resumable DDSP run
    (voice_copy / "checkpoint.pt").write_bytes((voice_copy / "ddsp.pt").read_bytes())
    with pytest.raises(KellyError):
        train(tiny_settings(steps=9), voice_copy, audio_dirs=[str(trained_voice.audio)], log=lambda _l: None)


def test_load_settings_sections_and_overrides():
    s = load_settings("tiny")
    assert s.hidden == 32 and s.note_step == 12
    assert load_settings("tiny", overrides={"steps": 7}).steps == 7
    assert load_settings("small").hidden == 128


def test_unknown_setting_is_an_input_error():
    with pytest.raises(InputError, match="unknown ddsp setting"):
        load_settings("tiny", overrides={"stepz": 3})
    with pytest.raises(InputError, match="no section"):
        load_settings("huge")


@pytest.mark.parametrize("override", [{"steps": 0}, {"hidden": -1}, {"lr": "x"}, {"steps": 2.5}, {"steps": True},
                                      {"lr": float("nan")}, {"warmup": -1}, {"device": "tpu"}, {"hidden": 4096}])
def test_bad_values_are_input_errors(override):
    with pytest.raises(InputError):
        load_settings("tiny", overrides=override)


def test_a_broken_config_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tiny\nsteps = ")
    with pytest.raises(InputError):
        load_settings("tiny", bad)


def test_learning_rate_schedule():
    s = TrainSettings(lr=1e-3, min_lr=1e-4, warmup=10, steps=110)
    assert lr_at(0, s) == pytest.approx(1e-4)
    assert lr_at(9, s) == pytest.approx(1e-3)
    assert lr_at(10, s) == pytest.approx(1e-3)
    assert lr_at(110, s) == pytest.approx(1e-4)
    assert lr_at(60, s) == pytest.approx(5.5e-4)


def test_resumed_run_equals_uninterrupted_run(trained_voice, tmp_path):
    from kelly.ddsp import data

    segments = data.load(trained_voice.folder / "data.npz")
    quiet = lambda _l: None  # noqa: E731
    # warmup past the last step: the learning rate does not depend on the planned number of steps
    whole = train(tiny_settings(steps=9, warmup=100), tmp_path / "whole", segments=segments, log=quiet)
    train(tiny_settings(steps=6, warmup=100), tmp_path / "split", segments=segments, log=quiet)
    resumed = train(tiny_settings(steps=9, warmup=100), tmp_path / "split", segments=segments, log=quiet)
    losses = [[(r["step"], r["train_loss"], r["val_loss"]) for r in m["history"]] for m in (whole, resumed)]
    assert losses[0][:2] == losses[1][:2]  # the same run up to the checkpoint
    assert losses[0] == losses[1]
