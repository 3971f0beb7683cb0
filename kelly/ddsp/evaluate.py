"""What the DDSP voice is worth, measured: the figures of its model card and of ``make bench``.

* :func:`f0_accuracy`: on soundfont notes of known pitch, the share of pYIN's voiced frames
  within 50 cents of the note.
* :func:`resynthesis`: on held-out segments (the ``test`` split), the voice resynthesizes
  each from its own f0 and loudness; the multi-scale spectral loss, loudness L1 (dB) and
  f0 L1 (cents) against the recording, beside two **non-learned baselines** given the same
  f0 and loudness, both a fixed harmonic envelope (amplitudes ∝ 1/k, a sawtooth's):
  ``baseline`` turns loudness into amplitude with one fixed gain (fitted once on training
  segments), as a plain synth would; ``baseline_matched`` is an oracle for level, its
  amplitude set frame by frame so its measured loudness equals the recording's.
* :func:`emotion_sweep`: the same notes rendered while one of V, A, D moves and the
  others stay, as the renderer plays them (dominance also moves the loudness input by
  ±4 dB, :data:`kelly.ddsp.voice.DOMINANCE_DB`); the spectral centroid, the noise
  share, the harmonic tilt and the A-weighted level of the sound at each point, to
  check the conditioning moves timbre the promised way.
"""

from __future__ import annotations

import numpy as np

from kelly.ddsp.core import HOP, N_HARMONICS, SAMPLE_RATE, Harmonic, FilteredNoise, decoder_inputs, midi_to_hz, \
    split_outputs


def f0_accuracy(segments, *, cents: float = 50.0) -> dict:
    """Share of voiced frames of known-pitch notes whose pYIN f0 is within ``cents`` of the note."""
    hits = total = notes = octaves = 0
    for s in segments:
        if s.pitch is None:
            continue
        v = np.asarray(s.voiced, bool)
        err = 1200.0 * np.abs(np.log2(np.maximum(s.f0_hz[v], 1e-3) / midi_to_hz(s.pitch)))
        hits += int((err <= cents).sum())
        octaves += int((np.abs(err - 1200.0) <= 100.0).sum())
        total += int(v.sum())
        notes += 1
    misses = total - hits
    return {"notes": notes, "voiced_frames": total, "within": hits / total if total else float("nan"),
            "cents": cents, "misses_an_octave_off": octaves / misses if misses else 0.0}


def _saw(n_frames: int) -> np.ndarray:
    k = np.arange(1, N_HARMONICS + 1, dtype=np.float64)
    dist = np.tile(1.0 / k, (n_frames, 1))
    return dist / dist.sum(axis=1, keepdims=True)


def baseline_audio(f0_hz: np.ndarray, loudness_db: np.ndarray, n_samples: int, *, gain_db: float = 0.0,
                   matched: bool = False) -> np.ndarray:
    """The fixed-envelope baseline: 1/k harmonics at amplitude ``10^((loudness + gain_db)/20)``.

    ``matched``: instead, the amplitude is set frame by frame so that the measured loudness
    equals ``loudness_db`` (an oracle for level).
    """
    from kelly.ddsp.features import loudness_db as measure

    dist = _saw(len(f0_hz))
    h = Harmonic()
    silent = loudness_db <= -79.9
    if matched:
        level = measure(h.get_signal(dist, f0_hz, n_samples))[:len(f0_hz)]
        g_db = loudness_db - level[:len(loudness_db)]
    else:
        g_db = loudness_db + gain_db
    gain = 10.0 ** (np.clip(np.where(silent, -120.0, g_db), -120.0, 40.0) / 20.0)
    return h.get_signal(dist * gain[:, None], f0_hz, n_samples)


def baseline_gain(segments, *, count: int = 40) -> float:
    """The one gain (dB) that makes the baseline's loudness match the training segments' (median over frames)."""
    from kelly.ddsp.features import loudness_db as measure

    train = [s for s in segments if s.split == "train"][:count]
    diffs = []
    for s in train:
        f0 = s.f0_hz.astype(np.float64)
        loud = s.loudness_db.astype(np.float64)
        y = baseline_audio(f0, loud, len(s.audio))
        got = measure(y)[:len(loud)]
        sounding = loud > -60.0
        diffs.append(loud[sounding] - got[sounding])
    return float(np.median(np.concatenate(diffs))) if diffs else 0.0


def voice_audio(decoder, f0_hz, loudness_db, emotion, n_samples: int, *, seed: int = 0,
                parts: bool = False):
    """The voice's resynthesis from frames (``parts``: also the harmonic and noise parts apart)."""
    raw, _ = decoder(decoder_inputs(f0_hz, loudness_db, emotion)[None])
    amp, dist, noise = split_outputs(raw[0].astype(np.float64))
    h, nz = Harmonic(), FilteredNoise()
    harm = h.get_signal(**h.get_controls(amp, dist, f0_hz), n_samples=n_samples)
    nois = nz.get_signal(**nz.get_controls(noise), n_samples=n_samples, rng=np.random.default_rng(seed))
    return (harm + nois, harm, nois) if parts else harm + nois


