"""Compound-word tokens: a :class:`~kelly.song.Song` as rows of family indices, and back.

Each step of a sequence is one *compound word* (Hsiao et al. 2021): an int64 row with one
index per family of :data:`FAMILIES`. The conventions are MidiTok's CPWord ones (a type
family first; bar and position sharing one metric family; 32 velocity bins with MidiTok's
values; the program family with drums as program ``-1``; tempo and time signature as
families), with index 0 of every family but ``type`` meaning NONE ("does not apply").

Why our own tokenizer and not MidiTok's ``CPWord``
-------------------------------------------------
MidiTok 3.1.0's ``CPWord(TokenizerConfig(num_velocities=32, use_programs=True,
one_token_stream_for_programs=True, use_time_signatures=True, use_tempos=True,
beat_res={(0, 4): 12, (4, 16): 4}))`` was tried on Kelly's pieces first. It encodes them
(about 20 ms for a 32-bar, 7-track 6/8 piece once warm, 80–130 ms for the first call) but
does not fit:

* its beats are the time signature's denominator, so in 6/8 both the position grid and the
  longest duration are counted in eighth notes: a 16-beat ``beat_res`` holds only 8
  quarter notes there, and Kelly's pads hold notes for 16;
* every family starts with ``PAD, BOS, EOS, MASK, Ignore`` (``Ignore`` is index 4), so the
  "index 0 is NONE" convention the model and the grammar share needs a remapping layer of
  every vocabulary anyway; BOS/EOS live in every family and tempo is repeated on every
  position;
* tracks are merged by program, so the parts Kelly tells apart by role are lost: Drums and
  Percussion are both program −1, and Kelly's melody shares its program with the chords
  ("neutral": piano) or the counter-melody ("grief": cello); the melody cannot be found
  again after a round trip;
* its decoder has no notion of a repair report, and a grammar for constrained decoding
  would have to mirror its private position/duration tables;
* it would make ``generate`` import MidiTok (and through it ``huggingface_hub`` and
  ``tokenizers``) where numpy suffices.

So the tokenizer is ours, in MidiTok's conventions, vectorised with numpy (encode of a
32-bar, 7-track piece of 1,240 notes: about 1 ms; decode with its repair pass about 8 ms),
with a ``role`` family added so that parts survive the round trip.

Families and sizes (default settings)
-------------------------------------
============  ====  ===============================================================
family        size  values
============  ====  ===============================================================
``type``         6  PAD 0, BOS 1, EOS 2, BAR 3, POSITION 4, NOTE 5
``position``    97  NONE, then the step in the bar 0…95 (12 a quarter note; 96 steps in 4/2)
``program``    130  NONE, drums (program −1), then GM programs 0…127
``role``        10  NONE, then :class:`~kelly.song.Role` in its order (melody … fx)
``pitch``      129  NONE, then MIDI pitch 0…127
``duration``    97  NONE, then 96 duration bins (see :data:`DURATION_STEPS`)
``velocity``    33  NONE, then 32 bins 3, 7, 11 … 127 (MidiTok's values)
``tempo``       65  NONE, then 64 geometric bins 40…250 BPM, rounded to whole BPM
``meter``       24  NONE, then :data:`METERS` (4/4, 3/4, 6/8 first)
============  ====  ===============================================================

A sequence is ``BOS, (BAR, (POSITION, NOTE+)*)+, EOS``. Each BAR carries the meter
(first bar only) and the tempo (first bar always, later bars only when it changes: NONE
there means "unchanged"); each POSITION carries the step in the bar, strictly after the
previous one; each NOTE carries program, role, pitch, duration and velocity. Notes of one
position are in the order (program, role, pitch). Family order puts program and role
before pitch, because the grammar's pitch mask depends on them (drum key range, no
duplicate note).

Quantization (default resolution 12 steps a quarter note = 40 ticks at 480 PPQ)
-------------------------------------------------------------------------------
* onsets to the nearest step: at most 20 ticks (1/24 of a quarter note) off; sixteenths
  (3 steps), eighth triplets (4) and sixteenth triplets (2) are exact;
* durations to the nearest bin: every step up to 4 quarter notes (≤ 20 ticks off, at least
  one step long), then sixteenths up to 8 quarters (≤ 60 ticks), eighths up to 16
  (≤ 120), quarters up to 32 (≤ 240): never more than 20 ticks or 3.2 % off; longer notes
  are cut to 32 quarter notes;
* velocities to the nearest of 3, 7 … 127: at most 2 off;
* tempos to the nearest (in log scale) of 64 geometric bins from 40 to 250 BPM, rounded
  to whole BPM (40, 41, 42, 44 … 121, 124, 128, 132 … 243, 250): at most 1.5 % + 0.5 BPM
  off inside that range (slower and faster tempos are clamped to it); a tempo change moves
  to the bar line it is in force at (the tempo of each bar is the one in force at its first
  tick), so a change in the middle of a bar is heard from the next bar;
* the meter of a song is its time signature (one per song); key signature, markers,
  controllers and track names are not tokens.

What encode drops: notes of zero or negative length (:meth:`kelly.song.Song.to_bytes`
does not write them either), a second note with the same onset, program, role and pitch
after quantization (the longer is kept), and notes beyond
:attr:`CompoundTokenizer.max_notes_per_position` at one onset. Songs in a meter outside
:data:`METERS`, or longer than :attr:`CompoundTokenizer.max_bars` bars, are refused with an
:class:`~kelly.errors.InputError`.

Decoding
--------
One :class:`~kelly.song.Track` per (program, role), at 480 PPQ: drums (program −1) on MIDI
channel 10 (index 9, Track.program 0), the others on channels 1–9, 11–16 in order (shared
beyond fifteen parts). Tracks are ordered by role (melody first) then program and named by
role with Kelly's own part names (Melody, Chords, Bass, Pad, Strings, Counter-melody,
Drums, Percussion, FX); where several programs share a role each name adds the General
MIDI instrument ("Melody (Flute)"). So the melody is the track whose role is
``Role.MELODY``, named "Melody". Tracks read from files without a role get one from their
program (:func:`role_for_program`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from kelly.errors import InputError
from kelly.song import DRUM_CHANNEL, MAX_BARS, PPQ, Note, Role, Song, Track
from kelly.song import _Repairs  # one line per kind of repair with a count, as the MIDI reader reports

if TYPE_CHECKING:
    from kelly.transformer.grammar import Grammar

#: Family names, in row order. ``FAMILIES[0] == "type"``.
FAMILIES: tuple[str, ...] = ("type", "position", "program", "role", "pitch", "duration", "velocity", "tempo",
                             "meter")
#: Row index of each family.
FAMILY_INDEX: dict[str, int] = {name: i for i, name in enumerate(FAMILIES)}
F_TYPE, F_POSITION, F_PROGRAM, F_ROLE, F_PITCH, F_DURATION, F_VELOCITY, F_TEMPO, F_METER = range(len(FAMILIES))

#: Type names, by type id.
TYPE_NAMES: tuple[str, ...] = ("PAD", "BOS", "EOS", "BAR", "POSITION", "NOTE")
PAD, BOS, EOS, BAR, POSITION, NOTE = range(len(TYPE_NAMES))
NONE = 0

#: Meters the tokenizer knows, (numerator, denominator); family index is position here + 1.
METERS: tuple[tuple[int, int], ...] = (
    (4, 4), (3, 4), (6, 8),
    (1, 4), (2, 4), (5, 4), (6, 4), (7, 4),
    (1, 2), (2, 2), (3, 2),
    (2, 8), (3, 8), (4, 8), (5, 8), (7, 8), (8, 8), (9, 8), (10, 8), (11, 8), (12, 8),
    (1, 1), (4, 2),  # 4/2: Palestrina's alla breve
)

#: Roles in family order (index = position here + 1).
ROLES: tuple[Role, ...] = tuple(Role)
#: Roles a drum-kit part (program −1) may have, and roles any other part may have.
DRUM_ROLES = frozenset({Role.DRUMS, Role.PERCUSSION})
PITCHED_ROLES = frozenset(r for r in Role if r is not Role.DRUMS)

#: Kelly's part name for each role (what the rule engines call their tracks).
ROLE_TRACK_NAMES = {Role.MELODY: "Melody", Role.HARMONY: "Chords", Role.BASS: "Bass", Role.PAD: "Pad",
                    Role.STRINGS: "Strings", Role.COUNTER: "Counter-melody", Role.DRUMS: "Drums",
                    Role.PERCUSSION: "Percussion", Role.FX: "FX"}

#: The General MIDI level 1 instrument names, by program.
GM_PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano", "Electric Piano 1",
    "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba",
    "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello",
    "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Voice",
    "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)",
    "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)

# (first program, last program, role): the role of a part known only by its program.
_PROGRAM_ROLES = (
    (0, 7, Role.HARMONY),        # pianos
    (8, 15, Role.MELODY),        # chromatic percussion (celesta, glockenspiel, vibraphone, marimba …)
    (16, 23, Role.HARMONY),      # organs, accordions, harmonica
    (24, 31, Role.HARMONY),      # guitars
    (32, 39, Role.BASS),         # basses
    (40, 51, Role.STRINGS),      # strings, harp, timpani, string ensembles
    (52, 54, Role.PAD),          # choir, voices
    (55, 55, Role.FX),           # orchestra hit
    (56, 60, Role.MELODY),       # solo brass
    (61, 63, Role.HARMONY),      # brass sections
    (64, 87, Role.MELODY),       # reeds, pipes, synth leads
    (88, 95, Role.PAD),          # synth pads
    (96, 103, Role.FX),          # synth effects
    (104, 111, Role.MELODY),     # ethnic (sitar, banjo, koto, bagpipe, fiddle …)
    (112, 119, Role.PERCUSSION),  # percussive (bells, steel drums, woodblock, taiko …)
    (120, 127, Role.FX),         # sound effects
)


def role_for_program(program: int) -> Role:
    """The role of a part known only by its program (``-1``: a drum kit).

    Pianos, organs, guitars and brass sections → harmony; basses (32–39) → bass;
    strings, harp and ensembles (40–51) → strings; voices and synth pads (52–54, 88–95)
    → pad; chromatic percussion, solo brass, reeds, pipes, synth leads and ethnic
    instruments → melody; percussive programs (112–119) → percussion; effects → fx.
    """
    if program < 0:
        return Role.DRUMS
    for lo, hi, role in _PROGRAM_ROLES:
        if lo <= program <= hi:
            return role
    return Role.MELODY


def _duration_steps(res: int) -> np.ndarray:
    """Duration bins in steps: every step to 4 quarters, then sixteenths to 8, eighths to 16, quarters to 32."""
    parts = [np.arange(1, 4 * res + 1)]
    for lo, hi, step in ((4, 8, res // 4), (8, 16, res // 2), (16, 32, res)):
        parts.append(np.arange(lo * res + step, hi * res + 1, step))
    return np.concatenate(parts).astype(np.int64)


def _nearest(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``bins`` for each value (ties go to the larger bin)."""
    mids = (bins[1:] + bins[:-1]) / 2.0
    return np.searchsorted(mids, values, side="right")


