"""The emotion-conditioned compound-word transformer (PyTorch; imported only where training or export runs).

In the manner of nanoGPT's ``model.py``: a config dataclass, the modules, explicit
initialisation, nothing else. Sampling lives in :mod:`kelly.transformer.sample`, the ONNX
graphs in :mod:`kelly.transformer.onnx`.

Tokens
------
A step is one *compound word*: an int64 row of ``F`` family indices
(``config.sizes[f]`` values in family ``f``). Family 0 is the token type (type 0 is PAD);
index 0 of every other family means "not applicable" (NONE).

Architecture (Hsiao et al. 2021, "Compound Word Transformer", with a pre-LN GPT trunk)
--------------------------------------------------------------------------------------
::

    x_t = W_in [E_0(type_t) ‖ E_1(tok_t,1) ‖ … ‖ E_{F-1}(tok_t,F-1)] + P(pos_t) + W_emo (v, a, d)
    h   = LN_f(Block_L(… Block_1(x)))                  pre-LN blocks, causal self-attention
    type logits        = W_type h_t
    family f logits    = W_f [h_t ‖ E_0(type_{t+1}) ‖ E_1(v_{t+1,1}) ‖ … ‖ E_{f-1}(v_{t+1,f-1})]

The type of the *next* token is predicted first; then each other family in row order,
its head reading the hidden state and the embeddings (the input tables, shared) of the
next token's values chosen before it: the true ones in training (teacher forcing), the
sampled ones in generation. With ``row_heads=False`` a head reads only ``[h_t ‖
E_0(type)]``, exactly the CP paper. The default also gives it the row's earlier
families because the tokenizer orders them for this (program and role before pitch,
duration and velocity): a bass note and a melody note differ in register, a drum hit in
everything, and the grammar already masks pitch by program and role. It costs a few wider
head matrices and nothing in the trunk.

Each family has its own embedding width (``config.emb_sizes``, by default
:func:`default_emb_size`); the concatenation is projected to ``n_embd``. The emotion,
a ``[B, 3]`` float tensor (valence in [-1, 1], arousal and dominance in [0, 1]), is
projected by one linear layer and **added at every step**, so it cannot be forgotten as the
context grows.

Loss
----
Mean over families of the cross-entropy, each over the non-PAD target rows. NONE is
predicted like any other value: where a family does not apply the grammar allows only
NONE, so sampling is unaffected, and the model never has to be told which families apply
(the grammar stays in charge). :func:`compound_loss` can also leave NONE targets out
(``ignore_none=True``) for a perplexity over the values that were really chosen.

Key/value cache and context length
----------------------------------
:meth:`CompoundTransformer.step` runs ``T >= 1`` new steps after a cache of per-layer
``(k, v)`` tensors [shape=(B, n_head, t, head_dim)] and returns the new cache; positions
continue from ``t``. It gives the same hidden states as :meth:`forward` (tested to 1e-5).
A cache never holds more than ``block_size`` steps: :meth:`step` refuses to go past it.
Generation of longer pieces uses a sliding window (:class:`TorchStepper` here and
``OnnxStepper`` in :mod:`kelly.transformer.onnx`): when the cache is full, the newest
``keep = block_size * 3 // 4`` steps are encoded again from position 0 in one batched
pass and generation goes on (so the model always sees at least three quarters of a
block of context, and positions never pass ``block_size``). Training should therefore
take crops that start anywhere in a piece, not only at its beginning, and as long as
``block_size``: positions are learned, and those no training window reached keep their
random initialisation (``config_for(name, sizes, block_size=window)`` makes them agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Cache = list[tuple[torch.Tensor, torch.Tensor]]

PAD_TYPE = 0
NONE = 0


def default_emb_size(vocab: int) -> int:
    """Embedding width for a family of ``vocab`` values: ``8·⌈√vocab⌉`` clamped to [16, 128].

    Type (a handful of values) gets 16, velocity (33) 56, pitch (~130) 96, a 1,000-value
    family 128: roughly the CP-transformer paper's widths (32 to 512 for its far larger
    model), growing slower than the vocabulary.
    """
    return int(min(128, max(16, 8 * math.ceil(math.sqrt(max(int(vocab), 1))))))


@dataclass
class TransformerConfig:
    """Shape of a :class:`CompoundTransformer`.

    Attributes
    ----------
    sizes : tuple of int
        Vocabulary size of each family; ``sizes[0]`` is the type family (PAD = 0).
    n_layer, n_head, n_embd : int
        Blocks, attention heads, model width (``n_embd % n_head == 0``).
    block_size : int
        Longest context in steps (learned positions ``0 … block_size-1``).
    dropout : float
        On embeddings, attention weights and residual branches while training.
    emb_sizes : tuple of int or None
        Embedding width per family; ``None`` applies :func:`default_emb_size`.
    n_emotion : int
        Width of the conditioning vector (valence, arousal, dominance).
    row_heads : bool
        Family ``f``'s head reads the row's families ``0 … f-1`` (True) or only its type
        (False: the CP paper).
    """

    sizes: tuple[int, ...] = ()
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    block_size: int = 1024
    dropout: float = 0.1
    emb_sizes: tuple[int, ...] | None = None
    n_emotion: int = 3
    row_heads: bool = True

    def __post_init__(self) -> None:
        self.sizes = tuple(int(s) for s in self.sizes)
        if self.emb_sizes is not None:
            self.emb_sizes = tuple(int(e) for e in self.emb_sizes)

    @property
    def n_families(self) -> int:
        return len(self.sizes)

    @property
    def family_emb_sizes(self) -> tuple[int, ...]:
        """``emb_sizes``, or the rule's widths when it is ``None``."""
        if self.emb_sizes is not None:
            return self.emb_sizes
        return tuple(default_emb_size(s) for s in self.sizes)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def n_conditions(self, family: int) -> int:
        """How many leading families of the row family ``family``'s head reads (1 = the type)."""
        return family if self.row_heads else 1

    def validate(self) -> "TransformerConfig":
        if len(self.sizes) < 2 or min(self.sizes) < 2:
            raise ValueError(f"sizes must name at least two families of at least two values each, got {self.sizes}")
        if len(self.family_emb_sizes) != len(self.sizes) or min(self.family_emb_sizes) < 1:
            raise ValueError(f"emb_sizes {self.emb_sizes} must give one positive width per family {self.sizes}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size) < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f"bad transformer shape: {self}")
        return self

    def with_sizes(self, sizes) -> "TransformerConfig":
        """This shape for a tokenizer's family sizes."""
        return replace(self, sizes=tuple(sizes))

    def to_dict(self) -> dict:
        return {"sizes": list(self.sizes), "n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd,
                "block_size": self.block_size, "dropout": self.dropout,
                "emb_sizes": list(self.family_emb_sizes), "n_emotion": self.n_emotion, "row_heads": self.row_heads}

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        known = {"sizes", "n_layer", "n_head", "n_embd", "block_size", "dropout", "emb_sizes", "n_emotion",
                 "row_heads"}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}).validate()


