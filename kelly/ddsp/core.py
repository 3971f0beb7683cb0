"""The DDSP contract and the numpy synthesizers (rendering needs no torch).

The contract
------------
==================  =====================================================================
sample rate         16,000 Hz (:data:`SAMPLE_RATE`), as in the DDSP paper; a render is
                    resampled to the WAV's rate afterwards
frames              100 per second: :data:`HOP` = 160 samples; frame ``i`` is centred on
                    sample ``i·160`` (librosa's ``center=True``); ``n`` samples have
                    ``1 + n // 160`` frames and frames become samples by linear
                    interpolation (:func:`upsample`)
harmonics           :data:`N_HARMONICS` = 64, phase accumulated sample by sample; a
                    harmonic at or above Nyquist (8 kHz) is silenced in its frame
noise               :data:`N_NOISE_BANDS` = 65 linearly spaced magnitudes, 0 Hz to
                    Nyquist, turned into a 128-tap zero-phase FIR filter (Hann window)
                    per frame and applied to uniform white noise
network outputs     130 per frame: 1 overall amplitude, 64 harmonic distribution, 65 noise
                    magnitudes, raw; :func:`exp_sigmoid` makes them positive
network inputs      5 per frame: f0 as MIDI pitch / 127, loudness as
                    ``(dB − LOUDNESS_MIN_DB) / (LOUDNESS_MAX_DB − LOUDNESS_MIN_DB)``,
                    valence (−1…1), arousal (0…1), dominance (0…1)
==================  =====================================================================

Processors follow magenta/ddsp: ``get_controls`` turns network outputs into synth
parameters (positive, normalised, Nyquist-masked), ``get_signal`` turns parameters into
audio. The torch twins in :mod:`kelly.ddsp.torch_synths` compute the same functions; a
test holds them to each other.

Why the harmonic synth here is a wavetable: summing 64 sines per sample is what the
torch twin does (differentiable, and short clips in training), but rendering a piece
sums millions of samples. The sum of harmonics with linearly interpolated amplitudes
equals a crossfade between two single-cycle tables built from each frame's amplitudes
(an inverse FFT per frame), read at the accumulated phase, because the sum is linear
in the amplitudes. That costs a few operations per sample whatever the number of
harmonics. A table holds 16 points per cycle of the highest harmonic that sounds (256
to 2,048, :func:`table_size`), read with linear interpolation (error about −46 dB at
that harmonic, less below it).
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000
HOP = 160
FRAME_RATE = SAMPLE_RATE // HOP
N_HARMONICS = 64
N_NOISE_BANDS = 65
NOISE_TAPS = 2 * (N_NOISE_BANDS - 1)
N_OUTPUTS = 1 + N_HARMONICS + N_NOISE_BANDS
N_INPUTS = 5
LOUDNESS_MIN_DB = -80.0
LOUDNESS_MAX_DB = 0.0
#: Bias added to the raw noise magnitudes before :func:`exp_sigmoid` (DDSP's ``initial_bias``):
#: an untrained decoder starts quiet in noise.
NOISE_BIAS = -5.0
TABLE_SIZE = 2048


def table_size(top_harmonic: int) -> int:
    """Wavetable points for harmonics up to ``top_harmonic``: 16 per cycle of the highest, 256 to 2,048.

    Linear interpolation at 16 points per cycle errs by about (π/16)²/8 = 0.5 % of that
    harmonic's amplitude (−46 dB); lower harmonics err less.
    """
    return int(min(TABLE_SIZE, max(256, 1 << (16 * max(1, top_harmonic) - 1).bit_length())))


def frames_for(n_samples: int) -> int:
    """Frames covering ``n_samples`` samples (centred frames, as librosa's ``center=True``)."""
    return 1 + int(n_samples) // HOP


def exp_sigmoid(x: np.ndarray, *, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> np.ndarray:
    """DDSP's positive nonlinearity: ``max_value · sigmoid(x) ** log(exponent) + threshold``.

    Computed as ``max_value · exp(−log(exponent) · log(1 + e^(−x)))``, in place (the same
    value; a very negative ``x`` overflows ``e^(−x)`` to infinity, which gives the threshold,
    exactly the limit). Float32 stays float32 (rendering), anything else is float64.
    """
    x = np.asarray(x)
    dtype = x.dtype.type if x.dtype in (np.float32, np.float64) else np.float64
    with np.errstate(over="ignore"):
        s = np.exp(-x.astype(dtype, copy=False))
    s += dtype(1.0)
    np.log(s, out=s)
    s *= dtype(-math.log(exponent))
    np.exp(s, out=s)
    s *= dtype(max_value)
    s += dtype(threshold)
    return s


def hz_to_midi(f0: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(f0, dtype=np.float64), 1e-3) / 440.0)


def midi_to_hz(pitch) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def scale_f0(f0_hz: np.ndarray) -> np.ndarray:
    """Network input for f0: MIDI pitch / 127, clipped to [0, 1]."""
    return np.clip(hz_to_midi(f0_hz) / 127.0, 0.0, 1.0)


def scale_loudness(loudness_db: np.ndarray) -> np.ndarray:
    """Network input for loudness: 0 at :data:`LOUDNESS_MIN_DB`, 1 at :data:`LOUDNESS_MAX_DB`."""
    x = (np.asarray(loudness_db, dtype=np.float64) - LOUDNESS_MIN_DB) / (LOUDNESS_MAX_DB - LOUDNESS_MIN_DB)
    return np.clip(x, 0.0, 1.0)


def decoder_inputs(f0_hz: np.ndarray, loudness_db: np.ndarray, emotion) -> np.ndarray:
    """The decoder's input rows ``[..., 5]`` from frames of f0 and loudness and an emotion.

    ``emotion`` is ``(V, A, D)`` or an array ``[..., 3]`` broadcastable to the frames.
    """
    f0 = scale_f0(f0_hz)
    ld = scale_loudness(loudness_db)
    emo = np.broadcast_to(np.asarray(emotion, dtype=np.float64), f0.shape + (3,))
    return np.concatenate([f0[..., None], ld[..., None], emo], axis=-1).astype(np.float32)


def upsample(frames: np.ndarray, n_samples: int) -> np.ndarray:
    """Frame values ``[F, ...]`` to sample values ``[n_samples, ...]`` by linear interpolation.

    Sample ``n`` sits at frame position ``n / HOP``; past the last frame the last value holds.
    """
    frames = np.asarray(frames)
    n_frames = frames.shape[0]
    pos = np.arange(n_samples, dtype=np.float64) / HOP
    i0 = np.minimum(pos.astype(np.int64), n_frames - 1)
    i1 = np.minimum(i0 + 1, n_frames - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (frames.ndim - 1))
    return frames[i0] * (1.0 - w) + frames[i1] * w


def nyquist_mask(f0_hz: np.ndarray, n_harmonics: int = N_HARMONICS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[F, K]`` of 1.0 where harmonic ``k+1`` of the frame's f0 lies below Nyquist, else 0.0."""
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)
    return (np.asarray(f0_hz, dtype=np.float64)[:, None] * k[None, :] < sample_rate / 2.0).astype(np.float64)


_POSITIONS: list = [np.zeros(0, np.int64), np.zeros(0, np.float32)]


def _frame_positions(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """For samples ``0 … n−1``: the frame each starts from and the weight of the next frame (cached, grown as needed)."""
    if len(_POSITIONS[0]) < n_samples:
        pos = np.arange(max(n_samples, 2 * len(_POSITIONS[0])), dtype=np.float64) / HOP
        frame = pos.astype(np.int64)
        _POSITIONS[:] = [frame, (pos - frame).astype(np.float32)]
    return _POSITIONS[0][:n_samples], _POSITIONS[1][:n_samples]


class Harmonic:
    """Additive synthesizer: f0 and per-harmonic amplitudes → audio (numpy).

    ``get_controls(amplitude, harmonic_distribution, f0_hz)`` → ``dict(amplitudes [F, K],
    f0_hz [F])``: the overall amplitude and the distribution go through
    :func:`exp_sigmoid`, harmonics at or above Nyquist are zeroed and the distribution is
    normalised to sum to 1 before it is scaled by the amplitude.
    ``get_signal(amplitudes, f0_hz, n_samples)`` → ``[n_samples]`` float64.
    """

    def __init__(self, *, n_harmonics: int = N_HARMONICS, sample_rate: int = SAMPLE_RATE) -> None:
        self.n_harmonics = n_harmonics
        self.sample_rate = sample_rate

    def get_controls(self, amplitude: np.ndarray, harmonic_distribution: np.ndarray, f0_hz: np.ndarray) -> dict:
        amp = exp_sigmoid(amplitude).reshape(-1, 1)
        dist = exp_sigmoid(harmonic_distribution)
        dist = dist * nyquist_mask(f0_hz, self.n_harmonics, self.sample_rate).astype(dist.dtype)
        dist = dist / np.maximum(dist.sum(axis=-1, keepdims=True), dist.dtype.type(1e-12))
        return {"amplitudes": amp * dist, "f0_hz": np.asarray(f0_hz, dtype=np.float64)}

    def phases(self, f0_hz: np.ndarray, n_samples: int, *, initial_phase: float = 0.0) -> np.ndarray:
        """Phase in cycles, ``[n_samples]`` in [0, 1): the running sum of ``f0 / sample_rate``.

        A steady pitch (every frame the same, as a MIDI note renders) takes the closed form
        ``(n + 1) · f0 / sample_rate``: the same sum without the running error.
        """
        f0_hz = np.asarray(f0_hz, dtype=np.float64)
        if f0_hz.size and np.all(f0_hz == f0_hz[0]):
            step = f0_hz[0] / self.sample_rate
            return np.mod(np.arange(1, n_samples + 1, dtype=np.float64) * step + initial_phase, 1.0)
        f0 = upsample(f0_hz, n_samples)
        return np.mod(np.cumsum(f0 / self.sample_rate) + initial_phase, 1.0)

    def get_signal(self, amplitudes: np.ndarray, f0_hz: np.ndarray, n_samples: int) -> np.ndarray:
        """The signal, float64, or float32 when ``amplitudes`` are float32 (rendering: half the memory traffic)."""
        import scipy.fft

        amplitudes = np.asarray(amplitudes)
        real = np.float32 if amplitudes.dtype == np.float32 else np.float64
        amplitudes = amplitudes.astype(real, copy=False) * \
            nyquist_mask(f0_hz, amplitudes.shape[1], self.sample_rate).astype(real)
        n_frames = amplitudes.shape[0]
        # harmonics more than 100 dB below the loudest of this voice are inaudible: the table need not hold them
        peak = amplitudes.max(axis=0)
        sounding = np.flatnonzero(peak > 1e-5 * max(float(peak.max()), 1e-30))
        top = int(sounding[-1]) + 1 if len(sounding) else 1
        size = table_size(top)
        # one single-cycle table per frame: Σ_k a_k sin(2π k j / T), via an inverse real FFT
        spectrum = np.zeros((n_frames, size // 2 + 1), dtype=np.complex64 if real == np.float32 else np.complex128)
        spectrum[:, 1:top + 1] = -0.5j * size * amplitudes[:, :top]
        tables = scipy.fft.irfft(spectrum, n=size, axis=-1).astype(np.float32, copy=False)
        tables = np.concatenate([tables, tables[:, :1]], axis=1).ravel()  # wrap point for interpolation
        phase = self.phases(f0_hz, n_samples) * size
        j0 = phase.astype(np.int64)
        frac = (phase - j0).astype(np.float32)
        f_a, w = _frame_positions(n_samples)
        f_a = np.minimum(f_a, n_frames - 1)
        base_a = f_a * (size + 1) + j0
        base_b = np.minimum(f_a + 1, n_frames - 1) * (size + 1) + j0
        a = tables[base_a] + (tables[base_a + 1] - tables[base_a]) * frac
        b = tables[base_b] + (tables[base_b + 1] - tables[base_b]) * frac
        return (a + (b - a) * w).astype(real, copy=False)

    def get_signal_additive(self, amplitudes: np.ndarray, f0_hz: np.ndarray, n_samples: int) -> np.ndarray:
        """The same signal summed sine by sine (the reference the wavetable is checked against)."""
        amplitudes = np.asarray(amplitudes, dtype=np.float64) * nyquist_mask(f0_hz, amplitudes.shape[1],
                                                                             self.sample_rate)
        amps = upsample(amplitudes, n_samples)
        phase = 2.0 * np.pi * self.phases(f0_hz, n_samples)
        k = np.arange(1, amplitudes.shape[1] + 1, dtype=np.float64)
        return np.sum(amps * np.sin(phase[:, None] * k[None, :]), axis=1)

    def __call__(self, amplitude, harmonic_distribution, f0_hz, n_samples: int) -> np.ndarray:
        return self.get_signal(**self.get_controls(amplitude, harmonic_distribution, f0_hz), n_samples=n_samples)


def noise_filters(magnitudes: np.ndarray) -> np.ndarray:
    """Per frame, the 128-tap FIR filter (Hann-windowed, centred) with these 65 linear band magnitudes."""
    ir = np.fft.irfft(np.asarray(magnitudes, dtype=np.float64), n=NOISE_TAPS, axis=-1)
    ir = np.roll(ir, NOISE_TAPS // 2, axis=-1)  # zero phase → centred (causal with a delay of 64 samples)
    return ir * np.hanning(NOISE_TAPS + 1)[:NOISE_TAPS]


NOISE_FFT = 320  # ≥ HOP + NOISE_TAPS − 1 = 287, and 2⁶·5 is a fast size for pocketfft
_RESPONSES: dict = {}


def noise_response(dtype=np.complex64) -> np.ndarray:
    """``[65, 161]``: band magnitudes → the frequency response (``NOISE_FFT`` points) of their filter.

    :func:`noise_filters` is linear in the magnitudes, so ``magnitudes @ noise_response()``
    equals ``rfft(noise_filters(magnitudes), NOISE_FFT)``: one small matrix product per
    voice instead of two FFTs per frame (computed once).
    """
    if dtype not in _RESPONSES:
        eye = np.eye(N_NOISE_BANDS)
        _RESPONSES[dtype] = np.fft.rfft(noise_filters(eye), NOISE_FFT, axis=-1).astype(dtype)
    return _RESPONSES[dtype]


def filter_noise_frames(noise: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve each frame's ``HOP`` noise samples with its filter and overlap-add; ``[F·HOP]``.

    The filter's centring delay (64 samples) is taken off, so a band's sound lines up with its frame.
    """
    return _overlap_add(np.fft.rfft(noise, NOISE_FFT, axis=-1) * np.fft.rfft(ir, NOISE_FFT, axis=-1))


def _overlap_add(product: np.ndarray) -> np.ndarray:
    """The frames' filtered spectra ``[F, 161]`` → ``[F·HOP]`` samples (see :func:`filter_noise_frames`)."""
    import scipy.fft

    n_frames = product.shape[0]
    y = scipy.fft.irfft(product, NOISE_FFT, axis=-1)
    head = y[:, :HOP]
    tail = np.zeros_like(head)
    tail[1:] = y[:-1, HOP:2 * HOP]
    out = (head + tail).ravel()
    delay = NOISE_TAPS // 2
    spill = y[-1, HOP:HOP + delay]
    return np.concatenate([out, spill])[delay:delay + n_frames * HOP]


class FilteredNoise:
    """Filtered white noise: 65 band magnitudes per frame → audio (numpy).

    ``get_controls(magnitudes)`` → ``dict(magnitudes [F, 65])`` through :func:`exp_sigmoid`
    after :data:`NOISE_BIAS`; ``get_signal(magnitudes, n_samples, rng)`` → ``[n_samples]``.
    The noise is uniform in [−1, 1) from ``rng`` (a ``numpy.random.Generator``), so a
    seed gives the same sound.
    """

    def get_controls(self, magnitudes: np.ndarray) -> dict:
        magnitudes = np.asarray(magnitudes)
        return {"magnitudes": exp_sigmoid(magnitudes + magnitudes.dtype.type(NOISE_BIAS))}

    def get_signal(self, magnitudes: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """The signal, float64, or float32 when ``magnitudes`` are float32 (rendering; other noise samples)."""
        import scipy.fft

        magnitudes = np.asarray(magnitudes)
        n_frames = magnitudes.shape[0]
        if magnitudes.dtype == np.float32:
            noise = rng.random((n_frames, HOP), dtype=np.float32) * np.float32(2.0) - np.float32(1.0)
            out = _overlap_add(scipy.fft.rfft(noise, NOISE_FFT, axis=-1) * (magnitudes @ noise_response(np.complex64)))
        else:
            noise = rng.uniform(-1.0, 1.0, size=(n_frames, HOP))
            out = filter_noise_frames(noise, noise_filters(magnitudes))
        if len(out) < n_samples:
            out = np.pad(out, (0, n_samples - len(out)))
        return out[:n_samples]


class Reverb:
    """A room as an impulse response: exponentially decaying noise, mixed in at ``wet``.

    ``get_controls(decay_seconds, wet, rng)`` → ``dict(ir)``; ``get_signal(audio, ir)``
    convolves (scipy's FFT convolution) and keeps the length of ``audio`` plus the tail.
    Used on the rendered mix; the torch twin can learn its impulse response.
    """

    def __init__(self, *, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate

    def get_controls(self, decay_seconds: float = 1.2, wet: float = 0.15, *,
                     rng: np.random.Generator | None = None) -> dict:
        rng = rng if rng is not None else np.random.default_rng(0)
        n = max(1, int(decay_seconds * self.sample_rate))
        t = np.arange(n) / self.sample_rate
        tail = rng.standard_normal(n) * np.exp(-6.9 * t / decay_seconds)  # −60 dB at decay_seconds
        tail *= wet / max(np.sqrt(np.sum(tail ** 2)), 1e-12)
        tail[0] = 1.0 - wet  # the dry path
        return {"ir": tail}

    def get_signal(self, audio: np.ndarray, ir: np.ndarray) -> np.ndarray:
        from scipy.signal import oaconvolve

        return oaconvolve(np.asarray(audio, dtype=np.float64), ir, mode="full", axes=0) if audio.ndim == 1 else \
            np.stack([oaconvolve(audio[:, c], ir, mode="full") for c in range(audio.shape[1])], axis=1)


def split_outputs(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder outputs ``[..., 130]`` → (amplitude ``[..., 1]``, distribution ``[..., 64]``, noise ``[..., 65]``)."""
    return raw[..., :1], raw[..., 1:1 + N_HARMONICS], raw[..., 1 + N_HARMONICS:]
