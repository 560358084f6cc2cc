"""RunSpec: everything that determines one unlearning run, and the stable id that names it.

The id is a hash of the spec's canonical JSON (sorted keys, no Python-specific reprs), so the same
spec maps to the same results directory in every process, on every Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from bench.errors import unknown
from bench.settings import (PLUGIN_PACKAGES, SETTINGS, choice, count, declared, load_plugins, non_negative, positive,
                            recorded_by, register)


# The training loop's settings: every objective's run reads them (bench/loop.py, model loading).
LOOP_SETTINGS = tuple(register(s) for s in (
    positive("lr", 1e-4, "peak learning rate (after warm-up)", late=False),
    count("epochs", 5, "passes over the forget set", late=False),
    count("batch_size", 8, "examples per forward pass (micro-batch)", late=False),
    count("effective_batch", 32, "examples per optimiser step; accumulation = effective / micro", late=False),
    non_negative("warmup_epochs", 1.0, "linear warm-up, then the schedule", late=False),
    choice("schedule", "linear", ("linear", "constant"),
           "linear: decay to 0 at the last epoch; constant: stay at lr (Jang et al.)", late=False),
    non_negative("weight_decay", 0.01, "AdamW's decoupled weight decay", late=False),
    non_negative("max_grad_norm", 0.0, "gradient clipping norm; 0 = no clipping", late=False),
    choice("dtype", "fp32", ("fp32", "bf16"), "the model's compute dtype", late=False),
))
LOOP = tuple(s.name for s in LOOP_SETTINGS)

# The settings every spec has recorded since the first results, in the order specs list them (show-config
# prints them so): part of the id scheme. Two are objectives' settings (methods/objective.py, methods/npo.py);
# every other setting follows in the order the plug-ins register it.
FIRST_RECORDED = ("lr", "epochs", "batch_size", "effective_batch", "warmup_epochs", "schedule", "weight_decay",
                  "retain_weight", "npo_beta", "max_grad_norm", "dtype")


def setting_names() -> list[str]:
    """Every declared setting, in spec order. RuntimeError if a setting every spec records is declared by no
    loaded plug-in (its runs' ids could not be computed)."""
    load_plugins()
    missing = next((n for n in FIRST_RECORDED if n not in SETTINGS), None)
    if missing is not None:
        raise RuntimeError(f"setting {missing!r}, which every run spec records, is declared by no plug-in "
                           f"(bench.settings.PLUGIN_PACKAGES: {PLUGIN_PACKAGES})")
    return [*FIRST_RECORDED, *(n for n in SETTINGS if n not in FIRST_RECORDED)]


class Hyperparams:
    """Training settings of one unlearning run: one value per declared setting (bench/settings.py), read as
    attributes (`hp.lr`, `hp.rmu_c`). The loop's are declared above, each objective's in its own file.
    Suites provide per-model defaults. Immutable, hashable, compared by value.

    Hyperparams(**values): unknown names and values outside a setting's range raise a one-line BenchError."""

    def __init__(self, **values: Any):
        names = setting_names()
        for name in values:
            if declared(name) is None:
                raise unknown("hyperparameter", name, names)
        for name in names:  # plain attributes: the training loop reads them at every step
            value = values.get(name, SETTINGS[name].default)
            SETTINGS[name].check(value)
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # only for names that are not attributes
        if name.startswith("_"):  # never a setting (copy and pickle probe such names)
            raise AttributeError(name)
        setting = declared(name)  # registered after this object was built: it has its default
        if setting is None:
            raise AttributeError(f"Hyperparams has no setting {name!r}")
        return setting.default

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")

    def items(self) -> list[tuple[str, Any]]:
        """(name, value) of every declared setting, in spec order."""
        return [(name, getattr(self, name)) for name in setting_names()]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hyperparams) and self.items() == other.items()

    def __hash__(self) -> int:
        return hash(tuple(self.items()))

    def __repr__(self) -> str:
        return f"Hyperparams({', '.join(f'{n}={v!r}' for n, v in self.items())})"

    def __reduce__(self):  # pickled by value (worker processes), rebuilt and checked on load
        return _rebuild, (tuple(self.items()),)

    def record(self, reads: tuple[str, ...] = ()) -> dict:
        """The settings as a spec stores them: late ones (bench.settings.Setting.late) only when in `reads`
        or not at their default."""
        return {name: value for name, value in self.items()
                if not SETTINGS[name].late or name in reads or value != SETTINGS[name].default}

    def replace(self, **changes: Any) -> "Hyperparams":
        """Return a copy with `changes` applied, each converted to its setting's declared kind (text from
        `--set` included: bench.settings.Setting.convert). An unknown name raises BenchError with a did-you-mean;
        a value that is not of the kind, or out of range, a one-line BenchError saying what is valid."""
        typed = {}
        for name, value in changes.items():
            setting = declared(name)
            if setting is None:
                raise unknown("hyperparameter", name, setting_names())
            typed[name] = setting.convert(value)
        return Hyperparams(**{**dict(self.items()), **typed})


