"""What each network is trained to minimise, and how it is judged.

One table, :data:`OBJECTIVES`, says for every network which loss it is trained with and
which metrics are reported; the training loop looks everything up here.

==================  ====  =================================================  ======================
network             loss  why                                                metrics (first: headline)
==================  ====  =================================================  ======================
EmotionRecognizer   mse   regression onto the 64-d embedding (tanh)          r2
MelodyTransformer   bce   128 independent note probabilities (sigmoid)       cosine, kl
HarmonyPredictor    kl    one distribution over 64 chord classes (softmax)   top1, top3
DynamicsEngine      mse   16 expression parameters in [0, 1] (sigmoid)       r2
GroovePredictor     mse   32 groove parameters in [-1, 1] (tanh)             r2
==================  ====  =================================================  ======================

Losses, over predictions ``p``, targets ``t`` and an optional mask ``m`` (1 where the target
is supervised, 0 where the data cannot tell; all [shape=(rows, out)], a sequence batch
flattened to rows = batch · time first). Each is a weighted mean: ``total / weight``.

* ``mse``: Σ m·(p − t)² / Σ m (without a mask, the mean over rows and outputs).
* ``bce``: Σ m·−[t·log p + (1 − t)·log(1 − p)] / Σ m, logs clamped at −100 as torch does;
  targets in [0, 1] (a 0/1 note mask or soft probabilities).
* ``kl``: per row KL(t ‖ p) = Σ_c t_c·(log t_c − log p_c), with log p clamped at
  log(1e-12), averaged over the rows whose mask is not all zero. For one-hot targets it
  equals the cross-entropy −log p_label; for soft targets it is the cross-entropy minus
  the (constant) entropy of t, so a perfect prediction scores 0. The network ends in a
  softmax, so p is a distribution; targets must be too (rows summing to 1), except
  unsupervised rows, which are masked.

Metrics, over a whole validation set, supervised entries (or rows) only:

* ``r2``: 1 − Σ m·(p − t)² / Σ m·(t − t̄)², pooled over all outputs (t̄ per output over the
  set): 1 perfect, 0 as good as predicting the mean.
* ``cosine``: mean over rows of cos(m·p, m·t) (rows whose masked target is all zeros count 0).
* ``kl`` (melody): mean over rows of KL(t/Σt ‖ p/Σp), the masked note vectors as distributions.
* ``top1``, ``top3``: share of rows whose target's most likely chord class (argmax t) is
  the network's first, or among its first three.

The trivial baseline predicts, for every row, the training set's mean target (per output,
over supervised entries); its loss and metrics come from the same code
(:func:`mean_target`, :func:`evaluate_constant`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

_EPS = 1e-12
Terms = tuple[torch.Tensor, torch.Tensor]


def _mean_terms(elementwise: torch.Tensor, mask: torch.Tensor | None) -> Terms:
    if mask is None:
        return elementwise.sum(), torch.tensor(float(elementwise.numel()), device=elementwise.device)
    return (elementwise * mask).sum(), mask.sum()


def mse_terms(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> Terms:
    return _mean_terms((pred - target) ** 2, mask)


def bce_terms(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> Terms:
    return _mean_terms(F.binary_cross_entropy(pred, target, reduction="none"), mask)


def kl_terms(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> Terms:
    per_row = (torch.special.xlogy(target, target) - target * torch.log(pred.clamp_min(_EPS))).sum(-1)
    row_mask = None if mask is None else mask.amax(-1)
    return _mean_terms(per_row, row_mask)


#: loss name → function (pred, target, mask) → (total, weight); the loss is total / weight.
LOSSES: dict[str, Callable[..., Terms]] = {"mse": mse_terms, "bce": bce_terms, "kl": kl_terms}


@dataclass(frozen=True)
class Objective:
    """A network's loss (a key of :data:`LOSSES`) and its metrics (the first is the headline)."""

    loss: str
    metrics: tuple[str, ...]


#: model key → objective. The single place that decides how each network is trained.
OBJECTIVES: dict[str, Objective] = {
    "emotionrecognizer": Objective("mse", ("r2",)),
    "melodytransformer": Objective("bce", ("cosine", "kl")),
    "harmonypredictor": Objective("kl", ("top1", "top3")),
    "dynamicsengine": Objective("mse", ("r2",)),
    "groovepredictor": Objective("mse", ("r2",)),
}


def loss_terms(key: str) -> Callable[..., Terms]:
    """The network's loss as (total, weight) terms (see :data:`LOSSES`)."""
    return LOSSES[OBJECTIVES[key].loss]


