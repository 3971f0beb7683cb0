"""The three-phase song intent: why the song exists, what it should feel like, how to play it.

This is DAiW's ``CompleteSongIntent`` (reference §9) as frozen dataclasses and a JSON
document:

* Phase 0, ``song_root`` (:class:`SongRoot`): the event, what resists it, what is longed
  for, what is at stake and what should change. Writing these first keeps the music
  honest: the technical choices later must serve them.
* Phase 1, ``song_intent`` (:class:`SongIntent`): the primary mood, a secondary tension
  (0–1), imagery/texture, vulnerability (Low/Medium/High) and a narrative arc.
* Phase 2, ``technical_constraints`` (:class:`TechnicalConstraints`): genre, tempo range,
  key, mode, groove feel, and one rule to break *with a justification*.

Design choices, and why:

* **Every problem is named at once.** :func:`read_intent` never stops at the first bad
  field: it collects type problems (a number where text belongs, a tempo range that is
  not two numbers, a missing phase) while building the best intent it can, and
  :func:`validate_intent` adds the musical ones (missing core fields, tension outside
  [0, 1], a rule to break without a justification, unknown rule/key/mode/arc,
  "High" vulnerability with tension < 0.3, a reversed tempo range). A person fixing a
  file should not have to run the validator ten times.
* **The original files load.** The original examples used ``song_technical_constraints``
  where ``from_dict`` read ``technical_constraints`` (§9, an inconsistency); both keys are
  accepted. Keys are read by :func:`kelly.theory.scales.parse_key` ("F", "F major",
  "D minor", "Bb", "C#m"), modes by :func:`~kelly.theory.scales.normalize_mode`
  ("Aeolian", "major"), enumerations case-insensitively.
* **Keys starting with "_" are comments.** The template written by ``kelly intent new``
  explains each field in ``"_help"`` entries; the reader ignores them.
* Files are written atomically (:func:`kelly.fileio.write_json_atomic`).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from kelly.errors import FileFormatError, InputError
from kelly.fileio import read_json, write_json_atomic

#: Vulnerability scale (how exposed the performance is).
VULNERABILITY = ("Low", "Medium", "High")
#: The eight narrative arcs of the original schema.
NARRATIVE_ARCS = ("Climb-to-Climax", "Slow Reveal", "Repetitive Despair", "Static Reflection", "Sudden Shift",
                  "Descent", "Rise and Fall", "Spiral")
#: What is at stake (Phase 0).
CORE_STAKES = ("Personal", "Relational", "Existential", "Survival", "Creative", "Moral")
#: Groove feels (the humanizer's intent words, reference §7).
GROOVE_FEELS = ("Straight/Driving", "Mechanical", "Laid Back", "Swung", "Syncopated", "Rubato/Free",
                "Organic/Breathing", "Push-Pull")
#: Imagery/texture words with a production meaning (TEXTURE_PRODUCTION_MAP's eight).
TEXTURES = ("Ethereal", "Intimate", "Massive", "Skeletal", "Lush", "Harsh", "Murky", "Crystalline")
#: Mood examples (the original YAML listed 18; these are the ones Kelly's thesaurus and text reader
#: understand — any text is accepted, it goes through the text reader).
MOOD_OPTIONS = ("Grief", "Longing", "Defiance", "Triumphant Hope", "Rage", "Tenderness", "Anxiety", "Euphoria",
                "Melancholy", "Nostalgia", "Catharsis", "Dissociation", "Determination", "Surrender", "Bittersweet",
                "Loneliness", "Calm", "Fear")
#: Genre examples (free text; used for the explanation only).
GENRE_OPTIONS = ("Cinematic Neo-Soul", "Lo-Fi Bedroom", "Indie Folk", "Ambient", "Post-Rock", "Dream Pop",
                 "Alt-R&B", "Singer-Songwriter", "Chamber Pop", "Trip-Hop", "Punk", "Synthwave", "Gospel",
                 "Jazz Ballad", "Hip-Hop")

#: Tempo ranges outside this are refused (MIDI can carry them, but no song means them).
TEMPO_LIMITS = (20.0, 300.0)

_PHASES = (("song_root", "Phase 0"), ("song_intent", "Phase 1"), ("technical_constraints", "Phase 2"))
_TECH_ALIASES = ("technical_constraints", "song_technical_constraints")


@dataclass(frozen=True)
class SongRoot:
    """Phase 0: the wound and the wish."""

    core_event: str = ""
    core_resistance: str = ""
    core_longing: str = ""
    core_stakes: str = ""
    core_transformation: str = ""


@dataclass(frozen=True)
class SongIntent:
    """Phase 1: how it should feel."""

    mood_primary: str = ""
    mood_secondary_tension: float = 0.5
    imagery_texture: str = ""
    vulnerability_scale: str = "Medium"
    narrative_arc: str = ""


@dataclass(frozen=True)
class TechnicalConstraints:
    """Phase 2: the craft decisions, including one rule to break on purpose."""

    technical_genre: str = ""
    technical_tempo_range: tuple[float, float] = (80.0, 120.0)
    technical_key: str = ""
    technical_mode: str = ""
    technical_groove_feel: str = ""
    technical_rule_to_break: str = ""
    rule_breaking_justification: str = ""


@dataclass(frozen=True)
class SystemDirective:
    """Where the result goes (kept for compatibility with the original documents)."""

    output_target: str = ""
    output_feedback_loop: str = ""


@dataclass(frozen=True)
class CompleteSongIntent:
    """A whole intent document."""

    title: str = "Untitled"
    created: str = ""
    song_root: SongRoot = field(default_factory=SongRoot)
    song_intent: SongIntent = field(default_factory=SongIntent)
    technical_constraints: TechnicalConstraints = field(default_factory=TechnicalConstraints)
    system_directive: SystemDirective = field(default_factory=SystemDirective)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The JSON document (tuples become lists)."""
        doc = asdict(self)
        doc["technical_constraints"]["technical_tempo_range"] = list(self.technical_constraints.technical_tempo_range)
        return doc

    @classmethod
    def from_dict(cls, doc: object) -> "CompleteSongIntent":
        """Build an intent from a parsed JSON document.

        Raises
        ------
        FileFormatError
            If the document is not an object, a phase is missing or not an object, or a
            field has the wrong type; the message names every such problem.
        """
        intent, problems = read_intent(doc)
        if problems:
            raise FileFormatError("intent: " + "; ".join(problems))
        return intent

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the intent as indented JSON, atomically (``overwrite=False`` refuses an existing file)."""
        return write_json_atomic(path, self.to_dict(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CompleteSongIntent":
        """Read an intent file (see :func:`load_document` and :meth:`from_dict` for the errors)."""
        return cls.from_dict(load_document(path))

    # ------------------------------------------------------------------ derived values
    @property
    def tempo_bpm(self) -> int:
        """The middle of the tempo range (integer division, as the original intent processor did)."""
        lo, hi = self.technical_constraints.technical_tempo_range
        return int((int(round(lo)) + int(round(hi))) // 2)


def load_document(path: str | os.PathLike) -> dict:
    """Read a JSON object from ``path``.

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable, not UTF-8 JSON, or not a JSON object.
    """
    p = Path(path)
    doc = read_json(p, what="intent file", hint="; `kelly intent new` writes a template")
    if not isinstance(doc, dict):
        raise FileFormatError(f"{p}: an intent file is a JSON object with song_root, song_intent and "
                              f"technical_constraints; got a JSON {type(doc).__name__}")
    return doc


# ---------------------------------------------------------------------- reading with problems
def _text(section: dict, name: str, where: str, problems: list[str], default: str = "") -> str:
    value = section.get(name, default)
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip()
    problems.append(f"{where}.{name} must be text, got {type(value).__name__} {value!r}")
    return default


def _number(section: dict, name: str, where: str, problems: list[str], default: float) -> float:
    value = section.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(f"{where}.{name} must be a number, got {type(value).__name__} {value!r}")
        return default
    return float(value)


def _tempo_range(section: dict, where: str, problems: list[str]) -> tuple[float, float]:
    default = TechnicalConstraints().technical_tempo_range
    value = section.get("technical_tempo_range", list(default))
    if value is None:
        return default
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))
    if not ok:
        problems.append(f"{where}.technical_tempo_range must be two numbers [low, high] in BPM, got {value!r}")
        return default
    return float(value[0]), float(value[1])


def _phase(doc: dict, names: tuple[str, ...], label: str, problems: list[str]) -> tuple[dict, str]:
    for name in names:
        if name in doc:
            value = doc[name]
            if not isinstance(value, dict):
                problems.append(f"{name} ({label}) must be an object, got {type(value).__name__}")
                return {}, name
            return value, name
    problems.append(f"missing section {names[0]!r} ({label})")
    return {}, names[0]


def read_intent(doc: object) -> tuple[CompleteSongIntent, list[str]]:
    """Build the best intent possible from ``doc`` and list every structural problem.

    Wrong-typed fields keep their defaults so :func:`validate_intent` can still check the
    rest. Keys starting with ``"_"`` are comments and ignored.

    Returns
    -------
    (CompleteSongIntent, list of str)
        The intent and the structural problems (empty when the document is well formed).
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        return CompleteSongIntent(), [f"an intent is a JSON object, got {type(doc).__name__}"]
    root_doc, root_name = _phase(doc, ("song_root",), "Phase 0", problems)
    intent_doc, intent_name = _phase(doc, ("song_intent",), "Phase 1", problems)
    tech_doc, tech_name = _phase(doc, _TECH_ALIASES, "Phase 2", problems)
    directive_doc = doc.get("system_directive") or {}
    if not isinstance(directive_doc, dict):
        problems.append(f"system_directive must be an object, got {type(directive_doc).__name__}")
        directive_doc = {}

    root = SongRoot(**{f.name: _text(root_doc, f.name, root_name, problems) for f in fields(SongRoot)})
    song_intent = SongIntent(
        mood_primary=_text(intent_doc, "mood_primary", intent_name, problems),
        mood_secondary_tension=_number(intent_doc, "mood_secondary_tension", intent_name, problems, 0.5),
        imagery_texture=_text(intent_doc, "imagery_texture", intent_name, problems),
        vulnerability_scale=_text(intent_doc, "vulnerability_scale", intent_name, problems, "Medium") or "Medium",
        narrative_arc=_text(intent_doc, "narrative_arc", intent_name, problems),
    )
    tech = TechnicalConstraints(
        technical_tempo_range=_tempo_range(tech_doc, tech_name, problems),
        **{f.name: _text(tech_doc, f.name, tech_name, problems) for f in fields(TechnicalConstraints)
           if f.name != "technical_tempo_range"},
    )
    directive = SystemDirective(**{f.name: _text(directive_doc, f.name, "system_directive", problems)
                                   for f in fields(SystemDirective)})
    title = doc.get("title", "Untitled")
    if not isinstance(title, str):
        problems.append(f"title must be text, got {type(title).__name__} {title!r}")
        title = "Untitled"
    created = doc.get("created", "")
    if not isinstance(created, str):
        problems.append(f"created must be text (an ISO date), got {type(created).__name__} {created!r}")
        created = ""
    return CompleteSongIntent(title.strip() or "Untitled", created, root, song_intent, tech, directive), problems


