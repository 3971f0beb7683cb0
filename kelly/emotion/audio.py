"""The audio door into Kelly: sound files → log-mel frames → EmotionRecognizer → readings.

Why this module exists
----------------------
The EmotionRecognizer reads one 128-bin log-mel frame per step. Whatever trains it and
whatever runs it must compute those frames *identically*, or a trained network sees
numbers it never learned. So there is exactly one feature function,
:func:`log_mel_frames`, and one description of it, :data:`FRONT_END`, which a training
pipeline imports. Nothing else in Kelly computes mel features for the recognizer.

The front-end (the contract)
----------------------------
==================  =====================================================================
sample rate         22,050 Hz (other rates resampled with soxr "HQ", exactly
                    ``librosa.resample(res_type="soxr_hq")``); channels averaged to mono
STFT                ``n_fft = 2048`` (92.9 ms), periodic Hann window of the same length,
                    ``hop_length = 512`` (23.2 ms, 43.07 frames per second), centred frames
                    (frame ``i`` is centred on sample ``i·512``; the signal is padded with
                    zeros by ``n_fft / 2`` at both ends), so ``1 + n // 512`` frames
spectrum scale      power ``|X|²·(2 / Σw)²``: a full-scale sine (amplitude 1) centred on an
                    FFT bin reads exactly 1 there (0 dBFS)
mel filterbank      128 bands, 30 – 11,025 Hz, Slaney mel scale (``htk=False``: linear
                    below 1 kHz, logarithmic above), triangles of peak 1 (``norm=None``);
                    a full-scale sine at a band's centre reads about 0 to +2 dB in it
decibels            ``10·log10(max(mel, 1e-10) / ref)`` with ``ref = 1`` (0 dBFS as above),
                    no clip-relative ``top_db``: every frame depends on its own samples only,
                    so streaming and whole-file features agree
normalisation       :func:`kelly.ml.schema.normalize_mel_db`: ``(dB + 80) / 80`` clipped to
                    [0, 1]; −80 dBFS and below is 0, 0 dBFS and above is 1
LSTM steps          one recognizer step per frame (``frames_per_step = 1``): 43.07 steps
                    per second; the LSTM state is reset every :data:`RECOGNIZER_WINDOW`
                    (256) frames (5.9 s), the window the network was trained on, and the
                    first :data:`RECOGNIZER_BURN_IN` (32) frames after each reset (0.74 s,
                    the LSTM still gathering context, unsupervised in training) are left
                    out of the readings
==================  =====================================================================

Readings
--------
:func:`recognize_audio` runs every frame through the EmotionRecognizer held by
:class:`~kelly.ml.processor.MultiModelProcessor`, so a trained ``emotionrecognizer.json``
on the model search path is used when present, and the documented fallback heuristic
(:func:`kelly.ml.fallbacks.recognizer`: loudness → arousal, spectral centroid → valence,
low-band share → dominance, contrast → intensity, confidence 0.25) when not. Each frame's
64-d embedding is read back as valence, arousal, dominance, intensity and confidence
with the clipping of :func:`kelly.ml.schema.decode_embedding`. Per second, the frames
whose centres fall in that second are averaged; the name is the thesaurus entry nearest
to the averaged (V, A, D) point. The overall reading is the **median** of the per-second
readings over the seconds that are not silent (RMS level below −60 dBFS).

Kelly ships a trained recognizer (``kelly/assets/models``, described in
``kelly/assets/MODEL_CARD.md``); every reading names the model that ran in
:attr:`AudioReading.model`.

Files
-----
:func:`load_audio` reads WAV (also WAVE_FORMAT_EXTENSIBLE, RF64, Wave64), FLAC, OGG
(Vorbis, Opus) and AIFF through soundfile (libsndfile). MP3 is refused before libsndfile
opens it (its MP3 decoder prints its own messages to standard error on damaged input).
It checks the header before decoding anything (format, 1–32 channels, 4–384 kHz, at
least 0.5 s and at most ``max_seconds``), decodes in blocks with the channels averaged
as it goes and resamples as a stream, so memory stays at the mono output however many
channels the file has.
Every problem is one :class:`~kelly.errors.FileFormatError` or
:class:`~kelly.errors.InputError` line naming the file.

librosa and soundfile are imported only when audio is read (``pip install 'kelly[audio]'``).
"""

