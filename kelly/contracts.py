"""Typed, versioned models of what leaves the composer, and their published JSON Schema.

:class:`Explanation` is the explanation Kelly writes beside every MIDI file
(``FILE.json``), prints with ``kelly compose --json`` and hands to the web app. Every
musical statement in it is true of the MIDI it explains: measured from the finished
song (parts, note counts, pitch and velocity ranges, the tempo map, the ending) or
derived from the chords that were voiced and then checked against the notes (chord
symbols, keys, cadences, borrowed chords and whether they darken or brighten).
``tests/compose/test_explanation_claims.py`` holds the explanation to that.

What is typed and what is not: everything the user-facing summary or the web app reads
is a field of a model below, and those models forbid unknown fields (a typo fails
loudly). ``engines`` is a free-form ``dict`` of per-engine details (the melody's
contours, the bass patterns, the drum pattern ...), so an engine can report more
without a schema change; nothing may depend on its shape.

Versioning (see ``docs/explanation.md``): ``schema_version`` changes only when a field
is removed or renamed, or its meaning or type changes; adding a field, or a value to an
open set, keeps the version. ``kelly_version`` says which Kelly wrote the file.

The JSON Schema (:func:`explanation_schema`) is published as
``docs/schemas/explanation.schema.json`` and printed by ``kelly schema explanation``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kelly.song import Role

#: The explanation's schema version: bumped when a field is removed or renamed (additions keep it).
SCHEMA_VERSION = "1"
#: Where the schema is published, relative to the repository root.
SCHEMA_PATH = "docs/schemas/explanation.schema.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Cadence = Literal["authentic", "half", "deceptive"]


class _Strict(BaseModel):
    """A typed part of a contract: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- emotion
class Evidence(_Strict):
    """A piece of the text that pointed at an emotion."""

    words: str
    emotion: str
    kind: str
    weight: float


class SecondaryEmotion(_Strict):
    emotion: str
    weight: float


class Emotion(_Strict):
    """The emotion composed for (:meth:`kelly.emotion.state.EmotionState.to_dict`)."""

    emotion: str = Field(description="the emotion's name (thesaurus label)")
    family: str
    valence: float = Field(ge=-1.0, le=1.0)
    arousal: float = Field(ge=0.0, le=1.0)
    dominance: float = Field(ge=0.0, le=1.0)
    intensity: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    secondary: list[SecondaryEmotion] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    source: str


# --------------------------------------------------------------------------- parameters
class Parameters(_Strict):
    """The musical settings the emotion mapped to (:mod:`kelly.mapping`): what the engines aimed for.

    These are settings, not measurements: the played velocities are in
    :attr:`Explanation.velocity` and :attr:`Part.velocity`, the sounding tempo in
    :attr:`Explanation.tempo_map`.
    """

    tempo_bpm: int
    base_velocity: int = Field(ge=1, le=127)
    mode: Literal["major", "minor"] = Field(description="the family of the mode the piece is in")
    detailed_mode: str = Field(description='the mode the piece is in ("aeolian", "dorian" ...); `why.detailed_mode` '
                                           "says when the emotion suggested another")
    key: str = Field(description='tonic and mode, e.g. "F minor", "D dorian"')
    register_octave: int
    melody_centre: int = Field(description="the MIDI pitch the melody is centred on")
    density: float
    dissonance: float
    dynamics_range: float
    target_velocity_min: int = Field(description="the mapping's velocity range, before dynamics, accents, "
                                                 "groove and rule breaks (the played range is `velocity`)")
    target_velocity_max: int
    timing_feel: str
    swing: float
    groove: str
    timing_variation_beats: float
    velocity_variation: float
    timing_bias_beats: float
    why: dict[str, str] = Field(default_factory=dict, description="the reason for each setting, in words")


# --------------------------------------------------------------------------- harmony
class BorrowedEffect(_Strict):
    """How a borrowed chord bends the key's scale while it sounds."""

    direction: Literal["darkens", "brightens", "colours"] = Field(
        description="darkens: it only lowers scale degrees (b3, b6, b7 ...); brightens: it only raises them; "
                    "colours: both")
    lowered: list[str] = Field(default_factory=list, description='degrees it lowers, as they sound ("b6")')
    raised: list[str] = Field(default_factory=list, description='degrees it raises, as they sound ("7")')