# ---------------------------------------------------------------------- semantic validation
def _match(value: str, options: tuple[str, ...]) -> str | None:
    """The canonical option for ``value`` (case, spaces, dashes and slashes ignored), or None."""
    norm = lambda s: "".join(ch for ch in s.lower() if ch.isalnum())  # noqa: E731
    wanted = norm(value)
    return next((o for o in options if norm(o) == wanted), None)


def canonical_arc(value: str) -> str | None:
    return _match(value, NARRATIVE_ARCS) if value else None


def canonical_vulnerability(value: str) -> str | None:
    return _match(value, VULNERABILITY) if value else None


def canonical_groove(value: str) -> str | None:
    return _match(value, GROOVE_FEELS) if value else None


def resolve_key(intent: CompleteSongIntent):
    """The :class:`~kelly.theory.scales.Key` the intent asks for, or ``None`` to let the emotion choose.

    ``technical_key`` may carry its own mode ("D minor", "C#m"); ``technical_mode``
    ("Aeolian", "major") wins when both are given. A mode without a key keeps the
    emotion's tonic choice and is applied to it by the caller.

    Raises
    ------
    InputError
        If the key or the mode cannot be read.
    """
    from kelly.theory.scales import Key, normalize_mode, parse_key

    tech = intent.technical_constraints
    if not tech.technical_key:
        if tech.technical_mode:
            normalize_mode(tech.technical_mode)
        return None
    key = parse_key(tech.technical_key)
    if tech.technical_mode:
        key = Key(key.tonic, normalize_mode(tech.technical_mode))
    return key