def rows(t: torch.Tensor | None) -> torch.Tensor | None:
    """(batch, [time,] out) → (rows, out)."""
    return None if t is None else t.reshape(-1, t.shape[-1])


class Evaluation:
    """Running sums over a validation set for one network's loss and metrics."""

    def __init__(self, key: str, n_out: int) -> None:
        self.key = key
        self.metrics = OBJECTIVES[key].metrics
        self.terms = loss_terms(key)
        self.loss_total = 0.0
        self.loss_weight = 0.0
        self.n_rows = 0              # rows with something supervised
        self.sse = 0.0
        self.t_count = torch.zeros(n_out, dtype=torch.float64)
        self.t_sum = torch.zeros(n_out, dtype=torch.float64)
        self.t_sq = torch.zeros(n_out, dtype=torch.float64)
        self.cos_sum = 0.0
        self.kl_sum = 0.0
        self.top1 = 0
        self.top3 = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        p, t, m = rows(pred).float(), rows(target).float(), rows(mask)
        total, weight = self.terms(p, t, None if m is None else m.float())
        self.loss_total += float(total)
        self.loss_weight += float(weight)
        p, t = p.double(), t.double()
        m = torch.ones_like(t) if m is None else m.double()
        live = m.amax(1) > 0
        self.n_rows += int(live.sum())
        if "r2" in self.metrics:
            self.sse += float((m * (p - t) ** 2).sum())
            self.t_count += m.sum(0).cpu()
            self.t_sum += (m * t).sum(0).cpu()
            self.t_sq += (m * t * t).sum(0).cpu()
        if "cosine" in self.metrics:
            self.cos_sum += float(F.cosine_similarity(m * p, m * t, dim=1, eps=_EPS)[live].sum())
        if "kl" in self.metrics:
            pn = m * p / (m * p).sum(1, keepdim=True).clamp_min(_EPS)
            tn = m * t / (m * t).sum(1, keepdim=True).clamp_min(_EPS)
            per_row = (torch.special.xlogy(tn, tn) - tn * torch.log(pn.clamp_min(_EPS))).sum(1)
            self.kl_sum += float(per_row[live].sum())
        if "top1" in self.metrics:
            label = t.argmax(1, keepdim=True)
            top = p.topk(min(3, p.shape[1]), dim=1).indices
            self.top1 += int(((top[:, :1] == label).any(1) & live).sum())
            self.top3 += int(((top == label).any(1) & live).sum())

    def result(self) -> dict[str, float]:
        """``{"loss": …, <metric>: …}`` over everything seen (NaN where nothing was)."""
        nan = float("nan")
        n = self.n_rows
        out = {"loss": self.loss_total / self.loss_weight if self.loss_weight > 0 else nan}
        for name in self.metrics:
            if name == "r2":
                seen = self.t_count > 0
                sst = float((self.t_sq[seen] - self.t_sum[seen] ** 2 / self.t_count[seen]).sum())
                out["r2"] = 1.0 - self.sse / sst if sst > 0 else nan
            elif name == "cosine":
                out["cosine"] = self.cos_sum / n if n else nan
            elif name == "kl":
                out["kl"] = self.kl_sum / n if n else nan
            elif name == "top1":
                out["top1"] = self.top1 / n if n else nan
            elif name == "top3":
                out["top3"] = self.top3 / n if n else nan
        return out


def mean_target(batches: Iterable[tuple[torch.Tensor, ...]], n_out: int) -> torch.Tensor:
    """The mean target [shape=(n_out,)] over ``batches`` (per output, supervised entries only):
    the trivial baseline's prediction."""
    total = torch.zeros(n_out, dtype=torch.float64)
    count = torch.zeros(n_out, dtype=torch.float64)
    for batch in batches:
        y = rows(batch[1]).double()
        m = torch.ones_like(y) if len(batch) < 3 else rows(batch[2]).double()
        total += (m * y).sum(0)
        count += m.sum(0)
    return (total / count.clamp_min(1)).float()


def evaluate_constant(key: str, constant: torch.Tensor,
                      batches: Iterable[tuple[torch.Tensor, ...]]) -> dict[str, float]:
    """Loss and metrics of predicting ``constant`` for every row (the baseline)."""
    ev = Evaluation(key, constant.shape[-1])
    for batch in batches:
        t = rows(batch[1])
        ev.update(constant.to(t.dtype).expand_as(t), t, None if len(batch) < 3 else batch[2])
    return ev.result()


__all__ = ["OBJECTIVES", "Objective", "LOSSES", "loss_terms", "Evaluation", "mean_target", "evaluate_constant",
           "rows"]