class CompoundTokenizer:
    """Songs as compound-word tokens and back; the grammar of valid sequences.

    The vocabulary is fixed by the settings (nothing is learnt from data), so the same
    settings always give the same vocabulary. The defaults are the ones documented in this
    module and in docs/transformer.md; models are trained for them.

    Parameters
    ----------
    resolution : int
        Steps per quarter note; must divide 480 and be a multiple of 4 (default 12: 40
        ticks, sixteenths and triplets exact).
    num_velocities : int
        Velocity bins (MidiTok's values ``linspace(0, 127, n + 1)[1:]`` truncated).
    num_tempos : int
        Tempo bins, geometric between ``tempo_range``.
    tempo_range : (float, float)
        Slowest and fastest tempo bin, in BPM.
    max_notes_per_position : int
        Most notes at one onset (encode keeps the first in token order; the grammar and
        repair hold sequences to it), so that a sampled sequence always ends.
    drum_pitch_range : (int, int)
        Lowest and highest drum key the grammar offers for drum notes (MidiTok's default,
        27–87; General MIDI's kit is 35–81). Encode and decode keep any drum key.
    """

    sizes: tuple[int, ...]
    NONE: int = NONE
    PAD: int = PAD
    BOS: int = BOS
    EOS: int = EOS
    BAR: int = BAR
    POSITION: int = POSITION
    NOTE: int = NOTE
    DRUMS: int = 1  # index of program -1 in the program family

    def __init__(self, *, resolution: int = 12, num_velocities: int = 32, num_tempos: int = 64,
                 tempo_range: tuple[float, float] = (40.0, 250.0), max_notes_per_position: int = 64,
                 drum_pitch_range: tuple[int, int] = (27, 87)) -> None:
        if not isinstance(resolution, int) or resolution < 4 or resolution % 4 or PPQ % resolution:
            raise InputError(f"resolution must be a multiple of 4 that divides {PPQ}, got {resolution!r}")
        if not 2 <= num_velocities <= 127:
            raise InputError(f"num_velocities must be from 2 to 127, got {num_velocities!r}")
        lo_bpm, hi_bpm = (float(x) for x in tempo_range)
        if not (num_tempos >= 2 and 0 < lo_bpm < hi_bpm and math.isfinite(hi_bpm)):
            raise InputError(f"need at least 2 tempo bins over a range 0 < slow < fast, got {num_tempos} over "
                             f"{tempo_range}")
        if not 1 <= max_notes_per_position <= 1024:
            raise InputError(f"max_notes_per_position must be from 1 to 1024, got {max_notes_per_position!r}")
        dlo, dhi = drum_pitch_range
        if not 0 <= dlo <= dhi <= 127:
            raise InputError(f"drum_pitch_range must be 0 <= low <= high <= 127, got {drum_pitch_range!r}")
        self.resolution = resolution
        self.ticks_per_step = PPQ // resolution
        self.meters = METERS
        self.steps_per_bar = tuple(resolution * 4 * n // d for n, d in METERS)
        self.max_positions = max(self.steps_per_bar)
        self.duration_steps = _duration_steps(resolution)
        self.velocities = np.linspace(0, 127, num_velocities + 1).astype(np.int64)[1:]
        self.tempos = np.round(np.geomspace(lo_bpm, hi_bpm, num_tempos))  # whole BPM, as a DAW shows them
        if len(np.unique(self.tempos)) != num_tempos:
            raise InputError(f"{num_tempos} tempo bins over {tempo_range} would not be whole BPM apart")
        self._log_tempos = np.log(self.tempos)
        self.max_notes_per_position = int(max_notes_per_position)
        self.drum_pitch_range = (int(dlo), int(dhi))
        #: Longest sequence, in bars (kelly.song.MAX_BARS: what read_midi reads back).
        self.max_bars = MAX_BARS
        self.sizes = (len(TYPE_NAMES), 1 + self.max_positions, 2 + 128, 1 + len(ROLES), 1 + 128,
                      1 + len(self.duration_steps), 1 + num_velocities, 1 + num_tempos, 1 + len(METERS))
        self._meter_index = {m: i + 1 for i, m in enumerate(METERS)}
        self._role_index = {r: i + 1 for i, r in enumerate(ROLES)}
        #: [program index, role index] -> allowed together (program NONE and role NONE never).
        ok = np.zeros((self.sizes[F_PROGRAM], self.sizes[F_ROLE]), dtype=bool)
        ok[1, [self._role_index[r] for r in DRUM_ROLES]] = True
        ok[2:, [self._role_index[r] for r in PITCHED_ROLES]] = True
        self.role_allowed = ok
        self.default_meter = 1  # 4/4
        self.default_tempo = int(self.tempo_index(120.0))

    # ------------------------------------------------------------------ values <-> indices
    def __repr__(self) -> str:
        return ("CompoundTokenizer(" + ", ".join(f"{f}={s}" for f, s in zip(FAMILIES, self.sizes)) + ")")

    def meter_index(self, meter: str | tuple[int, int]) -> int:
        """Meter family index of ``"3/4"`` or ``(3, 4)``; InputError for a meter not in :data:`METERS`."""
        try:
            if isinstance(meter, str):
                num, _, den = meter.partition("/")
                key = (int(num), int(den))
            else:
                key = (int(meter[0]), int(meter[1]))
        except (TypeError, ValueError, IndexError):
            raise InputError(f"meter must look like '3/4', got {meter!r}") from None
        if key not in self._meter_index:
            raise InputError(f"the tokenizer does not know the meter {key[0]}/{key[1]}; it knows "
                             + ", ".join(f"{n}/{d}" for n, d in METERS))
        return self._meter_index[key]

    def meter_of(self, index: int) -> tuple[int, int]:
        """(numerator, denominator) of a meter family index."""
        return METERS[index - 1]

    def tempo_index(self, bpm: float) -> int:
        """Tempo family index of the bin nearest ``bpm`` (in log scale; clamped to the range)."""
        bpm = float(bpm)
        if not (bpm > 0 and math.isfinite(bpm)):
            raise InputError(f"tempo must be a positive number of BPM, got {bpm!r}")
        return int(_nearest(np.array([math.log(bpm)]), self._log_tempos)[0]) + 1

    def tempo_of(self, index: int) -> float:
        return float(self.tempos[index - 1])

    def program_index(self, program: int) -> int:
        """Program family index of a GM program 0–127, or −1 for drums."""
        program = int(program)
        if not -1 <= program <= 127:
            raise InputError(f"program must be -1 (drums) or 0-127, got {program}")
        return program + 2

    def program_of(self, index: int) -> int:
        return int(index) - 2

    def role_index(self, role: Role | str) -> int:
        try:
            return self._role_index[Role(role)]
        except ValueError:
            raise InputError(f"unknown role {role!r}; roles are: {', '.join(r.value for r in ROLES)}") from None

    def role_of(self, index: int) -> Role:
        return ROLES[int(index) - 1]

    def duration_ticks(self, index: int) -> int:
        return int(self.duration_steps[int(index) - 1]) * self.ticks_per_step

    def velocity_of(self, index: int) -> int:
        return int(self.velocities[int(index) - 1])

    def describe(self, row) -> str:
        """One row as text, e.g. ``NOTE program=40 role=melody pitch=72 duration=480 velocity=99``."""
        row = [int(x) for x in np.asarray(row).reshape(-1)]
        t = row[0]
        name = TYPE_NAMES[t] if 0 <= t < len(TYPE_NAMES) else f"type?{t}"
        parts = [name]
        for f in range(1, len(FAMILIES)):
            v = row[f] if f < len(row) else 0
            if v == NONE:
                continue
            if not 0 < v < self.sizes[f]:
                parts.append(f"{FAMILIES[f]}?{v}")
            elif f == F_POSITION:
                parts.append(f"position={v - 1}")
            elif f == F_PROGRAM:
                parts.append(f"program={self.program_of(v)}")
            elif f == F_ROLE:
                parts.append(f"role={self.role_of(v).value}")
            elif f == F_PITCH:
                parts.append(f"pitch={v - 1}")
            elif f == F_DURATION:
                parts.append(f"duration={self.duration_ticks(v)}")
            elif f == F_VELOCITY:
                parts.append(f"velocity={self.velocity_of(v)}")
            elif f == F_TEMPO:
                parts.append(f"tempo={self.tempo_of(v):g}")
            else:
                parts.append("meter={}/{}".format(*self.meter_of(v)))
        return " ".join(parts)

    # ------------------------------------------------------------------ encode
    def _track_role(self, track: Track) -> int:
        role = track.role
        if not isinstance(role, Role):
            try:
                role = Role(role) if role is not None else None
            except ValueError:
                role = None
        if track.is_drum:
            return self._role_index[role if role in DRUM_ROLES else Role.DRUMS]
        if role is None:
            role = role_for_program(int(track.program))
        if role is Role.DRUMS:  # a drum part on a pitched channel: its notes are pitched
            role = Role.PERCUSSION
        return self._role_index[role]

    def encode(self, song: Song) -> np.ndarray:
        """A song as compound tokens.

        Parameters
        ----------
        song : Song
            At any PPQ, in one of :data:`METERS`.

        Returns
        -------
        tokens : np.ndarray [shape=(n, len(FAMILIES)), dtype=int64]
            ``BOS``, one ``BAR`` per bar up to the last bar with an onset (at least one),
            ``POSITION`` before each onset, its ``NOTE`` rows, ``EOS``.

        Raises
        ------
        InputError
            Not a Song, a meter the tokenizer does not know, or more than
            :attr:`max_bars` bars.
        """
        if not isinstance(song, Song):
            raise InputError(f"encode takes a kelly.song.Song, got {type(song).__name__}")
        meter = self.meter_index(song.time_signature)
        spb = self.steps_per_bar[meter - 1]
        ppq = int(song.ppq)
        if ppq <= 0:
            raise InputError(f"the song's PPQ must be positive, got {ppq}")
        res = self.resolution

        cols, progs, roles = [], [], []
        for track in song.tracks:
            if not track.notes:
                continue
            try:
                arr = np.array([(n.start, n.pitch, n.duration, n.velocity) for n in track.notes], dtype=np.int64)
            except (OverflowError, TypeError, ValueError):
                raise InputError(f"track {track.name!r} holds a note whose start, pitch, duration or velocity is "
                                 "not a whole number within 64 bits") from None
            arr = np.clip(arr.reshape(-1, 4), -(2**40), 2**40)  # no overflow below; such notes are refused anyway
            cols.append(arr)
            prog = 1 if track.is_drum else 2 + min(127, max(0, int(track.program)))
            progs.append(np.full(len(arr), prog, dtype=np.int64))
            roles.append(np.full(len(arr), self._track_role(track), dtype=np.int64))
        if cols:
            notes = np.concatenate(cols)
            prog = np.concatenate(progs)
            role = np.concatenate(roles)
        else:
            notes = np.zeros((0, 4), dtype=np.int64)
            prog = role = np.zeros(0, dtype=np.int64)
        keep = notes[:, 2] > 0
        notes, prog, role = notes[keep], prog[keep], role[keep]
        start = np.maximum(notes[:, 0], 0)
        step = (start * (2 * res) + ppq) // (2 * ppq)
        pitch = np.clip(notes[:, 1], 0, 127) + 1
        dur = _nearest(notes[:, 2] * (res / ppq), self.duration_steps.astype(np.float64)) + 1
        vel = _nearest(np.clip(notes[:, 3], 1, 127).astype(np.float64), self.velocities.astype(np.float64)) + 1
        if len(step) and int(step.max()) // spb >= self.max_bars:
            raise InputError(f"the song is longer than {self.max_bars:,} bars; the tokenizer takes at most that")

        # canonical order; duplicates (same onset, program, role, pitch) keep the longest
        order = np.lexsort((-dur, pitch, role, prog, step))
        step, prog, role, pitch, dur, vel = (a[order] for a in (step, prog, role, pitch, dur, vel))
        if len(step):
            first = np.ones(len(step), dtype=bool)
            first[1:] = ((step[1:] != step[:-1]) | (prog[1:] != prog[:-1]) | (role[1:] != role[:-1])
                         | (pitch[1:] != pitch[:-1]))
            step, prog, role, pitch, dur, vel = (a[first] for a in (step, prog, role, pitch, dur, vel))
            # at most max_notes_per_position per onset
            new = np.ones(len(step), dtype=bool)
            new[1:] = step[1:] != step[:-1]
            group_start = np.maximum.accumulate(np.where(new, np.arange(len(step)), 0))
            rank = np.arange(len(step)) - group_start
            ok = rank < self.max_notes_per_position
            step, prog, role, pitch, dur, vel, new = (a[ok] for a in (step, prog, role, pitch, dur, vel, new))
            onsets = step[new]
        else:
            onsets = step
        n_bars = int(onsets[-1]) // spb + 1 if len(onsets) else 1

        # tempo in force at each bar's first tick (half a step of slack for rounding)
        tempos = sorted((int(t), float(b)) for t, b in song.tempos) if song.tempos else []
        bar_ticks = ppq * 4 * song.time_signature[0] // song.time_signature[1]
        bar_starts = np.arange(n_bars, dtype=np.int64) * bar_ticks + ppq // (2 * res)
        if tempos:
            t_ticks = np.array([t for t, _ in tempos], dtype=np.int64)
            t_bpm = np.array([b if b > 0 and math.isfinite(b) else 120.0 for _, b in tempos])
            idx = np.searchsorted(t_ticks, bar_starts, side="right") - 1
            bpm = np.where(idx >= 0, t_bpm[np.maximum(idx, 0)], 120.0)
        else:
            bpm = np.full(n_bars, 120.0)
        tbin = _nearest(np.log(bpm), self._log_tempos) + 1
        bar_tempo = tbin.copy()
        bar_tempo[1:][tbin[1:] == tbin[:-1]] = NONE

        n_notes = len(step)
        n_pos = len(onsets)
        n_rows = 2 + n_bars + n_pos + n_notes
        F = len(FAMILIES)
        # sort keys: (step, kind) with BAR 0 < POSITION 1 < NOTE 2, notes in canonical order
        key_step = np.concatenate([np.arange(n_bars, dtype=np.int64) * spb, onsets, step])
        key_kind = np.concatenate([np.zeros(n_bars, np.int64), np.ones(n_pos, np.int64), np.full(n_notes, 2)])
        key_seq = np.concatenate([np.zeros(n_bars + n_pos, np.int64), np.arange(n_notes)])
        order = np.lexsort((key_seq, key_kind, key_step))
        body = np.zeros((n_bars + n_pos + n_notes, F), dtype=np.int64)
        body[:n_bars, F_TYPE] = BAR
        body[:n_bars, F_TEMPO] = bar_tempo
        body[0, F_METER] = meter
        body[n_bars:n_bars + n_pos, F_TYPE] = POSITION
        body[n_bars:n_bars + n_pos, F_POSITION] = onsets % spb + 1
        nb = body[n_bars + n_pos:]
        nb[:, F_TYPE] = NOTE
        nb[:, F_PROGRAM] = prog
        nb[:, F_ROLE] = role
        nb[:, F_PITCH] = pitch
        nb[:, F_DURATION] = dur
        nb[:, F_VELOCITY] = vel
        out = np.zeros((n_rows, F), dtype=np.int64)
        out[0, F_TYPE] = BOS
        out[1:-1] = body[order]
        out[-1, F_TYPE] = EOS
        return out

    # ------------------------------------------------------------------ repair
    def _coerce(self, tokens, rep: _Repairs) -> np.ndarray:
        F = len(FAMILIES)
        try:
            arr = np.asarray(tokens)
        except (TypeError, ValueError) as exc:
            raise InputError(f"tokens must be an integer array [n, {F}]: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise InputError(f"tokens must be an integer array [n, {F}], got dtype {arr.dtype}")
        if arr.ndim == 1 and arr.size == 0:
            arr = arr.reshape(0, F)
        elif arr.ndim == 1 and arr.size == F:
            arr = arr.reshape(1, F)
        if arr.ndim != 2 or arr.shape[1] != F:
            raise InputError(f"tokens must be an array of shape [n, {F}] (one column per family: "
                             f"{', '.join(FAMILIES)}), got shape {arr.shape}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                rep.add("nan", "values that were not finite numbers were read as 0")
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
            arr = np.clip(np.trunc(arr), -(2**62), 2**62)
        elif arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
            arr = np.minimum(arr, np.uint64(2**62))
        return arr.astype(np.int64)

    def repair(self, tokens: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Make any array of the right width a valid sequence, saying what was repaired.

        What is valid is what :meth:`decode` needs: ``BOS, (BAR, (POSITION, NOTE+)*)+, EOS``
        with every value in range, the meter and tempo on the first bar, positions rising
        within a bar and inside it, no two notes with the same onset, program, role and
        pitch, at most :attr:`max_notes_per_position` notes an onset and
        :attr:`max_bars` bars. (The grammar's own restrictions — requested bars, programs,
        pitch filter, drum key range — are for generation and are not repaired.)

        Repairs: rows of an unknown type, PAD and BOS rows inside the sequence and anything
        after the first EOS are dropped (all-zero PAD rows before BOS or at the end are
        padding, not a repair); a
        missing BOS, first BAR or EOS is added; a first bar without a valid meter or tempo
        gets 4/4 or 120 BPM; a meter on a later bar and an invalid later tempo are cleared;
        values in families that do not apply to the row's type are cleared; a position out
        of the bar is dropped with its notes, one not after the previous position is
        dropped and its notes join the previous one, and a position without notes is
        dropped; a note with no position in its bar, with a program, pitch, duration or
        velocity out of range, a duplicate, or beyond the per-onset limit is dropped; a
        note's role that is missing or does not fit its program (only drum parts are
        Drums; drum parts are Drums or Percussion) becomes the program's role.

        Parameters
        ----------
        tokens : array-like [shape=(n, len(FAMILIES))]
            Integers (floats are truncated; NaN and infinities read as 0). A row of width
            ``len(FAMILIES)`` given as a 1-d array is one token.

        Returns
        -------
        tokens : np.ndarray [shape=(m, len(FAMILIES)), dtype=int64]
            A valid sequence (equal to the input when nothing was repaired).
        repairs : list of str
            One line per kind of repair, with a count; empty when nothing was repaired.

        Raises
        ------
        InputError
            Only for an array that is not numeric or not ``len(FAMILIES)`` wide.
        """
        rep = _Repairs()
        arr = self._coerce(tokens, rep)
        sizes = self.sizes
        F = len(FAMILIES)
        rows = arr.tolist()
        n = len(rows)
        # trailing padding is padding
        end = n
        while end > 0 and rows[end - 1][0] == PAD and not any(rows[end - 1][1:]):
            end -= 1

        out: list[list[int]] = [[BOS] + [0] * (F - 1)]
        zeros = [0] * (F - 1)
        i = 0
        while i < end and rows[i][0] == PAD and not any(rows[i][1:]):  # leading padding is padding too
            i += 1
        if i < end and rows[i][0] == BOS:
            if any(rows[i][1:]):
                rep.add("clear", "values in families that do not apply to a token's type were cleared")
            i += 1
        else:
            rep.add("bos", "the sequence did not start with BOS; BOS was added")

        spb = 0            # steps per bar (0 before the first bar)
        bars = 0
        last_pos = -1      # last position accepted in this bar
        pending = None     # a POSITION row waiting for its first note
        have_pos = False   # a position (pending or written) holds notes now
        used: set[tuple[int, int, int]] = set()
        count = 0
        cap = self.max_notes_per_position
        n_pos = sizes[F_POSITION]
        n_prog, n_role, n_pitch = sizes[F_PROGRAM], sizes[F_ROLE], sizes[F_PITCH]
        n_dur, n_vel, n_tempo, n_meter = sizes[F_DURATION], sizes[F_VELOCITY], sizes[F_TEMPO], sizes[F_METER]
        role_ok = self.role_allowed
        default_role = [0, self._role_index[Role.DRUMS]] + [self._role_index[role_for_program(p)]
                                                              for p in range(128)]
        ended = False

        def close_position() -> None:
            nonlocal pending
            if pending is not None:
                rep.add("empty-pos", "positions without notes were dropped")
                pending = None

        def start_bar(meter: int, tempo: int) -> None:
            nonlocal spb, bars, last_pos, have_pos, count
            close_position()
            bars += 1
            spb = self.steps_per_bar[out_meter[0] - 1]
            out.append([BAR, 0, 0, 0, 0, 0, 0, tempo, meter])
            last_pos = -1
            have_pos = False
            used.clear()
            count = 0

        out_meter = [0]
        while i < end:
            row = rows[i]
            i += 1
            t = row[0]
            if t == PAD:
                rep.add("pad", "PAD rows inside the sequence were dropped")
                continue
            if t == EOS:
                if any(row[1:]):
                    rep.add("clear", "values in families that do not apply to a token's type were cleared")
                ended = True
                break
            if t == BOS:
                rep.add("bos-inside", "BOS rows after the start were dropped")
                continue
            if t == BAR:
                if bars >= self.max_bars:
                    rep.add("too-long", f"bars after the {self.max_bars:,}th were dropped")
                    ended = True
                    break
                if any(row[1:F_TEMPO]):
                    rep.add("clear", "values in families that do not apply to a token's type were cleared")
                meter, tempo = row[F_METER], row[F_TEMPO]
                if bars == 0:
                    if not 0 < meter < n_meter:
                        rep.add("meter", "the first bar had no valid meter; 4/4 was used")
                        meter = self.default_meter
                    if not 0 < tempo < n_tempo:
                        rep.add("tempo", "the first bar had no valid tempo; 120 BPM was used")
                        tempo = self.default_tempo
                    out_meter[0] = meter
                else:
                    if meter != NONE:
                        rep.add("meter-later", "meters on bars after the first were cleared (one meter a song)")
                        meter = NONE
                    if not 0 <= tempo < n_tempo:
                        rep.add("tempo-later", "tempo values out of range on later bars were cleared")
                        tempo = NONE
                start_bar(meter, tempo)
                continue
            if t == POSITION:
                if any(row[2:]):
                    rep.add("clear", "values in families that do not apply to a token's type were cleared")
                if bars == 0:
                    rep.add("bar-first", "the sequence had no BAR before its first position; one was added "
                                         "(4/4, 120 BPM)")
                    out_meter[0] = self.default_meter
                    start_bar(self.default_meter, self.default_tempo)
                p = row[F_POSITION] - 1
                if not (0 < row[F_POSITION] < n_pos) or p >= spb:
                    rep.add("pos-range", "positions outside their bar were dropped with their notes")
                    close_position()
                    have_pos = False
                    # skip the notes that follow
                    while i < end and rows[i][0] == NOTE:
                        i += 1
                    continue
                if p <= last_pos:
                    rep.add("pos-order", "positions not after the previous one were dropped (their notes joined "
                                         "the previous position)")
                    continue
                close_position()
                pending = [POSITION, p + 1] + [0] * (F - 2)
                last_pos = p
                have_pos = True
                used.clear()
                count = 0
                continue
            if t == NOTE:
                if bars == 0:
                    rep.add("bar-first", "the sequence had no BAR before its first position; one was added "
                                         "(4/4, 120 BPM)")
                    out_meter[0] = self.default_meter
                    start_bar(self.default_meter, self.default_tempo)
                if not have_pos:
                    rep.add("note-nopos", "notes with no position in their bar were dropped")
                    continue
                if row[F_POSITION] or row[F_TEMPO] or row[F_METER]:
                    rep.add("clear", "values in families that do not apply to a token's type were cleared")
                q, r, pt, d, v = row[F_PROGRAM], row[F_ROLE], row[F_PITCH], row[F_DURATION], row[F_VELOCITY]
                if not (0 < q < n_prog and 0 < pt < n_pitch and 0 < d < n_dur and 0 < v < n_vel):
                    rep.add("note-range", "notes with a program, pitch, duration or velocity out of range were "
                                          "dropped")
                    continue
                if not (0 < r < n_role and role_ok[q, r]):
                    rep.add("role", "note roles missing or unfit for their program were set from the program")
                    r = default_role[q]
                key = (q, r, pt)
                if key in used:
                    rep.add("dup", "duplicate notes (same onset, program, role and pitch) were dropped")
                    continue
                if count >= cap:
                    rep.add("cap", f"notes beyond {cap} at one onset were dropped")
                    continue
                if pending is not None:
                    out.append(pending)
                    pending = None
                used.add(key)
                count += 1
                out.append([NOTE, 0, q, r, pt, d, v, 0, 0])
                continue
            rep.add("type", "rows of an unknown type were dropped")
        close_position()
        if ended:
            rest = sum(1 for k in range(i, end) if rows[k][0] != PAD or any(rows[k][1:]))
            if rest:
                rep.add("after-eos", f"{rest:,} row(s) after EOS were dropped")
        else:
            rep.add("eos", "the sequence did not end with EOS; EOS was added")
        if bars == 0:
            rep.add("no-bar", "the sequence had no bar; an empty 4/4 bar at 120 BPM was added")
            out.append([BAR, 0, 0, 0, 0, 0, 0, self.default_tempo, self.default_meter])
        out.append([EOS] + zeros)
        fixed = np.array(out, dtype=np.int64).reshape(-1, F)
        return fixed, rep.lines()

    # ------------------------------------------------------------------ decode
    def decode(self, tokens: np.ndarray) -> Song:
        """A song from tokens, repaired first (:meth:`repair`); never raises on an integer array [n, F].

        The repairs, if any, are in ``song.warnings``. The song is at 480 PPQ with one
        track per (program, role) as described in the module docstring; its key signature
        is unknown (None) and its title "Kelly transformer".
        """
        fixed, repairs = self.repair(tokens)
        tps = self.ticks_per_step
        rows = fixed.tolist()
        meter_idx = rows[1][F_METER]  # repair puts the first BAR right after BOS
        num, den = METERS[meter_idx - 1]
        spb = self.steps_per_bar[meter_idx - 1]
        bar = -1
        pos = 0
        cur_tempo = -1
        tempos: list[tuple[int, float]] = []
        parts: dict[tuple[int, int], list[Note]] = {}
        for row in rows:
            t = row[0]
            if t == NOTE:
                key = (row[F_PROGRAM], row[F_ROLE])
                note = Note((bar * spb + pos) * tps, row[F_PITCH] - 1, self.duration_ticks(row[F_DURATION]),
                            int(self.velocities[row[F_VELOCITY] - 1]))
                parts.setdefault(key, []).append(note)
            elif t == POSITION:
                pos = row[F_POSITION] - 1
            elif t == BAR:
                bar += 1
                pos = 0
                tv = row[F_TEMPO]
                if tv and tv != cur_tempo:
                    tempos.append((bar * spb * tps, self.tempo_of(tv)))
                    cur_tempo = tv
        order = sorted(parts, key=lambda k: (k[1], k[0]))
        by_role: dict[int, int] = {}
        for q, r in order:
            by_role[r] = by_role.get(r, 0) + 1
        channels = [c for c in range(16) if c != DRUM_CHANNEL]
        tracks = []
        k = 0
        for q, r in order:
            role = self.role_of(r)
            program = self.program_of(q)
            name = ROLE_TRACK_NAMES[role]
            if by_role[r] > 1:
                extra = "Drum kit" if program < 0 else GM_PROGRAM_NAMES[program]
                name = f"{name} ({extra})"
            if program < 0:
                channel, program = DRUM_CHANNEL, 0
            else:
                channel = channels[k % len(channels)]
                k += 1
            tracks.append(Track(name, program, channel, sorted(parts[(q, r)]), role))
        song = Song(tracks=tracks, tempos=tempos or [(0, 120.0)], time_signature=(num, den), key_signature=None,
                    title="Kelly transformer")
        song.warnings = list(repairs)
        return song

    def bars(self, tokens: np.ndarray) -> int:
        """How many bars the sequence holds (its BAR rows, after :meth:`repair`)."""
        fixed, _ = self.repair(tokens)
        return int(np.count_nonzero(fixed[:, F_TYPE] == BAR))

    # ------------------------------------------------------------------ grammar
    def grammar(self, *, bars: int, meter: str | tuple[int, int] | None = None, tempo_bpm: float | None = None,
                programs: Sequence[int] | None = None,
                pitch_filter: Callable[[int, float], np.ndarray] | None = None,
                roles: Sequence[Role | str] | None = None,
                pairs: Sequence[tuple[int, Role | str]] | None = None) -> "Grammar":
        """A fresh :class:`~kelly.transformer.grammar.Grammar` for constrained decoding (see there)."""
        from kelly.transformer.grammar import Grammar

        return Grammar(self, bars=bars, meter=meter, tempo_bpm=tempo_bpm, programs=programs,
                       pitch_filter=pitch_filter, roles=roles, pairs=pairs)