class ChordValue(_Strict):
    """One chord as it sounds: where, how long, what, and in which key."""

    start_bar: int = Field(ge=1, description="1-based bar it starts in")
    beat: float = Field(ge=1.0, description="1-based beat of that bar it starts on, counted in the time "
                                            "signature's unit (quarters in 4/4 and 3/4, eighths in 6/8)")
    bars: float = Field(gt=0.0, description="how long it lasts, in bars")
    symbol: str = Field(description='lead-sheet symbol, e.g. "Am7", "G/B"')
    root: str = Field(description='spelled root, e.g. "Bb"')
    quality: str = Field(description='quality key of kelly.theory.chords.QUALITIES, e.g. "min7"')
    bass: str | None = Field(default=None, description="spelled bass note of a slash chord")
    pitch_classes: list[int] = Field(description="the chord's pitch classes (0 = C), root first, bass included")
    numeral: str = Field(description='roman numeral in `key`, e.g. "vi", "bVI"')
    key: str = Field(description='the key and mode of the moment, e.g. "C major"')
    borrowed_from: str | None = Field(default=None, description="the parallel mode a borrowed chord comes from")
    borrowed_effect: BorrowedEffect | None = None
    cadence: Cadence | None = Field(default=None, description="the cadence this chord closes a phrase with")
    tension: float

    def start_tick(self, bar_ticks: int, beat_ticks: int) -> int:
        """Where the chord starts, in ticks, for a song of ``bar_ticks`` per bar and ``beat_ticks`` per beat."""
        return (self.start_bar - 1) * bar_ticks + round((self.beat - 1) * beat_ticks)


class Pivot(_Strict):
    """A journey's change of mode, prepared by a chord both modes share."""

    bar: int = Field(ge=1, description="1-based bar of the pivot chord; the new mode starts in the next bar")
    from_key: str
    to_key: str
    numeral: str
    deliberate: bool = Field(default=False, description="no shared chord exists: the dominant leads into both")


class Progression(_Strict):
    key: str = Field(description="the piece's home key")
    chords: list[ChordValue]
    tension_curve: list[float] = Field(description="harmonic tension per bar, 0..1")
    pivots: list[Pivot] = Field(default_factory=list)


class Ending(_Strict):
    """How the piece ends, read from its last chord and the last notes of the melody and bass."""

    chord: int = Field(ge=0, description="index of the last chord in progression.chords")
    symbol: str
    numeral: str
    cadence: Cadence | None = None
    on_tonic: bool = Field(description="the last chord's root is the key's tonic")
    bass: str | None = Field(default=None, description="pitch class of the bass's last note")
    melody: str | None = Field(default=None, description='the melody\'s last note, e.g. "F4"')
    melody_degree: str | None = Field(default=None, description='its degree in the key, e.g. "1", "b3", "5"')
    home: bool = Field(description="the piece comes home: tonic chord, tonic in the bass, melody on a chord tone")
    statement: str


# --------------------------------------------------------------------------- arrangement
class Range(_Strict):
    low: int
    high: int


class Part(_Strict):
    """A track of the MIDI file, measured."""

    role: Role | None
    name: str
    program: int = Field(ge=0, le=127)
    channel: int = Field(ge=1, le=16, description="1-based MIDI channel (10 = drums)")
    drums: bool
    notes: int = Field(ge=0)
    pitch: Range | None = Field(description="lowest and highest MIDI pitch played")
    velocity: Range | None = Field(description="softest and loudest velocity played")
    first_bar: int | None = Field(default=None, description="1-based bar of its first note")
    last_bar: int | None = Field(default=None, description="1-based bar of its last note")


class SectionInfo(_Strict):
    name: str
    start_bar: int = Field(ge=1)
    bars: int = Field(ge=1)
    energy: float
    emotion: str
    tempo_bpm: float = Field(description="the tempo sounding at the section's first beat")
    key: str
    mode: Literal["major", "minor"]
    base_velocity: int
    density: float
    register_octave: int
    melody_centre: int
    chords: list[int] = Field(description="indices into progression.chords of the chords that start in it")


