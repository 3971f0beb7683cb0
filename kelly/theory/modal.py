"""One harmonic world per chord: chord qualities from the mode, and the scale of the moment.

A piece in E♭ phrygian must not have its melody play F♭ while the accompaniment plays
F♮. Three rules keep every part in the same world:

* **Chord qualities come from the mode.** A numeral names a scale degree; unless the
  chord is deliberately borrowed, its quality is the triad (or seventh chord) the mode
  builds on that degree (:func:`diatonic_quality`): ``bVII`` in E♭ phrygian is D♭m, not
  D♭. A root outside the mode (``bVI`` in a major key) is a borrowing by definition.
* **A borrowed chord bends the scale.** :func:`world_for` gives the scale that every
  part uses while a chord sounds: the key's own scale when the chord is diatonic,
  otherwise the parallel mode (same tonic) that holds all the chord's tones with the
  fewest changes (``bVI`` in C major → C harmonic minor's A♭ and E♭; ``V`` in A minor →
  A harmonic minor's G♯). A chord no parallel mode holds (a tritone substitution)
  replaces the scale tones a semitone from its own tones.
* **The melody avoids minor seconds and ninths against the harmony.** A note a
  semitone above a sounding chord tone (F over the E of C major, C over the B of Cmaj7)
  is an "avoid note" (:func:`avoid_pcs`).

Written here because music21 names modes and chords but does not choose chord
qualities for a mode or bend a scale around a borrowed chord.
"""

from __future__ import annotations

from kelly.theory.chords import Chord
from kelly.theory.scales import MODE_INTERVALS, Key

#: Parallel modes a borrowed chord may come from, in the order ties are broken.
PARALLEL_MODES = ("ionian", "aeolian", "mixolydian", "dorian", "harmonic_minor", "lydian", "phrygian",
                  "melodic_minor")

_TRIADS = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}
_SEVENTHS = {(4, 7, 11): "maj7", (4, 7, 10): "7", (3, 7, 10): "min7", (3, 6, 10): "hdim7", (3, 6, 9): "dim7",
             (3, 7, 11): "minmaj7", (4, 8, 11): "maj7"}

#: The pre-final chord of each mode's cadence: the chord that carries the mode's colour home.
#: Ionian and aeolian use the dominant (aeolian borrows harmonic minor's leading tone, the
#: common-practice minor cadence); the other modes keep their characteristic degree:
#: dorian's major IV (its natural sixth), phrygian's ♭II, lydian's major II (its ♯4),
#: mixolydian's ♭VII.
CADENCE_CHORD = {"ionian": "V", "aeolian": "V", "harmonic_minor": "V", "melodic_minor": "V", "dorian": "IV",
                 "phrygian": "bII", "lydian": "II", "mixolydian": "bVII", "locrian": "bII"}

#: The degree (semitones above the tonic) that makes each mode sound like itself.
CHARACTERISTIC = {"dorian": 9, "phrygian": 1, "lydian": 6, "mixolydian": 10, "aeolian": 8, "ionian": 11,
                  "locrian": 6, "harmonic_minor": 11, "melodic_minor": 9}


def diatonic_quality(key: Key, root_pc: int, *, seventh: bool = False) -> str | None:
    """The quality the mode builds on ``root_pc`` by stacking its own thirds; ``None`` off the scale."""
    scale = key.scale_pcs()
    if root_pc % 12 not in scale:
        return None
    k = scale.index(root_pc % 12)
    stack = [(scale[(k + 2 * j) % 7] - root_pc) % 12 for j in range(1, 4 if seventh else 3)]
    return (_SEVENTHS if seventh else _TRIADS).get(tuple(stack))


def in_mode(chord: Chord, key: Key) -> bool:
    """Whether every tone of ``chord`` (and its bass) lies in ``key``'s scale."""
    scale = set(key.scale_pcs())
    return set(chord.pitch_classes()) <= scale and chord.bass_pc in scale


def fit_to_mode(chord: Chord, key: Key) -> Chord:
    """The mode's own chord on ``chord``'s root, keeping its size (triad, seventh, power chord, sus, add9).

    A root outside the mode, or a chord already inside it, is returned unchanged (a
    deliberate borrowing stays borrowed).
    """
    if in_mode(chord, key) or chord.root_pc not in key.scale_pcs():
        return chord
    q = chord.quality
    if q == "5":
        return chord if (chord.root_pc + 7) % 12 in key.scale_pcs() else Chord(chord.root, "maj", chord.bass)
    seventh = q in ("7", "maj7", "min7", "hdim7", "dim7", "minmaj7", "aug7", "9", "maj9", "min9", "11", "min11")
    new_q = diatonic_quality(key, chord.root_pc, seventh=seventh) or diatonic_quality(key, chord.root_pc)
    if new_q is None:
        return chord
    if q in ("add9", "madd9", "9", "maj9", "min9"):
        ninth = (chord.root_pc + 2) % 12 in key.scale_pcs()
        if ninth:
            new_q = {"maj": "add9", "min": "madd9", "maj7": "maj9", "min7": "min9", "7": "9"}.get(new_q, new_q)
    if q in ("sus2", "sus4", "7sus4"):
        sus = Chord(chord.root, q, chord.bass)
        if set(sus.pitch_classes()) <= set(key.scale_pcs()):
            return sus
    bass = chord.bass
    fitted = Chord(chord.root, new_q, None)
    if bass is not None and chord.bass_pc not in fitted.pitch_classes():
        bass = None
    return Chord(chord.root, new_q, bass)


def world_for(key: Key, chord: Chord) -> tuple[tuple[int, ...], str | None]:
    """(scale pitch classes every part uses while ``chord`` sounds, the mode it is borrowed from or None)."""
    tones = set(chord.pitch_classes()) | {chord.bass_pc}
    own = key.scale_pcs()
    if tones <= set(own):
        return own, None
    best: tuple[int, tuple[int, ...], str] | None = None
    for mode in PARALLEL_MODES:
        if mode == key.mode:
            continue
        scale = tuple((key.tonic_pc + i) % 12 for i in MODE_INTERVALS[mode])
        if tones <= set(scale):
            changes = len(set(own) - set(scale))
            if best is None or changes < best[0]:
                best = (changes, scale, mode)
    if best is not None:
        return best[1], best[2]
    # chromatic: each foreign tone displaces the scale tones a semitone away that are not chord tones
    pcs = set(own)
    for t in tones - set(own):
        for n in ((t + 1) % 12, (t - 1) % 12):
            if n in pcs and n not in tones:
                pcs.discard(n)
        pcs.add(t)
    ordered = sorted(pcs, key=lambda p: (p - key.tonic_pc) % 12)
    return tuple(ordered), "chromatic"


def avoid_pcs(chord_pcs) -> frozenset[int]:
    """Pitch classes a semitone above a chord tone: a melody note there sounds a minor 2nd/9th."""
    return frozenset((p + 1) % 12 for p in chord_pcs)


def clashes(upper: int, lower: int) -> bool:
    """Whether two pitches sound a minor second or minor ninth (any octave; a major seventh is not)."""
    hi, lo = max(upper, lower), min(upper, lower)
    return (hi - lo) % 12 == 1
