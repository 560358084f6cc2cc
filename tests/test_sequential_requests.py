"""Sequences of unlearning requests and forget sets of growing size as grid axes (suites/base.py `Axis`,
`bench run --axis NAME`), on the test-only suite tests/helpers/chain_suite.py: r1 -> r2 -> r3 (each request
from the previous one's model) and r1 < s2 < s3 (each from the start model).

The numbers that show a request starts from the previous one's weights are computed twice: by the run (its
epoch-0 evaluation) and here, by hand, from the exported model on disk."""

import importlib
import json
import math
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from scipy import stats as scipy_stats

from bench import dispatch
from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand
from bench.runner import final_model, run_grid, run_one
from bench.spec import RunSpec, in_request_order
from bench.store import ResultStore, new_record, write_json_atomic
from suites import SUITES, Context

HELPERS = Path(__file__).resolve().parent / "helpers"


@pytest.fixture
def chain(monkeypatch):
    """The chain-toy suite registered for this test only (the registry is restored afterwards)."""
    monkeypatch.setattr(SUITES, "_items", dict(SUITES._items))
    monkeypatch.syspath_prepend(str(HELPERS))
    module = importlib.import_module("chain_suite")
    if "chain-toy" not in SUITES:
        SUITES.register("chain-toy", module.ChainSuite())
    monkeypatch.setattr(module, "INTERRUPT", {})
    return module


def records(store: ResultStore, specs) -> list[dict]:
    return [json.loads((store.run_dir(s) / "run.json").read_text()) for s in specs]


