"""The biometric door: heart rate, HRV, EDA, skin temperature and movement → an emotion reading.

Why this module exists
----------------------
A music therapist may wire a wearable (a chest strap, a wristband, an EDA clip) to
Kelly so that the music follows the body. Sensors are noisy and drop out: a strap
slips, a Bluetooth link stalls, an electrode loses contact. This module turns their
readings into valence, arousal, dominance and intensity with the formulas of the
original C++ system (``BiometricInput.cpp`` and ``VADCalculator.cpp``, summarised in
``original-system.md`` §3.8), and says honestly how much it knows:

* :class:`BioSample`: one moment of sensor values (any of them may be missing);
* the formula functions (:func:`heart_rate_arousal`, :func:`hrv_arousal_factor`,
  :func:`movement_arousal`, :func:`bio_arousal`, :func:`eda_intensity`,
  :func:`hrv_intensity`, :func:`bio_intensity`, :func:`temp_valence`,
  :func:`hrv_dominance`): pure, one line of maths each, boundaries as in the source;
* :class:`BiometricReader`: the stateful part. It drops implausible values, NaN and
  artifact jumps (with warnings counted per channel), holds a lost channel's last good
  value for ``hold_s`` seconds, smooths heart rate over a few seconds, and returns a
  :class:`BioReading` whose ``confidence`` says how many channels are live;
* :func:`read_bio_csv` and :class:`BioReplay`: replay of a recorded session;
* :class:`OscBioListener`: live input over OSC (python-osc, the ``kelly[live]`` extra).

Units: heart rate in beats per minute, HRV as RMSSD in milliseconds, EDA (skin
conductance) in microsiemens, skin temperature in degrees Celsius, movement as an
activity level in [0, 1]; times in seconds. Outputs follow DESIGN.md: valence in
[-1, 1], arousal, dominance, intensity and confidence in [0, 1].
"""

from __future__ import annotations

import csv
import io
import ipaddress
import math
import os
import re
import threading
import time
import warnings as _warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import urlsplit

from kelly.errors import FileFormatError, InputError, KellyError

# --------------------------------------------------------------------------- channels

#: The five channels, in the order of :class:`BioSample` and of the ``/kelly/bio`` OSC message.
CHANNELS = ("heart_rate", "hrv", "eda", "skin_temp", "movement")


@dataclass(frozen=True)
class ChannelSpec:
    """What Kelly accepts on one channel.

    Attributes
    ----------
    name : str
        Field name in :class:`BioSample` (``"heart_rate"``).
    label : str
        Words for messages (``"heart rate"``).
    unit : str
        ``"bpm"``, ``"ms"``, ``"µS"``, ``"°C"`` or ``""``.
    low, high : float
        Plausible range, inclusive. A value outside it is dropped with a warning.
    max_rate : float or None
        Largest believable change per second (units/s). A bigger jump from the last good
        value is an artifact. The allowance is ``max_rate · max(dt, 1 s)``, so within one
        second the channel may move by ``max_rate`` and after a longer gap by more (a real
        change is therefore accepted once the gap has grown enough). ``None``: no check.
    weight : float
        Share of :attr:`BioReading.confidence` the channel brings when live (weights sum
        to 1; heart rate matters most).
    """

    name: str
    label: str
    unit: str
    low: float
    high: float
    max_rate: float | None
    weight: float

    def show(self, value: float) -> str:
        """``"400 bpm"``: a value with its unit, for messages."""
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
        return f"{text} {self.unit}".rstrip()

    @property
    def range_text(self) -> str:
        """``"25–240 bpm"``."""
        return f"{self.low:g}–{self.high:g} {self.unit}".rstrip()


#: Plausibility ranges and artifact limits per channel.
#:
#: * heart rate 25–240 bpm (deep bradycardia of athletes asleep to maximal exercise);
#:   a change of more than 40 bpm within a second is an artifact (a strap slipping, a
#:   doubled or missed beat);
#: * HRV (RMSSD) 1–300 ms; more than 150 ms/s is an artifact (an ectopic beat);
#: * EDA 0–100 µS (typical skin 1–20 µS); more than 10 µS/s is an artifact (electrode
#:   contact); a phasic response rises by a few µS over 1–3 s;
#: * skin temperature 25–43 °C; more than 1 °C/s is an artifact (a sensor off the skin);
#: * movement 0–1 (an activity level); it may change at once, so it has no jump check.
CHANNEL_SPECS: dict[str, ChannelSpec] = {
    "heart_rate": ChannelSpec("heart_rate", "heart rate", "bpm", 25.0, 240.0, 40.0, 0.40),
    "hrv": ChannelSpec("hrv", "HRV", "ms", 1.0, 300.0, 150.0, 0.25),
    "eda": ChannelSpec("eda", "EDA", "µS", 0.0, 100.0, 10.0, 0.15),
    "skin_temp": ChannelSpec("skin_temp", "skin temperature", "°C", 25.0, 43.0, 1.0, 0.10),
    "movement": ChannelSpec("movement", "movement", "", 0.0, 1.0, None, 0.10),
}

#: Neutral values used for whatever the live channels do not tell (and when none is live).
NEUTRAL_VALENCE = 0.0
NEUTRAL_AROUSAL = 0.5
NEUTRAL_DOMINANCE = 0.5
NEUTRAL_INTENSITY = 0.5


