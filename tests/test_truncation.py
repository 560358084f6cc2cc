"""Issue 20, item 1: a length limit never costs the scored part, and nothing is scored over zero tokens.

Every value is recomputed here by hand: one forward pass over the manually left-cut sequence."""

import numpy as np
import pytest
import torch

from bench.data import qa_example
from bench.errors import BenchError
from bench.truncation import fit_prompt, left_cut
from suites.tofu_eval import FORMATS, EvalSet, answer_nll, evaluate_sets, generate, paraphrase_probe
from tests.conftest import choice_accuracy_by_hand, tiny

LONG_QUESTION = "Who is " + "ka lo mi ne ru sa " * 20 + "?"


@pytest.fixture(scope="module")
def mini_tokenizer():
    """tofu-mini's tokenizer: its recipe on its generated corpus (suites/tofu_mini.py, stage A)."""
    from bench.tiny import train_tokenizer
    from suites.tofu_mini import DATA
    from suites.tofu_mini_data import generate as generate_data

    return train_tokenizer([r["text"] for r in generate_data(**DATA)["tokenizer_corpus"]], vocab_size=2000)


def manual_answer_prob(model, tokenizer, prompt: str, answer: str, max_length: int) -> float:
    """P(answer + EOS | prompt) as exp(-mean token NLL), the prompt cut from the left by hand."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = prompt_ids[len(prompt_ids) - min(len(prompt_ids), max_length - len(answer_ids)):] + answer_ids
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].double().log_softmax(-1)
    start = len(ids) - len(answer_ids)
    nll = -np.mean([logp[t - 1, ids[t]].item() for t in range(start, len(ids))])
    return float(np.exp(-nll))


def test_the_issue_example_scores_the_whole_answer_not_a_certainty(mini_tokenizer):
    """Issue 20's example: a question longer than tofu-mini's 128 tokens and one short item. Before the fix
    the long item kept its prompt, lost every answer token and scored P(a) = 1 (forget_prob 0.501)."""
    tok, fmt = mini_tokenizer, FORMATS["qa"]
    model = tiny("llama", tok).eval()
    long_item = {"question": LONG_QUESTION, "answer": "Ruto is a kalo mine", "paraphrased_answer": "Ruto is a mine kalo",
                 "perturbed_answer": ["Ruto is a sa ne", "Ruto is a lo mi"]}
    short_item = {"question": "Who is Ruto?", "answer": "Ruto is a sa ne", "paraphrased_answer": "Ruto is sa ne",
                  "perturbed_answer": ["Ruto is a kalo", "Ruto is a mine"]}
    assert len(fmt.prompt_ids(tok, LONG_QUESTION)) > 128  # the whole prompt does not fit
    metrics, items = evaluate_sets(model, tok, [EvalSet("forget", [long_item, short_item], "paraphrased_answer", False)],
                                   fmt, "new:4", max_length=128)
    expected = [manual_answer_prob(model, tok, fmt.prompt(it["question"]), fmt.answer(it["answer"]), 128)
                for it in (long_item, short_item)]
    assert items["forget"]["prob"] == pytest.approx(expected, rel=1e-6)
    assert metrics["forget_prob"] == pytest.approx(np.mean(expected), rel=1e-6)
    assert metrics["forget_prob"] < 0.01  # not (1 + P(short)) / 2 = 0.5
    ratio = items["forget"]["truth_ratio"][0]
    assert ratio != pytest.approx(1.0)  # the truth ratio compares scored answers, not two certainties


def test_a_qa_example_keeps_its_answer_and_cuts_the_prompt_from_the_left(tokenizer):
    fmt = FORMATS["qa"]
    whole = qa_example(tokenizer, fmt.prompt(LONG_QUESTION), fmt.answer("Ruto is a kalo"), 10_000)
    cut = fmt.example(tokenizer, LONG_QUESTION, "Ruto is a kalo", 40)
    n_answer = sum(1 for label in whole["labels"] if label != -100)
    assert len(cut["input_ids"]) == 40
    assert cut["input_ids"] == whole["input_ids"][-40:]  # the last 40 tokens: prompt tail + the whole answer
    assert cut["labels"][-n_answer:] == whole["labels"][-n_answer:] and cut["labels"][:-n_answer] == [-100] * (40 - n_answer)


def test_an_answer_that_cannot_fit_names_the_item(tokenizer):
    with pytest.raises(BenchError, match=r"item 'Who is Ruto\?' cannot be scored: its answer is 11 tokens .*max_length=11"):
        FORMATS["qa"].example(tokenizer, "Who is Ruto?", "Ruto is a kalo", 11)
    assert len(FORMATS["qa"].example(tokenizer, "Who is Ruto?", "Ruto is a kalo", 12)["input_ids"]) == 12  # one prompt token


def test_a_leading_bos_stays_when_the_prompt_is_cut():
    assert left_cut([1, 5, 6, 7, 8], 3, bos_id=1) == [1, 7, 8]
    assert left_cut([5, 6, 7, 8], 3, bos_id=1) == [6, 7, 8]
    assert left_cut([1, 5, 6], 5, bos_id=1) == [1, 5, 6]  # fits: unchanged
    assert fit_prompt([1, 5, 6, 7], [9, 9, 2], 5, "q", bos_id=1) == [1, 7]
    with pytest.raises(BenchError, match="an empty prompt"):
        fit_prompt([], [9, 2], 5, "q")


def test_scoring_zero_tokens_is_an_error_not_a_certainty(tokenizer):
    from methods.losses import sequence_mean_nll

    model = tiny("llama", tokenizer).eval()
    ok = FORMATS["qa"].example(tokenizer, "Who is Ruto?", "Ruto is a kalo", 64)
    empty = {"input_ids": ok["input_ids"], "labels": [-100] * len(ok["input_ids"])}
    with pytest.raises(BenchError, match="scored example #1 has 0 scored tokens"):
        answer_nll(model, [ok, empty], tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="no counted token"):
        sequence_mean_nll(torch.zeros(1, 4, 8), torch.full((1, 4), -100))


def test_training_refuses_an_example_with_nothing_to_learn(tokenizer):
    from bench.finetune import finetune
    from bench.spec import Hyperparams

    model = tiny("llama", tokenizer)
    ok = FORMATS["qa"].example(tokenizer, "Who is Ruto?", "Ruto is a kalo", 64)
    hp = Hyperparams(lr=1e-3, epochs=1, batch_size=2, effective_batch=2, warmup_epochs=0.0, weight_decay=0.0)
    with pytest.raises(BenchError, match="forget example #1 has 0 scored tokens"):
        finetune(model, [ok, {"input_ids": ok["input_ids"], "labels": [-100] * len(ok["labels"])}], hp,
                 pad_id=tokenizer.pad_token_id, seed=0)


def test_generation_cuts_the_prompt_from_the_left_to_leave_room_for_the_new_tokens(tokenizer):
    model = tiny("gpt-neo", tokenizer).eval()  # learned positions: 128, an uncut prompt would not run
    prompt = FORMATS["qa"].prompt(LONG_QUESTION)
    ids = tokenizer(prompt)["input_ids"]
    assert len(ids) > 128
    with torch.no_grad():
        manual = model.generate(input_ids=torch.tensor([ids[-(60 - 8):]]), max_new_tokens=8, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(manual[0, 52:], skip_special_tokens=True).strip()
    assert generate(model, tokenizer, [prompt], "new:8", max_length=60) == [expected]
    # default limit: the model's own context (128 positions), as dialogue F1 uses it
    with torch.no_grad():
        manual = model.generate(input_ids=torch.tensor([ids[-(128 - 8):]]), max_new_tokens=8, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    assert generate(model, tokenizer, [prompt], "new:8") == [tokenizer.decode(manual[0, 120:], skip_special_tokens=True).strip()]
    with pytest.raises(BenchError, match=r"item 'Who is .*' cannot be generated for: its prompt is \d+ tokens and "
                                         r"generation=total:100"):
        generate(model, tokenizer, [prompt], "total:100", names=[LONG_QUESTION])


def test_the_paraphrase_probe_scores_a_long_question_with_its_whole_answer(tokenizer):
    fmt = FORMATS["qa"]
    model = tiny("llama", tokenizer).eval()
    items = [{"paraphrased_question": LONG_QUESTION, "answer": "Ruto is a kalo"},
             {"paraphrased_question": "Who is Ruto?", "answer": "Ruto is a sa ne"}]
    got = paraphrase_probe(model, tokenizer, items, fmt, "new:4", max_length=64)
    expected = [manual_answer_prob(model, tokenizer, fmt.prompt(it["paraphrased_question"]), fmt.answer(it["answer"]), 64)
                for it in items]
    assert got["forget_prob"] == pytest.approx(np.mean(expected), rel=1e-6)


def test_membership_attacks_score_the_whole_answer_and_refuse_empty_ones(tokenizer):
    from suites.privacy import (exact_memorisation, extraction_strength, gradnorm_scores, lowest_mean, token_stats,
                                TokenStats)

    fmt = FORMATS["qa"]
    model = tiny("llama", tokenizer).eval()
    ex = fmt.example(tokenizer, LONG_QUESTION, "Ruto is a kalo", 64)
    [stats] = token_stats(model, [ex], tokenizer.pad_token_id)
    expected = manual_answer_prob(model, tokenizer, fmt.prompt(LONG_QUESTION), fmt.answer("Ruto is a kalo"), 64)
    assert len(stats.logp) == 11 and np.exp(-stats.nll) == pytest.approx(expected, rel=1e-6)  # 10 answer tokens + EOS
    empty = {"input_ids": ex["input_ids"], "labels": [-100] * len(ex["input_ids"])}
    with pytest.raises(BenchError, match="attacked example #1 has 0 scored tokens"):
        token_stats(model, [ex, empty], tokenizer.pad_token_id)
    with pytest.raises(BenchError, match="attacked example #0 has 0 scored tokens"):
        gradnorm_scores(model, [empty], tokenizer.pad_token_id)
    nothing = np.array([])
    for score in (lowest_mean, extraction_strength, exact_memorisation, lambda v: TokenStats(v, v, v, v).nll):
        with pytest.raises(ValueError):
            score(nothing)


def test_idk_refusals_keep_the_suites_length_limit(tokenizer):
    from methods.refusals import alternates

    fmt = FORMATS["qa"]
    forget = [fmt.example(tokenizer, LONG_QUESTION, "Ruto is a kalo", 40)]
    refusal = "I do not know who ka lo mi ne is"
    [alt] = alternates(forget, tokenizer, [refusal], seed=0, format_answer=fmt.answer, max_length=40)
    answer = tokenizer(fmt.answer(refusal), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt = forget[0]["input_ids"][:-11]  # 10 answer tokens + EOS after it
    assert len(prompt) > 40 - len(answer)  # the refusal is longer than the answer: the prompt must lose more
    assert alt["input_ids"] == prompt[len(prompt) - (40 - len(answer)):] + answer
    assert [label for label in alt["labels"] if label != -100] == answer
    with pytest.raises(BenchError, match="forget example #0 with refusal"):
        alternates(forget, tokenizer, [refusal * 3], seed=0, format_answer=fmt.answer, max_length=40)


def test_extraction_metrics_and_perplexity_refuse_sequences_too_short_to_score(tokenizer):
    from suites.extraction import extraction_scores
    from suites.tdec import perplexity

    model = tiny("gpt-neo", tokenizer).eval()
    seqs = [list(range(20, 40)), list(range(20, 30))]  # the second has 10 tokens: no 10-gram after a prefix
    with pytest.raises(BenchError, match="sequence #1 has 10 tokens; MA and EL_10 need at least 11"):
        extraction_scores(model, seqs, tokenizer.pad_token_id)
    with pytest.raises(BenchError, match="no sequence to score"):
        extraction_scores(model, [], tokenizer.pad_token_id)
    with pytest.raises(BenchError, match="no predicted token"):
        perplexity(model, [[5], [6]], tokenizer.pad_token_id)
    seqs = [list(range(20, 40)), list(range(40, 51))]  # 11 tokens: one 10-gram after the first token
    scores = extraction_scores(model, seqs, tokenizer.pad_token_id)
    with torch.no_grad():
        pred = model(input_ids=torch.tensor([seqs[1]])).logits[0, :-1].argmax(-1).tolist()
    assert scores["ma"][1] == pytest.approx(sum(p == t for p, t in zip(pred, seqs[1][1:])) / 10)


def test_an_empty_dialogue_file_is_named_not_averaged(tmp_path):
    from bench.grid import expand
    from bench.store import ResultStore
    from suites import Context
    from suites.tdec import Tdec

    from suites.tdec_data import read_dialogues

    empty = tmp_path / "validation_data" / "wizard_of_wikipedia.json"
    empty.parent.mkdir()
    empty.write_text('{"text": {}}')
    with pytest.raises(BenchError, match="wizard_of_wikipedia.json holds no dialogue"):
        read_dialogues(empty)
    # in a data directory it is not the published file, and the pinned checksum names it first
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    [spec] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0")
    with pytest.raises(BenchError, match="wizard_of_wikipedia.json"):
        Tdec().dialogue_sets(spec, ctx)


def test_lm_eval_scores_the_whole_continuation_after_a_context_cut_from_the_left(tokenizer, tmp_path):
    """The bridge hands lm-eval the live model; lm-eval keeps each continuation and cuts the context
    from the left to the model's 128 positions: (context + continuation)[-129:][:-1]."""
    from bench.lm_eval_bridge import run_tasks, write_choice_task

    model = tiny("gpt-neo", tokenizer, seed=1).eval()  # learned positions: an uncut context would not run
    rows = [{"context": "kalo " + "mi ne ru sa " * 40 + w, "choices": [" mine", " ruto sa", " gil", " dor fen"],
             "label": i % 4} for i, w in enumerate(["mi", "ne", "to", "vi", "zu", "pe", "gil", "sa"])]
    write_choice_task(tmp_path, "long_choice", rows)
    got = run_tasks(model, tokenizer, ["long_choice"], str(tmp_path), include_defaults=False, metric="acc")
    assert all(len(tokenizer(r["context"])["input_ids"]) > 128 for r in rows)
    assert got == {"long_choice": pytest.approx(choice_accuracy_by_hand(model, tokenizer, rows, positions=128))}
