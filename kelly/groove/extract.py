"""Measure a groove template from a performance.

The model is the one :mod:`kelly.groove.apply` writes: every note sits at
``warp(g, s) + dev[slot] + noise``, with ``g`` a straight 16th grid line, ``s`` the
swing factor and ``dev`` the per-slot offsets. Swing and per-slot offsets overlap (a
delayed "&" could be either), so the convention is: **swing is the mean delay of the
notes on the off-beat eighth, less the mean delay of the notes on the beat, in units of
ppq/4, clamped to [0, 1]**. Measuring from the beats means a player who is uniformly
late (the humanizer's 5-tick lag) is not called swung; the "&" slots' own deviations
then come out equal to the on-beat ones. Negative swing (a rushed "&") is reported as 0.

The hard part is knowing which notes *are* "&"s: a triplet-swung "&" (at 2/3 of the
beat) is nearer the straight grid's "a" (3/4) than its "&" (1/2). So extraction:

1. tries swing factors 0, 0.005, …, 1; for each, un-warps the onsets, snaps them to
   the nearest 16th, and scores the mean squared distance from the swung grid line;
2. keeps the grid assignment of the best score (ties go to less swing, so ambiguous
   material reads as straight);
3. measures swing as above from the notes that assignment put on "&"s and on beats
   (fewer than 4 "&" notes: swing 0, as in the original);
4. with that swing, takes each note's distance from its swung grid line; the mean per
   bar slot is ``timing_deviations`` and the mean velocity per slot ``velocity_curve``
   (slots with no notes get 0 ticks and the overall mean velocity, i.e. "no opinion").

All tick values in the template are rescaled to 480 PPQ.
"""

from __future__ import annotations

import numpy as np

from kelly.errors import FileFormatError, InputError
from kelly.groove.swing import SWING_FULL_FRACTION, is_offbeat_eighth, select_tracks, unwarp, warp
from kelly.groove.templates import SLOTS, TEMPLATE_PPQ, GrooveTemplate, ticks_to_ms
from kelly.song import Song

#: Swing factors tried in step 1.
SWING_CANDIDATES = np.round(np.linspace(0.0, 1.0, 201), 3)
#: Velocity below this counts as a ghost, above ACCENT as an accent (original thresholds).
GHOST_THRESHOLD = 40
ACCENT_THRESHOLD = 100
#: Fewest "&" notes needed to call something swing.
MIN_SWING_EVENTS = 4


def _assign(starts: np.ndarray, amount: float, ppq: int, bar_ticks: int):
    """Grid line (straight ticks), bar slot and residual from the swung grid for one swing value."""
    step = ppq / 4.0
    k = np.rint(unwarp(starts, amount, ppq) / step)
    grid = k * step
    residual = starts - warp(grid, amount, ppq)
    slot = np.mod(np.rint(np.mod(grid, bar_ticks) / step).astype(np.int64), SLOTS)
    return np.rint(grid).astype(np.int64), slot, residual


def measure_swing(starts, ppq: int, bar_ticks: int) -> float:
    """Swing factor of a set of onsets (steps 1–3 of the module docstring), unrounded.

    Parameters
    ----------
    starts : array_like [shape=(n,)]
        Onsets in ticks.
    ppq : int > 0
    bar_ticks : int > 0

    Returns
    -------
    float in [0, 1]
    """
    t = np.asarray(starts, dtype=float)
    if t.size == 0:
        return 0.0
    scores = []
    for amount in SWING_CANDIDATES:
        _, _, residual = _assign(t, float(amount), ppq, bar_ticks)
        scores.append(float(np.mean(residual ** 2)))
    best = float(SWING_CANDIDATES[int(np.argmin(scores))])
    grid, _, _ = _assign(t, best, ppq, bar_ticks)
    on_and = is_offbeat_eighth(grid, ppq)
    if int(on_and.sum()) < MIN_SWING_EVENTS:
        return 0.0
    delay = float(np.mean(t[on_and] - grid[on_and]))
    on_beat = np.mod(grid, ppq) == 0
    if on_beat.any():  # a uniformly late (or early) player is not swinging: measure from the beats
        delay -= float(np.mean(t[on_beat] - grid[on_beat]))
    return float(min(1.0, max(0.0, delay / (SWING_FULL_FRACTION * ppq))))


