"""Audio for the EmotionRecognizer: cached MIDI rendered through FluidSynth.

The recognizer learns V/A/D from audio, so the composed pieces (exact labels) and the
converted corpus (weak labels) are rendered with a General MIDI soundfont
(:func:`kelly.render.audio.render_midi_file`: Debian's ``fluidsynth`` program, about 100
times faster than real time). WAV files go beside the MIDI under ``<data_dir>/audio/``,
named after the MIDI path, and are skipped when they already exist, so rendering
resumes like conversion does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from kelly.ml.data.store import data_dir as resolve_data_dir, progress

#: Sample rate of the renders: enough for a 128-bin mel spectrogram up to 8 kHz, half the disk of 44.1 kHz.
SAMPLE_RATE = 22050


def audio_path(record: dict[str, Any], data_dir: str | os.PathLike | None = None) -> Path:
    """Where a record's render goes: ``<data_dir>/audio/<midi path>.wav``."""
    root = resolve_data_dir(data_dir)
    return root / "audio" / Path(record["midi"]).with_suffix(".wav")


def render_record(record: dict[str, Any], *, data_dir: str | os.PathLike | None = None,
                  soundfont: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE,
                  force: bool = False) -> Path:
    """Render one manifest record's MIDI to WAV (skipped if the WAV exists, unless ``force``).

    Raises
    ------
    kelly.render.audio.SynthNotFound, SoundfontError, RenderError
        No FluidSynth, no soundfont, or a failed render.
    """
    from kelly.render.audio import render_midi_file

    root = resolve_data_dir(data_dir)
    out = audio_path(record, root)
    if out.is_file() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    return render_midi_file(root / record["midi"], out, soundfont=soundfont, sample_rate=sample_rate, force=True)


def render_records(records: Iterable[dict[str, Any]], *, data_dir: str | os.PathLike | None = None,
                   soundfont: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE,
                   limit: int | None = None, show_progress: bool = True) -> list[Path]:
    """Render many records (status ``ok`` only; at most ``limit``); returns the WAV paths in order."""
    recs = [r for r in records if r.get("status", "ok") == "ok" and r.get("midi")]
    if limit is not None:
        recs = recs[:max(0, int(limit))]
    return [render_record(r, data_dir=data_dir, soundfont=soundfont, sample_rate=sample_rate)
            for r in progress(recs, total=len(recs), desc="render", enabled=show_progress)]