from __future__ import annotations

import hashlib
import math
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kelly.errors import FileFormatError, InputError, KellyError
from kelly.fileio import show_path
from kelly.ml import schema

#: Sample rate the recognizer's features are computed at (Hz).
TARGET_SR = 22050
#: FFT size (samples at :data:`TARGET_SR`); also the Hann window's length.
N_FFT = 2048
#: Hop between frames (samples at :data:`TARGET_SR`); one frame = one recognizer step.
HOP_LENGTH = 512
#: Mel bands: the recognizer's input size.
N_MELS = schema.MEL_BINS
#: Lowest and highest mel band edges (Hz); FMAX is the Nyquist frequency of TARGET_SR.
FMIN, FMAX = 30.0, TARGET_SR / 2.0
#: Power below which the spectrum is floored before taking decibels (−100 dB).
AMIN = 1e-10

#: The front-end contract, read-only. A training pipeline imports this and calls
#: :func:`log_mel_frames` with its defaults; any other value makes features the
#: recognizer was not trained on.
FRONT_END: Mapping[str, Any] = types.MappingProxyType({
    "sample_rate": TARGET_SR,          # Hz; other rates are resampled
    "resample": "soxr_hq",             # librosa.resample(res_type=...) / soxr quality "HQ"
    "mono": "mean",                    # channels averaged
    "n_fft": N_FFT,                    # 92.9 ms
    "win_length": N_FFT,
    "window": "hann",                  # periodic (scipy.signal.get_window("hann", n_fft, fftbins=True))
    "hop_length": HOP_LENGTH,          # 23.2 ms
    "center": True,                    # frame i centred on sample i·hop_length
    "pad_mode": "constant",            # zeros
    "power": 2.0,                      # power spectrogram
    "spectrum_scale": (2.0 / (N_FFT / 2.0)) ** 2,  # (2 / Σ window)²: full-scale sine bin = 1
    "n_mels": N_MELS,
    "fmin": FMIN,
    "fmax": FMAX,
    "mel_htk": False,                  # Slaney mel scale
    "mel_norm": None,                  # triangles of peak 1
    "ref": 1.0,                        # 0 dBFS
    "amin": AMIN,
    "top_db": None,                    # no clip-relative floor
    "db_floor": -80.0,                 # schema.normalize_mel_db: (dB + 80) / 80, clipped to [0, 1]
    "frames_per_step": 1,              # one EmotionRecognizer LSTM step per frame
    "lstm_window": 256,                # frames between LSTM resets (the training window)
    "burn_in": 32,                     # frames after a reset left out of readings (unsupervised in training)
    "steps_per_second": TARGET_SR / HOP_LENGTH,  # 43.066…
})

#: Frames between resets of the recognizer's LSTM state: the windows it was trained on.
RECOGNIZER_WINDOW = 256
#: Frames after each reset that readings leave out (and training does not supervise).
RECOGNIZER_BURN_IN = 32

#: Shortest audio accepted (seconds).
MIN_SECONDS = 0.5
#: Longest audio accepted by default (seconds): 20 minutes.
MAX_SECONDS = 1200.0
#: Accepted sample rates of files and arrays (Hz).
MIN_SR, MAX_SR = 4000, 384000
#: Most channels a file may have.
MAX_CHANNELS = 32
#: Samples beyond this magnitude (120 dB above full scale) are refused as not audio.
MAX_ABS_SAMPLE = 1e6
#: A second whose RMS level is below this (dBFS) is silent and left out of the overall reading.
SILENCE_DBFS = -60.0
#: libsndfile formats read (``soundfile.info(path).format``).
FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "OGG", "AIFF")
#: What :attr:`AudioReading.model` says when the recognizer's fallback heuristic ran.
FALLBACK_MODEL = "fallback heuristic (no trained EmotionRecognizer found)"
#: How the overall reading is made from the per-second ones.
OVERALL_METHOD = "median of the non-silent seconds"