def extract_groove(song: Song, *, tracks=None, name: str | None = None,
                   source_file: str | None = None) -> GrooveTemplate:
    """Extract a :class:`GrooveTemplate` from ``song``.

    Parameters
    ----------
    song : Song
        The performance.
    tracks : iterable of str or int, optional
        Tracks to measure; all tracks when omitted.
    name : str, optional
        Template name; defaults to the song's title.
    source_file : str, optional
        Recorded in the template.

    Returns
    -------
    GrooveTemplate
        Timing values in ticks at 480 PPQ; swing as defined in :mod:`kelly.groove.swing`.

    Raises
    ------
    InputError
        If the chosen tracks hold no notes.
    """
    chosen = select_tracks(song, tracks)
    notes = [n for i, t in enumerate(song.tracks) if i in chosen for n in t.notes]
    if not notes:
        raise InputError("there are no notes to extract a groove from")
    ppq = song.ppq
    starts = np.array([n.start for n in notes], dtype=float)
    vels = np.array([n.velocity for n in notes], dtype=float)

    swing_factor = round(measure_swing(starts, ppq, song.bar_ticks), 3)
    _, slot, residual = _assign(starts, swing_factor, ppq, song.bar_ticks)
    residual_480 = residual * TEMPLATE_PPQ / ppq

    devs = np.zeros(SLOTS)
    curve = np.full(SLOTS, float(np.mean(vels)))
    counts = np.bincount(slot, minlength=SLOTS)
    for s in range(SLOTS):
        if counts[s]:
            devs[s] = float(np.mean(residual_480[slot == s]))
            curve[s] = float(np.mean(vels[slot == s]))

    bpm = float(song.tempos[0][1]) if song.tempos else 120.0
    num, den = song.time_signature
    if not (num >= 1 and den >= 1):
        raise InputError(f"cannot extract a groove: the time signature {num}/{den} is not valid")
    abs_dev = np.abs(residual_480)
    std_dev = float(np.std(residual_480))
    timing_stats = {
        "note_count": int(len(notes)),
        "mean_deviation_ticks": round(float(np.mean(abs_dev)), 3),
        "max_deviation_ticks": round(float(np.max(abs_dev)), 3),
        "std_deviation_ticks": round(std_dev, 3),
        "mean_deviation_ms": round(ticks_to_ms(float(np.mean(abs_dev)), bpm), 3),
        "max_deviation_ms": round(ticks_to_ms(float(np.max(abs_dev)), bpm), 3),
        "std_deviation_ms": round(ticks_to_ms(std_dev, bpm), 3),
        "swing_delay_ticks": round(swing_factor * SWING_FULL_FRACTION * TEMPLATE_PPQ, 3),
        "source_ppq": int(ppq),
    }
    velocity_stats = {
        "min": int(vels.min()), "max": int(vels.max()),
        "mean": round(float(vels.mean()), 3), "std": round(float(vels.std()), 3),
        "ghost_count": int(np.sum(vels < GHOST_THRESHOLD)),
        "accent_count": int(np.sum(vels > ACCENT_THRESHOLD)),
    }
    template = GrooveTemplate(
        name=name or song.title or "groove",
        source_file=source_file,
        ppq=TEMPLATE_PPQ,
        tempo_bpm=round(bpm, 3),
        time_signature=(int(num), int(den)),
        timing_deviations=tuple(round(float(d), 3) for d in devs),
        swing_factor=swing_factor,
        velocity_curve=tuple(round(float(v), 3) for v in curve),
        velocity_stats=velocity_stats,
        timing_stats=timing_stats,
    )
    try:  # never hand out a template that loading (and so `groove apply`) would refuse
        GrooveTemplate.from_dict(template.to_dict(), origin=template.name)
    except FileFormatError as exc:
        raise InputError(f"cannot extract a usable groove template: {exc}") from None
    return template
