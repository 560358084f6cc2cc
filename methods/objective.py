"""What an objective is: a loss over (forget batch, paired retain batch), and what it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bench.spec import Hyperparams

if TYPE_CHECKING:  # torch loads when a loss runs, not when the registry is read
    import torch


@dataclass
class LossInputs:
    """One micro-batch. `retain` is the forget batch's paired retain batch (None if unused);
    `reference` is the frozen model as it was before unlearning (None unless needed); `alternate` is
    the forget batch with each answer replaced by the objective's alternative (IdkDPO's refusals)."""

    model: torch.nn.Module
    forget: dict
    retain: dict | None
    reference: torch.nn.Module | None
    hp: Hyperparams
    alternate: dict | None = None
    seed: int = 0  # the run's seed, for objectives with fixed random draws (RMU's direction)


@dataclass(frozen=True)
class Objective:
    name: str
    loss: Callable[[LossInputs], tuple[torch.Tensor, dict[str, float]]]  # (loss, parts for logging)
    needs_retain: bool
    needs_reference: bool  # the frozen model, whatever the retain regulariser
    summary: str
    reads: tuple[str, ...] = ()  # the later-added hyperparameters it reads; its specs always record them
    defaults: dict[str, Any] = field(default_factory=dict)  # its own hyperparameter defaults over the suite's
    needs_alternate: bool = False  # reads LossInputs.alternate (IdkDPO)
    prepare: Callable[[torch.nn.Module, Hyperparams], None] | None = None  # after the adapter: e.g. RMU's parameter choice
    source: str = ""  # the paper it comes from
    # every hyperparameter its loss and `prepare` read beyond LOOP (tests/test_settings.py checks it by
    # tracing attribute reads): a --set of anything else would change the run id and nothing else
    uses: tuple[str, ...] = ()

    def wants_reference(self, hp: Hyperparams) -> bool:
        """The frozen copy costs a model's memory: build it only when a term reads it."""
        return self.needs_reference or (self.needs_retain and hp.retain_weight > 0 and hp.retain_loss == "kl")

    def reads_hparam(self, name: str, hp: Hyperparams) -> bool:
        """Whether a run of this objective with settings `hp` reads hyperparameter `name`."""
        if name in LOOP:
            return True
        if name not in self.uses:
            return False
        # losses.retain_term skips the whole term (and its choice of loss) at weight 0
        return not (name == "retain_loss" and hp.retain_weight == 0)


RETAIN = ("retain_loss",)  # what every objective with a retain regulariser reads
RETAIN_TERM = ("retain_weight", "retain_loss")  # what losses.retain_term reads
# what the loop (optimiser, schedule, batching, clipping) and model loading read for every objective
LOOP = ("lr", "epochs", "batch_size", "effective_batch", "warmup_epochs", "schedule", "weight_decay",
        "max_grad_norm", "dtype")
