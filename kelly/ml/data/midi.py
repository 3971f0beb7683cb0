"""Reading MIDI fast into numpy arrays, and the piano-roll and pitch helpers built on them.

:func:`read_notes` reads a Standard MIDI File with `symusic <https://github.com/Yikai-Liao/symusic>`_
(a C++ parser, about 250 times faster than mido) into one :class:`NoteArrays`: every note
of every track as parallel arrays, plus the tempo map and time signatures. Without
symusic installed (it is in the ``ml`` extra) it falls back to Kelly's own hardened
reader, :func:`kelly.song.read_midi`; both give the same notes for the same file (the
tests check it on the converted corpus).

Times stay in the file's ticks (``ppq`` ticks per quarter note; music21 writes 10,080);
:meth:`NoteArrays.to_ppq` rescales, to 480 for Kelly's convention.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kelly.errors import FileFormatError, InputError

#: Largest MIDI file read (the same cap as :data:`kelly.song.MAX_FILE_BYTES`).
MAX_FILE_BYTES = 64 * 1024 * 1024
DRUM_CHANNEL = 9
DEFAULT_BPM = 120.0


def symusic_available() -> bool:
    """Whether the fast reader (symusic) is installed."""
    return importlib.util.find_spec("symusic") is not None


@dataclass(frozen=True)
class NoteArrays:
    """All notes of a MIDI file as parallel arrays, sorted by (onset, pitch, track).

    Attributes
    ----------
    onset, duration : np.ndarray [shape=(n,), dtype=int64]
        Ticks.
    pitch, velocity : np.ndarray [shape=(n,), dtype=int16]
        MIDI pitch 0–127 and velocity 1–127.
    track : np.ndarray [shape=(n,), dtype=int16]
        Index of the note's track in the file (empty tracks count).
    program : np.ndarray [shape=(n,), dtype=int16]
        General MIDI program of the note's track (0–127).
    is_drum : np.ndarray [shape=(n,), dtype=bool]
        The track plays on MIDI channel 10.
    ppq : int
        Ticks per quarter note.
    tempos : np.ndarray [shape=(k, 2), dtype=float64]
        ``(tick, bpm)`` rows, sorted, at least one (120 BPM when the file has none).
    time_signatures : np.ndarray [shape=(m, 3), dtype=int64]
        ``(tick, numerator, denominator)`` rows, at least one (4/4 when the file has none).
    pedal_ticks : int
        Total ticks of sustain pedal held (CC64 ≥ 64), summed over tracks; 0 when none
        or unknown (the fallback reader does not read controllers).
    backend : str
        ``"symusic"`` or ``"kelly"``.
    """

    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    track: np.ndarray
    program: np.ndarray
    is_drum: np.ndarray
    ppq: int
    tempos: np.ndarray = field(default_factory=lambda: np.array([[0.0, DEFAULT_BPM]]))
    time_signatures: np.ndarray = field(default_factory=lambda: np.array([[0, 4, 4]], dtype=np.int64))
    pedal_ticks: int = 0
    backend: str = "symusic"

    def __len__(self) -> int:
        return int(self.onset.shape[0])

    def __repr__(self) -> str:
        num, den = self.meter
        return (f"NoteArrays(notes={len(self)}, tracks={len(np.unique(self.track))}, ppq={self.ppq}, "
                f"meter={num}/{den}, bpm={self.tempos[0, 1]:g}, backend={self.backend!r})")

    @property
    def meter(self) -> tuple[int, int]:
        """The first time signature (numerator, denominator)."""
        return int(self.time_signatures[0, 1]), int(self.time_signatures[0, 2])

    @property
    def end_tick(self) -> int:
        return int((self.onset + self.duration).max()) if len(self) else 0

    @property
    def bpm(self) -> float:
        """The first tempo, in quarter notes per minute."""
        return float(self.tempos[0, 1])

    def select(self, mask: np.ndarray) -> "NoteArrays":
        """The notes where ``mask`` is true (conductor data kept)."""
        return replace(self, onset=self.onset[mask], duration=self.duration[mask], pitch=self.pitch[mask],
                       velocity=self.velocity[mask], track=self.track[mask], program=self.program[mask],
                       is_drum=self.is_drum[mask])

    def pitched(self) -> "NoteArrays":
        """The notes not on the drum channel."""
        return self.select(~self.is_drum)

    def drums(self) -> "NoteArrays":
        return self.select(self.is_drum)

    def to_ppq(self, ppq: int = 480) -> "NoteArrays":
        """The same music at another resolution (ticks rounded; a note keeps at least one tick)."""
        if ppq <= 0:
            raise InputError(f"ppq must be a positive whole number, got {ppq}")
        if ppq == self.ppq:
            return self
        scale = ppq / self.ppq
        onset = np.round(self.onset * scale).astype(np.int64)
        end = np.round((self.onset + self.duration) * scale).astype(np.int64)
        tempos = self.tempos.copy()
        tempos[:, 0] = np.round(tempos[:, 0] * scale)
        ts = self.time_signatures.copy()
        ts[:, 0] = np.round(ts[:, 0] * scale).astype(np.int64)
        return replace(self, onset=onset, duration=np.maximum(1, end - onset), ppq=int(ppq), tempos=tempos,
                       time_signatures=ts, pedal_ticks=int(round(self.pedal_ticks * scale)))

    def seconds(self, ticks) -> np.ndarray:
        """Ticks → seconds through the tempo map."""
        t = np.asarray(ticks, dtype=np.float64)
        starts = self.tempos[:, 0]
        spt = 60.0 / (self.tempos[:, 1] * self.ppq)  # seconds per tick in each tempo segment
        offsets = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spt[:-1])])
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
        return offsets[idx] + (t - starts[idx]) * spt[idx]

    @property
    def duration_seconds(self) -> float:
        return float(self.seconds(self.end_tick)) if len(self) else 0.0

    def as_tuples(self) -> list[tuple[int, int, int, int]]:
        """``(onset, pitch, duration, velocity)`` per note, sorted: for comparing two readings."""
        return sorted(zip(self.onset.tolist(), self.pitch.tolist(), self.duration.tolist(),
                          self.velocity.tolist()))


def _empty(ppq: int, backend: str) -> NoteArrays:
    z = np.zeros(0, dtype=np.int64)
    s = np.zeros(0, dtype=np.int16)
    return NoteArrays(z, z.copy(), s, s.copy(), s.copy(), s.copy(), np.zeros(0, dtype=bool), ppq, backend=backend)


def _check_file(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such MIDI file") from None
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(f"{path}: not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise FileFormatError(f"{path}: too large; Kelly reads MIDI files of up to {MAX_FILE_BYTES // 2**20} MiB")


def read_notes(path: str | os.PathLike, *, backend: str = "auto") -> NoteArrays:
    """Read every note of a Standard MIDI File into :class:`NoteArrays`.

    Parameters
    ----------
    path : path-like
    backend : {"auto", "symusic", "kelly"}
        ``"auto"`` uses symusic when installed, else :func:`kelly.song.read_midi`.

    Raises
    ------
    FileFormatError
        Missing, not a regular file, larger than 64 MiB, or not readable MIDI.
    InputError
        An unknown backend, or ``"symusic"`` when it is not installed.
    """
    p = Path(path)
    if backend not in ("auto", "symusic", "kelly"):
        raise InputError(f"unknown MIDI backend {backend!r}; choose auto, symusic or kelly")
    if backend == "symusic" and not symusic_available():
        raise InputError("symusic is not installed: pip install symusic (it is in Kelly's ml extra)")
    _check_file(p)
    if backend == "kelly" or (backend == "auto" and not symusic_available()):
        return _read_kelly(p)
    return _read_symusic(p)


def _read_symusic(path: Path) -> NoteArrays:
    import symusic

    try:
        score = symusic.Score(str(path), ttype="tick")
    except Exception as exc:  # symusic raises ValueError/RuntimeError with its own words
        raise FileFormatError(f"{path}: not readable MIDI ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    ppq = int(score.ticks_per_quarter) or 480
    parts, pedal = [], 0
    for index, track in enumerate(score.tracks):
        for ped in track.pedals:
            pedal += int(ped.duration)
        if track.note_num() == 0:
            continue
        arr = track.notes.numpy()
        n = len(arr["time"])
        parts.append((arr["time"].astype(np.int64), arr["duration"].astype(np.int64),
                      arr["pitch"].astype(np.int16), arr["velocity"].astype(np.int16),
                      np.full(n, index, dtype=np.int16), np.full(n, int(track.program), dtype=np.int16),
                      np.full(n, bool(track.is_drum), dtype=bool)))
    tempos = score.tempos.numpy()
    if len(tempos["time"]):
        bpm = 60_000_000.0 / np.maximum(1, tempos["mspq"].astype(np.float64))
        tempo_rows = np.column_stack([tempos["time"].astype(np.float64), bpm])
    else:
        tempo_rows = np.array([[0.0, DEFAULT_BPM]])
    ts = score.time_signatures.numpy()
    ts_rows = np.column_stack([ts["time"].astype(np.int64), ts["numerator"].astype(np.int64),
                               ts["denominator"].astype(np.int64)]) if len(ts["time"]) else None
    return _assemble(parts, ppq, tempo_rows, ts_rows, pedal, "symusic")


def _read_kelly(path: Path) -> NoteArrays:
    from kelly.song import read_midi

    song = read_midi(path)
    parts = []
    for index, track in enumerate(song.tracks):
        if not track.notes:
            continue
        n = len(track.notes)
        parts.append((np.fromiter((x.start for x in track.notes), dtype=np.int64, count=n),
                      np.fromiter((x.duration for x in track.notes), dtype=np.int64, count=n),
                      np.fromiter((x.pitch for x in track.notes), dtype=np.int16, count=n),
                      np.fromiter((x.velocity for x in track.notes), dtype=np.int16, count=n),
                      np.full(n, index, dtype=np.int16), np.full(n, track.program, dtype=np.int16),
                      np.full(n, track.channel == DRUM_CHANNEL, dtype=bool)))
    tempo_rows = np.array([[float(t), float(b)] for t, b in song.tempos] or [[0.0, DEFAULT_BPM]])
    ts_rows = np.array([[0, song.time_signature[0], song.time_signature[1]]], dtype=np.int64)
    return _assemble(parts, song.ppq, tempo_rows, ts_rows, 0, "kelly")


def _assemble(parts, ppq: int, tempo_rows: np.ndarray, ts_rows: np.ndarray | None, pedal: int,
              backend: str) -> NoteArrays:
    tempo_rows = tempo_rows[np.argsort(tempo_rows[:, 0], kind="stable")]
    tempo_rows = tempo_rows[np.isfinite(tempo_rows[:, 1]) & (tempo_rows[:, 1] > 0)]
    if not len(tempo_rows):
        tempo_rows = np.array([[0.0, DEFAULT_BPM]])
    if tempo_rows[0, 0] > 0:  # before the first tempo event MIDI plays at 120 BPM
        tempo_rows = np.vstack([[0.0, DEFAULT_BPM], tempo_rows])
    if ts_rows is None or not len(ts_rows):
        ts_rows = np.array([[0, 4, 4]], dtype=np.int64)
    ts_rows = ts_rows[np.argsort(ts_rows[:, 0], kind="stable")]
    ts_rows = ts_rows[(ts_rows[:, 1] > 0) & (ts_rows[:, 2] > 0)]
    if not len(ts_rows):
        ts_rows = np.array([[0, 4, 4]], dtype=np.int64)
    if not parts:
        base = _empty(ppq, backend)
        return replace(base, tempos=tempo_rows, time_signatures=ts_rows, pedal_ticks=pedal)
    cols = [np.concatenate(c) for c in zip(*parts)]
    onset, duration, pitch, velocity, track, program, drum = cols
    order = np.lexsort((duration, track, pitch, onset))
    return NoteArrays(onset[order], duration[order], pitch[order], velocity[order], track[order], program[order],
                      drum[order], int(ppq), tempo_rows, ts_rows, int(pedal), backend)


# --------------------------------------------------------------------------- metre
def beat_ticks(ppq: int, meter: tuple[int, int]) -> int:
    """Ticks in one felt beat: a dotted quarter in 6/8, 9/8 and 12/8, else one ``1/denominator`` note."""
    num, den = meter
    unit = max(1, ppq * 4 // den)
    return unit * 3 if den == 8 and num in (6, 9, 12) else unit


def bar_ticks(ppq: int, meter: tuple[int, int]) -> int:
    num, den = meter
    return max(1, ppq * 4 * num // den)


def segment_ticks(notes: NoteArrays, segment: str) -> int:
    """Length of an analysis window: ``"beat"`` (:func:`beat_ticks`), ``"bar"`` or ``"quarter"``."""
    if segment == "beat":
        return beat_ticks(notes.ppq, notes.meter)
    if segment == "bar":
        return bar_ticks(notes.ppq, notes.meter)
    if segment == "quarter":
        return notes.ppq
    raise InputError(f"unknown segment {segment!r}; choose beat, bar or quarter")


# --------------------------------------------------------------------------- rolls and histograms
def key_of_c_shift(tonic: int) -> int:
    """Semitones that move ``tonic`` to C by the smaller step: in −6 … +5 (G → +5, D → −2)."""
    return ((-int(tonic)) % 12 + 6) % 12 - 6


def transpose(notes: NoteArrays, semitones: int) -> NoteArrays:
    """Pitched notes moved by ``semitones``; drums stay; notes pushed outside 0–127 are dropped."""
    pitch = np.where(notes.is_drum, notes.pitch, notes.pitch + int(semitones)).astype(np.int16)
    moved = replace(notes, pitch=pitch)
    return moved.select((pitch >= 0) & (pitch <= 127))


def segment_overlaps(notes: NoteArrays, length: int, n_segments: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How long each note sounds in each window of ``length`` ticks.

    Returns
    -------
    (note_index, segment_index, ticks) : three np.ndarray [shape=(k,)]
        One row per (note, window) pair where the note sounds (ticks > 0). Windows past
        ``n_segments`` are dropped.
    """
    if length <= 0:
        raise InputError(f"window length must be positive, got {length}")
    s = notes.onset
    e = notes.onset + np.maximum(1, notes.duration)
    first = s // length
    last = (e - 1) // length
    if n_segments is not None:
        last = np.minimum(last, n_segments - 1)
    counts = np.maximum(0, last - first + 1)
    idx = np.repeat(np.arange(len(s)), counts)
    seg = np.repeat(first, counts) + (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts))
    ov = np.minimum(e[idx], (seg + 1) * length) - np.maximum(s[idx], seg * length)
    keep = ov > 0
    return idx[keep], seg[keep], ov[keep]


