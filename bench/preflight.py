"""What a grid of runs will need, checked from its settings and its models' configs before any run starts:
when one of them is wrong, no run is started and no reference or base model built or trained (a mini
suite's generated lm-eval task files, a content-keyed cache every run of it writes anyway, may be written).

Checks that need only a model's structure (LoRA / FILA ranks, RMU's layer) read it from the config, built
on the meta device (shapes, no weights); the lm-eval tasks are resolved with their data, as the final
stage will load them. The runs keep their own checks (a run started by a launcher or a test goes through
them), so these are the same rules, applied earlier: methods/lora.py, methods/rmu.py, bench/lm_eval_bridge.py.
"""

from __future__ import annotations

from typing import Sequence

from bench.errors import BenchError
from bench.lm_eval_bridge import check_tasks as resolve
from bench.robustness import parse
from bench.spec import RunSpec
from methods import ADAPTERS, OBJECTIVES
from methods.lora import check_rank, target_linear_names
from suites import SUITES
from suites.base import LATE_OPTIONS


def check_device(device: str) -> None:
    """`device` exists on this machine: a CUDA index below the device count, MPS where it is built."""
    # torch loads when this runs, not when the CLI imports bench.preflight
    import torch

    kind = torch.device(device)
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BenchError(f"bad --device {device}: this machine's torch sees no CUDA device (valid: cpu)")
        if kind.index is not None and kind.index >= count:
            raise BenchError(f"bad --device {device}: this machine has {count} CUDA device(s) (valid: cpu, cuda, "
                             f"cuda:0..cuda:{count - 1})")
    if kind.type == "mps" and not torch.backends.mps.is_available():
        raise BenchError(f"bad --device {device}: MPS is not available on this machine (valid: cpu)")


def check_structure(specs: Sequence[RunSpec], ctx) -> None:
    """LoRA / FILA ranks against the smallest target layer, and each objective's own structural check
    (`Objective.check`: RMU's steered layer against the blocks and, with rmu_params=wmdp, an MLP output
    projection to train), for every (suite, model) of `specs` whose config can be read here (one that cannot
    is left to the run, whose loading says what to pass)."""
    models: dict = {}
    for spec in specs:
        adapted, check = ADAPTERS[spec.adapter].uses_rank, OBJECTIVES[spec.objective].check
        if not adapted and check is None:
            continue
        key = (spec.suite, spec.model)
        if key not in models:
            models[key] = SUITES[spec.suite].model_structure(spec, ctx)
        model = models[key]
        if model is None:
            continue
        if adapted:
            check_rank(model, target_linear_names(model), spec.rank)
        if check is not None:
            check(model, spec.hparams)


def check_tasks(specs: Sequence[RunSpec], ctx) -> None:
    """Every lm-eval task a run of `specs` will score, the suite's (`lm_eval_tasks`) and the extra ones
    (`--lm-eval-tasks`), resolved with its data where the run will look for it."""
    seen = set()
    for spec in specs:
        suite = SUITES[spec.suite]
        own = tuple(t for t in str(spec.option("lm_eval_tasks", "")).split(",") if t)
        extra = tuple(t for t in str(spec.option("lm_eval_extra", "")).split(",") if t)
        if own and (spec.suite, own) not in seen:
            seen.add((spec.suite, own))
            resolve(own, *suite.lm_eval_tasks_dir(ctx))
        if extra and extra not in seen:
            seen.add(extra)
            resolve(extra, ctx.lm_eval_include)


def check_stages(specs: Sequence[RunSpec]) -> None:
    """The libraries the robustness stages of `specs` import: optimum-quanto for `quant`."""
    if any("quant" in parse(s.option("robustness", LATE_OPTIONS["robustness"])) for s in specs):
        try:
            import optimum.quanto  # noqa: F401
        except ImportError:
            raise BenchError("the quant robustness stage needs optimum-quanto (pip install optimum-quanto); or leave "
                             "it out with --option robustness=relearn,paraphrase") from None


def check_specs(specs: Sequence[RunSpec], ctx, structure: bool = True) -> None:
    """What the specs alone decide, without a weight, a task's data or a device: the structural checks on
    the models' configs (meta device; `structure=False` leaves them out) and the robustness stages'
    libraries. `show-config` runs these, `run` these and the rest (check_grid): a grid show-config accepts
    fails at `run` only for its device or data."""
    if structure:
        check_structure(specs, ctx)
    check_stages(specs)


def check_grid(specs: Sequence[RunSpec], ctx, device: bool = True) -> None:
    """All of the above for a grid about to run in this process (`device=False`: the runs go to other
    machines, whose devices this one cannot see)."""
    if device:
        check_device(ctx.device)
    check_specs(specs, ctx)
    check_tasks(specs, ctx)