def nll_by_hand(model_dir: str, sentences: list[str]) -> float:
    """Mean token NLL over every predicted token of `sentences`, one unpadded forward pass each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    total, count = 0.0, 0
    with torch.no_grad():
        for text in sentences:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logp = model(input_ids=ids).logits[0, :-1].double().log_softmax(-1)
            total -= logp.gather(1, ids[0, 1:, None]).sum().item()
            count += ids.shape[1] - 1
    return total / count


# ---- the grid: ids, chains, errors ----

def test_a_requests_axis_chains_the_specs_and_leaves_the_first_request_its_ordinary_id(chain):
    sust = expand("chain-toy", "ga,npo", seeds="0,1", axis="sust")
    assert len(sust) == 2 * 2 * 3
    for first, second, third in zip(sust[0::3], sust[1::3], sust[2::3]):
        assert [s.split for s in (first, second, third)] == ["r1", "r2", "r3"]
        assert first.previous is None and second.previous == first and third.previous == second
        assert [s.request for s in (first, second, third)] == [1, 2, 3]
        assert third.chain == (first, second, third)
        assert {s.objective for s in third.chain} == {first.objective} and {s.seed for s in third.chain} == {first.seed}
        assert "__" in third.run_id and third.run_id.startswith("r3@3__")
    # request 1 is the ordinary run of its split: the same id (and results) as without the axis
    plain = expand("chain-toy", "ga,npo", seeds="0,1", splits="r1")
    assert [s.run_id for s in sust[0::3]] == [s.run_id for s in plain]
    assert "previous" not in plain[0].to_dict()
    # a request's spec survives run.json: the previous ones are in it, and so in its id
    third = sust[2]
    again = RunSpec.from_dict(json.loads(json.dumps(third.to_dict())))
    assert again == third and again.run_id == third.run_id and again.previous.previous == sust[0]
    # a sizes axis: every point from the start model
    scal = expand("chain-toy", "ga", seeds="0", axis="scal")
    assert [(s.split, s.previous) for s in scal] == [("r1", None), ("s2", None), ("s3", None)]
    assert scal[0].run_id == plain[0].run_id


def test_a_change_anywhere_earlier_in_a_chain_names_other_later_runs(chain):
    r1, r2, r3 = expand("chain-toy", "ga", seeds="0", axis="sust")
    changed_first = RunSpec(**{**{f: getattr(r1, f) for f in ("suite", "model", "split", "objective", "adapter", "rank",
                                                              "seed", "options")}, "hparams": r1.hparams.replace(lr=2e-3)})
    later = RunSpec(**{**r2.__dict__, "previous": changed_first})
    last = RunSpec(**{**r3.__dict__, "previous": later})
    assert later.run_id != r2.run_id and last.run_id != r3.run_id  # only request 1 changed
    other_middle = RunSpec(**{**r2.__dict__, "split": "s2"})
    assert RunSpec(**{**r3.__dict__, "previous": other_middle}).run_id != r3.run_id
    assert RunSpec(**{**r3.__dict__, "previous": None}).run_id != r3.run_id  # r3 from the start model: another run
    # an order that puts a request before the one it starts from is put right
    assert [s.run_id for s in in_request_order([r3, r1, r2])] == [r1.run_id, r2.run_id, r3.run_id]


def test_axis_errors_are_one_line_and_name_what_is_valid(chain, capsys):
    with pytest.raises(BenchError, match=r"^--axis scal: suite tofu-mini declares no axis \(suites with axes: .*chain-toy\)$"):
        expand("tofu-mini", "ga", axis="scal")
    with pytest.raises(BenchError, match=r"unknown axis of suite chain-toy 'sustt'.*sust"):
        expand("chain-toy", "ga", axis="sustt")
    with pytest.raises(BenchError, match=r"^--splits r2 is no base of axis sust of suite chain-toy \(r2 is point 2 of "
                                         r"base r1\); bases: r1$"):
        expand("chain-toy", "ga", splits="r2", axis="sust")
    from suites.base import Axis

    with pytest.raises(ValueError, match="axis kind 'steps'"):
        Axis("steps", {"r1": ("r1", "r2")}, "t")
    with pytest.raises(ValueError, match="two or more splits, each once"):
        Axis("requests", {"r1": ("r1", "r1")}, "t")
    broken = type("Broken", (type(SUITES["chain-toy"]),), {"name": "broken", "axes": {
        "sust": Axis("requests", {"r1": ("r1", "r9")}, "t")}})()
    SUITES.register("broken", broken)
    with pytest.raises(BenchError, match=r"unknown split of suite broken 'r9'"):  # the suite's own error, said at once
        expand("broken", "ga", axis="sust")
    assert main(["show-config", "--suite", "chain-toy", "--methods", "ga", "--seeds", "0", "--axis", "sust"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["split"] for s in shown] == ["r1", "r2", "r3"]
    assert shown[2]["previous"]["previous"]["split"] == "r1" and shown[2]["run_id"].startswith("r3@3__")
    assert main(["show-config", "--suite", "chain-toy", "--methods", "ga", "--axis", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "axis of suite chain-toy" in err
    assert main(["list"]) == 0
    assert "axis sust (requests: r1>r2>r3); axis scal (sizes: r1>s2>s3)" in capsys.readouterr().out


# ---- running a chain ----

@pytest.fixture
def ctx(tmp_path):
    return Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None)


def test_each_request_starts_from_the_previous_requests_weights(chain, ctx):
    specs = expand("chain-toy", "ga", seeds="0", axis="sust")
    outcome = run_grid(specs, ctx, show_progress=False)
    assert outcome.finished == [s.run_id for s in specs] and not outcome.failed
    first, second, third = records(ctx.store, specs)
    target = str(ctx.store.artefact_dir("chain-toy") / "tiny-gpt-neo")
    # request 1 starts from the start model: its epoch 0 is the start model's retain NLL, computed here by hand
    assert first["epochs"][0]["metrics"]["retain_nll"] == pytest.approx(nll_by_hand(target, chain.RETAIN), rel=1e-5)
    assert "start_model" not in first
    for before, after, spec in ((first, second, specs[1]), (second, third, specs[2])):
        # the run's own evaluation before request k = the previous request's last one (same weights, read back)
        assert after["epochs"][0]["metrics"]["retain_nll"] == pytest.approx(before["epochs"][-1]["metrics"]["retain_nll"], rel=1e-6)
        assert after["start_model"]["previous_run_id"] == spec.previous.run_id
        exported = final_model(ctx.store.run_dir(spec.previous))
        assert after["start_model"]["dir"] == exported and before["model_dir"] == exported
        # and by hand from the exported model on disk
        assert after["epochs"][0]["metrics"]["retain_nll"] == pytest.approx(nll_by_hand(exported, chain.RETAIN), rel=1e-5)
        assert after["epochs"][0]["metrics"]["forget_nll"] == pytest.approx(
            nll_by_hand(exported, chain.FORGET[spec.split]), rel=1e-5)
        assert after["inputs"]["model/previous_request"] != "missing"
    # gradient ascent moved the weights at every request: request 3 does not start where request 1 did
    starts = [r["epochs"][0]["metrics"]["retain_nll"] for r in (first, second, third)]
    assert starts[0] < starts[1] < starts[2]
    assert third["forget_size"] == {"examples": 2, "tokens": sum(len(e) for e in _token_ids(target, chain.FORGET["r3"]))}
    assert final_model(ctx.store.run_dir(specs[2])) is None  # nothing starts from the last request: not exported
    # asked again, nothing is recomputed
    assert run_grid(specs, ctx, show_progress=False).skipped == [s.run_id for s in specs]


def _token_ids(model_dir, sentences):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)(sentences)["input_ids"]


def test_a_request_killed_mid_way_resumes_and_its_earlier_requests_are_not_rerun(chain, ctx, tmp_path):
    specs = expand("chain-toy", "ga", seeds="0", axis="sust", hparams={"epochs": 3})
    whole = Context(store=ResultStore(tmp_path / "uninterrupted"), log=lambda msg: None)
    assert run_grid(specs, whole, show_progress=False).finished == [s.run_id for s in specs]

    chain.INTERRUPT.update(split="r3", epoch=2)  # killed while evaluating epoch 2 of request 3
    with pytest.raises(KeyboardInterrupt):
        run_grid(specs, ctx, show_progress=False)
    killed = records(ctx.store, specs)[2]
    assert killed["status"] == "running" and [e["epoch"] for e in killed["epochs"]] == [0, 1]
    chain.INTERRUPT.clear()
    outcome = run_grid(specs, ctx, show_progress=False)
    assert outcome.skipped == [specs[0].run_id, specs[1].run_id] and outcome.finished == [specs[2].run_id]
    resumed = records(ctx.store, specs)[2]
    assert resumed["resumed_after_epoch"] == [1]
    assert [e["metrics"] for e in resumed["epochs"]] == [e["metrics"] for e in records(whole.store, specs)[2]["epochs"]]


def test_a_changed_earlier_request_invalidates_the_later_ones(chain, ctx, monkeypatch):
    specs = expand("chain-toy", "ga", seeds="0", axis="sust")
    # request 1 ran on its own first, without keeping its model: the sequence recomputes it, to the same numbers
    assert run_one(specs[0], ctx) == "finished" and final_model(ctx.store.run_dir(specs[0])) is None
    alone = [e["metrics"] for e in records(ctx.store, specs[:1])[0]["epochs"]]
    logged = []
    ctx.log = logged.append
    assert run_grid(specs, ctx, show_progress=False).finished == [s.run_id for s in specs]
    assert [e["metrics"] for e in records(ctx.store, specs[:1])[0]["epochs"]] == alone
    assert any("a later request starts from its model, which was not kept; recomputing" in m for m in logged)
    before = records(ctx.store, specs)[2]

    # request 2 recomputed with other forget sentences (other weights): request 3 is recomputed, request 1 is not
    monkeypatch.setitem(chain.FORGET, "r2", ["Dora Lind swam across the lake in May.", "Dora Lind sold apples."])
    assert run_one(specs[1], ctx, force=True, keep_model=True) == "finished"
    logged.clear()
    outcome = run_grid(specs, ctx, show_progress=False)
    assert outcome.skipped == [specs[0].run_id, specs[1].run_id] and outcome.finished == [specs[2].run_id]
    assert any("model/previous_request" in m and "recomputing" in m for m in logged)
    after = records(ctx.store, specs)
    assert after[2]["epochs"][0]["metrics"]["retain_nll"] == pytest.approx(after[1]["epochs"][-1]["metrics"]["retain_nll"], rel=1e-6)
    assert after[2]["epochs"][0]["metrics"] != before["epochs"][0]["metrics"]


def test_a_request_whose_previous_one_did_not_finish_fails_at_once_naming_it(chain, ctx):
    r1, r2, r3 = expand("chain-toy", "ga", seeds="0", axis="sust")
    assert run_one(r3, ctx) == "failed"
    reason = ctx.store.reason(r3)
    assert reason == (f"request 3 starts from the final model of request 2 ({r2.run_id}), which is missing: run the "
                      f"sequence again (its earlier requests go first)")
    assert not (ctx.store.run_dir(r1)).exists()  # nothing ran
    # the sequence run next time computes it, the failed record of request 3 included
    assert run_grid([r1, r2, r3], ctx, show_progress=False).finished == [r1.run_id, r2.run_id, r3.run_id]


# ---- dispatch: dependencies ----

class FakeJob:
    def __init__(self, job_id):
        self.job_id = job_id

    def result(self):
        return "prepared"

    def wait(self):
        pass


class FakeExecutor:
    """submitit's executor as dispatch.submit uses it: records each job's --dependency and run flags."""

    def __init__(self, log, dependency):
        self.log, self.dependency = log, dependency

    def submit(self, job):
        fake = FakeJob(str(100 + len(self.log)))
        self.log.append((fake.job_id, type(job).__name__, getattr(job, "spec", {}).get("split"),
                         getattr(job, "keep_model", None), self.dependency))
        return fake

    def batch(self):
        import contextlib

        return contextlib.nullcontext()


def test_slurm_jobs_of_a_sequence_wait_for_the_request_they_start_from(chain, tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(dispatch, "_executor", lambda launcher, folder, profile, model, name, dependency=None:
                        FakeExecutor(log, dependency))
    monkeypatch.setattr(dispatch, "_release", lambda held: None)  # no real SLURM holds these jobs
    monkeypatch.setattr(dispatch, "_live_jobs", lambda job_ids: {})
    specs = expand("chain-toy", "ga", seeds="0", axis="sust")
    runtime = dispatch.Runtime(results=str(tmp_path / "results"))
    profile = dispatch.Profile(name="test")
    sweep = dispatch.submit(list(reversed(specs)), runtime, "slurm", profile)  # any order: requests go after
    jobs = {split: (job_id, kind, keep, dep) for job_id, kind, split, keep, dep in log if kind == "RunJob"}
    preps = [job_id for job_id, kind, *_ in log if kind == "PrepareJob"]
    assert len(preps) == 3
    r1, r2, r3 = jobs["r1"], jobs["r2"], jobs["r3"]
    assert r1[3] == f"afterok:{preps[0]}"
    assert r2[3] == f"afterok:{preps[1]},afterany:{r1[0]}" and r3[3] == f"afterok:{preps[2]},afterany:{r2[0]}"
    assert (r1[2], r2[2], r3[2]) == (True, True, False)  # the models the next requests start from are kept
    assert [j.get("after") for j in sweep["jobs"] if j["kind"] == "run"] == [None, r1[0], r2[0]]
    assert dispatch.dependency(None) is None

    # request 1 is submitted again (its inputs changed): the finished requests after it go again too, each after it
    log.clear()
    monkeypatch.setattr(dispatch, "_done", lambda spec, store, runtime, keep_model=False: spec.split != "r1")
    dispatch.submit(specs, runtime, "slurm", profile)
    assert [split for _, kind, split, _, _ in log if kind == "RunJob"] == ["r1", "r2", "r3"]
    # only request 2 is unfinished: request 1 is not submitted, request 2 needs no job to wait for, request 3 does
    log.clear()
    monkeypatch.setattr(dispatch, "_done", lambda spec, store, runtime, keep_model=False: spec.split != "r2")
    dispatch.submit(specs, runtime, "slurm", profile)
    jobs = {split: (job_id, dep) for job_id, kind, split, _, dep in log if kind == "RunJob"}
    preps = [job_id for job_id, kind, *_ in log if kind == "PrepareJob"]
    assert sorted(jobs) == ["r2", "r3"] and jobs["r2"][1] == f"afterok:{preps[0]}"
    assert jobs["r3"][1] == f"afterok:{preps[1]},afterany:{jobs['r2'][0]}"


# ---- the axis table and plot, on hand-made runs ----

RETAIN_VALUES = {"ga": [[2.0, 2.4, 2.9], [2.1, 2.6, 3.3], [1.9, 2.5, 3.1]],  # per seed: request 1, 2, 3
                 "npo": [[1.6, 1.7, 1.8], [1.7, 1.7, 1.9], [1.5, 1.8, 1.8]]}
START_RETAIN = 1.2


def interval(values):
    mean = statistics.fmean(values)
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def rows_of(markdown: str) -> dict[str, str]:
    """The table lines of `markdown` by their method cell."""
    return {line.split("|")[2].strip(): line for line in markdown.splitlines() if line.startswith("| tiny")}


def _write(store, spec, metrics_before, metrics_after, tokens=None):
    record = new_record(spec)
    record.update(status="finished", epochs=[{"epoch": 0, "metrics": metrics_before},
                                             {"epoch": 1, "metrics": metrics_after}])
    if tokens:
        record["forget_size"] = {"examples": tokens // 10, "tokens": tokens}
    write_json_atomic(store.run_dir(spec) / "run.json", record)


def test_the_axis_tables_and_plots_on_hand_made_runs(chain, tmp_path):
    from bench.stats import fmt

    store = ResultStore(tmp_path / "results")
    for method, per_seed in RETAIN_VALUES.items():
        specs = expand("chain-toy", method, seeds="0,1,2", axis="sust")
        for seed in range(3):
            previous = START_RETAIN
            for k in range(3):
                value = per_seed[seed][k]
                _write(store, specs[seed * 3 + k], {"forget_nll": 1.0, "retain_nll": previous},
                       {"forget_nll": 5.0, "retain_nll": value})
                previous = value
        # the scalability points s2, s3 (r1 is shared with the sequence): retain NLL grows with the size
        for spec in expand("chain-toy", method, seeds="0,1,2", axis="scal"):
            if spec.split != "r1":
                grow = {"s2": 0.5, "s3": 1.0}[spec.split]
                _write(store, spec, {"forget_nll": 1.0 + grow, "retain_nll": START_RETAIN},
                       {"forget_nll": 6.0, "retain_nll": per_seed[spec.seed][0] + grow}, tokens={"s2": 200, "s3": 300}[spec.split])
    # not a point of the sequence: r3 unlearned from the start model, with a number that would show
    [alone] = expand("chain-toy", "ga", seeds="0", splits="r3")
    _write(store, alone, {"forget_nll": 1.0, "retain_nll": START_RETAIN}, {"forget_nll": 9.0, "retain_nll": 99.0})

    assert main(["report", "--suite", "chain-toy", "--results", str(store.root)]) == 0
    out = store.suite_dir("chain-toy")
    sust = (out / "axis_sust.md").read_text()
    assert "sustainability: successive requests" in sust and "## retain_nll, base r1" in sust
    assert "## forget_nll" not in sust  # the axis shows the metrics it names
    lines = rows_of(sust)
    for method, per_seed in RETAIN_VALUES.items():
        for k in range(3):
            mean, lo, hi = interval([per_seed[s][k] for s in range(3)])
            assert f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]" in lines[method], (method, k)
        assert "| 3/3/3 " in lines[method]
    # lower retain NLL is better: npo's cells are bold at every request, ga's only where its interval overlaps
    assert lines["npo"].count("**") == 6
    assert [c.strip().startswith("**") for c in lines["ga"].split("|")[4:7]] == [True, False, False]
    assert fmt(START_RETAIN) in lines["(before)"] and lines["(before)"].count("–") == 2
    assert (out / "axis_sust_r1_retain_nll.png").stat().st_size > 10_000

    scal = (out / "axis_scal.md").read_text()
    assert "3: s3 (300 tokens)" in scal and "2: s2 (200 tokens)" in scal
    ga = rows_of(scal.split("## retain_nll, base r1")[1])["ga"]
    mean, lo, hi = interval([RETAIN_VALUES["ga"][s][0] + 1.0 for s in range(3)])
    assert f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]" in ga
    before = rows_of(scal.split("## retain_nll")[0])["(before)"]
    assert [c.strip() for c in before.split("|")[4:7]] == [fmt(1.0), fmt(1.5), fmt(2.0)]  # forget NLL of each set
    assert {p.name for p in out.glob("axis_scal_*.png")} == {"axis_scal_r1_forget_nll.png", "axis_scal_r1_retain_nll.png"}
    page = (out / "index.html").read_text()
    assert "sustainability: successive requests: retain_nll (r1)" in page
    # comparisons (and claims, the paper table) pair runs from the start model only: r1, s2, s3 x 3 seeds, not the
    # later requests, which start from another run's model
    from bench.compare import compare_methods
    from bench.runs import load_runs

    runs = load_runs("chain-toy", store)
    assert {r["n"] for r in compare_methods("chain-toy", runs, "ga", "npo").rows} == {9}
    assert "r2@2" in set(pd.read_csv(out / "leaderboard.csv")["split"])  # the leaderboard lists them apart

    # without the sequence's later requests (request 1 is the ordinary run of r1), the next report drops its
    # section rather than keep stale numbers
    for spec in expand("chain-toy", "ga,npo", seeds="0,1,2", axis="sust"):
        if spec.previous is not None:
            import shutil

            shutil.rmtree(store.run_dir(spec))
    assert main(["report", "--suite", "chain-toy", "--results", str(store.root)]) == 0
    assert not (out / "axis_sust.md").exists() and not list(out.glob("axis_sust_*.png"))


# ---- several processes ----

@pytest.mark.slow
def test_workers_run_a_request_only_after_the_one_it_starts_from(chain, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_BENCH_PLUGINS", "chain_suite")
    monkeypatch.setenv("PYTHONPATH", f"{HELPERS}:{Path(__file__).resolve().parent.parent}")
    results = tmp_path / "results"
    assert main(["-q", "run", "--suite", "chain-toy", "--axis", "sust", "--methods", "ga,npo", "--seeds", "0",
                 "--workers", "2", "--results", str(results)]) == 0
    store = ResultStore(results)
    for method in ("ga", "npo"):
        specs = expand("chain-toy", method, seeds="0", axis="sust")
        recs = records(store, specs)
        assert all(r["status"] == "finished" for r in recs)
        for before, after in zip(recs, recs[1:]):
            assert after["started_at"] >= before["finished_at"]
            assert after["epochs"][0]["metrics"]["retain_nll"] == pytest.approx(before["epochs"][-1]["metrics"]["retain_nll"], rel=1e-6)


# ---- MUSE's axes on the real suite, local files in the hub's schema ----

def _muse_files(root: Path) -> None:
    """A MUSE-News directory in the hub's schema (JSON exports, suites/muse_data.py) and a tiny random Llama
    target and retrained model sharing one tokenizer: numbers without meaning, the whole pipeline."""
    import random

    from bench.tiny import TinyShape, build_tiny, train_tokenizer

    rng = random.Random(0)
    words = "alpha beta gamma delta river stone harbour clock tower bees lake apple north south".split()
    text = lambda n=30: " ".join(rng.choice(words) for _ in range(n)) + "."

    def put(config, split, rows):
        path = root / "data" / "MUSE-News" / config / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))

    for split in ("forget", "retain1", "retain2", "holdout"):
        put("raw", split, [{"text": text()} for _ in range(3)])
    put("verbmem", "forget", [{"prompt": text(8), "gt": text(6)} for _ in range(3)])
    for split in ("forget_qa", "forget_qa_icl", "retain_qa", "retain_qa_icl"):
        put("knowmem", split, [{"question": f"What is {rng.choice(words)}?", "answer": rng.choice(words)} for _ in range(3)])
    for split in ("forget", "retain", "holdout"):
        put("privleak", split, [{"text": text(12)} for _ in range(3)])
    for k in range(1, 5):
        put("sust", f"forget_{k}", [{"text": text()} for _ in range(2)])
        put("scal", f"forget_{k}", [{"text": text()} for _ in range(2 * k)])
    tokenizer = train_tokenizer([text() for _ in range(200)], vocab_size=200)
    for name, seed in (("target", 0), ("retrained", 1)):
        model = build_tiny("llama", tokenizer, TinyShape(hidden=32, layers=2, heads=2, intermediate=64, max_positions=128),
                           seed=seed)
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)


@pytest.mark.slow
def test_muses_sustainability_axis_runs_end_to_end_on_local_files(tmp_path):
    """`bench run --suite muse --axis sust`: four requests per method, request 1 the ordinary `news` run, each
    later one evaluated before its first step exactly where the one before ended (every metric)."""
    from bench import axes
    from bench.runs import load_runs

    _muse_files(tmp_path)
    argv = ["--suite", "muse", "--methods", "ga,npo", "--axis", "sust", "--seeds", "0", "--models", str(tmp_path / "target"),
            "--option", f"target={tmp_path / 'target'}", "--option", f"retrained={tmp_path / 'retrained'}",
            "--option", "max_length=32", "--option", "verbmem_tokens=4", "--option", "knowmem_tokens=4",
            "--epochs", "2", "--lr", "1e-3", "--set", "dtype=fp32", "--set", "batch_size=2", "--set", "effective_batch=2"]
    results = tmp_path / "results"
    assert main(["-q", "run", *argv, "--data-dir", str(tmp_path / "data"), "--workers", "1", "--results", str(results)]) == 0
    store = ResultStore(results)
    for method in ("ga", "npo"):
        specs = expand("muse", method, seeds="0", axis="sust", models=str(tmp_path / "target"),
                       hparams={"epochs": "2", "lr": "1e-3", "dtype": "fp32", "batch_size": "2", "effective_batch": "2"},
                       options={"target": str(tmp_path / "target"), "retrained": str(tmp_path / "retrained"),
                                "max_length": "32", "verbmem_tokens": "4", "knowmem_tokens": "4"})
        assert [s.split for s in specs] == ["news", "news-sust2", "news-sust3", "news-sust4"]
        recs = records(store, specs)
        assert all(r["status"] == "finished" for r in recs)
        for before, after in zip(recs, recs[1:]):
            assert after["epochs"][0]["metrics"] == pytest.approx(before["epochs"][-1]["metrics"], rel=1e-6)
    on_axis = axes.points(load_runs("muse", store), SUITES["muse"].axes["sust"])
    assert sorted(on_axis["point"]) == [1, 1, 2, 2, 3, 3, 4, 4]
    written, figures, _ = axes.write(SUITES["muse"], load_runs("muse", store), store.suite_dir("muse"))
    assert [p.name for p in written] == ["axis_sust.md"] and len(figures) == 3


def test_a_fresh_start_that_fails_on_its_inputs_keeps_the_exported_model_and_the_record(chain, ctx, monkeypatch):
    """A finished request whose model a later one starts from is recomputed (--force, or changed inputs) and the
    new attempt fails on its inputs (a one-line error): the record is restored byte for byte and so is the
    exported model it belongs to; nothing is left set aside."""
    specs = expand("chain-toy", "ga", seeds="0", axis="sust")
    assert not run_grid(specs, ctx, show_progress=False).failed
    first = ctx.store.run_dir(specs[0])
    exported = final_model(first)
    before = {p.relative_to(first): p.read_bytes() for p in Path(exported).rglob("*") if p.is_file()}
    record = (first / "run.json").read_bytes()

    def bad_inputs(spec, ctx):
        raise BenchError("missing data file /nowhere/forget.json")

    monkeypatch.setattr(SUITES["chain-toy"], "prepare", bad_inputs)
    with pytest.raises(BenchError, match="missing data file"):
        run_one(specs[0], ctx, force=True)
    assert (first / "run.json").read_bytes() == record
    assert {p.relative_to(first): p.read_bytes() for p in Path(exported).rglob("*") if p.is_file()} == before
    assert not [p for p in first.iterdir() if p.name.startswith(".model")]
