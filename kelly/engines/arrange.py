"""ArrangementFit: the accompaniment voiced under the melody, inside each instrument's range.

The engines write their parts from the chords; this pass makes them sit with the
melody as a producer would voice them (DESIGN.md, "the melody in front"):

* **below the melody**: an accompaniment note that sounds with a melody note at or
  under it moves down by octaves; if that would leave its instrument's range it is
  dropped (the other voices of the chord still sound);
* **no minor seconds or ninths against the melody**: a note a semitone (any octave)
  from the sounding melody note becomes the nearest lower chord tone that does not
  clash, or is dropped;
* **inside the instrument's range** (:mod:`kelly.theory.instruments`), and **no
  duplicate notes**: two notes of one part on the same pitch at the same tick become
  one, and a note that would re-strike a pitch still sounding in the same part ends
  where the next begins.

The bass is not moved (it is written from the chord's bass note, and the melody avoids
the notes a semitone above it); drums are left alone.
"""

from __future__ import annotations

import bisect

from kelly.engines.context import Plan
from kelly.song import Note, Role, Track
from kelly.theory.instruments import playable_range
from kelly.theory.modal import clashes

#: Parts voiced under the melody.
UNDER = (Role.HARMONY, Role.PAD, Role.STRINGS, Role.COUNTER, Role.FX)


class _Sounding:
    """Melody notes, queryable by time span (the melody is close to monophonic)."""

    def __init__(self, notes: list[Note], min_overlap: int) -> None:
        self.notes = sorted(notes)
        self.starts = [n.start for n in self.notes]
        self.longest = max((n.duration for n in self.notes), default=0)
        self.min_overlap = min_overlap

    def over(self, start: int, end: int) -> list[Note]:
        lo = bisect.bisect_left(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, end)
        need = min(self.min_overlap, max(1, (end - start) // 2))
        return [m for m in self.notes[lo:hi] if min(m.end, end) - max(m.start, start) >= need]


def fit_under_melody(tracks: list[Track], plan: Plan, *, keep_clashes: bool = False,
                     keep_register: bool = False) -> dict:
    """Voice every accompaniment part under the melody, in place; returns counts of what moved.

    ``keep_clashes`` / ``keep_register`` leave deliberate rule breaks (polytonality,
    frequency masking) as they were asked for.
    """
    melody = next((t for t in tracks if t.role == Role.MELODY), None)
    stats = {"lowered": 0, "revoiced": 0, "dropped": 0, "out_of_range": 0}
    if melody is None or not melody.notes:
        return stats
    sounding = _Sounding(melody.notes, plan.ppq // 8)
    for track in tracks:
        if track.role not in UNDER or track is melody or track.is_drum:
            continue
        lo_r, hi_r = playable_range(track.program)
        out: list[Note] = []
        for n in track.notes:
            p = n.pitch
            over = sounding.over(n.start, n.end)
            if over and not keep_register:
                top = min(m.pitch for m in over)
                while p >= top and p - 12 >= lo_r:
                    p -= 12
                if p >= top:
                    stats["dropped"] += 1
                    continue
                if p != n.pitch:
                    stats["lowered"] += 1
            if over and not keep_clashes and any(clashes(m.pitch, p) for m in over):
                top = min(m.pitch for m in over) if not keep_register else 128
                tones = plan.chord_at(n.start).tones
                options = [q for q in range(p - 9, p + 1) if q % 12 in tones and q < top and q >= lo_r
                           and not any(clashes(m.pitch, q) for m in over)]
                if not options:
                    stats["dropped"] += 1
                    continue
                p = max(options)
                stats["revoiced"] += 1
            while p > hi_r:
                p -= 12
            while p < lo_r:
                p += 12
            if not lo_r <= p <= hi_r:
                stats["out_of_range"] += 1
                continue
            out.append(n if p == n.pitch else n.moved(pitch=p))
        track.notes = out
    return stats


def clean_track(track: Track) -> int:
    """Remove duplicate notes (same tick, same pitch) and overlaps of one pitch; returns how many changed."""
    by_key: dict[tuple[int, int], Note] = {}
    for n in track.notes:
        k = (n.start, n.pitch)
        old = by_key.get(k)
        if old is None or (n.duration, n.velocity) > (old.duration, old.velocity):
            by_key[k] = n
    changed = len(track.notes) - len(by_key)
    notes = sorted(by_key.values(), key=lambda n: (n.pitch, n.start))
    out: list[Note] = []
    for k, n in enumerate(notes):
        nxt = notes[k + 1] if k + 1 < len(notes) and notes[k + 1].pitch == n.pitch else None
        if nxt is not None and n.end > nxt.start:
            n = n.moved(duration=max(1, nxt.start - n.start))
            changed += 1
        out.append(n)
    track.notes = sorted(out)
    return changed


def keep_in_range(track: Track) -> int:
    """Fold pitched notes into the instrument's range by octaves (drop what cannot fit); returns how many moved."""
    if track.is_drum:
        lo, hi = playable_range(0, is_drum=True)
        before = len(track.notes)
        track.notes = [n for n in track.notes if lo <= n.pitch <= hi]
        return before - len(track.notes)
    lo, hi = playable_range(track.program)
    moved = 0
    out = []
    for n in track.notes:
        p = n.pitch
        while p > hi and p - 12 >= 0:
            p -= 12
        while p < lo and p + 12 <= 127:
            p += 12
        if not lo <= p <= hi:
            moved += 1
            continue
        if p != n.pitch:
            moved += 1
            n = n.moved(pitch=p)
        out.append(n)
    track.notes = out
    return moved
