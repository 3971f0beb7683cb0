"""``kelly compose``: text (and/or explicit V/A/D) → multi-track MIDI plus an explanation JSON."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from kelly.errors import InputError

DEFAULT_OUT_DIR = "kelly-out"


def register(sub) -> None:
    p = sub.add_parser("compose", help="compose multi-track MIDI from how you feel",
                       description="Compose a multi-track MIDI file (and an explanation JSON beside it) from text "
                                   "and/or explicit valence/arousal/dominance.")
    p.add_argument("text", nargs="*", help="how you feel, e.g. \"I feel grief, but I'm starting to hope\"")
    p.add_argument("--bars", type=int, default=16, help="length in bars (1-512, default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical MIDI")
    p.add_argument("--out", "-o", help="output .mid path (default kelly-out/<slug>.mid)")
    p.add_argument("--json", action="store_true", help="print the explanation JSON on standard output")
    p.add_argument("--valence", type=float, help="valence in [-1, 1] (instead of or on top of the text)")
    p.add_argument("--arousal", type=float, help="arousal in [0, 1]")
    p.add_argument("--dominance", type=float, help="dominance in [0, 1]")
    p.add_argument("--intensity", type=float, help="intensity in [0, 1]")
    p.add_argument("--complexity", type=float, default=0.5, help="0 = bare (melody, chords, bass) ... 1 = everything")
    p.add_argument("--humanize", type=float, help="0 = quantized, 0.5 = the emotion's natural feel, 1 = loose")
    p.add_argument("--key", help="key, e.g. F, Am, 'D dorian' (default: chosen from the emotion)")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="RULE",
                   help="break a rule on purpose (repeatable); `kelly rules` lists them")
    p.add_argument("--no-auto-breaks", action="store_true", help="only break the rules given with --break")
    p.add_argument("--to", metavar="EMOTION", help="journey: move from the text's emotion to this one")
    p.add_argument("--journey", metavar="A,B,C", help="journey through these emotions in order")
    p.add_argument("--no-ml", action="store_true", help="switch the five networks (and their fallbacks) off")
    p.add_argument("--disable", action="append", default=[], metavar="MODEL",
                   help="switch one network off (its fallback heuristic runs); repeatable")
    p.add_argument("--models-dir", metavar="DIR", help="look for model files here first")
    p.set_defaults(func=run)


def _finite(name: str, value, lo: float, hi: float) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InputError(f"--{name} must be a number in [{lo:g}, {hi:g}], got {value}")
    return float(value)


def slugify(text: str, limit: int = 48) -> str:
    """A safe file stem from text: lowercase words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = "-".join(words)[:limit].strip("-")
    return slug or "kelly"


def resolve_emotions(args):
    """The emotion (or journey path) the user asked for, from text, V/A/D, --to and --journey."""
    from kelly.emotion.state import EmotionState
    from kelly.emotion.text import read_text
    from kelly.emotion.thesaurus import load_thesaurus, state_for

    text = " ".join(args.text).strip()
    v = _finite("valence", args.valence, -1.0, 1.0)
    a = _finite("arousal", args.arousal, 0.0, 1.0)
    d = _finite("dominance", args.dominance, 0.0, 1.0)
    i = _finite("intensity", args.intensity, 0.0, 1.0)
    explicit = any(x is not None for x in (v, a, d))
    path = []
    if args.journey:
        names = [n.strip() for n in args.journey.split(",") if n.strip()]
        if len(names) < 2:
            raise InputError("--journey needs at least two emotions separated by commas, e.g. 'grief,acceptance,hope'")
        path = [state_for(n) for n in names]
        if text:
            path[0] = read_text(text)
    if text:
        state = path[0] if path else read_text(text)
    elif explicit:
        th = load_thesaurus()
        entry = th.nearest(v if v is not None else 0.0, a if a is not None else 0.5, d)
        state = EmotionState(entry.name, entry.family, v if v is not None else entry.valence,
                             a if a is not None else entry.arousal, d if d is not None else entry.dominance,
                             i if i is not None else 0.6, 1.0, source="explicit")
    elif path:
        state = path[0]
    else:
        raise InputError("nothing to compose: give some text (e.g. kelly compose \"I feel grief\") "
                         "or --valence/--arousal/--dominance")
    state = state.with_overrides(valence=v, arousal=a, dominance=d, intensity=i)
    if path:
        path[0] = state
    elif args.to:
        path = [state, state_for(args.to)]
    else:
        path = [state]
    return text, path


