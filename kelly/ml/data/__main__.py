"""``python -m kelly.ml.data``: build the training data from the command line (see docs/data.md).

    python -m kelly.ml.data convert [--collections bach essen oneills] [--limit N] [--workers 2]
    python -m kelly.ml.data compose [--emotions grief joy] [--seeds 0 1 2 3] [--bars 8] [--workers 2]
    python -m kelly.ml.data render  [--what composed|corpus] [--split test] [--soundfont SF2 --folder audio-timgm] [--remap]
                                    [--limit N] [--workers 2]
    python -m kelly.ml.data summary

Every command takes ``--data-dir`` (default ``$KELLY_DATA_DIR``, else ``./build/corpus``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from kelly.errors import KellyError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kelly.ml.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert music21's corpus to MIDI with a manifest")
    conv.add_argument("--collections", nargs="+", default=None)
    comp = sub.add_parser("compose", help="compose the emotion × seed grid")
    comp.add_argument("--emotions", nargs="+", default=None)
    comp.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    comp.add_argument("--bars", type=int, default=8)
    rend = sub.add_parser("render", help="render cached MIDI to WAV with FluidSynth")
    rend.add_argument("--what", choices=("composed", "corpus"), default="composed")
    rend.add_argument("--split", choices=("train", "validation", "test"), default=None,
                      help="render only the pieces of this split")
    rend.add_argument("--soundfont", default=None, help="General MIDI soundfont (default: the first one found)")
    rend.add_argument("--folder", default=None,
                      help="folder in the data folder for the WAVs (default: audio, or audio-remap with --remap)")
    rend.add_argument("--remap", action="store_true",
                      help="re-orchestrate every pitched part at random first (a second training render)")
    summ = sub.add_parser("summary", help="count what the manifests hold")
    for p in (conv, comp, rend, summ):
        p.add_argument("--data-dir", default=None)
    for p in (conv, comp, rend):
        p.add_argument("--limit", type=int, default=None)
    for p in (conv, comp, rend):
        p.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            from kelly.ml.data.corpus import convert

            print(json.dumps(convert(args.collections, data_dir=args.data_dir, limit=args.limit,
                                     workers=args.workers).to_dict(), indent=2))
        elif args.command == "compose":
            from kelly.ml.data.composed import compose_dataset

            print(json.dumps(compose_dataset(data_dir=args.data_dir, emotions=args.emotions, seeds=args.seeds,
                                             bars=args.bars, limit=args.limit, workers=args.workers), indent=2))
        elif args.command == "render":
            from kelly.ml.data.composed import load_composed
            from kelly.ml.data.corpus import load_manifest
            from kelly.ml.data.render import render_records

            recs = load_composed(args.data_dir) if args.what == "composed" else load_manifest(args.data_dir)
            if args.split:
                recs = [r for r in recs if r.get("split") == args.split]
            from kelly.ml.data.render import AUDIO_FOLDER, REMAP_FOLDER

            folder = args.folder or (REMAP_FOLDER if args.remap else AUDIO_FOLDER)
            paths = render_records(recs, data_dir=args.data_dir, limit=args.limit, soundfont=args.soundfont,
                                   folder=folder, workers=args.workers, remap=args.remap)
            print(f"{len(paths)} WAV files")
        else:
            from kelly.ml.data.composed import load_composed
            from kelly.ml.data.corpus import load_manifest

            recs = load_manifest(args.data_dir, status=None) + load_composed(args.data_dir, status=None)
            table = collections.Counter((r.get("collection"), r.get("status"), r.get("split")) for r in recs)
            for (col, status, split), n in sorted(table.items(), key=lambda kv: tuple(map(str, kv[0]))):
                print(f"{col or '?':12} {status or '?':6} {split or '-':10} {n:6}")
    except KellyError as exc:
        print(f"kelly: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