class Arrangement(_Strict):
    template: str
    sections: list[SectionInfo]
    layers: list[str] = Field(description="the layers heard in the file (a layer whose notes all fell away "
                                          "is not listed)")


class RuleBreak(_Strict):
    rule: str
    category: str
    severity: float = Field(ge=0.0, le=1.0)
    why: str
    source: Literal["emotion", "user", "intent"]
    effect: str
    expressed_as: Literal["MIDI", "production note"]


class ProductionNote(_Strict):
    rule: str
    note: str


class TempoPoint(_Strict):
    tick: int = Field(ge=0)
    bar: float = Field(ge=1.0, description="1-based position in bars")
    bpm: float = Field(gt=0.0)


class Models(_Strict):
    live: list[str] = Field(default_factory=list)
    fallback: list[str] = Field(default_factory=list)
    note: str
    status: dict[str, str] = Field(default_factory=dict)
    hints: dict[str, Any] | None = None


class Files(_Strict):
    midi: str
    explanation: str
    midi_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class IntentValidation(_Strict):
    valid: bool
    problems: list[str] = Field(default_factory=list)


class IntentProduction(_Strict):
    texture: str | None = None
    note: str | None = None


class IntentRecord(_Strict):
    """What ``kelly intent process`` composed from (:mod:`kelly.intent.process`)."""

    title: str
    document: dict[str, Any]
    validation: IntentValidation
    applied: dict[str, Any]
    skipped: list[str] = Field(default_factory=list)
    production: IntentProduction
    file: str | None = None


class Explanation(_Strict):
    """Why each choice of a composition was made, and what the MIDI holds."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, title="Kelly explanation")

    schema_version: Literal["1"]
    kelly_version: str
    seed: int
    bars: int = Field(ge=1)
    time_signature: str = Field(pattern=r"^[0-9]+/[0-9]+$", description='the metre of the file, e.g. "4/4", "6/8"')
    complexity: float = Field(ge=0.0, le=1.0)
    text: str | None = Field(default=None, description="the words composed from, when there were any")
    emotion: Emotion
    journey: list[str] | None = Field(default=None, description="the emotions of a journey, first to last")
    parameters: Parameters
    profile: str
    arrangement: Arrangement
    progression: Progression
    ending: Ending | None
    parts: list[Part]
    velocity: Range | None = Field(description="softest and loudest velocity played in the whole file")
    rule_breaks: list[RuleBreak] = Field(default_factory=list)
    production_notes: list[ProductionNote] = Field(default_factory=list)
    tempo_map: list[TempoPoint]
    models: Models
    engines: dict[str, Any] = Field(default_factory=dict, description="free-form per-engine details")
    files: Files | None = None
    intent: IntentRecord | None = None

    def to_json(self) -> dict:
        """The JSON-ready dict Kelly writes (``model_dump(mode="json")``)."""
        return self.model_dump(mode="json")


def explanation_schema() -> dict:
    """The JSON Schema of :class:`Explanation` (draft 2020-12), as published in ``docs/schemas``."""
    schema = Explanation.model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT,
            "description": f"Kelly's explanation of a composition, schema version {SCHEMA_VERSION}. "
                           "See docs/explanation.md.",
            **{k: v for k, v in schema.items() if k != "description"}}


#: The schemas ``kelly schema NAME`` prints.
SCHEMAS = {"explanation": explanation_schema}


def schema_text(name: str = "explanation") -> str:
    """The schema ``name`` as the indented JSON text that is published (a newline at the end)."""
    import json

    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"


# =========================================================================== live engine
# The real-time engine's state and the socket protocol's messages (kelly.ipc), shared
# with the web app. Every frame on the socket is one of these models as a JSON object
# whose ``type`` names the model. Requests may carry an ``id`` (a number or a short
# string) that the answer repeats, so a client can match answers to questions.

#: Version of the socket protocol (kelly.ipc); bumped on a breaking change of a message.
PROTOCOL_VERSION = "1"

RequestId = int | Annotated[str, Field(max_length=64)] | None
MAX_TEXT_CHARS = 10_000
MAX_PATH_CHARS = 4096


class _Message(_Strict):
    """A socket frame. Strict: ``"0.5"`` is not a number and ``1`` is not ``true`` on the wire."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    id: RequestId = Field(default=None, description="repeated in the answer (an integer or up to 64 characters)")


