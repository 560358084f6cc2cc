"""UNDIAL (Dong et al. 2024, "UNDIAL: self-distillation with adjusted logits for robust unlearning"):
distil the model toward the frozen model's distribution with the true token's logit lowered by beta.

    q_t = softmax(z_ref,t - beta * onehot(y_t))   (frozen, no gradient)
    gamma * mean over answer positions of CE(q_t, p_theta,t) + lambda * retain

CE(q, p) = -sum_v q_v log p_v; it differs from KL(q || p) by q's entropy, a constant, so both give the
same gradient. Only answer positions count (never the prompt or padding). Defaults (the open
harness's): beta 10, gamma 1, no retain term (lambda 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import BETA, FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over counted positions of -sum_v softmax(target)_v log softmax(logits)_v."""
    from methods.losses import shifted

    lg, _, mask = shifted(logits, labels)
    target, _, _ = shifted(target_logits, labels)
    ce = -(target.softmax(-1) * lg.log_softmax(-1)).sum(-1)
    return (ce * mask).sum() / mask.sum().clamp(min=1)


def adjusted_logits(ref_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """z_ref with beta subtracted at each position's next (true) token; positions without a label unchanged."""
    import torch

    from methods.losses import IGNORE

    out = ref_logits.float().clone()
    targets = labels[:, 1:]
    hit = torch.zeros_like(out[:, :-1]).scatter_(-1, targets.clamp(min=0).unsqueeze(-1), 1.0)
    out[:, :-1] -= beta * hit * (targets != IGNORE).unsqueeze(-1)
    return out


def loss(x: LossInputs):
    """gamma * CE(softmax(z_ref - beta onehot(y)), p_theta) over forget answer positions + retain term;
    parts: `undial` and the retain term's."""
    import torch

    from methods.losses import logits_of, retain_term

    labels = x.forget["labels"]
    with torch.no_grad():
        target = adjusted_logits(logits_of(x.reference, x.forget), labels, x.hp.beta)
    forget = soft_cross_entropy(logits_of(x.model, x.forget), target, labels)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"undial": forget.item(), **parts}


OBJECTIVE = Objective("undial", loss, needs_retain=True, needs_reference=True,
                      summary="self-distillation toward the frozen model with the true logit lowered",
                      settings=RETAIN_TERM + (BETA, FORGET_WEIGHT), records_defaults=True,
                      defaults={"beta": 10.0, "retain_weight": 0.0},
                      source="Dong et al. 2024, UNDIAL: self-distillation with adjusted logits")
