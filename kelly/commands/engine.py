"""``kelly engine``: the real-time engine (kelly.realtime.engine) from the command line.

Audio (a WAV file or an input device), words (``--text``), a heart (``--biometrics``)
and the socket (``kelly ctl``, the web app) set the emotion; the engine plays MIDI bar by
bar to a port a DAW can record (a virtual port "Kelly" by default) or to a file. It runs
until the audio ends, ``--seconds`` or ``--bars`` pass, ``kelly ctl shutdown``, or
Ctrl-C; in every case it sends all-notes-off, closes the MIDI and prints what happened:
the per-block processing time against its budget, frames analysed, the phrases it
composed and why, and the latency it adds.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from kelly.errors import InputError, KellyError


def register(sub) -> None:
    from kelly.commands.options import seed_arg

    p = sub.add_parser("engine", help="run the real-time engine: audio/text/biometrics in, live MIDI out",
                       description="Run Kelly live. The emotion comes from audio (--audio-in), words (--text), a "
                                   "biometric stream (--biometrics) and the control socket (kelly ctl); the music "
                                   "follows it bar by bar on a MIDI port or into a MIDI file.")
    p.add_argument("--audio-in", metavar="FILE|DEVICE",
                   help="a sound file (WAV, FLAC, OGG) played through the engine, or an input device name/index")
    p.add_argument("--midi-out", metavar="PORT|FILE.mid",
                   help="'virtual' (a port named Kelly a DAW can record; the default where the OS offers one), a "
                        "port name or index, or a .mid file written when the engine stops")
    p.add_argument("--biometrics", metavar="FILE.csv|osc://127.0.0.1:PORT",
                   help="heart rate / HRV / EDA / skin temperature / movement: a CSV to replay on the engine clock, "
                        "or a live OSC stream (see docs/biometrics.md)")
    p.add_argument("--osc-allow-remote", action="store_true",
                   help="let --biometrics osc:// listen on an address other than this computer's (anyone who can "
                        "reach it can then send biometrics)")
    p.add_argument("--socket", metavar="PATH",
                   help="the control socket (default: $XDG_RUNTIME_DIR/kelly/engine.sock); see docs/ipc.md")
    p.add_argument("--no-socket", action="store_true", help="do not open the control socket")
    p.add_argument("--block", type=int, default=512, help="audio block size in samples (default 512)")
    p.add_argument("--sr", type=int, default=48000,
                   help="sample rate of a device (default 48000; a file runs at its own rate)")
    p.add_argument("--lookahead", type=int, default=None, metavar="SAMPLES",
                   help="lookahead added to the audio path (default: the mel front-end's own latency)")
    p.add_argument("--text", nargs="+", metavar="TEXT", help="how you feel, in words (fused with the other sources)")
    p.add_argument("--emotion", default="calm", metavar="NAME",
                   help="the emotion to start from before any source speaks (default calm)")
    p.add_argument("--clock-in", metavar="PORT", help="follow a DAW's MIDI clock (start, stop, song position) on PORT")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed of the first phrase (default 0)")
    p.add_argument("--complexity", type=float, default=0.5, help="0 simple … 1 busy (default 0.5)")
    p.add_argument("--phrase-bars", type=int, default=8, help="bars composed at once (default 8)")
    p.add_argument("--alpha", type=float, default=0.1, help="smoothing of the audio emotion per frame (default 0.1)")
    p.add_argument("--runtime", choices=("numpy", "int8"), default="numpy",
                   help="how the inference thread runs the five networks: the numpy hot path (default) or "
                        "onnxruntime with int8 weights (needs all five networks live)")
    p.add_argument("--models-dir", metavar="DIR", help="models folder (also the only folder LoadModel reads)")
    p.add_argument("--out-dir", metavar="DIR", default=None,
                   help="where GenerateMIDI writes files (default kelly-out/engine)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--bars", type=int, default=None, help="stop after this many bars")
    p.add_argument("--fast", action="store_true",
                   help="run as fast as possible instead of in real time (with a file in and out: deterministic)")
    p.add_argument("--audio-process", action=argparse.BooleanOptionalAction, default=None,
                   help="run the audio path (the analysis of --audio-in) in a process of its own, so that its "
                        "deadline holds however busy the socket, the app and the composer are (default: yes when "
                        "the audio plays in real time; --fast runs it in the engine's process)")
    p.add_argument("--report", metavar="FILE.json", help="write the run's statistics as JSON")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON instead of text")
    p.set_defaults(func=run)


def _positive(value, name: str, lo: float, hi: float):
    if value is not None and not lo <= value <= hi:
        raise InputError(f"{name} must be from {lo:g} to {hi:g}, got {value:g}")
    return value


def _open_sink(spec: str | None, notes: list[str]):
    from kelly.realtime.midi_out import open_midi_out

    if spec is not None:
        if spec.strip().lower().endswith((".mid", ".midi")):
            _make_folder(spec)
        return open_midi_out(spec)
    try:
        return open_midi_out("virtual")
    except KellyError as exc:
        path = "kelly-out/engine/live.mid"
        _make_folder(path)
        notes.append(f"no virtual MIDI port ({exc}); writing {path} instead (choose with --midi-out)")
        return open_midi_out(path)


def _make_folder(path: str) -> None:
    """Make the MIDI file's folder now: a folder that cannot be made must fail before the take, not after it."""
    from pathlib import Path

    from kelly.errors import OutputError
    from kelly.fileio import show_path

    folder = Path(path.strip()).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {show_path(path.strip())}: cannot make the folder {show_path(folder)} "
                          f"({exc.strerror or exc})") from None


