"""Measurements of a composed piece: the musical bar of DESIGN.md, read from the MIDI.

Every function here is a pure function of a :class:`kelly.song.Song` (read a file with
:func:`kelly.song.read_midi`), so it measures what a producer would hear in a DAW, not
what the explanation claims. :func:`report` combines them; ``benchmarks/bench_music.py``
runs them over a fixed grid of pieces and ``docs/music-report.md`` explains each one.

Vocabulary used throughout
--------------------------
melody
    The first track whose role is :attr:`Role.MELODY` (a second melody-role track, such as
    ``"Melody (drift)"``, is accompaniment).
pitched accompaniment
    Every track that is not a drum track (MIDI channel 10) and is not the melody, whatever
    its role (harmony, bass, pad, strings, counter-melody, fx).
sounding together
    Two notes sound together when their time spans overlap by at least a 32nd note
    (``ppq / 8`` ticks; 60 ticks at 480 PPQ), so a release that touches the next onset, or
    humanized timing that smears a few ticks, is not counted.
bar
    ``song.bar_ticks`` ticks, from the time signature (nothing assumes 4/4).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import Counter

import numpy as np

from kelly.song import Role, Song, Track

__all__ = [
    "clash_rate", "melody_on_top_rate", "restated_bar_fraction", "duplicate_notes", "out_of_range_notes",
    "playable_range", "key_heard", "declared_key", "parse_key", "mode_family", "mode_family_heard",
    "velocity_stats", "melody_register", "max_tempo_step", "melody_leaps", "rendered_levels", "report",
    "slice_bars", "melody_track", "accompaniment_tracks", "key_report", "a_weighting",
]

#: Pitch-class names used in results (flats for the black keys, as in Kelly's key names).
PC_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

#: Mode words and the family (major / minor third above the tonic) each belongs to.
MODE_FAMILY = {
    "major": "major", "ionian": "major", "lydian": "major", "mixolydian": "major",
    "minor": "minor", "aeolian": "minor", "dorian": "minor", "phrygian": "minor", "locrian": "minor",
    "harmonic minor": "minor", "harmonic_minor": "minor", "melodic minor": "minor", "melodic_minor": "minor",
}


# --------------------------------------------------------------------------- parts
def melody_track(song: Song) -> Track | None:
    """The melody: the first track with role :attr:`Role.MELODY`, or None."""
    return next((t for t in song.tracks if t.role == Role.MELODY), None)


def accompaniment_tracks(song: Song) -> list[Track]:
    """The pitched accompaniment: every non-drum track other than the melody, in file order."""
    mel = melody_track(song)
    return [t for t in song.tracks if not t.is_drum and t is not mel]


def _min_overlap(song: Song) -> int:
    return max(1, song.ppq // 8)


def _note_arrays(notes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = np.fromiter((n.start for n in notes), dtype=np.int64)
    ends = np.fromiter((n.start + n.duration for n in notes), dtype=np.int64)
    pitches = np.fromiter((n.pitch for n in notes), dtype=np.int64)
    return starts, ends, pitches


def _overlaps(song: Song):
    """For each melody note, the pitches of the accompaniment notes sounding with it.

    Returns ``(melody_pitches, overlap)`` where ``overlap`` is a boolean matrix
    [shape=(n_melody, n_accompaniment)] and the accompaniment pitches come third; or None
    when there is no melody.
    """
    mel = melody_track(song)
    if mel is None or not mel.notes:
        return None
    acc = [n for t in accompaniment_tracks(song) for n in t.notes if n.duration > 0]
    ms, me, mp = _note_arrays(mel.notes)
    if not acc:
        return mp, np.zeros((len(mp), 0), dtype=bool), np.zeros(0, dtype=np.int64)
    as_, ae, ap = _note_arrays(acc)
    shared = np.minimum(me[:, None], ae[None, :]) - np.maximum(ms[:, None], as_[None, :])
    return mp, shared >= _min_overlap(song), ap


# ------------------------------------------------------------------ harmony, voicing
def clash_rate(song: Song) -> float | None:
    """Fraction of melody notes that clash by a semitone with the accompaniment.

    A melody note clashes when some pitched-accompaniment note sounds with it (overlap of
    at least a 32nd note, ``ppq / 8`` ticks) at a minor 2nd or minor 9th in any octave:
    ``(upper - lower) % 12 == 1``. A major 7th (11) is therefore not a clash, nor is a
    unison. Drum tracks are ignored.

    Returns
    -------
    float in [0, 1], or None when the song has no melody notes.
    """
    got = _overlaps(song)
    if got is None:
        return None
    mp, overlap, ap = got
    if overlap.shape[1] == 0:
        return 0.0
    semis = np.abs(mp[:, None] - ap[None, :]) % 12 == 1
    return float(np.mean(np.any(semis & overlap, axis=1)))


def melody_on_top_rate(song: Song) -> float | None:
    """Fraction of melody notes at or above every pitched-accompaniment note sounding with them.

    For each melody note, the accompaniment notes sounding with it (overlap of at least
    ``ppq / 8`` ticks) are collected; the note is *on top* when its pitch is greater than
    or equal to all of theirs (a unison with the top accompaniment voice counts as on
    top). A melody note with no accompaniment sounding is on top (nothing covers it); the
    denominator is every melody note.

    Returns
    -------
    float in [0, 1], or None when the song has no melody notes.
    """
    got = _overlaps(song)
    if got is None:
        return None
    mp, overlap, ap = got
    if overlap.shape[1] == 0:
        return 1.0
    above = ap[None, :] > mp[:, None]
    return float(np.mean(~np.any(above & overlap, axis=1)))


# ------------------------------------------------------------------------- motifs
def _sixteenth(song: Song) -> int:
    return max(1, song.ppq // 4)


def _bar_count(song: Song) -> int:
    """Bars up to the bar holding the last note onset."""
    last = max((n.start for t in song.tracks for n in t.notes), default=-1)
    return 0 if last < 0 else last // song.bar_ticks + 1


def _melody_bars(song: Song) -> dict[int, frozenset[tuple[int, int]]]:
    """Melody notes per bar as sets of (onset in 16ths from the downbeat, pitch).

    Each onset is rounded to the nearest 16th inside its bar; an onset that rounds onto
    the next downbeat (humanized a few ticks early) belongs to the next bar.
    """
    mel = melody_track(song)
    if mel is None:
        return {}
    bt, six = song.bar_ticks, _sixteenth(song)
    steps = max(1, round(bt / six))
    bars: dict[int, set] = {}
    for n in mel.notes:
        bar = n.start // bt
        pos = round((n.start - bar * bt) / six)
        if pos >= steps:
            bar, pos = bar + 1, 0
        bars.setdefault(bar, set()).add((pos, n.pitch))
    return {b: frozenset(v) for b, v in bars.items()}


def _match_fraction(a: frozenset, b: frozenset) -> float:
    """Best share of notes that two bars have in common under one transposition."""
    by_pos: dict[int, list[int]] = {}
    for pos, p in a:
        by_pos.setdefault(pos, []).append(p)
    shifts = Counter(pb - pa for pos, pb in b for pa in by_pos.get(pos, ()))
    if not shifts:
        return 0.0
    best = 0
    for shift in shifts:
        best = max(best, sum(1 for pos, p in b if (pos, p - shift) in a))
    return best / max(len(a), len(b))


def restated_bar_fraction(song: Song, *, min_bars: int = 16, threshold: float = 0.75) -> float | None:
    """Fraction of melody bars that restate an earlier bar's rhythm and intervals.

    Each melody bar becomes a set of (onset, pitch) pairs, the onset counted in 16th
    notes from the bar's downbeat (rounded; bars are ``song.bar_ticks`` long, from the
    time signature). A bar *restates* an earlier one when, under one transposition
    ``t`` (any number of semitones, 0 included), at least ``threshold`` (75 %) of the
    notes of the larger of the two bars pair up: same onset and ``pitch_later = pitch_earlier
    + t``. Pairing every note under one ``t`` is the same as having the same rhythm and
    the same successive intervals. Using the larger bar as the denominator stops a bar of
    one or two notes from "restating" any busy bar that shares its downbeat. Exact
    (chromatic) transposition only: a diatonic sequence whose intervals change by a
    semitone does not count.

    Only bars that hold melody onsets are counted (numerator and denominator); the
    first such bar cannot restate anything.

    Parameters
    ----------
    song : Song
    min_bars : int
        Songs shorter than this many bars (up to the last onset) give None.
    threshold : float in (0, 1]

    Returns
    -------
    float in [0, 1], or None for a short song or one without melody.
    """
    if _bar_count(song) < min_bars:
        return None
    bars = _melody_bars(song)
    if not bars:
        return None
    order = sorted(bars)
    restated = 0
    for k, b in enumerate(order):
        if any(_match_fraction(bars[a], bars[b]) >= threshold for a in order[:k]):
            restated += 1
    return restated / len(order)


# ----------------------------------------------------------------- notes, ranges
def duplicate_notes(song: Song) -> dict[str, int]:
    """Notes that share (start tick, pitch) with another note of the same track.

    Every note of such a group is counted (a doubled note counts 2), drums included.

    Returns
    -------
    dict
        Track name → count, for tracks with duplicates only; ``{}`` when clean. Two tracks
        with the same name are told apart as ``"name #2"``.
    """
    out: dict[str, int] = {}
    for name, track in _named(song):
        counts = Counter((n.start, n.pitch) for n in track.notes)
        dup = sum(c for c in counts.values() if c > 1)
        if dup:
            out[name] = dup
    return out


def _named(song: Song):
    seen: Counter = Counter()
    for t in song.tracks:
        seen[t.name] += 1
        yield (t.name if seen[t.name] == 1 else f"{t.name} #{seen[t.name]}"), t


def playable_range(track: Track) -> tuple[int, int, str]:
    """(lowest, highest, family) MIDI pitch the track's instrument plays (drum tracks: GM kit numbers).

    The table is :mod:`kelly.theory.instruments`, the same one the engines keep their parts inside.
    """
    from kelly.theory.instruments import DRUM_RANGE, instrument_range

    if track.is_drum:
        return DRUM_RANGE[0], DRUM_RANGE[1], "drum kit"
    r = instrument_range(int(track.program) & 127)
    return r.low, r.high, r.what


def out_of_range_notes(song: Song) -> dict[str, int]:
    """Notes outside their instrument's playable range (see :func:`playable_range`).

    Pitched tracks are checked against a table of sounding ranges for every General MIDI
    program (sources in the comment above the table); drum tracks against the GM2
    percussion key map (27-87).

    Returns
    -------
    dict
        Track name → count of notes below the lowest or above the highest pitch, for
        tracks with any; ``{}`` when clean.
    """
    out: dict[str, int] = {}
    for name, track in _named(song):
        low, high, _ = playable_range(track)
        bad = sum(1 for n in track.notes if not low <= n.pitch <= high)
        if bad:
            out[name] = bad
    return out


# ---------------------------------------------------------------------------- key
_KEY_RE = re.compile(r"^\s*([A-Ga-g])([#b♯♭]{0,2})\s*(m|min|maj|[a-z _]*)\s*$")


def parse_key(text: str) -> tuple[int, str, str]:
    """(tonic pitch class, tonic name, mode word) from ``"Am"``, ``"Eb"``, ``"D dorian"``, ``"F minor"``.

    Mido key-signature names (``"C"``, ``"F#m"``) and Kelly's key names both work; a bare
    tonic is major, a trailing ``m`` minor.

    Raises
    ------
    ValueError
        If the text is not a key.
    """
    m = _KEY_RE.match(text or "")
    if not m:
        raise ValueError(f"not a key: {text!r}")
    letter, accidentals, rest = m.group(1).upper(), m.group(2), m.group(3).strip().lower().replace("_", " ")
    pc = (_LETTER_PC[letter] + accidentals.count("#") + accidentals.count("♯")
          - accidentals.count("b") - accidentals.count("♭")) % 12
    mode = {"": "major", "maj": "major", "m": "minor", "min": "minor"}.get(rest, rest)
    if mode not in MODE_FAMILY:
        raise ValueError(f"unknown mode in key {text!r}")
    return pc, PC_NAMES[pc], mode


def mode_family(mode: str) -> str:
    """"major" or "minor": the family of a mode word (ionian, lydian, mixolydian → major; the others minor)."""
    return MODE_FAMILY[mode.strip().lower().replace("_", " ")]


def _as_dict(explanation) -> dict:
    """An explanation as a dict: a :class:`kelly.contracts.Explanation` is dumped to its JSON form."""
    if explanation is None:
        return {}
    dump = getattr(explanation, "model_dump", None)
    return dump(mode="json") if callable(dump) else explanation


def declared_key(song: Song, explanation=None) -> str | None:
    """The key the piece says it is in (``explanation``: a dict or a :class:`kelly.contracts.Explanation`).

    From the explanation when given: ``parameters.key`` (``"D dorian"``, ``"F minor"``);
    when that has no mode word, ``parameters.detailed_mode`` supplies it. Otherwise the
    MIDI key signature (``song.key_signature``, e.g. ``"Am"``), which can only say major or
    minor: a modal piece's signature names its parent scale's tonic, not its own.
    """
    params = _as_dict(explanation).get("parameters") or {}
    key = params.get("key")
    if key:
        parts = str(key).split()
        if len(parts) == 1 and params.get("detailed_mode") and not str(key).endswith("m"):
            return f"{parts[0]} {params['detailed_mode']}"
        return str(key)
    return song.key_signature


def slice_bars(song: Song, start_bar: int, end_bar: int) -> Song:
    """The notes whose onsets fall in bars ``[start_bar, end_bar)`` (0-based), conductor data kept."""
    lo, hi = start_bar * song.bar_ticks, end_bar * song.bar_ticks
    tracks = [t.with_notes([n for n in t.notes if lo <= n.start < hi]) for t in song.tracks]
    return Song(tracks=tracks, tempos=list(song.tempos), time_signature=song.time_signature,
                key_signature=song.key_signature, title=song.title, ppq=song.ppq)


def key_heard(song: Song) -> tuple[str, str] | None:
    """The key a listener hears: music21's Krumhansl-Schmuckler analysis of the pitched parts.

    The pitched parts are every non-drum track except fx (risers and sweeps carry no
    harmony). Krumhansl-Schmuckler correlates the duration-weighted pitch-class
    distribution with the major and minor key profiles; music21 weights each note by its
    length in quarter notes, so the stream handed to it holds one note per pitch class
    lasting the total length of that pitch class in the piece (the same distribution as
    every note in turn, in about 10 ms instead of seconds).

    Returns
    -------
    (tonic, mode) : (str, str)
        Tonic as in :data:`PC_NAMES` (``"Eb"``, ``"F#"``), mode ``"major"`` or ``"minor"``;
        None when the song has no pitched notes.
    """
    weights = np.zeros(12)
    for t in song.tracks:
        if t.is_drum or t.role == Role.FX:
            continue
        for n in t.notes:
            weights[n.pitch % 12] += max(0, n.duration)
    if weights.sum() <= 0:
        return None
    from music21 import analysis, note, stream

    s = stream.Stream()
    for pc, w in enumerate(weights):
        if w > 0:
            n = note.Note(60 + pc)
            n.quarterLength = round(float(w) / song.ppq, 3) or 0.001
            s.append(n)
    solution = analysis.discrete.KrumhanslSchmuckler().getSolution(s)
    return PC_NAMES[solution.tonic.pitchClass], str(solution.mode)


def mode_family_heard(song: Song, declared: str) -> bool | None:
    """Whether the heard key (:func:`key_heard`) agrees with the declared one.

    True when the heard mode is the declared mode's family (ionian, lydian, mixolydian,
    major → major; aeolian, dorian, phrygian, locrian, minor → minor) **and** the heard
    tonic is the declared tonic. A relative key (C major heard for A minor) or a piece in
    D dorian heard as C major both fail.

    Parameters
    ----------
    song : Song
    declared : str
        A key such as ``"D dorian"``, ``"F minor"``, ``"Am"`` (see :func:`parse_key`).

    Returns
    -------
    bool, or None when nothing pitched is heard.
    """
    pc, _, mode = parse_key(declared)
    heard = key_heard(song)
    if heard is None:
        return None
    return parse_key(heard[0])[0] == pc and heard[1] == mode_family(mode)


# ------------------------------------------------------------- dynamics, register
#: The parts a listener judges loudness by: the melody, the harmony (keys) and the bass. Pads and
#: string beds are deliberately quiet for balance and their note counts vary with the arrangement
#: (a pulsing pad has four times the notes of a held one), so an all-notes mean is skewed by style.
FOREGROUND = (Role.MELODY, Role.HARMONY, Role.BASS)


def velocity_stats(song: Song) -> dict:
    """Velocities of the pitched notes (non-drum tracks), per role and overall.

    ``foreground_mean`` is the mean over the :data:`FOREGROUND` parts only.

    Returns
    -------
    dict
        ``{"foreground_mean", "by_role": {role: {"mean", "median", "n"}}, "mean", "median",
        "max", "at_127"}`` where ``at_127`` is the fraction of pitched notes at velocity 127 and
        the roles are :class:`Role` values (``"melody"``, ``"pad"`` …; ``"other"`` for a
        track with no role). Empty song: mean/median/max None, at_127 0.
    """
    by_role: dict[str, list[int]] = {}
    every: list[int] = []
    front: list[int] = []
    for t in song.tracks:
        if t.is_drum:
            continue
        vel = [n.velocity for n in t.notes]
        by_role.setdefault(t.role.value if t.role else "other", []).extend(vel)
        every.extend(vel)
        if t.role in FOREGROUND:
            front.extend(vel)
    return {
        "foreground_mean": statistics.fmean(front) if front else None,
        "by_role": {r: {"mean": statistics.fmean(v), "median": statistics.median(v), "n": len(v)}
                    for r, v in by_role.items() if v},
        "mean": statistics.fmean(every) if every else None,
        "median": statistics.median(every) if every else None,
        "max": max(every) if every else None,
        "at_127": sum(1 for v in every if v >= 127) / len(every) if every else 0.0,
    }


def melody_register(song: Song) -> dict | None:
    """Mean and median MIDI pitch of the melody's notes (``{"mean", "median", "low", "high"}``), or None."""
    mel = melody_track(song)
    if mel is None or not mel.notes:
        return None
    p = [n.pitch for n in mel.notes]
    return {"mean": statistics.fmean(p), "median": statistics.median(p), "low": min(p), "high": max(p)}


