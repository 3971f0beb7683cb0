"""A trained DDSP voice rendering Kelly's music: MIDI notes → controls → audio (numpy only).

How a piece is rendered
-----------------------
* **One voice per note** (polyphony is free): each pitched note gets its own decoder
  run, from its note-on to the end of its release, with its own GRU state. Notes are
  batched by length so the decoder runs many voices at once.
* **Pitch** is the note's (MIDI pitch → Hz) at every frame.
* **Loudness** is an envelope in dB shaped by the part's role (:data:`ENVELOPES`:
  attack, decay rate, release), peaking at the loudness the model learned for that
  velocity: ``c0 + c1·velocity/127 + c2·A(f0)`` fitted on the training notes
  (:func:`kelly.ddsp.data.loudness_map`), so a velocity lands inside the range the
  voice was trained on. Dominance moves that peak by up to ±4 dB.
* **Emotion** (V, A, D) goes into the decoder at every frame: constant, or per section
  (a list of ``(start_seconds, (V, A, D))``). The decoder learned from the training
  data which timbre goes with which label (:mod:`kelly.ddsp.data`): arousal toward
  noise and brightness, valence toward a brighter harmonic tilt, dominance toward level.
* **Drums** are not the voice's: they come from the General MIDI soundfont
  (:func:`kelly.render.audio.render_song`) and are mixed in at the output rate.
* Each part is panned from its MIDI pan (CC10) when it has one, the voice's bus goes
  through a small room (:class:`kelly.ddsp.core.Reverb`), and the 16 kHz mix is
  resampled to the WAV's rate (soxr HQ).

The same song, emotion and seed give the same samples.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kelly.ddsp.core import FRAME_RATE, HOP, LOUDNESS_MIN_DB, SAMPLE_RATE, FilteredNoise, Harmonic, Reverb, \
    decoder_inputs, midi_to_hz, split_outputs
from kelly.errors import InputError

#: Where the package ships its trained voice.
SHIPPED_VOICE = Path(__file__).resolve().parent.parent / "assets" / "models" / "ddsp"
ENV_VOICE = "KELLY_DDSP_VOICE"


@dataclass(frozen=True)
class Envelope:
    """A loudness envelope in dB: rise over ``attack`` s, fall at ``decay_db_per_s`` while held, ``release`` s tail."""

    attack: float
    decay_db_per_s: float
    release: float


#: By part role (kelly.song.Role values); melody-like parts speak quickly, pads swell.
ENVELOPES = {"melody": Envelope(0.015, 4.0, 0.18), "counter": Envelope(0.02, 4.0, 0.2),
             "harmony": Envelope(0.02, 5.0, 0.25), "bass": Envelope(0.01, 6.0, 0.15),
             "pad": Envelope(0.25, 0.0, 0.6), "strings": Envelope(0.12, 1.0, 0.4),
             "fx": Envelope(0.05, 2.0, 0.4)}
DEFAULT_ENVELOPE = Envelope(0.02, 4.0, 0.25)
#: Largest number of voices run through the decoder together.
BATCH_VOICES = 256
#: A note longer than this is held at most this long (a drone of minutes is cut, and said so).
MAX_NOTE_SECONDS = 30.0
DOMINANCE_DB = 4.0


def envelope_db(n_frames: int, held_frames: int, peak_db: float, env: Envelope) -> np.ndarray:
    """Loudness frames (dB) for a note held ``held_frames`` then released, floored at −80 dB."""
    t = np.arange(n_frames) / FRAME_RATE
    held = held_frames / FRAME_RATE
    floor = LOUDNESS_MIN_DB
    attack = np.clip(t / max(env.attack, 1e-3), 0.0, 1.0)
    # the attack rises in amplitude (linear), then the level falls in dB while the key is held
    level = peak_db - env.decay_db_per_s * np.maximum(0.0, t - env.attack)
    db = np.where(attack > 0, level + 20.0 * np.log10(np.maximum(attack, 1e-4)), floor)
    at_release = peak_db - env.decay_db_per_s * max(0.0, held - env.attack)
    after = t - held
    released = at_release - 60.0 * after / max(env.release, 1e-3)  # 60 dB down over the release
    db = np.where(after > 0, np.minimum(db, released), db)
    return np.maximum(db, floor)


class DdspVoice:
    """A voice folder (``ddsp.json`` + ``ddsp.meta.json``), ready to render.

    Parameters
    ----------
    folder : path, optional
        Default: ``$KELLY_DDSP_VOICE``, then the shipped voice.
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        from kelly.ddsp.decoder import NumpyDecoder
        from kelly.ddsp.export import JSON_NAME, read_voice

        folder = find_voice(folder)
        files = read_voice(folder)
        self.folder = files.folder
        self.meta = files.meta
        self.decoder = NumpyDecoder(files.json_bytes, name=str(folder / JSON_NAME))
        lm = self.meta["loudness_map"]
        self._c = (float(lm["c0"]), float(lm["c1"]), float(lm["c2"]))

    @property
    def name(self) -> str:
        return self.folder.name

    def peak_db(self, pitch: int, velocity: int, dominance: float = 0.5) -> float:
        """The loudness a note of this pitch and velocity peaks at (dB), inside the trained range."""
        from kelly.ddsp.features import a_weighting_db

        c0, c1, c2 = self._c
        a = float(a_weighting_db(midi_to_hz(pitch)))
        peak = c0 + c1 * np.clip(velocity, 1, 127) / 127.0 + c2 * a
        return float(min(peak + DOMINANCE_DB * (2.0 * dominance - 1.0), -1.0))

    def torch_backend(self):
        """``(decoder, synth)`` in torch, from the same weights: the comparison ``make bench`` times."""
        import torch

        from kelly.ddsp.decoder import DecoderConfig, torch_decoder
        from kelly.ddsp.train import synth_torch

        model = torch_decoder(DecoderConfig(hidden=self.decoder.hidden))
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.decoder.state_dict().items()})
        model.eval()

        def decode(x: np.ndarray, lengths=None) -> tuple[np.ndarray, None]:
            with torch.no_grad():
                return model(torch.from_numpy(x))[0].numpy(), None

        def synth(raw: np.ndarray, f0: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
            gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
            with torch.no_grad():
                return synth_torch(torch.from_numpy(np.asarray(raw, np.float32))[None],
                                   torch.from_numpy(np.asarray(f0, np.float32))[None], n, gen)[0].double().numpy()

        return decode, synth

    def render_notes(self, notes: Sequence[tuple[float, float, int, int, str]], n_samples: int, *,
                     emotion_at=None, seed: int = 0, pan: Sequence[float] | None = None,
                     backend: str = "numpy") -> np.ndarray:
        """Render notes ``(start_s, end_s, pitch, velocity, role)`` into ``[n_samples, 2]`` at 16 kHz.

        ``emotion_at(seconds) -> (V, A, D)`` gives the emotion at a note's start (default
        neutral); ``pan`` (−1 left … 1 right) per note, default centre. ``backend="torch"``
        runs the decoder and the synths in torch instead (same weights; for comparison).
        """
        decode, synth = (self.decoder, None) if backend == "numpy" else self.torch_backend()
        out = np.zeros((n_samples, 2), np.float64)
        if not notes:
            return out
        emotion_at = emotion_at or (lambda _t: (0.0, 0.5, 0.5))
        # A note played again (same pitch, velocity, length, role and emotion) is the same decoder run and the
        # same harmonic sound: each is computed once; only its noise differs, drawn from the note's own seed.
        unique: dict[tuple, int] = {}
        voices, plays = [], []
        for i, (start, end, pitch, vel, role) in enumerate(notes):
            env = ENVELOPES.get(role, DEFAULT_ENVELOPE)
            held = max(1, int(round(min(end - start, MAX_NOTE_SECONDS) * FRAME_RATE)))
            n_frames = held + int(np.ceil(env.release * FRAME_RATE)) + 2
            emo = tuple(float(x) for x in emotion_at(start))
            key = (int(pitch), int(vel), held, n_frames, env, emo)
            if key not in unique:
                unique[key] = len(voices)
                loud = envelope_db(n_frames, held, self.peak_db(pitch, vel, emo[2]), env)
                voices.append((np.full(n_frames, midi_to_hz(pitch)), loud, emo))
            plays.append((i, start, unique[key]))
        self.last_render = {"notes": len(notes), "decoded": len(voices)}  # what the work was (for make bench)
        raws: list = [None] * len(voices)
        order = sorted(range(len(voices)), key=lambda v: len(voices[v][0]))
        for at in range(0, len(order), BATCH_VOICES):
            group = order[at:at + BATCH_VOICES]
            t = max(len(voices[v][0]) for v in group)
            x = np.zeros((len(group), t, 5), np.float32)
            for k, v in enumerate(group):
                f0, loud, emo = voices[v]
                x[k, :len(f0)] = decoder_inputs(f0, loud, emo)
                x[k, len(f0):] = x[k, len(f0) - 1]
            raw, _ = decode(x, lengths=np.array([len(voices[v][0]) for v in group]))
            for k, v in enumerate(group):
                raws[v] = raw[k, :len(voices[v][0])]
        harmonic, noise = Harmonic(), FilteredNoise()
        harmonics: dict[int, np.ndarray] = {}
        seeds = np.random.SeedSequence(seed).spawn(len(notes))
        for i, start, v in plays:
            f0 = voices[v][0]
            n = len(f0) * HOP
            rng = np.random.default_rng(seeds[i])
            if synth is not None:
                audio = synth(raws[v], f0, n, rng)
            else:
                amp, dist, mags = split_outputs(np.asarray(raws[v], dtype=np.float32))
                if v not in harmonics:
                    harmonics[v] = harmonic.get_signal(**harmonic.get_controls(amp, dist, f0), n_samples=n)
                audio = harmonics[v] + noise.get_signal(**noise.get_controls(mags), n_samples=n, rng=rng)
            fade = np.ones(n)
            tail = min(n, 4 * HOP)
            fade[-tail:] = np.linspace(1.0, 0.0, tail)  # the last frame ends at silence, never a click
            audio *= fade  # a new array: a cached harmonic sound is never changed
            a = int(round(start * SAMPLE_RATE))
            if a >= n_samples:
                continue
            b = min(n_samples, a + n)
            p = 0.0 if pan is None else float(pan[i])
            left, right = np.cos((p + 1) * np.pi / 4), np.sin((p + 1) * np.pi / 4)
            out[a:b, 0] += audio[:b - a] * left * np.sqrt(2)
            out[a:b, 1] += audio[:b - a] * right * np.sqrt(2)
        return out


def find_voice(folder: str | os.PathLike | None = None) -> Path:
    """The voice folder to use: ``folder``, then ``$KELLY_DDSP_VOICE``, then the shipped voice."""
    from kelly.errors import ModelError

    if folder is not None and os.fspath(folder) != "":
        return Path(folder)
    env = os.environ.get(ENV_VOICE, "").strip()
    if env:
        return Path(env)
    if (SHIPPED_VOICE / "ddsp.json").is_file():
        return SHIPPED_VOICE
    raise ModelError("no DDSP voice is installed: train one (kelly ddsp train --out DIR) and give "
                     "--voice ddsp:DIR, or use --voice soundfont")


def _pans(song) -> dict[int, float]:
    """Each track's pan (−1…1) from its first CC10, if any."""
    out = {}
    for i, track in enumerate(song.tracks):
        for control in getattr(track, "controls", []) or []:
            if len(control) >= 4 and control[1] == "cc" and control[2] == 10:
                out[i] = (float(control[3]) - 64.0) / 63.0
                break
    return out


def song_notes(song) -> tuple[list[tuple[float, float, int, int, str]], list[float], list[int]]:
    """The pitched notes of ``song`` in seconds, their pans, and the indices of its drum tracks."""
    from kelly.render.audio import song_seconds

    pans = _pans(song)
    notes, pan, drums = [], [], []
    ticks = sorted({n.start for t in song.tracks for n in t.notes} | {n.start + n.duration for t in song.tracks
                                                                      for n in t.notes})
    seconds = {tick: song_seconds(song, tick) for tick in ticks}
    for i, track in enumerate(song.tracks):
        if track.is_drum:
            drums.append(i)
            continue
        role = getattr(track.role, "value", None) or "harmony"
        for n in track.notes:
            notes.append((seconds[n.start], seconds[n.start + n.duration], int(n.pitch), int(n.velocity), str(role)))
            pan.append(pans.get(i, 0.0))
    return notes, pan, drums


def render_song(song, *, voice: DdspVoice | None = None, sample_rate: int = 44100, emotion=None,
                seed: int = 0, soundfont=None, reverb: float = 0.15, backend: str = "numpy") -> np.ndarray:
    """Render a :class:`~kelly.song.Song` with the DDSP voice (drums from the soundfont): ``[n, 2]`` float32.

    Parameters
    ----------
    emotion : (V, A, D) or list of (start_seconds, (V, A, D)), optional
        The emotion the timbre follows; default neutral (0, 0.5, 0.5).
    seed : int
        The noise's seed; the same song, emotion and seed give the same samples.
    soundfont : path, optional
        For the drum tracks only (see :func:`kelly.render.audio.find_soundfont`).
    reverb : float
        The room's wet share, 0 (dry) to 1.
    """
    from kelly.emotion.audio import resample
    from kelly.render.audio import MAX_AUDIO_SECONDS, check_sample_rate, song_seconds

    sample_rate = check_sample_rate(sample_rate)
    if not 0.0 <= float(reverb) <= 1.0:
        raise InputError(f"reverb must be 0-1, got {reverb!r}")
    notes, pan, drums = song_notes(song)
    if not notes and not drums:
        raise InputError("the song has no notes to render")
    end = max([n[1] for n in notes] + [song_seconds(song)])
    if end > MAX_AUDIO_SECONDS:  # checked before the mix buffer is allocated
        raise InputError(f"the song lasts {end / 60:.0f} minutes; Kelly renders at most "
                         f"{MAX_AUDIO_SECONDS / 60:.0f} minutes of audio")
    n16 = int((end + 1.5) * SAMPLE_RATE)
    voice = voice or DdspVoice()
    drum_render = None
    if drums:
        from concurrent.futures import ThreadPoolExecutor

        from kelly.render.audio import render_song as soundfont_render
        from kelly.song import Song

        kit = Song(tracks=[song.tracks[i] for i in drums], tempos=song.tempos, time_signature=song.time_signature,
                   key_signature=song.key_signature, title=song.title, ppq=song.ppq)
        if any(t.notes for t in kit.tracks):
            # FluidSynth runs in its own process: on a second core it renders while numpy synthesizes
            pool = ThreadPoolExecutor(max_workers=1)
            drum_render = pool.submit(soundfont_render, kit, soundfont=soundfont, sample_rate=sample_rate)
            pool.shutdown(wait=False)
    mix = voice.render_notes(notes, n16, emotion_at=_emotion_fn(emotion), seed=seed, pan=pan, backend=backend)
    if reverb > 0:
        r = Reverb()
        mix = r.get_signal(mix, **r.get_controls(decay_seconds=1.4, wet=float(reverb),
                                                 rng=np.random.default_rng(seed)))[:n16]
    out = np.stack([np.asarray(resample(mix[:, c].astype(np.float32), SAMPLE_RATE, sample_rate), np.float32)
                    for c in range(2)], axis=1)
    if drum_render is not None:
        d = drum_render.result()
        if len(d) > len(out):
            out = np.pad(out, ((0, len(d) - len(out)), (0, 0)))
        out[:len(d)] += d
    return out


def _emotion_fn(emotion):
    """``emotion`` (V, A, D) or ``[(seconds, (V, A, D)), …]`` → a function of seconds (checked)."""
    if emotion is None:
        return None
    if isinstance(emotion, np.ndarray):
        emotion = emotion.tolist()
    if isinstance(emotion, (tuple, list)) and len(emotion) == 3 and \
            all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in emotion):
        fixed = check_emotion(emotion)
        return lambda _t: fixed
    try:
        sections = sorted((float(t), check_emotion(e)) for t, e in emotion)
    except (TypeError, ValueError):
        raise InputError("an emotion is (V, A, D) or a list of (seconds, (V, A, D)) sections") from None
    if not sections or not all(np.isfinite(t) for t, _ in sections):
        raise InputError("an emotion is (V, A, D) or a non-empty list of (seconds, (V, A, D)) sections")
    starts = [t for t, _ in sections]

    def at(seconds: float):
        k = max(0, int(np.searchsorted(starts, seconds, side="right")) - 1)
        return sections[k][1]

    return at


def check_emotion(e) -> tuple[float, float, float]:
    """``(V, A, D)`` checked: finite, V in [−1, 1], A and D in [0, 1]."""
    try:
        v, a, d = (float(x) for x in e)
    except (TypeError, ValueError):
        raise InputError(f"an emotion is three numbers V,A,D; got {e!r}") from None
    if not all(np.isfinite([v, a, d])) or not (-1 <= v <= 1 and 0 <= a <= 1 and 0 <= d <= 1):
        raise InputError(f"emotion V,A,D must have V in -1..1 and A, D in 0..1; got {v:g},{a:g},{d:g}")
    return v, a, d
