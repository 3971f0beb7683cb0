"""Voice leading: choose each chord's voicing close to the previous one.

Candidates are every inversion of the chord in close and open (drop-2) position at
every octave that fits the register; the cost is total semitone motion plus penalties
for parallel perfect fifths/octaves between outer and inner voices and for leaving the
register's centre. ``free=True`` (a harmony rule break) drops the parallel penalty.
Written here because no MIDI library offers voice-leading search, and music21's
voice-leading module only *checks* voicings.
"""

from __future__ import annotations

from itertools import combinations

from kelly.theory.chords import Chord


def _candidates(pcs: tuple[int, ...], low: int, high: int, voices: int,
                double: int | None = None) -> list[tuple[int, ...]]:
    extra = pcs[0] if double is None else double
    tones = list(pcs[:voices]) if len(pcs) >= voices else list(pcs) + [extra] * (voices - len(pcs))
    out: set[tuple[int, ...]] = set()
    for inversion in range(len(tones)):
        order = tones[inversion:] + tones[:inversion]
        for base in range(low - 12, high + 1):
            if base % 12 != order[0]:
                continue
            close = [base]
            for pc in order[1:]:
                nxt = close[-1] + ((pc - close[-1]) % 12 or 12)
                close.append(nxt)
            variants = [close]
            if len(close) >= 4:
                drop2 = sorted([close[-2] - 12] + close[:-2] + close[-1:])
                variants.append(drop2)
            for v in variants:
                if v[0] >= low and v[-1] <= high and len(set(v)) == len(v):
                    out.add(tuple(sorted(v)))
    return sorted(out)


def _parallel_perfect(prev: tuple[int, ...], cur: tuple[int, ...]) -> int:
    count = 0
    for a, b in combinations(range(min(len(prev), len(cur))), 2):
        i1 = (prev[b] - prev[a]) % 12
        i2 = (cur[b] - cur[a]) % 12
        if i1 == i2 and i1 in (0, 7) and prev[a] != cur[a]:
            count += 1
    return count


def voice_chord(chord: Chord, previous: tuple[int, ...] | None, *, low: int = 48, high: int = 76,
                voices: int = 4, free: bool = False, double: int | None = None) -> tuple[int, ...]:
    """Pick the voicing of ``chord`` (MIDI pitches, ascending) that moves least from ``previous``.

    A triad in four voices doubles its root, or the pitch class ``double`` when given (a
    minor tonic doubles its third, so the key's minor third is heard).
    """
    pcs = chord.pitch_classes()
    cands = _candidates(pcs, low, high, voices, double) or _candidates(pcs, low - 12, high + 12, voices, double)
    centre = (low + high) / 2
    if previous is None:
        return min(cands, key=lambda c: (abs(sum(c) / len(c) - centre), c))

    def cost(c: tuple[int, ...]) -> float:
        n = min(len(c), len(previous))
        motion = sum(abs(c[k] - previous[k]) for k in range(n))
        drift = abs(sum(c) / len(c) - centre) * 0.35
        parallels = 0 if free else 100 * _parallel_perfect(previous[:n], c[:n])  # forbidden unless free
        return motion + drift + parallels

    return min(cands, key=lambda c: (cost(c), c))


def voice_progression(chords, *, low: int = 48, high: int = 76, voices: int = 4, free: bool = False):
    """Voice a whole progression with :func:`voice_chord`."""
    out = []
    prev = None
    for chord in chords:
        prev = voice_chord(chord, prev, low=low, high=high, voices=voices, free=free)
        out.append(prev)
    return out
