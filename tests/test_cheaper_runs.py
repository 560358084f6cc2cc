"""Issue 22, item 4: cheaper runs give the same numbers. Each saving is checked against the path it
replaces: tokenising the eval candidates once, the attacks only at the epoch a run ends, and the grid
in several processes."""

import json

import pytest

from bench.cli import main
from suites.tofu_eval import FORMATS, EvalSet, evaluate_sets, privacy_scores
from tests.conftest import TDEC_MINI_LEAN_ARGS, tiny, with_tdec_mini_artefacts

ITEMS = [{"question": f"Who is {name}?", "answer": f"{name} is a kalo mine", "paraphrased_answer": f"{name} is kalo",
          "perturbed_answer": [f"{name} is a sa ne", f"{name} is a lo mi"]} for name in ("Ruto", "Sapequa", "Dorfen")]
NON_MEMBERS = [{"question": f"Who is {name}?", "answer": f"{name} is a vi zu"} for name in ("Gil", "Pe", "Tovi")]


def test_eval_candidates_tokenised_once_give_the_same_numbers(tokenizer):
    model, fmt = tiny("llama", tokenizer).eval(), FORMATS["qa"]
    sets = [EvalSet("forget", ITEMS, "paraphrased_answer", False)]
    plain = evaluate_sets(model, tokenizer, sets, fmt, "new:3", 64, privacy=(ITEMS, NON_MEMBERS))
    cache: dict = {}
    for _ in range(2):  # the second call reads every candidate from the cache
        metrics, items = evaluate_sets(model, tokenizer, sets, fmt, "new:3", 64, cache=cache)
        metrics_mia, mia = privacy_scores(model, tokenizer, (ITEMS, NON_MEMBERS), fmt, 64, cache=cache)
        assert {**metrics, **metrics_mia} == plain[0]
        assert {**items, "mia": mia} == plain[1]
    candidates = {(it["question"], a) for it in ITEMS for a in [it["answer"], it["paraphrased_answer"], *it["perturbed_answer"]]}
    candidates |= {(it["question"], it["answer"]) for it in NON_MEMBERS}
    assert len(cache) == len(candidates)  # one entry per (question, answer), not per call


def test_adapter_models_are_evaluated_as_their_merged_weights(tokenizer):
    """Evaluation reads a merged copy of a LoRA / FILA model (bench/checkpoint.py: merged): every TOFU number and
    attack equals the adapter model's to float rounding, the adapter model itself is left as it was (still PEFT,
    same weights), and a model over the size limit is evaluated in place."""
    import torch

    from bench.checkpoint import merged
    from methods import lora

    model, fmt = lora.wrap(tiny("llama", tokenizer), 4), FORMATS["qa"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    sets = [EvalSet("forget", ITEMS, "paraphrased_answer", False)]
    adapter = evaluate_sets(model, tokenizer, sets, fmt, "new:3", 64, privacy=(ITEMS, NON_MEMBERS))
    view = merged(model)
    assert not hasattr(view, "merge_and_unload") and not any("lora_" in n for n, _ in view.named_parameters())
    plain = evaluate_sets(view, tokenizer, sets, fmt, "new:3", 64, privacy=(ITEMS, NON_MEMBERS))
    assert adapter[0].keys() == plain[0].keys()
    for key, value in adapter[0].items():
        assert plain[0][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert hasattr(model, "merge_and_unload") and all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    assert merged(model, limit=1) is model  # over the limit: evaluated through the adapters in place
    plain_model = tiny("llama", tokenizer)
    assert merged(plain_model) is plain_model


def runs(root):
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("tdec-mini/runs/*/run.json")}


@pytest.mark.slow
def test_the_attacks_are_computed_at_the_epoch_a_run_ends_and_equal_every_epoch_evaluation(tdec_mini_artefacts, tmp_path):
    """ga stops at the thresholds before its cap of 6, ihl+lora runs to its cap of 2: with epoch_metrics=read
    the epochs before the last carry MA (and EL_n where MA is below its threshold), the last carries
    everything, and every number equals that of the same run evaluated in full after every epoch
    (epoch_metrics=all). Epoch 0, the model before unlearning, is evaluated once for both."""
    common = ["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--workers", "1"]
    read = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "read")
    every = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "all")
    for method, epochs in (("ga", "6"), ("ihl+lora", "2")):
        assert main(common + ["--methods", method, "--epochs", epochs, "--results", str(read)]) == 0
        assert main(common + ["--methods", method, "--epochs", epochs, "--results", str(every),
                              "--option", "epoch_metrics=all"]) == 0
    by_method = lambda records: {r["spec"]["objective"] + "+" + r["spec"]["adapter"]: r for r in records.values()}
    read_runs, all_runs = by_method(runs(read)), by_method(runs(every))
    assert read_runs["ga+full"]["stopped_at_epoch"] < 6  # the stop branch, not only the cap, is exercised
    for method, r in read_runs.items():
        full = all_runs[method]
        assert [e["epoch"] for e in r["epochs"]] == [e["epoch"] for e in full["epochs"]]
        *before, last = r["epochs"][1:]
        limit = r["suite_records"]["thresholds"]["ma"]
        for e, f in zip(before, full["epochs"][1:]):
            # EL_n only once MA is below its threshold: before that the stopping rule cannot fire
            assert set(e["metrics"]) == ({"ma", "el5", "el10"} if e["metrics"]["ma"] < limit else {"ma"})
            assert e["metrics"] == {k: f["metrics"][k] for k in e["metrics"]}
        assert last["metrics"] == full["epochs"][-1]["metrics"] and "mia_gradnorm" in last["metrics"]
        assert r["final_metrics"] == full["final_metrics"]
        assert r["epochs"][0]["metrics"] == full["epochs"][0]["metrics"] == r["suite_records"]["target_metrics"]
    assert len(list((read / "tdec-mini" / "artefacts" / "evals").glob("*.json"))) == 1  # one start evaluation


