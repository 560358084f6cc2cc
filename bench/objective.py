"""What an objective is, as the training loop sees it: a loss over (forget batch, paired retain batch), what
it needs, and the settings it reads. The objectives themselves are plug-ins (methods/, registered with
`methods.register`); the kernel names none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bench.settings import Setting
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
    needs_reference: bool  # the frozen model, whatever its settings
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
        """The frozen copy costs a model's memory: build it only when the objective or a setting it reads with
        these values needs it (Setting.wants_reference: e.g. retain_loss=kl)."""
        return self.needs_reference or any(
            s.wants_reference is not None and self.reads_hparam(s.name, hp) and s.wants_reference(getattr(hp, s.name))
            for s in self.settings)

    def reads_hparam(self, name: str, hp: Hyperparams) -> bool:
        """Whether a run of this objective with settings `hp` reads hyperparameter `name` (Setting.read_when:
        some are read only under a condition on the others)."""
        if name in LOOP:
            return True
        setting = next((s for s in self.settings if s.name == name), None)
        return setting is not None and (setting.read_when is None or setting.read_when(hp))
