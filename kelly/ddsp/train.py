"""Training the DDSP voice (``kelly ddsp train``), top to bottom.

The same machinery as the other networks (:mod:`kelly.ml.train`, :mod:`kelly.transformer.train`):
named sections of a TOML config (``kelly/ddsp/default.toml``) with ``key=value``
overrides, checkpoints written atomically and read back with ``torch.load(weights_only=True)``
(:mod:`kelly.ml.train.checkpoint`), resume from the last checkpoint with every random
state restored (more steps or minutes may be given), metrics as JSON and CSV.

Each step draws 1 s windows of training audio (:func:`kelly.ddsp.data.windows`), runs the
decoder on their frames, synthesizes (harmonic + filtered noise, torch) and takes the
multi-scale spectral loss against the recording. Validation uses fixed windows of the
validation segments.

Outputs in ``--out``: ``data.npz`` (the segments and features, reused while the data
settings are the same), ``checkpoint.pt`` (resume), ``ddsp.pt`` (best weights),
``metrics.json``/``metrics.csv``, and the voice itself: ``ddsp.json`` (RTNeural JSON,
what the renderer reads) and ``ddsp.meta.json`` (:mod:`kelly.ddsp.export`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kelly.errors import InputError

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "ddsp.pt"
DATA = "data.npz"


@dataclass(frozen=True)
class TrainSettings:
    """One section of ``default.toml``."""

    hidden: int = 128
    steps: int = 5000
    batch_size: int = 12
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup: int = 100
    grad_clip: float = 2.0
    eval_every: int = 250
    eval_windows: int = 32
    max_minutes: float = 45.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    note_step: int = 5           # soundfont notes every this many semitones (data)
    standard: bool = True        # the standard sources (data)

    def check(self) -> None:
        for f in ("hidden", "steps", "batch_size", "eval_every", "eval_windows", "note_step"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000_000:
                raise InputError(f"ddsp config: {f} must be a whole number ≥ 1, got {v!r}")
        if self.hidden > 1024 or self.batch_size > 4096:
            raise InputError("ddsp config: hidden is at most 1024 and batch_size at most 4096")
        for f in ("lr", "min_lr", "grad_clip", "max_minutes"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"ddsp config: {f} must be a number ≥ 0, got {v!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise InputError(f"ddsp config: warmup must be a whole number ≥ 0, got {self.warmup!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise InputError(f"ddsp config: device must be cpu, cuda or auto, got {self.device!r}")


def load_settings(section: str = "small", path: str | Path | None = None,
                  overrides: dict[str, Any] | None = None) -> TrainSettings:
    """A section of the TOML config with overrides applied (unknown keys and bad values are InputErrors)."""
    from kelly.ml.train.sections import load_section

    return load_section(TrainSettings, section, path if path is not None else DEFAULT_CONFIG, overrides, what="ddsp")


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at the last step."""
    from kelly.ml.train.sections import warmup_cosine

    return warmup_cosine(step, lr=s.lr, min_lr=s.min_lr, warmup=s.warmup, steps=s.steps)


def synth_torch(raw, f0, n_samples: int, generator):
    """Decoder outputs ``[B, F, 130]`` and f0 ``[B, F]`` → audio ``[B, n]`` (torch)."""
    from kelly.ddsp.core import N_HARMONICS
    from kelly.ddsp.torch_synths import FilteredNoise, Harmonic

    amp, dist, noise = raw[..., :1], raw[..., 1:1 + N_HARMONICS], raw[..., 1 + N_HARMONICS:]
    return Harmonic()(amp, dist, f0, n_samples) + FilteredNoise()(noise, n_samples, generator=generator)


def data_key(settings: TrainSettings, audio_dirs: list[str]) -> dict:
    return {"note_step": settings.note_step, "standard": settings.standard,
            "audio": [str(Path(d).resolve()) for d in audio_dirs]}


def prepare_data(out: Path, settings: TrainSettings, audio_dirs: list[str], *, soundfont=None,
                 log: Callable[[str], None] = print):
    """The segments, built once into ``out/data.npz`` and reused while the data settings are unchanged."""
    import json

    from kelly.ddsp import data
    from kelly.fileio import write_json_atomic

    key = data_key(settings, audio_dirs)
    cache, stamp = out / DATA, out / "data.json"
    if cache.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text(encoding="utf-8")) == key:
                return data.load(cache)
        except (OSError, ValueError):
            pass
    t0 = time.monotonic()
    segments = data.build(standard=settings.standard, audio_dirs=audio_dirs, soundfont=soundfont,
                          note_step=settings.note_step, log=log)
    data.emotion_labels(segments)
    out.mkdir(parents=True, exist_ok=True)
    data.save(segments, cache)
    write_json_atomic(stamp, key)
    log(f"data: {len(segments)} segments, {sum(len(s.audio) for s in segments) / 16000:.0f} s of audio "
        f"(features in {time.monotonic() - t0:.0f} s)")
    return segments


