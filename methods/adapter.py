"""What an adapter is: a way to choose (and initialise) the trainable parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch loads when an adapter is applied, not when the registry is read
    import torch


@dataclass
class AdapterInputs:
    """`fisher_row_weights` is called only by adapters that need it (FILA); it returns the
    per-layer row weights w_i = sqrt(sum_j F_f/(F_r+eps)), computed once and cached by the caller."""

    rank: int
    fisher_row_weights: Callable[[torch.nn.Module, list[str]], dict[str, torch.Tensor]] | None = None


@dataclass(frozen=True)
class Adapter:
    """An adapter: `apply(model, AdapterInputs)` makes the chosen parameters trainable (wrapping the model
    if needed) and returns the model to train; `uses_rank`: it reads `--ranks`."""
    name: str
    apply: Callable[[torch.nn.Module, AdapterInputs], torch.nn.Module]
    uses_rank: bool
    summary: str
