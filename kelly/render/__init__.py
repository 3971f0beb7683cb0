"""Hear it and see it: MIDI → audio (FluidSynth), piano-roll plots, MusicXML scores.

Each submodule imports its heavy library (matplotlib, music21) inside its functions, so
importing :mod:`kelly.render` is cheap. The names below are the public API; the
benchmark and the ``kelly render`` / ``kelly compose --wav --plot --musicxml`` commands
use them.
"""

from __future__ import annotations

from kelly.render.audio import (RenderError, SoundfontError, SynthNotFound, find_soundfont, find_synth,
                                render_midi_file, render_song)

__all__ = ["find_synth", "find_soundfont", "render_midi_file", "render_song", "plot_song", "write_musicxml",
           "RenderError", "SoundfontError", "SynthNotFound"]


def plot_song(*args, **kwargs):
    """A piano-roll PNG of a song; see :func:`kelly.render.plot.plot_song`."""
    from kelly.render.plot import plot_song as _plot_song

    return _plot_song(*args, **kwargs)


def write_musicxml(*args, **kwargs):
    """A MusicXML score of a song; see :func:`kelly.render.score.write_musicxml`."""
    from kelly.render.score import write_musicxml as _write_musicxml

    return _write_musicxml(*args, **kwargs)
