"""Training targets for the five networks, measured from MIDI.

Each function reads :class:`~kelly.ml.data.midi.NoteArrays` (and, where the layout is
relative to a key, the tonic pitch class) and returns a vector in the exact layout of a
network's output (:mod:`kelly.ml.schema`, ``docs/ml.md``):

=====================  ============================  ==========================================
network                output                        target here
=====================  ============================  ==========================================
MelodyTransformer      128 note probabilities, C     :func:`note_profile` (whole piece) and
                                                     :func:`note_steps` (one row per bar/beat)
HarmonyPredictor       64 chord classes (softmax)    :func:`chord_sequence` (one class per beat
                                                     or bar) and :func:`chord_distribution`
GroovePredictor        32 groove parameters (tanh)   :func:`groove_target` → (values, mask)
DynamicsEngine         16 expression params (0–1)    :func:`expression_target` → (values, mask)
EmotionRecognizer      64-d embedding from audio     not here: render audio (``render.py``) and
                                                     embed the labels (``schema.embed_vad``)
=====================  ============================  ==========================================

Masks
-----
Notated music (the music21 corpus, Kelly's own scores) has no performance in it: every
velocity is the writer's default, onsets sit on the grid, durations are the written
values. A parameter that such a file cannot tell is *not supervised*: its mask entry is
False and its value is the neutral one (0 for a tanh output, 0.5 for a sigmoid one), so
a training loss multiplies by the mask. What each entry needs is in :data:`GROOVE_NEEDS`
and :data:`EXPRESSION_NEEDS`:

* ``"notes"``: onsets and durations (any file);
* ``"dynamics"``: velocities that vary;
* ``"performed"``: onsets off the notation grid (a human or a humanizer played it);
* ``"drums"``: a General MIDI drum track; ``"bass+drums"`` also a bass part;
* ``"tempo_map"``: more than one tempo, or a performed file;
* ``"pedal"``: sustain-pedal events;
* ``None``: nothing in MIDI supervises it (attack, release, vibrato, pitch bend, swell,
  brightness, half-time/double-time feel, fills, shuffled hats): always masked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kelly.errors import InputError
from kelly.ml import schema
from kelly.ml.data.midi import (NoteArrays, bar_ticks, beat_ticks, key_of_c_shift, n_segments, segment_overlaps,
                                segment_ticks, transpose)

# --------------------------------------------------------------------------- melody


def note_profile(notes: NoteArrays, tonic: int) -> np.ndarray:
    """The MelodyTransformer's 128 outputs for a whole piece, in the key of C.

    Pitched notes are moved by :func:`~kelly.ml.data.midi.key_of_c_shift` (tonic → C by
    the smaller step, so the register barely changes); each pitch's sounding time is
    divided by the largest, so the most used pitch is 1 and unused ones 0.

    Returns
    -------
    np.ndarray [shape=(128,), dtype=float32], values in [0, 1]
    """
    moved = transpose(notes.pitched(), key_of_c_shift(tonic))
    h = np.bincount(moved.pitch, weights=moved.duration.astype(np.float64), minlength=schema.N_NOTES)
    top = h.max() if len(h) else 0.0
    return (h / top if top > 0 else h).astype(np.float32)


def note_steps(notes: NoteArrays, tonic: int, *, segment: str = "bar") -> np.ndarray:
    """Per-step MelodyTransformer targets: 1 where a pitch (key of C) sounds in the step.

    Returns
    -------
    np.ndarray [shape=(n_steps, 128), dtype=float32], values in {0, 1}
    """
    moved = transpose(notes.pitched(), key_of_c_shift(tonic))
    length = segment_ticks(notes, segment)
    n = n_segments(moved, length)
    out = np.zeros((n, schema.N_NOTES), dtype=np.float32)
    if n:
        idx, seg, _ = segment_overlaps(moved, length, n)
        out[seg, moved.pitch[idx]] = 1.0
    return out


# --------------------------------------------------------------------------- harmony
#: How a chord quality (:data:`kelly.theory.chords.QUALITIES`, which includes everything the
#: analysis detects) becomes one of the HarmonyPredictor's five rooted qualities when no special
#: class fits: added and extended tones are dropped down to the triad (with the dominant seventh
#: kept as ``7`` where the chord has a major third and a minor seventh).
QUALITY_TO_CLASS = {"maj": "maj", "min": "min", "7": "7", "dim": "dim", "sus4": "sus4", "maj7": "maj",
                    "min7": "min", "hdim7": "dim", "aug": "maj", "sus2": "sus4", "dim7": "dim", "power": "maj",
                    "5": "maj", "minmaj7": "min", "aug7": "7", "7sus4": "sus4", "6": "maj", "min6": "min",
                    "add9": "maj", "madd9": "min", "9": "7", "maj9": "maj", "min9": "min", "11": "7", "min11": "min"}


def chord_class_of(root_pc: int, quality: str, tonic: int) -> int:
    """The HarmonyPredictor class (0–63) of a chord ``root_pc`` + ``quality`` in the key of ``tonic``.

    Rooted qualities map directly; sevenths fold to their triad (maj7 → maj, min7 → min,
    half-diminished → dim); sus2 on a root is the same pitch set as sus4 a fifth higher,
    so it becomes that; the specials are used on the tonic (power chord 60, sus2 61,
    augmented 62) and for a diminished seventh containing the leading tone (63);
    elsewhere augmented and power chords become major and diminished sevenths diminished.
    """
    rel = (int(root_pc) - int(tonic)) % 12
    if quality in ("power", "5") and rel == 0:
        return 60
    if quality == "sus2":
        return 61 if rel == 0 else schema.chord_class_index((rel + 7) % 12, "sus4")
    if quality == "aug" and rel == 0:
        return 62
    if quality == "dim7" and 11 in {(rel + k) % 12 for k in (0, 3, 6, 9)}:
        return 63
    if quality not in QUALITY_TO_CLASS:
        raise InputError(f"unknown chord quality {quality!r}")
    return schema.chord_class_index(rel, QUALITY_TO_CLASS[quality])


def segment_pitch_weights(notes: NoteArrays, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window of ``length`` ticks: sounding ticks of each pitch class, and the lowest pitch (−1 if silent).

    Returns
    -------
    (weights, lowest) : np.ndarray [shape=(n, 12)] and np.ndarray [shape=(n,), dtype=int64]
    """
    p = notes.pitched()
    n = n_segments(p, length)
    weights = np.zeros((n, 12))
    lowest = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return weights, lowest
    idx, seg, ov = segment_overlaps(p, length, n)
    np.add.at(weights, (seg, p.pitch[idx] % 12), ov.astype(np.float64))
    low = np.full(n, 999, dtype=np.int64)
    np.minimum.at(low, seg, p.pitch[idx].astype(np.int64))
    lowest = np.where(low < 999, low, -1)
    return weights, lowest


