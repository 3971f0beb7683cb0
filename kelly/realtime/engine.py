"""The real-time engine: audio, words, heart and hands in; live MIDI out, bar by bar.

Threads and what each may do
----------------------------
* **audio path**: with an :class:`~kelly.realtime.audio_process.AudioProcess` (``kelly
  engine --audio-in`` in real time) it runs in a child process of its own, which reads the
  file or sound card itself and hands its frames over through a ring in shared memory, so
  that neither the GIL nor the composer can make it late (see that module). Otherwise
  (``--fast``, ``--no-audio-process``) it is :meth:`Engine.process_block`, called once per
  block by the run loop. Either way: the lookahead delay line, the streaming mel front-end
  (:class:`~kelly.realtime.frontend.MelFrontEnd`, preallocated buffers) and a push of each
  new mel frame into a single-producer single-consumer ring
  (:class:`~kelly.realtime.ringbuffer.SpscRing`). No locks, no waiting, no file or
  socket I/O: a full ring drops the frame and counts it. Each block's processing time
  is recorded against its budget (``block / sr``: 10.67 ms for 512 samples at 48 kHz).
* **inference thread**: takes the waiting frames out of the ring as a chunk (up to
  :data:`CHUNK_FRAMES`) and runs the five networks over it
  (:class:`~kelly.realtime.chunked.ChunkedPipeline`: one matrix product per dense layer
  and LSTM input projection, only the recurrence frame by frame; a lone frame goes
  through :meth:`~kelly.ml.processor.MultiModelProcessor.pipeline_step`, the same numbers
  within float32 rounding), so it keeps up with well over 10,000 frames a second on one
  core; the int8 path (``--runtime int8``) still runs frame by frame. It
  resets the recognizer's LSTM every :data:`~kelly.emotion.audio.RECOGNIZER_WINDOW`
  frames as it was trained and leaves the :data:`~kelly.emotion.audio.RECOGNIZER_BURN_IN`
  frames after a reset, and silent frames, out of the reading; the reading is smoothed
  (alpha 0.1 per frame, as in the seed plugin) and becomes the ``audio`` source. Model
  loads and switches asked over the socket run here, between two chunks, so the
  networks never change under a running step. About once a second it also looks at the
  loaded model files (:meth:`Engine.check_model_files`): a file deleted or replaced by
  one that does not load puts its network on the fallback heuristic, a file replaced by
  a valid model is loaded again, and either is said in the state's warnings.
  numpy's BLAS is held to one thread in an engine process
  (:func:`limit_blas_threads`): these matrices are small, and a second BLAS thread on a
  busy machine made every step wait for it (10 times slower measured on 2 cores), and
  the GIL's switch interval is lowered to :data:`SWITCH_INTERVAL_S` so that the audio path
  waits less for the GIL while socket connections are busy, and the heap loaded at start
  is frozen out of the garbage collector's full passes (:func:`_freeze_heap`).
* **music** (:meth:`Engine.tick`, in the run loop): feeds the biometrics replay, fuses
  the sources by confidence (:func:`kelly.emotion.fusion.fuse`) and advances the
  :class:`~kelly.realtime.live.BarScheduler`, which composes a phrase when the emotion
  has moved and plays it through a :class:`~kelly.realtime.midi_out.NoteTracker`.
* **control** (the socket server's threads): the :class:`kelly.ipc.server.EngineControl`
  methods; they touch the sources under a lock and hand model changes to the inference
  thread.

Clocks
------
``audio``: the engine's time is the count of samples processed (a WAV file or device);
``internal``: a monotonic clock (no audio in); ``external``: a DAW's MIDI clock sets
tempo and position (:class:`~kelly.realtime.clock.ClockFollower`). With ``sync=True``
(``kelly engine --fast``) a WAV file is processed as fast as the machine allows and each
block waits for the inference thread to catch up, so the same file and seed give the
same MIDI, byte for byte.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from kelly.emotion.state import EmotionState
from kelly.errors import InputError, KellyError, ModelError

#: Where the engine writes the MIDI files asked for over the socket (GenerateMIDI), by default.
DEFAULT_OUT_DIR = Path("kelly-out") / "engine"
#: Mel frames the ring between the audio path and the inference thread holds (23.8 s at 43 frames/s).
RING_FRAMES = 1024
#: Block durations kept for the statistics (the last this many blocks).
TIMING_WINDOW = 1 << 16
#: A mel frame whose every band is below this normalised level (-60 dBFS) is silence.
SILENT_FRAME = 0.25
#: How often the fused emotion is written to :attr:`Engine.trace` (engine seconds), and how many entries it keeps.
TRACE_EVERY_S = 0.1
TRACE_KEEP = 100_000
#: Sources the engine fuses, in the order the state lists them.
SOURCES = ("audio", "text", "biometrics", "explicit")
#: Most mel frames the inference thread takes from the ring and runs as one chunk.
CHUNK_FRAMES = 128
#: Seconds between two looks at the loaded model files (on the inference thread).
MODEL_CHECK_S = 1.0
#: The GIL switch interval an engine process runs with (Python's default is 5 ms). The audio
#: path's numpy calls release the GIL and must take it back, and a thread asking for it waits
#: up to one interval per hand-over while another thread (a socket connection, the inference
#: thread) holds it. With 32 socket clients asking at once, ``make soak`` measured the audio
#: path's over-budget blocks (10.67 ms) spending on average 22.6 of 27 ms waiting for the
#: GIL at 5 ms; at 0.5 ms, 8 of 20 ms, the rest waiting for a CPU on a loaded 2-core machine
#: (``/proc/thread-self/schedstat``). The price is more hand-overs for the other threads.
SWITCH_INTERVAL_S = 0.0005


def limit_blas_threads() -> str:
    """Run numpy's BLAS on one thread in this process; says what was done.

    The networks' products are small (at most a 256-row chunk by 1,024 columns): a second
    BLAS thread only adds a hand-over per call, and on a machine whose other core is busy
    (the audio path, the socket, another program) each call waits for that thread to be
    scheduled. Measured on 2 cores: 640 frames/s frame by frame with OpenBLAS's default
    of 2 threads, 9,200 with one. Uses threadpoolctl (installed with the ``audio`` extra);
    without it, set ``OPENBLAS_NUM_THREADS=1`` before starting.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "BLAS threads left as they are (threadpoolctl not installed; set OPENBLAS_NUM_THREADS=1)"
    threadpool_limits(limits=1, user_api="blas")
    return "BLAS on one thread"