_BLOCK = 1 << 16  # frames decoded per read
_CHUNK_FRAMES = 2048  # STFT frames computed at once (about 47 s of audio, 17 MB of spectrum)
_UNKNOWN_FRAMES = 1 << 62  # libsndfile's "length unknown" is SF_COUNT_MAX
_MAGIC = ((b"RIFF", "WAV"), (b"RIFX", "WAV"), (b"RF64", "RF64"), (b"BW64", "RF64"), (b"riff", "Wave64"),
          (b"FORM", "AIFF"), (b"fLaC", "FLAC"), (b"OggS", "OGG"))


# ---------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------


def log_mel_frames(y: np.ndarray, sr: float, *, target_sr: int = TARGET_SR, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH, n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX,
                   ref: float = 1.0, top_db: float | None = None) -> np.ndarray:
    """Normalised log-mel frames: the EmotionRecognizer's input, one row per LSTM step.

    The defaults are the contract in :data:`FRONT_END` (see the module docstring);
    training and inference both call this function with them.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio, finite, full scale ±1 (|y| ≤ 10⁶). Mix channels down first
        (:func:`load_audio` does).
    sr : number in [4000, 384000]
        Sample rate of ``y`` in Hz; resampled to ``target_sr`` when different.
    target_sr : int > 0
        Analysis sample rate (Hz).
    n_fft : int > 0
        FFT size and Hann window length (samples at ``target_sr``).
    hop_length : int in [1, n_fft]
        Samples between frame centres.
    n_mels : int > 0
        Number of mel bands (the recognizer needs 128).
    fmin, fmax : float, 0 ≤ fmin < fmax ≤ target_sr / 2
        Band edges in Hz (Slaney mel scale, triangles of peak 1).
    ref : float > 0
        Power read as 0 dB; 1 is a full-scale sine (0 dBFS).
    top_db : float ≥ 0 or None
        As in :func:`librosa.power_to_db`: floor at the clip's loudest value minus
        ``top_db``. None (the contract) keeps every frame independent of the others.

    Returns
    -------
    np.ndarray [shape=(1 + m // hop_length, n_mels), dtype=float32]
        ``m`` is the length after resampling; values in [0, 1] by
        :func:`kelly.ml.schema.normalize_mel_db` (−80 dB → 0, 0 dB → 1). Row ``i``
        is centred at ``i·hop_length / target_sr`` seconds.

    Raises
    ------
    InputError
        If ``y`` is not a finite 1-D signal of at least ``n_fft`` samples (after
        resampling), ``sr`` is out of range, or an option is invalid.
    """
    y = _check_signal(y, "y")
    sr = _check_rate(sr, "sr")
    target_sr = _check_positive_int(target_sr, "target_sr")
    n_fft = _check_positive_int(n_fft, "n_fft")
    hop_length = _check_positive_int(hop_length, "hop_length")
    n_mels = _check_positive_int(n_mels, "n_mels")
    if hop_length > n_fft:
        raise InputError(f"hop_length ({hop_length}) must not exceed n_fft ({n_fft})")
    fmin, fmax = _check_number(fmin, "fmin"), _check_number(fmax, "fmax")
    if not 0.0 <= fmin < fmax <= target_sr / 2.0:
        raise InputError(f"need 0 <= fmin < fmax <= target_sr / 2 = {target_sr / 2:g} Hz, "
                         f"got fmin={fmin:g}, fmax={fmax:g}")
    ref = _check_number(ref, "ref")
    if ref <= 0:
        raise InputError(f"ref must be > 0, got {ref:g}")
    if top_db is not None:
        top_db = _check_number(top_db, "top_db")
        if top_db < 0:
            raise InputError(f"top_db must be >= 0 or None, got {top_db:g}")
    needed = math.ceil(n_fft * sr / target_sr)
    if len(y) < needed:
        raise InputError(f"y has {len(y)} samples ({len(y) / sr:.3f} s); log_mel_frames needs at least "
                         f"n_fft = {n_fft} samples at {target_sr} Hz ({n_fft / target_sr:.3f} s)")
    librosa = _librosa()
    if sr != target_sr:
        y = resample(y, sr, target_sr)
    bank = librosa.filters.mel(sr=target_sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                               norm=None)
    scale = (2.0 / (n_fft / 2.0)) ** 2  # a periodic Hann window sums to n_fft / 2
    # Centred frames: zero padding of n_fft / 2 at both ends, as librosa.stft(center=True, pad_mode="constant")
    # does; the frames are computed in chunks so that memory stays small for a 20-minute file.
    padded = np.pad(y, n_fft // 2)
    n_frames = 1 + len(y) // hop_length
    mel = np.empty((n_mels, n_frames), dtype=np.float32)
    for f0 in range(0, n_frames, _CHUNK_FRAMES):
        f1 = min(n_frames, f0 + _CHUNK_FRAMES)
        segment = padded[f0 * hop_length:(f1 - 1) * hop_length + n_fft]
        spec = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop_length, window="hann", center=False)) ** 2
        mel[:, f0:f1] = bank @ (spec * scale)
    db = librosa.power_to_db(mel, ref=ref, amin=AMIN, top_db=top_db)
    return np.ascontiguousarray(schema.normalize_mel_db(db).T)


