"""Grammar-constrained sampling of compound tokens (numpy only: no torch import here).

One compound token is chosen per step, the CP-transformer way: first its type, from the
type head; then every other family ``f = 1 … F-1`` in row order from that family's head,
which reads the hidden state and the row chosen so far (its type, and for a model with
``row_heads`` the earlier families too); the grammar's mask for a family is asked with the
same partial row (the tokenizer's grammar masks pitch by program and role). The mask
comes first (disallowed values get logit −∞), then temperature, top-k and top-p (nucleus);
the draw is an inverse-CDF lookup with one ``rng.random()`` from a
``numpy.random.Generator``. A choice
the grammar forces (one allowed value) is taken without a draw and without running the
head, so a grammar that forces the first token (BOS) starts generation by itself, and the
final EOS row is never fed to the model. Temperature 0 is greedy (the lowest index among
equal maxima). Generation stops when ``grammar.done`` (the grammar forces EOS after the
requested bars) or after ``max_tokens`` rows, whichever comes first: the caller checks
``grammar.done`` to tell the two apart.

The stepper protocol
--------------------
A *stepper* runs one model with its own key/value cache (``TorchStepper`` in
:mod:`kelly.transformer.model`, ``OnnxStepper`` in :mod:`kelly.transformer.onnx`):

``sizes``
    tuple of int: vocabulary size per family.
``block_size``
    int: the longest context the model takes.
``reset(emotion)``
    forget the cache; condition on ``emotion`` [shape=(3,)] (valence, arousal, dominance).
``step(row) -> hidden``
    feed one compound token [shape=(F,), int64]; returns an opaque hidden state (sliding
    the window by itself when the cache is full).
``full(rows) -> hidden``
    hidden state after ``rows`` [shape=(n ≤ block_size, F)] recomputed without a cache
    (used by :func:`generate_nocache`, the benchmark's baseline).
``type_logits(hidden) -> np.ndarray [shape=(sizes[0],)]``
``family_logits(hidden, row, family) -> np.ndarray [shape=(sizes[family],)]``
    ``row`` [shape=(F,), int64] is the token being built: type and families before
    ``family`` filled, the rest 0.

The grammar protocol (the tokenizer's ``Grammar``)
--------------------------------------------------
``type_mask() -> bool[sizes[0]]``, ``family_mask(type_id, family, partial=row) ->
bool[sizes[family]]``, ``advance(row)``, ``done``, ``bar``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from kelly.errors import InputError


class Stepper(Protocol):
    sizes: tuple[int, ...]
    block_size: int

    def reset(self, emotion: np.ndarray) -> None: ...

    def step(self, row: np.ndarray) -> Any: ...

    def full(self, rows: np.ndarray) -> Any: ...

    def type_logits(self, hidden: Any) -> np.ndarray: ...

    def family_logits(self, hidden: Any, row: np.ndarray, family: int) -> np.ndarray: ...


class Grammar(Protocol):
    done: bool
    bar: int

    def type_mask(self) -> np.ndarray: ...

    def family_mask(self, type_id: int, family: int, partial: np.ndarray | None = None) -> np.ndarray: ...

    def advance(self, row: np.ndarray) -> None: ...


@dataclass(frozen=True)
class SamplingConfig:
    """How each value is drawn.

    Attributes
    ----------
    temperature : float ≥ 0, or mapping family → float ≥ 0
        0 is greedy. A mapping is keyed by family name (``generate(..., families=...)``)
        or index; the key ``"default"`` covers the families it does not name (else 1.0).
    top_k : int ≥ 1 or None
        Keep the ``top_k`` most likely allowed values.
    top_p : float in (0, 1] or None
        Keep the smallest set of most likely values whose probability reaches ``top_p``.
    seed : int
        Seeds the ``numpy.random.Generator`` when ``generate`` is not given one.
    """

    temperature: float | Mapping[str | int, float] = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        temps = self.temperature.values() if isinstance(self.temperature, Mapping) else [self.temperature]
        for t in temps:
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
                raise InputError(f"temperature must be a number >= 0 (0 is greedy), got {t!r}")
        if self.top_k is not None and (not isinstance(self.top_k, (int, np.integer)) or self.top_k < 1):
            raise InputError(f"top-k must be a whole number >= 1 (or none), got {self.top_k!r}")
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise InputError(f"top-p must be in (0, 1] (or none), got {self.top_p!r}")

    def temperatures(self, n_families: int, families: Sequence[str] | None = None) -> tuple[float, ...]:
        """One temperature per family; unknown family names raise :class:`InputError`."""
        if not isinstance(self.temperature, Mapping):
            return (float(self.temperature),) * n_families
        names = list(families) if families is not None else []
        out = [float(self.temperature.get("default", 1.0))] * n_families
        for key, t in self.temperature.items():
            if key == "default":
                continue
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < n_families:
                out[int(key)] = float(t)
            elif key in names:
                out[names.index(key)] = float(t)
            else:
                known = ", ".join(names) if names else f"indices 0..{n_families - 1}"
                raise InputError(f"no token family {key!r} for a temperature (families: {known}, or 'default')")
        return tuple(out)


def sample_logits(logits: np.ndarray, mask: np.ndarray, *, temperature: float, top_k: int | None = None,
                  top_p: float | None = None, rng: np.random.Generator) -> int:
    """Draw one index from ``logits`` [shape=(V,)] among ``mask`` [shape=(V,), bool].

    Order: mask (−∞) → greedy if ``temperature == 0`` → ÷ temperature → top-k (values tied
    with the k-th are kept) → softmax → top-p → one uniform draw, inverse CDF. A mask with a
    single allowed value returns it without a draw. Never returns a masked index.
    """
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    n_allowed = int(np.count_nonzero(mask))
    if n_allowed == 0:
        raise RuntimeError("the grammar allows no value here (an empty mask): a grammar bug")
    if n_allowed == 1:
        return int(np.argmax(mask))
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if logits.shape != mask.shape:
        raise ValueError(f"logits have {logits.size} values, the mask {mask.size}")
    z = np.where(mask, logits, -np.inf)
    z_max = z.max()
    if not np.isfinite(z_max):
        raise FloatingPointError("the model produced non-finite logits")
    if temperature == 0:
        return int(np.argmax(z))
    if top_k is None and (top_p is None or top_p >= 1.0):
        cdf = np.cumsum(np.exp((z - z_max) / temperature))
        order = None
    else:
        order = np.argsort(-z, kind="stable")[:n_allowed]  # allowed values, most likely first
        zs = z[order]
        if top_k is not None and top_k < n_allowed:
            n = int(np.searchsorted(-zs, -zs[top_k - 1], side="right"))  # values tied with the k-th stay
            order, zs = order[:n], zs[:n]
        cdf = np.cumsum(np.exp((zs - z_max) / temperature))
        if top_p is not None and top_p < 1.0:
            n = int(np.searchsorted(cdf, top_p * cdf[-1], side="left")) + 1  # smallest set reaching top_p
            order, cdf = order[:n], cdf[:n]
    # inverse CDF; a value of probability 0 (masked, or underflowed) never owns an interval
    idx = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    if idx >= cdf.size:  # u·total rounded up to the total: the last value that has a probability
        idx = int(np.flatnonzero(np.diff(cdf, prepend=0.0) > 0)[-1])
    return idx if order is None else int(order[idx])


def _forced(mask: np.ndarray) -> int | None:
    return int(np.argmax(mask)) if np.count_nonzero(mask) == 1 else None


def _generate(stepper: Stepper, grammar: Grammar, emotion, sampling: SamplingConfig, *, max_tokens: int,
              prompt, families, rng, cached: bool) -> np.ndarray:
    sizes = tuple(stepper.sizes)
    n_fam = len(sizes)
    if max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
    temps = sampling.temperatures(n_fam, families)
    rng = rng if rng is not None else np.random.default_rng(sampling.seed)
    emotion = np.asarray(emotion, dtype=np.float32).reshape(-1)
    stepper.reset(emotion)
    rows: list[np.ndarray] = []
    fed = 0  # rows the model has seen (cached mode)
    hidden = None

    def draw(logits_fn, mask, family):
        return sample_logits(logits_fn(), mask, temperature=temps[family], top_k=sampling.top_k,
                             top_p=sampling.top_p, rng=rng)

    def current_hidden():
        nonlocal fed, hidden
        if not rows:
            raise InputError("the grammar does not force a first token: give a prompt")
        if cached:
            while fed < len(rows):
                hidden = stepper.step(rows[fed])
                fed += 1
        elif fed < len(rows):
            fed = len(rows)
            hidden = stepper.full(np.stack(rows[-stepper.block_size:]))
        return hidden

    for row in (np.asarray(prompt, np.int64).reshape(-1, n_fam) if prompt is not None else ()):
        if grammar.done or len(rows) >= max_tokens:
            break
        grammar.advance(row.copy())
        rows.append(row.copy())
    while not grammar.done and len(rows) < max_tokens:
        tmask = np.asarray(grammar.type_mask(), dtype=bool)
        type_id = _forced(tmask)
        if type_id is None:
            type_id = draw(lambda: stepper.type_logits(current_hidden()), tmask, 0)
        row = np.zeros(n_fam, np.int64)
        row[0] = type_id
        for f in range(1, n_fam):
            fmask = np.asarray(grammar.family_mask(type_id, f, partial=row), dtype=bool)
            value = _forced(fmask)
            if value is None:
                value = draw(lambda: stepper.family_logits(current_hidden(), row, f), fmask, f)
            row[f] = value
        grammar.advance(row.copy())
        rows.append(row)
    return np.stack(rows) if rows else np.zeros((0, n_fam), np.int64)


def generate(stepper: Stepper, grammar: Grammar, emotion, sampling: SamplingConfig = SamplingConfig(), *,
             max_tokens: int, prompt=None, families: Sequence[str] | None = None,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Sample compound tokens under ``grammar`` with the stepper's key/value cache.

    Parameters
    ----------
    stepper : Stepper
        Reset here, then fed every row in order (each once).
    grammar : Grammar
        A fresh grammar; advanced with every row (prompt included).
    emotion : array-like [shape=(3,)]
        Valence in [-1, 1], arousal and dominance in [0, 1].
    sampling : SamplingConfig
    max_tokens : int ≥ 1
        Most rows returned (prompt included).
    prompt : array-like [shape=(n, F), int64] or None
        Rows to start from (advanced in the grammar, not sampled); needed only when the
        grammar does not force the first token.
    families : sequence of str or None
        Family names, for a temperature mapping keyed by name.
    rng : numpy.random.Generator or None
        Draws from ``default_rng(sampling.seed)`` when None.

    Returns
    -------
    np.ndarray [shape=(n, F), int64]
        Every row, prompt and final EOS included; ``grammar.done`` tells whether the
        grammar finished or ``max_tokens`` cut it short.
    """
    return _generate(stepper, grammar, emotion, sampling, max_tokens=max_tokens, prompt=prompt,
                     families=families, rng=rng, cached=True)


