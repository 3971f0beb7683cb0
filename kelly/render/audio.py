"""MIDI → audio through FluidSynth and a General MIDI soundfont.

Kelly does not link a synthesizer: it runs Debian's ``fluidsynth`` program (found on
``PATH``) in fast-render mode, which writes a WAV file as fast as the machine allows::

    fluidsynth -n -i -q -F raw.wav -T wav -O float -r SR -g GAIN SOUNDFONT.sf2 in.mid

Kelly then checks the float render (not empty, not silent, the right rate), turns it
down as a whole if it would clip (peak above -1 dBFS), and writes a 16-bit stereo WAV.
:func:`render_song` returns the samples instead, at a fixed gain by default so that the
levels of separate renders compare (see its ``avoid_clipping``).

If there is no ``fluidsynth`` program but the ``pyfluidsynth`` module is importable,
:func:`render_midi_file` and :func:`render_song` fall back to it through pretty_midi
(mono, slower). Neither is a dependency of Kelly: ``scripts/install-synth.sh`` (run by
``make setup``) installs Debian's ``fluidsynth`` and ``timgm6mb-soundfont`` where it can.

Soundfonts are looked up in this order (:func:`find_soundfont`): the ``soundfont``
argument (``--soundfont``), the ``KELLY_SOUNDFONT`` environment variable,
``/usr/share/sounds/sf2/{FluidR3_GM,TimGM6mb,default-GM}.sf2``, any ``.sf2``/``.sf3`` in
``/usr/share/soundfonts/``, and last the ``TimGM6mb.sf2`` that ships inside pretty_midi's
wheel. A soundfont must be a RIFF ``sfbk`` file (what ``.sf2`` and ``.sf3`` files are):
FluidSynth itself renders silence, and exits 0, when given anything else.

What is rendered is the song as :func:`kelly.song.read_midi` reads it (notes, programs,
channels, tempo map), written back out by Kelly: every input goes through the project's
one hardened MIDI reader first, so a corrupt file is one clear line and FluidSynth only
ever sees well-formed MIDI whose length Kelly knows. Controller events (sustain pedal,
pitch bend, volume) in MIDI files from elsewhere are therefore not heard; Kelly writes none.

Limits: sample rates from :data:`MIN_SAMPLE_RATE` to :data:`MAX_SAMPLE_RATE` (FluidSynth's
own range); at most :data:`MAX_AUDIO_SECONDS` of music (one hour); FluidSynth must finish
within a minute plus the length of the music (real time or faster; it usually runs 30-60
times faster). A render that comes back silent is an error that quotes FluidSynth's
messages (one line).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np

from kelly.errors import FileFormatError, InputError, KellyError
from kelly.fileio import scratch_dir

#: FluidSynth's accepted sample rates (``synth.sample-rate``), in Hz.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 96000
DEFAULT_SAMPLE_RATE = 44100
#: Longest piece rendered, in seconds of music (before the release tail).
MAX_AUDIO_SECONDS = 3600.0
#: FluidSynth gets RENDER_TIMEOUT_BASE seconds plus RENDER_TIMEOUT_PER_SECOND per second of music to finish.
RENDER_TIMEOUT_BASE = 60.0
RENDER_TIMEOUT_PER_SECOND = 1.0
#: Master gain passed to FluidSynth (its default, 0.2, is quiet). FluidSynth renders in floating point;
#: a WAV file whose render would peak above :data:`PEAK_CEILING` is turned down as a whole to peak
#: there (a gain change, never a compressor), so quiet pieces stay quiet and loud ones never clip.
#: Measured at this gain: grief or despair peak near -6 dBFS untouched; full mixes of triumphant or
#: elation would peak up to +15 dBFS (FluidR3) and are turned down; soloed parts up to +5 dBFS.
GAIN = 0.5
#: Highest peak written to the 16-bit WAV: -1 dBFS.
PEAK_CEILING = 10 ** (-1 / 20)
#: A render whose peak stays below this (about 3 LSB of 16-bit audio) counts as silent.
SILENCE_PEAK = 1e-4
#: Where General MIDI soundfonts are looked for, after ``soundfont=`` and ``$KELLY_SOUNDFONT``.
SOUNDFONT_FILES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
                   "/usr/share/sounds/sf2/default-GM.sf2")
SOUNDFONT_DIRS = ("/usr/share/soundfonts",)
#: Places to look for the ``fluidsynth`` program when it is not on ``PATH``.
SYNTH_FALLBACKS = ("/usr/bin/fluidsynth", "/usr/local/bin/fluidsynth", "/opt/homebrew/bin/fluidsynth")
ENV_SOUNDFONT = "KELLY_SOUNDFONT"

NO_SYNTH_MESSAGE = ("no FluidSynth found: install Debian's fluidsynth (apt-get install fluidsynth timgm6mb-soundfont) "
                    "or run make setup")


class SynthNotFound(KellyError):
    """Neither the ``fluidsynth`` program nor the ``pyfluidsynth`` module is available."""

    def __init__(self, message: str = NO_SYNTH_MESSAGE) -> None:
        super().__init__(message)


class SoundfontError(InputError):
    """No usable soundfont: none found, missing, unreadable, or not a RIFF ``.sf2``/``.sf3`` file."""


class RenderError(KellyError):
    """FluidSynth failed, timed out, or produced no (or silent) audio."""


# --------------------------------------------------------------------------- finding things
def find_synth() -> str:
    """The path of the ``fluidsynth`` program (``PATH`` first, then :data:`SYNTH_FALLBACKS`).

    Raises
    ------
    SynthNotFound
        With how to install it.
    """
    found = shutil.which("fluidsynth")
    if found:
        return found
    for candidate in SYNTH_FALLBACKS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SynthNotFound()


def _pyfluidsynth_available() -> bool:
    return importlib.util.find_spec("fluidsynth") is not None and importlib.util.find_spec("pretty_midi") is not None


def synth_available() -> bool:
    """Whether Kelly can render audio here (the ``fluidsynth`` program, or ``pyfluidsynth``)."""
    try:
        find_synth()
        return True
    except SynthNotFound:
        return _pyfluidsynth_available()


def check_soundfont(path: str | os.PathLike, *, source: str = "soundfont") -> Path:
    """``path`` if it is a readable RIFF ``sfbk`` file (a ``.sf2`` or ``.sf3`` soundfont).

    Only the RIFF header and the headers of the top-level chunks are read (soundfonts are
    often 100 MB and more): the sample (``sdta``) and preset (``pdta``) lists must be
    there. A device, folder or named pipe is refused without opening it.

    Raises
    ------
    SoundfontError
        If it is missing, not a regular file, unreadable, truncated or not a soundfont.
    """
    from kelly.fileio import show_path

    p = Path(os.path.expanduser(os.fspath(path)))
    shown = show_path(p)
    hint = "give a General MIDI .sf2 or .sf3 file, e.g. /usr/share/sounds/sf2/TimGM6mb.sf2"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SoundfontError(f"{source} {shown}: no such file; {hint}") from None
    except (OSError, ValueError) as exc:
        raise SoundfontError(f"{source} {shown}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SoundfontError(f"{source} {shown}: is {kind}; {hint}")
    lists: list[bytes] = []
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            head = os.pread(fd, 12, 0)
            pos = 12
            for _ in range(16):  # the top-level chunks: LIST INFO, LIST sdta, LIST pdta (a few reads in all)
                chunk = os.pread(fd, 12, pos)
                if len(chunk) < 8:
                    break
                if chunk[:4] == b"LIST" and len(chunk) == 12:
                    lists.append(chunk[8:12])
                size = int.from_bytes(chunk[4:8], "little")
                pos += 8 + size + (size & 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SoundfontError(f"{source} {shown}: cannot read it ({exc.strerror or exc})") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundfontError(f"{source} {shown}: not a soundfont (a .sf2/.sf3 file starts with RIFF....sfbk); {hint}")
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared > st.st_size:
        raise SoundfontError(f"{source} {shown}: truncated soundfont ({st.st_size:,} bytes, its header says "
                             f"{declared:,}); {hint}")
    missing = [name.decode() for name in (b"sdta", b"pdta") if name not in lists]
    if missing:
        raise SoundfontError(f"{source} {shown}: not a complete soundfont (no {' or '.join(missing)} chunk: "
                             f"{'samples' if 'sdta' in missing else 'presets'} missing); {hint}")
    return p


def _pretty_midi_soundfont() -> Path | None:
    """pretty_midi's bundled ``TimGM6mb.sf2``, found without importing pretty_midi."""
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "TimGM6mb.sf2"