def _biometrics(spec: str | None, allow_remote: bool = False):
    if spec is None:
        return None, None
    if spec.startswith("osc://"):
        import warnings

        from kelly.emotion.bio import OscBioListener

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            listener = OscBioListener(spec, allow_remote=allow_remote)
            listener.start()
        for w in caught:
            print(f"kelly: warning: {w.message}", file=sys.stderr)
        return listener, listener
    from kelly.emotion.bio import read_bio_csv

    return read_bio_csv(spec), None


def run(args) -> int:
    from kelly.realtime.engine import DEFAULT_OUT_DIR, Engine, EngineConfig

    _positive(args.seconds, "--seconds", 0.01, 7 * 24 * 3600.0)
    _positive(args.bars, "--bars", 1, 100_000)
    if args.fast and args.audio_in is None and args.seconds is None and args.bars is None:
        raise InputError("--fast without --audio-in needs --seconds or --bars (or it would never end)")
    if args.audio_process and (args.fast or args.audio_in is None):
        raise InputError("--audio-process plays --audio-in in real time: it needs --audio-in and cannot be used "
                         "with --fast")
    notes: list[str] = []
    closers: list = []
    try:
        source = None
        sr = args.sr
        if args.audio_in is not None:
            from kelly.realtime.audio_in import parse_audio_in

            source = parse_audio_in(args.audio_in, block=args.block, sr=args.sr)
            closers.append(source)
            sr = int(source.sr)
        follower = None
        if args.clock_in is not None:
            from kelly.realtime.clock import ClockFollower

            follower = ClockFollower()
        bio, listener = _biometrics(args.biometrics, args.osc_allow_remote)
        if listener is not None:
            closers.append(listener)
        config = EngineConfig(sr=sr, block=args.block, lookahead=args.lookahead, alpha=args.alpha, seed=args.seed,
                              phrase_bars=args.phrase_bars, complexity=args.complexity, models_dir=args.models_dir,
                              out_dir=args.out_dir or DEFAULT_OUT_DIR, sync=bool(args.fast and source is not None),
                              start_emotion=args.emotion, runtime=args.runtime)
        config.check()
        sink = _open_sink(args.midi_out, notes)
        clock = "external" if follower is not None else ("audio" if source is not None else "internal")
        audio_process = None
        if source is not None and not args.fast and args.audio_process is not False:
            from kelly.realtime.audio_process import AudioProcess, AudioSourceSpec

            audio_process = AudioProcess(AudioSourceSpec.of(source))
        engine = Engine(config, sink=sink, clock=clock, follower=follower, biometrics=bio,
                        audio_process=audio_process)
        if follower is not None:
            from kelly.realtime.clock import RtMidiClockIn

            # clock messages are stamped on the engine's clock, so positions interpolate between them
            closers.append(RtMidiClockIn(args.clock_in, follower, clock=engine.clock_now))
        if args.text:
            notes.append("text " + engine.set_text(" ".join(args.text)))
        server = None
        if not args.no_socket:
            from kelly.ipc.server import EngineServer

            server = EngineServer(engine, args.socket)
            server.start()
            closers.append(server)
            notes.append(f"control socket {server.path} (kelly ctl --socket {server.path} state)")
        for line in notes:
            print(line, file=sys.stderr)
        closers.append(_handle_signals(engine))
        with engine:
            engine.run(None if audio_process is not None else source, realtime=not args.fast, seconds=args.seconds,
                       bars=args.bars)
    finally:
        for c in reversed(closers):
            try:
                (getattr(c, "stop", None) or c.close)()
            except Exception:  # closing must not hide the real error
                pass
    report = _report(engine, sink)
    if args.report:
        from kelly.fileio import write_json_atomic

        write_json_atomic(args.report, report)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_summary(report))
    return 0


