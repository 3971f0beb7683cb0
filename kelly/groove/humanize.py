"""The "Drunken Drummer" humanizer: seeded timing drift, dynamics, dropouts, ghost notes.

Why it is shaped this way (after the original DAiW ``groove_engine.py``, reference §7):

* Timing drift is Gaussian, not uniform: players are mostly close and occasionally
  far. Its spread is ``35 · complexity · drum multiplier`` ticks (at 480 PPQ), clamped
  to ±35, and every humanized note lands 5 ticks late (humans play slightly behind the
  grid). The kick is tightest (×0.5), the snare next (×0.7), hats loosest (×1.2).
* Notes drop out with probability ``0.2 · complexity · (1 − protection)``: a missing
  hi-hat is "feel", a missing kick or crash is a mistake, so those are protected.
* Velocity follows vulnerability: low vulnerability plays louder and steadier, high
  vulnerability softer and wider.
* Above vulnerability 0.6, snare and hi-hat hits may get a quiet ghost note one 16th
  before them (velocity × 0.4, never above 45), the classic grace before a backbeat.
* Non-drum tracks get the same kind of drift and dynamics scaled by
  ``settings.non_drum_scale``, with notes that start together (a chord) moved
  together, and no dropouts or ghosts.
* The networks' hints scale the spreads (:func:`kelly.engines.ml_hints.humanize_settings`):
  ``settings.drum_timing`` the kit's timing, ``settings.part_timing`` and
  ``settings.track_timing`` the pitched parts' (per track), ``settings.velocity_spread``
  every velocity spread. Their defaults (1) leave everything exactly as described above.

Every random draw comes from the ``numpy.random.Generator`` passed in, in a fixed
order (five draws per drum note, two per non-drum note), so a seed gives the same
song, and the same bytes, every time. With complexity 0, timing is left exactly alone.
"""

from __future__ import annotations

import bisect

import numpy as np

from kelly.groove.presets import HumanizeSettings
from kelly.groove.swing import _tidy, copy_song, select_tracks
from kelly.song import Song, Track

#: Largest drift in ticks at 480 PPQ.
MAX_TICKS_DRIFT = 35
#: Humans land slightly late: ticks at 480 PPQ added to every drifted note.
HUMAN_LATENCY_BIAS = 5
#: Dropout probability at complexity 1 for an unprotected drum.
MAX_DROPOUT_PROB = 0.2
#: Ghost notes never play louder than this.
GHOST_VELOCITY_MAX = 45
#: Ghost placement jitter in ticks at 480 PPQ.
GHOST_JITTER = 10

#: General MIDI drum numbers by role.
DRUM_ROLES: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (38, 40),
    "hihat_closed": (42, 44),
    "hihat_open": (46,),
    "crash": (49, 57),
    "ride": (51, 59),
}
#: How much each role resists dropping out (1 = never drops).
PROTECTION: dict[str, float] = {
    "kick": 0.8, "snare": 0.7, "hihat_closed": 0.2, "hihat_open": 0.5, "crash": 0.9, "ride": 0.3,
}
_ROLE_OF = {pitch: role for role, pitches in DRUM_ROLES.items() for pitch in pitches}
#: Roles that may sprout ghost notes.
GHOST_ROLES = ("snare", "hihat_closed")


def drum_role(pitch: int) -> str | None:
    """The role of a GM drum number (kick, snare, hihat_closed, ...), or ``None``."""
    return _ROLE_OF.get(int(pitch))


def timing_multiplier(pitch: int, settings: HumanizeSettings) -> float:
    """Timing spread for a drum relative to the base spread (1.0 for unlisted drums)."""
    role = drum_role(pitch)
    if role == "kick":
        return settings.kick_timing_mult
    if role == "snare":
        return settings.snare_timing_mult
    if role in ("hihat_closed", "hihat_open"):
        return settings.hihat_timing_mult
    return 1.0


def velocity_target(vulnerability: float, base):
    """Target velocity and spread from vulnerability (the original's three bands).

    Parameters
    ----------
    vulnerability : float in [0, 1]
    base : np.ndarray [shape=(n,)]
        Original velocities.

    Returns
    -------
    target : np.ndarray [shape=(n,), float]
    sigma : float
    """
    base = np.asarray(base, dtype=float)
    v = float(vulnerability)
    if v < 0.3:
        return base + 10.0, 5.0
    if v < 0.6:
        return base, float(10 + int((v - 0.3) * 30))
    return base - int(v * 20), float(10 + int(v * 20))