def soundfont_candidates() -> list[Path]:
    """The places searched after ``soundfont=`` and ``$KELLY_SOUNDFONT``, in order."""
    found = [Path(p) for p in SOUNDFONT_FILES]
    for folder in SOUNDFONT_DIRS:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        found.extend(Path(folder) / name for name in entries if name.lower().endswith((".sf2", ".sf3")))
    bundled = _pretty_midi_soundfont()
    if bundled is not None:
        found.append(bundled)
    return found


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with.

    Order: ``explicit`` (``--soundfont``), then ``$KELLY_SOUNDFONT``, then
    :func:`soundfont_candidates` (system soundfonts, then pretty_midi's TimGM6mb). An
    explicit or environment soundfont that is not usable is an error (it is never
    silently replaced by another); among the searched places the first usable one wins.

    Raises
    ------
    SoundfontError
        If the given soundfont is not usable, or none is found.
    """
    if explicit is not None and os.fspath(explicit) != "":
        return check_soundfont(explicit)
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env:
        return check_soundfont(env, source=f"soundfont ${ENV_SOUNDFONT}")
    for candidate in soundfont_candidates():
        try:
            return check_soundfont(candidate)
        except SoundfontError:
            continue
    raise SoundfontError("no General MIDI soundfont found: install Debian's timgm6mb-soundfont (apt-get install "
                         f"timgm6mb-soundfont), or give --soundfont FILE.sf2, or set {ENV_SOUNDFONT}")


# --------------------------------------------------------------------------- checks
def check_sample_rate(sample_rate) -> int:
    """``sample_rate`` as an int if FluidSynth accepts it (8,000-96,000 Hz).

    Raises
    ------
    InputError
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)) or \
            not float(sample_rate).is_integer() or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"--sample-rate must be a whole number of Hz from {MIN_SAMPLE_RATE:,} to "
                         f"{MAX_SAMPLE_RATE:,} (e.g. 44100 or 48000), got {sample_rate!r}")
    return int(sample_rate)