def _tempo_at(tempos: list[tuple[int, float]], tick: int) -> float:
    bpm = tempos[0][1] if tempos else 120.0
    for t, b in sorted(tempos):
        if t > tick:
            break
        bpm = b
    return bpm


def max_tempo_step(song: Song) -> float:
    """Largest relative tempo change from one bar's downbeat to the next.

    The tempo in force at each downbeat (the last ``song.tempos`` entry at or before it)
    is compared with the next bar's: ``|bpm[b + 1] - bpm[b]| / bpm[b]``; 0.12 means 12 %.
    Ramps inside a bar are not seen except through where they leave the next downbeat.
    Bars run up to the last note onset. A single-bar song gives 0.
    """
    n = _bar_count(song)
    downbeats = [_tempo_at(song.tempos, b * song.bar_ticks) for b in range(max(n, 1))]
    steps = [abs(b - a) / a for a, b in zip(downbeats, downbeats[1:]) if a > 0]
    return max(steps, default=0.0)


def melody_leaps(song: Song) -> dict | None:
    """Interval sizes between successive melody notes.

    The melody line is the highest melody note at each onset (a double stop counts once),
    in time order; an interval is the absolute difference in semitones between neighbours.

    Returns
    -------
    dict
        ``{"over_fifth": fraction of intervals > 7 semitones, "over_octave": fraction >
        12, "largest": semitones, "n": intervals}``; None with fewer than two onsets.
    """
    mel = melody_track(song)
    if mel is None:
        return None
    top: dict[int, int] = {}
    for n in mel.notes:
        top[n.start] = max(top.get(n.start, -1), n.pitch)
    line = [top[s] for s in sorted(top)]
    ints = [abs(b - a) for a, b in zip(line, line[1:])]
    if not ints:
        return None
    return {"over_fifth": sum(i > 7 for i in ints) / len(ints), "over_octave": sum(i > 12 for i in ints) / len(ints),
            "largest": max(ints), "n": len(ints)}