@dataclass(frozen=True)
class EngineConfig:
    """How an engine runs (the ``kelly engine`` options)."""

    sr: int = 48000
    block: int = 512
    lookahead: int | None = None        # samples; None: the front-end's own latency
    alpha: float = 0.1                   # smoothing of the audio reading, per frame
    seed: int = 0
    phrase_bars: int = 8
    threshold: float = 0.2
    complexity: float = 0.5
    models_dir: str | None = None
    out_dir: str | os.PathLike = DEFAULT_OUT_DIR
    ring_frames: int = RING_FRAMES
    sync: bool = False
    start_emotion: str = "calm"
    runtime: str = "numpy"               # the inference thread's path: "numpy" or "int8" (onnxruntime)

    def check(self) -> None:
        if not isinstance(self.sr, int) or not 4000 <= self.sr <= 384000:
            raise InputError(f"--sr must be a whole number of Hz from 4000 to 384000, got {self.sr!r}")
        if not isinstance(self.block, int) or not 16 <= self.block <= 8192:
            raise InputError(f"--block must be a whole number of samples from 16 to 8192, got {self.block!r}")
        if self.lookahead is not None and (not isinstance(self.lookahead, int) or not 0 <= self.lookahead <= 96000):
            raise InputError(f"--lookahead must be a whole number of samples from 0 to 96000, got {self.lookahead!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise InputError(f"--alpha must be in (0, 1], got {self.alpha!r}")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"--seed must be from 0 to {2**32 - 1}, got {self.seed!r}")
        if not 0.0 <= self.complexity <= 1.0:
            raise InputError(f"--complexity must be between 0 and 1, got {self.complexity!r}")
        if self.runtime not in ("numpy", "int8"):
            raise InputError(f"--runtime must be numpy or int8, got {self.runtime!r}")


@dataclass
class SourceReading:
    """One source's latest emotion, with when it spoke (engine seconds)."""

    valence: float
    arousal: float
    dominance: float
    confidence: float
    time_s: float
    intensity: float = 0.5
    label: str | None = None


@dataclass
class BlockTimes:
    """Processing time of the audio path per block (seconds), preallocated."""

    budget_s: float
    times: np.ndarray = field(default_factory=lambda: np.zeros(TIMING_WINDOW, dtype=np.float64))
    count: int = 0
    overruns: int = 0
    worst_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.times[self.count % len(self.times)] = seconds
        self.count += 1
        if seconds > self.worst_s:
            self.worst_s = seconds
        if seconds > self.budget_s:
            self.overruns += 1

    def recorded(self) -> np.ndarray:
        return self.times[:min(self.count, len(self.times))]

    def summary(self) -> dict[str, float]:
        t = self.recorded()
        if not len(t):
            return {"blocks": 0}
        return {"blocks": self.count, "median_ms": float(np.median(t) * 1e3),
                "p99_ms": float(np.percentile(t, 99) * 1e3), "max_ms": float(self.worst_s * 1e3),
                "budget_ms": self.budget_s * 1e3, "overruns": self.overruns}


def _warm_text_reader() -> None:
    """Load the text reader's tables (lexicon, clues) now, before any SetText can arrive.

    Loaded on first use, they cost about 0.1 s of decoding, much of it holding the GIL
    (``make bench``: lexicon 54 ms, first reading 41 ms), several times the audio path's
    10.67 ms budget; when 32 first SetTexts raced to decode them, blocks were 80 ms to
    1.2 s late. Loading them here, before engine time 0, keeps that out of the live run. (That they are decoded only
    once however many threads ask at once is :func:`kelly.emotion.lexicon.computed_once`.)
    """
    from kelly.emotion.text import read_text

    read_text("warming up: calm and hopeful")


def _freeze_heap() -> None:
    """Move everything loaded so far out of the cyclic garbage collector's sight (:func:`gc.freeze`).

    The engine's process holds ~180,000 long-lived objects once it runs (the thesaurus,
    the text reader's tables, the composer's data, numpy and pydantic themselves). A full
    collection walks all of them while holding the GIL: 159 ms measured here, fifteen times
    the audio path's budget, and the socket threads' allocations trigger one every so
    often. Frozen after start-up, a full collection walks only what was made since.
    """
    gc.collect()
    gc.freeze()


def _file_signature(path: Path) -> tuple | None:
    """What identifies a file's content cheaply (``lstat``: a symlink is seen as one): None when it is gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode


def _nearest(v: float, a: float, d: float):
    from kelly.emotion.thesaurus import load_thesaurus

    return load_thesaurus().nearest(v, a, d)


class Engine:
    """A running Kelly: see the module docstring for its threads and clocks.

    Parameters
    ----------
    config : EngineConfig
    sink : MidiSink or None
        Where the MIDI goes (``kelly.realtime.midi_out.open_midi_out``); None plays to
        nowhere (the state and GenerateMIDI still work).
    clock : {"audio", "internal", "external"}
    follower : ClockFollower, optional
        Required for ``clock="external"``.
    biometrics : optional
        A list of :class:`kelly.emotion.bio.BioSample` to replay on the engine clock, or
        a live listener with ``latest()`` (:class:`kelly.emotion.bio.OscBioListener`).
    audio_process : kelly.realtime.audio_process.AudioProcess, optional
        Run the audio path in a process of its own, reading that source (``clock="audio"``
        or ``"external"``, not with ``config.sync``); :meth:`run` then takes no blocks. See
        :mod:`kelly.realtime.audio_process` for why.
    """

    def __init__(self, config: EngineConfig = EngineConfig(), *, sink=None, clock: str = "internal", follower=None,
                 biometrics=None, composer: str = "rules", audio_process=None) -> None:
        from kelly.composer import get_composer
        from kelly.emotion.fusion import EmotionSmoother
        from kelly.emotion.thesaurus import state_for
        from kelly.emotion.audio import N_MELS
        from kelly.ml.processor import MultiModelProcessor
        from kelly.realtime.frontend import MelFrontEnd
        from kelly.realtime.live import ExternalTransport, InternalTransport, BarScheduler, LiveComposer
        from kelly.realtime.lookahead import LookaheadBuffer
        from kelly.realtime.midi_out import NoteTracker
        from kelly.realtime.ringbuffer import SpscRing

        config.check()
        if clock not in ("audio", "internal", "external"):
            raise InputError(f"clock must be audio, internal or external, got {clock!r}")
        if clock == "external" and follower is None:
            raise InputError("an external clock needs a MIDI clock input (--clock-in PORT)")
        self.config = config
        self.clock = clock
        self.sink = sink
        # -- audio path (preallocated): here, or in the audio process (which builds its own front-end) --
        self._samples = 0
        self.audio_process = audio_process
        self.frontend = self.lookahead = None
        if audio_process is None:
            self.frontend = MelFrontEnd(config.sr, config.block)
            lookahead = self.frontend.latency_samples if config.lookahead is None else config.lookahead
            self.lookahead = LookaheadBuffer(lookahead, config.block)
            self.ring = SpscRing(config.ring_frames, N_MELS)
            self.block_times = BlockTimes(budget_s=config.block / config.sr)
        else:
            if clock == "internal":
                raise InputError("an audio process plays an audio input: use the audio clock (or a DAW's, external)")
            if config.sync:
                raise InputError("a synchronised run (--fast) processes the audio in the engine's own process")
            audio_process.prepare(sr=config.sr, block=config.block, lookahead=config.lookahead,
                                  ring_frames=config.ring_frames, width=N_MELS)
            self.ring = audio_process.ring
            self.block_times = audio_process.block_times
        # -- inference --
        self._infer_proc = MultiModelProcessor(config.models_dir)
        self._int8 = None
        self._chunked = None
        self.runtime_note = "numpy"
        self._rebuild_paths()
        self._chunk = np.zeros((CHUNK_FRAMES, N_MELS), dtype=np.float32)
        self._chunk_stamps = np.zeros(CHUNK_FRAMES, dtype=np.int64)
        self.blas_note = ""  # set when the inference thread starts (limit_blas_threads)
        self._smoother = EmotionSmoother(config.alpha)
        self.frames_done = 0
        self.frames_heard = 0
        self._ops: list[tuple[Callable[[], Any], threading.Event, list]] = []
        self._ops_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # -- emotion sources --
        self._lock = threading.RLock()
        start = state_for(config.start_emotion)
        self._sources: dict[str, SourceReading] = {}   # text, biometrics, explicit (under self._lock)
        self._audio: SourceReading | None = None        # written by the inference thread only
        self._default = SourceReading(start.valence, start.arousal, start.dominance, 0.0, 0.0, start.intensity,
                                      start.label)
        self._bio_replay = None
        self._bio_live = None
        if isinstance(biometrics, (list, tuple)):
            from kelly.emotion.bio import BioReplay

            self._bio_replay = BioReplay(list(biometrics))
        elif biometrics is not None:
            self._bio_live = biometrics
        self._bio_warnings: list[str] = []
        self._seq = itertools.count(1)
        self.seq = 0
        self.now_s = 0.0
        # -- music --
        self._compose_proc = MultiModelProcessor(config.models_dir)
        # -- the loaded model files, watched (key -> (path, signature when loaded)); messages per key
        self._watched: dict[str, tuple[Path, tuple | None]] = {}
        self._model_warnings: dict[str, str] = {}
        self._next_model_check = 0.0
        self.model_checks = 0
        for key, info in self._infer_proc.status()["models"].items():
            if info["path"]:
                self._watched[key] = (Path(info["path"]), _file_signature(Path(info["path"])))
        self._composer = get_composer(composer)
        self._compose_lock = threading.Lock()
        self.tracker = NoteTracker(sink) if sink is not None else None
        live = LiveComposer(self._compose_song, seed=config.seed, phrase_bars=config.phrase_bars,
                            threshold=config.threshold)
        self._t0 = time.monotonic()
        transport = ExternalTransport(follower, self.clock_now) if clock == "external" else InternalTransport(120.0)
        self._acc = np.zeros(6)       # time, then time-weighted V, A, D, intensity, confidence of this bar
        self._acc_t = 0.0
        self._asked: str | None = None  # a deliberate change waiting for the next bar line
        self._trace_t = -math.inf
        self.trace: list[tuple] = []  # (time, V, A, D, confidence, label) every TRACE_EVERY_S
        self.scheduler = BarScheduler(self.tracker, live, self.bar_state, transport) if self.tracker else None
        self.live = live
        self.running = False
        self.note_ons = 0              # notes played (kept when the tracker closes)
        self._generated = 0
        self._virtual = False          # an internal clock stepped by run(realtime=False)
        self._stop_requested = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Engine":
        """Start the inference thread."""
        if self._thread is None:
            self.blas_note = limit_blas_threads()
            if sys.getswitchinterval() > SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            _warm_text_reader()
            _freeze_heap()
            if self.clock == "internal" and not self.running:
                self._t0 = time.monotonic()  # engine time 0 (bar 1) is when it starts, not when it was built
            self._stop.clear()
            self._thread = threading.Thread(target=self._inference_loop, name="kelly-inference", daemon=True)
            self._thread.start()
            self.running = True
            if self.audio_process is not None:
                try:
                    self.audio_process.start()
                except BaseException:
                    self.stop()
                    raise
        return self

    def stop(self) -> None:
        """Stop: all notes off, MIDI closed, the inference thread joined. Safe to call twice."""
        if not self.running and self._thread is None and self.tracker is None:
            return
        self.running = False
        if self.audio_process is not None:
            self.audio_process.stop()  # first: no frame is pushed after the inference thread stops
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
            gc.unfreeze()  # what start() froze may be collected again (and is, at exit)
        if self.tracker is not None:
            if self.scheduler is not None:
                self.scheduler.stop(self.now_s)
            self.tracker.close(self.now_s)
            self.note_ons = self.tracker.note_ons
            self.tracker = None
        self._bump()

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def clock_now(self) -> float:
        """Seconds on the engine clock: samples processed (audio clock) or since start."""
        if self.clock == "audio":
            return self.samples / self.config.sr
        if self._virtual:
            return self.now_s
        return time.monotonic() - self._t0

    # ------------------------------------------------------------------ audio path
    @property
    def samples(self) -> int:
        """Samples the audio path has processed (here or in the audio process): the audio clock."""
        return self.audio_process.samples if self.audio_process is not None else self._samples

    @property
    def bad_blocks(self) -> int:
        """Blocks whose NaN or infinite samples the front-end replaced by silence."""
        return self.audio_process.bad_blocks if self.audio_process is not None else self.frontend.bad_blocks

    def process_block(self, block: np.ndarray) -> int:
        """The audio thread's work for one block; returns the mel frames handed to inference.

        ``block`` : float32 [shape=(n,)], n ≤ ``config.block``, at ``config.sr``. A block
        with NaN or infinite samples is replaced by silence and counted (``bad_blocks``);
        the analysis never sees it.
        """
        if self.audio_process is not None:
            raise KellyError("this engine's audio path runs in its own process; it takes no blocks here")
        t0 = time.perf_counter()
        self.lookahead.process(block)
        n = self.frontend.process(block)  # NaN/inf samples become silence there (counted: frontend.bad_blocks)
        frames = self.frontend.frames
        first = self.frontend.frame_index
        ring = self.ring
        for i in range(n):
            ring.push(frames[i], first + i)
        self._samples += len(block)
        self.block_times.add(time.perf_counter() - t0)
        if self.config.sync:
            self.wait_idle()
        return n

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the inference thread has processed every frame pushed so far."""
        target = self.ring.pushed
        deadline = time.monotonic() + timeout
        while self.frames_done < target and self._thread is not None:
            if time.monotonic() > deadline:
                raise KellyError("the inference thread did not keep up (waited 10 s)")
            time.sleep(0.0001)

    # ------------------------------------------------------------------ inference thread
    def _inference_loop(self) -> None:
        from kelly.emotion.audio import RECOGNIZER_BURN_IN, RECOGNIZER_WINDOW
        from kelly.ml import schema

        proc, ring, smoother = self._infer_proc, self.ring, self._smoother
        chunk, stamps = self._chunk, self._chunk_stamps
        cols = [schema.I_VALENCE, schema.I_AROUSAL, schema.I_DOMINANCE, schema.I_CONFIDENCE, schema.I_INTENSITY]
        hop_s = 512 / 22050.0
        idle = 0
        while not self._stop.is_set():
            if self._ops:
                self._run_ops()
            if time.monotonic() >= self._next_model_check:
                self._check_model_files_here()
            n = ring.pop_many(chunk, stamps)
            if n == 0:
                idle += 1
                time.sleep(0.0002 if idle < 50 else 0.001)
                continue
            idle = 0
            i = 0
            while i < n:  # split where the recognizer's window starts again (its LSTM is reset there)
                k = self.frames_done % RECOGNIZER_WINDOW
                if k == 0:
                    proc.reset()
                    if self._int8 is not None:
                        self._int8.reset()
                m = min(n - i, RECOGNIZER_WINDOW - k)
                mels = chunk[i:i + m]
                emb = self._embed(mels)
                heard = np.flatnonzero(mels.max(axis=1) >= SILENT_FRAME)
                heard = heard[heard >= RECOGNIZER_BURN_IN - k]
                if len(heard):
                    reading = None
                    for j, (v, a, d, conf, inten) in zip(heard.tolist(), emb[heard][:, cols].tolist()):
                        v, a, d = smoother.update(v, a, d)
                        reading = (v, a, d, min(1.0, max(0.0, conf)), int(stamps[i + j]) * hop_s,
                                   min(1.0, max(0.0, inten)))
                    # one attribute store (atomic): the inference thread takes no lock the control threads hold
                    self._audio = SourceReading(*reading)
                    self.frames_heard += len(heard)
                self.frames_done += m
                i += m
        self._run_ops()

    def _embed(self, mels: np.ndarray) -> np.ndarray:
        """The recognizer's embedding of each frame [shape=(T, 64)] (the other four networks run too)."""
        int8 = self._int8
        if int8 is not None:  # onnxruntime, one frame at a time
            out = np.empty((len(mels), 64), dtype=np.float32)
            for t in range(len(mels)):
                out[t] = int8.step(mels[t])
            return out
        if len(mels) == 1:
            return self._infer_proc.pipeline_step(mels[0])[0][None, :]
        return self._chunked.run(mels)[0]

    def _rebuild_paths(self) -> None:
        """After a model change: the chunked pipeline and (with ``--runtime int8``) the int8 graph again."""
        from kelly.realtime.chunked import ChunkedPipeline

        self._chunked = ChunkedPipeline(self._infer_proc, CHUNK_FRAMES)
        self._rebuild_int8()

    def _rebuild_int8(self) -> None:
        """(Re)build the int8 graph from the networks now loaded; the numpy path when it cannot be."""
        if self.config.runtime != "int8":
            return
        from kelly.realtime.int8 import Int8Pipeline

        try:
            self._int8 = Int8Pipeline(self._infer_proc)
            self.runtime_note = "int8 (onnxruntime, harmony network in float32)"
        except KellyError as exc:
            self._int8 = None
            self.runtime_note = f"numpy: the int8 path is off because {exc}"

    def _run_ops(self) -> None:
        with self._ops_lock:
            ops, self._ops = self._ops, []
        for fn, done, result in ops:
            try:
                result.append(fn())
            except BaseException as exc:  # handed back to the caller, which raises it
                result.append(exc)
            done.set()

    def _on_inference_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` between two frames on the inference thread (inline when it is not running)."""
        if self._thread is None or not self._thread.is_alive():
            return fn()
        done, result = threading.Event(), []
        with self._ops_lock:
            self._ops.append((fn, done, result))
        if not done.wait(5.0):
            raise KellyError("the inference thread did not answer within 5 s")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    # ------------------------------------------------------------------ music
    def tick(self, time_s: float | None = None) -> None:
        """Advance the music to ``time_s`` (engine seconds; default: the clock now)."""
        t = self.clock_now() if time_s is None else float(time_s)
        self.now_s = t
        if self._bio_replay is not None:
            self._feed_bio(t)
        elif self._bio_live is not None:
            self._poll_bio(t)
        self._accumulate(t)
        if self.scheduler is not None:
            self.scheduler.advance(t)

    def _feed_bio(self, t: float) -> None:
        self._take_bio(self._bio_replay.reading_at(t), t)

    def _poll_bio(self, t: float) -> None:
        reading = self._bio_live.latest()
        if reading is not None:
            self._take_bio(reading, t)

    def _take_bio(self, reading, t: float) -> None:
        """The biometric source: the reader's latest (its confidence already fades with the sensors' age)."""
        self._bio_warnings = list(reading.warnings)
        with self._lock:
            if reading.confidence > 0:
                self._sources["biometrics"] = SourceReading(reading.valence, reading.arousal, reading.dominance,
                                                            reading.confidence, t, reading.intensity)
            else:
                self._sources.pop("biometrics", None)

    def _readings(self) -> dict[str, SourceReading]:
        """Every source's latest reading (call with ``self._lock`` held)."""
        out = dict(self._sources)
        audio = self._audio
        if audio is not None:
            out["audio"] = audio
        return out

    def _fused(self):
        """The sources fused by confidence now (a FusedEmotion), or None when none speaks."""
        from kelly.emotion.fusion import SourceReading as FusionInput, fuse

        now = self.clock_now()
        with self._lock:
            readings = {name: FusionInput(valence=r.valence, arousal=r.arousal, dominance=r.dominance,
                                          confidence=r.confidence, intensity=r.intensity,
                                          age_s=0.0 if name == "biometrics" else max(0.0, now - r.time_s))
                        for name, r in self._readings().items()}
        fused = fuse(readings) if readings else None
        return fused if fused is not None and fused.confidence > 0 and fused.label is not None else None

    def _state(self, v: float, a: float, d: float, intensity: float, confidence: float) -> EmotionState:
        entry = _nearest(v, a, d)
        return EmotionState(label=entry.name, family=entry.family, valence=float(min(1.0, max(-1.0, v))),
                            arousal=float(min(1.0, max(0.0, a))), dominance=float(min(1.0, max(0.0, d))),
                            intensity=float(min(1.0, max(0.0, intensity))),
                            confidence=float(min(1.0, max(0.0, confidence))), source="live")

    def fused_state(self) -> EmotionState:
        """The emotion the sources say now, fused by confidence (the start emotion while none speaks)."""
        fused = self._fused()
        if fused is None:
            d = self._default
            return self._state(d.valence, d.arousal, d.dominance, d.intensity, 0.0)
        return self._state(fused.valence, fused.arousal, fused.dominance, fused.intensity, fused.confidence)

    def _accumulate(self, t: float) -> None:
        """Add the fused emotion now to the running bar average (weighted by the time it held)."""
        fused = self._fused()
        dt = max(0.0, t - self._acc_t)
        self._acc_t = t
        if fused is None or dt <= 0:
            return
        acc = self._acc
        acc[0] += dt
        acc[1] += dt * fused.valence
        acc[2] += dt * fused.arousal
        acc[3] += dt * fused.dominance
        acc[4] += dt * fused.intensity
        acc[5] += dt * fused.confidence
        if t - self._trace_t >= TRACE_EVERY_S:
            self._trace_t = t
            self.trace.append((round(t, 3), round(fused.valence, 4), round(fused.arousal, 4),
                               round(fused.dominance, 4), round(fused.confidence, 4), fused.label))
            del self.trace[:-TRACE_KEEP]

    def bar_state(self) -> tuple[EmotionState, str | None]:
        """What the next bar follows, and why it must start a new phrase (None: only if it moved enough).

        Normally the emotion of the bar that just ended (the fused emotion averaged over
        time), which keeps the frame-to-frame jitter of the audio reading out of the music.
        After a deliberate change (SetEmotion, SetText) the emotion now, and a new phrase.
        """
        acc = self._acc
        asked, self._asked = self._asked, None
        if asked is not None or acc[0] <= 0:
            state = self.fused_state()
        else:
            w = acc[0]
            state = self._state(acc[1] / w, acc[2] / w, acc[3] / w, acc[4] / w, acc[5] / w)
        acc[:] = 0.0
        return state, asked

    @property
    def warnings(self) -> list[str]:
        """What the user should know: the biometric sensors' problems, then the model files' changes."""
        return list(self._bio_warnings) + [self._model_warnings[k] for k in sorted(self._model_warnings)]

    # ------------------------------------------------------------------ the model files under a running engine
    def check_model_files(self) -> list[str]:
        """Look at every loaded model file now (the inference thread does this about once a second).

        A file is recognised by its inode, device, size, modification time and type
        (``lstat``, never followed), noted when it was loaded. When that changes:

        * the file is gone: its network switches to the fallback heuristic;
        * it is there but does not load (truncated, garbage, the wrong network, weights
          too large, or now a symlink leading out of the models folder): fallback too,
          with the reason;
        * it loads: the new weights replace the old ones (hot reload) on both the audio
          analysis and the composer.

        Each change is said in :attr:`warnings` (and so in ``kelly ctl state``) and in the
        network's status. The audio path is never touched: this runs on the inference
        thread between two chunks, and frames wait in the ring meanwhile. Returns the
        messages of the changes seen by this call.
        """
        if self._thread is not None and self._thread.is_alive() and threading.current_thread() is not self._thread:
            return self._on_inference_thread(self._check_model_files_here)
        return self._check_model_files_here()

    def _check_model_files_here(self) -> list[str]:
        """The work of :meth:`check_model_files`, on the thread that owns the inference processor."""
        self._next_model_check = time.monotonic() + MODEL_CHECK_S
        self.model_checks += 1
        said = []
        for key, (path, seen) in list(self._watched.items()):
            now = _file_signature(path)
            if now == seen:
                continue
            self._watched[key] = (path, now)
            try:
                said.append(self._model_file_changed(key, path, now))
            except Exception as exc:  # noqa: BLE001 - the engine must keep running whatever the file does
                self._model_warnings[key] = f"{key}: could not handle the change of {path.name}: {exc}"
                said.append(self._model_warnings[key])
        if said:
            self._bump()
        return said

    def _model_file_changed(self, key: str, path: Path, signature: tuple | None) -> str:
        from kelly.ml.processor import safe_model_path

        stamp = time.strftime("%H:%M:%S")
        if signature is None:
            reason = f"{path.name} was deleted at {stamp}"
            message = f"{key}: its model file {path.name} was deleted at {stamp}; running on the fallback heuristic"
        else:
            try:
                safe_model_path(path.parent, path.name)
                self._infer_proc.load_model_file(key, path)  # checked first: a bad file changes nothing
            except KellyError as exc:
                reason = f"{path.name} changed at {stamp} and cannot be used: {exc}"
                message = f"{key}: its model file {path.name} changed at {stamp} and cannot be used ({exc}); " \
                          "running on the fallback heuristic"
            else:
                self._rebuild_paths()
                with self._compose_lock:
                    try:
                        self._compose_proc.load_model_file(key, path)
                    except KellyError as exc:  # changed again in between: the composer falls back, says why
                        self._compose_proc.unload(key, f"{path.name} changed at {stamp} and cannot be used: {exc}")
                message = f"{key}: its model file {path.name} changed at {stamp}; the new weights were loaded"
                self._model_warnings[key] = message
                return message
        self._infer_proc.unload(key, reason)
        self._rebuild_paths()
        with self._compose_lock:
            self._compose_proc.unload(key, reason)
        self._model_warnings[key] = message
        return message

    def _compose_song(self, emotion: EmotionState, bars: int, seed: int):
        from kelly.composer import ComposeOptions

        with self._compose_lock:
            hints = self._compose_proc.hints_for_emotion(emotion)
            opts = ComposeOptions(bars=bars, seed=seed, complexity=self.config.complexity)
            return self._composer.compose(emotion, opts, controls=hints).song

    def _bump(self) -> None:
        self.seq = next(self._seq)

    # ------------------------------------------------------------------ control (kelly.ipc.server.EngineControl)
    def set_emotion(self, valence: float, arousal: float, dominance: float = 0.5) -> None:
        for name, x, lo, hi in (("valence", valence, -1, 1), ("arousal", arousal, 0, 1), ("dominance", dominance, 0, 1)):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not lo <= x <= hi:
                raise InputError(f"{name} must be a number in [{lo}, {hi}], got {x!r}")
        now = self.clock_now()
        with self._lock:
            self._sources["explicit"] = SourceReading(float(valence), float(arousal), float(dominance), 1.0, now,
                                                      0.6, None)
            self._asked = "asked (SetEmotion)"
        self._bump()

    def set_text(self, text: str) -> str:
        from kelly.emotion.text import read_text

        state = read_text(text)
        now = self.clock_now()
        with self._lock:
            self._sources["text"] = SourceReading(state.valence, state.arousal, state.dominance, state.confidence,
                                                  now, state.intensity, state.label)
            self._asked = f"asked (text: {state.label})"
        self._bump()
        return f"read as {state.label} (valence {state.valence:+.2f}, arousal {state.arousal:.2f}, " \
               f"confidence {state.confidence:.2f})"

    def models_folder(self) -> Path:
        """The one folder LoadModel reads from: ``--models-dir``, else the user's models folder."""
        from kelly.ml.processor import default_search_path

        if self.config.models_dir is not None:
            return Path(self.config.models_dir).expanduser()
        return default_search_path(None)[-2]  # $XDG_DATA_HOME/kelly/models

    def load_model(self, path: str) -> str:
        from kelly.ml.processor import _load_checked, safe_model_path
        from kelly.ml.specs import MODEL_KEYS

        folder = self.models_folder()
        if not isinstance(path, str) or not path:
            raise InputError("LoadModel needs a file name inside the models folder")
        name = path
        # a path that names the models folder itself is accepted, anything else must be a plain name
        if os.sep in path or (os.altsep and os.altsep in path):
            p = Path(path).expanduser()
            if p.is_absolute() and p.parent.resolve() == folder.resolve():
                name = p.name
            else:
                raise ModelError(f"LoadModel reads only from the models folder {folder}: give a file name, "
                                 f"not {path!r}")
        target = safe_model_path(folder, name)
        stem = name.lower()
        key = next((k for k in MODEL_KEYS if stem.startswith(k)), None)
        if key is None:
            raise ModelError(f"cannot tell which network {name!r} is: the file name must start with one of "
                             f"{', '.join(MODEL_KEYS)}")
        if not target.is_file():
            raise ModelError(f"no model file {name!r} in the models folder {folder}")
        signature = _file_signature(target)  # before reading: a change while it loads is seen at the next look
        _load_checked(target, key)  # refuse a bad file here, before anything changes

        def swap() -> None:
            self._infer_proc.load_model_file(key, target)
            self._rebuild_paths()
            self._watched[key] = (target, signature)
            self._model_warnings.pop(key, None)

        self._on_inference_thread(swap)
        with self._compose_lock:
            self._compose_proc.load_model_file(key, target)
        self._bump()
        return key

    def set_model_enabled(self, model: str, enabled: bool) -> None:
        from kelly.ml.specs import get_spec

        key = get_spec(model).key  # an unknown name is a KellyError naming the five
        self._on_inference_thread(lambda: (self._infer_proc.set_enabled(key, enabled), self._rebuild_paths()))
        with self._compose_lock:
            self._compose_proc.set_enabled(key, enabled)
        self._bump()

    def generate_midi(self, bars: int) -> str:
        from kelly.composer import ComposeOptions

        if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= 512:
            raise InputError(f"bars must be a whole number from 1 to 512, got {bars!r}")
        state = self.fused_state()
        with self._compose_lock:
            hints = self._compose_proc.hints_for_emotion(state)
            self._generated += 1
            seed = (self.config.seed + 1000 + self._generated) % 2**32
            song = self._composer.compose(state, ComposeOptions(bars=bars, seed=seed,
                                                                complexity=self.config.complexity),
                                          controls=hints).song
        folder = Path(self.config.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        from kelly.fileio import write_bytes_atomic

        data = song.to_bytes()
        for n in range(1, 10_000):
            out = folder / f"live-{state.label.replace(' ', '-')}-{n:03d}.mid"
            if not out.exists():
                write_bytes_atomic(out, data, overwrite=False)
                return str(out)
        raise KellyError(f"no free file name left in {folder}")

    def get_state(self):
        from kelly.contracts import EngineState, LiveEmotion, LiveModel

        fused = self.fused_state()
        now = self.clock_now()
        with self._lock:
            sources = {name: LiveEmotion(valence=r.valence, arousal=r.arousal, dominance=r.dominance,
                                         confidence=r.confidence, label=r.label or _nearest(r.valence, r.arousal,
                                                                                            r.dominance).name,
                                         age_s=max(0.0, now - r.time_s))
                       for name, r in self._readings().items()}
        status = self._compose_proc.status()["models"]
        models = {k: LiveModel(enabled=v["enabled"], live=v["live"], path=v["path"], status=v["status"])
                  for k, v in status.items()}
        sch = self.scheduler
        tracker = self.tracker  # once: stop() may set it to None meanwhile (a state asked during shutdown)
        ts = sch.time_signature if sch else (4, 4)
        return EngineState(
            running=self.running, seq=self.seq, time_s=max(0.0, now), clock=self.clock,
            playing=bool(sch and sch.transport.playing()), bar=sch.bar + 1 if sch and sch.stats.bars else 0,
            tempo_bpm=sch.tempo_bpm if sch else 120.0, time_signature=f"{ts[0]}/{ts[1]}",
            emotion=LiveEmotion(valence=fused.valence, arousal=fused.arousal, dominance=fused.dominance,
                                confidence=fused.confidence, label=fused.label),
            sources=sources, models=models, sample_rate=self.config.sr, block=self.config.block,
            latency_samples=self.latency_samples, blocks=self.block_times.count,
            overruns=self.block_times.overruns, dropped_frames=int(getattr(self.ring, "dropped", 0)),
            inferences=self.frames_done, notes_sounding=int(tracker.sounding) if tracker is not None else 0,
            midi_out=getattr(self.sink, "name", None), warnings=list(self.warnings))

    def shutdown(self) -> None:
        self._stop_requested = True

    @property
    def latency_samples(self) -> int:
        """Latency the engine adds, in input samples: the lookahead (the audio process's, once it has started)."""
        if self.audio_process is not None:
            return self.audio_process.latency_samples
        return int(self.lookahead.latency_samples)

    # ------------------------------------------------------------------ running
    def run(self, blocks: Iterable[np.ndarray] | None = None, *, realtime: bool = True,
            seconds: float | None = None, bars: int | None = None) -> None:
        """Drive the engine until the audio ends, the engine clock reaches ``seconds``, ``bars`` bars have
        played, or shutdown (final: a later run returns at once).

        ``blocks``: audio blocks (a WAV or device source); without them the clock is
        internal and the engine ticks every block period. ``realtime=False`` runs as fast
        as possible (with ``config.sync`` this is deterministic).
        """
        # no reset of _stop_requested here: a shutdown (Ctrl-C, kelly ctl shutdown) that comes while the
        # engine is still starting is final, not lost
        self._virtual = blocks is None and not realtime
        period = self.config.block / self.config.sr
        wall0 = time.monotonic()
        t = t_start = self.now_s

        def done() -> bool:
            if self._stop_requested:
                return True
            if seconds is not None and t >= seconds:
                return True
            return bars is not None and self.scheduler is not None and self.scheduler.stats.bars > bars

        if self.audio_process is not None:
            if blocks is not None or not realtime:
                raise InputError("with an audio process the engine reads its source itself, in real time: run() "
                                 "takes no blocks")
            ap, sr = self.audio_process, self.config.sr
            while True:
                ended = ap.ended  # read first: a failure after it is raised by check() now or on the next pass
                ap.check()  # the source's error (a corrupt file, a device that stopped) ends the run with it
                t = ap.samples / sr
                if bars is not None and self._bars_done(bars, t):
                    break
                self.tick(t)
                if done() or ended:
                    break
                time.sleep(period)
            self.now_s = t
            return
        if blocks is not None:
            for block in blocks:
                self.process_block(block)
                t = self.samples / self.config.sr
                if bars is not None and self.scheduler is not None and self.scheduler.bar_beat > 0 \
                        and self._bars_done(bars, t):
                    break
                self.tick(t)
                if done():
                    break
                if realtime:
                    lag = wall0 + (t - t_start) - time.monotonic()
                    if lag > 0:
                        time.sleep(lag)
            if self.clock == "audio":
                self.now_s = t
            return
        while not done():
            if realtime:
                time.sleep(period)
                t = time.monotonic() - self._t0 if self.clock != "audio" else t + period
            else:
                t += period
            if bars is not None and self._bars_done(bars, t):
                break
            self.tick(t)
        self.now_s = t

    def _bars_done(self, bars: int, t: float) -> bool:
        """True when ``t`` is at or past the end of bar ``bars`` (the run stops on that bar line)."""
        sch = self.scheduler
        if sch is None:
            return False
        return sch.stats.bars >= bars and sch.transport.beat_at(t) >= sch.bar_beat - 1e-9
