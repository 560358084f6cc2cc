"""IdkDPO (Maini et al. 2024, TOFU; Rafailov et al. 2023, DPO): prefer a refusal ("I don't know"
style, `alternate`) to the true answer, relative to the frozen model.

    r(a) = -(S_theta(a) - S_ref(a)),  S = summed answer NLL
    gamma * -(2/beta) * mean_batch log sigmoid(beta * (r(refusal) - r(answer))) + lambda * retain

Defaults: beta 0.1, gamma 1, lambda 1 with retain NLL (the open harness's). The refusals are
methods/idk_answers.txt (see methods/refusals.py) unless `--option idk_answers=FILE` names another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from methods.objective import BETA, FORGET_WEIGHT, RETAIN_TERM, LossInputs, Objective

if TYPE_CHECKING:
    import torch


def dpo_term(s_win: torch.Tensor, s_win_ref: torch.Tensor, s_lose: torch.Tensor, s_lose_ref: torch.Tensor,
             beta: float) -> torch.Tensor:
    """-(2/beta) mean log sigmoid(beta * (log-ratio of the preferred - log-ratio of the rejected)); S = summed NLL."""
    import torch.nn.functional as F

    margin = -(s_win - s_win_ref) + (s_lose - s_lose_ref)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def loss(x: LossInputs):
    """gamma * DPO term preferring the refusal (`x.alternate`) over the forget answer, relative to the
    frozen model, + retain term (module docstring); parts: `dpo` and the retain term's."""
    import torch

    from methods.losses import logits_of, retain_term, sequence_nll

    win, lose = x.alternate, x.forget
    s_win = sequence_nll(logits_of(x.model, win), win["labels"])
    s_lose = sequence_nll(logits_of(x.model, lose), lose["labels"])
    with torch.no_grad():
        s_win_ref = sequence_nll(logits_of(x.reference, win), win["labels"])
        s_lose_ref = sequence_nll(logits_of(x.reference, lose), lose["labels"])
    forget = dpo_term(s_win, s_win_ref, s_lose, s_lose_ref, x.hp.beta)
    retain, parts = retain_term(x)
    return x.hp.forget_weight * forget + retain, {"dpo": forget.item(), **parts}


OBJECTIVE = Objective("idkdpo", loss, needs_retain=True, needs_reference=True,
                      summary="DPO preferring a refusal over the forget answer + retain NLL",
                      settings=RETAIN_TERM + (BETA, FORGET_WEIGHT), records_defaults=True, defaults={"beta": 0.1},
                      needs_alternate=True, source="Maini et al. 2024, TOFU (IdkDPO); Rafailov et al. 2023, DPO")
