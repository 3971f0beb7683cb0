"""The grammar of valid compound-token sequences: masks for constrained decoding.

A :class:`Grammar` is a small state machine over the sequences of
:class:`~kelly.transformer.tokens.CompoundTokenizer`::

    BOS, BAR, (POSITION, NOTE+)*, (BAR, (POSITION, NOTE+)*)*, EOS      exactly `bars` BARs

A sampler asks :meth:`Grammar.type_mask` for the types allowed next, picks one, then fills
the other families in row order, asking :meth:`Grammar.family_mask` for each with the row
filled so far (``partial``), and hands the finished row to :meth:`Grammar.advance`. Every
mask it is given has at least one allowed value, and whatever it picks from them makes a
row that ``advance`` accepts, so generation cannot get stuck; the sequence ends by itself:
once the requested number of bars has begun, BAR is no longer offered and EOS is, and
since positions rise within a bar and an onset holds at most
``max_notes_per_position`` notes, every path reaches EOS. A sequence made this way
decodes with no repairs.

What the masks enforce
----------------------
* ``BOS`` first (forced), then the first ``BAR`` (forced); ``EOS`` only in the last bar;
  after ``EOS`` only ``PAD``.
* ``BAR``: meter (first bar only; fixed when ``meter`` is given) and tempo (first bar: a
  bin, fixed when ``tempo_bpm`` is given; later bars: NONE for "unchanged", or a bin when
  no tempo was given: tempo changes happen at bar lines).
* ``POSITION``: a step strictly after the bar's last position where a note can be written
  (the pitch filter allows some pitch there, or drums may play); it must be followed by at
  least one ``NOTE``.
* ``NOTE``: a program from ``programs`` (−1 for drums); a role that fits the program (drum
  parts are drums or percussion; other parts anything but drums) and ``roles``; a pitch
  from ``pitch_filter(bar, beat_in_bar)`` for pitched parts or from the drum key range for
  drums, not already used by a note of the same program and role at this onset; any
  duration and velocity bin. At most ``max_notes_per_position`` notes an onset.
* NONE (index 0) exactly in the families that do not apply to the type.

Dependencies inside a row: the role mask depends on the program chosen for the row, and
the pitch mask on the program and the role. Pass the row filled so far as ``partial``;
without it those masks are the union over every choice still open (a superset), and a row
mixing them wrongly (a drum part with a pitch outside the drum range) is refused by
:meth:`advance`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from kelly.errors import InputError
from kelly.song import Role
from kelly.transformer.tokens import (BAR, BOS, EOS, F_METER, F_PITCH, F_POSITION, F_PROGRAM, F_ROLE, F_TEMPO,
                                      FAMILIES, NONE, NOTE, PAD, POSITION, TYPE_NAMES)

if TYPE_CHECKING:
    from kelly.transformer.tokens import CompoundTokenizer

# families that apply to each type (beside the type itself)
_APPLIES = {
    PAD: (), BOS: (), EOS: (),
    BAR: (F_TEMPO, F_METER),
    POSITION: (F_POSITION,),
    NOTE: (F_PROGRAM, F_ROLE, F_PITCH, 5, 6),  # program, role, pitch, duration, velocity
}


class Grammar:
    """The state machine of valid sequences, for constrained decoding.

    Made by :meth:`CompoundTokenizer.grammar`; one per generated sequence.

    Parameters
    ----------
    tokenizer : CompoundTokenizer
    bars : int
        Bars to generate, 1 … ``tokenizer.max_bars``: EOS becomes allowed once the last of
        them has begun, and BAR is not offered after it.
    meter : str or (int, int), optional
        Fix the meter (``"6/8"``); otherwise any of the tokenizer's meters.
    tempo_bpm : float, optional
        Fix the tempo (its nearest bin) for the whole piece; otherwise any bin on the first
        bar and optional changes at later bar lines.
    programs : sequence of int, optional
        Programs notes may use (0–127; −1 for drums). Default: all, drums included.
    pitch_filter : callable (bar, beat_in_bar) -> bool array [128], optional
        Pitches allowed for pitched (non-drum) notes at an onset: ``bar`` is the 0-based bar
        index, ``beat_in_bar`` the onset in quarter notes from the bar line (position /
        resolution, e.g. 1.5). Called once per step of each bar as the bar begins. An onset
        where it allows nothing gets no pitched notes (nor a position, unless drums may
        play there).
    pairs : sequence of (program, role), optional
        Only these parts (a program playing a role), e.g. the rule engines' orchestration.
    roles : sequence of Role or str, optional
        Roles notes may have. Default: all.

    Attributes
    ----------
    done : bool
        EOS consumed.
    bar : int
        Bars begun so far.
    position : int or None
        The current onset's step in its bar (None before the bar's first position).
    meter : (int, int) or None
        The meter, once the first bar has been consumed.
    """

    def __init__(self, tokenizer: "CompoundTokenizer", *, bars: int, meter=None, tempo_bpm: float | None = None,
                 programs: Sequence[int] | None = None,
                 pitch_filter: Callable[[int, float], np.ndarray] | None = None,
                 roles: Sequence[Role | str] | None = None,
                 pairs: Sequence[tuple[int, Role | str]] | None = None) -> None:
        tk = tokenizer
        self.tokenizer = tk
        self.sizes = tk.sizes
        if isinstance(bars, bool) or not isinstance(bars, (int, np.integer)) or not 1 <= bars <= tk.max_bars:
            raise InputError(f"bars must be a whole number from 1 to {tk.max_bars:,}, got {bars!r}")
        self.bars = int(bars)
        self._meter_fixed = tk.meter_index(meter) if meter is not None else None
        if tempo_bpm is not None:
            if isinstance(tempo_bpm, bool) or not isinstance(tempo_bpm, (int, float, np.number)) \
                    or not (float(tempo_bpm) > 0 and math.isfinite(float(tempo_bpm))):
                raise InputError(f"tempo_bpm must be a positive number of BPM, got {tempo_bpm!r}")
            self._tempo_fixed = tk.tempo_index(float(tempo_bpm))
        else:
            self._tempo_fixed = None

        prog = np.zeros(self.sizes[F_PROGRAM], dtype=bool)
        if programs is None:
            prog[1:] = True
        else:
            programs = list(programs)
            if not programs:
                raise InputError("programs must name at least one program (0-127, or -1 for drums)")
            for p in programs:
                if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not -1 <= int(p) <= 127:
                    raise InputError(f"programs must be whole numbers 0-127 or -1 for drums, got {p!r}")
                prog[tk.program_index(int(p))] = True
        role = np.zeros(self.sizes[F_ROLE], dtype=bool)
        if roles is None:
            role[1:] = True
        else:
            roles = list(roles)
            if not roles:
                raise InputError("roles must name at least one role")
            for r in roles:
                role[tk.role_index(r)] = True
        #: [program, role] allowed together, within the requested programs and roles
        self._pr = tk.role_allowed & prog[:, None] & role[None, :]
        if pairs is not None:  # only these (program, role) parts: an orchestration to keep
            only = np.zeros_like(self._pr)
            for p, r in pairs:
                only[tk.program_index(int(p)), tk.role_index(r)] = True
            self._pr &= only
        prog &= self._pr.any(axis=1)
        if not prog.any():
            raise InputError("no program can play any of the requested roles (drums, program -1, play only "
                             "drums or percussion; other programs anything but drums)")
        self._prog = prog
        self._drums_ok = bool(prog[1])
        self._pitched_ok = bool(prog[2:].any())
        self._roles_drum = self._pr[1]
        self._roles_pitched = self._pr[2:].any(axis=0)
        lo, hi = tk.drum_pitch_range
        self._drum_pitches = np.zeros(self.sizes[F_PITCH], dtype=bool)
        self._drum_pitches[lo + 1:hi + 2] = True
        self.pitch_filter = pitch_filter

        self.done = False
        self.bar = 0
        self.position: int | None = None
        self.meter: tuple[int, int] | None = None
        self._started = False
        self._meter_idx = 0
        self._spb = 0
        self._last_pos = -1
        self._count = 0
        self._used: dict[tuple[int, int], np.ndarray] = {}
        self._bar_pitches: np.ndarray | None = None   # bool [spb, sizes[pitch]] for pitched notes
        self._note_possible: np.ndarray | None = None  # bool [spb]

    # ------------------------------------------------------------------ helpers
    def _filter_bar(self) -> None:
        """Pitch sets of the bar just begun (pitched parts), and where a note can start."""
        spb = self._spb
        n_pitch = self.sizes[F_PITCH]
        pitches = np.zeros((spb, n_pitch), dtype=bool)
        if self._pitched_ok:
            if self.pitch_filter is None:
                pitches[:, 1:] = True
            else:
                res = self.tokenizer.resolution
                for p in range(spb):
                    allowed = np.asarray(self.pitch_filter(self.bar - 1, p / res))
                    if allowed.shape != (128,):
                        raise InputError(f"pitch_filter must return a bool array of 128 pitches, got shape "
                                         f"{allowed.shape} for bar {self.bar - 1}, beat {p / res:g}")
                    pitches[p, 1:] = allowed.astype(bool)
        self._bar_pitches = pitches
        self._note_possible = pitches.any(axis=1) | self._drums_ok

    def _base_pitches(self, q: int) -> np.ndarray:
        """Pitch family mask for program index ``q`` at the current onset (before duplicates)."""
        if q == 1:
            return self._drum_pitches
        return self._bar_pitches[self.position]

    def _avail(self, q: int, r: int) -> np.ndarray:
        base = self._base_pitches(q)
        used = self._used.get((q, r))
        return base if used is None else base & ~used

    def _program_mask(self) -> np.ndarray:
        m = self._prog.copy()
        if not self._bar_pitches[self.position].any():
            m[2:] = False
        for q in {q for q, _ in self._used}:
            if m[q] and not any(self._avail(q, r).any() for r in np.flatnonzero(self._pr[q])):
                m[q] = False
        return m

    def _role_mask(self, q: int | None) -> np.ndarray:
        m = np.zeros(self.sizes[F_ROLE], dtype=bool)
        if q is None:
            pm = self._program_mask()
            if pm[1]:
                m |= self._roles_drum
            if pm[2:].any():
                m |= self._roles_pitched
            return m
        for r in np.flatnonzero(self._pr[q]):
            if self._avail(q, r).any():
                m[r] = True
        return m

    def _pitch_mask(self, q: int | None, r: int | None) -> np.ndarray:
        if q is not None and r is not None:
            return self._avail(q, r).copy()
        m = np.zeros(self.sizes[F_PITCH], dtype=bool)
        progs = [q] if q is not None else list(np.flatnonzero(self._program_mask()))
        for qq in progs:
            roles = [r] if r is not None else list(np.flatnonzero(self._pr[qq]))
            for rr in roles:
                if self._pr[qq, rr]:
                    m |= self._avail(qq, rr)
        return m

    def _note_available(self) -> bool:
        return self._count < self.tokenizer.max_notes_per_position and bool(self._program_mask().any())

    def _next_position(self) -> bool:
        return bool(self._note_possible[self._last_pos + 1:].any())

    # ------------------------------------------------------------------ masks
    def type_mask(self) -> np.ndarray:
        """Types allowed next: bool [sizes[0]], never empty (only PAD once done)."""
        m = np.zeros(self.sizes[0], dtype=bool)
        if self.done:
            m[PAD] = True
        elif not self._started:
            m[BOS] = True
        elif self.bar == 0:
            m[BAR] = True
        elif self.position is not None and self._count == 0:
            m[NOTE] = True
        else:
            if self.position is not None and self._note_available():
                m[NOTE] = True
            if self._next_position():
                m[POSITION] = True
            if self.bar < self.bars:
                m[BAR] = True
            else:
                m[EOS] = True
        return m

    def family_mask(self, type_id: int, family: int, partial=None) -> np.ndarray:
        """Values allowed for ``family`` in a row of type ``type_id``, given the state: bool [sizes[family]].

        Parameters
        ----------
        type_id : int
            The row's type (one :meth:`type_mask` allows).
        family : int
            1 … len(FAMILIES) − 1 (0 gives :meth:`type_mask`).
        partial : array-like [shape=(len(FAMILIES),)], optional
            The row filled so far: families before ``family`` are read (for NOTE rows, the
            role mask reads the program and the pitch mask the program and the role).
            Without it those masks are unions over every open choice.
        """
        family = int(family)
        type_id = int(type_id)
        if family == 0:
            return self.type_mask()
        if not 0 < family < len(self.sizes):
            raise InputError(f"family must be 0-{len(self.sizes) - 1}, got {family}")
        size = self.sizes[family]
        m = np.zeros(size, dtype=bool)
        if type_id not in _APPLIES or family not in _APPLIES[type_id]:
            m[NONE] = True
            return m
        if type_id == BAR:
            first = self.bar == 0
            if family == F_METER:
                if first:
                    if self._meter_fixed is not None:
                        m[self._meter_fixed] = True
                    else:
                        m[1:] = True
                else:
                    m[NONE] = True
            else:  # tempo
                if self._tempo_fixed is not None:
                    m[self._tempo_fixed if first else NONE] = True
                else:
                    m[1:] = True
                    m[NONE] = not first
            return m
        if type_id == POSITION:
            if self._note_possible is not None:
                lo = self._last_pos + 1
                m[lo + 1:self._spb + 1] = self._note_possible[lo:]
            return m
        # NOTE
        if self.position is None or self._bar_pitches is None:
            return m  # no note can be written here (type_mask does not offer NOTE)
        if family == F_PROGRAM:
            return self._program_mask()
        q = r = None
        if partial is not None:
            row = np.asarray(partial).reshape(-1)
            if len(row) > F_PROGRAM and 0 < int(row[F_PROGRAM]) < self.sizes[F_PROGRAM] and family > F_PROGRAM:
                q = int(row[F_PROGRAM])
            if len(row) > F_ROLE and 0 < int(row[F_ROLE]) < self.sizes[F_ROLE] and family > F_ROLE:
                r = int(row[F_ROLE])
        if family == F_ROLE:
            return self._role_mask(q)
        if family == F_PITCH:
            return self._pitch_mask(q, r)
        m[1:] = True  # duration, velocity
        return m

    # ------------------------------------------------------------------ advance
    def advance(self, token) -> None:
        """Consume one row; InputError (naming the row and what is allowed) if it is not valid here."""
        row = np.asarray(token)
        if row.dtype.kind not in "biu" or row.size != len(self.sizes):
            raise InputError(f"a token is {len(self.sizes)} integers (one per family: {', '.join(FAMILIES)}), "
                             f"got {row!r}")
        row = [int(x) for x in row.reshape(-1)]
        t = row[0]
        tm = self.type_mask()
        if not (0 <= t < len(tm) and tm[t]):
            allowed = ", ".join(TYPE_NAMES[k] for k in np.flatnonzero(tm))
            shown = TYPE_NAMES[t] if 0 <= t < len(TYPE_NAMES) else str(t)
            raise InputError(f"token type {shown} is not allowed here (bar {self.bar}); allowed: {allowed}")
        for f in range(1, len(self.sizes)):
            fm = self.family_mask(t, f, row)
            if not (0 <= row[f] < len(fm) and fm[row[f]]):
                raise InputError(f"{FAMILIES[f]} value {row[f]} is not allowed in a {TYPE_NAMES[t]} token here "
                                 f"(bar {self.bar}, position {self.position}): "
                                 f"{self.tokenizer.describe(row)}")
        if t == PAD:
            return
        if t == BOS:
            self._started = True
        elif t == EOS:
            self.done = True
        elif t == BAR:
            if self.bar == 0:
                self._meter_idx = row[F_METER]
                self.meter = self.tokenizer.meter_of(self._meter_idx)
                self._spb = self.tokenizer.steps_per_bar[self._meter_idx - 1]
            self.bar += 1
            self.position = None
            self._last_pos = -1
            self._count = 0
            self._used = {}
            self._filter_bar()
        elif t == POSITION:
            self.position = row[F_POSITION] - 1
            self._last_pos = self.position
            self._count = 0
            self._used = {}
        else:  # NOTE
            key = (row[F_PROGRAM], row[F_ROLE])
            used = self._used.get(key)
            if used is None:
                used = self._used[key] = np.zeros(self.sizes[F_PITCH], dtype=bool)
            used[row[F_PITCH]] = True
            self._count += 1

    def __repr__(self) -> str:
        state = "done" if self.done else f"bar {self.bar}/{self.bars}, position {self.position}"
        return f"Grammar({state})"
