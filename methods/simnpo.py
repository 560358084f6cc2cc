"""SimNPO (Fan et al. 2024, "Simplicity prevails: rethinking negative preference optimization for LLM
unlearning"): NPO without a reference model, on the length-normalised NLL.

    gamma * -(2/beta) * mean_batch log sigmoid(beta * (NLL_theta(y|x) / |y| - delta)) + lambda * retain

|y| = the answer's counted tokens. Defaults (the open harness's TOFU settings): beta 4.5, delta 0,
gamma (forget_weight) 0.125, lambda 1 with retain NLL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.settings import finite
from methods.objective import BETA, FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch

DELTA = finite("delta", 0.0, "SimNPO's margin delta on the length-normalised NLL", source="Fan et al. 2024")


def simnpo_term(mean_nll: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """-(2/beta) * mean log sigmoid(beta * (mean_nll - delta)) over the batch's sequences."""
    import torch.nn.functional as F

    return -(2.0 / beta) * F.logsigmoid(beta * (mean_nll - delta)).mean()


def loss(x: LossInputs):
    """gamma * SimNPO term on the length-normalised forget NLL + retain term; parts: `simnpo` and the
    retain term's."""
    from methods.losses import logits_of, retain_term, sequence_mean_nll

    nll = sequence_mean_nll(logits_of(x.model, x.forget), x.forget["labels"])
    forget = simnpo_term(nll, x.hp.beta, x.hp.delta)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"simnpo": forget.item(), **parts}


OBJECTIVE = Objective("simnpo", loss, needs_retain=True, needs_reference=False,
                      summary="reference-free NPO on length-normalised NLL + retain NLL",
                      settings=RETAIN_TERM + (BETA, DELTA, FORGET_WEIGHT), records_defaults=True,
                      defaults={"beta": 4.5, "delta": 0.0, "forget_weight": 0.125},
                      source="Fan et al. 2024, Simplicity prevails: rethinking negative preference optimization")
