"""A piano roll of a song as a PNG (matplotlib, Agg, imported inside the function).

What it shows, left to right in bars (bar 1 starts at x = 1):

* every pitched note as a bar at its MIDI pitch, one colour per track (legend with the
  track names), its opacity following its velocity; black keys shaded; note names
  (C4 = MIDI 60) on the pitch axis;
* drum and percussion tracks (MIDI channel 10) in a separate lane underneath, one row
  per General MIDI drum used (Kick, Snare, Closed hi-hat …), not at their key numbers;
* bar lines, section markers (``song.markers``) as labelled dashed lines, and chord
  symbols per bar along the top when ``chords`` is given.

The figure is drawn on a matplotlib ``Figure`` with the Agg canvas (no pyplot, no global
state, no display needed) and written atomically through :mod:`kelly.fileio`.
"""

from __future__ import annotations

import math
import os
from io import BytesIO
from pathlib import Path
from typing import Iterable, Sequence

#: Figure resolution (pixels per inch).
DPI = 100
#: Figure height in inches (pitched roll + drum lane + title and chord row).
HEIGHT_IN = 7.0
#: Width in inches: this much per bar plus a margin, clamped to [MIN_WIDTH_IN, MAX_WIDTH_IN].
WIDTH_PER_BAR_IN = 0.45
MIN_WIDTH_IN = 10.0
MAX_WIDTH_IN = 32.0

_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_BLACK = {1, 3, 6, 8, 10}


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI number (60 → ``C4``)."""
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


def song_bars(song, extra_ticks: Iterable[int] = ()) -> int:
    """Bars the plot spans: up to the last note, marker or chord (at least one).

    A note that ends less than an eighth of a bar into the next bar (a humanized last
    chord) does not add a bar; the plot's edge moves out to show it whole.
    """
    bar = song.bar_ticks
    last = max([song.end_tick(), *((int(t) + 1) for t, _ in song.markers), *((int(t) + 1) for t in extra_ticks), 0])
    return max(1, math.ceil((last - bar // 8) / bar))


def figure_size(bars: int) -> tuple[float, float]:
    """(width, height) in inches for a piece of ``bars`` bars; times :data:`DPI` gives the PNG's pixels."""
    width = min(MAX_WIDTH_IN, max(MIN_WIDTH_IN, 2.0 + WIDTH_PER_BAR_IN * bars))
    return width, HEIGHT_IN


def chords_per_bar(names: Sequence[str] | None, bar_ticks: int) -> list[tuple[int, str]]:
    """``[(tick, name)]`` for a list of chord names, one per bar (as the explanation gives them)."""
    return [(i * bar_ticks, str(name)) for i, name in enumerate(names or []) if name]


