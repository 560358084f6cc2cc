"""Negative preference optimisation (Zhang et al. 2024), with a retain NLL term:
-(2/beta) * mean_batch log sigmoid(beta * (S_theta - S_ref)) + lambda * NLL(retain),
S = summed token NLL of each forget sequence. As beta -> 0 the forget term's gradient tends to
that of -mean_batch S_theta (gradient ascent on sequence-summed NLL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.settings import positive
from methods.objective import RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch

NPO_BETA = positive("npo_beta", 0.1, "NPO's beta: the sharpness of its log-sigmoid", late=False,
                    source="Zhang et al. 2024 (their TOFU setting)")


def npo_term(s_theta: torch.Tensor, s_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """-(2/beta) * mean log sigmoid(beta * (S_theta - S_ref)); S = summed answer NLL per sequence [B].
    Zhang et al. 2024."""
    import torch.nn.functional as F

    return -(2.0 / beta) * F.logsigmoid(beta * (s_theta - s_ref)).mean()


def loss(x: LossInputs):
    """NPO term on the forget batch against the frozen model + lambda * retain term; parts: `npo` and the
    retain term's."""
    import torch

    from methods.losses import logits_of, retain_term, sequence_nll

    labels = x.forget["labels"]
    s_theta = sequence_nll(logits_of(x.model, x.forget), labels)
    with torch.no_grad():
        s_ref = sequence_nll(logits_of(x.reference, x.forget), labels)
    forget = npo_term(s_theta, s_ref, x.hp.npo_beta)
    retain, parts = retain_term(x)
    return forget + retain, {"npo": forget.item(), **parts}


OBJECTIVE = Objective("npo", loss, needs_retain=True, needs_reference=True,
                      summary="negative preference optimisation + retain NLL",
                      source="Zhang et al. 2024, Negative preference optimization",
                      settings=RETAIN_TERM + (NPO_BETA,))
