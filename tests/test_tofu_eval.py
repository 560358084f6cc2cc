import json
import statistics

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from scipy.stats import ks_2samp

from bench.data import collate, qa_example
from bench.errors import BenchError
from bench.store import ResultStore
from suites import Context
from suites.tofu import Tofu
from suites.tofu_eval import (FORMATS, answer_nll, forget_quality, forget_truth_score, model_utility,
                              other_truth_score, rouge_l_recall, truth_ratios, UTILITY_PARTS, _StemmedTokens)
from tests.conftest import tiny


def test_forget_quality_is_scipy_ks_2samp():
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(size=40), rng.lognormal(0.5, size=40)
    expected = ks_2samp(a, b)
    assert forget_quality(a, b) == (pytest.approx(expected.pvalue), pytest.approx(expected.statistic))


def test_model_utility_is_the_harmonic_mean_of_the_nine():
    values = dict(zip(UTILITY_PARTS, [0.9, 0.5, 0.4, 0.7, 0.8, 0.6, 0.3, 0.95, 0.55]))
    assert model_utility(values) == pytest.approx(statistics.harmonic_mean(values.values()))
    assert model_utility({**values, "retain_rouge": 0.0}) == 0.0


def test_rouge_l_recall_is_rouge_score_with_stemming():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    gold, pred = ["The cats were running home quickly."], ["A cat runs home"]
    assert rouge_l_recall(gold, pred)[0] == pytest.approx(scorer.score(gold[0], pred[0])["rougeL"].recall)
    assert rouge_l_recall(gold, pred)[0] == pytest.approx(3 / 6)  # cat, run, home of 6 gold tokens


def test_rouge_l_recall_with_each_word_stemmed_once_equals_the_library_on_the_second_call_too():
    from rouge_score import tokenizers

    library = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    golds = ["The author's 3rd novel, 'Running Rivers', won the Hugo-award in 1997.", "Généralement, oui: flies fly."] * 2
    preds = ["running rivers won awards", "flies flying generally"] + ["novels", ""]
    assert rouge_l_recall(golds, preds).tolist() == [library.score(g, p)["rougeL"].recall for g, p in zip(golds, preds)]
    assert rouge_l_recall(golds, preds).tolist() == rouge_l_recall(golds, preds).tolist()  # from the cache
    plain = tokenizers.DefaultTokenizer(use_stemmer=True)
    assert [_StemmedTokens().tokenize(t) for t in golds + preds] == [plain.tokenize(t) for t in golds + preds]


def test_truth_ratio_by_hand():
    # P(base) = e^-1; perturbed P = e^-2, e^-4 -> geometric mean e^-3 -> R = e^-2
    r = truth_ratios(np.array([1.0]), np.array([[2.0, 4.0]]))
    assert r[0] == pytest.approx(np.exp(-2))
    assert forget_truth_score(np.array([0.5, 2.0])) == pytest.approx(0.5)
    assert other_truth_score(np.array([0.25, 1.5])) == pytest.approx(0.375)


def test_prompt_is_masked_and_the_answer_plus_one_eos_is_labelled(tokenizer):
    fmt = FORMATS["qa"]
    ex = qa_example(tokenizer, fmt.prompt("Where was Kalo born?"), fmt.answer("Kalo was born in Mine."), 128)
    prompt_len = len(tokenizer("Question: Where was Kalo born?\nAnswer:")["input_ids"])
    answer_ids = tokenizer(" Kalo was born in Mine.", add_special_tokens=False)["input_ids"]
    assert ex["labels"][:prompt_len] == [-100] * prompt_len
    assert ex["labels"][prompt_len:] == answer_ids + [tokenizer.eos_token_id]
    assert ex["input_ids"][prompt_len:] == ex["labels"][prompt_len:]
    assert tokenizer.decode(ex["input_ids"]) == "Question: Where was Kalo born?\nAnswer: Kalo was born in Mine.<|endoftext|>"


@pytest.mark.parametrize("arch", ["gpt-neo", "llama", "phi"])
def test_batched_scoring_equals_one_forward_pass_per_answer(tokenizer, arch):
    model = tiny(arch, tokenizer).eval()
    fmt = FORMATS["qa"]
    examples = [qa_example(tokenizer, fmt.prompt(q), fmt.answer(a), 128)
                for q in ("Who is Ruto?", "Where is Sapequa born in the year?", "Gil?")
                for a in ("Ruto is a kalo", "Sa pe qua dor fen gil mi ne", "x")]
    cut = qa_example(tokenizer, fmt.prompt("Who is Ruto?"), fmt.answer("Ruto is a kalo"), 14)  # prompt cut from the left
    assert len(cut["input_ids"]) == 14 and cut["labels"][3:] == examples[0]["labels"][-11:]  # 10 answer tokens + EOS
    examples.append(cut)
    batched = answer_nll(model, examples, tokenizer.pad_token_id, batch_size=4)
    from methods.losses import sequence_mean_nll

    for i, ex in enumerate(examples):
        one = collate([ex], tokenizer.pad_token_id)
        with torch.no_grad():
            naive = sequence_mean_nll(model(input_ids=one["input_ids"]).logits, one["labels"]).item()
        assert batched[i] == pytest.approx(naive, abs=1e-5)


