"""``kelly compose``: text (and/or explicit V/A/D) → multi-track MIDI plus an explanation JSON."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

from kelly.commands.options import add_force, seed_arg
from kelly.errors import InputError, OutputError

DEFAULT_OUT_DIR = "kelly-out"
#: How many numbered names (``slug-2.mid`` …) a default output may try before giving up.
MAX_FREE_NAMES = 1000


def register(sub) -> None:
    p = sub.add_parser("compose", help="compose multi-track MIDI from how you feel",
                       description="Compose a multi-track MIDI file (and an explanation JSON beside it) from text "
                                   "and/or explicit valence/arousal/dominance.")
    p.add_argument("text", nargs="*", help="how you feel, e.g. \"I feel grief, but I'm starting to hope\"")
    p.add_argument("--bars", type=int, default=16, help="length in bars (1-512, default 16)")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help="random seed 0-4294967295; the same seed gives byte-identical MIDI")
    p.add_argument("--out", "-o", help="output .mid path (default kelly-out/<slug>.mid, or the next free "
                                        "<slug>-2.mid ...); FILE.json beside it explains it")
    add_force(p, help="replace an existing --out FILE.mid and FILE.json (never a file this command reads)")
    p.add_argument("--json", action="store_true", help="print the explanation JSON on standard output")
    p.add_argument("--valence", type=float, help="valence in [-1, 1] (instead of or on top of the text)")
    p.add_argument("--arousal", type=float, help="arousal in [0, 1]")
    p.add_argument("--dominance", type=float, help="dominance in [0, 1]")
    p.add_argument("--intensity", type=float, help="intensity in [0, 1]")
    p.add_argument("--complexity", type=float, default=0.5, help="0 = bare (melody, chords, bass) ... 1 = everything")
    p.add_argument("--humanize", type=float, help="0 = quantized, 0.5 = the emotion's natural feel, 1 = loose")
    p.add_argument("--key", help="key, e.g. F, Am, 'D dorian' (default: chosen from the emotion)")
    p.add_argument("--meter", choices=("4/4", "3/4", "6/8"),
                   help="time signature (default from the feeling: 6/8 for tenderness, 3/4 for nostalgia, else 4/4)")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="RULE",
                   help="break a rule on purpose (repeatable); `kelly rules` lists them")
    p.add_argument("--no-auto-breaks", action="store_true", help="only break the rules given with --break")
    p.add_argument("--to", metavar="EMOTION", help="journey: move from the text's emotion to this one")
    p.add_argument("--journey", metavar="A,B,C", help="journey through these emotions in order")
    p.add_argument("--composer", choices=("rules", "transformer", "hybrid"), default="rules",
                   help="who writes the music: rules (the rule engines, default), transformer (the emotion-"
                        "conditioned transformer writes every note, in the rule engines' instruments, metre and "
                        "tempo), or hybrid (the rule engines' piece with a transformer melody within its harmony); "
                        "docs/transformer.md")
    p.add_argument("--transformer-model", metavar="DIR",
                   help="with --composer transformer or hybrid: a model folder (step.onnx, or transformer.pt from "
                        "kelly transformer train) instead of the shipped one")
    p.add_argument("--no-ml", action="store_true", help="switch the five networks (and their fallbacks) off")
    p.add_argument("--disable", action="append", default=[], metavar="MODEL",
                   help="switch one network off (its fallback heuristic runs): its key (melodytransformer) or short "
                        "name (recognizer, melody, harmony, dynamics, groove); repeatable")
    p.add_argument("--models-dir", metavar="DIR", help="look for model files here first")
    p.add_argument("--wav", nargs="?", const="", metavar="FILE.wav",
                   help="also render audio (default: FILE.wav beside the MIDI), through FluidSynth or --voice")
    p.add_argument("--plot", nargs="?", const="", metavar="FILE.png",
                   help="also draw a piano roll (default: FILE.png beside the MIDI)")
    p.add_argument("--musicxml", nargs="?", const="", metavar="FILE.musicxml",
                   help="also write a MusicXML score of the quantized parts (default: FILE.musicxml beside the MIDI)")
    p.add_argument("--soundfont", metavar="SF2", help="General MIDI soundfont for --wav (.sf2/.sf3)")
    p.add_argument("--voice", default="soundfont", metavar="soundfont[:SF2]|ddsp[:DIR]",
                   help="who plays --wav: soundfont (default) or ddsp (Kelly's learned voice, its timbre following "
                        "the emotion; drums from the soundfont)")
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


def _network_hints(args, state, journey=()):
    """Run the five networks (or their fallbacks) for the emotion; ``(None, info)`` with ``--no-ml``.

    For a journey (``journey`` = every emotion of the path) the hints are a list, one per
    emotion, so each section is shaped by its own emotion's networks. The hints carry the
    processor's :class:`~kelly.ml.processor.MelodySteps`, so the composer steps the melody
    network once per bar of the whole piece (its state carried across the sections); the
    processor puts its state back afterwards, so the same seed gives the same MIDI.
    """
    if args.no_ml:
        if args.disable:
            raise InputError("--disable has no effect with --no-ml; use one or the other")
        return None, {"live": [], "fallback": [], "note": "networks off (--no-ml): rule engines only"}
    from kelly.ml.processor import MultiModelProcessor
    from kelly.ml.specs import get_spec

    disabled = {get_spec(name).key: False for name in args.disable}
    proc = MultiModelProcessor(args.models_dir, enabled=disabled)
    hints = proc.hints_for_emotion(state)
    if len(journey) > 1:
        hints = [hints] + [proc.hints_for_emotion(e) for e in journey[1:]]
    status = proc.status()
    live = status["live"]
    models = {"live": live, "fallback": status["fallback"], "note": proc.note(),
              "status": {k: v["status"] for k, v in status["models"].items()},
              "hints": (hints[0] if isinstance(hints, list) else hints).to_dict()}
    return hints, models


def output_path(requested: str | None, stem: str, *, flag: str = "--out") -> Path:
    """Where a composition goes: the user's path (``.mid`` added if missing) or ``kelly-out/<stem>.mid``.

    Only names the file; :func:`check_output` and :func:`write_composition` check it.
    """
    if requested:
        out = Path(requested)
        if out.suffix.lower() not in (".mid", ".midi"):
            out = out.with_suffix(out.suffix + ".mid") if out.suffix else out.with_suffix(".mid")
    else:
        out = Path(DEFAULT_OUT_DIR) / f"{stem}.mid"
    return out


def explanation_path(midi: Path) -> Path:
    """The explanation JSON written beside a MIDI file: ``FILE.json``."""
    return midi.with_suffix(".json")


def _default_candidates(stem: str):
    """``kelly-out/<stem>.mid``, then ``<stem>-2.mid`` … ``<stem>-1000.mid``."""
    folder = Path(DEFAULT_OUT_DIR)
    yield folder / f"{stem}.mid"
    for n in range(2, MAX_FREE_NAMES + 1):
        yield folder / f"{stem}-{n}.mid"


def _pair_error(exc: OutputError, out: Path) -> OutputError:
    """Say what the ``.json`` beside a MIDI is, when it is the destination a message is about."""
    from kelly.fileio import DestinationExists, OutputIsInput, show_path

    js = explanation_path(out)
    if getattr(exc, "path", None) != js:
        return exc
    if isinstance(exc, DestinationExists):
        return OutputError(f"{show_path(js)} already exists (Kelly writes the explanation of {show_path(out)} "
                           f"there); use --force to replace it")
    if isinstance(exc, OutputIsInput):
        return OutputError(f"{show_path(js)} is this command's input, and also where the explanation of "
                           f"{show_path(out)} would go; Kelly never writes over its input, even with --force: "
                           f"choose another output name")
    return exc


def _taken(out: Path, inputs, extra_suffixes=()) -> bool:
    """Whether a default name is taken (exists, by anything); other problems (no permission) raise.

    ``extra_suffixes`` (".wav", ".png" ...) are files written beside the MIDI as well
    (``--wav``, ``--plot``, ``--musicxml`` without a name): the name is taken if one exists.
    """
    from kelly.fileio import check_destinations

    paths = [out, explanation_path(out), *(out.with_suffix(suffix) for suffix in extra_suffixes)]
    try:
        check_destinations(paths, overwrite=False, inputs=inputs)
    except OutputError:
        if any(os.path.lexists(p) for p in paths):
            return True
        raise
    return False


def check_output(requested: str | None, stem: str, *, force: bool = False, inputs=(), flag: str = "--out") -> None:
    """Fail before composing if an explicit output (or, with ``force``, the default one) cannot be written.

    The MIDI and its ``.json`` are both destinations: an existing one is refused unless
    ``force``; a symbolic link, folder or device, or a file in ``inputs``, always.
    """
    if requested or force:
        from kelly.fileio import check_destinations

        out = output_path(requested, stem, flag=flag)
        try:
            check_destinations([out, explanation_path(out)], overwrite=force, inputs=inputs)
        except OutputError as exc:
            raise _pair_error(exc, out) from None


def write_composition(result, requested: str | None, stem: str, *, flag: str = "--out", force: bool = False,
                      inputs=(), extra_suffixes=()) -> Path:
    """Write the MIDI and its explanation JSON beside it as a pair; returns the MIDI path.

    Parameters
    ----------
    requested : str or None
        The user's ``--out``; ``None`` writes ``kelly-out/<stem>.mid``, or the first free
        ``<stem>-N.mid`` when that (or its ``.json``) exists, so repeated runs never fail
        and never replace anything (with ``force``, the default name is replaced instead).
    force : bool
        Replace existing destinations (``--force``); without it they are refused.
    inputs : paths
        Files the command read (an intent file): never written over, even with ``force``.
    extra_suffixes : suffixes
        Files that will be written beside the MIDI afterwards (``".wav"`` for ``--wav``
        ...): a default name whose one of these exists is skipped like a taken one.

    The explanation records the MIDI's SHA-256 (``files.midi_sha256``) and both are
    written by :func:`kelly.fileio.write_files_atomic`, explanation first: see there for
    what a kill at any moment can leave.

    Raises
    ------
    OutputError
        If a destination exists (without ``force``), is an input, is not a regular file,
        or cannot be written.
    """
    import hashlib

    from kelly.contracts import Files
    from kelly.fileio import DestinationExists, json_bytes, write_files_atomic

    midi = result.song.to_bytes()
    digest = hashlib.sha256(midi).hexdigest()
    explicit = bool(requested) or force
    candidates = [output_path(requested, stem, flag=flag)] if explicit else _default_candidates(stem)
    for out in candidates:
        if not explicit and _taken(out, inputs, extra_suffixes):
            continue
        js = explanation_path(out)
        result.explanation.files = Files(midi=str(out), explanation=str(js), midi_sha256=digest)
        try:
            write_files_atomic({js: json_bytes(result.explanation.to_json()), out: midi}, overwrite=force,
                               inputs=inputs)
        except DestinationExists as exc:
            if explicit:
                raise _pair_error(exc, out) from None
            continue  # taken a moment ago by another run: try the next name
        except OutputError as exc:
            raise _pair_error(exc, out) from None
        return out
    raise OutputError(f"{DEFAULT_OUT_DIR}/{stem}.mid and the next {MAX_FREE_NAMES - 1} numbered names are all taken; "
                      f"give --out FILE.mid or --force")


def _model_inputs(args) -> list[Path]:
    """The model files ``--models-dir`` offers: inputs, so ``--out DIR/dynamicsengine.mid`` cannot replace one."""
    if args.no_ml or not args.models_dir:
        return []
    from kelly.ml.specs import SPECS

    folder = Path(args.models_dir).expanduser()
    return [folder / spec.file_name for spec in SPECS.values()]


#: The extra outputs: flag, attribute, default suffix, accepted suffixes.
_EXTRAS = (("--wav", "wav", ".wav", (".wav",)), ("--plot", "plot", ".png", (".png",)),
           ("--musicxml", "musicxml", ".musicxml", (".musicxml", ".xml")))


def _extra_names(args) -> dict[str, Path | None]:
    """``{attr: path, or None for beside the MIDI}`` of the ``--wav/--plot/--musicxml`` asked for.

    Explicit names must have the right suffix (so ``--wav "I feel grief"``, where the
    flag swallowed the text, says so instead of composing nothing).
    """
    from kelly.commands.render import check_suffix

    wanted: dict[str, Path | None] = {}
    for flag, attr, _suffix, suffixes in _EXTRAS:
        value = getattr(args, attr, None)
        if value is None:
            continue
        wanted[attr] = check_suffix(value, flag, suffixes, hint=f" (for a name beside the MIDI, put {flag} after "
                                                                f"the text or last)") if value else None
    return wanted


def _extras(args, stem: str, inputs, wanted: dict[str, Path | None]) -> list:
    """Check the ``--wav/--plot/--musicxml`` destinations before composing; returns the inputs for them.

    Every destination that is known now (an explicit name, or one beside an explicit
    ``--out``/``--force`` MIDI) is checked like the MIDI (an existing file is refused
    without ``--force``). For ``--wav`` the soundfont and FluidSynth are looked up now, so a
    missing one fails before the work; the soundfont joins the inputs (never written over).
    """
    from kelly.fileio import check_destinations

    inputs = list(inputs)
    known = [p for p in wanted.values() if p is not None]
    if args.out or args.force:
        midi = output_path(args.out, stem)
        known += [midi.with_suffix(suffix) for _f, attr, suffix, _s in _EXTRAS if attr in wanted and not wanted[attr]]
    check_destinations(known, overwrite=args.force, inputs=inputs)
    if "wav" in wanted:
        from kelly.commands.render import parse_voice
        from kelly.render.audio import find_soundfont, find_synth, synth_available

        voice = parse_voice(args.voice, args.soundfont)
        if voice[0] == "ddsp":
            from kelly.ddsp.voice import DdspVoice

            DdspVoice(voice[1])  # a missing or broken voice is reported before composing
        inputs.append(find_soundfont(voice[1] if voice[0] == "soundfont" else args.soundfont))
        check_destinations(known, overwrite=args.force, inputs=inputs)
        if not synth_available():
            find_synth()  # raises with how to install FluidSynth
    return inputs


def _write_extras(args, result, midi: Path, wanted: dict, inputs) -> list[str]:
    """Write the ``--wav/--plot/--musicxml`` files for the composition just written; their "Wrote:" lines.

    A failure here (FluidSynth failing, a full disk) is one line that also says which files
    were already written.
    """
    from kelly.commands import render
    from kelly.errors import KellyError

    lines, written = [], [str(midi), str(explanation_path(midi))]
    defaults = {attr: suffix for _f, attr, suffix, _s in _EXTRAS}
    for attr in ("wav", "plot", "musicxml"):
        if attr not in wanted:
            continue
        dest = wanted[attr] or midi.with_suffix(defaults[attr])
        try:
            if attr == "wav":
                voice = render.parse_voice(args.voice, args.soundfont)
                sf = voice[1] if voice[0] == "soundfont" else args.soundfont
                lines.append(render.write_wav(midi, dest, soundfont=sf, force=args.force, voice=voice,
                                              seed=args.seed))
            elif attr == "plot":
                lines.append(render.write_plot(result.song, dest, chords=_chords(result), force=args.force,
                                               inputs=inputs))
            else:
                score = result.score if getattr(result, "score", None) is not None else result.song
                lines.append(render.write_score(score, dest, title=result.song.title, force=args.force,
                                                inputs=inputs))
        except KellyError as exc:
            raise KellyError(f"{exc} (already written: {', '.join(written)})") from None
        written.append(str(dest))
    return lines


def _chords(result) -> list[tuple[int, str]] | None:
    """``[(tick, symbol)]`` of every chord for the plot, from the explanation's ``progression.chords``."""
    chords = result.explanation.progression.chords
    song = result.song
    beat = max(1, song.ppq * 4 // song.time_signature[1])
    return [(c.start_tick(song.bar_ticks, beat), c.symbol) for c in chords] or None


def run(args) -> int:
    from kelly.composer import ComposeOptions, get_composer

    wanted = _extra_names(args)
    if "wav" not in wanted and args.voice != "soundfont":
        raise InputError("--voice chooses who plays --wav; add --wav")
    text, path = resolve_emotions(args)
    stem = slugify(text) if text else slugify("-".join(e.label for e in path))
    inputs = _model_inputs(args)
    check_output(args.out, stem, force=args.force, inputs=inputs)  # before the work, not after it
    extra_inputs = _extras(args, stem, inputs, wanted) if wanted else inputs
    opts = ComposeOptions(bars=args.bars, seed=args.seed, complexity=args.complexity, humanize=args.humanize,
                          key=args.key, breaks=tuple(args.breaks), auto_breaks=not args.no_auto_breaks,
                          meter=args.meter)
    hints, models = _network_hints(args, path[0], path)
    if args.transformer_model is not None and args.composer == "rules":
        raise InputError("--transformer-model is for --composer transformer or hybrid")
    extra = {"model": args.transformer_model} if args.composer != "rules" else {}
    composer = get_composer(args.composer, models=models, **extra)
    result = composer.compose(path if len(path) > 1 else path[0], opts, controls=hints)
    explanation = result.explanation
    explanation.text = text or None
    beside = tuple(suffix for _f, attr, suffix, _s in _EXTRAS if attr in wanted and wanted[attr] is None)
    midi = write_composition(result, args.out, stem, flag="--out", force=args.force, inputs=inputs,
                             extra_suffixes=beside)
    lines = _write_extras(args, result, midi, wanted, extra_inputs) if wanted else []
    if args.json:
        json.dump(explanation.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        for line in lines:  # standard output holds the JSON alone
            print(line, file=sys.stderr)
    else:
        print(summary(explanation))
        if lines:
            print("\n".join(lines))
    return 0


def summary(ex) -> str:
    """A few human lines about a composition (``ex`` is a :class:`kelly.contracts.Explanation`)."""
    emo, par = ex.emotion, ex.parameters
    lines = [
        f"Feeling: {emo.emotion} ({emo.family}), valence {emo.valence:+.2f}, arousal {emo.arousal:.2f}, "
        f"dominance {emo.dominance:.2f}, confidence {emo.confidence:.2f}",
    ]
    if ex.journey:
        lines.append("Journey: " + " -> ".join(ex.journey))
    elif emo.secondary:
        # a mixed feeling is composed as one blend; say what else was heard, and how to hear the turn instead
        heard = ", ".join(f"{x.emotion} ({x.weight:.2f})" for x in emo.secondary[:3])
        lines.append(f"Also:    {heard} in the blend; to move from {emo.secondary[0].emotion} to {emo.emotion} "
                     f"instead: kelly compose --journey {emo.secondary[0].emotion},{emo.emotion}")
    tempos = [p.bpm for p in ex.tempo_map]
    tempo = (f"{tempos[0]:g} BPM" if max(tempos) - min(tempos) < 0.5
             else f"{tempos[0]:g} BPM (moving {min(tempos):g}-{max(tempos):g})") if tempos else f"{par.tempo_bpm} BPM"
    metre = "" if ex.time_signature == "4/4" else f" in {ex.time_signature}"
    lines.append(f"Music:   {par.key}, {tempo}, {ex.bars} bars{metre}, base velocity {par.base_velocity}, "
                 f"{par.timing_feel.replace('_', '-')} feel")
    chords = ex.progression.chords
    lines.append("Chords:  " + " ".join(c.numeral for c in chords[:8]) + (" ..." if len(chords) > 8 else ""))
    if ex.ending is not None:
        lines.append(f"Ending:  {ex.ending.statement}")
    parts = ", ".join(f"{p.name} {p.notes}" for p in ex.parts)
    lines.append(f"Parts:   {parts}")
    if ex.rule_breaks:
        lines.append("Rules broken: " + ", ".join(f"{r.rule} ({r.severity:.2f})" for r in ex.rule_breaks))
    lines.append(f"Models:  {ex.models.note}")
    stepped = ((ex.engines or {}).get("melody") or {}).get("network") or {}
    if stepped.get("live"):
        across = f" across {stepped['sections']} sections" if stepped.get("sections", 1) > 1 else ""
        lines.append(f"Melody:  the melody network stepped {stepped['bars_stepped']} bars, one per bar, its state "
                     f"carried{across}")
    if ex.files is not None:
        lines.append(f"Wrote:   {ex.files.midi} and {ex.files.explanation}")
    return "\n".join(lines)
