"""KL: -NLL(forget) + lambda * KL(p_ref || p_theta), averaged over counted retain tokens."""

from methods.objective import RETAIN_WEIGHT, LossInputs, Objective


def loss(x: LossInputs):
    """-mean NLL(forget) + lambda * KL(p_ref || p_theta) over counted retain tokens (Maini et al. 2024);
    parts: `forget_nll`, `retain_kl`."""
    import torch

    from methods.losses import logits_of, nll_of, retain_kl

    forget = nll_of(x.model, x.forget)
    with torch.no_grad():
        ref_logits = logits_of(x.reference, x.retain)
    kl = retain_kl(logits_of(x.model, x.retain), ref_logits, x.retain["labels"])
    return -forget + x.hp.retain_weight * kl, {"forget_nll": forget.item(), "retain_kl": kl.item()}


OBJECTIVE = Objective("kl", loss, needs_retain=True, needs_reference=True,
                      summary="gradient ascent + KL to the original model on retain",
                      source="Maini et al. 2024, TOFU",
                      settings=(RETAIN_WEIGHT,))
