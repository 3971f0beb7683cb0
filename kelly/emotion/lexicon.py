"""The shipped V/A/D lexicon: a compact table of ~120,000 English words and expressions.

Why this module exists
----------------------
The text reader needs a valence/arousal/dominance value for any word a person might
use, at the speed of a dictionary look-up and without torch. The table is built
offline by :mod:`kelly.emotion.lexicon_build` and stored as one gzip file:

``KELLYLEX1\\n`` · header length ``\\n`` · header JSON · the words joined by ``\\n``
· int8 values (V, A, D per word) · one source id byte per word.

Values are quantised to int8: V as ``round(v · 127)``, A and D as
``round(x · 254) − 127`` (steps of about 0.008). The format is ours because no MIDI,
audio or NLP library offers a small, fast, dependency-free affect table; loading is one
decompression and a ``dict`` build.
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from kelly.errors import FileFormatError

AXES = ("valence", "arousal", "dominance")
#: Source ids stored per word (append-only: ids are positions in this tuple).
SOURCES = ("predicted", "kelly-thesaurus", "kelly-clues", "kelly-idioms", "vader", "vader-emoji", "wordlists",
           "kelly-seeds")
MAGIC = b"KELLYLEX1\n"
DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "lexicon.bin.gz"
#: Caps checked before anything is allocated from a file's own numbers.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 2_000_000
MAX_HEADER = 1_000_000
#: Largest decompressed table (a gzip bomb stops here).
MAX_RAW_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LexiconEntry:
    """One word's value and the source of its valence."""

    word: str
    valence: float
    arousal: float
    dominance: float
    source: str

    @property
    def strength(self) -> float:
        """How much feeling the word carries: distance from neutral in V/A (0 … ~1.1)."""
        return (self.valence ** 2 + ((self.arousal - 0.45) * 1.2) ** 2) ** 0.5

    def to_dict(self) -> dict:
        return {"word": self.word, "valence": round(self.valence, 3), "arousal": round(self.arousal, 3),
                "dominance": round(self.dominance, 3), "source": self.source}


def encode_table(header: dict, words: list[str], values: np.ndarray, sources: np.ndarray) -> bytes:
    """Serialise a table (deterministic bytes: gzip mtime 0)."""
    if len(words) != len(values) or len(words) != len(sources):
        raise ValueError("words, values and sources differ in length")
    if any("\n" in w for w in words):
        raise ValueError("a word contains a newline")
    q = np.empty((len(words), 3), dtype=np.int8)
    q[:, 0] = np.clip(np.round(values[:, 0] * 127), -127, 127)
    q[:, 1:] = np.clip(np.round(values[:, 1:] * 254) - 127, -127, 127)
    head = json.dumps(header, ensure_ascii=False, sort_keys=True).encode("utf-8")
    words_blob = "\n".join(words).encode("utf-8")
    header_line = f"{len(head)} {len(words_blob)} {len(words)}\n".encode("ascii")
    raw = MAGIC + header_line + head + words_blob + q.tobytes() + np.asarray(sources, dtype=np.uint8).tobytes()
    return gzip.compress(raw, compresslevel=9, mtime=0)


class Lexicon:
    """Word → (V, A, D, source) look-ups over the loaded table."""

    def __init__(self, header: dict, words: list[str], values: np.ndarray, sources: bytes) -> None:
        self.header = header
        self.index = {w: i for i, w in enumerate(words)}
        self.words = words
        self._v = (values[:, 0].astype(np.float64) / 127.0).tolist()
        self._a = ((values[:, 1].astype(np.float64) + 127.0) / 254.0).tolist()
        self._d = ((values[:, 2].astype(np.float64) + 127.0) / 254.0).tolist()
        self._src = sources
        #: Longest entry in words, for n-gram matching.
        self.max_words = max((w.count(" ") + 1 for w in words), default=1)
        self.starts = frozenset(w.split(" ", 1)[0] for w in words if " " in w)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def get(self, word: str) -> LexiconEntry | None:
        i = self.index.get(word)
        if i is None:
            return None
        return LexiconEntry(word, self._v[i], self._a[i], self._d[i], SOURCES[self._src[i]])


