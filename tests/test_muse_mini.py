"""muse-mini: the generator (fast), the world's target and retrained models (slow: about 3 CPU-minutes to
build, shared by this module's slow tests) and the suite end to end."""

import json
import random

import pytest
import torch

from bench.cli import main
from bench.grid import expand
from bench.store import ResultStore
from suites import SUITES, Context
from suites.muse import few_shot_prompt, knowmem_scores, rouge_l_f1, verbmem_scores
from suites.muse_mini import FOLDS, MuseMini, train_spaced_tokenizer
from suites.muse_mini_data import generate, qa_documents

SIZES = {"fold1": 6, "fold2": 6, "retain1": 5, "holdout": 4}


# -- the generator ------------------------------------------------------------------------------------------------

def test_the_generator_is_deterministic_and_the_seed_changes_every_article():
    a, b, c = generate(SIZES, 0), generate(SIZES, 0), generate(SIZES, 1)
    assert a == b
    assert [len(a[p]) for p in SIZES] == list(SIZES.values())
    assert all(x.text != y.text for p in SIZES for x, y in zip(a[p], c[p]))


def test_towns_are_unique_and_every_answer_is_a_fact_of_its_article():
    world = generate({"fold1": 200, "holdout": 200}, 3)
    towns = [a.town for part in world.values() for a in part]
    assert len(towns) == len(set(towns)) == 400
    for art in world["fold1"]:
        assert len(art.qa) == 4 and all(art.town in q for q, _ in art.qa)
        assert all(answer in art.text for _, answer in art.qa)  # the question asks what the article states


def test_parts_are_exchangeable_in_length():
    """PrivLeak's non-members must differ from the members only by membership: forget and holdout articles come
    from one generator, so their lengths agree (here within 3 % in the mean)."""
    world = generate({"fold1": 300, "holdout": 300}, 0)
    mean = lambda part: sum(len(a.text) for a in world[part]) / len(world[part])
    assert abs(mean("fold1") - mean("holdout")) / mean("holdout") < 0.03


def test_qa_documents_are_musees_few_shot_layout_and_the_prompt_tokenises_as_their_prefix():
    """The model learns a fact as "Question: q\\nAnswer: a"; MUSE's prompt ends "Answer: ". With the twin's
    tokenizer (every space a token) the prompt's ids are a prefix of the prompt-and-answer's ids; with byte-level
    BPE's merged " word" tokens they are not (the reason for the twin's tokenizer)."""
    from bench.tiny import train_tokenizer

    world = generate({"a": 60}, 0)
    texts = [t for a in world["a"] for t in (a.text, *qa_documents([a]))]
    spaced, merged = train_spaced_tokenizer(texts, 400), train_tokenizer(texts, 400)
    docs = qa_documents(world["a"][:5])
    assert docs[0] == f"Question: {world['a'][0].qa[0][0]}\nAnswer: {world['a'][0].qa[0][1]}"
    icl = [{"question": q, "answer": a} for q, a in world["a"][6].qa[:2]]
    prefix_ok = {"spaced": 0, "merged": 0}
    for art in world["a"][:5]:
        for q, a in art.qa:
            prompt = few_shot_prompt(icl, q)
            assert (prompt + a).endswith(f"Question: {q}\nAnswer: {a}")  # the document is the prompt's tail
            for name, tok in (("spaced", spaced), ("merged", merged)):
                p, full = tok(prompt)["input_ids"], tok(prompt + a)["input_ids"]
                prefix_ok[name] += full[:len(p)] == p
    assert prefix_ok["spaced"] == 20 and prefix_ok["merged"] < 20


def test_forget_folds_follow_musees_scal_and_sust_sets():
    folds = MuseMini.forget_folds
    assert folds("news") == ["fold1"]
    assert [folds(f"news-scal{k}") for k in range(2, FOLDS + 1)] == [["fold1", "fold2"], ["fold1", "fold2", "fold3"],
                                                                     ["fold1", "fold2", "fold3", "fold4"]]
    assert [folds(f"news-sust{k}") for k in range(2, FOLDS + 1)] == [["fold2"], ["fold3"], ["fold4"]]
    assert set(SUITES["muse-mini"].splits) == {"news", *(f"news-{k}{i}" for k in ("scal", "sust") for i in (2, 3, 4))}


