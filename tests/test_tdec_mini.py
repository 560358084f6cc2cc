"""tdec-mini end to end: a memorising base model built from nothing, thresholds on unseen data,
unlearning until the stopping rule, lm-eval utility on the live model (about a minute)."""

import json
import shutil

import pytest

from bench.cli import main
from bench.grid import expand
from bench.store import ResultStore
from suites import SUITES, Context
from tests.conftest import TDEC_MINI_LEAN, TDEC_MINI_LEAN_ARGS, with_tdec_mini_artefacts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory, tdec_mini_artefacts):
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path_factory.mktemp("results"))
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga,ihl+lora", "--ranks", "8", "--epochs", "6",
                 "--results", str(root)]) == 0
    return root


def record(root, method):
    [path] = root.glob(f"tdec-mini/runs/set0__{method}__*/run.json")
    return json.loads(path.read_text())


def test_the_base_model_memorised_the_forget_set_far_above_unseen_text(results):
    r = record(results, "ga")
    before, limits = r["epochs"][0]["metrics"], r["suite_records"]["thresholds"]
    assert before["ma"] > limits["ma"] + 0.15
    assert before["el10"] > limits["el10"] + 0.1


def test_gradient_ascent_crosses_the_thresholds_within_a_few_epochs(results):
    r = record(results, "ga")
    final, limits = r["final_metrics"], r["suite_records"]["thresholds"]
    assert final["forgotten"] and final["epochs_to_forget"] <= 4
    last = r["epochs"][-1]
    assert last["epoch"] == final["epochs_to_forget"] == r["stopped_at_epoch"]
    assert last["metrics"]["ma"] < limits["ma"] and last["metrics"]["el10"] <= limits["el10"]


def test_utility_goes_through_lm_eval_and_perplexity(results):
    for method in ("ga", "ihl+lora-r8"):
        final = record(results, method)["final_metrics"]
        assert set(final) >= {"lm_eval/mini_phrase", "lm_eval/mini_order", "reasoning_acc", "ppl_heldout",
                              "dialogue/mini_function", "dialogue_f1"}
        assert 0 <= final["reasoning_acc"] <= 1 and final["ppl_heldout"] > 1 and 0 <= final["dialogue_f1"] <= 1


def test_a_run_that_does_not_forget_says_so(results):
    r = record(results, "ihl+lora-r8")
    assert r["final_metrics"]["forgotten"] is False and r["final_metrics"]["epochs_to_forget"] is None
    assert len(r["epochs"]) == 7  # epoch 0 and the 6-epoch cap


def test_utility_stand_ins_are_far_above_chance_for_the_base_model(results):
    """The stand-ins must measure something: the base model scores far above chance (0.25 for four
    choices), so damage from unlearning can show as a drop (it does for the collapsing runs)."""
    from bench.lm_eval_bridge import run_tasks
    from bench.models import load_model
    from suites import SUITES
    from suites.dialogue import dialogue_f1

    suite, ctx = SUITES["tdec-mini"], Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tdec-mini", "ga", splits="set0", seeds="0")
    model, tokenizer = load_model(suite.model_path(spec, ctx))
    include, defaults = suite.lm_eval_tasks_dir(ctx)
    scores = run_tasks(model, tokenizer, ["mini_phrase", "mini_order"], include, defaults, metric="acc")
    assert scores["mini_phrase"] > 0.9 and scores["mini_order"] > 0.7
    [rows] = suite.dialogue_sets(spec, ctx).values()
    assert dialogue_f1(model, tokenizer, rows) > 0.25


def test_every_new_objective_runs_with_full_fine_tuning_and_lowers_memorisation(results):
    from bench.runner import run_one

    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    objectives = ("simnpo", "idkdpo", "rmu", "undial", "wga", "satimp", "ceu")
    for spec in expand("tdec-mini", ",".join(objectives), hparams={"epochs": 2}, splits="set0", seeds="0",
                       options=TDEC_MINI_LEAN):
        assert run_one(spec, ctx) == "finished", ctx.store.reason(spec)
        r = record(results, spec.method)
        assert r["epochs"][-1]["metrics"]["ma"] < r["epochs"][0]["metrics"]["ma"], spec.objective


