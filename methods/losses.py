"""Shared math of every objective. Positions whose label is -100 (padding, TOFU questions) never count.

Shapes: logits [B, T, V], labels [B, T]; position t's logits predict label t+1 (causal shift).
All reductions run in float32, whatever dtype the model computes in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.data import IGNORE  # noqa: F401 (the label the losses skip; kept importable from here)


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits [B, T-1, V] as float32, targets [B, T-1] with -100 replaced by 0, mask [B, T-1] bool)."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    return logits[:, :-1].float(), targets.clamp(min=0), mask


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token negative log-likelihood [B, T-1] (0 where masked) and the mask."""
    lg, targets, mask = shifted(logits, labels)
    # (B*T, V) rows: the (B, V, T) layout cross_entropy also accepts is several times slower on CPU
    nll = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1), reduction="none").view(targets.shape)
    return nll * mask, mask


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token NLL over all counted positions of the batch (scalar)."""
    nll, mask = token_nll(logits, labels)
    return nll.sum() / mask.sum().clamp(min=1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed token NLL of each sequence [B]: -log p(answer | prompt)."""
    nll, _ = token_nll(logits, labels)
    return nll.sum(dim=1)


def sequence_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token NLL of each sequence [B]; TOFU's P(a) = exp(-this). A sequence with no counted token
    raises ValueError: its mean would read as 0, P(a) = 1."""
    nll, mask = token_nll(logits, labels)
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError(f"sequence {int((counts == 0).nonzero()[0, 0])} of the batch has no counted token: no mean NLL")
    return nll.sum(dim=1) / counts


def logits_of(model, batch: dict) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def nll_of(model, batch: dict) -> torch.Tensor:
    return mean_nll(logits_of(model, batch), batch["labels"])


def retain_kl(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(p_ref || p_theta) per counted token, averaged over the batch's counted tokens."""
    lg, _, mask = shifted(logits, labels)
    ref, _, _ = shifted(ref_logits, labels)
    log_p, log_ref = lg.log_softmax(-1), ref.log_softmax(-1)
    kl = (log_ref.exp() * (log_ref - log_p)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


def retain_term(x) -> tuple[torch.Tensor, dict[str, float]]:
    """lambda * the retain regulariser `hp.retain_loss` (nll: NLL on retain; kl: KL to the frozen model),
    and its logged value. Weight 0 skips the forward pass."""
    hp = x.hp
    if hp.retain_weight == 0 or x.retain is None:
        return torch.zeros((), device=x.forget["input_ids"].device), {}
    if hp.retain_loss == "kl":
        with torch.no_grad():
            ref_logits = logits_of(x.reference, x.retain)
        value = retain_kl(logits_of(x.model, x.retain), ref_logits, x.retain["labels"])
        return hp.retain_weight * value, {"retain_kl": value.item()}
    value = nll_of(x.model, x.retain)
    return hp.retain_weight * value, {"retain_nll": value.item()}
