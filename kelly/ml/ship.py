"""Turn a finished ``kelly train`` run into the weights Kelly ships, with their model card.

Maintainers run it once after training (docs/training.md, "Shipping weights")::

    python -m kelly.ml.ship --run build/train --to kelly/assets

For each network it reads the run's RTNeural JSON and training sidecar, measures the
network on the held-out test split (:func:`kelly.ml.evaluate.test_metrics`), and writes

* ``<to>/models/<key>.npz``: the weights, packed (:mod:`kelly.ml.packed`; the same
  numbers as the JSON, a third of its size);
* ``<to>/models/<key>.meta.json``: the export sidecar (schema version, output names and
  ranges, chord table, SHA-256 of the ``.npz``) plus the training provenance and the
  validation and test metrics beside the trivial baseline;

and then ``<to>/MODEL_CARD.md`` from those sidecars and the recognizer's quadrant check
on held-out audio (:func:`kelly.ml.evaluate.recognizer_quadrants`). Every file is
written atomically. ``kelly models`` reads the sidecars back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from kelly.errors import InputError, KellyError
from kelly.fileio import json_bytes, write_files_atomic
from kelly.ml.specs import MODEL_KEYS, SPECS

#: Sidecar fields copied from the training run's sidecar into the shipped one.
TRAINING_FIELDS = ("data", "epochs_run", "best_epoch", "stopped_early", "loss", "metrics", "baseline", "n_train",
                   "n_val", "world_size", "seed", "config", "config_sha256", "torch_version")


def ship_model(key: str, run_dir: Path, to_dir: Path, *, data_dir: Path | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pack one trained network from ``run_dir`` into ``to_dir/models``; returns its sidecar."""
    from kelly.ml import packed
    from kelly.ml.evaluate import test_metrics
    from kelly.ml.export import sidecar
    from kelly.ml.runtime import parse_model_json, read_model_file
    from kelly.ml.train.config import collection_set

    spec = SPECS[key]
    json_path = run_dir / spec.file_name
    meta_path = run_dir / f"{key}.meta.json"
    if not json_path.is_file() or not meta_path.is_file():
        raise InputError(f"{run_dir} has no trained {key} ({spec.file_name} and {key}.meta.json): run kelly train first")
    train_meta = json.loads(meta_path.read_text())
    raw = read_model_file(json_path)
    if hashlib.sha256(raw).hexdigest() != train_meta.get("model_sha256"):
        raise InputError(f"{json_path} does not match its sidecar's model_sha256 (an interrupted publish?)")
    if train_meta.get("data") != "corpus":
        raise InputError(f"{key} in {run_dir} was trained on {train_meta.get('data')!r} data: only weights trained "
                         "on real data are shipped")
    blob = packed.pack(parse_model_json(raw, name=json_path.name))
    config = train_meta.get("config", {})
    test = test_metrics(key, run_dir, data_dir=data_dir, seq_len=int(config.get("seq_len", 32)),
                        collections=collection_set(config.get("collections", "all")))
    meta = sidecar(key, "", seed=int(train_meta.get("seed", 0)), trained=True,
                   provenance=f"trained by kelly train on {config.get('collections', 'all')} (docs/data.md)")
    meta["file"] = packed.packed_name(spec.file_name)
    meta["format"] = "kelly-packed-npz"
    meta["sha256"] = hashlib.sha256(blob).hexdigest()
    meta["rtneural_json_sha256"] = train_meta.get("model_sha256")
    meta["training"] = {k: train_meta[k] for k in TRAINING_FIELDS if k in train_meta}
    meta["test"] = test
    meta["shipped"] = time.strftime("%Y-%m-%d", time.gmtime())
    meta.update(extra or {})
    models = to_dir / "models"
    write_files_atomic({models / f"{key}.meta.json": json_bytes(meta), models / meta["file"]: blob}, overwrite=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kelly.ml.ship", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the kelly train --out folder")
    parser.add_argument("--to", default=str(Path(__file__).resolve().parent.parent / "assets"),
                        help="where models/ and MODEL_CARD.md go (default: kelly/assets)")
    parser.add_argument("--data-dir", default=None, help="the training data folder (default: build/corpus)")
    parser.add_argument("--models", default="all", help="all or comma-separated model keys")
    parser.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md from the shipped sidecars")
    args = parser.parse_args(argv)
    try:
        from kelly.ml.card import write_card
        from kelly.ml.evaluate import recognizer_quadrants

        run, to = Path(args.run), Path(args.to)
        keys = MODEL_KEYS if args.models == "all" else tuple(SPECS[k.strip()].key for k in args.models.split(","))
        data_dir = None if args.data_dir is None else Path(args.data_dir)
        if not args.card_only:
            for key in keys:
                extra = {}
                if key == "emotionrecognizer":
                    extra["quadrants"] = {}
                    for folder in ("audio", "audio-timgm"):
                        q = recognizer_quadrants(run, data_dir=data_dir, folder=folder)
                        q.pop("pieces")  # the per-piece list stays out of the sidecar (kept small)
                        extra["quadrants"][folder] = q
                meta = ship_model(key, run, to, data_dir=data_dir, extra=extra)
                print(f"{key}: {meta['file']} ({meta['sha256'][:12]}) test {meta['test']['model']}")
        print(write_card(to))
    except (KellyError, KeyError) as exc:
        print(f"kelly: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
