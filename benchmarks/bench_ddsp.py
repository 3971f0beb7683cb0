"""The DDSP voice (issue 13): pitch tracking, resynthesis against a baseline, emotion, and render speed.

* **f0 tracking**: on the soundfont notes of the training data (known pitch), the share of
  pYIN's voiced frames within 50 cents of the note (goal ≥ 95 %).
* **Resynthesis** of the held-out (test) segments from their own f0 and loudness: the
  shipped voice against a non-learned baseline (1/k harmonics, loudness to amplitude by
  one fixed gain) and against the same baseline with its level matched to the recording
  frame by frame (an oracle for loudness): multi-scale spectral loss, loudness L1 (dB),
  f0 L1 (cents). Lower is better.
* **Emotion**: the voice holding three notes while valence, arousal or dominance sweeps;
  spectral centroid and noise share at each end.
* **Speed**: the real-time factor (seconds of music per second of work) of rendering a
  16-bar, 4-track piece (melody, chords, bass, drums) on one core: the DDSP voice with
  numpy, the same weights in torch, and FluidSynth rendering the whole piece.

The data and held-out split come from ``build/ddsp-small`` (made by ``kelly ddsp train
--out build/ddsp-small``); without it the sections that need it say so.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.headline import figure, met

AREA = "DDSP voice (issue 13)"
ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "build" / "ddsp-small"


def _piece():
    """A 16-bar piece Kelly composes, cut to 4 tracks: melody, chords, bass, drums."""
    from kelly.composer import ComposeOptions
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import RuleComposer
    from kelly.song import Role

    result = RuleComposer().compose(state_for("hope"), ComposeOptions(bars=16, seed=1))
    song = result.song
    keep = []
    for role in (Role.MELODY, Role.HARMONY, Role.BASS, Role.DRUMS):
        track = next((t for t in song.tracks if t.role == role and t.notes), None)
        if track is not None:
            keep.append(track)
    song.tracks = keep
    return song


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _speed(voice) -> dict:
    """Render times on one core: the process (and FluidSynth, its child) pinned to one CPU where Linux allows."""
    import os

    import torch

    from kelly.ddsp.voice import render_song
    from kelly.render.audio import render_song as fluid, song_seconds
    from kelly.song import Song

    torch.set_num_threads(1)
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else None
    if pinned:
        os.sched_setaffinity(0, {min(before)})
    try:
        song = _piece()
        pitched = Song(tracks=[t for t in song.tracks if not t.is_drum], tempos=song.tempos,
                       time_signature=song.time_signature, ppq=song.ppq)
        seconds = song_seconds(song)
        render_song(pitched, voice=voice, sample_rate=44100)  # warm: imports, caches
        out = {"seconds": seconds, "pinned": pinned,
               "pitched": _time(lambda: render_song(pitched, voice=voice, sample_rate=44100), 7),
               "decoded": dict(voice.last_render),
               "numpy": _time(lambda: render_song(song, voice=voice, sample_rate=44100), 5),
               "torch": _time(lambda: render_song(song, voice=voice, sample_rate=44100, backend="torch"), 1),
               "fluidsynth": _time(lambda: fluid(song, sample_rate=44100), 5),
               "fluid_start": _time(lambda: fluid(Song(tracks=[song.tracks[0].with_notes(song.tracks[0].notes[:1])],
                                                       tempos=song.tempos, ppq=song.ppq), sample_rate=44100), 5),
               "tracks": [t.name for t in song.tracks],
               "pitched_notes": sum(len(t.notes) for t in pitched.tracks)}
    finally:
        if pinned:
            os.sched_setaffinity(0, before)
    return out


def run() -> str:
    from kelly.ddsp import data as ddata
    from kelly.ddsp.evaluate import emotion_sweep, f0_accuracy, resynthesis
    from kelly.ddsp.voice import DdspVoice

    voice = DdspVoice()
    lines = ["## DDSP voice (issue 13)", ""]
    lines.append(f"Voice: `{voice.folder.relative_to(ROOT) if voice.folder.is_relative_to(ROOT) else voice.folder}`, "
                 f"{voice.decoder.param_count:,} parameters (GRU {voice.decoder.hidden}).")
    lines.append("")
    cache = RUN / "data.npz"
    if cache.is_file():
        segments = ddata.load(cache)
        f0 = f0_accuracy(segments)
        rs = resynthesis(voice.decoder, segments)
        v, b, o = rs["voice"], rs["baseline"], rs["baseline_matched"]
        lines += ["| measure (lower is better) | voice | baseline: 1/k harmonics, fixed gain | same, level matched "
                  "frame by frame (oracle) |", "|---|---|---|---|",
                  f"| multi-scale spectral loss | **{v['spectral_loss']:.2f}** | {b['spectral_loss']:.2f} "
                  f"({b['spectral_loss'] / v['spectral_loss']:.2f}×) | {o['spectral_loss']:.2f} |",
                  f"| loudness L1 (dB) | **{v['loudness_l1_db']:.2f}** | {b['loudness_l1_db']:.2f} | "
                  f"{o['loudness_l1_db']:.2f} |",
                  f"| f0 L1 (cents, frames voiced in both) | **{v['f0_l1_cents']:.2f}** | {b['f0_l1_cents']:.2f} | "
                  f"{o['f0_l1_cents']:.2f} |",
                  f"| voicing agreement with the recording (higher is better) | {100 * v['voicing_agreement']:.1f} % | "
                  f"{100 * b['voicing_agreement']:.1f} % | {100 * o['voicing_agreement']:.1f} % |", "",
                  f"{rs['segments']} held-out segments (never trained on). The fixed gain "
                  f"({rs['baseline_gain_db']:+.1f} dB) is fitted once on training segments. f0 tracking: pYIN finds "
                  f"**{100 * f0['within']:.1f} %** of {f0['voiced_frames']:,} voiced frames of {f0['notes']} "
                  f"soundfont notes of known pitch within 50 cents (goal ≥ 95 %); "
                  f"{100 * f0['misses_an_octave_off']:.0f} % of the misses are a whole octave off.",
                  figure(AREA, "f0 within 50 cents, voiced frames of soundfont notes", f"{100 * f0['within']:.1f} %",
                         "goal ≥ 95 %", met(f0["within"] >= 0.95)),
                  figure(AREA, "multi-scale spectral loss, held-out segments", f"{v['spectral_loss']:.2f}",
                         f"non-learned baseline {b['spectral_loss']:.2f} (same run)",
                         met(v["spectral_loss"] < b["spectral_loss"]), readme=True)]
    else:
        lines.append(f"_No training data at `{cache.relative_to(ROOT)}`: run `kelly ddsp train --out build/ddsp-small` "
                     "for the f0 and resynthesis rows._")
    lines.append("")
    sweep = emotion_sweep(voice.decoder)
    lines += ["| emotion axis (others neutral) | spectral centroid | noise share | harmonic tilt (3–10 vs 1–2) | "
              "A-weighted level |", "|---|---|---|---|---|"]
    for axis, rows in sweep.items():
        def path(key: str, fmt: str) -> str:
            return " → ".join(format(r[key], fmt) for r in rows)

        lines.append(f"| {axis} {rows[0]['value']:g} … {rows[-1]['value']:g} | {path('centroid_hz', '.0f')} Hz | "
                     f"{path('noise_share_db', '.1f')} dB | {path('tilt_db', '.1f')} dB | {path('level_db', '.1f')} dB |")
    lines += ["", "Five points along each axis; three notes (C3, C4, C5) held at −30 dB loudness, as the renderer plays "
              "them (dominance also moves the loudness input by ±4 dB); level is A-weighted. Promised: arousal toward "
              "noise and brightness, valence toward a brighter harmonic tilt, dominance toward level.", ""]
    sp = _speed(voice)
    core = "one core (the process and FluidSynth pinned to one CPU" + ("" if sp["pinned"] else ": not possible here") + \
        "; OpenBLAS and torch 1 thread)"
    lines += [f"Render speed: a 16-bar piece, 4 tracks ({', '.join(sp['tracks'])}; {sp['pitched_notes']} pitched "
              f"notes, {sp['seconds']:.1f} s of music), 44.1 kHz stereo, {core}.", "",
              "| renderer | seconds | real-time factor | goal |", "|---|---|---|---|",
              f"| DDSP voice, numpy: the three pitched parts (what the voice plays) | {sp['pitched']:.2f} | "
              f"**{sp['seconds'] / sp['pitched']:.0f}×** | ≥ 50× |",
              f"| DDSP voice, numpy: the whole piece, drums by FluidSynth | {sp['numpy']:.2f} | "
              f"{sp['seconds'] / sp['numpy']:.0f}× | |",
              f"| DDSP voice, same weights in torch (additive synth), whole piece | {sp['torch']:.2f} | "
              f"{sp['seconds'] / sp['torch']:.1f}× | |",
              f"| FluidSynth alone, the whole piece (anchor: about 100×) | {sp['fluidsynth']:.2f} | "
              f"{sp['seconds'] / sp['fluidsynth']:.0f}× | |", "",
              f"The voice decodes each distinct note once (same pitch, velocity, length, role and emotion; "
              f"{sp['decoded']['decoded']} distinct of {sp['decoded']['notes']} here) and draws every note's own "
              f"noise. The DDSP rows include the room and resampling to 44.1 kHz. FluidSynth needs {sp['fluid_start']:.2f} s "
              "for a single note (starting and loading its soundfont), which the whole-piece DDSP render also pays "
              "for the drums; with a second core FluidSynth renders the drums while numpy synthesizes. The numpy "
              "renderer reads "
              "single-cycle wavetables (an inverse FFT per frame) where torch sums every sine; they agree to about "
              "−50 dB.",
              figure(AREA, "render the pitched parts, numpy, one core", f"{sp['seconds'] / sp['pitched']:.0f}× real time",
                     f"goal ≥ 50×; same weights in torch {sp['seconds'] / sp['torch']:.1f}×; FluidSynth (anchor "
                     f"\"about 100×\") {sp['seconds'] / sp['fluidsynth']:.0f}× on this machine",
                     met(sp["seconds"] / sp["pitched"] >= 50), readme=True)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
