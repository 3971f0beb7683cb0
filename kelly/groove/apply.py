"""Stamp a groove template onto a song.

For each note, find its nearest straight 16th-note grid line ``g`` and that line's
slot (0–15 within the bar). The note keeps its own distance ``r`` from the grid (so a
human performance stays human) and lands at

    start' = warp(g, s·i) + r + i · timing_deviations[slot]

where ``s`` is the template's swing factor, ``i`` the intensity and ``warp`` the swing
time-warp of :mod:`kelly.groove.swing`. Velocity blends towards the template's curve:
``v' = v·(1 − i) + curve[slot]·i``, clamped to 1–127.

So intensity 0 changes nothing, and intensity 1 puts a quantized note exactly on the
template's swung, offset position. Durations are kept (a later note of the same pitch
cuts an earlier one short rather than overlapping it). The input is read as straight:
applying a template to music that already swings snaps its "&"s to the wrong slots.
"""

from __future__ import annotations

import numpy as np

from kelly.groove.swing import _tidy, check_amount, copy_song, select_tracks, sixteenth_grid, warp
from kelly.groove.templates import GrooveTemplate
from kelly.song import Song, Track


def apply_template(song: Song, template: GrooveTemplate, intensity: float = 1.0, *, tracks=None) -> Song:
    """Apply ``template`` to ``song`` at ``intensity``.

    Parameters
    ----------
    song : Song
        Input; not modified.
    template : GrooveTemplate
        From :func:`~kelly.groove.templates.get_template`, a file, or extraction.
    intensity : float in [0, 1]
        0 leaves the song alone; 1 applies the full offsets, swing and velocity curve.
    tracks : iterable of str or int, optional
        Track names or indices to groove; all tracks when omitted.

    Returns
    -------
    Song
        A new song with sorted notes, velocities 1–127 and no note before tick 0.

    Raises
    ------
    InputError
        If ``intensity`` is outside [0, 1] or a track is unknown.
    """
    intensity = check_amount(intensity, "groove intensity")
    chosen = select_tracks(song, tracks)
    ppq = song.ppq
    devs = np.array(template.deviations_at(ppq))
    curve = np.array(template.velocity_curve)
    swing_amount = template.swing_factor * intensity
    out: list[Track] = []
    for index, track in enumerate(song.tracks):
        if index not in chosen or not track.notes or intensity == 0.0:
            out.append(track.with_notes(sorted(track.notes)))
            continue
        starts = np.array([n.start for n in track.notes], dtype=np.int64)
        vels = np.array([n.velocity for n in track.notes], dtype=float)
        grid, slot = sixteenth_grid(starts, ppq, song.bar_ticks)
        own = starts - grid
        target = warp(grid, swing_amount, ppq) + own + intensity * devs[slot]
        new_starts = np.maximum(0, np.rint(target)).astype(np.int64)
        new_vels = np.clip(np.rint(vels * (1.0 - intensity) + curve[slot] * intensity), 1, 127).astype(np.int64)
        notes = [n.moved(start=int(s), velocity=int(v)) for n, s, v in zip(track.notes, new_starts, new_vels)]
        out.append(track.with_notes(_tidy(notes)))
    return copy_song(song, out)