def chord_sequence(notes: NoteArrays, tonic: int, *, segment: str = "beat", min_share: float = 0.04,
                   min_fit: float = 0.0) -> np.ndarray:
    """One HarmonyPredictor class per beat (or bar), −1 where no chord can be read.

    In each window the pitch classes sounding at least ``min_share`` of the window's
    sounding time are matched against Kelly's chord templates
    (:func:`kelly.theory.analysis.match_chord`, the lowest note as bass); exactly a root
    and its fifth is a power chord. A window with fewer than two pitch classes, or whose
    best template scores below ``min_fit``, is −1. In a solo melody a beat rarely holds
    a chord: use ``segment="bar"`` there, where the tune outlines its harmony.

    Returns
    -------
    np.ndarray [shape=(n_windows,), dtype=int16], values in −1 … 63
    """
    from kelly.theory.analysis import match_chord

    length = segment_ticks(notes, segment)
    weights, lowest = segment_pitch_weights(notes, length)
    out = np.full(len(weights), -1, dtype=np.int16)
    cache: dict[tuple, int] = {}
    for i, w in enumerate(weights):
        total = w.sum()
        if total <= 0:
            continue
        w = np.where(w / total >= min_share, w, 0.0)
        pcs = np.flatnonzero(w)
        if len(pcs) < 2:
            continue
        bass = int(lowest[i] % 12) if lowest[i] >= 0 else None
        key = (tuple(np.round(w / w.sum(), 3)), bass)
        if key not in cache:
            pcset = set(pcs.tolist())
            fifth = next((r for r in pcset if (r + 7) % 12 in pcset), None)
            if len(pcset) == 2 and fifth is not None:
                cache[key] = chord_class_of(fifth, "power", tonic)
            else:
                root, quality, score = match_chord(w, bass)
                cache[key] = chord_class_of(root, quality, tonic) if score >= min_fit else -1
        out[i] = cache[key]
    return out


