"""``kelly transformer``: train the compound-word transformer, and generate with it.

``kelly transformer train`` (torch) trains on the corpus (``python -m kelly.ml.data``) or,
with ``--data composed``, on a few pieces Kelly composes on the spot; ``kelly transformer
generate`` writes a MIDI file for an emotion with the shipped model (onnxruntime, no
torch) or one from ``--model DIR``. See ``docs/transformer.md``.
"""

from __future__ import annotations

import argparse
import os
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
    g = tsub.add_parser("generate", help="write a MIDI file for an emotion with the transformer",
                        description="Sample a piece from the transformer for an emotion: exactly --bars bars in the "
                                    "metre and tempo the emotion maps to. Runs on onnxruntime with the shipped model "
                                    "(no torch), or with --model DIR.")
    g.add_argument("--valence", type=float, help="-1 (unpleasant) … 1 (pleasant)")
    g.add_argument("--arousal", type=float, help="0 (calm) … 1 (excited)")
    g.add_argument("--dominance", type=float, help="0 (overwhelmed) … 1 (in control); default from the emotion")
    g.add_argument("--text", nargs="+", metavar="TEXT", help="how you feel, in words (V/A/D given also override it)")
    g.add_argument("--bars", type=int, default=8, help="bars to write (default 8)")
    g.add_argument("--temperature", default="0.8",
                   help="sampling temperature (default 0.8): a number, or per family, e.g. "
                        "pitch=0.7,duration=0.6,default=0.9 (0 is greedy)")
    g.add_argument("--top-k", type=int, default=None, help="keep the K most likely values")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (default 0.95; 1 turns it off)")
    g.add_argument("--seed", type=seed_arg, default=0)
    g.add_argument("--model", metavar="DIR", help="a folder with step.onnx or transformer.pt (default: shipped)")
    g.add_argument("--out", required=True, metavar="FILE.mid", help="the MIDI file to write (and FILE.json)")
    g.add_argument("--force", action="store_true", help="replace existing files")
    g.set_defaults(func=run_generate)
    e = tsub.add_parser("export", help="export trained weights (transformer.pt) to ONNX for onnxruntime",
                        description="Write step.onnx and heads.npz (what generate and kelly compose --composer "
                                    "transformer run) from a transformer.pt.")
    e.add_argument("--model", required=True, metavar="DIR", help="the kelly transformer train --out folder")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the ONNX files")
    e.set_defaults(func=run_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _state(args):
    from kelly.emotion.state import EmotionState

    if args.text:
        from kelly.emotion.text import read_text

        state = read_text(" ".join(args.text))
    elif args.valence is None or args.arousal is None:
        raise InputError("give --valence and --arousal (and --dominance), or --text")
    else:
        from kelly.emotion.thesaurus import load_thesaurus

        entry = load_thesaurus().nearest(args.valence, args.arousal, args.dominance)
        state = EmotionState(label=entry.name, family=entry.family, valence=max(-1.0, min(1.0, args.valence)),
                             arousal=max(0.0, min(1.0, args.arousal)),
                             dominance=entry.dominance if args.dominance is None else args.dominance,
                             source="explicit")
    return state.with_overrides(valence=args.valence, arousal=args.arousal, dominance=args.dominance)


def run_generate(args: argparse.Namespace) -> int:
    from kelly.commands.compose import write_composition
    from kelly.composer import ComposeOptions, check_options
    from kelly.transformer.composer import TransformerComposer, parse_temperature

    for name in ("valence", "arousal", "dominance"):
        v = getattr(args, name)
        lo = -1.0 if name == "valence" else 0.0
        if v is not None and not lo <= v <= 1.0:
            raise InputError(f"--{name} must be between {lo:g} and 1, got {v:g}")
    opts = ComposeOptions(bars=args.bars, seed=args.seed)
    check_options(opts)
    state = _state(args)
    composer = TransformerComposer(model=args.model, temperature=parse_temperature(args.temperature),
                                   top_k=args.top_k, top_p=None if args.top_p == 1 else args.top_p)
    result = composer.compose(state, opts)
    result.explanation.text = " ".join(args.text) if args.text else None
    midi = write_composition(result, args.out, "transformer", flag="--out", force=args.force)
    ex = result.explanation
    info = ex.engines["composer"]
    print(f"wrote {midi} ({ex.bars} bars of {state.label}: V {state.valence:+.2f} A {state.arousal:.2f} "
          f"D {state.dominance:.2f}; {info['tokens']} tokens; {sum(p.notes for p in ex.parts)} notes in "
          f"{len(ex.parts)} parts) with {info['model']}")
    if info.get("repairs"):
        print("repaired: " + "; ".join(info["repairs"][:5]), file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kelly.transformer.composer import load_weights
    from kelly.transformer.onnx import export_onnx

    src = Path(args.model) / "transformer.pt"
    if not src.exists():
        raise InputError(f"no transformer.pt in {args.model} (train one with kelly transformer train)")
    files = export_onnx(load_weights(src), args.out)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


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
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    fams = metrics["families"]
    print(f"best validation loss {metrics['val_loss']:.3f} at step {metrics['best_step']} "
          f"(unigram baseline {metrics['unigram_loss']:.3f}); weights in {args.out}/transformer.pt")
    for name, f in fams.items():
        print(f"  {name:<10} perplexity {f['model_ppl']:>8.2f}  unigram {f['unigram_ppl']:>8.2f}")
    return 0
