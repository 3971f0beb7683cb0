"""Ship a trained transformer: ``python -m kelly.transformer.ship --run build/transformer-small``.

Exports the run's best weights to ONNX into ``kelly/assets/models/transformer`` (what
``kelly compose --composer transformer`` runs, without torch), measures them on the held-out
test split against the unigram baseline, and writes ``transformer.meta.json`` (shape,
tokens, training, metrics, SHA-256 of each file) and ``MODEL_CARD.md`` beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

from kelly.transformer.composer import SHIPPED


def ship(run: Path, dest: Path = SHIPPED) -> dict:
    import numpy as np
    import torch

    from kelly.fileio import write_json_atomic, write_text_atomic
    from kelly.transformer.composer import load_weights
    from kelly.transformer.data import TokenSet
    from kelly.transformer.onnx import export_onnx
    from kelly.transformer.tokens import FAMILIES, CompoundTokenizer
    from kelly.transformer.train import evaluate, unigram_losses

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    model = load_weights(run / "transformer.pt")
    dest.mkdir(parents=True, exist_ok=True)
    files = export_onnx(model, dest)
    tk = CompoundTokenizer()
    train = TokenSet.load(run / "data" / "train.npz", len(tk.sizes))
    test = TokenSet.load(run / "data" / "test.npz", len(tk.sizes))
    torch.set_num_threads(2)
    ev = evaluate(model, test, model.config.block_size, torch.device("cpu"))
    uni = unigram_losses(train, test, tk.sizes)
    test_families = {n: {"model_ppl": round(math.exp(m), 3), "unigram_ppl": round(math.exp(u), 3)}
                     for n, m, u in zip(FAMILIES, ev["families"], uni)}
    meta = {
        "model": model.config.to_dict(), "parameters": int(sum(p.numel() for p in model.parameters())),
        "tokenizer_sizes": list(tk.sizes), "families": list(FAMILIES),
        "files": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files},
        "settings": metrics["settings"], "minutes": metrics["minutes"], "steps": metrics["steps"],
        "best_step": metrics["best_step"], "train_pieces": metrics["train_pieces"],
        "train_tokens": metrics["train_tokens"], "validation": {"loss": metrics["val_loss"],
                                                                 "unigram": metrics["unigram_loss"],
                                                                 "families": metrics["families"]},
        "test": {"pieces": len(test), "tokens": ev["tokens"], "loss": ev["loss"], "unigram": float(np.mean(uni)),
                 "families": test_families},
    }
    write_json_atomic(dest / "transformer.meta.json", meta)
    write_text_atomic(dest / "MODEL_CARD.md", card(meta))
    return meta


def card(meta: dict) -> str:
    m, s = meta["model"], meta["settings"]
    size = sum((SHIPPED / name).stat().st_size for name in meta["files"]) / 1e6 if SHIPPED.exists() else 0.0
    rows = "\n".join(f"| {n} | {f['model_ppl']:.2f} | {f['unigram_ppl']:.2f} |"
                     for n, f in meta["test"]["families"].items())
    return f"""# Model card: Kelly's compound-word transformer

What it is: a decoder-only transformer over compound-word tokens (`docs/transformer.md`): each step is one
row of {len(meta['families'])} token families ({', '.join(meta['families'])}); per-family embeddings, the
emotion (valence, arousal, dominance) projected and added at every step, type-first prediction then heads that
read the row chosen so far. {m['n_layer']} layers × {m['n_embd']} wide, {m['n_head']} heads, a context of
{m['block_size']} steps (longer pieces continue with a sliding window); {meta['parameters']:,} parameters,
shipped as ONNX (`step.onnx` with the key/value cache as inputs and outputs, `heads.npz`), {size:.1f} MB,
run by onnxruntime without torch.

Data: the corpus of the five networks (`docs/data.md`): Kelly's own pieces (95 emotions × 8 seeds, labelled
exactly) and music21's Bach, O'Neill, Ryan, Aird and Palestrina collections with weak labels (mode, tempo,
density); Essen left out for its licence. Split by piece (`kelly.ml.data.split`): {meta['train_pieces']:,}
training pieces ({meta['train_tokens']:,} tokens); test figures below are on {meta['test']['pieces']:,} pieces
never trained on.

Training: `kelly transformer train --config small` on 2 CPU cores: {meta['steps']} steps of
{s['batch_size']} windows × {s['block_size']} tokens, AdamW, peak learning rate {s['lr']}, cosine decay,
{meta['minutes']:.1f} minutes; best validation loss {meta['validation']['loss']:.3f} nats (unigram
{meta['validation']['unigram']:.3f}) at step {meta['best_step']}.

Test perplexity per family (lower is better), against the unigram baseline (each family's value frequencies
in the training tokens); mean cross-entropy {meta['test']['loss']:.3f} vs {meta['test']['unigram']:.3f} nats:

| family | model | unigram |
|---|---:|---:|
{rows}

Limits: two thirds of the data are folk tunes and chorales with weak labels, so valence and arousal steer
style more than the rule engines' exact mapping does; the emotion control is measured in
`benchmarks/results.md` (a judge trained on the labelled corpus reads the quadrant of generated pieces). By
default it writes in the rule engines' orchestration, metre and tempo for the emotion (rules for structure);
the hybrid composer uses it only for the melody, within the rule engines' harmony.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, type=Path, help="a kelly transformer train --out folder")
    args = ap.parse_args(argv)
    meta = ship(args.run)
    print(json.dumps(meta["test"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