#: Trains on 2 CPU cores: 4 layers × 192, 1,024 steps of context. With the tokenizer's
#: families (6, 97, 130, 10, 129, 97, 33, 65, 24): 2,383,967 parameters (1,779,456 in the
#: blocks), 9.1 MiB in float32. Kelly's 7-track pieces take about 49 compound tokens a bar
#: (a 32-bar piece: 1,579), so the context holds about 20 bars of them (single-line tunes
#: and chorales far more); longer pieces go on with the sliding window.
SMALL = TransformerConfig(n_layer=4, n_head=4, n_embd=192, block_size=1024, dropout=0.1)
#: For a GPU: 12 layers × 512, 2,048 steps (about 40 bars of 7 tracks); 39.7 M parameters.
LARGE = TransformerConfig(n_layer=12, n_head=8, n_embd=512, block_size=2048, dropout=0.1)
#: Tests and smoke runs: 2 layers × 64, 128 steps (0.37 M parameters).
TINY = TransformerConfig(n_layer=2, n_head=2, n_embd=64, block_size=128, dropout=0.0)
CONFIGS = {"tiny": TINY, "small": SMALL, "large": LARGE}


def config_for(name: str, sizes, **overrides) -> TransformerConfig:
    """The named shape (``tiny``, ``small``, ``large``) for a tokenizer's ``sizes``, with overrides.

    Positions are learned, so train on windows as long as ``block_size`` (pass
    ``block_size=`` the training window): positions a model never saw in training are
    still at their random initialisation.
    """
    if name not in CONFIGS:
        raise ValueError(f"no transformer size {name!r}; sizes: {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], sizes=tuple(int(s) for s in sizes), **overrides).validate()


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``x`` [B, T, C] after ``past`` = (k, v) [B, H, t, D] (or None); returns (y, (k, v) of all t+T)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        if past is not None and past[0].shape[2] > 0:
            t = past[0].shape[2]
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
            if T == 1:
                mask = None  # the one new query sees every key
            else:
                mask = torch.ones(T, t + T, dtype=torch.bool, device=x.device).tril(diagonal=t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()  # exact (erf) GELU; the ONNX graph writes the same formula
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past=None):
        a, kv = self.attn(self.ln_1(x), past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, kv


class CompoundTransformer(nn.Module):
    """Emotion-conditioned compound-word transformer (see the module docstring).

    Parameters
    ----------
    config : TransformerConfig
    seed : int or None
        Seeds the weight initialisation (``None``: torch's global generator).
    """

    def __init__(self, config: TransformerConfig, *, seed: int | None = None) -> None:
        super().__init__()
        self.config = config.validate()
        emb = config.family_emb_sizes
        self.wte = nn.ModuleList(nn.Embedding(n, e) for n, e in zip(config.sizes, emb))
        self.w_in = nn.Linear(sum(emb), config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.w_emo = nn.Linear(config.n_emotion, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.type_head = nn.Linear(config.n_embd, config.sizes[0])
        self.family_heads = nn.ModuleList(nn.Linear(config.n_embd + sum(emb[:config.n_conditions(f)]), n)
                                          for f, n in enumerate(config.sizes) if f > 0)
        self.init_weights(None if seed is None else torch.Generator().manual_seed(int(seed)))

    # ------------------------------------------------------------------ initialisation
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Normal(0, 0.02) for every linear and embedding weight, zero biases, LayerNorm (1, 0);
        the two residual projections of each block (``attn.c_proj``, ``mlp.c_proj``) get
        std 0.02/√(2·n_layer) so that the residual stream's variance does not grow with depth
        (GPT-2). Drawn in ``named_parameters`` order from ``generator``."""
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    std = resid_std if name.endswith("c_proj") else 0.02
                    module.weight.normal_(0.0, std, generator=generator)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (without the position table when ``non_embedding``)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float] = (0.9, 0.95)):
        """AdamW with weight decay on the matrices only (linear weights); embeddings,
        position table, biases and LayerNorm parameters are not decayed (nanoGPT)."""
        decay = [p for n, p in self.named_parameters() if p.dim() >= 2 and not n.startswith(("wte.", "wpe."))]
        no_decay = [p for n, p in self.named_parameters() if not (p.dim() >= 2 and not n.startswith(("wte.", "wpe.")))]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas)

    # ------------------------------------------------------------------ trunk
    def embed(self, tokens: torch.Tensor, emotion: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Input vectors [B, T, n_embd] for ``tokens`` [B, T, F] at positions ``start …``."""
        B, T, nf = tokens.shape
        if nf != self.config.n_families:
            raise ValueError(f"tokens have {nf} families, the model {self.config.n_families}")
        if start + T > self.config.block_size:
            raise ValueError(f"{start + T} steps exceed block_size {self.config.block_size}; "
                             "slide the window (TorchStepper does)")
        parts = [wte(tokens[..., f]) for f, wte in enumerate(self.wte)]
        pos = torch.arange(start, start + T, device=tokens.device)
        emo = self.w_emo(emotion.to(self.w_emo.weight.dtype))[:, None, :]  # the same at every step
        x = self.w_in(torch.cat(parts, dim=-1)) + self.wpe(pos) + emo
        return self.drop(x)

    def step(self, tokens: torch.Tensor, emotion: torch.Tensor, cache: Cache | None = None):
        """Run ``tokens`` [B, T, F] (usually T = 1) after ``cache``.

        Returns
        -------
        hidden : torch.Tensor [shape=(B, T, n_embd)]
            After the final LayerNorm: what the heads read.
        cache : list of (k, v), each [shape=(B, n_head, t + T, head_dim)]
        """
        t = 0 if not cache else cache[0][0].shape[2]
        x = self.embed(tokens, emotion, start=t)
        new: Cache = []
        for i, block in enumerate(self.h):
            x, kv = block(x, cache[i] if cache else None)
            new.append(kv)
        return self.ln_f(x), new

    # ------------------------------------------------------------------ heads
    def type_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next type's logits [..., sizes[0]] from ``hidden`` [..., n_embd]."""
        return self.type_head(hidden)

    def family_logits(self, hidden: torch.Tensor, row: torch.Tensor, family: int) -> torch.Tensor:
        """Family ``family`` (≥ 1) logits [..., sizes[family]] for the next token.

        ``row`` [..., F] (int64) holds that token's values chosen so far: its type, and with
        ``row_heads`` the families ``1 … family-1`` (later entries are not read).
        """
        if not 1 <= family < self.config.n_families:
            raise ValueError(f"family {family} is not one of 1..{self.config.n_families - 1}")
        n = self.config.n_conditions(family)
        parts = [hidden] + [self.wte[j](row[..., j]) for j in range(n)]
        return self.family_heads[family - 1](torch.cat(parts, dim=-1))

    # ------------------------------------------------------------------ training
    def forward(self, tokens: torch.Tensor, emotion: torch.Tensor, targets: torch.Tensor | None = None, *,
                return_family_losses: bool = False):
        """Logits for every family at every step, and the loss when ``targets`` are given.

        Parameters
        ----------
        tokens : torch.Tensor [shape=(B, T, F), int64]
        emotion : torch.Tensor [shape=(B, 3), float]
        targets : torch.Tensor [shape=(B, T, F), int64] or None
            Usually ``tokens`` shifted by one step. Their values condition the family
            heads (teacher forcing); without targets the heads read the arg-max of each
            earlier family (greedy).
        return_family_losses : bool
            Also return the per-family losses [shape=(F,)] (None without targets).

        Returns
        -------
        logits : list of torch.Tensor, family f [shape=(B, T, sizes[f])]
        loss : torch.Tensor (scalar) or None
        family_losses : torch.Tensor [shape=(F,)] or None (only with ``return_family_losses``)
        """
        hidden, _ = self.step(tokens, emotion)
        logits = [self.type_logits(hidden)]
        if targets is not None:
            embs = [self.wte[j](targets[..., j]) for j in range(self.config.n_families - 1)]
            for f, head in enumerate(self.family_heads, start=1):
                logits.append(head(torch.cat([hidden] + embs[:self.config.n_conditions(f)], dim=-1)))
        else:
            row = torch.zeros(hidden.shape[:-1] + (self.config.n_families,), dtype=torch.long, device=hidden.device)
            row[..., 0] = logits[0].argmax(-1)
            for f in range(1, self.config.n_families):
                logits.append(self.family_logits(hidden, row, f))
                row[..., f] = logits[-1].argmax(-1)
        loss = family = None
        if targets is not None:
            loss, family = compound_loss(logits, targets)
        return (logits, loss, family) if return_family_losses else (logits, loss)


    @torch.no_grad()
    def family_loss_sums(self, tokens: torch.Tensor, emotion: torch.Tensor, targets: torch.Tensor,
                         *, ignore_none: bool = False) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy per family [shape=(F,)] over the non-PAD target rows, and their count
        (for evaluation over many windows: divide the totals by the total count).
        With ``ignore_none`` the NONE targets of families ≥ 1 are left out of the sums (the
        count is still the non-PAD rows)."""
        logits, _ = self(tokens, emotion, targets)
        keep = targets[..., 0] != PAD_TYPE
        sums = []
        for f, lg in enumerate(logits):
            tgt = targets[..., f]
            m = keep if (f == 0 or not ignore_none) else keep & (tgt != NONE)
            ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), tgt.reshape(-1), reduction="none")
            sums.append((ce * m.reshape(-1).to(ce.dtype)).sum())
        return torch.stack(sums).cpu(), int(keep.sum())


def compound_loss(logits: list[torch.Tensor], targets: torch.Tensor, *, ignore_none: bool = False):
    """Mean over families of each family's cross-entropy (nats) over the non-PAD target rows.

    Parameters
    ----------
    logits : list of torch.Tensor, family f [shape=(B, T, sizes[f])]
    targets : torch.Tensor [shape=(B, T, F), int64]
    ignore_none : bool
        Also leave out rows whose target in a family (≥ 1) is NONE: the perplexity of the
        values that were chosen rather than inferred from the type.

    Returns
    -------
    loss : torch.Tensor, scalar
    family_losses : torch.Tensor [shape=(F,)]
        A family with no counted rows gets 0 (and still counts in the mean).
    """
    keep = targets[..., 0] != PAD_TYPE
    losses = []
    for f, lg in enumerate(logits):
        tgt = targets[..., f]
        m = keep if (f == 0 or not ignore_none) else keep & (tgt != NONE)
        ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), tgt.reshape(-1), reduction="none")
        m = m.reshape(-1).to(ce.dtype)
        losses.append((ce * m).sum() / m.sum().clamp(min=1.0))
    family = torch.stack(losses)
    return family.mean(), family


# ---------------------------------------------------------------------------------------
# Generation: the stepper protocol of kelly.transformer.sample, in torch
# ---------------------------------------------------------------------------------------

class TorchStepper:
    """Runs a :class:`CompoundTransformer` one compound token at a time with a key/value cache.

    Implements the stepper protocol of :mod:`kelly.transformer.sample`: ``sizes``,
    ``block_size``, ``reset(emotion)``, ``step(row) -> hidden``, ``full(rows) -> hidden``
    (no cache), ``type_logits(hidden)`` and ``family_logits(hidden, row, family)``. When the cache is full
    the newest ``keep`` steps are encoded again from position 0 (the sliding window of the
    module docstring). Batch 1, ``torch.no_grad``, the model in eval mode.
    """

    def __init__(self, model: CompoundTransformer, *, keep: int | None = None) -> None:
        self.model = model.eval()
        self.sizes = model.config.sizes
        self.block_size = model.config.block_size
        self.keep = keep if keep is not None else max(1, self.block_size * 3 // 4)
        if not 1 <= self.keep < self.block_size:
            raise ValueError(f"keep {self.keep} must be in 1..block_size-1 ({self.block_size - 1})")
        self.reset(np.zeros(model.config.n_emotion, np.float32))

    def reset(self, emotion) -> None:
        self.emotion = torch.as_tensor(np.asarray(emotion, np.float32).reshape(1, -1))
        self.cache: Cache | None = None
        self.rows: list[np.ndarray] = []

    @torch.no_grad()
    def step(self, row) -> torch.Tensor:
        row = np.asarray(row, np.int64).reshape(-1)
        self.rows.append(row)
        del self.rows[:-self.block_size]
        if self.cache is not None and self.cache[0][0].shape[2] >= self.block_size:
            window = np.stack(self.rows[-self.keep:])
            hidden, self.cache = self.model.step(torch.from_numpy(window)[None], self.emotion)
            return hidden[0, -1]
        hidden, self.cache = self.model.step(torch.from_numpy(row)[None, None], self.emotion, self.cache)
        return hidden[0, -1]

    @torch.no_grad()
    def full(self, rows) -> torch.Tensor:
        """Hidden state after ``rows`` [n ≤ block_size, F], computed from scratch (no cache)."""
        rows = torch.from_numpy(np.asarray(rows, np.int64))
        hidden, _ = self.model.step(rows[None], self.emotion)
        return hidden[0, -1]

    @torch.no_grad()
    def type_logits(self, hidden: torch.Tensor) -> np.ndarray:
        return self.model.type_logits(hidden).numpy()

    @torch.no_grad()
    def family_logits(self, hidden: torch.Tensor, row, family: int) -> np.ndarray:
        row = torch.from_numpy(np.asarray(row, np.int64).reshape(-1))
        return self.model.family_logits(hidden, row, family).numpy()


__all__ = ["TransformerConfig", "SMALL", "LARGE", "TINY", "CONFIGS", "config_for", "CompoundTransformer",
           "TorchStepper", "compound_loss",
           "default_emb_size", "Cache", "PAD_TYPE", "NONE"]