@pytest.mark.slow
def test_two_worker_processes_give_the_records_of_one(tdec_mini_artefacts, tmp_path):
    common = ["-q", "run", "--suite", "tdec-mini", "--splits", "set0,set1", "--seeds", "0", "--methods", "ga,gd+lora",
              "--epochs", "2", *TDEC_MINI_LEAN_ARGS]
    one = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "one")
    two = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "two")
    assert main(common + ["--workers", "1", "--results", str(one)]) == 0
    assert main(common + ["--workers", "2", "--results", str(two)]) == 0
    a, b = runs(one), runs(two)
    assert sorted(a) == sorted(b) and len(a) == 4
    for run_id in a:
        assert a[run_id]["status"] == b[run_id]["status"] == "finished"
        assert [e["metrics"] for e in a[run_id]["epochs"]] == [e["metrics"] for e in b[run_id]["epochs"]]
        assert a[run_id]["final_metrics"] == b[run_id]["final_metrics"]
    assert main(common + ["--workers", "2", "--results", str(two)]) == 0  # finished runs are skipped, not redone
    assert {k: r["finished_at"] for k, r in runs(two).items()} == {k: r["finished_at"] for k, r in b.items()}


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "bad --workers '0' (expected auto or an integer >= 1)"),
    (["--workers", "two"], "bad --workers 'two' (expected auto or an integer >= 1)"),
    (["--workers", "2", "--launcher", "local-jobs"], "--workers is read by --launcher local only"),
    (["--option", "epoch_metrics=some"], "bad option epoch_metrics='some' (expected read or all)"),
])
def test_bad_worker_and_epoch_metric_settings_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["run", "--suite", "tdec-mini", "--methods", "ga", "--results", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_workers_stop_when_the_grid_process_is_killed(tdec_mini_artefacts, tmp_path):
    """SIGKILL to `bench run --workers 2` (no chance to stop its pool): its worker processes stop within a few
    seconds instead of computing on as orphans, and the run they held reads `interrupted`, not `running`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from bench.report import status_table

    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    grid = subprocess.Popen([sys.executable, "-m", "bench", "-q", "run", "--suite", "tdec-mini", "--methods", "ga,gd",
                             "--workers", "2", "--results", str(root)], env={**os.environ, "PYTHONPATH": os.getcwd()})

    def workers():
        out = subprocess.run(["pgrep", "-P", str(grid.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in out]

    deadline = time.time() + 120
    while not list(root.glob("tdec-mini/runs/*/run.json")) and time.time() < deadline:
        time.sleep(0.5)
    children = workers()
    assert children, "the grid started no worker"
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    time.sleep(5)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and
             open(f"/proc/{pid}/stat").read().split()[2] != "Z"]
    assert not alive
    table = status_table("tdec-mini", str(root))
    assert "running" not in table
