"""A lock-free single-producer, single-consumer ring of fixed-width rows.

:class:`SpscRing` hands rows of numbers (a block of audio, a frame of features) from one
thread to another, typically from an audio callback (the producer) to the engine thread
(the consumer), without locks and without allocating an array per row.

Why it is correct in CPython
----------------------------
The ring keeps two counters that only ever grow: the write count ``_w`` (written only by
the producer) and the read count ``_r`` (written only by the consumer). Row ``k`` lives in
slot ``k % capacity``. The producer copies the row and its stamp into the slot *first* and
then publishes it with one attribute store, ``self._w = w + 1``; the consumer reads ``_w``
*first* and only then reads the slots below it, and frees them with ``self._r = r + 1``
after copying. So:

* each counter has exactly one writer, and a store of an int to an attribute is a single
  bytecode, atomic under the GIL: the other thread sees the old value or the new one,
  never a torn one;
* the GIL is a full memory barrier whenever it changes hands, and each thread runs its own
  statements in program order, so when the consumer sees ``_w = k + 1`` the producer's
  copy into slot ``k`` (finished before that store, even when numpy released the GIL
  inside the copy) is complete and visible; likewise the producer never writes a slot
  before the consumer's ``_r`` store has released it;
* the counters are Python ints, so they never wrap; ``_w - _r`` is the fill level, in
  ``[0, capacity]``.

Without a GIL
-------------
In a free-threaded build (Python 3.13t with the GIL disabled) the two threads really run
at once, and the argument above would rest on the processor keeping the order of plain
stores and loads; numpy's copy is plain C stores, and the interpreter does not promise
release/acquire ordering for attribute stores. On x86 (total store order) it would still
work; on ARM it need not. What the ring needs is a release store of the index after the
data and an acquire load before reading it. Short of a C extension with
``atomic_store_explicit(..., memory_order_release)``, the portable way is to publish and
read each counter while holding a :class:`threading.Lock` (its release and acquire are
exactly those barriers; uncontended it costs about 0.1 µs and allocates nothing).
:class:`SpscRing` does that when the GIL is disabled (``fence=None``, the default, checks
``sys._is_gil_enabled()``), or always with ``fence=True``. The data copies stay outside
the lock, so the two threads still never wait for each other's copies.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from kelly.errors import InputError

#: The largest ring accepted (rows).
MAX_CAPACITY = 1 << 24


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


class SpscRing:
    """A preallocated ring of ``capacity`` rows of ``width`` numbers, each with an int64 stamp.

    Exactly one thread may call :meth:`push` (the producer) and exactly one other thread
    :meth:`pop` / :meth:`pop_many` (the consumer); the two may run at the same time
    without locks (see the module docstring for why this is safe). Neither call
    allocates an array: rows are copied into and out of storage made once here.

    Parameters
    ----------
    capacity : int in [1, 2**24]
        Rows the ring holds. Rounded **up** to a power of two (so that a slot is
        ``count & (capacity - 1)``); read the actual size from :attr:`capacity`.
    width : int > 0
        Numbers per row (a block of audio: its length; a mel frame: 128).
    dtype : numpy dtype
        Of the rows (default float32).
    fence : bool or None, keyword-only
        Publish and read the counters under a lock (needed for correctness only where
        the GIL is disabled). None: only when the interpreter runs without the GIL.

    Attributes
    ----------
    capacity : int
        Rows held (a power of two).
    width : int
    dtype : np.dtype
    dropped : int
        Pushes refused because the ring was full (counted by the producer).

    Examples
    --------
    >>> ring = SpscRing(1024, 512)          # audio thread pushes, engine thread pops
    >>> ring.push(np.zeros(512, np.float32), stamp=0)
    True
    >>> out = np.empty(512, np.float32)
    >>> ring.pop(out)
    0
    >>> ring.pop(out) is None
    True
    """

    def __init__(self, capacity: int, width: int, dtype=np.float32, *, fence: bool | None = None) -> None:
        capacity = _positive_int(capacity, "capacity")
        width = _positive_int(width, "width")
        if capacity > MAX_CAPACITY:
            raise InputError(f"capacity must be at most {MAX_CAPACITY:,} rows, got {capacity:,}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype must be a numpy dtype, got {dtype!r}") from None
        if self.dtype.hasobject:
            raise InputError("dtype must be a plain numeric dtype, not object")
        self.capacity = 1 << (capacity - 1).bit_length()
        self.width = width
        self._mask = self.capacity - 1
        self._data = np.zeros((self.capacity, width), dtype=self.dtype)
        self._stamps = np.zeros(self.capacity, dtype=np.int64)
        # one view per slot, made once, so that push/pop do not even create view objects
        self._rows = tuple(self._data[i] for i in range(self.capacity))
        self._w = 0  # rows ever pushed: written by the producer only
        self._r = 0  # rows ever popped: written by the consumer only
        self.dropped = 0  # written by the producer only
        if fence is None:
            fence = not _gil_enabled()
        self._lock = threading.Lock() if fence else None

    # -- producer ----------------------------------------------------------------------

    def push(self, row: np.ndarray, stamp: int) -> bool:
        """Copy ``row`` into the ring with its ``stamp`` (producer thread only).

        Parameters
        ----------
        row : np.ndarray [shape=(width,)]
            Copied (cast to :attr:`dtype`); a shorter or longer row is an error of numpy's.
        stamp : int
            Stored as int64 beside the row (a sample count, a frame index, a time in ns).

        Returns
        -------
        bool
            True when stored; False when the ring was full (the row is dropped and
            :attr:`dropped` counts it).
        """
        lock = self._lock
        w = self._w
        if lock is None:
            r = self._r
        else:
            with lock:
                r = self._r
        if w - r > self._mask:
            self.dropped += 1
            return False
        slot = w & self._mask
        self._rows[slot][...] = row
        self._stamps[slot] = stamp
        if lock is None:
            self._w = w + 1  # publish, after the data
        else:
            with lock:
                self._w = w + 1
        return True

    # -- consumer ----------------------------------------------------------------------

    def pop(self, out_row: np.ndarray) -> int | None:
        """Copy the oldest row into ``out_row`` and return its stamp (consumer thread only).

        Parameters
        ----------
        out_row : np.ndarray [shape=(width,)]
            Written in place.

        Returns
        -------
        int or None
            The row's stamp; None (and ``out_row`` untouched) when the ring is empty.
        """
        lock = self._lock
        r = self._r
        if lock is None:
            w = self._w
        else:
            with lock:
                w = self._w
        if r == w:
            return None
        slot = r & self._mask
        out_row[...] = self._rows[slot]
        stamp = self._stamps.item(slot)
        if lock is None:
            self._r = r + 1  # release the slot, after the copy
        else:
            with lock:
                self._r = r + 1
        return stamp

    def pop_many(self, out: np.ndarray, stamps: np.ndarray | None = None) -> int:
        """Copy up to ``len(out)`` of the oldest rows at once (consumer thread only).

        Parameters
        ----------
        out : np.ndarray [shape=(m, width)]
            Rows ``out[:n]`` are written, oldest first.
        stamps : np.ndarray [shape=(m,), dtype=int64], optional
            Their stamps, ``stamps[:n]``.

        Returns
        -------
        int
            ``n``, the rows copied (0 when the ring is empty).
        """
        lock = self._lock
        r = self._r
        if lock is None:
            w = self._w
        else:
            with lock:
                w = self._w
        n = min(w - r, len(out))
        if n <= 0:
            return 0
        first = r & self._mask
        k = min(n, self.capacity - first)  # rows before the end of storage; the rest wrap to 0
        out[:k] = self._data[first:first + k]
        out[k:n] = self._data[:n - k]
        if stamps is not None:
            stamps[:k] = self._stamps[first:first + k]
            stamps[k:n] = self._stamps[:n - k]
        if lock is None:
            self._r = r + n
        else:
            with lock:
                self._r = r + n
        return n

    # -- either side -------------------------------------------------------------------

    def __len__(self) -> int:
        """Rows waiting (a snapshot: the other thread may change it at once)."""
        return max(0, self._w - self._r)

    @property
    def pushed(self) -> int:
        """Rows stored so far (not counting the dropped ones)."""
        return self._w

    @property
    def popped(self) -> int:
        """Rows taken out so far."""
        return self._r

    def __repr__(self) -> str:
        return (f"SpscRing(capacity={self.capacity}, width={self.width}, dtype={self.dtype.name}, "
                f"waiting={len(self)}, pushed={self.pushed}, popped={self.popped}, dropped={self.dropped})")


def _positive_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x <= 0:
        raise InputError(f"{name} must be a positive integer, got {x!r}")
    return int(x)


#: Processors whose stores are seen by other cores in program order (total store order), so
#: that a counter published after the data it guards is never seen before that data.
_STORE_ORDERED = ("x86_64", "amd64", "i386", "i686", "x86")


def stores_ordered() -> bool:
    """True on processors with total store order (x86): a shared ring needs no fence there."""
    import platform

    return platform.machine().lower() in _STORE_ORDERED


class SharedSpscRing(SpscRing):
    """An :class:`SpscRing` whose rows, stamps and counters live in memory two processes share.

    The producer runs in one process (the audio process,
    :mod:`kelly.realtime.audio_process`) and the consumer in another (the engine's
    inference thread); ``push``/``pop``/``pop_many`` are :class:`SpscRing`'s own. What
    changes is where the three counters live: in an int64 array at the start of the
    buffer instead of Python attributes (which another process cannot see), each still
    with exactly one writer and stored with one aligned 8-byte store.

    Ordering across processes is no longer given by the GIL (each process has its own).
    On x86 the processor keeps stores in program order and loads in program order (total
    store order), and numpy's copy and the counter's store are separate C calls the
    compiler cannot reorder, so "copy the data, then publish the counter" is seen in that
    order by the other process, as in the threaded ring. Elsewhere (ARM) pass ``lock``, a
    :func:`multiprocessing.Lock` shared by both processes: the counters are then read and
    published under it, as :class:`SpscRing` does without a GIL, and its acquire and
    release are the fences.

    Parameters
    ----------
    buffer : writable buffer
        At least :meth:`nbytes` bytes from ``offset`` (a
        :class:`multiprocessing.shared_memory.SharedMemory`'s ``buf``).
    offset : int
        Where the ring starts in ``buffer``; a multiple of 64.
    capacity, width, dtype
        As :class:`SpscRing` (capacity rounded up to a power of two); both processes must
        give the same.
    lock : multiprocessing lock or None, keyword-only
        The fence where stores are not ordered (see above); required there.
    clear : bool, keyword-only
        Zero the counters (the process that makes the shared memory, before the other
        attaches).
    """

    _COUNTERS = 8  # w, r, dropped, then padding to 64 bytes (a cache line of its own)

    def __init__(self, buffer, offset: int, capacity: int, width: int, dtype=np.float32, *, lock=None,
                 clear: bool = False) -> None:
        capacity = _positive_int(capacity, "capacity")
        width = _positive_int(width, "width")
        if capacity > MAX_CAPACITY:
            raise InputError(f"capacity must be at most {MAX_CAPACITY:,} rows, got {capacity:,}")
        self.dtype = np.dtype(dtype)
        self.capacity = 1 << (capacity - 1).bit_length()
        self.width = width
        self._mask = self.capacity - 1
        if lock is None and not stores_ordered():
            raise InputError("a ring shared between processes needs a multiprocessing lock on this processor")
        need = self.nbytes(self.capacity, width, self.dtype)
        if offset % 64 or offset < 0 or len(buffer) < offset + need:
            raise InputError(f"the shared buffer is too small or misaligned for this ring ({need:,} bytes at "
                             f"offset {offset})")
        self._counters = np.ndarray((self._COUNTERS,), dtype=np.int64, buffer=buffer, offset=offset)
        at = offset + 8 * self._COUNTERS
        self._stamps = np.ndarray((self.capacity,), dtype=np.int64, buffer=buffer, offset=at)
        at += 8 * self.capacity
        self._data = np.ndarray((self.capacity, width), dtype=self.dtype, buffer=buffer, offset=at)
        self._rows = tuple(self._data[i] for i in range(self.capacity))
        self._lock = lock
        if clear:
            self._counters[:] = 0

    @classmethod
    def nbytes(cls, capacity: int, width: int, dtype=np.float32) -> int:
        """Bytes a ring of ``capacity`` (a power of two) rows of ``width`` takes, rounded up to 64."""
        n = 8 * cls._COUNTERS + 8 * capacity + capacity * width * np.dtype(dtype).itemsize
        return -(-n // 64) * 64

    # the counters of SpscRing, in shared memory: one writer each, one aligned store each
    @property
    def _w(self) -> int:
        return int(self._counters[0])

    @_w.setter
    def _w(self, value: int) -> None:
        self._counters[0] = value

    @property
    def _r(self) -> int:
        return int(self._counters[1])

    @_r.setter
    def _r(self, value: int) -> None:
        self._counters[1] = value

    @property
    def dropped(self) -> int:
        return int(self._counters[2])

    @dropped.setter
    def dropped(self, value: int) -> None:
        self._counters[2] = value

    def release(self) -> None:
        """Copy everything out of the shared buffer into this process's own memory.

        Afterwards the ring reads as it did (counters, waiting rows) but no longer sees
        the other process, and holds no view of the buffer, so that the buffer can be
        closed (a buffer with live views refuses to close).
        """
        self._counters = self._counters.copy()
        self._stamps = self._stamps.copy()
        self._data = self._data.copy()
        self._rows = tuple(self._data[i] for i in range(self.capacity))

    def __repr__(self) -> str:
        return "Shared" + super().__repr__()
