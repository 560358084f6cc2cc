"""SatImp (Yang et al. 2025, "Exploring criteria of loss reweighting to enhance LLM unlearning"):
ascent weighted by saturation (p^b1) and importance ((1-p)^b2) of each forget token.

    gamma * -mean_tokens [ p_t^b1 * (1 - p_t)^b2 * NLL_t ] + lambda * retain,   p_t = p(y_t), detached

Convention: p_t is the model's probability of the true token; b1 rewards tokens still likely (not yet
forgotten), b2 tokens not fully certain. Defaults (the open harness's): b1 5, b2 1, gamma 0.1,
lambda 1 with retain NLL."""

from bench.settings import non_negative
from methods.objective import FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

SOURCE = "Yang et al. 2025, Exploring criteria of loss reweighting to enhance LLM unlearning"
B1 = non_negative("satimp_b1", 5.0, "b1: exponent of the saturation weight p^b1", source=SOURCE)
B2 = non_negative("satimp_b2", 1.0, "b2: exponent of the importance weight (1-p)^b2", source=SOURCE)


def loss(x: LossInputs):
    """gamma * -mean over forget tokens of p^b1 (1-p)^b2 NLL_t (weights detached) + retain term; parts:
    `satimp` and the retain term's."""
    from methods.losses import logits_of, retain_term
    from methods.wga import weighted_ascent

    b1, b2 = x.hp.satimp_b1, x.hp.satimp_b2
    forget = weighted_ascent(logits_of(x.model, x.forget), x.forget["labels"], lambda p: p ** b1 * (1 - p) ** b2)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"satimp": forget.item(), **parts}


OBJECTIVE = Objective("satimp", loss, needs_retain=True, needs_reference=False,
                      summary="gradient ascent weighted by p^b1 (1-p)^b2 + retain NLL",
                      settings=RETAIN_TERM + (B1, B2, FORGET_WEIGHT), records_defaults=True,
                      defaults={"forget_weight": 0.1}, source=SOURCE)