def chord_distribution(sequence: np.ndarray) -> np.ndarray:
    """Share of each chord class among the readable windows of a :func:`chord_sequence` (sums to 1, or all 0).

    Returns
    -------
    np.ndarray [shape=(64,), dtype=float32]
    """
    seq = np.asarray(sequence)
    seq = seq[seq >= 0]
    h = np.bincount(seq, minlength=schema.N_CHORDS).astype(np.float64)
    return (h / h.sum() if h.sum() > 0 else h).astype(np.float32)


# --------------------------------------------------------------------------- performance facts
#: General MIDI drum notes by voice.
KICK = frozenset({35, 36})
SNARE = frozenset({37, 38, 40})
HAT_CLOSED = frozenset({42, 44})
HAT_OPEN = frozenset({46})
RIDE = frozenset({51, 53, 59})
TOMS = frozenset({41, 43, 45, 47, 48, 50})
CRASH = frozenset({49, 52, 55, 57})
PERCUSSION = frozenset({39, 54, 56, 58, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 73, 74, 75, 76, 77, 81})
#: Share of onsets off the notation grid (sixteenths and eighth-triplets, ±1/96 quarter) above which a
#: file counts as performed.
PERFORMED_SHARE = 0.2


@dataclass(frozen=True)
class Facts:
    """What a file can tell about performance (which masks are on)."""

    dynamics: bool
    performed: bool
    drums: bool
    bass: bool
    tempo_map: bool
    pedal: bool

    def has(self, need: str | None) -> bool:
        if need is None:
            return False
        if need == "notes":
            return True
        if need == "bass+drums":
            return self.drums and self.bass
        return bool(getattr(self, need))


def grid_deviation(notes: NoteArrays) -> np.ndarray:
    """Signed distance (ticks) of each onset from the nearest sixteenth or eighth-triplet position."""
    ppq = notes.ppq
    t = notes.onset.astype(np.float64)
    d16 = t - np.round(t / (ppq / 4)) * (ppq / 4)
    d12 = t - np.round(t / (ppq / 3)) * (ppq / 3)
    return np.where(np.abs(d16) <= np.abs(d12), d16, d12)


def quantized(notes: NoteArrays) -> NoteArrays:
    """The notes with each onset moved to its nearest sixteenth or eighth-triplet position (ends kept)."""
    if not len(notes):
        return notes
    q = notes.onset - np.round(grid_deviation(notes)).astype(np.int64)
    end = notes.onset + notes.duration
    return replace(notes, onset=q, duration=np.maximum(1, end - q))


def facts(notes: NoteArrays, *, dynamics: bool | None = None) -> Facts:
    """Which kinds of performance information ``notes`` carries.

    ``dynamics`` overrides the guess from the velocities (they vary): a score converted by
    music21 varies velocities for accent marks, which are not the piece's dynamics, so the
    corpus passes False unless the score had dynamic marks.
    """
    dev = np.abs(grid_deviation(notes)) if len(notes) else np.zeros(0)
    performed = bool(len(dev) >= 8 and np.mean(dev > notes.ppq / 96) > PERFORMED_SHARE)
    pitched = notes.pitched()
    bass = False
    if len(pitched):
        for t in np.unique(pitched.track):
            if np.median(pitched.pitch[pitched.track == t]) < 52:
                bass = True
                break
    varies = bool(len(notes) and np.ptp(notes.velocity) > 0)
    return Facts(dynamics=varies if dynamics is None else bool(dynamics and varies), performed=performed,
                 drums=bool(notes.is_drum.any()), bass=bass,
                 tempo_map=bool(len(np.unique(np.round(notes.tempos[:, 1], 3))) > 1 or performed),
                 pedal=notes.pedal_ticks > 0)


