"""What an objective is: a loss over (forget batch, paired retain batch), and what it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from bench.spec import Hyperparams

if TYPE_CHECKING:  # torch loads when a loss runs, not when the registry is read
    import torch


@dataclass
class LossInputs:
    """One micro-batch. `retain` is the forget batch's paired retain batch (None if unused);
    `reference` is the frozen model as it was before unlearning (None unless needed)."""

    model: torch.nn.Module
    forget: dict
    retain: dict | None
    reference: torch.nn.Module | None
    hp: Hyperparams


@dataclass(frozen=True)
class Objective:
    name: str
    loss: Callable[[LossInputs], tuple[torch.Tensor, dict[str, float]]]  # (loss, parts for logging)
    needs_retain: bool
    needs_reference: bool
    summary: str
