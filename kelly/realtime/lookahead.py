"""A delay line: audio out exactly ``lookahead`` samples after it came in.

The engine analyses each block as it arrives but plays (or passes on) the audio
``lookahead`` samples later, so that what it decides for a moment can take a little of
the future into account. :class:`LookaheadBuffer` is that delay: a circular buffer made
once, two slice copies in and two out per block, no allocation.
"""

from __future__ import annotations

import numpy as np

from kelly.errors import InputError

#: Largest delay or block accepted (samples): 60 s at 384 kHz.
MAX_SAMPLES = 384_000 * 60
#: Most channels accepted.
MAX_CHANNELS = 32


class LookaheadBuffer:
    """Delay blocks of audio by exactly ``lookahead`` samples.

    The first ``lookahead`` samples out are zeros; after that, sample ``t`` out is sample
    ``t − lookahead`` in, whatever the block sizes (any size from 0 to ``block``, changing
    from call to call).

    Parameters
    ----------
    lookahead : int ≥ 0
        The delay in samples (0 passes the audio straight through).
    block : int > 0
        The largest block :meth:`process` will be given.
    channels : int in [1, 32]
        1: blocks are ``(n,)``; more: blocks are ``(n, channels)`` (frames × channels).
    dtype : numpy floating dtype, keyword-only
        What is stored and returned (default float32).

    Attributes
    ----------
    lookahead, block, channels : int
    latency_samples : int
        The delay this adds: ``lookahead``.

    Examples
    --------
    >>> delay = LookaheadBuffer(3, block=4)
    >>> delay.process(np.array([1, 2, 3, 4], np.float32))
    array([0., 0., 0., 1.], dtype=float32)
    >>> delay.process(np.array([5, 6], np.float32))
    array([2., 3.], dtype=float32)
    """

    def __init__(self, lookahead: int, block: int, channels: int = 1, *, dtype=np.float32) -> None:
        self.lookahead = _int(lookahead, "lookahead", 0, MAX_SAMPLES)
        self.block = _int(block, "block", 1, MAX_SAMPLES)
        self.channels = _int(channels, "channels", 1, MAX_CHANNELS)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype must be a numpy floating dtype, got {dtype!r}") from None
        if not np.issubdtype(self.dtype, np.floating):
            raise InputError(f"dtype must be a numpy floating dtype, got {self.dtype}")
        self._size = self.lookahead + self.block  # enough that a block never overwrites what it still has to read
        shape = (self._size,) if self.channels == 1 else (self._size, self.channels)
        self._buf = np.zeros(shape, dtype=self.dtype)
        self._out = np.zeros((self.block,) + shape[1:], dtype=self.dtype)
        self._pos = 0  # where the next sample in is written

    @property
    def latency_samples(self) -> int:
        """Samples of delay this adds (``lookahead``)."""
        return self.lookahead

    def process(self, block_in: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Push one block in; get the same number of samples out, ``lookahead`` samples late.

        Parameters
        ----------
        block_in : np.ndarray [shape=(n,) or (n, channels)], 0 ≤ n ≤ block
            Floating-point samples (cast to :attr:`dtype`).
        out : np.ndarray [shape like block_in], optional
            Written in place and returned. Without it the result is a view of a buffer
            owned by this object, **overwritten by the next call**: copy it to keep it.

        Returns
        -------
        np.ndarray [shape=block_in.shape]
            The delayed samples.

        Raises
        ------
        InputError
            Wrong shape, a block longer than ``block``, a non-float dtype, or ``out`` of
            the wrong shape.
        """
        x = _check_block(block_in, self.channels, self.block)
        n = x.shape[0]
        if out is None:
            out = self._out[:n]
        elif not isinstance(out, np.ndarray) or out.shape != x.shape:
            raise InputError(f"out must be an array of shape {x.shape}, got "
                             f"{getattr(out, 'shape', type(out).__name__)}")
        if n == 0:
            return out
        buf, size, pos = self._buf, self._size, self._pos
        # write the block at pos (wrapping once at most: n <= size)
        k = min(n, size - pos)
        buf[pos:pos + k] = x[:k]
        buf[:n - k] = x[k:]
        # read n samples starting lookahead samples back; L = lookahead + block >= lookahead + n,
        # so none of them has just been overwritten
        start = pos - self.lookahead
        if start < 0:
            start += size
        k = min(n, size - start)
        out[:k] = buf[start:start + k]
        out[k:] = buf[:n - k]
        pos += n
        self._pos = pos - size if pos >= size else pos
        return out

    def reset(self) -> None:
        """Forget the audio held: the next ``lookahead`` samples out are zeros again."""
        self._buf.fill(0)
        self._pos = 0

    def __repr__(self) -> str:
        return f"LookaheadBuffer(lookahead={self.lookahead}, block={self.block}, channels={self.channels})"


def _int(x, name: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= x <= hi:
        raise InputError(f"{name} must be an integer in [{lo}, {hi:,}], got {x!r}")
    return int(x)


def _check_block(x, channels: int, block: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise InputError(f"a block must be a numpy array, got {type(x).__name__}")
    want = "(n,)" if channels == 1 else f"(n, {channels})"
    if (channels == 1 and x.ndim != 1) or (channels > 1 and (x.ndim != 2 or x.shape[1] != channels)):
        raise InputError(f"a block must have shape {want}, got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"a block must hold floating-point samples, got dtype {x.dtype}")
    if x.shape[0] > block:
        raise InputError(f"a block holds at most {block} samples (the size this buffer was made for), "
                         f"got {x.shape[0]}")
    return x
