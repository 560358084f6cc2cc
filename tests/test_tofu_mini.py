"""tofu-mini end to end: references built from nothing, unlearning, evaluation, store, report.
The references take about 3 CPU-minutes to build; every test of this module shares them."""

import json

import pytest

from bench.cli import main
from bench.grid import expand
from bench.runner import run_one
from bench.store import ResultStore
from suites import Context

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    assert main(["-q", "run", "--suite", "tofu-mini", "--seeds", "0", "--methods", "ihl+fila", "--epochs", "2",
                 "--results", str(root)]) == 0
    return root


# tests of what a run does, not of the twin's numbers: 30 items per evaluation set instead of 100 / 100 / 40 / 50
# (each epoch's evaluation about 2.5 times cheaper)
FEWER_ITEMS = {"max_items": 30}


def records(root):
    return [json.loads(p.read_text()) for p in sorted(root.glob("tofu-mini/runs/*/run.json"))]


def test_target_and_retain_models_discriminate(results):
    [record] = records(results)
    target, retain = record["suite_records"]["target_metrics"], record["suite_records"]["reference_metrics"]
    assert target["forget_quality"] < 0.01
    assert retain["forget_quality"] == 1.0
    assert target["forget_prob"] > 0.9 > 0.2 > retain["forget_prob"]
    assert record["suite_records"]["eval_items"] == {"forget": 100, "retain": 100, "real_authors": 40, "world_facts": 50}


def test_membership_attacks_tell_the_target_but_not_the_retain_only_model(results, tmp_path):
    from scipy.stats import norm

    from suites import SUITES
    from suites.privacy import ATTACKS, auc_null_halfwidth

    [record] = records(results)
    target, retain = record["suite_records"]["target_metrics"], record["suite_records"]["reference_metrics"]
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    suite = SUITES["tofu-mini"]
    forget, holdout = suite.load_config("forget10", ctx), suite.load_config("holdout10", ctx)
    # the 99.9 % null half-width of an AUC on 100 vs 100 independent items: 3.29 x 0.041 = 0.135. Twins spread
    # less (0.006-0.019, measured over twin draws and paired permutations), so the band errs towards passing
    # exchangeable sets, and still fails the earlier holdout of other authors (GradNorm 0.728 on seed 0)
    band = auc_null_halfwidth(len(forget), len(holdout), z=norm.ppf(1 - 0.001 / 2))
    assert 0.13 < band < 0.14
    for attack in ATTACKS:  # forget answers vs their name twins, which no model trained on
        # the target is told from chance by the same 99.9 % band; a fixed 0.8 sat inside the Reference attack's
        # spread over seeds (0.831 [0.816, 0.847] on 12 Intel runs; 0.793 for seed 0 with AMD's AVX512 kernels)
        assert target[f"mia_{attack}"] > 0.5 + band, attack
        assert abs(retain[f"mia_{attack}"] - 0.5) < band, (attack, retain[f"mia_{attack}"])
    assert retain["privleak"] == 0.0 and target["privleak"] < -50
    assert target["extraction_strength"] > 0.5 > retain["extraction_strength"]
    assert target["exact_memorisation"] > retain["exact_memorisation"]
    last = record["epochs"][-1]["metrics"]
    assert {f"mia_{a}" for a in ATTACKS} | {"privleak", "extraction_strength", "exact_memorisation"} <= set(last)
    trained = {(row["question"], row["answer"]) for config in ("full", "background", "real_authors", "world_facts")
               for row in suite.load_config(config, ctx)}
    assert [r["question"] for r in holdout] == [r["question"] for r in forget]  # the same authors, item for item
    assert not trained & {(r["question"], r["answer"]) for r in holdout}


def test_run_record_says_where_every_number_came_from(results):
    [record] = records(results)
    assert record["status"] == "finished"
    assert [e["epoch"] for e in record["epochs"]] == [0, 1, 2]
    assert record["spec"]["options"]["generation"] == "new:32" and record["spec"]["options"]["max_items"] == 0
    env = record["environment"]
    assert env["packages"]["torch"] and env["device"] == "cpu" and env["seed"] == 0
    assert 0 < record["parameters"]["trainable"] < record["parameters"]["total"]
    assert set(record["timings"]) == {"prepare", "load", "adapter", "train", "evaluate"}
    assert record["peak_memory_mb"] > 0
    assert (results / "tofu-mini/artefacts/fisher").is_dir()


def test_skip_force_and_determinism(results):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "ihl+fila", hparams={"epochs": 2}, seeds="0")
    first = records(results)[0]["epochs"][-1]["metrics"]
    assert run_one(spec, ctx) == "skipped"
    assert run_one(spec, ctx, force=True) == "finished"
    assert records(results)[0]["epochs"][-1]["metrics"] == first  # same spec and seed, same numbers


def test_gradient_ascent_long_enough_destroys_utility(results):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "ga", hparams={"epochs": 6, "lr": 1e-3}, seeds="0")
    assert run_one(spec, ctx) == "finished"
    record = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
    before, after = record["epochs"][0]["metrics"], record["epochs"][-1]["metrics"]
    assert after["model_utility"] < 0.5 * before["model_utility"]
    assert after["forget_prob"] < 0.1 * before["forget_prob"]


def test_report_lists_reference_rows_and_failed_runs(results, capsys):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "ga+lora", hparams={"epochs": 1, "lr": 1e6}, seeds="0")  # diverges
    assert run_one(spec, ctx) == "failed"
    record = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
    assert record["status"] == "failed" and "epoch 1" in record["reason"]
    assert main(["report", "--suite", "tofu-mini", "--results", str(results)]) == 0
    board = (results / "tofu-mini/leaderboard.md").read_text()
    assert "(target)" in board and "(retain)" in board
    assert "| failed" in board
    assert (results / "tofu-mini/leaderboard.csv").exists() and (results / "tofu-mini/leaderboard.tex").exists()