def humanize(song: Song, settings: HumanizeSettings, rng=None, *, tracks=None) -> Song:
    """Humanize ``song`` with ``settings``, drawing randomness from ``rng``.

    Parameters
    ----------
    song : Song
        Input; not modified.
    settings : HumanizeSettings
        From :func:`~kelly.groove.presets.get_preset`, ``get_style`` or built directly.
    rng : numpy.random.Generator or int or None
        Source of randomness; an int is a seed for ``numpy.random.default_rng``.
    tracks : iterable of str or int, optional
        Track names or indices to humanize; all tracks when omitted.

    Returns
    -------
    Song
        A new song; notes sorted, velocities in 1–127, no note before tick 0.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    chosen = select_tracks(song, tracks)
    out: list[Track] = []
    for index, track in enumerate(song.tracks):
        notes = sorted(track.notes)
        if index in chosen and notes:
            if track.is_drum:
                notes = _humanize_drums(notes, settings, rng, song.ppq)
            else:
                notes = _humanize_parts(notes, settings, rng, song.ppq, settings.timing_for(track.name))
        out.append(track.with_notes(_tidy(notes)))
    return copy_song(song, out)


def _humanize_drums(notes: list, settings: HumanizeSettings, rng: np.random.Generator, ppq: int) -> list:
    n = len(notes)
    scale = ppq / 480.0
    c, v = settings.complexity, settings.vulnerability
    # five draws per note, always, so one setting never reshuffles the others' randomness
    u_drop = rng.random(n)
    z_time = rng.standard_normal(n)
    z_vel = rng.standard_normal(n)
    u_ghost = rng.random(n)
    ghost_jitter = rng.integers(-int(GHOST_JITTER * scale), int(GHOST_JITTER * scale) + 1, size=n)

    pitches = np.array([nt.pitch for nt in notes])
    starts = np.array([nt.start for nt in notes], dtype=np.int64)
    base_vel = np.array([nt.velocity for nt in notes], dtype=float)
    protection = np.array([PROTECTION.get(drum_role(p), 0.0) for p in pitches])
    mult = np.array([timing_multiplier(p, settings) for p in pitches]) * settings.drum_timing

    keep = u_drop >= c * MAX_DROPOUT_PROB * (1.0 - protection)
    drift = _drift(z_time, c, mult, scale)
    new_starts = np.maximum(0, starts + drift)
    target, sigma = velocity_target(v, base_vel)
    sigma = sigma * settings.velocity_spread
    new_vel = np.clip(np.rint(target + sigma * z_vel), settings.velocity_min, settings.velocity_max)
    new_vel = np.clip(new_vel, 1, 127).astype(np.int64)

    by_pitch: dict[int, list[int]] = {}
    for nt in notes:
        by_pitch.setdefault(nt.pitch, []).append(nt.start)
    all_starts = sorted(nt.start for nt in notes)
    ghosts_on = settings.ghost_notes and v > 0.6 and settings.ghost_probability > 0
    step = ppq // 4
    out = []
    for i, nt in enumerate(notes):
        if keep[i]:
            out.append(nt.moved(start=int(new_starts[i]), velocity=int(new_vel[i])))
        if not (ghosts_on and u_ghost[i] < settings.ghost_probability and drum_role(nt.pitch) in GHOST_ROLES):
            continue
        where = int(nt.start - step + ghost_jitter[i])
        if where < 0 or _occupied(by_pitch[nt.pitch], where, ppq // 8):
            continue  # never before the song, never on top of a real hit
        if not _occupied(all_starts, where - ppq // 4, ppq // 4):
            continue  # a ghost leads on from the groove; it never breaks a silence (a breath, an intro)
        velocity = int(min(GHOST_VELOCITY_MAX, max(1, round(new_vel[i] * settings.ghost_velocity_mult))))
        out.append(nt.moved(start=where, velocity=velocity, duration=max(1, min(nt.duration, ppq // 8))))
    return out


def _humanize_parts(notes: list, settings: HumanizeSettings, rng: np.random.Generator, ppq: int,
                    timing: float = 1.0) -> list:
    """Drift and dynamics for a pitched part: scaled down (timing further by ``timing``), chords kept together."""
    n = len(notes)
    scale = ppq / 480.0
    k = settings.non_drum_scale
    starts = np.array([nt.start for nt in notes], dtype=np.int64)
    onsets, group = np.unique(starts, return_inverse=True)
    z_time = rng.standard_normal(len(onsets))
    z_vel = rng.standard_normal(n)
    drift = _drift(z_time, settings.complexity * k * timing, np.ones(len(onsets)), scale)[group]
    new_starts = np.maximum(0, starts + drift)
    base = np.array([nt.velocity for nt in notes], dtype=float)
    target, sigma = velocity_target(settings.vulnerability, base)
    sigma = sigma * settings.velocity_spread
    new_vel = np.clip(np.rint(base + k * (target - base) + k * sigma * z_vel), 1, 127).astype(np.int64)
    return [nt.moved(start=int(s), velocity=int(vel)) for nt, s, vel in zip(notes, new_starts, new_vel)]


def _drift(z: np.ndarray, complexity: float, mult: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian drift in ticks: ``N(0, 35·c·mult)`` clamped to ±35, plus the 5-tick lag.

    Complexity 0 gives exactly zero (no lag either), so "no humanization" is a no-op.
    """
    if complexity <= 0:
        return np.zeros(len(z), dtype=np.int64)
    limit = int(MAX_TICKS_DRIFT * scale)
    jitter = np.clip(np.rint(z * MAX_TICKS_DRIFT * scale * complexity * mult), -limit, limit)
    return (jitter + int(HUMAN_LATENCY_BIAS * scale)).astype(np.int64)


def _occupied(sorted_starts: list[int], where: int, window: int) -> bool:
    """Whether any start in ``sorted_starts`` lies within ``window`` ticks of ``where``."""
    i = bisect.bisect_left(sorted_starts, where - window)
    return i < len(sorted_starts) and sorted_starts[i] <= where + window
