"""Unlearning methods = an objective (what to minimise) x an adapter (what trains).

Users type `ihl+fila`, `gd+lora`, `npo` (full fine-tuning when no adapter is named)."""

from __future__ import annotations

from bench import fingerprint, settings
from bench.errors import BenchError
from bench.registry import Registry
from methods import ceu, fila, full, ga, gd, idkdpo, ihl, kl, lora, npo, rmu, satimp, simnpo, undial, wga
from methods.adapter import Adapter, AdapterInputs
from methods.objective import BETA, FORGET_WEIGHT, LOOP, RETAIN_LOSS, RETAIN_WEIGHT, LossInputs, Objective

class ObjectiveRegistry(Registry[Objective]):
    """The objectives by name. Registering one also declares its settings (Objective.settings) to `--set` and
    to run specs (bench/settings.py), so `OBJECTIVES.register(name, objective)` is the one line a new
    objective needs, in this package or in a plug-in outside it. A default for a setting the objective does
    not read raises ValueError: it would change its run ids and nothing it computes."""

    def register(self, name: str, item: Objective) -> Objective:
        unread = sorted(set(item.defaults) - set(item.uses) - set(LOOP))
        if unread:
            raise ValueError(f"objective '{name}' has a default for {unread[0]}, a setting it does not read "
                             f"(it reads {', '.join(item.uses) or 'only the loop settings'})")
        if name in self:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        settings.register_objective(name, item.settings, item.records_defaults)
        return super().register(name, item)


OBJECTIVES = ObjectiveRegistry("objective")
ADAPTERS: Registry[Adapter] = Registry("adapter")


# what trains any method: the loop, its batches and losses' shared parts, the adapters' base, and the merge of the
# adapters into the copy each epoch evaluates (bench.checkpoint)
TRAINING_MODULES = ("bench.loop", "bench.data", "bench.truncation", "bench.objective", "bench.checkpoint",
                    "methods.losses", "methods.objective", "methods.adapter")


def _module_of(function) -> str:
    """The module that defines `function`: a functools.partial's function's, a callable object's class's."""
    function = getattr(function, "func", function)
    return getattr(function, "__module__", None) or type(function).__module__


def training_code(objective: str, adapter: str) -> str:
    """The fingerprint of the code that trains method `objective`+`adapter` (bench.fingerprint.code_fingerprint, read
    without importing anything): TRAINING_MODULES and the modules of its loss, its `prepare` and its adapter, with
    every module of the project or a plug-in they import (bench.fingerprint.code_closure). A run records it among its
    inputs (`code/training`): an edited objective, a plug-in's and its helpers included, recomputes its finished runs
    instead of reusing the old code's numbers."""
    item, wrapper = OBJECTIVES[objective], ADAPTERS[adapter]
    own = [_module_of(f) for f in (item.loss, item.prepare, wrapper.apply) if f is not None]
    extra = ["methods.refusals"] if item.needs_alternate else []
    return fingerprint.code_fingerprint(*fingerprint.code_closure(*dict.fromkeys([*TRAINING_MODULES, *own, *extra])))


def register(objective: Objective) -> Objective:
    """`OBJECTIVES.register(objective.name, objective)`."""
    return OBJECTIVES.register(objective.name, objective)


# The objectives' settings in the order run specs list them (show-config prints them so); an objective's
# registration adds any it declares that is not here.
for _setting in (RETAIN_WEIGHT, npo.NPO_BETA, RETAIN_LOSS, FORGET_WEIGHT, BETA, simnpo.DELTA, satimp.B1, satimp.B2,
                 rmu.C, rmu.LAYER, rmu.PARAMS):
    settings.register(_setting)
for _module in (ga, gd, kl, npo, ihl, simnpo, idkdpo, rmu, undial, wga, satimp, ceu):
    register(_module.OBJECTIVE)
for _module in (full, lora, fila):
    ADAPTERS.register(_module.ADAPTER.name, _module.ADAPTER)

# The paper's grid: each of GA, GD and IHL with full fine-tuning, LoRA and FILA.
PAPER_OBJECTIVES = ("ga", "gd", "ihl")
PAPER_ADAPTERS = ("full", "lora", "fila")
# What recent comparisons (the open harness's TOFU / MUSE tables) put side by side, with full fine-tuning.
BASELINE_OBJECTIVES = ("ga", "gd", "npo", "simnpo", "idkdpo", "rmu", "undial", "wga", "satimp", "ceu")


def parse_method(text: str) -> tuple[str, str]:
    """`ihl+fila` -> ('ihl', 'fila'); `npo` -> ('npo', 'full'). Unknown names raise with a suggestion."""
    parts = text.strip().lower().split("+")
    if len(parts) > 2 or not all(parts):
        raise BenchError(f"bad method '{text}' (expected OBJECTIVE or OBJECTIVE+ADAPTER, e.g. ihl+fila)")
    objective, adapter = parts[0], parts[1] if len(parts) == 2 else "full"
    OBJECTIVES[objective], ADAPTERS[adapter]  # raise with did-you-mean
    return objective, adapter


def expand_methods(text: str, default_adapters: tuple[str, ...]) -> list[tuple[str, str]]:
    """`all` = every objective with the suite's default adapters; `paper` = the paper's 3x3 grid;
    `baselines` = the literature's objectives with full fine-tuning; otherwise a comma-separated list. Entries
    are united in order, each method once (`all,ga`: every objective with the default adapters, then GA with full
    fine-tuning, which `all` leaves out where full is no default adapter)."""
    out: list[tuple[str, str]] = []
    items = [t.strip() for t in text.split(",")]
    if len(items) > 1 and not all(items):  # "ga+lora," is a typo, not a one-method grid
        raise BenchError(f"bad --methods {text!r}: an empty entry between commas")
    for item in items:
        if not item:
            continue
        if item == "all":
            out += [(o, a) for o in OBJECTIVES.names() for a in default_adapters]
        elif item == "paper":
            out += [(o, a) for o in PAPER_OBJECTIVES for a in PAPER_ADAPTERS]
        elif item == "baselines":
            out += [(o, "full") for o in BASELINE_OBJECTIVES]
        else:
            out.append(parse_method(item))
    if not out:
        raise BenchError("no method given (e.g. --methods all, --methods paper, --methods baselines, "
                         "--methods ihl+fila,ga+lora)")
    return list(dict.fromkeys(out))

__all__ = ["OBJECTIVES", "ADAPTERS", "register", "Adapter", "AdapterInputs", "LossInputs", "Objective", "parse_method",
           "expand_methods", "PAPER_OBJECTIVES", "PAPER_ADAPTERS", "BASELINE_OBJECTIVES"]
