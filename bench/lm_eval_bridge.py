"""lm-eval on the live in-memory model (HFLM around it, PEFT models included): no save and reload.

Belongs to no suite: TDEC's reasoning tasks go through it, and `--lm-eval-tasks a,b` adds any lm-eval
task to any suite's final evaluation. Every task list is resolved against the same task directories
(`--lm-eval-include DIR` first, then lm-eval's own) and every list honours the run's `eval_limit`.
`check_tasks` builds the tasks, datasets included, before a run's first step, so an unreachable
dataset fails the run at once instead of after its last epoch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import Sequence
from unittest import mock

import yaml

from bench.errors import BenchError, unknown

_MANAGERS: dict = {}  # indexing lm-eval's task tree takes seconds: once per (include path, defaults)
_CHECKED: set = set()  # (task, include path, defaults) whose data loaded in this process


def task_manager(include_path: str | None, include_defaults: bool):
    """lm-eval's TaskManager over `include_path` (whose tasks override built-in ones of the same name)
    and, when `include_defaults`, lm-eval's own tasks."""
    # lm_eval loads when this runs, not when the CLI imports bench.lm_eval_bridge
    from lm_eval.tasks import TaskManager

    if include_path is not None and not Path(include_path).is_dir():
        raise BenchError(f"--lm-eval-include {include_path} is not a directory (expected a directory of lm-eval task YAMLs)")
    root = include_path and str(Path(include_path).resolve())
    # a task written into the directory later in this process must be seen: the listing is part of the key
    listing = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in Path(root).rglob("*.yaml"))) if root else ()
    key = (root, include_defaults, listing)
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=root, include_defaults=include_defaults)
    return _MANAGERS[key]


def check_tasks(tasks: Sequence[str], include_path: str | None, include_defaults: bool = True) -> None:
    """Build every task of `tasks` with its dataset, as `run_tasks` will; raise BenchError naming the first
    that cannot be built (unknown name, data unreachable offline). Call it before a run's first step."""
    manager = task_manager(include_path, include_defaults)
    for task in tasks:
        key = (task, include_path, include_defaults)
        if key in _CHECKED:
            continue
        where = f"--lm-eval-include {include_path}" if include_path else "no --lm-eval-include"
        if task not in manager.all_tasks and not include_defaults:  # a suite's own generated tasks, nothing else

            raise unknown("lm-eval task of this suite (option lm_eval_tasks)", task, manager.all_tasks)
        if task not in manager.all_tasks:
            raise BenchError(f"unknown lm-eval task '{task}' ({where}); put a task YAML named {task} in a directory "
                             f"and pass --lm-eval-include DIR, or leave the task out")
        try:
            manager.load([task])
        except Exception as e:  # datasets raises ConnectionError, FileNotFoundError, ... when data cannot be read
            first = str(e).splitlines()[0] if str(e) else ""
            raise BenchError(f"lm-eval task '{task}' cannot load its data ({type(e).__name__}: {first}); "
                             f"{_offline_way(task, manager, include_path)}") from None
        _CHECKED.add(key)


def _offline_way(task: str, manager, include_path: str | None) -> str:
    """How to give `task` data on this machine: a local YAML in the include directory, or a fix to the one there."""
    entry = manager.task_index.get(task)
    source = Path(getattr(entry, "yaml_path", "") or "")
    if include_path and Path(os.path.realpath(include_path)) in Path(os.path.realpath(source)).parents:
        return f"its YAML {source} in --lm-eval-include names data this machine cannot read (expected data_files here)"
    override = f"(it overrides lm-eval's own {task}; the run id stays the same)"
    if include_path:
        return (f"--lm-eval-include {include_path} has no task {task}: offline, write a local task YAML named {task} "
                f"(data_files on this machine) there {override}")
    return (f"offline, write a local task YAML named {task} (data_files on this machine) into a directory and pass "
            f"--lm-eval-include DIR {override}")


def write_choice_task(directory: Path, name: str, rows: Sequence[dict]) -> None:
    """A local multiple-choice task: rows of {context, choices, label}, loaded offline by lm-eval."""
    directory = Path(directory).resolve()  # lm-eval resolves data_files against the CWD, not the YAML
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "task": name, "dataset_path": "json", "dataset_name": None,
        "dataset_kwargs": {"data_files": {"validation": str(data)}},
        "output_type": "multiple_choice", "validation_split": "validation",
        "doc_to_text": "{{context}}", "doc_to_choice": "choices", "doc_to_target": "label",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _without_bar(bar):
    """`bar` (tqdm) that draws nothing, whatever `disable` its caller passes (lm-eval passes disable=False)."""
    @functools.wraps(bar)
    def silent(*args, **kwargs):
        return bar(*args, **{**kwargs, "disable": True})

    return silent


def run_tasks(model, tokenizer, tasks: Sequence[str], include_path: str | None = None,
              include_defaults: bool = True, limit: int | None = None, batch_size: int = 32,
              device: str = "cpu", metric: str = "auto", items: dict | None = None) -> dict[str, float]:
    """{task: score}: `metric` if given, else acc_norm where a task reports it, else acc, else its first metric.
    `limit`: items per task (None = all). `items`, if given, receives {task: items evaluated}."""
    # datasets, lm_eval load when this runs, not when the CLI imports bench.lm_eval_bridge
    import lm_eval.api.model
    import lm_eval.api.task
    import lm_eval.evaluator
    import lm_eval.models.huggingface
    import tqdm
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    import datasets

    datasets.disable_progress_bars()
    was_training = model.training
    # under torchrun lm-eval returns results on LOCAL_RANK 0 only; each rank here evaluates its own copy
    # of the model alone (an in-memory model: lm-eval's world size is 1), so each must get them
    local_rank, os.environ["LOCAL_RANK"] = os.environ.get("LOCAL_RANK"), "0"
    try:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
        manager = task_manager(include_path, include_defaults)
        # lm-eval describes the environment in every result (torch's collect_env: about a dozen subprocesses,
        # 0.9 s per call, more than the tasks of a mini suite); run.json records the environment itself
        # lm-eval's per-request bars (three per task) would bury the grid's own lines: tqdm reads TQDM_DISABLE
        # only when it is first imported, so the bars are turned off where lm-eval calls them
        silent = [mock.patch.object(module, "tqdm", _without_bar(tqdm.tqdm))
                  for module in (lm_eval.api.model, lm_eval.api.task, lm_eval.models.huggingface)]
        with mock.patch.object(lm_eval.evaluator, "add_env_info", lambda results: None), \
                mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None), contextlib.ExitStack() as bars:
            for patch in silent:
                bars.enter_context(patch)
            out = simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                  log_samples=False, bootstrap_iters=0, verbosity="ERROR")
    finally:
        model.train(was_training)  # HFLM switches the model to eval mode
        if local_rank is None:
            del os.environ["LOCAL_RANK"]
        else:
            os.environ["LOCAL_RANK"] = local_rank
    if items is not None:
        items.update({task: int(n["effective"]) for task, n in out.get("n-samples", {}).items()})
    scores = {}
    for task, metrics in out["results"].items():
        numbers = {k.split(",")[0]: v for k, v in metrics.items() if isinstance(v, (int, float)) and "stderr" not in k}
        for key in ((metric,) if metric != "auto" else ("acc_norm", "acc", "exact_match", "f1")):
            if key in numbers:
                scores[task] = float(numbers[key])
                break
        else:
            if numbers:
                scores[task] = float(next(iter(numbers.values())))
    return scores