# ----------------------------------------------------------------------- rendering
FRAME_SECONDS = 0.4


def _seconds_map(song: Song):
    """A function ticks → seconds through the tempo map."""
    tempos = sorted(song.tempos) or [(0, 120.0)]
    if tempos[0][0] > 0:
        tempos.insert(0, (0, tempos[0][1]))
    marks, secs = [], []
    now = 0.0
    for k, (tick, bpm) in enumerate(tempos):
        marks.append(tick)
        secs.append(now)
        if k + 1 < len(tempos):
            now += (tempos[k + 1][0] - tick) / song.ppq * 60.0 / bpm
    marks_a, secs_a = np.asarray(marks), np.asarray(secs)
    bpms = np.asarray([b for _, b in tempos], dtype=float)

    def to_seconds(ticks):
        ticks = np.asarray(ticks, dtype=float)
        k = np.clip(np.searchsorted(marks_a, ticks, side="right") - 1, 0, len(marks_a) - 1)
        return secs_a[k] + (ticks - marks_a[k]) / song.ppq * 60.0 / bpms[k]
    return to_seconds


def a_weighting(freqs: np.ndarray) -> np.ndarray:
    """IEC 61672 A-weighting as a power gain (1.0 at 1 kHz) at ``freqs`` [Hz]."""
    f2 = np.asarray(freqs, dtype=np.float64) ** 2
    ra = (12194.0 ** 2 * f2 ** 2) / ((f2 + 20.6 ** 2) * np.sqrt((f2 + 107.7 ** 2) * (f2 + 737.9 ** 2))
                                    * (f2 + 12194.0 ** 2))
    ref = 12194.0 ** 2 * 1e12 / ((1e6 + 20.6 ** 2) * math.sqrt((1e6 + 107.7 ** 2) * (1e6 + 737.9 ** 2))
                                 * (1e6 + 12194.0 ** 2))
    return (ra / ref) ** 2