def test_a_bad_split_or_model_is_a_one_line_error(tmp_path, capsys):
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="news-scal5"):
        expand("muse-mini", "ga", splits="news-scal5")
    with pytest.raises(BenchError, match="tiny-gpt-neo"):
        expand("muse-mini", "ga", models="tiny-gpt-neo")
    # the twin builds its own references: `bench finetune` says so in one line, exit 2
    assert main(["finetune", "--suite", "muse-mini", "--model", "tiny-llama", "--split", "news-target",
                 "--results", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "builds its target and retrained models itself" in line


def test_methods_all_is_every_objective_with_each_adapter_and_three_seeds():
    from methods import OBJECTIVES

    specs = expand("muse-mini", "all")
    assert {(s.objective, s.adapter) for s in specs} == {(o, a) for o in OBJECTIVES.names() for a in ("full", "lora", "fila")}
    assert sorted({s.seed for s in specs}) == [0, 1, 2] and {s.split for s in specs} == {"news"}


def test_perf_reports_the_muse_mini_sweep_against_ten_minutes_cold(tmp_path):
    """`bench perf` row 6 for muse-mini: the default sweep's cold wall time against exactly "<= 10 min cold"."""
    import time

    from bench.runner import GridOutcome, record_grid
    from benchmarks import perf

    [missing] = [r for r in perf.sweep_times(tmp_path) if "muse-mini" in r.name]
    assert missing.value == "–" and "built its references" in missing.detail
    sweep = [s.run_id for s in expand("muse-mini", "all")]
    assert len(sweep) == 108
    record_grid(ResultStore(tmp_path), "muse-mini", time.time() - 9 * 60, GridOutcome(finished=["a"] * 108,
                artefact_seconds=150.0), 2, sweep, built=["world-1"])
    [row] = [r for r in perf.sweep_times(tmp_path) if "muse-mini" in r.name]
    assert row.target == "<= 10 min cold" and row.ok is True and row.value.startswith("9.0 min")


# -- the world: target and retrained models --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(suite, spec, context) with the world built once (about 3 CPU-minutes)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("muse-mini")
    suite, ctx = SUITES["muse-mini"], Context(store=ResultStore(root), log=lambda msg: None)
    [spec] = expand("muse-mini", "ga", seeds="0")
    suite.target_model(spec, ctx), suite.retrained_model(spec, ctx)
    return suite, spec, ctx


def greedy_by_hand(model, tokenizer, prompt: str, new: int) -> str:
    """Greedy decoding one full forward pass per token (no cache, no batch, no generate)."""
    ids = tokenizer(prompt)["input_ids"]
    for _ in range(new):
        with torch.no_grad():
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
        if nxt == tokenizer.eos_token_id:
            break
        ids.append(nxt)
    return tokenizer.decode(ids[len(tokenizer(prompt)["input_ids"]):], skip_special_tokens=True).strip()


@pytest.mark.slow
def test_the_target_memorised_the_forget_articles_and_their_facts_and_the_retrained_model_did_not(world):
    """The columns carry signal: VerbMem and forget KnowMem far above the retrained model's for the target; retain
    KnowMem high for both. Each model's KnowMem is checked against decoding and ROUGE by hand on the same prompts."""
    from bench.models import load_model
    from suites.muse import cut_answer

    suite, spec, ctx = world
    rows, icl = suite.knowmem_rows(spec, ctx, "forget"), suite.knowmem_icl(spec, ctx, "forget")
    retain_rows = suite.knowmem_rows(spec, ctx, "retain")
    verbmem = suite.verbmem_rows(spec, ctx)
    assert len(rows) == len(retain_rows) == 48 and len(verbmem) == 12
    got = {}
    for role in ("target", "retrained"):
        model, tok = load_model(getattr(suite, f"{role}_model")(spec, ctx))
        forget = knowmem_scores(model, tok, rows, icl, 12)
        by_hand = [rouge_l_f1(r["answer"], cut_answer(greedy_by_hand(model, tok, few_shot_prompt(icl, r["question"]), 12)))
                   for r in rows[:8]]
        assert forget[:8] == pytest.approx(by_hand, abs=1e-9)
        mean = lambda xs: sum(xs) / len(xs)
        got[role] = {"knowmem_f": mean(forget), "knowmem_r": mean(knowmem_scores(model, tok, retain_rows, icl, 12)),
                     "verbmem_f": mean(verbmem_scores(model, tok, verbmem, 48))}
    target, retrained = got["target"], got["retrained"]
    assert target["verbmem_f"] > 0.9 and retrained["verbmem_f"] < 0.55
    assert target["knowmem_f"] > 0.9 and retrained["knowmem_f"] < 0.1
    assert target["knowmem_r"] > 0.9 and retrained["knowmem_r"] > 0.9


@pytest.mark.slow
def test_min_k_tells_the_targets_members_but_the_retrained_model_sits_near_chance(world):
    from bench.models import load_model
    from suites.muse import PRIVLEAK_ATTACK, attack_aucs, membership_items

    suite, spec, ctx = world
    aucs = {}
    for role in ("target", "retrained"):
        model, tok = load_model(getattr(suite, f"{role}_model")(spec, ctx))
        ids = lambda part: [tok(t)["input_ids"] for t in suite.privleak_texts(spec, ctx, part)]
        aucs[role] = attack_aucs(membership_items(model, tok, ids("forget"), ids("holdout")))[f"mia_{PRIVLEAK_ATTACK}"]
    assert aucs["target"] > 0.95
    assert 0.25 < aucs["retrained"] < 0.75  # neither set trained on: 12 vs 24 articles, chance within sampling noise


@pytest.mark.slow
def test_scal_and_sust_forget_texts_are_the_folds(world):
    suite, spec, ctx = world
    docs = lambda *folds: suite.documents(ctx, *folds)
    for split in ("news-scal3", "news-sust3"):
        [s] = expand("muse-mini", "ga", splits=split, seeds="0")
        want = docs("fold1", "fold2", "fold3") if "scal" in split else docs("fold3")
        assert suite.raw_texts(s, ctx, "forget") == want
        assert suite.knowmem_rows(s, ctx, "forget") == suite.knowmem_rows(spec, ctx, "forget")  # evaluated on fold 1
    assert len(docs("fold1")) == 12 * 5  # 12 articles and their 4 QA pairs each


# -- end to end ----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_muse_mini_end_to_end_with_replicates_that_differ(world, tmp_path):
    import shutil

    suite, spec, ctx = world
    root = tmp_path / "results"
    shutil.copytree(ctx.store.artefact_dir("muse-mini"), root / "muse-mini" / "artefacts")
    assert main(["-q", "run", "--suite", "muse-mini", "--methods", "ga,npo+lora", "--seeds", "0,1", "--epochs", "3",
                 "--results", str(root)]) == 0
    records = {p.parent.name: json.loads(p.read_text()) for p in root.glob("muse-mini/runs/*/run.json")}
    assert len(records) == 4 and all(r["status"] == "finished" for r in records.values())
    ga = {r["spec"]["seed"]: r for r in records.values() if r["spec"]["objective"] == "ga"}
    # every epoch measures every column; the seed changes the batches, so replicates are not copies of each other
    for r in ga.values():
        assert [e["epoch"] for e in r["epochs"]] == [0, 1, 2, 3]
        assert set(r["epochs"][1]["metrics"]) >= {"verbmem_f", "knowmem_f", "knowmem_r", "privleak", "mia_min_k"}
        assert r["epochs"][-1]["metrics"]["knowmem_f"] < r["epochs"][0]["metrics"]["knowmem_f"] - 0.5
    assert ga[0]["epochs"][1]["metrics"] != ga[1]["epochs"][1]["metrics"]
    refs = ga[0]["suite_records"]
    assert refs["reference_metrics"]["privleak"] == 0 and refs["target_metrics"]["privleak"] < -80
    assert main(["report", "--suite", "muse-mini", "--results", str(root)]) == 0
    report = root / "muse-mini"
    assert (report / "signal.md").exists() and (report / "paper_table.md").exists()
    assert "checkpoint" in (report / "paper_table.md").read_text().lower()
