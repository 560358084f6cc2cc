"""What an objective is: a loss over (forget batch, paired retain batch), what it needs, and the settings it
reads. The settings several objectives share are declared here; each objective's own ones in its file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bench.settings import Setting, choice, non_negative, positive
from bench.spec import LOOP

if TYPE_CHECKING:  # torch loads when a loss runs, not when the registry is read
    import torch

    from bench.spec import Hyperparams


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
    """An unlearning objective. `loss(LossInputs)` returns (a scalar tensor to minimise, its parts as floats
    for the log). `settings` are every setting its loss and `prepare` read beyond the loop's (LOOP);
    tests/test_settings.py checks them by tracing attribute reads: a --set of anything else would change
    the run id and nothing else."""

    name: str
    loss: Callable[[LossInputs], tuple[torch.Tensor, dict[str, float]]]  # (loss, parts for logging)
    needs_retain: bool
    needs_reference: bool  # the frozen model, whatever the retain regulariser
    summary: str
    settings: tuple[Setting, ...] = ()
    # its specs record its late settings even at their defaults: the objectives added with those settings
    records_defaults: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)  # its own hyperparameter defaults over the suite's
    needs_alternate: bool = False  # reads LossInputs.alternate (IdkDPO)
    prepare: Callable[[torch.nn.Module, Hyperparams], None] | None = None  # after the adapter: e.g. RMU's parameter choice
    # what `prepare` will need, checked on the model's structure before any run starts (bench/preflight.py)
    check: Callable[[torch.nn.Module, Hyperparams], None] | None = None
    source: str = ""  # the paper it comes from

    @property
    def uses(self) -> tuple[str, ...]:
        """The names of the settings it reads beyond the loop's."""
        return tuple(s.name for s in self.settings)

    @property
    def reads(self) -> tuple[str, ...]:
        """The late settings its specs always record (bench.settings.RECORDED)."""
        return tuple(s.name for s in self.settings if s.late) if self.records_defaults else ()

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


# Settings several objectives read (an objective's own ones live in its file).
RETAIN_WEIGHT = non_negative("retain_weight", 1.0, "lambda: weight of the retain term (GD, KL, NPO, IHL, ...)",
                             late=False)
RETAIN_LOSS = choice("retain_loss", "nll", ("nll", "kl"),
                     "the retain regulariser of every objective with one: nll, or kl to the frozen model")
FORGET_WEIGHT = non_negative("forget_weight", 1.0, "gamma: weight of the forget term")
BETA = positive("beta", 1.0, "the objective's temperature / sharpness (SimNPO, IdkDPO, UNDIAL, WGA)")

RETAIN_TERM = (RETAIN_WEIGHT, RETAIN_LOSS)  # what losses.retain_term reads
