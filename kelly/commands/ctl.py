"""``kelly ctl``: steer a running ``kelly engine`` from the shell, over its socket.

Why a separate command: the engine runs for a long time (playing, listening); you change
its emotion, feed it words, ask for a MIDI file, or watch its state from another
terminal or a script. Output is short human text by default and JSON with ``--json``
(one object, or one object per line for ``watch``), so scripts need no parsing of prose.
An ``Error`` answer is the engine's message on standard error and exit code 2, like
every other Kelly error. The protocol underneath is described in ``docs/ipc.md``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _common() -> argparse.ArgumentParser:
    """The options every action takes, before or after the action's name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="the engine's socket (default: $XDG_RUNTIME_DIR/kelly/engine.sock, "
                             "else /tmp/kelly-UID/engine.sock)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the answer as JSON (watch: one object per line)")
    common.add_argument("--timeout", metavar="SECONDS", type=float, default=argparse.SUPPRESS,
                        help="how long to wait for an answer (default 5; generate waits at least 120)")
    return common


def register(sub) -> None:
    common = _common()
    p = sub.add_parser("ctl", parents=[common], help="control a running kelly engine over its socket",
                       description="Send one request to a running `kelly engine` and print its answer.")
    # no set_defaults for the common options: parents share their actions, and a default set here would be
    # set in every action's parser too, overwriting an option given before the action's name
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    actions.add_parser("state", parents=[common], help="what the engine is doing: emotion, bar, tempo, models")
    a = actions.add_parser("emotion", parents=[common], help="set the emotion: valence arousal [dominance]")
    a.add_argument("valence", type=float, help="-1 (unpleasant) .. 1 (pleasant)")
    a.add_argument("arousal", type=float, help="0 (calm) .. 1 (excited)")
    a.add_argument("dominance", type=float, nargs="?", default=0.5, help="0 (overwhelmed) .. 1 (in control); "
                                                                            "default 0.5")
    a = actions.add_parser("text", parents=[common], help="tell the engine how you feel, in words")
    a.add_argument("text", nargs="+", help="the words (several arguments are joined by spaces)")
    a = actions.add_parser("generate", parents=[common], help="write a MIDI file for the current emotion")
    a.add_argument("--bars", type=int, default=8, help="how many bars (1-512, default 8)")
    a = actions.add_parser("load", parents=[common], help="load a network file from the engine's models folder")
    a.add_argument("path", help="a file name (or relative path) inside the engine's models folder")
    a = actions.add_parser("enable", parents=[common], help="switch a network on")
    a.add_argument("model", help="the network's key, e.g. harmonypredictor")
    a = actions.add_parser("disable", parents=[common], help="switch a network off (its fallback heuristic runs)")
    a.add_argument("model", help="the network's key, e.g. harmonypredictor")
    a = actions.add_parser("watch", parents=[common], help="print the state as it changes, until Ctrl-C")
    a.add_argument("--count", type=int, default=0, metavar="N", help="stop after N states (default: never)")
    a.add_argument("--interval", type=int, default=500, metavar="MS", help="milliseconds between states "
                                                                            "(10-60000, default 500)")
    actions.add_parser("shutdown", parents=[common], help="stop the engine")


# --------------------------------------------------------------------------- output
def _signed(x: float) -> str:
    return f"{x:+.2f}"


def _vad(e) -> str:
    return f"V {_signed(e.valence)}  A {e.arousal:.2f}  D {e.dominance:.2f}"


def _models_line(models: dict) -> str:
    groups: dict[str, list[str]] = {"live": [], "fallback": [], "off": []}
    for name, m in models.items():
        groups["off" if not m.enabled else "live" if m.live else "fallback"].append(name)
    parts = [f"{k}: {', '.join(v)}" for k, v in groups.items() if v]
    return "; ".join(parts) or "none reported"


