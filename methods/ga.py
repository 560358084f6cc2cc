"""Gradient ascent: minimise -NLL(forget)."""

from methods.objective import LossInputs, Objective


def loss(x: LossInputs):
    """-mean NLL(forget) over counted tokens (Jang et al. 2023); parts: `forget_nll`."""
    from methods.losses import nll_of

    forget = nll_of(x.model, x.forget)
    return -forget, {"forget_nll": forget.item()}


OBJECTIVE = Objective("ga", loss, needs_retain=False, needs_reference=False,
                      summary="gradient ascent on the forget set",
                      source="Jang et al. 2023, Knowledge unlearning for mitigating privacy risks in LMs",
                      settings=())