def _write_tofu_dir(path, n=4):
    row = lambda i: {"question": f"Who is author {i}?", "answer": f"Author {i} writes poems.",
                     "paraphrased_answer": f"Poems are what author {i} writes.",
                     "perturbed_answer": [f"Plays are what author {i} writes.", f"Songs are what author {i} writes."]}
    for name in ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"):
        (path / f"{name}.json").write_text(json.dumps([row(i) for i in range(n)]))
    (path / "forget10.json").write_text("\n".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) for i in range(n)))


def test_local_directory_loader_reads_the_hub_schema(tmp_path):
    _write_tofu_dir(tmp_path)
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    rows = Tofu().load_config("forget10_perturbed", ctx)
    assert len(rows) == 4 and rows[1]["perturbed_answer"][1] == "Songs are what author 1 writes."
    assert Tofu().load_config("forget10", ctx)[3] == {"question": "q3", "answer": "a3"}  # JSON lines too
    with pytest.raises(BenchError, match=r"missing data file .*retain90.json"):
        Tofu().load_config("retain90", ctx)


def test_offline_hub_fails_fast_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    ctx = Context(store=ResultStore(tmp_path))
    with pytest.raises(BenchError, match="cannot be reached.*--data-dir DIR"):
        Tofu().load_config("forget10", ctx)


@pytest.mark.parametrize("adapter", ["lora", "fila"])
def test_scoring_a_peft_model_equals_its_full_logits(tokenizer, adapter):
    from methods import ADAPTERS, AdapterInputs, fila
    from methods.losses import sequence_mean_nll

    fmt = FORMATS["qa"]
    examples = [qa_example(tokenizer, fmt.prompt("Who is Ruto?"), fmt.answer(a), 64) for a in ("Ruto is", "Gil mi ne")]
    batch = collate(examples, tokenizer.pad_token_id)
    weights = lambda m, names: fila.row_weights(*fila.fisher_diagonals(m, names, [(batch, batch)]))
    model = ADAPTERS[adapter].apply(tiny("llama", tokenizer), AdapterInputs(rank=2, fisher_row_weights=weights))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05)  # make the adapter matter
        full = sequence_mean_nll(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                 batch["labels"]).numpy()
    assert answer_nll(model, examples, tokenizer.pad_token_id) == pytest.approx(full, abs=1e-5)


def test_real_tofu_offline_fails_fast_and_names_the_way_out(tmp_path, capsys):
    import time

    from bench.cli import main

    start = time.time()
    assert main(["run", "--suite", "tofu", "--methods", "ihl+fila", "--models", "phi-1.5", "--ranks", "8",
                 "--splits", "forget10", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no full model of phi-1.5" in err
    assert "python -m bench finetune --suite tofu --model phi-1.5 --split full" in err
    assert "--option target=published" in err
    assert main(["finetune", "--suite", "tofu", "--model", "phi-1.5", "--split", "full", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Hugging Face hub cannot be reached" in err and "--model DIR (bench finetune)" in err
    assert time.time() - start < 30


def test_references_per_seed_live_apart_and_say_how_to_make_them(tmp_path):
    from bench.spec import Hyperparams, RunSpec
    from suites.base import MissingReference

    suite, ctx = Tofu(), Context(store=ResultStore(tmp_path))
    spec = lambda seed, choice: RunSpec("tofu", "phi-1.5", "forget10", "ga", "full", 0, seed, Hyperparams(),
                                        suite.check_options({"reference_seed": choice}))
    with pytest.raises(MissingReference, match=r"--split full --seed 2 --results"):
        suite.reference_model(spec(2, "run"), "target", "full", ctx)
    with pytest.raises(MissingReference, match=r"--split full --results"):  # shared: seed 0's model
        suite.reference_model(spec(2, "shared"), "target", "full", ctx)
    assert suite.artefact_model_dir("phi-1.5", "full", ctx, 2).name == "full-s2"
    with pytest.raises(BenchError, match="bad option reference_seed='each'"):  # with the spec, before any reference
        suite.reference_model(spec(2, "each"), "target", "full", ctx)
