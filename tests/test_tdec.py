import json

import pytest
import torch

from bench.errors import BenchError
from bench.lm_eval_bridge import run_tasks, write_choice_task
from bench.store import ResultStore
from suites import Context
from suites.tdec import Tdec, cached_download, perplexity
from tests.conftest import tiny


def test_forget_csv_loader(tmp_path):
    (tmp_path / "lm_extraction_32_1.csv").write_text('doc_id,corpus,text\n7,pile,"first, quoted text"\n8,pile,second\n')
    (tmp_path / "lm_extraction_32_2.csv").write_text("doc_id,corpus,body\n1,pile,x\n")
    (tmp_path / "lm_extraction_32_3.csv").write_text("doc_id,corpus,text\n")
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    assert Tdec().forget_texts("set1", ctx) == ["first, quoted text", "second"]
    with pytest.raises(BenchError, match="has no 'text' column"):
        Tdec().forget_texts("set2", ctx)
    with pytest.raises(BenchError, match="is empty"):
        Tdec().forget_texts("set3", ctx)
    with pytest.raises(BenchError, match=r"missing data file .*lm_extraction_32_4.csv"):
        Tdec().forget_texts("set4", ctx)


def test_a_cached_download_whose_checksum_changed_is_refused(tmp_path):
    cached = tmp_path / "lm_extraction_32_0.csv"
    cached.write_text("doc_id,corpus,text\n1,pile,tampered\n")
    (tmp_path / "checksums.json").write_text(json.dumps({cached.name: "0" * 64}))
    with pytest.raises(BenchError, match=f"cached file {cached} does not match its recorded checksum; delete it"):
        cached_download("https://example.invalid/x.csv", cached)


def test_perplexity_by_hand(tokenizer):
    model = tiny("gpt-neo", tokenizer).eval()
    seqs = [[5, 9, 12, 7], [3, 4, 8]]
    nll, n = 0.0, 0
    for s in seqs:
        logits = model(input_ids=torch.tensor([s])).logits[0, :-1].log_softmax(-1)
        nll -= sum(logits[t, s[t + 1]].item() for t in range(len(s) - 1))
        n += len(s) - 1
    assert perplexity(model, seqs, pad_id=1) == pytest.approx(torch.tensor(nll / n).exp().item(), rel=1e-5)


def test_lm_eval_bridge_scores_the_live_model_on_a_local_task(tokenizer, tmp_path):
    model = tiny("llama", tokenizer, seed=1).eval()
    rows = [{"context": f"kalo {w}", "choices": [" mine", " ruto sa", " gil", " dor fen"], "label": i % 4}
            for i, w in enumerate(["mi", "ne", "to", "vi", "zu", "pe"])]
    write_choice_task(tmp_path, "toy_choice", rows)
    got = run_tasks(model, tokenizer, ["toy_choice"], str(tmp_path), include_defaults=False, metric="acc")
    hits = 0
    with torch.no_grad():
        for r in rows:
            context = tokenizer(r["context"])["input_ids"]
            scores = []
            for choice in r["choices"]:
                whole = tokenizer(r["context"] + choice)["input_ids"]
                logp = model(input_ids=torch.tensor([whole])).logits[0].log_softmax(-1)
                scores.append(sum(logp[t - 1, whole[t]].item() for t in range(len(context), len(whole))))
            hits += int(max(range(4), key=scores.__getitem__) == r["label"])
    assert got == {"toy_choice": pytest.approx(hits / len(rows))}


def test_unigram_f1_with_parlai_normalisation():
    from suites.dialogue import unigram_f1

    # normalised: pred [cat, sat, on, mat], gold [cat, sat]: P 2/4, R 2/2 -> F1 2/3
    assert unigram_f1("The cat sat on the mat.", "A cat sat!") == pytest.approx(2 / 3)
    assert unigram_f1("Hello", "goodbye") == 0.0
    assert unigram_f1("the a an", "the") == 0.0  # nothing left after normalisation


def test_dialogue_files_are_read_when_present_and_named_when_missing(tmp_path):
    from bench.grid import expand

    rows = [{"context": "Hi, how are you?", "response": "Fine, thanks."}]
    (tmp_path / "dialogue_wizard_of_wikipedia.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    [spec] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0")
    assert Tdec().dialogue_sets(spec, ctx) == {"wizard_of_wikipedia": rows}
    [named] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0", options={"dialogue": "empathetic_dialogues"})
    with pytest.raises(BenchError, match="missing data file .*dialogue_empathetic_dialogues.jsonl"):
        Tdec().dialogue_sets(named, ctx)
