"""Expand a command line into the grid of RunSpecs it means."""

from __future__ import annotations

from typing import Any, Sequence

from bench.errors import BenchError
from bench.spec import RunSpec
from methods import ADAPTERS, OBJECTIVES, expand_methods
from suites import SUITES


def parse_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_ints(text: str | None, kind: str) -> list[int]:
    out = []
    for item in parse_list(text):
        try:
            out.append(int(item))
        except ValueError:
            raise BenchError(f"bad {kind} '{item}' (expected integers separated by commas, e.g. 4,8,16,32)") from None
    return out


def parse_assignments(pairs: Sequence[str] | None, kind: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise BenchError(f"bad {kind} '{pair}' (expected NAME=VALUE)")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def expand(suite_name: str, methods: str = "all", models: str | None = None, splits: str | None = None,
           ranks: str | None = None, seeds: str | None = None, hparams: dict[str, Any] | None = None,
           options: dict[str, Any] | None = None) -> list[RunSpec]:
    """models x splits x methods x ranks x seeds, in that nesting order."""
    suite = SUITES[suite_name]
    model_list = parse_list(models) or list(suite.models)
    split_list = parse_list(splits) or list(suite.default_splits)
    split_list = list(suite.splits) if split_list == ["all"] else [suite.check_split(s) for s in split_list]
    rank_list = parse_ints(ranks, "rank") or list(suite.default_ranks)
    for r in rank_list:
        if r <= 0:
            raise BenchError(f"bad LoRA rank {r} (expected a positive integer such as 4, 8, 16 or 32)")
    seed_list = parse_ints(seeds, "seed") or list(suite.default_seeds)
    method_list = expand_methods(methods, suite.default_adapters)
    opts = suite.check_options(options or {})
    if any(OBJECTIVES[o].needs_alternate for o, _ in method_list):  # a bad refusal file fails before any run
        from methods import refusals

        refusals.load(dict(opts).get("idk_answers", ""))
    specs = []
    for model in model_list:
        suite.check_model(model)
        for split in split_list:
            for objective, adapter in method_list:
                hp = suite.objective_hparams(model, objective).replace(**(hparams or {}))
                for rank in (rank_list if ADAPTERS[adapter].uses_rank else [0]):
                    for seed in seed_list:
                        specs.append(RunSpec(suite.name, model, split, objective, adapter, rank, seed, hp, opts))
    return specs
