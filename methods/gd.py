"""Gradient difference: -NLL(forget) + lambda * NLL(retain) (or KL to the frozen model: retain_loss=kl)."""

from methods.objective import RETAIN_TERM, LossInputs, Objective


def loss(x: LossInputs):
    """-mean NLL(forget) + lambda * retain term (Liu et al. 2022); parts: `forget_nll` and the retain term's."""
    from methods.losses import nll_of, retain_term

    forget = nll_of(x.model, x.forget)
    retain, parts = retain_term(x)
    return -forget + retain, {"forget_nll": forget.item(), **parts}


OBJECTIVE = Objective("gd", loss, needs_retain=True, needs_reference=False,
                      summary="gradient ascent on forget + descent on retain",
                      source="Liu et al. 2022, Continual learning and private unlearning",
                      settings=RETAIN_TERM)
