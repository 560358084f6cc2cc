"""KL: -NLL(forget) + lambda * KL(p_ref || p_theta), averaged over counted retain tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import LossInputs, Objective

if TYPE_CHECKING:
    import torch


def retain_kl(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    from methods.losses import shifted

    lg, _, mask = shifted(logits, labels)
    ref, _, _ = shifted(ref_logits, labels)
    log_p, log_ref = lg.log_softmax(-1), ref.log_softmax(-1)
    kl = (log_ref.exp() * (log_ref - log_p)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


def loss(x: LossInputs):
    import torch

    from methods.losses import logits_of, nll_of

    forget = nll_of(x.model, x.forget)
    with torch.no_grad():
        ref_logits = logits_of(x.reference, x.retain)
    kl = retain_kl(logits_of(x.model, x.retain), ref_logits, x.retain["labels"])
    return -forget + x.hp.retain_weight * kl, {"forget_nll": forget.item(), "retain_kl": kl.item()}


OBJECTIVE = Objective("kl", loss, needs_retain=True, needs_reference=True,
                      summary="gradient ascent + KL to the original model on retain")