# --------------------------------------------------------------------------- requests
class LoadModel(_Message):
    """Load a model file from inside the engine's models folder (never outside it)."""

    type: Literal["LoadModel"] = "LoadModel"
    path: str = Field(min_length=1, max_length=MAX_PATH_CHARS,
                      description="a file name (or relative path) inside the models folder")


class SetEmotion(_Message):
    """Set the emotion explicitly (a V/A pad): fused with the other sources at full confidence."""

    type: Literal["SetEmotion"] = "SetEmotion"
    valence: float = Field(ge=-1.0, le=1.0)
    arousal: float = Field(ge=0.0, le=1.0)
    dominance: float = Field(default=0.5, ge=0.0, le=1.0)


class SetText(_Message):
    """Tell the engine how you feel in words; read by the text reader and fused."""

    type: Literal["SetText"] = "SetText"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class GenerateMIDI(_Message):
    """Compose ``bars`` bars for the current emotion into a MIDI file in the engine's output folder."""

    type: Literal["GenerateMIDI"] = "GenerateMIDI"
    bars: int = Field(default=8, ge=1, le=512)


class GetState(_Message):
    type: Literal["GetState"] = "GetState"


class SetModelEnabled(_Message):
    """Switch one of the five networks on or off (off: its fallback heuristic runs)."""

    type: Literal["SetModelEnabled"] = "SetModelEnabled"
    model: str = Field(min_length=1, max_length=64)
    enabled: bool


class Subscribe(_Message):
    """Receive a ``State`` frame every ``interval_ms`` until the connection closes."""

    type: Literal["Subscribe"] = "Subscribe"
    interval_ms: int = Field(default=100, ge=10, le=60_000)


class Shutdown(_Message):
    """Stop the engine: all notes off, files closed, the socket removed."""

    type: Literal["Shutdown"] = "Shutdown"


Request = LoadModel | SetEmotion | SetText | GenerateMIDI | GetState | SetModelEnabled | Subscribe | Shutdown
#: Request models by their ``type``.
REQUESTS: dict[str, type[_Message]] = {m.model_fields["type"].default: m for m in
                                       (LoadModel, SetEmotion, SetText, GenerateMIDI, GetState, SetModelEnabled,
                                        Subscribe, Shutdown)}


# --------------------------------------------------------------------------- state
class LiveEmotion(_Strict):
    """An emotion reading in the engine: one source's, or the fused one."""

    valence: float = Field(ge=-1.0, le=1.0)
    arousal: float = Field(ge=0.0, le=1.0)
    dominance: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    label: str | None = Field(default=None, description="nearest thesaurus emotion")
    age_s: float | None = Field(default=None, ge=0.0, description="seconds since this source last spoke")


class LiveModel(_Strict):
    enabled: bool
    live: bool = Field(description="the network runs (False: its fallback heuristic)")
    path: str | None = None
    status: str


class EngineState(_Strict):
    """What the running engine is doing (the ``State`` answer, and each ``Subscribe`` frame)."""

    running: bool
    seq: int = Field(ge=0, description="increases with every change")
    time_s: float = Field(ge=0.0, description="engine clock, seconds since start")
    clock: Literal["internal", "audio", "external"]
    playing: bool
    bar: int = Field(ge=0, description="the bar playing, counted from 1 (0 before the first)")
    tempo_bpm: float = Field(gt=0.0)
    time_signature: str
    emotion: LiveEmotion = Field(description="the fused, smoothed emotion the music follows")
    sources: dict[str, LiveEmotion] = Field(default_factory=dict,
                                            description="audio, text, biometrics, explicit: the latest of each")
    models: dict[str, LiveModel] = Field(default_factory=dict)
    sample_rate: int = Field(gt=0)
    block: int = Field(gt=0)
    latency_samples: int = Field(ge=0, description="latency the lookahead adds")
    blocks: int = Field(ge=0, description="audio blocks processed")
    overruns: int = Field(ge=0, description="blocks that took longer than their budget")
    dropped_frames: int = Field(ge=0, description="mel frames lost because the inference thread fell behind")
    inferences: int = Field(ge=0)
    notes_sounding: int = Field(ge=0)
    midi_out: str | None = None
    warnings: list[str] = Field(default_factory=list, description="sensor dropouts, fallbacks, ...")


