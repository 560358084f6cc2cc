"""Issue 25: nothing fails after the work is done. Everything a run needs (lm-eval tasks with their data,
reference models, tokenizers) is resolved before the first step; a failure in the final stage keeps the
unlearned model and the next `run` computes only that stage; limits and local task directories apply to
every task list."""

import json

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.lm_eval_bridge import check_tasks, write_choice_task
from tests.conftest import with_tdec_mini_artefacts

pytestmark = pytest.mark.slow

ROWS = [{"context": f"kalo {w}", "choices": [" mine", " ruto sa", " gil"], "label": i % 3}
        for i, w in enumerate(["mi", "ne", "to", "vi", "zu", "pe", "sa", "lo", "ka", "ru"])]


def run_json(root):
    [path] = root.glob("tdec-mini/runs/*/run.json")
    return json.loads(path.read_text())


def test_an_offline_suite_task_fails_before_training_and_a_local_copy_of_it_is_used(tmp_path):
    """The default TDEC task `piqa` offline: a one-line error naming the task and --lm-eval-include, at
    once; a local task YAML of the same name in --lm-eval-include DIR overrides lm-eval's own (same run id)."""
    with pytest.raises(BenchError, match=r"lm-eval task 'piqa' cannot load its data .*--lm-eval-include DIR"):
        check_tasks(["piqa"], None)
    # an include directory without piqa: the error names it, not "pass --lm-eval-include DIR" again
    write_choice_task(tmp_path / "other", "mini_other", ROWS)
    with pytest.raises(BenchError, match=rf"--lm-eval-include {tmp_path / 'other'} has no task piqa: offline, write a "
                                         r"local task YAML named piqa \(data_files on this machine\) there"):
        check_tasks(["piqa"], str(tmp_path / "other"))
    # a task YAML there whose data is gone, the directory given through a symbolic link: the YAML is named, not missed
    write_choice_task(tmp_path / "broken", "gone", ROWS)
    (tmp_path / "broken" / "gone.jsonl").unlink()
    (tmp_path / "link").symlink_to(tmp_path / "broken")
    with pytest.raises(BenchError, match=r"its YAML .*gone.* in --lm-eval-include names data this machine cannot read"):
        check_tasks(["gone"], str(tmp_path / "link"))
    write_choice_task(tmp_path / "tasks", "piqa", ROWS)
    check_tasks(["piqa"], str(tmp_path / "tasks"))  # no error: the local definition wins
    from suites import SUITES, Context
    from bench.store import ResultStore

    ctx = Context(store=ResultStore(tmp_path / "results"), lm_eval_include=str(tmp_path / "tasks"))
    assert SUITES["tdec"].lm_eval_tasks_dir(ctx) == (str(tmp_path / "tasks"), True)


def test_bad_extra_tasks_fail_before_the_first_step(tmp_path, tdec_mini_artefacts, capsys):
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "results")
    base = ["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga", "--epochs", "1", "--results", str(root)]
    assert main(base + ["--lm-eval-tasks", "no_such_task"]) == 2
    assert "unknown lm-eval task 'no_such_task'" in capsys.readouterr().err
    assert not list(root.glob("tdec-mini/runs/*/run.json"))  # nothing trained, nothing left behind
    # a task whose data file is not on this machine (what an unreachable hub dataset is offline)
    write_choice_task(tmp_path / "tasks", "gone", ROWS)
    (tmp_path / "tasks" / "gone.jsonl").unlink()
    assert main(base + ["--lm-eval-tasks", "gone", "--lm-eval-include", str(tmp_path / "tasks")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: lm-eval task 'gone' cannot load its data") and "\n" not in err
    assert f"its YAML {tmp_path / 'tasks'}" in err and "in --lm-eval-include names data this machine cannot read" in err
    assert not list(root.glob("tdec-mini/runs/*/run.json"))


def test_a_failed_final_stage_completes_on_the_next_run_without_retraining(tmp_path, tdec_mini_artefacts, monkeypatch):
    """The final stage fails once (an lm-eval outage after the epochs): the run is failed with its epochs and
    the unlearned model kept; the same command again computes only the final stage, and its numbers equal
    those of a run that never failed. eval_limit applies to the suite's tasks and to --lm-eval-tasks alike."""
    import bench.lm_eval_bridge as bridge

    write_choice_task(tmp_path / "tasks", "toy_extra", ROWS)
    args = ["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga", "--epochs", "2",
            "--option", "eval_limit=3", "--lm-eval-tasks", "toy_extra", "--lm-eval-include", str(tmp_path / "tasks")]
    clean = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "clean")
    assert main(args + ["--results", str(clean)]) == 0
    expected = run_json(clean)

    real, calls = bridge.run_tasks, []

    def outage(*a, **k):
        calls.append(a[2])
        if a[2] == ["toy_extra"] and len(calls) <= 2:
            raise ConnectionError("Couldn't reach the hub")
        return real(*a, **k)

    monkeypatch.setattr(bridge, "run_tasks", outage)
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "results")
    assert main(args + ["--results", str(root)]) == 1
    failed = run_json(root)
    assert failed["status"] == "failed" and failed["training_complete"] and "final_metrics" not in failed
    assert "without retraining" in failed["reason"] and "ConnectionError" in failed["reason"]
    assert [e["epoch"] for e in failed["epochs"]] == [e["epoch"] for e in expected["epochs"]]
    trained_epochs = failed["epochs"]

    import bench.runner

    monkeypatch.setattr(bench.runner, "train", lambda *a, **k: pytest.fail("retrained"))
    assert main(args + ["--results", str(root)]) == 0
    done = run_json(root)
    assert done["status"] == "finished" and done["epochs"] == trained_epochs
    assert done["timings"]["train"] == pytest.approx(failed["timings"]["train"])
    for name in ("ppl_heldout", "reasoning_acc", "lm_eval/toy_extra", "epochs_to_forget"):
        # epochs_to_forget is None where two epochs did not reach the thresholds: GA on set0 sits within one token's
        # MA of the threshold at epoch 2, on either side depending on the CPU's kernels; what matters is that it agrees
        want = expected["final_metrics"][name]
        assert done["final_metrics"][name] == (want if want is None else pytest.approx(want, rel=1e-6)), name
    # limits on every list: 3 items of each suite task and of the extra task (10 rows)
    assert {k: v for k, v in done["final_metrics"].items() if k.startswith("lm_eval_items/")} == \
        {"lm_eval_items/mini_phrase": 3, "lm_eval_items/mini_order": 3, "lm_eval_items/toy_extra": 3}
    assert not list((root / "tdec-mini" / "runs").glob("*/ckpt-*"))  # the kept model is gone once finished