def _number(value: object, what: str) -> float:
    """A finite float, or InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    return value


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass(frozen=True)
class BioSample:
    """One moment of sensor readings. ``None`` means the channel said nothing.

    Parameters
    ----------
    t : float
        Time in seconds (any origin: seconds since the recording began, or
        :func:`time.monotonic`). Must be finite.
    heart_rate : float or None
        Beats per minute.
    hrv : float or None
        Heart-rate variability as RMSSD, milliseconds.
    eda : float or None
        Electrodermal activity (skin conductance), microsiemens.
    skin_temp : float or None
        Skin temperature, degrees Celsius.
    movement : float or None
        Activity level in [0, 1] (0 still, 1 vigorous).

    Channel values are not range-checked here: a NaN or an implausible value is the
    sensor's fault, and :class:`BiometricReader` drops it with a warning instead of
    stopping the music. Only a non-number (a string, a bool) is an ``InputError``.
    """

    t: float
    heart_rate: float | None = None
    hrv: float | None = None
    eda: float | None = None
    skin_temp: float | None = None
    movement: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _number(self.t, "sample time t"))
        for name in CHANNELS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{CHANNEL_SPECS[name].label} must be a number or None, got {value!r}")
            object.__setattr__(self, name, float(value))

    def values(self) -> dict[str, float]:
        """The channels that carry a value: ``{"heart_rate": 72.0, ...}``."""
        return {name: getattr(self, name) for name in CHANNELS if getattr(self, name) is not None}


# --------------------------------------------------------------------------- formulas (§3.8)

def heart_rate_arousal(bpm: float) -> float:
    """Arousal from heart rate (``BiometricInput::heartRateToArousal``).

    ::

        bpm < 60        → 0.2
        60 ≤ bpm < 80   → 0.3 + (bpm − 60)/20 · 0.2        (0.3 … 0.5)
        80 ≤ bpm < 100  → 0.5 + (bpm − 80)/20 · 0.3        (0.5 … 0.8)
        bpm ≥ 100       → 0.8 + min((bpm − 100)/60, 0.2)   (0.8 … 1.0)

    Parameters
    ----------
    bpm : float
        Heart rate, beats per minute.

    Returns
    -------
    arousal : float in [0.2, 1.0]
        Note the step at 60 bpm (0.2 below, 0.3 at 60), kept from the source.
    """
    bpm = _number(bpm, "heart rate")
    if bpm < 60.0:
        return 0.2
    if bpm < 80.0:
        return 0.3 + (bpm - 60.0) / 20.0 * 0.2
    if bpm < 100.0:
        return 0.5 + (bpm - 80.0) / 20.0 * 0.3
    return 0.8 + min((bpm - 100.0) / 60.0, 0.2)


def hrv_arousal_factor(hrv_ms: float) -> float:
    """How HRV scales arousal (``BiometricInput::processBiometricData``).

    ::

        hrv > 40 ms        → × 0.8   (high variability: calmer)
        20 ≤ hrv ≤ 40 ms   → × 1.0
        hrv < 20 ms        → × 1.2   (low variability: stressed), result clamped to ≤ 1

    Parameters
    ----------
    hrv_ms : float
        RMSSD in milliseconds.

    Returns
    -------
    factor : float, one of 0.8, 1.0, 1.2
    """
    hrv_ms = _number(hrv_ms, "HRV")
    if hrv_ms > 40.0:
        return 0.8
    if hrv_ms < 20.0:
        return 1.2
    return 1.0


def movement_arousal(arousal: float, movement: float) -> float:
    """Movement averaged into arousal: ``(arousal + movement) / 2``.

    The source maps movement to arousal one to one (``movementToArousal`` returns the
    activity level itself) and then takes the plain mean with the arousal found so far
    (from heart rate and HRV, or the neutral 0.5 without them).

    Parameters
    ----------
    arousal : float in [0, 1]
    movement : float in [0, 1]
        Activity level.

    Returns
    -------
    arousal : float in [0, 1]
    """
    arousal = _number(arousal, "arousal")
    movement = _number(movement, "movement")
    return _clip((arousal + _clip(movement, 0.0, 1.0)) / 2.0, 0.0, 1.0)


def bio_arousal(heart_rate: float | None = None, hrv: float | None = None,
                movement: float | None = None) -> float:
    """Arousal from whichever of heart rate, HRV and movement are known, in the source's order.

    1. ``a = heart_rate_arousal(heart_rate)``, or 0.5 without a heart rate;
    2. with HRV: ``a = clamp(a · hrv_arousal_factor(hrv), 0, 1)``;
    3. with movement: ``a = (a + movement) / 2``.

    Returns
    -------
    arousal : float in [0, 1]
    """
    a = heart_rate_arousal(heart_rate) if heart_rate is not None else NEUTRAL_AROUSAL
    if hrv is not None:
        a = _clip(a * hrv_arousal_factor(hrv), 0.0, 1.0)
    if movement is not None:
        a = movement_arousal(a, movement)
    return _clip(a, 0.0, 1.0)


def eda_intensity(eda_us: float) -> float:
    """Intensity from skin conductance: ``clamp(eda / 20 µS, 0, 1)`` (``conductanceToIntensity``).

    Parameters
    ----------
    eda_us : float
        Skin conductance, microsiemens (typically 1–20).
    """
    return _clip(_number(eda_us, "EDA") / 20.0, 0.0, 1.0)


def hrv_intensity(hrv_ms: float) -> float:
    """Intensity from HRV: ``clamp(1 − hrv / 60 ms, 0, 1)``; low variability, high intensity."""
    return _clip(1.0 - _number(hrv_ms, "HRV") / 60.0, 0.0, 1.0)


def bio_intensity(eda: float | None = None, hrv: float | None = None) -> float:
    """Emotional intensity from EDA and HRV.

    ::

        both       → (eda_intensity + hrv_intensity) / 2
        HRV only   → hrv_intensity
        EDA only   → eda_intensity
        neither    → 0.5

    Returns
    -------
    intensity : float in [0, 1]
    """
    if hrv is not None and eda is not None:
        return (eda_intensity(eda) + hrv_intensity(hrv)) / 2.0
    if hrv is not None:
        return hrv_intensity(hrv)
    if eda is not None:
        return eda_intensity(eda)
    return NEUTRAL_INTENSITY


def temp_valence(temp_c: float) -> float:
    """Valence from skin temperature: ``clamp((temp − 36 °C) / 2, −1, 1)``.

    34 °C or colder → −1, 36 °C → 0, 38 °C or warmer → +1. (The source's own comment
    calls this a weak cue: warmer skin, more positive.)

    Parameters
    ----------
    temp_c : float
        Skin temperature, degrees Celsius.

    Returns
    -------
    valence : float in [-1, 1]
    """
    return _clip((_number(temp_c, "skin temperature") - 36.0) / 2.0, -1.0, 1.0)


def hrv_dominance(hrv_ms: float) -> float:
    """Dominance (sense of control) from HRV (``VADCalculator::calculateDominanceFromBiometrics``).

    ::

        hrv ≥ 40 ms        → 0.6 + min((hrv − 40)/60, 0.4)   (0.6 … 1.0)
        20 ≤ hrv < 40 ms   → 0.4 + (hrv − 20)/20 · 0.2       (0.4 … 0.6)
        hrv < 20 ms        → 0.2 + hrv/20 · 0.2              (0.2 … 0.4)

    Clamped to [0, 1]. Without HRV Kelly uses the neutral 0.5 (the source then guesses
    from heart rate; §3.8 keeps only the HRV rule, and so do we).

    Parameters
    ----------
    hrv_ms : float
        RMSSD in milliseconds.

    Returns
    -------
    dominance : float in [0, 1]
    """
    hrv_ms = _number(hrv_ms, "HRV")
    if hrv_ms >= 40.0:
        d = 0.6 + min((hrv_ms - 40.0) / 60.0, 0.4)
    elif hrv_ms >= 20.0:
        d = 0.4 + (hrv_ms - 20.0) / 20.0 * 0.2
    else:
        d = 0.2 + hrv_ms / 20.0 * 0.2
    return _clip(d, 0.0, 1.0)


# --------------------------------------------------------------------------- the reader

@dataclass(frozen=True)
class BioReading:
    """What the body says right now, and how sure Kelly is.

    Attributes
    ----------
    t : float
        Time of the reading, seconds (the clock of the samples).
    valence : float in [-1, 1]
        From skin temperature; 0 without it.
    arousal : float in [0, 1]
        From heart rate, HRV and movement (:func:`bio_arousal`); 0.5 without any.
    dominance : float in [0, 1]
        From HRV (:func:`hrv_dominance`); 0.5 without it.
    intensity : float in [0, 1]
        From EDA and HRV (:func:`bio_intensity`); 0.5 without either.
    confidence : float in [0, 1]
        Sum of the live channels' weights (:data:`CHANNEL_SPECS`), each scaled by its
        freshness ``1 − 0.5 · age / hold_s`` (a value held for the whole hold counts
        half). 0 when no channel is live: then every value is neutral and means nothing.
    channels_used : tuple of str
        The live channels (fresh or held), in :data:`CHANNELS` order.
    warnings : tuple of str
        Dropped values (implausible, not a number, artifact, out of order) within the last
        ``hold_s`` seconds, one line per channel and kind with a count, and each channel
        that has been silent longer than ``hold_s``.
    age_s : float or None
        Seconds since the freshest live channel's last good value; ``None`` when none is live.
    heart_rate : float or None
        The smoothed heart rate the arousal was computed from, bpm (for display).
    """

    t: float
    valence: float = NEUTRAL_VALENCE
    arousal: float = NEUTRAL_AROUSAL
    dominance: float = NEUTRAL_DOMINANCE
    intensity: float = NEUTRAL_INTENSITY
    confidence: float = 0.0
    channels_used: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    age_s: float | None = None
    heart_rate: float | None = None

    @property
    def live(self) -> bool:
        """True when at least one channel is live (``confidence > 0``)."""
        return bool(self.channels_used)

    def to_source(self):
        """This reading as a :class:`kelly.emotion.fusion.SourceReading` for :func:`~kelly.emotion.fusion.fuse`.

        ``age_s`` is 0: the reader's own confidence already falls as channels age and
        reaches 0 when they expire, so the fusion half-life should not count it twice.
        Pass ``replace(src, age_s=...)`` if the reading itself is old. ``intensity`` is
        given only when EDA or HRV is live (otherwise the 0.5 is a placeholder).
        """
        from kelly.emotion.fusion import SourceReading

        knows_intensity = "eda" in self.channels_used or "hrv" in self.channels_used
        return SourceReading(valence=self.valence, arousal=self.arousal, dominance=self.dominance,
                             confidence=self.confidence, age_s=0.0,
                             intensity=self.intensity if knows_intensity else None)

    def to_dict(self) -> dict:
        return {"t": round(self.t, 4), "valence": round(self.valence, 4), "arousal": round(self.arousal, 4),
                "dominance": round(self.dominance, 4), "intensity": round(self.intensity, 4),
                "confidence": round(self.confidence, 4), "channels_used": list(self.channels_used),
                "warnings": list(self.warnings),
                "age_s": None if self.age_s is None else round(self.age_s, 4),
                "heart_rate": None if self.heart_rate is None else round(self.heart_rate, 2)}


@dataclass
class _Channel:
    spec: ChannelSpec
    value: float | None = None        # last good value
    t: float | None = None            # when it arrived
    history: deque = field(default_factory=deque)  # (t, value) within the smoothing window (heart rate)


def _ordinal_times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


class BiometricReader:
    """Turns a stream of :class:`BioSample` into :class:`BioReading`, robust to sensor trouble.

    Parameters
    ----------
    hold_s : float > 0
        How long a channel that stops (or sends only bad values) keeps its last good
        value, seconds. After that it is missing: it no longer counts in the reading and
        a warning says ``"heart rate: no signal for 6.0 s"``. Default 5 s.
    hr_smooth_s : float ≥ 0
        Heart rate is the mean of the good values of the last ``hr_smooth_s`` seconds
        (before the last good one), which steadies beat-to-beat jitter from optical
        sensors without lagging a real change by more than a second or two. 0 turns it
        off. Default 3 s.

    Rules, per channel and sample
    -----------------------------
    * ``None``: the channel said nothing; its last good value is held.
    * NaN or infinity: dropped, warning ``"heart rate: nan is not a number; ignored"``.
    * outside :data:`CHANNEL_SPECS`'s range: dropped,
      ``"heart rate 400 bpm is implausible (25–240 bpm); ignored"``.
    * a jump bigger than ``max_rate · max(dt, 1 s)`` from the last good value (while
      that value is still held): an artifact, dropped,
      ``"heart rate jumped 70 → 150 bpm in 0.5 s; ignored as an artifact"``.
    * a sample older than the previous one: dropped whole (``"time went backwards"``).
      Equal times are accepted (several messages in one clock tick).

    Warnings are counted: each reading lists, per channel and kind, the latest message
    and how often it happened within the last ``hold_s`` seconds. :attr:`dropped` counts
    every dropped value since the start, per channel.

    The reader is not thread-safe; :class:`OscBioListener` guards it with a lock.
    """

    def __init__(self, hold_s: float = 5.0, *, hr_smooth_s: float = 3.0) -> None:
        hold_s = _number(hold_s, "hold_s")
        if hold_s <= 0:
            raise InputError(f"hold_s must be > 0 seconds, got {hold_s!r}")
        hr_smooth_s = _number(hr_smooth_s, "hr_smooth_s")
        if hr_smooth_s < 0:
            raise InputError(f"hr_smooth_s must be ≥ 0 seconds, got {hr_smooth_s!r}")
        self.hold_s = hold_s
        self.hr_smooth_s = hr_smooth_s
        self._channels = {name: _Channel(CHANNEL_SPECS[name]) for name in CHANNELS}
        self._t: float | None = None
        self._events: deque[tuple[float, str, str, str]] = deque()  # (t, channel, kind, message)
        self.dropped: dict[str, int] = {name: 0 for name in (*CHANNELS, "time")}
        self.samples = 0

    # -- input ---------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything (a new session)."""
        self.__init__(self.hold_s, hr_smooth_s=self.hr_smooth_s)

    def _event(self, t: float, channel: str, kind: str, message: str) -> None:
        self._events.append((t, channel, kind, message))
        self.dropped[channel] += 1

    def update(self, sample: BioSample) -> BioReading:
        """Take one sample and return the reading at its time.

        Parameters
        ----------
        sample : BioSample

        Returns
        -------
        BioReading
        """
        if not isinstance(sample, BioSample):
            raise InputError(f"update() takes a BioSample, got {type(sample).__name__}")
        t = sample.t
        if self._t is not None and t < self._t:
            self._event(self._t, "time",
                        "backwards", f"sample at t={t:.3f} s came after t={self._t:.3f} s "
                                     "(time went backwards); dropped")
            return self.read(self._t)
        self.samples += 1
        self._t = t
        for name, value in sample.values().items():
            ch = self._channels[name]
            spec = ch.spec
            if not math.isfinite(value):
                self._event(t, name, "nan", f"{spec.label}: {value} is not a number; ignored")
                continue
            if not spec.low <= value <= spec.high:
                self._event(t, name, "range",
                            f"{spec.label} {spec.show(value)} is implausible ({spec.range_text}); ignored")
                continue
            if spec.max_rate is not None and ch.value is not None and t - ch.t <= self.hold_s:
                dt = t - ch.t
                if abs(value - ch.value) > spec.max_rate * max(dt, 1.0):
                    self._event(t, name, "artifact",
                                f"{spec.label} jumped {ch.value:.4g} → {spec.show(value)} in {dt:.1f} s "
                                f"(more than {spec.max_rate:g} {spec.unit}/s); ignored as an artifact")
                    continue
            if ch.value is not None and t - ch.t > self.hold_s:
                ch.history.clear()  # a fresh start after a dropout: do not average across it
            ch.value, ch.t = value, t
            ch.history.append((t, value))
            while ch.history and ch.history[0][0] < t - self.hr_smooth_s:
                ch.history.popleft()
        return self.read(t)

    # -- output --------------------------------------------------------------------
    def read(self, t: float | None = None) -> BioReading:
        """The reading at time ``t`` without a new sample (holds and expiries applied).

        Parameters
        ----------
        t : float, optional
            Seconds on the samples' clock; default the last sample's time. A time before
            the last sample is taken as the last sample's time.
        """
        if t is None:
            t = self._t if self._t is not None else 0.0
        t = _number(t, "t")
        if self._t is not None and t < self._t:
            t = self._t
        live: dict[str, float] = {}
        ages: dict[str, float] = {}
        notes: list[str] = []
        for name, ch in self._channels.items():
            if ch.value is None:
                continue
            age = t - ch.t
            if age <= self.hold_s:
                if name == "heart_rate" and self.hr_smooth_s > 0 and ch.history:
                    live[name] = sum(v for _, v in ch.history) / len(ch.history)
                else:
                    live[name] = ch.value
                ages[name] = age
            else:
                notes.append(f"{ch.spec.label}: no signal for {age:.1f} s")
        while self._events and self._events[0][0] < t - self.hold_s:
            self._events.popleft()
        grouped: dict[tuple[str, str], list[str]] = {}
        for _, channel, kind, message in self._events:
            grouped.setdefault((channel, kind), []).append(message)
        dropped_notes = []
        for messages in grouped.values():
            n = len(messages)
            extra = "" if n == 1 else f" ({_ordinal_times(n)} in the last {self.hold_s:g} s)"
            dropped_notes.append(messages[-1] + extra)
        if not live:
            return BioReading(t=t, warnings=tuple(dropped_notes + notes + ["no biometric signal; confidence 0"]))
        confidence = sum(CHANNEL_SPECS[n].weight * (1.0 - 0.5 * ages[n] / self.hold_s) for n in live)
        valence = temp_valence(live["skin_temp"]) if "skin_temp" in live else NEUTRAL_VALENCE
        arousal = bio_arousal(live.get("heart_rate"), live.get("hrv"), live.get("movement"))
        dominance = hrv_dominance(live["hrv"]) if "hrv" in live else NEUTRAL_DOMINANCE
        intensity = bio_intensity(live.get("eda"), live.get("hrv"))
        return BioReading(t=t, valence=valence, arousal=arousal, dominance=dominance, intensity=intensity,
                          confidence=_clip(confidence, 0.0, 1.0),
                          channels_used=tuple(n for n in CHANNELS if n in live),
                          warnings=tuple(dropped_notes + notes), age_s=min(ages.values()),
                          heart_rate=live.get("heart_rate"))


