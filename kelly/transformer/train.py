"""Training the compound-word transformer (``kelly transformer train``), top to bottom.

The same machinery as the five networks (:mod:`kelly.ml.train`): a TOML config with
named sections, checkpoints written atomically and read back with
``torch.load(weights_only=True)`` (:mod:`kelly.ml.train.checkpoint`), resume from the
last checkpoint with every random state restored, metrics as JSON and CSV beside the
weights, and ``torchrun`` for several processes (:mod:`kelly.ml.train.distributed`: each
rank draws its own windows, DistributedDataParallel averages the gradients, rank 0 writes).

What it measures: per-family cross-entropy on the validation pieces, each family against
its **unigram baseline** (the family's value frequencies in the training tokens), as
perplexities, so "clearly below a unigram baseline" is a number per family.

Outputs in ``--out``: ``checkpoint.pt`` (resume), ``transformer.pt`` (the best weights
by validation loss, with the model config: what :mod:`kelly.transformer.composer` loads),
``transformer.meta.json`` (config, data, metrics) and ``metrics.json`` / ``metrics.csv``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kelly.errors import InputError

#: The config file with the named sections (tiny, small, large).
DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "transformer.pt"
META = "transformer.meta.json"


@dataclass(frozen=True)
class TrainSettings:
    """One section of ``default.toml`` (every field can be overridden on the command line)."""

    model: str = "small"              # model size: tiny, small or large (kelly.transformer.model)
    steps: int = 3000
    batch_size: int = 16
    block_size: int = 256             # tokens per training window (≤ the model's block size)
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_windows: int = 400           # validation windows scored per evaluation (all of them at the end)
    max_minutes: float = 28.0         # stop (and keep the best) when the time is up
    seed: int = 0
    device: str = "auto"
    collections: str = "composed,bach,oneills,ryans,airds,palestrina"
    threads: int = 0                  # torch intra-op threads (0: torch's default)

    def check(self) -> None:
        for f in ("steps", "batch_size", "block_size", "warmup", "eval_every", "eval_windows"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if f == "warmup" else 1):
                raise InputError(f"transformer config: {f} must be a whole number ≥ 1, got {v!r}")
        if self.model not in ("tiny", "small", "large"):
            raise InputError(f"transformer config: model must be tiny, small or large, got {self.model!r}")
        for f in ("lr", "min_lr", "weight_decay", "grad_clip", "max_minutes"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"transformer config: {f} must be a number ≥ 0, got {v!r}")


def load_settings(section: str = "small", path: str | Path | None = None,
                  overrides: dict[str, Any] | None = None) -> TrainSettings:
    """A section of the TOML config, with overrides (``key=value`` from the command line) applied."""
    from kelly.ml.train.sections import load_section

    return load_section(TrainSettings, section, path if path is not None else DEFAULT_CONFIG, overrides,
                        what="transformer")


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at the last step."""
    from kelly.ml.train.sections import warmup_cosine

    return warmup_cosine(step, lr=s.lr, min_lr=s.min_lr, warmup=s.warmup, steps=s.steps)


def _generator_state(rng: np.random.Generator) -> dict[str, str]:
    """The training windows' random stream (PCG64) as strings: its 128-bit numbers stay exact in a checkpoint."""
    st = rng.bit_generator.state
    return {"bit_generator": str(st["bit_generator"]), "state": str(st["state"]["state"]),
            "inc": str(st["state"]["inc"]), "has_uint32": str(st["has_uint32"]), "uinteger": str(st["uinteger"])}


def _generator_from(saved: dict[str, str]) -> np.random.Generator:
    """The stream :func:`_generator_state` kept, where it was."""
    if saved.get("bit_generator") != "PCG64":
        raise InputError(f"the checkpoint's data stream is {saved.get('bit_generator')!r}, not PCG64; start again "
                         "with --fresh")
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
                "has_uint32": int(saved["has_uint32"]), "uinteger": int(saved["uinteger"])}
    return np.random.Generator(bg)


def unigram_losses(train, val, sizes: tuple[int, ...]) -> list[float]:
    """Per family: cross-entropy (nats) of the validation tokens under the training tokens' frequencies.

    Scored on the same targets as the model: every non-PAD row after a piece's first.
    Add-one smoothing, so an unseen value costs a finite amount.
    """
    out = []
    tt = _targets(train)
    vt = _targets(val)
    for f, size in enumerate(sizes):
        counts = np.bincount(tt[:, f].astype(np.int64), minlength=size).astype(np.float64) + 1.0
        logp = np.log(counts / counts.sum())
        out.append(float(-logp[vt[:, f].astype(np.int64)].mean()) if len(vt) else float("nan"))
    return out


