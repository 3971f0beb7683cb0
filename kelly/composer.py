"""The ``Composer`` seam: what every composer takes and returns (DESIGN.md, "Seams").

One protocol, ``compose(emotions, options, controls) -> Composition``. The rule engines
implement it (:class:`RuleComposer`, in :mod:`kelly.generator`); a transformer or a
hybrid implements it too, and the command line, the real-time engine and the web app
only ever hold a :class:`Composer` (from :func:`get_composer`). The values that cross
the seam live here, so a second composer needs nothing from the rule engines:

* :class:`ComposeOptions`: bars, seed, complexity, humanize, key, metre and rule breaks;
* :class:`Composition`: the performed :class:`~kelly.song.Song`, the typed
  :class:`~kelly.contracts.Explanation` and the quantized score;
* ``controls``: the networks' :class:`kelly.ml.processor.MusicHints` (or ``None``; for a
  journey a list, one per emotion), read by the composer while it writes, never applied to
  finished notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kelly.errors import InputError
from kelly.song import Song

if TYPE_CHECKING:  # imported for types only, so the seam stays light
    from kelly.contracts import Explanation
    from kelly.emotion.state import EmotionState

MAX_BARS = 512


@dataclass(frozen=True)
class ComposeOptions:
    """What the user asks of any composer (the ``kelly compose`` options)."""

    bars: int = 16
    seed: int = 0
    complexity: float = 0.5
    humanize: float | None = None
    key: str | None = None
    breaks: tuple[str, ...] = ()
    auto_breaks: bool = True
    meter: str | None = None  # "4/4", "3/4" or "6/8"; default from the emotion (kelly.mapping.meter_for)


@dataclass
class Composition:
    """What a composer returns: the performed song, the typed explanation, and the score.

    ``explanation`` is a :class:`kelly.contracts.Explanation`; ``explanation.to_json()``
    is the JSON Kelly writes beside the MIDI. ``score`` is the same music before the
    groove pass (quantized, no swing or humanization): the version to notate (MusicXML)
    and to analyse harmonically.
    """

    song: Song
    explanation: "Explanation"
    score: Song | None = None


def check_options(opts: ComposeOptions) -> None:
    """Refuse options no composer can honour, with the flag to fix."""
    if not isinstance(opts.bars, int) or not 1 <= opts.bars <= MAX_BARS:
        raise InputError(f"--bars must be a whole number from 1 to {MAX_BARS}, got {opts.bars}")
    if not 0.0 <= opts.complexity <= 1.0:
        raise InputError(f"--complexity must be between 0 and 1, got {opts.complexity}")
    if opts.humanize is not None and not 0.0 <= opts.humanize <= 1.0:
        raise InputError(f"--humanize must be between 0 and 1, got {opts.humanize}")
    if not 0 <= opts.seed < 2**32:
        raise InputError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {opts.seed}")
    if opts.meter is not None and opts.meter not in ("4/4", "3/4", "6/8"):
        raise InputError(f"--meter must be 4/4, 3/4 or 6/8, got {opts.meter!r}")


@runtime_checkable
class Composer(Protocol):
    """Anything that turns an emotion (or a journey of them) into a :class:`Composition`."""

    name: str

    def compose(self, emotions: "EmotionState | list[EmotionState]", options: ComposeOptions = ComposeOptions(),
                controls=None) -> Composition:
        """Compose for one emotion or a journey; ``controls`` are the networks' hints (or None)."""
        ...


#: Composer names the command line offers, and the module that holds each.
COMPOSERS = {"rules": "kelly.generator:RuleComposer", "transformer": "kelly.transformer.composer:TransformerComposer",
             "hybrid": "kelly.transformer.hybrid:HybridComposer"}


def get_composer(name: str = "rules", **settings) -> Composer:
    """The composer called ``name`` (``kelly compose --composer``); a clear error for an unknown one."""
    import importlib

    if name not in COMPOSERS:
        raise InputError(f"unknown composer {name!r}; choose one of: {', '.join(COMPOSERS)}")
    module, _, cls = COMPOSERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**settings)
