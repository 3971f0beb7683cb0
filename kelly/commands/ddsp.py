"""``kelly ddsp``: train the DDSP voice, export and validate it, measure it.

``kelly ddsp train`` (torch) learns a timbre from recordings: the standard sources
(Debian's sound-icons, music21's test recording, notes rendered from the General MIDI
soundfont) and any ``--audio DIR``. ``kelly ddsp export`` writes the RTNeural JSON, ONNX
and sidecar from a trained ``ddsp.pt``; ``kelly ddsp validate`` checks a voice's files
against each other; ``kelly ddsp evaluate`` measures a voice on held-out notes against a
non-learned baseline. Rendering with a voice is ``kelly render --voice ddsp[:DIR]`` and
``kelly compose … --wav --voice ddsp``. See ``docs/ddsp.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kelly.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("ddsp", help="train, export, validate and measure the DDSP voice",
                       description="Kelly's DDSP voice: a learned timbre that renders MIDI and follows the emotion "
                                   "(docs/ddsp.md). Render with it: kelly render FILE.mid --voice ddsp.")
    dsub = p.add_subparsers(dest="ddsp_command", metavar="ACTION")
    t = dsub.add_parser("train", help="train (or resume) a DDSP voice; needs torch",
                        description="Train a voice. Settings: a section of kelly/ddsp/default.toml (--config "
                                    "tiny|small|large, or --config-file FILE), then --set KEY=VALUE. Running it again "
                                    "on the same --out resumes from the last checkpoint.")
    t.add_argument("--audio", action="append", default=[], metavar="DIR",
                   help="a folder of recordings (WAV, FLAC, OGG, AIFF) to learn from; repeat for more")
    t.add_argument("--no-standard", action="store_true",
                   help="learn only from --audio (not sound-icons, music21's recording and soundfont notes)")
    t.add_argument("--soundfont", metavar="SF2", help="the soundfont whose notes are rendered for training")
    t.add_argument("--config", default="small", help="section of the config file (tiny, small, large)")
    t.add_argument("--config-file", metavar="FILE", help="a TOML file with sections (default: the shipped one)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    t.add_argument("--out", required=True, metavar="DIR", help="output folder (resumed when it has a checkpoint)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start again")
    t.set_defaults(func=run_train)
    e = dsub.add_parser("export", help="write a voice's RTNeural JSON, ONNX and sidecar from ddsp.pt",
                        description="Write ddsp.json (RTNeural), ddsp.onnx and ddsp.meta.json for the ddsp.pt in "
                                    "--model (its metrics.json, when present, goes into the sidecar).")
    e.add_argument("--model", required=True, metavar="DIR", help="the kelly ddsp train --out folder")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the voice's files")
    e.add_argument("--force", action="store_true", help="replace existing files")
    e.set_defaults(func=run_export)
    v = dsub.add_parser("validate", help="check a voice's files against each other (torch, numpy, onnxruntime)",
                        description="Run random inputs through the voice's formats and compare; check its sidecar.")
    v.add_argument("voice", nargs="?", metavar="DIR", help="the voice folder (default: the shipped voice)")
    v.set_defaults(func=run_validate)
    m = dsub.add_parser("evaluate", help="measure a voice on held-out notes against a non-learned baseline",
                        description="Resynthesize the held-out (test) segments of a training data cache with the "
                                    "voice and with a fixed-envelope baseline, and sweep the emotion; prints JSON.")
    m.add_argument("--data", required=True, metavar="DIR", help="a kelly ddsp train --out folder (its data.npz)")
    m.add_argument("--voice", metavar="DIR", help="the voice folder (default: the shipped voice)")
    m.set_defaults(func=run_evaluate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _torch() -> None:
    try:
        import torch  # noqa: F401 - only whether it imports
    except ImportError as exc:
        raise InputError(f"this needs torch (pip install 'kelly[ml]'): {exc}") from None


def run_train(args: argparse.Namespace) -> int:
    _torch()
    from kelly.commands.transformer import _overrides
    from kelly.ddsp.data import audio_files
    from kelly.ddsp.train import load_settings, train

    overrides = _overrides(args.set)
    if args.no_standard:
        overrides["standard"] = False
        if not args.audio:
            raise InputError("--no-standard needs --audio DIR (something to learn from)")
    settings = load_settings(args.config, args.config_file, overrides)
    for folder in args.audio:
        if not audio_files(folder):
            raise InputError(f"--audio {folder}: no WAV, FLAC, OGG or AIFF files in it")
    if args.soundfont and settings.standard:
        from kelly.render.audio import find_soundfont

        find_soundfont(args.soundfont)
    metrics = train(settings, args.out, audio_dirs=args.audio, soundfont=args.soundfont, resume=not args.fresh,
                    log=lambda line: print(line, file=sys.stderr))
    best = metrics["best"]
    print(f"best validation loss {best['val_loss']:.3f} (multi-scale spectral) at step {best['step']}; "
          f"voice in {args.out} (render with: kelly render FILE.mid --voice ddsp:{args.out})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    _torch()
    from kelly.ddsp.export import JSON_NAME, META_NAME, ONNX_NAME, write_voice
    from kelly.fileio import check_destinations, read_json

    src = Path(args.model) / "ddsp.pt"
    if not src.is_file():
        raise InputError(f"no ddsp.pt in {args.model} (train one with kelly ddsp train)")
    out = Path(args.out)
    check_destinations([out / n for n in (JSON_NAME, META_NAME, ONNX_NAME)], overwrite=args.force, inputs=[src])
    metrics_path = Path(args.model) / "metrics.json"
    if not metrics_path.is_file():
        raise InputError(f"no metrics.json in {args.model}: the voice's velocity → loudness map is made by "
                         "kelly ddsp train, which writes it beside ddsp.pt")
    metrics = read_json(metrics_path, what="training metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("loudness_map"), dict):
        raise InputError(f"{metrics_path}: has no loudness_map (not written by kelly ddsp train)")
    files = write_voice(src, out, metrics=metrics)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from kelly.ddsp.export import validate
    from kelly.ddsp.voice import find_voice

    folder = find_voice(args.voice)
    checks = validate(folder)
    for c in checks:
        print(c.line())
    bad = [c for c in checks if not c.ok]
    if bad:
        from kelly.errors import ModelError

        raise ModelError(f"{folder}: validation failed: " + "; ".join(f"{c.check}: {c.detail}" for c in bad))
    print(f"{folder}: all checks passed")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    _torch()
    from kelly.ddsp import data as ddata
    from kelly.ddsp.evaluate import emotion_sweep, f0_accuracy, resynthesis
    from kelly.ddsp.voice import DdspVoice

    cache = Path(args.data) / "data.npz"
    if not cache.is_file():
        raise InputError(f"no data.npz in {args.data} (kelly ddsp train --out {args.data} builds it)")
    segments = ddata.load(cache)
    voice = DdspVoice(args.voice)
    report = {"voice": str(voice.folder), "f0": f0_accuracy(segments),
              "resynthesis": resynthesis(voice.decoder, segments), "emotion_sweep": emotion_sweep(voice.decoder)}
    print(json.dumps(report, indent=2))
    return 0
