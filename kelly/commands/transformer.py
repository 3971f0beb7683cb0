"""``kelly transformer``: train the compound-word transformer, and generate with it.

``kelly transformer train`` (torch) trains on the corpus (``python -m kelly.ml.data``) or,
with ``--data composed``, on a few pieces Kelly composes on the spot; ``kelly transformer
generate`` writes a MIDI file for an emotion with the shipped model (onnxruntime, no
torch) or one from ``--model DIR``. See ``docs/transformer.md``.
"""

from __future__ import annotations

import argparse
import sys

from kelly.commands.options import seed_arg
from kelly.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("transformer", help="train the emotion-conditioned transformer, or generate with it",
                       description="The compound-word transformer: a second composer (docs/transformer.md).")
    tsub = p.add_subparsers(dest="transformer_command", metavar="ACTION")
    t = tsub.add_parser("train", help="train (or resume) a transformer; needs torch",
                        description="Train the transformer. Settings: a section of kelly/transformer/default.toml "
                                    "(--config tiny|small|large, or --config-file FILE with sections), then --set "
                                    "KEY=VALUE. Checkpoints, metrics and the weights go to --out; running it again "
                                    "resumes from the last checkpoint.")
    t.add_argument("--config", default="small", help="section of the config file (tiny, small, large)")
    t.add_argument("--config-file", metavar="FILE", help="a TOML file with sections (default: the shipped one)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    t.add_argument("--data", choices=("corpus", "composed"), default="corpus",
                   help="corpus: the corpus folder (default); composed: a few pieces composed now (tests, demos)")
    t.add_argument("--corpus", metavar="DIR", help="the corpus folder (default $KELLY_DATA_DIR or build/corpus)")
    t.add_argument("--out", required=True, metavar="DIR", help="output folder (resumed when it has a checkpoint)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start again")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _overrides(pairs: list[str]) -> dict:
    import tomllib

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {pair!r}: write KEY=VALUE, e.g. --set steps=500")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def run_train(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError(f"training needs torch (pip install 'kelly[ml]'): {exc}") from None
    from kelly.transformer.train import load_settings, train

    settings = load_settings(args.config, args.config_file, _overrides(args.set))
    data = None
    corpus = None
    if args.data == "composed":
        from kelly.transformer.data import composed_pieces
        from kelly.transformer.tokens import CompoundTokenizer

        data = composed_pieces(CompoundTokenizer())
    else:
        from kelly.ml.data.store import data_dir

        corpus = data_dir(args.corpus)
        if not (corpus / "manifest.jsonl").exists() and not (corpus / "composed.jsonl").exists():
            raise InputError(f"no corpus in {corpus}: build it with `python -m kelly.ml.data` (docs/data.md), or "
                             "train on a few composed pieces with --data composed")
    metrics = train(settings, args.out, data=data, corpus=corpus, resume=not args.fresh,
                    log=lambda line: print(line, file=sys.stderr))
    fams = metrics["families"]
    print(f"best validation loss {metrics['val_loss']:.3f} at step {metrics['best_step']} "
          f"(unigram baseline {metrics['unigram_loss']:.3f}); weights in {args.out}/transformer.pt")
    for name, f in fams.items():
        print(f"  {name:<10} perplexity {f['model_ppl']:>8.2f}  unigram {f['unigram_ppl']:>8.2f}")
    return 0
