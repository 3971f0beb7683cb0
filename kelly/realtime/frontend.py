"""The recognizer's mel front-end, as a stream: blocks of audio in, log-mel frames out.

:class:`MelFrontEnd` computes the frames of :func:`kelly.emotion.audio.log_mel_frames`
(the contract in :data:`kelly.emotion.audio.FRONT_END`) one block at a time, with the same
numbers: a stream cut into blocks of any size gives the frames of the whole signal.

How the stream matches the whole-signal function
------------------------------------------------
* **Resampling.** Input at any rate from 4 to 384 kHz goes through one
  ``soxr.ResampleStream(sr, 22050, quality="HQ")``, the filter of the contract's
  ``soxr_hq``; soxr's stream gives the same samples as ``soxr.resample`` on the whole
  signal (it holds back its filter's delay and releases it in its own chunks).
  :meth:`MelFrontEnd.flush` ends the stream and trims or zero-pads it to
  ``ceil(n · 22050 / sr)`` samples, as ``librosa.resample`` does.
* **Centred frames.** The 22,050 Hz signal is kept in a buffer that starts with
  ``n_fft / 2`` zeros, so frame ``i`` is the window at buffer offset ``i · 512``, centred on
  sample ``i · 512`` of the signal; a frame is computed as soon as its last sample is in.
  :meth:`~MelFrontEnd.flush` appends the closing ``n_fft / 2`` zeros, so the frame count is
  ``1 + m // 512`` as for the whole signal.
* **Spectrum.** Periodic Hann window (float64, as librosa's ``stft`` multiplies it),
  ``numpy.fft.rfft`` in float64, power ``|X|²`` in float32 times ``(2 / (n_fft / 2))²``,
  then the Slaney mel bank of ``librosa.filters.mel`` (128 bands, 30 – 11,025 Hz, peak 1)
  made once, then ``10·log10(max(·, 1e-10))`` and ``(dB + 80) / 80`` clipped to [0, 1]
  (:func:`kelly.ml.schema.normalize_mel_db`).

What a block costs
------------------
Every array is made in the constructor; :meth:`~MelFrontEnd.process` writes into them with
``out=``. The exceptions are the resampler's output (``soxr`` returns a new array per
chunk) and a handful of small view objects per frame; ``numpy.fft.rfft`` writes into a
preallocated array too (numpy ≥ 2.0 takes ``out=``). At 48 kHz a 512-sample block yields
0 or 1 frame (one frame per 1,114.6 input samples).

Bad samples
-----------
NaN, infinite and absurd samples (beyond ±10⁶, the limit of
:func:`~kelly.emotion.audio.log_mel_frames`) are **replaced by zeros and counted**
(:attr:`MelFrontEnd.bad_samples`, :attr:`MelFrontEnd.bad_blocks`), not raised: dropping a
block would shift every later frame against the audio clock, and a zeroed stretch reads
as a quiet moment for about one window (93 ms). A block of the wrong kind (not a 1-D
floating-point array, or longer than ``block``) is a programming error and raises
:class:`~kelly.errors.InputError`.
"""

from __future__ import annotations

import math

import numpy as np

from kelly.emotion import audio as _audio
from kelly.errors import InputError

#: Largest block accepted (samples).
MAX_BLOCK = 1 << 17
#: Seconds of audio fed through a copy of the stream when a front-end is made, to measure
#: the resampler's chunking (largest output per block) and the latency.
PROBE_SECONDS = 2.0


def budget_s(sr: float, block: int) -> float:
    """Seconds one block of audio lasts: the time the engine has to handle it.

    Parameters
    ----------
    sr : number in [4000, 384000]
        Sample rate in Hz.
    block : int in [1, 131072]
        Samples per block.

    Returns
    -------
    float
        ``block / sr`` (512 samples at 48 kHz: 0.010667 s).
    """
    sr = _audio._check_rate(sr, "sr")
    block = _check_block_size(block)
    return block / sr


