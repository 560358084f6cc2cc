"""Fine-tuning that produces reference models (TOFU's target and retain-only models): the same
training loop as unlearning, with the plain NLL objective."""

from __future__ import annotations

from typing import Callable, Sequence

from bench.loop import train
from bench.objective import LossInputs, Objective
from bench.spec import Hyperparams
from methods.losses import nll_of


def _sft_loss(x: LossInputs):
    loss = nll_of(x.model, x.forget)
    return loss, {"nll": loss.item()}


SFT = Objective("sft", _sft_loss, needs_retain=False, needs_reference=False, summary="supervised fine-tuning")


def finetune(model, examples: Sequence[dict], hp: Hyperparams, *, pad_id: int, seed: int,
             progress: Callable[[str], None] | None = None):
    """Minimise the answer NLL of `examples` with `hp`'s schedule; returns the loop state."""
    return train(model, SFT, examples, [], hp, pad_id=pad_id, seed=seed, progress=progress)