def decode_table(blob: bytes, *, where: str = "lexicon") -> Lexicon:
    """Parse a table's bytes; any defect is a :class:`FileFormatError` naming ``where``."""
    if len(blob) > MAX_FILE_BYTES:
        raise FileFormatError(f"{where}: file is {len(blob)} bytes, more than the {MAX_FILE_BYTES} allowed")
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
        raw = inflater.decompress(blob, MAX_RAW_BYTES + 1)
        if len(raw) > MAX_RAW_BYTES:
            raise FileFormatError(f"{where}: decompresses to more than {MAX_RAW_BYTES} bytes")
        if not inflater.eof:
            raise FileFormatError(f"{where}: not a gzip lexicon table (truncated)")
    except zlib.error as exc:
        raise FileFormatError(f"{where}: not a gzip lexicon table ({exc})") from None
    if not raw.startswith(MAGIC):
        raise FileFormatError(f"{where}: not a Kelly lexicon (bad magic)")
    try:
        line_end = raw.index(b"\n", len(MAGIC))
        n_head, n_words_blob, count = (int(x) for x in raw[len(MAGIC):line_end].split())
    except ValueError:
        raise FileFormatError(f"{where}: corrupt size line") from None
    if not (0 < n_head <= MAX_HEADER and 0 < count <= MAX_ENTRIES and 0 < n_words_blob <= len(raw)):
        raise FileFormatError(f"{where}: sizes out of range (header {n_head}, entries {count})")
    pos = line_end + 1
    expected = pos + n_head + n_words_blob + 4 * count
    if len(raw) != expected:
        raise FileFormatError(f"{where}: truncated or padded ({len(raw)} bytes, expected {expected})")
    try:
        header = json.loads(raw[pos:pos + n_head].decode("utf-8"))
        pos += n_head
        words = raw[pos:pos + n_words_blob].decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"{where}: corrupt header or words ({exc})") from None
    pos += n_words_blob
    if len(words) != count or not isinstance(header, dict) or header.get("format") != "kelly-lexicon":
        raise FileFormatError(f"{where}: header and word count disagree")
    values = np.frombuffer(raw, dtype=np.int8, count=3 * count, offset=pos).reshape(count, 3)
    sources = raw[pos + 3 * count:]
    if max(sources) >= len(SOURCES):
        raise FileFormatError(f"{where}: unknown source id {max(sources)}")
    return Lexicon(header, words, values, sources)


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Load a table from ``path`` (default: the shipped one)."""
    if path is None:
        return _shipped()
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(f"{p}: file is {size} bytes, more than the {MAX_FILE_BYTES} allowed")
        blob = p.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"cannot read lexicon {p}: {exc.strerror or exc}") from None
    return decode_table(blob, where=str(p))


def computed_once(fn):
    """``functools.lru_cache(maxsize=1)`` for a no-argument loader, computed once even when many threads ask at once.

    Why: ``lru_cache`` lets every caller that arrives before the first result is stored
    compute it too. 32 socket clients sending their first words to a live engine at once
    decoded the lexicon 32 times in parallel (RSS 300 → 1,030 MB, audio blocks late by a
    second). The lock is taken on every call; uncontended, it costs well under a microsecond.
    """
    cached = functools.lru_cache(maxsize=1)(fn)
    lock = threading.Lock()

    @functools.wraps(fn)
    def once():
        with lock:
            return cached()

    once.cache_clear = cached.cache_clear
    return once


@computed_once
def _shipped() -> Lexicon:
    try:
        blob = resources.files("kelly.emotion").joinpath("data/lexicon.bin.gz").read_bytes()
    except OSError as exc:
        raise FileFormatError(f"cannot read the shipped lexicon kelly/emotion/data/lexicon.bin.gz: {exc}") from None
    return decode_table(blob, where="kelly/emotion/data/lexicon.bin.gz")
