"""Train / validation / test split by piece, deterministic, without leakage.

A piece is assigned to a split by hashing its *split key*, never at random, so the
assignment is the same on every machine, in every run, whatever else is in the
dataset, and a piece keeps its split when more pieces are added:

``bucket = crc32(key as UTF-8) % 10``; bucket 0 is **test**, bucket 1 is
**validation**, buckets 2–9 are **train** (10 % / 10 % / 80 %).

The split key is the record's ``group`` when it has one, else its ``id``. A group
holds pieces that are versions of one another and must not be split across the sets:
harmonisations of one chorale tune, variants of one folk song (the same title), clips
cut from one recording (EMOPIA), takes of one drummer's session pattern. Every window,
clip or step a training loop cuts from a piece inherits the piece's split, so nothing
of a test piece is ever seen in training.

A dataset that ships its own split (MAESTRO, Groove MIDI) keeps it: :func:`split_of`
returns a record's ``official_split`` when present.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable, Mapping

from kelly.errors import InputError

SPLITS = ("train", "validation", "test")
#: Number of hash buckets, and which bucket goes where.
BUCKETS = 10
TEST_BUCKETS = frozenset({0})
VALIDATION_BUCKETS = frozenset({1})


def bucket_of(key: str) -> int:
    """``crc32(key) % 10`` (UTF-8 bytes)."""
    if not isinstance(key, str) or not key:
        raise InputError(f"a split key must be a non-empty string, got {key!r}")
    return zlib.crc32(key.encode("utf-8")) % BUCKETS


def split_for_key(key: str) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` for a split key (see the module docstring)."""
    b = bucket_of(key)
    if b in TEST_BUCKETS:
        return "test"
    if b in VALIDATION_BUCKETS:
        return "validation"
    return "train"


def split_key(record: Mapping[str, Any] | str) -> str:
    """The key a record is split by: its ``group`` if set, else its ``id`` (a string is its own key)."""
    if isinstance(record, str):
        return record
    group = record.get("group")
    return group if isinstance(group, str) and group else str(record["id"])


def split_of(record: Mapping[str, Any] | str) -> str:
    """The split of one record (or of an id string): its official split if it has one, else by hash."""
    if not isinstance(record, str):
        official = record.get("official_split")
        if official in SPLITS:
            return official
    return split_for_key(split_key(record))


def split_records(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records grouped by split: ``{"train": [...], "validation": [...], "test": [...]}`` (input order kept)."""
    out: dict[str, list] = {s: [] for s in SPLITS}
    for rec in records:
        out[split_of(rec)].append(rec)
    return out


def normalize_title(title: str) -> str:
    """A title reduced for grouping variants: lowercase letters and digits, single spaces."""
    words = "".join(ch.lower() if ch.isalnum() else " " for ch in (title or "")).split()
    return " ".join(words)
