"""Training settings: one ``TrainConfig`` per network, read from TOML with command-line overrides.

Layers, lowest first (a later layer wins, key by key):

1. the defaults of :class:`TrainConfig` below,
2. the shipped ``kelly/ml/train/default.toml``,
3. the file given with ``kelly train --config FILE`` (optional),
4. command-line flags (``--epochs``, ``--batch-size``, ``--lr``, ``--device``, ``--seed``).

A TOML file has a ``[defaults]`` section that applies to every network and one optional
section per network (``[harmonypredictor]``); inside one file a network's section beats
``[defaults]``, and a higher file's ``[defaults]`` beats a lower file's network sections.

Every mistake (a missing or unreadable file, bad TOML, an unknown section or key, a
value of the wrong type or out of range) is a :class:`kelly.errors.InputError` naming
the file, section and key, for example ``train.toml [defaults]: lr must be a number > 0,
got -0.1``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from kelly.errors import InputError
from kelly.ml.specs import MODEL_KEYS

#: The shipped defaults (layer 2).
DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.toml")
#: The largest config file read.
MAX_CONFIG_BYTES = 1024 * 1024
DEVICES = ("cpu", "cuda", "auto")
LR_SCHEDULES = ("constant", "cosine")
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained (every field is a key of the TOML file)."""

    epochs: int = 50              # most epochs; early stopping usually ends sooner
    batch_size: int = 64          # global batch: split evenly across processes under torchrun
    lr: float = 1e-3              # peak AdamW learning rate
    weight_decay: float = 0.01    # AdamW decoupled weight decay
    lr_schedule: str = "cosine"   # "cosine" (lr → lr/10 over the epochs) or "constant"
    warmup_epochs: int = 0        # linear warm-up from lr/warmup to lr over these epochs
    grad_clip: float = 1.0        # clip the global gradient norm (0 = off)
    patience: int = 10            # early stopping: epochs without improvement before stopping
    min_delta: float = 0.001      # early stopping: the fall in validation loss that counts as improvement
    seed: int = 0                 # weights, shuffling and synthetic data
    device: str = "auto"          # "cpu", "cuda" or "auto"
    num_workers: int = 0          # DataLoader worker processes
    val_fraction: float = 0.1     # share of the examples held out for validation
    seq_len: int = 32             # window length (steps) for the recurrent networks
    synthetic_samples: int = 4096  # size of the synthetic data set (--data synthetic)
    # --data corpus: comma-separated collections to learn from, or "all"; Essen (non-commercial) left out
    collections: str = "composed,bach,oneills,ryans,airds,palestrina"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sha256(self) -> str:
        """A hash of every setting (recorded next to trained weights and in checkpoints)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied and checked (keys and values as in a TOML file)."""
        return _build(self.to_dict(), [("changes", changes)])


# One rule per key: (type, is the value allowed?, what is allowed). The types are checked
# strictly: a bool is not a number, a float is not a whole number; a whole number is a float.
def _between(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: lo <= v <= hi


_RULES: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "epochs": (int, _between(1, 1_000_000), "a whole number from 1 to 1000000"),
    "batch_size": (int, _between(1, 1_000_000), "a whole number from 1 to 1000000"),
    "lr": (float, lambda v: 0 < v <= 10, "a number > 0 (and at most 10)"),
    "weight_decay": (float, _between(0, 10), "a number from 0 to 10"),
    "lr_schedule": (str, lambda v: v in LR_SCHEDULES, "one of " + ", ".join(LR_SCHEDULES)),
    "warmup_epochs": (int, _between(0, 1_000_000), "a whole number >= 0"),
    "grad_clip": (float, _between(0, 1e9), "a number >= 0 (0 = off)"),
    "patience": (int, _between(1, 1_000_000), "a whole number >= 1"),
    "min_delta": (float, _between(0, 1e9), "a number >= 0"),
    "seed": (int, _between(0, SEED_MAX), f"a whole number from 0 to {SEED_MAX}"),
    "device": (str, lambda v: v in DEVICES, "one of " + ", ".join(DEVICES)),
    "num_workers": (int, _between(0, 1024), "a whole number from 0 to 1024"),
    "val_fraction": (float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)"),
    "seq_len": (int, _between(1, 100_000), "a whole number from 1 to 100000"),
    "synthetic_samples": (int, _between(2, 10_000_000), "a whole number from 2 to 10000000"),
    "collections": (str, lambda v: _known_collections(v), "\"all\" or a comma-separated list of: "
                    "composed, bach, essen, oneills, ryans, airds, palestrina, lakh, maestro, groove, emopia, deam"),
}


