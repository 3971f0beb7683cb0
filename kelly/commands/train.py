"""``kelly train``: train the five networks and write them where the composer finds them.

Heavy imports (torch) happen inside the handler, so listing this module in the CLI costs
nothing. Under ``torchrun --nproc_per_node N -m kelly train …`` every process runs this
handler; only rank 0 prints and writes. See docs/training.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from kelly.commands.options import add_force, seed_arg
from kelly.errors import InputError, ModelError

#: Inside ``--out``: checkpoints and metrics of each network's run.
RUNS_DIR = "runs"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train the networks (checkpoints, metrics, RTNeural JSON); needs torch",
        description="Train Kelly's networks and write each one's RTNeural JSON and a metadata sidecar into "
                    "--out (checkpoints and metrics under OUT/runs/<model>/). Settings come from the shipped "
                    "defaults, then --config FILE, then the flags below. Run under torchrun for several "
                    "processes: torchrun --nproc_per_node 2 -m kelly train ...")
    p.add_argument("--models", default="all", metavar="all|NAME,...",
                   help="networks to train: all (default) or comma-separated names, e.g. dynamicsengine,"
                        "groovepredictor")
    p.add_argument("--config", metavar="FILE", help="TOML settings file ([defaults] and [<model>] sections)")
    p.add_argument("--data", choices=("corpus", "synthetic"), default="corpus",
                   help="corpus: the real datasets (kelly.ml.data; default); synthetic: a random function, "
                        "for testing the machinery only")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the corpus data (default: the corpus's own)")
    p.add_argument("--epochs", type=int, metavar="N", help="most epochs (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, metavar="N", help="global batch size")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), help="where to train (default auto)")
    p.add_argument("--seed", type=seed_arg, help="seed for weights, shuffling and synthetic data")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--resume", action="store_true",
                   help="continue each network's run from OUT/runs/<model>/last.pt (a finished run is kept)")
    add_force(p, help="start afresh over an existing run and replace its files")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=cmd_train)


def parse_models(text: str) -> tuple[str, ...]:
    """``all`` or comma-separated model names → model keys (unknown names are an InputError)."""
    from kelly.ml.specs import MODEL_KEYS, get_spec

    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise InputError(f"--models: give all or model names; known models: {', '.join(MODEL_KEYS)}")
    if [p.lower() for p in parts] == ["all"]:
        return MODEL_KEYS
    return tuple(dict.fromkeys(get_spec(part).key for part in parts))


def cmd_train(args: argparse.Namespace) -> int:
    from kelly.ml.train.config import load_configs

    models = parse_models(args.models)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "device": args.device,
                 "seed": args.seed}
    configs = load_configs(args.config, overrides=overrides, models=models)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise InputError(f"--data-dir {args.data_dir}: no such folder")
    if args.data == "synthetic" and args.data_dir is not None:
        raise InputError("--data-dir is for --data corpus; synthetic data is generated, not read")
    try:
        importlib.import_module("torch")
    except ImportError as exc:
        raise ModelError(f"training needs torch (pip install 'kelly[ml]'): {exc}") from None
    from kelly.fileio import check_destinations
    from kelly.ml.train import distributed
    from kelly.ml.train.data import corpus_entry_point, load_datasets
    from kelly.ml.train.loop import train_model
    from kelly.ml.train.artifacts import publish, published_names

    world = distributed.world_from_env()
    for key in models:  # a missing GPU is reported before any training starts
        distributed.resolve_device(configs[key].device, world)
    if args.data == "corpus":
        corpus_entry_point()  # "the corpus datasets are not built yet" before anything else
    out = Path(args.out)
    replace = args.force or args.resume
    for key in models:  # every file a finished run writes, checked before any training
        if not args.resume and not args.force and (out / RUNS_DIR / key / "last.pt").exists():
            raise InputError(f"{out / RUNS_DIR / key} already holds a training run of {key}; use --resume to "
                             "continue it or --force to start afresh")
        check_destinations([out / name for name in published_names(key)], overwrite=replace)
    if args.data == "synthetic" and world.is_main:
        print("kelly: note: --data synthetic trains on a random function of random inputs, to test the "
              "training machinery; the weights know nothing about music", file=sys.stderr)

    results = []
    try:
        for key in models:
            config = configs[key]
            train, val = load_datasets(key, args.data, config=config, data_dir=args.data_dir)
            result = train_model(key, train, val, config, out / RUNS_DIR / key, resume=args.resume,
                                 progress=not args.quiet, overwrite=args.force)
            if world.is_main:
                written = publish(result, out, data=args.data, data_dir=args.data_dir, overwrite=replace)
                results.append((result, written))
    finally:
        distributed.teardown()
    if world.is_main:
        for result, written in results:
            metric = result.metric_name
            print(f"{result.key}: val {result.best_val_loss:.4g} (baseline {result.baseline['loss']:.4g}), "
                  f"{metric} {result.best_metrics[metric]:.3g} (baseline {result.baseline[metric]:.3g}) "
                  f"-> {written[-1]}")
    return 0
