"""The DDSP voice's training audio: real recordings and soundfont notes, as segments with features.

Sources (``standard``, all offline):

* Debian's ``sound-icons``: short real instrument notes (piano, guitar, trumpet, cello,
  harpsichord, clavichord, electric piano, xylophone …) at 16 kHz; files with little
  pitch (pYIN finds under 40 % of their frames voiced: clicks, percussion) are left out;
* music21's ``test_audio.wav``: 20 s of a monophonic recording, cut into 2 s segments;
* notes rendered dry (no reverb or chorus) from a General MIDI soundfont through
  FluidSynth: :data:`SOUNDFONT_PROGRAMS` across each one's range at three velocities.
  Each note is a segment that knows its pitch and velocity: the f0 check and the
  velocity → loudness map (:func:`loudness_map`) come from them.

plus any folder of recordings given with ``kelly ddsp train --audio DIR`` (WAV, FLAC,
OGG, AIFF, read by :func:`kelly.emotion.audio.load_audio`).

Every segment goes through :func:`kelly.ddsp.features.features` (the one feature
function) after being padded to at least one training window. A segment's split
(train 80 %, validation 10 %, test 10 %) is a hash of its name, so held-out notes stay
held out when sources are added. Each segment also gets **timbre descriptors**
(:func:`descriptors`) that become its emotion labels (:func:`emotion_labels`): the
decoder learns which timbre goes with which (V, A, D), and Kelly's emotion asks for it.

==========  ====================================================================================
label       from the segment's voiced frames, ranked among the training segments
==========  ====================================================================================
valence     harmonic tilt: the level of harmonics 3–10 against harmonics 1–2 (brighter = higher)
arousal     noise and brightness: the mean of the ranks of spectral flatness and of the
            spectral centroid in multiples of f0
dominance   level: the mean A-weighted loudness
==========  ====================================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from kelly.ddsp.core import HOP, SAMPLE_RATE, frames_for
from kelly.errors import InputError

SOUND_ICONS = Path("/usr/share/sounds/sound-icons")
#: General MIDI programs rendered for training, with the pitch range played: sustained
#: and struck timbres close to Kelly's parts (piano, strings, pads, winds, bass).
SOUNDFONT_PROGRAMS = {0: (36, 96), 4: (40, 88), 11: (48, 90), 19: (36, 84), 24: (40, 84), 32: (28, 55),
                      40: (55, 96), 42: (36, 72), 48: (40, 88), 52: (48, 79), 56: (55, 82), 68: (58, 91),
                      71: (50, 89), 73: (60, 96), 89: (36, 84)}
VELOCITIES = (50, 85, 118)
NOTE_SECONDS = 1.2
GAP_SECONDS = 0.5
#: Training windows: 1 s (100 frames, 16,000 samples).
WINDOW_FRAMES = 100
WINDOW_SAMPLES = WINDOW_FRAMES * HOP
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
#: Most recordings read from one --audio folder, and most seconds of one recording.
MAX_FILES = 2000
MAX_FILE_SECONDS = 600.0
VOICED_MIN = 0.4


@dataclass
class Segment:
    """One piece of training audio and its frames."""

    name: str
    source: str
    audio: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    loudness_db: np.ndarray
    split: str
    pitch: int | None = None        # the MIDI pitch played (soundfont notes)
    velocity: int | None = None     # the MIDI velocity played (soundfont notes)
    program: int | None = None
    descriptors: dict = field(default_factory=dict)
    emotion: tuple[float, float, float] = (0.0, 0.5, 0.5)


def split_of(name: str) -> str:
    """80/10/10 train/validation/test by a hash of the segment's name (stable when sources change)."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 10
    return "test" if h == 0 else "validation" if h == 1 else "train"


def _segment(name: str, source: str, y16: np.ndarray, **extra) -> Segment:
    from kelly.ddsp.features import features

    if len(y16) < WINDOW_SAMPLES + HOP:
        y16 = np.pad(y16, (0, WINDOW_SAMPLES + HOP - len(y16)))
    f = features(y16, SAMPLE_RATE)
    return Segment(name=name, source=source, audio=f.audio.astype(np.float32), f0_hz=f.f0_hz.astype(np.float32),
                   voiced=f.voiced, loudness_db=f.loudness_db.astype(np.float32), split=split_of(name), **extra)


def voiced_share(seg: Segment) -> float:
    """The share of a segment's sounding frames (within 40 dB of its loudest) that pYIN finds voiced."""
    sounding = seg.loudness_db > seg.loudness_db.max() - 40.0
    return float(seg.voiced[sounding].mean()) if sounding.any() else 0.0