def validate_intent(intent: CompleteSongIntent) -> list[str]:
    """Every musical problem with an intent, as messages a person can act on (empty = valid).

    Checks the original's rules (missing core_event, core_longing or mood_primary;
    tension outside [0, 1]; a rule to break without a justification; "High" vulnerability
    with tension below 0.3, which asks for exposure while denying the tension that makes
    it matter) and Kelly's (unknown rule id, vulnerability, arc, groove feel, key or mode;
    a tempo range that is reversed or outside 20–300 BPM).
    """
    from kelly.intent.rules import get_rule

    problems: list[str] = []
    root, mood, tech = intent.song_root, intent.song_intent, intent.technical_constraints
    if not root.core_event:
        problems.append("song_root.core_event is missing: what happened? (Phase 0 comes first)")
    if not root.core_longing:
        problems.append("song_root.core_longing is missing: what do you want to feel instead?")
    if not mood.mood_primary:
        problems.append("song_intent.mood_primary is missing: name the main feeling, e.g. 'Grief'")
    tension = mood.mood_secondary_tension
    if not 0.0 <= tension <= 1.0:
        problems.append(f"song_intent.mood_secondary_tension must be between 0 and 1, got {tension:g}")
    vulnerability = canonical_vulnerability(mood.vulnerability_scale)
    if vulnerability is None:
        problems.append(f"song_intent.vulnerability_scale {mood.vulnerability_scale!r} is not one of: "
                        + ", ".join(VULNERABILITY))
    elif vulnerability == "High" and tension < 0.3:
        problems.append(f"song_intent: 'High' vulnerability needs tension of at least 0.3 (got {tension:g}); "
                        "exposure without tension reads as flat")
    if mood.narrative_arc and canonical_arc(mood.narrative_arc) is None:
        problems.append(f"song_intent.narrative_arc {mood.narrative_arc!r} is not one of: " + ", ".join(NARRATIVE_ARCS))
    if root.core_stakes and _match(root.core_stakes, CORE_STAKES) is None:
        problems.append(f"song_root.core_stakes {root.core_stakes!r} is not one of: " + ", ".join(CORE_STAKES))
    lo, hi = tech.technical_tempo_range
    if lo > hi:
        problems.append(f"technical_constraints.technical_tempo_range [{lo:g}, {hi:g}] is reversed: give [low, high]")
    if not (TEMPO_LIMITS[0] <= min(lo, hi) and max(lo, hi) <= TEMPO_LIMITS[1]):
        problems.append(f"technical_constraints.technical_tempo_range [{lo:g}, {hi:g}] must lie within "
                        f"{TEMPO_LIMITS[0]:g}-{TEMPO_LIMITS[1]:g} BPM")
    if tech.technical_groove_feel and canonical_groove(tech.technical_groove_feel) is None:
        problems.append(f"technical_constraints.technical_groove_feel {tech.technical_groove_feel!r} is not one of: "
                        + ", ".join(GROOVE_FEELS))
    try:
        resolve_key(intent)
    except InputError as exc:
        problems.append(f"technical_constraints: {exc}")
    if tech.technical_rule_to_break:
        try:
            get_rule(tech.technical_rule_to_break)
        except InputError as exc:
            problems.append(f"technical_constraints.technical_rule_to_break: {exc}")
        if not tech.rule_breaking_justification:
            problems.append("technical_constraints.rule_breaking_justification is missing: say why "
                            f"{tech.technical_rule_to_break} serves the song (a rule is broken on purpose)")
    return problems


