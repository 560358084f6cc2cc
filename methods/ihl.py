"""Inverted hinge loss (Cha et al., ICLR 2025):
mean over counted forget tokens of [1 + p_t(y_t) - max_{v != y_t} p_t(v)] + lambda * NLL(retain).

The bracket lies in [0, 2] (the paper's max(0, .) never clips). It lowers the true token's
probability only until another token overtakes it, so it does not push probability mass into
nonsense the way unbounded gradient ascent does. Softmax in float32 even under bf16."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch


def inverted_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over counted positions of 1 + p(y_t) - max_{v != y_t} p(v); logits [B, T, V], labels [B, T]
    (-100 = not counted), softmax in float32. A scalar in [0, 2]. Cha et al. 2025."""
    from methods.losses import shifted

    lg, targets, mask = shifted(logits, labels)
    probs = lg.softmax(-1)
    index = targets.unsqueeze(-1)
    p_true = probs.gather(-1, index).squeeze(-1)
    p_best_other = probs.scatter(-1, index, float("-inf")).amax(-1)
    bracket = 1.0 + p_true - p_best_other
    return (bracket * mask).sum() / mask.sum().clamp(min=1)


def loss(x: LossInputs):
    """Inverted hinge on the forget batch + lambda * retain term; parts: `ihl` and the retain term's."""
    from methods.losses import logits_of, retain_term

    forget = inverted_hinge(logits_of(x.model, x.forget), x.forget["labels"])
    retain, parts = retain_term(x)
    return forget + retain, {"ihl": forget.item(), **parts}


OBJECTIVE = Objective("ihl", loss, needs_retain=True, needs_reference=False,
                      summary="inverted hinge loss on forget + retain NLL",
                      source="Cha et al. 2025, Towards robust and parameter-efficient knowledge unlearning for LLMs",
                      settings=RETAIN_TERM)