def read_recording(path: Path) -> tuple[np.ndarray, int]:
    """A sound file as mono float samples and its rate; short notes are welcome (unlike the emotion reader's 0.5 s).

    The header is checked (a readable format, 1–32 channels, 4–384 kHz, at most
    :data:`MAX_FILE_SECONDS`) before anything is decoded.
    """
    import soundfile

    from kelly.errors import FileFormatError
    from kelly.fileio import show_path

    shown = show_path(path)
    try:
        info = soundfile.info(os.fspath(path))
        if not (1 <= info.channels <= 32 and 4000 <= info.samplerate <= 384000):
            raise FileFormatError(f"{shown}: {info.channels} channels at {info.samplerate} Hz is not usable audio")
        if info.frames > MAX_FILE_SECONDS * info.samplerate:
            raise FileFormatError(f"{shown}: longer than {MAX_FILE_SECONDS:.0f} s; cut it into shorter files")
        y, sr = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        raise FileFormatError(f"{shown}: not readable audio ({str(exc).splitlines()[0][:160]})") from None
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise FileFormatError(f"{shown}: empty, or holds NaN or infinite samples")
    return y.mean(axis=1), int(sr)


def _recording_segments(path: Path, source: str, *, piece_seconds: float = 2.0) -> list[Segment]:
    from kelly.ddsp.features import to_model_rate

    y, sr = read_recording(path)
    y16 = to_model_rate(y, sr)
    n = int(piece_seconds * SAMPLE_RATE)
    pieces = [y16] if len(y16) <= 1.5 * n else [y16[i:i + n] for i in range(0, len(y16) - n // 2, n)]
    out = []
    for i, piece in enumerate(pieces):
        seg = _segment(f"{source}:{path.name}" + (f"#{i}" if len(pieces) > 1 else ""), source, piece)
        if np.abs(piece).max() > 1e-4 and voiced_share(seg) >= VOICED_MIN:
            out.append(seg)
    return out


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """The audio files directly in ``folder`` (sorted; at most :data:`MAX_FILES`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--audio {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not p.is_symlink())
    if len(files) > MAX_FILES:
        raise InputError(f"--audio {folder}: {len(files):,} audio files; at most {MAX_FILES:,} are read")
    return files


def music21_test_audio() -> Path | None:
    try:
        import music21
    except ImportError:
        return None
    path = Path(music21.__file__).parent / "audioSearch" / "test_audio.wav"
    return path if path.is_file() else None


def soundfont_notes(*, programs: dict[int, tuple[int, int]] | None = None, step: int = 5,
                    velocities: Iterable[int] = VELOCITIES, soundfont=None) -> list[Segment]:
    """Dry FluidSynth notes: every ``step`` semitones of each program's range, at each velocity (2 processes)."""
    programs = SOUNDFONT_PROGRAMS if programs is None else programs
    jobs = [(program, lo, hi, step, tuple(velocities), soundfont) for program, (lo, hi) in sorted(programs.items())]
    if len(jobs) > 1 and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            return [seg for part in pool.map(_program_notes, jobs) for seg in part]
    return [seg for job in jobs for seg in _program_notes(job)]


def _program_notes(job) -> list[Segment]:
    """One program's notes (a worker of :func:`soundfont_notes`)."""
    from kelly.render.audio import render_song
    from kelly.song import Note, Song, Track

    program, lo, hi, step, velocities, soundfont = job
    ppq, bpm = 480, 60.0  # one beat = one second: ticks convert simply
    out = []
    notes, plan, t = [], [], 0.0
    for pitch in range(lo, hi + 1, step):
        for vel in velocities:
            notes.append(Note(start=int(round(t * ppq)), pitch=pitch, duration=int(NOTE_SECONDS * ppq),
                              velocity=int(vel)))
            plan.append((t, pitch, int(vel)))
            t += NOTE_SECONDS + GAP_SECONDS
    song = Song(tracks=[Track(name=f"program {program}", program=program, channel=0, notes=notes)],
                tempos=[(0, bpm)], title=f"ddsp-notes-{program}", ppq=ppq)
    audio = render_song(song, soundfont=soundfont, sample_rate=SAMPLE_RATE, effects=False)[:, 0]
    for start, pitch, vel in plan:
        a = int(max(0.0, start - 0.05) * SAMPLE_RATE)
        b = int((start + NOTE_SECONDS + GAP_SECONDS - 0.05) * SAMPLE_RATE)
        out.append(_segment(f"soundfont:{program}:{pitch}:{vel}", "soundfont", audio[a:b].astype(np.float64),
                            pitch=pitch, velocity=vel, program=program))
    return out


def descriptors(seg: Segment) -> dict:
    """Timbre descriptors of a segment's sounding, voiced frames (see the module's table)."""
    import librosa

    y = seg.audio.astype(np.float64)
    spec = np.abs(librosa.stft(y, n_fft=1024, hop_length=HOP, center=True, pad_mode="constant"))
    n = min(spec.shape[1], len(seg.f0_hz))
    keep = seg.voiced[:n] & (seg.loudness_db[:n] > seg.loudness_db[:n].max() - 30.0)
    if keep.sum() < 3:
        keep = seg.loudness_db[:n] > seg.loudness_db[:n].max() - 30.0
    s = spec[:, :n][:, keep] + 1e-9
    freqs = np.fft.rfftfreq(1024, 1.0 / SAMPLE_RATE)
    f0 = np.maximum(seg.f0_hz[:n][keep].astype(np.float64), 20.0)
    centroid = (freqs[:, None] * s).sum(axis=0) / s.sum(axis=0)
    flatness = np.exp(np.mean(np.log(s ** 2), axis=0)) / np.mean(s ** 2, axis=0)

    def harmonic_level(k: int) -> np.ndarray:
        bins = np.clip(np.round(k * f0 * 1024 / SAMPLE_RATE).astype(int), 0, len(freqs) - 1)
        return s[bins, np.arange(s.shape[1])] ** 2 * (k * f0 < SAMPLE_RATE / 2)

    low = sum(harmonic_level(k) for k in (1, 2)) + 1e-12
    high = sum(harmonic_level(k) for k in range(3, 11)) + 1e-12
    return {"tilt_db": float(np.median(10 * np.log10(high / low))),
            "flatness_log": float(np.median(np.log(flatness))),
            "centroid_harmonics_log2": float(np.median(np.log2(centroid / f0))),
            "level_db": float(np.mean(seg.loudness_db[:n][keep]))}


def _rank(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where each value falls among the sorted ``reference`` values, 0…1."""
    ref = np.sort(reference)
    if len(ref) < 2:
        return np.full(len(values), 0.5)
    return np.clip(np.interp(values, ref, np.linspace(0.0, 1.0, len(ref))), 0.0, 1.0)


def emotion_labels(segments: list[Segment]) -> dict:
    """Set each segment's (V, A, D) from its descriptors ranked among the training segments; returns the reference."""
    train = [s for s in segments if s.split == "train"] or segments
    ref = {k: np.array([s.descriptors[k] for s in train]) for k in train[0].descriptors}
    for s in segments:
        d = {k: np.array([v]) for k, v in s.descriptors.items()}
        valence = 2.0 * _rank(d["tilt_db"], ref["tilt_db"])[0] - 1.0
        arousal = 0.5 * (_rank(d["flatness_log"], ref["flatness_log"])[0] +
                         _rank(d["centroid_harmonics_log2"], ref["centroid_harmonics_log2"])[0])
        dominance = _rank(d["level_db"], ref["level_db"])[0]
        s.emotion = (float(valence), float(arousal), float(dominance))
    return {k: [float(x) for x in np.quantile(v, np.linspace(0, 1, 11))] for k, v in ref.items()}


def loudness_map(segments: list[Segment]) -> dict:
    """Velocity → peak loudness, fitted on the soundfont training notes (least squares).

    ``peak_db ≈ c0 + c1 · velocity/127 + c2 · A(f0)``, where ``A(f0)`` is the A-weighting of
    the note's fundamental: low notes read quieter in A-weighted dB at the same velocity.
    Without soundfont notes, the range of the recordings' loudness is used instead.
    """
    from kelly.ddsp.features import a_weighting_db
    from kelly.ddsp.core import midi_to_hz

    notes = [s for s in segments if s.velocity is not None and s.split == "train"]
    peaks = np.array([float(np.percentile(s.loudness_db, 98)) for s in (notes or segments)])
    if len(notes) >= 8:
        x = np.array([[1.0, s.velocity / 127.0, float(a_weighting_db(midi_to_hz(s.pitch)))] for s in notes])
        coef, *_ = np.linalg.lstsq(x, peaks, rcond=None)
        resid = peaks - x @ coef
        return {"c0": float(coef[0]), "c1": float(coef[1]), "c2": float(coef[2]),
                "rmse_db": float(np.sqrt(np.mean(resid ** 2))), "from": f"{len(notes)} soundfont notes"}
    lo, hi = (float(np.percentile(peaks, 10)), float(np.percentile(peaks, 95))) if len(peaks) else (-40.0, -10.0)
    return {"c0": lo, "c1": hi - lo, "c2": 0.0, "rmse_db": None, "from": f"{len(peaks)} recordings"}


def build(*, standard: bool = True, audio_dirs: Iterable[str | os.PathLike] = (), soundfont=None,
          note_step: int = 5, log: Callable[[str], None] = print) -> list[Segment]:
    """Every training segment, with features, descriptors and emotion labels."""
    segments: list[Segment] = []
    if standard:
        if SOUND_ICONS.is_dir():
            for path in sorted(SOUND_ICONS.glob("*.wav")):
                segments += _recording_segments(path, "sound-icons")
        else:
            log(f"kelly: note: {SOUND_ICONS} is missing (Debian's sound-icons); training without it")
        test_audio = music21_test_audio()
        if test_audio is not None:
            segments += _recording_segments(test_audio, "music21")
        log(f"recordings: {len(segments)} segments")
        segments += soundfont_notes(step=note_step, soundfont=soundfont)
        log(f"with soundfont notes: {len(segments)} segments")
    for folder in audio_dirs:
        for path in audio_files(folder):
            segments += _recording_segments(path, f"audio:{Path(folder).name}")
    if not segments:
        raise InputError("no training audio: give --audio DIR with recordings, or use the standard sources")
    for s in segments:
        s.descriptors = descriptors(s)
    return segments


# ----------------------------------------------------------------------------- cache
def save(segments: list[Segment], path: str | os.PathLike) -> None:
    """One ``.npz`` (arrays concatenated, plus a JSON table), written atomically."""
    import io

    from kelly.fileio import write_bytes_atomic

    table = [{k: v for k, v in asdict(s).items() if k not in ("audio", "f0_hz", "voiced", "loudness_db")}
             for s in segments]
    buf = io.BytesIO()
    np.savez(buf, audio=np.concatenate([s.audio for s in segments]),
             f0=np.concatenate([s.f0_hz for s in segments]), voiced=np.concatenate([s.voiced for s in segments]),
             loud=np.concatenate([s.loudness_db for s in segments]),
             samples=np.array([len(s.audio) for s in segments]), frames=np.array([len(s.f0_hz) for s in segments]),
             table=np.frombuffer(json.dumps(table).encode(), dtype=np.uint8))
    write_bytes_atomic(path, buf.getvalue())


def load(path: str | os.PathLike) -> list[Segment]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("table", "samples", "frames", "audio", "f0", "voiced", "loud")}  # each read once
    table = json.loads(arrays["table"].tobytes().decode())
    sa = np.concatenate([[0], np.cumsum(arrays["samples"])])
    fa = np.concatenate([[0], np.cumsum(arrays["frames"])])
    out = []
    for i, row in enumerate(table):
        row["emotion"] = tuple(row["emotion"])
        fr = slice(fa[i], fa[i + 1])
        out.append(Segment(audio=arrays["audio"][sa[i]:sa[i + 1]], f0_hz=arrays["f0"][fr], voiced=arrays["voiced"][fr],
                           loudness_db=arrays["loud"][fr], **row))
    return out


def windows(segments: list[Segment], rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
    """A batch of 1 s training windows: (inputs ``[B, 101, 5]``, f0 ``[B, 101]``, audio ``[B, 16000]``)."""
    from kelly.ddsp.core import decoder_inputs

    weights = np.array([len(s.f0_hz) for s in segments], dtype=np.float64)
    picks = rng.choice(len(segments), size=batch, p=weights / weights.sum())
    n_frames = frames_for(WINDOW_SAMPLES)
    xs, f0s, ys = [], [], []
    for i in picks:
        s = segments[i]
        last = min(len(s.f0_hz) - n_frames, (len(s.audio) - WINDOW_SAMPLES) // HOP)
        off = int(rng.integers(0, max(0, last) + 1))
        f0 = s.f0_hz[off:off + n_frames]
        xs.append(decoder_inputs(f0, s.loudness_db[off:off + n_frames], s.emotion))
        f0s.append(f0)
        ys.append(s.audio[off * HOP:off * HOP + WINDOW_SAMPLES])
    return np.stack(xs), np.stack(f0s).astype(np.float32), np.stack(ys).astype(np.float32)