# --------------------------------------------------------------------------- CSV replay

#: Accepted CSV header names (lowercase; spaces and hyphens count as underscores) → channel.
CSV_ALIASES: dict[str, str] = {
    **{a: "time_s" for a in ("time_s", "time", "t", "seconds", "secs", "sec", "s", "timestamp", "time_sec")},
    **{a: "heart_rate" for a in ("heart_rate", "hr", "bpm", "heartrate", "heart_rate_bpm", "hr_bpm", "pulse")},
    **{a: "hrv" for a in ("hrv", "rmssd", "hrv_ms", "rmssd_ms", "hrv_rmssd")},
    **{a: "eda" for a in ("eda", "gsr", "eda_us", "gsr_us", "skin_conductance", "conductance", "scl")},
    **{a: "skin_temp" for a in ("skin_temp", "temp", "temperature", "skin_temperature", "skin_temp_c",
                                "temp_c", "temperature_c")},
    **{a: "movement" for a in ("movement", "motion", "activity", "accel", "acc")},
}
#: Default largest CSV file read (bytes).
MAX_CSV_BYTES = 64 * 1024 * 1024
#: Default largest number of data rows.
MAX_CSV_ROWS = 1_000_000

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MISSING = frozenset(("", "nan", "na", "n/a", "null", "none", "-"))


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _accepted_names() -> str:
    by_channel: dict[str, list[str]] = {}
    for alias, channel in CSV_ALIASES.items():
        by_channel.setdefault(channel, []).append(alias)
    return "; ".join(f"{ch} (or {', '.join(a for a in names if a != ch)})" for ch, names in by_channel.items())