class _Restore:
    """Puts back the signal handlers a run replaced (a closer: ``kelly.cli.main`` may run in a longer process)."""

    def __init__(self, saved: dict) -> None:
        self.saved = saved

    def close(self) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def _handle_signals(engine) -> _Restore:
    """Ctrl-C and SIGTERM end the run cleanly (all notes off, the file written), until the returned closer runs."""
    if threading.current_thread() is not threading.main_thread():
        return _Restore({})

    def stop(signum, frame):
        engine.shutdown()

    saved = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        saved[signum] = signal.getsignal(signum)
        signal.signal(signum, stop)
    return _Restore(saved)


def _report(engine, sink) -> dict:
    sch = engine.scheduler
    return {
        "midi_out": getattr(sink, "name", None),
        "seconds": round(engine.now_s, 3),
        "clock": engine.clock,
        "sample_rate": engine.config.sr,
        "block": engine.config.block,
        "latency_samples": engine.latency_samples,
        "latency_ms": round(1000.0 * engine.latency_samples / engine.config.sr, 2),
        "block_times": engine.block_times.summary(),
        "audio_path": engine.audio_process.describe() if engine.audio_process is not None else "the engine's run loop",
        "blocks_late_ms": _lateness(engine.audio_process),
        "bad_blocks": engine.bad_blocks,
        "runtime": engine.runtime_note,
        "frames": engine.frames_done,
        "frames_heard": engine.frames_heard,
        "dropped_frames": int(getattr(engine.ring, "dropped", 0)),
        "bars": sch.stats.bars if sch else 0,
        "phrases": [{"bar": b, "time_s": round(t, 3), "emotion": e, "why": why}
                    for b, t, e, why in (sch.stats.phrase_starts if sch else [])],
        "note_ons": getattr(engine, "note_ons", None),
        "warnings": list(engine.warnings),
        "emotion_trace": [dict(zip(("time_s", "valence", "arousal", "dominance", "confidence", "emotion"), row))
                          for row in engine.trace],
    }


def _lateness(audio_process) -> dict | None:
    """How late the audio process took a file's blocks after they were due (p99, max, in ms); None without one."""
    import numpy as np

    late = audio_process.late_times()[1:] if audio_process is not None else ()
    if not len(late):
        return None
    return {"p99": round(float(np.percentile(late, 99)) * 1e3, 3), "max": round(float(np.max(late)) * 1e3, 3)}


def _summary(r: dict) -> str:
    bt = r["block_times"]
    lines = [f"ran {r['seconds']:.1f} s on the {r['clock']} clock; MIDI to {r['midi_out']}"]
    if bt.get("blocks"):
        lines.append(f"audio path: {bt['blocks']} blocks of {r['block']} at {r['sample_rate']} Hz, median "
                     f"{bt['median_ms']:.3f} ms, p99 {bt['p99_ms']:.3f} ms, max {bt['max_ms']:.3f} ms against "
                     f"{bt['budget_ms']:.2f} ms ({bt['overruns']} over budget), in {r['audio_path']}"
                     + (f"; blocks taken at most {r['blocks_late_ms']['max']:.1f} ms after they were due (p99 "
                        f"{r['blocks_late_ms']['p99']:.1f} ms)" if r.get("blocks_late_ms") else ""))
        lines.append(f"mel frames analysed: {r['frames']} ({r['frames_heard']} heard, {r['dropped_frames']} dropped) on "
                     f"the {r['runtime']} path; "
                     f"latency added: {r['latency_samples']} samples ({r['latency_ms']} ms)")
    lines.append(f"{r['bars']} bars in {len(r['phrases'])} phrases:")
    for ph in r["phrases"][:40]:
        lines.append(f"  bar {ph['bar'] + 1:>4} at {ph['time_s']:8.2f} s  {ph['emotion']:<14} ({ph['why']})")
    if len(r["phrases"]) > 40:
        lines.append(f"  … {len(r['phrases']) - 40} more")
    for w in r["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
