"""Ship a trained DDSP voice: ``python -m kelly.ddsp.ship --run build/ddsp-small``.

Measures the run's best weights (:mod:`kelly.ddsp.evaluate`: f0 tracking, resynthesis of
the held-out segments against the fixed-envelope baseline, the emotion sweep), writes
the voice (``ddsp.json``, ``ddsp.onnx``, ``ddsp.meta.json`` with those figures) into
``kelly/assets/models/ddsp`` and a ``MODEL_CARD.md`` beside it, then validates it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kelly.ddsp.voice import SHIPPED_VOICE

MAX_SHIPPED_BYTES = 10 * 1024 * 1024


def ship(run: Path, dest: Path = SHIPPED_VOICE) -> dict:
    from kelly.ddsp import data as ddata
    from kelly.ddsp.decoder import NumpyDecoder
    from kelly.ddsp.evaluate import emotion_sweep, f0_accuracy, resynthesis
    from kelly.ddsp.export import JSON_NAME, validate, write_voice
    from kelly.errors import ModelError
    from kelly.fileio import write_text_atomic

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    write_voice(run / "ddsp.pt", run, metrics=metrics)  # the run's own files, to measure before shipping
    decoder = NumpyDecoder((run / JSON_NAME).read_bytes())
    segments = ddata.load(run / "data.npz")
    metrics["evaluation"] = {"f0": f0_accuracy(segments), "resynthesis": resynthesis(decoder, segments),
                             "emotion_sweep": emotion_sweep(decoder)}
    dest.mkdir(parents=True, exist_ok=True)
    files = write_voice(run / "ddsp.pt", dest, metrics=metrics,
                        provenance=f"kelly ddsp train --config small ({metrics['steps']} steps, "
                                   f"{metrics['minutes']:.1f} min on CPU)")
    size = sum(f.stat().st_size for f in files)
    if size > MAX_SHIPPED_BYTES:
        raise ModelError(f"the voice is {size / 1e6:.1f} MB; at most {MAX_SHIPPED_BYTES / 1e6:.0f} MB may ship")
    write_text_atomic(dest / "MODEL_CARD.md", card(metrics, decoder.param_count, size))
    bad = [c.line() for c in validate(dest) if not c.ok]
    if bad:
        raise ModelError("the shipped voice fails validation: " + "; ".join(bad))
    return metrics


def card(m: dict, params: int, size: int) -> str:
    s, d, ev = m["settings"], m["data"], m["evaluation"]
    rs, f0 = ev["resynthesis"], ev["f0"]
    v, b, o = rs["voice"], rs["baseline"], rs["baseline_matched"]
    sweep = "\n".join(
        f"| {axis} {rows[0]['value']:g} → {rows[-1]['value']:g} | {rows[0]['centroid_hz']:.0f} → "
        f"{rows[-1]['centroid_hz']:.0f} Hz | {rows[0]['noise_share_db']:.1f} → {rows[-1]['noise_share_db']:.1f} dB | "
        f"{rows[0]['tilt_db']:.1f} → {rows[-1]['tilt_db']:.1f} dB | {rows[0]['level_db']:.1f} → "
        f"{rows[-1]['level_db']:.1f} dB |"
        for axis, rows in ev["emotion_sweep"].items())
    lm = m["loudness_map"]
    return f"""# Model card: Kelly's DDSP voice

What it is: a DDSP decoder (`docs/ddsp.md`): per frame (100 a second) it reads the pitch, the A-weighted
loudness and the emotion (valence, arousal, dominance) and writes the controls of a 64-harmonic additive synth
and a 65-band filtered-noise synth. Dense 5→{s['hidden']} → dense → GRU {s['hidden']} → dense → 130 outputs,
{params:,} parameters; shipped as RTNeural JSON (`ddsp.json`, what Kelly renders with, on numpy), ONNX
(`ddsp.onnx`) and a sidecar (`ddsp.meta.json`), {size / 1e6:.1f} MB in all.

Data ({d['seconds']:.0f} s of audio, {d['segments']} segments: {d['train']} training, {d['validation']}
validation, {d['test']} test, split by a hash of each segment's name): Debian's `sound-icons` instrument
notes (GPL), music21's `test_audio.wav` (BSD), and notes rendered dry from the General MIDI soundfont on the
training machine (FluidR3_GM, MIT) for 15 programs (piano, strings, winds, brass, organ, pads, bass) at three
velocities. Emotion labels are timbre descriptors of each segment ranked among the training segments:
valence from the harmonic tilt, arousal from noisiness and brightness, dominance from level (`kelly.ddsp.data`).

Training: `kelly ddsp train --config small` on 2 CPU cores: {m['steps']} steps of {s['batch_size']} one-second
windows, Adam, learning rate {s['lr']} with warm-up and cosine decay, {m['minutes']:.1f} minutes; the multi-scale
spectral loss (FFT sizes 2048 to 64, linear and log magnitudes); best validation loss
{m['best']['val_loss']:.3f} at step {m['best']['step']}.

Velocity → loudness (fitted on the training notes): peak dB = {lm['c0']:.1f} + {lm['c1']:.1f}·velocity/127 +
{lm['c2']:.2f}·A-weighting(f0) ({lm['from']}).

Held-out resynthesis ({rs['segments']} test segments, from their own f0 and loudness), against a non-learned
baseline (1/k harmonics, loudness to amplitude by one gain fitted on training segments) and the same baseline
with its level matched to the recording frame by frame (an oracle for loudness):

| measure (lower is better) | voice | baseline | level-matched baseline |
|---|---:|---:|---:|
| multi-scale spectral loss | {v['spectral_loss']:.2f} | {b['spectral_loss']:.2f} | {o['spectral_loss']:.2f} |
| loudness L1 (dB) | {v['loudness_l1_db']:.2f} | {b['loudness_l1_db']:.2f} | {o['loudness_l1_db']:.2f} |
| f0 L1 (cents, frames voiced in both) | {v['f0_l1_cents']:.2f} | {b['f0_l1_cents']:.2f} | {o['f0_l1_cents']:.2f} |

Pitch tracking (pYIN) on {f0['notes']} soundfont notes of known pitch: {100 * f0['within']:.1f} % of
{f0['voiced_frames']:,} voiced frames within 50 cents.

Emotion (three notes held at −30 dB while one axis sweeps, the others neutral, as the renderer plays them:
dominance also moves the loudness input by ±4 dB; level A-weighted):

| axis | spectral centroid | noise share | harmonic tilt (3–10 vs 1–2) | level |
|---|---|---|---|---|
{sweep}

Limits: 12 minutes of mostly soundfont notes make a general, slightly synthetic voice rather than one
instrument's; its emotion labels are timbre descriptors, not listeners' judgements. Dominance's level comes
mostly from the renderer's ±4 dB (the decoder learned little level from the dominance label, which its loudness
input already carries). Its low notes are thinner than the soundfont's (less fundamental): a bass part sits a
few dB lower in RMS than in a FluidSynth render at the same velocities. No vibrato or pitch bends (the pitch is
the MIDI note's); the envelope at render time is Kelly's per-role shape, not learned.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, type=Path, help="a kelly ddsp train --out folder")
    args = ap.parse_args(argv)
    m = ship(args.run)
    print(json.dumps(m["evaluation"]["resynthesis"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