def song_seconds(song, tick: int | None = None) -> float:
    """Seconds from the start of ``song`` to ``tick`` (default: the end of its last note), by its tempo map."""
    end = song.end_tick() if tick is None else int(tick)
    tempos = sorted(song.tempos) or [(0, 120.0)]
    seconds, at, bpm = 0.0, 0, 120.0
    for change, new_bpm in tempos:
        if change >= end:
            break
        if change > at:
            seconds += (change - at) * 60.0 / (bpm * song.ppq)
            at = change
        bpm = new_bpm if new_bpm > 0 else bpm
    return seconds + (end - at) * 60.0 / (bpm * song.ppq)


def _fmt_duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _playable(song, name: str):
    """The song as it will be rendered: only what sounds, length checked.

    Markers and tempo changes after the last note are dropped (they would make FluidSynth
    render silence after the music).

    Raises
    ------
    InputError
        If the song has no notes, or lasts longer than :data:`MAX_AUDIO_SECONDS`.
    """
    end = song.end_tick()
    if song.note_count() == 0 or end <= 0:
        raise InputError(f"{name} has no notes to render")
    seconds = song_seconds(song, end)
    if seconds > MAX_AUDIO_SECONDS:
        raise InputError(f"{name} lasts {_fmt_duration(seconds)}; Kelly renders at most "
                         f"{_fmt_duration(MAX_AUDIO_SECONDS)} of audio at a time, so cut it into parts")
    tempos = [(t, b) for t, b in sorted(song.tempos) if t < end] or [(0, 120.0)]
    return replace(song, tempos=tempos, markers=[], warnings=[]), seconds


# --------------------------------------------------------------------------- running FluidSynth
def _one_line(text: str, limit: int = 300) -> str:
    """FluidSynth's messages as one printable line: "failed" lines first, then errors; deduplicated, shortened."""
    lines = ["".join(ch if ch.isprintable() else "?" for ch in " ".join(line.split())) for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("**")]  # GLib's CRITICAL noise
    failed = [line for line in lines if "failed to" in line.lower()]
    errors = [line for line in lines if "error" in line.lower() and line not in failed]
    chosen, seen = [], set()
    for line in (failed + errors) or lines[-3:]:
        if line not in seen:
            seen.add(line)
            chosen.append(line)
    out = "; ".join(chosen) or "no message"
    return out if len(out) <= limit else out[:limit - 1] + "…"