def resample(y: np.ndarray, orig_sr: float, target_sr: float) -> np.ndarray:
    """``y`` resampled from ``orig_sr`` to ``target_sr`` Hz with soxr "HQ" (as :data:`FRONT_END`).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    orig_sr, target_sr : number > 0

    Returns
    -------
    np.ndarray [shape=(ceil(n·target_sr / orig_sr),), dtype=float32]
    """
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    return _librosa().resample(np.asarray(y, dtype=np.float32), orig_sr=orig_sr, target_sr=target_sr,
                               res_type=FRONT_END["resample"])


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def load_audio(path: str | os.PathLike, *, sr: int | None = TARGET_SR,
               max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, int]:
    """Read a sound file as mono float32, resampled to ``sr``.

    Parameters
    ----------
    path : path
        A regular WAV, FLAC, OGG or AIFF file.
    sr : int in [4000, 384000] or None
        Output sample rate in Hz (default: the front-end's 22,050); None keeps the
        file's own rate.
    max_seconds : float ≥ 0.5
        Longest audio accepted, checked from the header before decoding and again while
        decoding (default 1,200 s: 20 minutes).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Channels averaged; full scale ±1.
    sr : int
        Its sample rate in Hz.

    Raises
    ------
    FileFormatError
        Missing file, folder or device, not audio, a corrupt or truncated header or
        data, NaN/infinite samples, an unsupported format, channels or sample rate,
        or audio shorter than 0.5 s or longer than ``max_seconds``.
    InputError
        Invalid ``sr`` or ``max_seconds``.
    """
    if sr is not None:
        sr = _check_rate(sr, "sr")
    max_seconds = _check_max_seconds(max_seconds)
    y, out_sr, _ = _load(path, sr, max_seconds)
    return y, out_sr


def _load(path: str | os.PathLike, sr: int | None, max_seconds: float) -> tuple[np.ndarray, int, int]:
    """:func:`load_audio` without the argument checks; also returns the file's own rate."""
    sf = _soundfile()
    shown = show_path(path)
    fd = _open_regular(path, shown)
    try:
        head = os.pread(fd, 16, 0)
        if _looks_like_mp3(head):  # refused before libsndfile's MP3 decoder, which prints to stderr itself
            raise FileFormatError(f"{shown}: MP3 audio is not supported; convert it to WAV, FLAC or OGG")
        try:
            snd = sf.SoundFile(fd, closefd=False)
        except (RuntimeError, ValueError, TypeError, OSError) as exc:
            raise FileFormatError(_open_problem(shown, head, exc)) from None
        with snd:
            native_sr, channels, frames, fmt = int(snd.samplerate), int(snd.channels), int(snd.frames), snd.format
            _check_header(shown, fmt, native_sr, channels, frames, max_seconds)
            y = _decode(snd, shown, native_sr, channels, max_seconds, sr)
    finally:
        os.close(fd)
    return y, (sr if sr is not None else native_sr), native_sr


def _open_regular(path: str | os.PathLike, shown: str) -> int:
    """A read-only descriptor of a regular, non-empty file (never blocks on a FIFO or reads a device)."""
    from kelly.fileio import open_regular_file

    return open_regular_file(path, what="audio file", allow_empty=False)