def render_png(song, *, chords: Sequence[tuple[int, str]] | None = None, title: str | None = None,
               dpi: int = DPI) -> bytes:
    """The piano roll as PNG bytes (see the module docstring for what it shows)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from kelly.render.gm import drum_name

    chords = [(int(t), str(c)) for t, c in (chords or [])]
    bar = song.bar_ticks
    bars = song_bars(song, (t for t, _ in chords))
    width, height = figure_size(bars)
    pitched = [t for t in song.tracks if t.notes and not t.is_drum]
    drums = [t for t in song.tracks if t.notes and t.is_drum]
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#bcbd22", "#7f7f7f"]
    colours = {id(t): palette[i % len(palette)] for i, t in enumerate(t for t in song.tracks if t.notes)}

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    kit = sorted({n.pitch for t in drums for n in t.notes})
    if kit:
        grid = fig.add_gridspec(2, 1, height_ratios=[4.0, max(1.0, min(2.2, 0.28 * len(kit)))], hspace=0.06)
        ax = fig.add_subplot(grid[0])
        lane = fig.add_subplot(grid[1], sharex=ax)
    else:
        ax, lane = fig.add_subplot(1, 1, 1), None
    fig.subplots_adjust(left=1.0 / width, right=1.0 - 1.45 / width, top=0.86, bottom=0.08)

    def x_of(tick):
        return np.asarray(tick, dtype=float) / bar + 1.0

    def boxes(notes, rows, half=0.4):
        start = x_of([n.start for n in notes])
        end = x_of([n.start + max(n.duration, 1) for n in notes])
        end = np.maximum(end, start + 1.0 / 64)  # a drum hit stays visible
        y = np.asarray(rows, dtype=float)
        return np.stack([np.stack([start, y - half], 1), np.stack([end, y - half], 1),
                         np.stack([end, y + half], 1), np.stack([start, y + half], 1)], 1)

    def faces(colour, notes):
        rgba = np.tile(to_rgba(colour), (len(notes), 1))
        rgba[:, 3] = 0.35 + 0.65 * np.clip([n.velocity / 127 for n in notes], 0, 1)
        return rgba

    # pitched roll
    if pitched:
        low = min(n.pitch for t in pitched for n in t.notes) - 2
        high = max(n.pitch for t in pitched for n in t.notes) + 2
    else:
        low, high = 48, 84
    for p in range(low, high + 1):
        if p % 12 in _BLACK:
            ax.axhspan(p - 0.5, p + 0.5, color="#000000", alpha=0.045, linewidth=0)
    for track in pitched:
        colour = colours[id(track)]
        ax.add_collection(PolyCollection(boxes(track.notes, [n.pitch for n in track.notes]),
                                         facecolors=faces(colour, track.notes), edgecolors=colour, linewidths=0.4))
    ax.set_ylim(low - 0.5, high + 0.5)
    span = high - low
    step = 1 if span <= 14 else (None if span <= 30 else 12)
    if step == 1:
        ticks = list(range(low, high + 1))
    elif step is None:
        ticks = [p for p in range(low, high + 1) if p % 12 in (0, 4, 7)]
    else:
        ticks = [p for p in range(low, high + 1) if p % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([note_name(p) for p in ticks], fontsize=8)
    ax.set_yticks(range(low, high + 1), minor=True)
    ax.tick_params(axis="y", which="minor", length=2)
    ax.set_ylabel("pitch")

    # drum lane
    if lane is not None:
        row = {p: i for i, p in enumerate(kit)}
        for track in drums:
            colour = colours[id(track)]
            lane.add_collection(PolyCollection(boxes(track.notes, [row[n.pitch] for n in track.notes], 0.36),
                                               facecolors=faces(colour, track.notes), edgecolors=colour,
                                               linewidths=0.4))
        lane.set_ylim(-0.6, len(kit) - 0.4)
        lane.set_yticks(range(len(kit)))
        lane.set_yticklabels([drum_name(p) for p in kit], fontsize=7 if len(kit) <= 8 else 6)
        lane.set_facecolor("#f6f6f6")
        ax.tick_params(axis="x", labelbottom=False)

    # bars, markers, chords
    axes = [a for a in (ax, lane) if a is not None]
    every = 1 if bars <= 32 else (4 if bars <= 128 else 8 if bars <= 256 else 16)
    right = max(bars + 1.0, float(x_of(song.end_tick())))
    for a in axes:
        a.set_xlim(1.0, right)
        a.vlines(np.arange(1, bars + 2), 0, 1, transform=a.get_xaxis_transform(), colors="#999999",
                 linewidths=0.5 if bars <= 128 else 0.25, zorder=0.5)
    bottom = axes[-1]
    bottom.set_xticks([b + 0.5 for b in range(1, bars + 1, every)])
    bottom.set_xticklabels([str(b) for b in range(1, bars + 1, every)], fontsize=8)
    bottom.tick_params(axis="x", length=0)
    bottom.set_xlabel("bar")
    for tick, name in song.markers:
        x = float(x_of(tick))
        if not 1.0 <= x <= bars + 1.0:
            continue
        for a in axes:
            a.axvline(x, color="#444444", linestyle="--", linewidth=1.0, zorder=3)
        ax.text(x, 0.985, f" {name}", transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize=8,
                color="#222222", zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                 "alpha": 0.75})
    if chords:
        inches_per_bar = (width - 2.45) / bars
        show_every = max(1, math.ceil(0.42 / inches_per_bar))  # room for a label like "Cm/Eb"
        for i, (tick, name) in enumerate(sorted(chords)):
            if i % show_every:
                continue
            x = float(x_of(tick))
            if 1.0 <= x < bars + 1.0:
                ax.text(x + 0.05, 1.012, name, transform=ax.get_xaxis_transform(), ha="left", va="bottom",
                        fontsize=8 if show_every == 1 else 7, color="#333333", clip_on=False)

    handles = [Patch(facecolor=colours[id(t)], edgecolor=colours[id(t)],
                     label=t.name) for t in pitched + drums]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
                  borderaxespad=0.0)
    heading = title if title is not None else (song.title or "Kelly")
    tempo = song.tempos[0][1] if song.tempos else 120.0
    info = f"{song.time_signature[0]}/{song.time_signature[1]}, {tempo:g} BPM"
    if song.key_signature:
        key = song.key_signature
        info = f"{key[:-1]} minor" if key.endswith("m") else f"{key} major"
        info += f", {song.time_signature[0]}/{song.time_signature[1]}, {tempo:g} BPM"
    fig.suptitle(f"{heading}  ({info}, {bars} bars)", fontsize=11, y=0.975)

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def plot_song(song, path: str | os.PathLike, *, chords: Sequence[tuple[int, str]] | None = None,
              title: str | None = None, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write a piano-roll PNG of ``song`` to ``path``, atomically.

    Parameters
    ----------
    song : kelly.song.Song
    path : path
        The PNG to write (always PNG, whatever the suffix). Its size in pixels is
        :func:`figure_size` ``(song_bars(song)) * DPI``.
    chords : list of (tick, label), optional
        Chord symbols to print along the top (e.g. :func:`chords_per_bar` of the
        explanation's ``progression.chords``).
    title : str, optional
        Heading (default: the song's title).
    force : bool
        Replace an existing file (``--force``); otherwise it is refused.
    inputs : paths
        Files the command read; never written over.

    Raises
    ------
    OutputError
        See :func:`kelly.fileio.write_bytes_atomic`.
    """
    from kelly.fileio import write_bytes_atomic

    return write_bytes_atomic(path, render_png(song, chords=chords, title=title), overwrite=force, inputs=inputs)
