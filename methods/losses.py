"""Shared math of every objective. Positions whose label is -100 (padding, TOFU questions) never count.

Shapes: logits [B, T, V], labels [B, T]; position t's logits predict label t+1 (causal shift).
All reductions run in float32, whatever dtype the model computes in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


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
    """Mean token NLL of each sequence [B]; TOFU's P(a) = exp(-this)."""
    nll, mask = token_nll(logits, labels)
    return nll.sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def logits_of(model, batch: dict) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def nll_of(model, batch: dict) -> torch.Tensor:
    return mean_nll(logits_of(model, batch), batch["labels"])