def n_segments(notes: NoteArrays, length: int) -> int:
    return int(-(-notes.end_tick // length)) if len(notes) else 0


def piano_roll(notes: NoteArrays, *, step: int | None = None, segment: str = "quarter",
               velocity: bool = False) -> np.ndarray:
    """A piano roll: rows are time steps, columns MIDI pitches 0–127.

    Parameters
    ----------
    step : int or None
        Step length in ticks; default from ``segment``.
    segment : {"quarter", "beat", "bar"}
        Used when ``step`` is None.
    velocity : bool
        Cells hold the loudest velocity sounding (0–127) instead of the share of the step
        the pitch sounds (0–1).

    Returns
    -------
    np.ndarray [shape=(n_steps, 128), dtype=float32]
    """
    length = int(step) if step else segment_ticks(notes, segment)
    n = n_segments(notes, length)
    roll = np.zeros((n, 128), dtype=np.float32)
    if n == 0:
        return roll
    idx, seg, ov = segment_overlaps(notes, length, n)
    if velocity:
        np.maximum.at(roll, (seg, notes.pitch[idx]), notes.velocity[idx].astype(np.float32))
    else:
        np.add.at(roll, (seg, notes.pitch[idx]), ov / length)
        np.clip(roll, 0.0, 1.0, out=roll)
    return roll


def pitch_class_histogram(notes: NoteArrays, *, weight: str = "duration") -> np.ndarray:
    """Pitch-class histogram of the pitched notes, C = 0.

    Parameters
    ----------
    weight : {"duration", "count"}
        Sounding time in quarter notes, or the number of notes.

    Returns
    -------
    np.ndarray [shape=(12,), dtype=float64]
    """
    p = notes.pitched()
    if weight == "duration":
        w = p.duration / p.ppq
    elif weight == "count":
        w = np.ones(len(p))
    else:
        raise InputError(f"unknown weight {weight!r}; choose duration or count")
    return np.bincount(p.pitch % 12, weights=w, minlength=12).astype(np.float64)


def pitch_class_distribution(notes: NoteArrays, tonic: int = 0, *, weight: str = "duration") -> np.ndarray:
    """The pitch-class histogram transposed so that ``tonic`` is 0 and normalised to sum 1.

    Returns
    -------
    np.ndarray [shape=(12,), dtype=float32]
        Index ``i`` is the share of the degree ``i`` semitones above the tonic; zeros for a
        piece without pitched notes.
    """
    h = np.roll(pitch_class_histogram(notes, weight=weight), -(int(tonic) % 12))
    total = h.sum()
    return (h / total if total > 0 else h).astype(np.float32)


def distinct_onsets(notes: NoteArrays) -> np.ndarray:
    """Sorted distinct onset ticks of the pitched notes (a chord counts once)."""
    return np.unique(notes.pitched().onset)