def read_bio_csv(path: str | os.PathLike, *, max_bytes: int = MAX_CSV_BYTES,
                 max_rows: int = MAX_CSV_ROWS) -> list[BioSample]:
    """Read a recorded session: a CSV with a header row and one sample per row.

    Format
    ------
    * UTF-8 text (a byte-order mark is fine), comma-separated, first row the header.
    * Columns: ``time_s`` (required, seconds, strictly increasing) and any of
      ``heart_rate`` (bpm), ``hrv`` (RMSSD ms), ``eda`` (µS), ``skin_temp`` (°C),
      ``movement`` (0–1), in any order. Aliases (any case): see :data:`CSV_ALIASES`
      (``hr``, ``bpm``, ``rmssd``, ``gsr``, ``temp``, ``activity`` ...).
    * An empty cell (or ``NaN``, ``NA``, ``null``, ``-``) is a missing value.
    * Lines starting with ``#`` and blank lines are skipped.

    Values are not range-checked here (the :class:`BiometricReader` drops implausible
    ones with warnings, just as it would live); text that is not a number is an error.

    Parameters
    ----------
    path : str or PathLike
    max_bytes : int > 0
        Larger files are refused before they are read (default 64 MiB).
    max_rows : int > 0
        More data rows than this are refused (default 1,000,000).

    Returns
    -------
    samples : list of BioSample
        In file order, times strictly increasing.

    Raises
    ------
    FileFormatError
        Naming the file, line and column: ``"bio.csv line 12, column heart_rate: 'abc'
        is not a number"``; also for a missing, non-regular, oversize, empty, binary or
        non-UTF-8 file, an unknown or repeated column, or times that do not increase.
    """
    from kelly.fileio import read_regular_file, show_path

    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InputError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows <= 0:
        raise InputError(f"max_rows must be a positive integer, got {max_rows!r}")
    shown = show_path(path)
    raw = read_regular_file(path, what="biometric CSV file", max_bytes=max_bytes)
    if not raw.strip():
        raise FileFormatError(f"{shown}: is empty; a biometric CSV needs a header row such as "
                              "'time_s,heart_rate,hrv,eda,skin_temp,movement' and one row per sample")
    if b"\x00" in raw:
        raise FileFormatError(f"{shown}: is binary (contains NUL bytes), not a CSV text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise FileFormatError(f"{shown} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                              "save the file as UTF-8 CSV") from None
    del raw
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: list[str] | None = None
    samples: list[BioSample] = []
    last_t: float | None = None
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if columns is None:
                columns = _parse_header(row, shown, line)
                continue
            if len(row) != len(columns):
                raise FileFormatError(f"{shown} line {line}: has {len(row)} cells but the header has "
                                      f"{len(columns)} ({', '.join(columns)})")
            if len(samples) >= max_rows:
                raise FileFormatError(f"{shown}: has more than {max_rows:,} data rows, the most Kelly reads")
            values: dict[str, float | None] = {}
            for column, cell in zip(columns, row):
                values[column] = _parse_cell(cell, shown, line, column)
            t = values.pop("time_s")
            if t is None:
                raise FileFormatError(f"{shown} line {line}, column time_s: the time is missing")
            if last_t is not None and t <= last_t:
                raise FileFormatError(f"{shown} line {line}, column time_s: time {t:g} s does not increase "
                                      f"(the row before is at {last_t:g} s); rows must be in time order")
            last_t = t
            samples.append(BioSample(t=t, **values))
    except csv.Error as exc:
        raise FileFormatError(f"{shown} line {reader.line_num}: not valid CSV ({exc})") from None
    if columns is None:
        raise FileFormatError(f"{shown}: has no header row; the first row must name the columns, e.g. "
                              "'time_s,heart_rate,hrv'")
    if not samples:
        raise FileFormatError(f"{shown}: has a header but no data rows")
    return samples


