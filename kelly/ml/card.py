"""``kelly/assets/MODEL_CARD.md``, written from the shipped sidecars (never by hand).

Every number in the card comes from a ``<key>.meta.json`` that :mod:`kelly.ml.ship`
wrote: training provenance, validation and test metrics beside the trivial baseline,
and the recognizer's quadrant confusion matrices. What each network reads and learns is
the fixed text below (the same facts as docs/ml.md and kelly/ml/data/training.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kelly.fileio import write_text_atomic
from kelly.ml.evaluate import AXIS_MARGIN
from kelly.ml.specs import MODEL_KEYS, SPECS

#: What each network reads and is trained to produce (one line each).
WHAT = {
    "emotionrecognizer": ("one 128-bin log-mel frame per step (22,050 Hz, n_fft 2048, hop 512, Slaney mels "
                          "30–11,025 Hz, dB re 1.0 normalised to [0, 1]; kelly/emotion/audio.py), LSTM state "
                          "carried frame to frame",
                          "the 64-d emotion embedding of the piece's label (kelly.ml.schema.embed_vad; reserved "
                          "dims 43–62 masked), every frame"),
    "melodytransformer": ("the 64-d emotion embedding, one step per bar, LSTM state carried bar to bar",
                          "the pitches sounding in that bar, transposed to the key of C (128 independent "
                          "probabilities)"),
    "harmonypredictor": ("harmony context: embedding ‖ 64 low mel bins (zeros without audio)",
                         "the piece's distribution over the 64 chord classes, relative to the tonic"),
    "dynamicsengine": ("embedding[0:32] (V, A, D, intensity, family, quadrant, musical hints)",
                       "16 expression parameters measured from the MIDI, masked where the file cannot tell "
                       "(notated scores have no performed dynamics or timing)"),
    "groovepredictor": ("the 64-d emotion embedding",
                        "32 groove parameters measured from the MIDI (drums, timing, accents), masked where "
                        "the file cannot tell"),
}


AXIS_NOTE = f"{AXIS_MARGIN:g}"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _metric_rows(meta: dict) -> list[str]:
    rows = []
    tr = meta.get("training", {})
    test = meta.get("test", {})
    val, base = tr.get("metrics", {}), tr.get("baseline", {})
    names = ["loss"] + [k for k in test.get("model", {}) if k != "loss"]
    for name in names:
        v = val.get("val_loss" if name == "loss" else name)
        rows.append(f"| {name} | {_fmt(v)} | {_fmt(base.get(name))} | {_fmt(test.get('model', {}).get(name))} | "
                    f"{_fmt(test.get('baseline', {}).get(name))} |")
    return rows


def _confusion(q: dict) -> list[str]:
    labels = q["labels"]
    lines = ["| label \\ heard | " + " | ".join(labels) + " | recall |", "|---|" + "---:|" * (len(labels) + 1)]
    for i, row in enumerate(q["confusion"]):
        total = sum(row)
        recall = f"{row[i] / total:.0%}" if total else "–"
        lines.append(f"| **{labels[i]}** | " + " | ".join(str(v) for v in row) + f" | {recall} |")
    return lines


def render_card(metas: dict[str, dict]) -> str:
    """The card's Markdown for the sidecars ``metas`` (model key → sidecar)."""
    out = ["# Kelly's networks: model card", "",
           "Written by `python -m kelly.ml.ship` from the sidecars in `kelly/assets/models/` "
           "(do not edit by hand). `kelly models` shows the same provenance for whatever weights are found.", ""]
    any_meta = next(iter(metas.values()), {})
    cfg = any_meta.get("training", {}).get("config", {})
    out += ["## Data", "",
            f"Collections: `{cfg.get('collections', '?')}` (docs/data.md). music21's corpus converted to MIDI "
            "(Bach chorales, O'Neill, Ryan, Aird, Palestrina; Essen is left out of shipped weights because its "
            "licence is non-commercial) with **weak labels** (valence from mode, arousal from tempo, note "
            "density and metre, dominance a constant 0.5), and pieces Kelly composed for 95 named emotions × 8 "
            "seeds with **exact labels**, rendered with FluidSynth and FluidR3_GM for the recognizer: every "
            "training piece twice, as composed and re-orchestrated with random General MIDI programs "
            "(`render --remap`), each window at a random level (±8 dB) and spectral tilt (±6.4 dB), so that "
            "the instruments Kelly picks for an emotion carry no label.",
            "",
            "Split: by piece, from a CRC-32 of the piece's group (`kelly.ml.data.split`): 80 % train, 10 % "
            "validation, 10 % test. Kelly's composed pieces are grouped by emotion, so the test emotions were "
            "never heard or seen in training. Validation picks the epoch (early stopping, patience "
            f"{cfg.get('patience', '?')}, min delta {cfg.get('min_delta', '?')}); the test split is touched only "
            "here.", "",
            "Baseline: predict the training set's mean target for every item (same loss and metric code).", ""]
    out += ["## The networks", ""]
    for key in MODEL_KEYS:
        meta = metas.get(key)
        spec = SPECS[key]
        out.append(f"### {spec.name} (`{key}`, {spec.params:,} parameters)")
        out.append("")
        if meta is None:
            out += ["Not shipped: the composer uses its fallback heuristic.", ""]
            continue
        inp, target = WHAT[key]
        tr = meta.get("training", {})
        out += [f"- **Input**: {inp}.", f"- **Target**: {target}.",
                f"- **Trained**: {tr.get('epochs_run')} epochs (best {tr.get('best_epoch')}"
                + (", stopped early" if tr.get("stopped_early") else "")
                + f"), loss {tr.get('loss')}, {tr.get('n_train'):,} train / {tr.get('n_val'):,} validation items, "
                f"{meta.get('test', {}).get('n_test', 0):,} test items, seed {tr.get('seed')}.",
                f"- **File**: `{meta.get('file')}` (sha256 `{meta.get('sha256', '')[:16]}…`).", "",
                "| metric | validation | baseline (val) | test | baseline (test) |", "|---|---:|---:|---:|---:|"]
        out += _metric_rows(meta)
        out.append("")
        for folder, q in (meta.get("quadrants") or {}).items():
            sf = "FluidR3_GM (the soundfont it trained on)" if folder == "audio" else \
                "TimGM6mb (a soundfont it never heard)"
            axis = q.get("on_axis") or {}
            apart = ""
            if axis.get("n"):
                apart = (f" Counted apart: {axis['n']} pieces whose label lies on an axis "
                         f"({', '.join(axis['emotions'])}: valence within {AXIS_NOTE} of 0 or arousal within "
                         f"{AXIS_NOTE} of 0.5, so no quadrant is right), {axis['correct']} of them read on the "
                         f"label's side; all {q['n'] + axis['n']} pieces together: "
                         f"{(q['correct'] + axis['correct']) / (q['n'] + axis['n']):.1%}.")
            out += [f"Valence/arousal quadrant of the **test** pieces (emotions never trained on) rendered with "
                    f"{sf}, heard through `kelly feel --audio` (overall reading = median of the per-second "
                    f"readings): **{q['accuracy']:.1%}** ({q['correct']} of {q['n']}).{apart}", ""]
            out += _confusion(q)
            out.append("")
    out += ["## Limits", "",
            "- The corpus labels are proxies (docs/data.md, \"Weak labels\"): they say what mode, tempo and density "
            "a piece has, not what a listener feels. Dominance is never supervised by the corpus.",
            "- The composed pieces teach Kelly's own mapping from emotion to music; the recognizer's accuracy on "
            "them says it hears that mapping, not that it reads emotion in any recording.",
            "- Groove and expression targets exist only where MIDI can show them (drum parts, performed timing, "
            "dynamics): most corpus pieces supervise a few of the 48 outputs; the rest come from Kelly's pieces.",
            ""]
    return "\n".join(out)


def load_metas(to_dir: Path) -> dict[str, dict]:
    metas = {}
    for key in MODEL_KEYS:
        path = Path(to_dir) / "models" / f"{key}.meta.json"
        if path.is_file():
            metas[key] = json.loads(path.read_text())
    return metas


def write_card(to_dir: str | Path) -> Path:
    """Write ``<to_dir>/MODEL_CARD.md`` from ``<to_dir>/models/*.meta.json``; returns its path."""
    to_dir = Path(to_dir)
    return write_text_atomic(to_dir / "MODEL_CARD.md", render_card(load_metas(to_dir)))


__all__ = ["render_card", "write_card", "load_metas", "WHAT"]
