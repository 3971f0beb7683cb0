"""``kelly render``: hear and see a MIDI file: a WAV through FluidSynth, a piano-roll PNG, a MusicXML score.

::

    kelly render FILE.mid [--out FILE.wav] [--voice soundfont[:SF2]|ddsp[:DIR]] [--soundfont SF2]
                          [--emotion V,A,D] [--seed N] [--sample-rate 44100]
                          [--score FILE.musicxml] [--plot FILE.png] [--force]

``--voice ddsp`` renders the pitched parts with Kelly's DDSP voice (:mod:`kelly.ddsp.voice`;
drums still come from the soundfont); its timbre follows the emotion: ``--emotion``, or
the one in Kelly's explanation beside the MIDI (a journey moves through its waypoints),
or neutral.

With none of ``--out``, ``--score`` and ``--plot``, it renders ``FILE.wav`` beside the MIDI.
Every destination is checked before any work (an existing file is refused unless
``--force``; the MIDI file and the soundfont are never written over), and each file is
written atomically. The MIDI file is read through Kelly's hardened reader, so a corrupt
file is one clear line. When Kelly's explanation ``FILE.json`` lies beside the MIDI and
describes it (its ``files.midi_sha256`` matches), the plot prints its chord symbols.

The helpers here (:func:`check_suffix`, :func:`write_wav`, :func:`write_plot`,
:func:`write_score`) are shared with ``kelly compose --wav --plot --musicxml``. Heavy
libraries (numpy, matplotlib, music21) are imported inside them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kelly.commands.options import add_force, seed_arg
from kelly.errors import InputError

WAV_SUFFIXES = (".wav",)
SCORE_SUFFIXES = (".musicxml", ".xml")
PLOT_SUFFIXES = (".png",)


def register(sub) -> None:
    p = sub.add_parser("render", help="render a MIDI file to audio (WAV), a piano-roll PNG and a MusicXML score",
                       description="Render a Standard MIDI File to a WAV file through FluidSynth and a General MIDI "
                                   "soundfont, and/or draw it as a piano roll (PNG), and/or notate it as MusicXML "
                                   "(quantized to sixteenths). With none of --out, --score and --plot, writes "
                                   "FILE.wav beside the MIDI.")
    p.add_argument("midi", metavar="FILE.mid", help="the MIDI file to render")
    p.add_argument("--out", "-o", metavar="FILE.wav", help="write audio here (16-bit stereo WAV)")
    p.add_argument("--soundfont", metavar="SF2",
                   help="General MIDI soundfont (.sf2/.sf3); default: $KELLY_SOUNDFONT, then the system's "
                        "(FluidR3_GM, TimGM6mb ...)")
    p.add_argument("--voice", default="soundfont", metavar="soundfont[:SF2]|ddsp[:DIR]",
                   help="who plays: soundfont (FluidSynth, default) or ddsp (Kelly's learned voice; its drums "
                        "from the soundfont); ddsp:DIR uses a voice you trained")
    p.add_argument("--emotion", metavar="V,A,D", help="the emotion the DDSP voice's timbre follows (default: the "
                                                      "explanation beside the MIDI, else neutral 0,0.5,0.5)")
    p.add_argument("--seed", type=seed_arg, default=0, help="the DDSP voice's noise seed (default 0)")
    p.add_argument("--sample-rate", type=int, default=44100, metavar="HZ",
                   help="audio sample rate, 8000-96000 (default 44100)")
    p.add_argument("--score", metavar="FILE.musicxml", help="write a MusicXML score here (quantized to sixteenths)")
    p.add_argument("--plot", metavar="FILE.png", help="write a piano-roll PNG here")
    add_force(p, help="replace output files that already exist (never the MIDI file or the soundfont)")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- shared with compose
def check_suffix(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...], *, hint: str = "") -> Path:
    """``path`` as a Path if its name ends in one of ``suffixes`` (any case).

    Raises
    ------
    InputError
        Otherwise, saying what the flag takes, then ``hint``.
    """
    from kelly.fileio import show_path

    p = Path(path)
    if p.suffix.lower() not in suffixes or not p.stem:
        shown = show_path(os.fspath(path), 60)
        raise InputError(f"{flag} takes a {' or '.join(suffixes)} file name, got {shown!r}{hint}")
    return p


def _db(value: float) -> str:
    import math

    return f"{20 * math.log10(value):.1f} dBFS" if value > 0 else "silent"


def parse_voice(text: str, soundfont=None) -> tuple[str, str | None]:
    """``--voice`` → ``("soundfont", SF2 or None)`` or ``("ddsp", DIR or None)``."""
    kind, _, where = str(text).partition(":")
    kind = kind.strip().lower()
    if kind not in ("soundfont", "ddsp"):
        raise InputError(f"--voice takes soundfont, soundfont:FILE.sf2, ddsp or ddsp:DIR; got {text!r}")
    if kind == "soundfont" and where and soundfont:
        raise InputError("give the soundfont once: --voice soundfont:SF2 or --soundfont SF2")
    return kind, (where or (soundfont if kind == "soundfont" else None)) or None


def parse_emotion(text: str | None):
    """``--emotion V,A,D`` → a checked (V, A, D), or None."""
    if text is None:
        return None
    from kelly.ddsp.voice import check_emotion

    parts = [p for p in str(text).replace(" ", ",").split(",") if p]
    if len(parts) != 3:
        raise InputError(f"--emotion takes V,A,D (three numbers, e.g. -0.4,0.3,0.5); got {text!r}")
    try:
        return check_emotion([float(p) for p in parts])
    except ValueError:
        raise InputError(f"--emotion takes three numbers V,A,D; got {text!r}") from None


def explanation_emotion(midi: str | os.PathLike, song):
    """The emotion in Kelly's explanation beside ``midi`` (if it describes this file): ``(V, A, D)``, or for a
    journey ``[(seconds, (V, A, D)), …]`` with its waypoints spread evenly over the piece."""
    doc = _explanation(midi)
    if doc is None:
        return None
    e = doc.emotion
    start = (float(e.valence), float(e.arousal), float(e.dominance))
    names = list(doc.journey or [])
    if len(names) < 2:
        return start
    from kelly.emotion.thesaurus import state_for
    from kelly.errors import KellyError
    from kelly.render.audio import song_seconds

    try:
        points = [start] + [(s.valence, s.arousal, s.dominance) for s in (state_for(n) for n in names[1:])]
    except (KellyError, KeyError, AttributeError, TypeError):
        return start
    total = song_seconds(song)
    steps = 32  # the timbre moves in small steps between the waypoints
    out = []
    for i in range(steps):
        x = i / (steps - 1) * (len(points) - 1)
        k = min(int(x), len(points) - 2)
        w = x - k
        out.append((total * i / steps, tuple(float(a + (b - a) * w) for a, b in zip(points[k], points[k + 1]))))
    return out


def write_wav(midi: str | os.PathLike, wav: str | os.PathLike, *, soundfont=None, sample_rate: int = 44100,
              force: bool = False, voice: tuple[str, str | None] = ("soundfont", None), emotion=None,
              seed: int = 0, ddsp_voice=None) -> str:
    """Render ``midi`` to ``wav`` with the soundfont (:func:`kelly.render.audio.render_midi_file`) or the DDSP
    voice (:func:`kelly.ddsp.voice.render_song`; ``ddsp_voice``: one already loaded); returns the "Wrote:" line."""
    from kelly.render.audio import find_soundfont, render_midi_file, wav_stats

    started = time.perf_counter()
    if voice[0] == "ddsp":
        from kelly.ddsp.voice import DdspVoice, render_song
        from kelly.render.audio import write_samples
        from kelly.song import read_midi

        song = read_midi(midi)
        dv = ddsp_voice if ddsp_voice is not None else DdspVoice(voice[1])
        if emotion is None:
            emotion = explanation_emotion(midi, song)
        drums = any(t.is_drum and t.notes for t in song.tracks)
        sf = find_soundfont(soundfont) if drums else None
        audio = render_song(song, voice=dv, sample_rate=sample_rate, emotion=emotion, seed=seed, soundfont=sf)
        write_samples(audio, wav, sample_rate=sample_rate, force=force,
                      inputs=[midi] + ([sf] if sf else []) + [dv.folder / "ddsp.json"])
        out, who = Path(wav), f"the DDSP voice {dv.name}" + (f" (drums: {sf.name})" if sf else "")
    else:
        sf = find_soundfont(soundfont)
        out = render_midi_file(midi, wav, soundfont=sf, sample_rate=sample_rate, force=force)
        who = sf.name
    took = time.perf_counter() - started
    info = wav_stats(out)
    seconds = int(round(info["seconds"]))
    return (f"Wrote:   {out} ({seconds // 60}:{seconds % 60:02d} at {info['sample_rate']:,} Hz stereo, "
            f"peak {_db(info['peak'])}, RMS {_db(info['rms'])}; rendered in {took:.1f} s with {who})")


def write_plot(song, png: str | os.PathLike, *, chords=None, title=None, force: bool = False, inputs=()) -> str:
    """Draw ``song`` as a piano roll into ``png``; returns the "Wrote:" line."""
    from kelly.render.plot import DPI, figure_size, plot_song, song_bars

    out = plot_song(song, png, chords=chords, title=title, force=force, inputs=inputs)
    bars = song_bars(song, (t for t, _ in chords or []))
    width, height = figure_size(bars)
    return f"Wrote:   {out} (piano roll, {bars} bars, {round(width * DPI)} x {round(height * DPI)} px)"


def write_score(song, path: str | os.PathLike, *, title=None, force: bool = False, inputs=()) -> str:
    """Notate ``song`` as MusicXML into ``path``; returns the "Wrote:" line."""
    from kelly.render.score import write_musicxml

    out = write_musicxml(song, path, title=title, force=force, inputs=inputs)
    pitched = sum(1 for t in song.tracks if t.notes and not t.is_drum)
    drums = sum(1 for t in song.tracks if t.notes and t.is_drum)
    parts = f"{pitched} pitched part{'s' if pitched != 1 else ''}" + (f" + {drums} percussion" if drums else "")
    return f"Wrote:   {out} (MusicXML, {parts}, quantized to sixteenths)"


def explanation_chords(midi: str | os.PathLike, song) -> list[tuple[int, str]] | None:
    """``[(tick, symbol)]`` of the chords in Kelly's explanation beside ``midi``, if it describes this very file."""
    ex = _explanation(midi)
    if ex is None:
        return None
    beat = max(1, song.ppq * 4 // song.time_signature[1])
    return [(c.start_tick(song.bar_ticks, beat), c.symbol) for c in ex.progression.chords] or None


def _explanation(midi: str | os.PathLike):
    """Kelly's explanation beside ``midi`` (``FILE.json``) if it describes this very file, else None."""
    import hashlib

    from kelly.errors import KellyError
    from kelly.fileio import read_json, read_regular_file
    from kelly.song import MAX_FILE_BYTES

    js = Path(midi).with_suffix(".json")
    if not os.path.isfile(js) or os.path.islink(js):
        return None
    try:
        doc = read_json(js, what="explanation")
        digest = hashlib.sha256(read_regular_file(midi, what="MIDI file", max_bytes=MAX_FILE_BYTES)).hexdigest()
    except KellyError:
        return None
    if not isinstance(doc, dict) or (doc.get("files") or {}).get("midi_sha256") != digest:
        return None
    from pydantic import ValidationError

    from kelly.contracts import Explanation

    try:
        return Explanation.model_validate(doc)
    except ValidationError:
        return None  # not an explanation this Kelly can read


# --------------------------------------------------------------------------- the command
def run(args) -> int:
    from kelly.fileio import check_destinations
    from kelly.song import read_midi

    midi = Path(args.midi)
    voice = parse_voice(args.voice, args.soundfont)
    emotion = parse_emotion(args.emotion)
    if emotion is not None and voice[0] != "ddsp":
        raise InputError("--emotion shapes the DDSP voice's timbre; add --voice ddsp")
    wav = check_suffix(args.out, "--out", WAV_SUFFIXES) if args.out else None
    score = check_suffix(args.score, "--score", SCORE_SUFFIXES) if args.score else None
    plot = check_suffix(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    if wav is None and score is None and plot is None:
        wav = midi.with_suffix(".wav")
    inputs: list[str | os.PathLike] = [midi]
    if wav is not None:
        from kelly.render.audio import check_sample_rate

        check_sample_rate(args.sample_rate)
    destinations = [p for p in (wav, plot, score) if p is not None]
    check_destinations(destinations, overwrite=args.force, inputs=inputs)
    song = read_midi(midi)  # a bad MIDI file is reported before a missing synthesizer
    for line in song.warnings:
        print(f"kelly: warning: {line}", file=sys.stderr)
    sf = dv = None
    if wav is not None:
        from kelly.render.audio import find_soundfont, find_synth, synth_available

        if voice[0] == "ddsp":
            from kelly.ddsp.voice import DdspVoice

            dv = DdspVoice(voice[1])  # a missing or broken voice is reported before any work
        if voice[0] == "soundfont" or any(t.is_drum and t.notes for t in song.tracks):
            sf = find_soundfont(voice[1] if voice[0] == "soundfont" else args.soundfont)
            inputs.append(sf)
            check_destinations(destinations, overwrite=args.force, inputs=inputs)
            if not synth_available():
                find_synth()  # raises with how to install FluidSynth
    lines = []
    if wav is not None:
        lines.append(write_wav(midi, wav, soundfont=sf, sample_rate=args.sample_rate, force=args.force,
                               voice=voice, emotion=emotion, seed=args.seed, ddsp_voice=dv))
    if plot is not None:
        lines.append(write_plot(song, plot, chords=explanation_chords(midi, song), title=midi.stem,
                                force=args.force, inputs=inputs))
    if score is not None:
        lines.append(write_score(song, score, title=midi.stem, force=args.force, inputs=inputs))
    print("\n".join(lines))
    return 0