def test_membership_attacks_see_the_memorised_forget_set(results):
    from suites.privacy import ATTACKS

    r = record(results, "ga")
    before, after = r["epochs"][0]["metrics"], r["epochs"][-1]["metrics"]
    for attack in ATTACKS:  # forget sequences vs the unseen ones; the Reference model never saw either
        assert before[f"mia_{attack}"] > 0.9, attack
    assert after["mia_loss"] < before["mia_loss"]
    assert r["suite_records"]["mia"]["reference_model"].endswith("reference-model")


def test_robustness_stages_say_whether_the_thresholds_are_met_again(results):
    from bench.runner import run_one

    ctx = Context(store=ResultStore(results), log=lambda msg: None)
    [spec] = expand("tdec-mini", "ga", hparams={"epochs": 4}, splits="set0", seeds="0", options={"robustness": "all"})
    assert run_one(spec, ctx) == "finished", ctx.store.reason(spec)
    r = json.loads((ctx.store.run_dir(spec) / "run.json").read_text())
    final = r["final_metrics"]
    assert final["forgotten"]
    for variant in ("relearn_forget", "relearn_retain", "quant8", "quant4", "target_quant8", "target_quant4"):
        assert final[f"{variant}/forgotten"] in (0.0, 1.0) and 0 <= final[f"{variant}/ma"] <= 1
    assert final["target_quant4/forgotten"] == 0.0  # the memorising model stays above the thresholds
    assert final["relearn_forget/ma"] > r["epochs"][-1]["metrics"]["ma"]
    assert {"paraphrase/ma", "paraphrase/el10", "target_paraphrase/ma"} <= set(final)


def test_until_decided_adds_seeds_only_where_they_decide_something(tdec_mini_artefacts, tmp_path, capsys, monkeypatch):
    """ga (full fine-tuning: one batch, the seed changes nothing) against ga+lora (the seed sets the
    adapter's initialisation): the first look has one pair; a second seed goes to both, ga reproduces its
    run bit for bit, so no further seed can add a pair to the comparison: the loop ends there, below its cap,
    saying why, with the replicates still needed in claims.md. (The suite's other forget sets, which would
    be added first, are taken out of it here.)"""
    monkeypatch.setattr(SUITES["tdec-mini"], "splits", ("set0",))
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    # 3 epochs: at epoch 2 GA on set0 is within one token's MA of the threshold, on either side depending on the CPU
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--methods", "ga,ga+lora", "--ranks", "8", "--epochs", "3",
                 "--seeds", "0", "--until-decided", "--max-seeds", "3", "--results", str(root), *TDEC_MINI_LEAN_ARGS]) == 0
    out = capsys.readouterr().out
    assert "no more seeds can decide the comparisons still inconclusive: every seed reproduces the runs of ga " in out
    seeds = sorted((p.parent.name.split("__")[1], json.loads(p.read_text())["spec"]["seed"])
                   for p in root.glob("tdec-mini/runs/*/run.json"))
    assert seeds == [("ga", 0), ("ga", 1), ("ga+lora-r8", 0), ("ga+lora-r8", 1)]  # no third seed for ga+lora
    plan = json.loads((root / "tdec-mini" / "sequential.json").read_text())
    [looks] = [c["looks"] for key, c in plan["comparisons"].items() if key.startswith("ga-lora-trades-poorly: ga vs ga+lora [")]
    assert plan["n_max"] == 3 and [look["n"] for look in looks] == [1]  # ga's copies add no distinct pair
    claims_md = (root / "tdec-mini" / "claims.md").read_text()
    assert "ga's 2 replicates hold 1 distinct run" in claims_md


