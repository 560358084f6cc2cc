"""RunSpec: everything that determines one unlearning run, and the stable id that names it.

The id is a hash of the spec's canonical JSON (sorted keys, no Python-specific reprs), so the same
spec maps to the same results directory in every process, on every Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError, unknown


@dataclass(frozen=True)
class Hyperparams:
    """Training settings of one unlearning run. Suites provide per-model defaults."""

    lr: float = 1e-4
    epochs: int = 5
    batch_size: int = 8  # examples per forward pass (micro-batch)
    effective_batch: int = 32  # examples per optimiser step; accumulation = effective / micro
    warmup_epochs: float = 1.0  # linear warm-up, then the schedule
    schedule: str = "linear"  # linear: decay to 0 at the last epoch; constant: stay at lr (Jang et al.)
    weight_decay: float = 0.01
    retain_weight: float = 1.0  # lambda of GD / KL / NPO / IHL
    npo_beta: float = 0.1
    max_grad_norm: float = 0.0  # 0 = no clipping
    dtype: str = "fp32"  # fp32 | bf16
    # Added with the second set of objectives (LATE): a spec records them only when its objective reads
    # them or they differ from the default, so runs made before they existed keep their ids.
    retain_loss: str = "nll"  # the retain regulariser of every objective with one: nll | kl (to the frozen model)
    forget_weight: float = 1.0  # gamma: weight of the forget term
    beta: float = 1.0  # the objective's temperature / sharpness (SimNPO, IdkDPO, UNDIAL, WGA)
    delta: float = 0.0  # SimNPO's margin on the length-normalised NLL
    satimp_b1: float = 5.0  # SatImp's token weight p^b1 (1-p)^b2
    satimp_b2: float = 1.0
    rmu_c: float = 2.0  # RMU's steering coefficient: forget activations are pushed to c * u
    rmu_layer: int = -1  # RMU's steered block; -1 = WMDP's block 7 of 32 at the same relative depth
    rmu_params: str = "wmdp"  # wmdp: train only MLP output projections of blocks l-2..l; all: what the adapter trains

    def __post_init__(self):
        positive, non_negative, count = "a number > 0", "a number >= 0", "an integer >= 1"
        checks = {  # name: (holds, what would be valid)
            "lr": (self.lr > 0, positive),
            "epochs": (self.epochs >= 1, count),
            "batch_size": (self.batch_size >= 1, count),
            "effective_batch": (self.effective_batch >= 1, count),
            "warmup_epochs": (self.warmup_epochs >= 0, non_negative),
            "weight_decay": (self.weight_decay >= 0, non_negative),
            "retain_weight": (self.retain_weight >= 0, non_negative),
            "npo_beta": (self.npo_beta > 0, positive),
            "max_grad_norm": (self.max_grad_norm >= 0, non_negative),
            "dtype": (self.dtype in ("fp32", "bf16"), "fp32 or bf16"),
            "schedule": (self.schedule in ("linear", "constant"), "linear or constant"),
            "retain_loss": (self.retain_loss in ("nll", "kl"), "nll or kl"),
            "forget_weight": (self.forget_weight >= 0, non_negative),
            "beta": (self.beta > 0, positive),
            "delta": (math.isfinite(self.delta), "a finite number"),
            "satimp_b1": (self.satimp_b1 >= 0, non_negative),
            "satimp_b2": (self.satimp_b2 >= 0, non_negative),
            "rmu_c": (self.rmu_c > 0, positive),
            "rmu_layer": (self.rmu_layer >= -1, "a block index, or -1 for the default depth"),
            "rmu_params": (self.rmu_params in ("wmdp", "all"), "wmdp or all"),
        }
        for name, (ok, valid) in checks.items():
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):  # inf passes "> 0" and breaks the spec's JSON
                ok, valid = False, valid if name == "delta" else f"a finite {valid.removeprefix('a ')}"
            if not ok:  # the number as typed (-1, not -1.0)
                shown = f"{value:g}" if isinstance(value, float) else repr(value)
                raise BenchError(f"bad hyperparameter {name}={shown} (expected {valid})")

    def record(self, reads: tuple[str, ...] = ()) -> dict:
        """The fields as a spec stores them: LATE fields only when in `reads` or not at their default."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in LATE or f.name in reads or getattr(self, f.name) != f.default}

    def replace(self, **changes: Any) -> "Hyperparams":
        """Return a copy with `changes` applied; values given as strings are converted."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        typed = {}
        for name, value in changes.items():
            if name not in fields:
                raise unknown("hyperparameter", name, fields)
            typed[name] = _convert(name, value, type(getattr(self, name)))
        return dataclasses.replace(self, **typed)


LATE = frozenset({"retain_loss", "forget_weight", "beta", "delta", "satimp_b1", "satimp_b2", "rmu_c", "rmu_layer",
                   "rmu_params"})


def _convert(name: str, value: Any, kind: type) -> Any:
    if not isinstance(value, str) or kind is str:
        return kind(value)
    try:
        return int(value) if kind is int else float(value)
    except ValueError:
        raise BenchError(f"bad hyperparameter {name}={value!r} (expected a {kind.__name__})") from None


@dataclass(frozen=True)
class RunSpec:
    """One cell of a grid. `rank` is 0 for full fine-tuning. `options` holds suite settings
    that change results (item caps, generation length, reference choice) as sorted pairs."""

    suite: str
    model: str
    split: str
    objective: str
    adapter: str
    rank: int
    seed: int
    hparams: Hyperparams = field(default_factory=Hyperparams)
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def method(self) -> str:
        """The name users type: `ihl+fila`, `gd+lora`, `npo` (full)."""
        return self.objective if self.adapter == "full" else f"{self.objective}+{self.adapter}"

    @property
    def method_label(self) -> str:
        return self.method if self.adapter == "full" else f"{self.method}-r{self.rank}"

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict:
        from methods import OBJECTIVES  # no torch: objective modules import it lazily

        d = dataclasses.asdict(self)
        reads = OBJECTIVES[self.objective].reads if self.objective in OBJECTIVES else ()
        d["hparams"] = self.hparams.record(reads)
        d["options"] = dict(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["hparams"] = Hyperparams(**d["hparams"])
        d["options"] = tuple(sorted(d.get("options", {}).items()))
        return cls(**d)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Readable prefix for humans, hash suffix for uniqueness: `forget10__ihl+fila-r8__phi-1.5__s0__3fa2c1d09b`."""
        model = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model.rstrip("/").split("/")[-1])
        return f"{self.split}__{self.method_label}__{model}__s{self.seed}__{self.hash[:10]}"