def generate_nocache(stepper: Stepper, grammar: Grammar, emotion, sampling: SamplingConfig = SamplingConfig(), *,
                     max_tokens: int, prompt=None, families: Sequence[str] | None = None,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """As :func:`generate`, but every hidden state is recomputed from the whole prefix (the
    newest ``block_size`` rows) with ``stepper.full``: the benchmark's no-cache baseline.
    Within ``block_size`` it returns the same rows as :func:`generate` (up to float noise)."""
    return _generate(stepper, grammar, emotion, sampling, max_tokens=max_tokens, prompt=prompt,
                     families=families, rng=rng, cached=False)


class UnconstrainedGrammar:
    """Every type but PAD and every value of every family, never done: for benchmarks and tests
    (pass a ``prompt`` and ``max_tokens``)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.done = False
        self.bar = 0
        self.n = 0

    def type_mask(self) -> np.ndarray:
        mask = np.ones(self.sizes[0], dtype=bool)
        mask[0] = False
        return mask

    def family_mask(self, type_id: int, family: int, partial=None) -> np.ndarray:
        return np.ones(self.sizes[family], dtype=bool)

    def advance(self, row) -> None:
        self.n += 1


def tokens_per_second(stepper: Stepper, *, n_tokens: int = 500, cached: bool = True,
                      sampling: SamplingConfig = SamplingConfig(temperature=1.0, top_p=0.95),
                      emotion=(0.3, 0.6, 0.5)) -> float:
    """Compound tokens per second generating ``n_tokens`` rows under :class:`UnconstrainedGrammar`
    (every head runs, sampling included), with the cache or (``cached=False``) recomputing
    the prefix at every step. For ``make bench``; set the threads on the stepper."""
    import time

    prompt = np.zeros((1, len(stepper.sizes)), np.int64)
    prompt[0, 0] = 1
    fn = generate if cached else generate_nocache
    t0 = time.perf_counter()
    rows = fn(stepper, UnconstrainedGrammar(stepper.sizes), emotion, sampling, max_tokens=n_tokens, prompt=prompt)
    return (len(rows) - 1) / (time.perf_counter() - t0)


__all__ = ["SamplingConfig", "UnconstrainedGrammar", "tokens_per_second", "Stepper", "Grammar", "generate",
           "generate_nocache", "sample_logits"]