def _frame_powers(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A-weighted mean power of each 400 ms frame [shape=(n_frames,)], both channels averaged.

    Each frame's spectrum (real FFT, no window: Parseval's sum of the bins is the frame's
    energy) is weighted by :func:`a_weighting`, exactly at every bin's frequency.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    hop = int(round(FRAME_SECONDS * sample_rate))
    n_frames = max(1, math.ceil(len(x) / hop))
    x = np.pad(x, ((0, n_frames * hop - len(x)), (0, 0)))
    frames = x.reshape(n_frames, hop, x.shape[1])
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins, channels)
    bins = np.full(spec.shape[1], 2.0)
    bins[0] = 1.0
    if hop % 2 == 0:
        bins[-1] = 1.0
    weight = bins * a_weighting(np.fft.rfftfreq(hop, 1.0 / sample_rate))
    return np.einsum("fbc,b->f", spec, weight) / (hop * hop * x.shape[1])


def _level_db(audio: np.ndarray, sample_rate: int, sounding: np.ndarray) -> float | None:
    """A-weighted level (dB re full scale) over the loudest half of the frames where notes sound."""
    power = _frame_powers(audio, sample_rate)
    sounding = sounding[:len(power)]
    use = power[:len(sounding)][sounding] if sounding.any() else power
    if not len(use):
        return None
    loud = np.sort(use)[::-1][:max(1, len(use) // 2)]
    mean = float(np.mean(loud))
    return 10.0 * math.log10(mean) if mean > 0 else None


def _sounding_frames(song: Song, track: Track, n_frames: int) -> np.ndarray:
    sec = _seconds_map(song)
    mask = np.zeros(n_frames, dtype=bool)
    for n in track.notes:
        a, b = sec([n.start, n.start + max(1, n.duration)])
        lo, hi = int(a // FRAME_SECONDS), int(b // FRAME_SECONDS)
        mask[max(0, lo):max(0, min(n_frames, hi + 1))] = True
    return mask


def _solo(song: Song, track: Track) -> Song:
    return Song(tracks=[track], tempos=list(song.tempos), time_signature=song.time_signature,
                key_signature=song.key_signature, title=song.title, ppq=song.ppq)


def _renderer():
    """``render_song`` of :mod:`kelly.render.audio`, or None when that module is missing."""
    try:
        from kelly.render.audio import render_song
    except ImportError:
        return None
    return render_song


def rendered_levels(song: Song, *, soundfont: str | None = None, sample_rate: int = 22050) -> dict | None:
    """Level of each track soloed when rendered, and how far the melody stands out.

    Each track is rendered alone (a Song holding only that track, with the tempo map, key
    and time signature) through :func:`kelly.render.audio.render_song` (FluidSynth and a
    General MIDI soundfont; 22,050 Hz by default, which halves the render time and keeps
    what the A-weighting counts, which falls off above 10 kHz). The audio [shape=(n, 2)]
    is cut into 400 ms frames and each frame's power is A-weighted (IEC 61672, 0 dB at
    1 kHz, applied to the frame's spectrum; see :func:`a_weighting`). Only the frames in
    which the MIDI has a note of that track sounding are kept, so a sparse part is judged
    by the moments it plays, and the level is the mean power (both channels) of the
    loudest half of those frames, in dB relative to digital full scale.

    The melody is compared with the loudest pitched-accompaniment track, leaving out fx
    tracks (a riser at a section seam is meant to sweep over everything for a moment) and
    drums (listed in ``levels_db`` but not compared).

    Returns
    -------
    dict or None
        ``{"levels_db": {track: dB or None}, "melody_db", "loudest_accompaniment",
        "melody_minus_loudest_db", "renderer", "seconds"}``; a track that renders silent
        has level None. None when :mod:`kelly.render.audio` is missing or finds no
        FluidSynth or soundfont.
    """
    render_song = _renderer()
    if render_song is None:
        return None
    from kelly.errors import KellyError

    t0 = time.perf_counter()
    hop = int(round(FRAME_SECONDS * sample_rate))
    mel = melody_track(song)
    levels: dict[str, float | None] = {}
    by_track: dict[int, float | None] = {}
    for name, track in _named(song):
        if not track.notes:
            continue
        try:
            audio = np.asarray(render_song(_solo(song, track), soundfont=soundfont, sample_rate=sample_rate))
        except KellyError as exc:
            if type(exc).__name__ in ("SynthNotFound", "SoundfontError"):
                return None  # no synthesizer or soundfont on this machine
            level = None  # e.g. a part too quiet to be heard renders silent
        else:
            n_frames = max(1, math.ceil(len(audio) / hop))
            level = _level_db(audio, sample_rate, _sounding_frames(song, track, n_frames))
        levels[name] = None if level is None else round(level, 2)
        by_track[id(track)] = level
    acc = [(name, by_track.get(id(t))) for name, t in _named(song)
           if not t.is_drum and t is not mel and t.role != Role.FX]
    acc = [(n, v) for n, v in acc if v is not None]
    mel_db = by_track.get(id(mel)) if mel is not None else None
    loudest = max(acc, key=lambda nv: nv[1]) if acc else None
    return {
        "levels_db": levels,
        "melody_db": None if mel_db is None else round(mel_db, 2),
        "loudest_accompaniment": loudest[0] if loudest else None,
        "melody_minus_loudest_db": (round(mel_db - loudest[1], 2) if mel_db is not None and loudest else None),
        "renderer": f"kelly.render.audio at {sample_rate} Hz, A-weighted",
        "seconds": round(time.perf_counter() - t0, 3),
    }


# -------------------------------------------------------------------------- report
def _sections(explanation) -> list[tuple[int, int, str]]:
    """(start bar 0-based, bars, key) of each arranged section, when the explanation lists them."""
    secs = (_as_dict(explanation).get("arrangement") or {}).get("sections") or []
    out = []
    for s in secs:
        try:
            out.append((int(s["start_bar"]) - 1, int(s["bars"]), str(s["key"])))
        except (KeyError, TypeError, ValueError):
            return []
    return out


def key_report(song: Song, explanation=None) -> dict:
    """Declared and heard keys, whole piece and, when sections are in different keys, per section.

    A piece whose explanation lists sections in more than one key (a journey from F minor to
    F major) is judged section by section: each section's notes (by onset bar) against that
    section's key; ``ok`` is True only when every section is heard as declared (sections
    with no pitched notes are not judged).
    """
    declared = declared_key(song, explanation)
    heard = key_heard(song)
    out: dict = {"declared": declared, "heard": " ".join(heard) if heard else None, "ok": None, "sections": None}
    sections = _sections(explanation)
    if len({k for _, _, k in sections}) > 1:
        checks = []
        for start, bars, key in sections:
            part = slice_bars(song, start, start + bars)
            h = key_heard(part)
            try:
                ok = mode_family_heard(part, key)
            except ValueError:  # a key this module cannot read
                ok = None
            checks.append({"bars": [start + 1, start + bars], "declared": key,
                           "heard": " ".join(h) if h else None, "ok": ok})
        out["sections"] = checks
        judged = [c["ok"] for c in checks if c["ok"] is not None]
        out["ok"] = all(judged) if judged else None
    elif declared:
        try:
            out["ok"] = mode_family_heard(song, declared)
        except ValueError:
            out["ok"] = None
    return out


def report(song: Song, explanation=None, *, render: bool = False,
           soundfont: str | None = None) -> dict:
    """Every measure of this module for one piece, as a JSON-ready dict.

    Parameters
    ----------
    song : Song
    explanation : dict or kelly.contracts.Explanation, optional
        The composer's explanation; gives the declared key and mode (and the sections of a
        journey). Without it the MIDI key signature is the declared key.
    render : bool
        Also render each track (:func:`rendered_levels`; slow, seconds per piece). When
        no renderer is available ``"levels"`` is None.
    soundfont : str, optional
        For the render.
    """
    rng = out_of_range_notes(song)
    dup = duplicate_notes(song)
    return {
        "bars": _bar_count(song),
        "clash_rate": clash_rate(song),
        "melody_on_top_rate": melody_on_top_rate(song),
        "restated_bar_fraction": restated_bar_fraction(song),
        "duplicate_notes": dup,
        "duplicate_total": sum(dup.values()),
        "out_of_range_notes": rng,
        "out_of_range_total": sum(rng.values()),
        "key": key_report(song, explanation),
        "velocity": velocity_stats(song),
        "melody_register": melody_register(song),
        "max_tempo_step": max_tempo_step(song),
        "melody_leaps": melody_leaps(song),
        "levels": rendered_levels(song, soundfont=soundfont) if render else None,
    }