# --------------------------------------------------------------------------- responses
class Ok(_Message):
    type: Literal["Ok"] = "Ok"
    message: str | None = None


class ModelLoaded(_Message):
    type: Literal["ModelLoaded"] = "ModelLoaded"
    name: str = Field(description="the network's key, e.g. emotionrecognizer")


class MIDIGenerated(_Message):
    type: Literal["MIDIGenerated"] = "MIDIGenerated"
    path: str
    bars: int = Field(ge=1)


class State(_Message):
    type: Literal["State"] = "State"
    state: EngineState


class Error(_Message):
    type: Literal["Error"] = "Error"
    message: str


Response = Ok | ModelLoaded | MIDIGenerated | State | Error
RESPONSES: dict[str, type[_Message]] = {m.model_fields["type"].default: m for m in
                                        (Ok, ModelLoaded, MIDIGenerated, State, Error)}


def protocol_schema() -> dict:
    """The JSON Schema of every socket message (requests and responses), for the app and other clients."""
    from pydantic import TypeAdapter

    return {"$schema": JSON_SCHEMA_DIALECT, "title": "Kelly socket protocol", "version": PROTOCOL_VERSION,
            "description": "Each frame: a 4-byte little-endian length, then that many bytes of UTF-8 JSON.",
            "request": TypeAdapter(Request).json_schema(), "response": TypeAdapter(Response).json_schema()}


SCHEMAS["protocol"] = protocol_schema


# ---------------------------------------------------------------------------------------
# The web app's API bodies (kelly serve; docs/app.md). Typed here beside the explanation and
# the socket messages so that every client reads one contract; FastAPI publishes their schema
# at /openapi.json.
# ---------------------------------------------------------------------------------------

class ComposeRequest(_Strict):
    """What the Compose page sends: text and/or a point on the V/A pad, and the options."""

    text: str | None = Field(default=None, max_length=10_000, description="how the person feels, in words")
    valence: float | None = Field(default=None, ge=-1.0, le=1.0)
    arousal: float | None = Field(default=None, ge=0.0, le=1.0)
    dominance: float | None = Field(default=None, ge=0.0, le=1.0)
    journey: list[str] | None = Field(default=None, max_length=16,
                                      description="emotion names to move through, e.g. ['grief', 'hope']")
    bars: int = Field(default=16, ge=1, le=256)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    complexity: float | None = Field(default=None, ge=0.0, le=1.0)
    key: str | None = Field(default=None, max_length=40)
    breaks: list[str] | None = Field(default=None, max_length=16)
    composer: Literal["rules", "hybrid", "transformer"] = "rules"


class LibraryUpdate(_Strict):
    """A rating (1–5, or null to clear) and/or notes for a kept composition."""

    rating: int | None = Field(default=None, ge=1, le=5)
    notes: str | None = Field(default=None, max_length=10_000)


class ModelToggle(_Strict):
    enabled: StrictBool


class ApiError(_Strict):
    """Every error the API answers: the HTTP status and a sentence a person can act on."""

    status: int
    message: str


class TrainRequest(_Strict):
    """Start a training run of one network from the app (``kelly train`` in a child process)."""

    model: str = Field(max_length=40, description="one of the five networks, e.g. dynamicsengine")
    data: Literal["synthetic", "corpus"] = "synthetic"
    epochs: int = Field(default=5, ge=1, le=500)


class TrainResume(_Strict):
    epochs: int | None = Field(default=None, ge=1, le=500)


class LiveEmotionRequest(_Strict):
    """Set the running engine's emotion from the app's pad."""

    valence: float = Field(ge=-1.0, le=1.0)
    arousal: float = Field(ge=0.0, le=1.0)
    dominance: float = Field(default=0.5, ge=0.0, le=1.0)


class LiveText(_Strict):
    text: str = Field(min_length=1, max_length=10_000)