#: What ``collections`` may name: music21's corpus, Kelly's composed pieces, the external sets.
KNOWN_COLLECTIONS = ("composed", "bach", "essen", "oneills", "ryans", "airds", "palestrina",
                     "lakh", "maestro", "groove", "emopia", "deam")


def _known_collections(value: str) -> bool:
    names = [part.strip() for part in value.split(",")]
    return value.strip() == "all" or (bool(names) and all(n in KNOWN_COLLECTIONS for n in names))


def collection_set(value: str) -> frozenset[str] | None:
    """``collections`` as a set of names, or None for "all"."""
    if value.strip() == "all":
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())
assert set(_RULES) == {f.name for f in dataclasses.fields(TrainConfig)}


def _check_value(key: str, value: Any, where: str) -> Any:
    """``value`` converted to the key's type, or an InputError naming ``where`` and ``key``."""
    if key not in _RULES:
        raise InputError(f"{where}: unknown key {key!r}; known keys: {', '.join(_RULES)}")
    kind, allowed, wanted = _RULES[key]
    shown = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{where}: {key} must be {wanted}, got {type(value).__name__} {shown}")
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, float) and not math.isfinite(value)) or not allowed(value):
        raise InputError(f"{where}: {key} must be {wanted}, got {shown}")
    return value


def _build(base: Mapping[str, Any], layers: list[tuple[str, Mapping[str, Any]]]) -> TrainConfig:
    values = dict(base)
    for where, layer in layers:
        for key, value in layer.items():
            values[key] = _check_value(key, value, where)
    return TrainConfig(**values)


def read_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Parse and check a training TOML file: section name → {key: value}.

    Raises
    ------
    InputError
        If the file is missing, not a regular file, larger than 1 MiB, not UTF-8 TOML, or
        holds an unknown section, a key outside a section, an unknown key or a bad value.
    """
    from kelly.fileio import read_regular_file, show_path

    shown = show_path(path)
    raw = read_regular_file(path, what="training config", max_bytes=MAX_CONFIG_BYTES, error=InputError)
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{shown}: not valid TOML ({exc})") from None
    sections: dict[str, dict[str, Any]] = {}
    known = ("defaults",) + MODEL_KEYS
    for name, body in doc.items():
        if not isinstance(body, dict):
            raise InputError(f"{shown}: key {name!r} must be inside a section: [defaults] for every network "
                             f"or [<model>] for one")
        if name not in known:
            raise InputError(f"{shown}: unknown section [{name}]; known sections: {', '.join(known)}")
        sections[name] = {key: _check_value(key, value, f"{shown} [{name}]") for key, value in body.items()}
    return sections


def load_configs(path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None,
                 models: tuple[str, ...] = MODEL_KEYS,
                 default_path: str | Path | None = DEFAULT_CONFIG_PATH) -> dict[str, TrainConfig]:
    """The settings for each network in ``models`` (key → :class:`TrainConfig`).

    Parameters
    ----------
    path : path, optional
        The user's TOML file (layer 3).
    overrides : mapping key → value, optional
        Command-line values (layer 4); ``None`` values are skipped.
    default_path : path or None
        The shipped defaults (layer 2); ``None`` skips them (the dataclass defaults only).

    Raises
    ------
    InputError
        See :func:`read_config_file`; an override names its flag (``--lr``).
    """
    files = [read_config_file(p) for p in (default_path, path) if p is not None]
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    configs: dict[str, TrainConfig] = {}
    for key in models:
        layers: list[tuple[str, Mapping[str, Any]]] = []
        for sections in files:
            layers.append(("", sections.get("defaults", {})))
            layers.append(("", sections.get(key, {})))
        for flag, value in flags.items():
            layers.append((f"--{flag.replace('_', '-')}", {flag: value}))
        configs[key] = _build(TrainConfig().to_dict(), layers)
    return configs


def load_config(key: str, path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None,
                default_path: str | Path | None = DEFAULT_CONFIG_PATH) -> TrainConfig:
    """The settings for one network (see :func:`load_configs`)."""
    return load_configs(path, overrides=overrides, models=(key,), default_path=default_path)[key]


__all__ = ["TrainConfig", "DEFAULT_CONFIG_PATH", "DEVICES", "LR_SCHEDULES", "read_config_file", "load_configs",
           "load_config"]