def _libsndfile_reason(exc: BaseException) -> str:
    reason = " ".join(str(getattr(exc, "error_string", "") or exc).split()).rstrip(".")
    for prefix in ("Error : ", "Error: "):
        reason = reason.removeprefix(prefix)
    return reason or type(exc).__name__


def _looks_like_mp3(head: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start (what libsndfile looks for)."""
    return head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _open_problem(shown: str, head: bytes, exc: BaseException) -> str:
    """One line saying why libsndfile could not open the file: not audio, or a broken header."""
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    reason = _libsndfile_reason(exc)
    if kind is None:
        return f"{shown}: not an audio file Kelly can read ({reason}); use WAV, FLAC or OGG"
    return f"{shown}: corrupt or truncated {kind} header ({reason})"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        minutes, rest = int(seconds // 60), int(seconds % 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def _too_long(shown: str, seconds: float, max_seconds: float, how: str) -> FileFormatError:
    return FileFormatError(f"{shown}: is {_duration(seconds)} long ({how}); Kelly reads at most "
                           f"{_duration(max_seconds)} of audio: cut it shorter")


def _too_short(shown: str, seconds: float) -> FileFormatError:
    return FileFormatError(f"{shown}: is only {seconds:.3f} s long; Kelly needs at least {MIN_SECONDS:g} s of audio")


def _check_header(shown: str, fmt: str, sr: int, channels: int, frames: int, max_seconds: float) -> None:
    if fmt not in FORMATS:
        raise FileFormatError(f"{shown}: {fmt} audio is not supported; use WAV, FLAC or OGG")
    if not 1 <= channels <= MAX_CHANNELS:
        raise FileFormatError(f"{shown}: has {channels} channels; Kelly reads 1 to {MAX_CHANNELS}")
    if not MIN_SR <= sr <= MAX_SR:
        raise FileFormatError(f"{shown}: sample rate {sr:,} Hz is outside {MIN_SR:,}–{MAX_SR:,} Hz")
    if frames <= 0:
        raise FileFormatError(f"{shown}: holds no audio (0 samples)")
    if frames < _UNKNOWN_FRAMES:
        if frames / sr < MIN_SECONDS:
            raise _too_short(shown, frames / sr)
        if frames / sr > max_seconds:
            raise _too_long(shown, frames / sr, max_seconds, "from its header")


def _decode(snd: Any, shown: str, native_sr: int, channels: int, max_seconds: float,
            sr: int | None) -> np.ndarray:
    """Decode block by block: check, mix down, resample as a stream (memory: the mono output)."""
    stream = None
    if sr is not None and sr != native_sr:
        import soxr

        stream = soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="HQ")
    limit = int(max_seconds * native_sr)
    parts: list[np.ndarray] = []
    done = 0
    while True:
        try:
            block = snd.read(_BLOCK, dtype="float32", always_2d=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise FileFormatError(f"{shown}: corrupt audio data between {done / native_sr:.2f} s and "
                                  f"{(done + _BLOCK) / native_sr:.2f} s ({_libsndfile_reason(exc)})") from None
        if not len(block):
            break
        finite = np.isfinite(block)
        if not finite.all():
            first = int(np.argmin(finite.all(axis=1)))
            raise FileFormatError(f"{shown}: holds NaN or infinite samples (first at "
                                  f"{(done + first) / native_sr:.3f} s); it is not usable audio")
        peak = float(np.abs(block).max())
        if peak > MAX_ABS_SAMPLE:
            raise FileFormatError(f"{shown}: holds samples of {peak:.3g}, far beyond full scale (±1); "
                                  "it is not usable audio")
        done += len(block)
        if done > limit:
            raise _too_long(shown, done / native_sr, max_seconds, "while decoding")
        mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else np.ascontiguousarray(block[:, 0])
        parts.append(stream.resample_chunk(mono) if stream is not None else mono)
    if done / native_sr < MIN_SECONDS:
        if done == 0:
            raise FileFormatError(f"{shown}: holds no audio (0 samples could be decoded)")
        raise _too_short(shown, done / native_sr)
    if stream is not None:
        parts.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(parts).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------
# Readings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioMoment:
    """How a stretch of audio reads: one second, or the whole file.

    Attributes
    ----------
    start, end : float
        Seconds from the start of the audio.
    emotion, family : str
        The thesaurus entry nearest to (valence, arousal, dominance), and its family.
    valence : float in [-1, 1]
    arousal, dominance, intensity, confidence : float in [0, 1]
    level_dbfs : float
        RMS level in dBFS (a full-scale sine is −3; digital silence reads −120).
    silent : bool
        The RMS level is below :data:`SILENCE_DBFS`; the confidence is then 0 (the
        recognizer reads silence too, and confidently, but it is no evidence of a feeling).
    """

    start: float
    end: float
    emotion: str
    family: str
    valence: float
    arousal: float
    dominance: float
    intensity: float
    confidence: float
    level_dbfs: float
    silent: bool

    def to_state(self):
        """The reading as an :class:`~kelly.emotion.state.EmotionState` (source "audio")."""
        from kelly.emotion.state import EmotionState

        return EmotionState(label=self.emotion, family=self.family, valence=self.valence, arousal=self.arousal,
                            dominance=self.dominance, intensity=self.intensity, confidence=self.confidence,
                            source="audio")

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": [round(self.start, 3), round(self.end, 3)],
            "emotion": self.emotion, "family": self.family,
            "valence": round(self.valence, 4), "arousal": round(self.arousal, 4),
            "dominance": round(self.dominance, 4), "intensity": round(self.intensity, 4),
            "confidence": round(self.confidence, 4),
            "level_dbfs": round(self.level_dbfs, 1), "silent": self.silent,
        }


@dataclass(frozen=True)
class AudioReading:
    """What :func:`recognize_audio` heard.

    Attributes
    ----------
    overall : AudioMoment
        The median of the non-silent seconds (of all seconds when every one is silent).
    seconds : tuple of AudioMoment
        One reading per second of audio (the last may be shorter).
    model : str
        Which recognizer ran: :data:`FALLBACK_MODEL` (possibly with the reason a file
        found was not used) or the model file and whether it was trained.
    live : bool
        True when a network ran, False when the fallback heuristic did.
    duration : float
        Seconds of audio.
    sample_rate : float
        The input's own sample rate (Hz); features are computed at 22,050 Hz.
    n_frames : int
        Recognizer steps (frames) run.
    summary : str
        How ``overall`` was made, for people.
    """

    overall: AudioMoment
    seconds: tuple[AudioMoment, ...]
    model: str
    live: bool
    duration: float
    sample_rate: float
    n_frames: int
    summary: str

    def to_state(self):
        """The overall reading as an EmotionState (source "audio"), ready for fusion or composing."""
        return self.overall.to_state()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "live": self.live, "duration": round(self.duration, 3),
            "sample_rate": self.sample_rate, "frames": self.n_frames, "summary": self.summary,
            "overall": self.overall.to_dict(), "seconds": [m.to_dict() for m in self.seconds],
        }


def recognize_audio(source: str | os.PathLike | np.ndarray, sr: float | None = None, *,
                    models_dir: str | os.PathLike | None = None, max_seconds: float = MAX_SECONDS) -> AudioReading:
    """Read the feeling of a sound, second by second and overall.

    Parameters
    ----------
    source : path or np.ndarray [shape=(n,)]
        A sound file (see :func:`load_audio`), or mono samples (full scale ±1).
    sr : number in [4000, 384000], optional
        The array's sample rate in Hz; required for an array, not allowed for a file.
    models_dir : path, optional
        Searched first for ``emotionrecognizer.json`` (``--models-dir``); see
        :class:`~kelly.ml.processor.MultiModelProcessor` for the rest of the search path.
    max_seconds : float
        Longest audio accepted (default 20 minutes).

    Returns
    -------
    AudioReading

    Raises
    ------
    FileFormatError, InputError
        For an unusable file or array (one line each).
    kelly.errors.ModelError
        For a corrupt recognizer file in ``models_dir``.
    """
    max_seconds = _check_max_seconds(max_seconds)
    if isinstance(source, (str, os.PathLike)):
        if sr is not None:
            raise InputError("sr is read from the file; give sr only with an array of samples")
        y, in_sr, native = _load(source, TARGET_SR, max_seconds)
    else:
        if sr is None:
            raise InputError("give the sample rate: recognize_audio(y, sr)")
        native = _check_rate(sr, "sr")
        y = _check_signal(source, "audio")
        seconds = len(y) / native
        if seconds < MIN_SECONDS:
            raise InputError(f"audio is only {seconds:.3f} s long; Kelly needs at least {MIN_SECONDS:g} s")
        if seconds > max_seconds:
            raise InputError(f"audio is {_duration(seconds)} long; Kelly reads at most {_duration(max_seconds)}")
        y, in_sr = resample(y, native, TARGET_SR), TARGET_SR
    mel = log_mel_frames(y, in_sr)
    embeddings, model, live = _run_recognizer(mel, models_dir)
    duration = len(y) / in_sr
    return _readings(embeddings, y, in_sr, duration, native, model, live)


def _run_recognizer(mel: np.ndarray, models_dir: str | os.PathLike | None) -> tuple[np.ndarray, str, bool]:
    """Every frame through the recognizer (network or fallback), its LSTM state reset every
    :data:`RECOGNIZER_WINDOW` frames as in training."""
    from kelly.ml.processor import MultiModelProcessor

    proc = MultiModelProcessor(models_dir)
    key = "emotionrecognizer"
    out = np.empty((len(mel), schema.EMBED_DIM), dtype=np.float32)
    for i, frame in enumerate(mel):
        if i % RECOGNIZER_WINDOW == 0:
            proc.reset()
        out[i] = proc.run_model(key, frame)
    info = proc.status()["models"][key]
    if proc.is_live(key):
        return out, _describe_model_file(Path(info["path"])), True
    if info["error"]:
        return out, f"fallback heuristic (the EmotionRecognizer file found could not be used: {info['error']})", False
    if info["loaded"]:
        return out, "fallback heuristic (the EmotionRecognizer is disabled)", False
    return out, FALLBACK_MODEL, False


def _describe_model_file(path: Path) -> str:
    """``EmotionRecognizer network <path>``, saying whether its sidecar marks it trained."""
    from kelly.fileio import read_json, read_regular_file

    note = "training unknown: no matching emotionrecognizer.meta.json"
    try:
        meta = read_json(path.with_name(path.stem + ".meta.json"), max_bytes=1 << 16)
        digest = hashlib.sha256(read_regular_file(path, max_bytes=64 << 20)).hexdigest()
        if isinstance(meta, dict) and digest in (meta.get("sha256"), meta.get("model_sha256")) \
                and isinstance(meta.get("trained"), bool):
            note = "trained" if meta["trained"] else "untrained: initialised from a fixed seed"
    except KellyError:
        pass
    return f"EmotionRecognizer network {show_path(path)} ({note})"


def _decode_frames(emb: np.ndarray) -> np.ndarray:
    """(frames, 64) embeddings → (frames, 5) V, A, D, intensity, confidence, clipped as
    :func:`kelly.ml.schema.decode_embedding` clips them."""
    cols = [schema.I_VALENCE, schema.I_AROUSAL, schema.I_DOMINANCE, schema.I_INTENSITY, schema.I_CONFIDENCE]
    out = emb[:, cols].astype(np.float64)
    out[:, 0] = np.clip(out[:, 0], -1.0, 1.0)
    out[:, 1:] = np.clip(out[:, 1:], 0.0, 1.0)
    return out


def _level_dbfs(y: np.ndarray) -> float:
    power = float(np.mean(np.square(y, dtype=np.float64))) if len(y) else 0.0
    return max(-120.0, 10.0 * math.log10(power)) if power > 0 else -120.0


def _moment(start: float, end: float, vadic: np.ndarray, level: float, silent: bool) -> AudioMoment:
    from kelly.emotion.thesaurus import load_thesaurus

    v, a, d, i, c = (float(x) for x in vadic)
    if silent:
        c = 0.0  # the network answers silence too, confidently; a reading of nothing is no evidence of a feeling
    entry = load_thesaurus().nearest(v, a, d)
    return AudioMoment(start=start, end=end, emotion=entry.name, family=entry.family, valence=v, arousal=a,
                       dominance=d, intensity=i, confidence=c, level_dbfs=level, silent=silent)


def _readings(emb: np.ndarray, y: np.ndarray, sr: int, duration: float, native: float, model: str,
              live: bool) -> AudioReading:
    values = _decode_frames(emb)
    n_seconds = max(1, math.ceil(duration - 1e-9))
    second_of = np.minimum((np.arange(len(values)) * HOP_LENGTH) // sr, n_seconds - 1)
    # frames just after an LSTM reset count only in a second that has no other frames
    settled = (np.arange(len(values)) % RECOGNIZER_WINDOW) >= RECOGNIZER_BURN_IN
    weight = np.where(settled, 1.0, 1e-6)
    counts = np.bincount(second_of, weights=weight, minlength=n_seconds)
    sums = np.stack([np.bincount(second_of, weights=values[:, k] * weight, minlength=n_seconds)
                     for k in range(5)], axis=1)
    means = sums / np.maximum(counts, 1e-12)[:, None]
    moments = []
    for k in range(n_seconds):
        level = _level_dbfs(y[k * sr:(k + 1) * sr])
        moments.append(_moment(float(k), min(float(k + 1), duration), means[k], level, level < SILENCE_DBFS))
    heard = [k for k, m in enumerate(moments) if not m.silent]
    pick = heard or list(range(n_seconds))
    overall_values = np.median(means[pick], axis=0)
    level = _level_dbfs(y)
    overall = _moment(0.0, duration, overall_values, level, not heard)
    silent = n_seconds - len(heard)
    if heard:
        summary = (f"{OVERALL_METHOD}: {len(heard)} of {n_seconds} seconds"
                   + (f" ({silent} silent left out)" if silent else ""))
    else:
        summary = f"every one of the {n_seconds} seconds is silent (below {SILENCE_DBFS:g} dBFS): median of all"
    return AudioReading(overall=overall, seconds=tuple(moments), model=model, live=live, duration=duration,
                        sample_rate=native, n_frames=len(values), summary=summary)


# ---------------------------------------------------------------------------------------
# Validation and lazy imports
# ---------------------------------------------------------------------------------------


def _check_number(x: Any, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x):
        raise InputError(f"{name} must be a finite number, got {x!r}")
    return float(x)


def _check_max_seconds(x: Any) -> float:
    x = _check_number(x, "max_seconds")
    if x < MIN_SECONDS:
        raise InputError(f"max_seconds must be at least {MIN_SECONDS:g}, got {x:g}")
    return x


def _check_positive_int(x: Any, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x <= 0:
        raise InputError(f"{name} must be a positive integer, got {x!r}")
    return int(x)


def _check_rate(sr: Any, name: str) -> float:
    sr = _check_number(sr, name)
    if not MIN_SR <= sr <= MAX_SR:
        raise InputError(f"{name} must be between {MIN_SR:,} and {MAX_SR:,} Hz, got {sr:g}")
    return int(sr) if float(sr).is_integer() else sr


def _check_signal(y: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of samples") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be mono with shape (n,), got shape {arr.shape}; "
                         "average the channels first (load_audio does)")
    if not np.issubdtype(arr.dtype, np.floating):
        hint = f"; scale integer samples to ±1 first (e.g. y / {2 ** (8 * arr.itemsize - 1)})" \
            if np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool else ""
        raise InputError(f"{name} must hold floating-point samples at full scale ±1, got dtype {arr.dtype}{hint}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} holds NaN or infinite samples")
    if len(arr) and float(np.abs(arr).max()) > MAX_ABS_SAMPLE:
        raise InputError(f"{name} holds samples beyond ±{MAX_ABS_SAMPLE:g}; audio is expected at full scale ±1")
    return arr


def _missing(name: str) -> InputError:
    return InputError(f"reading audio needs {name}, which is not installed: pip install 'kelly[audio]' "
                      "(librosa and soundfile)")


def _librosa():
    try:
        import librosa
    except ImportError:
        raise _missing("librosa") from None
    return librosa


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the libsndfile library itself is missing
        raise _missing("soundfile") from None
    return soundfile
