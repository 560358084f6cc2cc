import hashlib
import os

import pytest
import torch

from bench.errors import BenchError
from bench.lm_eval_bridge import run_tasks, write_choice_task
from bench.store import ResultStore
from suites import Context
from suites.tdec import Tdec, perplexity
from tests.conftest import choice_accuracy_by_hand, tiny


def test_forget_csv_loader(tmp_path):
    from suites.tdec_data import read_forget_csv

    (tmp_path / "a.csv").write_text('doc_id,corpus,text\n7,pile,"first, quoted\nline"\n8,pile,second\n')
    (tmp_path / "b.csv").write_text("doc_id,corpus,body\n1,pile,x\n")
    (tmp_path / "c.csv").write_text("doc_id,corpus,text\n")
    assert read_forget_csv(tmp_path / "a.csv") == ["first, quoted\nline", "second"]
    with pytest.raises(BenchError, match=r"b.csv has no column text \(columns: doc_id, corpus, body; expected text\)"):
        read_forget_csv(tmp_path / "b.csv")
    with pytest.raises(BenchError, match="is empty"):
        read_forget_csv(tmp_path / "c.csv")
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    with pytest.raises(BenchError, match=r"missing data file .*data/main/lm_extraction_32_4.csv \(or .*lm_extraction_32_4.csv\)"):
        Tdec().forget_texts("set4", ctx)


def test_a_cached_download_that_is_not_the_published_file_is_refused(tmp_path):
    from suites.tdec_data import PUBLISHED_SHA256

    store = ResultStore(tmp_path)
    cached = store.artefact_dir("tdec") / "data" / "lm_extraction_32_0.csv"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text("doc_id,corpus,text\n1,pile,tampered\n")
    actual = hashlib.sha256(cached.read_bytes()).hexdigest()
    expected = PUBLISHED_SHA256["data/main/lm_extraction_32_0.csv"]
    with pytest.raises(BenchError, match=f"{cached} is not the published data/main/lm_extraction_32_0.csv: "
                                         f"SHA-256 {actual}, expected {expected}"):
        Tdec().forget_texts("set0", Context(store=store))