def test_until_decided_says_when_claims_have_no_data_rather_than_calling_them_decided(tdec_mini_artefacts, tmp_path,
                                                                                        capsys, monkeypatch):
    """Two epochs are too few for IHL+LoRA and GA+LoRA to reach the thresholds: every comparison of the paper's
    claims is `no data`, which no replicate of the same settings changes; the loop says so, not "decided"."""
    monkeypatch.setattr(SUITES["tdec-mini"], "splits", ("set0",))
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--methods", "ihl+lora,ga+lora", "--ranks", "8",
                 "--epochs", "2", "--until-decided", "--max-seeds", "2", "--results", str(root), *TDEC_MINI_LEAN_ARGS]) == 0
    out = capsys.readouterr().out
    assert "every claim comparison is decided" not in out
    assert "claim comparisons have no data (no finished run of a method, or none that forgot, or only pairs the " \
           "epoch cap tied)" in out


def test_until_decided_adds_the_suites_other_forget_sets_before_any_seed(tdec_mini_artefacts, tmp_path, capsys, monkeypatch):
    """Where forget sets are replicates, the first addition is every set of the suite the grid left out, for
    the methods of undecided comparisons only, in one look (it spends their whole share of alpha); seeds
    come after, up to --max-seeds (1 here: none)."""
    monkeypatch.setattr(SUITES["tdec-mini"], "splits", ("set0", "set1", "set2"))
    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    # ga+fila forgets within the 2 epochs on every set, so no pair with ga+lora is one the epoch cap tied
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--methods", "ga+fila,ga+lora,gd", "--ranks",
                 "8", "--epochs", "2", "--until-decided", "--max-seeds", "1", "--results", str(root),
                 *TDEC_MINI_LEAN_ARGS]) == 0
    out = capsys.readouterr().out
    runs = sorted((p.parent.name.split("__")[0], p.parent.name.split("__")[1], json.loads(p.read_text())["spec"]["seed"])
                  for p in root.glob("tdec-mini/runs/*/run.json"))
    # gd is in no comparison of the claims with data: it gets no new forget set
    assert runs == [("set0", "ga+fila-r8", 0), ("set0", "ga+lora-r8", 0), ("set0", "gd", 0), ("set1", "ga+fila-r8", 0),
                    ("set1", "ga+lora-r8", 0), ("set2", "ga+fila-r8", 0), ("set2", "ga+lora-r8", 0)]
    plan = json.loads((root / "tdec-mini" / "sequential.json").read_text())
    [looks] = [c["looks"] for key, c in plan["comparisons"].items()
               if key.startswith("fila-forgets-faster: ga+fila vs ga+lora [")]
    assert plan["n_max"] == 3 and [look["n"] for look in looks] == [1, 3]
    assert looks[1]["level"] == pytest.approx(1 - 0.01 * 2 / 3)  # the claim's five comparisons share the 5 %
    assert "at the cap of 1 seeds on 3 splits" in out or "every claim comparison is decided" in out

    # the added sets' runs deleted (a fresh clone with the committed plan): the same command restores them,
    # taking no look while the comparisons have fewer replicates than their last look
    planned = (root / "tdec-mini" / "sequential.json").read_bytes()
    for d in [*root.glob("tdec-mini/runs/set1__*"), *root.glob("tdec-mini/runs/set2__*")]:
        shutil.rmtree(d)
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--methods", "ga+fila,ga+lora,gd", "--ranks",
                 "8", "--epochs", "2", "--until-decided", "--max-seeds", "1", "--results", str(root),
                 *TDEC_MINI_LEAN_ARGS]) == 0
    assert "left undecided, no look taken: runs their plan's last look matched are missing" in capsys.readouterr().err
    assert sorted((p.parent.name.split("__")[0], p.parent.name.split("__")[1], json.loads(p.read_text())["spec"]["seed"])
                  for p in root.glob("tdec-mini/runs/*/run.json")) == runs
    assert (root / "tdec-mini" / "sequential.json").read_bytes() == planned