def describe_state(state) -> list[str]:
    """The human view of an :class:`~kelly.contracts.EngineState`, one line per topic."""
    e = state.emotion
    label = f"{e.label}: " if e.label else ""
    lines = [
        f"engine    {'playing' if state.playing else 'stopped' if not state.running else 'paused'}, "
        f"bar {state.bar}, {state.tempo_bpm:g} bpm in {state.time_signature}, {state.clock} clock, "
        f"{state.time_s:.1f} s",
        f"emotion   {label}{_vad(e)} (confidence {e.confidence:.2f})",
    ]
    for name, src in state.sources.items():
        age = f", {src.age_s:.1f} s ago" if src.age_s is not None else ""
        lines.append(f"source    {name}: {(src.label + ', ') if src.label else ''}{_vad(src)}{age}")
    lines.append(f"models    {_models_line(state.models)}")
    ms = 1000.0 * state.latency_samples / state.sample_rate
    lines.append(f"audio     {state.sample_rate} Hz, block {state.block}, latency {state.latency_samples} samples "
                 f"({ms:.1f} ms); {state.blocks} blocks, {state.overruns} overruns, "
                 f"{state.dropped_frames} dropped frames")
    lines.append(f"midi out  {state.midi_out or 'none'}; {state.notes_sounding} notes sounding")
    lines.extend(f"warning   {w}" for w in state.warnings)
    return lines


def _watch_line(state) -> str:
    e = state.emotion
    return (f"bar {state.bar:<4} {state.tempo_bpm:6.1f} bpm  {(e.label or '-'):<12} {_vad(e)}  "
            f"notes {state.notes_sounding:<3} seq {state.seq}")


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False))
    sys.stdout.flush()


# --------------------------------------------------------------------------- actions
def run(args: argparse.Namespace) -> int:
    args.socket = getattr(args, "socket", None)
    args.json = getattr(args, "json", False)
    args.timeout = getattr(args, "timeout", 5.0)
    if not args.timeout > 0:  # also refuses nan
        from kelly.errors import InputError

        raise InputError(f"--timeout must be a number of seconds above 0 (got {args.timeout:g})")
    from kelly.contracts import (GenerateMIDI, GetState, LoadModel, MIDIGenerated, ModelLoaded, Ok, SetEmotion,
                                 SetModelEnabled, SetText, Shutdown, State)
    from kelly.ipc.client import GENERATE_TIMEOUT, KellyClient, build

    with KellyClient(args.socket, timeout=args.timeout) as client:
        if args.action == "watch":
            return _watch(client, args)
        if args.action == "state":
            state = client.ask(GetState(), State).state
            if args.json:
                _print_json(state.model_dump(mode="json"))
            else:
                print("\n".join(describe_state(state)))
            return 0
        if args.action == "emotion":
            req = build(SetEmotion, valence=args.valence, arousal=args.arousal, dominance=args.dominance)
            answer = client.ask(req, Ok)
            said = f"emotion set: {_vad(req)}"
        elif args.action == "text":
            answer = client.ask(build(SetText, text=" ".join(args.text)), Ok)
            said = answer.message or "text sent"
        elif args.action == "generate":
            answer = client.ask(build(GenerateMIDI, bars=args.bars), MIDIGenerated,
                                timeout=max(args.timeout, GENERATE_TIMEOUT))
            said = f"wrote {answer.path} ({answer.bars} bars)"
        elif args.action == "load":
            answer = client.ask(build(LoadModel, path=args.path), ModelLoaded)
            said = f"loaded {answer.name}"
        elif args.action in ("enable", "disable"):
            on = args.action == "enable"
            answer = client.ask(build(SetModelEnabled, model=args.model, enabled=on), Ok)
            said = f"{args.model} {'enabled' if on else 'disabled (its fallback heuristic runs)'}"
        else:  # shutdown
            answer = client.ask(Shutdown(), Ok)
            said = "the engine is stopping"
    if args.json:
        _print_json(answer.model_dump(mode="json"))
    else:
        print(said)
    return 0


def _watch(client, args: argparse.Namespace) -> int:
    from kelly.errors import InputError

    if args.count < 0:
        raise InputError(f"--count must be 0 (never stop) or more (got {args.count})")
    stream = client.subscribe(args.interval)
    try:
        for n, state in enumerate(stream, start=1):
            if args.json:
                _print_json(state.model_dump(mode="json"))
            else:
                print(_watch_line(state))
                sys.stdout.flush()
            if args.count and n >= args.count:
                break
    finally:
        stream.close()
    return 0