def test_wikitext_rows_give_the_same_ids_from_the_hub_and_from_data_dir(tokenizer, tmp_path, monkeypatch):
    """Hub rows end with their line break; the local file holds them one per line and is read back with
    the breaks kept, so both routes tokenise the same strings (they once lost the breaks locally)."""
    import datasets

    rows = [" = Kalo = \n", "", " Kalo was born in Mine . \n", " Ruto sa gil dor fen . \n", "\n", " = = Mine = = \n"]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, split, **k: [{"text": r} for r in rows])
    hub = Tdec().text_lines("heldout", Context(store=ResultStore(tmp_path / "r")))
    (tmp_path / "wikitext_validation.txt").write_text("".join(rows))
    local = Tdec().text_lines("heldout", Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path)))
    assert local == hub == [r for r in rows if r.strip()]
    ids = Tdec().chunks(local, tokenizer, 4, 100)
    assert ids == Tdec().chunks(hub, tokenizer, 4, 100)
    glued = [t for r in hub for t in tokenizer(r, add_special_tokens=False)["input_ids"]]
    assert sum(ids, []) == glued[:len(glued) // 4 * 4]
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert len(newline) == 1 and glued.count(newline[0]) >= 4  # every row's break is a token


def test_perplexity_by_hand(tokenizer):
    model = tiny("gpt-neo", tokenizer).eval()
    seqs = [[5, 9, 12, 7], [3, 4, 8]]
    nll, n = 0.0, 0
    for s in seqs:
        logits = model(input_ids=torch.tensor([s])).logits[0, :-1].log_softmax(-1)
        nll -= sum(logits[t, s[t + 1]].item() for t in range(len(s) - 1))
        n += len(s) - 1
    assert perplexity(model, seqs, pad_id=1) == pytest.approx(torch.tensor(nll / n).exp().item(), rel=1e-5)


def test_lm_eval_bridge_scores_the_live_model_on_a_local_task(tokenizer, tmp_path, capfd):
    import tqdm

    model = tiny("llama", tokenizer, seed=1).eval()
    rows = [{"context": f"kalo {w}", "choices": [" mine", " ruto sa", " gil", " dor fen"], "label": i % 4}
            for i, w in enumerate(["mi", "ne", "to", "vi", "zu", "pe"])]
    write_choice_task(tmp_path, "toy_choice", rows)
    capfd.readouterr()
    got = run_tasks(model, tokenizer, ["toy_choice"], str(tmp_path), include_defaults=False, metric="acc")
    assert got == {"toy_choice": pytest.approx(choice_accuracy_by_hand(model, tokenizer, rows))}
    # lm-eval's per-request progress bars stay off (they would bury the grid's lines); tqdm itself is untouched
    err = capfd.readouterr().err
    assert "loglikelihood requests" not in err and "Tokenizing inputs" not in err and "it/s]" not in err, err
    list(tqdm.tqdm(range(3), desc="still on"))
    assert "still on" in capfd.readouterr().err


def test_unigram_f1_with_parlai_normalisation():
    from suites.dialogue import unigram_f1

    # normalised: pred [cat, sat, on, mat], gold [cat, sat]: P 2/4, R 2/2 -> F1 2/3
    assert unigram_f1("The cat sat on the mat.", "A cat sat!") == pytest.approx(2 / 3)
    assert unigram_f1("Hello", "goodbye") == 0.0
    assert unigram_f1("the a an", "the") == 0.0  # nothing left after normalisation


def test_dialogue_files_in_the_reference_form_are_read_and_named_when_missing(tmp_path):
    import pandas as pd

    from bench.grid import expand
    from suites.tdec_data import read_dialogues

    path = tmp_path / "d.json"
    pd.DataFrame({"text": [["hi , how are you ?", "fine thanks", "i'm glad"], ["lonely turn"]]}).to_json(path)
    assert read_dialogues(path) == [{"context": "User 1: Hi, how are you?\nUser 2: Fine thanks.\nUser 1:",
                                     "response": "I'm glad."}]
    path.write_text('{"turns": {"0": ["a", "b"]}}')
    with pytest.raises(BenchError, match=r"d.json has no 'text' column \(columns: turns\)"):
        read_dialogues(path)
    path.write_text('{"text": {"0": "not a list"}}')
    with pytest.raises(BenchError, match="a 'text' cell is str, expected a list of turns"):
        read_dialogues(path)
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    [spec] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0")
    assert Tdec().dialogue_sets(spec, ctx) == {}  # auto: the sets that are there
    [named] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0", options={"dialogue": "empathetic_dialogues"})
    with pytest.raises(BenchError, match="missing data file .*validation_data/empathetic_dialogues.json"):
        Tdec().dialogue_sets(named, ctx)


def test_tdec_lora_and_fila_use_the_papers_fixed_learning_rate():
    """Cha et al. run TDEC's LoRA experiments at 2e-4 for every rank; full fine-tuning keeps Jang et al.'s 5e-5.
    The twin keeps the paper's ratio of about 4-5 between them: 5e-3 for the adapters, 1e-3 in full (the sweep
    in docs/suites.md)."""
    from bench.grid import expand

    lr = {(s.adapter, s.rank): s.hparams.lr for s in expand("tdec", "ga,ga+lora,ihl+fila", models="gpt-neo-125m",
                                                             splits="set0", seeds="0", ranks="4,32")}
    assert lr == {("full", 0): 5e-5, ("lora", 4): 2e-4, ("lora", 32): 2e-4, ("fila", 4): 2e-4, ("fila", 32): 2e-4}
    assert {s.adapter: s.hparams.lr for s in expand("tdec-mini", "ga,ga+lora,ga+fila", splits="set0", seeds="0")} == \
        {"full": 1e-3, "lora": 5e-3, "fila": 5e-3}


def test_a_seq_len_beyond_the_models_positions_is_a_one_line_error_before_anything_runs(tokenizer, tmp_path, capsys):
    """A GPT-Neo with 128 positions and TDEC's seq_len of 200: refused before any data is read or the model runs
    (it used to fail inside the position embeddings after loading, leaving a failed run)."""
    from bench.cli import main
    from tests.test_hints import save_tiny

    model = save_tiny(tokenizer, tmp_path / "neo", arch="gpt-neo")
    assert main(["run", "--suite", "tdec", "--models", model, "--splits", "set0", "--seeds", "0", "--methods", "ga",
                 "--data-dir", str(tmp_path), "--option", "lm_eval_tasks=", "--option", "mia_reference=none",
                 "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: bad option seq_len=200: the model '{model}' reads at most 128 tokens (expected seq_len <= 128)"
    assert not list((tmp_path / "results").rglob("run.json"))


def test_a_reference_attack_model_shorter_than_seq_len_is_refused_too(tokenizer, tmp_path, capsys):
    from bench.cli import main
    from bench.tiny import TinyShape, build_tiny
    from tests.test_hints import save_tiny

    long = build_tiny("gpt-neo", tokenizer, TinyShape(hidden=32, layers=2, heads=2, intermediate=64, max_positions=256))
    long.save_pretrained(tmp_path / "neo256")
    tokenizer.save_pretrained(tmp_path / "neo256")
    short = save_tiny(tokenizer, tmp_path / "neo128", arch="gpt-neo")
    assert main(["run", "--suite", "tdec", "--models", str(tmp_path / "neo256"), "--splits", "set0", "--seeds", "0",
                 "--methods", "ga", "--data-dir", str(tmp_path), "--option", "lm_eval_tasks=", "--option",
                 f"mia_reference={short}", "--results", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: bad option seq_len=200: the Reference attack's model '{os.path.realpath(short)}' reads at most 128 tokens "
        f"(expected seq_len <= 128)")
