"""Groove: swing, genre templates, extraction, application and humanization.

Library entry points (all return new :class:`~kelly.song.Song` objects, notes sorted):

* :func:`apply_template` — stamp a :class:`GrooveTemplate` (per-16th offsets, velocity
  curve, swing) onto a song at an intensity in [0, 1];
* :func:`humanize` — seeded "Drunken Drummer" drift, dynamics, dropouts and ghosts;
* :func:`swing` — swing the off-beat eighths (definition in :mod:`kelly.groove.swing`);
  :func:`swing_spans` — each stretch of the song by its own amount;
* :func:`extract_groove` — measure a template from a performance;
* :func:`get_template` / :func:`get_preset` / :func:`get_style` — the built-in data.
"""

from kelly.groove.apply import apply_template
from kelly.groove.extract import extract_groove, measure_swing
from kelly.groove.humanize import humanize
from kelly.groove.presets import (
    PRESETS,
    STYLES,
    HumanizeSettings,
    get_preset,
    get_style,
    preset_names,
    settings_from_intent,
)
from kelly.groove.swing import swing, swing_delay, swing_spans
from kelly.groove.templates import (
    GENRE_TEMPLATES,
    GrooveTemplate,
    get_template,
    load_template,
    resolve_template,
    template_names,
)

__all__ = [
    "GENRE_TEMPLATES", "PRESETS", "STYLES", "GrooveTemplate", "HumanizeSettings",
    "apply_template", "extract_groove", "get_preset", "get_style", "get_template", "humanize",
    "load_template", "measure_swing", "preset_names", "resolve_template", "settings_from_intent",
    "swing", "swing_delay", "swing_spans", "template_names",
]