def _run_fluidsynth(synth: str, soundfont: Path, midi: Path, wav: Path, sample_rate: int, timeout: float,
                    *, effects: bool = True) -> str:
    """Render ``midi`` to a 32-bit float stereo ``wav``; returns FluidSynth's stderr (for messages).

    ``effects=False`` turns FluidSynth's reverb and chorus off (dry notes, as the DDSP voice trains on).
    """
    dry = [] if effects else ["-R", "0", "-C", "0"]
    cmd = [synth, "-n", "-i", "-q", *dry, "-F", os.fspath(wav), "-T", "wav", "-O", "float", "-r", str(sample_rate),
           "-g", f"{GAIN:g}", os.fspath(soundfont), os.fspath(midi)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"FluidSynth took longer than {timeout:.0f} s to render {midi.name}; "
                          "try a smaller soundfont (e.g. TimGM6mb.sf2) or a shorter piece") from None
    except OSError as exc:
        raise RenderError(f"cannot run FluidSynth ({synth}): {exc.strerror or exc}") from None
    err = (proc.stderr or b"").decode("utf-8", "replace") + (proc.stdout or b"").decode("utf-8", "replace")
    if proc.returncode != 0:
        _no_space_check(wav, killed_by_size_limit=proc.returncode == -signal.SIGXFSZ)
        raise RenderError(f"FluidSynth failed (exit {proc.returncode}): {_one_line(err)}")
    if "failed to load" in err.lower() and "soundfont" in err.lower():
        # FluidSynth carries on with its built-in default soundfont (or none) and exits 0: not what was asked for
        raise RenderError(f"FluidSynth could not load the soundfont {soundfont}: {_one_line(err)}")
    return err


#: Less free space than this (bytes) on the disk of FluidSynth's render means it ran out of room.
_LOW_SPACE = 1 << 20


def _no_space_check(raw: Path, *, killed_by_size_limit: bool = False) -> None:
    """Raise the one-line full-disk :class:`OutputError` when FluidSynth's ``raw`` render could not be written
    for lack of room (a file-size limit killed it, or its disk is nearly full); otherwise return.

    FluidSynth reports a full disk with no message of its own (or dies of ``SIGXFSZ`` under a
    file-size limit), which would otherwise read as "FluidSynth failed: no message".
    """
    from kelly.errors import OutputError
    from kelly.fileio import show_path

    try:
        low = shutil.disk_usage(raw.parent).free < _LOW_SPACE
    except OSError:
        low = False
    if killed_by_size_limit or low:
        raise OutputError(f"cannot write {show_path(raw)} (FluidSynth's render, in the temporary folder): no space "
                          "left: the disk is full or the file is too large for it; nothing was replaced: free some "
                          "space (or point TMPDIR at a disk with room) and run again")


def _render_pyfluidsynth(soundfont: Path, midi: Path, sample_rate: int) -> np.ndarray:  # pragma: no cover
    """Fallback without the program: pyfluidsynth through pretty_midi (mono, duplicated to stereo)."""
    import pretty_midi

    audio = pretty_midi.PrettyMIDI(os.fspath(midi)).fluidsynth(fs=sample_rate, sf2_path=os.fspath(soundfont))
    return np.repeat(np.asarray(audio, dtype=np.float32)[:, None], 2, axis=1)


def _write_float_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:  # pragma: no cover
    """Write (n, channels) samples as a 32-bit float WAV, the format FluidSynth is asked for."""
    data = np.ascontiguousarray(audio, dtype="<f4")
    channels = data.shape[1]
    body = data.tobytes()
    fmt = (3).to_bytes(2, "little") + channels.to_bytes(2, "little") + sample_rate.to_bytes(4, "little") + \
        (sample_rate * 4 * channels).to_bytes(4, "little") + (4 * channels).to_bytes(2, "little") + \
        (32).to_bytes(2, "little")
    with open(path, "wb") as out:
        out.write(b"RIFF" + (4 + 8 + len(fmt) + 8 + len(body)).to_bytes(4, "little") + b"WAVE")
        out.write(b"fmt " + len(fmt).to_bytes(4, "little") + fmt)
        out.write(b"data" + len(body).to_bytes(4, "little") + body)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float32 samples in [-1, 1), shape (n, channels), and its sample rate.

    Raises
    ------
    FileFormatError
        If it is not a 16-bit PCM WAV file.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            channels, width, rate, frames = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(),
                                             wav.getnframes())
            if width != 2:
                raise FileFormatError(f"{path}: {8 * width}-bit WAV; Kelly reads 16-bit PCM")
            data = wav.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise FileFormatError(f"{path}: not a usable WAV file ({exc})") from None
    pcm = np.frombuffer(data, dtype="<i2")
    pcm = pcm[: len(pcm) - len(pcm) % channels].reshape(-1, channels)
    return pcm.astype(np.float32) / 32768.0, rate