# --------------------------------------------------------------------------- groove
#: What each of the 32 groove outputs needs from the file (see the module docstring).
GROOVE_NEEDS: dict[str, str | None] = {
    "swing": "notes", "push_pull": "performed", "microtiming_ms": "performed", "ghost_prob": "dynamics",
    "kick_density": "drums", "snare_density": "drums", "hat_density": "drums", "ride_vs_hat": "drums",
    "tom_density": "drums", "crash_prob": "drums", "fill_prob": None, "syncopation": "notes",
    "backbeat_strength": "drums", "four_on_floor": "drums", "half_time": None, "double_time": None,
    "hat_open_prob": "drums", "downbeat_accent": "dynamics", "velocity_humanize": "dynamics",
    "timing_humanize": "performed", "subdivision": "notes", "triplet_feel": "notes",
    "kick_anticipation": "drums", "shuffle_hat": None, "percussion_density": "drums", "bass_lock": "bass+drums",
    "space": "notes", "complexity": "notes", "variation": "notes", "energy_build": "notes",
    "tempo_drift": "tempo_map", "dynamic_contrast": "dynamics",
}
assert tuple(GROOVE_NEEDS) == schema.GROOVE_PARAMS


def _unit(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def _bi(x: float) -> float:
    return float(np.clip(x, -1.0, 1.0))


def groove_target(notes: NoteArrays, *, dynamics: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The GroovePredictor's 32 outputs measured from a file, and which of them it supervises.

    Values are in the network's tanh space: a unipolar parameter ``u`` in [0, 1] is
    stored as ``2u − 1`` (so ``schema.groove_dict`` reads ``u`` back); bipolar ones keep
    their sign. Unsupervised entries are 0 with mask False. Formulas (``u`` values):

    * swing: ``(r − 1)`` clipped, ``r`` = long/short ratio of off-beat eighths (median
      position ``p`` of onsets between 0.40 and 0.72 of a beat, ``r = p / (1 − p)``);
      needs four such onsets (else masked);
    * push_pull (±): −mean signed grid deviation / 15 ms (late = laid back = −);
      microtiming_ms: std of the deviation / 30 ms; timing_humanize: mean |deviation| / 20 ms;
    * ghost_prob: share of notes with velocity < 40; downbeat_accent: (mean velocity on
      downbeats − mean) / 20; velocity_humanize: velocity std / 20; dynamic_contrast:
      std of per-bar mean velocity / 15;
    * drums, per bar: kick onsets / 8, snare onsets beyond beats 2 and 4 / 4, hat onsets /
      16, toms / 4, percussion / 8; ride_vs_hat (±) (ride − hat) / (ride + hat); crash_prob:
      share of 4-bar phrase starts with a crash; backbeat_strength: share of beats 2 and 4
      (in 4/4) with a snare; four_on_floor (±): 2 × share of beats with a kick − 1;
      hat_open_prob: open / all hats; kick_anticipation: share of bars whose last eighth
      has a kick; bass_lock: share of kicks with a bass onset within a 32nd;
    * syncopation: share of onsets off the beat that sound across the next beat, × 2;
      subdivision (±): 4 × (share of onsets on odd sixteenths) − 1; triplet_feel: 2 × share
      of onsets on eighth-triplet positions that are not on the sixteenth grid;
    * space: share of the piece with nothing sounding; complexity: entropy of onset
      positions on the bar's sixteenth grid / log2(sixteenths per bar); variation: mean
      Jaccard distance between successive bars' onset patterns; energy_build (±): (onsets
      in the second half − first half) / (both), velocity-weighted;
    * tempo_drift (±): (last bpm − first bpm) / first bpm × 5.

    ``dynamics``: see :func:`facts`.

    Returns
    -------
    (values, mask) : np.ndarray [shape=(32,), dtype=float32], np.ndarray [shape=(32,), dtype=bool]
    """
    f = facts(notes, dynamics=dynamics)
    u: dict[str, float] = {}
    raw = notes
    notes = quantized(notes)  # positions on the grid; timing deviations come from ``raw``
    ppq = notes.ppq
    bar = bar_ticks(ppq, notes.meter)
    beat = beat_ticks(ppq, notes.meter)
    n_bars = max(1, n_segments(notes, bar))
    pitched = notes.pitched()
    onsets = np.unique(notes.onset)
    # swing: off-beat eighths, where they were played
    pos = (np.unique(raw.onset) % ppq) / ppq
    off = pos[(pos >= 0.40) & (pos <= 0.72)]
    swing_ok = len(off) >= 4
    if swing_ok:
        p = float(np.median(off))
        u["swing"] = _unit(p / (1.0 - p) - 1.0)
    # timing
    if len(raw):
        dev_ticks = grid_deviation(raw)
        dev_ms = dev_ticks * 60000.0 / (np.interp(raw.onset, raw.tempos[:, 0], raw.tempos[:, 1]) * ppq)
        u["push_pull"] = _bi(-float(dev_ms.mean()) / 15.0)
        u["microtiming_ms"] = _unit(float(dev_ms.std()) / 30.0)
        u["timing_humanize"] = _unit(float(np.abs(dev_ms).mean()) / 20.0)
    # dynamics
    vel = notes.velocity.astype(np.float64)
    bar_of = notes.onset // bar
    if len(notes):
        u["ghost_prob"] = _unit(float(np.mean(vel < 40)))
        down = (notes.onset % bar) == 0
        u["downbeat_accent"] = _unit((float(vel[down].mean()) - float(vel.mean())) / 20.0) if down.any() else 0.0
        u["velocity_humanize"] = _unit(float(vel.std()) / 20.0)
        sums = np.bincount(bar_of, weights=vel, minlength=n_bars)
        counts = np.bincount(bar_of, minlength=n_bars)
        means = sums[counts > 0] / counts[counts > 0]
        u["dynamic_contrast"] = _unit(float(means.std()) / 15.0) if len(means) > 1 else 0.0
    # drums
    drums = notes.drums()
    if len(drums):
        dp = drums.pitch
        dbar = drums.onset // bar

        def per_bar(voice) -> float:
            return float(np.isin(dp, list(voice)).sum()) / n_bars

        u["kick_density"] = _unit(per_bar(KICK) / 8.0)
        snare = np.isin(dp, list(SNARE))
        beat_no = (drums.onset % bar) // beat
        on_beat = (drums.onset % beat) == 0
        backbeat = snare & on_beat & np.isin(beat_no, [1, 3])
        u["snare_density"] = _unit(float((snare & ~backbeat).sum()) / n_bars / 4.0)
        hats = np.isin(dp, list(HAT_CLOSED | HAT_OPEN))
        u["hat_density"] = _unit(float(hats.sum()) / n_bars / 16.0)
        ride = np.isin(dp, list(RIDE)).sum()
        if ride + hats.sum() > 0:
            u["ride_vs_hat"] = _bi(float(ride - hats.sum()) / float(ride + hats.sum()))
        u["tom_density"] = _unit(per_bar(TOMS) / 4.0)
        phrase_starts = np.arange(0, n_bars, 4)
        crash_bars = np.unique(dbar[np.isin(dp, list(CRASH)) & ((drums.onset % bar) < beat // 2)])
        u["crash_prob"] = _unit(float(np.isin(phrase_starts, crash_bars).mean()))
        num, den = notes.meter
        beats_per_bar = max(1, bar // beat)
        if (num, den) == (4, 4):
            hit = np.unique(dbar[backbeat] * 4 + beat_no[backbeat])
            u["backbeat_strength"] = _unit(len(hit) / (2.0 * n_bars))
        kick = np.isin(dp, list(KICK))
        kick_beats = np.unique(dbar[kick & on_beat] * beats_per_bar + beat_no[kick & on_beat])
        u["four_on_floor"] = _bi(2.0 * len(kick_beats) / (beats_per_bar * n_bars) - 1.0)
        if hats.any():
            u["hat_open_prob"] = _unit(float(np.isin(dp, list(HAT_OPEN)).sum()) / float(hats.sum()))
        last_eighth = (drums.onset % bar) >= bar - ppq // 2
        u["kick_anticipation"] = _unit(len(np.unique(dbar[kick & last_eighth])) / n_bars)
        u["percussion_density"] = _unit(per_bar(PERCUSSION) / 8.0)
        if f.bass and kick.any():
            bass_tracks = [t for t in np.unique(pitched.track) if np.median(pitched.pitch[pitched.track == t]) < 52]
            bass_on = np.unique(pitched.onset[np.isin(pitched.track, bass_tracks)])
            if len(bass_on):
                k_on = drums.onset[kick]
                j = np.searchsorted(bass_on, k_on)
                left = bass_on[np.clip(j - 1, 0, len(bass_on) - 1)]
                right = bass_on[np.clip(j, 0, len(bass_on) - 1)]
                near = np.minimum(np.abs(left - k_on), np.abs(right - k_on))
                u["bass_lock"] = _unit(float(np.mean(near <= ppq // 8)))
    # rhythm from onsets (all notes)
    if len(onsets):
        beat_pos = onsets % beat
        off_beat = beat_pos != 0
        inverse = np.searchsorted(onsets, notes.onset)
        ends = np.zeros(len(onsets), dtype=np.int64)
        np.maximum.at(ends, inverse, notes.onset + notes.duration)
        next_beat = (onsets // beat + 1) * beat
        u["syncopation"] = _unit(2.0 * float(np.mean(off_beat & (ends > next_beat))))
        sixteenth = ppq // 4
        on16 = (onsets % sixteenth) == 0
        odd16 = on16 & (((onsets // sixteenth) % 2) == 1)
        u["subdivision"] = _bi(4.0 * float(np.mean(odd16)) - 1.0)
        trip = ((onsets % (ppq // 3)) == 0) & ~on16
        u["triplet_feel"] = _unit(2.0 * float(np.mean(trip)))
        # space: share of time with nothing sounding
        end = notes.end_tick
        if end > 0:
            order = np.argsort(notes.onset)
            s = notes.onset[order]
            e = np.maximum.accumulate((notes.onset + notes.duration)[order])
            gaps = np.maximum(0, s[1:] - e[:-1]).sum() + s[0]
            u["space"] = _unit(float(gaps) / float(end))
        # complexity and variation on the bar's sixteenth grid
        slots = max(1, bar // sixteenth)
        slot = np.clip((onsets % bar) // sixteenth, 0, slots - 1)
        hist = np.bincount(slot, minlength=slots).astype(np.float64)
        pr = hist / hist.sum()
        ent = -(pr[pr > 0] * np.log2(pr[pr > 0])).sum()
        u["complexity"] = _unit(float(ent) / np.log2(slots)) if slots > 1 else 0.0
        obar = onsets // bar
        patterns = np.zeros((n_bars, slots), dtype=bool)
        patterns[np.clip(obar, 0, n_bars - 1), slot] = True
        if n_bars >= 2:
            a, b = patterns[:-1], patterns[1:]
            union = (a | b).sum(axis=1)
            inter = (a & b).sum(axis=1)
            keep = union > 0
            u["variation"] = _unit(float(np.mean(1.0 - inter[keep] / union[keep]))) if keep.any() else 0.0
        half = end / 2.0
        w = vel if f.dynamics else np.ones(len(notes))
        first = float(w[notes.onset < half].sum())
        second = float(w[notes.onset >= half].sum())
        u["energy_build"] = _bi((second - first) / (first + second)) if first + second > 0 else 0.0
    if len(notes.tempos) >= 1:
        u["tempo_drift"] = _bi((notes.tempos[-1, 1] - notes.tempos[0, 1]) / notes.tempos[0, 1] * 5.0)

    values = np.zeros(schema.N_GROOVE, dtype=np.float32)
    mask = np.zeros(schema.N_GROOVE, dtype=bool)
    for i, (name, bipolar, _) in enumerate(schema.GROOVE_SPEC):
        need = GROOVE_NEEDS[name]
        ok = f.has(need) and name in u and len(notes) > 0
        if name == "swing":
            ok = ok and swing_ok
        if ok:
            values[i] = u[name] if bipolar else 2.0 * u[name] - 1.0
            mask[i] = True
    return values, mask


# --------------------------------------------------------------------------- expression
#: What each of the 16 expression outputs needs from the file.
EXPRESSION_NEEDS: dict[str, str | None] = {
    "velocity_base": "dynamics", "velocity_range": "dynamics", "accent": "dynamics", "legato": "performed",
    "timing_spread": "performed", "crescendo": "dynamics", "rubato": "tempo_map", "sustain_pedal": "pedal",
    "attack": None, "release": None, "vibrato": None, "pitch_bend": None, "phrase_arch": "dynamics",
    "swell": None, "brightness": None, "humanize": "performed",
}
assert tuple(EXPRESSION_NEEDS) == schema.EXPRESSION_PARAMS


def expression_target(notes: NoteArrays, *, dynamics: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The DynamicsEngine's 16 outputs measured from a file, and which of them it supervises.

    Formulas (all clipped to [0, 1]):

    * velocity_base: mean velocity of the loudest part (by its mean) / 127; velocity_range: (95th − 5th percentile) / 2 / 40;
      accent: (mean velocity on beats − mean off them) / 20;
    * legato: median of (duration / time to the same track's next onset), mapped
      ``(ratio − 0.3) / 0.8`` (0.3 of the slot → 0, full value → 0.875, overlapping → 1);
    * timing_spread: std of the grid deviation / 40 ms;
    * crescendo: 0.5 + 0.5 × (mean velocity of the last third − first third) / 20;
    * rubato: coefficient of variation of the tempo map × 5;
    * sustain_pedal: share of the piece with the pedal down;
    * phrase_arch: 0.5 + (velocity in the middle of each 4-bar phrase − at its ends) / 20;
    * humanize: (mean |grid deviation| / 20 ms + velocity std / 20) / 2.

    Pitched notes only (drums excluded). Unsupervised entries are 0.5 with mask False.
    ``dynamics``: see :func:`facts`.

    Returns
    -------
    (values, mask) : np.ndarray [shape=(16,), dtype=float32], np.ndarray [shape=(16,), dtype=bool]
    """
    f = facts(notes, dynamics=dynamics)
    raw = notes.pitched()
    p = quantized(raw)
    u: dict[str, float] = {}
    if len(p):
        ppq = p.ppq
        vel = p.velocity.astype(np.float64)
        bar = bar_ticks(ppq, p.meter)
        beat = beat_ticks(ppq, p.meter)
        # the lead's level: the mean velocity of the part that plays loudest on average (a solo
        # performance is that part; in an arrangement the pads and inner parts sit under it), which
        # is what the composer's base velocity means (kelly.engines.dynamics shifts from it)
        leads = [vel[p.track == t].mean() for t in np.unique(p.track)]
        u["velocity_base"] = _unit(max(leads) / 127.0)
        u["velocity_range"] = _unit((np.percentile(vel, 95) - np.percentile(vel, 5)) / 2.0 / 40.0)
        on_beat = (p.onset % beat) == 0
        if on_beat.any() and (~on_beat).any():
            u["accent"] = _unit((vel[on_beat].mean() - vel[~on_beat].mean()) / 20.0)
        else:
            u["accent"] = 0.0
        ratios = []
        for t in np.unique(p.track):
            sel = p.track == t
            on = p.onset[sel]
            du = p.duration[sel]
            uniq = np.unique(on)
            if len(uniq) < 2:
                continue
            nxt = np.searchsorted(uniq, on, side="right")
            has = nxt < len(uniq)
            ioi = uniq[np.minimum(nxt, len(uniq) - 1)] - on
            ratios.append(du[has] / np.maximum(1, ioi[has]))
        if ratios:
            ratio = float(np.median(np.concatenate(ratios)))
            u["legato"] = _unit((ratio - 0.3) / 0.8)
        dev_ms = grid_deviation(raw) * 60000.0 / (np.interp(raw.onset, raw.tempos[:, 0], raw.tempos[:, 1]) * ppq)
        u["timing_spread"] = _unit(float(dev_ms.std()) / 40.0)
        end = p.end_tick
        third = end / 3.0
        a, b = vel[p.onset < third], vel[p.onset >= 2 * third]
        u["crescendo"] = _unit(0.5 + 0.5 * ((b.mean() if len(b) else 0) - (a.mean() if len(a) else 0)) / 20.0) \
            if len(a) and len(b) else 0.5
        bpms = p.tempos[:, 1]
        u["rubato"] = _unit(float(bpms.std() / bpms.mean()) * 5.0) if len(bpms) > 1 else 0.0
        u["sustain_pedal"] = _unit(p.pedal_ticks / max(1, end))
        phrase = 4 * bar
        pos = (p.onset % phrase) / phrase
        mid = (pos >= 0.25) & (pos < 0.75)
        u["phrase_arch"] = _unit(0.5 + (vel[mid].mean() - vel[~mid].mean()) / 20.0) \
            if mid.any() and (~mid).any() else 0.5
        u["humanize"] = _unit((float(np.abs(dev_ms).mean()) / 20.0 + float(vel.std()) / 20.0) / 2.0)
    values = np.full(schema.N_EXPRESSION, 0.5, dtype=np.float32)
    mask = np.zeros(schema.N_EXPRESSION, dtype=bool)
    for i, name in enumerate(schema.EXPRESSION_PARAMS):
        if f.has(EXPRESSION_NEEDS[name]) and name in u:
            values[i] = u[name]
            mask[i] = True
    return values, mask


# --------------------------------------------------------------------------- everything at once
@dataclass(frozen=True)
class PieceTargets:
    """All network targets of one piece (shapes as in :mod:`kelly.ml.schema`)."""

    tonic: int
    pitch_classes: np.ndarray      # (12,) distribution, tonic = 0
    note_profile: np.ndarray       # (128,) key of C, max 1
    chords: np.ndarray             # (n_windows,) classes, −1 unknown
    chord_distribution: np.ndarray  # (64,) sums to 1 or all 0
    groove: np.ndarray             # (32,) tanh space
    groove_mask: np.ndarray        # (32,) bool
    expression: np.ndarray         # (16,) [0, 1]
    expression_mask: np.ndarray    # (16,) bool


def piece_targets(notes: NoteArrays, tonic: int, *, chord_segment: str | None = None,
                  dynamics: bool | None = None) -> PieceTargets:
    """Every target of one piece. ``chord_segment`` defaults to ``"beat"`` for music with
    several voices and ``"bar"`` for a single line (one note at a time); ``dynamics`` as in
    :func:`facts` (pass ``record["label_terms"]["dynamics"]`` for a converted corpus piece)."""
    from kelly.ml.data.midi import pitch_class_distribution

    if chord_segment is None:
        p = notes.pitched()
        poly = len(np.unique(p.onset)) < len(p) or len(np.unique(p.track)) > 1
        chord_segment = "beat" if poly else "bar"
    chords = chord_sequence(notes, tonic, segment=chord_segment)
    groove, gmask = groove_target(notes, dynamics=dynamics)
    expr, emask = expression_target(notes, dynamics=dynamics)
    return PieceTargets(tonic=int(tonic) % 12, pitch_classes=pitch_class_distribution(notes, tonic),
                        note_profile=note_profile(notes, tonic), chords=chords,
                        chord_distribution=chord_distribution(chords), groove=groove, groove_mask=gmask,
                        expression=expr, expression_mask=emask)
