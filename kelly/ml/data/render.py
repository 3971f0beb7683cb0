"""Audio for the EmotionRecognizer: cached MIDI rendered through FluidSynth.

The recognizer learns V/A/D from audio, so the composed pieces (exact labels) and the
converted corpus (weak labels) are rendered with a General MIDI soundfont
(:func:`kelly.render.audio.render_midi_file`: Debian's ``fluidsynth`` program, about 100
times faster than real time). WAV files go beside the MIDI under ``<data_dir>/audio/``,
named after the MIDI path, and are skipped when they already exist, so rendering
resumes like conversion does.

``--remap`` renders each piece re-orchestrated (:func:`remapped_song`) into
``audio-remap``: a second training render per piece. A second soundfont renders into its own folder (``folder="audio-timgm"``): the model
card's held-out check plays the recognizer test pieces through a soundfont it never
heard in training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from kelly.ml.data.store import data_dir as resolve_data_dir, progress

#: Sample rate of the renders: enough for a 128-bin mel spectrogram up to 8 kHz, half the disk of 44.1 kHz.
SAMPLE_RATE = 22050
#: Folder (inside the data folder) of the renders the recognizer trains on.
AUDIO_FOLDER = "audio"


def audio_path(record: dict[str, Any], data_dir: str | os.PathLike | None = None, *,
               folder: str = AUDIO_FOLDER) -> Path:
    """Where a record's render goes: ``<data_dir>/<folder>/<midi path>.wav``."""
    from kelly.ml.processor import check_file_name

    root = resolve_data_dir(data_dir)
    return root / check_file_name(folder) / Path(record["midi"]).with_suffix(".wav")


#: Where the re-orchestrated renders go (:func:`render_record` with ``remap=True``).
REMAP_FOLDER = "audio-remap"
#: The General MIDI programs a re-orchestrated part may take: keys, mallets, organ, guitars,
#: basses, strings, ensembles, brass, reeds, pipes, synth leads and pads (no effects or percussion).
REMAP_PROGRAMS = tuple(range(0, 16)) + tuple(range(16, 24)) + tuple(range(24, 32)) + tuple(range(32, 40)) \
    + tuple(range(40, 56)) + tuple(range(56, 64)) + tuple(range(64, 80)) + tuple(range(80, 96))


def remapped_song(record: dict[str, Any], root: Path):
    """The record's song with every pitched part moved to another GM program (seeded by the piece).

    Why: the recognizer must hear emotion in how the music moves (tempo, mode, register,
    density, loudness), not in which instruments Kelly happened to pick for an emotion. The
    same piece re-orchestrated at random, through the same soundfont, is a second training
    render whose instruments carry no label.
    """
    import zlib

    import numpy as np

    from kelly.song import read_midi

    song = read_midi(root / record["midi"])
    rng = np.random.default_rng(zlib.crc32(("remap:" + str(record.get("id", ""))).encode("utf-8")))
    for t in song.tracks:
        if not t.is_drum:
            t.program = int(rng.choice(REMAP_PROGRAMS))
    return song


def render_record(record: dict[str, Any], *, data_dir: str | os.PathLike | None = None,
                  soundfont: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE,
                  force: bool = False, folder: str = AUDIO_FOLDER, remap: bool = False) -> Path:
    """Render one manifest record's MIDI to WAV (skipped if the WAV exists, unless ``force``).

    Raises
    ------
    kelly.render.audio.SynthNotFound, SoundfontError, RenderError
        No FluidSynth, no soundfont, or a failed render.
    """
    from kelly.render.audio import render_midi_file

    root = resolve_data_dir(data_dir)
    out = audio_path(record, root, folder=folder)
    if out.is_file() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if not remap:
        return render_midi_file(root / record["midi"], out, soundfont=soundfont, sample_rate=sample_rate, force=True)
    from kelly.fileio import scratch_dir

    with scratch_dir("kelly-remap-") as work:
        midi = Path(work) / "remapped.mid"
        remapped_song(record, root).save(midi)
        return render_midi_file(midi, out, soundfont=soundfont, sample_rate=sample_rate, force=True)


def _render_one(job: tuple) -> str:
    record, kwargs = job
    return str(render_record(record, **kwargs))


def render_records(records: Iterable[dict[str, Any]], *, data_dir: str | os.PathLike | None = None,
                   soundfont: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE,
                   limit: int | None = None, show_progress: bool = True, folder: str = AUDIO_FOLDER,
                   workers: int = 1, remap: bool = False) -> list[Path]:
    """Render many records (status ``ok`` only; at most ``limit``); returns the WAV paths in order.

    ``workers`` > 1 renders in that many processes (each runs its own ``fluidsynth``).
    """
    from kelly.errors import InputError

    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number ≥ 1, got {workers!r}")
    recs = [r for r in records if r.get("status", "ok") == "ok" and r.get("midi")]
    if limit is not None:
        recs = recs[:max(0, int(limit))]
    kwargs = {"data_dir": data_dir, "soundfont": soundfont, "sample_rate": sample_rate, "folder": folder,
              "remap": remap}
    jobs = [(r, kwargs) for r in recs]
    if workers == 1 or len(jobs) <= 1:
        return [Path(_render_one(j)) for j in progress(jobs, total=len(jobs), desc="render", enabled=show_progress)]
    import multiprocessing

    with multiprocessing.get_context().Pool(processes=min(workers, len(jobs))) as pool:
        done = pool.imap(_render_one, jobs)
        return [Path(p) for p in progress(done, total=len(jobs), desc="render", enabled=show_progress)]