def wav_stats(path: str | os.PathLike, *, chunk_frames: int = 1 << 20) -> dict:
    """Frames, sample rate, channels, peak and RMS of a 16-bit PCM WAV, read in chunks (any length).

    Raises
    ------
    FileFormatError
        If it is not a 16-bit PCM WAV file.
    """
    peak, total, squares = 0.0, 0, 0.0
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if width != 2:
                raise FileFormatError(f"{path}: {8 * width}-bit WAV; Kelly reads 16-bit PCM")
            while True:
                data = wav.readframes(chunk_frames)
                if not data:
                    break
                pcm = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
                peak = max(peak, float(np.max(np.abs(pcm))) if pcm.size else 0.0)
                squares += float(np.dot(pcm, pcm))
                total += pcm.size
    except (wave.Error, EOFError) as exc:
        raise FileFormatError(f"{path}: not a usable WAV file ({exc})") from None
    frames = total // max(1, channels)
    return {"frames": frames, "sample_rate": rate, "channels": channels, "seconds": frames / rate if rate else 0.0,
            "peak": peak, "rms": (squares / total) ** 0.5 if total else 0.0}


def _float_wav(path: Path) -> tuple[np.ndarray, int]:
    """The samples of the IEEE-float WAV FluidSynth writes, memory-mapped: shape (n, channels), and the rate.

    Python's ``wave`` module reads only PCM, so the RIFF chunks are walked here.

    Raises
    ------
    FileFormatError
        If it is not a 32-bit float WAV.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise FileFormatError("not a WAV file")
        fmt = None
        pos = 12
        while pos + 8 <= size:
            handle.seek(pos)
            chunk = handle.read(8)
            cid, length = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"fmt ":
                body = handle.read(min(length, 64))
                if len(body) < 16:
                    raise FileFormatError("short fmt chunk")
                tag, channels, rate = (int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little"),
                                       int.from_bytes(body[4:8], "little"))
                bits = int.from_bytes(body[14:16], "little")
                if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                    tag = int.from_bytes(body[24:26], "little")
                fmt = (tag, channels, rate, bits)
            elif cid == b"data":
                if fmt is None or fmt[0] != 3 or fmt[3] != 32 or fmt[1] < 1:
                    raise FileFormatError(f"not 32-bit float audio (format {fmt})")
                start = pos + 8
                length = min(length, size - start)
                frames = length // (4 * fmt[1])
                if frames == 0:
                    return np.zeros((0, fmt[1]), dtype=np.float32), fmt[2]
                data = np.memmap(path, dtype="<f4", mode="r", offset=start, shape=(frames, fmt[1]))
                return data, fmt[2]
            pos += 8 + length + (length & 1)
    raise FileFormatError("no audio data")


def _checked_raw(raw: Path, sample_rate: int, stderr: str, what: str,
                 *, chunk_frames: int = 1 << 18) -> tuple[np.ndarray, float]:
    """FluidSynth's float render ``raw`` (memory-mapped, shape (n, channels)) and its peak, after checking it.

    Raises
    ------
    RenderError
        If the render is missing, unreadable, empty, at the wrong rate, not finite or
        silent (quoting FluidSynth).
    """
    if not raw.exists() or raw.stat().st_size == 0:
        _no_space_check(raw)
        raise RenderError(f"FluidSynth wrote no audio for {what}: {_one_line(stderr)}")
    try:
        samples, rate = _float_wav(raw)
    except (FileFormatError, OSError, ValueError) as exc:
        _no_space_check(raw)
        raise RenderError(f"FluidSynth wrote an unreadable WAV for {what} ({exc}): {_one_line(stderr)}") from None
    if rate != sample_rate:
        raise RenderError(f"FluidSynth wrote {what} at {rate} Hz instead of {sample_rate} Hz")
    if len(samples) == 0:
        raise RenderError(f"FluidSynth wrote no audio for {what}: {_one_line(stderr)}")
    peak = 0.0
    for at in range(0, len(samples), chunk_frames):
        block = np.asarray(samples[at:at + chunk_frames])
        if not np.all(np.isfinite(block)):
            raise RenderError(f"FluidSynth wrote invalid samples (NaN or infinite) for {what}")
        peak = max(peak, float(np.max(np.abs(block))))
    if peak < SILENCE_PEAK:
        raise RenderError(f"FluidSynth rendered {what} as silence (is the soundfont a General MIDI one?): "
                          f"{_one_line(stderr)}")
    return samples, peak


def _stereo(block: np.ndarray) -> np.ndarray:
    if block.shape[1] == 1:
        return np.repeat(block, 2, axis=1)
    return block[:, :2]


def _write_pcm(samples: np.ndarray, peak: float, wav, sample_rate: int,
               *, chunk_frames: int = 1 << 18) -> dict:
    """Write checked float samples to ``wav`` (a path or a seekable binary file) as 16-bit stereo PCM, turned
    down as a whole if they would clip.

    Returns
    -------
    dict
        :func:`wav_stats`-like figures of what was written, plus ``raw_peak`` and
        ``gain_db`` (the change applied: 0, or negative when turned down).
    """
    scale = min(1.0, PEAK_CEILING / peak)
    squares, frames = 0.0, 0
    with wave.open(wav if hasattr(wav, "write") else os.fspath(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        for at in range(0, len(samples), chunk_frames):
            block = _stereo(np.asarray(samples[at:at + chunk_frames], dtype=np.float64) * scale)
            squares += float(np.sum(block * block))
            frames += len(block)
            out.writeframes(np.clip(np.round(block * 32767.0), -32768, 32767).astype("<i2").tobytes())
    return {"frames": frames, "sample_rate": sample_rate, "channels": 2, "seconds": frames / sample_rate,
            "peak": peak * scale, "rms": (squares / max(1, 2 * frames)) ** 0.5, "raw_peak": peak,
            "gain_db": 20 * float(np.log10(scale))}


def _render_raw(song, name: str, soundfont: Path, sample_rate: int, workdir: Path,
                *, effects: bool = True) -> tuple[np.ndarray, float]:
    """Render ``song`` with FluidSynth into ``workdir``; returns its checked float samples and peak."""
    playable, seconds = _playable(song, name)
    midi = workdir / "render.mid"
    midi.write_bytes(playable.to_bytes())
    raw = workdir / "raw.wav"
    try:
        synth = find_synth()
    except SynthNotFound:
        if not _pyfluidsynth_available():
            raise
        _write_float_wav(raw, _render_pyfluidsynth(soundfont, midi, sample_rate), sample_rate)  # pragma: no cover
        stderr = ""  # pragma: no cover
    else:
        timeout = RENDER_TIMEOUT_BASE + RENDER_TIMEOUT_PER_SECOND * seconds
        stderr = _run_fluidsynth(synth, soundfont, midi, raw, sample_rate, timeout, effects=effects)
    return _checked_raw(raw, sample_rate, stderr, name)


def _render_to(song, name: str, wav, soundfont: Path, sample_rate: int, workdir: Path) -> dict:
    """Render ``song`` into the 16-bit WAV file ``wav`` (a path or a binary file); returns figures of it (see
    :func:`_write_pcm`)."""
    samples, peak = _render_raw(song, name, soundfont, sample_rate, workdir)
    try:
        return _write_pcm(samples, peak, wav, sample_rate)
    finally:
        del samples  # the memory map, before its file goes


# --------------------------------------------------------------------------- public API
def render_song(song, *, soundfont: str | os.PathLike | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                avoid_clipping: bool = False, effects: bool = True) -> np.ndarray:
    """Render a :class:`~kelly.song.Song` to audio in memory.

    Parameters
    ----------
    song : kelly.song.Song
    soundfont : path, optional
        A ``.sf2``/``.sf3`` file; default: see :func:`find_soundfont`.
    sample_rate : int > 0
        8,000-96,000 Hz.
    avoid_clipping : bool
        ``False`` (default): FluidSynth's output at the fixed :data:`GAIN`, so the levels
        of separate renders compare (a soloed track against another); the rare samples
        beyond full scale are clipped (loud full mixes: under 1 % of samples, RMS within
        0.3 dB). ``True``: a render that would peak above -1 dBFS is turned down as a
        whole instead, as WAV files are (:func:`render_midi_file`).
    effects : bool
        ``False``: FluidSynth's reverb and chorus off (the DDSP voice's training notes).

    Returns
    -------
    audio : np.ndarray [shape=(n, 2), dtype=float32]
        Stereo samples in [-1, 1]; ``n / sample_rate`` is the music's length plus
        FluidSynth's release tail (a few seconds). Temporary files are removed.

    Raises
    ------
    InputError
        Bad sample rate, a song with no notes or longer than an hour.
    SoundfontError, SynthNotFound, RenderError
    """
    sample_rate = check_sample_rate(sample_rate)
    sf = find_soundfont(soundfont)
    name = f"the song {song.title!r}" if getattr(song, "title", "") else "the song"
    with scratch_dir("kelly-render-") as tmp:
        samples, peak = _render_raw(song, name, sf, sample_rate, Path(tmp), effects=effects)
        scale = min(1.0, PEAK_CEILING / peak) if avoid_clipping else 1.0
        audio = _stereo(np.asarray(samples, dtype=np.float32) * np.float32(scale))
        del samples
    return np.clip(audio, -1.0, 1.0, out=audio)


def render_midi_file(midi_path: str | os.PathLike, wav_path: str | os.PathLike, *,
                     soundfont: str | os.PathLike | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                     force: bool = False) -> Path:
    """Render a Standard MIDI File to a 16-bit stereo WAV file, atomically.

    The MIDI file is read through :func:`kelly.song.read_midi` (a corrupt file is one
    FileFormatError line). The WAV is streamed into a temporary file in its folder
    (:func:`kelly.fileio.atomic_output`: anonymous on Linux, so a kill leaves nothing);
    only a complete, non-silent render is renamed to ``wav_path``, so a kill or a full
    disk leaves the old WAV whole. An existing ``wav_path`` is refused unless ``force``;
    the MIDI file or the soundfont is never written over.

    Returns
    -------
    Path
        ``wav_path``.

    Raises
    ------
    FileFormatError
        The MIDI file is missing or not readable MIDI.
    InputError, SoundfontError, SynthNotFound, RenderError
        See :func:`render_song`.
    OutputError
        The destination exists (without ``force``), is an input, a link, folder or device,
        or cannot be written.
    """
    from kelly.fileio import atomic_output, check_destination, show_path
    from kelly.song import read_midi

    sample_rate = check_sample_rate(sample_rate)
    dest = Path(wav_path)
    check_destination(dest, overwrite=force, inputs=(midi_path,))
    song = read_midi(midi_path)
    sf = find_soundfont(soundfont)
    inputs = (midi_path, sf)
    check_destination(dest, overwrite=force, inputs=inputs)
    if not _pyfluidsynth_available():
        find_synth()  # a clear message before any temporary file exists
    with atomic_output(dest, overwrite=force, inputs=inputs) as out:
        with scratch_dir("kelly-render-") as work:
            _render_to(song, show_path(midi_path), out, sf, sample_rate, Path(work))
    return dest


def write_samples(samples: np.ndarray, wav_path: str | os.PathLike, *, sample_rate: int, force: bool = False,
                  inputs=()) -> dict:
    """Write float samples ``[n, channels]`` to a 16-bit stereo WAV atomically, turned down as a whole if they clip.

    The same file handling as :func:`render_midi_file` (:func:`kelly.fileio.atomic_output`:
    a temporary file in the WAV's folder, renamed into place when complete; an existing file refused unless ``force``;
    ``inputs`` never written over). Returns :func:`_write_pcm`'s figures.

    Raises
    ------
    RenderError
        Non-finite or silent samples.
    OutputError
        The destination cannot be written.
    """
    from kelly.fileio import atomic_output, check_destination

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.size == 0 or not np.all(np.isfinite(samples)):
        raise RenderError("the rendered audio is empty or holds NaN samples; nothing was written")
    peak = float(np.max(np.abs(samples)))
    if peak < SILENCE_PEAK:
        raise RenderError("the render is silent; nothing was written")
    dest = Path(wav_path)
    check_destination(dest, overwrite=force, inputs=inputs)
    with atomic_output(dest, overwrite=force, inputs=inputs) as out:
        return _write_pcm(samples, peak, out, int(sample_rate))
