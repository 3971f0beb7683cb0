"""Step-based training settings shared by the transformer and the DDSP voice.

Their configs are TOML files of named sections (``[tiny]``, ``[small]``, ``[large]``), each
a whole set of settings for one frozen dataclass, with ``--set KEY=VALUE`` overrides; their
learning rate warms up linearly and then follows a cosine to a floor; a run resumes from
its checkpoint only with the settings it was written with (more steps or minutes may be
given). The five networks' epoch-based configs are :mod:`kelly.ml.train.config`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Mapping, TypeVar

from kelly.errors import InputError

T = TypeVar("T")
MAX_CONFIG_BYTES = 1 << 20
#: Settings a resumed run may change.
EXTENDABLE = ("steps", "max_minutes")


def load_section(cls: type[T], section: str, path: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 what: str) -> T:
    """``cls`` built from ``[section]`` of the TOML file ``path`` with ``overrides`` applied, then ``.check()``-ed.

    Raises
    ------
    InputError
        An unreadable file, bad TOML, a missing section, an unknown key (naming the known
        ones) or a bad value (from ``cls.check``).
    """
    from kelly.fileio import read_regular_file

    path = Path(path)
    try:
        doc = tomllib.loads(read_regular_file(path, what=f"{what} config", max_bytes=MAX_CONFIG_BYTES).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the {what} config {path}: {exc}") from None
    if section not in doc or not isinstance(doc[section], dict):
        raise InputError(f"{path} has no section [{section}]; sections: {', '.join(doc) or 'none'}")
    known = {f.name for f in fields(cls)}
    values = dict(doc[section])
    values.update(overrides or {})
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {what} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    settings = replace(cls(), **values)
    settings.check()
    return settings


def warmup_cosine(step: int, *, lr: float, min_lr: float, warmup: int, steps: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_lr`` at step ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def check_resumable(ckpt: Mapping[str, Any], kind: str, settings: Any, path: Path) -> None:
    """Refuse to resume ``ckpt`` unless it is a ``kind`` run with the same settings (bar :data:`EXTENDABLE`)."""
    def same(values: Mapping[str, Any]) -> dict:
        return {k: v for k, v in values.items() if k not in EXTENDABLE}

    if ckpt.get("kind") != kind or same(ckpt.get("settings") or {}) != same(asdict(settings)):
        raise InputError(f"{path} was written with other settings; resume with the same config, or train into "
                         "another --out (or start again with --fresh)")