def _network_hints(args, state):
    """Run the five networks (or their fallbacks) for the emotion; ``(None, info)`` with ``--no-ml``."""
    if args.no_ml:
        if args.disable:
            raise InputError("--disable has no effect with --no-ml; use one or the other")
        return None, {"live": [], "fallback": [], "note": "networks off (--no-ml): rule engines only"}
    from kelly.ml.processor import MultiModelProcessor
    from kelly.ml.specs import get_spec

    disabled = {get_spec(name).key: False for name in args.disable}
    proc = MultiModelProcessor(args.models_dir, enabled=disabled)
    hints = proc.hints_for_emotion(state)
    status = proc.status()
    live = status["live"]
    note = ("all five networks live" if len(live) == 5 else
            "no model files found: running on the fallback heuristics" if not live else
            f"live: {', '.join(live)}; the rest run on fallback heuristics")
    models = {"live": live, "fallback": status["fallback"], "note": note,
              "status": {k: v["status"] for k, v in status["models"].items()}, "hints": hints.to_dict()}
    return hints, models


def output_path(requested: str | None, stem: str, *, flag: str = "--out") -> Path:
    """Where a composition goes: the user's path (``.mid`` added if missing) or ``kelly-out/<stem>.mid``."""
    if requested:
        out = Path(requested)
        if out.suffix.lower() not in (".mid", ".midi"):
            out = out.with_suffix(out.suffix + ".mid") if out.suffix else out.with_suffix(".mid")
    else:
        out = Path(DEFAULT_OUT_DIR) / f"{stem}.mid"
    if out.is_dir():
        raise InputError(f"{flag} {out} is a folder; give a file name ending in .mid")
    return out


def write_composition(result, requested: str | None, stem: str, *, flag: str = "--out") -> Path:
    """Write the MIDI and its explanation JSON beside it (both atomically); returns the MIDI path."""
    from kelly.fileio import write_json_atomic

    out = output_path(requested, stem, flag=flag)
    result.explanation["files"] = {"midi": str(out), "explanation": str(out.with_suffix(".json"))}
    result.song.save(out)
    write_json_atomic(out.with_suffix(".json"), result.explanation)
    return out


def run(args) -> int:
    from kelly.generator import ComposeOptions, compose

    text, path = resolve_emotions(args)
    opts = ComposeOptions(bars=args.bars, seed=args.seed, complexity=args.complexity, humanize=args.humanize,
                          key=args.key, breaks=tuple(args.breaks), auto_breaks=not args.no_auto_breaks)
    hints, models = _network_hints(args, path[0])
    result = compose(path if len(path) > 1 else path[0], opts, hints=hints, models=models)
    stem = slugify(text) if text else slugify("-".join(e.label for e in path))
    explanation = result.explanation
    explanation["text"] = text or None
    write_composition(result, args.out, stem, flag="--out")
    if args.json:
        json.dump(explanation, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary(explanation))
    return 0


def summary(ex: dict) -> str:
    """A few human lines about a composition."""
    emo, par = ex["emotion"], ex["parameters"]
    lines = [
        f"Feeling: {emo['emotion']} ({emo['family']}), valence {emo['valence']:+.2f}, arousal {emo['arousal']:.2f}, "
        f"dominance {emo['dominance']:.2f}, confidence {emo['confidence']:.2f}",
    ]
    if ex.get("journey"):
        lines.append("Journey: " + " -> ".join(ex["journey"]))
    lines.append(f"Music:   {par['key']} ({par['detailed_mode']}), {par['tempo_bpm']} BPM, {ex['bars']} bars, "
                 f"base velocity {par['base_velocity']}, {par['timing_feel'].replace('_', '-')} feel")
    lines.append("Chords:  " + " ".join(ex["progression"]["roman"][:8]) + (" ..." if ex["bars"] > 8 else ""))
    tracks = ", ".join(f"{t['name']} {t['notes']}" for t in ex["tracks"])
    lines.append(f"Tracks:  {tracks}")
    if ex["rule_breaks"]:
        lines.append("Rules broken: " + ", ".join(f"{r['rule']} ({r['severity']:.2f})" for r in ex["rule_breaks"]))
    lines.append(f"Models:  {ex['models']['note']}")
    lines.append(f"Wrote:   {ex['files']['midi']} and {ex['files']['explanation']}")
    return "\n".join(lines)
