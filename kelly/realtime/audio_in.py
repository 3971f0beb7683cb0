"""Where the real-time engine's audio comes from: a sound file or a sound card, in blocks.

Both sources yield mono float32 blocks of exactly ``block`` samples at their own rate
``sr`` (the engine's :class:`~kelly.realtime.frontend.MelFrontEnd` resamples):

:class:`WavBlockSource`
    A sound file read through soundfile, with the checks of
    :func:`kelly.emotion.audio.load_audio` (format, channels, rate, length, regular file,
    MP3 refused), as fast as the consumer takes the blocks (the engine paces them).
:class:`DeviceBlockSource`
    A sound card read through sounddevice (PortAudio): its callback copies each block
    into a preallocated :class:`~kelly.realtime.ringbuffer.SpscRing`, and iterating takes
    them out as they arrive, in real time.

:func:`parse_audio_in` turns the ``--audio-in`` option into one of them. soundfile and
sounddevice are imported only when a source is made.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kelly.emotion import audio as _audio
from kelly.errors import FileFormatError, InputError
from kelly.fileio import show_path

#: Largest block accepted (samples).
MAX_BLOCK = 1 << 17
#: Default number of blocks the device ring holds (0.68 s of 512-sample blocks at 48 kHz).
DEVICE_QUEUE_BLOCKS = 64
#: Seconds without a block from the device before iterating gives up.
DEVICE_STALL_SECONDS = 2.0
#: What to say when there is no sound card to listen to.
NO_DEVICE = "no audio input device found; use --audio-in FILE.wav"
#: File name endings that make ``--audio-in`` a file even when it does not exist.
_FILE_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".rf64", ".w64",
                  ".mp3")


class WavBlockSource:
    """Blocks of a sound file: mono float32, ``block`` samples each, the last zero-padded.

    The header is checked when the source is made (so a bad file fails at once, with the
    message :func:`~kelly.emotion.audio.load_audio` would give); each iteration opens the
    file again, decodes it block by block (memory: one block) and closes it at the end.

    Parameters
    ----------
    path : path
        A regular WAV, FLAC, OGG or AIFF file.
    block : int in [1, 131072]
        Samples per block (at the file's own rate).
    max_seconds : float ≥ 0.5, keyword-only
        Longest file accepted (default 1,200 s: 20 minutes), checked from the header and
        again while decoding.

    Attributes
    ----------
    path : Path
    sr : int
        The file's sample rate (Hz); not resampled.
    channels : int
        Channels in the file (averaged to mono).
    frames : int or None
        Samples per channel from the header (None when the header does not say).
    duration : float or None
        ``frames / sr`` seconds.
    block : int
    n_blocks : int or None
        Blocks an iteration yields: ``ceil(frames / block)``.
    format : str
        libsndfile's format name (``"WAV"``, ``"FLAC"`` …).

    Raises
    ------
    FileFormatError
        Missing file, folder or device, not audio, MP3, a corrupt header, an unsupported
        format, channel count or rate, shorter than 0.5 s or longer than ``max_seconds``;
        while iterating also corrupt data, NaN/infinite or absurd samples.
    InputError
        Invalid ``block`` or ``max_seconds``, or soundfile is not installed.

    Examples
    --------
    >>> for block in WavBlockSource("take.wav", 512):   # doctest: +SKIP
    ...     n = front_end.process(block)
    """

    def __init__(self, path: str | os.PathLike, block: int = 512, *,
                 max_seconds: float = _audio.MAX_SECONDS) -> None:
        self.block = _check_block(block)
        self.max_seconds = _audio._check_max_seconds(max_seconds)
        self.path = Path(path)
        self._shown = show_path(self.path)
        with self._open() as snd:
            self.sr = int(snd.samplerate)
            self.channels = int(snd.channels)
            self.format = str(snd.format)
            frames = int(snd.frames)
        known = frames < _audio._UNKNOWN_FRAMES
        self.frames = frames if known else None
        self.duration = frames / self.sr if known else None
        self.n_blocks = math.ceil(frames / self.block) if known else None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode the file from the start.

        Yields
        ------
        np.ndarray [shape=(block,), dtype=float32]
            A new array each time (the consumer may keep it): the channels averaged,
            full scale ±1; the last block padded with zeros.
        """
        shown, block, sr = self._shown, self.block, self.sr
        limit = int(self.max_seconds * sr)
        raw = np.empty((block, self.channels), dtype=np.float32)
        done = 0
        with self._open() as snd:
            while True:
                try:
                    got = snd.read(block, dtype="float32", always_2d=True, out=raw)
                except (RuntimeError, ValueError, OSError) as exc:
                    raise FileFormatError(f"{shown}: corrupt audio data between {done / sr:.2f} s and "
                                          f"{(done + block) / sr:.2f} s ({_audio._libsndfile_reason(exc)})") from None
                m = len(got)
                if m == 0:
                    break
                _check_samples(got, shown, done, sr)
                done += m
                if done > limit:
                    raise _audio._too_long(shown, done / sr, self.max_seconds, "while decoding")
                out = np.zeros(block, dtype=np.float32)
                if self.channels == 1:
                    out[:m] = got[:, 0]
                else:
                    np.mean(got, axis=1, dtype=np.float32, out=out[:m])
                yield out
                if m < block:
                    break
        if done == 0:
            raise FileFormatError(f"{shown}: holds no audio (0 samples could be decoded)")
        if done / sr < _audio.MIN_SECONDS:
            raise _audio._too_short(shown, done / sr)

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        """The file opened through libsndfile, its header checked; closed (descriptor too) on exit."""
        sf = _audio._soundfile()
        shown = self._shown
        fd = _audio._open_regular(self.path, shown)
        try:
            head = os.pread(fd, 16, 0)
            if _audio._looks_like_mp3(head):  # refused before libsndfile's MP3 decoder, which prints to stderr
                raise FileFormatError(f"{shown}: MP3 audio is not supported; convert it to WAV, FLAC or OGG")
            try:
                snd = sf.SoundFile(fd, closefd=False)
            except (RuntimeError, ValueError, TypeError, OSError) as exc:
                raise FileFormatError(_audio._open_problem(shown, head, exc)) from None
            with snd:
                _audio._check_header(shown, snd.format, int(snd.samplerate), int(snd.channels), int(snd.frames),
                                     self.max_seconds)
                yield snd
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing is held between iterations; here for symmetry with :class:`DeviceBlockSource`."""

    def __enter__(self) -> WavBlockSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        length = f"{self.duration:.2f} s" if self.duration is not None else "unknown length"
        return (f"WavBlockSource({self._shown!r}, block={self.block}, sr={self.sr}, channels={self.channels}, "
                f"{length})")


class DeviceBlockSource:
    """Blocks from a sound card, in real time, through sounddevice (PortAudio).

    PortAudio calls a callback on its own thread with each block; the callback averages the
    channels into a preallocated row and pushes it, with the index of its first sample as
    the stamp, into a :class:`~kelly.realtime.ringbuffer.SpscRing` (no lock, no
    allocation beyond PortAudio's own). Iterating pops the blocks on the consumer's
    thread as they arrive. The device is checked when the source is made; it records from
    the first iteration (or :meth:`start`) until :meth:`close`.

    Parameters
    ----------
    device : None, int or str
        None: the default input device; an int: a device index; a str: (part of) a device
        name, as ``python -m sounddevice`` lists them.
    sr : int in [4000, 384000]
        Sample rate to record at (Hz).
    block : int in [1, 131072]
        Samples per block (PortAudio's ``blocksize``).
    channels : int ≥ 1, keyword-only
        Channels to record (averaged to mono); default 1.
    queue_blocks : int ≥ 2, keyword-only
        Blocks the ring holds before new ones are dropped (default 64).

    Attributes
    ----------
    sr, block, channels : int
    device_name : str
        The device's name, as PortAudio gives it.
    dropped : int
        Blocks lost because the consumer fell behind and the ring was full.
    overflows : int
        Callbacks in which PortAudio reported an input overflow (samples lost before
        Kelly saw them).
    last_stamp : int or None
        Index (at ``sr``) of the first sample of the block last yielded: a jump of more
        than ``block`` means blocks were dropped in between.

    Raises
    ------
    InputError
        sounddevice or the PortAudio library is missing, there is no (such) input device,
        or the device cannot record ``channels`` channels at ``sr``.
    """

    def __init__(self, device: int | str | None = None, sr: int = 48000, block: int = 512, *,
                 channels: int = 1, queue_blocks: int = DEVICE_QUEUE_BLOCKS) -> None:
        self.sr = _check_int_rate(sr)
        self.block = _check_block(block)
        self.channels = _check_count(channels, "channels", 1, _audio.MAX_CHANNELS)
        queue_blocks = _check_count(queue_blocks, "queue_blocks", 2, 1 << 16)
        if device is not None and (isinstance(device, bool) or not isinstance(device, (int, str))):
            raise InputError(f"an audio input device is a name or an index, got {device!r}")
        self._sd = sd = _sounddevice()
        self.device, self.device_name = _find_input(sd, device)
        try:
            sd.check_input_settings(device=self.device, channels=self.channels, dtype="float32",
                                    samplerate=self.sr)
        except (sd.PortAudioError, ValueError) as exc:
            raise InputError(f"audio input {self.device_name!r} cannot record {self.channels} channel(s) at "
                             f"{self.sr:,} Hz ({_reason(exc)}); try another --sr or device") from None
        from kelly.realtime.ringbuffer import SpscRing

        self._ring = SpscRing(queue_blocks, self.block)
        self._mono = np.zeros(self.block, dtype=np.float32)  # written by the callback thread only
        self._next_stamp = 0  # callback thread only
        self.overflows = 0  # callback thread only
        self.last_stamp: int | None = None
        self._stream = None
        self._closed = threading.Event()

    # -- PortAudio's thread ------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            if getattr(status, "input_overflow", False):
                self.overflows += 1
        stamp = self._next_stamp
        self._next_stamp = stamp + frames
        if frames == self.block and self.channels == 1:
            self._ring.push(indata[:, 0], stamp)
            return
        mono = self._mono
        m = min(frames, self.block)  # PortAudio keeps to blocksize; be safe if it does not
        if self.channels == 1:
            mono[:m] = indata[:m, 0]
        else:
            np.mean(indata[:m], axis=1, dtype=np.float32, out=mono[:m])
        if m < self.block:
            mono[m:] = 0.0
        self._ring.push(mono, stamp)

    # -- the consumer's thread ---------------------------------------------------------

    def start(self) -> None:
        """Open the device and start recording (done by the first iteration otherwise)."""
        if self._stream is not None:
            return
        if self._closed.is_set():
            raise InputError("this audio input was closed; make a new DeviceBlockSource")
        sd = self._sd
        try:
            stream = sd.InputStream(samplerate=self.sr, blocksize=self.block, device=self.device,
                                    channels=self.channels, dtype="float32", latency="low",
                                    callback=self._callback)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise InputError(f"cannot record from audio input {self.device_name!r} ({_reason(exc)})") from None
        self._stream = stream

    def close(self) -> None:
        """Stop recording and release the device; an iteration in progress ends."""
        self._closed.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        """Blocks as they arrive, until :meth:`close`.

        Yields
        ------
        np.ndarray [shape=(block,), dtype=float32]
            A new array each time; the stamp of its first sample is :attr:`last_stamp`.

        Raises
        ------
        InputError
            The device stopped delivering audio for :data:`DEVICE_STALL_SECONDS`.
        """
        self.start()
        row = np.empty(self.block, dtype=np.float32)
        pause = min(0.002, self.block / self.sr / 4)
        waited_since = time.monotonic()
        while not self._closed.is_set():
            stamp = self._ring.pop(row)
            if stamp is None:
                if time.monotonic() - waited_since > DEVICE_STALL_SECONDS:
                    raise InputError(f"audio input {self.device_name!r} stopped delivering audio "
                                     f"(nothing for {DEVICE_STALL_SECONDS:g} s)")
                time.sleep(pause)
                continue
            waited_since = time.monotonic()
            self.last_stamp = stamp
            yield row.copy()

    @property
    def dropped(self) -> int:
        """Blocks lost because the ring was full (the consumer fell behind)."""
        return self._ring.dropped

    def __enter__(self) -> DeviceBlockSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DeviceBlockSource({self.device_name!r}, sr={self.sr}, block={self.block}, "
                f"channels={self.channels})")


def parse_audio_in(spec: str | os.PathLike, block: int = 512, sr: int = 48000, *,
                   max_seconds: float = _audio.MAX_SECONDS) -> WavBlockSource | DeviceBlockSource:
    """The source ``--audio-in SPEC`` names.

    Parameters
    ----------
    spec : str or path
        An existing path (or one ending in a sound-file suffix such as ``.wav``): a
        :class:`WavBlockSource`. Otherwise a sound card: ``""`` or ``"default"`` for the
        default input, digits for a device index, anything else (part of) a device name:
        a :class:`DeviceBlockSource`.
    block : int
        Samples per block.
    sr : int
        Rate to record a device at (Hz); a file keeps its own rate.
    max_seconds : float, keyword-only
        Longest file accepted (see :class:`WavBlockSource`).

    Returns
    -------
    WavBlockSource or DeviceBlockSource

    Raises
    ------
    FileFormatError, InputError
        As the source's constructor raises them (a missing file that looks like one is
        "no such file", not a device search).
    """
    if isinstance(spec, os.PathLike):
        return WavBlockSource(spec, block, max_seconds=max_seconds)
    if not isinstance(spec, str):
        raise InputError(f"--audio-in takes a sound file or an input device, got {spec!r}")
    text = spec.strip()
    looks_like_file = (os.sep in text or (os.altsep is not None and os.altsep in text)
                       or text.lower().endswith(_FILE_SUFFIXES))
    if text and (os.path.lexists(spec) or looks_like_file):
        return WavBlockSource(spec, block, max_seconds=max_seconds)
    if text.lower() in ("", "default"):
        device: int | str | None = None
    elif text.isdigit():
        device = int(text)
    else:
        device = text
    return DeviceBlockSource(device, sr, block)


# ---------------------------------------------------------------------------------------
# Checks and lazy imports
# ---------------------------------------------------------------------------------------


def _check_block(block: Any) -> int:
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= MAX_BLOCK:
        raise InputError(f"block must be an integer number of samples in [1, {MAX_BLOCK:,}], got {block!r}")
    return int(block)


def _check_count(x: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= x <= hi:
        raise InputError(f"{name} must be an integer in [{lo}, {hi:,}], got {x!r}")
    return int(x)


def _check_int_rate(sr: Any) -> int:
    rate = _audio._check_rate(sr, "sr")
    if not float(rate).is_integer():
        raise InputError(f"sr must be a whole number of Hz for a sound card, got {sr!r}")
    return int(rate)


def _check_samples(got: np.ndarray, shown: str, done: int, sr: int) -> None:
    """load_audio's sample checks: NaN/inf and absurd values make a file unusable."""
    peak = float(np.abs(got).max())
    if peak <= _audio.MAX_ABS_SAMPLE:
        return
    finite = np.isfinite(got)
    if not finite.all():
        first = int(np.argmin(finite.all(axis=1)))
        raise FileFormatError(f"{shown}: holds NaN or infinite samples (first at {(done + first) / sr:.3f} s); "
                              "it is not usable audio")
    raise FileFormatError(f"{shown}: holds samples of {peak:.3g}, far beyond full scale (±1); it is not usable audio")


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library itself is missing
        what = "the PortAudio library" if isinstance(exc, OSError) else "sounddevice"
        raise InputError(f"listening to a sound card needs {what}, which is not installed: "
                         "pip install 'kelly[live]' (and PortAudio, e.g. apt install libportaudio2); "
                         "or use --audio-in FILE.wav") from None
    return sounddevice


def _input_names(sd) -> list[str]:
    try:
        return [f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d.get("max_input_channels", 0) > 0]
    except Exception:  # listing is only a hint in an error message
        return []


def _find_input(sd, device: int | str | None) -> tuple[int | str | None, str]:
    """The device to open and its name; InputError when there is none."""
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        if device is None:
            raise InputError(NO_DEVICE) from None
        names = _input_names(sd)
        listed = f"; inputs: {', '.join(names)}" if names else "; there are no audio inputs"
        raise InputError(f"no audio input device {device!r} ({_reason(exc)}){listed}; "
                         "use --audio-in FILE.wav or another device") from None
    if not isinstance(info, dict) or info.get("max_input_channels", 0) < 1:
        if device is None:
            raise InputError(NO_DEVICE)
        raise InputError(f"audio device {device!r} has no inputs; use --audio-in FILE.wav or another device")
    index = info.get("index")
    return (index if isinstance(index, int) else device), str(info.get("name", device))
