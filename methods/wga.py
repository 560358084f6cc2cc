"""Weighted gradient ascent (Wang et al. 2025, "Rethinking LLM unlearning objectives: a gradient
perspective and go beyond"): ascent on each forget token's NLL weighted by its detached probability.

    gamma * -mean_tokens [ p(y_t)^beta * NLL_t ] + lambda * retain,   p(y_t) = exp(-NLL_t), detached

Tokens the model already finds unlikely stop pushing, so the ascent does not run away.
Defaults (the open harness's): beta 1, gamma 1, lambda 1 with retain NLL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import BETA, FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch


def weighted_ascent(logits: torch.Tensor, labels: torch.Tensor, weight_of) -> torch.Tensor:
    """-mean over counted tokens of weight_of(p_t) * NLL_t, the weight detached."""
    from methods.losses import token_nll

    nll, mask = token_nll(logits, labels)
    weight = weight_of((-nll).exp().detach())
    return -(weight * nll * mask).sum() / mask.sum().clamp(min=1)


def loss(x: LossInputs):
    """gamma * -mean over forget tokens of p(y_t)^beta NLL_t (weights detached) + retain term; parts:
    `wga` and the retain term's."""
    from methods.losses import logits_of, retain_term

    forget = weighted_ascent(logits_of(x.model, x.forget), x.forget["labels"], lambda p: p ** x.hp.beta)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"wga": forget.item(), **parts}


OBJECTIVE = Objective("wga", loss, needs_retain=True, needs_reference=False,
                      summary="gradient ascent weighted by p(token)^beta + retain NLL",
                      settings=RETAIN_TERM + (BETA, FORGET_WEIGHT), records_defaults=True, defaults={"beta": 1.0},
                      source="Wang et al. 2025, Rethinking LLM unlearning objectives: a gradient perspective")