def _parse_header(row: list[str], shown: str, line: int) -> list[str]:
    columns: list[str] = []
    for index, name in enumerate(row, start=1):
        key = _header_key(name)
        channel = CSV_ALIASES.get(key)
        if channel is None:
            raise FileFormatError(f"{shown} line {line}, column {index}: unknown column {name.strip()!r}; "
                                  f"accepted names: {_accepted_names()}")
        if channel in columns:
            raise FileFormatError(f"{shown} line {line}, column {index}: {name.strip()!r} repeats column "
                                  f"{channel}")
        columns.append(channel)
    if "time_s" not in columns:
        raise FileFormatError(f"{shown} line {line}: no time column; add 'time_s' (seconds) as a column")
    if len(columns) == 1:
        raise FileFormatError(f"{shown} line {line}: only a time column; add at least one of "
                              + ", ".join(CHANNELS))
    return columns


def _parse_cell(cell: str, shown: str, line: int, column: str) -> float | None:
    text = cell.strip()
    if text.lower() in _MISSING:
        return None
    if not _NUMBER.fullmatch(text):
        shown_cell = text if len(text) <= 40 else text[:37] + "..."
        raise FileFormatError(f"{shown} line {line}, column {column}: {shown_cell!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise FileFormatError(f"{shown} line {line}, column {column}: {text!r} is too large")
    return value


class BioReplay:
    """Plays recorded samples through a :class:`BiometricReader` on the caller's clock.

    Parameters
    ----------
    samples : sequence of BioSample
        Times increasing (as :func:`read_bio_csv` returns them).
    hold_s : float > 0
        Passed to the reader.
    loop : bool
        Start again from the first sample after the last one (the reader is reset).

    Use :meth:`reading_at` with the seconds elapsed since playback began; it feeds every
    sample up to that moment (relative to the first sample's time) and returns the
    reading then. Elapsed time must not go backwards.
    """

    def __init__(self, samples: Sequence[BioSample], *, hold_s: float = 5.0, loop: bool = False) -> None:
        self.samples = list(samples)
        if not self.samples:
            raise InputError("BioReplay needs at least one sample")
        if any(not isinstance(s, BioSample) for s in self.samples):
            raise InputError("BioReplay takes BioSample values")
        if any(b.t <= a.t for a, b in zip(self.samples, self.samples[1:])):
            raise InputError("BioReplay samples must have increasing times")
        self.reader = BiometricReader(hold_s)
        self.loop = loop
        self._t0 = self.samples[0].t
        self._span = self.samples[-1].t - self._t0
        self._next = 0
        self._lap = 0

    @property
    def finished(self) -> bool:
        """True once every sample has been played (never when looping)."""
        return not self.loop and self._next >= len(self.samples)

    def reading_at(self, elapsed_s: float) -> BioReading:
        """The reading ``elapsed_s`` seconds after playback began."""
        elapsed_s = _number(elapsed_s, "elapsed_s")
        if self.loop:
            period = self._span + max(1e-3, self._span / max(1, len(self.samples) - 1))
            lap = int(elapsed_s // period) if elapsed_s > 0 else 0
            if lap != self._lap:
                self._lap, self._next = lap, 0
                self.reader.reset()
            elapsed_s -= lap * period
        t = self._t0 + max(0.0, elapsed_s)
        while self._next < len(self.samples) and self.samples[self._next].t <= t:
            self.reader.update(self.samples[self._next])
            self._next += 1
        return self.reader.read(t)


# --------------------------------------------------------------------------- OSC

#: OSC address of each channel (one float each).
OSC_ADDRESSES: dict[str, str] = {f"/kelly/bio/{name}": name for name in CHANNELS}
#: OSC address carrying all five channels in :data:`CHANNELS` order (NaN = missing).
OSC_ALL = "/kelly/bio"
DEFAULT_OSC_URL = "osc://127.0.0.1:9000"


def parse_osc_url(url: str) -> tuple[str, int]:
    """``"osc://HOST:PORT"`` → ``(host, port)``.

    ``HOST`` is a name or an IP address (IPv6 in brackets: ``osc://[::1]:9000``);
    ``PORT`` 0–65535 (0: let the system choose). ``osc.udp://`` is accepted too.

    Raises
    ------
    InputError
        For anything else, with an example of the right form.
    """
    example = "e.g. osc://127.0.0.1:9000"
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"OSC address must be a URL like osc://HOST:PORT ({example}), got {url!r}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InputError(f"bad OSC address {url!r}: {exc} ({example})") from None
    if parts.scheme.lower() not in ("osc", "osc.udp"):
        raise InputError(f"bad OSC address {url!r}: it must start with osc:// ({example})")
    if not parts.hostname:
        raise InputError(f"bad OSC address {url!r}: no host ({example})")
    if port is None:
        raise InputError(f"bad OSC address {url!r}: no port ({example})")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(f"bad OSC address {url!r}: only osc://HOST:PORT is accepted ({example})")
    return parts.hostname, port


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _import_pythonosc():
    try:
        from pythonosc import dispatcher, osc_server
    except ImportError:
        raise KellyError("live biometrics over OSC need python-osc; install it with: pip install 'kelly[live]'") \
            from None
    return dispatcher, osc_server


def _osc_float(arg: object) -> float | None:
    """An OSC argument as a channel value: a number, NaN → None; anything else raises ValueError."""
    if isinstance(arg, bool) or not isinstance(arg, (int, float)):
        raise ValueError(f"{arg!r} is not a number")
    value = float(arg)
    return None if math.isnan(value) else value


class OscBioListener:
    """Receives biometrics over OSC (UDP) and keeps the latest :class:`BioReading`.

    Parameters
    ----------
    url : str
        ``"osc://HOST:PORT"`` to listen on (default ``osc://127.0.0.1:9000``). Port 0
        picks a free port; :attr:`port` tells which.
    hold_s : float > 0
        Passed to the :class:`BiometricReader`.
    allow_remote : bool
        Only loopback addresses (127.0.0.1, ::1, localhost) may be bound unless this is
        True: a sensor on another machine can then send, and so can anyone else on the
        network, so a ``RuntimeWarning`` says so.
    clock : callable
        Time source for arrival stamps, seconds (default :func:`time.monotonic`).

    Messages (each argument a float or int)
    ---------------------------------------
    ``/kelly/bio/heart_rate``, ``/kelly/bio/hrv``, ``/kelly/bio/eda``,
    ``/kelly/bio/skin_temp``, ``/kelly/bio/movement``: one value each.
    ``/kelly/bio``: five values in that order; NaN marks a missing one.

    A message with the wrong number of arguments or a non-number is counted in
    :attr:`bad_messages` (the last problem in :attr:`last_error`) and otherwise ignored;
    other addresses are counted in :attr:`unknown_messages`; datagrams that are not OSC
    in :attr:`bad_messages`. Nothing a sender does stops the listener. OSC bundle time
    tags are ignored (a bundle "for later" is handled at once, so a sender cannot stall
    the listener); every sample is stamped on arrival.

    Use as a context manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(self, url: str = DEFAULT_OSC_URL, *, hold_s: float = 5.0, allow_remote: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self._requested_port = parse_osc_url(url)
        if not _is_loopback(self.host):
            if not allow_remote:
                raise InputError(f"refusing to listen for OSC on {self.host}: only this computer "
                                 "(127.0.0.1, ::1 or localhost) is allowed unless you allow others (kelly engine "
                                 "--osc-allow-remote, or allow_remote=True): then anyone on the network can send "
                                 "biometrics")
        self.allow_remote = allow_remote
        self.reader = BiometricReader(hold_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.messages = 0
        self.bad_messages = 0
        self.unknown_messages = 0
        self.last_error: str | None = None
        self.warnings: list[str] = []

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound UDP port (the chosen one when the URL said port 0), or the requested one before start."""
        if self._server is not None:
            return self._server.server_address[1]
        return self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"osc://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "OscBioListener":
        """Bind the port and start receiving in a background thread.

        Raises
        ------
        KellyError
            If python-osc is missing, or the port cannot be bound (in use, not allowed).
        """
        if self._server is not None:
            return self
        dispatcher_mod, osc_server = _import_pythonosc()
        if not _is_loopback(self.host):
            message = (f"listening for OSC biometrics on {self.host}:{self._requested_port}: other computers "
                       "on the network can send values")
            self.warnings.append(message)
            _warnings.warn(message, RuntimeWarning, stacklevel=2)
        disp = dispatcher_mod.Dispatcher(strict_timing=False)
        for address, channel in OSC_ADDRESSES.items():
            disp.map(address, self._on_channel, channel)
        disp.map(OSC_ALL, self._on_all)
        disp.set_default_handler(self._on_unknown)
        listener = self

        class _Server(osc_server.BlockingOSCUDPServer):
            def verify_request(self, request, client_address):  # noqa: N802 - socketserver's name
                ok = super().verify_request(request, client_address)
                if not ok:
                    listener._bad("a datagram that is not an OSC message")
                return ok

            def handle_error(self, request, client_address):  # never print tracebacks for a sender's mistake
                listener._bad("a message the OSC library could not handle")

        try:
            server = _Server((self.host, self._requested_port), disp)
        except OSError as exc:
            raise KellyError(f"cannot listen for OSC on {self.host}:{self._requested_port}: "
                             f"{exc.strerror or exc}") from None
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"kelly-osc-bio:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop receiving and free the port (safe to call twice)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=2.0)
        self._server, self._thread = None, None

    def __enter__(self) -> "OscBioListener":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- handlers (server thread) ----------------------------------------------------
    def _bad(self, why: str) -> None:
        with self._lock:
            self.bad_messages += 1
            self.last_error = why

    def _feed(self, **values: float | None) -> None:
        with self._lock:
            self.messages += 1
            self.reader.update(BioSample(t=self._clock(), **values))

    def _on_channel(self, address: str, fixed: list, *args: object) -> None:
        try:
            channel = fixed[0]
            if len(args) != 1:
                raise ValueError(f"expects one number, got {len(args)} arguments")
            value = _osc_float(args[0])
            if value is None:
                return None
            self._feed(**{channel: value})
        except Exception as exc:  # a sender's mistake must never stop the listener
            self._bad(f"{address}: {exc}")
        return None

    def _on_all(self, address: str, *args: object) -> None:
        try:
            if len(args) != len(CHANNELS):
                raise ValueError(f"expects {len(CHANNELS)} numbers ({', '.join(CHANNELS)}), got {len(args)}")
            values = {name: _osc_float(arg) for name, arg in zip(CHANNELS, args)}
            self._feed(**values)
        except Exception as exc:
            self._bad(f"{address}: {exc}")
        return None

    def _on_unknown(self, address: str, *args: object) -> None:
        with self._lock:
            self.unknown_messages += 1
        return None

    # -- reading -------------------------------------------------------------------
    def latest(self, now: float | None = None) -> BioReading:
        """The reading now: the last samples with holds and expiries applied at ``now``.

        Parameters
        ----------
        now : float, optional
            Seconds on the listener's clock (default: the clock now). A sensor that went
            quiet therefore shows up as ``"no signal"`` even when no message arrives.
        """
        with self._lock:
            if self.reader.samples == 0:
                return BioReading(t=self._clock() if now is None else float(now),
                                  warnings=("no biometric signal yet",))
            return self.reader.read(self._clock() if now is None else now)


__all__ = [
    "CHANNELS", "CHANNEL_SPECS", "CSV_ALIASES", "OSC_ADDRESSES", "OSC_ALL", "BioReading", "BioReplay", "BioSample",
    "BiometricReader", "ChannelSpec", "OscBioListener", "bio_arousal", "bio_intensity", "eda_intensity",
    "heart_rate_arousal", "hrv_arousal_factor", "hrv_dominance", "hrv_intensity", "movement_arousal",
    "parse_osc_url", "read_bio_csv", "temp_valence",
]
