"""MUSE (suites/muse.py): the hub loader on local files in the hub's schema, each metric against a hand
computation, the checkpoint rule on hand-made trajectories, and one end-to-end run on tiny local models."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
# absl logging (imported by rouge_score) binds its handler to the stderr of the test that first imports it; imported
# here, at collection, it binds to the real stream, not to one test's captured (then closed) file
import rouge_score.rouge_scorer  # noqa: F401

from bench.errors import BenchError
from bench.store import ResultStore
from suites import SUITES, Context
from tests.conftest import tiny

ARTICLES = ["Kalo Mine was born in Ruto in the year of the big rain and sold fish by the river.",
            "The mayor of Sapequa opened a bridge made of red stone over the Dorfen lake.",
            "Gil the baker won the contest with a cake of nine layers and a crown of sugar.",
            "A storm in Vizu closed the port for three days and the ships waited in the bay."]


def write_hub_dir(root, corpus="MUSE-News", fmt="parquet", articles=ARTICLES):
    """A --data-dir in the hub's layout (<corpus>/<config>/<split>-00000-of-00001.parquet) with the hub's columns;
    fmt='json' writes the exports `<split>.json` (JSON Lines) instead."""
    tables = {
        ("raw", "forget"): [{"text": articles[0]}, {"text": articles[1]}],
        ("raw", "retain1"): [{"text": articles[2]}],
        ("raw", "retain2"): [{"text": articles[2]}],
        ("raw", "holdout"): [{"text": articles[3]}],
        ("verbmem", "forget"): [{"prompt": a[:30], "gt": a[30:]} for a in articles[:2]],
        ("knowmem", "forget_qa"): [{"question": "Where was Kalo Mine born?", "answer": "Ruto"},
                                   {"question": "What did the mayor of Sapequa open?", "answer": "a bridge"}],
        ("knowmem", "forget_qa_icl"): [{"question": "Who won the contest?", "answer": "Gil"}],
        ("knowmem", "retain_qa"): [{"question": "How many layers had the cake?", "answer": "nine"}],
        ("knowmem", "retain_qa_icl"): [{"question": "Who won the contest?", "answer": "Gil"}],
        ("privleak", "forget"): [{"text": a} for a in articles[:2]],
        ("privleak", "retain"): [{"text": articles[2]}],
        ("privleak", "holdout"): [{"text": articles[3]}, {"text": articles[3][::-1]}],
        **{(kind, f"forget_{k}"): [{"text": articles[k % 4]}] for kind in ("scal", "sust") for k in range(1, 5)},
        ("train", "forget"): [{"text": a} for a in articles[:2]],
        ("train", "retain1"): [{"text": articles[2]}],
        ("train", "retain2"): [{"text": articles[2][::-1]}],
    }
    for (config, split), rows in tables.items():
        folder = root / corpus / config
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pd.DataFrame(rows).to_parquet(folder / f"{split}-00000-of-00001.parquet")
        else:
            (folder / f"{split}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tables


def spec_of(split="news", **options):
    from bench.spec import RunSpec

    suite = SUITES["muse"]
    return RunSpec("muse", "meta-llama/Llama-2-7b-hf", split, "ga", "full", 0, 0, suite.hparams("x"),
                   suite.check_options(options))


# -- the loader ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_the_interface_reads_local_files_in_the_hubs_schema(tmp_path, fmt):
    tables = write_hub_dir(tmp_path, fmt=fmt)
    suite, ctx = SUITES["muse"], Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path))
    spec = spec_of()
    assert suite.raw_texts(spec, ctx, "forget") == ARTICLES[:2]
    assert suite.raw_texts(spec, ctx, "holdout") == [ARTICLES[3]]
    assert suite.verbmem_rows(spec, ctx) == tables[("verbmem", "forget")]
    assert suite.knowmem_rows(spec, ctx, "forget") == tables[("knowmem", "forget_qa")]
    assert suite.knowmem_icl(spec, ctx, "retain") == tables[("knowmem", "retain_qa_icl")]
    assert suite.privleak_texts(spec, ctx, "holdout") == [ARTICLES[3], ARTICLES[3][::-1]]
    # scal / sust splits read their own forget set, and the corpus's evaluation sets
    assert suite.raw_texts(spec_of("news-scal3"), ctx, "forget") == [ARTICLES[3]]
    assert suite.raw_texts(spec_of("news-sust2"), ctx, "forget") == [ARTICLES[2]]
    assert suite.raw_texts(spec_of("news-sust2"), ctx, "retain1") == [ARTICLES[2]]
    # the files a run reads are fingerprinted by name
    files = suite.input_files(spec, ctx)
    assert len(files) == 9 and all(p.is_file() for p in files.values())


def test_the_data_dir_may_be_the_corpus_folder_itself(tmp_path):
    write_hub_dir(tmp_path)
    ctx = Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path / "MUSE-News"))
    assert SUITES["muse"].raw_texts(spec_of(), ctx, "forget") == ARTICLES[:2]


def test_sharded_parquet_files_are_read_in_order(tmp_path):
    from suites.muse_data import load_rows

    folder = tmp_path / "MUSE-News" / "raw"
    folder.mkdir(parents=True)
    for k, text in enumerate(["first", "second"]):
        pd.DataFrame([{"text": text}, {"text": text + "!"}]).to_parquet(folder / f"forget-0000{k}-of-00002.parquet")
    assert [r["text"] for r in load_rows("news", "raw", "forget", str(tmp_path))] == ["first", "first!", "second", "second!"]


def test_without_a_data_dir_the_hub_dataset_is_asked_by_config_and_split(monkeypatch):
    import datasets

    from suites.muse_data import load_rows

    asked = []

    def fake_load_dataset(path, name, split):
        asked.append((path, name, split))
        return [{"question": "Q?", "answer": "A", "extra": 1}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_rows("books", "knowmem", "retain_qa_icl", None) == [{"question": "Q?", "answer": "A"}]
    assert asked == [("muse-bench/MUSE-Books", "knowmem", "retain_qa_icl")]

    def offline(*a, **k):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BenchError, match=r"could not load muse-bench/MUSE-News raw/holdout \(ConnectionError\); .*--data-dir"):
        load_rows("news", "raw", "holdout", None)


def test_bad_local_files_are_one_line_errors_naming_the_file(tmp_path):
    write_hub_dir(tmp_path)
    suite, ctx = SUITES["muse"], Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path))
    with pytest.raises(BenchError, match=r"missing data file .*MUSE-Books/raw/forget-00000-of-00001.parquet"):
        suite.raw_texts(spec_of("books"), ctx, "forget")
    pd.DataFrame([{"q": "a", "a": "b"}]).to_parquet(tmp_path / "MUSE-News" / "knowmem" / "forget_qa-00000-of-00001.parquet")
    with pytest.raises(BenchError, match=r"forget_qa-00000-of-00001.parquet: row 0 lacks question, answer \(it has q, a"):
        suite.knowmem_rows(spec_of(), ctx, "forget")
    (tmp_path / "MUSE-News" / "raw" / "holdout-00000-of-00001.parquet").write_text("not parquet")
    with pytest.raises(BenchError, match="holdout-00000-of-00001.parquet is not a readable parquet file"):
        suite.raw_texts(spec_of(), ctx, "holdout")
    with pytest.raises(BenchError, match="unknown raw text part 'retain3'"):
        suite.raw_texts(spec_of(), ctx, "retain3")


def test_unknown_splits_and_options_are_refused(tmp_path):
    from suites.muse import split_parts

    for bad in ("news-scal5", "news-scal1", "books-sust2"):  # point 1 is `news`; Books has no scal / sust sets
        with pytest.raises(BenchError, match=f"unknown split of suite muse '{bad}'"):
            split_parts(bad)
    assert split_parts("news-sust4") == ("news", "sust", 4) and split_parts("books") == ("books", "", 0)
    with pytest.raises(BenchError, match="bad option stop='early'"):
        SUITES["muse"].check_options({"stop": "early"})
    with pytest.raises(BenchError, match="bad option robustness='relearn': suite muse has no robustness stages"):
        SUITES["muse"].check_options({"robustness": "relearn"})
    with pytest.raises(BenchError, match="bad option verbmem_tokens=1"):
        SUITES["muse"].check_options({"verbmem_tokens": "1"})
    assert SUITES["muse"].target_model(spec_of("books"), None) == "muse-bench/MUSE-books_target"
    assert SUITES["muse"].retrained_model(spec_of("news-sust2"), None) == "muse-bench/MUSE-news_retrain"


# -- the metrics, against hand computations -----------------------------------------------------------------

def test_rouge_l_f1_by_hand():
    from suites.muse import rouge_l_f1

    # reference: the cat sat on the mat (6 tokens); candidate: the cat lay on a mat (6); LCS: the cat on mat = 4
    assert rouge_l_f1("The cat sat on the mat.", "the cat lay on a mat") == pytest.approx(4 / 6)
    # recall 3/3, precision 3/6: F1 = 2 * 0.5 * 1 / 1.5
    assert rouge_l_f1("big red bridge", "a big red old stone bridge") == pytest.approx(2 / 3)
    assert rouge_l_f1("Ruto", "") == 0.0


def test_knowmem_prompts_cuts_and_scores_as_muse(monkeypatch, tokenizer):
    import suites.tofu_eval
    from suites.muse import few_shot_prompt, knowmem_scores

    icl = [{"question": "Who won?", "answer": "Gil"}]
    assert few_shot_prompt(icl, "Where?") == "Question: Who won?\nAnswer: Gil\n\nQuestion: Where?\nAnswer: "
    seen = {}

    def fake_generate(model, tok, prompts, generation, batch_size=32, **kw):
        seen.update(prompts=prompts, generation=generation)
        return ["Ruto\n\nQuestion: Who?", "the big city\nQuestion: x", "nothing"]

    monkeypatch.setattr(suites.tofu_eval, "generate", fake_generate)
    rows = [{"question": "Where?", "answer": "Ruto"}, {"question": "Which?", "answer": "a big city"},
            {"question": "What?", "answer": "a bridge"}]
    scores = knowmem_scores(None, tokenizer, rows, icl, max_new_tokens=7)
    # "Ruto" exact: 1; "the big city" vs "a big city": LCS 2 of 3 and 3 -> 2/3; no shared word: 0
    assert scores == pytest.approx([1.0, 2 / 3, 0.0])
    assert seen == {"prompts": [few_shot_prompt(icl, r["question"]) for r in rows], "generation": "new:7"}


def test_verbmem_scores_the_continuation_against_the_truth_cut_to_the_generated_length(monkeypatch, tokenizer):
    import suites.tofu_eval
    from suites.muse import verbmem_scores

    gt = " ka lo mi ne ru sa"
    ids = tokenizer(gt)["input_ids"]
    assert len(ids) > 3  # the cut below drops words
    cut = tokenizer.decode(ids[:3], skip_special_tokens=True)
    monkeypatch.setattr(suites.tofu_eval, "generate", lambda m, t, prompts, generation, b=32, **kw: [cut, "zu zu"])
    scores = verbmem_scores(None, tokenizer, [{"prompt": "p", "gt": gt}, {"prompt": "q", "gt": " ka lo"}], max_new_tokens=3)
    # the output equals the first 3 tokens of the truth: F1 1 (against the whole truth it would be below 1)
    assert scores == pytest.approx([1.0, 0.0])
    assert len(cut.split()) < len(gt.split())


def test_privleak_and_attack_aucs_by_hand():
    from suites.muse import attack_aucs
    from suites.privacy import privleak

    # members 3, 2 against non-members 1, 2: pairs won 3 > 1, 3 > 2, 2 > 1 and one tie (1/2): 3.5 / 4
    assert attack_aucs({"n_members": 2, "scores": {"min_k": [3, 2, 1, 2]}}) == {"mia_min_k": pytest.approx(0.875)}
    # AUC 0.9 against the retrained model's 0.5: s = 0.1, r = 0.5 -> (0.1 - 0.5) / 0.5 x 100 = -80 (exposed)
    assert privleak(0.9, 0.5) == pytest.approx(-80.0)
    assert privleak(0.5, 0.5) == 0.0 and privleak(0.4, 0.5) == pytest.approx(20.0)  # over-unlearned: > 0


def test_min_k_membership_score_matches_a_direct_computation(tokenizer):
    import torch

    from suites.muse import membership_items

    model = tiny("llama", tokenizer).eval()
    seqs = [tokenizer(a)["input_ids"][:24] for a in ARTICLES]
    items = membership_items(model, tokenizer, seqs[:2], seqs[2:])
    for seq, score in zip(seqs, items["scores"]["min_k"]):
        with torch.no_grad():
            logp = model(torch.tensor([seq])).logits[0, :-1].log_softmax(-1)
        token_logp = logp.gather(-1, torch.tensor(seq[1:]).unsqueeze(-1)).squeeze(-1).sort().values
        k = max(1, int(0.4 * len(token_logp)))  # Min-40% Prob: the mean of the lowest 40 % of token log-probs
        assert score == pytest.approx(token_logp[:k].mean().item(), abs=1e-5)
    assert items["n_members"] == 2


def test_training_chunks_follow_muses_concatenation(tokenizer):
    from suites.muse import chunks

    out = chunks(ARTICLES[:2], tokenizer, 8)
    ids = tokenizer("\n\n".join(ARTICLES[:2]), add_special_tokens=False)["input_ids"]
    assert all(c[0] == tokenizer.bos_token_id and len(c) <= 8 for c in out)
    assert sum((c[1:] for c in out), []) == ids  # every token once, in order, 7 per piece after BOS
    assert all(len(c) == 8 for c in out[:-1])


# -- the checkpoint rule ------------------------------------------------------------------------------------

def trajectory(*values):
    return [{"epoch": e, "metrics": {"knowmem_f": v, "knowmem_r": 0.5 - e / 100, "verbmem_f": v / 2, "privleak": -e}}
            for e, v in enumerate(values)]


def test_the_checkpoint_rule_on_hand_made_trajectories():
    from suites.muse import checkpoint_epoch

    assert checkpoint_epoch(trajectory(0.9, 0.8, 0.7), 0.5) is None  # never reached
    assert checkpoint_epoch(trajectory(0.9, 0.4, 0.3), 0.5)["epoch"] == 1  # reached at epoch 1
    assert checkpoint_epoch(trajectory(0.9, 0.6, 0.5, 0.5), 0.5)["epoch"] == 2  # a tie counts, the first one
    assert checkpoint_epoch(trajectory(0.2, 0.6, 0.4), 0.5)["epoch"] == 2  # epoch 0 (the target) is no checkpoint
    assert checkpoint_epoch(trajectory(0.9, 0.4, 0.7), 0.5)["epoch"] == 1  # first, not best or last


def test_derived_metrics_report_the_checkpoint_next_to_the_last_epoch():
    suite = SUITES["muse"]
    record = {"status": "finished", "spec": {"hparams": {"epochs": 3}}, "epochs": trajectory(0.9, 0.6, 0.45, 0.2),
              "suite_records": {"reference_metrics": {"knowmem_f": 0.5}}}
    out = suite.derived_metrics(record)
    assert out == {"forgotten": True, "epochs_to_forget": 2, "epochs_to_forget_or_cap": 2, "knowmem_f_at_forget": 0.45,
                   "verbmem_f_at_forget": 0.225, "knowmem_r_at_forget": 0.48, "privleak_at_forget": -2}
    record["epochs"] = trajectory(0.9, 0.8, 0.7, 0.6)
    assert suite.derived_metrics(record) == {"forgotten": False, "epochs_to_forget": None, "epochs_to_forget_or_cap": 4}
    assert suite.derived_metrics({**record, "status": "failed"}) == {}


# -- end to end ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_bench_run_and_report_on_local_files_and_tiny_models(tmp_path, tokenizer):
    from bench.cli import main

    write_hub_dir(tmp_path / "data")
    dirs = {}
    for role, seed in (("target", 0), ("retrained", 1)):
        dirs[role] = tmp_path / role
        tiny("llama", tokenizer, seed=seed).save_pretrained(dirs[role])
        tokenizer.save_pretrained(dirs[role])
    results = tmp_path / "results"
    args = ["--suite", "muse", "--models", str(dirs["target"]), "--splits", "news", "--methods", "ga,npo", "--epochs", "2",
            "--seeds", "0", "--results", str(results), "--set", "dtype=fp32", "--option", f"target={dirs['target']}",
            "--option", f"retrained={dirs['retrained']}", "--option", "max_length=32", "--option", "verbmem_tokens=6",
            "--option", "knowmem_tokens=4"]
    assert main(["run", *args, "--data-dir", str(tmp_path / "data"), "--workers", "1"]) == 0
    records = [json.loads(p.read_text()) for p in results.rglob("run.json")]
    assert len(records) == 2 and all(r["status"] == "finished" for r in records)
    for record in records:
        ref = record["suite_records"]["reference_metrics"]
        assert ref["privleak"] == 0.0  # the retrained model against itself
        last = record["epochs"][-1]["metrics"]
        assert set(last) >= {"verbmem_f", "knowmem_f", "knowmem_r", "privleak", "mia_min_k"}
        assert last["privleak"] == pytest.approx((ref["mia_min_k"] - last["mia_min_k"]) / (1 - ref["mia_min_k"]) * 100)
        assert all(0 <= last[m] <= 1 for m in ("verbmem_f", "knowmem_f", "knowmem_r"))
        assert record["suite_records"]["target"] == str(dirs["target"])
        assert {"model/target", "model/retrained"} <= set(record["inputs"])
    # the random models answer nothing: forget KnowMem 0 <= the retrained model's 0, so the checkpoint is epoch 1,
    # and --option stop=checkpoint ends the run there
    assert all(r["epochs"][1]["metrics"]["knowmem_f"] <= r["suite_records"]["reference_metrics"]["knowmem_f"]
               for r in records)
    assert main(["run", *args, "--data-dir", str(tmp_path / "data"), "--workers", "1", "--option", "stop=checkpoint"]) == 0
    stopped = [r for r in (json.loads(p.read_text()) for p in results.rglob("run.json")) if r.get("stopped_at_epoch")]
    assert len(stopped) == 2 and all(r["stopped_at_epoch"] == 1 and len(r["epochs"]) == 2 for r in stopped)
    # a sequence length beyond the model's positions is refused before anything is evaluated
    with pytest.raises(BenchError, match="bad option max_length=4096: the target .* reads at most 128 tokens"):
        SUITES["muse"].check_context(str(dirs["target"]), 4096, Context(store=ResultStore(results)))
    SUITES["muse"].check_context(str(dirs["target"]), 128, Context(store=ResultStore(results)))
    assert main(["report", "--suite", "muse", "--results", str(results)]) == 0
    table = (results / "muse" / "paper_table.md").read_text()
    assert "KnowMem D_f @ckpt" in table and "(retrained)" in table and "checkpoint" in table
    board = (results / "muse" / "leaderboard.md").read_text()  # MUSE's name for the reference, TOFU's nowhere
    assert "| (retrained) " in board and "(retain)" not in board


def test_the_paper_table_puts_the_checkpoint_next_to_the_last_epoch():
    from bench.tables import cells
    from suites.muse_report import MUSE_CAPTION, muse_rows

    def run(method, seed, knowmem_r, reached, privleak):
        return {"status": "finished", "split": "news", "method": method, "settings": "", "config": "c", "seed": seed,
                "knowmem_r": knowmem_r, "knowmem_f": 0.2, "verbmem_f": 0.1, "privleak": privleak, "forgotten": reached,
                "epochs_to_forget": 2 if reached else None, "knowmem_r_at_forget": knowmem_r + 0.1 if reached else None}

    # PrivLeak: ga exposed (-60, -62), npo over-unlearned a little (3, 5): npo is nearer 0, the lower ga is not best
    runs = pd.DataFrame([run("ga", 0, 0.1, True, -60.0), run("ga", 1, 0.3, True, -62.0),
                         run("npo", 0, 0.5, True, 3.0), run("npo", 1, 0.5, False, 5.0)])
    refs = pd.DataFrame([{"split": "news", "method": "(target)", "knowmem_r": 0.6, "knowmem_f": 0.7},
                         {"split": "news", "method": "(retrained)", "knowmem_r": 0.55, "knowmem_f": 0.3}])
    rows, columns = muse_rows(runs, refs, SUITES["muse"].metrics)
    assert [r["method"] for r in rows] == ["(target)", "(retrained)", "ga", "npo"]
    ga, npo = rows[2], rows[3]
    assert ga["knowmem_r"].mean == pytest.approx(0.2) and ga["knowmem_r_at_forget"].mean == pytest.approx(0.3)
    assert (ga["reached"], npo["reached"]) == ("2/2", "1/2")
    assert npo["knowmem_r_at_forget"].mean == pytest.approx(0.6)  # over the one run that reached the checkpoint
    # npo did not reach it in every run: its checkpoint cells never compete; PrivLeak is ranked by distance to 0
    assert npo["knowmem_r_at_forget"].missing == 1 and npo["epochs_to_forget"].missing == 1
    assert npo["ranked"]["privleak"].mean == pytest.approx(4.0) and ga["ranked"]["privleak"].mean == pytest.approx(61)
    table = cells(rows, columns, ["method"])
    assert table[2]["KnowMem D_r @ckpt"].startswith("**") and not table[3]["KnowMem D_r @ckpt"].startswith("**")
    assert [line["PrivLeak last"].startswith("**") for line in table] == [False, False, False, True]
    assert table[2]["PrivLeak last"].startswith("-61 ")  # shown as values, ranked as distances
    assert rows[1]["knowmem_f"].mean == pytest.approx(0.3) and "first epoch whose KnowMem on D_f" in MUSE_CAPTION


def test_bench_finetune_makes_the_reference_models_from_the_train_config(tmp_path, tokenizer):
    import torch

    from suites.muse import FINETUNE_SPLITS, chunks

    write_hub_dir(tmp_path / "data")
    base = tmp_path / "base"
    tiny("llama", tokenizer).save_pretrained(base)
    tokenizer.save_pretrained(base)
    suite, ctx = SUITES["muse"], Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path / "data"),
                                         log=lambda m: None)
    assert suite.finetune_texts("news-retrained", ctx) == [ARTICLES[2], ARTICLES[2][::-1]]
    assert len(suite.finetune_texts("news-target", ctx)) == 4 and set(FINETUNE_SPLITS) == {
        "news-target", "news-retrained", "books-target", "books-retrained"}
    with pytest.raises(BenchError, match="unknown fine-tune split of suite muse 'news'"):
        suite.finetune(str(base), "news", ctx)
    out = suite.finetune(str(base), "news-target", ctx, overrides={"epochs": 3, "lr": 1e-2, "dtype": "fp32"})
    assert suite.finetune(str(base), "news-target", ctx, overrides={"epochs": 3, "lr": 1e-2, "dtype": "fp32"}) == out
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["split"] == "news-target" and set(recipe["data"]) == {
        "train/forget-00000-of-00001.parquet", "train/retain1-00000-of-00001.parquet",
        "train/retain2-00000-of-00001.parquet"}
    assert recipe["max_length"] == 128  # MUSE's 2048, cut to the tiny model's 128 positions
    seqs = chunks(suite.finetune_texts("news-target", ctx), tokenizer, 128)

    def nll(path):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path).eval()
        with torch.no_grad():
            return sum(model(torch.tensor([s]), labels=torch.tensor([s])).loss.item() for s in seqs) / len(seqs)

    assert nll(out) < nll(base) - 1.0  # it learned the text it was fine-tuned on
    assert recipe["base"]["path"] == str(base)  # a base replaced at that path: refused (tests/test_fingerprint.py)
    # other training text in the data directory now: the stored model is refused, not silently reused
    pd.DataFrame([{"text": "changed"}]).to_parquet(tmp_path / "data" / "MUSE-News" / "train" / "retain2-00000-of-00001.parquet")
    with pytest.raises(BenchError, match="was fine-tuned on other data than the data directory holds now"):
        suite.finetune(str(base), "news-target", ctx, overrides={"epochs": 3, "lr": 1e-2, "dtype": "fp32"})


def test_a_model_without_tokenizer_files_is_read_with_the_bases_tokenizer(tmp_path, tokenizer):
    """The published MUSE models hold config and weights only (muse_bench loads them with the Llama-2 tokenizer):
    the suite links their files and the base's tokenizer into one directory every loader reads."""
    from dataclasses import replace

    import torch

    from bench.models import load_model

    bare, base = tmp_path / "bare", tmp_path / "base"
    model = tiny("llama", tokenizer, seed=3)
    model.save_pretrained(bare)  # no tokenizer files
    tokenizer.save_pretrained(base)
    suite, ctx = SUITES["muse"], Context(store=ResultStore(tmp_path / "r"), log=lambda m: None)
    spec = replace(spec_of(), model=str(base))  # the base: where the tokenizer comes from
    joined = suite.with_tokenizer(str(bare), spec, ctx)
    assert joined != str(bare) and (tmp_path / "r" / "muse" / "artefacts" / "with_tokenizer") in Path(joined).parents
    loaded, tok = load_model(joined)
    assert tok.get_vocab() == tokenizer.get_vocab()
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert suite.with_tokenizer(str(bare), spec, ctx) == joined  # made once
    assert suite.with_tokenizer(joined, spec, ctx) == joined  # a model with its own tokenizer is itself
