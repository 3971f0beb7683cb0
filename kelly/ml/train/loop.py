"""The training loop for Kelly's five networks. It reads top to bottom, like nanoGPT's ``train.py``.

``train_model(key, train, val, config, out_dir)`` trains one network:

1. where and who: the device, and this process's rank when ``torchrun`` started several;
2. seeds: python, numpy and torch seeded from ``config.seed``; the network's weights drawn
   explicitly from a ``torch.Generator`` seeded the same way; a second generator for the
   DataLoader (its state is checkpointed);
3. data: a ``DistributedSampler`` (one replica in a single process) shuffles every epoch as
   a function of (seed, epoch) and gives each process its slice, so N processes with a
   per-process batch of ``batch_size / N`` see the same global batches as one process;
4. the trivial baseline: the validation loss and metrics of predicting the training set's
   mean target (:mod:`kelly.ml.train.objectives`);
5. resume: with ``resume=True`` the model, optimizer, random states, epoch, best loss and
   patience counter come back from ``last.pt``, so a run killed and resumed ends bit for
   bit where an uninterrupted one would;
6. the epochs: learning rate for the epoch (warm-up, then cosine or constant), one pass
   over the training data (AdamW, gradient clipping), validation, early stopping on the
   validation loss (``patience`` epochs without a fall of at least ``min_delta`` below the
   loss that last reset the count; the best weights are those of the lowest loss), and,
   on rank 0 only, ``last.pt``/``best.pt`` and ``metrics.json``/``metrics.csv`` written
   atomically, and one progress line;
7. the result: the best weights (lowest validation loss) in a :class:`TrainResult`.

Files in ``out_dir``: ``last.pt`` and ``best.pt`` (see :mod:`kelly.ml.train.checkpoint`),
``metrics.json`` and ``metrics.csv`` (one row per epoch: epoch, train_loss, val_loss, the
network's metrics, seconds, lr).

Bit-exact reproducibility holds on CPU in one process with the same torch build and
thread count; across process counts the gradients are averaged by an all-reduce in a
different order, so results agree to float rounding (about 1e-6), not bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from kelly.errors import InputError, OutputError
from kelly.fileio import json_bytes, show_path, write_files_atomic
from kelly.ml.specs import SPECS
from kelly.ml.torch_models import MODEL_CLASSES, SpecNet
from kelly.ml.train import distributed
from kelly.ml.train.checkpoint import FORMAT, VERSION, capture_rng, checkpoint_bytes, load_checkpoint, restore_rng
from kelly.ml.train.config import TrainConfig
from kelly.ml.train.objectives import OBJECTIVES, Evaluation, evaluate_constant, loss_terms, mean_target, rows

#: Settings that may change between a run and its resumption (the others must match).
RESUMABLE_CHANGES = ("epochs", "device", "num_workers")


@dataclass
class TrainResult:
    """What a training run produced; ``model`` holds the best weights (CPU, eval mode)."""

    key: str
    model: SpecNet
    config: TrainConfig
    epochs_run: int                 # epochs completed, resumed ones included
    best_epoch: int                 # 1-based epoch of the lowest validation loss
    best_val_loss: float
    best_metrics: dict[str, float]  # the network's metrics at the best epoch
    baseline: dict[str, float]      # the mean-target baseline: "loss" and the same metrics
    stopped_early: bool
    history: list[dict[str, float]]
    n_train: int
    n_val: int
    world_size: int
    out_dir: Path
    files: list[Path] = field(default_factory=list)

    @property
    def loss_name(self) -> str:
        return OBJECTIVES[self.key].loss

    @property
    def metric_name(self) -> str:
        """The headline metric (``r2``, ``cosine``, ``top1``)."""
        return OBJECTIVES[self.key].metrics[0]


def train_model(key: str, dataset_train: Dataset, dataset_val: Dataset, config: TrainConfig,
                out_dir: str | Path, *, resume: bool = False, progress: bool = True, overwrite: bool = False,
                on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train the network ``key`` and return its best weights (see the module docstring).

    Parameters
    ----------
    key : str
        One of :data:`kelly.ml.specs.MODEL_KEYS`.
    dataset_train, dataset_val : map-style datasets of ``(input, target[, mask])`` float tensors
        Shapes as :mod:`kelly.ml.train.data` describes.
    config : TrainConfig
    out_dir : path
        Folder for checkpoints and metrics (created).
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists (otherwise start afresh).
    progress : bool
        Print a line per epoch (rank 0 only); with tqdm installed and a terminal on
        standard error, also a progress bar.
    overwrite : bool
        Without ``resume``, start afresh over an existing run in ``out_dir``; otherwise
        an existing ``last.pt`` is refused.
    on_epoch : callable, optional
        Called with each epoch's metrics row after its checkpoint is written (raising in
        it stops the run there, as a kill would).

    Raises
    ------
    InputError
        Bad device, a batch size not divisible by the number of processes, or a
        checkpoint to resume that was trained with other settings.
    OutputError
        If ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` is given, or a
        file cannot be written.
    """
    spec = SPECS[key]
    out = Path(out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"

    # ---- 1. where, and who -------------------------------------------------------------
    device = distributed.resolve_device(config.device, distributed.world_from_env())
    world = distributed.setup(device)
    if config.batch_size % world.size:
        raise InputError(f"batch_size {config.batch_size} must be divisible by the {world.size} processes "
                         "(each takes an equal share of every batch)")
    say = _Reporter(key, config.epochs, enabled=progress and world.is_main)
    if not resume and not overwrite and last_path.exists():
        raise OutputError(f"{show_path(out)} already holds a training run of {key}; use --resume to continue it "
                          "or --force to start afresh")

    # ---- 2. seeds, the network and its optimizer -----------------------------------------
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    model = MODEL_CLASSES[key]()
    model.init_weights(torch.Generator().manual_seed(config.seed))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_of = loss_terms(key)  # (pred, target, mask) → (total, weight): the loss is total / weight
    loader_generator = torch.Generator().manual_seed(config.seed)

    # ---- 3. data ---------------------------------------------------------------------------
    sampler = DistributedSampler(dataset_train, num_replicas=world.size, rank=world.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    # Workers (if any) restart every epoch, seeded from loader_generator, whose state is checkpointed.
    loader_kw = dict(num_workers=config.num_workers, pin_memory=device.type == "cuda")
    train_loader = DataLoader(dataset_train, batch_size=config.batch_size // world.size, sampler=sampler,
                              generator=loader_generator, **loader_kw)
    val_loader = DataLoader(dataset_val, batch_size=config.batch_size, shuffle=False,
                            generator=torch.Generator().manual_seed(config.seed), **loader_kw)

    # ---- 4. the trivial baseline: predict the training set's mean target ---------------------
    mean_loader = DataLoader(dataset_train, batch_size=config.batch_size, shuffle=False,
                             generator=torch.Generator().manual_seed(config.seed), **loader_kw)
    baseline = evaluate_constant(key, mean_target(mean_loader, spec.out_size), val_loader)

    # ---- 5. resume ---------------------------------------------------------------------------
    start_epoch, best_val, best_epoch, stop_ref, bad_epochs, stopped = 0, math.inf, 0, math.inf, 0, False
    history: list[dict[str, float]] = []
    best_state = _cpu_copy(model.state_dict())
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        _check_resumable(ckpt, key, config, last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt["rng"], loader_generator)
        start_epoch, best_val, best_epoch = ckpt["epoch"], ckpt["best_val_loss"], ckpt["best_epoch"]
        stop_ref, bad_epochs, stopped = ckpt["stop_ref_loss"], ckpt["bad_epochs"], ckpt["stopped_early"]
        history = list(ckpt["history"])
        best_state = ckpt["best_model"]
        say.line(f"{key}: resuming after epoch {start_epoch} from {show_path(last_path)}"
                 + (" (already finished)" if stopped or start_epoch >= config.epochs else ""))
    elif resume:
        say.line(f"{key}: nothing to resume in {show_path(out)}; starting afresh")
    raw_model = model
    if world.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    say.start(spec, len(dataset_train), len(dataset_val), world.size, device, baseline, start_epoch)

    # ---- 6. the epochs -----------------------------------------------------------------------
    times: list[float] = []
    for epoch in range(start_epoch, config.epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        lr = lr_at(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        sampler.set_epoch(epoch)

        # one pass over the training data
        model.train()
        loss_total, loss_weight = 0.0, 0.0
        for batch in train_loader:
            x, y, mask = _unpack(batch, device)
            pred, _ = model(x)
            total, weight = loss_of(rows(pred), rows(y), rows(mask))
            loss = total / weight.clamp_min(1e-12)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            loss_total += float(total.detach())
            loss_weight += float(weight)
        loss_total, loss_weight = distributed.all_reduce_sum([loss_total, loss_weight], device, world)
        train_loss = loss_total / loss_weight if loss_weight > 0 else math.nan

        # validation (every process evaluates the whole set, so all reach the same decisions)
        val = evaluate(raw_model, val_loader, key, device)
        improved = val["loss"] < best_val  # the best weights: the lowest validation loss so far
        if improved:
            best_val, best_epoch = val["loss"], epoch + 1
            best_state = _cpu_copy(raw_model.state_dict())
        # early stopping: patience runs out after `patience` epochs without a fall of min_delta
        if val["loss"] < stop_ref - config.min_delta:
            stop_ref, bad_epochs = val["loss"], 0
        else:
            bad_epochs += 1
        stopped = bad_epochs >= config.patience
        times.append(time.perf_counter() - t0)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
               **{name: val[name] for name in OBJECTIVES[key].metrics}, "seconds": times[-1], "lr": lr}
        history.append(row)

        # checkpoints and metrics, rank 0 only, each file atomically
        if world.is_main:
            ckpt = {
                "format": FORMAT, "version": VERSION, "model_key": key,
                "model": raw_model.state_dict(), "best_model": best_state, "optimizer": optimizer.state_dict(),
                "rng": capture_rng(loader_generator),
                "epoch": epoch + 1, "best_val_loss": best_val, "best_epoch": best_epoch,
                "stop_ref_loss": stop_ref, "bad_epochs": bad_epochs, "stopped_early": stopped,
                "history": history, "baseline": baseline,
                "config": config.to_dict(), "config_sha256": config.sha256(), "world_size": world.size,
            }
            data = checkpoint_bytes(ckpt)
            writes = {last_path: data, **({best_path: data} if improved else {}),
                      out / "metrics.json": json_bytes(_metrics_doc(key, baseline, history, best_epoch, best_val,
                                                                    stopped)),
                      out / "metrics.csv": _metrics_csv(key, history).encode("utf-8")}
            write_files_atomic(writes)
        say.epoch(row, times, stopped)
        if on_epoch is not None:
            on_epoch(row)
    say.finish(best_epoch, best_val, history, baseline, stopped, len(history))

    # ---- 7. the result: the best weights -------------------------------------------------------
    raw_model.load_state_dict(best_state)
    raw_model.to("cpu").eval()
    best_row = history[best_epoch - 1] if best_epoch else {}
    return TrainResult(
        key=key, model=raw_model, config=config, epochs_run=len(history), best_epoch=best_epoch,
        best_val_loss=best_val, best_metrics={name: best_row.get(name, math.nan) for name in OBJECTIVES[key].metrics},
        baseline=baseline, stopped_early=stopped, history=history, n_train=len(dataset_train),
        n_val=len(dataset_val), world_size=world.size, out_dir=out,
        files=[p for p in (last_path, best_path, out / "metrics.json", out / "metrics.csv")
               if world.is_main and p.exists()])


# ------------------------------------------------------------------------------------- helpers
def lr_at(epoch: int, config: TrainConfig) -> float:
    """The learning rate for 0-based ``epoch``: linear warm-up, then constant or cosine to lr/10."""
    if epoch < config.warmup_epochs:
        return config.lr * (epoch + 1) / (config.warmup_epochs + 1)
    if config.lr_schedule == "constant":
        return config.lr
    span = max(1, config.epochs - config.warmup_epochs - 1)
    progress = min(1.0, (epoch - config.warmup_epochs) / span)
    min_lr = config.lr / 10
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - min_lr)


@torch.no_grad()
def evaluate(model: SpecNet, loader: DataLoader, key: str, device: torch.device) -> dict[str, float]:
    """Loss and metrics of ``model`` over ``loader`` (see :class:`~kelly.ml.train.objectives.Evaluation`)."""
    model.eval()
    ev = Evaluation(key, SPECS[key].out_size)
    for batch in loader:
        x, y, mask = _unpack(batch, device)
        pred, _ = model(x)
        ev.update(pred.float(), y, mask)
    return ev.result()


def _unpack(batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(input, target[, mask]) on ``device``, as sequences: frames (batch, n) become (batch, 1, n)."""
    def seq(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device, dtype=torch.float32, non_blocking=True)
        return t[:, None, :] if t.dim() == 2 else t

    return seq(batch[0]), seq(batch[1]), seq(batch[2]) if len(batch) > 2 else None


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu", copy=True) for name, t in state.items()}


def _check_resumable(ckpt: dict[str, Any], key: str, config: TrainConfig, path: Path) -> None:
    if ckpt.get("model_key") != key:
        raise InputError(f"{show_path(path)} is a checkpoint of {ckpt.get('model_key')}, not {key}")
    saved = ckpt.get("config", {})
    for name, value in config.to_dict().items():
        if name not in RESUMABLE_CHANGES and saved.get(name) != value:
            raise InputError(f"cannot resume {show_path(path)}: it was trained with {name} = {saved.get(name)!r}, "
                             f"the settings now say {value!r} (use the same settings, or --force to start afresh)")


def _metrics_doc(key: str, baseline: dict, history: list[dict], best_epoch: int, best_val: float,
                 stopped: bool) -> dict[str, Any]:
    objective = OBJECTIVES[key]
    return {"model": SPECS[key].name, "key": key, "loss": objective.loss, "metrics": list(objective.metrics),
            "baseline": {"what": "predict the training set's mean target", **baseline},
            "best_epoch": best_epoch, "best_val_loss": best_val, "stopped_early": stopped, "epochs": history}


def _metrics_csv(key: str, history: list[dict]) -> str:
    columns = ["epoch", "train_loss", "val_loss", *OBJECTIVES[key].metrics, "seconds", "lr"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        writer.writerow([row["epoch"], *(repr(float(row[c])) for c in columns[1:])])
    return buf.getvalue()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Reporter:
    """Progress on rank 0: one line per epoch, plus a tqdm bar over epochs in a terminal."""

    def __init__(self, key: str, epochs: int, *, enabled: bool) -> None:
        self.key, self.epochs, self.enabled, self.bar = key, epochs, enabled, None

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def start(self, spec, n_train: int, n_val: int, world_size: int, device, baseline: dict,
              start_epoch: int) -> None:
        if not self.enabled:
            return
        objective = OBJECTIVES[self.key]
        procs = f", {world_size} processes" if world_size > 1 else ""
        self.line(f"{self.key}: {spec.params:,} parameters, {n_train:,} train / {n_val:,} val items, "
                  f"loss {objective.loss}, device {device}{procs}; baseline (training mean): val "
                  f"{baseline['loss']:.4g}, {objective.metrics[0]} {baseline[objective.metrics[0]]:.3g}")
        try:
            from tqdm import tqdm
        except ImportError:
            return
        if sys.stderr.isatty() and start_epoch < self.epochs:
            self.bar = tqdm(total=self.epochs, initial=start_epoch, unit="epoch", desc=self.key, leave=False)

    def epoch(self, row: dict, times: list[float], stopped: bool) -> None:
        if not self.enabled:
            return
        metric = OBJECTIVES[self.key].metrics[0]
        eta = (sum(times) / len(times)) * (self.epochs - row["epoch"])
        self.line(f"epoch {row['epoch']}/{self.epochs}  loss {row['train_loss']:.4g}  val {row['val_loss']:.4g}  "
                  f"{metric} {row[metric]:.3g}  {row['seconds']:.1f} s  ETA {_clock(0 if stopped else eta)}")
        if self.bar is not None:
            self.bar.update(1)

    def finish(self, best_epoch: int, best_val: float, history: list, baseline: dict, stopped: bool,
               epochs_run: int) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.enabled or not best_epoch:
            return
        metric = OBJECTIVES[self.key].metrics[0]
        how = f"stopped early after epoch {epochs_run}" if stopped else f"{epochs_run} epochs"
        self.line(f"{self.key}: best val {best_val:.4g} at epoch {best_epoch} (baseline {baseline['loss']:.4g}), "
                  f"{metric} {history[best_epoch - 1][metric]:.3g} (baseline {baseline[metric]:.3g}); {how}")


__all__ = ["TrainResult", "train_model", "lr_at", "evaluate", "RESUMABLE_CHANGES"]