def fit_micro_batch(hp: Hyperparams, given: dict[str, Any], fisher: bool = False) -> Hyperparams:
    """`hp` with its micro-batch no larger than an optimiser step (bench/loop.py cuts micro-batches out of a step, so
    batch_size > effective_batch trains as batch_size = effective_batch does): lowered to effective_batch when that
    comes from a smaller `--set effective_batch`, a one-line BenchError when `given` (the `--set` values) names the
    larger batch_size itself. `fisher`: the run's FILA Fisher pass batches by batch_size too, so it stays as given."""
    from bench.errors import BenchError

    if hp.batch_size <= hp.effective_batch or fisher:
        return hp
    if "batch_size" in given:
        raise BenchError(f"bad --set batch_size={given['batch_size']}: larger than effective_batch={hp.effective_batch}, the "
                         f"examples of one optimiser step, so it would train as {hp.effective_batch} does (expected "
                         f"batch_size <= {hp.effective_batch}, or a larger effective_batch; FILA's Fisher pass reads it)")
    return hp.replace(batch_size=hp.effective_batch)


def _rebuild(items: tuple[tuple[str, Any], ...]) -> Hyperparams:
    return Hyperparams(**dict(items))


@dataclass(frozen=True)
class RunSpec:
    """One cell of a grid. `rank` is 0 for full fine-tuning. `options` holds suite settings
    that change results (item caps, generation length, reference choice) as sorted pairs.

    `previous`: for a request of a sequence (a suite's `requests` axis, suites/base.py `Axis`), the run whose final
    model this one starts from; None (every other run) for the suite's start model. The previous spec is part of
    this one's id, so a change anywhere earlier in the chain names another run."""

    suite: str
    model: str
    split: str
    objective: str
    adapter: str
    rank: int
    seed: int
    hparams: Hyperparams = field(default_factory=Hyperparams)
    options: tuple[tuple[str, Any], ...] = ()
    previous: "RunSpec | None" = None

    @property
    def chain(self) -> tuple["RunSpec", ...]:
        """The requests that lead to this run, the first first, this one last ((self,) without `previous`)."""
        return (*self.previous.chain, self) if self.previous is not None else (self,)

    @property
    def request(self) -> int:
        """This run's position in its sequence of requests: 1 for a run from the suite's start model."""
        return len(self.chain)

    @property
    def method(self) -> str:
        """The name users type: `ihl+fila`, `gd+lora`, `npo` (full)."""
        return self.objective if self.adapter == "full" else f"{self.objective}+{self.adapter}"

    @property
    def method_label(self) -> str:
        """The method as shown in tables: the objective name, with `-r<rank>` for a LoRA-style adapter."""
        return self.method if self.adapter == "full" else f"{self.method}-r{self.rank}"

    def option(self, name: str, default: Any = None) -> Any:
        """The suite option `name` of this run, or `default` when the spec does not set it."""
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict:
        """The spec as a flat JSON-ready dict: its fields, the hyperparameters the objective records, the options."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "previous"}
        d["hparams"] = self.hparams.record(recorded_by(self.objective))
        d["options"] = dict(self.options)
        if self.previous is not None:  # absent otherwise: the ids of runs from the start model stay what they were
            d["previous"] = self.previous.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        """Rebuild a spec from `to_dict` output (e.g. a run's spec.json)."""
        d = dict(d)
        d["hparams"] = Hyperparams(**d["hparams"])
        d["options"] = tuple(sorted(d.get("options", {}).items()))
        if d.get("previous") is not None:
            d["previous"] = cls.from_dict(d["previous"])
        return cls(**d)

    def canonical_json(self) -> str:
        """`to_dict` as compact JSON with sorted keys: the text the run id is hashed from. Raises ValueError on NaN."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def hash(self) -> str:
        """SHA-256 hex digest of `canonical_json`; its first 10 characters end the run id."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Readable prefix for humans, hash suffix for uniqueness: `forget10__ihl+fila-r8__phi-1.5__s0__3fa2c1d09b`;
        a request k >= 2 of a sequence says so after its split (`news-sust3@3__npo__...`)."""
        model = run_id_model(self.model)
        split = self.split if self.previous is None else f"{self.split}@{self.request}"
        return f"{split}__{self.method_label}__{model}__s{self.seed}__{self.hash[:10]}"


def run_id_model(model: str) -> str:
    """How a run id names `model`: the last part of its hub id or path, characters outside [A-Za-z0-9._-] as `-`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1])


def parse_run_id(run_id: str) -> dict | None:
    """What a run id (`RunSpec.run_id`) says of its run: {split, method, model (as `run_id_model` writes it),
    seed, hash (the first 10 hex digits of its spec's)}; None for a name of another shape. A run whose record cannot
    be read is known by its directory name."""
    parts = run_id.split("__")
    if len(parts) < 5 or not re.fullmatch(r"s\d{1,10}", parts[-2]) or not re.fullmatch(r"[0-9a-f]{10}", parts[-1]) \
            or not all(parts[:2]):
        return None
    return {"split": parts[0], "method": parts[1], "model": "__".join(parts[2:-2]), "seed": int(parts[-2][1:]),
            "hash": parts[-1]}


def kept_models(specs: Sequence[RunSpec]) -> set[str]:
    """The run ids of `specs` whose final model a later request of the grid starts from (`run_one`'s keep_model)."""
    return {s.previous.run_id for s in specs if s.previous is not None}


def in_request_order(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """`specs` with every request after the earlier requests of its sequence that the grid holds (a stable order:
    a grid from `bench.grid.expand` is in it already)."""
    position = {s.run_id: i for i, s in enumerate(specs)}
    placed: dict[str, None] = {}

    def place(spec: RunSpec) -> None:
        if spec.previous is not None and spec.previous.run_id in position:
            place(specs[position[spec.previous.run_id]])
        placed.setdefault(spec.run_id)

    for spec in specs:
        place(spec)
    return [specs[position[run_id]] for run_id in placed]
