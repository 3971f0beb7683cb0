"""Swing: one definition, used by templates, application and extraction alike.

Definition
----------
``swing_factor`` (or ``amount``) ``s`` is a number in [0, 1]. It delays the off-beat
eighth note of every quarter-note beat (the "&") by

    d = s · ppq / 4   ticks          (s = 1 → 120 ticks at 480 PPQ)

so the long-short ratio of a pair of eighths is ``0.5 + s/4``:

======  ==========================  =======================
 s      "&" lands at (of the beat)  feel
======  ==========================  =======================
 0      1/2                         straight
 0.67   2/3                         triplet swing (jazz)
 1      3/4                         dotted-eighth + 16th
======  ==========================  =======================

Why this scale: it makes the genre numbers of the original (jazz 0.67, blues 0.6,
rock 0.0, ...) mean what a musician reads into them (0.67 ≈ triplet feel) while 0 stays
"straight", and an extractor can measure it directly as the mean delay of the "&".

Swing is applied as a piecewise-linear *time warp* inside each beat: 0 → 0,
``ppq/2`` → ``ppq/2 + d``, ``ppq`` → ``ppq``. The first half of the beat is stretched
and the second compressed, so notes between the grid lines (16ths, flams, human
timing) move smoothly and note order inside a beat never changes. Grid 16ths on the
"e" and "a" therefore move by ``d/2``. :func:`unwarp` is the exact inverse, which is
what extraction uses to recover the straight grid.
"""

from __future__ import annotations

import numpy as np

from kelly.errors import InputError
from kelly.song import Song, Track, read_limit

#: Swing delay of the off-beat eighth at s = 1, as a fraction of a quarter note.
SWING_FULL_FRACTION = 0.25


def swing_delay(amount: float, ppq: int) -> float:
    """Ticks the off-beat eighth moves for swing ``amount`` at ``ppq`` (``amount · ppq/4``)."""
    return float(amount) * SWING_FULL_FRACTION * ppq


def check_amount(amount: float, what: str = "swing amount") -> float:
    """Validate a number in [0, 1] once at the boundary.

    Raises
    ------
    InputError
        If ``amount`` is not a finite number in [0, 1].
    """
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number between 0 and 1, got {amount!r}") from None
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{what} must be between 0 and 1, got {amount!r}")
    return value


def warp(ticks, amount: float, ppq: int) -> np.ndarray:
    """Map straight positions to swung positions.

    Parameters
    ----------
    ticks : array_like [shape=(n,)]
        Absolute positions in ticks (any real values >= 0).
    amount : float in [0, 1]
        Swing factor ``s`` (see the module docstring).
    ppq : int > 0
        Ticks per quarter note; one beat is one quarter note.

    Returns
    -------
    np.ndarray [shape=(n,), float]
        Swung positions; beat boundaries are fixed points.
    """
    t = np.asarray(ticks, dtype=float)
    half = ppq / 2.0
    d = swing_delay(amount, ppq)
    beat = np.floor(t / ppq) * ppq
    x = t - beat
    first = x * (half + d) / half
    second = half + d + (x - half) * (half - d) / half
    return beat + np.where(x <= half, first, second)


def unwarp(ticks, amount: float, ppq: int) -> np.ndarray:
    """Inverse of :func:`warp`: map swung positions back to the straight time line.

    Parameters and return shape as for :func:`warp`. ``amount`` must be < 2 so the
    compressed half keeps a positive length; the [0, 1] range guarantees it.
    """
    t = np.asarray(ticks, dtype=float)
    half = ppq / 2.0
    d = swing_delay(amount, ppq)
    beat = np.floor(t / ppq) * ppq
    y = t - beat
    first = y * half / (half + d)
    second = half + (y - half - d) * half / (half - d)
    return beat + np.where(y <= half + d, first, second)


