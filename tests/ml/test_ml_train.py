"""``kelly.ml.train`` and ``kelly train``: config, determinism, resume, early stopping, DDP (tiny runs)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.ml.train.config import DEFAULT_CONFIG_PATH, TrainConfig, load_config, load_configs, read_config_file

torch = pytest.importorskip("torch")

from kelly.ml.specs import MODEL_KEYS, SPECS  # noqa: E402
from kelly.ml.train import data as train_data  # noqa: E402
from kelly.ml.train.checkpoint import load_checkpoint  # noqa: E402
from kelly.ml.train.loop import lr_at, train_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

#: A run that takes well under a second on one core.
TINY = TrainConfig(epochs=4, batch_size=16, lr=3e-3, device="cpu", synthetic_samples=160, seq_len=4,
                   val_fraction=0.2, patience=10)


def tiny_data(key: str, config: TrainConfig = TINY):
    return train_data.synthetic_datasets(key, n=config.synthetic_samples, seq_len=config.seq_len,
                                         val_fraction=config.val_fraction, seed=config.seed)


def run(key: str, out: Path, config: TrainConfig = TINY, **kw):
    train, val = tiny_data(key, config)
    return train_model(key, train, val, config, out, progress=False, **kw)


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: these nets are tiny, and on a busy 2-core machine OpenMP's spinning threads
    make an epoch 50x slower. (Runs compared with each other all use the same count.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- config
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.toml"
    path.write_text(text)
    return path


def test_shipped_defaults_match_the_dataclass():
    sections = read_config_file(DEFAULT_CONFIG_PATH)
    assert sections["defaults"] == TrainConfig().to_dict()
    assert set(sections) == {"defaults", *MODEL_KEYS}


def test_config_layers_file_sections_and_overrides(tmp_path):
    path = write(tmp_path, "[defaults]\nepochs = 7\nlr = 1\n[harmonypredictor]\nbatch_size = 8\n")
    configs = load_configs(path, overrides={"lr": 0.5, "seed": None})
    assert configs["harmonypredictor"].batch_size == 8 and configs["dynamicsengine"].batch_size == 64
    assert all(c.epochs == 7 and c.lr == 0.5 and isinstance(c.lr, float) for c in configs.values())
    # the user's [defaults] beats the shipped [melodytransformer] section; the flag beats both
    assert load_config("melodytransformer", path).lr == 1.0
    assert load_config("melodytransformer").lr == 0.0005


@pytest.mark.parametrize("text, message", [
    ("[defaults]\nlearning_rate = 0.1\n", "[defaults]: unknown key 'learning_rate'"),
    ("[defaults]\nlr = -0.1\n", "[defaults]: lr must be a number > 0"),
    ("[defaults]\nlr = 'fast'\n", "lr must be a number > 0 (and at most 10), got 'fast'"),
    ("[defaults]\nepochs = 2.5\n", "epochs must be a whole number from 1 to 1000000, got 2.5"),
    ("[defaults]\nepochs = true\n", "epochs must be a whole number from 1 to 1000000, got bool true"),
    ("[dynamicsengine]\ndevice = 'tpu'\n", "[dynamicsengine]: device must be one of cpu, cuda, auto"),
    ("[defaults]\nval_fraction = 1.0\n", "val_fraction must be a number between 0 and 1"),
    ("[defaults]\nlr = nan\n", "lr must be a number > 0"),
    ("[melody]\nlr = 0.1\n", "unknown section [melody]"),
    ("lr = 0.1\n", "key 'lr' must be inside a section"),
    ("[defaults\nlr = 0.1\n", "not valid TOML"),
])
def test_bad_config_names_the_key(tmp_path, text, message):
    with pytest.raises(InputError, match=None) as info:
        load_configs(write(tmp_path, text))
    assert message in str(info.value)


def test_missing_config_and_bad_override(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_configs(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="--lr: lr must be a number > 0"):
        load_configs(overrides={"lr": -1.0})
    with pytest.raises(InputError, match="--batch-size: batch_size must be"):
        load_configs(overrides={"batch_size": 0})


def test_learning_rate_schedule():
    c = TrainConfig(epochs=11, lr=1.0, warmup_epochs=0)
    assert lr_at(0, c) == 1.0 and lr_at(10, c) == pytest.approx(0.1) and lr_at(5, c) == pytest.approx(0.55)
    assert lr_at(0, c.replace(warmup_epochs=1)) == 0.5
    assert lr_at(7, c.replace(lr_schedule="constant")) == 1.0


# --------------------------------------------------------------------------- data
def test_synthetic_data_fits_the_interface():
    for key in MODEL_KEYS:
        train, val = tiny_data(key)
        train_data.check_datasets(key, train, val)
        x, y = train[0]
        spec = SPECS[key]
        assert x.shape[-1] == spec.in_size and y.shape[-1] == spec.out_size
        assert (x.dim() == 2) == bool(spec.lstm_sizes)
    x, y = train_data.synthetic_arrays("harmonypredictor", 8)
    assert np.allclose(y.sum(1), 1, atol=1e-5)


def test_check_datasets_refuses_wrong_shapes():
    bad = torch.utils.data.TensorDataset(torch.zeros(4, 5), torch.zeros(4, 16))
    _, val = tiny_data("dynamicsengine")
    with pytest.raises(InputError, match=r"training item 0 input has shape \(5,\), expected \(32,\)"):
        train_data.check_datasets("dynamicsengine", bad, val)
    frames = torch.utils.data.TensorDataset(torch.zeros(4, 64), torch.zeros(4, 128))
    with pytest.raises(InputError, match=r"expected \(seq, 64\)"):
        train_data.check_datasets("melodytransformer", frames, frames)


def test_corpus_source_reports_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kelly.ml.data", None)  # importing it fails as if it did not exist
    with pytest.raises(InputError, match="the corpus datasets are not built yet"):
        train_data.load_datasets("dynamicsengine", "corpus", config=TINY)
    # a corpus module that provides the entry point is used, and its data checked
    fake = types.ModuleType("kelly.ml.data")
    seen = {}

    def training_datasets(key, *, data_dir, seq_len, val_fraction, seed, collections=None):
        seen.update(key=key, data_dir=data_dir, seq_len=seq_len, collections=collections)
        return tiny_data(key)

    fake.training_datasets = training_datasets
    monkeypatch.setitem(sys.modules, "kelly.ml.data", fake)
    train, val = train_data.load_datasets("groovepredictor", "corpus", config=TINY, data_dir=tmp_path)
    assert len(train) == 128 and seen == {"key": "groovepredictor", "data_dir": tmp_path, "seq_len": 4,
                                          "collections": {"composed", "bach", "oneills", "ryans", "airds",
                                                          "palestrina"}}
    del fake.training_datasets
    with pytest.raises(InputError, match="has no training_datasets"):
        train_data.load_datasets("groovepredictor", "corpus", config=TINY)


# --------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("key", MODEL_KEYS)
def test_every_network_trains_one_epoch(tmp_path, key):
    result = run(key, tmp_path, TINY.replace(epochs=1))
    assert result.epochs_run == 1 and np.isfinite(result.best_val_loss)
    assert set(result.best_metrics) == set(result.history[0]) - {"epoch", "train_loss", "val_loss", "seconds", "lr"}


def test_same_seed_same_weights(tmp_path):
    a = run("groovepredictor", tmp_path / "a")
    b = run("groovepredictor", tmp_path / "b")
    assert_same_tensors(a.model.state_dict(), b.model.state_dict())
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]
    c = run("groovepredictor", tmp_path / "c", TINY.replace(seed=1))
    assert not torch.equal(a.model.state_dict()["layers.0.weight"], c.model.state_dict()["layers.0.weight"])


@pytest.mark.parametrize("key", ["dynamicsengine", "melodytransformer"])
def test_kill_and_resume_ends_bit_for_bit_where_a_straight_run_does(tmp_path, key):
    straight = run(key, tmp_path / "straight")

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(key, tmp_path / "killed", on_epoch=kill_after_two)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 2
    resumed = run(key, tmp_path / "killed", resume=True)
    assert resumed.epochs_run == straight.epochs_run == TINY.epochs
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())
    last_a = load_checkpoint(tmp_path / "straight" / "last.pt")
    last_b = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert_same_tensors(last_a["model"], last_b["model"])
    assert all(torch.equal(x, y) for x, y in zip(last_a["optimizer"]["state"][0].values(),
                                                    last_b["optimizer"]["state"][0].values()))
    assert [r["val_loss"] for r in straight.history] == [r["val_loss"] for r in resumed.history]


def test_resume_refuses_other_settings_and_keeps_finished_runs(tmp_path, capsys):
    run("dynamicsengine", tmp_path)
    with pytest.raises(InputError, match="trained with lr = 0.003, the settings now say 0.01"):
        run("dynamicsengine", tmp_path, TINY.replace(lr=0.01), resume=True)
    from kelly.errors import OutputError

    with pytest.raises(OutputError, match="already holds a training run"):
        run("dynamicsengine", tmp_path)
    again = run("dynamicsengine", tmp_path, resume=True)  # finished: nothing more to do
    assert again.epochs_run == TINY.epochs


def test_early_stopping(tmp_path):
    # a fall of 10 never happens after the first epoch: patience 2 stops after epoch 3
    result = run("dynamicsengine", tmp_path, TINY.replace(epochs=20, patience=2, min_delta=10.0))
    assert result.stopped_early and result.epochs_run == 3
    assert load_checkpoint(tmp_path / "last.pt")["stopped_early"] is True
    assert result.best_epoch == min(range(1, 4), key=lambda e: result.history[e - 1]["val_loss"])


# (network, epochs, most val loss / baseline loss, least gain in the headline metric). Soft targets put a floor
# under BCE (their entropy), so the melody network's loss ratio cannot fall as far; its cosine shows the gain.
@pytest.mark.parametrize("key, epochs, ratio, gain", [
    ("dynamicsengine", 12, 0.2, 0.5), ("harmonypredictor", 12, 0.5, 0.2), ("groovepredictor", 12, 0.3, 0.5),
    ("melodytransformer", 6, 0.9, 0.05),
])
def test_trained_network_beats_the_mean_baseline(tmp_path, key, epochs, ratio, gain):
    config = TINY.replace(epochs=epochs, synthetic_samples=640, batch_size=32, lr=3e-3, seq_len=6)
    result = run(key, tmp_path, config)
    metric = result.metric_name
    assert result.best_val_loss < ratio * result.baseline["loss"], (result.best_val_loss, result.baseline)
    assert result.best_metrics[metric] > result.baseline[metric] + gain, (result.best_metrics, result.baseline)


def test_masked_targets_are_ignored(tmp_path):
    """Entries whose mask is 0 (the data cannot tell) change neither the weights nor the metrics."""
    train, val = tiny_data("groovepredictor")

    def masked(ds, junk):
        x, y = ds.tensors
        mask = torch.rand(y.shape, generator=torch.Generator().manual_seed(1)) > 0.3
        return torch.utils.data.TensorDataset(x, torch.where(mask, y, torch.full_like(y, junk)), mask)

    config = TINY.replace(epochs=2)
    a = train_model("groovepredictor", masked(train, 0.0), masked(val, 0.0), config, tmp_path / "a", progress=False)
    b = train_model("groovepredictor", masked(train, 50.0), masked(val, -7.0), config, tmp_path / "b",
                    progress=False)
    assert_same_tensors(a.model.state_dict(), b.model.state_dict())
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"] and a.baseline == b.baseline
    ones = torch.utils.data.TensorDataset(*train.tensors, torch.ones_like(train.tensors[1]))
    c = train_model("groovepredictor", ones, val, config, tmp_path / "c", progress=False)
    d = train_model("groovepredictor", train, val, config, tmp_path / "d", progress=False)
    for name, t in c.model.state_dict().items():
        assert torch.allclose(t, d.model.state_dict()[name], atol=1e-6)


def test_metrics_files_and_weights_only_checkpoints(tmp_path):
    result = run("harmonypredictor", tmp_path, TINY.replace(epochs=3))
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["loss"] == "kl" and doc["metrics"] == ["top1", "top3"] and len(doc["epochs"]) == 3
    assert doc["baseline"]["loss"] == pytest.approx(result.baseline["loss"])
    with open(tmp_path / "metrics.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["epoch", "train_loss", "val_loss", "top1", "top3", "seconds", "lr"]
    assert [int(r[0]) for r in table[1:]] == [1, 2, 3]
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert ckpt["model_key"] == "harmonypredictor"
        assert {"torch", "numpy", "python", "generator", "cuda"} <= set(ckpt["rng"])
        assert {"model", "optimizer", "epoch", "best_val_loss", "bad_epochs", "config_sha256"} <= set(ckpt)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == result.best_epoch
    assert_same_tensors(best["model"], result.model.state_dict())


def test_package_api_and_publish(tmp_path):
    from kelly.ml.train import load_config, publish, synthetic_datasets, train_model

    assert callable(publish) and callable(train_model) and callable(synthetic_datasets)
    result = run("groovepredictor", tmp_path / "run", load_config("groovepredictor",
                                                                   overrides={"epochs": 1, "device": "cpu"}))
    written = publish(result, tmp_path / "models", data="synthetic")
    assert [p.name for p in written] == ["groovepredictor.meta.json", "groovepredictor.json"]
    meta = json.loads(written[0].read_text())
    import hashlib

    assert meta["model_sha256"] == hashlib.sha256(written[1].read_bytes()).hexdigest()
    assert "do not ship" in meta["note"] and meta["config"] == result.config.to_dict()


# --------------------------------------------------------------------------- the command
def test_cli_trains_exports_and_the_runtime_agrees(cli, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["train", "--models", "dynamicsengine", "--data", "synthetic", "--epochs", "2",
                "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("epoch 2/2  loss ") and " r2 " in line and "ETA" in line for line in lines)
    assert (out / "dynamicsengine.json").is_file() and (out / "dynamicsengine.meta.json").is_file()
    for name in ("last.pt", "best.pt", "metrics.json", "metrics.csv"):
        assert (out / "runs" / "dynamicsengine" / name).is_file()
    meta = json.loads((out / "dynamicsengine.meta.json").read_text())
    assert meta["data"] == "synthetic" and meta["epochs_run"] == 2 and meta["seed"] == 0
    assert meta["config"]["epochs"] == 2 and len(meta["config_sha256"]) == 64
    assert {"val_loss", "r2"} <= set(meta["metrics"]) and "loss" in meta["baseline"]
    # the exported JSON is the best checkpoint's network
    from kelly.ml.runtime import load_model
    from kelly.ml.torch_models import model_from_state_dict

    best = load_checkpoint(out / "runs" / "dynamicsengine" / "best.pt")
    net = model_from_state_dict("dynamicsengine", best["model"])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 32)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)[None])[0][0].numpy()
    rt = load_model(out / "dynamicsengine.json")
    got = np.stack([np.array(rt.forward(row), dtype=np.float64) for row in x])
    assert np.abs(got - want).max() < 1e-5
    # again without --resume or --force: refused; with --resume: finished, files kept
    assert cli(["train", "--models", "dynamicsengine", "--data", "synthetic", "--epochs", "2",
                "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli(["train", "--models", "DynamicsEngine", "--data", "synthetic", "--epochs", "2", "--out", str(out),
                "--resume", "--quiet"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--models", "melo"], "unknown model 'melo'"),
    (["--lr", "-1"], "--lr: lr must be a number > 0"),
    (["--epochs", "0"], "--epochs: epochs must be a whole number"),
    (["--config", "missing.toml"], "missing.toml: no such file"),
    (["--data", "corpus", "--data-dir", "no/such/dir"], "--data-dir no/such/dir: no such folder"),
])
def test_cli_errors_are_one_line_exit_2(cli, tmp_path, capsys, argv, message):
    code = cli(["train", "--data", "synthetic", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith("kelly: error:")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cli_cuda_unavailable_exit_2(cli, tmp_path, capsys):
    assert cli(["train", "--models", "dynamicsengine", "--data", "synthetic", "--device", "cuda",
                "--out", str(tmp_path)]) == 2
    assert "--device cuda: torch" in capsys.readouterr().err


def test_cli_corpus_not_built_yet(cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "kelly.ml.data", None)  # importing it fails as if it did not exist
    assert cli(["train", "--models", "dynamicsengine", "--out", str(tmp_path)]) == 2
    assert "the corpus datasets are not built yet" in capsys.readouterr().err


# --------------------------------------------------------------------------- several processes
def _gloo_works() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_gloo_available()


@pytest.mark.skipif(not _gloo_works(), reason="torch.distributed with gloo is unavailable")
def test_two_processes_match_one(tmp_path):
    """torchrun with 2 CPU processes (gloo) ends within float rounding of one process.

    The same global batches reach the same gradient, but the all-reduce sums two half
    batch means in another order than one process's full batch mean, so weights agree to
    about 1e-7 per step, not bit for bit.
    """
    config = TINY.replace(epochs=3, batch_size=16, synthetic_samples=160, val_fraction=0.2)
    toml = tmp_path / "tiny.toml"
    toml.write_text("[defaults]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.to_dict().items()))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "kelly",
         "train", "--models", "dynamicsengine", "--data", "synthetic", "--config", str(toml), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and ("gloo" in proc.stderr.lower() and "error" in proc.stderr.lower()
                                 and "connect" in proc.stderr.lower()):
        pytest.skip(f"gloo cannot connect here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("epoch 3/3") == 1  # rank 0 alone prints
    assert ", 2 processes;" in proc.stdout
    ddp = load_checkpoint(out / "runs" / "dynamicsengine" / "last.pt")
    assert ddp["world_size"] == 2
    single = run("dynamicsengine", tmp_path / "one", config)
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    for name, t in one["model"].items():
        assert torch.allclose(t, ddp["model"][name], rtol=0, atol=1e-5), (name, (t - ddp["model"][name]).abs().max())
    assert single.epochs_run == 3