class MelFrontEnd:
    """Streaming :func:`~kelly.emotion.audio.log_mel_frames`: one block in, its new frames out.

    Parameters
    ----------
    sr : number in [4000, 384000]
        Sample rate of the blocks (Hz); resampled to 22,050 Hz as a stream.
    block : int in [1, 131072]
        The largest block :meth:`process` will be given (samples at ``sr``).

    Attributes
    ----------
    sr : int or float
    block : int
    frames : np.ndarray [shape=(max_frames, 128), dtype=float32]
        Written by :meth:`process` and :meth:`flush`: rows ``frames[:n]`` are the ``n``
        new frames, normalised exactly like ``log_mel_frames`` (values in [0, 1]); the
        rows are overwritten by the next call (copy them to keep them). The array itself
        is made once and never replaced.
    max_frames : int
        Rows of :attr:`frames`: more than any one call produces in practice; should a
        call have more frames ready, the rest wait (:attr:`pending_frames`) for the next.
    frame_index : int
        Stream index of ``frames[0]`` after the last call (frame ``i`` is centred on
        ``i · 512 / 22050`` s from the start of the stream).
    frames_done : int
        Frames produced since the start (or :meth:`reset`).
    samples_in : int
        Input samples taken since the start.
    latency_samples : int
        The most input samples that can have arrived after a frame's centre sample by
        the time :meth:`process` returns that frame, for full blocks of ``block``
        samples; the engine reports it. It adds ``n_fft / 2`` samples at 22,050 Hz (the
        right half of the window), what soxr holds back (its filter delay and the chunk
        it releases output in, measured on a copy of the stream when the front-end is
        made) and the wait for the end of the block; see ``_probe``. 512-sample blocks at
        48 kHz: 4,570 samples (95.2 ms = 46.4 ms half window + 38.1 ms soxr + 10.7 ms
        block); at 22,050 Hz exactly 1,024 (46.4 ms).
    latency_median_samples : int
        The median age of a frame when it comes out (48 kHz, 512: 3,515 samples, 73 ms).
    bad_samples, bad_blocks : int
        NaN, infinite or absurd (beyond ±10⁶) samples replaced by zeros, and the blocks
        that held any.

    Examples
    --------
    >>> fe = MelFrontEnd(48000, 512)
    >>> n = fe.process(np.zeros(512, np.float32))
    >>> fe.frames[:n].shape
    (0, 128)
    """

    def __init__(self, sr: float, block: int) -> None:
        self.sr = _audio._check_rate(sr, "sr")
        self.block = _check_block_size(block)
        librosa = _audio._librosa()
        self._n_fft = n_fft = _audio.N_FFT
        self._hop = _audio.HOP_LENGTH
        self._half = n_fft // 2
        bank = librosa.filters.mel(sr=_audio.TARGET_SR, n_fft=n_fft, n_mels=_audio.N_MELS, fmin=_audio.FMIN,
                                   fmax=_audio.FMAX, htk=False, norm=None)  # (128, 1025) float32
        self._bank_t = np.ascontiguousarray(bank.T)  # (1025, 128): frames @ bank.T
        self._scale = np.float32((2.0 / (n_fft / 2.0)) ** 2)
        # periodic Hann, as scipy.signal.get_window("hann", n_fft, fftbins=True)
        self._window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
        self._resampling = self.sr != _audio.TARGET_SR
        self._soxr = _soxr() if self._resampling else None
        self._stream = self._new_stream()

        max_out, self.latency_samples, self.latency_median_samples = self._probe()
        self.max_frames = (2 * max_out + n_fft) // self._hop + 2
        n_bins = n_fft // 2 + 1
        self.frames = np.zeros((self.max_frames, _audio.N_MELS), dtype=np.float32)
        self._work = np.zeros((self.max_frames, n_fft), dtype=np.float64)
        self._spec = np.zeros((self.max_frames, n_bins), dtype=np.complex128)
        self._power = np.zeros((self.max_frames, n_bins), dtype=np.float32)
        self._power2 = np.zeros((self.max_frames, n_bins), dtype=np.float32)
        self._in = np.zeros(self.block, dtype=np.float32)  # the block, cast or cleaned
        self._abs = np.zeros(self.block, dtype=np.float32)
        self._buf = np.zeros(4 * n_fft + 4 * max_out + 2 * self.max_frames * self._hop, dtype=np.float32)
        self.reset()

    # -- the stream --------------------------------------------------------------------

    def process(self, block: np.ndarray) -> int:
        """Take one block; compute the frames it completes.

        Parameters
        ----------
        block : np.ndarray [shape=(n,)], 0 ≤ n ≤ ``self.block``
            Mono samples at ``sr``, full scale ±1, any floating dtype (float32 is used
            as is; others are cast). NaN, infinite or absurd samples are replaced by zeros
            and counted (see the module docstring). An empty block only drains
            :attr:`pending_frames`.

        Returns
        -------
        int
            ``n``: the new frames are ``self.frames[:n]``, stream indices
            ``self.frame_index`` to ``self.frame_index + n − 1``.

        Raises
        ------
        InputError
            Not a 1-D floating-point array, longer than ``block``, or the stream was
            ended by :meth:`flush` (call :meth:`reset` first).
        """
        if self._finished:
            raise InputError("this stream was ended by flush(); call reset() to start a new one")
        x = self._take(block)
        self.samples_in += len(x)
        if len(x):
            self._append(self._stream.resample_chunk(x) if self._resampling else x)
        return self._emit()

    def flush(self) -> int:
        """End the stream: compute the last frames, as ``log_mel_frames`` ends the signal.

        The resampler's held-back samples are released, the 22,050 Hz signal is trimmed
        or zero-padded to ``ceil(n · 22050 / sr)`` samples and closed with ``n_fft / 2``
        zeros. Call it until it returns 0 (one call is enough unless more than
        :attr:`max_frames` frames were waiting); then :meth:`reset` starts a new stream.

        Returns
        -------
        int
            ``n``: the new frames are ``self.frames[:n]`` from ``self.frame_index``.
        """
        if not self._finished:
            if self._resampling:
                self._append(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
            target = self._target_length()
            if self._resampled > target:
                self._end -= self._resampled - target
                self._resampled = target
            if self._resampled < target:
                self._append_zeros(target - self._resampled)
                self._resampled = target
            self._append_zeros(self._half)  # the closing half window of the centred frames
            self._limit = 1 + target // self._hop
            self._finished = True
        return self._emit()

    def reset(self) -> None:
        """Start a new stream: forget all audio, frame indices and counters from zero."""
        if self._resampling:
            self._stream.clear()
        self._buf[:self._half] = 0.0
        self._start = 0  # buffer offset of the next frame's window
        self._end = self._half  # buffer offset where the next sample goes (after the centring zeros)
        self._resampled = 0  # 22,050 Hz samples received from the resampler
        self._finished = False
        self._limit: int | None = None  # total frames of the stream, known once it is flushed
        self.samples_in = 0
        self.frames_done = 0
        self.frame_index = 0
        self.bad_samples = 0
        self.bad_blocks = 0

    @property
    def pending_frames(self) -> int:
        """Frames complete but not yet returned (0 except after an unusually large burst)."""
        n = self._available()
        if self._limit is not None:
            n = min(n, self._limit - self.frames_done)
        return max(0, n)

    def __repr__(self) -> str:
        return (f"MelFrontEnd(sr={self.sr}, block={self.block}, frames_done={self.frames_done}, "
                f"latency_samples={self.latency_samples})")

    # -- inside ------------------------------------------------------------------------

    def _take(self, block) -> np.ndarray:
        """The block as float32, contiguous, finite and sane (zeros where it was not)."""
        if not isinstance(block, np.ndarray):
            raise InputError(f"a block must be a numpy array of samples, got {type(block).__name__}")
        if block.ndim != 1:
            raise InputError(f"a block must be mono with shape (n,), got shape {block.shape}; "
                             "average the channels first")
        n = block.shape[0]
        if n > self.block:
            raise InputError(f"a block holds at most {self.block} samples (the size this front-end was made for), "
                             f"got {n}")
        if block.dtype != np.float32:
            if not np.issubdtype(block.dtype, np.floating):
                raise InputError(f"a block must hold floating-point samples at full scale ±1, got dtype {block.dtype}")
            x = self._in[:n]
            np.copyto(x, block, casting="same_kind")
        elif not block.flags.c_contiguous:
            x = self._in[:n]
            np.copyto(x, block)
        else:
            x = block
        if n:
            a = self._abs[:n]
            np.abs(x, out=a)
            if not a.max() <= _audio.MAX_ABS_SAMPLE:  # False for NaN too
                x = self._clean(x, a)
        return x

    def _clean(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        bad = ~(a <= _audio.MAX_ABS_SAMPLE)  # allocates, but only for a broken block
        out = self._in[:len(x)]
        if out is not x:
            np.copyto(out, x)
        out[bad] = 0.0
        self.bad_samples += int(bad.sum())
        self.bad_blocks += 1
        return out

    def _new_stream(self):
        if not self._resampling:
            return None
        return self._soxr.ResampleStream(self.sr, _audio.TARGET_SR, 1, dtype="float32", quality="HQ")

    def _target_length(self) -> int:
        """Length of the whole signal at 22,050 Hz, as librosa.resample computes it."""
        if not self._resampling:
            return self.samples_in
        return int(np.ceil(self.samples_in * (float(_audio.TARGET_SR) / self.sr)))

    def _append(self, y: np.ndarray) -> None:
        m = len(y)
        if m == 0:
            return
        self._make_room(m)
        self._buf[self._end:self._end + m] = y
        self._end += m
        self._resampled += m

    def _append_zeros(self, m: int) -> None:
        """``m`` zeros after the signal (not counted as signal)."""
        self._make_room(m)
        self._buf[self._end:self._end + m] = 0.0
        self._end += m

    def _make_room(self, m: int) -> None:
        """Move the samples still needed to the front of the buffer when ``m`` more do not fit."""
        if self._end + m <= len(self._buf):
            return
        keep = self._end - self._start
        if keep + m > len(self._buf):  # only after an unusual burst: grow (allocates, once)
            grown = np.zeros(2 * (keep + m), dtype=np.float32)
            grown[:keep] = self._buf[self._start:self._end]
            self._buf = grown
        elif self._start >= keep:  # the usual case: source and destination do not overlap
            self._buf[:keep] = self._buf[self._start:self._end]
        else:
            self._buf[:keep] = self._buf[self._start:self._end].copy()
        self._start, self._end = 0, keep

    def _available(self) -> int:
        room = self._end - self._start - self._n_fft
        return room // self._hop + 1 if room >= 0 else 0

    def _emit(self) -> int:
        n = min(self._available(), self.max_frames)
        if self._limit is not None:
            n = max(0, min(n, self._limit - self.frames_done))
        self.frame_index = self.frames_done
        if n == 0:
            return 0
        buf, work, hop, n_fft, window = self._buf, self._work, self._hop, self._n_fft, self._window
        s = self._start
        for f in range(n):
            np.multiply(buf[s:s + n_fft], window, out=work[f])
            s += hop
        self._start = s
        spec, power, power2, frames = self._spec[:n], self._power[:n], self._power2[:n], self.frames[:n]
        np.fft.rfft(work[:n], axis=1, out=spec)
        np.multiply(spec.real, spec.real, out=power)
        np.multiply(spec.imag, spec.imag, out=power2)
        np.add(power, power2, out=power)
        np.multiply(power, self._scale, out=power)
        np.matmul(power, self._bank_t, out=frames)
        np.maximum(frames, _audio.AMIN, out=frames)
        np.log10(frames, out=frames)
        np.multiply(frames, 10.0, out=frames)
        # kelly.ml.schema.normalize_mel_db, in place: (dB + 80) / 80 clipped to [0, 1]
        np.add(frames, 80.0, out=frames)
        np.divide(frames, 80.0, out=frames)
        np.clip(frames, 0.0, 1.0, out=frames)
        self.frames_done += n
        return n

    def _probe(self) -> tuple[int, int, int]:
        """Feed full blocks of zeros through a fresh copy of the stream.

        Returns the largest resampler output per block, the latency bound and the median
        age (input samples) of a frame's centre when the frame comes out.

        The bound: frame ``k`` comes out with the block after which the resampler's output
        count first reaches ``k·hop + n_fft/2``. Before that block the output was short of
        it, so ``k·hop ≥ out_prev − n_fft/2 + 1``, and the frame's age
        ``in_prev + block − k·hop·r`` is at most ``r·(delay_prev + n_fft/2 − 1) + block``,
        where ``r`` is input samples per 22,050 Hz sample and ``delay_prev = in_prev / r −
        out_prev`` is what soxr holds back (``ResampleStream.delay()``). soxr's largest
        delay settles within the probe (its filter plus one internal chunk, about 841
        samples at 22,050 Hz for HQ), while the largest age actually seen keeps creeping up
        over minutes as the block and chunk boundaries drift past each other, so the bound
        is what is reported. Without resampling the exact worst age is known:
        ``n_fft/2 + block − gcd(hop, block)``.
        """
        stream = self._new_stream()
        zeros = np.zeros(self.block, dtype=np.float32)
        r = self.sr / _audio.TARGET_SR  # input samples per 22,050 Hz sample
        n_in = n_out = max_out = next_frame = 0
        max_delay = 0.0
        ages = []
        for _ in range(max(16, math.ceil(PROBE_SECONDS * self.sr / self.block))):
            if stream is not None:
                max_delay = max(max_delay, stream.delay())
                m = len(stream.resample_chunk(zeros))
            else:
                m = self.block
            n_in += self.block
            n_out += m
            max_out = max(max_out, m)
            last = (n_out - self._half) // self._hop  # frame k is complete once k·hop + n_fft/2 samples are in
            ages.extend(n_in - k * self._hop * r for k in range(next_frame, last + 1))
            next_frame = max(next_frame, last + 1)
        if stream is None:
            bound = self._half + self.block - math.gcd(self._hop, self.block)
        else:
            bound = math.ceil(r * (max_delay + self._half - 1) + self.block)
        median = math.ceil(float(np.median(ages)) - 1e-9) if ages else bound
        return max_out, bound, median


def _check_block_size(block) -> int:
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= MAX_BLOCK:
        raise InputError(f"block must be an integer number of samples in [1, {MAX_BLOCK:,}], got {block!r}")
    return int(block)


def _soxr():
    try:
        import soxr
    except ImportError:
        raise InputError("resampling a live stream needs soxr, which is not installed: pip install 'kelly[audio]'") \
            from None
    return soxr