def _targets(ts) -> np.ndarray:
    keep = np.ones(len(ts.tokens), dtype=bool)
    keep[ts.starts[:-1]] = False  # a piece's first row (BOS) is never a target
    rows = ts.tokens[keep]
    return rows[rows[:, 0] != 0]


def train(settings: TrainSettings, out_dir: str | Path, *, data: dict | None = None, corpus: str | Path | None = None,
          resume: bool = True, log: Callable[[str], None] = print) -> dict:
    """Train (or resume) a transformer; returns the final metrics (also written to ``out_dir``)."""
    import torch

    from kelly.fileio import json_bytes, write_files_atomic
    from kelly.ml.train.checkpoint import capture_rng, checkpoint_bytes, load_checkpoint, restore_rng
    from kelly.ml.train.distributed import resolve_device, setup, teardown
    from kelly.ml.train.sections import check_resumable
    from kelly.transformer import data as tdata
    from kelly.transformer.model import CompoundTransformer, config_for
    from kelly.transformer.tokens import FAMILIES, CompoundTokenizer

    settings.check()
    out = Path(out_dir)
    tokenizer = CompoundTokenizer()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    world = setup(device)
    try:
        if data is None:
            if corpus is None:
                raise InputError("give a corpus folder (--corpus, built by `python -m kelly.ml.data`)")
            cols = tuple(c.strip() for c in settings.collections.split(",") if c.strip())
            data = _cached_data(Path(corpus), out, tokenizer, cols, log if world.is_main else None)
        train_set, val_set = data["train"], data["validation"]
        if len(train_set) == 0 or len(val_set) == 0:
            raise InputError("the transformer needs training and validation pieces; the data has "
                             f"{len(train_set)} and {len(val_set)}")
        # the model's context is the training window: positions it never saw in training are never used
        # (generation slides its window within them, kelly.transformer.model.TorchStepper)
        mconf = config_for(settings.model, tokenizer.sizes, block_size=settings.block_size)
        torch.manual_seed(settings.seed)
        model = CompoundTransformer(mconf).to(device)
        opt = model.configure_optimizer(settings.weight_decay, settings.lr)
        gen = torch.Generator().manual_seed(settings.seed)
        rng = np.random.default_rng([settings.seed, world.rank])
        step, history, best = 0, [], {"val_loss": math.inf, "step": -1}
        ckpt_path = out / CHECKPOINT
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, map_location=device)
            # more steps or more time may be given to a run that resumes; nothing else may change
            check_resumable(ckpt, "transformer", settings, ckpt_path)
            if ckpt.get("model_config") != mconf.to_dict():
                raise InputError(f"{ckpt_path} holds a model of another shape (the tokenizer or the model changed "
                                 "since it was written); train into another --out, or start again with --fresh")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            step, history, best = int(ckpt["step"]), list(ckpt["history"]), dict(ckpt["best"])
            restore_rng(ckpt["rng"], gen)
            if ckpt.get("data_rng") and not world.distributed:
                rng = _generator_from(ckpt["data_rng"])  # the windows drawn next are the uninterrupted run's
            else:  # several ranks (rank 0 keeps only its own stream), or an older checkpoint: a fresh stream each
                rng = np.random.default_rng([settings.seed, world.rank, step])
            if world.is_main:
                log(f"resumed from {ckpt_path} at step {step}")
        net = model
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        baseline = unigram_losses(train_set, val_set, tokenizer.sizes)
        t0 = time.monotonic()
        spent = float(history[-1]["minutes"]) * 60 if history else 0.0
        families = list(FAMILIES)
        while step < settings.steps:
            model.train()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, settings)
            x, emo = tdata.windows(train_set, settings.block_size, rng, settings.batch_size)
            xb = torch.from_numpy(x).to(device)
            eb = torch.from_numpy(emo).to(device)
            _, loss = net(xb[:, :-1], eb, targets=xb[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            step += 1
            minutes = (spent + time.monotonic() - t0) / 60.0
            last = step == settings.steps or minutes >= settings.max_minutes
            if step % settings.eval_every == 0 or last:
                ev = evaluate(model, val_set, settings.block_size, device,
                              None if last else settings.eval_windows)
                row = {"step": step, "minutes": round(minutes, 2), "train_loss": round(loss.item(), 4),
                       "val_loss": round(ev["loss"], 4),
                       **{f"val_{n}": round(v, 4) for n, v in zip(families, ev["families"])}}
                history.append(row)
                if world.is_main:
                    log(f"step {step:>6}  train {row['train_loss']:.3f}  val {row['val_loss']:.3f}  "
                        f"({minutes:.1f} min)")
                    writes = {}
                    if ev["loss"] < best["val_loss"]:
                        best = {"val_loss": ev["loss"], "step": step, "families": ev["families"]}
                        writes[out / WEIGHTS] = _weights_bytes(model, mconf)
                    writes[ckpt_path] = checkpoint_bytes({
                        "format": "kelly-train-checkpoint", "version": 1, "kind": "transformer",
                        "settings": asdict(settings), "model_config": mconf.to_dict(), "model": model.state_dict(),
                        "optimizer": opt.state_dict(), "step": step, "history": history, "best": best,
                        "rng": capture_rng(gen),
                        "data_rng": None if world.distributed else _generator_state(rng)})
                    # one group, the best weights renamed first: a kill between the renames leaves new weights
                    # beside the previous checkpoint, and the resumed run trains past that step again
                    write_files_atomic(writes)
            if last:
                break
        metrics = _metrics(settings, mconf, history, best, baseline, families, train_set, val_set, tokenizer)
        if world.is_main:
            write_files_atomic({out / "metrics.json": json_bytes(metrics), out / "metrics.csv": _csv(history).encode(),
                                out / META: json_bytes({**metrics, "weights": WEIGHTS})})
        return metrics
    finally:
        teardown()


def evaluate(model, val_set, block: int, device, limit: int | None = None) -> dict:
    """Mean cross-entropy per family over the validation pieces' windows (each token once)."""
    import torch

    from kelly.transformer import data as tdata

    model.eval()
    total = None
    count = 0
    with torch.no_grad():
        for i, (win, emo) in enumerate(tdata.ordered_windows(val_set, block)):
            if limit is not None and i >= limit:
                break
            xb = torch.from_numpy(win[None]).to(device)
            eb = torch.from_numpy(np.asarray(emo, dtype=np.float32)[None]).to(device)
            _, _, family = model(xb[:, :-1], eb, targets=xb[:, 1:], return_family_losses=True)
            n = int((xb[:, 1:, 0] != 0).sum())
            sums = family.detach().cpu().double() * n
            total = sums if total is None else total + sums
            count += n
    fam = (total / max(1, count)).tolist() if total is not None else []
    return {"loss": float(np.mean(fam)) if fam else float("nan"), "families": fam, "tokens": count}


def _weights_bytes(model, mconf) -> bytes:
    """``transformer.pt``: the model's config and CPU weights (what :mod:`kelly.transformer.composer` loads)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"format": "kelly-transformer", "version": 1, "config": mconf.to_dict(),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, buf)
    return buf.getvalue()


def _metrics(settings, mconf, history, best, baseline, families, train_set, val_set, tokenizer) -> dict:
    fam = best.get("families") or []
    per_family = {n: {"model_ce": round(m, 4), "unigram_ce": round(u, 4), "model_ppl": round(math.exp(m), 3),
                      "unigram_ppl": round(math.exp(u), 3)} for n, m, u in zip(families, fam, baseline)}
    return {"settings": asdict(settings), "model": mconf.to_dict(), "best_step": best.get("step"),
            "val_loss": best.get("val_loss"), "unigram_loss": float(np.mean(baseline)), "families": per_family,
            "train_pieces": len(train_set), "train_tokens": train_set.n_tokens, "val_pieces": len(val_set),
            "val_tokens": val_set.n_tokens, "steps": history[-1]["step"] if history else 0,
            "minutes": history[-1]["minutes"] if history else 0.0, "tokenizer_sizes": list(tokenizer.sizes),
            "history": history}


def _csv(history: list[dict]) -> str:
    if not history:
        return ""
    keys = list(history[0])
    return "\n".join([",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in history]) + "\n"


def _cached_data(corpus: Path, out: Path, tokenizer, collections, log) -> dict:
    """Token sets of the corpus, cached in ``out/data`` (rebuilt when the tokenizer or collections change)."""
    from kelly.transformer import data as tdata

    folder = out / "data"
    stamp = json.dumps({"sizes": list(tokenizer.sizes), "collections": list(collections),
                        "corpus": str(corpus.resolve())}, sort_keys=True)
    stamp_file = folder / "stamp.json"
    if stamp_file.exists() and stamp_file.read_text(encoding="utf-8") == stamp:
        return {s: tdata.TokenSet.load(folder / f"{s}.npz", len(tokenizer.sizes)) for s in tdata.SPLITS}
    if log:
        log(f"tokenizing the corpus in {corpus} ({', '.join(collections)}) ...")
    sets = tdata.build_from_corpus(corpus, tokenizer, collections=collections)
    folder.mkdir(parents=True, exist_ok=True)
    for s, ts in sets.items():
        ts.save(folder / f"{s}.npz")
    from kelly.fileio import write_text_atomic

    write_text_atomic(stamp_file, stamp)
    if log:
        log("  " + ", ".join(f"{s}: {len(ts)} pieces, {ts.n_tokens:,} tokens" for s, ts in sets.items()))
        for reason, n in (sets["train"].skipped or {}).items():
            log(f"  left out {n} piece(s): {reason}")
    return sets
