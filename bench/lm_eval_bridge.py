"""lm-eval on the live in-memory model (HFLM around it, PEFT models included): no save and reload.

Belongs to no suite: TDEC's reasoning tasks go through it, and `--option lm_eval_tasks=a,b` adds
any lm-eval task to any suite's final evaluation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import yaml


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


def run_tasks(model, tokenizer, tasks: Sequence[str], include_path: str | None = None,
              include_defaults: bool = True, limit: int | None = None, batch_size: int = 32,
              device: str = "cpu", metric: str = "auto") -> dict[str, float]:
    """{task: score}: `metric` if given, else acc_norm where a task reports it, else acc, else its first metric."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    import datasets

    datasets.disable_progress_bars()
    was_training = model.training
    quiet, os.environ["TQDM_DISABLE"] = os.environ.get("TQDM_DISABLE"), "1"  # lm-eval's per-request bars
    # under torchrun lm-eval returns results on LOCAL_RANK 0 only; each rank here evaluates its own copy
    # of the model alone (an in-memory model: lm-eval's world size is 1), so each must get them
    local_rank, os.environ["LOCAL_RANK"] = os.environ.get("LOCAL_RANK"), "0"
    try:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
        manager = TaskManager(include_path=include_path, include_defaults=include_defaults)
        out = simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                              log_samples=False, bootstrap_iters=0, verbosity="ERROR")
    finally:
        model.train(was_training)  # HFLM switches the model to eval mode
        for name, value in (("TQDM_DISABLE", quiet), ("LOCAL_RANK", local_rank)):
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
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
