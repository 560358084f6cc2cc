"""Gradient difference: -NLL(forget) + lambda * NLL(retain)."""

from methods.objective import LossInputs, Objective


def loss(x: LossInputs):
    from methods.losses import nll_of

    forget = nll_of(x.model, x.forget)
    retain = nll_of(x.model, x.retain)
    return -forget + x.hp.retain_weight * retain, {"forget_nll": forget.item(), "retain_nll": retain.item()}


OBJECTIVE = Objective("gd", loss, needs_retain=True, needs_reference=False,
                      summary="gradient ascent on forget + descent on retain")