def sixteenth_grid(ticks, ppq: int, bar_ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest straight 16th-note grid line and its slot (0–15) for each position.

    The slot is the 16th's index from the start of its bar, taken modulo 16, so a 4/4
    bar uses slots 0–15 once and shorter bars use a prefix (3/4: 0–11). Bars are
    measured from tick 0 with one time signature, as :class:`~kelly.song.Song` holds.

    Returns
    -------
    grid : np.ndarray [shape=(n,), int]
        Grid position in ticks.
    slot : np.ndarray [shape=(n,), int]
        Slot index 0–15.
    """
    step = ppq / 4.0
    t = np.asarray(ticks, dtype=float)
    k = np.rint(t / step)
    grid = k * step
    in_bar = np.mod(grid, bar_ticks)
    slot = np.mod(np.rint(in_bar / step).astype(np.int64), 16)
    return np.rint(grid).astype(np.int64), slot


def is_offbeat_eighth(grid, ppq: int) -> np.ndarray:
    """True where a straight grid position is the "&" (half-way through a beat)."""
    g = np.asarray(grid, dtype=np.int64)
    return np.mod(g, ppq) == ppq // 2


def _tidy(notes: list) -> list:
    """Sort notes and keep repeated pitches from overlapping.

    A later note of the same pitch cuts the earlier one short (never below 1 tick), and
    two notes of one pitch on one tick collapse to the louder one, so the written MIDI
    has an unambiguous note-on/note-off pairing.
    """
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch, -n.velocity, n.duration))
    kept: list = []
    last_by_pitch: dict[int, int] = {}
    for note in ordered:
        prev_index = last_by_pitch.get(note.pitch)
        if prev_index is not None:
            prev = kept[prev_index]
            if prev.start == note.start:
                continue  # same pitch, same tick: keep the louder (sorted first)
            if prev.end > note.start:
                kept[prev_index] = prev.moved(duration=max(1, note.start - prev.start))
        last_by_pitch[note.pitch] = len(kept)
        kept.append(note)
    return sorted(kept)


def copy_song(song: Song, tracks: list[Track]) -> Song:
    """A new :class:`Song` with ``song``'s conductor data and the given tracks.

    Notes moved past :func:`kelly.song.read_limit` (the last bar, or the last tick, that
    Kelly reads) are cut back to end there, so a grooved song can always be read again.
    """
    limit = read_limit(song)
    return Song(
        tracks=[_within(track, limit) for track in tracks],
        tempos=list(song.tempos),
        time_signature=tuple(song.time_signature),
        key_signature=song.key_signature,
        title=song.title,
        ppq=song.ppq,
        markers=list(song.markers),
        warnings=list(song.warnings),
    )


def _within(track: Track, limit: int) -> Track:
    """``track`` with every note ending by tick ``limit`` (starting by ``limit - 1``)."""
    if all(n.start + n.duration <= limit for n in track.notes):
        return track
    notes = []
    for n in track.notes:
        if n.start + n.duration > limit:
            start = min(n.start, limit - 1)
            n = n.moved(start=start, duration=limit - start)
        notes.append(n)
    return track.with_notes(_tidy(notes))


def swing(song: Song, amount: float, *, tracks=None) -> Song:
    """Swing the off-beat eighths of ``song`` by ``amount`` (see module docstring).

    Both ends of each note are warped, so a legato line stays legato and no note
    crosses its neighbour.

    Parameters
    ----------
    song : Song
        Input; not modified.
    amount : float in [0, 1]
        Swing factor ``s``; 0 returns an identical copy.
    tracks : iterable of str or int, optional
        Track names or indices to swing; all tracks when omitted.

    Returns
    -------
    Song
        A new song with sorted notes.
    """
    amount = check_amount(amount)
    chosen = select_tracks(song, tracks)
    out: list[Track] = []
    for index, track in enumerate(song.tracks):
        if index not in chosen or not track.notes or amount == 0.0:
            out.append(track.with_notes(list(track.notes)))
            continue
        starts = np.array([n.start for n in track.notes], dtype=float)
        ends = np.array([n.end for n in track.notes], dtype=float)
        new_starts = np.rint(warp(starts, amount, song.ppq)).astype(np.int64)
        new_ends = np.rint(warp(ends, amount, song.ppq)).astype(np.int64)
        notes = [
            n.moved(start=int(s), duration=int(max(1, e - s)))
            for n, s, e in zip(track.notes, new_starts, new_ends)
        ]
        moved = track.with_notes(_tidy(notes))
        if track.controls:  # a pedal or a bend stays with the notes it shapes
            ticks = np.rint(warp([c[0] for c in track.controls], amount, song.ppq)).astype(np.int64)
            moved.controls = sorted((int(t), kind, number, value)
                                    for t, (_, kind, number, value) in zip(ticks, track.controls))
        out.append(moved)
    return copy_song(song, out)


def swing_spans(song: Song, spans, *, tracks=None) -> Song:
    """Swing each stretch of ``song`` by its own amount (a journey's sections, the networks' swing per bar).

    Parameters
    ----------
    song : Song
        Input; not modified.
    spans : iterable of (start, end, amount)
        ``[start, end)`` in ticks and a swing factor in [0, 1]; a note takes the amount of
        the stretch its start lies in (both its ends warped by it) and a note in none is
        left straight. Stretches should begin on beats (the warp is per beat).
    tracks : iterable of str or int, optional
        Track names or indices to swing; all tracks when omitted.

    Returns
    -------
    Song
        A new song with sorted notes; with one stretch covering the song it equals
        :func:`swing` with that amount.
    """
    spans = sorted((int(a), int(b), check_amount(x)) for a, b, x in spans)
    chosen = select_tracks(song, tracks)
    starts_at = np.array([a for a, _, _ in spans], dtype=np.int64)

    def amount_at(tick: int) -> float:
        k = int(np.searchsorted(starts_at, tick, side="right")) - 1
        return spans[k][2] if k >= 0 and spans[k][0] <= tick < spans[k][1] else 0.0

    out: list[Track] = []
    for index, track in enumerate(song.tracks):
        if index not in chosen or not track.notes or not any(x for _, _, x in spans):
            out.append(track.with_notes(list(track.notes)))
            continue
        notes = []
        for n in track.notes:
            amount = amount_at(n.start)
            if amount == 0.0:
                notes.append(n)
                continue
            s, e = np.rint(warp(np.array([n.start, n.end], dtype=float), amount, song.ppq)).astype(np.int64)
            notes.append(n.moved(start=int(s), duration=int(max(1, e - s))))
        moved = track.with_notes(_tidy(notes))
        moved.controls = sorted((int(np.rint(warp([t], amount_at(t), song.ppq))[0]), kind, number, value)
                                for t, kind, number, value in track.controls)
        out.append(moved)
    return copy_song(song, out)


def select_tracks(song: Song, tracks) -> set[int]:
    """Indices of the tracks named (or numbered) in ``tracks``; all when ``None``.

    Raises
    ------
    InputError
        If a name or index matches no track.
    """
    if tracks is None:
        return set(range(len(song.tracks)))
    if isinstance(tracks, (str, int)):
        tracks = [tracks]
    chosen: set[int] = set()
    names = [t.name for t in song.tracks]
    for item in tracks:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(song.tracks):
                raise InputError(f"track index {item} is out of range (the song has {len(song.tracks)} tracks)")
            chosen.add(item)
        elif item in names:
            chosen.update(i for i, name in enumerate(names) if name == item)
        else:
            listed = ", ".join(repr(n) for n in names) or "none"
            raise InputError(f"no track named {item!r}; tracks: {listed}")
    return chosen
