"""CE-U (Yang et al. 2025, "CE-U: cross entropy unlearning"): cross-entropy toward the model's own
distribution with the true token removed.

    q_t = softmax(z_theta,t with z[y_t] = -inf)   (detached)
    gamma * mean over answer positions of CE(q_t, p_theta,t) + lambda * retain

Unlike gradient ascent its gradient at each position is bounded: p_theta - q moves mass from the true
token to the others in proportion to what the model already gives them. Defaults: gamma 1 and no
retain term (lambda 0): the loss is defined on the forget set alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch


def without_true_token(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Detached logits with each labelled position's next (true) token at -inf (a large negative)."""
    import torch

    from methods.losses import IGNORE

    out = logits.detach().float().clone()
    targets = labels[:, 1:]
    hit = torch.zeros_like(out[:, :-1], dtype=torch.bool).scatter_(-1, targets.clamp(min=0).unsqueeze(-1), True)
    hit &= (targets != IGNORE).unsqueeze(-1)
    out[:, :-1] = out[:, :-1].masked_fill(hit, torch.finfo(out.dtype).min)
    return out


def loss(x: LossInputs):
    """gamma * mean over forget answer positions of CE(q_t, p_theta,t) + retain term (module docstring);
    parts: `ceu` and the retain term's."""
    from methods.losses import logits_of, retain_term
    from methods.undial import soft_cross_entropy

    logits = logits_of(x.model, x.forget)
    labels = x.forget["labels"]
    forget = soft_cross_entropy(logits, without_true_token(logits, labels), labels)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"ceu": forget.item(), **parts}


OBJECTIVE = Objective("ceu", loss, needs_retain=True, needs_reference=False,
                      summary="cross-entropy toward the model's own distribution without the true token",
                      settings=RETAIN_TERM + (FORGET_WEIGHT,), records_defaults=True, defaults={"retain_weight": 0.0},
                      source="Yang et al. 2025, CE-U: cross entropy unlearning")