def test_robustness_stages_measure_what_comes_back(results):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "ga+lora", seeds="0", options={"robustness": "all", **FEWER_ITEMS})
    assert run_one(spec, ctx) == "finished", ctx.store.reason(spec)
    record = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
    final, last = record["final_metrics"], record["epochs"][-1]["metrics"]
    assert final["relearn_forget/recovery"] > 0  # relearning half the forget set brings back the other half
    # 30 evaluated items (FEWER_ITEMS): the recovery reads the held-out forget examples among them
    assert 0 < final["relearn/held_out_scored"] < 30 and final["relearn/examples"] == 50
    assert final["relearn_forget/forget_prob"] > last["forget_prob"]
    assert -1 <= final["relearn_retain/recovery"] <= 1
    for variant in ("quant8", "quant4", "target_quant8", "target_quant4"):
        assert {f"{variant}/{m}" for m in ("forget_quality", "forget_prob", "privleak")} <= set(final)
    assert final["target_quant8/forget_prob"] > 0.9  # quantisation alone does not make the target forget
    assert {"paraphrase/forget_prob", "paraphrase/forget_rouge", "target_paraphrase/forget_rouge"} <= set(final)
    assert {"relearn", "quant", "paraphrase"} <= set(record["timings"])
    assert record["robustness"]["quant"]["library"].startswith("optimum-quanto")
    assert record["robustness"]["relearn"]["fraction"] == 0.5
    [plain] = [r for r in records(results) if r["spec"]["objective"] == "ihl"]  # robustness off: as before
    assert "robustness" not in plain and not any("/" in k for k in plain["final_metrics"])
    assert main(["report", "--suite", "tofu-mini", "--results", str(results)]) == 0
    table = (results / "tofu-mini/robustness.md").read_text()
    assert "forget_quality 4-bit" in table and "(target)" in table


NEW_OBJECTIVES = ("simnpo", "idkdpo", "rmu", "undial", "wga", "satimp", "ceu")


def test_every_new_objective_runs_with_fila_and_lowers_forget_probability(results):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    specs = expand("tofu-mini", ",".join(f"{o}+fila" for o in NEW_OBJECTIVES), hparams={"epochs": 2}, seeds="0",
                   options=FEWER_ITEMS)
    for spec in specs:
        assert run_one(spec, ctx) == "finished", ctx.store.reason(spec)
        record = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
        before, after = record["epochs"][0]["metrics"], record["epochs"][-1]["metrics"]
        assert after["forget_prob"] < before["forget_prob"], spec.objective
        if spec.objective == "idkdpo":
            assert record["alternate_answers"]["answers"] >= 100


def test_a_diverging_new_objective_is_marked_failed_with_its_reason(results):
    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "simnpo+lora", hparams={"epochs": 1, "lr": 1e6, "beta": 1e3}, seeds="0")
    assert run_one(spec, ctx) == "failed"
    record = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
    assert record["status"] == "failed" and "epoch 1" in record["reason"]


def test_a_run_killed_mid_way_resumes_and_matches_the_uninterrupted_one(results):
    import os
    import signal
    import subprocess
    import sys
    import time

    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tofu-mini", "gd+lora", hparams={"epochs": 4}, seeds="0", options=FEWER_ITEMS)
    assert run_one(spec, ctx) == "finished"
    run_json = ctx.store.run_dir(spec) / "run.json"
    uninterrupted = json.loads(run_json.read_text())["epochs"]

    argv = [sys.executable, "-m", "bench", "-q", "run", "--suite", "tofu-mini", "--seeds", "0", "--methods", "gd+lora",
            "--epochs", "4", "--option", "max_items=30", "--force", "--results", str(results)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (ctx.store.run_dir(spec) / "ckpt-2").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads(run_json.read_text())
    assert killed["status"] == "running" and 2 <= killed["epochs"][-1]["epoch"] < 4

    assert run_one(spec, ctx) == "finished"
    resumed = json.loads(run_json.read_text())
    assert resumed["resumed_after_epoch"] == [2] or resumed["resumed_after_epoch"] == [3]
    assert [e["metrics"] for e in resumed["epochs"]] == [e["metrics"] for e in uninterrupted]
    assert not list(ctx.store.run_dir(spec).glob("ckpt-*"))  # a finished run keeps no checkpoint


def test_lm_eval_tasks_join_any_suites_final_evaluation(results, tmp_path):
    from bench.lm_eval_bridge import write_choice_task

    rows = [{"context": f"Question: Where was {w} born?\nAnswer:", "choices": [" Kalo", " Mine"], "label": i % 2}
            for i, w in enumerate(["Ruto", "Gil", "Nesa", "Tovi"])]
    write_choice_task(tmp_path, "toy_tofu_choice", rows)
    assert main(["-q", "run", "--suite", "tofu-mini", "--seeds", "0", "--methods", "ga+lora", "--epochs", "1", "--results", str(results),
                 "--lm-eval-tasks", "toy_tofu_choice", "--lm-eval-include", str(tmp_path)]) == 0
    [record] = [r for r in records(results) if r["spec"]["options"]["lm_eval_extra"] == "toy_tofu_choice"]
    assert 0 <= record["final_metrics"]["lm_eval/toy_tofu_choice"] <= 1