def resynthesis(decoder, segments, *, limit: int | None = None) -> dict:
    """Mean measures over the held-out segments, for the voice and the baseline."""
    from kelly.ddsp.features import features
    from kelly.ddsp.losses import paper_measures, spectral_loss_numpy

    rows = {"voice": [], "baseline": [], "baseline_matched": []}
    test = [s for s in segments if s.split == "test"][:limit]
    gain = baseline_gain(segments)
    for s in test:
        target = np.asarray(s.audio, np.float64)
        n = len(target)
        tf = features(target, SAMPLE_RATE)
        f0, loud = s.f0_hz.astype(np.float64), s.loudness_db.astype(np.float64)
        for name, pred in (("voice", voice_audio(decoder, s.f0_hz, s.loudness_db, s.emotion, n)),
                           ("baseline", baseline_audio(f0, loud, n, gain_db=gain)),
                           ("baseline_matched", baseline_audio(f0, loud, n, matched=True))):
            m = paper_measures(pred, target, target_features=tf)
            m["spectral_loss"] = spectral_loss_numpy(pred, target)
            m["source"] = s.source
            rows[name].append(m)
    out = {"segments": len(test), "baseline_gain_db": gain}
    for name, rs in rows.items():
        out[name] = {k: float(np.nanmean([r[k] for r in rs])) if rs else float("nan")
                     for k in ("spectral_loss", "loudness_l1_db", "f0_l1_cents", "voicing_agreement")}
    return out


def harmonic_tilt_db(decoder, f0_hz, loudness_db, emotion) -> float:
    """Level of harmonics 3–10 against harmonics 1–2 (dB) in the voice's own controls (the valence label's measure)."""
    raw, _ = decoder(decoder_inputs(f0_hz, loudness_db, emotion)[None])
    amp, dist, _ = split_outputs(raw[0].astype(np.float64))
    a = Harmonic().get_controls(amp, dist, f0_hz)["amplitudes"][20:]
    return float(10 * np.log10(np.sum(a[:, 2:10] ** 2) / max(np.sum(a[:, :2] ** 2), 1e-30)))


def centroid_and_noise(audio: np.ndarray, harm: np.ndarray, noise: np.ndarray) -> tuple[float, float]:
    """Spectral centroid (Hz) of ``audio`` and the noise part's share of its energy (dB)."""
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1.0 / SAMPLE_RATE)
    centroid = float((freqs * spec).sum() / max(spec.sum(), 1e-12))
    share = 10.0 * np.log10(max(np.sum(noise ** 2), 1e-20) / max(np.sum(harm ** 2) + np.sum(noise ** 2), 1e-20))
    return centroid, float(share)


def emotion_sweep(decoder, *, pitches=(48, 60, 72), loudness: float = -30.0, points: int = 5) -> dict:
    """Centroid, noise share, tilt and A-weighted level while each of V, A, D sweeps its range (others neutral)."""
    from kelly.ddsp.features import loudness_db as measure
    from kelly.ddsp.voice import DOMINANCE_DB

    n_frames = 120
    n = (n_frames - 1) * HOP
    out = {}
    for axis, (lo, hi) in (("valence", (-1.0, 1.0)), ("arousal", (0.0, 1.0)), ("dominance", (0.0, 1.0))):
        rows = []
        for value in np.linspace(lo, hi, points):
            emo = {"valence": 0.0, "arousal": 0.5, "dominance": 0.5}
            emo[axis] = float(value)
            cs, ns, ls, ts = [], [], [], []
            triple = (emo["valence"], emo["arousal"], emo["dominance"])
            for p in pitches:
                f0 = np.full(n_frames, midi_to_hz(p))
                loud = np.full(n_frames, loudness + DOMINANCE_DB * (2.0 * emo["dominance"] - 1.0))
                audio, harm, noise = voice_audio(decoder, f0, loud, triple, n, parts=True)
                c, s = centroid_and_noise(audio[HOP * 20:], harm[HOP * 20:], noise[HOP * 20:])
                cs.append(c)
                ns.append(s)
                ls.append(float(np.mean(measure(audio)[20:n_frames - 5])))
                ts.append(harmonic_tilt_db(decoder, f0, loud, triple))
            rows.append({"value": round(float(value), 3), "centroid_hz": float(np.mean(cs)),
                         "noise_share_db": float(np.mean(ns)), "level_db": float(np.mean(ls)),
                         "tilt_db": float(np.mean(ts))})
        out[axis] = rows
    return out
