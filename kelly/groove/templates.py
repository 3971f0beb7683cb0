"""Groove templates: the value class, its JSON form, and the 8 genre templates.

A :class:`GrooveTemplate` is a one-bar "feel": for each of the 16 sixteenth-note slots
of a bar, how far (in ticks at 480 PPQ) notes on that slot sit from the straight grid
and how loud they are, plus a swing factor (defined in :mod:`kelly.groove.swing`).
Extraction (:mod:`kelly.groove.extract`) produces them from MIDI; application
(:mod:`kelly.groove.apply`) stamps them onto a song.

The genre numbers are those of the original DAiW ``GENRE_TEMPLATES`` (reference
Appendix E). Their ``timing_deviations`` are read as offsets *on top of* the swung
grid, so the jazz template's swing (0.67) and its per-slot offsets add up.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kelly.errors import FileFormatError, InputError
from kelly.fileio import read_json, write_json_atomic

#: The PPQ that template tick values are expressed in.
TEMPLATE_PPQ = 480
#: Slots per template (sixteenth notes in a 4/4 bar).
SLOTS = 16
#: Fastest tempo a template may carry (the MIDI reader reads faster tempos as this).
MAX_TEMPLATE_BPM = 10_000.0


def ticks_to_ms(ticks: float, bpm: float, ppq: int = TEMPLATE_PPQ) -> float:
    """Milliseconds for ``ticks`` at ``bpm`` (``ticks · 60000 / bpm / ppq``)."""
    return float(ticks) * 60000.0 / float(bpm) / float(ppq)


@dataclass(frozen=True)
class GrooveTemplate:
    """A one-bar groove: per-16th timing offsets, a velocity curve and a swing factor.

    Attributes
    ----------
    name : str
        Display name ("Jazz Swing", or the source file's stem).
    source_file : str or None
        File it was extracted from; ``None`` for built-in genres.
    ppq : int
        PPQ of the tick values below; always 480 for templates Kelly writes.
    tempo_bpm : float
        Tempo of the source (genres: middle of the genre's range); used for ms stats.
    time_signature : tuple[int, int]
        Time signature of the source.
    timing_deviations : tuple[float, ...] [len 16]
        Mean offset per 16th slot, in ticks at ``ppq``, measured from the *swung* grid.
    swing_factor : float in [0, 1]
        Delay of the off-beat eighth in units of ``ppq/4`` (see :mod:`kelly.groove.swing`).
    velocity_curve : tuple[float, ...] [len 16]
        Mean velocity per 16th slot (1–127).
    velocity_stats, timing_stats : dict
        Summary numbers (min/max/mean/std, ghost and accent counts; mean/max/std
        deviation in ticks and in ms).
    tempo_range : tuple[float, float] or None
        For genres, the range the style lives in.
    """

    name: str
    timing_deviations: tuple[float, ...]
    velocity_curve: tuple[float, ...]
    swing_factor: float = 0.0
    source_file: str | None = None
    ppq: int = TEMPLATE_PPQ
    tempo_bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    velocity_stats: dict[str, Any] = field(default_factory=dict, compare=False)
    timing_stats: dict[str, Any] = field(default_factory=dict, compare=False)
    tempo_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if len(self.timing_deviations) != SLOTS or len(self.velocity_curve) != SLOTS:
            raise InputError(
                f"groove template {self.name!r} needs {SLOTS} timing deviations and {SLOTS} velocities, "
                f"got {len(self.timing_deviations)} and {len(self.velocity_curve)}"
            )
        if not 0.0 <= float(self.swing_factor) <= 1.0:
            raise InputError(f"groove template {self.name!r}: swing_factor must be in [0, 1], got {self.swing_factor}")
        if self.ppq <= 0 or not 0 < self.tempo_bpm <= MAX_TEMPLATE_BPM:
            raise InputError(f"groove template {self.name!r}: ppq must be positive and tempo_bpm in "
                             f"(0, {MAX_TEMPLATE_BPM:g}], got {self.ppq} and {self.tempo_bpm}")
        ts = self.time_signature
        if (len(ts) != 2 or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and x > 0 for x in ts)):
            raise InputError(f"groove template {self.name!r}: time_signature must be two positive integers, "
                             f"got {ts!r}")

    def deviations_at(self, ppq: int) -> tuple[float, ...]:
        """Timing deviations rescaled to another PPQ."""
        return tuple(d * ppq / self.ppq for d in self.timing_deviations)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys of the original ``GrooveTemplate``, plus ``tempo_range`` for genres)."""
        data: dict[str, Any] = {
            "name": self.name,
            "source_file": self.source_file,
            "ppq": self.ppq,
            "tempo_bpm": self.tempo_bpm,
            "time_signature": list(self.time_signature),
            "timing_deviations": [round(float(d), 3) for d in self.timing_deviations],
            "swing_factor": round(float(self.swing_factor), 3),
            "velocity_curve": [round(float(v), 3) for v in self.velocity_curve],
            "velocity_stats": dict(self.velocity_stats),
            "timing_stats": dict(self.timing_stats),
        }
        if self.tempo_range is not None:
            data["tempo_range"] = list(self.tempo_range)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "template") -> "GrooveTemplate":
        """Build a template from its JSON form, checking every field.

        Raises
        ------
        FileFormatError
            If a field is missing or has the wrong type, length or range.
        """
        if not isinstance(data, dict):
            raise FileFormatError(f"{origin}: a groove template must be a JSON object")

        def numbers(key: str, lo: float, hi: float) -> tuple[float, ...]:
            values = data.get(key)
            if not isinstance(values, list) or len(values) != SLOTS:
                raise FileFormatError(f"{origin}: {key!r} must be a list of {SLOTS} numbers")
            out = []
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                    raise FileFormatError(f"{origin}: {key!r} has a bad value {v!r} (allowed {lo}..{hi})")
                out.append(float(v))
            return tuple(out)

        def number(key: str, default: float, lo: float, hi: float) -> float:
            v = data.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise FileFormatError(f"{origin}: {key!r} must be a number in {lo}..{hi}, got {v!r}")
            return float(v)

        ppq = int(number("ppq", TEMPLATE_PPQ, 1, 1_000_000))
        ts = data.get("time_signature", [4, 4])
        if (not isinstance(ts, (list, tuple)) or len(ts) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in ts)):
            raise FileFormatError(f"{origin}: 'time_signature' must be two positive integers like [4, 4]")
        tempo_range = data.get("tempo_range")
        if tempo_range is not None:
            if not (isinstance(tempo_range, (list, tuple)) and len(tempo_range) == 2
                    and all(isinstance(x, (int, float)) for x in tempo_range)):
                raise FileFormatError(f"{origin}: 'tempo_range' must be two numbers")
            tempo_range = (float(tempo_range[0]), float(tempo_range[1]))
        source = data.get("source_file")
        name = data.get("name") or "groove"
        for key in ("velocity_stats", "timing_stats"):
            if not isinstance(data.get(key, {}), dict):
                raise FileFormatError(f"{origin}: {key!r} must be an object")
        return cls(
            name=str(name),
            source_file=None if source is None else str(source),
            ppq=ppq,
            tempo_bpm=number("tempo_bpm", 120.0, 1e-6, MAX_TEMPLATE_BPM),
            time_signature=(int(ts[0]), int(ts[1])),
            timing_deviations=numbers("timing_deviations", -4.0 * ppq, 4.0 * ppq),
            swing_factor=number("swing_factor", 0.0, 0.0, 1.0),
            velocity_curve=numbers("velocity_curve", 0.0, 127.0),
            velocity_stats=dict(data.get("velocity_stats", {})),
            timing_stats=dict(data.get("timing_stats", {})),
            tempo_range=tempo_range,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON form atomically."""
        return write_json_atomic(path, self.to_dict())


def load_template(path: str | os.PathLike) -> GrooveTemplate:
    """Read a groove template JSON file.

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable, not JSON, or not a valid template.
    """
    p = Path(path)
    data = read_json(p, what="groove template")
    return GrooveTemplate.from_dict(data, origin=str(p))


# --------------------------------------------------------------------------- genres
#: key → (display name, swing, tempo range, timing deviations @480, velocity curve). Appendix E, verbatim.
_GENRE_DATA: dict[str, tuple[str, float, tuple[int, int], list[int], list[int]]] = {
    "funk": ("Funk Pocket", 0.15, (90, 120),
             [0, -8, 5, -5, 12, -6, 8, -4, 0, -10, 6, -6, 15, -5, 10, -3],
             [110, 60, 85, 55, 95, 55, 75, 50, 85, 50, 70, 45, 100, 60, 80, 55]),
    "jazz": ("Jazz Swing", 0.67, (100, 200),
             [0, 20, 0, 25, -5, 22, 0, 28, 0, 18, -3, 24, -8, 20, 0, 26],
             [90, 50, 75, 55, 85, 55, 70, 60, 80, 50, 72, 58, 88, 52, 78, 62]),
    "rock": ("Rock Drive", 0.0, (100, 140),
             [0, -5, 0, -8, -3, -6, -2, -7, 0, -4, 0, -6, -2, -5, -3, -8],
             [115, 70, 90, 65, 120, 80, 95, 70, 100, 65, 85, 60, 118, 75, 92, 68]),
    "hiphop": ("Hip-Hop Pocket", 0.25, (75, 100),
               [0, 15, 8, 18, 20, 12, 15, 20, 5, 18, 10, 22, 25, 15, 18, 25],
               [120, 35, 45, 30, 60, 30, 40, 35, 100, 38, 48, 32, 55, 32, 42, 38]),
    "edm": ("EDM Quantized", 0.0, (120, 150),
            [0, 0, 0, 0, 1, -1, 1, -1, 0, 0, 0, 0, -1, 1, -1, 1],
            [127, 95, 110, 90, 125, 92, 108, 88, 127, 93, 112, 91, 124, 94, 106, 89]),
    "latin": ("Latin Clave", 0.1, (90, 130),
              [0, 5, -5, 8, -8, 6, 0, 10, 5, -5, 8, 5, -6, 8, -3, 12],
              [100, 70, 95, 65, 85, 75, 80, 70, 90, 68, 98, 72, 88, 73, 85, 68]),
    "blues": ("Blues Shuffle", 0.6, (70, 120),
              [0, 18, 0, 20, -5, 22, 0, 25, 0, 16, -3, 18, -8, 24, 0, 22],
              [105, 55, 85, 60, 95, 60, 80, 55, 90, 52, 82, 58, 98, 58, 88, 62]),
    "bedroom_lofi": ("Lo-Fi Bedroom", 0.35, (70, 95),
                     [5, 20, -8, 25, -12, 30, 8, 22, 15, -5, 28, 10, -10, 35, -5, 28],
                     [95, 45, 70, 40, 50, 42, 55, 38, 80, 48, 65, 42, 52, 40, 58, 35]),
}

#: Other names accepted for a genre (the C++ original called bedroom_lofi "lofi").
GENRE_ALIASES = {"lofi": "bedroom_lofi", "lo-fi": "bedroom_lofi", "hip-hop": "hiphop", "hip_hop": "hiphop"}


def _stats(devs: list[float], vels: list[float], bpm: float) -> tuple[dict, dict]:
    """Summary stats of a template's own numbers (population std, as numpy computes it)."""
    n = len(devs)
    abs_devs = [abs(d) for d in devs]
    mean_abs = sum(abs_devs) / n
    mean_dev = sum(devs) / n
    std_dev = math.sqrt(sum((d - mean_dev) ** 2 for d in devs) / n)
    mean_vel = sum(vels) / n
    std_vel = math.sqrt(sum((v - mean_vel) ** 2 for v in vels) / n)
    timing = {
        "mean_deviation_ticks": round(mean_abs, 3),
        "max_deviation_ticks": round(max(abs_devs), 3),
        "std_deviation_ticks": round(std_dev, 3),
        "mean_deviation_ms": round(ticks_to_ms(mean_abs, bpm), 3),
        "max_deviation_ms": round(ticks_to_ms(max(abs_devs), bpm), 3),
        "std_deviation_ms": round(ticks_to_ms(std_dev, bpm), 3),
    }
    velocity = {
        "min": min(vels), "max": max(vels), "mean": round(mean_vel, 3), "std": round(std_vel, 3),
        "ghost_count": sum(1 for v in vels if v < 40), "accent_count": sum(1 for v in vels if v > 100),
    }
    return velocity, timing


def _build_genre(key: str) -> GrooveTemplate:
    name, swing, (lo, hi), devs, vels = _GENRE_DATA[key]
    bpm = (lo + hi) / 2.0
    velocity_stats, timing_stats = _stats([float(d) for d in devs], [float(v) for v in vels], bpm)
    return GrooveTemplate(
        name=name, source_file=None, ppq=TEMPLATE_PPQ, tempo_bpm=bpm, time_signature=(4, 4),
        timing_deviations=tuple(float(d) for d in devs), swing_factor=swing,
        velocity_curve=tuple(float(v) for v in vels),
        velocity_stats=velocity_stats, timing_stats=timing_stats, tempo_range=(float(lo), float(hi)),
    )


#: The 8 genre templates, keyed by genre name.
GENRE_TEMPLATES: dict[str, GrooveTemplate] = {key: _build_genre(key) for key in _GENRE_DATA}


def template_names() -> list[str]:
    """Genre keys in their canonical order."""
    return list(GENRE_TEMPLATES)


def get_template(name: str) -> GrooveTemplate:
    """The genre template called ``name`` (case-insensitive; ``lofi`` is ``bedroom_lofi``).

    Raises
    ------
    InputError
        If no genre has that name; the message lists the names there are.
    """
    key = str(name).strip().lower().replace(" ", "_")
    key = GENRE_ALIASES.get(key, key)
    try:
        return GENRE_TEMPLATES[key]
    except KeyError:
        raise InputError(
            f"unknown groove template {name!r}; choose one of: {', '.join(template_names())} (or lofi), "
            "or give a .json file made by 'kelly groove extract'"
        ) from None


def resolve_template(spec: str) -> GrooveTemplate:
    """A genre name, or a path to a template JSON file (anything ending in ``.json`` or existing on disk)."""
    text = str(spec)
    if text.lower().endswith(".json") or os.sep in text or Path(text).is_file():
        return load_template(text)
    return get_template(text)