def check_document(doc: object) -> tuple[CompleteSongIntent, list[str]]:
    """Structural and musical problems together: what ``kelly intent validate`` prints."""
    intent, problems = read_intent(doc)
    return intent, problems + validate_intent(intent)


# ---------------------------------------------------------------------- the template
def template(title: str = "Untitled") -> dict:
    """A complete, valid example intent with a ``"_help"`` comment in every phase.

    The example values (a grief song that wants to reach acceptance) are there so the file
    composes as written; the help entries say what each field means and what it accepts.
    """
    intent = CompleteSongIntent(
        title=title or "Untitled",
        created=_dt.date.today().isoformat(),
        song_root=SongRoot(
            core_event="My grandmother died in the spring",
            core_resistance="I keep acting as if nothing changed",
            core_longing="To let myself miss her out loud",
            core_stakes="Personal",
            core_transformation="From numb holding-together to open grief",
        ),
        song_intent=SongIntent(mood_primary="Grief", mood_secondary_tension=0.4, imagery_texture="Murky",
                               vulnerability_scale="High", narrative_arc="Slow Reveal"),
        technical_constraints=TechnicalConstraints(
            technical_genre="Lo-Fi Bedroom", technical_tempo_range=(60.0, 76.0), technical_key="D minor",
            technical_mode="Aeolian", technical_groove_feel="Organic/Breathing",
            technical_rule_to_break="HARMONY_AvoidTonicResolution",
            rule_breaking_justification="The grief is not resolved yet; the song should not pretend it is"),
        system_directive=SystemDirective(output_target="MIDI", output_feedback_loop="listen, then revise Phase 1"),
    )
    doc = intent.to_dict()
    doc["_help"] = ("Fill Phase 0 first, then Phase 1, then Phase 2. Keys starting with '_' are comments. "
                    "Check with `kelly intent validate FILE`; compose with `kelly intent process FILE`.")
    doc["song_root"]["_help"] = {
        "core_event": "required: what happened",
        "core_resistance": "what stops you feeling it",
        "core_longing": "required: what you want to feel instead",
        "core_stakes": "one of: " + ", ".join(CORE_STAKES),
        "core_transformation": "how you want to be changed by the end",
    }
    doc["song_intent"]["_help"] = {
        "mood_primary": "required: the main feeling, e.g. " + ", ".join(MOOD_OPTIONS[:6]) + " (any words work)",
        "mood_secondary_tension": "0 (settled) to 1 (torn); shapes how loose the groove is",
        "imagery_texture": "e.g. " + ", ".join(TEXTURES) + " (becomes a production note)",
        "vulnerability_scale": "one of: " + ", ".join(VULNERABILITY) + " ('High' needs tension >= 0.3)",
        "narrative_arc": "one of: " + ", ".join(NARRATIVE_ARCS),
    }
    doc["technical_constraints"]["_help"] = {
        "technical_genre": "free text, e.g. " + ", ".join(GENRE_OPTIONS[:4]),
        "technical_tempo_range": "[low, high] BPM; the song plays at the middle",
        "technical_key": "e.g. F, 'F major', 'D minor', Bb, C#m (empty: the emotion chooses)",
        "technical_mode": "e.g. Aeolian, Dorian, major (overrides the key's mode)",
        "technical_groove_feel": "one of: " + ", ".join(GROOVE_FEELS),
        "technical_rule_to_break": "a rule id from `kelly rules` (empty: none)",
        "rule_breaking_justification": "required when a rule is broken: why it serves the song",
    }
    return doc


def with_title(intent: CompleteSongIntent, title: str) -> CompleteSongIntent:
    """A copy with a new title (frozen dataclasses are changed by copying)."""
    return replace(intent, title=title)