def train(settings: TrainSettings, out_dir: str | Path, *, audio_dirs: list[str] | None = None, soundfont=None,
          resume: bool = True, segments=None, log: Callable[[str], None] = print) -> dict:
    """Train (or resume) a DDSP voice into ``out_dir``; returns the metrics (also written there)."""
    import torch

    from kelly.ddsp import data as ddata
    from kelly.ddsp.decoder import DecoderConfig, torch_decoder
    from kelly.ddsp.export import write_voice
    from kelly.ddsp.losses import multiscale_spectral_loss
    from kelly.fileio import json_bytes, write_files_atomic
    from kelly.ml.train.checkpoint import capture_rng, checkpoint_bytes, load_checkpoint, restore_rng
    from kelly.ml.train.distributed import resolve_device
    from kelly.ml.train.sections import check_resumable

    settings.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    audio_dirs = list(audio_dirs or [])
    if segments is None:
        segments = prepare_data(out, settings, audio_dirs, soundfont=soundfont, log=log)
    train_set = [s for s in segments if s.split == "train"]
    val_set = [s for s in segments if s.split == "validation"] or train_set
    if not train_set:
        raise InputError("no training segments (every recording fell in the held-out splits); add recordings")
    for s in segments:
        if not s.descriptors:
            s.descriptors = ddata.descriptors(s)
    label_ref = ddata.emotion_labels(segments)
    loud_map = ddata.loudness_map(segments)
    vx, vf, vy = ddata.windows(val_set, np.random.default_rng(12345), settings.eval_windows)

    cfg = DecoderConfig(hidden=settings.hidden)
    torch.manual_seed(settings.seed)
    model = torch_decoder(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    step, history, best = 0, [], {"val_loss": math.inf, "step": -1}
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        check_resumable(ckpt, "ddsp", settings, ckpt_path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, history, best = int(ckpt["step"]), list(ckpt["history"]), dict(ckpt["best"])
        restore_rng(ckpt["rng"], gen)
        log(f"resumed from {ckpt_path} at step {step}")

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            g = torch.Generator().manual_seed(777)
            total = 0.0
            for i in range(0, len(vx), 8):
                x = torch.from_numpy(vx[i:i + 8]).to(device)
                raw, _ = model(x)
                pred = synth_torch(raw, torch.from_numpy(vf[i:i + 8]).to(device), vy.shape[1], g)
                total += float(multiscale_spectral_loss(pred, torch.from_numpy(vy[i:i + 8]).to(device))) * len(x)
        return total / len(vx)

    t0 = time.monotonic()
    spent = float(history[-1]["minutes"]) * 60 if history else 0.0
    while step < settings.steps:
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings)
        # each step's windows come from a generator of (seed, step): a resumed run draws what an unbroken one would
        x, f0, y = ddata.windows(train_set, np.random.default_rng([settings.seed, step]), settings.batch_size)
        raw, _ = model(torch.from_numpy(x).to(device))
        pred = synth_torch(raw, torch.from_numpy(f0).to(device), y.shape[1], gen)
        loss = multiscale_spectral_loss(pred, torch.from_numpy(y).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        step += 1
        minutes = (spent + time.monotonic() - t0) / 60.0
        last = step == settings.steps or minutes >= settings.max_minutes
        if step % settings.eval_every == 0 or last:
            val = validate()
            row = {"step": step, "minutes": round(minutes, 2), "train_loss": round(loss.item(), 4),
                   "val_loss": round(val, 4)}
            history.append(row)
            log(f"step {step:>6}  train {row['train_loss']:.3f}  val {row['val_loss']:.3f}  ({minutes:.1f} min)")
            writes = {}
            if val < best["val_loss"]:
                best = {"val_loss": val, "step": step}
                writes[out / WEIGHTS] = checkpoint_bytes({
                    "format": "kelly-train-checkpoint", "version": 1, "kind": "ddsp-weights",
                    "config": cfg.to_dict(), "model": model.state_dict()})
            writes[ckpt_path] = checkpoint_bytes({
                "format": "kelly-train-checkpoint", "version": 1, "kind": "ddsp", "settings": asdict(settings),
                "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "history": history, "best": best, "rng": capture_rng(gen)})
            # One group, the best weights renamed first: a kill between the renames leaves new weights beside
            # the previous checkpoint, whose resumed run draws the same steps and writes them again.
            write_files_atomic(writes)
        if last:
            break
    metrics = {"settings": asdict(settings), "steps": step, "minutes": history[-1]["minutes"] if history else 0.0,
               "best": best, "history": history,
               "data": {"segments": len(segments), "train": len(train_set), "validation": len(val_set),
                        "test": sum(s.split == "test" for s in segments),
                        "seconds": round(sum(len(s.audio) for s in segments) / 16000, 1),
                        "sources": sorted({s.source for s in segments})},
               "emotion_labels": label_ref, "loudness_map": loud_map}
    write_files_atomic({out / "metrics.json": json_bytes(metrics), out / "metrics.csv": (
        "step,minutes,train_loss,val_loss\n" + "".join(
            f"{r['step']},{r['minutes']},{r['train_loss']},{r['val_loss']}\n" for r in history)).encode("utf-8")})
    write_voice(out / WEIGHTS, out, metrics=metrics)
    return metrics
